//! Out of descriptors on a four-loop echo server (`--nofile 48`): new
//! connections are shed (accepted and closed) or wait in their queue,
//! every established connection on every loop keeps being served, and
//! once descriptors are free again the waiting ones and new ones are
//! served or shed, none left hanging. (With several loops a loop's spare
//! descriptor can be taken by another loop between its close and its
//! reopening: that loop then pauses accepting until descriptors free up,
//! and its queued connections wait; see RELIABILITY.md.)

mod common;

use common::Server;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

enum Outcome {
    Served(TcpStream),
    Shed,
    Waiting(TcpStream),
}

/// Asks for an echo of one byte on `s` within `wait`.
fn outcome(mut s: TcpStream, wait: Duration) -> Outcome {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(1) => Outcome::Served(s),
        Ok(_) => Outcome::Shed,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Outcome::Shed,
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
            Outcome::Waiting(s)
        }
        Err(e) => panic!("{e}"),
    }
}

fn try_serve(addr: std::net::SocketAddr, wait: Duration) -> Outcome {
    let mut s = TcpStream::connect(addr).expect("the kernel completes the handshake");
    if s.write_all(b"x").is_err() {
        return Outcome::Shed;
    }
    outcome(s, wait)
}

fn out_of_descriptors(balance: &str) {
    let server = Server::start(
        "echo",
        &["--threads", "4", "--balance", balance, "--nofile", "48"],
    );
    let mut live = Vec::new();
    let mut waiting = Vec::new();
    let mut shed = 0;
    for _ in 0..50 {
        match try_serve(server.addr, Duration::from_millis(500)) {
            Outcome::Served(s) => live.push(s),
            Outcome::Shed => shed += 1,
            Outcome::Waiting(s) => waiting.push(s),
        }
    }
    eprintln!(
        "{balance}: {} served, {shed} shed, {} waiting",
        live.len(),
        waiting.len()
    );
    assert!(shed > 0, "{balance}: the limit never tripped");
    assert!(live.len() >= 8, "{balance}: only {} served", live.len());
    // Everyone established is still served, whatever loop it is on.
    for (i, s) in live.iter_mut().enumerate() {
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b)
            .unwrap_or_else(|e| panic!("{balance}: connection {i} stalled: {e}"));
        assert_eq!(&b, b"ping");
    }
    // Free some descriptors: new connections are served again (the server
    // closes ours when it reads our FIN, so allow it a moment).
    live.truncate(live.len().saturating_sub(4 + waiting.len()));
    for s in waiting {
        // Served or shed now, not left hanging.
        if let Outcome::Waiting(_) = outcome(s, Duration::from_secs(10)) {
            panic!("{balance}: a queued connection still hangs after descriptors were freed");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Outcome::Served(mut s) = try_serve(server.addr, Duration::from_secs(10)) {
            s.write_all(b"again").unwrap();
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{balance}: no connection served after descriptors were freed"
        );
        std::thread::sleep(Duration::from_millis(20)); // retry pace
    }
    let log = server.log().join("\n");
    assert!(log.contains("out of file descriptors"), "{balance}: {log}");
}

#[test]
fn out_of_descriptors_reuseport() {
    out_of_descriptors("reuseport");
}

#[test]
fn out_of_descriptors_handoff() {
    out_of_descriptors("handoff");
}

#[test]
fn out_of_descriptors_exclusive() {
    out_of_descriptors("exclusive");
}
