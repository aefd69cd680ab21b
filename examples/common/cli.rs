//! What every example server's command line and start-up share, so each
//! example file is about its protocol only:
//!
//! * `--flag value` arguments: unknown flags and bad values print the usage
//!   and exit 2; `-h`/`--help` prints it and exits 0;
//! * logging through `RUST_LOG` (default `warn`);
//! * a loop that shuts down gracefully on SIGINT/SIGTERM, the
//!   `listening on ADDR` line on stderr once bound, and exit status 1 with
//!   the error if serving fails;
//! * for the servers that run on several loops ([`Cli::parse_cluster`],
//!   [`Cli::serve_cluster`]): `--threads N` (default 1), `--balance
//!   reuseport|exclusive|handoff` (default reuseport), `--pin` (no value)
//!   and `--shutdown-grace-ms N` (default 10000).
#![allow(dead_code)] // each example uses a different subset

use sockloop::cluster::{Balance, Cluster};
use sockloop::net::TcpListener;
use sockloop::{ConnId, EventLoop, Handler, ServerConfig};
use sockloop::{SIGINT, SIGTERM};
use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// Parsed `--flag value` arguments.
pub struct Cli {
    name: &'static str,
    usage: String,
    pairs: Vec<(String, String)>,
}

/// The flags [`Cli::parse_cluster`] adds, and their usage.
const CLUSTER_FLAGS: &[&str] = &["--threads", "--balance", "--pin", "--shutdown-grace-ms"];
const CLUSTER_USAGE: &str = " [--threads N (default 1)] [--balance reuseport|exclusive|handoff] \
[--pin] [--shutdown-grace-ms N (default 10000)]";
/// Flags that take no value.
const SWITCHES: &[&str] = &["--pin"];

impl Cli {
    /// Parses the process arguments, accepting only `flags`, and sets up
    /// logging.
    pub fn parse(name: &'static str, usage: &'static str, flags: &[&str]) -> Cli {
        Cli::parse_flags(name, usage.to_string(), flags)
    }

    /// As [`Cli::parse`], plus `--threads`, `--balance`, `--pin` and
    /// `--shutdown-grace-ms` for [`Cli::serve_cluster`].
    pub fn parse_cluster(name: &'static str, usage: &'static str, flags: &[&str]) -> Cli {
        let mut all = flags.to_vec();
        all.extend_from_slice(CLUSTER_FLAGS);
        let cli = Cli::parse_flags(name, format!("{usage}{CLUSTER_USAGE}"), &all);
        let _ = (cli.threads(), cli.balance(), cli.grace()); // bad values: exit 2 now
        cli
    }

    fn parse_flags(name: &'static str, usage: String, flags: &[&str]) -> Cli {
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
        let mut cli = Cli {
            name,
            usage,
            pairs: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                println!("usage: {}", cli.usage);
                std::process::exit(0);
            }
            if !flags.contains(&flag.as_str()) {
                cli.fail(&format!("unknown argument {flag}"));
            }
            if SWITCHES.contains(&flag.as_str()) {
                cli.pairs.push((flag, "true".into()));
                continue;
            }
            match args.next() {
                Some(value) => cli.pairs.push((flag, value)),
                None => cli.fail(&format!("{flag} needs a value")),
            }
        }
        cli
    }

    /// Prints `msg` and the usage, then exits with status 2.
    pub fn fail(&self, msg: &str) -> ! {
        eprintln!("{}: {msg}\nusage: {}", self.name, self.usage);
        std::process::exit(2);
    }

    /// The value of `flag` (the last one given), or `default`.
    pub fn get<T: FromStr>(&self, flag: &str, default: T) -> T
    where
        T::Err: Display,
    {
        match self.pairs.iter().rev().find(|(f, _)| f == flag) {
            Some((_, v)) => v
                .parse()
                .unwrap_or_else(|e| self.fail(&format!("{flag} {v:?}: {e}"))),
            None => default,
        }
    }

    /// `--addr` (or another address flag) with a default.
    pub fn addr(&self, flag: &str, default: &str) -> SocketAddr {
        let fallback = default
            .parse()
            .unwrap_or_else(|e| self.fail(&format!("default {default}: {e}")));
        self.get(flag, fallback)
    }

    /// `--threads` (at least 1; default 1).
    pub fn threads(&self) -> usize {
        match self.get("--threads", 1usize) {
            0 => self.fail("--threads must be at least 1"),
            n => n,
        }
    }

    /// `--balance` (default reuseport).
    pub fn balance(&self) -> Balance {
        self.get("--balance", Balance::Reuseport)
    }

    /// Whether `--pin` was given.
    pub fn pin(&self) -> bool {
        self.pairs.iter().any(|(f, _)| f == "--pin")
    }

    /// `--shutdown-grace-ms` (default 10 s).
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.get("--shutdown-grace-ms", 10_000u64))
    }

    /// A server config from `--idle-timeout-secs` (0: never) and
    /// `--max-conns`, with the example's defaults.
    pub fn server_config(&self, default_idle_secs: u64, default_max_conns: usize) -> ServerConfig {
        let mut config = ServerConfig {
            max_conns: self.get("--max-conns", default_max_conns),
            ..ServerConfig::default()
        };
        config.conn.idle_timeout = match self.get("--idle-timeout-secs", default_idle_secs) {
            0 => None,
            n => Some(Duration::from_secs(n)),
        };
        config
    }
}

/// With the `fault-injection` feature, prints what the fault plan did
/// (tests/fault_injection_protocols.rs reads it as proof the plan ran);
/// otherwise does nothing.
fn print_fault_stats() {
    #[cfg(feature = "fault-injection")]
    {
        let s = sockloop::sys::fault::stats();
        eprintln!(
            "sockloop fault injection stats: calls {} faults {} retried {} rearmed {}",
            s.calls,
            s.all(),
            s.retried,
            s.rearmed
        );
    }
}

/// Serves `addr` with one handler per connection from `factory`, on a loop
/// that `setup` may adjust first; exits the process when the loop ends
/// (0 after a graceful shutdown, 1 with the error if anything failed).
pub fn serve<S, F>(name: &str, addr: SocketAddr, config: ServerConfig, setup: S, factory: F) -> !
where
    S: FnOnce(&mut EventLoop),
    F: FnMut(ConnId) -> Box<dyn Handler> + 'static,
{
    let result = (|| -> std::io::Result<()> {
        let mut ev = EventLoop::new()?;
        ev.shutdown_on_signals(&[SIGINT, SIGTERM])?;
        setup(&mut ev);
        let listener = TcpListener::bind(addr)?;
        eprintln!("listening on {}", listener.local_addr()?);
        ev.listen(listener, config, factory)?;
        let res = ev.run();
        print_fault_stats();
        res
    })();
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}

/// Serves `addr` on `--threads` loops spread by `--balance` (optionally
/// `--pin`ned): `setup` runs on each loop first, `make` once per loop with
/// its index and returns that loop's handler factory (so what handlers
/// share on one loop need not be `Send`). Stops gracefully on
/// SIGINT/SIGTERM (with `--shutdown-grace-ms`), logs each loop's counters
/// at info level, and exits the process (0 after a graceful shutdown, 1
/// with the error if anything failed).
pub fn serve_cluster<S, M, F>(
    cli: &Cli,
    name: &str,
    addr: SocketAddr,
    config: ServerConfig,
    setup: S,
    make: M,
) -> !
where
    S: Fn(&mut EventLoop) + Send + Sync + 'static,
    M: Fn(usize) -> F + Send + Sync + 'static,
    F: FnMut(ConnId) -> Box<dyn Handler> + 'static,
{
    let result = (|| -> std::io::Result<()> {
        let mut cluster = Cluster::new(cli.threads())?;
        cluster
            .pin(cli.pin())
            .shutdown_grace(cli.grace())
            .shutdown_on_signals(&[SIGINT, SIGTERM])
            .on_loop_start(setup);
        let bound = cluster.listen(addr, cli.balance(), config, make)?;
        eprintln!("listening on {bound}");
        cluster.run()?;
        print_fault_stats();
        Ok(())
    })();
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}

// ---- TLS (feature `tls`): --tls-cert/--tls-key for servers, --upstream-tls
// ---- and --ca for clients. Bad files print the error and exit 2.

/// The TLS flags a server example accepts.
pub const TLS_SERVER_FLAGS: [&str; 2] = ["--tls-cert", "--tls-key"];
/// The TLS flags a client (proxy upstream) accepts.
pub const TLS_CLIENT_FLAGS: [&str; 2] = ["--upstream-tls", "--ca"];

/// What `--tls-cert PEM --tls-key PEM` asked for, loaded: `None` when
/// neither is given. Exits 2 with a clear message when only one is given,
/// a file is missing, unreadable or not PEM, or the key does not match the
/// certificate (or when built without `--features tls`).
#[cfg(feature = "tls")]
pub fn tls_server(
    name: &str,
    cert: Option<&str>,
    key: Option<&str>,
    alpn: &[&[u8]],
) -> Option<sockloop::TlsConfig> {
    let (cert, key) = match (cert, key) {
        (None, None) => return None,
        (Some(c), Some(k)) => (c, k),
        _ => tls_fail(name, "--tls-cert and --tls-key go together"),
    };
    match sockloop::tls::server_config_from_pem(cert, key, alpn) {
        Ok(config) => Some(sockloop::TlsConfig::new(config)),
        Err(e) => tls_fail(name, &e.to_string()),
    }
}

/// The client config and server name of `--upstream-tls NAME [--ca PEM]`
/// (`None` without `--upstream-tls`); the server's certificate is verified
/// for NAME against the CAs of `--ca` (default: the system's bundle). Exits
/// 2 on a bad name or a bad CA file.
#[cfg(feature = "tls")]
pub fn tls_client(
    name: &str,
    upstream_name: Option<&str>,
    ca: Option<&str>,
) -> Option<(
    std::sync::Arc<sockloop::tls::rustls::ClientConfig>,
    sockloop::tls::rustls::pki_types::ServerName<'static>,
)> {
    let Some(server_name) = upstream_name else {
        if ca.is_some() {
            tls_fail(name, "--ca needs --upstream-tls SERVER_NAME");
        }
        return None;
    };
    let server_name =
        sockloop::tls::rustls::pki_types::ServerName::try_from(server_name.to_string())
            .unwrap_or_else(|e| tls_fail(name, &format!("--upstream-tls {server_name:?}: {e}")));
    match sockloop::tls::client_config_from_pem(ca.map(std::path::Path::new), &[]) {
        Ok(config) => Some((config, server_name)),
        Err(e) => tls_fail(name, &e.to_string()),
    }
}

/// Without the feature: any TLS flag is an error (exit 2).
#[cfg(not(feature = "tls"))]
pub fn no_tls(name: &str, given: bool) {
    if given {
        tls_fail(name, "built without TLS: rebuild with --features tls");
    }
}

fn tls_fail(name: &str, msg: &str) -> ! {
    eprintln!("{name}: {msg}");
    std::process::exit(2);
}

impl Cli {
    /// The raw value of `flag`, if given.
    pub fn value(&self, flag: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }
}
