//! Buffer: append, append + consume (the read path's steady state), and
//! compaction (moving unread bytes to the front instead of growing).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sockloop::Buffer;
use std::time::Duration;

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

fn buffer(c: &mut Criterion) {
    let data = [0xa5u8; 64];
    let mut g = c.benchmark_group("buffer");
    g.throughput(Throughput::Bytes(64));

    g.bench_function("extend_64B", |b| {
        let mut buf = Buffer::new();
        b.iter(|| {
            if buf.len() >= 32 * 1024 {
                buf.clear(); // keep the allocation: measure appends, not growth
            }
            buf.extend(black_box(&data)).unwrap();
        })
    });

    g.bench_function("extend_consume_64B", |b| {
        let mut buf = Buffer::new();
        b.iter(|| {
            buf.extend(black_box(&data)).unwrap();
            buf.consume(black_box(64));
        })
    });

    // 64 KiB allocated, 60 KiB consumed, 4 KiB unread at the tail: asking
    // for 8 KiB more must move the 4 KiB to the front, not grow.
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("compact_4KiB", |b| {
        let mut buf = Buffer::new();
        buf.extend(&[7u8; 64 * 1024]).unwrap();
        buf.consume(60 * 1024);
        let cap = buf.capacity();
        b.iter(|| {
            let room = buf.writable(black_box(8 * 1024)).unwrap().len();
            black_box(room);
            // Back to the starting layout, without copying.
            buf.commit(cap - buf.len());
            buf.consume(60 * 1024);
        });
        assert_eq!(buf.capacity(), cap, "compaction must not grow the buffer");
    });
    g.finish();
}

criterion_group! { name = benches; config = config(); targets = buffer }
criterion_main!(benches);
