//! RLIMIT_NOFILE: how many descriptors the process may hold.

use std::io;

/// The `(soft, hard)` limits on open descriptors.
///
/// # Errors
/// The errno of `getrlimit` (none expected on Linux).
pub fn nofile() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Sets the `(soft, hard)` limits on open descriptors. Lowering the hard
/// limit is permanent for an unprivileged process.
///
/// # Errors
/// EPERM when raising the hard limit without CAP_SYS_RESOURCE; EINVAL when
/// soft > hard.
pub fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `lim` is a valid rlimit the kernel only reads.
    syscall!(setrlimit(libc::RLIMIT_NOFILE, &lim))?;
    Ok(())
}

/// Raises the soft limit to the hard limit, as servers should at start:
/// the default soft limit (often 1024) is far below what a reactor can
/// serve. Returns the new soft limit.
///
/// # Errors
/// As [`set_nofile`].
pub fn raise_nofile_to_hard() -> io::Result<u64> {
    let (soft, hard) = nofile()?;
    if soft < hard {
        set_nofile(hard, hard)?;
    }
    Ok(hard)
}
