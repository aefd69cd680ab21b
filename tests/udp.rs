//! UdpSocket over loopback: round trips, truncation, size limits, connected
//! mode, non-blocking behaviour and conversions.

use sockloop::net::udp::{UdpSocket, MAX_PAYLOAD_V4, MAX_PAYLOAD_V6};
use sockloop::options::SocketOptions;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::{Duration, Instant};

fn lo() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Non-blocking receive with a deadline: loopback delivery is fast but not
/// synchronous with `send_to`.
fn recv_soon<T>(mut f: impl FnMut() -> std::io::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match f() {
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other.expect("receive"),
        }
    }
}

fn ipv6_pair() -> Option<(UdpSocket, UdpSocket)> {
    let addr: SocketAddr = "[::1]:0".parse().unwrap();
    match (UdpSocket::bind(addr), UdpSocket::bind(addr)) {
        (Ok(a), Ok(b)) => Some((a, b)),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipping IPv6 part: {e}");
            None
        }
    }
}

#[test]
fn round_trip_reports_length_and_sender() {
    let a = UdpSocket::bind(lo()).unwrap();
    let b = UdpSocket::bind(lo()).unwrap();
    assert!(a.is_nonblocking().unwrap());
    assert_eq!(a.send_to(b"hello", b.local_addr().unwrap()).unwrap(), 5);
    let mut buf = [0u8; 64];
    let d = recv_soon(|| b.recv_from(&mut buf));
    assert_eq!(&buf[..d.len], b"hello");
    assert_eq!((d.len, d.full_len, d.truncated), (5, 5, false));
    assert_eq!(d.from, a.local_addr().unwrap());

    // Datagram boundaries are kept: two sends, two receives.
    a.send_to(b"one", b.local_addr().unwrap()).unwrap();
    a.send_to(b"two!", b.local_addr().unwrap()).unwrap();
    assert_eq!(recv_soon(|| b.recv_from(&mut buf)).len, 3);
    assert_eq!(recv_soon(|| b.recv_from(&mut buf)).len, 4);

    // An empty datagram is a datagram, not EOF.
    a.send_to(b"", b.local_addr().unwrap()).unwrap();
    let d = recv_soon(|| b.recv_from(&mut buf));
    assert_eq!((d.len, d.truncated), (0, false));
}

#[test]
fn truncation_is_detected_and_the_rest_is_lost() {
    let a = UdpSocket::bind(lo()).unwrap();
    let b = UdpSocket::bind(lo()).unwrap();
    let to = b.local_addr().unwrap();
    a.send_to(b"0123456789", to).unwrap();
    a.send_to(b"next", to).unwrap();

    let mut small = [0u8; 4];
    let d = recv_soon(|| b.recv_from(&mut small));
    assert!(d.truncated);
    assert_eq!(
        (d.len, d.full_len),
        (4, 10),
        "MSG_TRUNC gives the real size"
    );
    assert_eq!(&small, b"0123");

    // The tail was discarded: the next read is the next datagram.
    let d = recv_soon(|| b.recv_from(&mut small));
    assert_eq!((d.len, d.full_len, d.truncated), (4, 4, false));
    assert_eq!(&small, b"next");

    // A buffer of exactly the datagram's size is not truncation.
    a.send_to(b"four", to).unwrap();
    assert!(!recv_soon(|| b.recv_from(&mut small)).truncated);
}

#[test]
fn oversize_datagrams_are_rejected_before_the_syscall() {
    let a = UdpSocket::bind(lo()).unwrap();
    let b = UdpSocket::bind(lo()).unwrap();
    let to = b.local_addr().unwrap();
    let big = vec![7u8; MAX_PAYLOAD_V6 + 1];

    let err = a.send_to(&big[..MAX_PAYLOAD_V4 + 1], to).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("65507"), "{err}");

    // The largest IPv4 datagram goes through loopback whole.
    b.set_recv_buffer_size(1 << 20).unwrap();
    assert_eq!(
        a.send_to(&big[..MAX_PAYLOAD_V4], to).unwrap(),
        MAX_PAYLOAD_V4
    );
    let mut buf = vec![0u8; 70_000];
    let d = recv_soon(|| b.recv_from(&mut buf));
    assert_eq!((d.len, d.truncated), (MAX_PAYLOAD_V4, false));

    // v4-mapped IPv6 destinations carry IPv4 datagrams: same limit.
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{}", to.port()).parse().unwrap();
    assert_eq!(
        a.send_to(&big[..MAX_PAYLOAD_V4 + 1], mapped)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );

    if let Some((x, y)) = ipv6_pair() {
        let to6 = y.local_addr().unwrap();
        let err = x.send_to(&big, to6).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("65527"), "{err}");
        y.set_recv_buffer_size(1 << 20).unwrap();
        assert_eq!(
            x.send_to(&big[..MAX_PAYLOAD_V6], to6).unwrap(),
            MAX_PAYLOAD_V6,
            "IPv6 allows 20 bytes more than IPv4"
        );
        let d = recv_soon(|| y.recv_from(&mut buf));
        assert_eq!((d.len, d.truncated), (MAX_PAYLOAD_V6, false));
    }

    // Connected send: no datagram of any family may exceed the IPv6 limit.
    a.connect(to).unwrap();
    assert_eq!(a.send(&big).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn connected_mode_sends_receives_and_filters() {
    let a = UdpSocket::bind(lo()).unwrap();
    let b = UdpSocket::bind(lo()).unwrap();
    let stranger = UdpSocket::bind(lo()).unwrap();
    assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());

    // Only the connected peer's datagrams are accepted.
    stranger.send_to(b"spam", a.local_addr().unwrap()).unwrap();
    assert_eq!(b.send(b"ping").unwrap(), 4);
    let mut buf = [0u8; 16];
    let r = recv_soon(|| a.recv(&mut buf));
    assert_eq!((&buf[..r.len], r.truncated), (&b"ping"[..], false));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        a.recv(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "the stranger's datagram was dropped"
    );

    // recv detects truncation too.
    a.send(b"a longer reply").unwrap();
    let mut small = [0u8; 3];
    let r = recv_soon(|| b.recv(&mut small));
    assert_eq!((r.len, r.full_len, r.truncated), (3, 14, true));
}

#[test]
fn connected_send_to_a_closed_port_reports_refused() {
    let closed = UdpSocket::bind(lo()).unwrap();
    let gone = closed.local_addr().unwrap();
    drop(closed);
    let a = UdpSocket::bind(lo()).unwrap();
    a.connect(gone).unwrap();
    a.send(b"hello?").unwrap();
    let mut buf = [0u8; 8];
    let deadline = Instant::now() + Duration::from_secs(2);
    let err = loop {
        match a.recv(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => break e,
            Ok(r) => panic!("received {r:?}"),
        }
    };
    assert_eq!(
        err.kind(),
        ErrorKind::ConnectionRefused,
        "ICMP port unreachable"
    );
}

#[test]
fn empty_socket_would_block_at_once() {
    let a = UdpSocket::bind(lo()).unwrap();
    let mut buf = [0u8; 8];
    let start = Instant::now();
    assert_eq!(
        a.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert_eq!(a.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() < Duration::from_millis(100));
}

#[test]
fn std_and_raw_fd_conversions() {
    // from_std switches the (blocking) std socket to non-blocking.
    let std_sock = std::net::UdpSocket::bind(lo()).unwrap();
    assert!(!std_sock.is_nonblocking().unwrap());
    let ours = UdpSocket::from_std(std_sock).unwrap();
    assert!(ours.is_nonblocking().unwrap());
    let addr = ours.local_addr().unwrap();

    // Into std and back through a raw fd keeps the same socket.
    let std_again: std::net::UdpSocket = ours.into();
    assert_eq!(std_again.local_addr().unwrap(), addr);
    let back = UdpSocket::from(OwnedFd::from(std_again));
    assert_eq!(back.local_addr().unwrap(), addr);
    let expected = back.as_raw_fd();
    // The descriptor is released, not closed (it stays open until the test
    // process exits: taking it back with `from_raw_fd` needs `unsafe`, which
    // this project keeps inside src/sys).
    assert_eq!(back.into_raw_fd(), expected);
    fn implements_from_raw_fd<T: FromRawFd>() {}
    implements_from_raw_fd::<UdpSocket>();

    // Plain `From` leaves the flags alone.
    let plain = UdpSocket::from(std::net::UdpSocket::bind(lo()).unwrap());
    assert!(!plain.is_nonblocking().unwrap());
}

#[test]
fn bind_errors_are_reported() {
    let a = UdpSocket::bind(lo()).unwrap();
    let err = UdpSocket::bind(a.local_addr().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    let err = UdpSocket::bind("203.0.113.77:0".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable, "{err}");
}
