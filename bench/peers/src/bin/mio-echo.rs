//! mio echo server (comparison peer). Edge-triggered as mio always is:
//! every socket is registered once for READABLE | WRITABLE, and on each
//! event we read until WouldBlock, which is mio's documented idiom.
//! Write first; queue only what the kernel did not take.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};

const LISTENER: Token = Token(0);
/// Stop reading a connection while this much echo data waits to be sent.
const MAX_PENDING: usize = 1 << 20;

struct Conn {
    sock: TcpStream,
    pending: Vec<u8>, // bytes read but not yet written back
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
                            conns.insert(tok, Conn { sock, pending: Vec::new() });
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
            // Writable (or readable after a backpressure pause): flush first.
            let alive = flush(conn) && service(conn, &mut buf);
            if !alive {
                if let Some(mut c) = conns.remove(&tok) {
                    let _ = poll.registry().deregister(&mut c.sock);
                }
            }
        }
    }
}

/// Reads until WouldBlock, echoing as it goes. Returns false to close.
fn service(conn: &mut Conn, buf: &mut [u8]) -> bool {
    while conn.pending.len() < MAX_PENDING {
        match conn.sock.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                if !conn.pending.is_empty() {
                    conn.pending.extend_from_slice(&buf[..n]);
                    continue;
                }
                match write_some(&mut conn.sock, &buf[..n]) {
                    Some(w) => conn.pending.extend_from_slice(&buf[w..n]),
                    None => return false,
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    true // paused; the next WRITABLE edge flushes and resumes reading
}

/// Writes as much of `pending` as the kernel takes. Returns false to close.
fn flush(conn: &mut Conn) -> bool {
    if conn.pending.is_empty() {
        return true;
    }
    match write_some(&mut conn.sock, &conn.pending) {
        Some(w) => {
            conn.pending.drain(..w);
            true
        }
        None => false,
    }
}

/// Writes until done or WouldBlock; Some(bytes written) or None on error.
fn write_some(sock: &mut TcpStream, data: &[u8]) -> Option<usize> {
    let mut off = 0;
    while off < data.len() {
        match sock.write(&data[off..]) {
            Ok(0) => return None,
            Ok(n) => off += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
    Some(off)
}
