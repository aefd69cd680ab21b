//! Real clients against the example servers: socat pushes a 16 MiB random
//! file through `echo`, and through `proxy` in front of `echo`, and must
//! get it back byte for byte; socat's half-close (stdin EOF -> shutdown of
//! its write side, then wait for the rest of the echo) must work through
//! the proxy.

mod common;

use common::procs::{have_client, Server};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: usize = 16 * 1024 * 1024;

/// A per-test scratch directory under the target dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sockloop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` pseudo-random bytes (xorshift64*, fixed seed: reproducible).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Panics with the first differing offset if `got != want`.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {:?}",
            got.len(),
            want.len(),
            first
        );
    }
}

/// Runs `socat -t T - TCP:addr` with `input` on stdin; returns stdout and
/// how long socat ran. socat sends all of stdin, shuts down its write side
/// at EOF, and exits when the server's EOF arrives (or after T seconds).
fn socat_roundtrip(
    dir: &Path,
    addr: std::net::SocketAddr,
    input: &[u8],
    t: u32,
) -> (Vec<u8>, Duration) {
    let in_path = dir.join("in");
    let out_path = dir.join("out");
    std::fs::write(&in_path, input).expect("write input file");
    let stdin = std::fs::File::open(&in_path).expect("open input");
    let stdout = std::fs::File::create(&out_path).expect("create output");
    let start = Instant::now();
    let status = Command::new("socat")
        .args(["-t", &t.to_string(), "-", &format!("TCP:{addr}")])
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit())
        .status()
        .expect("run socat");
    let took = start.elapsed();
    assert!(status.success(), "socat failed: {status}");
    (std::fs::read(&out_path).expect("read output"), took)
}

/// The echo example, and the proxy example in front of it.
fn echo_behind_proxy() -> (Server, Server) {
    let echo = Server::example("echo", &["--addr", "127.0.0.1:0"]);
    let upstream = echo.addr.to_string();
    let proxy = Server::example(
        "proxy",
        &["--listen", "127.0.0.1:0", "--upstream", &upstream],
    );
    (echo, proxy)
}

#[test]
fn sixteen_mib_through_echo() {
    if !have_client("socat") {
        return;
    }
    let echo = Server::example("echo", &["--addr", "127.0.0.1:0"]);
    let dir = TempDir::new("echo16");
    let data = random_bytes(SIZE, 0x5eed_0001);
    let (got, took) = socat_roundtrip(&dir.0, echo.addr, &data, 60);
    assert_same(&got, &data, "16 MiB through echo");
    eprintln!("16 MiB through echo in {took:?}");
}

#[test]
fn sixteen_mib_through_proxy_and_echo() {
    if !have_client("socat") {
        return;
    }
    let (_echo, proxy) = echo_behind_proxy();
    let dir = TempDir::new("proxy16");
    let data = random_bytes(SIZE, 0x5eed_0002);
    let (got, took) = socat_roundtrip(&dir.0, proxy.addr, &data, 60);
    assert_same(&got, &data, "16 MiB through proxy + echo");
    eprintln!("16 MiB through proxy + echo in {took:?}");
}

/// socat -t 5: after stdin EOF socat shuts down its write side and waits at
/// most 5 s for the rest. The proxy must pass the FIN to echo, echo then
/// finishes and closes, and the proxy passes that EOF back: socat gets the
/// whole echo and exits well before its timeout (a proxy that swallowed
/// either FIN would make it wait the full 5 s, or lose the tail).
#[test]
fn half_close_through_proxy_socat_t5() {
    if !have_client("socat") {
        return;
    }
    let (_echo, proxy) = echo_behind_proxy();
    let dir = TempDir::new("halfclose");
    let data = random_bytes(1024 * 1024 + 17, 0x5eed_0003);
    let (got, took) = socat_roundtrip(&dir.0, proxy.addr, &data, 5);
    assert_same(&got, &data, "echo after half-close through proxy");
    assert!(
        took < Duration::from_secs(4),
        "socat needed {took:?}: the EOF did not come back through the proxy"
    );
}
