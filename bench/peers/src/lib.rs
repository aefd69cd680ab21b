//! Tiny helpers shared by the comparison peers (argument parsing, the
//! "listening on ADDR" handshake line that bench/compare.sh waits for).

use std::net::SocketAddr;

/// The response every HTTP peer (and sockloop's http example) sends, byte for byte.
pub const HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

/// Parses `--addr HOST:PORT` (default 127.0.0.1:8080) from the command line.
pub fn addr_from_args() -> SocketAddr {
    let (addr, threads) = addr_and_threads_from_args();
    if threads != 1 {
        usage("this peer has no --threads");
    }
    addr
}

/// Parses `--addr HOST:PORT` and `--threads N` (default 1).
pub fn addr_and_threads_from_args() -> (SocketAddr, usize) {
    let mut args = std::env::args().skip(1);
    let mut addr = String::from("127.0.0.1:8080");
    let mut threads = 1usize;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().unwrap_or_else(|| usage("--addr needs a value")),
            s if s.starts_with("--addr=") => addr = s["--addr=".len()..].to_string(),
            "--threads" => {
                threads = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n >= 1)
                    .unwrap_or_else(|| usage("--threads needs a number >= 1"))
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let addr = addr.parse().unwrap_or_else(|e| usage(&format!("bad --addr {addr}: {e}")));
    (addr, threads)
}

/// A tokio runtime: current_thread for 1 thread, else multi_thread with
/// `threads` workers (tokio's work-stealing scheduler).
pub fn tokio_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_io().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()
    }
}

fn usage(msg: &str) -> ! {
    let prog = std::env::args().next().unwrap_or_default();
    if !msg.is_empty() {
        eprintln!("{prog}: {msg}");
    }
    eprintln!("usage: {prog} --addr HOST:PORT [--threads N (tokio peers)]");
    std::process::exit(2)
}

/// Printed once the listener is bound; bench/compare.sh waits for this line.
pub fn announce(addr: SocketAddr) {
    eprintln!("listening on {addr}");
}

/// Counts the complete HTTP/1.1 requests (head ends at `\r\n\r\n`; no bodies)
/// at the start of `buf` and returns (count, bytes consumed).
pub fn count_http_requests(buf: &[u8]) -> (usize, usize) {
    let mut n = 0;
    let mut pos = 0;
    while let Some(end) = find_crlfcrlf(&buf[pos..]) {
        pos += end + 4;
        n += 1;
    }
    (n, pos)
}

fn find_crlfcrlf(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n")
}
