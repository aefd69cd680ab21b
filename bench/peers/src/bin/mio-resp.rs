//! mio RESP2 server (comparison peer): a tiny in-memory key/value store that
//! speaks enough of the Redis protocol (multibulk and inline commands) for
//! `redis-benchmark -t ping,set,get`, with or without `-P`. Commands: PING,
//! ECHO, SET, GET, INCR, MSET, DEL, SELECT, QUIT, CONFIG GET (every asked
//! parameter, with an empty value), COMMAND (empty array).
//! Edge-triggered like the other mio peers: read until WouldBlock, run every
//! complete command, one write for all the replies.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::ops::Range;

const LISTENER: Token = Token(0);
const MAX_INBUF: usize = 64 << 20;
const MAX_BULK: usize = 32 << 20;
const MAX_ARGS: usize = 1 << 20;

type Store = HashMap<Vec<u8>, Vec<u8>>;

struct Conn {
    sock: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    closing: bool, // QUIT seen or protocol error: close once `out` is flushed
}

fn main() -> io::Result<()> {
    let addr = sockloop_bench_peers::addr_from_args();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    sockloop_bench_peers::announce(listener.local_addr()?);

    let mut store = Store::new();
    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut args: Vec<Range<usize>> = Vec::new();

    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
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
                            let c = Conn { sock, inbuf: Vec::new(), out: Vec::new(), closing: false };
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
            let Some(conn) = conns.get_mut(&tok) else { continue };
            if !service(conn, &mut buf, &mut args, &mut store) {
                if let Some(mut c) = conns.remove(&tok) {
                    let _ = poll.registry().deregister(&mut c.sock);
                }
            }
        }
    }
}

/// Returns false to close the connection.
fn service(conn: &mut Conn, buf: &mut [u8], args: &mut Vec<Range<usize>>, store: &mut Store) -> bool {
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
    let mut pos = 0;
    while !conn.closing {
        match parse(&conn.inbuf[pos..], args) {
            Ok(Some(used)) => {
                let cmd: Vec<&[u8]> = args.iter().map(|r| &conn.inbuf[pos + r.start..pos + r.end]).collect();
                if !cmd.is_empty() {
                    conn.closing = execute(&cmd, store, &mut conn.out);
                }
                pos += used;
            }
            Ok(None) => break,
            Err(msg) => {
                conn.out.extend_from_slice(b"-ERR Protocol error: ");
                conn.out.extend_from_slice(msg.as_bytes());
                conn.out.extend_from_slice(b"\r\n");
                conn.closing = true;
            }
        }
    }
    conn.inbuf.drain(..pos);
    if conn.inbuf.len() > MAX_INBUF {
        return false;
    }
    flush(conn) && !((eof || conn.closing) && conn.out.is_empty())
}

/// Parses one command at the start of `b` into `args` (ranges into `b`).
/// Ok(Some(bytes used)), Ok(None) if incomplete, Err on a protocol error.
fn parse(b: &[u8], args: &mut Vec<Range<usize>>) -> Result<Option<usize>, &'static str> {
    args.clear();
    if b.is_empty() {
        return Ok(None);
    }
    if b[0] != b'*' {
        // Inline command: one line, arguments split on spaces.
        let Some(nl) = b.iter().position(|&c| c == b'\n') else {
            return if b.len() > 64 * 1024 { Err("too big inline request") } else { Ok(None) };
        };
        let line_end = if nl > 0 && b[nl - 1] == b'\r' { nl - 1 } else { nl };
        let mut i = 0;
        while i < line_end {
            while i < line_end && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while i < line_end && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i > start {
                args.push(start..i);
            }
        }
        return Ok(Some(nl + 1));
    }
    let Some((n, mut pos)) = read_int_line(b, 1)? else { return Ok(None) };
    if n <= 0 {
        return Ok(Some(pos));
    }
    if n as usize > MAX_ARGS {
        return Err("invalid multibulk length");
    }
    for _ in 0..n {
        if pos >= b.len() {
            return Ok(None);
        }
        if b[pos] != b'$' {
            return Err("expected '$'");
        }
        let Some((len, p)) = read_int_line(b, pos + 1)? else { return Ok(None) };
        if len < 0 || len as usize > MAX_BULK {
            return Err("invalid bulk length");
        }
        let len = len as usize;
        if b.len() < p + len + 2 {
            return Ok(None);
        }
        if &b[p + len..p + len + 2] != b"\r\n" {
            return Err("bulk not terminated by CRLF");
        }
        args.push(p..p + len);
        pos = p + len + 2;
    }
    Ok(Some(pos))
}

/// Reads a decimal integer terminated by CRLF starting at `from`.
fn read_int_line(b: &[u8], from: usize) -> Result<Option<(i64, usize)>, &'static str> {
    let Some(cr) = b[from..].windows(2).position(|w| w == b"\r\n") else {
        return if b.len() - from > 32 { Err("bad length line") } else { Ok(None) };
    };
    let s = std::str::from_utf8(&b[from..from + cr]).map_err(|_| "bad length")?;
    let n: i64 = s.parse().map_err(|_| "bad length")?;
    Ok(Some((n, from + cr + 2)))
}

/// Runs one command, appending its reply to `out`. Returns true for QUIT.
fn execute(cmd: &[&[u8]], store: &mut Store, out: &mut Vec<u8>) -> bool {
    let name = cmd[0];
    let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
    let argc = cmd.len();
    if is("PING") {
        match argc {
            1 => out.extend_from_slice(b"+PONG\r\n"),
            2 => bulk(out, Some(cmd[1])),
            _ => arity_error(out, name),
        }
    } else if is("GET") {
        if argc != 2 {
            arity_error(out, name);
        } else {
            bulk(out, store.get(cmd[1]).map(|v| v.as_slice()));
        }
    } else if is("SET") {
        if argc < 3 {
            arity_error(out, name); // options (EX, NX, ...) are accepted and ignored
        } else {
            store.insert(cmd[1].to_vec(), cmd[2].to_vec());
            out.extend_from_slice(b"+OK\r\n");
        }
    } else if is("INCR") {
        if argc != 2 {
            arity_error(out, name);
        } else {
            let cur = match store.get(cmd[1]) {
                None => Some(0i64),
                Some(v) => std::str::from_utf8(v).ok().and_then(|s| s.parse::<i64>().ok()),
            };
            match cur.and_then(|c| c.checked_add(1)) {
                Some(n) => {
                    store.insert(cmd[1].to_vec(), n.to_string().into_bytes());
                    integer(out, n);
                }
                None => out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n"),
            }
        }
    } else if is("MSET") {
        if argc < 3 || argc % 2 == 0 {
            arity_error(out, name);
        } else {
            for kv in cmd[1..].chunks(2) {
                store.insert(kv[0].to_vec(), kv[1].to_vec());
            }
            out.extend_from_slice(b"+OK\r\n");
        }
    } else if is("DEL") {
        if argc < 2 {
            arity_error(out, name);
        } else {
            let n = cmd[1..].iter().filter(|k| store.remove(**k).is_some()).count();
            integer(out, n as i64);
        }
    } else if is("ECHO") {
        if argc != 2 {
            arity_error(out, name);
        } else {
            bulk(out, Some(cmd[1]));
        }
    } else if is("CONFIG") && argc >= 3 && cmd[1].eq_ignore_ascii_case(b"GET") {
        // Every parameter exists and is empty (redis-benchmark asks for
        // "save" and "appendonly", and warns on an empty array).
        out.extend_from_slice(format!("*{}\r\n", 2 * (argc - 2)).as_bytes());
        for p in &cmd[2..] {
            bulk(out, Some(p));
            bulk(out, Some(b""));
        }
    } else if is("CONFIG") || is("COMMAND") {
        out.extend_from_slice(b"*0\r\n");
    } else if is("SELECT") {
        out.extend_from_slice(b"+OK\r\n");
    } else if is("QUIT") {
        out.extend_from_slice(b"+OK\r\n");
        return true;
    } else {
        out.extend_from_slice(b"-ERR unknown command '");
        out.extend_from_slice(&name[..name.len().min(64)]);
        out.extend_from_slice(b"'\r\n");
    }
    false
}

fn bulk(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => out.extend_from_slice(b"$-1\r\n"),
        Some(v) => {
            out.extend_from_slice(format!("${}\r\n", v.len()).as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn integer(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(format!(":{n}\r\n").as_bytes());
}

fn arity_error(out: &mut Vec<u8>, name: &[u8]) {
    out.extend_from_slice(b"-ERR wrong number of arguments for '");
    out.extend_from_slice(&name[..name.len().min(64)]);
    out.extend_from_slice(b"' command\r\n");
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
