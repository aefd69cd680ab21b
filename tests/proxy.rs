//! The `proxy` example as a black box: failed upstreams, bounded memory
//! under a slow client, half-close in both directions, resets, and
//! redis-benchmark through it in front of a real redis-server.

mod common;

use common::procs::{free_port, have_client, Server};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn start_proxy(upstream: SocketAddr, extra: &[&str]) -> Server {
    let up = upstream.to_string();
    let mut args = vec!["--listen", "127.0.0.1:0", "--upstream", &up];
    args.extend_from_slice(extra);
    Server::example("proxy", &args)
}

/// Reads until EOF or an error; returns what was read and how it ended.
fn read_to_end_or_error(s: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
}

/// The client must see the end of its connection (EOF or reset) within
/// `limit`, not a read timeout.
fn assert_closed_within(s: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let (got, end) = read_to_end_or_error(s);
    let took = start.elapsed();
    match end {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("client not closed after {took:?}: {e}"),
    }
    assert!(got.is_empty(), "unexpected bytes: {got:?}");
    took
}

#[test]
fn refused_upstream_closes_client_promptly() {
    // Nothing listens on this port: the upstream connect is refused.
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let proxy = start_proxy(dead, &[]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    // Bytes sent before the connect fails are dropped with the client.
    let _ = client.write_all(b"hello?");
    let took = assert_closed_within(&mut client, Duration::from_secs(5));
    assert!(took < Duration::from_secs(2), "closing took {took:?}");
    assert!(
        proxy
            .wait_for_log("connect failed", Duration::from_secs(5))
            .is_some(),
        "no log line for the refused upstream"
    );
}

#[test]
fn timed_out_upstream_closes_client() {
    // An upstream whose accept queue is full drops our SYNs: the connect
    // hangs until the proxy's connect timeout.
    let upstream =
        sockloop::net::TcpListener::bind_with("127.0.0.1:0".parse().unwrap(), true, 0).unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let mut fillers = Vec::new();
    loop {
        match TcpStream::connect_timeout(&up_addr, Duration::from_millis(300)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == ErrorKind::TimedOut => break,
            Err(e) => panic!("filling the accept queue: {e}"),
        }
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    let proxy = start_proxy(up_addr, &["--connect-timeout-ms", "300"]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    let took = assert_closed_within(&mut client, Duration::from_secs(5));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "closing took {took:?}, connect timeout is 300 ms"
    );
    assert!(proxy
        .wait_for_log("connect timed out", Duration::from_secs(5))
        .is_some());
    drop(fillers);
}

/// An upstream that sends 128 MiB as fast as it can to a client that does
/// not read. Backpressure must stall the upstream (TCP flow control) while
/// the proxy's memory stays bounded, and every byte must arrive once the
/// client reads.
#[test]
fn slow_client_keeps_proxy_memory_bounded() {
    const TOTAL: usize = 128 * 1024 * 1024;
    // Bound on the proxy's resident memory: its own queue is at most
    // 256 KiB (high-water mark) + one 64 KiB read per direction, on top of
    // a few MiB of binary and allocator; everything else in flight sits in
    // kernel socket buffers, which VmRSS does not count.
    const RSS_BOUND_KIB: u64 = 8 * 1024;

    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let (stalled_tx, stalled_rx) = mpsc::channel();
    let writer = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        // A blocked send that times out means: nobody is taking our bytes.
        s.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut sent = 0usize;
        let mut reported = false;
        while sent < TOTAL {
            let off = sent % chunk.len();
            let n = (TOTAL - sent).min(chunk.len() - off);
            match s.write(&chunk[off..off + n]) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if !reported {
                        reported = true;
                        stalled_tx.send(sent).unwrap();
                    }
                }
                Err(e) => panic!("upstream write: {e}"),
            }
        }
        drop(s); // FIN: the proxy passes it on after the last byte
        sent
    });

    let proxy = start_proxy(up_addr, &[]);
    let rss_before = proxy.rss_kib();
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let stalled_at = stalled_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the upstream never stalled: no backpressure");
    let rss_stalled = proxy.rss_kib();
    eprintln!(
        "upstream stalled after {} KiB; proxy VmRSS {rss_before} KiB before, {rss_stalled} KiB stalled",
        stalled_at / 1024
    );
    assert!(stalled_at < TOTAL / 2, "stalled only at {stalled_at}");
    assert!(
        rss_stalled < RSS_BOUND_KIB,
        "proxy VmRSS {rss_stalled} KiB >= bound {RSS_BOUND_KIB} KiB"
    );

    // Now read everything: the relay resumes and nothing is lost.
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0usize;
    let mut max_rss = rss_stalled;
    loop {
        let n = client.read(&mut buf).expect("client read");
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let pos = got + i;
            assert_eq!(b, ((pos % (64 * 1024)) % 251) as u8, "byte {pos}");
        }
        got += n;
        if got % (16 * 1024 * 1024) < n {
            max_rss = max_rss.max(proxy.rss_kib());
        }
    }
    let sent = writer.join().unwrap();
    assert_eq!(got, sent);
    assert_eq!(got, TOTAL);
    eprintln!("proxy VmRSS at most {max_rss} KiB while relaying {TOTAL} bytes");
    assert!(max_rss < RSS_BOUND_KIB, "proxy VmRSS reached {max_rss} KiB");
}

/// Client -> upstream FIN: the client sends a request and shuts down its
/// write side; the upstream reads to EOF, then answers; the answer must
/// still reach the client, followed by EOF.
#[test]
fn half_close_client_to_upstream() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).expect("upstream reads to EOF");
        let reply = format!("got {} bytes after your FIN", req.len());
        s.write_all(reply.as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        req
    });
    let proxy = start_proxy(up_addr, &[]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"request body").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).expect("reply then EOF");
    assert_eq!(reply, "got 12 bytes after your FIN");
    assert_eq!(server.join().unwrap(), b"request body");
}

/// Upstream -> client FIN: the upstream sends a greeting and shuts down its
/// write side; the client reads it to EOF and only then sends; the
/// upstream must still receive that, followed by EOF.
#[test]
fn half_close_upstream_to_client() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"greeting, then FIN").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut late = Vec::new();
        s.read_to_end(&mut late).expect("upstream reads to EOF");
        late
    });
    let proxy = start_proxy(up_addr, &[]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = String::new();
    client
        .read_to_string(&mut greeting)
        .expect("greeting then EOF");
    assert_eq!(greeting, "greeting, then FIN");
    client.write_all(b"late data after your FIN").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(server.join().unwrap(), b"late data after your FIN");
    // Both directions done: the proxy closes the client's connection
    // (an error or EOF; nothing more arrives).
    let mut buf = [0u8; 16];
    match client.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("after both FINs: {other:?}"),
    }
}

/// The upstream resets its connection: the proxy aborts the client's.
#[test]
fn upstream_reset_aborts_client() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let (tx, rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        s.write_all(b"partial").unwrap();
        rx.recv().unwrap();
        // Unread bytes in the receive queue make close() send RST.
        let mut one = [0u8; 1];
        let _ = s.read(&mut one);
        drop(s);
    });
    let proxy = start_proxy(up_addr, &[]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 7];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"partial");
    client.write_all(b"xyz").unwrap();
    // The upstream has 3 bytes queued once it read 1 of them: wait until
    // the proxy relayed them (the upstream's read returns), then close.
    tx.send(()).unwrap();
    server.join().unwrap();
    let mut rest = Vec::new();
    match client.read_to_end(&mut rest) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected a reset passed on to the client, got {other:?} {rest:?}"),
    }
}

/// The client resets its connection: the proxy aborts the upstream's.
#[test]
fn client_reset_aborts_upstream() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        s.write_all(b"ready").unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
    });
    let proxy = start_proxy(up_addr, &[]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    client.read_exact(&mut buf).unwrap();
    // SO_LINGER {on, 0}: close() sends RST.
    sockloop::sys::socket::set_linger_abort(std::os::fd::AsFd::as_fd(&client)).unwrap();
    drop(client);
    match server.join().unwrap() {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected the reset passed on to the upstream, got {other:?}"),
    }
    drop(proxy);
}

/// A pair that moves no bytes for the idle timeout is closed: the client
/// sees EOF, and the upstream is closed too.
#[test]
fn idle_pair_is_closed() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).map(|_| rest)
    });
    let proxy = start_proxy(up_addr, &["--idle-timeout-secs", "1"]);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    let took = assert_closed_within(&mut client, Duration::from_secs(5));
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    let rest = server
        .join()
        .unwrap()
        .expect("upstream sees EOF, not a timeout");
    assert!(rest.is_empty());
}

/// redis-benchmark through the proxy in front of a RESP server: a
/// redis-server started here on a free port, or the server at
/// `SOCKLOOP_RESP_TARGET=HOST:PORT` (e.g. sockloop's own resp example).
#[test]
fn redis_benchmark_through_proxy() {
    if !have_client("redis-benchmark") {
        return;
    }
    let target = std::env::var("SOCKLOOP_RESP_TARGET").ok();
    let mut _redis = None;
    let redis_addr: SocketAddr = match target {
        Some(t) => t.parse().expect("SOCKLOOP_RESP_TARGET=HOST:PORT"),
        None => {
            if !have_client("redis-server") {
                return;
            }
            let port = free_port();
            let port_s = port.to_string();
            let addr = format!("127.0.0.1:{port}").parse().unwrap();
            _redis = Some(Server::start_with_ready_line(
                "redis-server",
                &[
                    "--port",
                    &port_s,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                "Ready to accept connections",
                addr,
            ));
            addr
        }
    };
    bench_through_proxy(redis_addr, "set,get,incr,lpush,lpop,mset", 6);
}

/// redis-benchmark through the proxy in front of sockloop's own RESP
/// server: both ends of the relay are sockloop.
#[test]
fn redis_benchmark_through_proxy_in_front_of_sockloop_resp() {
    if !have_client("redis-benchmark") {
        return;
    }
    let resp = Server::example("resp", &["--addr", "127.0.0.1:0"]);
    bench_through_proxy(resp.addr, "ping,set,get,incr,mset", 6);
}

/// Runs redis-benchmark (`-t tests`, pipelined) through a proxy in front
/// of `upstream` and checks that every test ran without an error reply.
fn bench_through_proxy(upstream: SocketAddr, tests: &str, expected_results: usize) {
    let proxy = start_proxy(upstream, &[]);
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &proxy.addr.port().to_string(),
            "-n",
            "20000",
            "-c",
            "20",
            "-P",
            "8",
            "-q",
            "-t",
            tests,
        ])
        .output()
        .expect("run redis-benchmark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("redis-benchmark:\n{stdout}{stderr}");
    assert!(
        out.status.success(),
        "redis-benchmark failed: {}",
        out.status
    );
    // -q prints one "NAME: N requests per second" line per test.
    let results = stdout
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .count();
    assert!(
        results >= expected_results,
        "expected {expected_results} results, got:\n{stdout}"
    );
    assert!(!stdout.contains("ERR") && !stderr.contains("ERR"));
}
