//! TLS in the loop (feature `tls`): the same Handler over TLS, each pitfall
//! and bad input over real loopback sockets, with rustls clients in test
//! threads (the real-client tests are in tests/client_tls.rs).
#![cfg(feature = "tls")]

mod common;

use common::certs::TestPki;
use sockloop::net::TcpListener;
use sockloop::tls::rustls;
use sockloop::tls::rustls::pki_types::{CertificateDer, ServerName};
use sockloop::{
    Buffer, CloseReason, Context, EventLoop, Handler, LoopHandle, ServerConfig, TlsConfig,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

type Log = Arc<Mutex<Vec<String>>>;

struct Loop {
    addr: SocketAddr,
    handle: LoopHandle,
    join: Option<JoinHandle<()>>,
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = self.handle.stop();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

/// A loop on its own thread serving TLS with handlers from `factory`.
fn serve<F>(
    pki: &TestPki,
    tune: impl FnOnce(&mut ServerConfig) + Send + 'static,
    factory: F,
) -> Loop
where
    F: FnMut(sockloop::ConnId) -> Box<dyn Handler> + Send + 'static,
{
    let server = sockloop::tls::server_config_from_pem(&pki.cert, &pki.key, &[b"echo/1"]).unwrap();
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().expect("loop");
        let l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let mut config = ServerConfig {
            tls: Some(TlsConfig::new(server)),
            ..ServerConfig::default()
        };
        tune(&mut config);
        ev.listen(l, config, factory).unwrap();
        tx.send((addr, ev.handle())).unwrap();
        ev.run().expect("run");
    });
    let (addr, handle) = rx.recv().expect("loop started");
    Loop {
        addr,
        handle,
        join: Some(join),
    }
}

fn client_config(pki: &TestPki, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca_der.clone())).unwrap();
    let mut c = rustls::ClientConfig::builder_with_provider(sockloop::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

type Client = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Client {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let conn =
        rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Echoes, and greets on open with what it knows of the TLS session.
struct Echo {
    log: Log,
}

impl Handler for Echo {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let greeting = format!(
            "hello tls={} alpn={:?} sni={:?} version={:?}\n",
            ctx.is_tls(),
            ctx.alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            ctx.sni(),
            ctx.tls_version()
        );
        let _ = ctx.write(greeting.as_bytes());
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if input.as_slice() == b"close\n" {
            ctx.close();
            input.clear();
            return;
        }
        if ctx.write(input.as_slice()).is_ok() {
            input.clear();
        }
    }
    fn on_peer_closed(&mut self, ctx: &mut Context<'_>) {
        self.log.lock().unwrap().push("peer closed".into());
        ctx.close();
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
        self.log.lock().unwrap().push(format!("{reason:?}"));
    }
}

fn echo_server(
    pki: &TestPki,
    tune: impl FnOnce(&mut ServerConfig) + Send + 'static,
) -> (Loop, Log) {
    let log: Log = Arc::default();
    let l2 = log.clone();
    let lp = serve(pki, tune, move |_| Box::new(Echo { log: l2.clone() }));
    (lp, log)
}

fn read_line(c: &mut Client) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while c.read(&mut b).unwrap() == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    String::from_utf8(line).unwrap()
}

/// Waits (bounded) until the log has `n` entries; returns them.
fn wait_log(log: &Log, n: usize) -> Vec<String> {
    for _ in 0..1000 {
        {
            let l = log.lock().unwrap();
            if l.len() >= n {
                return l.clone();
            }
        }
        std::thread::sleep(Duration::from_millis(10)); // polling pace, bounded
    }
    panic!("log never reached {n} entries: {:?}", log.lock().unwrap());
}

#[test]
fn on_open_after_the_handshake_sees_alpn_sni_and_version_and_echo_works() {
    let pki = TestPki::new("open");
    let (lp, log) = echo_server(&pki, |_| {});
    for alpn in [&[b"echo/1" as &[u8]][..], &[]] {
        let mut c = connect(lp.addr, client_config(&pki, alpn));
        let greeting = read_line(&mut c);
        let want_alpn = if alpn.is_empty() {
            "None"
        } else {
            "Some(\"echo/1\")"
        };
        assert_eq!(
            greeting,
            format!(
                "hello tls=true alpn={want_alpn} sni=Some(\"localhost\") version=Some(TLSv1_3)\n"
            )
        );
        c.write_all(b"ping\n").unwrap();
        assert_eq!(read_line(&mut c), "ping\n");
        // close: close_notify, then FIN: a clean end for the client.
        c.write_all(b"close\n").unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("close_notify before FIN");
        assert!(rest.is_empty());
    }
    assert_eq!(wait_log(&log, 2), ["Local", "Local"]);
}

#[test]
fn tls12_works_too() {
    let pki = TestPki::new("tls12");
    let (lp, _log) = echo_server(&pki, |_| {});
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca_der.clone())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(sockloop::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut c = connect(lp.addr, Arc::new(config));
    assert!(read_line(&mut c).ends_with("version=Some(TLSv1_2)\n"));
    c.write_all(b"twelve\n").unwrap();
    assert_eq!(read_line(&mut c), "twelve\n");
}

/// The data the client sends with its close_notify is delivered, then the
/// handler hears that the peer closed.
#[test]
fn data_sent_with_close_notify_is_delivered() {
    let pki = TestPki::new("notify");
    let log: Log = Arc::default();
    let l2 = log.clone();
    struct Collect {
        got: Vec<u8>,
        log: Log,
    }
    impl Handler for Collect {
        fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
            self.got.extend_from_slice(input.as_slice());
            input.clear();
        }
        fn on_peer_closed(&mut self, ctx: &mut Context<'_>) {
            self.log
                .lock()
                .unwrap()
                .push(format!("got {} bytes", self.got.len()));
            ctx.close();
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
            self.log.lock().unwrap().push(format!("{reason:?}"));
        }
    }
    let lp = serve(
        &pki,
        |_| {},
        move |_| {
            Box::new(Collect {
                got: Vec::new(),
                log: l2.clone(),
            })
        },
    );
    let mut c = connect(lp.addr, client_config(&pki, &[]));
    let payload = vec![b'x'; 100_000];
    c.write_all(&payload).unwrap();
    c.conn.send_close_notify();
    while c.conn.wants_write() {
        c.conn.write_tls(&mut c.sock).unwrap();
    }
    c.sock.shutdown(Shutdown::Write).unwrap();
    assert_eq!(wait_log(&log, 2), ["got 100000 bytes", "PeerClosed"]);
}

/// FIN without close_notify: TlsTruncated, unless the listener allows it.
#[test]
fn eof_without_close_notify_is_truncated_unless_allowed() {
    let pki = TestPki::new("trunc");
    for allow in [false, true] {
        let (lp, log) = echo_server(&pki, move |c| {
            c.tls.as_mut().unwrap().allow_truncation = allow;
        });
        let mut c = connect(lp.addr, client_config(&pki, &[]));
        read_line(&mut c);
        c.sock.shutdown(Shutdown::Write).unwrap();
        let entries = wait_log(&log, 1);
        if allow {
            assert_eq!(entries[0], "peer closed");
        } else {
            assert_eq!(entries, ["TlsTruncated"]);
        }
    }
}

/// A peer that connects and never finishes the handshake is closed at the
/// deadline.
#[test]
fn a_stalled_handshake_is_closed_at_its_deadline() {
    let pki = TestPki::new("stall");
    let (lp, log) = echo_server(&pki, |c| {
        c.tls.as_mut().unwrap().handshake_timeout = Duration::from_millis(300);
    });
    let mut s = TcpStream::connect(lp.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[0x16, 0x03, 0x01]).unwrap(); // a record header, cut short
    let mut b = [0u8; 64];
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "closed without a byte");
    assert_eq!(wait_log(&log, 1), ["TlsHandshakeTimeout"]);
}

/// Plaintext HTTP and garbage on the TLS port: that connection gets an
/// alert and is closed; the server goes on serving others.
#[test]
fn plaintext_http_and_garbage_close_only_that_connection_with_an_alert() {
    let pki = TestPki::new("garbage");
    let (lp, log) = echo_server(&pki, |_| {});
    let mut good = connect(lp.addr, client_config(&pki, &[]));
    read_line(&mut good);
    for input in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &[0u8; 300][..]] {
        let mut s = TcpStream::connect(lp.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(input).unwrap();
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        assert_eq!(
            reply,
            [21, 3, 3, 0, 2, 2, 50],
            "a decode_error alert, then FIN"
        );
    }
    let entries = wait_log(&log, 2);
    assert!(entries.iter().all(|e| e.starts_with("Tls(")), "{entries:?}");
    good.write_all(b"still here\n").unwrap();
    assert_eq!(read_line(&mut good), "still here\n");
}

/// A client that does not trust the server: the server sees the client's
/// alert as a TLS error for that connection only.
#[test]
fn an_untrusting_client_fails_its_handshake_cleanly() {
    let pki = TestPki::new("untrust");
    let other = TestPki::new("untrust-other");
    let (lp, log) = echo_server(&pki, |_| {});
    let mut c = connect(lp.addr, client_config(&other, &[]));
    let err = c.write_all(b"x").and_then(|_| c.flush()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    drop(c);
    let entries = wait_log(&log, 1);
    assert!(entries[0].starts_with("Tls("), "{entries:?}");
}

/// Plaintext is what the input limit counts: unconsumed input past
/// max_input ends the connection with InputLimit (an RST for the peer).
#[test]
fn the_input_limit_applies_to_plaintext() {
    let pki = TestPki::new("limit");
    let log: Log = Arc::default();
    let l2 = log.clone();
    struct Hoard(Log);
    impl Handler for Hoard {
        fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
            // It sees what one read brought (up to a 64 KiB chunk past the
            // maximum) before the limit is judged, never more.
            assert!(
                input.len() <= 10_000 + 65_536,
                "read past the maximum: {}",
                input.len()
            );
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
            self.0.lock().unwrap().push(format!("{reason:?}"));
        }
    }
    let lp = serve(
        &pki,
        |c| c.conn.max_input = 10_000,
        move |_| Box::new(Hoard(l2.clone())),
    );
    let mut c = connect(lp.addr, client_config(&pki, &[]));
    // 9,000 bytes fit; 20,000 do not.
    c.write_all(&[1u8; 9_000]).unwrap();
    c.flush().unwrap();
    let _ = c.write_all(&[2u8; 11_000]);
    assert_eq!(wait_log(&log, 1), ["InputLimit"]);
    // Past the session tickets still unread: the RST.
    let mut b = [0u8; 4096];
    let end = loop {
        match c.sock.read(&mut b) {
            Ok(0) => break None,
            Ok(_) => continue,
            Err(e) => break Some(e.kind()),
        }
    };
    assert_eq!(
        end,
        Some(ErrorKind::ConnectionReset),
        "a tripped limit is an RST"
    );
}

/// 8 MiB written in on_open to a client that reads slowly: the TLS bytes
/// queue, EPOLLOUT flushes them, on_drain runs, nothing is lost.
#[test]
fn a_large_reply_is_flushed_across_epollout_byte_exact() {
    let pki = TestPki::new("bulk");
    let log: Log = Arc::default();
    let l2 = log.clone();
    struct Bulk(Log);
    impl Handler for Bulk {
        fn on_open(&mut self, ctx: &mut Context<'_>) {
            let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
            ctx.write(&data).unwrap();
            ctx.close();
        }
        fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
            input.clear();
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
            self.0.lock().unwrap().push(format!("{reason:?}"));
        }
    }
    let lp = serve(
        &pki,
        |c| c.conn.max_output = 16 << 20,
        move |_| Box::new(Bulk(l2.clone())),
    );
    let mut c = connect(lp.addr, client_config(&pki, &[]));
    let mut got = Vec::new();
    c.read_to_end(&mut got)
        .expect("a clean close_notify at the end");
    assert_eq!(got.len(), 8 << 20);
    assert!(got
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i as u32 % 251) as u8));
    drop(c); // our FIN: the server's graceful close completes
    assert_eq!(wait_log(&log, 1), ["Local"]);
}

/// The client side: ctx.connect_tls to a TLS echo, verified against the
/// right CA (works) and a wrong one (a TLS error, on_close).
#[test]
fn connect_tls_verifies_the_server() {
    let pki = TestPki::new("connect");
    let other = TestPki::new("connect-other");
    let (lp, _log) = echo_server(&pki, |_| {});
    for (trust, ok) in [(&pki, true), (&other, false)] {
        let config = client_config(trust, &[b"echo/1"]);
        let result: Log = Arc::default();
        struct Probe {
            result: Log,
            got: Vec<u8>,
        }
        impl Handler for Probe {
            fn on_open(&mut self, ctx: &mut Context<'_>) {
                let alpn = ctx.alpn_protocol().map(|p| p.to_vec());
                self.result
                    .lock()
                    .unwrap()
                    .push(format!("open alpn={:?}", alpn.map(String::from_utf8)));
                ctx.write(b"via connect_tls\n").unwrap();
            }
            fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
                self.got.extend_from_slice(input.as_slice());
                input.clear();
                if self.got.ends_with(b"via connect_tls\n") {
                    self.result.lock().unwrap().push("echoed".into());
                    ctx.close();
                }
            }
            fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
                self.result.lock().unwrap().push(format!("{reason:?}"));
                ctx.stop();
            }
        }
        let mut ev = EventLoop::new().unwrap();
        // A long linger: a close that missed the peer's FIN (sent with the
        // last record, one edge for both) would wait for it and fail the
        // deadline below.
        ev.set_conn_config(sockloop::ConnConfig {
            linger: Duration::from_secs(60),
            ..sockloop::ConnConfig::default()
        });
        let started = std::time::Instant::now();
        let probe = Probe {
            result: result.clone(),
            got: Vec::new(),
        };
        ev.context()
            .connect_tls(
                lp.addr,
                Some(Duration::from_secs(5)),
                config,
                ServerName::try_from("localhost").unwrap(),
                Box::new(probe),
            )
            .unwrap();
        ev.run_once(Some(Duration::from_secs(10))).unwrap();
        for _ in 0..100 {
            if ev.connection_count() == 0 || started.elapsed() > Duration::from_secs(20) {
                break;
            }
            ev.run_once(Some(Duration::from_secs(1))).unwrap();
        }
        let r = result.lock().unwrap().clone();
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "closing took {:?}: the FIN was missed",
            started.elapsed()
        );
        if ok {
            assert_eq!(r, ["open alpn=Some(Ok(\"echo/1\"))", "echoed", "Local"]);
            // The loop's counters count plaintext, as for plain TCP.
            let stats = ev.stats();
            // In: the echo's greeting, then our 16 bytes back.
            let greeting = "hello tls=true alpn=Some(\"echo/1\") sni=Some(\"localhost\") \
                            version=Some(TLSv1_3)\n";
            let want_in = (greeting.len() + 16) as u64;
            assert_eq!((stats.bytes_in, stats.bytes_out), (want_in, 16), "{stats}");
        } else {
            assert_eq!(r.len(), 1, "{r:?}");
            assert!(
                r[0].starts_with("Tls(") && r[0].contains("InvalidCertificate"),
                "{r:?}"
            );
        }
    }
}

/// A server that accepts the TCP connection and never answers the
/// ClientHello: `connect_tls`'s timeout bounds the handshake too.
#[test]
fn connect_tls_bounds_a_stalled_handshake_by_its_timeout() {
    let pki = TestPki::new("stalled-server");
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = mute.local_addr().unwrap();
    let result: Log = Arc::default();
    struct Probe(Log);
    impl Handler for Probe {
        fn on_open(&mut self, _ctx: &mut Context<'_>) {
            self.0.lock().unwrap().push("open".into());
        }
        fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
            input.clear();
        }
        fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
            self.0.lock().unwrap().push(format!("{reason:?}"));
            ctx.stop();
        }
    }
    let mut ev = EventLoop::new().unwrap();
    let started = std::time::Instant::now();
    ev.context()
        .connect_tls(
            addr,
            Some(Duration::from_millis(300)),
            client_config(&pki, &[]),
            ServerName::try_from("localhost").unwrap(),
            Box::new(Probe(result.clone())),
        )
        .unwrap();
    // The kernel completes the TCP handshake from the backlog; nobody
    // ever reads the ClientHello.
    while ev.connection_count() > 0 && started.elapsed() < Duration::from_secs(15) {
        ev.run_once(Some(Duration::from_secs(1))).unwrap();
    }
    let took = started.elapsed();
    assert_eq!(*result.lock().unwrap(), ["TlsHandshakeTimeout"]);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "closed after {took:?}, not at the 300 ms bound (the default is 10 s)"
    );
    drop(mute);
}

/// With the feature on, a plain listener is plain: no TLS state, the same
/// bytes as ever.
#[test]
fn a_plain_listener_in_a_tls_build_stays_plain() {
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().unwrap();
        let l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), |_| {
            Box::new(|ctx: &mut Context<'_>, input: &mut Buffer| {
                let info = format!(
                    "tls={} alpn={:?} sni={:?} version={:?} {}",
                    ctx.is_tls(),
                    ctx.alpn_protocol(),
                    ctx.sni(),
                    ctx.tls_version(),
                    String::from_utf8_lossy(input.as_slice())
                );
                let _ = ctx.write(info.as_bytes());
                input.clear();
                ctx.close();
            })
        })
        .unwrap();
        tx.send((addr, ev.handle())).unwrap();
        ev.run().unwrap();
    });
    let (addr, handle) = rx.recv().unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"plain").unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert_eq!(got, "tls=false alpn=None sni=None version=None plain");
    handle.stop().unwrap();
    join.join().unwrap();
}

/// `abort` on a TLS connection is an RST, as on TCP; the idle timeout
/// closes a TLS connection that moves no bytes.
#[test]
fn abort_resets_and_the_idle_timeout_applies() {
    let pki = TestPki::new("abort");
    let log: Log = Arc::default();
    let l2 = log.clone();
    struct Abort(Log);
    impl Handler for Abort {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            input.clear();
            ctx.abort();
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
            self.0.lock().unwrap().push(format!("{reason:?}"));
        }
    }
    let lp = serve(
        &pki,
        |c| c.conn.idle_timeout = Some(Duration::from_millis(300)),
        move |_| Box::new(Abort(l2.clone())),
    );
    let mut c = connect(lp.addr, client_config(&pki, &[]));
    c.write_all(b"x").unwrap();
    c.flush().unwrap();
    let mut b = [0u8; 4096];
    let end = loop {
        match c.sock.read(&mut b) {
            Ok(0) => break None,
            Ok(_) => continue, // session tickets
            Err(e) => break Some(e.kind()),
        }
    };
    assert_eq!(end, Some(ErrorKind::ConnectionReset));
    assert_eq!(wait_log(&log, 1), ["Aborted"]);
    // A second client completes the handshake and then says nothing.
    let mut idle = connect(lp.addr, client_config(&pki, &[]));
    idle.conn.complete_io(&mut idle.sock).unwrap();
    assert_eq!(wait_log(&log, 2), ["Aborted", "IdleTimeout"]);
}
