//! The HTTP example under wrk: 5 s, 50 connections, keep-alive. Every
//! answer must be a 2xx and no socket error may occur.

mod common;

use common::{client, run, text, Server};

/// The numbers after `connect`, `read`, `write`, `timeout` in wrk's
/// `Socket errors: connect 0, read 0, write 0, timeout 0` line (absent when
/// there were none).
fn socket_errors(report: &str) -> u64 {
    let Some(line) = report.lines().find(|l| l.contains("Socket errors:")) else {
        return 0;
    };
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().unwrap_or(u64::MAX))
        .sum()
}

/// The count in `Non-2xx or 3xx responses: N` (absent when none).
fn non_2xx(report: &str) -> u64 {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .map_or(0, |n| n.trim().parse().unwrap_or(u64::MAX))
}

/// N from `N requests in 5.00s, ...`.
fn requests(report: &str) -> u64 {
    report
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn fifty_connections_for_five_seconds() {
    let Some(wrk) = client("wrk") else { return };
    let mut server = Server::start("http", &[]);
    let url = format!("http://{}/", server.addr);
    let out = run(60, &wrk, &["-t", "2", "-c", "50", "-d", "5s", &url]);
    let (report, stderr) = text(&out);
    eprintln!("{report}{stderr}");
    assert!(out.status.success(), "wrk failed: {stderr}");
    assert!(requests(&report) > 0, "no requests completed:\n{report}");
    assert_eq!(socket_errors(&report), 0, "socket errors:\n{report}");
    assert_eq!(non_2xx(&report), 0, "non-2xx answers:\n{report}");
    assert!(server.is_running(), "the server died under load");
}

#[test]
fn report_parsing() {
    let report = "Running 5s test @ http://127.0.0.1:1/\n  \
        1234 requests in 5.00s, 1.00MB read\n  \
        Socket errors: connect 0, read 2, write 0, timeout 1\n  \
        Non-2xx or 3xx responses: 7\n";
    assert_eq!(requests(report), 1234);
    assert_eq!(socket_errors(report), 3);
    assert_eq!(non_2xx(report), 7);
    assert_eq!(socket_errors("  1 requests in 1s\n"), 0);
    assert_eq!(non_2xx("  1 requests in 1s\n"), 0);
}
