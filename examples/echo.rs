//! Echo server: every byte received is sent back.
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:7000 \
//!     --idle-timeout-secs 60 --max-conns 100000 [--nofile N]
//! ```
//! `--tls-cert PEM --tls-key PEM` (build with `--features tls`) serves
//! TLS: the same handler echoes the decrypted bytes, encrypted.
//! `--nofile N` lowers the soft RLIMIT_NOFILE to N after the loop is
//! created (the reliability tests use it to exhaust descriptors).
//! Prints `listening on ADDR` on stderr once bound; logs via `RUST_LOG`;
//! SIGINT/SIGTERM stop it gracefully. A client that sends without reading
//! is throttled by backpressure: once its unsent echo passes the
//! high-water mark the server stops reading from it until it drains.

#[path = "common/cli.rs"]
mod cli;

use sockloop::net::TcpListener;
use sockloop::{Buffer, Context, EventLoop, Handler, ServerConfig};
use sockloop::{SIGINT, SIGTERM};
use std::time::Duration;

struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if ctx.write(input.as_slice()).is_ok() {
            input.clear();
        }
    }
}

struct Args {
    addr: std::net::SocketAddr,
    idle_timeout_secs: u64,
    max_conns: usize,
    nofile: Option<u64>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:7000".parse().map_err(|e| format!("{e}"))?,
        idle_timeout_secs: 60,
        max_conns: 100_000,
        nofile: None,
        tls_cert: None,
        tls_key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--idle-timeout-secs" => {
                args.idle_timeout_secs = value()?
                    .parse()
                    .map_err(|e| format!("--idle-timeout-secs: {e}"))?
            }
            "--max-conns" => {
                args.max_conns = value()?.parse().map_err(|e| format!("--max-conns: {e}"))?
            }
            "--nofile" => {
                args.nofile = Some(value()?.parse().map_err(|e| format!("--nofile: {e}"))?)
            }
            "--tls-cert" => args.tls_cert = Some(value()?),
            "--tls-key" => args.tls_key = Some(value()?),
            "-h" | "--help" => {
                return Err("usage: echo [--addr HOST:PORT] [--idle-timeout-secs N] \
                     [--max-conns N] [--nofile N] [--tls-cert PEM --tls-key PEM]"
                    .into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(&args) {
        eprintln!("echo: {e}");
        std::process::exit(1);
    }
}

fn serve(args: &Args) -> std::io::Result<()> {
    // TLS (feature `tls`): loaded before anything else, so that a bad file
    // exits 2 with its error before the port is bound.
    #[cfg(feature = "tls")]
    let tls = cli::tls_server(
        "echo",
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
        &[],
    );
    #[cfg(not(feature = "tls"))]
    cli::no_tls("echo", args.tls_cert.is_some() || args.tls_key.is_some());
    let mut ev = EventLoop::new()?;
    if let Some(n) = args.nofile {
        // After EventLoop::new, which raises the soft limit to the hard one.
        let (_, hard) = sockloop::sys::rlimit::nofile()?;
        sockloop::sys::rlimit::set_nofile(n.min(hard), hard)?;
    }
    ev.shutdown_on_signals(&[SIGINT, SIGTERM])?;
    let listener = TcpListener::bind(args.addr)?;
    let mut config = ServerConfig {
        max_conns: args.max_conns,
        #[cfg(feature = "tls")]
        tls,
        ..ServerConfig::default()
    };
    config.conn.idle_timeout = match args.idle_timeout_secs {
        0 => None,
        n => Some(Duration::from_secs(n)),
    };
    eprintln!("listening on {}", listener.local_addr()?);
    ev.listen(listener, config, |_| Box::new(Echo))?;
    ev.run()
}
