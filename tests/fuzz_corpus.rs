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
//! stand-in for `cargo fuzz cmin`.

#[path = "../fuzz/targets/buffer_ops.rs"]
mod buffer_ops;
mod common;
#[path = "../fuzz/targets/io_machines.rs"]
mod io_machines;

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
