//! The poller: one epoll instance and a reusable event buffer.
//!
//! In the event path: the wait at the top of every loop turn. `Poller::wait`
//! is the one `epoll_wait`; each event's [`Token`] says which
//! registration it belongs to.
//!
//! Connections are registered once, edge-triggered, for every kind of
//! readiness (`EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`). The loop keeps
//! its own "readable"/"writable" flags from the edges, so a write that
//! blocks never needs an `epoll_ctl` to start watching for writability, and
//! the end of the wait for it never needs one either. See ARCHITECTURE.md,
//! "Why edge-triggered".

use crate::sys::epoll;
use crate::token::Token;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// Which readiness a registration asks epoll to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest(u32);

impl Interest {
    /// Readable, edge-triggered (listeners, wakers, signalfds).
    pub const READABLE: Interest = Interest(epoll::EPOLLIN as u32 | epoll::EPOLLET as u32);
    /// Readable, edge-triggered, with `EPOLLEXCLUSIVE`: for one listening
    /// socket registered in several epoll instances (one per loop), so that
    /// a new connection wakes one waiting loop, not all of them. The kernel
    /// accepts `EPOLLEXCLUSIVE` only on `EPOLL_CTL_ADD`, only with
    /// IN/OUT/ET/WAKEUP (no `EPOLLRDHUP`), and never on `EPOLL_CTL_MOD`: to
    /// change such a registration, delete it and add it again
    /// ([`Poller::modify`] refuses it).
    pub const EXCLUSIVE_READABLE: Interest =
        Interest(epoll::EPOLLIN as u32 | epoll::EPOLLET as u32 | epoll::EPOLLEXCLUSIVE as u32);
    /// Everything a stream needs, edge-triggered, registered once:
    /// readable, writable, and the peer's half-close (`EPOLLRDHUP`).
    pub const STREAM: Interest = Interest(
        epoll::EPOLLIN as u32
            | epoll::EPOLLOUT as u32
            | epoll::EPOLLRDHUP as u32
            | epoll::EPOLLET as u32,
    );

    /// The raw `epoll_event.events` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
}

/// The readiness epoll reported for one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready(u32);

impl Ready {
    /// Data (or a FIN, or an error) can be read without blocking.
    #[inline]
    pub fn is_readable(self) -> bool {
        self.0 & (epoll::EPOLLIN | epoll::EPOLLPRI) as u32 != 0
    }
    /// The send buffer has room (or the socket has failed).
    #[inline]
    pub fn is_writable(self) -> bool {
        self.0 & epoll::EPOLLOUT as u32 != 0
    }
    /// The peer has shut down its writing side (we will read EOF).
    #[inline]
    pub fn is_read_closed(self) -> bool {
        self.0 & (epoll::EPOLLRDHUP | epoll::EPOLLHUP) as u32 != 0
    }
    /// Both directions are closed (reset, or both FINs exchanged).
    #[inline]
    pub fn is_hup(self) -> bool {
        self.0 & epoll::EPOLLHUP as u32 != 0
    }
    /// The socket has a pending error (read it with `SO_ERROR`, or let the
    /// next read or write report it).
    #[inline]
    pub fn is_error(self) -> bool {
        self.0 & epoll::EPOLLERR as u32 != 0
    }
    /// The raw `epoll_event.events` bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

/// An epoll instance plus the buffer its events land in.
pub struct Poller {
    epfd: OwnedFd,
    events: epoll::EventBuf,
}

impl Poller {
    /// Creates an epoll instance whose waits return up to `capacity` events.
    ///
    /// # Errors
    /// EMFILE/ENFILE from `epoll_create1`.
    pub fn new(capacity: usize) -> io::Result<Poller> {
        Ok(Poller {
            epfd: epoll::create()?,
            events: epoll::EventBuf::with_capacity(capacity),
        })
    }

    /// Registers `fd` for `interest`, reporting `token` with its events.
    ///
    /// # Errors
    /// EEXIST, EPERM (fd type epoll cannot watch), ENOSPC.
    pub fn add(&self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        epoll::add(self.epfd.as_fd(), fd, interest.bits(), token.to_u64())
    }

    /// Changes the token or interest of a registered fd.
    ///
    /// # Errors
    /// ENOENT when `fd` is not registered; `InvalidInput` for an interest
    /// with `EPOLLEXCLUSIVE`, which the kernel refuses on `EPOLL_CTL_MOD`
    /// (delete and add again instead).
    pub fn modify(&self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        if interest.bits() & epoll::EPOLLEXCLUSIVE as u32 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "EPOLLEXCLUSIVE cannot be modified: delete and add again",
            ));
        }
        epoll::modify(self.epfd.as_fd(), fd, interest.bits(), token.to_u64())
    }

    /// Stops watching `fd`. Closing the last descriptor of a file removes it
    /// from epoll by itself; this is for fds that stay open.
    ///
    /// # Errors
    /// ENOENT when `fd` is not registered.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        epoll::delete(self.epfd.as_fd(), fd)
    }

    /// Waits for events; `None` waits forever. A timeout is rounded *up* to
    /// the next millisecond, so a wait for a timer never returns just before
    /// the timer is due (which would make the loop spin).
    ///
    /// # Errors
    /// Only on a broken epoll fd; EINTR is retried inside.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let ms = match timeout {
            None => -1,
            Some(d) => crate::timer::ceil_ms(d).min(i32::MAX as u64) as i32,
        };
        self.wait_ms(ms)
    }

    /// Waits up to `timeout_ms` milliseconds (-1: forever).
    ///
    /// # Errors
    /// As [`Poller::wait`].
    #[inline]
    pub fn wait_ms(&mut self, timeout_ms: i32) -> io::Result<usize> {
        epoll::wait(self.epfd.as_fd(), &mut self.events, timeout_ms)
    }

    /// How many events the last wait returned.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the last wait returned no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The `i`th event of the last wait.
    #[inline]
    pub fn event(&self, i: usize) -> (Token, Ready) {
        let (data, bits) = self.events.get(i);
        (Token::from_u64(data), Ready(bits))
    }

    /// The epoll fd itself.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.epfd.as_fd()
    }
}
