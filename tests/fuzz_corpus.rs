//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the
//! fuzz targets as a normal test, then runs a small coverage-free random
//! driver over each target (`SOCKLOOP_FUZZ_SEED` picks its seed,
//! `SOCKLOOP_FUZZ_EXECS` its number of executions). A failing input is
//! written to `target/fuzz-failures/` and its path printed, so it can be
//! added to the corpus once fixed.
//!
//! `cargo test --test fuzz_corpus -- --ignored regenerate_corpus` rebuilds
//! the corpus: random inputs are kept only while they reach a new
//! (operation, outcome) feature of the target — a crude, coverage-free
//! stand-in for `cargo fuzz cmin`. It covers `buffer_ops` and
//! `io_machines` only: the parser corpora (`http_parser`, `resp_parser`)
//! are hand-written seeds (real client requests, malformed ones) grown by
//! libFuzzer and minimised with `cargo fuzz cmin`; their random tests also
//! run a mutation driver over those seeds.

#[path = "../fuzz/targets/buffer_ops.rs"]
mod buffer_ops;
mod common;
#[path = "../fuzz/targets/http_parser.rs"]
mod http_parser;
#[path = "../fuzz/targets/io_machines.rs"]
mod io_machines;
#[path = "../fuzz/targets/resp_parser.rs"]
mod resp_parser;

use common::Rng;
use std::path::{Path, PathBuf};

type Target = fn(&[u8]) -> u64;

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name)
}

/// Saves the input being run if the run panics.
struct Keep<'a> {
    name: &'a str,
    data: &'a [u8],
}

impl Drop for Keep<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("{}-{:016x}", self.name, hash(self.data)));
            let _ = std::fs::write(&path, self.data);
            eprintln!("failing {} input saved to {}", self.name, path.display());
        }
    }
}

fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn run_one(name: &str, target: Target, data: &[u8]) -> u64 {
    let _keep = Keep { name, data };
    target(data)
}

fn replay(name: &str, target: Target) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(name))
        .unwrap_or_else(|e| panic!("corpus {name}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).expect("read corpus file");
        run_one(name, target, &data);
    }
    files.len()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn random_inputs(name: &str, target: Target, execs: u64, max_len: usize) {
    let seed = env_u64("SOCKLOOP_FUZZ_SEED", 1);
    let mut rng = Rng::new(seed ^ hash(name.as_bytes()));
    let mut features = 0u64;
    for _ in 0..execs {
        let n = rng.range(0, max_len);
        let data = rng.bytes(n);
        features |= run_one(name, target, &data);
    }
    eprintln!(
        "fuzz {name}: {execs} random executions (seed {seed}), {} features reached",
        features.count_ones()
    );
}

#[test]
fn buffer_ops_corpus() {
    let n = replay("buffer_ops", buffer_ops::run);
    assert!(n > 0, "empty corpus");
    eprintln!("fuzz buffer_ops: {n} corpus inputs replayed");
}

#[test]
fn io_machines_corpus() {
    let n = replay("io_machines", io_machines::run);
    assert!(n > 0, "empty corpus");
    eprintln!("fuzz io_machines: {n} corpus inputs replayed");
}

/// Tokens the parsers care about, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b",",
    b"GET ",
    b"HEAD ",
    b"POST ",
    b" HTTP/1.1",
    b" HTTP/1.0",
    b" HTTP/2.0",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Expect: 100-continue",
    b"\r\n\r\n",
    b"*",
    b"$",
    b"*1\r\n",
    b"$4\r\nPING\r\n",
    b"-1",
    b"0",
    b"536870912",
    b"1048576",
    b"18446744073709551616",
    b"9223372036854775807",
    b"PING",
    b"SET",
    b"\0",
];

/// Mutates `seed` a few times: byte flips, token insertions, deletions,
/// duplications and splices with `other`.
fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..rng.range(1, 4) {
        let at = rng.range(0, d.len());
        match rng.range(0, 5) {
            0 if !d.is_empty() => {
                let i = at.min(d.len() - 1);
                d[i] ^= 1 << rng.range(0, 7);
            }
            1 => {
                let t = TOKENS[rng.range(0, TOKENS.len() - 1)];
                d.splice(at..at, t.iter().copied());
            }
            2 => {
                let end = (at + rng.range(1, 16)).min(d.len());
                d.drain(at..end);
            }
            3 => {
                let end = (at + rng.range(1, 64)).min(d.len());
                let part = d[at..end].to_vec();
                d.splice(at..at, part);
            }
            4 => {
                let from = rng.range(0, other.len());
                let end = (from + rng.range(1, 64)).min(other.len());
                d.splice(at..at, other[from..end].iter().copied());
            }
            _ => {
                let b = rng.next_u64() as u8;
                d.insert(at, b);
            }
        }
    }
    d
}

/// Coverage-free mutation driver: inputs derived from the committed
/// corpus (random bytes alone rarely get past a parser's first byte).
fn mutated_inputs(name: &str, target: Target, execs: u64) {
    let seed = env_u64("SOCKLOOP_FUZZ_SEED", 1);
    let mut rng = Rng::new(seed ^ hash(name.as_bytes()));
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(name))
        .unwrap_or_else(|e| panic!("corpus {name}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read corpus file"))
        .collect();
    assert!(!seeds.is_empty(), "empty corpus");
    let mut features = 0u64;
    for _ in 0..execs {
        let a = &seeds[rng.range(0, seeds.len() - 1)];
        let b = &seeds[rng.range(0, seeds.len() - 1)];
        let data = mutate(&mut rng, a, b);
        features |= run_one(name, target, &data);
    }
    eprintln!(
        "fuzz {name}: {execs} mutated executions (seed {seed}), {} features reached",
        features.count_ones()
    );
}

#[test]
fn http_parser_corpus() {
    let n = replay("http_parser", http_parser::run);
    assert!(n > 0, "empty corpus");
    eprintln!("fuzz http_parser: {n} corpus inputs replayed");
}

#[test]
fn resp_parser_corpus() {
    let n = replay("resp_parser", resp_parser::run);
    assert!(n > 0, "empty corpus");
    eprintln!("fuzz resp_parser: {n} corpus inputs replayed");
}

#[test]
fn http_parser_random() {
    let execs = env_u64("SOCKLOOP_FUZZ_EXECS", 20_000);
    random_inputs("http_parser", http_parser::run, execs / 4, 128);
    mutated_inputs("http_parser", http_parser::run, execs / 4);
}

#[test]
fn resp_parser_random() {
    let execs = env_u64("SOCKLOOP_FUZZ_EXECS", 20_000);
    random_inputs("resp_parser", resp_parser::run, execs / 4, 128);
    mutated_inputs("resp_parser", resp_parser::run, execs / 4);
}

#[test]
fn buffer_ops_random() {
    random_inputs(
        "buffer_ops",
        buffer_ops::run,
        env_u64("SOCKLOOP_FUZZ_EXECS", 20_000),
        256,
    );
}

#[test]
fn io_machines_random() {
    random_inputs(
        "io_machines",
        io_machines::run,
        env_u64("SOCKLOOP_FUZZ_EXECS", 20_000) / 40,
        64,
    );
}

#[test]
#[ignore = "rewrites fuzz/corpus"]
fn regenerate_corpus() {
    for (name, target, max_len, tries) in [
        ("buffer_ops", buffer_ops::run as Target, 256, 50_000u64),
        ("io_machines", io_machines::run as Target, 64, 400),
    ] {
        let dir = corpus_dir(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let mut rng = Rng::new(hash(name.as_bytes()));
        let mut seen = 0u64;
        let mut kept = 0;
        for _ in 0..tries {
            let n = rng.range(0, max_len);
            let data = rng.bytes(n);
            let f = run_one(name, target, &data);
            if f & !seen != 0 {
                seen |= f;
                std::fs::write(dir.join(format!("{:016x}", hash(&data))), &data).expect("write");
                kept += 1;
            }
        }
        eprintln!(
            "corpus {name}: kept {kept} of {tries} inputs, {} features",
            seen.count_ones()
        );
    }
}
