//! Timers at 1k and 100k live timers: insert, cancel, and reset to a later
//! deadline (the idle-timeout path, which should be O(1), no heap work).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use sockloop::timer::{TimerId, Timers};
use std::time::{Duration, Instant};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// Deadlines spread over ~17 minutes of ms, in a fixed pseudo-random order.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % 1_000_000
    }
}

fn live(n: usize, rng: &mut Lcg) -> (Timers<u64>, Vec<TimerId>) {
    let mut t = Timers::new();
    let ids = (0..n as u64).map(|i| t.insert(rng.next(), i)).collect();
    (t, ids)
}

/// Timed batches stay small so the set stays near its size.
const CHUNK: u64 = 1000;

fn timers(c: &mut Criterion) {
    let mut g = c.benchmark_group("timers");
    for n in [1_000usize, 100_000] {
        g.bench_with_input(BenchmarkId::new("insert", n), &n, |b, &n| {
            let mut rng = Lcg(1);
            let (mut t, _ids) = live(n, &mut rng);
            let mut batch = Vec::with_capacity(CHUNK as usize);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let k = left.min(CHUNK);
                    let start = Instant::now();
                    for i in 0..k {
                        batch.push(t.insert(rng.next(), i));
                    }
                    total += start.elapsed();
                    for id in batch.drain(..) {
                        t.cancel(id);
                    }
                    left -= k;
                }
                total
            })
        });

        g.bench_with_input(BenchmarkId::new("cancel", n), &n, |b, &n| {
            let mut rng = Lcg(2);
            let (mut t, _ids) = live(n, &mut rng);
            let mut batch = Vec::with_capacity(CHUNK as usize);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let k = left.min(CHUNK);
                    for i in 0..k {
                        batch.push(t.insert(rng.next(), i));
                    }
                    let start = Instant::now();
                    for id in batch.drain(..) {
                        black_box(t.cancel(id));
                    }
                    total += start.elapsed();
                    left -= k;
                }
                total
            })
        });

        g.bench_with_input(BenchmarkId::new("reset_later", n), &n, |b, &n| {
            let mut rng = Lcg(3);
            let (mut t, ids) = live(n, &mut rng);
            let mut i = 0usize;
            let mut now = 1_000_000u64;
            b.iter(|| {
                // Stride through the ids so consecutive resets touch
                // different slots, as different connections' reads would.
                i = (i + 7919) % ids.len();
                now += 1;
                assert!(t.reset(ids[i], black_box(now + 60_000)));
            })
        });
    }
    g.finish();
}

criterion_group! { name = benches; config = config(); targets = timers }
criterion_main!(benches);
