//! The HTTP example against curl: GET, HEAD, 404, and keep-alive reuse.

mod common;

use common::http::mask_dates_str;
use common::{client, run, text, Server};

#[test]
fn get_head_404_and_connection_reuse() {
    let Some(curl) = client("curl") else { return };
    let server = Server::start("http", &[]);
    let root = format!("http://{}/", server.addr);
    let missing = format!("http://{}/nope", server.addr);

    // GET /: status, headers and body, byte for byte (the date checked
    // for its form, then compared as the epoch).
    let out = run(30, &curl, &["-sS", "-i", "--max-time", "10", &root]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "curl GET failed: {stderr}");
    assert_eq!(
        mask_dates_str(&stdout),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
         Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nHello, World!"
    );

    // HEAD /: the same head, no body.
    let out = run(30, &curl, &["-sS", "-I", "--max-time", "10", &root]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "curl HEAD failed: {stderr}");
    assert_eq!(
        mask_dates_str(&stdout),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\
         Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n"
    );

    // Another path: 404 with a body of the announced length.
    let out = run(
        30,
        &curl,
        &[
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{size_download}",
            &missing,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "curl 404 failed: {stderr}");
    assert_eq!(stdout, "Not Found\n\n404 10");

    // Two URLs in one call share one connection (keep-alive).
    let out = run(30, &curl, &["-sv", "--max-time", "10", &root, &missing]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "curl keep-alive failed: {stderr}");
    assert_eq!(stdout, "Hello, World!Not Found\n");
    assert!(
        stderr.contains("Re-using existing connection"),
        "curl opened a second connection:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("Connected to").count(),
        1,
        "more than one connection:\n{stderr}"
    );

    // A POST body is read and discarded; the connection stays usable.
    let out = run(
        30,
        &curl,
        &[
            "-sv",
            "--max-time",
            "10",
            "--data-binary",
            "some body bytes",
            &missing,
            "--next",
            "--max-time",
            "10",
            &root,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "curl POST failed: {stderr}");
    assert_eq!(stdout, "Not Found\nHello, World!");
    assert!(
        stderr.contains("Re-using existing connection"),
        "no reuse after a POST:\n{stderr}"
    );
}

#[test]
fn refusals_and_http10() {
    let Some(curl) = client("curl") else { return };
    let server = Server::start("http", &[]);
    let root = format!("http://{}/", server.addr);
    let code = |args: &[&str]| {
        let mut all = vec![
            "-sS",
            "-o",
            "/dev/null",
            "--max-time",
            "10",
            "-w",
            "%{http_code}",
        ];
        all.extend_from_slice(args);
        all.push(&root);
        let out = run(30, &curl, &all);
        text(&out).0
    };
    // A head over 8 KiB: 431.
    let big = format!("X-Big: {}", "a".repeat(9000));
    assert_eq!(code(&["-H", &big]), "431");
    // A chunked body is read (POST on /: 405); another transfer coding
    // is 501.
    assert_eq!(
        code(&["-H", "Transfer-Encoding: chunked", "--data-binary", "x"]),
        "405"
    );
    assert_eq!(
        code(&[
            "-H",
            "Transfer-Encoding: gzip, chunked",
            "--data-binary",
            "x"
        ]),
        "501"
    );
    // A body over 1 MiB: 413.
    assert_eq!(code(&["-H", "Content-Length: 2000000"]), "413");
    // Other methods on /: 405.
    assert_eq!(code(&["-X", "DELETE"]), "405");

    // HTTP/1.0: answered, then closed (curl cannot reuse the connection).
    let out = run(
        30,
        &curl,
        &["-sv", "--http1.0", "--max-time", "10", &root, &root],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "curl --http1.0 failed: {stderr}");
    assert_eq!(stdout, "Hello, World!Hello, World!");
    assert_eq!(stderr.matches("Connected to").count(), 2, "{stderr}");
    // HTTP/1.0 with keep-alive: the answer says so and the connection is
    // reused.
    let out = run(
        30,
        &curl,
        &[
            "-sv",
            "--http1.0",
            "-H",
            "Connection: keep-alive",
            "--max-time",
            "10",
            &root,
            &root,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout, "Hello, World!Hello, World!");
    assert!(stderr.contains("< Connection: keep-alive"), "{stderr}");
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");
    // Connection: close is honored.
    let out = run(
        30,
        &curl,
        &["-sv", "-H", "Connection: close", "--max-time", "10", &root],
    );
    let (_, stderr) = text(&out);
    assert!(stderr.contains("< Connection: close"), "{stderr}");
}
