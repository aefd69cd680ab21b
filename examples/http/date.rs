//! The `Date` header (RFC 9110 §6.6.1: an origin server with a clock sends
//! one), in IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`, always 29 bytes.
//!
//! Formatted once per second, not per request: [`DateCache`] keeps the
//! text and the loop-clock instant of the next wall-clock second; a request
//! costs one comparison with the loop's cached time (no clock read), and
//! the wall clock is read only when that second has come.
//!
//! The formatter is our own ([`imf_fixdate`]): `benches/http_date.rs`
//! measured it against the `httpdate` crate (which goes through
//! `core::fmt` and a `String`); ours is cheaper, and `tests/http_date.rs`
//! checks that both write the same text. Std-only, so tests and benches
//! include this file by path.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate.
pub const LEN: usize = 29;

/// Writes `secs` since the Unix epoch as an IMF-fixdate.
pub fn imf_fixdate(secs: u64, out: &mut [u8; LEN]) {
    const DAYS: &[u8; 21] = b"ThuFriSatSunMonTueWed";
    const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let wd = (days % 7) as usize * 3; // 1970-01-01 was a Thursday
    let mo = (month as usize - 1) * 3;
    let two = |n: u64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
    let (h, m, s) = (two(sod / 3600), two(sod / 60 % 60), two(sod % 60));
    let d = two(u64::from(day));
    let y = year.min(9999);
    *out = [
        DAYS[wd],
        DAYS[wd + 1],
        DAYS[wd + 2],
        b',',
        b' ',
        d[0],
        d[1],
        b' ',
        MONTHS[mo],
        MONTHS[mo + 1],
        MONTHS[mo + 2],
        b' ',
        b'0' + (y / 1000) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
        b' ',
        h[0],
        h[1],
        b':',
        m[0],
        m[1],
        b':',
        s[0],
        s[1],
        b' ',
        b'G',
        b'M',
        b'T',
    ];
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31) in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`, for days >= 0).
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The current date text, refreshed when the wall clock's second changes.
pub struct DateCache {
    /// Loop time (see [`DateCache::get`]) at which the text goes stale.
    stale_at: Duration,
    text: [u8; LEN],
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache::new()
    }
}

impl DateCache {
    /// An empty cache: the first [`DateCache::get`] formats.
    pub const fn new() -> DateCache {
        DateCache {
            stale_at: Duration::ZERO,
            text: *b"Thu, 01 Jan 1970 00:00:00 GMT",
        }
    }

    /// The date for a loop whose monotonic clock reads `now` (the loop's
    /// cached time, `Context::now()`). Reads the wall clock only when the
    /// second it last formatted is over.
    #[inline]
    pub fn get(&mut self, now: Duration) -> &[u8; LEN] {
        if now >= self.stale_at {
            self.refresh(now, SystemTime::now());
        }
        &self.text
    }

    /// Whether [`DateCache::get`] at `now` would format anew.
    pub fn is_stale(&self, now: Duration) -> bool {
        now >= self.stale_at
    }

    /// Formats `wall` and marks the text stale at the next wall-clock
    /// second, measured on the loop clock from `now`.
    #[cold]
    pub fn refresh(&mut self, now: Duration, wall: SystemTime) {
        // A wall clock before 1970 is a broken clock: say 1970.
        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        imf_fixdate(since.as_secs(), &mut self.text);
        let left = Duration::from_secs(1) - Duration::from_nanos(u64::from(since.subsec_nanos()));
        self.stale_at = now + left;
    }
}
