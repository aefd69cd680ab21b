//! The hot calls made straight to the kernel, past glibc's wrappers.
//!
//! glibc's `read`, `send`, `epoll_wait` and the like are POSIX cancellation
//! points: in a process with more than one thread, every call brackets the
//! system call with `__pthread_enable_asynccancel` and
//! `__pthread_disable_asynccancel` (about 90 user-space instructions per
//! call, callgrind). sockloop never cancels a thread, so it gains nothing
//! from them, and a cluster of loops paid them three times per echo round
//! trip: 568 instructions per round trip on one loop, 717 on two
//! (`bench/instructions.sh --only sockloop-echo,sockloop-echo-2loops`).
//! Through glibc's generic `syscall(3)` the two loops cost 616, but one
//! loop 606: `syscall(3)` shuffles seven arguments and goes through the
//! PLT and `errno`. So on x86-64 and AArch64 these functions execute the
//! system-call instruction themselves (`syscall`, `svc 0`; the registers
//! of the kernel's ABI, `man 2 syscall`), which is what rustix's
//! `linux_raw` backend and Go's runtime do, and return the kernel's answer
//! as it is: a non-negative result, or `-errno`. Other architectures go
//! through `libc::syscall`.
//!
//! Only the calls of the event path are here (`read`, `readv`, `send`,
//! `sendmsg`, `recv`, `epoll_wait`, `accept4`); everything else keeps its
//! libc wrapper. The safe wrappers in [`super::io`], [`super::epoll`] and
//! [`super::socket`] call these through `syscall!(direct::name(...))`,
//! which turns `-errno` into `io::Error`.

use libc::{c_int, c_long, c_void, size_t};

/// A raw system call with up to six arguments. Returns what the kernel
/// returned: `>= 0` on success, `-errno` (in `-4095..=-1`) on failure.
///
/// # Safety
/// The caller upholds the contract of system call `nr` for these
/// arguments (pointers valid for what the kernel reads or writes).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn raw6(nr: c_long, a: [c_long; 6]) -> c_long {
    let ret: c_long;
    // SAFETY: the x86-64 Linux system-call ABI: number in rax, arguments in
    // rdi, rsi, rdx, r10, r8, r9; the kernel returns in rax and clobbers
    // rcx and r11 (and nothing else, not the stack, not the flags, which
    // sysret restores from r11). The caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// [`raw6`] for a call of three arguments: the three unused argument
/// registers are left as they are rather than zeroed (the kernel reads
/// only the arguments of the call it makes).
///
/// # Safety
/// As [`raw6`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn raw3(nr: c_long, a: [c_long; 3]) -> c_long {
    let ret: c_long;
    // SAFETY: as in `raw6`, with the arguments in rdi, rsi, rdx only.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// [`raw6`] for a call of four arguments (see [`raw3`]).
///
/// # Safety
/// As [`raw6`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn raw4(nr: c_long, a: [c_long; 4]) -> c_long {
    let ret: c_long;
    // SAFETY: as in `raw6`, with the arguments in rdi, rsi, rdx, r10 only.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// Elsewhere a call of three arguments is [`raw6`] with zeros after them.
///
/// # Safety
/// As [`raw6`].
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn raw3(nr: c_long, a: [c_long; 3]) -> c_long {
    // SAFETY: the caller vouches for the arguments of `nr`.
    unsafe { raw6(nr, [a[0], a[1], a[2], 0, 0, 0]) }
}

/// Elsewhere a call of four arguments is [`raw6`] with zeros after them.
///
/// # Safety
/// As [`raw6`].
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
unsafe fn raw4(nr: c_long, a: [c_long; 4]) -> c_long {
    // SAFETY: the caller vouches for the arguments of `nr`.
    unsafe { raw6(nr, [a[0], a[1], a[2], a[3], 0, 0]) }
}

/// As the x86-64 version: number in x8, arguments in x0..x5, result in x0.
///
/// # Safety
/// As the x86-64 version.
#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn raw6(nr: c_long, a: [c_long; 6]) -> c_long {
    let ret: c_long;
    // SAFETY: the AArch64 Linux system-call ABI (`svc 0`): number in x8,
    // arguments in x0..x5, result in x0; no other register is changed.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] => ret,
            in("x1") a[1],
            in("x2") a[2],
            in("x3") a[3],
            in("x4") a[4],
            in("x5") a[5],
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// Elsewhere: glibc's generic `syscall(3)`, which reports through `errno`;
/// turned back into `-errno` here.
///
/// # Safety
/// As the x86-64 version.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
unsafe fn raw6(nr: c_long, a: [c_long; 6]) -> c_long {
    // SAFETY: the caller vouches for the arguments of `nr`.
    let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if r == -1 {
        -(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO) as c_long)
    } else {
        r
    }
}

/// `read(2)`.
///
/// # Safety
/// `buf` is valid for writes of `count` bytes.
#[inline(always)]
pub(super) unsafe fn read(fd: c_int, buf: *mut c_void, count: size_t) -> c_long {
    // SAFETY: the caller's promise is `read`'s whole contract.
    unsafe {
        raw3(
            libc::SYS_read,
            [fd as c_long, buf as c_long, count as c_long],
        )
    }
}

/// `readv(2)`.
///
/// # Safety
/// `iov` points at `cnt` iovecs that describe writable buffers.
#[inline(always)]
pub(super) unsafe fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> c_long {
    // SAFETY: as for `read`.
    unsafe {
        raw3(
            libc::SYS_readv,
            [fd as c_long, iov as c_long, cnt as c_long],
        )
    }
}

/// `send(2)`: the kernel's `sendto` with no address.
///
/// # Safety
/// `buf` is valid for reads of `len` bytes.
#[inline(always)]
pub(super) unsafe fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> c_long {
    // SAFETY: as for `read`; a null address of length 0 is `send`.
    unsafe {
        raw6(
            libc::SYS_sendto,
            [
                fd as c_long,
                buf as c_long,
                len as c_long,
                flags as c_long,
                0,
                0,
            ],
        )
    }
}

/// `sendmsg(2)`.
///
/// # Safety
/// `msg` points at a valid `msghdr` whose buffers are readable.
#[inline(always)]
pub(super) unsafe fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> c_long {
    // SAFETY: as for `read`.
    unsafe {
        raw3(
            libc::SYS_sendmsg,
            [fd as c_long, msg as c_long, flags as c_long],
        )
    }
}

/// `recv(2)`: the kernel's `recvfrom` with no address.
///
/// # Safety
/// `buf` is valid for writes of `len` bytes.
#[inline(always)]
pub(super) unsafe fn recv(fd: c_int, buf: *mut c_void, len: size_t, flags: c_int) -> c_long {
    // SAFETY: as for `read`; a null address pointer is `recv`.
    unsafe {
        raw6(
            libc::SYS_recvfrom,
            [
                fd as c_long,
                buf as c_long,
                len as c_long,
                flags as c_long,
                0,
                0,
            ],
        )
    }
}

/// `epoll_wait(2)`. On x86-64 the kernel's `epoll_wait` (four arguments);
/// elsewhere its `epoll_pwait` with no signal mask, which every
/// architecture has (`epoll_wait` itself is missing on AArch64).
///
/// # Safety
/// `events` is valid for writes of `max` entries.
#[inline(always)]
pub(super) unsafe fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let args = [
        epfd as c_long,
        events as c_long,
        max as c_long,
        timeout as c_long,
    ];
    // SAFETY: as for `read`; the count or -errno fits in an int.
    #[cfg(target_arch = "x86_64")]
    let r = unsafe { raw4(libc::SYS_epoll_wait, args) };
    // SAFETY: as for `read`; with a null mask the kernel changes no signal
    // mask and does not read the size argument.
    #[cfg(not(target_arch = "x86_64"))]
    let r = unsafe {
        raw6(
            libc::SYS_epoll_pwait,
            [args[0], args[1], args[2], args[3], 0, 8],
        )
    };
    r as c_int
}

/// `accept4(2)`.
///
/// # Safety
/// `addr`/`len` describe writable storage for the peer's address.
#[inline(always)]
pub(super) unsafe fn accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: as for `read`; a descriptor or -errno fits in an int.
    unsafe {
        raw4(
            libc::SYS_accept4,
            [fd as c_long, addr as c_long, len as c_long, flags as c_long],
        ) as c_int
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_comes_back_as_minus_errno() {
        let mut b = [0u8; 4];
        // SAFETY: `b` is writable for 4 bytes; -1 is no descriptor.
        let r = unsafe { read(-1, b.as_mut_ptr().cast(), b.len()) };
        assert_eq!(r, -(libc::EBADF as c_long));
    }

    #[test]
    fn a_read_and_a_send_move_bytes_over_a_socketpair() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        use std::os::fd::AsRawFd;
        let msg = b"direct";
        // SAFETY: `msg` is readable for its length.
        let n = unsafe {
            send(
                a.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        assert_eq!(n, msg.len() as c_long);
        let mut got = [0u8; 16];
        // SAFETY: `got` is writable for its length.
        let n = unsafe { read(b.as_raw_fd(), got.as_mut_ptr().cast(), got.len()) };
        assert_eq!(&got[..n as usize], msg);
    }
}
