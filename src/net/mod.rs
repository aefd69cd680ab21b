//! Sockets: TCP, UDP and Unix-domain, all non-blocking.
//!
//! In the event path: the sockets the loop registers and reads and writes;
//! the layer between the reactor and [`crate::sys`].
//!
//! Each type is a thin owner of an `OwnedFd` created with
//! `SOCK_NONBLOCK | SOCK_CLOEXEC`; calls that cannot complete fail with
//! `ErrorKind::WouldBlock` and the caller waits for readiness (e.g. with the
//! event loop). They convert to and from `std::net` types and implement the
//! `std::os::fd` traits. Socket options come from
//! [`crate::options::SocketOptions`], which every type here implements
//! through `AsFd`.

mod fd_traits;
pub mod tcp;
pub mod udp;
pub mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
