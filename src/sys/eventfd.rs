//! eventfd: the loop's waker.

use super::fd::owned;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
///
/// # Errors
/// EMFILE/ENFILE.
pub fn create() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
    Ok(owned(fd))
}

/// Adds 1 to the counter, making the fd readable. A full counter (EAGAIN)
/// means it is already readable, which is all a wake needs: not an error.
///
/// # Errors
/// EBADF.
pub fn wake(fd: BorrowedFd<'_>) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: `one` is 8 readable bytes, the size eventfd requires.
    match syscall_retry!(write(fd.as_raw_fd(), (&one as *const u64).cast(), 8)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads and resets the counter; `Ok(0)` when it was already zero.
///
/// # Errors
/// EBADF.
pub fn drain(fd: BorrowedFd<'_>) -> io::Result<u64> {
    super::fd::read_counter(fd)
}
