//! Smoke test of examples/loadgen: builds the echo server and the load
//! generator (release), runs them against each other for about a second,
//! and checks the JSON line: requests > 0, no errors, no mismatches. The
//! resp and http modes run against small in-process sockloop servers, and
//! a wrong server must be caught as mismatches with a failing exit status.

use sockloop::net::TcpListener;
use sockloop::{Buffer, Context, EventLoop, LoopHandle, ServerConfig};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::OnceLock;

/// `target/release/examples`, after building both examples once.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "build",
                "--release",
                "--example",
                "echo",
                "--example",
                "loadgen",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the examples failed");
        // This test runs from <target>/debug/deps/.
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).expect("target dir").to_path_buf();
        target.join("release").join("examples")
    })
}

/// The echo server, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(examples_dir().join("echo"))
            .args(["--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn echo");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => match line.strip_prefix("listening on ") {
                    Some(a) => break a.trim().parse().expect("address"),
                    None => seen.push(line),
                },
                _ => {
                    let _ = child.kill();
                    panic!("echo exited before listening; stderr: {seen:?}");
                }
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs loadgen with `args`; returns its exit success and JSON line.
fn loadgen(args: &[&str]) -> (bool, String) {
    let out = Command::new(examples_dir().join("loadgen"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    eprintln!("loadgen {}", args.join(" "));
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "one JSON line expected");
    (out.status.success(), stdout)
}

/// The number after `"key":` in a flat JSON object (null reads as NaN).
fn field(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).unwrap_or_else(|| panic!("{key} in {json}")) + pat.len();
    let v = json[at..].split([',', '}']).next().unwrap();
    if v == "null" {
        f64::NAN
    } else {
        v.parse().unwrap_or_else(|_| panic!("{key}: {v}"))
    }
}

fn assert_clean(ok: bool, json: &str) {
    assert!(field(json, "requests") > 0.0, "{json}");
    assert_eq!(field(json, "errors"), 0.0, "{json}");
    assert_eq!(field(json, "mismatches"), 0.0, "{json}");
    assert!(ok, "loadgen exited non-zero: {json}");
}

#[test]
fn echo_under_load_for_a_second() {
    let server = Server::start();
    let pid = server.child.id().to_string();
    let addr = server.addr.to_string();
    let (ok, json) = loadgen(&[
        "--mode",
        "echo",
        "--addr",
        &addr,
        "--conns",
        "8",
        "--size",
        "64",
        "--depth",
        "4",
        "--secs",
        "1",
        "--warmup",
        "0.2",
        "--server-pid",
        &pid,
    ]);
    assert_clean(ok, &json);
    assert!(
        json.starts_with("{\"mode\":\"echo\",\"conns\":8,"),
        "{json}"
    );
    assert!(field(&json, "p50_us") > 0.0, "{json}");
    assert!(field(&json, "server_cpu_s") >= 0.0, "{json}");
}

#[test]
fn wrong_replies_are_mismatches_and_fail_the_run() {
    // The echo server sends the request back: not an HTTP response.
    let server = Server::start();
    let addr = server.addr.to_string();
    let (ok, json) = loadgen(&[
        "--mode", "http", "--addr", &addr, "--conns", "2", "--secs", "0.3", "--warmup", "0",
    ]);
    assert!(!ok, "a mismatch must fail the run: {json}");
    assert_eq!(field(&json, "mismatches"), 2.0, "{json}");
    assert!(
        field(&json, "server_cpu_s").is_nan(),
        "no --server-pid: null"
    );
}

/// A loop in a thread serving minimal HTTP (one fixed reply) and RESP
/// (PING, SET, GET) servers, stopped on drop.
struct InProcess {
    handle: LoopHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    http: SocketAddr,
    resp: SocketAddr,
}

const HTTP_REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// One RESP array of bulk strings from the front of `b`, and its length.
fn parse_resp(b: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    fn line(b: &[u8], at: usize) -> Option<(usize, usize)> {
        let end = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&b[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    }
    if b.first() != Some(&b'*') {
        return None;
    }
    let (n, mut at) = line(b, 0)?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, start) = line(b, at)?;
        if b.len() < start + len + 2 {
            return None;
        }
        args.push(b[start..start + len].to_vec());
        at = start + len + 2;
    }
    Some((args, at))
}

impl InProcess {
    fn start() -> InProcess {
        let http = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let resp = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (http_addr, resp_addr) = (http.local_addr().unwrap(), resp.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut ev = EventLoop::new().unwrap();
            tx.send(ev.handle()).unwrap();
            ev.listen(http, ServerConfig::default(), |_| {
                Box::new(|ctx: &mut Context<'_>, input: &mut Buffer| {
                    while let Some(end) = input.find(b"\r\n\r\n") {
                        input.consume(end + 4);
                        let _ = ctx.write(HTTP_REPLY);
                    }
                })
            })
            .unwrap();
            let store: Rc<RefCell<HashMap<Vec<u8>, Vec<u8>>>> = Rc::default();
            ev.listen(resp, ServerConfig::default(), move |_| {
                let store = store.clone();
                Box::new(move |ctx: &mut Context<'_>, input: &mut Buffer| {
                    while let Some((args, used)) = parse_resp(input.as_slice()) {
                        input.consume(used);
                        let mut db = store.borrow_mut();
                        let reply = match args.first().map(|c| c.to_ascii_uppercase()) {
                            Some(c) if c == b"PING" => b"+PONG\r\n".to_vec(),
                            Some(c) if c == b"SET" && args.len() == 3 => {
                                db.insert(args[1].clone(), args[2].clone());
                                b"+OK\r\n".to_vec()
                            }
                            Some(c) if c == b"GET" && args.len() == 2 => match db.get(&args[1]) {
                                Some(v) => {
                                    let mut r = format!("${}\r\n", v.len()).into_bytes();
                                    r.extend_from_slice(v);
                                    r.extend_from_slice(b"\r\n");
                                    r
                                }
                                None => b"$-1\r\n".to_vec(),
                            },
                            _ => b"-ERR unknown command\r\n".to_vec(),
                        };
                        let _ = ctx.write(&reply);
                    }
                })
            })
            .unwrap();
            ev.run().unwrap();
        });
        InProcess {
            handle: rx.recv().unwrap(),
            thread: Some(thread),
            http: http_addr,
            resp: resp_addr,
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn http_and_resp_modes_check_correct_servers_clean() {
    let servers = InProcess::start();
    let http = servers.http.to_string();
    let resp = servers.resp.to_string();
    let common = [
        "--conns", "4", "--depth", "8", "--secs", "0.5", "--warmup", "0.1",
    ];
    let runs: [&[&str]; 3] = [
        &["--mode", "http", "--addr", &http],
        &["--mode", "resp", "--addr", &resp, "--size", "100"],
        &["--mode", "resp", "--resp", "ping", "--addr", &resp],
    ];
    for run in runs {
        let args: Vec<&str> = run.iter().chain(common.iter()).copied().collect();
        let (ok, json) = loadgen(&args);
        assert_clean(ok, &json);
    }
}
