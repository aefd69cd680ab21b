//! The http example's IMF-fixdate formatter and its once-per-second cache
//! (`examples/http/date.rs`, included by path), checked against the
//! `httpdate` crate.

#[path = "../examples/http/date.rs"]
mod date;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn reference(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

fn ours(secs: u64) -> String {
    let mut out = [0u8; date::LEN];
    date::imf_fixdate(secs, &mut out);
    String::from_utf8(out.to_vec()).expect("ascii")
}

#[test]
fn formats_like_httpdate() {
    assert_eq!(ours(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(ours(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    // Leap days, century rules (2000 is a leap year, 2100 is not), and
    // the last second of a year.
    for secs in [
        951_782_400,     // 2000-02-29
        4_107_542_399,   // 2100-02-28 23:59:59
        4_107_542_400,   // 2100-03-01
        1_798_761_599,   // 2026-12-31 23:59:59
        253_402_300_799, // 9999-12-31 23:59:59
    ] {
        assert_eq!(ours(secs), reference(secs), "{secs}");
    }
    // A spread of instants over 1970..9999, in odd steps so that every
    // weekday, month and time of day comes up.
    let mut secs = 0u64;
    while secs < 253_402_300_799 {
        assert_eq!(ours(secs), reference(secs), "{secs}");
        secs += 86_400 * 37 + 3_671;
    }
}

#[test]
fn the_cache_formats_once_per_wall_clock_second() {
    let mut cache = date::DateCache::new();
    let start = Duration::from_secs(1000); // the loop clock
                                           // 0.75 s into a wall-clock second.
    let wall = UNIX_EPOCH + Duration::from_millis(784_111_777_750);
    cache.refresh(start, wall);
    assert_eq!(
        cache.get(start + Duration::from_millis(249)),
        b"Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert!(!cache.is_stale(start + Duration::from_millis(249)));
    // The next wall-clock second begins 250 ms later on the loop clock.
    assert!(cache.is_stale(start + Duration::from_millis(250)));
    cache.refresh(
        start + Duration::from_millis(250),
        wall + Duration::from_millis(250),
    );
    assert_eq!(
        cache.get(start + Duration::from_millis(251)),
        b"Sun, 06 Nov 1994 08:49:38 GMT"
    );
    assert!(!cache.is_stale(start + Duration::from_millis(1249)));
    assert!(cache.is_stale(start + Duration::from_millis(1250)));
    // A fresh cache formats on first use, from the real wall clock.
    let mut fresh = date::DateCache::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let got = String::from_utf8(fresh.get(Duration::ZERO).to_vec()).expect("ascii");
    assert!(
        got == reference(now) || got == reference(now + 1),
        "{got} vs {}",
        reference(now)
    );
}
