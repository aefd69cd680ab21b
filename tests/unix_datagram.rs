//! Unix-domain datagrams with the loop, and who is on the other end: the
//! peer's credentials (`SO_PEERCRED`) and per-datagram credentials
//! (`SO_PASSCRED` / `SCM_CREDENTIALS`), checked against real child processes.

use sockloop::net::unix::{UnixAddr, UnixListener};
use sockloop::net::UnixDatagram;
use sockloop::options::SocketOptions;
use sockloop::poll::{Interest, Poller};
use sockloop::{EventLoop, Token};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Our own uid/gid, read from /proc so the test needs no libc call.
fn own_ids() -> (u32, u32) {
    let m = std::fs::metadata("/proc/self").unwrap();
    (m.uid(), m.gid())
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sockloop-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn unix_datagram_echo_through_a_watched_socket() {
    let dir = temp_dir("udgram");
    let server_path = dir.join("server.sock");
    let p2 = server_path.clone();
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().unwrap();
        let sock = UnixDatagram::bind(&p2).unwrap();
        tx.send(ev.handle()).unwrap();
        let mut buf = vec![0u8; 4096];
        ev.watch(sock, Interest::READABLE, move |s, _ctx, _r| loop {
            match s.recv_from(&mut buf) {
                Ok(d) => {
                    let reply = buf[..d.len].to_ascii_uppercase();
                    if let UnixAddr::Pathname(p) = &d.from {
                        let _ = s.send_to(&reply, p);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        })
        .unwrap();
        ev.run().unwrap();
    });
    let handle = rx.recv().unwrap();
    let client_path = dir.join("client.sock");
    let client = std::os::unix::net::UnixDatagram::bind(&client_path).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for msg in [&b"hello"[..], b"x", &[b'q'; 3000][..]] {
        client.send_to(msg, &server_path).unwrap();
        let mut back = [0u8; 4096];
        let (n, from) = client.recv_from(&mut back).unwrap();
        assert_eq!(from.as_pathname(), Some(server_path.as_path()));
        assert_eq!(&back[..n], &msg.to_ascii_uppercase()[..]);
    }
    handle.stop().unwrap();
    join.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unix_datagram_pair_truncation_and_backpressure() {
    let (a, b) = UnixDatagram::pair().unwrap();
    a.send(b"0123456789").unwrap();
    let mut small = [0u8; 4];
    let d = b.recv_from(&mut small).unwrap();
    assert_eq!((d.len, d.full_len, d.truncated), (4, 10, true));
    assert_eq!(&small, b"0123");
    assert_eq!(d.from, UnixAddr::Unnamed);
    // Nothing is dropped on a Unix socket: a full queue is WouldBlock.
    let mut sent = 0;
    let err = loop {
        match a.send(&[0u8; 1024]) {
            Ok(_) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1_000_000, "the queue never filled");
    };
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    let mut buf = [0u8; 1024];
    let mut got = 0;
    while b.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, sent, "every datagram that was accepted is delivered");
}

/// When run as a child (env `SOCKLOOP_CRED_CHILD` = abstract name), connects
/// to that name, sends its pid, and waits for the parent to close.
#[test]
fn credentials_child_helper() {
    let Ok(name) = std::env::var("SOCKLOOP_CRED_CHILD") else {
        return; // not a child: nothing to do
    };
    let s = sockloop::net::UnixStream::connect_abstract(name.as_bytes()).unwrap();
    let mut s = std::os::unix::net::UnixStream::from(s);
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(std::process::id().to_string().as_bytes())
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// Starts this test binary as a child running `credentials_child_helper`,
/// through `setpriv` when `as_nobody`.
fn spawn_child(name: &str, as_nobody: bool) -> std::process::Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(["--exact", "credentials_child_helper", "--test-threads=1"])
        .env("SOCKLOOP_CRED_CHILD", name)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd.spawn().expect("spawn the credentials child")
}

#[test]
fn peer_credentials_name_the_connecting_process() {
    let name = format!("sockloop-peercred-{}", std::process::id());
    let listener = UnixListener::bind_abstract(name.as_bytes()).unwrap();
    let mut poller = Poller::new(4).unwrap();
    poller
        .add(listener.as_fd(), Token::new(0, 0), Interest::READABLE)
        .unwrap();
    let (uid, gid) = own_ids();
    // (as_nobody, expected uid, gid)
    let mut cases = vec![(false, uid, gid)];
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if uid == 0 && setpriv {
        cases.push((true, 65534, 65534));
    } else {
        eprintln!("not root or no setpriv: only the same-user case is shown");
    }
    for (as_nobody, want_uid, want_gid) in cases {
        let mut child = spawn_child(&name, as_nobody);
        let deadline = Instant::now() + Duration::from_secs(30);
        let (stream, _) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if let Some(status) = child.try_wait().unwrap() {
                        panic!("child exited before connecting: {status}");
                    }
                    assert!(Instant::now() < deadline, "child never connected");
                    // Wake on the connection (or recheck the child soon).
                    poller.wait(Some(Duration::from_millis(100))).unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        };
        let cred = stream.peer_credentials().unwrap();
        assert_eq!(cred.pid as u32, child.id(), "the kernel names the child");
        assert_eq!((cred.uid, cred.gid), (want_uid, want_gid));
        // The child says its pid itself too.
        let s = std::os::unix::net::UnixStream::from(stream);
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut said = String::new();
        (&s).read_to_string(&mut said).unwrap();
        assert_eq!(said, child.id().to_string());
        drop(s);
        assert!(child.wait().unwrap().success());
    }
    // A socket without a Unix peer is not an error on Linux: pid 0 and ids
    // of -1 (u32::MAX), which a server must not take for a real user.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let none = tcp.peer_credentials().unwrap();
    assert_eq!((none.pid, none.uid, none.gid), (0, u32::MAX, u32::MAX));
    let unconnected = UnixDatagram::unbound().unwrap();
    assert_eq!(unconnected.peer_credentials().unwrap().pid, 0);
}

#[test]
fn pass_credentials_attach_the_senders_ids_to_each_datagram() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let (uid, gid) = own_ids();
    let mut buf = [0u8; 16];
    // Off: nothing attached.
    a.send(b"plain").unwrap();
    let d = b.recv_from_with_credentials(&mut buf).unwrap();
    assert_eq!((d.len, d.credentials), (5, None));
    // On, at the receiver: the kernel adds the sender's pid/uid/gid.
    assert!(!b.pass_credentials().unwrap());
    b.set_pass_credentials(true).unwrap();
    assert!(b.pass_credentials().unwrap());
    a.send(b"who").unwrap();
    let d = b.recv_from_with_credentials(&mut buf).unwrap();
    assert_eq!(&buf[..d.len], b"who");
    let c = d.credentials.expect("SCM_CREDENTIALS");
    assert_eq!((c.pid as u32, c.uid, c.gid), (std::process::id(), uid, gid));
    // The socketpair's peer credentials are ours as well.
    let p = a.peer_credentials().unwrap();
    assert_eq!((p.pid as u32, p.uid, p.gid), (std::process::id(), uid, gid));
}
