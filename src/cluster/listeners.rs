//! The listening sockets of a cluster: one `SO_REUSEPORT` socket per loop,
//! or one socket for everyone.

use crate::net::tcp::DEFAULT_BACKLOG;
use crate::sys;
use crate::sys::sockopt::BoolOpt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

/// `n` listening sockets on `addr`, each with `SO_REUSEPORT` (and
/// `SO_REUSEADDR`), bound and listening in order, so that socket `i` is at
/// index `i` of the kernel's reuseport group. Port 0 picks a free port for
/// the first; the others bind the same one. Returns the sockets and the
/// bound address.
///
/// # Errors
/// As `TcpListener::bind`; EADDRINUSE when a socket without
/// `SO_REUSEPORT` (or of another user) holds the port.
pub(crate) fn reuseport_group(
    addr: SocketAddr,
    n: usize,
) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    let mut bound = addr;
    let mut group = Vec::with_capacity(n);
    for i in 0..n {
        let fd = sys::socket::tcp_socket(&bound)?;
        sys::socket::set_reuse_addr(fd.as_fd(), true)?;
        sys::sockopt::set_bool(fd.as_fd(), BoolOpt::ReusePort, true)?;
        sys::socket::bind(fd.as_fd(), &bound)?;
        sys::socket::listen(fd.as_fd(), DEFAULT_BACKLOG)?;
        if i == 0 {
            bound = sys::socket::local_addr(fd.as_fd())?;
        }
        group.push(fd);
    }
    Ok((group, bound))
}

/// One listening socket on `addr` (with `SO_REUSEADDR`).
///
/// # Errors
/// As `TcpListener::bind`.
pub(crate) fn single(addr: SocketAddr) -> io::Result<(OwnedFd, SocketAddr)> {
    let l = crate::net::TcpListener::bind(addr)?;
    let bound = l.local_addr()?;
    Ok((l.into(), bound))
}
