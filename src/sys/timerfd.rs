//! timerfd: the loop's timer wake-up.
//!
//! The loop arms one timerfd at the absolute `CLOCK_MONOTONIC` time of its
//! earliest timer. The kernel then makes the descriptor readable when that
//! time comes, so a turn learns that a timer is due from `epoll_wait`
//! itself, and a turn in which no timer is due reads no clock.

use super::fd::owned;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)`, disarmed.
///
/// # Errors
/// EMFILE/ENFILE; ENOMEM.
pub fn create() -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create takes no pointers.
    let fd = syscall!(timerfd_create(
        libc::CLOCK_MONOTONIC,
        libc::TFD_NONBLOCK | libc::TFD_CLOEXEC
    ))?;
    Ok(owned(fd))
}

/// Arms the timer to expire once at `at_ns` nanoseconds on
/// `CLOCK_MONOTONIC` (`TFD_TIMER_ABSTIME`; a time already past expires at
/// once), or disarms it with `None`. Arming replaces any earlier setting
/// and resets the count of expirations (the descriptor is not readable
/// until the new time comes).
///
/// # Errors
/// EBADF; EINVAL (not a timerfd).
pub fn set(fd: BorrowedFd<'_>, at_ns: Option<u64>) -> io::Result<()> {
    // An all-zero `it_value` disarms, so an armed time is at least 1 ns.
    let ns = at_ns.map_or(0, |n| n.max(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        },
    };
    // SAFETY: `spec` is a valid itimerspec; the old value is not asked for
    // (null is allowed).
    syscall!(timerfd_settime(
        fd.as_raw_fd(),
        libc::TFD_TIMER_ABSTIME,
        &spec,
        std::ptr::null_mut()
    ))?;
    Ok(())
}

/// Reads and resets the count of expirations; `Ok(0)` when the timer has
/// not expired since it was last read or armed.
///
/// # Errors
/// EBADF.
pub fn drain(fd: BorrowedFd<'_>) -> io::Result<u64> {
    super::fd::read_counter(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn an_armed_time_in_the_past_expires_at_once_and_disarming_clears_it() {
        let fd = create().unwrap();
        assert_eq!(drain(fd.as_fd()).unwrap(), 0, "a new timerfd is disarmed");
        let now = crate::sys::time::monotonic_ns().unwrap();
        set(fd.as_fd(), Some(now)).unwrap();
        // Expired already: readable at once (epoll sees it without waiting
        // out its 1 s bound).
        let ep = crate::sys::epoll::create().unwrap();
        crate::sys::epoll::add(ep.as_fd(), fd.as_fd(), libc::EPOLLIN as u32, 7).unwrap();
        let mut buf = crate::sys::epoll::EventBuf::with_capacity(4);
        assert_eq!(
            crate::sys::epoll::wait(ep.as_fd(), &mut buf, 1000).unwrap(),
            1
        );
        let expired = drain(fd.as_fd()).unwrap();
        assert_eq!(expired, 1);
        set(fd.as_fd(), Some(now + 3_600_000_000_000)).unwrap();
        set(fd.as_fd(), None).unwrap();
        assert_eq!(drain(fd.as_fd()).unwrap(), 0);
    }
}
