//! `FromRawFd` for sockloop's socket types.
//!
//! `FromRawFd::from_raw_fd` is an `unsafe fn`, and `unsafe` may only appear
//! in `sys`, so the impls live here instead of next to their types. Each one
//! wraps the descriptor in an `OwnedFd` and goes through the type's safe
//! `From<OwnedFd>`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

macro_rules! from_raw_fd_via_owned {
    ($($ty:ty),* $(,)?) => {$(
        impl FromRawFd for $ty {
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: `from_raw_fd`'s contract makes the caller promise
                // that `fd` is open and owned by nobody else; `OwnedFd`
                // needs exactly that.
                <$ty>::from(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        }
    )*};
}

from_raw_fd_via_owned!(
    crate::net::tcp::TcpListener,
    crate::net::tcp::TcpStream,
    crate::net::udp::UdpSocket,
    crate::net::unix::UnixListener,
    crate::net::unix::UnixStream,
);
