//! Fuzz target: the HTTP example's request parsing (`examples/http/parser.rs`:
//! httparse plus the server's semantics, included by path), heads and
//! chunked bodies. Shared by the
//! cargo-fuzz target (`fuzz/fuzz_targets/http_parser.rs`) and the corpus
//! replay test (`tests/fuzz_corpus.rs`).
//!
//! Invariants checked on every input:
//!
//! * `parse_request` never panics;
//! * a complete head: `0 < consumed <= data.len()`, the head proper (after
//!   leading empty lines) is at most `MAX_HEAD`, `content_length <=
//!   MAX_BODY`, `method_raw` and `target` lie inside the consumed bytes;
//! * incremental consistency: every prefix of the input parses to "need
//!   more" or to exactly the full input's result (same request, same
//!   `consumed`, same error); a prefix shorter than `consumed` is always
//!   "need more";
//! * the input treated as a pipelined stream (heads, bodies skipped by
//!   `Content-Length` or decoded by `Chunked`, as the server does it)
//!   decodes to the same requests whether it arrives at once or split in
//!   two at any point; a chunked body never carries more than `MAX_BODY`
//!   bytes of data.
//!
//! Returns a bitmask of the outcomes reached (for the coverage-free driver).

#[path = "../../examples/http/parser.rs"]
mod parser;

use parser::{parse_request, Chunked, HttpError, Method, Request, Version, MAX_BODY, MAX_HEAD};

/// An owned summary of one parse outcome, comparable across buffers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Request {
        method: Method,
        method_raw: Vec<u8>,
        target: Vec<u8>,
        version: Version,
        content_length: usize,
        chunked: bool,
        keep_alive: bool,
        expect_continue: bool,
        header_count: usize,
    },
    /// A chunked body ended, with this many bytes of data.
    BodyEnd(usize),
    Error(HttpError),
}

fn event(r: &Request<'_>) -> Event {
    Event::Request {
        method: r.method,
        method_raw: r.method_raw.to_vec(),
        target: r.target.to_vec(),
        version: r.version,
        content_length: r.content_length,
        chunked: r.chunked,
        keep_alive: r.keep_alive(),
        expect_continue: r.expect_continue,
        header_count: r.header_count,
    }
}

fn inside(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

fn leading_empty_lines(data: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match data.get(i..) {
            Some([b'\r', b'\n', ..]) => i += 2,
            Some([b'\n', ..]) => i += 1,
            _ => return i,
        }
    }
}

/// Checks one complete parse of `data`; returns its feature bits.
fn check_one(data: &[u8]) -> (Result<Option<(Event, usize)>, HttpError>, u64) {
    let res = parse_request(data);
    let mut f = 0u64;
    let out = match res {
        Ok(None) => {
            // Incomplete only while the head proper is under MAX_HEAD.
            assert!(data.len() - leading_empty_lines(data) < MAX_HEAD);
            f |= 1;
            Ok(None)
        }
        Ok(Some((r, used))) => {
            assert!(
                used > 0 && used <= data.len(),
                "consumed {used} of {}",
                data.len()
            );
            let head = &data[leading_empty_lines(data)..used];
            assert!(head.len() <= MAX_HEAD, "head of {} bytes", head.len());
            assert!(r.content_length <= MAX_BODY);
            assert!(inside(r.method_raw, head) && inside(r.target, head));
            assert!(!r.method_raw.is_empty() && !r.target.is_empty());
            assert!(head.ends_with(b"\n"));
            f |= 2;
            f |= 1 << (8 + r.method as u32);
            f |= 1 << (16 + r.version as u32);
            if r.content_length > 0 {
                f |= 1 << 20;
            }
            if r.keep_alive() {
                f |= 1 << 21;
            }
            if r.expect_continue {
                f |= 1 << 22;
            }
            if r.header_count > 0 {
                f |= 1 << 23;
            }
            if r.conn_close && r.conn_keep_alive {
                f |= 1 << 24;
            }
            if r.chunked {
                assert_eq!(r.content_length, 0);
                f |= 1 << 28;
            }
            if used < data.len() {
                f |= 1 << 25;
            }
            Ok(Some((event(&r), used)))
        }
        Err(e) => {
            f |= 1
                << (32
                    + match e {
                        HttpError::BadRequest(_) => 0,
                        HttpError::HeadTooLarge => 1,
                        HttpError::PayloadTooLarge => 2,
                        HttpError::NotImplemented => 3,
                        HttpError::VersionNotSupported => 4,
                    });
            if let HttpError::BadRequest(why) = e {
                // Distinguish the reasons a little.
                f |= 1 << (40 + (why.len() % 16));
            }
            Err(e)
        }
    };
    (out, f)
}

/// The split points to try: all of them for short inputs, else a spread
/// plus the neighbourhood of `near`.
fn splits(len: usize, near: usize) -> Vec<usize> {
    if len <= 96 {
        return (0..=len).collect();
    }
    let mut v: Vec<usize> = (0..=32).map(|i| i * len / 32).collect();
    for d in 0..3 {
        v.push(near.saturating_sub(d).min(len));
        v.push((near + d).min(len));
    }
    v
}

/// Decodes `chunks` as one connection's byte stream, as the server does:
/// heads, then `Content-Length` bytes skipped or a chunked body decoded;
/// stops after an error or a request that does not keep the connection
/// alive. A chunked body's end is an event of its own.
fn decode(chunks: &[&[u8]]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut skip = 0usize;
    let mut chunked: Option<(Chunked, bool)> = None;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            if skip > 0 {
                let n = skip.min(buf.len() - pos);
                skip -= n;
                pos += n;
                if skip > 0 {
                    break;
                }
            }
            if let Some((dec, ka)) = &mut chunked {
                match dec.feed(&buf[pos..]) {
                    Ok(used) => {
                        assert!(used <= buf.len() - pos);
                        assert!(dec.data_len() <= MAX_BODY);
                        pos += used;
                        if !dec.is_done() {
                            assert!(buf.len() - pos < MAX_HEAD, "a stuck chunked decoder");
                            break;
                        }
                        events.push(Event::BodyEnd(dec.data_len()));
                        let ka = *ka;
                        chunked = None;
                        if !ka {
                            return events;
                        }
                    }
                    Err(e) => {
                        events.push(Event::Error(e));
                        return events;
                    }
                }
            }
            if pos >= buf.len() {
                break;
            }
            match parse_request(&buf[pos..]) {
                Ok(None) => break,
                Ok(Some((r, used))) => {
                    pos += used;
                    skip = r.content_length;
                    let ka = r.keep_alive();
                    events.push(event(&r));
                    if r.chunked {
                        chunked = Some((Chunked::new(), ka));
                    } else if !ka {
                        return events;
                    }
                }
                Err(e) => {
                    events.push(Event::Error(e));
                    return events;
                }
            }
        }
        buf.drain(..pos);
    }
    events
}

/// Runs one input; panics on any broken invariant.
pub fn run(data: &[u8]) -> u64 {
    let (full, mut features) = check_one(data);
    let near = match &full {
        Ok(Some((_, used))) => *used,
        _ => data.len(),
    };
    for k in splits(data.len(), near) {
        let (part, _) = check_one(&data[..k]);
        match (&full, &part) {
            (_, Ok(None)) => {
                if let Ok(Some((_, used))) = &full {
                    assert!(
                        k < *used,
                        "prefix {k} incomplete but the full parse used {used}"
                    );
                }
            }
            (Ok(Some((_, used))), _) if k < *used => {
                panic!("prefix {k} of a {used}-byte head gave {part:?}")
            }
            _ => assert_eq!(part, full, "prefix {k} differs from the full input"),
        }
    }
    let whole = decode(&[data]);
    if whole.len() > 1 {
        features |= 1 << 26;
    }
    if whole.len() > 3 {
        features |= 1 << 27;
    }
    if whole.iter().any(|e| matches!(e, Event::BodyEnd(_))) {
        features |= 1 << 29;
    }
    for k in splits(data.len(), near) {
        let split = decode(&[&data[..k], &data[k..]]);
        assert_eq!(split, whole, "stream split at {k} decodes differently");
    }
    features
}
