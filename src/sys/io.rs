//! Byte I/O on descriptors: read, write, readv, send, sendmsg, recv.
//!
//! All of them retry EINTR. Writes to sockets go through `send`/`sendmsg`
//! with `MSG_NOSIGNAL`, so a write to a connection the peer has reset fails
//! with EPIPE instead of raising SIGPIPE and killing the process.

use super::fault::{self, Op};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most iovecs one `readv`/`sendmsg` call is given (Linux's `UIO_MAXIOV`).
pub const MAX_IOV: usize = 1024;

/// `read(2)`: reads up to `buf.len()` bytes; `Ok(0)` means end of file.
///
/// # Errors
/// EAGAIN/EWOULDBLOCK (`ErrorKind::WouldBlock`) when a non-blocking fd has
/// no data; ECONNRESET; any other errno of `read`.
#[inline]
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let len = fault::limit(Op::Read, fd, buf.len())?;
    // SAFETY: `buf` is valid for writes of `len <= buf.len()` bytes.
    let n = syscall_retry!(Op::Read => direct::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len))?;
    Ok(n as usize)
}

/// `write(2)`: writes up to `buf.len()` bytes, returns how many were taken.
///
/// Not for sockets: a write to a reset socket raises SIGPIPE; use [`send`].
///
/// # Errors
/// EAGAIN when the fd's buffer is full; EPIPE; any other errno of `write`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let len = fault::limit(Op::Write, fd, buf.len())?;
    // SAFETY: `buf` is valid for reads of `len <= buf.len()` bytes.
    let n = syscall_retry!(Op::Write => write(fd.as_raw_fd(), buf.as_ptr().cast(), len))?;
    Ok(n as usize)
}

/// `readv(2)`: scatters one read over `bufs` in order.
///
/// # Errors
/// As [`read`].
pub fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let limit = fault::limit(Op::Readv, fd, total)?;
    if limit < total {
        // An injected short read: fill only the first `limit` bytes.
        let first_len = bufs[0].len();
        return read(fd, &mut bufs[0][..limit.min(first_len)]);
    }
    let cnt = bufs.len().min(MAX_IOV) as libc::c_int;
    // SAFETY: `IoSliceMut` is ABI-compatible with `struct iovec`; the first
    // `cnt` entries each describe a live, writable buffer.
    let n =
        syscall_retry!(Op::Readv => direct::readv(fd.as_raw_fd(), bufs.as_mut_ptr().cast(), cnt))?;
    Ok(n as usize)
}

/// `send(2)` with `MSG_NOSIGNAL`: writes to a socket without SIGPIPE.
///
/// # Errors
/// EAGAIN when the send buffer is full; ECONNRESET when the peer reset the
/// connection; EPIPE when writing after our shutdown or after a reset was
/// already reported; ENOTSOCK when `fd` is not a socket.
// `inline(always)`: with `--features tls` the hot path's caller
// (the end-of-callback send) grows by the TLS check and LLVM stopped inlining this
// at plain `#[inline]` (+37 instructions per echo round trip, callgrind).
#[inline(always)]
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let len = fault::limit(Op::Write, fd, buf.len())?;
    // SAFETY: `buf` is valid for reads of `len <= buf.len()` bytes.
    let n = syscall_retry!(Op::Write => direct::send(
        fd.as_raw_fd(),
        buf.as_ptr().cast(),
        len,
        libc::MSG_NOSIGNAL
    ))?;
    Ok(n as usize)
}

/// `sendmsg(2)` with `MSG_NOSIGNAL` and no address: a gathering write
/// (`writev`) that cannot raise SIGPIPE.
///
/// # Errors
/// As [`send`].
pub fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let limit = fault::limit(Op::Writev, fd, total)?;
    if limit < total {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        return send(fd, &first[..limit.min(first.len())]);
    }
    // SAFETY: an all-zero msghdr is a valid "no name, no control" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(MAX_IOV) as _;
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec`; `msg` points
    // at `bufs`, which outlives the call, and the kernel only reads them.
    let n =
        syscall_retry!(Op::Writev => direct::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL))?;
    Ok(n as usize)
}

/// `recv(2)` with `flags` (e.g. `MSG_PEEK`); `Ok(0)` means end of stream.
///
/// # Errors
/// As [`read`].
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    let len = fault::limit(Op::Read, fd, buf.len())?;
    // SAFETY: `buf` is valid for writes of `len <= buf.len()` bytes.
    let n = syscall_retry!(Op::Read => direct::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len, flags))?;
    Ok(n as usize)
}
