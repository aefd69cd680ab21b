//! mio HTTP/1.1 server that does the work sockloop's `http` example does
//! (comparison peer): every request parsed with httparse, `Content-Length`
//! bodies skipped, keep-alive rules (HTTP/1.1 unless `Connection: close`,
//! HTTP/1.0 only with `Connection: keep-alive`), `GET /` 200, `HEAD /`
//! 200 without body, other methods on `/` 405, other paths 404, 400 (and
//! close) for a malformed head, 431 for one over 8 KiB, 413 for a body
//! over 1 MiB, 501 for a Transfer-Encoding; every answer carries `Date`,
//! formatted once per second (httpdate) from a clock read once per
//! wake-up. Edge-triggered like `mio-http`: read until WouldBlock, answer
//! the whole pipelined batch with one write.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::mem::MaybeUninit;
use std::time::{Duration, Instant, SystemTime};

const LISTENER: Token = Token(0);
const MAX_HEAD: usize = 8 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const MAX_HEADERS: usize = 64;

struct Conn {
    sock: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>, // answers not yet taken by the kernel
    skip: usize,  // body bytes still to discard
    closing: bool,
}

const HELLO_PRE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: ";
const HELLO_POST: &[u8] = b"\r\n\r\nHello, World!";

/// The `Date` value, and the whole `GET /` answer with it, re-rendered
/// when a second has passed (as sockloop's example does).
struct DateCache {
    text: [u8; 29],
    hello: Vec<u8>,
    stale_at: Instant,
}

impl DateCache {
    fn refresh(&mut self, now: Instant) {
        if now >= self.stale_at {
            let wall = SystemTime::now();
            let s = httpdate::fmt_http_date(wall);
            self.text.copy_from_slice(&s.as_bytes()[..29]);
            self.hello.clear();
            self.hello.extend_from_slice(HELLO_PRE);
            self.hello.extend_from_slice(&self.text);
            self.hello.extend_from_slice(HELLO_POST);
            let sub = wall
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos();
            self.stale_at = now + Duration::from_secs(1) - Duration::from_nanos(sub.into());
        }
    }
}

fn main() -> io::Result<()> {
    let addr = sockloop_bench_peers::addr_from_args();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    sockloop_bench_peers::announce(listener.local_addr()?);

    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut date = DateCache {
        text: [b' '; 29],
        hello: Vec::new(),
        stale_at: Instant::now(),
    };

    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        date.refresh(Instant::now());
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut sock, _)) => {
                            let _ = sock.set_nodelay(true);
                            let tok = Token(next);
                            next += 1;
                            poll.registry().register(
                                &mut sock,
                                tok,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            let c = Conn {
                                sock,
                                inbuf: Vec::new(),
                                out: Vec::new(),
                                skip: 0,
                                closing: false,
                            };
                            conns.insert(tok, c);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => {
                            eprintln!("accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let tok = ev.token();
            let Some(conn) = conns.get_mut(&tok) else {
                continue;
            };
            if !service(conn, &mut buf, &date) {
                if let Some(mut c) = conns.remove(&tok) {
                    let _ = poll.registry().deregister(&mut c.sock);
                }
            }
        }
    }
}

/// Flushes queued output, reads until WouldBlock, answers the complete
/// requests with one write. Returns false to close the connection.
fn service(conn: &mut Conn, buf: &mut [u8], date: &DateCache) -> bool {
    if !flush(conn) {
        return false;
    }
    if conn.closing {
        return !conn.out.is_empty();
    }
    let mut eof = false; // peer half-closed: answer what it sent, then close
    while !eof {
        match conn.sock.read(buf) {
            Ok(0) => eof = true,
            Ok(n) => conn.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    let Conn {
        inbuf,
        out,
        skip,
        closing,
        ..
    } = conn;
    let used = answer_all(inbuf, out, skip, closing, date);
    conn.inbuf.drain(..used);
    flush(conn) && !((eof || conn.closing) && conn.out.is_empty())
}

/// Answers every complete request at the front of `input` into `out`;
/// returns the bytes consumed.
fn answer_all(
    input: &[u8],
    out: &mut Vec<u8>,
    skip: &mut usize,
    closing: &mut bool,
    cache: &DateCache,
) -> usize {
    let date = &cache.text;
    let mut pos = 0;
    while pos < input.len() {
        if *skip > 0 {
            let n = (*skip).min(input.len() - pos);
            *skip -= n;
            pos += n;
            continue;
        }
        let window = &input[pos..input.len().min(pos + MAX_HEAD)];
        let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let n = match req.parse_with_uninit_headers(window, &mut headers) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if window.len() < MAX_HEAD => break,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                refuse(out, closing, b"431 Request Header Fields Too Large", date);
                return input.len();
            }
            Err(httparse::Error::Version) => {
                refuse(out, closing, b"505 HTTP Version Not Supported", date);
                return input.len();
            }
            Err(_) => {
                refuse(out, closing, b"400 Bad Request", date);
                return input.len();
            }
        };
        pos += n;
        let http11 = req.version == Some(1);
        let (mut close, mut keep) = (false, false);
        let mut length = 0usize;
        for h in req.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(n) => length = n,
                    None => {
                        refuse(out, closing, b"400 Bad Request", date);
                        return input.len();
                    }
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                refuse(out, closing, b"501 Not Implemented", date);
                return input.len();
            } else if h.name.eq_ignore_ascii_case("connection") {
                for t in h.value.split(|&b| b == b',') {
                    let t = t.trim_ascii();
                    close |= t.eq_ignore_ascii_case(b"close");
                    keep |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        if length > MAX_BODY {
            refuse(out, closing, b"413 Payload Too Large", date);
            return input.len();
        }
        *skip = length;
        let keep_alive = if http11 { !close } else { keep && !close };
        let path = req.path.unwrap_or("/");
        let path = path.split('?').next().unwrap_or(path);
        let method = req.method.unwrap_or("");
        if path == "/" && method == "GET" && http11 && keep_alive {
            out.extend_from_slice(&cache.hello); // the hot path: one copy
            continue;
        }
        let (status, body): (&[u8], &[u8]) = match (path, method) {
            ("/", "GET") => (b"200 OK", b"Hello, World!"),
            ("/", "HEAD") => (b"200 OK", b""),
            ("/", _) => (b"405 Method Not Allowed", b"Method Not Allowed\n"),
            _ => (b"404 Not Found", b"Not Found\n"),
        };
        let len: &[u8] = if status == b"200 OK" {
            b"13"
        } else if body.len() == 10 {
            b"10"
        } else {
            b"19"
        };
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status);
        out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
        out.extend_from_slice(len);
        out.extend_from_slice(match (http11, keep_alive) {
            (true, true) => b"\r\n",
            (false, true) => b"\r\nConnection: keep-alive\r\n",
            (_, false) => b"\r\nConnection: close\r\n",
        });
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        if !keep_alive {
            *closing = true;
            return input.len();
        }
    }
    pos
}

/// Queues an error answer; the connection closes once it is out.
fn refuse(out: &mut Vec<u8>, closing: &mut bool, status: &[u8], date: &[u8; 29]) {
    let reason = &status[4..];
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status);
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.extend_from_slice((reason.len() + 1).to_string().as_bytes());
    out.extend_from_slice(b"\r\nConnection: close\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\n");
    *closing = true;
}

/// Writes until done or WouldBlock (the rest waits for the next WRITABLE edge).
fn flush(conn: &mut Conn) -> bool {
    let mut off = 0;
    while off < conn.out.len() {
        match conn.sock.write(&conn.out[off..]) {
            Ok(0) => return false,
            Ok(n) => off += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    conn.out.drain(..off);
    true
}
