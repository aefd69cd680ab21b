//! CPUs: which ones this thread may run on, pinning a thread to one, which
//! one it runs on now, and the classic-BPF program that steers a
//! connection to the `SO_REUSEPORT` socket of the CPU that received it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The CPUs the calling thread may run on (`sched_getaffinity`), in
/// increasing order.
///
/// # Errors
/// The errno of `sched_getaffinity` (EINVAL if the kernel's mask is larger
/// than `cpu_set_t`, i.e. more than 1024 CPUs).
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is writable for size_of::<cpu_set_t>() bytes; pid 0 is
    // the calling thread.
    syscall!(sched_getaffinity(
        0,
        std::mem::size_of::<libc::cpu_set_t>(),
        &mut set
    ))?;
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: CPU_ISSET only reads the set, for cpu < the set's bit count.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread to `cpu` (`sched_setaffinity`).
///
/// # Errors
/// EINVAL when `cpu` is not online or outside the thread's cpuset; EPERM.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
    if cpu >= max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} is beyond cpu_set_t ({max} CPUs)"),
        ));
    }
    // SAFETY: as in `allowed_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes bit `cpu` < the set's bit count (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size we pass; pid 0 is the
    // calling thread.
    syscall!(sched_setaffinity(
        0,
        std::mem::size_of::<libc::cpu_set_t>(),
        &set
    ))?;
    Ok(())
}

/// The CPU the calling thread is running on now (`sched_getcpu`); it may
/// change right after unless the thread is pinned.
///
/// # Errors
/// ENOSYS on kernels without `getcpu`.
pub fn current_cpu() -> io::Result<usize> {
    // SAFETY: sched_getcpu takes no arguments.
    let cpu = syscall!(sched_getcpu())?;
    Ok(cpu as usize)
}

/// `SKF_AD_OFF + SKF_AD_CPU`: the classic-BPF "ancillary data" offset that
/// loads the number of the CPU processing the packet.
const SKF_AD_CPU_OFFSET: u32 = (-0x1000i32) as u32 + 36;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The program of [`attach_reuseport_cpu_program`]: load the CPU, return
/// the index of the socket whose loop is pinned to it, else CPU modulo the
/// group's size.
fn cpu_program(cpus: &[usize]) -> Vec<libc::sock_filter> {
    let mut prog = vec![stmt(
        libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
        SKF_AD_CPU_OFFSET,
    )];
    for (index, &cpu) in cpus.iter().enumerate() {
        // if A == cpu { return index } (jt 0: the next instruction; jf 1:
        // skip it).
        prog.push(libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: cpu as u32,
        });
        prog.push(stmt(libc::BPF_RET | libc::BPF_K, index as u32));
    }
    prog.push(stmt(
        libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K,
        cpus.len().max(1) as u32,
    ));
    prog.push(stmt(libc::BPF_RET | libc::BPF_A, 0));
    prog
}

/// Attaches to the `SO_REUSEPORT` group of `fd` a classic-BPF program
/// (`SO_ATTACH_REUSEPORT_CBPF`) that picks, for each new connection, the
/// socket at index `i` when the packet is processed on `cpus[i]` (the
/// sockets' indices are the order in which they joined the group), and
/// CPU modulo `cpus.len()` on a CPU not in the list. Call it once all
/// sockets of the group listen.
///
/// # Errors
/// `InvalidInput` for an empty list or more than 2000 CPUs; the errno of
/// `setsockopt`: EINVAL (not a reuseport socket, or a program the kernel
/// refuses), ENOPROTOOPT (kernel older than 4.5).
pub fn attach_reuseport_cpu_program(fd: BorrowedFd<'_>, cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() || cpus.len() > 2000 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the CPU list must hold 1 to 2000 entries",
        ));
    }
    let mut prog = cpu_program(cpus);
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `prog`, which outlives the call; the kernel
    // copies the program and only reads `len` instructions.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_ATTACH_REUSEPORT_CBPF,
        (&fprog as *const libc::sock_fprog).cast(),
        std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calling_thread_may_run_somewhere_and_knows_where() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        let now = current_cpu().unwrap();
        assert!(cpus.contains(&now), "running on {now}, allowed {cpus:?}");
    }

    #[test]
    fn a_pinned_thread_stays_on_its_cpu() {
        let cpus = allowed_cpus().unwrap();
        let last = *cpus.last().unwrap();
        std::thread::spawn(move || {
            pin_current_thread(last).unwrap();
            assert_eq!(allowed_cpus().unwrap(), vec![last]);
            assert_eq!(current_cpu().unwrap(), last);
        })
        .join()
        .unwrap();
        assert!(pin_current_thread(100_000).is_err());
    }

    #[test]
    fn the_program_maps_each_cpu_to_its_socket() {
        let prog = cpu_program(&[3, 5]);
        // ld cpu; jeq 3; ret 0; jeq 5; ret 1; mod 2; ret a
        assert_eq!(prog.len(), 7);
        assert_eq!(prog[0].k, SKF_AD_CPU_OFFSET);
        assert_eq!((prog[1].k, prog[2].k), (3, 0));
        assert_eq!((prog[3].k, prog[4].k), (5, 1));
        assert_eq!(prog[5].k, 2);
    }
}
