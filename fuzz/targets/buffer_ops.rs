//! Fuzz target: random operation sequences on `Buffer`, checked against a
//! `Vec<u8>` model after every step. Shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/buffer_ops.rs`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`), which `#[path]`-include this file.
//!
//! Returns a bitmask of (operation, outcome) features the input reached:
//! the hand-rolled driver keeps inputs that reach new ones as its corpus.

use sockloop::Buffer;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn size(&mut self) -> usize {
        // Mostly small, sometimes a few KiB: crosses growth and compaction.
        match self.byte().unwrap_or(0) {
            b @ 0..=199 => b as usize,
            b => (b as usize - 199) * 97,
        }
    }
}

fn pattern(seed: usize, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (seed.wrapping_mul(31) + i * 7) as u8)
        .collect()
}

/// Runs one input; panics on any divergence from the model.
pub fn run(data: &[u8]) -> u64 {
    let mut input = Input(data);
    let first = input.size();
    let mut max = first.max(1) * 8;
    let mut buf = Buffer::with_max(max);
    let mut model: Vec<u8> = Vec::new();
    let mut features = 0u64;
    let mut step = 0usize;
    while let Some(op) = input.byte() {
        step += 1;
        let cap_before = buf.capacity();
        let op = op % 10;
        let mut outcome = 0u32;
        let mut grew_for: Option<usize> = None;
        match op {
            0 => {
                let n = input.size();
                let data = pattern(step, n);
                let res = buf.extend(&data);
                assert_eq!(res.is_ok(), model.len() + n <= max, "extend {n} ok?");
                if res.is_ok() {
                    model.extend_from_slice(&data);
                    grew_for = Some(model.len());
                } else {
                    outcome = 1;
                }
            }
            1 => {
                let n = input.size();
                buf.consume(n);
                model.drain(..n.min(model.len()));
                outcome = (n >= model.len()) as u32;
            }
            2 => {
                buf.clear();
                model.clear();
            }
            3 => {
                buf.release();
                model.clear();
                assert_eq!(buf.capacity(), 0, "release frees");
            }
            4 => {
                let n = input.size();
                let fill = input.size().min(n);
                let len = model.len();
                match buf.writable(n) {
                    Ok(space) => {
                        assert!(len + n <= max, "writable {n} beyond max");
                        assert!(space.len() >= n, "writable gave less room");
                        let data = pattern(step, fill);
                        space[..fill].copy_from_slice(&data);
                        buf.commit(fill);
                        model.extend_from_slice(&data);
                        grew_for = Some(len + n);
                    }
                    Err(e) => {
                        assert!(len + n > max, "writable refused within max");
                        assert_eq!(e.wanted, len + n);
                        outcome = 1;
                    }
                }
            }
            5 => {
                // Fill the spare room without growing, commit (clamped).
                let k = input.size();
                let spare = buf.spare();
                let fill = k.min(spare.len());
                let data = pattern(step, fill);
                spare[..fill].copy_from_slice(&data);
                buf.commit(k);
                model.extend_from_slice(&data);
                outcome = (k > fill) as u32;
            }
            6 => {
                max = input.size().max(1) * 4;
                buf.set_max(max);
                outcome = (model.len() > max) as u32;
            }
            7 => {
                let n = input.byte().unwrap_or(0) as usize % 4;
                let needle: Vec<u8> = model.iter().skip(step % 5).take(n).copied().collect();
                let expect = if needle.is_empty() {
                    Some(0)
                } else {
                    model.windows(needle.len()).position(|w| w == &needle[..])
                };
                assert_eq!(buf.find(&needle), expect, "find {needle:?}");
                outcome = expect.is_some() as u32;
            }
            8 => {
                let n = input.size();
                let data = pattern(step, n);
                let res = buf.replace_with(&data);
                model.clear();
                if n <= max {
                    assert!(res.is_ok());
                    model.extend_from_slice(&data);
                    grew_for = Some(n);
                } else {
                    assert!(res.is_err());
                    outcome = 1;
                }
            }
            _ => {
                if let Some(b) = buf.as_mut_slice().first_mut() {
                    *b ^= 0xff;
                    model[0] ^= 0xff;
                    outcome = 1;
                }
            }
        }
        assert_eq!(
            buf.as_slice(),
            &model[..],
            "contents after op {op} (step {step})"
        );
        assert_eq!(buf.len(), model.len());
        assert_eq!(buf.is_empty(), model.is_empty());
        if let Some(wanted) = grew_for {
            if buf.capacity() > cap_before {
                assert!(
                    buf.capacity() <= max.max(wanted).max(64),
                    "grew to {} past max {max} (wanted {wanted})",
                    buf.capacity()
                );
                outcome |= 2;
            }
        }
        features |= 1u64 << ((op as u64 * 4 + outcome as u64) % 64);
    }
    features
}
