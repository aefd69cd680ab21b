//! Fuzz target: the RESP example's command parser
//! (`examples/resp/parser.rs`, std-only, included by path). Shared by the
//! cargo-fuzz target (`fuzz/fuzz_targets/resp_parser.rs`) and the corpus
//! replay test (`tests/fuzz_corpus.rs`).
//!
//! Invariants checked on every input:
//!
//! * `parse_command` never panics;
//! * a complete command: `0 < consumed <= data.len()`; `args()` yields
//!   exactly `len()` arguments, each inside the consumed bytes, each bulk
//!   at most `MAX_BULK`, at most `MAX_ARGS` of them;
//! * re-encoding the arguments as a multibulk command parses back to the
//!   same arguments, consuming exactly the encoding;
//! * incremental consistency: every prefix of the input parses to "need
//!   more" or to exactly the full input's result; a prefix shorter than
//!   `consumed` is always "need more";
//! * the input treated as a pipelined stream decodes to the same commands
//!   whether it arrives at once or split in two at any point.
//!
//! Returns a bitmask of the outcomes reached (for the coverage-free driver).

#[path = "../../examples/resp/parser.rs"]
mod parser;

use parser::{
    parse_command, parse_command_resuming, Command, RespError, Resume, MAX_ARGS, MAX_BULK,
    MAX_INLINE,
};

/// An owned parse outcome, comparable across buffers.
type Outcome = Result<Option<(Vec<Vec<u8>>, usize)>, RespError>;

fn inside(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

fn owned_args(cmd: &Command<'_>, consumed: &[u8]) -> Vec<Vec<u8>> {
    let args = cmd.args();
    assert_eq!(args.len(), cmd.len(), "size hint");
    let v: Vec<&[u8]> = args.collect();
    assert_eq!(
        v.len(),
        cmd.len(),
        "args() yielded {} of {}",
        v.len(),
        cmd.len()
    );
    assert!(cmd.len() <= MAX_ARGS);
    assert_eq!(cmd.is_empty(), v.is_empty());
    for a in &v {
        assert!(inside(a, consumed), "argument outside the consumed bytes");
        assert!(a.len() <= MAX_BULK);
    }
    let total: usize = v.iter().map(|a| a.len()).sum();
    assert!(total <= consumed.len());
    v.into_iter().map(<[u8]>::to_vec).collect()
}

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn check_one(data: &[u8]) -> (Outcome, u64) {
    let mut f = 0u64;
    let out = match parse_command(data) {
        Ok(None) => {
            f |= 1;
            Ok(None)
        }
        Ok(Some((cmd, used))) => {
            assert!(
                used > 0 && used <= data.len(),
                "consumed {used} of {}",
                data.len()
            );
            let args = owned_args(&cmd, &data[..used]);
            f |= 2;
            f |= if data[0] == b'*' { 1 << 2 } else { 1 << 3 };
            f |= 1 << (8 + args.len().min(7));
            if args.iter().any(|a| a.is_empty()) {
                f |= 1 << 16;
            }
            if args.iter().any(|a| a.len() >= 64) {
                f |= 1 << 17;
            }
            if used < data.len() {
                f |= 1 << 18;
            }
            if !args.is_empty() {
                // The canonical encoding parses back to the same arguments.
                let enc = encode(&args);
                match parse_command(&enc) {
                    Ok(Some((c2, n2))) => {
                        assert_eq!(n2, enc.len(), "re-encoding consumed");
                        assert_eq!(owned_args(&c2, &enc), args, "re-encoding differs");
                    }
                    other => panic!("re-encoding of {args:?} gave {other:?}"),
                }
            }
            Ok(Some((args, used)))
        }
        Err(e) => {
            f |= 1
                << (32
                    + match e {
                        RespError::InvalidMultibulkLength => 0,
                        RespError::ExpectedDollar(_) => 1,
                        RespError::InvalidBulkLength => 2,
                        RespError::ExpectedCrlf => 3,
                        RespError::TooBigCount => 4,
                        RespError::TooBigInline => 5,
                    });
            // Display never panics either.
            let _ = e.to_string();
            Err(e)
        }
    };
    (out, f)
}

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

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Command(Vec<Vec<u8>>),
    Error(RespError),
}

/// Decodes `chunks` as one connection's byte stream, as the server does
/// (resuming an incomplete command where its parse stopped); stops at the
/// first error.
fn decode(chunks: &[&[u8]]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut resume = Resume::default();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        while pos < buf.len() {
            match parse_command_resuming(&buf[pos..], &mut resume) {
                Ok(None) => break,
                Ok(Some((cmd, used))) => {
                    events.push(Event::Command(cmd.args().map(<[u8]>::to_vec).collect()));
                    pos += used;
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
    if data.len() >= MAX_INLINE {
        features |= 1 << 19;
    }
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
                panic!("prefix {k} of a {used}-byte command gave {part:?}")
            }
            _ => assert_eq!(part, full, "prefix {k} differs from the full input"),
        }
    }
    let whole = decode(&[data]);
    if whole.len() > 1 {
        features |= 1 << 20;
    }
    if whole.len() > 3 {
        features |= 1 << 21;
    }
    for k in splits(data.len(), near) {
        let split = decode(&[&data[..k], &data[k..]]);
        assert_eq!(split, whole, "stream split at {k} decodes differently");
    }
    features
}
