//! Other sockets on the same loop: a UDP socket watched by the loop, and a
//! Unix-domain stream server on the same connection API as TCP.

use sockloop::net::{UdpSocket, UnixListener};
use sockloop::poll::Interest;
use sockloop::{Buffer, Context, EventLoop, Handler, ServerConfig};
use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn udp_echo_through_a_watched_socket() {
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().unwrap();
        let sock = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        tx.send((sock.local_addr().unwrap(), ev.handle())).unwrap();
        let mut buf = vec![0u8; 65536];
        ev.watch(sock, Interest::READABLE, move |s, _ctx, _r| loop {
            match s.recv_from(&mut buf) {
                Ok(d) if !d.truncated => {
                    let _ = s.send_to(&buf[..d.len], d.from);
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        })
        .unwrap();
        ev.run().unwrap();
    });
    let (addr, handle) = rx.recv().unwrap();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for size in [1usize, 512, 9000, 65_507] {
        let msg: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        client.send_to(&msg, addr).unwrap();
        let mut back = vec![0u8; 65_536];
        let (n, from) = client.recv_from(&mut back).unwrap();
        assert_eq!(from, addr);
        assert_eq!(&back[..n], &msg[..], "datagram of {size} bytes");
    }
    handle.stop().unwrap();
    join.join().unwrap();
}

struct Upper;

impl Handler for Upper {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        let up = input.as_slice().to_ascii_uppercase();
        input.clear();
        let _ = ctx.write(&up);
    }
}

#[test]
fn unix_stream_server_on_the_connection_api() {
    let dir = std::env::temp_dir().join(format!("sockloop-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("upper.sock");
    let p2 = path.clone();
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().unwrap();
        let l = UnixListener::bind(&p2).unwrap();
        ev.listen(l, ServerConfig::default(), |_| Box::new(Upper))
            .unwrap();
        tx.send(ev.handle()).unwrap();
        ev.run().unwrap();
    });
    let handle = rx.recv().unwrap();
    let mut s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"hello unix").unwrap();
    let mut back = [0u8; 10];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"HELLO UNIX");
    handle.stop().unwrap();
    join.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
