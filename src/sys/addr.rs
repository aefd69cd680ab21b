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

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

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

    fn unsafe_free_bytes(raw: &RawAddr) -> [u8; 4] {
        let (ptr, _) = raw.as_ptr();
        // SAFETY: the storage is at least 4 bytes long.
        unsafe { std::ptr::read(ptr.cast::<[u8; 4]>()) }
    }
}
