//! epoll: create, control, wait.

use super::fault::{self, Op};
use super::fd::owned;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

pub use libc::{
    EPOLLERR, EPOLLET, EPOLLEXCLUSIVE, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLPRI, EPOLLRDHUP,
};

/// `epoll_create1(EPOLL_CLOEXEC)`.
///
/// # Errors
/// EMFILE/ENFILE, ENOMEM.
pub fn create() -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1 takes no pointers.
    let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
    Ok(owned(fd))
}

fn ctl(
    epfd: BorrowedFd<'_>,
    op: i32,
    fd: BorrowedFd<'_>,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    syscall!(epoll_ctl(epfd.as_raw_fd(), op, fd.as_raw_fd(), &mut ev))?;
    if op == libc::EPOLL_CTL_DEL {
        fault::unregistered(epfd, fd);
    } else {
        fault::registered(epfd, fd, events, data);
    }
    Ok(())
}

/// `EPOLL_CTL_MOD` by descriptor number, for the fault injector's owed
/// edges: the descriptor may have been closed since (EBADF) or its number
/// reused by a file this epoll does not watch (ENOENT); both are harmless.
#[cfg(feature = "fault-injection")]
pub(crate) fn rearm(
    epfd: BorrowedFd<'_>,
    fd: std::os::fd::RawFd,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call; a
    // stale `fd` number only makes the call fail, it is not dereferenced.
    syscall!(epoll_ctl(
        epfd.as_raw_fd(),
        libc::EPOLL_CTL_MOD,
        fd,
        &mut ev
    ))?;
    Ok(())
}

/// `EPOLL_CTL_ADD`: watch `fd` for `events`, reporting `data` with each event.
///
/// # Errors
/// EEXIST (already registered), EPERM (fd does not support epoll, e.g. a
/// regular file), ENOSPC (max_user_watches).
pub fn add(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>, events: u32, data: u64) -> io::Result<()> {
    ctl(epfd, libc::EPOLL_CTL_ADD, fd, events, data)
}

/// `EPOLL_CTL_MOD`: change the events and data of a registered fd.
///
/// # Errors
/// ENOENT when `fd` is not registered.
pub fn modify(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>, events: u32, data: u64) -> io::Result<()> {
    ctl(epfd, libc::EPOLL_CTL_MOD, fd, events, data)
}

/// `EPOLL_CTL_DEL`: stop watching `fd`.
///
/// # Errors
/// ENOENT when `fd` is not registered.
pub fn delete(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    ctl(epfd, libc::EPOLL_CTL_DEL, fd, 0, 0)
}

/// A reusable buffer of events for [`wait`]; allocated once per loop.
pub struct EventBuf {
    events: Vec<libc::epoll_event>,
    len: usize,
}

impl EventBuf {
    /// A buffer that receives at most `capacity` events per wait.
    pub fn with_capacity(capacity: usize) -> EventBuf {
        EventBuf {
            events: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)],
            len: 0,
        }
    }

    /// How many events the last wait returned.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the last wait returned no events.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many events one wait can return.
    pub fn capacity(&self) -> usize {
        self.events.len()
    }

    /// The `i`th event of the last wait: `(data, event bits)`.
    #[inline]
    pub fn get(&self, i: usize) -> (u64, u32) {
        let ev = self.events[..self.len][i];
        (ev.u64, ev.events)
    }
}

/// `epoll_wait`: waits up to `timeout_ms` (-1 forever) for events into `buf`.
/// Retries EINTR with the same timeout: a signal can make the wait longer
/// than asked, never shorter, and the loop recomputes timers after it.
///
/// # Errors
/// EBADF/EINVAL for a bad epoll fd (a bug, not a runtime condition).
pub fn wait(epfd: BorrowedFd<'_>, buf: &mut EventBuf, timeout_ms: i32) -> io::Result<usize> {
    buf.len = 0;
    fault::rearm_owed(epfd);
    let cap = fault::wait_capacity(buf.events.len()) as libc::c_int;
    // SAFETY: `buf.events` is valid for writes of `cap` epoll_event structs
    // (`cap <= buf.events.len()`).
    let n = syscall_retry!(Op::Wait => direct::epoll_wait(
        epfd.as_raw_fd(),
        buf.events.as_mut_ptr(),
        cap,
        timeout_ms
    ))?;
    buf.len = n as usize;
    Ok(buf.len)
}

/// `epoll_wait` that returns on EINTR instead of retrying: for tests that
/// prove a signal interrupts the wait.
///
/// # Errors
/// EINTR when a signal handler ran during the wait.
pub fn wait_once(epfd: BorrowedFd<'_>, buf: &mut EventBuf, timeout_ms: i32) -> io::Result<usize> {
    buf.len = 0;
    let cap = buf.events.len() as libc::c_int;
    // SAFETY: `buf.events` is valid for writes of `cap` epoll_event structs.
    let n = syscall!(epoll_wait(
        epfd.as_raw_fd(),
        buf.events.as_mut_ptr(),
        cap,
        timeout_ms
    ))?;
    buf.len = n as usize;
    Ok(buf.len)
}
