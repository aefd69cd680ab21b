//! The example servers over a plain TCP socket: pipelining in one write,
//! bodies split across writes, and refusals that close the connection.

mod common;

use common::http::{mask_dates, mask_dates_str};
use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const HELLO: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, World!";

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads exactly `expected.len()` bytes and compares them (http dates
/// checked, then compared as the epoch).
fn expect(s: &mut TcpStream, expected: &str) {
    let mut got = vec![0; expected.len()];
    s.read_exact(&mut got).expect("reply");
    assert_eq!(String::from_utf8_lossy(&mask_dates(&got)), expected);
}

/// Reads until the server closes; returns what came (http dates masked).
fn read_to_close(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read to EOF");
    mask_dates_str(&String::from_utf8_lossy(&got))
}

#[test]
fn http_pipelining_bodies_and_refusals() {
    let server = Server::start("http", &[]);
    let mut s = connect(&server);
    // Three pipelined requests in one write, one of them with a body.
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nbodyHEAD / HTTP/1.1\r\n\r\n",
    )
    .unwrap();
    let not_found = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\
                     Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nNot Found\n";
    let head = &HELLO[..HELLO.len() - 13];
    expect(&mut s, &format!("{HELLO}{not_found}{head}"));
    // A body that arrives in pieces, after its answer.
    s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\nab")
        .unwrap();
    expect(
        &mut s,
        "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain\r\n\
         Content-Length: 19\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nMethod Not Allowed\n",
    );
    s.write_all(b"cdefGET / HTTP/1.1\r\n\r\n").unwrap();
    expect(&mut s, HELLO);
    // A head split in the middle of a line.
    s.write_all(b"GET / HT").unwrap();
    s.write_all(b"TP/1.1\r\n\r\n").unwrap();
    expect(&mut s, HELLO);
    // A chunked body in pieces (split inside a size line, inside data and
    // between CR and LF; separate segments, which the server may or may
    // not read apart: the fuzz target covers every split): answered once
    // it is complete, then the next pipelined request.
    s.set_nodelay(true).unwrap();
    for piece in [
        &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1"[..],
        b"0\r\n0123456789abc",
        b"def\r",
        b"\n0\r\nX-Sum: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    ] {
        s.write_all(piece).unwrap();
    }
    expect(
        &mut s,
        &format!(
            "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain\r\n\
             Content-Length: 19\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nMethod Not Allowed\n{HELLO}"
        ),
    );
    // Garbage: 400, then the server closes.
    s.write_all(b"NOT HTTP AT ALL\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        .unwrap();
    let reply = read_to_close(&mut s);
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    assert!(reply.contains("Connection: close\r\n"), "{reply}");
    assert!(!reply.contains("Hello"), "answered after a 400: {reply}");

    // HTTP/1.0 without keep-alive: answer, then close.
    let mut s = connect(&server);
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let reply = read_to_close(&mut s);
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.ends_with(
            "Connection: close\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, World!"
        ),
        "{reply}"
    );

    // A chunked body that breaks its framing: 400, then close.
    let mut s = connect(&server);
    s.write_all(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n")
        .unwrap();
    let reply = read_to_close(&mut s);
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
}

/// The server writes pipelined `GET /` answers in runs (of 8, from one
/// pre-rendered block); runs longer and shorter than that, cut by other
/// answers, by a `100 Continue` and by a refusal, still leave in request
/// order and byte for byte.
#[test]
fn http_runs_of_get_answers_keep_request_order() {
    let server = Server::start("http", &[]);
    let mut s = connect(&server);
    let get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let not_found = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\
                     Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nNot Found\n";
    let head = &HELLO[..HELLO.len() - 13];
    let (mut req, mut want) = (String::new(), String::new());
    for (gets, then) in [(11, "404"), (8, "HEAD"), (1, "404"), (17, "HEAD"), (7, "")] {
        req.push_str(&get.repeat(gets));
        want.push_str(&HELLO.repeat(gets));
        match then {
            "404" => {
                req.push_str("GET /nope HTTP/1.1\r\n\r\n");
                want.push_str(not_found);
            }
            "HEAD" => {
                req.push_str("HEAD / HTTP/1.1\r\n\r\n");
                want.push_str(head);
            }
            _ => {}
        }
    }
    s.write_all(req.as_bytes()).unwrap();
    expect(&mut s, &want);
    // A 100 Continue after a run (the body is not in this write), then the
    // answer once the body came, then a run again.
    s.write_all(
        format!(
            "{}POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            get.repeat(9)
        )
        .as_bytes(),
    )
    .unwrap();
    expect(
        &mut s,
        &format!(
            "{}HTTP/1.1 100 Continue\r\n\r\n{not_found}",
            HELLO.repeat(9)
        ),
    );
    s.write_all(format!("ok{}", get.repeat(3)).as_bytes())
        .unwrap();
    expect(&mut s, &HELLO.repeat(3));
    // A refusal after a run: the run, then the 400, then the close.
    s.write_all(format!("{}BAD\x01 / HTTP/1.1\r\n\r\n{get}", get.repeat(10)).as_bytes())
        .unwrap();
    let reply = read_to_close(&mut s);
    let run = HELLO.repeat(10);
    assert!(reply.starts_with(&run), "{reply}");
    assert!(
        reply[run.len()..].starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{reply}"
    );
    assert!(
        !reply[run.len()..].contains("Hello"),
        "answered after a 400: {reply}"
    );
}

#[test]
fn resp_pipelining_and_protocol_errors() {
    let server = Server::start("resp", &[]);
    let mut s = connect(&server);
    s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\nGET k\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*1\r\n$4\r\nPING\r\n")
        .unwrap();
    expect(&mut s, "+OK\r\n$2\r\nv1\r\n:1\r\n+PONG\r\n");
    // A command split across writes, in the middle of a bulk string.
    s.write_all(b"*2\r\n$4\r\nECHO\r\n$5\r\nhe").unwrap();
    s.write_all(b"llo\r\n").unwrap();
    expect(&mut s, "$5\r\nhello\r\n");
    s.write_all(b"NOSUCH a\r\n").unwrap();
    expect(
        &mut s,
        "-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n",
    );
    // A bulk string over 512 MiB: refused at once, then closed.
    s.write_all(b"*1\r\n$536870913\r\n").unwrap();
    assert_eq!(
        read_to_close(&mut s),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    // QUIT answers, then closes.
    let mut s = connect(&server);
    s.write_all(b"QUIT\r\nPING\r\n").unwrap();
    assert_eq!(read_to_close(&mut s), "+OK\r\n");
}

/// A head dripped one line at a time, each line well inside the idle
/// timeout, is cut by the head deadline with a 408; a complete request
/// sent slowly but within the deadline is answered, and the next head gets
/// a fresh deadline.
#[test]
fn http_head_deadline_cuts_a_dripping_client() {
    let server = Server::start(
        "http",
        &["--head-timeout-secs", "2", "--idle-timeout-secs", "30"],
    );
    // Slow but in time: two pieces 300 ms apart, then a second request
    // whose head takes 1 s (a second of margin under a loaded CI).
    let mut ok = connect(&server);
    ok.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ok.write_all(b"Host: x\r\n\r\n").unwrap();
    expect(&mut ok, HELLO);
    ok.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(1000)); // the deadline is per head
    ok.write_all(b"Host: x\r\n\r\n").unwrap();
    expect(&mut ok, HELLO);

    // Dripping: a header line every 200 ms, never ending the head.
    let mut drip = connect(&server);
    let start = std::time::Instant::now();
    drip.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut got = Vec::new();
    drip.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while start.elapsed() < Duration::from_secs(8) {
        let _ = drip.write_all(b"X-Drip: 1\r\n");
        let mut buf = [0u8; 256];
        match drip.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    let el = start.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "got {text:?}"
    );
    assert!(
        el >= Duration::from_millis(1900) && el < Duration::from_secs(6),
        "cut after {el:?}"
    );
}
