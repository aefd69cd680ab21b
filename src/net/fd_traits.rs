//! The `std::os::fd` traits and `std::net` conversions of sockloop's socket
//! TCP types (`FromRawFd`, an `unsafe fn`, sits beside each type).

use crate::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

/// Implements the fd traits for a type that is a newtype over `fd: OwnedFd`
/// with `From<OwnedFd>` and `AsRef<OwnedFd>`-like access via `into_owned`.
macro_rules! fd_traits {
    ($ty:ty, $std:ty) => {
        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.owned_fd().as_fd()
            }
        }
        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.owned_fd().as_raw_fd()
            }
        }
        impl IntoRawFd for $ty {
            fn into_raw_fd(self) -> RawFd {
                OwnedFd::from(self).into_raw_fd()
            }
        }
        impl From<$std> for $ty {
            /// Converts a std socket, making it non-blocking.
            fn from(s: $std) -> $ty {
                let fd = OwnedFd::from(s);
                if let Err(e) = crate::sys::fd::set_nonblocking(fd.as_fd(), true) {
                    log::warn!("cannot make a converted socket non-blocking: {e}");
                }
                <$ty>::from(fd)
            }
        }
        impl From<$ty> for $std {
            /// Converts to a std socket (still non-blocking).
            fn from(s: $ty) -> $std {
                <$std>::from(OwnedFd::from(s))
            }
        }
    };
}

fd_traits!(TcpListener, std::net::TcpListener);
fd_traits!(TcpStream, std::net::TcpStream);
