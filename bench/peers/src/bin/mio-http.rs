//! mio HTTP/1.1 "Hello, World!" server (comparison peer). Edge-triggered:
//! sockets registered once for READABLE | WRITABLE; on each event read until
//! WouldBlock, then answer every complete request head (`\r\n\r\n`; no
//! bodies) with one write for the whole pipelined batch. Keep-alive always.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sockloop_bench_peers::{count_http_requests, HTTP_RESPONSE};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};

const LISTENER: Token = Token(0);
const MAX_HEAD: usize = 1 << 20;

struct Conn {
    sock: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>, // responses not yet taken by the kernel
}

fn main() -> io::Result<()> {
    let addr = sockloop_bench_peers::addr_from_args();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    sockloop_bench_peers::announce(listener.local_addr()?);

    let mut conns: HashMap<Token, Conn> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];

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
                            let c = Conn { sock, inbuf: Vec::new(), out: Vec::new() };
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
            if !service(conn, &mut buf) {
                if let Some(mut c) = conns.remove(&tok) {
                    let _ = poll.registry().deregister(&mut c.sock);
                }
            }
        }
    }
}

/// Flushes queued output, reads until WouldBlock, answers the complete
/// requests with one write. Returns false to close the connection.
fn service(conn: &mut Conn, buf: &mut [u8]) -> bool {
    if !flush(conn) {
        return false;
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
    let (n, used) = count_http_requests(&conn.inbuf);
    conn.inbuf.drain(..used);
    if conn.inbuf.len() > MAX_HEAD {
        return false;
    }
    for _ in 0..n {
        conn.out.extend_from_slice(HTTP_RESPONSE);
    }
    flush(conn) && !(eof && conn.out.is_empty())
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
