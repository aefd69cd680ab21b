//! Round trips of every typed socket option over real sockets, and the
//! observable effects of SO_LINGER and SO_REUSEADDR on loopback TCP.

use sockloop::net::udp::UdpSocket;
use sockloop::net::unix::UnixListener;
use sockloop::options::{Keepalive, Linger, SocketOptions, SocketType};
use sockloop::sys::socket;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

const ENODEV: i32 = 19;
const EINVAL: i32 = 22;

fn lo(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A fresh, unbound, non-blocking TCP socket: no option set by anyone.
fn tcp_fd() -> OwnedFd {
    socket::tcp_socket(&lo(0)).expect("socket")
}

fn udp_fd() -> OwnedFd {
    socket::udp_socket(&lo(0)).expect("socket")
}

/// A listener built from raw calls, so that SO_REUSEADDR is exactly what we
/// say (std's `TcpListener::bind` always sets it).
fn listener(port: u16, reuse: bool) -> std::io::Result<TcpListener> {
    let fd = tcp_fd();
    fd.set_reuse_address(reuse)?;
    socket::bind(fd.as_fd(), &lo(port))?;
    socket::listen(fd.as_fd(), 16)?;
    fd.set_nonblocking(false)?;
    Ok(TcpListener::from(fd))
}

/// A connected loopback pair of blocking std streams: (client, server).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(lo(0)).unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

fn kind<T: std::fmt::Debug>(r: std::io::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

fn read_sysctl(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// TCP states (hex `st` column of /proc/net/tcp: 01 ESTABLISHED, 06
/// TIME_WAIT, ...) of every IPv4 socket with this exact 4-tuple.
fn tcp_states(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    fn parse(field: &str) -> SocketAddr {
        let (ip, port) = field.split_once(':').unwrap();
        // The kernel prints the raw __be32 as a native-endian integer.
        let ip = u32::from_str_radix(ip, 16).unwrap().to_ne_bytes();
        SocketAddr::from((ip, u16::from_str_radix(port, 16).unwrap()))
    }
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (parse(f[1]) == local && parse(f[2]) == remote)
                .then(|| u8::from_str_radix(f[3], 16).unwrap())
        })
        .collect()
}

const TIME_WAIT: u8 = 0x06;

/// Polls `cond` for up to two seconds.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

// ---------------------------------------------------------------- round trips

#[test]
fn trait_works_on_std_owned_and_sockloop_types() {
    let (c, _s) = tcp_pair();
    SocketOptions::set_nodelay(&c, true).unwrap();
    assert!(c.nodelay().unwrap(), "std sees what we set");
    let fd: OwnedFd = tcp_fd();
    assert!(!fd.nodelay().unwrap());
    let u = UdpSocket::bind(lo(0)).unwrap();
    assert_eq!(u.socket_type().unwrap(), SocketType::Datagram);
    assert_eq!(u.as_fd().socket_type().unwrap(), SocketType::Datagram);
}

#[test]
fn reuse_address_round_trip() {
    let s = tcp_fd();
    assert!(!s.reuse_address().unwrap(), "off by default");
    s.set_reuse_address(true).unwrap();
    assert!(s.reuse_address().unwrap());
    s.set_reuse_address(false).unwrap();
    assert!(!s.reuse_address().unwrap());
    // std sets it on listeners, which is why the tests build their own.
    let std_listener = TcpListener::bind(lo(0)).unwrap();
    assert!(std_listener.reuse_address().unwrap());
}

#[test]
fn reuse_port_lets_two_sockets_bind_the_same_port() {
    let a = tcp_fd();
    assert!(!a.reuse_port().unwrap());
    a.set_reuse_port(true).unwrap();
    assert!(a.reuse_port().unwrap());
    socket::bind(a.as_fd(), &lo(0)).unwrap();
    socket::listen(a.as_fd(), 4).unwrap();
    let port = socket::local_addr(a.as_fd()).unwrap().port();

    let without = tcp_fd();
    assert_eq!(
        kind(socket::bind(without.as_fd(), &lo(port))),
        ErrorKind::AddrInUse
    );
    let with = tcp_fd();
    with.set_reuse_port(true).unwrap();
    socket::bind(with.as_fd(), &lo(port)).unwrap();
    socket::listen(with.as_fd(), 4).unwrap();
}

#[test]
fn linger_round_trip_all_three_modes() {
    let s = tcp_fd();
    assert_eq!(s.linger().unwrap(), Linger::Off);
    s.set_linger(Linger::Abort).unwrap();
    assert_eq!(s.linger().unwrap(), Linger::Abort);
    s.set_linger(Linger::Graceful(Duration::from_secs(7)))
        .unwrap();
    assert_eq!(
        s.linger().unwrap(),
        Linger::Graceful(Duration::from_secs(7)),
        "l_linger is in seconds: 7 comes back as 7"
    );
    s.set_linger(Linger::Off).unwrap();
    assert_eq!(s.linger().unwrap(), Linger::Off);
}

#[test]
fn linger_invalid_values_are_rejected_before_the_syscall() {
    let s = tcp_fd();
    s.set_linger(Linger::Abort).unwrap();
    for bad in [
        Duration::ZERO,
        Duration::from_millis(1500),
        Duration::from_micros(10),
        Duration::from_secs(i32::MAX as u64 + 1),
        Duration::MAX,
    ] {
        assert_eq!(
            kind(s.set_linger(Linger::Graceful(bad))),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    assert_eq!(s.linger().unwrap(), Linger::Abort, "nothing was changed");
}

#[test]
fn nodelay_round_trip_and_not_on_udp() {
    let s = tcp_fd();
    assert!(!s.nodelay().unwrap(), "Nagle is on by default");
    s.set_nodelay(true).unwrap();
    assert!(s.nodelay().unwrap());
    s.set_nodelay(false).unwrap();
    assert!(!s.nodelay().unwrap());
    assert!(udp_fd().set_nodelay(true).is_err(), "TCP option on UDP");
}

#[test]
fn keepalive_round_trip_and_system_defaults() {
    let s = tcp_fd();
    assert!(!s.keepalive().unwrap());
    s.set_keepalive(true).unwrap();
    assert!(s.keepalive().unwrap());
    s.set_keepalive(false).unwrap();
    assert!(!s.keepalive().unwrap());

    let defaults = s.keepalive_params().unwrap();
    assert_eq!(
        defaults,
        Keepalive {
            idle: Duration::from_secs(read_sysctl("/proc/sys/net/ipv4/tcp_keepalive_time")),
            interval: Duration::from_secs(read_sysctl("/proc/sys/net/ipv4/tcp_keepalive_intvl")),
            count: read_sysctl("/proc/sys/net/ipv4/tcp_keepalive_probes") as u32,
        },
        "unset values are the sysctls"
    );

    let k = Keepalive {
        idle: Duration::from_secs(30),
        interval: Duration::from_secs(5),
        count: 4,
    };
    s.set_keepalive_params(k).unwrap();
    assert_eq!(s.keepalive_params().unwrap(), k);
    s.set_keepalive_idle(Duration::from_secs(32767)).unwrap();
    s.set_keepalive_interval(Duration::from_secs(1)).unwrap();
    s.set_keepalive_count(127).unwrap();
    assert_eq!(s.keepalive_idle().unwrap(), Duration::from_secs(32767));
    assert_eq!(s.keepalive_interval().unwrap(), Duration::from_secs(1));
    assert_eq!(s.keepalive_count().unwrap(), 127);
}

#[test]
fn keepalive_invalid_values_are_rejected_before_the_syscall() {
    let s = tcp_fd();
    let good = Keepalive {
        idle: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        count: 3,
    };
    s.set_keepalive_params(good).unwrap();
    let bad = [
        Keepalive {
            idle: Duration::ZERO,
            ..good
        },
        Keepalive {
            idle: Duration::from_secs(32768),
            ..good
        },
        Keepalive {
            interval: Duration::from_millis(2500),
            ..good
        },
        Keepalive { count: 0, ..good },
        Keepalive { count: 128, ..good },
        // Valid idle and interval but bad count: nothing may be applied.
        Keepalive {
            idle: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            count: 1000,
        },
    ];
    for k in bad {
        assert_eq!(
            kind(s.set_keepalive_params(k)),
            ErrorKind::InvalidInput,
            "{k:?}"
        );
    }
    assert_eq!(s.keepalive_params().unwrap(), good, "nothing half-applied");
    assert_eq!(
        kind(s.set_keepalive_idle(Duration::MAX)),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(s.set_keepalive_count(u32::MAX)),
        ErrorKind::InvalidInput
    );
}

#[test]
fn send_buffer_is_doubled_clamped_and_has_a_minimum() {
    let s = tcp_fd();
    s.set_send_buffer_size(65536).unwrap();
    assert_eq!(s.send_buffer_size().unwrap(), 2 * 65536, "Linux doubles it");

    let max = read_sysctl("/proc/sys/net/core/wmem_max") as usize;
    s.set_send_buffer_size(i32::MAX as usize).unwrap();
    assert_eq!(
        s.send_buffer_size().unwrap(),
        2 * max,
        "clamped to wmem_max, then doubled"
    );

    s.set_send_buffer_size(0).unwrap();
    let min = s.send_buffer_size().unwrap();
    assert!(
        (2048..=8192).contains(&min),
        "0 gives the kernel minimum, not zero: {min}"
    );
    s.set_send_buffer_size(1).unwrap();
    assert_eq!(s.send_buffer_size().unwrap(), min);

    assert_eq!(
        kind(s.set_send_buffer_size(i32::MAX as usize + 1)),
        ErrorKind::InvalidInput
    );
}

#[test]
fn recv_buffer_is_doubled_clamped_and_has_a_minimum() {
    let s = udp_fd();
    s.set_recv_buffer_size(50_000).unwrap();
    assert_eq!(s.recv_buffer_size().unwrap(), 100_000, "Linux doubles it");

    let max = read_sysctl("/proc/sys/net/core/rmem_max") as usize;
    s.set_recv_buffer_size(max + 12345).unwrap();
    assert_eq!(s.recv_buffer_size().unwrap(), 2 * max);

    s.set_recv_buffer_size(0).unwrap();
    let min = s.recv_buffer_size().unwrap();
    assert!((1024..=4096).contains(&min), "minimum, not zero: {min}");

    assert_eq!(
        kind(s.set_recv_buffer_size(usize::MAX)),
        ErrorKind::InvalidInput
    );
}

#[test]
fn timeouts_round_trip_and_reject_zero() {
    let s = tcp_fd();
    assert_eq!(s.recv_timeout().unwrap(), None);
    assert_eq!(s.send_timeout().unwrap(), None);
    // 1.5 s is a whole number of jiffies for HZ = 100, 250, 300 and 1000.
    s.set_recv_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s.set_send_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(s.recv_timeout().unwrap(), Some(Duration::from_millis(1500)));
    assert_eq!(s.send_timeout().unwrap(), Some(Duration::from_secs(3)));

    assert_eq!(
        kind(s.set_recv_timeout(Some(Duration::ZERO))),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(s.set_send_timeout(Some(Duration::MAX))),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        s.recv_timeout().unwrap(),
        Some(Duration::from_millis(1500)),
        "unchanged"
    );

    // A tiny timeout is rounded up, never to "no timeout".
    s.set_recv_timeout(Some(Duration::from_nanos(1))).unwrap();
    assert!(s.recv_timeout().unwrap().is_some());

    s.set_recv_timeout(None).unwrap();
    s.set_send_timeout(None).unwrap();
    assert_eq!(s.recv_timeout().unwrap(), None);
    assert_eq!(s.send_timeout().unwrap(), None);
}

#[test]
fn recv_timeout_applies_to_blocking_sockets_only() {
    let (mut c, _s) = tcp_pair();
    c.set_recv_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 8];
    assert_eq!(kind(c.read(&mut buf)), ErrorKind::WouldBlock);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(180), "{waited:?}");

    SocketOptions::set_nonblocking(&c, true).unwrap();
    let start = Instant::now();
    assert_eq!(kind(c.read(&mut buf)), ErrorKind::WouldBlock);
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "a non-blocking socket ignores SO_RCVTIMEO"
    );
}

#[test]
fn broadcast_round_trip_and_eacces_without_it() {
    let bcast: SocketAddr = "127.255.255.255:0".parse().unwrap();
    // A receiver bound to the loopback broadcast address: nothing leaves lo.
    let rx = UdpSocket::bind(bcast).unwrap();
    let to = rx.local_addr().unwrap();
    let tx = UdpSocket::bind(lo(0)).unwrap();
    assert!(!tx.broadcast().unwrap());
    assert_eq!(
        kind(tx.send_to(b"x", to)),
        ErrorKind::PermissionDenied,
        "EACCES without SO_BROADCAST"
    );
    tx.set_broadcast(true).unwrap();
    assert!(tx.broadcast().unwrap());
    assert_eq!(tx.send_to(b"hello", to).unwrap(), 5);
    let mut buf = [0u8; 8];
    assert!(eventually(|| rx.recv_from(&mut buf).is_ok()));
    assert_eq!(&buf[..5], b"hello");
    tx.set_broadcast(false).unwrap();
    assert!(!tx.broadcast().unwrap());
}

#[test]
fn oob_inline_round_trip() {
    let s = tcp_fd();
    assert!(!s.oob_inline().unwrap());
    s.set_oob_inline(true).unwrap();
    assert!(s.oob_inline().unwrap());
    s.set_oob_inline(false).unwrap();
    assert!(!s.oob_inline().unwrap());
}

#[test]
fn priority_round_trip_and_privilege() {
    let s = tcp_fd();
    assert_eq!(s.priority().unwrap(), 0);
    for p in 0..=6 {
        s.set_priority(p).unwrap();
        assert_eq!(s.priority().unwrap(), p);
    }
    match s.set_priority(7) {
        Ok(()) => assert_eq!(s.priority().unwrap(), 7, "privileged: accepted"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}"),
    }
    assert_eq!(kind(s.set_priority(u32::MAX)), ErrorKind::InvalidInput);
}

#[test]
fn bind_device_round_trip() {
    let s = udp_fd();
    assert_eq!(s.bind_device().unwrap(), "");
    assert_eq!(
        kind(s.set_bind_device("sixteen-chars-xx")),
        ErrorKind::InvalidInput,
        "longer than IFNAMSIZ - 1"
    );
    assert_eq!(kind(s.set_bind_device("l\0o")), ErrorKind::InvalidInput);
    let err = s.set_bind_device("nosuchdev0").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(ENODEV), "{err}");

    match s.set_bind_device("lo") {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            eprintln!("skipping: SO_BINDTODEVICE needs privilege here ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    assert_eq!(s.bind_device().unwrap(), "lo");
    match s.set_bind_device("") {
        Ok(()) => assert_eq!(s.bind_device().unwrap(), "", "unbound"),
        // Unbinding needs CAP_NET_RAW even where binding did not.
        Err(e) => assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}"),
    }
}

#[test]
fn tcp_user_timeout_round_trip() {
    let s = tcp_fd();
    assert_eq!(s.tcp_user_timeout().unwrap(), None);
    s.set_tcp_user_timeout(Some(Duration::from_millis(30_250)))
        .unwrap();
    assert_eq!(
        s.tcp_user_timeout().unwrap(),
        Some(Duration::from_millis(30_250))
    );
    for bad in [
        Duration::ZERO,
        Duration::from_micros(1500),
        Duration::from_millis(i32::MAX as u64 + 1),
    ] {
        assert_eq!(
            kind(s.set_tcp_user_timeout(Some(bad))),
            ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
    s.set_tcp_user_timeout(None).unwrap();
    assert_eq!(s.tcp_user_timeout().unwrap(), None);
}

#[test]
fn only_v6_round_trip_and_v4_mapped_binding() {
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    let s = match socket::udp_socket(&v6) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("skipping: no IPv6 ({e})");
            return;
        }
    };
    if let Err(e) = UdpSocket::bind(v6) {
        eprintln!("skipping: cannot bind ::1 ({e})");
        return;
    }
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:0".parse().unwrap();

    s.set_only_v6(true).unwrap();
    assert!(s.only_v6().unwrap());
    let err = socket::bind(s.as_fd(), &mapped).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(EINVAL),
        "a v6-only socket cannot take a v4-mapped address: {err}"
    );

    s.set_only_v6(false).unwrap();
    assert!(!s.only_v6().unwrap());
    socket::bind(s.as_fd(), &mapped).unwrap();
    // Dual-stack: it now receives plain IPv4 datagrams sent to 127.0.0.1.
    let port = socket::local_addr(s.as_fd()).unwrap().port();
    let tx = UdpSocket::bind(lo(0)).unwrap();
    tx.send_to(b"v4", lo(port)).unwrap();
    let rx = UdpSocket::from(s);
    let mut buf = [0u8; 4];
    assert!(eventually(|| rx.recv_from(&mut buf).is_ok()));
    assert_eq!(&buf[..2], b"v4");

    assert_eq!(
        rx.set_only_v6(true).unwrap_err().raw_os_error(),
        Some(EINVAL),
        "too late once bound"
    );
    assert!(udp_fd().only_v6().is_err(), "IPv6 option on IPv4 socket");
}

#[test]
fn take_error_reports_and_clears_icmp_port_unreachable() {
    let closed = UdpSocket::bind(lo(0)).unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let s = UdpSocket::bind(lo(0)).unwrap();
    assert!(s.take_error().unwrap().is_none());
    s.connect(closed_addr).unwrap();
    s.send(b"anyone?").unwrap();
    let mut err = None;
    assert!(eventually(|| {
        err = s.take_error().unwrap();
        err.is_some()
    }));
    assert_eq!(err.unwrap().kind(), ErrorKind::ConnectionRefused);
    assert!(s.take_error().unwrap().is_none(), "reading clears it");
}

#[test]
fn socket_type_reports_the_kind() {
    assert_eq!(tcp_fd().socket_type().unwrap(), SocketType::Stream);
    assert_eq!(udp_fd().socket_type().unwrap(), SocketType::Datagram);
    let l = UnixListener::bind_abstract(format!("sockloop-type-{}", std::process::id()).as_bytes())
        .unwrap();
    assert_eq!(l.socket_type().unwrap(), SocketType::Stream);
    let file = std::fs::File::open("/dev/null").unwrap();
    assert!(file.socket_type().is_err(), "ENOTSOCK");
}

#[test]
fn nonblocking_round_trip() {
    let (c, _s) = tcp_pair();
    assert!(!c.is_nonblocking().unwrap(), "std sockets block");
    SocketOptions::set_nonblocking(&c, true).unwrap();
    assert!(c.is_nonblocking().unwrap());
    let mut buf = [0u8; 1];
    assert_eq!(
        kind((&c).read(&mut buf)),
        ErrorKind::WouldBlock,
        "EAGAIN, not a 0 that would look like EOF"
    );
    SocketOptions::set_nonblocking(&c, false).unwrap();
    assert!(!c.is_nonblocking().unwrap());
    assert!(
        tcp_fd().is_nonblocking().unwrap(),
        "sockloop's are born non-blocking"
    );
}

// ------------------------------------------------------- what the peer sees

#[test]
fn linger_abort_sends_rst_and_leaves_no_time_wait() {
    let (c, mut s) = tcp_pair();
    let (local, remote) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
    SocketOptions::set_linger(&c, Linger::Abort).unwrap();
    (&c).write_all(b"discarded?").unwrap();
    drop(c);

    // Linux discards our unsent data; anything already delivered may be read
    // first, then the reset is reported.
    let mut buf = [0u8; 64];
    let err = loop {
        match s.read(&mut buf) {
            Ok(0) => panic!("peer saw EOF, expected ECONNRESET"),
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(
        !tcp_states(local, remote).contains(&TIME_WAIT),
        "abortive close skips TIME_WAIT: {:?}",
        tcp_states(local, remote)
    );
    assert!(tcp_states(local, remote).is_empty(), "the 4-tuple is gone");
}

#[test]
fn linger_off_peer_sees_eof_and_we_enter_time_wait() {
    let (c, mut s) = tcp_pair();
    let (local, remote) = (c.local_addr().unwrap(), c.peer_addr().unwrap());
    assert_eq!(SocketOptions::linger(&c).unwrap(), Linger::Off);
    (&c).write_all(b"last words").unwrap();
    drop(c); // active close: FIN after the data

    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words", "data, then EOF (read = 0)");
    drop(s); // the peer closes too: our side ends in TIME_WAIT

    assert!(
        eventually(|| tcp_states(local, remote) == [TIME_WAIT]),
        "states: {:?}",
        tcp_states(local, remote)
    );
}

#[test]
fn linger_graceful_blocks_close_even_on_a_non_blocking_socket() {
    // Acknowledged quickly: close returns at once, the peer gets data + EOF.
    let (c, mut s) = tcp_pair();
    SocketOptions::set_linger(&c, Linger::Graceful(Duration::from_secs(1))).unwrap();
    (&c).write_all(b"flushed").unwrap();
    let start = Instant::now();
    drop(c);
    assert!(start.elapsed() < Duration::from_millis(500));
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"flushed");

    // Not acknowledged (the peer's window is closed): close() waits the
    // whole linger time although O_NONBLOCK is set.
    let l = listener(0, false).unwrap();
    l.set_recv_buffer_size(4096).unwrap(); // inherited by the accepted socket
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_send_buffer_size(4096).unwrap();
    SocketOptions::set_nonblocking(&c, true).unwrap();
    let chunk = [0u8; 4096];
    let mut stalled = 0;
    let mut sent = 0;
    while stalled < 20 {
        match (&c).write(&chunk) {
            Ok(n) => {
                sent += n;
                stalled = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalled += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    }
    SocketOptions::set_linger(&c, Linger::Graceful(Duration::from_secs(1))).unwrap();
    assert!(c.is_nonblocking().unwrap());
    let start = Instant::now();
    drop(c);
    let blocked = start.elapsed();
    assert!(
        blocked >= Duration::from_millis(900),
        "close() on a non-blocking socket blocked only {blocked:?}"
    );
    // Timed out, yet nothing is discarded: once the peer reads, the orphaned
    // socket delivers everything and then the FIN.
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), sent);
}

// -------------------------------------------------------------- SO_REUSEADDR

/// Leaves a TIME_WAIT socket on 127.0.0.1:<port> by making the server side
/// close first, with the listener's SO_REUSEADDR set to `listener_reuse`.
/// Returns the port.
fn time_wait_on_server_port(listener_reuse: bool) -> u16 {
    let l = listener(0, listener_reuse).unwrap();
    let addr = l.local_addr().unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    let (s, _) = l.accept().unwrap();
    let (local, remote) = (s.local_addr().unwrap(), s.peer_addr().unwrap());
    drop(s); // the server closes first...
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    drop(c); // ...and the client answers with its FIN
    drop(l);
    assert!(
        eventually(|| tcp_states(local, remote) == [TIME_WAIT]),
        "{:?}",
        tcp_states(local, remote)
    );
    addr.port()
}

#[test]
fn reuse_address_rebinds_a_port_held_by_time_wait() {
    let port = time_wait_on_server_port(true);

    let err = listener(port, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");

    let l = listener(port, true).expect("SO_REUSEADDR binds over TIME_WAIT");
    assert_eq!(l.local_addr().unwrap().port(), port);
}

#[test]
fn reuse_address_needs_the_flag_on_the_old_socket_too() {
    // Linux copies SO_REUSEADDR into the TIME_WAIT socket; when the old
    // listener did not have it, setting it on the new one is not enough.
    let port = time_wait_on_server_port(false);
    let err = listener(port, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
}

#[test]
fn tcp_silence_is_counted_from_the_last_data_segment_either_way_and_unix_has_none() {
    use sockloop::sys::sockopt::tcp_silent_ms;
    let l = TcpListener::bind(lo(0)).unwrap();
    let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut server, _) = l.accept().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Silent since the handshake (counted in jiffies: allow one).
    let before = tcp_silent_ms(server.as_fd()).unwrap();
    assert!(
        (290..5000).contains(&before),
        "{before} ms after 300 ms of silence"
    );
    // A byte received restarts the count...
    client.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    server.read_exact(&mut b).unwrap();
    let after_recv = tcp_silent_ms(server.as_fd()).unwrap();
    assert!(after_recv < before, "{after_recv} ms, not under {before}");
    std::thread::sleep(Duration::from_millis(300));
    let before = tcp_silent_ms(server.as_fd()).unwrap();
    assert!(before >= 290, "{before} ms after 300 ms of silence");
    // ...and so does a byte sent.
    server.write_all(b"y").unwrap();
    client.read_exact(&mut b).unwrap();
    let after_send = tcp_silent_ms(server.as_fd()).unwrap();
    assert!(after_send < before, "{after_send} ms, not under {before}");
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(
        tcp_silent_ms(a.as_fd()).is_err(),
        "a Unix socket has no TCP_INFO"
    );
}
