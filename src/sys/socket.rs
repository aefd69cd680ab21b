//! Socket lifecycle: socket, bind, listen, accept4, connect, shutdown, names.

use super::addr::{self, RawAddr};
use super::fault::{self, Op};
use super::fd::owned;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// Creates a socket that is non-blocking and close-on-exec from birth
/// (`SOCK_NONBLOCK | SOCK_CLOEXEC`), so no `fcntl` is needed and no fd leaks
/// into a child between `socket` and `fcntl`.
///
/// # Errors
/// The errno of `socket`: EMFILE/ENFILE when out of descriptors,
/// EAFNOSUPPORT (e.g. IPv6 disabled), EACCES.
pub fn socket(domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointers.
    let fd = syscall!(socket(
        domain,
        ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        protocol
    ))?;
    Ok(owned(fd))
}

/// The address family (`AF_INET` or `AF_INET6`) that fits `addr`.
pub fn domain_of(addr: &SocketAddr) -> i32 {
    match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    }
}

/// Binds `fd` to a raw address (any family).
///
/// # Errors
/// EADDRINUSE (without SO_REUSEADDR, also while an old connection on the
/// port is in TIME_WAIT), EACCES for ports below 1024, EADDRNOTAVAIL.
pub fn bind_raw(fd: BorrowedFd<'_>, raw: &RawAddr) -> io::Result<()> {
    let (ptr, len) = raw.as_ptr();
    // SAFETY: `ptr` points at `len` initialised bytes of a sockaddr.
    syscall!(bind(fd.as_raw_fd(), ptr, len))?;
    Ok(())
}

/// Binds `fd` to an IP address.
///
/// # Errors
/// As [`bind_raw`].
pub fn bind(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    bind_raw(fd, &addr::from_socket_addr(addr))
}

/// Marks `fd` as a listening socket with the given accept-queue length.
///
/// # Errors
/// EADDRINUSE when another socket listens on the same port.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: listen takes no pointers.
    syscall!(listen(fd.as_raw_fd(), backlog))?;
    Ok(())
}

/// Accepts one connection with `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`.
/// Returns the new socket and the peer's raw address.
///
/// # Errors
/// EAGAIN when the accept queue is empty; EMFILE/ENFILE when out of
/// descriptors (the connection stays queued: see the acceptor's spare fd);
/// ECONNABORTED when the peer reset before we accepted.
pub fn accept(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, RawAddr)> {
    fault::limit(Op::Accept, fd, 1)?;
    let mut raw = RawAddr::empty();
    let (ptr, len) = raw.as_mut_ptr();
    // SAFETY: `ptr`/`len` describe `raw`'s storage, valid for the kernel to
    // write a peer address of at most `*len` bytes.
    let new = syscall_retry!(Op::Accept => direct::accept4(
        fd.as_raw_fd(),
        ptr,
        len,
        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
    ))?;
    Ok((owned(new), raw))
}

/// Starts connecting `fd` to a raw address. On a non-blocking socket the
/// usual answer is EINPROGRESS: wait for writability, then read `SO_ERROR`.
/// Not retried on EINTR (see the module docs of `sys`).
///
/// # Errors
/// EINPROGRESS (in progress, not a failure), ECONNREFUSED (loopback often
/// refuses at once), ENETUNREACH, EADDRNOTAVAIL (out of ephemeral ports).
pub fn connect_raw(fd: BorrowedFd<'_>, raw: &RawAddr) -> io::Result<()> {
    let (ptr, len) = raw.as_ptr();
    // SAFETY: `ptr` points at `len` initialised bytes of a sockaddr.
    let res = syscall!(connect(fd.as_raw_fd(), ptr, len));
    // Fault injection: an interrupted connect that has started its
    // handshake carries on asynchronously (see `fault`).
    let started = match &res {
        Ok(_) => true,
        Err(e) => e.raw_os_error() == Some(libc::EINPROGRESS),
    };
    if started && fault::connect_interrupted() {
        return Err(io::Error::from_raw_os_error(libc::EINTR));
    }
    res?;
    Ok(())
}

/// Starts connecting `fd` to an IP address; see [`connect_raw`].
///
/// # Errors
/// As [`connect_raw`].
pub fn connect(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    connect_raw(fd, &addr::from_socket_addr(addr))
}

/// `shutdown(2)`: `libc::SHUT_RD`, `SHUT_WR` (send FIN) or `SHUT_RDWR`.
///
/// # Errors
/// ENOTCONN when the socket is not connected.
pub fn shutdown(fd: BorrowedFd<'_>, how: i32) -> io::Result<()> {
    // SAFETY: shutdown takes no pointers.
    syscall!(shutdown(fd.as_raw_fd(), how))?;
    Ok(())
}

/// The local address `fd` is bound to, raw.
///
/// # Errors
/// EBADF, ENOTSOCK.
pub fn local_addr_raw(fd: BorrowedFd<'_>) -> io::Result<RawAddr> {
    let mut raw = RawAddr::empty();
    let (ptr, len) = raw.as_mut_ptr();
    // SAFETY: `ptr`/`len` describe `raw`'s storage for the kernel to fill.
    syscall!(getsockname(fd.as_raw_fd(), ptr, len))?;
    Ok(raw)
}

/// The peer address `fd` is connected to, raw.
///
/// # Errors
/// ENOTCONN when not connected.
pub fn peer_addr_raw(fd: BorrowedFd<'_>) -> io::Result<RawAddr> {
    let mut raw = RawAddr::empty();
    let (ptr, len) = raw.as_mut_ptr();
    // SAFETY: `ptr`/`len` describe `raw`'s storage for the kernel to fill.
    syscall!(getpeername(fd.as_raw_fd(), ptr, len))?;
    Ok(raw)
}

/// The local IP address of `fd`.
///
/// # Errors
/// As [`local_addr_raw`], or `InvalidInput` for a non-IP socket.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    addr::to_socket_addr(&local_addr_raw(fd)?)
}

/// The peer IP address of `fd`.
///
/// # Errors
/// As [`peer_addr_raw`], or `InvalidInput` for a non-IP socket.
pub fn peer_addr(fd: BorrowedFd<'_>) -> io::Result<SocketAddr> {
    addr::to_socket_addr(&peer_addr_raw(fd)?)
}

/// A connected pair of non-blocking, close-on-exec sockets (`AF_UNIX`).
///
/// # Errors
/// EMFILE/ENFILE.
pub fn socketpair(ty: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    syscall!(socketpair(
        libc::AF_UNIX,
        ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
        fds.as_mut_ptr()
    ))?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// Turns Nagle's algorithm off (`TCP_NODELAY`): small writes leave at once.
///
/// # Errors
/// ENOPROTOOPT/EOPNOTSUPP when `fd` is not a TCP socket.
pub fn set_nodelay(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    super::sockopt::set_bool(fd, super::sockopt::BoolOpt::NoDelay, on)
}

/// Lets a listener bind over connections in TIME_WAIT (`SO_REUSEADDR`).
///
/// # Errors
/// EBADF, ENOTSOCK.
pub fn set_reuse_addr(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    super::sockopt::set_bool(fd, super::sockopt::BoolOpt::ReuseAddr, on)
}

/// Arms an abortive close: `SO_LINGER {on, 0}`, so that `close` sends RST,
/// discards unsent data, and leaves no TIME_WAIT behind.
///
/// # Errors
/// EBADF, ENOTSOCK.
pub fn set_linger_abort(fd: BorrowedFd<'_>) -> io::Result<()> {
    super::sockopt::set_linger(fd, true, 0)
}

/// `SHUT_WR`: send FIN, keep reading.
pub const SHUT_WR: i32 = libc::SHUT_WR;
/// `SHUT_RD`: stop reading.
pub const SHUT_RD: i32 = libc::SHUT_RD;
/// `SHUT_RDWR`: both.
pub const SHUT_RDWR: i32 = libc::SHUT_RDWR;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = libc::SOCK_STREAM;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = libc::SOCK_DGRAM;
/// A non-blocking, close-on-exec TCP socket (`SOCK_STREAM`) of the family
/// that fits `addr` (only the family of `addr` is used).
///
/// # Errors
/// As [`socket`].
pub fn tcp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    socket(domain_of(addr), libc::SOCK_STREAM, 0)
}

/// A non-blocking, close-on-exec UDP socket (`SOCK_DGRAM`) of the family
/// that fits `addr` (only the family of `addr` is used).
///
/// # Errors
/// As [`socket`].
pub fn udp_socket(addr: &SocketAddr) -> io::Result<OwnedFd> {
    socket(domain_of(addr), libc::SOCK_DGRAM, 0)
}

/// A non-blocking, close-on-exec Unix-domain stream socket.
///
/// # Errors
/// As [`socket`].
pub fn unix_stream_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)
}

/// A non-blocking, close-on-exec Unix-domain datagram socket.
///
/// # Errors
/// As [`socket`].
pub fn unix_datagram_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0)
}
