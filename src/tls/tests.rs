//! The session over real socketpairs: both ends in this thread, each step
//! moving what the other side made available (deterministic, no waiting).

use super::*;
use crate::buffer::Buffer;
use crate::io::IoStatus;
use crate::sys;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

struct Pki {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A CA and a leaf for "localhost", both ECDSA P-256, made now.
fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let leaf = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca: ca.der().clone(),
        chain: vec![leaf.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

fn configs(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let p = pki();
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(p.chain.clone(), p.key.clone_key())
        .unwrap();
    server.alpn_protocols = vec![b"h2x".to_vec(), b"echo/1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.ca).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"echo/1".to_vec()];
    (Arc::new(server), Arc::new(client))
}

struct End {
    fd: OwnedFd,
    tls: TlsSession,
    plain: Buffer,
    spill: Vec<u8>,
}

impl End {
    /// As `read_all`, then once more: what the reactor does after a drained
    /// read when EPOLLRDHUP said the FIN is queued behind the data.
    fn read_to_end(&mut self) -> Vec<TlsRead> {
        let ends = self.read_all();
        if ends.is_empty() {
            return self.read_all();
        }
        ends
    }

    /// Reads until drained, collecting every result but `Data`.
    fn read_all(&mut self) -> Vec<TlsRead> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            match self
                .tls
                .read(self.fd.as_fd(), &mut self.plain, &mut self.spill)
            {
                TlsRead::Data { drained: true, .. } => return out,
                TlsRead::Data { .. } => {}
                other => {
                    out.push(other);
                    return out;
                }
            }
        }
        panic!("read never drained");
    }

    fn flush(&mut self) -> bool {
        self.tls.send_to(self.fd.as_fd()).unwrap()
    }
}

fn pair(versions: &[&'static rustls::SupportedProtocolVersion]) -> (End, End) {
    let (s, c) = configs(versions);
    let (a, b) = sys::socket::socketpair(sys::socket::SOCK_STREAM).unwrap();
    let server = End {
        fd: a,
        tls: TlsSession::server(s).unwrap(),
        plain: Buffer::new(),
        spill: vec![0; 64 * 1024],
    };
    let client = End {
        fd: b,
        tls: TlsSession::client(c, ServerName::try_from("localhost").unwrap()).unwrap(),
        plain: Buffer::new(),
        spill: vec![0; 64 * 1024],
    };
    (server, client)
}

/// Runs the handshake: each side reads until drained, then flushes.
fn handshake(server: &mut End, client: &mut End) {
    for _ in 0..20 {
        assert!(client.flush());
        assert!(server.read_all().is_empty());
        assert!(server.flush());
        assert!(client.read_all().is_empty());
        if !server.tls.is_handshaking() && !client.tls.is_handshaking() && !client.tls.wants_write()
        {
            assert!(client.flush());
            assert!(server.read_all().is_empty());
            assert!(server.flush());
            return;
        }
    }
    panic!("handshake did not finish");
}

#[test]
fn handshake_reports_alpn_sni_and_version_and_carries_bytes() {
    for v in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let (mut server, mut client) = pair(&[v]);
        handshake(&mut server, &mut client);
        assert_eq!(server.tls.alpn_protocol(), Some(&b"echo/1"[..]));
        assert_eq!(server.tls.sni(), Some("localhost"));
        assert_eq!(server.tls.protocol_version(), Some(v.version));
        client.tls.write(b"ping").unwrap();
        assert!(client.flush());
        assert!(server.read_all().is_empty());
        assert_eq!(server.plain.as_slice(), b"ping");
        server.tls.write(b"pong").unwrap();
        assert!(server.flush());
        assert!(client.read_all().is_empty());
        assert_eq!(client.plain.as_slice(), b"pong");
    }
}

/// Many records arrive in one go: one series of reads up to "drained"
/// gets them all, with no further edge needed.
#[test]
fn every_record_of_a_read_is_processed_before_drained() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    handshake(&mut server, &mut client);
    let mut sent = Vec::new();
    for i in 0..200u32 {
        let rec = format!("record {i};");
        client.tls.write(rec.as_bytes()).unwrap(); // one record each
        sent.extend_from_slice(rec.as_bytes());
    }
    assert!(client.flush());
    assert!(server.read_all().is_empty());
    assert_eq!(server.plain.as_slice(), &sent[..]);
}

/// The reader's buffer is small: decrypted bytes wait in the session, the
/// read says "not drained" (Full) until they are taken, and all arrive
/// although the socket itself was emptied long before.
#[test]
fn a_full_plaintext_buffer_keeps_the_readiness() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    handshake(&mut server, &mut client);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    client.tls.write(&data).unwrap();
    // The socketpair's buffer holds less than that: send what fits.
    let mut got = Vec::new();
    server.plain.set_max(1000);
    let mut fulls = 0;
    for _ in 0..100_000 {
        let done = client.flush();
        match server
            .tls
            .read(server.fd.as_fd(), &mut server.plain, &mut server.spill)
        {
            TlsRead::Data { drained, .. } => {
                assert!(server.plain.len() <= 1000, "the maximum holds");
                if !drained && server.plain.len() == 1000 {
                    fulls += 1;
                }
                if drained {
                    assert!(
                        server.plain.len() < 1000 || got.len() + server.plain.len() == data.len(),
                        "drained while the buffer was full"
                    );
                }
                got.extend_from_slice(server.plain.as_slice());
                server.plain.clear();
                if drained && done && got.len() == data.len() {
                    break;
                }
            }
            TlsRead::Full => {
                fulls += 1;
                assert_eq!(server.plain.len(), 1000);
                got.extend_from_slice(server.plain.as_slice());
                server.plain.clear();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        got == data,
        "bytes lost or reordered ({} of {})",
        got.len(),
        data.len()
    );
    assert!(
        fulls > 0,
        "the buffer never filled: the test proves nothing"
    );
}

/// A Full that the reader does not answer by consuming stays Full: the
/// bytes are neither dropped nor read past the maximum.
#[test]
fn full_is_reported_until_the_reader_consumes() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    handshake(&mut server, &mut client);
    client.tls.write(&[7u8; 5000]).unwrap();
    assert!(client.flush());
    server.plain.set_max(100);
    let first = server
        .tls
        .read(server.fd.as_fd(), &mut server.plain, &mut server.spill);
    assert!(
        matches!(
            first,
            TlsRead::Data {
                n: 100,
                drained: false
            }
        ),
        "{first:?}"
    );
    for _ in 0..3 {
        let again = server
            .tls
            .read(server.fd.as_fd(), &mut server.plain, &mut server.spill);
        assert!(matches!(again, TlsRead::Full), "{again:?}");
        assert_eq!(server.plain.len(), 100);
    }
    server.plain.set_max(usize::MAX);
    assert!(server.read_all().is_empty());
    assert_eq!(server.plain.len(), 5000);
}

/// Data, close_notify and FIN in one burst: the data is delivered, then
/// `Closed`.
#[test]
fn data_that_arrives_with_close_notify_is_delivered() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    handshake(&mut server, &mut client);
    client.tls.write(b"last words").unwrap();
    client.tls.close_notify();
    assert!(
        client.tls.write(b"more").is_err(),
        "no writes after close_notify"
    );
    assert!(client.flush());
    sys::socket::shutdown(client.fd.as_fd(), sys::socket::SHUT_WR).unwrap();
    let ends = server.read_all();
    assert_eq!(server.plain.as_slice(), b"last words");
    assert!(matches!(ends[..], [TlsRead::Closed]), "{ends:?}");
    assert!(server.tls.peer_closed());
}

/// FIN without close_notify is not a clean end.
#[test]
fn eof_without_close_notify_is_truncated() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    handshake(&mut server, &mut client);
    client.tls.write(b"partial").unwrap();
    assert!(client.flush());
    sys::socket::shutdown(client.fd.as_fd(), sys::socket::SHUT_WR).unwrap();
    let ends = server.read_to_end();
    assert_eq!(server.plain.as_slice(), b"partial");
    assert!(matches!(ends[..], [TlsRead::Truncated]), "{ends:?}");
}

fn alert_sent(server: &mut End, client_fd: &OwnedFd) -> Vec<u8> {
    if !server.tls.wants_write() {
        return Vec::new();
    }
    assert!(server.flush());
    let mut buf = [0u8; 4096];
    let n = sys::io::read(client_fd.as_fd(), &mut buf).unwrap();
    buf[..n].to_vec()
}

/// Plaintext HTTP and garbage where a ClientHello should be: a protocol
/// error for this session, an alert record (content type 21) for the peer.
#[test]
fn plaintext_http_and_garbage_get_an_alert_not_a_panic() {
    // (input, whether rustls answers with an alert: it sends decode_error
    // for a bad record layer; for a handshake message that claims more
    // than its record holds it just fails)
    let inputs: [(&[u8], bool); 4] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true),
        (&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5], false),
        (&[0x16, 0x03, 0x03, 0xff, 0xff], true),
        (&[0u8; 64], true),
    ];
    for (input, alert_expected) in inputs {
        let (mut server, client) = pair(&[&rustls::version::TLS13, &rustls::version::TLS12]);
        assert_eq!(
            sys::io::send(client.fd.as_fd(), input).unwrap(),
            input.len()
        );
        let mut ends = server.read_all();
        if ends.is_empty() {
            // A record header announcing more: still waiting for it. The
            // peer gives up and closes: truncated, not an error of ours.
            sys::socket::shutdown(client.fd.as_fd(), sys::socket::SHUT_WR).unwrap();
            ends = server.read_to_end();
            assert!(
                matches!(ends[..], [TlsRead::Truncated]),
                "{input:?}: {ends:?}"
            );
            continue;
        }
        assert!(
            matches!(ends[..], [TlsRead::Protocol(_)]),
            "{input:?}: {ends:?}"
        );
        let alert = alert_sent(&mut server, &client.fd);
        if alert_expected {
            // Content type 21 (alert), TLS 1.2 record version, length 2,
            // level 2 (fatal), 50 (decode_error).
            assert_eq!(alert, [21, 3, 3, 0, 2, 2, 50], "{input:?}");
        } else {
            assert!(alert.is_empty(), "{input:?}: {alert:?}");
        }
        // Reading again after the error does not panic either.
        assert!(matches!(
            server
                .tls
                .read(server.fd.as_fd(), &mut server.plain, &mut server.spill),
            TlsRead::Io(IoStatus::BrokenPipe)
        ));
    }
}

/// A record whose ciphertext was altered: bad_record_mac, not a panic.
#[test]
fn a_corrupted_record_is_a_protocol_error_with_an_alert() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    handshake(&mut server, &mut client);
    client.tls.write(b"hello there").unwrap();
    let mut wire = Buffer::with_max(usize::MAX);
    client.tls.move_to(&mut wire);
    let mut bytes = wire.as_slice().to_vec();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x55;
    sys::io::send(client.fd.as_fd(), &bytes).unwrap();
    let ends = server.read_all();
    assert!(
        matches!(ends[..], [TlsRead::Protocol(rustls::Error::DecryptError)]),
        "{ends:?}"
    );
    let alert = alert_sent(&mut server, &client.fd);
    assert_eq!(
        alert[0], 23,
        "TLS 1.3 alerts are encrypted application records"
    );
    assert!(server.plain.is_empty(), "no plaintext from a forged record");
}

/// A socket that fills: `send_to` says so, the rest goes out when the peer
/// reads (the caller's EPOLLOUT), byte for byte.
#[test]
fn a_blocked_flush_resumes_and_loses_nothing() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    handshake(&mut server, &mut client);
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
    server.tls.write(&data).unwrap();
    let mut blocked = 0;
    let mut got = Vec::new();
    for _ in 0..100_000 {
        if !server.flush() {
            blocked += 1;
        }
        assert!(client.read_all().is_empty());
        got.extend_from_slice(client.plain.as_slice());
        client.plain.clear();
        if got.len() == data.len() {
            break;
        }
    }
    assert!(
        blocked > 0,
        "the socketpair never filled: the test proves nothing"
    );
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
}

/// Writes made during the handshake wait inside rustls and leave, in
/// order, once it is done.
#[test]
fn writes_before_the_handshake_ends_are_sent_after_it() {
    let (mut server, mut client) = pair(&[&rustls::version::TLS13]);
    client.tls.write(b"early ").unwrap();
    client.tls.write(b"bird").unwrap();
    handshake(&mut server, &mut client);
    assert!(client.flush());
    assert!(server.read_all().is_empty());
    assert_eq!(server.plain.as_slice(), b"early bird");
}

/// A client that does not trust the server's CA fails the handshake with
/// an error, on its side, not a panic.
#[test]
fn an_untrusted_certificate_fails_the_client_handshake() {
    let (s, _) = configs(&[&rustls::version::TLS13]);
    let (_, c) = configs(&[&rustls::version::TLS13]); // another CA
    let (a, b) = sys::socket::socketpair(sys::socket::SOCK_STREAM).unwrap();
    let mut server = End {
        fd: a,
        tls: TlsSession::server(s).unwrap(),
        plain: Buffer::new(),
        spill: vec![0; 65536],
    };
    let mut client = End {
        fd: b,
        tls: TlsSession::client(c, ServerName::try_from("localhost").unwrap()).unwrap(),
        plain: Buffer::new(),
        spill: vec![0; 65536],
    };
    assert!(client.flush());
    assert!(server.read_all().is_empty());
    assert!(server.flush());
    let ends = client.read_all();
    assert!(
        matches!(
            ends[..],
            [TlsRead::Protocol(rustls::Error::InvalidCertificate(_))]
        ),
        "{ends:?}"
    );
}

mod pem_files {
    use super::super::*;
    use std::path::PathBuf;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sockloop-pem-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write_pair(d: &std::path::Path) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (d.join("cert.pem"), d.join("key.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn good_files_make_a_config_with_alpn() {
        let d = dir("good");
        let (c, k) = write_pair(&d);
        let config = server_config_from_pem(&c, &k, &[b"http/1.1"]).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let client = client_config_from_pem(Some(&c), &[]).unwrap();
        assert!(client.alpn_protocols.is_empty());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn missing_non_pem_empty_and_mismatched_files_are_clear_errors() {
        let d = dir("bad");
        let (c, k) = write_pair(&d);
        let missing = d.join("nope.pem");
        let e = server_config_from_pem(&missing, &k, &[]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains("nope.pem"), "{e}");

        let junk = d.join("junk.pem");
        std::fs::write(&junk, b"this is not PEM at all\n").unwrap();
        let e = server_config_from_pem(&junk, &k, &[]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let e = server_config_from_pem(&c, &junk, &[]).unwrap_err();
        assert!(e.to_string().contains("no PEM private key"), "{e}");

        // A certificate where the key should be, and the reverse.
        let e = server_config_from_pem(&c, &c, &[]).unwrap_err();
        assert!(e.to_string().contains("private key"), "{e}");
        let e = server_config_from_pem(&k, &k, &[]).unwrap_err();
        assert!(e.to_string().contains("certificate"), "{e}");

        // A broken PEM section.
        let cut = d.join("cut.pem");
        let text = std::fs::read_to_string(&c).unwrap();
        std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
        let e = server_config_from_pem(&cut, &k, &[]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");

        // The key of another certificate.
        let other = dir("other");
        let (_, k2) = write_pair(&other);
        let e = server_config_from_pem(&c, &k2, &[]).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        std::fs::remove_dir_all(d).unwrap();
        std::fs::remove_dir_all(other).unwrap();
    }
}
