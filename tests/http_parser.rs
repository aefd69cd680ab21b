//! Unit tests of the HTTP example's request parsing (httparse plus the
//! semantics in `examples/http/parser.rs`, included here by path as the
//! fuzz target does).

#[path = "../examples/http/parser.rs"]
mod parser;

use parser::{
    parse_request, Chunked, HttpError, Method, Version, MAX_BODY, MAX_CHUNK_LINE, MAX_HEAD,
    MAX_HEADERS,
};

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
    // Waits for the whole request line before telling 505 from 400.
    assert_eq!(parse_request(b"GET / HTTP/2.0"), Ok(None));
    assert!(bad(b"GET / HTTP/2.0 x\r\n\r\n"));
    assert!(bad(b"GET / HTTP/1.10\r\n\r\n"));
    assert!(bad(b"GET / \xff\r\n\r\n"));
    assert_eq!(
        parse_request(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        Err(HttpError::NotImplemented)
    );
    assert_eq!(HttpError::NotImplemented.status().0, 501);
    assert_eq!(HttpError::HeadTooLarge.status().0, 431);
}

#[test]
fn transfer_encoding_rules() {
    let te = |v: &str| {
        let head = format!("POST / HTTP/1.1\r\nTransfer-Encoding: {v}\r\n\r\n");
        parse_request(head.as_bytes()).map(|o| o.map(|(r, _)| (r.chunked, r.content_length)))
    };
    assert_eq!(te("chunked"), Ok(Some((true, 0))));
    assert_eq!(te("Chunked"), Ok(Some((true, 0))));
    assert_eq!(te(" chunked ,"), Ok(Some((true, 0))));
    assert_eq!(te("gzip"), Err(HttpError::NotImplemented));
    assert!(matches!(te("chunked, gzip"), Err(HttpError::BadRequest(_))));
    assert!(matches!(
        te("chunked, chunked"),
        Err(HttpError::BadRequest(_))
    ));
    assert!(matches!(te(""), Err(HttpError::BadRequest(_))));
    // Two fields are one list: chunked must still be last and once.
    let two =
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(parse_request(two), Err(HttpError::BadRequest(_))));
    // Framing by both: a smuggling risk, refused.
    let both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(parse_request(both), Err(HttpError::BadRequest(_))));
    let old = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(matches!(parse_request(old), Err(HttpError::BadRequest(_))));
}

/// Feeds `body` to a fresh decoder in pieces of `step` bytes, keeping the
/// unconsumed rest as the server does; returns (consumed, done) or the
/// error.
fn decode_chunked(body: &[u8], step: usize) -> Result<(usize, bool), HttpError> {
    let mut dec = Chunked::new();
    let mut pos = 0;
    let mut avail = 0;
    while avail < body.len() && !dec.is_done() {
        avail = (avail + step).min(body.len());
        pos += dec.feed(&body[pos..avail])?;
    }
    Ok((pos, dec.is_done()))
}

#[test]
fn chunked_bodies() {
    let body = b"5\r\nhello\r\n1;ext=\"x\"\r\n!\r\n0\r\nTrailer: t\r\n\r\nGET";
    for step in 1..body.len() + 1 {
        assert_eq!(
            decode_chunked(body, step),
            Ok((body.len() - 3, true)),
            "step {step}"
        );
    }
    let mut dec = Chunked::new();
    assert_eq!(dec.feed(b"A\r\n0123456789\r\n0\r\n\r\n"), Ok(20));
    assert!(dec.is_done());
    assert_eq!(dec.data_len(), 10);
    // Incomplete: waits.
    assert_eq!(decode_chunked(b"5\r\nhel", 100), Ok((6, false)));
    let bad = |b: &[u8]| matches!(decode_chunked(b, 1), Err(HttpError::BadRequest(_)));
    assert!(bad(b"\r\n"), "an empty size line is not the last chunk");
    assert!(bad(b"x\r\n"));
    assert!(bad(b"5\nhello\r\n0\r\n\r\n"), "bare LF");
    assert!(bad(b"5\r\nhelloXX0\r\n\r\n"), "data longer than its size");
    assert!(
        bad(b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
        "LF inside an extension"
    );
    assert!(bad(b"5;\x01\r\nhello\r\n0\r\n\r\n"));
    assert!(bad(b"1234567890abcdef0\r\n"), "more than 15 hex digits");
    assert!(bad(b"0\r\nno colon\r\n\r\n"));
    let long = format!("1;{}\r\n", "e".repeat(MAX_CHUNK_LINE));
    assert!(bad(long.as_bytes()));
    // Over the body limit, in one chunk or added up.
    let over = format!("{:x}\r\n", MAX_BODY + 1);
    assert_eq!(
        decode_chunked(over.as_bytes(), 1),
        Err(HttpError::PayloadTooLarge)
    );
    let mut dec = Chunked::new();
    let half = format!("{:x}\r\n", MAX_BODY / 2 + 1);
    assert_eq!(dec.feed(half.as_bytes()), Ok(half.len()));
    let data = vec![b'a'; MAX_BODY / 2 + 1];
    assert_eq!(dec.feed(&data), Ok(data.len()));
    assert_eq!(dec.feed(b"\r\n"), Ok(2));
    assert_eq!(dec.feed(half.as_bytes()), Err(HttpError::PayloadTooLarge));
}

#[test]
fn header_count_limit() {
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        head.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
    }
    let mut ok = head.clone();
    ok.extend_from_slice(b"\r\n");
    assert_eq!(
        parse_request(&ok).unwrap().unwrap().0.header_count,
        MAX_HEADERS
    );
    head.extend_from_slice(b"one: more\r\n\r\n");
    assert_eq!(parse_request(&head), Err(HttpError::HeadTooLarge));
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
