//! The readn/writen state machines over real sockets, one test per way a
//! transfer can stop: done, would block (resumed on readiness), EOF with
//! partial bytes, reset, broken pipe.

use sockloop::io::{read_available, IoStatus, ReadExact, ReadOutcome, WriteAll};
use sockloop::poll::{Interest, Poller};
use sockloop::sys;
use sockloop::{Buffer, Token};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Writes 8 MiB through a socketpair whose buffer holds far less: the
/// writer must stop with WouldBlock (partial progress kept), and resume on
/// EPOLLOUT edges, while the reader's ReadExact resumes on EPOLLIN edges.
#[test]
fn partial_writes_resume_on_writability_and_reads_resume_on_readability() {
    let (a, b) = pair();
    let data = pattern(8 << 20);
    let mut writer = WriteAll::new(data.clone());
    let mut reader = ReadExact::new(data.len());
    let mut poller = Poller::new(8).unwrap();
    poller
        .add(a.as_fd(), Token::new(0, 1), Interest::STREAM)
        .unwrap();
    poller
        .add(b.as_fd(), Token::new(1, 1), Interest::STREAM)
        .unwrap();
    let mut would_blocks = 0;
    while !(writer.is_done() && reader.is_done()) {
        match writer.advance(a.as_fd()) {
            IoStatus::Done => {}
            IoStatus::WouldBlock => would_blocks += 1,
            other => panic!("writer: {other:?}"),
        }
        match reader.advance(b.as_fd()) {
            IoStatus::Done | IoStatus::WouldBlock => {}
            other => panic!("reader: {other:?}"),
        }
        if !(writer.is_done() && reader.is_done()) {
            let n = poller.wait(Some(Duration::from_secs(5))).unwrap();
            assert!(n > 0, "no readiness within 5 s: a lost edge");
        }
    }
    assert!(would_blocks > 0, "the writer never had to suspend");
    assert_eq!(reader.into_inner(), data);
}

/// A short read means drained: ReadExact returns WouldBlock after it
/// without trying again (the next read could only fail with EAGAIN).
#[test]
fn short_read_suspends_with_progress_kept() {
    let (mut a, b) = pair();
    a.write_all(b"abc").unwrap();
    let mut r = ReadExact::new(6);
    assert!(matches!(r.advance(b.as_fd()), IoStatus::WouldBlock));
    assert_eq!(r.filled(), b"abc");
    a.write_all(b"def").unwrap();
    assert!(r.advance(b.as_fd()).is_done());
    assert_eq!(r.filled(), b"abcdef");
}

/// The notes' readn returns the count so far on EOF; ours says EOF
/// distinctly and keeps the partial bytes.
#[test]
fn peer_close_mid_read_reports_eof_with_partial_bytes() {
    let (mut a, b) = pair();
    a.write_all(b"partial").unwrap();
    drop(a);
    let mut r = ReadExact::new(100);
    // First call: 7 bytes (short read: suspends). Second: EOF.
    let first = r.advance(b.as_fd());
    assert!(matches!(first, IoStatus::WouldBlock), "{first:?}");
    let second = r.advance(b.as_fd());
    assert!(matches!(second, IoStatus::Eof), "{second:?}");
    assert_eq!(r.filled(), b"partial");
}

/// Writing to a TCP peer that reset the connection: ECONNRESET (or EPIPE
/// once the reset was already reported), never SIGPIPE.
#[test]
fn reset_mid_write_is_reported_not_a_signal() {
    sys::signal::set_default(sys::signal::SIGPIPE).unwrap(); // SIGPIPE would kill us
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    // The server aborts: SO_LINGER {1, 0} then close sends RST.
    sys::socket::set_linger_abort(server.as_fd()).unwrap();
    drop(server);
    let mut w = WriteAll::new(vec![7u8; 1 << 20]);
    let mut statuses = Vec::new();
    for _ in 0..1000 {
        let s = w.advance(client.as_fd());
        let stop = matches!(s, IoStatus::Reset | IoStatus::BrokenPipe);
        statuses.push(format!("{s:?}"));
        if stop {
            break;
        }
        std::thread::sleep(Duration::from_millis(1)); // pace: let the RST arrive
    }
    let last = statuses.last().unwrap();
    assert!(
        last == "Reset" || last == "BrokenPipe",
        "statuses: {statuses:?}"
    );
    // After the reset has been reported once, the next write is EPIPE.
    let mut again = WriteAll::new(vec![1u8; 10]);
    assert!(matches!(
        again.advance(client.as_fd()),
        IoStatus::BrokenPipe | IoStatus::Reset
    ));
}

/// A reader that is reset reports Reset, not EOF.
#[test]
fn reset_mid_read_is_distinct_from_eof() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    server.write_all(b"xy").unwrap();
    sys::socket::set_linger_abort(server.as_fd()).unwrap();
    // Unread data at our side is irrelevant; the RST arrives after "xy".
    drop(server);
    client.set_nonblocking(true).unwrap();
    let mut r = ReadExact::new(10);
    let mut last = IoStatus::WouldBlock;
    for _ in 0..1000 {
        last = r.advance(client.as_fd());
        if !matches!(last, IoStatus::WouldBlock) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(last, IoStatus::Reset), "{last:?}");
}

/// Writes to a pipe (not a socket) still work: ENOTSOCK falls back to write.
#[test]
fn write_all_works_on_pipes() {
    let (r, w) = sys::fd::pipe().unwrap();
    let mut m = WriteAll::new(b"through a pipe".to_vec());
    assert!(m.advance(w.as_fd()).is_done());
    let mut got = [0u8; 14];
    let mut f = std::fs::File::from(r);
    f.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"through a pipe");
}

/// read_available spills into the caller's area, respects the maximum, and
/// loses nothing at it.
#[test]
fn read_available_spills_and_enforces_the_limit() {
    let (mut a, b) = pair();
    a.write_all(&pattern(3000)).unwrap();
    let mut buf = Buffer::with_max(10_000);
    let mut spill = vec![0u8; 4096];
    match read_available(b.as_fd(), &mut buf, &mut spill) {
        ReadOutcome::Data { n, drained } => {
            assert_eq!(n, 3000);
            assert!(drained, "3000 < 4096 asked: a short read means drained");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(buf.as_slice(), &pattern(3000)[..]);

    // A read never takes more than the buffer may hold, so nothing read is
    // lost: 100 of the 500 bytes arrive, the rest stay in the socket, and a
    // full buffer is an error without a read.
    let mut small = Buffer::with_max(100);
    let sent: Vec<u8> = (0..500u32).map(|i| i as u8).collect();
    a.write_all(&sent).unwrap();
    match read_available(b.as_fd(), &mut small, &mut spill) {
        ReadOutcome::Data { n, drained } => {
            assert_eq!(n, 100);
            assert!(!drained, "a read cut to the buffer's room is not short");
        }
        other => panic!("expected 100 bytes, got {other:?}"),
    }
    assert_eq!(small.as_slice(), &sent[..100]);
    match read_available(b.as_fd(), &mut small, &mut spill) {
        ReadOutcome::Stop(IoStatus::Error(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory)
        }
        other => panic!("expected the buffer limit, got {other:?}"),
    }
    small.consume(100);
    let mut rest = Vec::new();
    while rest.len() < 400 {
        match read_available(b.as_fd(), &mut small, &mut spill) {
            ReadOutcome::Data { .. } => {
                rest.extend_from_slice(small.as_slice());
                small.clear();
            }
            other => panic!("expected the rest, got {other:?}"),
        }
    }
    assert_eq!(rest, &sent[100..], "bytes were lost or reordered");
}

/// The same over TCP with the smallest SO_SNDBUF Linux allows:
/// a 256 KiB WriteAll has to suspend, and each suspension is resumed by an
/// EPOLLOUT edge from a poller registered once (no epoll_ctl per write).
#[test]
fn tiny_sndbuf_forces_many_partial_writes_each_resumed_by_epollout() {
    use sockloop::options::SocketOptions;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (b, _) = listener.accept().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    a.set_send_buffer_size(1).unwrap(); // clamped up to the minimum
    assert!(a.send_buffer_size().unwrap() <= 8192);
    let data = pattern(256 << 10);
    let mut writer = WriteAll::new(data.clone());
    let mut reader = ReadExact::new(data.len());
    let mut poller = Poller::new(8).unwrap();
    poller
        .add(a.as_fd(), Token::new(0, 1), Interest::STREAM)
        .unwrap();
    poller
        .add(b.as_fd(), Token::new(1, 1), Interest::STREAM)
        .unwrap();
    let mut suspensions = 0;
    while !(writer.is_done() && reader.is_done()) {
        if let IoStatus::WouldBlock = writer.advance(a.as_fd()) {
            suspensions += 1;
        }
        if let IoStatus::Eof | IoStatus::Reset | IoStatus::Error(_) = reader.advance(b.as_fd()) {
            panic!("reader failed");
        }
        if !(writer.is_done() && reader.is_done()) {
            assert!(
                poller.wait(Some(Duration::from_secs(5))).unwrap() > 0,
                "lost edge"
            );
        }
    }
    assert!(suspensions >= 2, "only {suspensions} partial writes");
    assert!(reader.into_inner() == data);
}
