//! `std::net::SocketAddr` to and from the kernel's `sockaddr_*` structures.
//!
//! The notes' "sockaddr vs sockaddr_in" chapter: `struct sockaddr` is only a
//! generic header that system calls take by pointer; the real storage is a
//! family-specific struct (`sockaddr_in`, 16 bytes, or `sockaddr_in6`, 28
//! bytes) whose first field is the family. The notes' "always 16 bytes" is
//! only true of IPv4: that is why we receive into `sockaddr_storage` (128
//! bytes, big enough for every family) and pass the real length, never
//! `sizeof(struct sockaddr)`. Ports and IPv4 addresses are in network byte
//! order in the structs; `std` types are in host order.

use std::ffi::OsStr;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A socket address in the kernel's layout, with its length.
#[derive(Clone, Copy)]
pub struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    /// An empty, zeroed address for the kernel to fill (accept, getsockname).
    pub fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
            storage: unsafe { mem::zeroed() },
            len: mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// Pointer and length to pass to `bind`/`connect`/`sendto`.
    pub fn as_ptr(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        (
            (&self.storage as *const libc::sockaddr_storage).cast(),
            self.len,
        )
    }

    /// Pointer and in/out length to pass to `accept`/`getsockname`/`recvfrom`.
    pub fn as_mut_ptr(&mut self) -> (*mut libc::sockaddr, *mut libc::socklen_t) {
        (
            (&mut self.storage as *mut libc::sockaddr_storage).cast(),
            &mut self.len,
        )
    }

    /// The address family (`AF_INET`, `AF_INET6`, `AF_UNIX`, ...).
    pub fn family(&self) -> libc::sa_family_t {
        self.storage.ss_family
    }

    /// The length the kernel reported (or that `from_socket_addr` set).
    pub fn len(&self) -> libc::socklen_t {
        self.len
    }

    /// True when the kernel reported a zero-length address (unnamed socket).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw storage, for families other than IP (Unix sockets).
    pub fn storage(&self) -> &libc::sockaddr_storage {
        &self.storage
    }

    /// Builds a raw address from storage the caller filled and its length.
    pub fn from_parts(storage: libc::sockaddr_storage, len: libc::socklen_t) -> RawAddr {
        RawAddr { storage, len }
    }
}

/// Converts a `SocketAddr` into a `sockaddr_in` or `sockaddr_in6`.
pub fn from_socket_addr(addr: &SocketAddr) -> RawAddr {
    let mut raw = RawAddr::empty();
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned
            // for sockaddr_in; we write one sockaddr_in at its start.
            unsafe {
                std::ptr::write(
                    (&mut raw.storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>(),
                    sin,
                )
            };
            raw.len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                std::ptr::write(
                    (&mut raw.storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                )
            };
            raw.len = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        }
    }
    raw
}

/// Converts a kernel-filled address back into a `SocketAddr`.
///
/// # Errors
/// `InvalidInput` when the family is not `AF_INET`/`AF_INET6` or the length
/// is too short for it.
pub fn to_socket_addr(raw: &RawAddr) -> io::Result<SocketAddr> {
    let len = raw.len as usize;
    match raw.storage.ss_family as libc::c_int {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, and
            // the length says it is complete; storage is aligned for it.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((&raw.storage as *const libc::sockaddr_storage).cast()) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&raw.storage as *const libc::sockaddr_storage).cast()) };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an IP socket address (family {family}, length {len})"),
        )),
    }
}

/// A Unix-domain socket address, decoded from a `sockaddr_un`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixAddr {
    /// No name: a socket that was never bound (the usual peer of `accept`).
    Unnamed,
    /// A filesystem path.
    Pathname(PathBuf),
    /// A Linux abstract name (no file; `sun_path` starts with a NUL byte).
    /// The bytes exclude that leading NUL.
    Abstract(Vec<u8>),
}

/// Bytes available in `sun_path` (108 on Linux).
fn sun_path_capacity() -> usize {
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    sun.sun_path.len()
}

/// Offset of `sun_path` in `sockaddr_un` (2 on Linux: after `sun_family`).
fn sun_path_offset() -> usize {
    // Not `mem::offset_of!`: that needs Rust 1.77 and the crate's MSRV is 1.75.
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    (sun.sun_path.as_ptr() as usize) - (&sun as *const libc::sockaddr_un as usize)
}

/// Builds a `sockaddr_un` whose `sun_path` starts with `bytes`, with the
/// address length `offset + path_len`.
fn unix_raw(bytes: &[u8], path_len: usize) -> RawAddr {
    // SAFETY: sockaddr_un is plain old data; all-zero is valid.
    let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in sun.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let mut raw = RawAddr::empty();
    // SAFETY: sockaddr_storage (128 bytes) is larger than and suitably
    // aligned for sockaddr_un (110 bytes); we write one at its start.
    unsafe {
        std::ptr::write(
            (&mut raw.storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_un>(),
            sun,
        )
    };
    raw.len = (sun_path_offset() + path_len) as libc::socklen_t;
    raw
}

/// Converts a filesystem path into a `sockaddr_un`.
///
/// The path is stored NUL-terminated, so it may be at most 107 bytes long
/// (`sun_path` is 108 bytes). A relative path is resolved by the kernel
/// against the current directory at `bind`/`connect` time.
///
/// # Errors
/// `InvalidInput` when the path is empty, contains a NUL byte, or is longer
/// than 107 bytes.
pub fn from_unix_path(path: &Path) -> io::Result<RawAddr> {
    let bytes = path.as_os_str().as_bytes();
    let max = sun_path_capacity() - 1;
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty Unix socket path",
        ));
    }
    if bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Unix socket path contains a NUL byte",
        ));
    }
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "Unix socket path is {} bytes; sun_path holds at most {max} plus the NUL",
                bytes.len()
            ),
        ));
    }
    Ok(unix_raw(bytes, bytes.len() + 1))
}

/// Converts a Linux abstract socket name (no leading NUL; any bytes) into a
/// `sockaddr_un`. Abstract names live in the network namespace, not the
/// filesystem, and vanish when the last socket bound to them is closed.
///
/// # Errors
/// `InvalidInput` when the name is longer than 107 bytes.
pub fn from_abstract_name(name: &[u8]) -> io::Result<RawAddr> {
    let max = sun_path_capacity() - 1;
    if name.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "abstract socket name is {} bytes; sun_path holds at most {max} after the NUL",
                name.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(name.len() + 1);
    bytes.push(0);
    bytes.extend_from_slice(name);
    Ok(unix_raw(&bytes, bytes.len()))
}

/// Decodes a kernel-filled `sockaddr_un`.
///
/// # Errors
/// `InvalidInput` when the family is not `AF_UNIX`.
pub fn to_unix_addr(raw: &RawAddr) -> io::Result<UnixAddr> {
    if raw.len == 0 {
        return Ok(UnixAddr::Unnamed);
    }
    if raw.storage.ss_family as libc::c_int != libc::AF_UNIX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a Unix socket address (family {})",
                raw.storage.ss_family
            ),
        ));
    }
    // SAFETY: the family says the storage holds a sockaddr_un; storage is
    // large enough and aligned for it, and every bit pattern is valid.
    let sun: libc::sockaddr_un =
        unsafe { std::ptr::read((&raw.storage as *const libc::sockaddr_storage).cast()) };
    let path_len = (raw.len as usize)
        .saturating_sub(sun_path_offset())
        .min(sun.sun_path.len());
    let path: Vec<u8> = sun.sun_path[..path_len].iter().map(|&c| c as u8).collect();
    Ok(match path.first() {
        None => UnixAddr::Unnamed,
        Some(0) => UnixAddr::Abstract(path[1..].to_vec()),
        Some(_) => {
            let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
            UnixAddr::Pathname(PathBuf::from(OsStr::from_bytes(&path[..end])))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_round_trip_keeps_network_byte_order() {
        let addr: SocketAddr = "127.1.2.3:8080".parse().unwrap();
        let raw = from_socket_addr(&addr);
        assert_eq!(raw.len() as usize, mem::size_of::<libc::sockaddr_in>());
        assert_eq!(raw.family() as i32, libc::AF_INET);
        // The port's bytes are big-endian in the struct: 8080 = 0x1f90.
        let bytes: [u8; 4] = unsafe_free_bytes(&raw);
        assert_eq!(&bytes[2..4], &[0x1f, 0x90]);
        assert_eq!(to_socket_addr(&raw).unwrap(), addr);
    }

    #[test]
    fn v6_round_trip_keeps_scope_and_flow() {
        let addr = SocketAddr::V6(SocketAddrV6::new("fe80::1:2".parse().unwrap(), 443, 7, 3));
        let raw = from_socket_addr(&addr);
        assert_eq!(raw.len() as usize, mem::size_of::<libc::sockaddr_in6>());
        assert_eq!(to_socket_addr(&raw).unwrap(), addr);
    }

    #[test]
    fn short_or_foreign_addresses_are_errors() {
        let mut raw = from_socket_addr(&"127.0.0.1:1".parse().unwrap());
        raw.len = 4;
        assert!(to_socket_addr(&raw).is_err());
        assert!(to_socket_addr(&RawAddr::empty()).is_err());
    }

    #[test]
    fn unix_paths_round_trip_and_limits() {
        let raw = from_unix_path(Path::new("/tmp/x.sock")).unwrap();
        assert_eq!(raw.family() as i32, libc::AF_UNIX);
        assert_eq!(raw.len() as usize, 2 + "/tmp/x.sock".len() + 1);
        assert_eq!(
            to_unix_addr(&raw).unwrap(),
            UnixAddr::Pathname(PathBuf::from("/tmp/x.sock"))
        );
        let max = "a".repeat(107);
        assert!(from_unix_path(Path::new(&max)).is_ok());
        let long = "a".repeat(108);
        let err = from_unix_path(Path::new(&long)).err().map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::InvalidInput));
        assert!(from_unix_path(Path::new("")).is_err());
        let raw = from_abstract_name(b"sockloop").unwrap();
        assert_eq!(
            to_unix_addr(&raw).unwrap(),
            UnixAddr::Abstract(b"sockloop".to_vec())
        );
        assert!(from_abstract_name(&[b'a'; 108]).is_err());
        let unnamed = RawAddr::from_parts(*raw.storage(), 2);
        assert_eq!(to_unix_addr(&unnamed).unwrap(), UnixAddr::Unnamed);
    }

    fn unsafe_free_bytes(raw: &RawAddr) -> [u8; 4] {
        let (ptr, _) = raw.as_ptr();
        // SAFETY: the storage is at least 4 bytes long.
        unsafe { std::ptr::read(ptr.cast::<[u8; 4]>()) }
    }
}
