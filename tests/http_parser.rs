//! Unit tests of the HTTP example's request parser (a std-only module,
//! included here by path as the fuzz target does).

#[path = "../examples/http/parser.rs"]
mod parser;

use parser::{parse_request, HttpError, Method, Version, MAX_BODY, MAX_HEAD};

#[test]
fn simple_get_and_partial_input() {
    let req = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n";
    for cut in 0..req.len() {
        assert_eq!(parse_request(&req[..cut]), Ok(None), "cut at {cut}");
    }
    let (r, used) = parse_request(req).unwrap().unwrap();
    assert_eq!(used, req.len());
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.target, b"/a?b=c");
    assert_eq!(r.path(), b"/a");
    assert_eq!(r.version, Version::Http11);
    assert_eq!(r.header_count, 1);
    assert!(r.keep_alive());
}

#[test]
fn pipelined_requests_are_parsed_one_at_a_time() {
    let batch = b"GET / HTTP/1.1\r\n\r\nHEAD /x HTTP/1.1\r\n\r\nGET /y HT";
    let (a, n1) = parse_request(batch).unwrap().unwrap();
    assert_eq!((a.method, a.target), (Method::Get, &b"/"[..]));
    let (b, n2) = parse_request(&batch[n1..]).unwrap().unwrap();
    assert_eq!((b.method, b.target), (Method::Head, &b"/x"[..]));
    assert_eq!(parse_request(&batch[n1 + n2..]), Ok(None));
}

#[test]
fn keep_alive_rules() {
    let ka = |s: &[u8]| parse_request(s).unwrap().unwrap().0.keep_alive();
    assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.1\r\nconnection: Upgrade, CLOSE\r\n\r\n"));
    assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
    assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

#[test]
fn bare_lf_and_leading_empty_lines() {
    let (r, used) = parse_request(b"\r\n\nGET / HTTP/1.1\nA: b\n\nrest")
        .unwrap()
        .unwrap();
    assert_eq!(r.header_count, 1);
    assert_eq!(used, 24);
    assert_eq!(parse_request(b"\r\n"), Ok(None));
    assert_eq!(parse_request(b"\r"), Ok(None));
}

#[test]
fn content_length() {
    let (r, used) = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap()
        .unwrap();
    assert_eq!((r.content_length, used), (5, 38));
    let cl = |v: &str| -> Result<Option<usize>, HttpError> {
        let head = format!("POST / HTTP/1.1\r\nContent-Length: {v}\r\n\r\n");
        parse_request(head.as_bytes()).map(|o| o.map(|(r, _)| r.content_length))
    };
    assert_eq!(cl("7, 7"), Ok(Some(7)));
    assert!(matches!(cl("1, 2"), Err(HttpError::BadRequest(_))));
    assert!(matches!(cl("-1"), Err(HttpError::BadRequest(_))));
    assert!(matches!(cl("+1"), Err(HttpError::BadRequest(_))));
    assert!(matches!(cl(""), Err(HttpError::BadRequest(_))));
    assert_eq!(
        cl(&(MAX_BODY + 1).to_string()),
        Err(HttpError::PayloadTooLarge)
    );
    assert_eq!(
        cl("99999999999999999999999999"),
        Err(HttpError::PayloadTooLarge)
    );
    let twice = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert!(matches!(
        parse_request(twice),
        Err(HttpError::BadRequest(_))
    ));
}

#[test]
fn refusals() {
    let bad = |s: &[u8]| matches!(parse_request(s), Err(HttpError::BadRequest(_)));
    assert!(bad(b"GARBAGE\r\n\r\n"));
    assert!(bad(b"GET /\r\n\r\n"));
    assert!(bad(b"GET  / HTTP/1.1\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.1 x\r\n\r\n"));
    assert!(bad(b"G(T / HTTP/1.1\r\n\r\n"));
    assert!(bad(b"GET / HTTQ/1.1\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.1\r\nNo colon\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.1\r\nName : v\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.1\r\n: v\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"));
    assert_eq!(
        parse_request(b"GET / HTTP/2.0\r\n\r\n"),
        Err(HttpError::VersionNotSupported)
    );
    assert_eq!(
        parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Err(HttpError::NotImplemented)
    );
    assert_eq!(HttpError::NotImplemented.status().0, 501);
    assert_eq!(HttpError::HeadTooLarge.status().0, 431);
}

#[test]
fn head_size_limit() {
    // Incomplete and over the limit: refused without waiting for more.
    let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
    big.resize(MAX_HEAD, b'a');
    assert_eq!(parse_request(&big), Err(HttpError::HeadTooLarge));
    big.truncate(MAX_HEAD - 1);
    assert_eq!(parse_request(&big), Ok(None));
    // Complete but longer than the limit.
    big.resize(MAX_HEAD + 10, b'a');
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(parse_request(&big), Err(HttpError::HeadTooLarge));
    // Exactly at the limit: accepted.
    let mut exact = b"GET / HTTP/1.1\r\nX: ".to_vec();
    exact.resize(MAX_HEAD - 4, b'a');
    exact.extend_from_slice(b"\r\n\r\n");
    assert_eq!(parse_request(&exact).unwrap().unwrap().1, MAX_HEAD);
}

#[test]
fn never_panics_on_prefixes_and_byte_flips() {
    let base = b"POST /p HTTP/1.1\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
    for i in 0..base.len() {
        for b in [0u8, b'\r', b'\n', b' ', b':', b'9', 0xff] {
            let mut m = base.to_vec();
            m[i] = b;
            for cut in [i, i + 1, m.len()] {
                let _ = parse_request(&m[..cut.min(m.len())]);
            }
        }
    }
}
