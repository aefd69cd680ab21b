//! Helpers shared by the reliability tests: an in-process echo server on a
//! thread, the echo example as a child process, /proc readings, and a tiny
//! deterministic random generator. No `unsafe` here: syscalls live in
//! `sockloop::sys`.

use sockloop::net::TcpListener;
use sockloop::{Buffer, Context, EventLoop, Handler, LoopHandle, ServerConfig};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// xorshift64*: deterministic per seed, good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    /// `n` random bytes shaped as lines: no newline except every ~`every`
    /// bytes and at the end.
    pub fn lines(&mut self, n: usize, every: usize) -> Vec<u8> {
        let mut v = self.bytes(n);
        for b in v.iter_mut() {
            if *b == b'\n' {
                *b = b'.';
            }
        }
        let mut i = self.range(1, every);
        while i < n {
            v[i] = b'\n';
            i += self.range(1, every);
        }
        if let Some(last) = v.last_mut() {
            *last = b'\n';
        }
        v
    }
}

pub struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if ctx.write(input.as_slice()).is_ok() {
            input.clear();
        }
    }
}

/// Echoes complete lines only, keeping a partial line in the connection's
/// input buffer: the next read then goes through `readv` into that buffer
/// plus the loop's spill area (the framed-protocol path).
pub struct LineEcho;

impl Handler for LineEcho {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if let Some(end) = input.as_slice().iter().rposition(|&b| b == b'\n') {
            if ctx.write(&input.as_slice()[..=end]).is_ok() {
                input.consume(end + 1);
            }
        }
    }
}

/// An echo server on a loop thread.
pub struct InProcess {
    pub addr: SocketAddr,
    pub handle: LoopHandle,
    pub thread: Option<JoinHandle<io::Result<()>>>,
}

impl InProcess {
    pub fn start(config: ServerConfig) -> InProcess {
        InProcess::start_with(config, || Box::new(Echo))
    }

    pub fn start_with<F>(config: ServerConfig, factory: F) -> InProcess
    where
        F: Fn() -> Box<dyn Handler> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("loop".into())
            .spawn(move || -> io::Result<()> {
                let mut ev = EventLoop::new()?;
                let listener = TcpListener::bind("127.0.0.1:0".parse().expect("addr"))?;
                let addr = listener.local_addr()?;
                ev.listen(listener, config, move |_| factory())?;
                tx.send((addr, ev.handle())).expect("test thread gone");
                ev.run()
            })
            .expect("spawn loop thread");
        let (addr, handle) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("loop did not start");
        InProcess {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// How many connections the loop holds (asked on the loop thread).
    pub fn connections(&self) -> usize {
        let (tx, rx) = mpsc::channel();
        self.handle
            .post(move |ctx| {
                let _ = tx.send(ctx.connection_count());
            })
            .expect("post");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("loop did not answer within 10 s")
    }

    /// Waits until the loop holds `n` connections, at most `within`.
    pub fn wait_connections(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let c = self.connections();
            if c == n || Instant::now() > deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(20)); // polling pace
        }
    }

    pub fn stop(mut self) -> io::Result<()> {
        self.handle.stop()?;
        match self.thread.take() {
            Some(t) => t.join().expect("loop thread panicked"),
            None => Ok(()),
        }
    }
}

/// Path of a built example (release; built once per test process, so a
/// stale binary is never under test).
pub fn example_path(name: &str) -> std::path::PathBuf {
    super::example_binary(name)
}

/// The echo example as a child process.
pub struct EchoChild {
    pub child: Child,
    pub addr: SocketAddr,
}

impl EchoChild {
    pub fn spawn(extra: &[&str]) -> EchoChild {
        let path = example_path("echo");
        let mut child = Command::new(&path)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            // SOCKLOOP_TEST_SERVER_LOG=debug to see the server's log.
            .env(
                "RUST_LOG",
                std::env::var("SOCKLOOP_TEST_SERVER_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {}: {e} (cargo test builds it)", path.display())
            });
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        break a.trim().parse().expect("address");
                    }
                }
                other => panic!("echo exited before listening: {other:?}"),
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.by_ref().map_while(Result::ok) {
                if std::env::var_os("SOCKLOOP_TEST_SERVER_LOG").is_some() {
                    eprintln!("server: {line}");
                }
            }
        });
        // "listening on" is printed before the listener is registered and
        // its spare descriptor opened: one round trip makes sure the
        // server is fully up before a test takes its fd baseline.
        let mut s = TcpStream::connect(addr).expect("connect to echo");
        echo_round(&mut s, b"up?").expect("echo is up");
        drop(s);
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Wait until that connection is reaped: the baseline is idle.
        let mut last = fd_count(pid);
        loop {
            std::thread::sleep(Duration::from_millis(50)); // polling pace
            let now = fd_count(pid);
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        EchoChild { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EchoChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Open descriptors of a process (`/proc/PID/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Open descriptors of this process.
pub fn self_fd_count() -> usize {
    fd_count(std::process::id())
}

/// A `/proc/PID/status` field in KiB (e.g. "VmRSS").
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name: state is field 3,
    // utime 14, stime 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hz = sockloop::sys::resource::clock_ticks_per_sec()
        .unwrap_or(100)
        .max(1);
    Duration::from_millis(ticks * 1000 / hz)
}

/// Rows of /proc/net/tcp{,6} in a state (hex, e.g. "08" CLOSE_WAIT) with
/// local port `port`.
pub fn tcp_sockets_in_state(port: u16, state: &str) -> usize {
    let mut n = 0;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let s = std::fs::read_to_string(file).unwrap_or_default();
        for line in s.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                continue;
            }
            let local_port = f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && f[3] == state {
                n += 1;
            }
        }
    }
    n
}

/// One request/response round trip, byte-exact.
pub fn echo_round(s: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    s.write_all(msg)?;
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got)?;
    if got != msg {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "echo differs"));
    }
    Ok(())
}
