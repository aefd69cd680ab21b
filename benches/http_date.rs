//! The http example's `Date` value: its own IMF-fixdate formatter against
//! the `httpdate` crate, and what a request pays with the once-per-second
//! cache (a comparison with the loop clock). See examples/http/date.rs.

#[path = "../examples/http/date.rs"]
mod date;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::io::Write as _;
use std::time::{Duration, UNIX_EPOCH};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

fn formatters(c: &mut Criterion) {
    let secs = 1_796_161_210u64; // 2026-12-01
    c.bench_function("date/own imf_fixdate", |b| {
        let mut out = [0u8; date::LEN];
        b.iter(|| {
            date::imf_fixdate(black_box(secs), &mut out);
            black_box(&out);
        })
    });
    c.bench_function("date/httpdate::fmt_http_date (String)", |b| {
        b.iter(|| {
            black_box(httpdate::fmt_http_date(
                UNIX_EPOCH + Duration::from_secs(black_box(secs)),
            ))
        })
    });
    c.bench_function("date/httpdate::HttpDate into a buffer", |b| {
        let mut out = [0u8; date::LEN];
        b.iter(|| {
            let d = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(black_box(secs)));
            let _ = write!(&mut out[..], "{d}");
            black_box(&out);
        })
    });
    c.bench_function("date/cached get (per request)", |b| {
        let mut cache = date::DateCache::new();
        let now = Duration::from_secs(5);
        cache.get(now);
        b.iter(|| black_box(cache.get(black_box(now))[0]))
    });
}

criterion_group! {
    name = benches;
    config = config();
    targets = formatters
}
criterion_main!(benches);
