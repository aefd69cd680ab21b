//! Datagram I/O: `sendto`, `recvfrom`, and `send`/`recv` for connected
//! datagram sockets.
//!
//! The receive wrappers pass `MSG_TRUNC`. For datagram sockets Linux then
//! returns the datagram's *real* length even when the buffer was shorter
//! (the rest of the datagram is discarded either way), so a caller can tell
//! a truncated datagram from one that happened to fill the buffer exactly.
//! Plain `recvfrom` returns only the copied length and the loss is silent.
//!
//! No fault injection here: a datagram is sent or received whole, so the
//! injected short counts of the stream wrappers would model nothing real.

use super::addr::RawAddr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `sendto(2)` with `MSG_NOSIGNAL`: sends `buf` as one datagram to `to`.
/// Returns the number of bytes sent (all of `buf` on success).
///
/// # Errors
/// EAGAIN when the send buffer is full, EMSGSIZE when `buf` is larger than
/// the protocol allows, EACCES when sending to a broadcast address without
/// `SO_BROADCAST`, ECONNREFUSED when an earlier datagram drew an ICMP "port
/// unreachable", EAFNOSUPPORT/EINVAL for an address of the wrong family.
pub fn send_to(fd: BorrowedFd<'_>, buf: &[u8], to: &RawAddr) -> io::Result<usize> {
    super::msg::send_to(fd, buf, Some(to), 0)
}

/// `recvfrom(2)` with `MSG_TRUNC`: receives one datagram into `buf`.
///
/// Returns the datagram's real length (which is larger than `buf.len()` when
/// it was truncated; only `min(real, buf.len())` bytes were written) and the
/// sender's address.
///
/// # Errors
/// EAGAIN when no datagram is queued on a non-blocking socket;
/// ECONNREFUSED when an earlier datagram drew an ICMP "port unreachable".
pub fn recv_from(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, RawAddr)> {
    let mut raw = RawAddr::empty();
    let (ptr, len) = raw.as_mut_ptr();
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes (with
    // MSG_TRUNC the kernel still writes at most that many); `ptr`/`len`
    // describe `raw`'s storage for the kernel to fill.
    let n = syscall_retry!(recvfrom(
        fd.as_raw_fd(),
        buf.as_mut_ptr().cast(),
        buf.len(),
        libc::MSG_TRUNC,
        ptr,
        len
    ))?;
    Ok((n as usize, raw))
}

/// `send(2)` with `MSG_NOSIGNAL` on a connected datagram socket.
///
/// # Errors
/// As [`send_to`]; EDESTADDRREQ when the socket is not connected.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let n = syscall_retry!(send(
        fd.as_raw_fd(),
        buf.as_ptr().cast(),
        buf.len(),
        libc::MSG_NOSIGNAL
    ))?;
    Ok(n as usize)
}

/// `recv(2)` with `MSG_TRUNC` on a connected datagram socket; returns the
/// datagram's real length, as [`recv_from`].
///
/// # Errors
/// As [`recv_from`].
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = syscall_retry!(recv(
        fd.as_raw_fd(),
        buf.as_mut_ptr().cast(),
        buf.len(),
        libc::MSG_TRUNC
    ))?;
    Ok(n as usize)
}
