//! The HTTP example's request-head parsing: [`httparse`] (the parser hyper
//! uses: SIMD-accelerated, long fuzzed) does the syntax, this module the
//! semantics a server must decide on top of it: which body follows
//! (`Content-Length` or chunked), whether the connection stays open, and
//! which status refuses a head. No allocation per request: the request
//! borrows its method and target from the input.
//!
//! The fuzz target and the tests include this file by path
//! (`#[path = ".../examples/http/parser.rs"] mod parser;`), so it depends on
//! nothing but `core` and `httparse`.
//!
//! What it accepts (RFC 9112, strictly where ambiguity would be a
//! request-smuggling risk, leniently where clients differ harmlessly):
//!
//! * empty lines before the request line are skipped (RFC 9112 §2.2) and
//!   do not count towards [`MAX_HEAD`];
//! * lines end in CRLF or a bare LF (as httparse allows);
//! * request line `METHOD SP target SP HTTP/1.0|HTTP/1.1` (single spaces,
//!   a UTF-8 target); another well-formed `HTTP/x.y` is
//!   [`HttpError::VersionNotSupported`], anything else
//!   [`HttpError::BadRequest`];
//! * header fields as httparse takes them: whitespace before the colon,
//!   obsolete line folding and control characters (except HTAB) in values
//!   are refused; more than [`MAX_HEADERS`] fields is
//!   [`HttpError::HeadTooLarge`];
//! * `Content-Length`: digits only; repeated with different values (or as
//!   a list of different values) is refused; over [`MAX_BODY`] is
//!   [`HttpError::PayloadTooLarge`];
//! * `Transfer-Encoding: chunked` bodies (decoded by [`Chunked`], at most
//!   [`MAX_BODY`] bytes of chunk data); any other transfer coding is
//!   [`HttpError::NotImplemented`]; `chunked` not last, or twice, or
//!   together with `Content-Length`, or in an HTTP/1.0 request is
//!   [`HttpError::BadRequest`] (RFC 9112 §6.1, §6.3: the framing would be
//!   ambiguous);
//! * a head longer than [`MAX_HEAD`] is [`HttpError::HeadTooLarge`].
//!
//! `Host` is not required (lenient, for benchmark peers that omit it).
#![allow(dead_code)]

use core::fmt;
use core::mem::MaybeUninit;

/// Largest request head (request line, headers and the empty line).
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body accepted (by `Content-Length`, or the sum of the
/// chunks of a chunked body).
pub const MAX_BODY: usize = 1024 * 1024;
/// Most header fields in one head.
pub const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (size, extensions, CRLF) of a chunked body.
pub const MAX_CHUNK_LINE: usize = 1024;

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
    /// The body length announced by `Content-Length` (0 without one, and
    /// for a chunked body).
    pub content_length: usize,
    /// The body is chunked (`Transfer-Encoding: chunked`): decode it with
    /// [`Chunked`].
    pub chunked: bool,
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
    /// A placeholder for [`parse_request_into`] to overwrite.
    pub const EMPTY: Request<'static> = Request {
        method: Method::Other,
        method_raw: b"",
        target: b"",
        version: Version::Http11,
        content_length: 0,
        chunked: false,
        conn_close: false,
        conn_keep_alive: false,
        expect_continue: false,
        header_count: 0,
    };

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

/// Why a request was refused; each maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request line, header or chunked framing (400); the text
    /// says what.
    BadRequest(&'static str),
    /// The head is over [`MAX_HEAD`] or has more than [`MAX_HEADERS`]
    /// fields (431).
    HeadTooLarge,
    /// The body is over [`MAX_BODY`] (413).
    PayloadTooLarge,
    /// A transfer coding other than `chunked` (501).
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
/// counts the head only (leading empty lines included): the body follows
/// it (`request.content_length` bytes, or chunks if `request.chunked`).
/// Never panics, whatever the input.
///
/// # Errors
/// [`HttpError`] for a head the server must refuse.
#[inline]
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, HttpError> {
    let mut req = Request::EMPTY;
    Ok(parse_request_into(buf, &mut req)?.map(|used| (req, used)))
}

/// [`parse_request`] into `req` (the server's batch loop keeps one and
/// overwrites it per request, rather than moving a new one out of a
/// `Result` each time). Returns the bytes consumed once a head is
/// complete; `req` is then that head's request, and unspecified
/// otherwise.
///
/// # Errors
/// As [`parse_request`].
#[inline]
pub fn parse_request_into<'a>(
    buf: &'a [u8],
    req: &mut Request<'a>,
) -> Result<Option<usize>, HttpError> {
    // Skip empty lines before the request line (not counted in the limit).
    // An empty buffer falls through: httparse says it is incomplete.
    let rest = match buf {
        [b'\r' | b'\n', ..] => match skip_empty_lines(buf) {
            Some(rest) => rest,
            None => return Ok(None),
        },
        _ => buf,
    };
    let start = buf.len() - rest.len();
    let window = &rest[..rest.len().min(MAX_HEAD)];
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let used = match parsed.parse_with_uninit_headers(window, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if window.len() >= MAX_HEAD {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::Version) => return version_error(window),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
        Err(e) => return Err(HttpError::BadRequest(why(e))),
    };
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(HttpError::BadRequest("incomplete request line"));
    };
    *req = Request {
        method: method_of(method.as_bytes()),
        method_raw: method.as_bytes(),
        target: target.as_bytes(),
        version: if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        },
        content_length: 0,
        chunked: false,
        conn_close: false,
        conn_keep_alive: false,
        expect_continue: false,
        header_count: parsed.headers.len(),
    };
    let mut seen_length = false;
    let mut seen_te = false;
    for h in parsed.headers.iter() {
        let name = h.name.as_bytes();
        let value = || trim_ows(h.value);
        // Dispatch on the first letter, then the length: most fields are
        // none of these, and are passed over after one byte.
        let first = match name {
            [f @ (b'c' | b'C' | b't' | b'T' | b'e' | b'E'), ..] => f | 0x20,
            _ => continue,
        };
        match name.len() {
            14 if first == b'c' && name.eq_ignore_ascii_case(b"content-length") => {
                let n = parse_content_length(value())?;
                if seen_length && n != req.content_length {
                    return Err(HttpError::BadRequest("conflicting Content-Length"));
                }
                seen_length = true;
                req.content_length = n;
            }
            17 if first == b't' && name.eq_ignore_ascii_case(b"transfer-encoding") => {
                transfer_codings(value(), &mut req.chunked)?;
                seen_te = true;
            }
            10 if first == b'c' && name.eq_ignore_ascii_case(b"connection") => {
                for token in value().split(|&b| b == b',') {
                    let token = trim_ows(token);
                    if token.eq_ignore_ascii_case(b"close") {
                        req.conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        req.conn_keep_alive = true;
                    }
                }
            }
            6 if first == b'e'
                && name.eq_ignore_ascii_case(b"expect")
                && value().eq_ignore_ascii_case(b"100-continue") =>
            {
                req.expect_continue = true;
            }
            _ => {}
        }
    }
    if seen_te {
        if !req.chunked {
            return Err(HttpError::BadRequest(
                "chunked is not the final transfer coding",
            ));
        }
        if seen_length {
            return Err(HttpError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if req.version == Version::Http10 {
            return Err(HttpError::BadRequest("Transfer-Encoding in HTTP/1.0"));
        }
    }
    if req.content_length > MAX_BODY {
        return Err(HttpError::PayloadTooLarge);
    }
    Ok(Some(start + used))
}

/// `buf` after the empty lines (CRLF or LF) at its front, or `None` if
/// it ends in them (or in the CR of one).
#[cold]
fn skip_empty_lines(mut buf: &[u8]) -> Option<&[u8]> {
    loop {
        match buf {
            [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => buf = rest,
            [b'\r'] | [] => return None,
            _ => return Some(buf),
        }
    }
}

/// httparse refused the version: a well-formed `HTTP/x.y` we do not speak
/// is 505, anything else 400. Decided once the request line is complete
/// (httparse refuses `HTTP/2` before the line ends), so that every prefix
/// of a head either waits or gives the full head's answer.
fn version_error<T>(window: &[u8]) -> Result<Option<T>, HttpError> {
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if window.len() >= MAX_HEAD {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(None)
        };
    };
    let line = &window[..lf];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // Method and target passed httparse: the version is what follows the
    // second space.
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or(b"");
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(HttpError::VersionNotSupported)
        }
        _ => Err(HttpError::BadRequest("invalid HTTP version")),
    }
}

fn why(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Token => "invalid method or request target",
        _ => "malformed request head",
    }
}

#[inline]
fn method_of(raw: &[u8]) -> Method {
    // GET first and on its own: one length and one 3-byte comparison on
    // the hot path, not a decision tree over every method's length.
    if raw == b"GET" {
        Method::Get
    } else {
        method_other(raw)
    }
}

/// [`method_of`] for all but GET (out of line, so the compiler does not
/// fold the GET test into a switch over every method's length).
#[inline(never)]
fn method_other(raw: &[u8]) -> Method {
    match raw {
        b"HEAD" => Method::Head,
        b"POST" => Method::Post,
        b"PUT" => Method::Put,
        b"DELETE" => Method::Delete,
        _ => Method::Other,
    }
}

/// One `Transfer-Encoding` field: a list of codings, of which only
/// `chunked` is understood. `chunked` must be the last coding of all the
/// fields and appear once: `*chunked` says whether the last one seen so
/// far is `chunked`.
fn transfer_codings(value: &[u8], chunked: &mut bool) -> Result<(), HttpError> {
    for coding in value.split(|&b| b == b',') {
        let coding = trim_ows(coding);
        if coding.is_empty() {
            continue; // empty list elements are allowed (RFC 9110 §5.6.1)
        }
        if *chunked {
            // Something after chunked: the body's end cannot be known.
            return Err(HttpError::BadRequest(
                "chunked is not the final transfer coding",
            ));
        }
        if coding.eq_ignore_ascii_case(b"chunked") {
            *chunked = true;
        } else {
            return Err(HttpError::NotImplemented);
        }
    }
    Ok(())
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

/// Where a chunked body's decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data: this many bytes to go.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields until an empty line.
    Trailer,
    /// The body is complete.
    Done,
}

/// Decodes (and discards) a chunked request body incrementally: feed it
/// the bytes after the head, in as many pieces as they arrive.
///
/// Strict framing (RFC 9112 §7.1): chunk-size lines and the line after
/// each chunk's data end in CRLF, a size has 1 to 15 hex digits, an
/// extension holds no control characters, trailer fields are
/// `name: value` lines; at most [`MAX_CHUNK_LINE`] bytes per size line,
/// [`MAX_HEAD`] bytes of trailer, [`MAX_BODY`] bytes of chunk data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
    /// Chunk data bytes so far.
    total: usize,
    /// Trailer bytes so far.
    trailer: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked::new()
    }
}

impl Chunked {
    /// A decoder at the start of a body.
    pub const fn new() -> Chunked {
        Chunked {
            state: ChunkState::Size,
            total: 0,
            trailer: 0,
        }
    }

    /// Whether the whole body (last chunk and trailer) has been seen.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// How many bytes of chunk data the body has carried so far.
    pub fn data_len(&self) -> usize {
        self.total
    }

    /// Consumes what it can of `buf` and returns how many bytes that was;
    /// stops early once the body is complete ([`Chunked::is_done`]) or
    /// when only part of a line is left (keep it and feed it again with
    /// what follows). Never panics.
    ///
    /// # Errors
    /// [`HttpError::BadRequest`] for broken framing or an over-long line,
    /// [`HttpError::PayloadTooLarge`] when the chunks add up to more than
    /// [`MAX_BODY`].
    pub fn feed(&mut self, buf: &[u8]) -> Result<usize, HttpError> {
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            match self.state {
                ChunkState::Done => return Ok(pos),
                ChunkState::Data(n) => {
                    let take = n.min(rest.len());
                    pos += take;
                    self.state = if take == n {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(n - take)
                    };
                    if take < n {
                        return Ok(pos);
                    }
                }
                ChunkState::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        pos += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok(pos),
                    _ => return Err(HttpError::BadRequest("chunk data not followed by CRLF")),
                },
                ChunkState::Size => {
                    let Some(line) = crlf_line(rest, MAX_CHUNK_LINE)? else {
                        return Ok(pos);
                    };
                    let size = chunk_size(line)?;
                    pos += line.len();
                    if size > MAX_BODY - self.total {
                        return Err(HttpError::PayloadTooLarge);
                    }
                    self.total += size;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Trailer => {
                    let Some(line) = crlf_line(rest, MAX_HEAD - self.trailer)? else {
                        return Ok(pos);
                    };
                    pos += line.len();
                    self.trailer += line.len();
                    if line.len() == 2 {
                        self.state = ChunkState::Done;
                    } else {
                        check_trailer_field(&line[..line.len() - 2])?;
                    }
                }
            }
        }
    }
}

/// The line at the front of `buf` with its CRLF, if complete; a bare LF or
/// a line longer than `max` (CRLF included) is refused.
fn crlf_line(buf: &[u8], max: usize) -> Result<Option<&[u8]>, HttpError> {
    let window = &buf[..buf.len().min(max)];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) if lf > 0 && window[lf - 1] == b'\r' => Ok(Some(&window[..=lf])),
        Some(_) => Err(HttpError::BadRequest("bare LF in chunked framing")),
        None if window.len() >= max => Err(HttpError::BadRequest("chunked framing line too long")),
        None => Ok(None),
    }
}

/// The size of one chunk-size line (CRLF included): httparse reads it;
/// we also insist on at least one digit (httparse takes an empty line as
/// 0), on its CRLF being the line's end, and on no control characters in
/// extensions (httparse skips them).
fn chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    if !line.first().is_some_and(u8::is_ascii_hexdigit) {
        return Err(HttpError::BadRequest("invalid chunk size"));
    }
    let body = &line[..line.len() - 2];
    if body.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HttpError::BadRequest(
            "control character in a chunk extension",
        ));
    }
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((n, size))) if n == line.len() => {
            // At most 15 hex digits: fits in u64; over MAX_BODY either way
            // if it does not fit in usize.
            Ok(usize::try_from(size).unwrap_or(usize::MAX))
        }
        _ => Err(HttpError::BadRequest("invalid chunk size")),
    }
}

/// A trailer field (without its CRLF): `name ":" value`, a token name, no
/// control characters in the value.
fn check_trailer_field(line: &[u8]) -> Result<(), HttpError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HttpError::BadRequest("trailer field without a colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(tchar) {
        return Err(HttpError::BadRequest("invalid trailer field name"));
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(HttpError::BadRequest(
            "control character in a trailer field",
        ));
    }
    Ok(())
}
