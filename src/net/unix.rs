//! Non-blocking Unix-domain sockets: streams ([`UnixListener`],
//! [`UnixStream`]) and datagrams ([`UnixDatagram`]).
//!
//! In the event path they sit where TCP sockets do: a listener's accepted
//! streams can be handed to the loop, and a [`UnixDatagram`] is registered
//! with [`EventLoop::watch`](crate::EventLoop::watch) like a UDP socket. The
//! peer's credentials (`SO_PEERCRED`, and `SCM_CREDENTIALS` per datagram
//! with `SO_PASSCRED`) come through
//! [`SocketOptions`](crate::options::SocketOptions) and
//! [`UnixDatagram::recv_from_with_credentials`].
//!
//! [`UnixListener::bind`] deals with the classic stale-socket-file problem:
//! a server that exits without `unlink`ing its socket leaves the file behind,
//! and the next `bind` fails with EADDRINUSE although nobody listens. The
//! file is removed only after proving it is stale; see `bind`.
//!
//! ```
//! use sockloop::net::unix::{UnixListener, UnixStream};
//! use std::io::{Read, Write};
//!
//! let dir = std::env::temp_dir().join(format!("sockloop-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("echo.sock");
//! let listener = UnixListener::bind(&path)?;
//! let mut client = UnixStream::connect(&path)?; // completes at once on Unix sockets
//! let (mut server, _peer) = listener.accept()?;
//! client.write_all(b"hi")?;
//! let mut buf = [0u8; 2];
//! server.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"hi");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::sys::{addr, fd as sysfd, io as sysio, msg, socket, udp};
use std::fs;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

pub use crate::sys::addr::UnixAddr;
pub use crate::sys::msg::Credentials;

/// The accept-queue length [`UnixListener::bind`] asks for (the kernel caps
/// it at `net.core.somaxconn`).
pub const BACKLOG: i32 = 1024;

/// A non-blocking Unix-domain stream listener.
#[derive(Debug)]
pub struct UnixListener {
    fd: OwnedFd,
}

impl UnixListener {
    /// Creates a listening socket at `path`, replacing a **stale** socket file.
    ///
    /// When `bind` reports EADDRINUSE because `path` exists:
    /// * if it is not a socket (a regular file, directory, symlink, ...) it
    ///   is **never** removed: the error is `AddrInUse`;
    /// * if it is a socket, we try to connect to it. ECONNREFUSED means
    ///   nobody is listening: the file is stale, so it is unlinked (only if
    ///   it is still the same inode) and the bind is retried once. A
    ///   successful connect, or EAGAIN (backlog full), means a live listener:
    ///   `AddrInUse`, and the file is left alone. Note that the live server
    ///   sees (and may accept) that one probe connection, which closes at once.
    ///   Any other outcome is also reported as `AddrInUse`, file untouched.
    ///
    /// Between the probe and the unlink another process could bind a new
    /// socket at the same path; the inode check narrows but cannot close that
    /// window. Use one directory per server to avoid the question entirely.
    ///
    /// The socket file is not removed when the listener is dropped.
    ///
    /// # Errors
    /// `InvalidInput` for an empty path, a NUL byte, or more than 107 bytes;
    /// `AddrInUse` as above; otherwise the errno of `socket`, `bind` (EACCES,
    /// ENOENT for a missing directory), `listen`, or of the metadata lookup
    /// or unlink of the stale file.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let raw = addr::from_unix_path(path)?;
        let fd = socket::unix_stream_socket()?;
        match socket::bind_raw(fd.as_fd(), &raw) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                remove_if_stale(path, &raw)?;
                socket::bind_raw(fd.as_fd(), &raw)?;
            }
            Err(e) => return Err(e),
        }
        socket::listen(fd.as_fd(), BACKLOG)?;
        Ok(UnixListener { fd })
    }

    /// Creates a listening socket on a Linux abstract name (no file, nothing
    /// stale to clean up; the name disappears with the last socket).
    ///
    /// # Errors
    /// `InvalidInput` for a name longer than 107 bytes; EADDRINUSE when the
    /// name is taken; otherwise the errno of `socket`, `bind` or `listen`.
    pub fn bind_abstract(name: &[u8]) -> io::Result<UnixListener> {
        let raw = addr::from_abstract_name(name)?;
        let fd = socket::unix_stream_socket()?;
        socket::bind_raw(fd.as_fd(), &raw)?;
        socket::listen(fd.as_fd(), BACKLOG)?;
        Ok(UnixListener { fd })
    }

    /// Accepts one pending connection; the new stream is non-blocking and
    /// close-on-exec. The peer address is usually [`UnixAddr::Unnamed`].
    ///
    /// # Errors
    /// WouldBlock when no connection is pending; EMFILE/ENFILE when out of
    /// descriptors; ECONNABORTED.
    pub fn accept(&self) -> io::Result<(UnixStream, UnixAddr)> {
        let (fd, raw) = socket::accept(self.fd.as_fd())?;
        Ok((UnixStream { fd }, addr::to_unix_addr(&raw)?))
    }

    /// The address the listener is bound to.
    ///
    /// # Errors
    /// The errno of `getsockname`.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        addr::to_unix_addr(&socket::local_addr_raw(self.fd.as_fd())?)
    }

    /// Converts a `std` listener, switching it to non-blocking mode.
    ///
    /// # Errors
    /// The errno of `fcntl` (EBADF).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        let fd = OwnedFd::from(listener);
        sysfd::set_nonblocking(fd.as_fd(), true)?;
        Ok(UnixListener { fd })
    }
}

fn in_use(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{}: {why}", path.display()),
    )
}

/// Removes `path` if it is a socket file nobody listens on; see
/// [`UnixListener::bind`]. `Ok(())` means "try `bind` again".
fn remove_if_stale(path: &Path, raw: &addr::RawAddr) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        // Gone since bind failed: just retry.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(in_use(path, "exists and is not a socket; not removing it"));
    }
    let probe = socket::unix_stream_socket()?;
    match socket::connect_raw(probe.as_fd(), raw) {
        Ok(()) => Err(in_use(path, "a listener is accepting connections there")),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(in_use(
            path,
            "a listener is there (its accept queue is full)",
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            let now = match fs::symlink_metadata(path) {
                Ok(now) => now,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            if (now.dev(), now.ino()) != (meta.dev(), meta.ino()) {
                return Err(in_use(
                    path,
                    "was replaced while checking whether it is stale",
                ));
            }
            log::info!("removing stale Unix socket file {}", path.display());
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(in_use(
            path,
            &format!("is a socket that could not be probed ({e}); not removing it"),
        )),
    }
}

/// A non-blocking Unix-domain stream connection.
///
/// `Read` and `Write` never block: with nothing to read, or the peer's
/// buffer full, they fail with `ErrorKind::WouldBlock`. Writes use
/// `MSG_NOSIGNAL`, so writing after the peer closed fails with EPIPE
/// (`BrokenPipe`) instead of killing the process with SIGPIPE.
#[derive(Debug)]
pub struct UnixStream {
    fd: OwnedFd,
}

impl UnixStream {
    /// Connects to the listener at `path`. Unlike TCP, a Unix-domain connect
    /// completes (or fails) at once; it never returns EINPROGRESS.
    ///
    /// # Errors
    /// `InvalidInput` for a bad path (see [`UnixListener::bind`]); ENOENT
    /// (`NotFound`) when there is no file; ECONNREFUSED when the file is a
    /// stale socket nobody listens on; WouldBlock (EAGAIN) when the
    /// listener's accept queue is full; EACCES; EPROTOTYPE for a socket of
    /// another type.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let raw = addr::from_unix_path(path.as_ref())?;
        Self::connect_raw(&raw)
    }

    /// Connects to a listener on a Linux abstract name.
    ///
    /// # Errors
    /// `InvalidInput` for a name longer than 107 bytes; otherwise as
    /// [`connect`](Self::connect).
    pub fn connect_abstract(name: &[u8]) -> io::Result<UnixStream> {
        Self::connect_raw(&addr::from_abstract_name(name)?)
    }

    /// A connected pair of streams (`socketpair(AF_UNIX, SOCK_STREAM)`):
    /// both ends non-blocking and close-on-exec. Handy to feed a loop from
    /// another thread, or to test a handler without a listener. Each end's
    /// [`peer_credentials`](crate::options::SocketOptions::peer_credentials)
    /// name this process.
    ///
    /// # Errors
    /// The errno of `socketpair` (EMFILE, ENFILE).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = socket::socketpair(socket::SOCK_STREAM)?;
        Ok((UnixStream { fd: a }, UnixStream { fd: b }))
    }

    fn connect_raw(raw: &addr::RawAddr) -> io::Result<UnixStream> {
        let fd = socket::unix_stream_socket()?;
        socket::connect_raw(fd.as_fd(), raw)?;
        Ok(UnixStream { fd })
    }

    /// Our own address (usually [`UnixAddr::Unnamed`] for a client).
    ///
    /// # Errors
    /// The errno of `getsockname`.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        addr::to_unix_addr(&socket::local_addr_raw(self.fd.as_fd())?)
    }

    /// The peer's address (the listener's path for a client).
    ///
    /// # Errors
    /// ENOTCONN when not connected.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        addr::to_unix_addr(&socket::peer_addr_raw(self.fd.as_fd())?)
    }

    /// Converts a `std` stream, switching it to non-blocking mode.
    ///
    /// # Errors
    /// The errno of `fcntl` (EBADF).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        let fd = OwnedFd::from(stream);
        sysfd::set_nonblocking(fd.as_fd(), true)?;
        Ok(UnixStream { fd })
    }
}

impl Read for &UnixStream {
    /// `recv`; `Ok(0)` is end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sysio::recv(self.fd.as_fd(), buf, 0)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        sysio::readv(self.fd.as_fd(), bufs)
    }
}

impl Write for &UnixStream {
    /// `send` with `MSG_NOSIGNAL`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sysio::send(self.fd.as_fd(), buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        sysio::send_vectored(self.fd.as_fd(), bufs)
    }

    /// Nothing to flush: there is no user-space buffer.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One datagram received by [`UnixDatagram::recv_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixReceived {
    /// Bytes written into the caller's buffer: `min(full_len, buf.len())`.
    pub len: usize,
    /// The datagram's real size (`MSG_TRUNC`).
    pub full_len: usize,
    /// True when the buffer was too small: the rest of the datagram is lost.
    pub truncated: bool,
    /// The sender's address ([`UnixAddr::Unnamed`] for an unbound sender).
    pub from: UnixAddr,
    /// The sender's credentials (`SCM_CREDENTIALS`): only from
    /// [`UnixDatagram::recv_from_with_credentials`] with `SO_PASSCRED` on.
    pub credentials: Option<Credentials>,
}

/// A non-blocking, close-on-exec Unix-domain datagram socket.
///
/// Datagrams are reliable and ordered on Unix sockets (no loss, unlike
/// UDP): when the receiver's queue is full a non-blocking send fails with
/// WouldBlock (EAGAIN) instead of dropping the datagram. To use it with the
/// loop, register it with [`EventLoop::watch`](crate::EventLoop::watch):
///
/// ```
/// use sockloop::net::UnixDatagram;
/// use sockloop::poll::Interest;
/// use sockloop::EventLoop;
///
/// let (a, b) = UnixDatagram::pair()?;
/// a.send(b"ping")?;
/// let mut ev = EventLoop::new()?;
/// ev.watch(b, Interest::READABLE, |sock, ctx, _ready| {
///     let mut buf = [0u8; 16];
///     while let Ok(d) = sock.recv_from(&mut buf) {
///         assert_eq!(&buf[..d.len], b"ping");
///         ctx.stop();
///     }
/// })?;
/// ev.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
}

impl UnixDatagram {
    /// Creates a datagram socket bound to `path`. Unlike
    /// [`UnixListener::bind`] an existing file is never removed: the error
    /// is `AddrInUse` (a datagram socket has no listener to probe).
    ///
    /// # Errors
    /// `InvalidInput` for a bad path (see [`UnixListener::bind`]);
    /// EADDRINUSE when the file exists; otherwise the errno of `socket` or
    /// `bind` (EACCES, ENOENT for a missing directory).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let raw = addr::from_unix_path(path.as_ref())?;
        let fd = socket::unix_datagram_socket()?;
        socket::bind_raw(fd.as_fd(), &raw)?;
        Ok(UnixDatagram { fd })
    }

    /// Creates a datagram socket bound to a Linux abstract name.
    ///
    /// # Errors
    /// `InvalidInput` for a name longer than 107 bytes; EADDRINUSE when the
    /// name is taken; otherwise the errno of `socket` or `bind`.
    pub fn bind_abstract(name: &[u8]) -> io::Result<UnixDatagram> {
        let raw = addr::from_abstract_name(name)?;
        let fd = socket::unix_datagram_socket()?;
        socket::bind_raw(fd.as_fd(), &raw)?;
        Ok(UnixDatagram { fd })
    }

    /// Creates an unbound datagram socket (its sends come from
    /// [`UnixAddr::Unnamed`], so nobody can reply to it).
    ///
    /// # Errors
    /// The errno of `socket` (EMFILE, ENFILE).
    pub fn unbound() -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            fd: socket::unix_datagram_socket()?,
        })
    }

    /// A connected pair of datagram sockets (`socketpair`).
    ///
    /// # Errors
    /// The errno of `socketpair` (EMFILE, ENFILE).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = socket::socketpair(socket::SOCK_DGRAM)?;
        Ok((UnixDatagram { fd: a }, UnixDatagram { fd: b }))
    }

    /// Sets the default destination to the socket at `path`: [`send`](Self::send)
    /// goes there, and only datagrams from it are received.
    ///
    /// # Errors
    /// `InvalidInput` for a bad path; ENOENT; ECONNREFUSED when nothing is
    /// bound there; EPROTOTYPE for a socket of another type.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        socket::connect_raw(self.fd.as_fd(), &addr::from_unix_path(path.as_ref())?)
    }

    /// As [`connect`](Self::connect), to an abstract name.
    ///
    /// # Errors
    /// `InvalidInput` for a name longer than 107 bytes; otherwise as
    /// [`connect`](Self::connect).
    pub fn connect_abstract(&self, name: &[u8]) -> io::Result<()> {
        socket::connect_raw(self.fd.as_fd(), &addr::from_abstract_name(name)?)
    }

    /// Sends `buf` as one datagram to the connected peer.
    ///
    /// # Errors
    /// WouldBlock when the peer's queue is full; EDESTADDRREQ/ENOTCONN when
    /// not connected; ECONNREFUSED when the peer was closed; EMSGSIZE when
    /// `buf` exceeds the send buffer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        msg::send_to(self.fd.as_fd(), buf, None, 0)
    }

    /// Sends `buf` as one datagram to the socket at `path`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad path; ENOENT; ECONNREFUSED when nothing is
    /// bound there; otherwise as [`send`](Self::send).
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        udp::send_to(self.fd.as_fd(), buf, &addr::from_unix_path(path.as_ref())?)
    }

    /// As [`send_to`](Self::send_to), to an abstract name.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to).
    pub fn send_to_abstract(&self, buf: &[u8], name: &[u8]) -> io::Result<usize> {
        udp::send_to(self.fd.as_fd(), buf, &addr::from_abstract_name(name)?)
    }

    /// Receives one datagram into `buf`; a longer one is truncated and the
    /// rest lost ([`UnixReceived::truncated`]).
    ///
    /// # Errors
    /// WouldBlock when nothing is queued; `InvalidData` for a sender address
    /// the kernel should never report.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<UnixReceived> {
        let (full_len, raw) = udp::recv_from(self.fd.as_fd(), buf)?;
        Ok(UnixReceived {
            len: full_len.min(buf.len()),
            full_len,
            truncated: full_len > buf.len(),
            from: addr::to_unix_addr(&raw)?,
            credentials: None,
        })
    }

    /// Receives one datagram with `recvmsg`, and with it the sender's
    /// pid/uid/gid when [`SocketOptions::set_pass_credentials`](crate::options::SocketOptions::set_pass_credentials)
    /// is on for this socket. The kernel fills them in; a sender cannot
    /// claim ids it does not have (unless privileged).
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn recv_from_with_credentials(&self, buf: &mut [u8]) -> io::Result<UnixReceived> {
        let m = msg::recv_msg(self.fd.as_fd(), buf, 0)?;
        Ok(UnixReceived {
            len: m.len.min(buf.len()),
            full_len: m.len,
            truncated: m.len > buf.len(),
            from: addr::to_unix_addr(&m.from)?,
            credentials: m.ancillary.credentials,
        })
    }

    /// Our own address.
    ///
    /// # Errors
    /// The errno of `getsockname`.
    pub fn local_addr(&self) -> io::Result<UnixAddr> {
        addr::to_unix_addr(&socket::local_addr_raw(self.fd.as_fd())?)
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// ENOTCONN when not connected.
    pub fn peer_addr(&self) -> io::Result<UnixAddr> {
        addr::to_unix_addr(&socket::peer_addr_raw(self.fd.as_fd())?)
    }

    /// Converts a `std` socket, switching it to non-blocking mode.
    ///
    /// # Errors
    /// The errno of `fcntl` (EBADF).
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        let fd = OwnedFd::from(socket);
        sysfd::set_nonblocking(fd.as_fd(), true)?;
        Ok(UnixDatagram { fd })
    }
}

macro_rules! fd_conversions {
    ($ty:ident, $std:ty) => {
        impl AsFd for $ty {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }

        impl AsRawFd for $ty {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }

        impl IntoRawFd for $ty {
            fn into_raw_fd(self) -> RawFd {
                self.fd.into_raw_fd()
            }
        }

        /// Takes ownership of a descriptor that must be a Unix stream socket
        /// of the right kind. Its flags are left as they are: make sure it is
        /// non-blocking.
        impl From<OwnedFd> for $ty {
            fn from(fd: OwnedFd) -> $ty {
                $ty { fd }
            }
        }

        impl From<$ty> for OwnedFd {
            fn from(socket: $ty) -> OwnedFd {
                socket.fd
            }
        }

        /// Wraps a `std` socket **without** changing its flags: `std` sockets
        /// are blocking, so call `set_nonblocking(true)` first or use
        /// `from_std`.
        impl From<$std> for $ty {
            fn from(socket: $std) -> $ty {
                $ty {
                    fd: OwnedFd::from(socket),
                }
            }
        }

        /// Hands the descriptor to `std`; it stays non-blocking.
        impl From<$ty> for $std {
            fn from(socket: $ty) -> $std {
                <$std>::from(socket.fd)
            }
        }
    };
}

fd_conversions!(UnixListener, std::os::unix::net::UnixListener);
fd_conversions!(UnixStream, std::os::unix::net::UnixStream);
fd_conversions!(UnixDatagram, std::os::unix::net::UnixDatagram);

impl std::os::fd::FromRawFd for UnixListener {
    /// Takes ownership of `fd`, which must be an open socket of the right
    /// kind owned by nobody else.
    unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
        // The caller's promise is `sys::fd::adopt_raw`'s contract; the
        // trait's `unsafe fn` is the one `unsafe` allowed outside `sys`.
        UnixListener::from(crate::sys::fd::adopt_raw(fd))
    }
}

impl std::os::fd::FromRawFd for UnixDatagram {
    /// Takes ownership of `fd`, which must be an open socket of the right
    /// kind owned by nobody else.
    unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
        // The caller's promise is `sys::fd::adopt_raw`'s contract; the
        // trait's `unsafe fn` is the one `unsafe` allowed outside `sys`.
        UnixDatagram::from(crate::sys::fd::adopt_raw(fd))
    }
}

impl std::os::fd::FromRawFd for UnixStream {
    /// Takes ownership of `fd`, which must be an open socket of the right
    /// kind owned by nobody else.
    unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
        // The caller's promise is `sys::fd::adopt_raw`'s contract; the
        // trait's `unsafe fn` is the one `unsafe` allowed outside `sys`.
        UnixStream::from(crate::sys::fd::adopt_raw(fd))
    }
}
