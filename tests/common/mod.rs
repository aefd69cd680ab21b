//! Shared helpers for the tests that drive the example servers with real
//! clients (curl, wrk, redis-cli, redis-benchmark).
//!
//! * [`Server::start`] builds the example once per test process (`cargo
//!   build --release --example NAME`; examples have no
//!   `CARGO_BIN_EXE_*`), starts it on a free port (`--addr 127.0.0.1:0`),
//!   waits for its `listening on ADDR` line on stderr (no sleeps), and
//!   kills it on drop.
//! * [`client`] finds a client binary on `PATH`; when it is missing the
//!   test prints `SKIPPED: <client> not installed` and passes, unless
//!   `SOCKLOOP_REQUIRE_CLIENTS=1` makes that a failure.
//! * [`run`] runs a client under `timeout(1)`, so a hung server fails the
//!   test instead of hanging it.

#![allow(dead_code)]

pub mod certs;
pub mod http;
pub mod procs;
pub mod reliability;

#[allow(unused_imports)]
pub use reliability::*;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;

/// Examples already built by this test process.
static BUILT: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Builds `examples/NAME.rs` in release mode (once per process) and
/// returns the path of the binary.
pub fn example_binary(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let bin = target.join("release").join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashSet::new);
    if !built.contains(name) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(manifest)
            .args(["build", "--release", "-j1", "--quiet", "--example", name]);
        // The examples get the TLS flags when the tests are built with
        // `--features tls` (same feature set: no rebuild between tests).
        if cfg!(feature = "tls") {
            cmd.args(["--features", "tls"]);
        }
        let status = cmd.status().expect("cannot run cargo");
        assert!(status.success(), "cargo build --example {name} failed");
        built.insert(name.to_string());
    }
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

/// A running example server, killed on drop.
pub struct Server {
    child: Child,
    /// Its stderr lines so far (but `listening on`).
    log: std::sync::Arc<Mutex<Vec<String>>>,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl Server {
    /// Builds and starts example `name` with `--addr 127.0.0.1:0` and
    /// `args`, and waits until it prints `listening on ADDR`.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Server::spawn(&example_binary(name), name, args, &[])
    }

    /// Starts the binary `bin` (named `name` in log lines) with `--addr
    /// 127.0.0.1:0`, `args` and the environment variables `env`, and waits
    /// until it prints `listening on ADDR`.
    pub fn spawn(bin: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(bin)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let mut early = Vec::new();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        break a.trim().parse().expect("a socket address");
                    }
                    eprintln!("[{name}] {line}");
                    early.push(line);
                }
                _ => {
                    let status = child.wait();
                    panic!("{name} exited before listening: {status:?}");
                }
            }
        };
        // Keep draining its stderr so the server never blocks on a full
        // pipe; the lines show up in the test's output on failure.
        let tag = name.to_string();
        let log = std::sync::Arc::new(Mutex::new(early));
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
                keep.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        Server { child, addr, log }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its stderr lines so far (but `listening on`).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `within` for it to exit; its exit
    /// status, or `None` if it is still running then.
    pub fn terminate(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = sockloop::sys::signal::kill(self.child.id(), sockloop::sys::signal::SIGTERM);
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10)); // polling pace
        }
    }

    /// True while the server process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of client `bin` if it is on `PATH`. If not: prints a loud
/// `SKIPPED` line and returns `None` (the test then passes), or panics when
/// `SOCKLOOP_REQUIRE_CLIENTS=1`.
pub fn client(bin: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(bin))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("SOCKLOOP_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!("{bin} not installed and SOCKLOOP_REQUIRE_CLIENTS=1");
        }
        eprintln!("SKIPPED: {bin} not installed");
    }
    found
}

/// Runs `program args` under `timeout(1)` with `secs` as the limit;
/// returns its output (panics if it cannot be started).
pub fn run(secs: u32, program: &Path, args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .args(["-k", "5", &secs.to_string()])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    if out.status.code() == Some(124) {
        panic!(
            "{} {args:?} timed out after {secs} s; stdout: {}; stderr: {}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// stdout and stderr of `out`, as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
