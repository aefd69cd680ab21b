//! `sendto` with flags and `recvmsg` with ancillary (control) data.
//!
//! [`send_to`] is the one wrapper of `sendto(2)`: datagram sends
//! ([`super::udp`]) and the flag-carrying stream sends (`MSG_OOB`,
//! `MSG_DONTROUTE`) go through it. [`recv_msg`] is `recvmsg(2)` with room
//! for the control messages the kernel attaches when a socket option asks
//! for them: `SCM_TIMESTAMP` (`SO_TIMESTAMP`), `SCM_TIMESTAMPNS`
//! (`SO_TIMESTAMPNS`) and `SCM_CREDENTIALS` (`SO_PASSCRED`). It decodes
//! them into [`Ancillary`], so no caller outside `sys` walks a `cmsghdr`.

use super::addr::RawAddr;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `MSG_OOB`: send or receive TCP urgent ("out-of-band") data.
pub const MSG_OOB: i32 = libc::MSG_OOB;
/// `MSG_DONTROUTE`: send only to a directly reachable destination (no
/// gateway), for this one call; `SO_DONTROUTE` does it for every call.
pub const MSG_DONTROUTE: i32 = libc::MSG_DONTROUTE;

/// `sendto(2)` with `MSG_NOSIGNAL | flags`. With `to = None` the address is
/// omitted (a connected socket's peer; the form TCP needs).
///
/// # Errors
/// EAGAIN when the send buffer is full; EMSGSIZE for a datagram larger than
/// the protocol allows; EACCES for a broadcast address without
/// `SO_BROADCAST`; ENETUNREACH when `MSG_DONTROUTE`/`SO_DONTROUTE` forbids
/// the gateway the destination needs; ECONNREFUSED left over from an ICMP
/// error; EPIPE/ECONNRESET on a stream that is closed or reset; EOPNOTSUPP
/// for `MSG_OOB` on a socket without urgent data (UDP, Unix).
pub fn send_to(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    to: Option<&RawAddr>,
    flags: i32,
) -> io::Result<usize> {
    let (ptr, len) = match to {
        Some(raw) => raw.as_ptr(),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes; `ptr` is null
    // with length 0, or points at `len` initialised bytes of a sockaddr that
    // outlives the call.
    let n = syscall_retry!(sendto(
        fd.as_raw_fd(),
        buf.as_ptr().cast(),
        buf.len(),
        libc::MSG_NOSIGNAL | flags,
        ptr,
        len
    ))?;
    Ok(n as usize)
}

/// A process's credentials as the kernel reports them (`struct ucred`):
/// for `SO_PEERCRED`, the peer's at `connect`/`socketpair` time; for
/// `SCM_CREDENTIALS`, the sender's at `sendmsg` time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Process id (in the receiver's pid namespace; 0 if not visible there).
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

impl Credentials {
    pub(crate) fn from_ucred(c: libc::ucred) -> Credentials {
        Credentials {
            pid: c.pid,
            uid: c.uid,
            gid: c.gid,
        }
    }
}

/// The decoded control messages of one `recvmsg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ancillary {
    /// `SCM_TIMESTAMP`: the receive time, `(seconds, microseconds)` since the
    /// Unix epoch (`CLOCK_REALTIME`).
    pub timestamp_us: Option<(i64, i64)>,
    /// `SCM_TIMESTAMPNS`: the receive time, `(seconds, nanoseconds)`.
    pub timestamp_ns: Option<(i64, i64)>,
    /// `SCM_CREDENTIALS`: the sender's credentials.
    pub credentials: Option<Credentials>,
    /// `MSG_CTRUNC` was set: the control buffer was too small and some
    /// control data was lost.
    pub truncated: bool,
}

/// One message received by [`recv_msg`].
#[derive(Clone, Copy)]
pub struct RecvMsg {
    /// The message's real length (`MSG_TRUNC`: may exceed the buffer).
    pub len: usize,
    /// The sender's address (empty for connected or unnamed senders).
    pub from: RawAddr,
    /// The decoded control messages.
    pub ancillary: Ancillary,
}

/// Room for every control message we ask for at once: a `timeval`, a
/// `timespec` and a `ucred`, each with its `cmsghdr`, with margin. `u64`
/// elements keep it aligned for `cmsghdr`.
const CONTROL_WORDS: usize = 32;

/// `recvmsg(2)` with `MSG_TRUNC | flags` into `buf`, collecting the sender's
/// address and the control messages listed in [`Ancillary`] (others are
/// skipped).
///
/// # Errors
/// EAGAIN when nothing is queued on a non-blocking socket; ECONNREFUSED
/// left over from an ICMP error; any other errno of `recvmsg`.
pub fn recv_msg(fd: BorrowedFd<'_>, buf: &mut [u8], flags: i32) -> io::Result<RecvMsg> {
    let mut control = [0u64; CONTROL_WORDS];
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is a valid "no name, no control" header.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `storage`, `iov` (describing `buf`) and
    // `control`, all live and writable for the lengths given; the kernel
    // writes at most those lengths and updates the length fields.
    let n = syscall_retry!(recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC | flags))?;
    let mut anc = Ancillary {
        truncated: msg.msg_flags & libc::MSG_CTRUNC != 0,
        ..Ancillary::default()
    };
    // SAFETY: `msg` was filled by a successful recvmsg: `msg_control` and
    // the updated `msg_controllen` describe initialised control data inside
    // `control`, which CMSG_FIRSTHDR/CMSG_NXTHDR walk without leaving it.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: `cmsg` is non-null and points at a complete cmsghdr inside
        // `control` (CMSG_FIRSTHDR/CMSG_NXTHDR check that).
        let hdr = unsafe { &*cmsg };
        // SAFETY: as above; CMSG_DATA points just past the header.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        // SAFETY: CMSG_LEN of 0 is a pure computation.
        let header_len = unsafe { libc::CMSG_LEN(0) } as usize;
        let payload = (hdr.cmsg_len as usize).saturating_sub(header_len);
        match (hdr.cmsg_level, hdr.cmsg_type) {
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMP)
                if payload >= mem::size_of::<libc::timeval>() =>
            {
                // SAFETY: the kernel wrote a timeval there; read unaligned
                // because CMSG_DATA only promises cmsghdr alignment.
                let tv: libc::timeval = unsafe { std::ptr::read_unaligned(data.cast()) };
                // `as i64`: time_t and suseconds_t are 32-bit on some targets.
                anc.timestamp_us = Some((tv.tv_sec as i64, tv.tv_usec as i64));
            }
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS)
                if payload >= mem::size_of::<libc::timespec>() =>
            {
                // SAFETY: as above, a timespec.
                let ts: libc::timespec = unsafe { std::ptr::read_unaligned(data.cast()) };
                anc.timestamp_ns = Some((ts.tv_sec as i64, ts.tv_nsec as i64));
            }
            (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                if payload >= mem::size_of::<libc::ucred>() =>
            {
                // SAFETY: as above, a ucred.
                let c: libc::ucred = unsafe { std::ptr::read_unaligned(data.cast()) };
                anc.credentials = Some(Credentials::from_ucred(c));
            }
            _ => {}
        }
        // SAFETY: `msg` and `cmsg` are as above; CMSG_NXTHDR returns null at
        // the end of the control data.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok(RecvMsg {
        len: n as usize,
        from: RawAddr::from_parts(storage, msg.msg_namelen),
        ancillary: anc,
    })
}
