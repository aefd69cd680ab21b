//! File-descriptor flags: `O_NONBLOCK` and friends, and owning raw fds.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a descriptor that a syscall has just returned.
///
/// Private to `sys`: only wrappers that received `fd` from the kernel call it.
pub(crate) fn owned(fd: RawFd) -> OwnedFd {
    debug_assert!(fd >= 0);
    // SAFETY: `fd` was just returned by a successful syscall, is open, and is
    // owned by nobody else, so the `OwnedFd` may close it exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Takes ownership of a raw descriptor handed in from outside (the body of
/// every `FromRawFd::from_raw_fd` in `net/`, so that the `unsafe` block
/// itself stays in `sys`).
///
/// # Safety
/// `fd` must be open and owned by nobody else: the returned `OwnedFd`
/// closes it when dropped.
pub unsafe fn adopt_raw(fd: RawFd) -> OwnedFd {
    // SAFETY: the caller promises that `fd` is open and owned by nobody
    // else, which is all `OwnedFd` needs.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Sets or clears `O_NONBLOCK` on `fd` (`fcntl(F_GETFL)` then `F_SETFL`).
///
/// `O_NONBLOCK`, not the old `O_NDELAY`: with `O_NDELAY` some systems make a
/// read with no data return 0, indistinguishable from end of file; with
/// `O_NONBLOCK` it fails with EAGAIN. (glibc defines `O_NDELAY` as
/// `O_NONBLOCK` today, but the distinction is why the name exists.)
///
/// # Errors
/// The errno of `fcntl`, e.g. EBADF.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no pointer argument; `fd` is a valid borrowed fd.
    let flags = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: F_SETFL takes an int flags argument; `fd` is valid.
        syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFL, new))?;
    }
    Ok(())
}

/// Reports whether `O_NONBLOCK` is set on `fd`.
///
/// # Errors
/// The errno of `fcntl(F_GETFL)`.
pub fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no pointer argument; `fd` is a valid borrowed fd.
    let flags = syscall!(fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Reads the 8-byte counter of an eventfd or a timerfd (which resets it);
/// `Ok(0)` when it is zero (the descriptor is non-blocking: EAGAIN).
///
/// # Errors
/// EBADF; EINVAL for a descriptor that has no such counter.
pub fn read_counter(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut n: u64 = 0;
    // SAFETY: `n` is 8 writable bytes, the size both descriptors require.
    match syscall_retry!(read(fd.as_raw_fd(), (&mut n as *mut u64).cast(), 8)) {
        Ok(_) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// Creates a pipe with `O_NONBLOCK | O_CLOEXEC` on both ends: `(read, write)`.
///
/// # Errors
/// The errno of `pipe2`, e.g. EMFILE.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// Duplicates `fd` with `F_DUPFD_CLOEXEC`.
///
/// # Errors
/// The errno of `fcntl`, e.g. EMFILE.
pub fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int minimum-fd argument; `fd` is valid.
    let new = syscall!(fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0))?;
    Ok(owned(new))
}

/// Opens `/dev/null` read-only with `O_CLOEXEC`: the spare descriptor the
/// acceptor keeps for EMFILE.
///
/// # Errors
/// The errno of `open`, e.g. EMFILE.
pub fn open_dev_null() -> io::Result<OwnedFd> {
    let path = b"/dev/null\0";
    // SAFETY: `path` is a NUL-terminated byte string that outlives the call.
    let fd = syscall!(open(
        path.as_ptr().cast::<libc::c_char>(),
        libc::O_RDONLY | libc::O_CLOEXEC
    ))?;
    Ok(owned(fd))
}
