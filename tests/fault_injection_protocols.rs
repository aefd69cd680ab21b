//! The http and resp examples as child processes built with
//! `--features fault-injection` (into `target/fault-injection`, so the
//! normal example binaries are not replaced), their system calls failing
//! on purpose from `SOCKLOOP_FAULT_SEED` / `SOCKLOOP_FAULT_RATE` (EINTR,
//! EAGAIN and short counts; `src/sys/fault.rs` reads them at the first
//! wrapper call). Pipelined request batches must get byte-exact replies
//! (HTTP: the exact responses, bodies skipped under short reads; RESP:
//! SET/GET/INCR/DEL against a model), no process may panic (exit status 0
//! after SIGTERM), and no run may hang (a deadline fails the test). A
//! failure prints the seed; replay one with `SOCKLOOP_FAULT_SEED=<seed>
//! cargo test -j1 --features fault-injection --test
//! fault_injection_protocols`.
#![cfg(feature = "fault-injection")]

mod common;

use common::{Rng, Server};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
static BUILT: Mutex<bool> = Mutex::new(false);

const CONNS: usize = 8;
const ROUNDS: usize = 100;
const RATE: &str = "0.1";
const DEADLINE: Duration = Duration::from_secs(60);

/// The example `name` built with fault injection (both built once).
fn faulty_binary(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("target/fault-injection");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(manifest)
            .args(["build", "--release", "-j1", "--quiet", "--features"])
            .args(["fault-injection", "--example", "http", "--example", "resp"])
            .arg("--target-dir")
            .arg(&dir)
            .status()
            .expect("cannot run cargo");
        assert!(
            status.success(),
            "building the fault-injection examples failed"
        );
        *built = true;
    }
    dir.join("release/examples").join(name)
}

fn seeds() -> Vec<u64> {
    match std::env::var("SOCKLOOP_FAULT_SEED") {
        Ok(s) => vec![s.trim().parse().expect("SOCKLOOP_FAULT_SEED: a u64")],
        Err(_) => vec![1, 2, 3, 0xdead_beef],
    }
}

/// Prints the seed if the test panics while it is alive.
struct SeedReport(&'static str, u64);

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "FAULT INJECTION FAILED ({}) with seed {1}; replay: SOCKLOOP_FAULT_SEED={1} \
                 cargo test -j1 --features fault-injection --test fault_injection_protocols",
                self.0, self.1
            );
        }
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.set_write_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

/// Sends `req` (from another thread, so a large batch cannot deadlock
/// against our not reading yet) and checks that exactly `expect` comes
/// back.
fn exchange(s: &mut TcpStream, req: Vec<u8>, expect: &[u8]) -> io::Result<()> {
    let mut w = s.try_clone()?;
    let writer = std::thread::spawn(move || w.write_all(&req));
    let mut got = vec![0u8; expect.len()];
    let read = s.read_exact(&mut got);
    writer.join().expect("writer thread")?;
    read?;
    if common::http::date_span(expect).is_some() {
        got = common::http::mask_dates(&got); // http answers carry a Date
    }
    if got != expect {
        let at = got
            .iter()
            .zip(expect)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "reply differs at byte {at} of {}: got {:?}, expected {:?}",
                expect.len(),
                String::from_utf8_lossy(&got[at..(at + 60).min(got.len())]),
                String::from_utf8_lossy(&expect[at..(at + 60).min(expect.len())])
            ),
        ));
    }
    Ok(())
}

/// Reads to end of stream; it must come with no more bytes.
fn expect_eof(s: &mut TcpStream) -> io::Result<()> {
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    if !rest.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} unexpected bytes before EOF", rest.len()),
        ));
    }
    Ok(())
}

struct Figures {
    requests: usize,
    bytes: usize,
}

/// Runs `CONNS` clients of `script` against the faulty `name` for `seed`;
/// checks the exit status after SIGTERM.
fn run_seed(
    name: &'static str,
    seed: u64,
    script: fn(SocketAddr, u64) -> io::Result<Figures>,
) -> Figures {
    let _report = SeedReport(name, seed);
    let seed_s = seed.to_string();
    let mut server = Server::spawn(
        &faulty_binary(name),
        name,
        &["--idle-timeout-secs", "0"],
        &[
            ("SOCKLOOP_FAULT_SEED", &seed_s),
            ("SOCKLOOP_FAULT_RATE", RATE),
            ("RUST_LOG", "error"),
        ],
    );
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel();
    for c in 0..CONNS {
        let tx = tx.clone();
        let addr = server.addr;
        let cseed = seed ^ ((c as u64 + 1) << 40);
        std::thread::spawn(move || {
            let _ = tx.send((c, script(addr, cseed)));
        });
    }
    drop(tx);
    let mut total = Figures {
        requests: 0,
        bytes: 0,
    };
    for _ in 0..CONNS {
        let left = DEADLINE.saturating_sub(t0.elapsed());
        let (c, res) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{name} seed {seed}: a client hung past {DEADLINE:?}"));
        let f = res.unwrap_or_else(|e| panic!("{name} seed {seed}: client {c}: {e}"));
        total.requests += f.requests;
        total.bytes += f.bytes;
    }
    let status = server
        .terminate(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{name} seed {seed}: no exit within 10 s of SIGTERM"));
    let log = server.log();
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("sockloop fault injection: seed {seed}"))),
        "{name} seed {seed}: the plan was not enabled; log: {log:?}"
    );
    assert_eq!(
        status.code(),
        Some(0),
        "{name} seed {seed}: exit status {status:?}; log: {log:?}"
    );
    // The child's counters, printed on its way out.
    let stats = log
        .iter()
        .find_map(|l| l.strip_prefix("sockloop fault injection stats: "))
        .unwrap_or_else(|| panic!("{name} seed {seed}: no fault stats; log: {log:?}"))
        .to_string();
    let faults: u64 = stats
        .split_whitespace()
        .skip_while(|w| *w != "faults")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("fault count");
    assert!(
        faults > 100,
        "{name} seed {seed}: only {faults} faults: {stats}"
    );
    eprintln!(
        "fault injection {name}: seed {seed}, rate {RATE} each of EINTR/EAGAIN/short: {CONNS} \
         connections, {} requests, {} reply bytes byte-exact in {:?}; server {stats}; exit 0 \
         after SIGTERM",
        total.requests,
        total.bytes,
        t0.elapsed()
    );
    total
}

// ---------------------------------------------------------------- http

const HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, World!";
const HELLO_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n";
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\
Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nNot Found\n";
const NOT_ALLOWED: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n\
Content-Type: text/plain\r\nContent-Length: 19\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n\
Method Not Allowed\n";
const HELLO_10_KA: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Connection: keep-alive\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, World!";
const HELLO_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Connection: close\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, World!";

fn http_script(addr: SocketAddr, seed: u64) -> io::Result<Figures> {
    let mut rng = Rng::new(seed);
    let mut s = connect(addr)?;
    let mut f = Figures {
        requests: 0,
        bytes: 0,
    };
    for _ in 0..ROUNDS {
        let (mut req, mut expect) = (Vec::new(), Vec::new());
        for _ in 0..rng.range(1, 32) {
            match rng.range(0, 4) {
                0 => {
                    req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
                    expect.extend_from_slice(HELLO);
                }
                1 => {
                    req.extend_from_slice(b"HEAD / HTTP/1.1\r\nUser-Agent: t\r\n\r\n");
                    expect.extend_from_slice(HELLO_HEAD);
                }
                2 => {
                    req.extend_from_slice(b"GET /missing?x=1 HTTP/1.1\r\n\r\n");
                    expect.extend_from_slice(NOT_FOUND);
                }
                3 => {
                    let n = rng.range(0, 16 * 1024);
                    req.extend_from_slice(
                        format!("POST / HTTP/1.1\r\nContent-Length: {n}\r\n\r\n").as_bytes(),
                    );
                    req.extend_from_slice(&rng.bytes(n));
                    expect.extend_from_slice(NOT_ALLOWED);
                }
                _ => {
                    req.extend_from_slice(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
                    expect.extend_from_slice(HELLO_10_KA);
                }
            }
            f.requests += 1;
        }
        f.bytes += expect.len();
        exchange(&mut s, req, &expect)?;
    }
    exchange(
        &mut s,
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
        HELLO_CLOSE,
    )?;
    f.requests += 1;
    f.bytes += HELLO_CLOSE.len();
    expect_eof(&mut s)?;
    Ok(f)
}

#[test]
fn http_pipelined_replies_are_byte_exact_under_faults() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for seed in seeds() {
        run_seed("http", seed, http_script);
    }
}

// ---------------------------------------------------------------- resp

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

fn resp_script(addr: SocketAddr, seed: u64) -> io::Result<Figures> {
    let mut rng = Rng::new(seed);
    let mut s = connect(addr)?;
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut counter = 0i64;
    // Keys of this connection only: clients run concurrently.
    let prefix = format!("c{seed:x}:");
    let counter_key = format!("{prefix}counter").into_bytes();
    let mut f = Figures {
        requests: 0,
        bytes: 0,
    };
    for _ in 0..ROUNDS {
        let (mut req, mut expect) = (Vec::new(), Vec::new());
        for _ in 0..rng.range(1, 32) {
            let key = format!("{prefix}{}", rng.range(0, 7)).into_bytes();
            match rng.range(0, 4) {
                0 => {
                    let n = if rng.range(0, 9) == 0 {
                        rng.range(0, 64 * 1024)
                    } else {
                        rng.range(0, 64)
                    };
                    let value = rng.bytes(n);
                    req.extend(multibulk(&[b"SET", &key, &value]));
                    expect.extend_from_slice(b"+OK\r\n");
                    model.insert(key, value);
                }
                1 => {
                    req.extend(multibulk(&[b"GET", &key]));
                    match model.get(&key) {
                        Some(v) => expect.extend(bulk(v)),
                        None => expect.extend_from_slice(b"$-1\r\n"),
                    }
                }
                2 => {
                    req.extend(multibulk(&[b"INCR", &counter_key]));
                    counter += 1;
                    expect.extend_from_slice(format!(":{counter}\r\n").as_bytes());
                }
                3 => {
                    req.extend(multibulk(&[b"DEL", &key]));
                    let n = i32::from(model.remove(&key).is_some());
                    expect.extend_from_slice(format!(":{n}\r\n").as_bytes());
                }
                _ => {
                    req.extend_from_slice(b"PING\r\n");
                    expect.extend_from_slice(b"+PONG\r\n");
                }
            }
            f.requests += 1;
        }
        f.bytes += expect.len();
        exchange(&mut s, req, &expect)?;
    }
    exchange(&mut s, multibulk(&[b"QUIT"]), b"+OK\r\n")?;
    f.requests += 1;
    f.bytes += 5;
    expect_eof(&mut s)?;
    Ok(f)
}

#[test]
fn resp_pipelined_replies_are_byte_exact_under_faults() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for seed in seeds() {
        run_seed("resp", seed, resp_script);
    }
}
