//! Stress tests of the protocol examples (examples/http.rs and
//! examples/resp.rs) as child processes: slowloris against their idle
//! timeout, and pipelined floods that never read, with the server's RSS
//! read from /proc/PID. Each test prints its figures on stderr
//! (`-- --nocapture`); RELIABILITY.md collects them. The tests run one at
//! a time (a lock), so that one's load does not skew another's figures.

mod common;

use common::{status_kib, Server};
use sockloop::sys;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let _ = sys::rlimit::raise_nofile_to_hard();
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

const HTTP_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
const HTTP_HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, World!";
const RESP_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const RESP_PONG: &[u8] = b"+PONG\r\n";

/// One request and its exact reply.
fn round(s: &mut TcpStream, req: &[u8], reply: &[u8]) -> io::Result<()> {
    s.write_all(req)?;
    let mut got = vec![0u8; reply.len()];
    s.read_exact(&mut got)?;
    if common::http::mask_dates(&got) != reply {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "wrong reply"));
    }
    Ok(())
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn latencies(addr: SocketAddr, rounds: usize, req: &[u8], reply: &[u8]) -> Vec<Duration> {
    let mut s = connect(addr);
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            round(&mut s, req, reply).expect("well-behaved round trip");
            t.elapsed()
        })
        .collect()
}

/// Round trips until `until`, at least `min` of them.
fn latencies_until(
    addr: SocketAddr,
    until: Instant,
    min: usize,
    req: &[u8],
    reply: &[u8],
) -> Vec<Duration> {
    let mut s = connect(addr);
    let mut v = Vec::new();
    while v.len() < min || Instant::now() < until {
        let t = Instant::now();
        round(&mut s, req, reply).expect("well-behaved round trip");
        v.push(t.elapsed());
    }
    v
}

// ------------------------------------------------------------ slowloris

/// `SLOW` connections send `head` (a request that is not complete), then
/// one more byte of `dribble` every 2 s (slower than the 1 s idle
/// timeout), while a well-behaved client measures its latency.
fn slowloris(name: &str, head: &[u8], dribble: u8, req: &[u8], reply: &[u8]) {
    let _g = serial();
    const SLOW: usize = 300;
    let idle = Duration::from_secs(1);
    let server = Server::start(name, &["--idle-timeout-secs", "1"]);
    // Warm-up (the listener is registered once a request is answered).
    latencies(server.addr, 10, req, reply);
    let base = p99(latencies(server.addr, 2000, req, reply));
    let stop = Arc::new(AtomicBool::new(false));
    let mut slow: Vec<TcpStream> = (0..SLOW).map(|_| connect(server.addr)).collect();
    let started = Instant::now();
    for s in &mut slow {
        s.write_all(head).expect("head");
    }
    let dribbler = {
        let mut clones: Vec<TcpStream> =
            slow.iter().map(|s| s.try_clone().expect("clone")).collect();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(2)); // the slow pace
                for s in &mut clones {
                    let _ = s.write(&[dribble]); // may already be closed
                }
            }
        })
    };
    // Every slow connection is closed by the server without an answer:
    // end of stream (or a reset, if a dribbled byte crossed the close).
    // Watched from another thread, so the close times are when they
    // happen.
    let watcher = {
        let name = name.to_string();
        std::thread::spawn(move || {
            let mut closed = 0;
            let mut answered = 0;
            let mut latest = Duration::ZERO;
            for s in &mut slow {
                let mut buf = [0u8; 256];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => answered += n,
                        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                        Err(e) => panic!("{name}: slow connection not closed: {e}"),
                    }
                }
                closed += 1;
                latest = latest.max(started.elapsed());
            }
            (closed, answered, latest)
        })
    };
    // Measured while the slow connections are held and while the idle
    // timeout cuts them (at ~1 s).
    let loaded = latencies_until(server.addr, started + idle * 3 / 2, 2000, req, reply);
    let loaded_rounds = loaded.len();
    let loaded = p99(loaded);
    let (closed, answered, latest) = watcher.join().expect("watcher");
    stop.store(true, Ordering::Relaxed);
    dribbler.join().expect("dribbler");
    // The server is still fine afterwards.
    let after = p99(latencies(server.addr, 200, req, reply));
    eprintln!(
        "{name} slowloris: {SLOW} incomplete requests dribbled at 1 byte / 2 s; well-behaved p99 \
         {base:?} alone, {loaded:?} alongside ({loaded_rounds} rounds over the first 1.5 s), \
         {after:?} after; {closed} closed by the {idle:?} \
         idle timeout ({answered} bytes answered to them), the last after {latest:?}"
    );
    assert_eq!(closed, SLOW);
    assert_eq!(answered, 0, "an incomplete request was answered");
    assert!(
        latest < idle + Duration::from_secs(4),
        "slow connections lingered {latest:?}"
    );
    // 2x, with 1 ms of allowance for scheduling noise on a shared machine.
    assert!(
        loaded <= base * 2 + Duration::from_millis(1),
        "p99 went from {base:?} to {loaded:?}"
    );
}

#[test]
fn http_slowloris_heads_are_cut_by_idle_timeout() {
    slowloris(
        "http",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        b'a',
        HTTP_GET,
        HTTP_HELLO,
    );
}

#[test]
fn resp_slowloris_commands_are_cut_by_idle_timeout() {
    slowloris(
        "resp",
        b"*3\r\n$3\r\nSET\r\n$4\r\nslow\r\n$100000\r\n",
        b'v',
        RESP_PING,
        RESP_PONG,
    );
}

// ---------------------------------------------------------------- flood

/// Receive queue (bytes the kernel holds unread) of the server's
/// connected sockets on `port`, from /proc/net/tcp{,6}.
fn server_rx_queue(port: u16) -> u64 {
    let mut total = 0;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let s = std::fs::read_to_string(file).unwrap_or_default();
        for line in s.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 || f[3] != "01" {
                continue; // not ESTABLISHED
            }
            let local = f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local == Some(port) {
                total += f[4]
                    .split_once(':')
                    .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

#[derive(Debug, PartialEq, Eq)]
enum FloodEnd {
    /// Every reply arrived, byte-exact, once the client read.
    ServedAll,
    /// The connection was cut after a byte-exact prefix of the replies.
    Cut,
}

struct FloodFigures {
    stalled_at: u64,
    writer_done: bool,
    rx_queue: u64,
    rss_base: u64,
    rss_max: u64,
    replies: u64,
    end: FloodEnd,
}

/// Writes `count` pipelined `req` without reading until the writes stall
/// (the server stopped reading), then reads: every reply must be `reply`.
fn flood(name: &str, args: &[&str], req: &[u8], reply: &[u8], count: usize) -> FloodFigures {
    let server = Server::start(name, args);
    let pid = server.pid();
    let mut s = connect(server.addr);
    round(&mut s, req, reply).expect("warm-up");
    let rss_base = status_kib(pid, "VmRSS");
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let total = (req.len() * count) as u64;
    let writer = {
        let mut w = s.try_clone().expect("clone");
        let (sent, done) = (sent.clone(), done.clone());
        let chunk: Vec<u8> = req.repeat((64 * 1024) / req.len());
        std::thread::spawn(move || -> io::Result<()> {
            w.set_write_timeout(Some(Duration::from_secs(60)))?;
            let res = (|| {
                let mut left = total as usize;
                while left > 0 {
                    let n = left.min(chunk.len());
                    w.write_all(&chunk[..n])?;
                    left -= n;
                    sent.fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(())
            })();
            done.store(true, Ordering::Release);
            res
        })
    };
    // Phase 1: no reading until the writer has made no progress for 1 s.
    let mut rss_max = rss_base;
    let mut last = (0, Instant::now());
    let t0 = Instant::now();
    while !done.load(Ordering::Acquire) {
        rss_max = rss_max.max(status_kib(pid, "VmRSS"));
        let now = sent.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(1) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name}: phase 1 hung"
        );
        std::thread::sleep(Duration::from_millis(20)); // sampling pace
    }
    let stalled_at = sent.load(Ordering::Relaxed);
    let writer_done = done.load(Ordering::Acquire);
    // The server has stopped reading: bytes wait unread in its socket and
    // their number no longer changes. (A small flood can fit whole into
    // the kernel's buffers, so the writer need not have stalled.)
    let mut rx_queue = server_rx_queue(server.port());
    loop {
        std::thread::sleep(Duration::from_millis(500)); // sampling pace
        rss_max = rss_max.max(status_kib(pid, "VmRSS"));
        let now = server_rx_queue(server.port());
        if now == rx_queue {
            break;
        }
        rx_queue = now;
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{name}: still reading"
        );
    }
    assert!(
        rx_queue > 0,
        "{name}: the server read all {stalled_at} bytes sent without a reply read: \
         no backpressure"
    );
    // Phase 2: read every reply (byte-exact) while the writer finishes,
    // or until the server cuts the connection.
    let peak = Arc::new(AtomicU64::new(rss_max));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(status_kib(pid, "VmRSS"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20)); // sampling pace
            }
        })
    };
    let expect_len = (reply.len() * count) as u64;
    // An http date changes from second to second: its bytes are checked
    // for digits where the template has digits, the rest byte for byte.
    let date = common::http::date_span(reply).unwrap_or(0..0);
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let end = loop {
        if got == expect_len {
            break FloodEnd::ServedAll;
        }
        match s.read(&mut buf) {
            Ok(0) => break FloodEnd::Cut,
            Ok(n) => {
                for (i, &b) in buf[..n].iter().enumerate() {
                    let at = (got + i as u64) % reply.len() as u64;
                    let want = reply[at as usize];
                    if date.contains(&(at as usize)) && want.is_ascii_digit() {
                        assert!(b.is_ascii_digit(), "{name}: date byte {}", got + i as u64);
                        continue;
                    }
                    if date.contains(&(at as usize)) && want.is_ascii_alphabetic() {
                        assert!(
                            b.is_ascii_alphabetic(),
                            "{name}: date byte {}",
                            got + i as u64
                        );
                        continue;
                    }
                    assert_eq!(
                        b,
                        reply[at as usize],
                        "{name}: reply byte {}",
                        got + i as u64
                    );
                }
                got += n as u64;
                assert!(got <= expect_len, "{name}: more replies than requests");
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break FloodEnd::Cut,
            Err(e) => panic!("{name}: reading replies: {e} after {got} bytes"),
        }
    };
    let res = writer.join().expect("writer");
    sampling.store(false, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let rss_max = rss_max.max(peak.load(Ordering::Relaxed));
    if end == FloodEnd::ServedAll {
        res.expect("writer failed although every reply arrived");
    }
    FloodFigures {
        stalled_at,
        writer_done,
        rx_queue,
        rss_base,
        rss_max,
        replies: got / reply.len() as u64,
        end,
    }
}

fn report(name: &str, what: &str, count: usize, f: &FloodFigures, bound_kib: u64) {
    eprintln!(
        "{name} flood: {count} pipelined {what}, no reading: {} bytes written (all: {}) \
         and the server stopped reading with {} bytes unread in its socket; then {} replies read byte-exact, end: \
         {:?}; server VmRSS {} KiB -> max {} KiB (bound +{bound_kib} KiB)",
        f.stalled_at, f.writer_done, f.rx_queue, f.replies, f.end, f.rss_base, f.rss_max
    );
}

#[test]
fn resp_million_pipelined_pings_backpressure_then_all_served_with_bounded_rss() {
    let _g = serial();
    const COUNT: usize = 1_000_000;
    const BOUND_KIB: u64 = 8 * 1024;
    let inline = flood("resp", &[], b"PING\r\n", RESP_PONG, COUNT);
    report("resp", "inline PINGs", COUNT, &inline, BOUND_KIB);
    let multi = flood("resp", &[], RESP_PING, RESP_PONG, COUNT);
    report("resp", "multibulk PINGs", COUNT, &multi, BOUND_KIB);
    for f in [&inline, &multi] {
        // The output limit (4 x 64 MiB) is far: everything is served.
        assert_eq!(f.end, FloodEnd::ServedAll);
        assert_eq!(f.replies, COUNT as u64);
        assert!(f.rx_queue > 0, "the server was still reading");
        assert!(
            f.rss_max <= f.rss_base + BOUND_KIB,
            "RSS grew from {} to {} KiB",
            f.rss_base,
            f.rss_max
        );
    }
}

#[test]
fn http_million_pipelined_gets_backpressure_then_all_served_with_bounded_rss() {
    let _g = serial();
    const COUNT: usize = 1_000_000;
    const BOUND_KIB: u64 = 8 * 1024;
    let f = flood("http", &[], HTTP_GET, HTTP_HELLO, COUNT);
    report("http", "GETs", COUNT, &f, BOUND_KIB);
    assert_eq!(f.end, FloodEnd::ServedAll);
    assert_eq!(f.replies, COUNT as u64);
    assert!(f.rx_queue > 0, "the server was still reading");
    assert!(
        f.rss_max <= f.rss_base + BOUND_KIB,
        "RSS grew from {} to {} KiB",
        f.rss_base,
        f.rss_max
    );
}
