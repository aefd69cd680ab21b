//! Fuzz target: the readn/writen machines (`ReadExact`, `WriteAll`) over a
//! real non-blocking socketpair, with the input choosing the payload size,
//! the reader's chunking, `take_from` hand-overs, and an early close of
//! either side. Checks that the bytes read are exactly a prefix of the
//! bytes written, that each machine reports how it stopped (Done, Eof,
//! BrokenPipe/Reset), and that no pair of steps is stuck (both sides would
//! block with work left). Shared by the cargo-fuzz target and
//! `tests/fuzz_corpus.rs`.

use sockloop::io::{IoStatus, ReadExact, WriteAll};
use sockloop::sys::socket::{socketpair, SOCK_STREAM};
use sockloop::Buffer;
use std::os::fd::AsFd;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
}

/// Runs one input; panics on a violated property. Returns features.
pub fn run(data: &[u8]) -> u64 {
    let mut input = Input(data);
    // Up to ~256 KiB: beyond a socketpair's buffer, so writes block.
    let len = (input.byte() as usize) << (input.byte() % 11);
    let payload: Vec<u8> = (0..len).map(|i| (i * 131 + len) as u8).collect();
    let close_writer_at = match input.byte() {
        b @ 0..=15 => Some(len * b as usize / 16),
        _ => None,
    };
    let close_reader_at = match input.byte() {
        b @ 0..=15 => Some(len * b as usize / 16),
        _ => None,
    };
    let (a, b) = socketpair(SOCK_STREAM).expect("socketpair");
    let mut a = Some(a);
    let mut b = Some(b);
    let mut writer = WriteAll::new(payload.clone());
    let mut got: Vec<u8> = Vec::new();
    let mut features = 0u64;
    let mut writer_done = false;
    let mut reader_done = false;
    let mut stuck = 0;
    while !(writer_done && reader_done) {
        let mut progress = false;
        if !writer_done {
            match &a {
                Some(fd) => {
                    let before = writer.written();
                    match writer.advance(fd.as_fd()) {
                        IoStatus::Done => {
                            writer_done = true;
                            features |= 1;
                            a = None; // FIN: the reader sees Eof at the end
                        }
                        IoStatus::WouldBlock => features |= 2,
                        IoStatus::BrokenPipe | IoStatus::Reset => {
                            assert!(b.is_none(), "write failed with the reader open");
                            writer_done = true;
                            features |= 4;
                        }
                        s => panic!("writer: unexpected {s:?}"),
                    }
                    progress |= writer.written() > before;
                    if let Some(at) = close_writer_at {
                        if !writer_done && writer.written() >= at {
                            a = None;
                            writer_done = true;
                            features |= 8;
                        }
                    }
                }
                None => writer_done = true,
            }
        }
        if !reader_done {
            match &b {
                Some(fd) => {
                    // One machine per chunk, of a size the input picks.
                    let chunk = 1 + ((input.byte() as usize) << (input.byte() % 11));
                    let mut m = ReadExact::new(chunk);
                    if input.byte() % 4 == 0 && !got.is_empty() {
                        // Hand over bytes "read elsewhere": they must
                        // come out first and only once.
                        let mut pre = Buffer::new();
                        // (No more than the machine wants: bytes it left
                        // would belong before the ones it reads next.)
                        let n = (input.byte() as usize).min(got.len()).min(chunk);
                        let tail = got.split_off(got.len() - n);
                        pre.extend(&tail).expect("small");
                        let took = m.take_from(&mut pre);
                        assert_eq!(took, n, "take_from takes what fits");
                        assert!(pre.is_empty(), "take_from consumes what it took");
                        features |= 16;
                    }
                    let status = m.advance(fd.as_fd());
                    let filled = m.filled().to_vec();
                    progress |= !filled.is_empty();
                    got.extend_from_slice(&filled);
                    match status {
                        IoStatus::Done => features |= 32,
                        IoStatus::WouldBlock => features |= 64,
                        IoStatus::Eof => {
                            assert!(a.is_none(), "Eof with the writer open");
                            reader_done = true;
                            features |= 128;
                        }
                        s => panic!("reader: unexpected {s:?}"),
                    }
                    if let Some(at) = close_reader_at {
                        if !reader_done && got.len() >= at && at < len {
                            b = None;
                            reader_done = true;
                            features |= 256;
                        }
                    }
                }
                None => reader_done = true,
            }
        }
        assert!(got.len() <= payload.len(), "read more than written");
        assert_eq!(got[..], payload[..got.len()], "bytes differ");
        stuck = if progress { 0 } else { stuck + 1 };
        assert!(stuck < 1000, "no progress: both sides would block");
    }
    if close_writer_at.is_none() && close_reader_at.is_none() {
        assert_eq!(got.len(), payload.len(), "everything arrives");
        features |= 512;
    }
    features
}
