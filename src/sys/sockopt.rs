//! `getsockopt`/`setsockopt`, wrapped once for any option value type.
//!
//! The typed, documented options users call live in `crate::options`; this
//! file only moves bytes between Rust values and the kernel.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Option values the kernel reads or writes as plain bytes.
///
/// # Safety
/// Implementors must be `repr(C)` plain old data for which every bit pattern
/// is valid (the kernel writes arbitrary bytes into them).
pub unsafe trait OptionValue: Copy {}
// SAFETY: ints, linger and timeval are repr(C) POD; any bits are valid.
unsafe impl OptionValue for libc::c_int {}
// SAFETY: as above.
unsafe impl OptionValue for libc::linger {}
// SAFETY: as above.
unsafe impl OptionValue for libc::timeval {}
// SAFETY: as above.
unsafe impl OptionValue for libc::tcp_info {}

/// `setsockopt(fd, level, name, &value, sizeof value)`.
///
/// # Errors
/// ENOPROTOOPT (option unknown at that level), EINVAL (bad value),
/// EPERM (e.g. SO_BINDTODEVICE without CAP_NET_RAW), EBADF, ENOTSOCK.
pub fn set<T: OptionValue>(fd: BorrowedFd<'_>, level: i32, name: i32, value: T) -> io::Result<()> {
    // SAFETY: `value` is a live T of exactly the size we pass.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&value as *const T).cast(),
        mem::size_of::<T>() as libc::socklen_t
    ))?;
    Ok(())
}

/// `getsockopt(fd, level, name, &value, &len)`.
///
/// # Errors
/// As [`set`].
pub fn get<T: OptionValue>(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<T> {
    // SAFETY: T is POD (OptionValue's contract): zeroed is a valid T.
    let mut value: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes; `len` is a valid socklen_t.
    syscall!(getsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&mut value as *mut T).cast(),
        &mut len
    ))?;
    Ok(value)
}

/// `setsockopt` with a byte string value (SO_BINDTODEVICE takes a name).
///
/// # Errors
/// As [`set`].
pub fn set_bytes(fd: BorrowedFd<'_>, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    // SAFETY: `value` is valid for reads of `value.len()` bytes.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        value.as_ptr().cast(),
        value.len() as libc::socklen_t
    ))?;
    Ok(())
}

/// `getsockopt` into a byte buffer; returns the length the kernel wrote.
///
/// # Errors
/// As [`set`].
pub fn get_bytes(fd: BorrowedFd<'_>, level: i32, name: i32, out: &mut [u8]) -> io::Result<usize> {
    let mut len = out.len() as libc::socklen_t;
    // SAFETY: `out` is writable for `len` bytes.
    syscall!(getsockopt(
        fd.as_raw_fd(),
        level,
        name,
        out.as_mut_ptr().cast(),
        &mut len
    ))?;
    Ok(len as usize)
}

/// Reads and clears the socket's pending error (`SO_ERROR`): how a
/// non-blocking connect reports its outcome once the socket is writable.
/// `Ok(None)` means no error (connected).
///
/// # Errors
/// The errno of `getsockopt` itself (EBADF, ENOTSOCK).
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let err: libc::c_int = get(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok(if err == 0 {
        None
    } else {
        Some(io::Error::from_raw_os_error(err))
    })
}
