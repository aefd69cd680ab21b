//! The TLS examples (feature `tls`) against real clients no one here
//! wrote: curl (TLS 1.3 and 1.2), `openssl s_client`, `h2load --h1`,
//! socat `OPENSSL:`; the proxy in front of a TLS echo; and the bad inputs:
//! bad certificate/key files, plaintext HTTP on the TLS port, a
//! renegotiation request. Certificates (ECDSA P-256) are made at test time.
//! A missing client skips loudly (fails under SOCKLOOP_REQUIRE_CLIENTS=1).
#![cfg(feature = "tls")]

mod common;

use common::certs::TestPki;
use common::{client, example_binary, run, text, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn arg(p: &Path) -> &str {
    TestPki::arg(p)
}

fn https(pki: &TestPki) -> Server {
    Server::start(
        "http",
        &["--tls-cert", arg(&pki.cert), "--tls-key", arg(&pki.key)],
    )
}

fn tls_echo(pki: &TestPki) -> Server {
    Server::start(
        "echo",
        &["--tls-cert", arg(&pki.cert), "--tls-key", arg(&pki.key)],
    )
}

#[test]
fn curl_over_tls13_and_tls12_with_alpn_keep_alive_and_connection_close() {
    let Some(curl) = client("curl") else { return };
    let pki = TestPki::new("curl");
    let server = https(&pki);
    let root = format!("https://localhost:{}/", server.port());
    let missing = format!("https://localhost:{}/nope", server.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.port());
    let ca = arg(&pki.ca);
    for (version, flags, want) in [
        ("1.3", &["--tlsv1.3"][..], "SSL connection using TLSv1.3"),
        (
            "1.2",
            &["--tlsv1.2", "--tls-max", "1.2"][..],
            "SSL connection using TLSv1.2",
        ),
    ] {
        // Two URLs on one connection: keep-alive over TLS, verified.
        let mut args = vec![
            "-sv",
            "--max-time",
            "10",
            "--cacert",
            ca,
            "--resolve",
            &resolve,
        ];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&root, &missing]);
        let out = run(30, &curl, &args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "curl TLS {version} failed: {stderr}");
        assert_eq!(stdout, "Hello, World!Not Found\n");
        assert!(stderr.contains(want), "TLS {version}:\n{stderr}");
        assert!(
            stderr.contains("ALPN: server accepted http/1.1"),
            "TLS {version}: no ALPN http/1.1:\n{stderr}"
        );
        assert!(
            stderr.contains("Re-using existing connection"),
            "TLS {version}: no keep-alive:\n{stderr}"
        );
        assert_eq!(stderr.matches("Connected to").count(), 1, "{stderr}");
    }
    // Connection: close is honoured: the answer says so and the server
    // closes (cleanly: curl reports no error).
    let out = run(
        30,
        &curl,
        &[
            "-sv",
            "--max-time",
            "10",
            "--cacert",
            ca,
            "--resolve",
            &resolve,
            "-H",
            "Connection: close",
            &root,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "curl Connection: close: {stderr}");
    assert_eq!(stdout, "Hello, World!");
    assert!(stderr.contains("< Connection: close"), "{stderr}");
    // A client that does not trust the CA refuses the server.
    let out = run(
        30,
        &curl,
        &["-sS", "--max-time", "10", "--resolve", &resolve, &root],
    );
    assert!(!out.status.success(), "curl accepted an unknown CA");
}

/// `openssl s_client` verifies the chain (return code 0), negotiates ALPN,
/// gets its answer; then a renegotiation request is refused.
#[test]
fn openssl_s_client_verifies_and_renegotiation_is_refused() {
    let Some(openssl) = client("openssl") else {
        return;
    };
    let pki = TestPki::new("s_client");
    let server = https(&pki);
    let connect = format!("127.0.0.1:{}", server.port());
    let mut child = Command::new("timeout")
        .args(["-k", "5", "20"])
        .arg(&openssl)
        .args(["s_client", "-connect", &connect, "-servername", "localhost"])
        .args(["-CAfile", arg(&pki.ca), "-verify_return_error"])
        .args(["-alpn", "http/1.1", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "s_client failed: {stderr}\n{stdout}");
    assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}");
    assert!(stdout.contains("ALPN protocol: http/1.1"), "{stdout}");
    assert!(stdout.contains("Protocol  : TLSv1.3"), "{stdout}");
    assert!(stdout.contains("Hello, World!"), "{stdout}");

    // TLS 1.2 renegotiation ("R" in s_client): refused, the server lives.
    let echo = tls_echo(&pki);
    let connect = format!("127.0.0.1:{}", echo.port());
    let mut child = Command::new("timeout")
        .args(["-k", "5", "20"])
        .arg(&openssl)
        .args(["s_client", "-connect", &connect, "-tls1_2"])
        .args(["-CAfile", arg(&pki.ca), "-verify_return_error"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"before\n").unwrap();
    // Wait for the echo, so that "R" comes after the handshake.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\nbefore\n") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "s_client ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    stdin.write_all(b"R\n").unwrap();
    drop(stdin);
    stdout.read_to_end(&mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let seen = String::from_utf8_lossy(&seen);
    let all = format!("{seen}\n{stderr}");
    assert!(
        all.contains("RENEGOTIATING"),
        "s_client did not try:\n{all}"
    );
    assert!(
        all.contains("no renegotiation"),
        "renegotiation was not refused:\n{all}"
    );
    // The server still serves.
    let out = run(
        20,
        &openssl,
        &[
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            arg(&pki.ca),
            "-brief",
        ],
    );
    let (_, stderr) = text(&out);
    assert!(stderr.contains("Verification: OK"), "{stderr}");
}

#[test]
fn h2load_h1_over_tls_100k_requests_none_failed() {
    let Some(h2load) = client("h2load") else {
        return;
    };
    let pki = TestPki::new("h2load");
    let server = https(&pki);
    let url = format!("https://127.0.0.1:{}/", server.port());
    let out = run(
        120,
        &h2load,
        &["--h1", "-n", "100000", "-c", "20", "-t", "1", &url],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "h2load failed: {stderr}\n{stdout}");
    assert!(stdout.contains("TLS Protocol: TLSv1.3"), "{stdout}");
    assert!(
        stdout.contains("100000 succeeded, 0 failed, 0 errored, 0 timeout"),
        "{stdout}"
    );
    assert!(stdout.contains("status codes: 100000 2xx"), "{stdout}");
}

/// `len` pseudo-random bytes (xorshift64*, fixed seed).
fn random_bytes(len: usize) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// socat with `input` on stdin to `address`; returns its stdout.
fn socat(pki: &TestPki, address: &str, input: &[u8]) -> Vec<u8> {
    let in_path = pki.path("in.bin");
    let out_path = pki.path("out.bin");
    std::fs::write(&in_path, input).unwrap();
    let status = Command::new("timeout")
        .args(["-k", "5", "120", "socat", "-t", "30", "-", address])
        .stdin(Stdio::from(std::fs::File::open(&in_path).unwrap()))
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(status.success(), "socat {address}: {status}");
    std::fs::read(&out_path).unwrap()
}

fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn socat_16_mib_byte_exact_through_the_tls_echo() {
    if client("socat").is_none() {
        return;
    }
    let pki = TestPki::new("socat");
    let echo = tls_echo(&pki);
    let data = random_bytes(16 << 20);
    let address = format!("OPENSSL:127.0.0.1:{},cafile={}", echo.port(), arg(&pki.ca));
    let got = socat(&pki, &address, &data);
    assert_same(&got, &data, "16 MiB through the TLS echo");
}

/// The proxy (plain on its side) in front of a TLS echo: 16 MiB byte for
/// byte; with a CA that does not sign the echo's certificate, the client
/// is closed without a byte.
#[test]
fn the_proxy_in_front_of_a_tls_echo() {
    if client("socat").is_none() {
        return;
    }
    let pki = TestPki::new("proxy");
    let other = TestPki::new("proxy-other");
    let echo = tls_echo(&pki);
    let upstream = echo.addr.to_string();
    let proxy_bin = example_binary("proxy");
    let start_proxy = |ca: &Path| {
        common::procs::Server::start(
            &proxy_bin,
            &[
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &upstream,
                "--upstream-tls",
                "localhost",
                "--ca",
                arg(ca),
            ],
        )
    };
    let proxy = start_proxy(&pki.ca);
    let data = random_bytes(16 << 20);
    let got = socat(&pki, &format!("TCP:{}", proxy.addr), &data);
    assert_same(&got, &data, "16 MiB through proxy + TLS echo");

    let bad = start_proxy(&other.ca);
    let mut s = TcpStream::connect(bad.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"hello?\n").unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        got.is_empty(),
        "an unverified upstream got through: {got:?}"
    );
    let line = bad.wait_for_log("TLS error", Duration::from_secs(20));
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains("invalid peer certificate")),
        "{line:?}"
    );
}

/// Plaintext HTTP on the TLS port: that connection gets an alert and is
/// closed; the server goes on serving TLS.
#[test]
fn plaintext_http_on_the_tls_port_gets_an_alert_and_the_server_lives() {
    let Some(curl) = client("curl") else { return };
    let pki = TestPki::new("plain");
    let server = https(&pki);
    let plain = format!("http://127.0.0.1:{}/", server.port());
    let out = run(30, &curl, &["-sS", "--max-time", "10", &plain]);
    assert!(!out.status.success(), "curl got an answer over plaintext");
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert_eq!(
        reply,
        [21, 3, 3, 0, 2, 2, 50],
        "decode_error alert, then FIN"
    );
    let resolve = format!("localhost:{}:127.0.0.1", server.port());
    let url = format!("https://localhost:{}/", server.port());
    let out = run(
        30,
        &curl,
        &[
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            arg(&pki.ca),
            "--resolve",
            &resolve,
            &url,
        ],
    );
    assert_eq!(text(&out).0, "Hello, World!");
}

/// Missing, unreadable, non-PEM or mismatched files: a clear message and
/// exit status 2, before anything is served.
#[test]
fn bad_certificate_and_key_files_exit_2_with_a_clear_error() {
    let pki = TestPki::new("badfiles");
    let other = TestPki::new("badfiles-other");
    let junk = pki.path("junk.pem");
    std::fs::write(&junk, "not a PEM file\n").unwrap();
    let missing = pki.path("missing.pem");
    let (cert, key) = (arg(&pki.cert), arg(&pki.key));
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "http",
            vec!["--tls-cert", arg(&missing), "--tls-key", key],
            "missing.pem: No such file",
        ),
        (
            "echo",
            vec!["--tls-cert", cert, "--tls-key", arg(&missing)],
            "missing.pem: No such file",
        ),
        (
            "http",
            vec!["--tls-cert", arg(&junk), "--tls-key", key],
            "no PEM certificate",
        ),
        (
            "echo",
            vec!["--tls-cert", cert, "--tls-key", arg(&junk)],
            "no PEM private key",
        ),
        (
            "http",
            vec!["--tls-cert", cert, "--tls-key", arg(&other.key)],
            "key.pem with",
        ),
        (
            "http",
            vec!["--tls-cert", cert],
            "--tls-cert and --tls-key go together",
        ),
        (
            "proxy",
            vec!["--upstream-tls", "localhost", "--ca", arg(&junk)],
            "no PEM certificate",
        ),
        (
            "proxy",
            vec!["--ca", arg(&pki.ca)],
            "--ca needs --upstream-tls",
        ),
    ];
    for (example, args, want) in cases {
        let out = Command::new("timeout")
            .args(["-k", "5", "30"])
            .arg(example_binary(example))
            .args(
                ["--listen", "127.0.0.1:0"]
                    .iter()
                    .filter(|_| example == "proxy"),
            )
            .args(
                ["--addr", "127.0.0.1:0"]
                    .iter()
                    .filter(|_| example != "proxy"),
            )
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{example} {args:?}: {stderr}");
        assert!(stderr.contains(want), "{example} {args:?}: {stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
}

/// TLS on a cluster: every balance mode (connections accepted by each
/// loop, or handed from one to another) serves https.
#[test]
fn https_on_two_loops_in_every_balance_mode() {
    let Some(curl) = client("curl") else { return };
    let pki = TestPki::new("cluster");
    for mode in ["reuseport", "exclusive", "handoff"] {
        let server = Server::start(
            "http",
            &[
                "--threads",
                "2",
                "--balance",
                mode,
                "--tls-cert",
                arg(&pki.cert),
                "--tls-key",
                arg(&pki.key),
            ],
        );
        let resolve = format!("localhost:{}:127.0.0.1", server.port());
        let url = format!("https://localhost:{}/", server.port());
        for _ in 0..4 {
            // A new connection each time (one curl each): they land on
            // both loops.
            let args = [
                "-sS",
                "--max-time",
                "10",
                "--cacert",
                arg(&pki.ca),
                "--resolve",
                &resolve,
                &url,
            ];
            let out = run(30, &curl, &args);
            let (stdout, stderr) = text(&out);
            assert_eq!(stdout, "Hello, World!", "{mode}: {stderr}");
        }
    }
}
