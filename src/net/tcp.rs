//! TCP: a listener with sane server defaults, and a non-blocking stream.
//!
//! In the event path: the sockets the loop registers. A listener's accepted
//! streams become connections; their bytes flow through `readv`/`send` in
//! the reactor's read and write paths.

use crate::sys;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};

/// The accept-queue length a listener asks for (the kernel caps it at
/// `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 4096;

/// A non-blocking TCP listening socket.
#[derive(Debug)]
pub struct TcpListener {
    fd: OwnedFd,
}

impl TcpListener {
    /// Binds and listens on `addr` with `SO_REUSEADDR` on (so a restarted
    /// server can bind while old connections sit in TIME_WAIT) and a
    /// backlog of [`DEFAULT_BACKLOG`]. Port 0 picks a free port; read it
    /// back with [`TcpListener::local_addr`].
    ///
    /// # Errors
    /// EADDRINUSE (another socket listens there), EACCES (port < 1024),
    /// EADDRNOTAVAIL (not a local address), EMFILE.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, true, DEFAULT_BACKLOG)
    }

    /// Binds and listens with explicit `SO_REUSEADDR` and backlog.
    ///
    /// # Errors
    /// As [`TcpListener::bind`].
    pub fn bind_with(addr: SocketAddr, reuse_addr: bool, backlog: i32) -> io::Result<TcpListener> {
        let fd = sys::socket::socket(sys::socket::domain_of(&addr), sys::socket::SOCK_STREAM, 0)?;
        if reuse_addr {
            sys::socket::set_reuse_addr(fd.as_fd(), true)?;
        }
        sys::socket::bind(fd.as_fd(), &addr)?;
        sys::socket::listen(fd.as_fd(), backlog)?;
        Ok(TcpListener { fd })
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// The errno of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::socket::local_addr(self.fd.as_fd())
    }

    /// Accepts one connection (non-blocking, close-on-exec).
    ///
    /// # Errors
    /// `WouldBlock` when none is pending; EMFILE/ENFILE; ECONNABORTED.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, raw) = sys::socket::accept(self.fd.as_fd())?;
        let addr = sys::addr::to_socket_addr(&raw)?;
        Ok((TcpStream { fd }, addr))
    }
}

/// A non-blocking TCP stream. `Read`/`Write` return `WouldBlock` instead
/// of blocking; writes use `send(MSG_NOSIGNAL)` and never raise SIGPIPE.
#[derive(Debug)]
pub struct TcpStream {
    fd: OwnedFd,
}

impl TcpStream {
    /// Starts a non-blocking connect to `addr`. The stream is returned
    /// while the handshake is in progress (EINPROGRESS); it is connected
    /// once writable, and [`TcpStream::take_error`] then says whether the
    /// connect succeeded.
    ///
    /// # Errors
    /// Failures known at once: ECONNREFUSED, ENETUNREACH, EADDRNOTAVAIL,
    /// EMFILE.
    pub fn connect_nonblocking(addr: SocketAddr) -> io::Result<TcpStream> {
        let fd = sys::socket::socket(sys::socket::domain_of(&addr), sys::socket::SOCK_STREAM, 0)?;
        match sys::socket::connect(fd.as_fd(), &addr) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(sys::errno::EINPROGRESS) | Some(sys::errno::EINTR)
                ) => {}
            Err(e) => return Err(e),
        }
        Ok(TcpStream { fd })
    }

    /// The connect outcome or any pending socket error (`SO_ERROR`),
    /// clearing it.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        sys::sockopt::take_error(self.fd.as_fd())
    }

    /// The peer's address.
    ///
    /// # Errors
    /// ENOTCONN when not (yet) connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::socket::peer_addr(self.fd.as_fd())
    }

    /// The local address.
    ///
    /// # Errors
    /// The errno of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::socket::local_addr(self.fd.as_fd())
    }

    /// Shuts down one or both directions (`Write`: send FIN).
    ///
    /// # Errors
    /// ENOTCONN.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => sys::socket::SHUT_RD,
            Shutdown::Write => sys::socket::SHUT_WR,
            Shutdown::Both => sys::socket::SHUT_RDWR,
        };
        sys::socket::shutdown(self.fd.as_fd(), how)
    }

    /// Turns Nagle's algorithm on or off.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sys::socket::set_nodelay(self.fd.as_fd(), on)
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::io::read(self.fd.as_fd(), buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::io::read(self.fd.as_fd(), buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::io::send(self.fd.as_fd(), buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        sys::io::send_vectored(self.fd.as_fd(), bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::io::send(self.fd.as_fd(), buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// AsFd, AsRawFd, FromRawFd, IntoRawFd and the std conversions are
// implemented in `sys::fd_traits` and `sys::from_raw_fd` (`from_raw_fd`
// may only be written in `sys`).

macro_rules! owned_fd_newtype {
    ($ty:ident) => {
        impl $ty {
            pub(crate) fn owned_fd(&self) -> &OwnedFd {
                &self.fd
            }
        }
        impl From<$ty> for OwnedFd {
            fn from(s: $ty) -> OwnedFd {
                s.fd
            }
        }
        impl From<OwnedFd> for $ty {
            fn from(fd: OwnedFd) -> $ty {
                $ty { fd }
            }
        }
    };
}

owned_fd_newtype!(TcpListener);
owned_fd_newtype!(TcpStream);

impl std::os::fd::FromRawFd for TcpListener {
    /// Takes ownership of `fd`, which must be an open socket of the right
    /// kind owned by nobody else.
    unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
        // The caller's promise is `sys::fd::adopt_raw`'s contract; the
        // trait's `unsafe fn` is the one `unsafe` allowed outside `sys`.
        TcpListener::from(crate::sys::fd::adopt_raw(fd))
    }
}

impl std::os::fd::FromRawFd for TcpStream {
    /// Takes ownership of `fd`, which must be an open socket of the right
    /// kind owned by nobody else.
    unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
        // The caller's promise is `sys::fd::adopt_raw`'s contract; the
        // trait's `unsafe fn` is the one `unsafe` allowed outside `sys`.
        TcpStream::from(crate::sys::fd::adopt_raw(fd))
    }
}
