//! Resource accounting the tests measure the loop with: CPU time of the
//! calling thread or process, and the kernel's clock-tick rate (the unit of
//! the CPU times in `/proc/PID/stat`).

use std::io;
use std::time::Duration;

fn rusage(who: i32) -> io::Result<Duration> {
    // SAFETY: rusage is POD; zeroed is a valid value for the kernel to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the duration of the call.
    syscall!(getrusage(who, &mut ru))?;
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
}

/// User + system CPU time the calling thread has used
/// (`getrusage(RUSAGE_THREAD)`).
///
/// # Errors
/// The errno of `getrusage` (none expected on Linux).
pub fn thread_cpu_time() -> io::Result<Duration> {
    rusage(libc::RUSAGE_THREAD)
}

/// User + system CPU time the whole process has used
/// (`getrusage(RUSAGE_SELF)`).
///
/// # Errors
/// The errno of `getrusage`.
pub fn process_cpu_time() -> io::Result<Duration> {
    rusage(libc::RUSAGE_SELF)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `utime`
/// and `stime` in `/proc/PID/stat`.
///
/// # Errors
/// The errno of `sysconf` if it reports none.
pub fn clock_ticks_per_sec() -> io::Result<u64> {
    // SAFETY: sysconf takes no pointers.
    let hz = syscall!(sysconf(libc::_SC_CLK_TCK))?;
    Ok(hz as u64)
}
