//! Running the example binaries (and third-party servers and clients) as
//! child processes from integration tests.
//!
//! * [`example`] builds `cargo build --release --example NAME` once per
//!   test process and returns the binary's path.
//! * [`Server::start`] runs a binary, reads its stderr until the
//!   `listening on ADDR` line (no sleeps), keeps collecting the rest of its
//!   output for [`Server::wait_for_log`], and kills it on drop.
//! * [`have_client`] says whether a third-party program is installed; when
//!   it is not, the test prints a loud `SKIPPED` line and passes, unless
//!   `SOCKLOOP_REQUIRE_CLIENTS=1` makes that a failure.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Builds `examples/NAME.rs` in release mode (once per test process) and
/// returns the path of the binary.
pub fn example(name: &str) -> PathBuf {
    super::example_binary(name)
}

/// Whether `program` is on PATH. If not, prints a loud SKIPPED line and
/// returns false, or panics when `SOCKLOOP_REQUIRE_CLIENTS=1`.
pub fn have_client(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    if !found {
        if std::env::var("SOCKLOOP_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!("{program} not installed and SOCKLOOP_REQUIRE_CLIENTS=1");
        }
        // Straight to the process's stderr: the test harness captures
        // eprintln!, and a skip must be seen.
        let msg = format!("\n======== SKIPPED: {program} not installed ========\n");
        let _ = std::io::stderr().lock().write_all(msg.as_bytes());
    }
    found
}

/// A free loopback port: bind port 0, read it back, close. (Another
/// process could take it before we use it; fine for tests.)
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Output lines of a child, collected by a thread; waiters are woken on
/// each new line.
#[derive(Default)]
struct Lines {
    lines: Mutex<(Vec<String>, bool)>, // (lines, closed)
    cond: Condvar,
}

impl Lines {
    fn push(&self, line: String) {
        let mut g = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        g.0.push(line);
        self.cond.notify_all();
    }

    fn close(&self) {
        let mut g = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        g.1 = true;
        self.cond.notify_all();
    }

    /// Waits until a line satisfies `pred` (returns it), the stream ends,
    /// or `timeout` passes.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut g = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(l) = g.0.iter().find(|l| pred(l)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if g.1 || now >= deadline {
                return None;
            }
            g = self
                .cond
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Forwards `stream` line by line into `lines` (and to our stderr, so a
/// failing test shows the child's log).
fn collect<R: Read + Send + 'static>(tag: String, stream: R, lines: Arc<Lines>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                    eprintln!("[{tag}] {line}");
                    lines.push(line);
                }
            }
        }
        lines.close();
    });
}

/// A running child process, killed (and reaped) on drop.
pub struct Server {
    child: Child,
    /// The address it said it listens on.
    pub addr: SocketAddr,
    output: Arc<Lines>,
}

impl Server {
    /// Starts `program args...` and waits (up to 60 s: a loaded machine)
    /// for `listening on ADDR` on its stderr.
    pub fn start(program: &Path, args: &[&str]) -> Server {
        let tag = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut child = Command::new(program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let output = Arc::new(Lines::default());
        collect(tag, child.stderr.take().expect("stderr"), output.clone());
        let line = output.wait_for(Duration::from_secs(60), |l| l.starts_with("listening on "));
        let Some(line) = line else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not print `listening on ADDR`", program.display());
        };
        let addr = line["listening on ".len()..]
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        Server {
            child,
            addr,
            output,
        }
    }

    /// Starts an example by name (building it first) with `args`.
    pub fn example(name: &str, args: &[&str]) -> Server {
        Server::start(&example(name), args)
    }

    /// Starts a program that reports readiness on stdout with a line
    /// containing `ready` (e.g. redis-server's "Ready to accept
    /// connections"); `addr` is where the caller told it to listen.
    pub fn start_with_ready_line(
        program: &str,
        args: &[&str],
        ready: &str,
        addr: SocketAddr,
    ) -> Server {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let output = Arc::new(Lines::default());
        collect(
            program.to_string(),
            child.stdout.take().expect("stdout"),
            output.clone(),
        );
        let errors = Arc::new(Lines::default());
        collect(
            format!("{program} stderr"),
            child.stderr.take().expect("stderr"),
            errors,
        );
        if output
            .wait_for(Duration::from_secs(60), |l| l.contains(ready))
            .is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} did not print {ready:?}");
        }
        Server {
            child,
            addr,
            output,
        }
    }

    /// The process id (e.g. for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for an output line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        self.output.wait_for(timeout, |l| l.contains(needle))
    }

    /// Resident set size of the process in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
