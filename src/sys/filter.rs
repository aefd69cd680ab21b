//! Classic BPF socket filters: `SO_ATTACH_FILTER` / `SO_DETACH_FILTER`.
//!
//! A filter is a short program the kernel runs on every packet queued to
//! the socket, before it reaches the receive buffer; it returns how many
//! bytes of the packet to keep (0 drops it). For a UDP socket the packet
//! seen by the program starts at the UDP header, so the payload's first
//! byte is at offset 8. This module only moves the program into the kernel;
//! the instruction encoding is documented in `crate::options`.

use std::io;
use std::os::fd::BorrowedFd;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// The opcode: class | size | mode, e.g. `BPF_LD | BPF_B | BPF_ABS`.
    pub code: u16,
    /// Instructions to skip when a conditional jump is true.
    pub jt: u8,
    /// Instructions to skip when it is false.
    pub jf: u8,
    /// The constant operand (an offset, a value to compare, a return value).
    pub k: u32,
}

/// Opcode parts (`linux/filter.h`, `linux/bpf_common.h`).
pub mod op {
    /// Class: load into the accumulator.
    pub const LD: u16 = 0x00;
    /// Class: jump.
    pub const JMP: u16 = 0x05;
    /// Class: return.
    pub const RET: u16 = 0x06;
    /// Size: word (4 bytes, network order).
    pub const W: u16 = 0x00;
    /// Size: half word (2 bytes, network order).
    pub const H: u16 = 0x08;
    /// Size: byte.
    pub const B: u16 = 0x10;
    /// Mode: absolute offset into the packet.
    pub const ABS: u16 = 0x20;
    /// Jump if the accumulator equals `k`.
    pub const JEQ: u16 = 0x10;
    /// Jump if the accumulator is greater than `k`.
    pub const JGT: u16 = 0x20;
    /// Operand source: the constant `k`.
    pub const K: u16 = 0x00;
}

/// Longest program the kernel accepts (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// `setsockopt(SO_ATTACH_FILTER)` with `program`, replacing any filter the
/// socket had. The kernel checks the program (every jump in range, ends in a
/// return) before attaching it.
///
/// # Errors
/// `InvalidInput`, before any syscall, for an empty program or one longer
/// than [`MAX_INSNS`]; EINVAL from the kernel's checker for a malformed
/// program; ENOMEM; EPERM when the socket's filter was locked
/// (`SO_LOCK_FILTER`); EBADF, ENOTSOCK.
pub fn attach(fd: BorrowedFd<'_>, program: &[SockFilter]) -> io::Result<()> {
    if program.is_empty() || program.len() > MAX_INSNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a BPF program needs 1..={MAX_INSNS} instructions, got {}",
                program.len()
            ),
        ));
    }
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        // The kernel only reads the program; the cast to *mut is the C
        // struct's field type, not a licence to write.
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // `SockFilter` is repr(C) with the layout of `struct sock_filter` (u16,
    // u8, u8, u32), so `prog` describes `program.len()` live instructions;
    // the kernel copies the program before `setsockopt` returns.
    super::sockopt::set(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, prog)?;
    Ok(())
}

/// `setsockopt(SO_DETACH_FILTER)`: removes the socket's filter.
///
/// # Errors
/// ENOENT when no filter is attached; EPERM when it is locked; EBADF,
/// ENOTSOCK.
pub fn detach(fd: BorrowedFd<'_>) -> io::Result<()> {
    super::sockopt::set::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, 0)
}

impl SockFilter {
    /// A non-jump instruction: `code` with operand `k`.
    pub const fn stmt(code: u16, k: u32) -> SockFilter {
        SockFilter {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A conditional jump: compare with `k`, skip `jt` instructions when
    /// true and `jf` when false.
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }
}
