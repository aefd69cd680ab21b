//! A hand-written RESP2 command parser: pure, std-only, no allocation.
//! The arguments borrow from the input, so the server parses commands in
//! place from its input buffer.
//!
//! This file has no dependencies besides `core`, so fuzz targets and tests
//! include it with `#[path = ".../examples/resp/parser.rs"] mod parser;`.
//!
//! Two forms, as Redis reads them:
//!
//! * multibulk: `*<n>\r\n` then `n` times `$<len>\r\n<len bytes>\r\n`;
//!   `n` at most [`MAX_ARGS`], `len` at most [`MAX_BULK`] (512 MiB);
//!   `*0` or a negative count is an empty command (skipped);
//! * inline: any other line, split on spaces and tabs (no quoting); an
//!   empty line is an empty command.
//!
//! Counts are strict decimals (`-?[0-9]+`, no `+`, no spaces). Errors carry
//! Redis's wording, to be sent as `-ERR Protocol error: <text>`.
#![allow(dead_code)]

use core::fmt;

/// Largest bulk string accepted: 512 MiB, as in Redis.
pub const MAX_BULK: usize = 512 * 1024 * 1024;
/// Most arguments in one multibulk command, as in Redis.
pub const MAX_ARGS: usize = 1024 * 1024;
/// Longest inline command or count line before the error, as in Redis.
pub const MAX_INLINE: usize = 64 * 1024;

/// A protocol error; the connection should answer it and close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespError {
    /// `*` not followed by a valid count (or one over [`MAX_ARGS`]).
    InvalidMultibulkLength,
    /// A multibulk element that does not start with `$`; holds the byte.
    ExpectedDollar(u8),
    /// `$` not followed by a valid length (or one over [`MAX_BULK`]).
    InvalidBulkLength,
    /// A bulk string not followed by CRLF.
    ExpectedCrlf,
    /// A count line longer than [`MAX_INLINE`] without its CRLF.
    TooBigCount,
    /// An inline command longer than [`MAX_INLINE`] without its newline.
    TooBigInline,
}

impl RespError {
    /// The message, after `Protocol error: `.
    pub fn message(&self) -> &'static str {
        match self {
            RespError::InvalidMultibulkLength => "invalid multibulk length",
            RespError::ExpectedDollar(_) => "expected '$'",
            RespError::InvalidBulkLength => "invalid bulk length",
            RespError::ExpectedCrlf => "expected CRLF after bulk string",
            RespError::TooBigCount => "too big count string",
            RespError::TooBigInline => "too big inline request",
        }
    }
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::ExpectedDollar(b) if b.is_ascii_graphic() => {
                write!(f, "expected '$', got '{}'", *b as char)
            }
            _ => f.write_str(self.message()),
        }
    }
}

/// One parsed command: its arguments, borrowed from the input. Iterating
/// re-walks the (already validated) bytes: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'a> {
    form: Form,
    /// The bytes after the `*<n>\r\n` line (multibulk) or the line itself
    /// without its terminator (inline).
    body: &'a [u8],
    argc: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Multibulk,
    Inline,
}

impl<'a> Command<'a> {
    /// How many arguments, the command name included.
    pub fn len(&self) -> usize {
        self.argc
    }

    /// True for an empty command (`*0`, an empty line): skip it.
    pub fn is_empty(&self) -> bool {
        self.argc == 0
    }

    /// The arguments in order, the command name first.
    pub fn args(&self) -> Args<'a> {
        Args {
            form: self.form,
            rest: self.body,
            left: self.argc,
        }
    }
}

/// Iterator over a [`Command`]'s arguments.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    form: Form,
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match self.form {
            Form::Multibulk => {
                // Validated by parse_command: `$<len>\r\n<data>\r\n`.
                let nl = self.rest.iter().position(|&b| b == b'\n')?;
                let len = parse_int(self.rest.get(1..nl.checked_sub(1)?)?)?;
                let len = usize::try_from(len).ok()?;
                let data = self.rest.get(nl + 1..nl + 1 + len)?;
                self.rest = self.rest.get(nl + 1 + len + 2..)?;
                Some(data)
            }
            Form::Inline => {
                let rest = trim_start_blanks(self.rest);
                let end = rest.iter().position(|&b| is_blank(b)).unwrap_or(rest.len());
                self.rest = &rest[end..];
                Some(&rest[..end])
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Args<'_> {}

/// Parses one command from the front of `buf`.
///
/// Returns `Ok(None)` while the command is incomplete, or
/// `Ok(Some((command, consumed)))`. An empty command (`*0\r\n`, a blank
/// line) is returned with no arguments so the caller can skip its bytes.
/// Never panics, whatever the input.
///
/// # Errors
/// [`RespError`] for input Redis would refuse as a protocol error.
pub fn parse_command(buf: &[u8]) -> Result<Option<(Command<'_>, usize)>, RespError> {
    parse_command_resuming(buf, &mut Resume::default())
}

/// Where the parse of an incomplete multibulk command stopped: the
/// arguments already validated are not walked again when more bytes
/// arrive. Without it, a large command that arrives in many reads is
/// re-parsed from its first byte on every read (quadratic in its size).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    count: usize,
    body_start: usize,
    pos: usize,
    done: usize,
}

/// As [`parse_command`], resuming from `resume` and leaving the new
/// stopping point in it when the command is still incomplete (it is reset
/// when a command completes or fails). `buf` must start with the same
/// command as on the previous call: keep one `Resume` per connection and
/// pass the bytes from the start of the first unparsed command.
///
/// # Errors
/// As [`parse_command`].
pub fn parse_command_resuming<'a>(
    buf: &'a [u8],
    resume: &mut Resume,
) -> Result<Option<(Command<'a>, usize)>, RespError> {
    let saved = std::mem::take(resume);
    let (count, body_start, mut pos, done) = if saved.count > 0 && saved.pos <= buf.len() {
        (saved.count, saved.body_start, saved.pos, saved.done)
    } else {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if first != b'*' {
            return parse_inline(buf);
        }
        let Some((count, pos)) = count_line(buf, RespError::InvalidMultibulkLength)? else {
            return Ok(None);
        };
        if count <= 0 {
            return Ok(Some((
                Command {
                    form: Form::Multibulk,
                    body: &buf[pos..pos],
                    argc: 0,
                },
                pos,
            )));
        }
        if count > MAX_ARGS as i64 {
            return Err(RespError::InvalidMultibulkLength);
        }
        (count as usize, pos, pos, 0)
    };
    for done in done..count {
        let stop = Resume {
            count,
            body_start,
            pos,
            done,
        };
        let Some(&tag) = buf.get(pos) else {
            *resume = stop;
            return Ok(None);
        };
        if tag != b'$' {
            return Err(RespError::ExpectedDollar(tag));
        }
        let Some((len, after)) = count_line(&buf[pos..], RespError::InvalidBulkLength)? else {
            *resume = stop;
            return Ok(None);
        };
        if len < 0 || len > MAX_BULK as i64 {
            return Err(RespError::InvalidBulkLength);
        }
        let start = pos + after;
        // No overflow: len <= 512 MiB and start <= buf.len().
        let end = start + len as usize;
        if buf.len() < end + 2 {
            // Incomplete; but a wrong byte already present is an error now.
            if buf.len() > end && buf[end] != b'\r' {
                return Err(RespError::ExpectedCrlf);
            }
            *resume = stop;
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(RespError::ExpectedCrlf);
        }
        pos = end + 2;
    }
    Ok(Some((
        Command {
            form: Form::Multibulk,
            body: &buf[body_start..pos],
            argc: count,
        },
        pos,
    )))
}

/// `<tag><integer>\r\n` at the front of `buf`: the integer and the length
/// of the line. `Ok(None)` if the line is incomplete.
fn count_line(buf: &[u8], invalid: RespError) -> Result<Option<(i64, usize)>, RespError> {
    let window = &buf[..buf.len().min(MAX_INLINE)];
    let Some(cr) = window.iter().position(|&b| b == b'\r') else {
        if buf.len() >= MAX_INLINE {
            return Err(RespError::TooBigCount);
        }
        return Ok(None);
    };
    match buf.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(invalid),
    }
    let n = parse_int(&buf[1..cr]).ok_or(invalid)?;
    Ok(Some((n, cr + 2)))
}

fn parse_inline(buf: &[u8]) -> Result<Option<(Command<'_>, usize)>, RespError> {
    let window = &buf[..buf.len().min(MAX_INLINE)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= MAX_INLINE {
            return Err(RespError::TooBigInline);
        }
        return Ok(None);
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut argc = 0;
    let mut in_word = false;
    for &b in line {
        let blank = is_blank(b);
        if !blank && !in_word {
            argc += 1;
        }
        in_word = !blank;
    }
    Ok(Some((
        Command {
            form: Form::Inline,
            body: line,
            argc,
        },
        nl + 1,
    )))
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t' || b == b'\r'
}

fn trim_start_blanks(mut s: &[u8]) -> &[u8] {
    while let [b, rest @ ..] = s {
        if !is_blank(*b) {
            break;
        }
        s = rest;
    }
    s
}

/// A strict decimal `-?[0-9]+` that fits an `i64` (Redis's `string2ll`
/// rules: no `+`, no spaces, no leading zeros except `0` itself).
pub fn parse_int(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if neg {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

#[cfg(test)]
mod resume_tests {
    use super::*;

    /// Fed in pieces of every size, the resuming parser finds the same
    /// command as a parse of the whole input, without walking validated
    /// arguments again.
    #[test]
    fn resuming_gives_the_same_command_for_every_split() {
        let mut cmd = b"*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nhello\r\n$2\r\nEX\r\n".to_vec();
        cmd.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
        let whole = parse_command(&cmd).unwrap().unwrap();
        let want: Vec<&[u8]> = whole.0.args().collect();
        for piece in 1..cmd.len() {
            let mut resume = Resume::default();
            let mut got = None;
            let mut fed = 0;
            while got.is_none() {
                fed = (fed + piece).min(cmd.len());
                got = parse_command_resuming(&cmd[..fed], &mut resume).unwrap();
                if got.is_none() {
                    assert!(fed < cmd.len(), "incomplete with all bytes, piece {piece}");
                }
            }
            let (c, used) = got.unwrap();
            assert_eq!(used, whole.1, "piece {piece}");
            assert_eq!(c.args().collect::<Vec<_>>(), want, "piece {piece}");
            assert_eq!(resume, Resume::default(), "reset after a complete command");
        }
    }
}
