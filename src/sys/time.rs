//! The monotonic clock, read directly.
//!
//! `std::time::Instant` does the same `clock_gettime(CLOCK_MONOTONIC)`
//! call but wraps it in checked `Timespec` arithmetic that costs more than
//! the (vDSO) call itself; the loop reads the clock when its timers fire
//! and whenever something asks for the time, so it reads it here as plain
//! nanoseconds.

use std::io;

/// Nanoseconds on `CLOCK_MONOTONIC` (since an arbitrary point, typically
/// boot). Never goes backwards; unaffected by wall-clock changes.
///
/// # Errors
/// EINVAL only if the kernel lacks CLOCK_MONOTONIC (never on Linux).
#[inline]
pub fn monotonic_ns() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    syscall!(clock_gettime(libc::CLOCK_MONOTONIC, &mut ts))?;
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}
