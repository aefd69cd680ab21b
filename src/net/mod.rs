//! Socket types: non-blocking UDP and Unix-domain sockets.
//!
//! All of them are plain wrappers of an `OwnedFd` created with
//! `SOCK_NONBLOCK | SOCK_CLOEXEC`; they never block, so calls that cannot
//! complete fail with `ErrorKind::WouldBlock` and the caller waits for
//! readiness (e.g. with the event loop). Socket options come from
//! [`crate::options::SocketOptions`], which every type here implements
//! through `AsFd`.

pub mod udp;
pub mod unix;
