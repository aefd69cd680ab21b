//! Typed socket options: what the notes discuss, with what Linux really does.
//!
//! In the event path: before it. Options are set on a socket before or
//! right after it enters the loop (`ConnConfig` sets `TCP_NODELAY` on
//! accepted ones; `Context::abort` sets `SO_LINGER {1, 0}`); some then
//! change what the loop sees (`SO_RCVLOWAT` delays readiness,
//! `SO_ATTACH_FILTER` drops datagrams before they are queued).
//!
//! [`SocketOptions`] is implemented for every [`AsFd`] type, so the same
//! calls work on `std::net` sockets, on a bare `OwnedFd`/`BorrowedFd` and on
//! sockloop's own socket types:
//!
//! ```
//! use sockloop::options::{Linger, SocketOptions};
//! use std::time::Duration;
//!
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! // `std` has its own `set_nonblocking`; call ours by trait path when both apply.
//! SocketOptions::set_nonblocking(&listener, true)?;
//! listener.set_linger(Linger::Off)?;
//! assert_eq!(listener.linger()?, Linger::Off);
//! assert!(listener.set_recv_timeout(Some(Duration::ZERO)).is_err());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Method names shared with inherent methods of `std` types (`set_nodelay`,
//! `set_nonblocking`, `take_error`, `set_broadcast`, and the unstable
//! `TcpStream::set_linger`/`linger`) resolve to `std`'s method on `std`
//! values; call ours as `SocketOptions::set_linger(&stream, ..)` there.
//!
//! Every setter checks its value before making a system call: durations that
//! do not fit the kernel's C type or unit, and integers outside the range the
//! kernel accepts, are [`io::ErrorKind::InvalidInput`] and nothing is changed.
//! Errors from the kernel itself are passed through as `io::Error` with the
//! errno (EBADF, ENOTSOCK; ENOPROTOOPT or EOPNOTSUPP when an option does not
//! apply to the socket's protocol, e.g. `TCP_NODELAY` on UDP).

use crate::sys::sockopt::{self, BoolOpt, IntOpt, TimeoutOpt};
use crate::sys::{fd, filter, io as sysio, msg};
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

pub use crate::sys::filter::{op as bpf, SockFilter};
pub use crate::sys::msg::Credentials;
pub use crate::sys::sockopt::SocketType;

/// What `close()` does with a connection: the value of `SO_LINGER`.
///
/// `struct linger { l_onoff, l_linger }` has three meaningful states:
///
/// | mode | `l_onoff`, `l_linger` | `close()` returns | unsent data | peer sees | TIME_WAIT |
/// |------|-----------------------|-------------------|-------------|-----------|-----------|
/// | [`Linger::Off`] (default) | 0, ignored | at once | sent in the background, then FIN | data, then EOF (`read` = 0) | on our side if we close first |
/// | [`Linger::Abort`] | 1, 0 | at once | discarded | RST: `read` fails with ECONNRESET | none: the 4-tuple is freed at once |
/// | [`Linger::Graceful`] | 1, n | when the data and FIN are acknowledged, or after n seconds | sent (after a timeout: still sent, in the background) | data, then EOF | as `Off` |
///
/// Things the notes get wrong or leave out, checked against Linux:
///
/// * **Unit.** `l_linger` is in **seconds** on Linux (the kernel stores
///   `l_linger * HZ` and reports it back divided by `HZ`). The notes' "微妙"
///   (microseconds) is wrong, and the 4.4BSD "clock ticks" remark is history.
///   So [`Linger::Graceful`] takes whole seconds.
/// * **Graceful blocks `close()`**, and on Linux it does so **even on a
///   non-blocking socket**: the kernel does not look at `O_NONBLOCK` here, so
///   the notes' "a non-blocking socket will not wait" does not hold. In an
///   event loop that is harmful: one `close()` can stall every connection for
///   up to n seconds. And when the time runs out Linux's `close()` still
///   returns 0, not EWOULDBLOCK as the notes (and BSD) say, and the queued
///   data is not discarded: the orphaned socket keeps sending it exactly as
///   with `Off`. So the mode only delays `close()`; the application cannot
///   even learn whether the data was acknowledged. (Had it been, that would
///   only mean the peer's *kernel* has it, not that the peer application
///   read it.) Prefer `shutdown(SHUT_WR)` and wait for the peer's EOF.
/// * **Abort** sends RST and skips TIME_WAIT; the notes rightly say TCP does
///   not recommend it: a late segment of the old connection can then be taken
///   as part of a new one on the same 4-tuple. Use it to shed a misbehaving
///   peer, not to "fix" TIME_WAIT (that is what `SO_REUSEADDR` is for).
/// * Independently of `SO_LINGER`, Linux also resets instead of closing
///   gracefully when unread data is still in *our* receive queue at `close()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linger {
    /// `{0, _}`: the default. `close()` returns at once; the kernel sends what
    /// is queued, then FIN.
    Off,
    /// `{1, n}`: `close()` blocks until queued data and the FIN are
    /// acknowledged or `n` seconds pass. Whole seconds, at least 1, at most
    /// `i32::MAX`.
    Graceful(Duration),
    /// `{1, 0}`: `close()` discards queued data and sends RST; no TIME_WAIT.
    Abort,
}

/// TCP keepalive timing: `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`.
///
/// After `idle` without traffic the kernel sends a probe, then one every
/// `interval`; after `count` unanswered probes it drops the connection and
/// the next read or write fails with ETIMEDOUT. The probes are only sent
/// while `SO_KEEPALIVE` is on ([`SocketOptions::set_keepalive`]). Linux
/// defaults come from `net.ipv4.tcp_keepalive_{time,intvl,probes}` (7200 s,
/// 75 s, 9): over two hours to notice a dead peer, which is why the notes
/// recommend an application-level heartbeat as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe: whole seconds, 1..=32767.
    pub idle: Duration,
    /// Time between probes: whole seconds, 1..=32767.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped: 1..=127.
    pub count: u32,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// `d` as whole seconds within `min..=max`, for options whose C unit is the
/// second; a fractional part would be silently dropped, so it is an error.
fn whole_secs(what: &str, d: Duration, min: u64, max: u64) -> io::Result<i32> {
    if d.subsec_nanos() != 0 {
        return Err(invalid(format!(
            "{what} must be whole seconds (the kernel's unit), got {d:?}"
        )));
    }
    let secs = d.as_secs();
    if secs < min || secs > max {
        return Err(invalid(format!(
            "{what} must be {min}..={max} seconds, got {secs}"
        )));
    }
    i32::try_from(secs).map_err(|_| invalid(format!("{what} of {secs} s overflows a C int")))
}

/// A non-negative C `int` option value read back as `u32`.
fn non_negative(what: &str, v: i32) -> io::Result<u32> {
    u32::try_from(v).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel reported a negative {what}: {v}"),
        )
    })
}

fn buffer_size(what: &str, size: usize) -> io::Result<i32> {
    i32::try_from(size).map_err(|_| {
        invalid(format!(
            "{what} of {size} bytes overflows a C int (max {})",
            i32::MAX
        ))
    })
}

/// Getters and setters for the socket options sockloop documents.
///
/// Implemented for every `T: AsFd`. Each method is one `getsockopt`,
/// `setsockopt` or `fcntl` (the keepalive group: up to four). Setters that
/// take durations or integers validate them first and return
/// [`io::ErrorKind::InvalidInput`] without touching the socket.
pub trait SocketOptions: AsFd {
    /// `SO_REUSEADDR`: lets `bind` take a local address/port that is still
    /// held by connections in TIME_WAIT (a restarted server can bind its port
    /// at once). It does **not** allow two listeners on one port; a port with
    /// a live socket in any other state still gives EADDRINUSE. The whole
    /// 4-tuple stays unique, so as the notes warn, a stray segment of the old
    /// connection could in principle reach the new one.
    ///
    /// Set it before `bind`. On Linux the TIME_WAIT socket remembers the flag
    /// of the socket it came from (an accepted socket inherits it from its
    /// listener), and the re-bind only succeeds when **both** have it: a
    /// server must set it every time it binds, not only after a restart.
    /// `std::net::TcpListener::bind` sets it for you.
    ///
    /// # Errors
    /// The errno of `setsockopt` (EBADF, ENOTSOCK).
    fn set_reuse_address(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::ReuseAddr, on)
    }

    /// Whether `SO_REUSEADDR` is set; see [`set_reuse_address`](Self::set_reuse_address).
    ///
    /// # Errors
    /// The errno of `getsockopt` (EBADF, ENOTSOCK).
    fn reuse_address(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::ReuseAddr)
    }

    /// `SO_REUSEPORT`: several sockets, each with the flag set before `bind`
    /// and owned by the same effective user, may bind the very same address
    /// and port; the kernel then spreads incoming connections (TCP) or
    /// datagrams (UDP) over them by a hash of the 4-tuple.
    ///
    /// # Errors
    /// The errno of `setsockopt` (EBADF, ENOTSOCK).
    fn set_reuse_port(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::ReusePort, on)
    }

    /// Whether `SO_REUSEPORT` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt` (EBADF, ENOTSOCK).
    fn reuse_port(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::ReusePort)
    }

    /// `SO_LINGER`: what `close()` does; see [`Linger`] for the three modes
    /// and why [`Linger::Graceful`] is harmful in an event loop.
    ///
    /// # Errors
    /// `InvalidInput` before any syscall when a `Graceful` duration is zero
    /// (that would be `Abort`), has a fractional second, or exceeds
    /// `i32::MAX` seconds; otherwise the errno of `setsockopt`.
    fn set_linger(&self, linger: Linger) -> io::Result<()> {
        let (on, secs) = match linger {
            Linger::Off => (false, 0),
            Linger::Abort => (true, 0),
            Linger::Graceful(d) => {
                if d.is_zero() {
                    return Err(invalid(
                        "Linger::Graceful(0) would be an abortive close; use Linger::Abort"
                            .to_string(),
                    ));
                }
                (true, whole_secs("linger time", d, 1, i32::MAX as u64)?)
            }
        };
        sockopt::set_linger(self.as_fd(), on, secs)
    }

    /// The current `SO_LINGER` mode.
    ///
    /// # Errors
    /// The errno of `getsockopt`; `InvalidData` if the kernel reported a
    /// negative linger time.
    fn linger(&self) -> io::Result<Linger> {
        let (on, secs) = sockopt::get_linger(self.as_fd())?;
        Ok(match (on, secs) {
            (false, _) => Linger::Off,
            (true, 0) => Linger::Abort,
            (true, s) => Linger::Graceful(Duration::from_secs(u64::from(non_negative(
                "linger time",
                s,
            )?))),
        })
    }

    /// `TCP_NODELAY`: turns off Nagle's algorithm. With Nagle (the default) a
    /// small segment is held back while earlier data is unacknowledged, so
    /// that small writes coalesce; combined with the peer's delayed ACK this
    /// costs up to ~40 ms on loopback per request/response. With `NODELAY`
    /// each write goes out at once (still through the send buffer). The
    /// notes' "by default data is sent only once the buffer is full" is not
    /// what Nagle does: it waits for a full-size segment *or* for the ACK of
    /// what is in flight, whichever comes first.
    ///
    /// # Errors
    /// The errno of `setsockopt`; EOPNOTSUPP/ENOPROTOOPT on non-TCP sockets.
    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::NoDelay, on)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`; EOPNOTSUPP/ENOPROTOOPT on non-TCP sockets.
    fn nodelay(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::NoDelay)
    }

    /// `SO_KEEPALIVE`: sends keepalive probes on an idle TCP connection with
    /// the timing of [`Keepalive`]; a peer that vanished without FIN or RST
    /// is then detected (reads fail with ETIMEDOUT) instead of never.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_keepalive(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::KeepAlive, on)
    }

    /// Whether `SO_KEEPALIVE` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn keepalive(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::KeepAlive)
    }

    /// Sets `TCP_KEEPIDLE`, `TCP_KEEPINTVL` and `TCP_KEEPCNT` together. Does
    /// not turn `SO_KEEPALIVE` on; call [`set_keepalive`](Self::set_keepalive).
    ///
    /// # Errors
    /// `InvalidInput` before any syscall when a field is out of the range
    /// [`Keepalive`] documents (all three are checked first, so nothing is
    /// half-applied); otherwise the errno of `setsockopt` (EOPNOTSUPP on
    /// non-TCP sockets).
    fn set_keepalive_params(&self, params: Keepalive) -> io::Result<()> {
        let idle = keepalive_secs("keepalive idle time", params.idle)?;
        let interval = keepalive_secs("keepalive interval", params.interval)?;
        let count = keepalive_count(params.count)?;
        sockopt::set_int(self.as_fd(), IntOpt::KeepIdle, idle)?;
        sockopt::set_int(self.as_fd(), IntOpt::KeepInterval, interval)?;
        sockopt::set_int(self.as_fd(), IntOpt::KeepCount, count)
    }

    /// The current keepalive timing. Until set, the system defaults
    /// (`net.ipv4.tcp_keepalive_*`).
    ///
    /// # Errors
    /// The errno of `getsockopt` (EOPNOTSUPP on non-TCP sockets).
    fn keepalive_params(&self) -> io::Result<Keepalive> {
        Ok(Keepalive {
            idle: self.keepalive_idle()?,
            interval: self.keepalive_interval()?,
            count: self.keepalive_count()?,
        })
    }

    /// `TCP_KEEPIDLE`: idle time before the first keepalive probe.
    ///
    /// # Errors
    /// `InvalidInput` unless whole seconds in 1..=32767; otherwise the errno
    /// of `setsockopt`.
    fn set_keepalive_idle(&self, idle: Duration) -> io::Result<()> {
        let secs = keepalive_secs("keepalive idle time", idle)?;
        sockopt::set_int(self.as_fd(), IntOpt::KeepIdle, secs)
    }

    /// `TCP_KEEPIDLE`.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn keepalive_idle(&self) -> io::Result<Duration> {
        let secs = sockopt::get_int(self.as_fd(), IntOpt::KeepIdle)?;
        Ok(Duration::from_secs(u64::from(non_negative(
            "keepalive idle time",
            secs,
        )?)))
    }

    /// `TCP_KEEPINTVL`: time between keepalive probes.
    ///
    /// # Errors
    /// `InvalidInput` unless whole seconds in 1..=32767; otherwise the errno
    /// of `setsockopt`.
    fn set_keepalive_interval(&self, interval: Duration) -> io::Result<()> {
        let secs = keepalive_secs("keepalive interval", interval)?;
        sockopt::set_int(self.as_fd(), IntOpt::KeepInterval, secs)
    }

    /// `TCP_KEEPINTVL`.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn keepalive_interval(&self) -> io::Result<Duration> {
        let secs = sockopt::get_int(self.as_fd(), IntOpt::KeepInterval)?;
        Ok(Duration::from_secs(u64::from(non_negative(
            "keepalive interval",
            secs,
        )?)))
    }

    /// `TCP_KEEPCNT`: unanswered probes before the connection is dropped.
    ///
    /// # Errors
    /// `InvalidInput` unless 1..=127; otherwise the errno of `setsockopt`.
    fn set_keepalive_count(&self, count: u32) -> io::Result<()> {
        let count = keepalive_count(count)?;
        sockopt::set_int(self.as_fd(), IntOpt::KeepCount, count)
    }

    /// `TCP_KEEPCNT`.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn keepalive_count(&self) -> io::Result<u32> {
        non_negative(
            "keepalive count",
            sockopt::get_int(self.as_fd(), IntOpt::KeepCount)?,
        )
    }

    /// `SO_RCVBUF`: asks for a receive buffer of `size` bytes.
    ///
    /// What Linux does: the request is clamped to `net.core.rmem_max`
    /// (unless you use the privileged `SO_RCVBUFFORCE`), then **doubled**
    /// (the extra half pays for `sk_buff` bookkeeping), then raised to the
    /// minimum of 2304 bytes; [`recv_buffer_size`](Self::recv_buffer_size)
    /// reports that doubled value. Setting it also turns off TCP's receive
    /// buffer auto-tuning for this socket, so a small value can cap
    /// throughput. On a listener, accepted sockets inherit it; to affect the
    /// TCP window scale it must be set before `listen`/`connect`.
    ///
    /// # Errors
    /// `InvalidInput` when `size` exceeds `i32::MAX`; otherwise the errno of
    /// `setsockopt`.
    fn set_recv_buffer_size(&self, size: usize) -> io::Result<()> {
        let size = buffer_size("receive buffer size", size)?;
        sockopt::set_int(self.as_fd(), IntOpt::RecvBuf, size)
    }

    /// `SO_RCVBUF` as the kernel holds it: twice what was asked, clamped.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn recv_buffer_size(&self) -> io::Result<usize> {
        let v = sockopt::get_int(self.as_fd(), IntOpt::RecvBuf)?;
        Ok(non_negative("receive buffer size", v)? as usize)
    }

    /// `SO_SNDBUF`: asks for a send buffer of `size` bytes.
    ///
    /// What Linux does: clamped to `net.core.wmem_max`, **doubled**, raised
    /// to the minimum of 4608 bytes (the exact value depends on the kernel's
    /// `sk_buff` size); the getter reports the doubled value. As for
    /// `SO_RCVBUF`, TCP send-buffer auto-tuning is then off. The notes'
    /// trick "set `SO_SNDBUF` to 0 to skip the copy into the socket buffer"
    /// does not work on Linux: 0 just gives the minimum buffer, and every
    /// `send` still copies.
    ///
    /// # Errors
    /// `InvalidInput` when `size` exceeds `i32::MAX`; otherwise the errno of
    /// `setsockopt`.
    fn set_send_buffer_size(&self, size: usize) -> io::Result<()> {
        let size = buffer_size("send buffer size", size)?;
        sockopt::set_int(self.as_fd(), IntOpt::SendBuf, size)
    }

    /// `SO_SNDBUF` as the kernel holds it: twice what was asked, clamped.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn send_buffer_size(&self) -> io::Result<usize> {
        let v = sockopt::get_int(self.as_fd(), IntOpt::SendBuf)?;
        Ok(non_negative("send buffer size", v)? as usize)
    }

    /// `SO_RCVTIMEO`: a blocking receive gives up after `timeout` with
    /// EAGAIN (`ErrorKind::WouldBlock`), having received nothing (or returns
    /// the partial count). `None` means wait forever.
    ///
    /// Only **blocking** sockets are affected: a non-blocking socket never
    /// waits, so sockloop's own sockets ignore it. The kernel keeps the value
    /// in jiffies, so the getter may report it rounded up to the timer tick.
    /// Sub-microsecond parts are rounded up to 1 µs.
    ///
    /// # Errors
    /// `InvalidInput` before any syscall for `Some(Duration::ZERO)` (the
    /// kernel would read `{0, 0}` as "no timeout": pass `None` to mean that)
    /// and for durations that overflow `time_t`; otherwise the errno of
    /// `setsockopt`.
    fn set_recv_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        sockopt::set_timeout(self.as_fd(), TimeoutOpt::Recv, timeout)
    }

    /// `SO_RCVTIMEO`; `None` when receives block without limit.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn recv_timeout(&self) -> io::Result<Option<Duration>> {
        sockopt::get_timeout(self.as_fd(), TimeoutOpt::Recv)
    }

    /// `SO_SNDTIMEO`: a blocking send (and, for TCP, a blocking `connect`)
    /// gives up after `timeout` with EAGAIN, or EINPROGRESS for `connect`.
    /// Only blocking sockets are affected; see
    /// [`set_recv_timeout`](Self::set_recv_timeout).
    ///
    /// # Errors
    /// As [`set_recv_timeout`](Self::set_recv_timeout).
    fn set_send_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        sockopt::set_timeout(self.as_fd(), TimeoutOpt::Send, timeout)
    }

    /// `SO_SNDTIMEO`; `None` when sends block without limit.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn send_timeout(&self) -> io::Result<Option<Duration>> {
        sockopt::get_timeout(self.as_fd(), TimeoutOpt::Send)
    }

    /// `SO_BROADCAST`: allows a datagram socket to send to a broadcast
    /// address (e.g. `255.255.255.255`, or `127.255.255.255` on loopback).
    /// Without it such a `send_to` fails with EACCES. Receiving broadcasts
    /// needs no option on Linux.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_broadcast(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::Broadcast, on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn broadcast(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::Broadcast)
    }

    /// `SO_OOBINLINE`: TCP urgent ("out-of-band") bytes are left in the normal
    /// data stream instead of being held apart for `recv(MSG_OOB)`. TCP has
    /// a single urgent pointer, so only the most recent urgent byte is ever
    /// held apart; with this option none is, and the reader finds it in order.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_oob_inline(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::OobInline, on)
    }

    /// Whether `SO_OOBINLINE` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn oob_inline(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::OobInline)
    }

    /// `SO_PRIORITY`: the queueing priority (`skb->priority`) of the packets
    /// this socket sends, used by the traffic-control qdiscs to pick a band.
    /// Without CAP_NET_ADMIN (or CAP_NET_RAW on recent kernels) only 0..=6
    /// may be set; higher values fail with EPERM. It does not change the IP
    /// TOS/DSCP bits on the wire.
    ///
    /// # Errors
    /// `InvalidInput` when `priority` exceeds `i32::MAX`; EPERM as above;
    /// otherwise the errno of `setsockopt`.
    fn set_priority(&self, priority: u32) -> io::Result<()> {
        let p = i32::try_from(priority)
            .map_err(|_| invalid(format!("priority {priority} overflows a C int")))?;
        sockopt::set_int(self.as_fd(), IntOpt::Priority, p)
    }

    /// `SO_PRIORITY`.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn priority(&self) -> io::Result<u32> {
        // The kernel stores it as u32; reinterpret the bits.
        Ok(sockopt::get_int(self.as_fd(), IntOpt::Priority)? as u32)
    }

    /// `SO_BINDTODEVICE`: the socket only sends through and receives from
    /// interface `name` (e.g. `"lo"`), whatever the routing table says. An
    /// empty name removes the binding.
    ///
    /// Privilege: binding an unbound socket is allowed to anyone since Linux
    /// 5.7; changing or removing an existing binding (and any use before 5.7)
    /// needs CAP_NET_RAW and otherwise fails with EPERM.
    ///
    /// # Errors
    /// `InvalidInput` before any syscall when `name` is longer than
    /// `IFNAMSIZ - 1` = 15 bytes or contains a NUL byte; EPERM as above;
    /// ENODEV when no such interface exists; otherwise the errno of
    /// `setsockopt`.
    fn set_bind_device(&self, name: &str) -> io::Result<()> {
        sockopt::set_bind_device(self.as_fd(), name.as_bytes())
    }

    /// `SO_BINDTODEVICE`: the interface name, empty when not bound.
    ///
    /// # Errors
    /// The errno of `getsockopt`; `InvalidData` if the name is not UTF-8.
    fn bind_device(&self) -> io::Result<String> {
        let bytes = sockopt::get_bind_device(self.as_fd())?;
        String::from_utf8(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    }

    /// `TCP_USER_TIMEOUT`: how long transmitted data may stay unacknowledged
    /// (and, with keepalive on, how long probes may go unanswered) before the
    /// kernel drops the connection with ETIMEDOUT. Without it a dead peer is
    /// found only after `net.ipv4.tcp_retries2` retransmissions (about 15
    /// minutes, as the notes say). `None` restores the system behaviour.
    ///
    /// # Errors
    /// `InvalidInput` before any syscall when the duration is zero (that
    /// means "system default": pass `None`), has a sub-millisecond part (the
    /// kernel's unit is the millisecond), or exceeds `i32::MAX` ms; otherwise
    /// the errno of `setsockopt` (EOPNOTSUPP on non-TCP sockets).
    fn set_tcp_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let ms = match timeout {
            None => 0,
            Some(d) => {
                if d.is_zero() {
                    return Err(invalid(
                        "a zero TCP user timeout means \"system default\"; pass None".to_string(),
                    ));
                }
                if d.subsec_nanos() % 1_000_000 != 0 {
                    return Err(invalid(format!(
                        "TCP user timeout must be whole milliseconds, got {d:?}"
                    )));
                }
                i32::try_from(d.as_millis()).map_err(|_| {
                    invalid(format!(
                        "TCP user timeout of {d:?} overflows a C int of milliseconds"
                    ))
                })?
            }
        };
        sockopt::set_int(self.as_fd(), IntOpt::UserTimeout, ms)
    }

    /// `TCP_USER_TIMEOUT`; `None` when the system behaviour applies.
    ///
    /// # Errors
    /// The errno of `getsockopt` (EOPNOTSUPP on non-TCP sockets).
    fn tcp_user_timeout(&self) -> io::Result<Option<Duration>> {
        let ms = sockopt::get_int(self.as_fd(), IntOpt::UserTimeout)?;
        let ms = non_negative("TCP user timeout", ms)?;
        Ok((ms != 0).then(|| Duration::from_millis(u64::from(ms))))
    }

    /// `IPV6_V6ONLY`: on an IPv6 socket, whether it is restricted to IPv6.
    /// When off (the Linux default, from `net.ipv6.bindv6only`), a socket
    /// bound to `[::]` also accepts IPv4 traffic, seen as v4-mapped addresses
    /// (`::ffff:127.0.0.1`), and may bind such an address itself. Must be set
    /// before `bind`.
    ///
    /// # Errors
    /// EINVAL once the socket is bound; ENOPROTOOPT/EOPNOTSUPP on an IPv4
    /// socket; otherwise the errno of `setsockopt`.
    fn set_only_v6(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::V6Only, on)
    }

    /// Whether `IPV6_V6ONLY` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`; ENOPROTOOPT/EOPNOTSUPP on an IPv4 socket.
    fn only_v6(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::V6Only)
    }

    /// `SO_ERROR`: reads **and clears** the socket's pending error. This is
    /// how a non-blocking `connect` reports its outcome once the socket is
    /// writable (`Ok(None)`: connected), and how an asynchronous error (an
    /// ICMP "port unreachable" on UDP, an RST) can be collected.
    ///
    /// # Errors
    /// The errno of `getsockopt` itself; the socket's pending error is the
    /// `Ok(Some(_))` value, not an `Err`.
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        sockopt::take_error(self.as_fd())
    }

    /// `SO_TYPE`: stream, datagram, ... (read-only).
    ///
    /// # Errors
    /// The errno of `getsockopt` (ENOTSOCK for a non-socket).
    fn socket_type(&self) -> io::Result<SocketType> {
        sockopt::socket_type(self.as_fd())
    }

    /// `SO_RCVLOWAT`: the receive low-water mark, in bytes.
    ///
    /// The notes say Linux fixes it at 1. That is dated: it is settable
    /// since Linux 2.4 (socket(7)), and since 2.6.28 `select`, `poll` and
    /// `epoll` report a stream socket readable only once at least `bytes`
    /// are queued (or on EOF, an error or a reset, which always wake). A
    /// blocking `recv` likewise waits for `min(bytes, len)` bytes. What Linux
    /// really does with the value:
    ///
    /// * 0 is stored as 1; values above `i32::MAX` are an error here.
    /// * TCP (4.18+) caps it at half the largest receive buffer the socket
    ///   may have (`tcp_rmem[2] / 2`, or `SO_RCVBUF / 2` once that was set)
    ///   and grows the receive buffer to fit, so a mark can never exceed
    ///   what the socket is able to queue (which would never wake).
    /// * The kernel then also calls the data-ready hook less often: with a
    ///   high mark, segments arriving below it do not wake an epoll waiter.
    /// * Datagram sockets ignore it for readiness (one datagram is enough).
    /// * `SO_SNDLOWAT` stays fixed on Linux (ENOPROTOOPT), as the notes say.
    ///
    /// [`ReadExact`](crate::io::ReadExact) can use it for large remainders;
    /// see [`ReadExact::set_low_water`](crate::io::ReadExact::set_low_water).
    ///
    /// # Errors
    /// `InvalidInput` before any syscall when `bytes` exceeds `i32::MAX`;
    /// otherwise the errno of `setsockopt`.
    fn set_recv_low_water(&self, bytes: usize) -> io::Result<()> {
        let v = buffer_size("receive low-water mark", bytes)?;
        sockopt::set_int(self.as_fd(), IntOpt::RecvLowat, v)
    }

    /// `SO_RCVLOWAT` as the kernel holds it (1 by default, capped for TCP).
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn recv_low_water(&self) -> io::Result<usize> {
        let v = sockopt::get_int(self.as_fd(), IntOpt::RecvLowat)?;
        Ok(non_negative("receive low-water mark", v)? as usize)
    }

    /// `SO_DEBUG`: sets the socket's `SOCK_DBG` flag, as the notes say.
    ///
    /// What Linux really does: turning it **on** needs CAP_NET_ADMIN
    /// (without it: EACCES, not EPERM); turning it off is always allowed. The
    /// flag is copied to connections accepted from a listener that has it.
    /// Nothing in the kernel reads it any more: the last users and the
    /// `SOCK_DEBUG` logging macro were removed by early 2024, so it changes
    /// nothing on the wire. A 2024 netdev patch proposed that `getsockopt`
    /// then report 0 always; on the kernels tested here (6.18) the value
    /// still reads back, and the privilege check is kept either way.
    ///
    /// # Errors
    /// EACCES (`PermissionDenied`) when turning it on without CAP_NET_ADMIN;
    /// otherwise the errno of `setsockopt`.
    fn set_debug(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::Debug, on)
    }

    /// Whether `SO_DEBUG` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn debug(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::Debug)
    }

    /// `SO_DONTROUTE`: bypass the routing table's gateways: packets go only
    /// to destinations on a directly attached network (Linux sets
    /// `SOCK_LOCALROUTE`, and route lookups for the socket then ask for
    /// link scope). A destination that needs a gateway fails with
    /// ENETUNREACH, at `connect` for UDP (which only looks the route up,
    /// sending nothing) or at `send`. Loopback and on-link addresses work as
    /// before. The per-call form is `MSG_DONTROUTE`
    /// ([`UdpSocket::send_to_dont_route`](crate::net::UdpSocket::send_to_dont_route),
    /// or `sys::msg::send_to` with `MSG_DONTROUTE` on any socket).
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_dont_route(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::DontRoute, on)
    }

    /// Whether `SO_DONTROUTE` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn dont_route(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::DontRoute)
    }

    /// `SO_TIMESTAMP`: the kernel records when each datagram arrived
    /// (`CLOCK_REALTIME`, microseconds) and hands it over as an
    /// `SCM_TIMESTAMP` control message with the datagram;
    /// [`UdpSocket::recv_from_timestamped`](crate::net::UdpSocket::recv_from_timestamped)
    /// returns it. The time is taken when the network stack receives the
    /// packet, before it waits in the socket's queue for the application:
    /// it says when a datagram really got here, not when the loop got
    /// round to reading it. Turning it on
    /// also enables the kernel's global receive timestamping (a small cost
    /// on every packet while any socket has it). That switch is flipped
    /// asynchronously: when this is the first socket in the system to ask,
    /// the first datagrams may still be stamped when they are read instead.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_timestamp(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::Timestamp, on)
    }

    /// Whether `SO_TIMESTAMP` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn timestamp(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::Timestamp)
    }

    /// `SO_TIMESTAMPNS`: as [`set_timestamp`](Self::set_timestamp) with a
    /// `timespec` (nanoseconds), delivered as `SCM_TIMESTAMPNS`. Setting one
    /// of the two clears the other on Linux: they share the socket's flag.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_timestamp_ns(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::TimestampNs, on)
    }

    /// Whether `SO_TIMESTAMPNS` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn timestamp_ns(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::TimestampNs)
    }

    /// `SO_PASSCRED` (Unix sockets): every message received carries the
    /// sender's pid/uid/gid as an `SCM_CREDENTIALS` control message, filled
    /// in by the kernel (a sender can only claim its own ids unless
    /// privileged), so a local server can check who sent each datagram;
    /// [`UnixDatagram::recv_from_with_credentials`](crate::net::UnixDatagram::recv_from_with_credentials)
    /// returns them. For a connection as a whole, [`peer_credentials`](Self::peer_credentials)
    /// needs no option.
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_pass_credentials(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::PassCred, on)
    }

    /// Whether `SO_PASSCRED` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn pass_credentials(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::PassCred)
    }

    /// `SO_PEERCRED` (read-only, Unix stream sockets and socketpairs): the
    /// pid, uid and gid of the process that created the peer socket, taken
    /// by the kernel at `connect` (for the client's view: at `listen`) time.
    /// This is what a local server uses to decide who may talk to it: the
    /// peer cannot forge it. The pid can be stale if that process has since
    /// exited, and it is 0 when the peer is in a pid namespace we cannot see.
    ///
    /// On a socket that has no Unix peer (TCP, UDP, an unconnected Unix
    /// socket) Linux does **not** fail: it reports pid 0 and uid/gid -1
    /// (`u32::MAX`). Treat pid 0 as "nobody"; never as root's uid 0.
    ///
    /// # Errors
    /// The errno of `getsockopt` (EBADF, ENOTSOCK).
    fn peer_credentials(&self) -> io::Result<Credentials> {
        sockopt::peer_credentials(self.as_fd())
    }

    /// `SO_ATTACH_FILTER`: attaches a classic BPF program that the kernel
    /// runs on every packet before it is queued to this socket; a packet for
    /// which the program returns 0 is dropped (never seen by `recv`, and not
    /// counted against the receive buffer), any other return value is how
    /// many bytes to keep. For UDP the program sees the packet from the UDP
    /// header on: the payload starts at offset 8. This drops every datagram
    /// whose first payload byte is not `b'A'`:
    ///
    /// ```
    /// use sockloop::options::{bpf, SockFilter, SocketOptions};
    /// let only_a = [
    ///     SockFilter::stmt(bpf::LD | bpf::B | bpf::ABS, 8),
    ///     SockFilter::jump(bpf::JMP | bpf::JEQ | bpf::K, u32::from(b'A'), 0, 1),
    ///     SockFilter::stmt(bpf::RET | bpf::K, u32::MAX),
    ///     SockFilter::stmt(bpf::RET | bpf::K, 0),
    /// ];
    /// let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// socket.attach_filter(&only_a)?;
    /// socket.detach_filter()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` before any syscall for an empty program or one of more
    /// than 4096 instructions; EINVAL when the kernel's checker rejects it
    /// (a jump out of range, no final return); EPERM when the filter is
    /// locked; otherwise the errno of `setsockopt`.
    fn attach_filter(&self, program: &[SockFilter]) -> io::Result<()> {
        filter::attach(self.as_fd(), program)
    }

    /// `SO_DETACH_FILTER`: removes the filter; every packet is queued again.
    ///
    /// # Errors
    /// ENOENT when no filter is attached; EPERM when it is locked.
    fn detach_filter(&self) -> io::Result<()> {
        filter::detach(self.as_fd())
    }

    /// `SO_NO_CHECK` (UDP over IPv4): send datagrams without a UDP checksum
    /// (the header's checksum field is 0, which IPv4 defines as "none").
    /// Receivers accept such datagrams on IPv4. It saves the checksum's cost
    /// only where the NIC does not compute it anyway, and a corrupted
    /// payload is then no longer detected: Ethernet's CRC covers one hop, not
    /// the path. IPv6 requires the checksum: the option does not change
    /// IPv6 datagrams (Linux's separate `UDP_NO_CHECK6_TX`, meant for
    /// tunnels, is not exposed).
    ///
    /// # Errors
    /// The errno of `setsockopt`.
    fn set_no_check(&self, on: bool) -> io::Result<()> {
        sockopt::set_bool(self.as_fd(), BoolOpt::NoCheck, on)
    }

    /// Whether `SO_NO_CHECK` is set.
    ///
    /// # Errors
    /// The errno of `getsockopt`.
    fn no_check(&self) -> io::Result<bool> {
        sockopt::get_bool(self.as_fd(), BoolOpt::NoCheck)
    }

    /// Sets or clears `O_NONBLOCK` with `fcntl` (this is a file-status flag,
    /// not a socket option, and is shared by every `dup` of the descriptor).
    ///
    /// The notes ask how `O_NONBLOCK` differs from `O_NDELAY`: with the old
    /// System V `O_NDELAY`, a read with no data returned 0, which cannot be
    /// told apart from end of file; POSIX `O_NONBLOCK` makes it fail with
    /// EAGAIN instead, and 0 means EOF only. On Linux/glibc `O_NDELAY` is
    /// simply defined as `O_NONBLOCK`, so both behave the POSIX way.
    ///
    /// # Errors
    /// The errno of `fcntl` (EBADF).
    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        fd::set_nonblocking(self.as_fd(), on)
    }

    /// Whether `O_NONBLOCK` is set.
    ///
    /// # Errors
    /// The errno of `fcntl` (EBADF).
    fn is_nonblocking(&self) -> io::Result<bool> {
        fd::is_nonblocking(self.as_fd())
    }
}

impl<T: AsFd + ?Sized> SocketOptions for T {}

fn keepalive_secs(what: &str, d: Duration) -> io::Result<i32> {
    whole_secs(what, d, 1, u64::from(sockopt::MAX_KEEPALIVE_SECS))
}

fn keepalive_count(count: u32) -> io::Result<i32> {
    if count == 0 || count > sockopt::MAX_KEEPALIVE_COUNT {
        return Err(invalid(format!(
            "keepalive count must be 1..={}, got {count}",
            sockopt::MAX_KEEPALIVE_COUNT
        )));
    }
    // In range 1..=127, so the cast is exact.
    Ok(count as i32)
}

/// TCP urgent ("out-of-band") data: `send`/`recv` with `MSG_OOB`.
///
/// TCP has no real second channel: `send(MSG_OOB)` sends the data in the
/// normal stream and marks its **last byte** as urgent (the urgent pointer).
/// Only one urgent byte is tracked per connection; a newer one replaces it.
/// What the receiver sees depends on `SO_OOBINLINE`
/// ([`SocketOptions::set_oob_inline`]):
///
/// * **off** (default): the urgent byte is taken out of the stream. A normal
///   read stops at the mark (returns the bytes before it), and
///   [`recv_out_of_band`](Self::recv_out_of_band) returns the byte.
///   `epoll` reports `EPOLLPRI` (and `select` an exception) while it waits.
/// * **on**: the byte stays in the stream, in order; `recv(MSG_OOB)` fails
///   with EINVAL.
///
/// Implemented for every [`AsFd`] type; only TCP sockets support it (UDP
/// and Unix sockets give EOPNOTSUPP). The event loop does not register
/// `EPOLLPRI`, so its handlers are not told about urgent data: with
/// `SO_OOBINLINE` off a loop connection simply sees the stream without the
/// urgent byte. Protocols that need a "cancel" signal should send it in-band.
pub trait OutOfBand: AsFd {
    /// Sends `data` with `MSG_OOB | MSG_NOSIGNAL`; its last byte becomes the
    /// urgent byte. Returns the count sent.
    ///
    /// # Errors
    /// EOPNOTSUPP on non-TCP sockets; EAGAIN when the send buffer is full;
    /// EPIPE/ECONNRESET as for any send.
    fn send_out_of_band(&self, data: &[u8]) -> io::Result<usize> {
        msg::send_to(self.as_fd(), data, None, msg::MSG_OOB)
    }

    /// Receives the pending urgent byte (`recv(MSG_OOB)`), with
    /// `SO_OOBINLINE` off.
    ///
    /// # Errors
    /// EINVAL (`InvalidInput`) when there is no urgent byte, it was already
    /// read, or `SO_OOBINLINE` is on; EAGAIN (`WouldBlock`) when the urgent
    /// pointer has arrived but the byte itself has not yet; EOPNOTSUPP on
    /// non-TCP sockets.
    fn recv_out_of_band(&self) -> io::Result<u8> {
        let mut byte = [0u8; 1];
        match sysio::recv(self.as_fd(), &mut byte, msg::MSG_OOB)? {
            1 => Ok(byte[0]),
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "recv(MSG_OOB) returned no byte",
            )),
        }
    }
}

impl<T: AsFd + ?Sized> OutOfBand for T {}
