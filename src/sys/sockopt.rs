//! `getsockopt`/`setsockopt`, wrapped once for any option value type.
//!
//! The typed, documented options users call live in `crate::options`; this
//! file only moves bytes between Rust values and the kernel: the generic
//! [`get`]/[`set`], and typed wrappers ([`set_bool`], [`set_int`],
//! [`set_linger`], [`set_timeout`], [`set_bind_device`], ...) that pick the
//! level/name pair and the C layout so that no caller outside `sys` has to
//! name a `libc` constant.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Option values the kernel reads or writes as plain bytes.
///
/// # Safety
/// Implementors must be `repr(C)` plain old data for which every bit pattern
/// is valid (the kernel writes arbitrary bytes into them).
pub unsafe trait OptionValue: Copy {}
// SAFETY: ints, linger and timeval are repr(C) POD; any bits are valid.
unsafe impl OptionValue for libc::c_int {}
// SAFETY: as above.
unsafe impl OptionValue for libc::linger {}
// SAFETY: as above.
unsafe impl OptionValue for libc::timeval {}
// SAFETY: as above.
unsafe impl OptionValue for libc::tcp_info {}
// SAFETY: as above (pid_t, uid_t, gid_t).
unsafe impl OptionValue for libc::ucred {}
// SAFETY: a u16 and a raw pointer: repr(C), and any bits are a valid raw
// pointer (it is only ever passed to the kernel, never dereferenced here).
unsafe impl OptionValue for libc::sock_fprog {}

/// `setsockopt(fd, level, name, &value, sizeof value)`.
///
/// # Errors
/// ENOPROTOOPT (option unknown at that level), EINVAL (bad value),
/// EPERM (e.g. SO_BINDTODEVICE without CAP_NET_RAW), EBADF, ENOTSOCK.
pub fn set<T: OptionValue>(fd: BorrowedFd<'_>, level: i32, name: i32, value: T) -> io::Result<()> {
    // SAFETY: `value` is a live T of exactly the size we pass.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&value as *const T).cast(),
        mem::size_of::<T>() as libc::socklen_t
    ))?;
    Ok(())
}

/// `getsockopt(fd, level, name, &value, &len)`.
///
/// # Errors
/// As [`set`].
pub fn get<T: OptionValue>(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<T> {
    // SAFETY: T is POD (OptionValue's contract): zeroed is a valid T.
    let mut value: T = unsafe { mem::zeroed() };
    let mut len = mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is writable for `len` bytes; `len` is a valid socklen_t.
    syscall!(getsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&mut value as *mut T).cast(),
        &mut len
    ))?;
    Ok(value)
}

/// `setsockopt` with a byte string value (SO_BINDTODEVICE takes a name).
///
/// # Errors
/// As [`set`].
pub fn set_bytes(fd: BorrowedFd<'_>, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    // SAFETY: `value` is valid for reads of `value.len()` bytes.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        value.as_ptr().cast(),
        value.len() as libc::socklen_t
    ))?;
    Ok(())
}

/// `getsockopt` into a byte buffer; returns the length the kernel wrote.
///
/// # Errors
/// As [`set`].
pub fn get_bytes(fd: BorrowedFd<'_>, level: i32, name: i32, out: &mut [u8]) -> io::Result<usize> {
    let mut len = out.len() as libc::socklen_t;
    // SAFETY: `out` is writable for `len` bytes.
    syscall!(getsockopt(
        fd.as_raw_fd(),
        level,
        name,
        out.as_mut_ptr().cast(),
        &mut len
    ))?;
    Ok(len as usize)
}

/// Reads and clears the socket's pending error (`SO_ERROR`): how a
/// non-blocking connect reports its outcome once the socket is writable.
/// `Ok(None)` means no error (connected).
///
/// # Errors
/// The errno of `getsockopt` itself (EBADF, ENOTSOCK).
pub fn take_error(fd: BorrowedFd<'_>) -> io::Result<Option<io::Error>> {
    let err: libc::c_int = get(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok(if err == 0 {
        None
    } else {
        Some(io::Error::from_raw_os_error(err))
    })
}

// ---------------------------------------------------------------------------
// Typed wrappers. They only pick the level/name pair and the C value layout;
// validation of user values and the documentation of what each option does
// live in `crate::options`.
// ---------------------------------------------------------------------------

/// Longest interface name `SO_BINDTODEVICE` takes, without the NUL
/// (`IFNAMSIZ - 1` = 15 on Linux).
pub const MAX_IFNAME_LEN: usize = libc::IFNAMSIZ - 1;

/// Largest `TCP_KEEPIDLE` / `TCP_KEEPINTVL` the kernel accepts, in seconds
/// (`MAX_TCP_KEEPIDLE`, `MAX_TCP_KEEPINTVL` in `include/net/tcp.h`).
pub const MAX_KEEPALIVE_SECS: u32 = 32767;

/// Largest `TCP_KEEPCNT` the kernel accepts (`MAX_TCP_KEEPCNT`).
pub const MAX_KEEPALIVE_COUNT: u32 = 127;

/// Options whose value is a C `int` used as a boolean.
/// Non-exhaustive: new options are added as the notes are worked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BoolOpt {
    /// `SOL_SOCKET`/`SO_REUSEADDR`.
    ReuseAddr,
    /// `SOL_SOCKET`/`SO_REUSEPORT`.
    ReusePort,
    /// `SOL_SOCKET`/`SO_KEEPALIVE`.
    KeepAlive,
    /// `SOL_SOCKET`/`SO_BROADCAST`.
    Broadcast,
    /// `SOL_SOCKET`/`SO_OOBINLINE`.
    OobInline,
    /// `IPPROTO_TCP`/`TCP_NODELAY`.
    NoDelay,
    /// `IPPROTO_IPV6`/`IPV6_V6ONLY`.
    V6Only,
    /// `SOL_SOCKET`/`SO_DEBUG` (setting it needs CAP_NET_ADMIN).
    Debug,
    /// `SOL_SOCKET`/`SO_DONTROUTE`.
    DontRoute,
    /// `SOL_SOCKET`/`SO_TIMESTAMP` (`SCM_TIMESTAMP`, a `timeval`).
    Timestamp,
    /// `SOL_SOCKET`/`SO_TIMESTAMPNS` (`SCM_TIMESTAMPNS`, a `timespec`).
    TimestampNs,
    /// `SOL_SOCKET`/`SO_PASSCRED` (`SCM_CREDENTIALS` on Unix sockets).
    PassCred,
    /// `SOL_SOCKET`/`SO_NO_CHECK` (UDP: send without a checksum).
    NoCheck,
}

impl BoolOpt {
    fn level_name(self) -> (libc::c_int, libc::c_int) {
        match self {
            BoolOpt::ReuseAddr => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
            BoolOpt::ReusePort => (libc::SOL_SOCKET, libc::SO_REUSEPORT),
            BoolOpt::KeepAlive => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            BoolOpt::Broadcast => (libc::SOL_SOCKET, libc::SO_BROADCAST),
            BoolOpt::OobInline => (libc::SOL_SOCKET, libc::SO_OOBINLINE),
            BoolOpt::NoDelay => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
            BoolOpt::V6Only => (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY),
            BoolOpt::Debug => (libc::SOL_SOCKET, libc::SO_DEBUG),
            BoolOpt::DontRoute => (libc::SOL_SOCKET, libc::SO_DONTROUTE),
            BoolOpt::Timestamp => (libc::SOL_SOCKET, libc::SO_TIMESTAMP),
            BoolOpt::TimestampNs => (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS),
            BoolOpt::PassCred => (libc::SOL_SOCKET, libc::SO_PASSCRED),
            BoolOpt::NoCheck => (libc::SOL_SOCKET, libc::SO_NO_CHECK),
        }
    }
}

/// Options whose value is a plain C `int`.
/// Non-exhaustive: new options are added as the notes are worked through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntOpt {
    /// `SOL_SOCKET`/`SO_RCVBUF` (bytes).
    RecvBuf,
    /// `SOL_SOCKET`/`SO_SNDBUF` (bytes).
    SendBuf,
    /// `SOL_SOCKET`/`SO_PRIORITY`.
    Priority,
    /// `SOL_SOCKET`/`SO_TYPE` (read-only).
    Type,
    /// `IPPROTO_TCP`/`TCP_KEEPIDLE` (seconds).
    KeepIdle,
    /// `IPPROTO_TCP`/`TCP_KEEPINTVL` (seconds).
    KeepInterval,
    /// `IPPROTO_TCP`/`TCP_KEEPCNT` (probes).
    KeepCount,
    /// `IPPROTO_TCP`/`TCP_USER_TIMEOUT` (milliseconds; 0 = system default).
    UserTimeout,
    /// `SOL_SOCKET`/`SO_RCVLOWAT` (bytes).
    RecvLowat,
}

impl IntOpt {
    fn level_name(self) -> (libc::c_int, libc::c_int) {
        match self {
            IntOpt::RecvBuf => (libc::SOL_SOCKET, libc::SO_RCVBUF),
            IntOpt::SendBuf => (libc::SOL_SOCKET, libc::SO_SNDBUF),
            IntOpt::Priority => (libc::SOL_SOCKET, libc::SO_PRIORITY),
            IntOpt::Type => (libc::SOL_SOCKET, libc::SO_TYPE),
            IntOpt::KeepIdle => (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE),
            IntOpt::KeepInterval => (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL),
            IntOpt::KeepCount => (libc::IPPROTO_TCP, libc::TCP_KEEPCNT),
            IntOpt::UserTimeout => (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            IntOpt::RecvLowat => (libc::SOL_SOCKET, libc::SO_RCVLOWAT),
        }
    }
}

/// Sets a boolean option (writes the `int` 1 or 0).
///
/// # Errors
/// As [`set`]; ENOPROTOOPT/EOPNOTSUPP when the option does not apply to the
/// socket (e.g. `TCP_NODELAY` on UDP, `IPV6_V6ONLY` on an IPv4 socket),
/// EINVAL for `IPV6_V6ONLY` on a bound socket.
pub fn set_bool(fd: BorrowedFd<'_>, opt: BoolOpt, on: bool) -> io::Result<()> {
    let (level, name) = opt.level_name();
    set::<libc::c_int>(fd, level, name, libc::c_int::from(on))
}

/// Reads a boolean option (any non-zero `int` is true).
///
/// # Errors
/// As [`set_bool`].
pub fn get_bool(fd: BorrowedFd<'_>, opt: BoolOpt) -> io::Result<bool> {
    let (level, name) = opt.level_name();
    Ok(get::<libc::c_int>(fd, level, name)? != 0)
}

/// Sets an `int` option to `value` as is.
///
/// # Errors
/// As [`set`]; EINVAL for values the kernel rejects, EPERM for
/// `SO_PRIORITY` above 6 without CAP_NET_ADMIN, ENOPROTOOPT for `SO_TYPE`.
pub fn set_int(fd: BorrowedFd<'_>, opt: IntOpt, value: i32) -> io::Result<()> {
    let (level, name) = opt.level_name();
    set::<libc::c_int>(fd, level, name, value)
}

/// Reads an `int` option as is.
///
/// # Errors
/// As [`set`].
pub fn get_int(fd: BorrowedFd<'_>, opt: IntOpt) -> io::Result<i32> {
    let (level, name) = opt.level_name();
    get::<libc::c_int>(fd, level, name)
}

/// Sets `SO_LINGER` to `{ l_onoff: on, l_linger: seconds }`.
///
/// # Errors
/// As [`set`].
pub fn set_linger(fd: BorrowedFd<'_>, on: bool, seconds: i32) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: libc::c_int::from(on),
        l_linger: seconds,
    };
    set(fd, libc::SOL_SOCKET, libc::SO_LINGER, value)
}

/// Reads `SO_LINGER` as `(l_onoff != 0, l_linger)`.
///
/// # Errors
/// As [`set`].
pub fn get_linger(fd: BorrowedFd<'_>) -> io::Result<(bool, i32)> {
    let value: libc::linger = get(fd, libc::SOL_SOCKET, libc::SO_LINGER)?;
    Ok((value.l_onoff != 0, value.l_linger))
}

/// Which direction a `SO_RCVTIMEO`/`SO_SNDTIMEO` timeout applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutOpt {
    /// `SO_RCVTIMEO`.
    Recv,
    /// `SO_SNDTIMEO`.
    Send,
}

impl TimeoutOpt {
    fn name(self) -> libc::c_int {
        match self {
            TimeoutOpt::Recv => libc::SO_RCVTIMEO,
            TimeoutOpt::Send => libc::SO_SNDTIMEO,
        }
    }
}

/// Converts a timeout into a `timeval`. `None` is `{0, 0}`, which the kernel
/// reads as "no timeout". A non-zero duration is rounded *up* to the next
/// microsecond, so it can never collapse into `{0, 0}`.
fn timeval_of(timeout: Option<Duration>) -> io::Result<libc::timeval> {
    let Some(d) = timeout else {
        return Ok(libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        });
    };
    if d.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a zero timeout means \"no timeout\" to the kernel; pass None instead",
        ));
    }
    let overflow = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("timeout of {d:?} overflows the kernel's time_t"),
        )
    };
    let mut secs = d.as_secs();
    let mut usecs = u64::from(d.subsec_nanos().div_ceil(1000));
    if usecs == 1_000_000 {
        secs = secs.checked_add(1).ok_or_else(overflow)?;
        usecs = 0;
    }
    let tv_sec = libc::time_t::try_from(secs).map_err(|_| overflow())?;
    Ok(libc::timeval {
        tv_sec,
        // Always < 1_000_000, fits every suseconds_t.
        tv_usec: usecs as libc::suseconds_t,
    })
}

/// Sets `SO_RCVTIMEO`/`SO_SNDTIMEO`. `None` clears the timeout.
///
/// # Errors
/// `InvalidInput`, before any syscall, for `Some(Duration::ZERO)` and for
/// durations whose seconds overflow `time_t`; otherwise as [`set`].
pub fn set_timeout(
    fd: BorrowedFd<'_>,
    opt: TimeoutOpt,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let tv = timeval_of(timeout)?;
    set(fd, libc::SOL_SOCKET, opt.name(), tv)
}

/// Reads `SO_RCVTIMEO`/`SO_SNDTIMEO`; `None` when no timeout is set.
///
/// # Errors
/// As [`set`].
pub fn get_timeout(fd: BorrowedFd<'_>, opt: TimeoutOpt) -> io::Result<Option<Duration>> {
    let tv: libc::timeval = get(fd, libc::SOL_SOCKET, opt.name())?;
    if tv.tv_sec <= 0 && tv.tv_usec <= 0 {
        return Ok(None);
    }
    // The kernel never reports negative fields; treat them as zero anyway.
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let usecs = u32::try_from(tv.tv_usec).unwrap_or(0);
    Ok(Some(Duration::new(secs, usecs.saturating_mul(1000))))
}

/// Sets `SO_BINDTODEVICE` to the interface `name` (no NUL); an empty name
/// unbinds.
///
/// # Errors
/// `InvalidInput`, before any syscall, when `name` is longer than
/// [`MAX_IFNAME_LEN`] or contains a NUL byte; EPERM without CAP_NET_RAW
/// (needed to re-bind or unbind a bound socket), ENODEV for an unknown
/// interface; otherwise as [`set_bytes`].
pub fn set_bind_device(fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    if name.len() > MAX_IFNAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "interface name is {} bytes; the kernel's limit is IFNAMSIZ - 1 = {MAX_IFNAME_LEN}",
                name.len()
            ),
        ));
    }
    if name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name contains a NUL byte",
        ));
    }
    set_bytes(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, name)
}

/// Reads `SO_BINDTODEVICE`: the interface name without its NUL, empty when
/// the socket is not bound to a device.
///
/// # Errors
/// As [`get_bytes`].
pub fn get_bind_device(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; libc::IFNAMSIZ];
    let len = get_bytes(fd, libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &mut buf)?;
    let name = &buf[..len.min(buf.len())];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(name[..end].to_vec())
}

/// Reads `SO_PEERCRED`: the credentials of the process that created the
/// peer socket, as they were at `connect`/`listen`/`socketpair` time.
///
/// A socket without a Unix peer reports pid 0 and uid/gid -1 (`u32::MAX`).
///
/// # Errors
/// As [`get`].
pub fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<super::msg::Credentials> {
    let c: libc::ucred = get(fd, libc::SOL_SOCKET, libc::SO_PEERCRED)?;
    Ok(super::msg::Credentials::from_ucred(c))
}

/// The kind of socket, as reported by `SO_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// `SOCK_STREAM`: TCP, or a Unix stream socket.
    Stream,
    /// `SOCK_DGRAM`: UDP, or a Unix datagram socket.
    Datagram,
    /// `SOCK_SEQPACKET`.
    SeqPacket,
    /// `SOCK_RAW`.
    Raw,
    /// Any other value, as the kernel reported it.
    Other(i32),
}

/// Reads `SO_TYPE`.
///
/// # Errors
/// As [`get`] (EBADF, ENOTSOCK).
pub fn socket_type(fd: BorrowedFd<'_>) -> io::Result<SocketType> {
    Ok(match get_int(fd, IntOpt::Type)? {
        libc::SOCK_STREAM => SocketType::Stream,
        libc::SOCK_DGRAM => SocketType::Datagram,
        libc::SOCK_SEQPACKET => SocketType::SeqPacket,
        libc::SOCK_RAW => SocketType::Raw,
        other => SocketType::Other(other),
    })
}

/// How long a TCP connection has been silent: the milliseconds since it
/// last sent or received a data segment, the smaller of `TCP_INFO`'s
/// `tcpi_last_data_sent` and `tcpi_last_data_recv` (the kernel counts both
/// from the handshake on, in jiffies: 1 to 10 ms). Pure ACKs and window
/// probes do not count: a peer that stopped reading is silent.
///
/// # Errors
/// As [`get`]: EOPNOTSUPP or ENOPROTOOPT for a socket that is not TCP
/// (a Unix socket, a socketpair), EBADF, ENOTSOCK.
pub fn tcp_silent_ms(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let info: libc::tcp_info = get(fd, libc::IPPROTO_TCP, libc::TCP_INFO)?;
    Ok(u64::from(
        info.tcpi_last_data_sent.min(info.tcpi_last_data_recv),
    ))
}

#[cfg(test)]
mod typed_tests {
    use super::*;

    #[test]
    fn timeval_rounds_up_and_rejects_zero() {
        let tv = timeval_of(Some(Duration::from_nanos(1))).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 1));
        let tv = timeval_of(Some(Duration::new(1, 999_999_001))).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (2, 0));
        let tv = timeval_of(None).unwrap();
        assert_eq!((tv.tv_sec, tv.tv_usec), (0, 0));
        let err = timeval_of(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let err = timeval_of(Some(Duration::MAX)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
