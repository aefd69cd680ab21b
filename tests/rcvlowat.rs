//! SO_RCVLOWAT: epoll reports a TCP socket readable only once the mark is
//! queued, and `ReadExact::set_low_water` uses that to save wake-ups on a
//! large readn.

use sockloop::io::{IoStatus, ReadExact};
use sockloop::options::SocketOptions;
use sockloop::poll::{Interest, Poller};
use sockloop::Token;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_nonblocking(true).unwrap();
    (c, s)
}

#[test]
fn epoll_reports_readable_only_once_the_low_water_mark_is_queued() {
    let (mut client, server) = pair();
    server.set_recv_low_water(100).unwrap();
    assert_eq!(server.recv_low_water().unwrap(), 100);
    let mut poller = Poller::new(8).unwrap();
    poller
        .add(server.as_fd(), Token::new(1, 0), Interest::READABLE)
        .unwrap();
    client.write_all(&[7u8; 10]).unwrap();
    // 10 bytes are queued (FIONREAD-equivalent: a peek sees them), yet no
    // readiness: the mark is 100. Bounded wait; an event here is the failure.
    let mut peek = [0u8; 16];
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.peek(&mut peek).map_or(true, |n| n < 10) {
        assert!(Instant::now() < deadline, "10 bytes never arrived");
        poller.wait(Some(Duration::from_millis(10))).unwrap();
    }
    assert_eq!(poller.wait(Some(Duration::from_millis(100))).unwrap(), 0);
    // 90 more reach the mark: now it is readable.
    client.write_all(&[7u8; 90]).unwrap();
    assert_eq!(poller.wait(Some(Duration::from_secs(5))).unwrap(), 1);
    assert!(poller.event(0).1.is_readable());
    // 0 is stored as 1 (the Linux default).
    server.set_recv_low_water(0).unwrap();
    assert_eq!(server.recv_low_water().unwrap(), 1);
    assert!(server.set_recv_low_water(usize::MAX).is_err());
}

/// Reads `total` bytes with one ReadExact driven by edge-triggered epoll;
/// returns (epoll wake-ups, advance calls).
fn readn_wakeups(total: usize, low_water: Option<usize>) -> (usize, usize) {
    let (mut client, server) = pair();
    let writer = std::thread::spawn(move || {
        let chunk = vec![0x5au8; 16 * 1024];
        let mut left = total;
        while left > 0 {
            let n = left.min(chunk.len());
            client.write_all(&chunk[..n]).unwrap();
            left -= n;
        }
        client
    });
    let mut poller = Poller::new(8).unwrap();
    poller
        .add(server.as_fd(), Token::new(1, 0), Interest::READABLE)
        .unwrap();
    let mut readn = ReadExact::new(total);
    readn.set_low_water(low_water);
    let (mut wakeups, mut advances) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        advances += 1;
        match readn.advance(server.as_fd()) {
            IoStatus::Done => break,
            IoStatus::WouldBlock => {}
            other => panic!("readn stopped: {other:?}"),
        }
        assert!(Instant::now() < deadline, "readn of {total} timed out");
        if poller.wait(Some(Duration::from_secs(5))).unwrap() > 0 {
            wakeups += 1;
        }
    }
    assert!(readn.filled().iter().all(|&b| b == 0x5a));
    // The mark is back at 1 for whatever comes next.
    assert_eq!(server.recv_low_water().unwrap(), 1);
    drop(writer.join().unwrap());
    (wakeups, advances)
}

#[test]
fn read_exact_with_low_water_wakes_less_for_a_large_read() {
    const MIB: usize = 1 << 20;
    let (plain, _) = readn_wakeups(MIB, None);
    let (lowat, _) = readn_wakeups(MIB, Some(64 * 1024));
    assert!(
        lowat < plain && lowat <= 4,
        "1 MiB readn: {lowat} wake-ups with SO_RCVLOWAT vs {plain} without"
    );
}

/// The figure for ARCHITECTURE.md: `cargo test --release --test rcvlowat --
/// --ignored --nocapture`.
#[test]
#[ignore]
fn measure_read_exact_wakeups_for_1_mib() {
    const MIB: usize = 1 << 20;
    for run in 0..5 {
        let (pw, pa) = readn_wakeups(MIB, None);
        let (lw, la) = readn_wakeups(MIB, Some(64 * 1024));
        println!(
            "run {run}: 1 MiB readn: without SO_RCVLOWAT {pw} wake-ups / {pa} advances; \
             with {lw} wake-ups / {la} advances"
        );
    }
}
