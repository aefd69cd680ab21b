//! A graceful shutdown of the http example while clients keep it busy,
//! on two loops in each balance mode: every request it received is
//! answered, the last answer on each connection says `Connection: close`,
//! and no client sees a reset or a connection that ends instead of an
//! answer. Once with our own keep-alive clients (exact), once with wrk
//! (skipped when wrk is not installed, unless SOCKLOOP_REQUIRE_CLIENTS=1).

mod common;

use common::{client, run, text, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How one keep-alive client ended.
#[derive(Debug)]
struct Ending {
    answered: usize,
    last_said_close: bool,
}

/// Sends `GET /` after `GET /` on one connection until an answer says
/// `Connection: close`, which must be followed by an orderly end of
/// stream. Reports after its first answer through `started`.
fn keep_alive_client(
    addr: std::net::SocketAddr,
    started: mpsc::Sender<()>,
) -> Result<Ending, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = 0;
    while Instant::now() < deadline {
        w.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .map_err(|e| format!("write after {answered} answers: {e}"))?;
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            let n = r
                .read_line(&mut line)
                .map_err(|e| format!("read after {answered} answers: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "connection ended instead of answer {}",
                    answered + 1
                ));
            }
            if line == "\r\n" {
                break;
            }
            head.push(line);
        }
        let mut body = [0u8; 13];
        r.read_exact(&mut body)
            .map_err(|e| format!("body of answer {}: {e}", answered + 1))?;
        if !head[0].starts_with("HTTP/1.1 200") || &body != b"Hello, World!" {
            return Err(format!("bad answer {head:?} {body:?}"));
        }
        answered += 1;
        if answered == 1 {
            let _ = started.send(());
        }
        if head
            .iter()
            .any(|l| l.eq_ignore_ascii_case("connection: close\r\n"))
        {
            let mut rest = Vec::new();
            return match r.read_to_end(&mut rest) {
                Ok(0) => Ok(Ending {
                    answered,
                    last_said_close: true,
                }),
                Ok(_) => Err(format!("bytes after the last answer: {rest:?}")),
                Err(e) => Err(format!("after the last answer: {e}")),
            };
        }
    }
    Err("the server never said Connection: close".into())
}

fn keep_alive_clients_see_every_answer(balance: &str) {
    let mut server = Server::start("http", &["--threads", "2", "--balance", balance]);
    let (started_tx, started_rx) = mpsc::channel();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let addr = server.addr;
            let tx = started_tx.clone();
            thread::spawn(move || keep_alive_client(addr, tx))
        })
        .collect();
    for _ in 0..50 {
        started_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("every client got a first answer");
    }
    let status = server
        .terminate(Duration::from_secs(20))
        .expect("the server stops within its grace");
    assert!(status.success(), "exit status {status:?}");
    let mut total = 0;
    for c in clients {
        let end = c
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("{balance}: {e}"));
        assert!(end.last_said_close);
        total += end.answered;
    }
    eprintln!("{balance}: {total} answers, each connection's last one said close");
}

#[test]
fn keep_alive_clients_see_every_answer_and_a_clean_close_reuseport() {
    keep_alive_clients_see_every_answer("reuseport");
}

#[test]
fn keep_alive_clients_see_every_answer_and_a_clean_close_exclusive() {
    keep_alive_clients_see_every_answer("exclusive");
}

#[test]
fn keep_alive_clients_see_every_answer_and_a_clean_close_handoff() {
    keep_alive_clients_see_every_answer("handoff");
}

/// The count after `kind` in wrk's `Socket errors: connect 0, read 0,
/// write 0, timeout 0` line (0 when there is no such line).
fn socket_error(report: &str, kind: &str) -> u64 {
    let Some(line) = report.lines().find(|l| l.contains("Socket errors:")) else {
        return 0;
    };
    line.split(',')
        .find_map(|part| {
            let part = part.trim().trim_start_matches("Socket errors:").trim();
            part.strip_prefix(kind)?.trim().parse().ok()
        })
        .unwrap_or(0)
}

#[test]
fn wrk_sees_no_read_error_during_a_shutdown_under_load() {
    let Some(wrk) = client("wrk") else { return };
    for balance in ["reuseport", "exclusive", "handoff"] {
        let mut server = Server::start("http", &["--threads", "2", "--balance", balance]);
        let url = format!("http://{}/", server.addr);
        let wrk = wrk.clone();
        let load = thread::spawn(move || run(30, &wrk, &["-t", "2", "-c", "50", "-d", "3s", &url]));
        // Let the load run for a while (the scenario, not a race), then
        // stop the server in the middle of it.
        thread::sleep(Duration::from_millis(1000));
        let status = server
            .terminate(Duration::from_secs(20))
            .expect("the server stops within its grace");
        assert!(status.success(), "exit status {status:?}");
        let out = load.join().unwrap();
        let (report, stderr) = text(&out);
        eprintln!("{balance}:\n{report}{stderr}");
        assert!(
            report.contains(" requests in "),
            "wrk did not report:\n{report}"
        );
        // After the listeners closed, wrk's reconnects are refused: those
        // are connect/write errors and expected. A read error would be a
        // request we received and did not answer, or a reset.
        assert_eq!(
            socket_error(&report, "read"),
            0,
            "{balance}: read errors:\n{report}"
        );
        assert_eq!(
            socket_error(&report, "timeout"),
            0,
            "{balance}: timeouts:\n{report}"
        );
        assert!(
            !report.contains("Non-2xx"),
            "{balance}: non-2xx answers:\n{report}"
        );
    }
}

#[test]
fn report_parsing() {
    let r = "  Socket errors: connect 1, read 2, write 3, timeout 4\n";
    assert_eq!(socket_error(r, "connect"), 1);
    assert_eq!(socket_error(r, "read"), 2);
    assert_eq!(socket_error(r, "write"), 3);
    assert_eq!(socket_error(r, "timeout"), 4);
    assert_eq!(socket_error("nothing", "read"), 0);
}

#[test]
fn the_shutdown_grace_is_configurable() {
    // A client holds a request head in progress, which the http handler
    // waits for during a shutdown; the grace decides how long.
    let mut server = Server::start(
        "http",
        &[
            "--threads",
            "2",
            "--shutdown-grace-ms",
            "300",
            "--head-timeout-secs",
            "0",
        ],
    );
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(); // no blank line yet
                                                            // The server has the partial head once it answers a complete request
                                                            // on another connection (requests are served in arrival order per loop
                                                            // only, so this just proves the server is up).
    let mut probe = TcpStream::connect(server.addr).unwrap();
    probe
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    let started = Instant::now();
    let status = server
        .terminate(Duration::from_secs(8))
        .expect("the server stops after its 300 ms grace, not the default 10 s");
    assert!(status.success(), "exit status {status:?}");
    // The held connection was closed at the end of the grace.
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    eprintln!("stopped {:?} after SIGTERM", started.elapsed());
}
