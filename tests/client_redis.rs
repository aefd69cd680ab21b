//! The RESP example against redis-cli and redis-benchmark.

mod common;

use common::{client, run, text, Server};
use std::path::Path;

/// Runs `redis-cli -h 127.0.0.1 -p PORT args...` and returns its stdout
/// without trailing newlines (redis-cli prints raw replies when its
/// output is not a terminal; nil is an empty line).
fn cli(redis_cli: &Path, server: &Server, args: &[&str]) -> String {
    let port = server.port().to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port];
    all.extend_from_slice(args);
    let out = run(30, redis_cli, &all);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "redis-cli {args:?} failed: {stderr}");
    stdout.trim_end_matches('\n').to_string()
}

#[test]
fn redis_cli_commands() {
    let Some(redis_cli) = client("redis-cli") else {
        return;
    };
    let server = Server::start("resp", &[]);
    let c = |args: &[&str]| cli(&redis_cli, &server, args);

    assert_eq!(c(&["PING"]), "PONG");
    assert_eq!(c(&["PING", "hi there"]), "hi there");
    assert_eq!(c(&["ECHO", "a\r\nb"]), "a\r\nb");
    assert_eq!(c(&["SET", "greeting", "hello world"]), "OK");
    assert_eq!(c(&["GET", "greeting"]), "hello world");
    assert_eq!(c(&["GET", "missing"]), "");
    assert_eq!(c(&["SET", "greeting", "other", "NX"]), "");
    assert_eq!(c(&["SET", "nobody", "x", "XX"]), "");
    assert_eq!(c(&["INCR", "n"]), "1");
    assert_eq!(c(&["INCRBY", "n", "41"]), "42");
    assert_eq!(c(&["DECR", "n"]), "41");
    assert_eq!(
        c(&["INCR", "greeting"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(c(&["TTL", "greeting"]), "-1");
    assert_eq!(c(&["EXPIRE", "greeting", "100"]), "1");
    let ttl: i64 = c(&["TTL", "greeting"]).parse().expect("TTL is an integer");
    assert!((99..=100).contains(&ttl), "TTL {ttl}");
    assert_eq!(c(&["TTL", "missing"]), "-2");
    assert_eq!(c(&["SET", "short", "x", "PX", "1"]), "OK");
    assert_eq!(c(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(c(&["MGET", "a", "missing", "b", "n"]), "1\n\n2\n41");
    assert_eq!(c(&["EXISTS", "a", "a", "missing"]), "2");
    assert_eq!(c(&["DEL", "a", "missing"]), "1");
    // greeting, n, b; "short" expired 1 ms after it was set: gone by now
    // (lazily on access or by the sweep).
    assert_eq!(c(&["GET", "short"]), "");
    assert_eq!(c(&["DBSIZE"]), "3");
    assert!(c(&["FOO", "bar"]).starts_with("ERR unknown command 'FOO'"));
    assert_eq!(
        c(&["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(c(&["CONFIG", "GET", "appendonly"]), "appendonly\nno");
    assert_eq!(c(&["FLUSHALL"]), "OK");
    assert_eq!(c(&["DBSIZE"]), "0");
}

/// One redis-benchmark run; panics unless every test ran without error.
fn benchmark(bench: &Path, server: &Server, extra: &[&str]) -> String {
    let port = server.port().to_string();
    let mut args = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "ping,set,get,incr,mset",
        "-n",
        "100000",
        "-c",
        "50",
        "-d",
        "8",
        "--csv",
    ];
    args.extend_from_slice(extra);
    let out = run(180, bench, &args);
    let (stdout, stderr) = text(&out);
    eprintln!("redis-benchmark {extra:?}:\n{stdout}{stderr}");
    assert!(out.status.success(), "redis-benchmark failed: {stderr}");
    // redis-benchmark 7 exits at the first error reply; older ones print
    // "Error from server". A failed CONFIG GET prints a WARNING.
    for bad in ["Error", "ERR", "WARNING"] {
        assert!(
            !stdout.contains(bad) && !stderr.contains(bad),
            "{bad} in redis-benchmark output"
        );
    }
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        let row = format!("\"{test}\",\"");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("no result for {test}:\n{stdout}"));
        let rps: f64 = line[row.len()..]
            .split('"')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        assert!(rps > 0.0, "{test}: {line}");
    }
    stdout
}

#[test]
fn redis_benchmark_plain_and_pipelined() {
    let (Some(bench), Some(redis_cli)) = (client("redis-benchmark"), client("redis-cli")) else {
        return;
    };
    let server = Server::start("resp", &[]);
    let c = |args: &[&str]| cli(&redis_cli, &server, args);

    // Without -r, redis-benchmark uses its keys literally: SET, GET and
    // MSET (10 times the same key) use `key:__rand_int__` with a random
    // value of -d 8 bytes, INCR uses `counter:__rand_int__`.
    benchmark(&bench, &server, &[]);
    assert_eq!(c(&["DBSIZE"]), "2");
    assert_eq!(c(&["GET", "key:__rand_int__"]).len(), 8);
    assert_eq!(c(&["GET", "counter:__rand_int__"]), "100000");

    benchmark(&bench, &server, &["-P", "16"]);
    assert_eq!(c(&["DBSIZE"]), "2");
    assert_eq!(c(&["GET", "key:__rand_int__"]).len(), 8);
    // Every pipelined INCR was applied exactly once.
    assert_eq!(c(&["GET", "counter:__rand_int__"]), "200000");
}
