//! Thread capabilities: `capget(2)` / `capset(2)`.
//!
//! On Linux capabilities belong to a *thread*, not a process: the raw
//! `capset` system call changes only the calling thread's sets (glibc does
//! not broadcast it as it does `setuid`). The kernel checks the calling
//! thread's effective set when a socket option needs privilege, so a thread
//! that drops, say, CAP_NET_ADMIN from its effective set sees exactly what
//! an unprivileged server would (EACCES for `SO_DEBUG`, EPERM for
//! `SO_PRIORITY` > 6), while the rest of the process keeps its privilege.
//! That is how the tests reach the unprivileged error paths while running
//! as root. Only the effective set is changed, so this is not a security
//! boundary (the thread may raise it again): use a dedicated thread and let
//! it end.

use std::io;

/// `CAP_NET_ADMIN`: network administration (`SO_DEBUG`, `SO_PRIORITY` > 6,
/// `SO_RCVBUFFORCE`, ...).
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_NET_RAW`: raw and packet sockets, re-binding `SO_BINDTODEVICE`,
/// `SO_PRIORITY` > 6 on recent kernels.
pub const CAP_NET_RAW: u32 = 13;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two 32-bit halves.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn check(cap: u32) -> io::Result<(usize, u32)> {
    if cap >= 64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("capability {cap} is out of range (0..64)"),
        ));
    }
    Ok(((cap / 32) as usize, 1u32 << (cap % 32)))
}

fn capget() -> io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` and the two-element `data` array have the layout of
    // `struct __user_cap_header_struct` / `__user_cap_data_struct[2]` that
    // version 3 expects; both are live and writable. pid 0 = this thread.
    syscall!(syscall(
        libc::SYS_capget,
        &mut header as *mut CapHeader,
        data.as_mut_ptr()
    ))?;
    Ok(data)
}

/// Whether the calling thread has `cap` in its effective set.
///
/// # Errors
/// `InvalidInput` for `cap` >= 64; the errno of `capget` (EINVAL for a
/// kernel without version-3 capabilities).
pub fn effective_has(cap: u32) -> io::Result<bool> {
    let (word, bit) = check(cap)?;
    Ok(capget()?[word].effective & bit != 0)
}

/// Clears `caps` from the calling thread's **effective** set (permitted and
/// inheritable stay). Other threads are not affected.
///
/// # Errors
/// `InvalidInput` for a capability >= 64; the errno of `capget`/`capset`
/// (EPERM cannot happen: lowering the effective set is always allowed).
pub fn drop_effective_in_this_thread(caps: &[u32]) -> io::Result<()> {
    let mut data = capget()?;
    for &cap in caps {
        let (word, bit) = check(cap)?;
        data[word].effective &= !bit;
    }
    let mut header = CapHeader {
        version: VERSION_3,
        pid: 0,
    };
    // SAFETY: as in `capget`; the kernel only reads `data` here.
    syscall!(syscall(
        libc::SYS_capset,
        &mut header as *mut CapHeader,
        data.as_ptr()
    ))?;
    Ok(())
}
