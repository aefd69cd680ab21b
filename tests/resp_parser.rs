//! Unit tests of the RESP example's command parser (a std-only module,
//! included here by path as the fuzz target does).

#[path = "../examples/resp/parser.rs"]
mod parser;

use parser::{parse_command, parse_int, RespError, MAX_BULK, MAX_INLINE};

fn args(buf: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let (cmd, used) = parse_command(buf).unwrap().unwrap();
    assert_eq!(cmd.args().len(), cmd.len());
    (cmd.args().map(<[u8]>::to_vec).collect(), used)
}

#[test]
fn multibulk_and_partial_input() {
    let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
    for cut in 0..buf.len() {
        assert_eq!(
            parse_command(&buf[..cut]).map(|o| o.is_some()),
            Ok(false),
            "cut {cut}"
        );
    }
    let (a, used) = args(buf);
    assert_eq!(a, [&b"SET"[..], b"k", b""]);
    assert_eq!(used, buf.len());
}

#[test]
fn binary_safe_bulk() {
    let (a, _) = args(b"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\0*\r\n");
    assert_eq!(a[1], b"\r\n\0*");
}

#[test]
fn pipelined_commands() {
    let buf = b"*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n*1\r\n$4\r\nPI";
    let (a, n1) = args(buf);
    assert_eq!(a, [b"PING"]);
    let (b, n2) = args(&buf[n1..]);
    assert_eq!(b, [b"PING"]);
    let (c, n3) = args(&buf[n1 + n2..]);
    assert_eq!(c, [&b"GET"[..], b"x"]);
    assert_eq!(parse_command(&buf[n1 + n2 + n3..]), Ok(None));
}

#[test]
fn inline() {
    let (a, used) = args(b"  SET\tkey  value \r\nrest");
    assert_eq!(a, [&b"SET"[..], b"key", b"value"]);
    assert_eq!(used, 19);
    let (a, _) = args(b"PING\n");
    assert_eq!(a, [b"PING"]);
    let (cmd, used) = parse_command(b"\r\n").unwrap().unwrap();
    assert!(cmd.is_empty());
    assert_eq!(used, 2);
    assert_eq!(parse_command(b"PING"), Ok(None));
    let long = vec![b'a'; MAX_INLINE];
    assert_eq!(parse_command(&long), Err(RespError::TooBigInline));
}

#[test]
fn empty_multibulk_is_skipped() {
    for buf in [&b"*0\r\n"[..], b"*-1\r\n"] {
        let (cmd, used) = parse_command(buf).unwrap().unwrap();
        assert!(cmd.is_empty());
        assert_eq!(used, buf.len());
    }
}

#[test]
fn protocol_errors() {
    use RespError::*;
    let err = |b: &[u8]| parse_command(b).unwrap_err();
    assert_eq!(err(b"*x\r\n"), InvalidMultibulkLength);
    assert_eq!(err(b"*+1\r\n"), InvalidMultibulkLength);
    assert_eq!(err(b"*1x\r\n"), InvalidMultibulkLength);
    assert_eq!(err(b"*1\rx"), InvalidMultibulkLength);
    assert_eq!(err(b"*1048577\r\n"), InvalidMultibulkLength);
    assert_eq!(err(b"*99999999999999999999\r\n"), InvalidMultibulkLength);
    assert_eq!(err(b"*1\r\n+PING\r\n"), ExpectedDollar(b'+'));
    assert_eq!(err(b"*1\r\n$-1\r\n"), InvalidBulkLength);
    assert_eq!(err(b"*1\r\n$01\r\n"), InvalidBulkLength);
    let over = format!("*1\r\n${}\r\n", MAX_BULK + 1);
    assert_eq!(err(over.as_bytes()), InvalidBulkLength);
    assert_eq!(err(b"*1\r\n$1\r\nab\r\n"), ExpectedCrlf);
    assert_eq!(err(b"*1\r\n$1\r\naX"), ExpectedCrlf);
    let mut long = b"*".to_vec();
    long.resize(MAX_INLINE, b'1');
    assert_eq!(err(&long), TooBigCount);
    assert_eq!(format!("{}", ExpectedDollar(b'+')), "expected '$', got '+'");
}

#[test]
fn a_512_mib_bulk_is_accepted_as_incomplete() {
    // The limit itself is allowed; the caller's input limit decides how
    // much it buffers.
    let at = format!("*1\r\n${MAX_BULK}\r\n");
    assert_eq!(parse_command(at.as_bytes()), Ok(None));
}

#[test]
fn strict_integers() {
    assert_eq!(parse_int(b"0"), Some(0));
    assert_eq!(parse_int(b"-12"), Some(-12));
    assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
    for bad in [
        &b""[..],
        b"-",
        b"+1",
        b" 1",
        b"1 ",
        b"01",
        b"-0",
        b"9223372036854775808",
        b"1e3",
    ] {
        assert_eq!(parse_int(bad), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn never_panics_on_prefixes_and_byte_flips() {
    let base = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nPING x\r\n";
    for i in 0..base.len() {
        for b in [0u8, b'\r', b'\n', b' ', b'*', b'$', b'-', b'9', 0xff] {
            let mut m = base.to_vec();
            m[i] = b;
            for cut in [i, i + 1, m.len()] {
                let mut rest = &m[..cut.min(m.len())];
                while let Ok(Some((cmd, used))) = parse_command(rest) {
                    assert_eq!(cmd.args().count(), cmd.len());
                    assert!(used > 0 && used <= rest.len());
                    rest = &rest[used..];
                }
            }
        }
    }
}
