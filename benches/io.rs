//! The readn/writen machines over a non-blocking socketpair: one
//! `WriteAll` of n bytes on one end, one `ReadExact` of n on the other,
//! their `advance` calls interleaved on this thread so that neither can
//! block (1 MiB does not fit in the socket buffers).

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use sockloop::io::{IoStatus, ReadExact, WriteAll};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

fn transfer(a: &UnixStream, b: &UnixStream, mut w: WriteAll, mut r: ReadExact) -> ReadExact {
    loop {
        if !w.is_done() {
            match w.advance(a.as_fd()) {
                IoStatus::Done | IoStatus::WouldBlock => {}
                other => panic!("write: {other:?}"),
            }
        }
        match r.advance(b.as_fd()) {
            IoStatus::Done => return r,
            IoStatus::WouldBlock => {}
            other => panic!("read: {other:?}"),
        }
    }
}

fn io(c: &mut Criterion) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mut g = c.benchmark_group("io/write_all+read_exact");
    for (name, n) in [("64B", 64), ("4KiB", 4096), ("1MiB", 1 << 20)] {
        let data: Vec<u8> = (0..n).map(|i| i as u8).collect();
        g.throughput(Throughput::Bytes(n as u64));
        let batch = if n > 65536 {
            BatchSize::LargeInput
        } else {
            BatchSize::SmallInput
        };
        g.bench_with_input(BenchmarkId::from_parameter(name), &n, |bch, &n| {
            // The machines own their buffers: build them outside the timing.
            bch.iter_batched(
                || (WriteAll::new(data.clone()), ReadExact::new(n)),
                |(w, r)| transfer(&a, &b, w, r),
                batch,
            )
        });
        // Correctness once, outside the measurement.
        let r = transfer(&a, &b, WriteAll::new(data.clone()), ReadExact::new(n));
        assert_eq!(r.filled(), &data[..]);
    }
    g.finish();
}

criterion_group! { name = benches; config = config(); targets = io }
criterion_main!(benches);
