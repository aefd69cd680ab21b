//! A non-blocking UDP socket.
//!
//! In the event path: a source the loop watches
//! ([`EventLoop::watch`](crate::EventLoop::watch)); the callback calls
//! `recv_from` until WouldBlock on each readable edge.
//!
//! ```
//! use sockloop::net::udp::UdpSocket;
//! use sockloop::options::SocketOptions;
//! use std::time::Duration;
//!
//! let a = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
//! let b = UdpSocket::bind("127.0.0.1:0".parse().unwrap())?;
//! // For this example only: let `b` wait (at most 5 s) instead of
//! // returning WouldBlock, so the datagram need not have arrived yet.
//! SocketOptions::set_nonblocking(&b, false)?;
//! b.set_recv_timeout(Some(Duration::from_secs(5)))?;
//! a.send_to(b"ping", b.local_addr()?)?;
//! let mut buf = [0u8; 16];
//! let d = b.recv_from(&mut buf)?;
//! assert_eq!((&buf[..d.len], d.truncated, d.from), (&b"ping"[..], false, a.local_addr()?));
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::sys::{addr, msg, socket, udp};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{Duration, SystemTime};

/// Largest UDP payload over IPv4: 65,535 (IP total length) − 20 (IP header)
/// − 8 (UDP header).
pub const MAX_PAYLOAD_V4: usize = 65_507;

/// Largest UDP payload over IPv6 without jumbograms: 65,535 (payload length,
/// which excludes the 40-byte IPv6 header) − 8 (UDP header).
pub const MAX_PAYLOAD_V6: usize = 65_527;

/// One datagram received by [`UdpSocket::recv_from`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// Bytes written into the caller's buffer: `min(full_len, buf.len())`.
    pub len: usize,
    /// The datagram's real size, as the kernel reported it (`MSG_TRUNC`).
    pub full_len: usize,
    /// True when the buffer was too small: `full_len - len` bytes of the
    /// datagram were discarded by the kernel and cannot be read any more.
    pub truncated: bool,
    /// The sender's address.
    pub from: SocketAddr,
}

/// One datagram received by [`UdpSocket::recv_from_timestamped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamped {
    /// The datagram, as [`UdpSocket::recv_from`] reports it.
    pub datagram: Datagram,
    /// When the kernel received it (`CLOCK_REALTIME`): from `SCM_TIMESTAMPNS`
    /// if `SO_TIMESTAMPNS` is on, else from `SCM_TIMESTAMP` if `SO_TIMESTAMP`
    /// is on (microsecond resolution), else `None`.
    pub received_at: Option<SystemTime>,
}

/// One datagram received by [`UdpSocket::recv`] on a connected socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes written into the caller's buffer: `min(full_len, buf.len())`.
    pub len: usize,
    /// The datagram's real size, as the kernel reported it (`MSG_TRUNC`).
    pub full_len: usize,
    /// True when the buffer was too small and the rest was discarded.
    pub truncated: bool,
}

impl Received {
    fn new(full_len: usize, buf_len: usize) -> Received {
        Received {
            len: full_len.min(buf_len),
            full_len,
            truncated: full_len > buf_len,
        }
    }
}

/// A non-blocking, close-on-exec UDP socket.
///
/// Every operation returns at once: with no datagram queued, `recv_from`
/// fails with `ErrorKind::WouldBlock`. Options (broadcast, buffer sizes, ...)
/// come from [`SocketOptions`](crate::options::SocketOptions).
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
}

impl UdpSocket {
    /// Creates a UDP socket of `addr`'s family and binds it to `addr` (port 0
    /// picks a free ephemeral port; see [`local_addr`](Self::local_addr)).
    ///
    /// # Errors
    /// The errno of `socket` (EMFILE, EAFNOSUPPORT when IPv6 is disabled) or
    /// of `bind` (EADDRINUSE, EACCES below port 1024, EADDRNOTAVAIL for an
    /// address this host does not have).
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        let fd = socket::udp_socket(&addr)?;
        socket::bind(fd.as_fd(), &addr)?;
        Ok(UdpSocket { fd })
    }

    /// Sets the default destination: [`send`](Self::send) goes there, and
    /// the kernel then drops datagrams from any other source. ICMP errors for
    /// the peer (e.g. "port unreachable") are reported on the next call as
    /// ECONNREFUSED. A UDP `connect` sends nothing and completes at once.
    ///
    /// # Errors
    /// The errno of `connect` (EAFNOSUPPORT/EINVAL for the wrong family,
    /// ENETUNREACH).
    pub fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        socket::connect(self.fd.as_fd(), &addr)
    }

    /// Sends `buf` as one datagram to `to`. Returns `buf.len()` on success.
    ///
    /// # Errors
    /// `InvalidInput` before any syscall when `buf` is larger than a UDP
    /// datagram to `to` can be ([`MAX_PAYLOAD_V4`] for IPv4 and v4-mapped
    /// IPv6 destinations, [`MAX_PAYLOAD_V6`] otherwise). From the kernel:
    /// WouldBlock when the send buffer is full, EACCES
    /// (`PermissionDenied`) for a broadcast address without `SO_BROADCAST`,
    /// ECONNREFUSED left over from an earlier datagram's ICMP error,
    /// EMSGSIZE when the buffer exceeds `SO_SNDBUF`.
    pub fn send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        check_dest_size(buf.len(), &to)?;
        udp::send_to(self.fd.as_fd(), buf, &addr::from_socket_addr(&to))
    }

    /// Receives one datagram into `buf`. A datagram longer than `buf` is
    /// truncated (the rest is lost); [`Datagram::truncated`] says so.
    ///
    /// # Errors
    /// WouldBlock when no datagram is queued; ECONNREFUSED left over from an
    /// ICMP error for an earlier `send_to`; `InvalidInput` if the sender's
    /// address is not IP (cannot happen on a UDP socket).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<Datagram> {
        let (full_len, raw) = udp::recv_from(self.fd.as_fd(), buf)?;
        let r = Received::new(full_len, buf.len());
        Ok(Datagram {
            len: r.len,
            full_len: r.full_len,
            truncated: r.truncated,
            from: addr::to_socket_addr(&raw)?,
        })
    }

    /// Receives one datagram as [`recv_from`](Self::recv_from) does, with
    /// `recvmsg`, and returns the kernel's receive timestamp when
    /// [`SocketOptions::set_timestamp`](crate::options::SocketOptions::set_timestamp)
    /// or [`set_timestamp_ns`](crate::options::SocketOptions::set_timestamp_ns)
    /// is on. The timestamp is taken when the datagram reached the socket,
    /// before it waited in the receive queue.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn recv_from_timestamped(&self, buf: &mut [u8]) -> io::Result<Timestamped> {
        let m = msg::recv_msg(self.fd.as_fd(), buf, 0)?;
        let r = Received::new(m.len, buf.len());
        let at = |secs: i64, nanos: i64| -> Option<SystemTime> {
            let secs = u64::try_from(secs).ok()?;
            let nanos = u32::try_from(nanos).ok().filter(|&n| n < 1_000_000_000)?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        };
        let anc = m.ancillary;
        let received_at = match (anc.timestamp_ns, anc.timestamp_us) {
            (Some((s, ns)), _) => at(s, ns),
            (None, Some((s, us))) => at(s, us.saturating_mul(1000)),
            (None, None) => None,
        };
        Ok(Timestamped {
            datagram: Datagram {
                len: r.len,
                full_len: r.full_len,
                truncated: r.truncated,
                from: addr::to_socket_addr(&m.from)?,
            },
            received_at,
        })
    }

    /// Sends `buf` as one datagram to `to` with `MSG_DONTROUTE`: only if
    /// `to` is on a directly attached network (or local), never through a
    /// gateway. Nothing is sent when it is not; see
    /// [`SocketOptions::set_dont_route`](crate::options::SocketOptions::set_dont_route)
    /// for the per-socket form.
    ///
    /// # Errors
    /// ENETUNREACH when `to` needs a gateway; otherwise as
    /// [`send_to`](Self::send_to).
    pub fn send_to_dont_route(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        check_dest_size(buf.len(), &to)?;
        msg::send_to(
            self.fd.as_fd(),
            buf,
            Some(&addr::from_socket_addr(&to)),
            msg::MSG_DONTROUTE,
        )
    }

    /// Sends `buf` as one datagram to the peer set by
    /// [`connect`](Self::connect). Returns `buf.len()` on success.
    ///
    /// # Errors
    /// `InvalidInput` before any syscall when `buf` exceeds
    /// [`MAX_PAYLOAD_V6`] (no UDP datagram can be that large); EMSGSIZE from
    /// the kernel for an IPv4 peer and more than [`MAX_PAYLOAD_V4`] bytes;
    /// EDESTADDRREQ when not connected; ECONNREFUSED when the peer's port
    /// was found closed; WouldBlock when the send buffer is full.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        check_size(buf.len(), MAX_PAYLOAD_V6, "any family")?;
        udp::send(self.fd.as_fd(), buf)
    }

    /// Receives one datagram from the connected peer into `buf`; see
    /// [`recv_from`](Self::recv_from) for truncation.
    ///
    /// # Errors
    /// WouldBlock when no datagram is queued; ECONNREFUSED when an earlier
    /// `send` drew ICMP "port unreachable".
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let full_len = udp::recv(self.fd.as_fd(), buf)?;
        Ok(Received::new(full_len, buf.len()))
    }

    /// The local address the socket is bound to.
    ///
    /// # Errors
    /// The errno of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        socket::local_addr(self.fd.as_fd())
    }

    /// The peer set by [`connect`](Self::connect).
    ///
    /// # Errors
    /// ENOTCONN (`NotConnected`) when not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        socket::peer_addr(self.fd.as_fd())
    }

    /// Converts a `std` socket, switching it to non-blocking mode (`std`
    /// sockets are blocking).
    ///
    /// # Errors
    /// The errno of `fcntl` (EBADF).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        let fd = OwnedFd::from(socket);
        crate::sys::fd::set_nonblocking(fd.as_fd(), true)?;
        Ok(UdpSocket { fd })
    }
}

fn check_dest_size(len: usize, to: &SocketAddr) -> io::Result<()> {
    let (max, family) = match to {
        SocketAddr::V4(_) => (MAX_PAYLOAD_V4, "IPv4"),
        SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some() => {
            (MAX_PAYLOAD_V4, "IPv4 (v4-mapped)")
        }
        SocketAddr::V6(_) => (MAX_PAYLOAD_V6, "IPv6"),
    };
    check_size(len, max, family)
}

fn check_size(len: usize, max: usize, family: &str) -> io::Result<()> {
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("UDP payload of {len} bytes exceeds the {family} maximum of {max} bytes"),
        ));
    }
    Ok(())
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for UdpSocket {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

/// Takes ownership of a descriptor that must be a UDP socket. Its flags are
/// left as they are: make sure it is non-blocking.
impl From<OwnedFd> for UdpSocket {
    fn from(fd: OwnedFd) -> UdpSocket {
        UdpSocket { fd }
    }
}

impl From<UdpSocket> for OwnedFd {
    fn from(socket: UdpSocket) -> OwnedFd {
        socket.fd
    }
}

/// Wraps a `std` socket **without** changing its flags: `std` sockets are
/// blocking, so call `set_nonblocking(true)` first, or use
/// [`UdpSocket::from_std`].
impl From<std::net::UdpSocket> for UdpSocket {
    fn from(socket: std::net::UdpSocket) -> UdpSocket {
        UdpSocket {
            fd: OwnedFd::from(socket),
        }
    }
}

/// Hands the descriptor to `std`; it stays non-blocking.
impl From<UdpSocket> for std::net::UdpSocket {
    fn from(socket: UdpSocket) -> std::net::UdpSocket {
        std::net::UdpSocket::from(socket.fd)
    }
}

impl std::os::fd::FromRawFd for UdpSocket {
    /// Takes ownership of `fd`, which must be an open socket of the right
    /// kind owned by nobody else.
    unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> Self {
        // The caller's promise is `sys::fd::adopt_raw`'s contract; the
        // trait's `unsafe fn` is the one `unsafe` allowed outside `sys`.
        UdpSocket::from(crate::sys::fd::adopt_raw(fd))
    }
}
