//! Unix-domain listener and stream: stale socket files, live listeners,
//! files that are not sockets, and data round trips.

use sockloop::net::unix::{UnixAddr, UnixListener, UnixStream};
use sockloop::options::SocketOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A private directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sockloop-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

/// Retries a non-blocking call that may say WouldBlock for a moment.
fn soon<T>(mut f: impl FnMut() -> std::io::Result<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match f() {
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other.expect("call"),
        }
    }
}

#[test]
fn round_trip_both_ways_then_eof_and_epipe() {
    let dir = TempDir::new("round-trip");
    let path = dir.path("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    assert!(is_socket(&path));
    assert_eq!(
        listener.local_addr().unwrap(),
        UnixAddr::Pathname(path.clone())
    );
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "nothing pending"
    );

    let mut client = UnixStream::connect(&path).unwrap();
    assert_eq!(
        client.peer_addr().unwrap(),
        UnixAddr::Pathname(path.clone())
    );
    assert_eq!(client.local_addr().unwrap(), UnixAddr::Unnamed);
    let (mut server, peer) = soon(|| listener.accept());
    assert_eq!(peer, UnixAddr::Unnamed);
    assert!(server.is_nonblocking().unwrap());
    assert!(client.is_nonblocking().unwrap());

    let mut buf = [0u8; 32];
    assert_eq!(
        server.read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    client.write_all(b"request").unwrap();
    let n = soon(|| server.read(&mut buf));
    assert_eq!(&buf[..n], b"request");
    server.write_all(b"response").unwrap();
    let n = soon(|| client.read(&mut buf));
    assert_eq!(&buf[..n], b"response");

    // Vectored I/O through &UnixStream.
    let bufs = [std::io::IoSlice::new(b"ab"), std::io::IoSlice::new(b"cd")];
    assert_eq!((&client).write_vectored(&bufs).unwrap(), 4);
    let n = soon(|| (&server).read(&mut buf));
    assert_eq!(&buf[..n], b"abcd");

    drop(client);
    assert_eq!(soon(|| server.read(&mut buf)), 0, "EOF");
    // MSG_NOSIGNAL: an error, not SIGPIPE.
    let err = server.write(b"anyone?").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
}

#[test]
fn stale_socket_file_is_replaced() {
    let dir = TempDir::new("stale");
    let path = dir.path("s.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(is_socket(&path), "the file outlives the listener");
    assert_eq!(
        UnixStream::connect(&path).unwrap_err().kind(),
        ErrorKind::ConnectionRefused,
        "nobody listens: stale"
    );

    let listener = UnixListener::bind(&path).expect("stale file reclaimed");
    let _client = UnixStream::connect(&path).unwrap();
    soon(|| listener.accept());

    // The same from a std listener (std does not unlink either).
    drop(listener);
    drop(std::os::unix::net::UnixListener::bind(dir.path("std.sock")).unwrap());
    UnixListener::bind(dir.path("std.sock")).expect("stale std socket reclaimed");
}

#[test]
fn live_listener_is_not_stolen() {
    let dir = TempDir::new("live");
    let path = dir.path("s.sock");
    let first = UnixListener::bind(&path).unwrap();
    let ino = std::fs::metadata(&path).unwrap().ino();

    let err = UnixListener::bind(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().ino(),
        ino,
        "file untouched"
    );

    // The probe was a real connection; the live server sees it closed.
    let (mut probe, _) = soon(|| first.accept());
    let mut buf = [0u8; 1];
    assert_eq!(soon(|| probe.read(&mut buf)), 0);

    // And the first listener still serves.
    let mut c = UnixStream::connect(&path).unwrap();
    let (mut s, _) = soon(|| first.accept());
    c.write_all(b"x").unwrap();
    assert_eq!(soon(|| s.read(&mut buf)), 1);
}

#[test]
fn non_socket_files_are_never_deleted() {
    let dir = TempDir::new("regular");
    let file = dir.path("data.txt");
    std::fs::write(&file, b"precious").unwrap();
    let err = UnixListener::bind(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"precious");

    let sub = dir.path("subdir");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(
        UnixListener::bind(&sub).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert!(sub.is_dir());

    // A symlink to a stale socket is not a socket: left alone too.
    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let link = dir.path("link.sock");
    std::os::unix::fs::symlink(&stale, &link).unwrap();
    assert_eq!(
        UnixListener::bind(&link).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(is_socket(&stale));
}

#[test]
fn bad_paths_and_missing_listeners() {
    let dir = TempDir::new("paths");
    let long = dir.path(&"x".repeat(120));
    assert_eq!(
        UnixListener::bind(&long).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        UnixStream::connect(&long).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        UnixStream::connect(dir.path("nobody.sock"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        UnixListener::bind(dir.path("no/such/dir.sock"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn abstract_names_round_trip() {
    let name = format!("sockloop-test-{}", std::process::id());
    let listener = UnixListener::bind_abstract(name.as_bytes()).unwrap();
    assert_eq!(
        listener.local_addr().unwrap(),
        UnixAddr::Abstract(name.as_bytes().to_vec())
    );
    assert_eq!(
        UnixListener::bind_abstract(name.as_bytes())
            .unwrap_err()
            .kind(),
        ErrorKind::AddrInUse
    );
    let mut c = UnixStream::connect_abstract(name.as_bytes()).unwrap();
    let (mut s, _) = soon(|| listener.accept());
    c.write_all(b"abs").unwrap();
    let mut buf = [0u8; 3];
    soon(|| s.read_exact(&mut buf).map(|_| ()));
    assert_eq!(&buf, b"abs");
    drop(listener);
    assert_eq!(
        UnixStream::connect_abstract(name.as_bytes())
            .unwrap_err()
            .kind(),
        ErrorKind::ConnectionRefused,
        "the name vanished with its socket"
    );
}

#[test]
fn std_conversions() {
    let dir = TempDir::new("std");
    let path = dir.path("s.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let listener = UnixListener::from_std(std_listener).unwrap();
    assert!(listener.is_nonblocking().unwrap());
    let std_client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let client = UnixStream::from_std(std_client).unwrap();
    assert!(client.is_nonblocking().unwrap());
    let (server, _) = soon(|| listener.accept());
    let mut std_server: std::os::unix::net::UnixStream = server.into();
    (&client).write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    soon(|| std_server.read_exact(&mut buf).map(|_| ()));
    assert_eq!(&buf, b"hi");
    let back: std::os::unix::net::UnixListener = listener.into();
    assert!(back.local_addr().unwrap().as_pathname() == Some(path.as_path()));
}
