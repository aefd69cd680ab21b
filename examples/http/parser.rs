//! A hand-written HTTP/1.x request-head parser: pure, std-only, no
//! allocation. It borrows the method and target from the input, so the
//! server parses requests in place from its input buffer.
//!
//! This file has no dependencies besides `core`, so fuzz targets and tests
//! include it with `#[path = ".../examples/http/parser.rs"] mod parser;`.
//!
//! What it accepts (RFC 9112, strictly where ambiguity would be a
//! request-smuggling risk, leniently where clients differ harmlessly):
//!
//! * empty lines before the request line are skipped (RFC 9112 §2.2);
//! * lines end in CRLF or a bare LF;
//! * request line `METHOD SP target SP HTTP/1.0|HTTP/1.1`; another
//!   `HTTP/x.y` is [`HttpError::VersionNotSupported`], anything else
//!   [`HttpError::BadRequest`];
//! * header `name ":" OWS value OWS`; whitespace before the colon and
//!   obsolete line folding are rejected; control characters (except HTAB)
//!   in values are rejected;
//! * `Content-Length`: digits only; repeated with different values (or as
//!   a list of different values) is rejected; over [`MAX_BODY`] is
//!   [`HttpError::PayloadTooLarge`];
//! * any `Transfer-Encoding` is [`HttpError::NotImplemented`] (this server
//!   does not do chunked bodies);
//! * a head longer than [`MAX_HEAD`] is [`HttpError::HeadTooLarge`].
//!
//! `Host` is not required (lenient, for benchmark peers that omit it).
#![allow(dead_code)]

use core::fmt;

/// Largest request head (request line, headers and the empty line).
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted (by `Content-Length`).
pub const MAX_BODY: usize = 1024 * 1024;

/// The request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// Any other syntactically valid method token.
    Other,
}

/// The protocol version of the request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

/// A parsed request head, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The method token as sent.
    pub method_raw: &'a [u8],
    /// The request target as sent (`/`, `/a?b`, `http://h/p`, `*`).
    pub target: &'a [u8],
    /// The protocol version.
    pub version: Version,
    /// The body length announced by `Content-Length` (0 without one).
    pub content_length: usize,
    /// `Connection` lists `close`.
    pub conn_close: bool,
    /// `Connection` lists `keep-alive`.
    pub conn_keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// How many header fields the head holds.
    pub header_count: usize,
}

impl Request<'_> {
    /// Whether the connection stays open after the answer: HTTP/1.1 unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.conn_close,
            Version::Http10 => self.conn_keep_alive && !self.conn_close,
        }
    }

    /// The target's path, without the query string.
    pub fn path(&self) -> &[u8] {
        match self.target.iter().position(|&b| b == b'?') {
            Some(i) => &self.target[..i],
            None => self.target,
        }
    }
}

/// Why a request head was refused; each maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request line or header (400); the text says what.
    BadRequest(&'static str),
    /// The head is over [`MAX_HEAD`] (431).
    HeadTooLarge,
    /// `Content-Length` is over [`MAX_BODY`] (413).
    PayloadTooLarge,
    /// `Transfer-Encoding` (chunked bodies) is not supported (501).
    NotImplemented,
    /// A well-formed but unsupported `HTTP/x.y` (505).
    VersionNotSupported,
}

impl HttpError {
    /// The status code and reason phrase to answer with.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HttpError::BadRequest(_) => (400, "Bad Request"),
            HttpError::HeadTooLarge => (431, "Request Header Fields Too Large"),
            HttpError::PayloadTooLarge => (413, "Payload Too Large"),
            HttpError::NotImplemented => (501, "Not Implemented"),
            HttpError::VersionNotSupported => (505, "HTTP Version Not Supported"),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, reason) = self.status();
        match self {
            HttpError::BadRequest(why) => write!(f, "{code} {reason}: {why}"),
            _ => write!(f, "{code} {reason}"),
        }
    }
}

/// Parses one request head from the front of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete (and within
/// [`MAX_HEAD`]), or `Ok(Some((request, consumed)))` where `consumed`
/// counts the head only (leading empty lines included): the body,
/// `request.content_length` bytes, follows it. Never panics, whatever the
/// input.
///
/// # Errors
/// [`HttpError`] for a head the server must refuse.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, HttpError> {
    // Skip empty lines before the request line (not counted in the limit).
    let mut start = 0;
    loop {
        match buf.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\n', ..]) => start += 1,
            Some([b'\r']) | Some([]) => return Ok(None),
            _ => break,
        }
    }
    let window_end = buf.len().min(start + MAX_HEAD);
    let mut lines = Lines {
        buf: &buf[..window_end],
        pos: start,
    };
    let Some(request_line) = lines.next_line() else {
        return incomplete(buf.len() - start);
    };
    let (method_raw, target, version) = parse_request_line(request_line)?;
    let mut req = Request {
        method: method_of(method_raw),
        method_raw,
        target,
        version,
        content_length: 0,
        conn_close: false,
        conn_keep_alive: false,
        expect_continue: false,
        header_count: 0,
    };
    let mut seen_length = false;
    loop {
        let Some(line) = lines.next_line() else {
            return incomplete(buf.len() - start);
        };
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(HttpError::BadRequest("obsolete line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::BadRequest("header without a colon"))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(HttpError::BadRequest("invalid header name"));
        }
        let value = trim_ows(&line[colon + 1..]);
        if value.iter().any(|&b| CLASS[b as usize] & CTL != 0) {
            return Err(HttpError::BadRequest("control character in a header value"));
        }
        req.header_count += 1;
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value)?;
            if seen_length && n != req.content_length {
                return Err(HttpError::BadRequest("conflicting Content-Length"));
            }
            seen_length = true;
            req.content_length = n;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(HttpError::NotImplemented);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = trim_ows(token);
                if token.eq_ignore_ascii_case(b"close") {
                    req.conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    req.conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect")
            && value.eq_ignore_ascii_case(b"100-continue")
        {
            req.expect_continue = true;
        }
    }
    if req.content_length > MAX_BODY {
        return Err(HttpError::PayloadTooLarge);
    }
    Ok(Some((req, lines.pos)))
}

/// The head is not complete in the bytes seen so far.
fn incomplete<T>(seen: usize) -> Result<Option<T>, HttpError> {
    if seen >= MAX_HEAD {
        Err(HttpError::HeadTooLarge)
    } else {
        Ok(None)
    }
}

/// Splits lines ending in LF (an optional CR before it is dropped).
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Lines<'a> {
    /// The next complete line without its terminator; `None` if no LF
    /// follows in the buffer.
    fn next_line(&mut self) -> Option<&'a [u8]> {
        let rest = self.buf.get(self.pos..)?;
        let lf = find_lf(rest)?;
        self.pos += lf + 1;
        let line = &rest[..lf];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8], Version), HttpError> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequest("malformed request line"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HttpError::BadRequest("invalid method"));
    }
    if target.is_empty() || !target.iter().all(|&b| CLASS[b as usize] & TARGET != 0) {
        return Err(HttpError::BadRequest("invalid request target"));
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(HttpError::VersionNotSupported)
        }
        _ => return Err(HttpError::BadRequest("invalid HTTP version")),
    };
    Ok((method, target, version))
}

fn method_of(raw: &[u8]) -> Method {
    match raw {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        _ => Method::Other,
    }
}

/// `Content-Length`: one or more equal decimal values (a comma list is
/// allowed by RFC 9110 §8.6 if all are the same).
fn parse_content_length(value: &[u8]) -> Result<usize, HttpError> {
    let mut result: Option<usize> = None;
    for part in value.split(|&b| b == b',') {
        let part = trim_ows(part);
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::BadRequest("invalid Content-Length"));
        }
        let mut n: usize = 0;
        for &d in part {
            n = match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(d - b'0')))
            {
                Some(n) => n,
                // Far over any limit: refuse as too large rather than bad.
                None => return Err(HttpError::PayloadTooLarge),
            };
        }
        match result {
            Some(prev) if prev != n => {
                return Err(HttpError::BadRequest("conflicting Content-Length"))
            }
            _ => result = Some(n),
        }
    }
    result.ok_or(HttpError::BadRequest("invalid Content-Length"))
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// RFC 9110 `tchar`: the characters of a token.
fn is_tchar(b: u8) -> bool {
    CLASS[b as usize] & TCHAR != 0
}

/// Byte classes, one table lookup per byte instead of a chain of tests:
/// this parser runs once per request, so its per-byte cost is the server's.
const TCHAR: u8 = 1;
/// Allowed in a request target: visible ASCII and bytes >= 0x80.
const TARGET: u8 = 2;
/// Forbidden in a header value: controls other than HTAB, and DEL.
const CTL: u8 = 4;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_alphanumeric() {
            c |= TCHAR;
        }
        let mut j = 0;
        let extra = b"!#$%&'*+-.^_`|~";
        while j < extra.len() {
            if extra[j] == b {
                c |= TCHAR;
            }
            j += 1;
        }
        if b > 0x20 && b != 0x7f {
            c |= TARGET;
        }
        if (b < 0x20 && b != b'\t') || b == 0x7f {
            c |= CTL;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Position of the first `\n` in `hay`, eight bytes at a time (the
/// classic has-zero-byte trick on `word ^ 0x0a0a..`), so finding the end of
/// a line costs about one operation per byte instead of three.
fn find_lf(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LF: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let x = u64::from_le_bytes(w) ^ LF;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| base + i)
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    #[test]
    fn find_lf_matches_a_plain_search_at_every_offset() {
        for len in 0..40 {
            for at in 0..=len {
                let mut v = vec![b'a'; len];
                if at < len {
                    v[at] = b'\n';
                }
                // Bytes with the high bit set must not fool the SWAR test.
                for b in v.iter_mut().take(at) {
                    *b = 0x8a;
                }
                assert_eq!(
                    find_lf(&v),
                    v.iter().position(|&b| b == b'\n'),
                    "len {len} at {at}"
                );
            }
        }
    }

    #[test]
    fn class_table_matches_the_rfc_definitions() {
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), tchar, "tchar {b:#x}");
            assert_eq!(
                CLASS[b as usize] & TARGET != 0,
                b > 0x20 && b != 0x7f,
                "target {b:#x}"
            );
            assert_eq!(
                CLASS[b as usize] & CTL != 0,
                (b < 0x20 && b != b'\t') || b == 0x7f,
                "ctl {b:#x}"
            );
        }
    }
}
