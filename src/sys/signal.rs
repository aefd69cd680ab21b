//! Signals: blocking them and reading them from a signalfd (how the loop
//! stops gracefully on SIGINT/SIGTERM), plus the handlers tests use to make
//! system calls fail with EINTR.

use super::fd::owned;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use libc::{SIGINT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2};

fn sigset(signals: &[i32]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is POD; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t.
    syscall!(sigemptyset(&mut set))?;
    for &sig in signals {
        // SAFETY: `set` is a valid, initialised sigset_t.
        syscall!(sigaddset(&mut set, sig))?;
    }
    Ok(set)
}

/// Blocks `signals` in the calling thread (`pthread_sigmask(SIG_BLOCK)`), so
/// that they queue for a signalfd instead of running their default action.
/// Threads spawned afterwards inherit the mask: call it before spawning.
///
/// # Errors
/// EINVAL for an invalid signal number.
pub fn block(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals)?;
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Unblocks `signals` in the calling thread.
///
/// # Errors
/// EINVAL for an invalid signal number.
pub fn unblock(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals)?;
    // SAFETY: as in `block`.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// A non-blocking, close-on-exec signalfd that reports `signals` (which the
/// caller must have blocked with [`block`]).
///
/// # Errors
/// EMFILE/ENFILE, EINVAL.
pub fn signalfd(signals: &[i32]) -> io::Result<OwnedFd> {
    let set = sigset(signals)?;
    // SAFETY: `set` is an initialised sigset_t; -1 asks for a new fd.
    let fd = syscall!(signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC))?;
    Ok(owned(fd))
}

/// Reads one pending signal from a signalfd: `Ok(Some(signo))`, or
/// `Ok(None)` when none is pending.
///
/// # Errors
/// EBADF.
pub fn read_signal(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    // SAFETY: signalfd_siginfo is POD.
    let mut info: libc::signalfd_siginfo = unsafe { mem::zeroed() };
    let size = mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is writable for `size` bytes.
    match syscall_retry!(read(
        fd.as_raw_fd(),
        (&mut info as *mut libc::signalfd_siginfo).cast(),
        size
    )) {
        Ok(n) if n as usize == size => Ok(Some(info.ssi_signo as i32)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

static DELIVERED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_sig: libc::c_int) {
    DELIVERED.fetch_add(1, Ordering::Relaxed);
}

/// Installs a handler for `sig` that only counts deliveries. With
/// `restart == false` (no `SA_RESTART`) a blocking call the signal
/// interrupts fails with EINTR, which is what tests use to prove that every
/// wrapper retries it.
///
/// # Errors
/// EINVAL for SIGKILL/SIGSTOP or an invalid number.
pub fn install_counting_handler(sig: i32, restart: bool) -> io::Result<()> {
    // SAFETY: sigaction is POD; zeroed means empty mask, no flags.
    let mut act: libc::sigaction = unsafe { mem::zeroed() };
    act.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as usize;
    act.sa_flags = if restart { libc::SA_RESTART } else { 0 };
    // SAFETY: `act` is initialised; the handler only touches an atomic,
    // which is async-signal-safe; a null old-action pointer is allowed.
    syscall!(sigaction(sig, &act, std::ptr::null_mut()))?;
    Ok(())
}

/// How many signals the counting handler has seen (all signals together).
pub fn delivered_count() -> usize {
    DELIVERED.load(Ordering::Relaxed)
}

/// Sets `sig` to be ignored (`SIG_IGN`).
///
/// # Errors
/// EINVAL for SIGKILL/SIGSTOP.
pub fn ignore(sig: i32) -> io::Result<()> {
    // SAFETY: SIG_IGN is a valid disposition for any catchable signal.
    let old = unsafe { libc::signal(sig, libc::SIG_IGN) };
    if old == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the default action for `sig` (`SIG_DFL`); tests use it to make
/// SIGPIPE deadly again and prove that nothing raises it.
///
/// # Errors
/// EINVAL for an invalid number.
pub fn set_default(sig: i32) -> io::Result<()> {
    // SAFETY: SIG_DFL is a valid disposition for any signal.
    let old = unsafe { libc::signal(sig, libc::SIG_DFL) };
    if old == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An opaque id of a thread, to direct a signal at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadId(libc::pthread_t);

/// The calling thread's id (`pthread_self`).
pub fn current_thread() -> ThreadId {
    // SAFETY: pthread_self has no preconditions.
    ThreadId(unsafe { libc::pthread_self() })
}

/// Sends `sig` to one thread of this process (`pthread_kill`).
///
/// # Errors
/// ESRCH when the thread has exited; EINVAL for a bad signal.
pub fn signal_thread(thread: ThreadId, sig: i32) -> io::Result<()> {
    // SAFETY: pthread_kill takes a thread id and a number, no pointers. A
    // stale id is undefined behaviour in POSIX; callers pass ids of threads
    // they have joined only after the last call.
    let rc = unsafe { libc::pthread_kill(thread.0, sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Sends `sig` to a process (`kill`).
///
/// # Errors
/// ESRCH when no such process; EPERM.
pub fn kill(pid: u32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes no pointers.
    syscall!(kill(pid as libc::pid_t, sig))?;
    Ok(())
}
