//! The system-call layer: the only module of sockloop that contains `unsafe`.
//!
//! Every Linux call the crate makes is wrapped here exactly once. A wrapper
//! takes safe Rust types (`BorrowedFd`, slices, `SocketAddr`), returns
//! `io::Result` built from `errno` (`io::Error::last_os_error()`), and its
//! `unsafe` block carries a `// SAFETY:` comment saying why the call is sound.
//!
//! EINTR is retried inside the wrappers of calls that are safe to restart
//! (`read`, `write`, `readv`, `send`, `sendmsg`, `recv`, `accept4`,
//! `epoll_wait`). It is *not* retried for `close`: on Linux the descriptor is
//! released even when `close` reports EINTR, so a retry could close a
//! descriptor that another thread has just been given. It is not retried for
//! `connect` either: a second `connect` on an interrupted socket returns
//! EALREADY; the connection proceeds asynchronously and is completed by
//! waiting for writability and reading `SO_ERROR`, exactly as after
//! EINPROGRESS.
//!
//! With the `fault-injection` feature, the I/O wrappers consult [`fault`]
//! first and may fail on purpose; see that module.
//!
//! In the event path `sys` is the bottom: every read, write, `epoll_wait`
//! and `setsockopt` the layers above make ends in one of these wrappers.
//!
//! # Stability
//!
//! `sys` is public as the *learner's layer*: it is meant to be read next to
//! the notes and called when the typed layers do not cover a need. It is
//! not the crate's public face, and its promise is weaker:
//!
//! * The public face (the items re-exported at the crate root, and the
//!   `net`, `options`, `io`, `poll`, `timer`, `buffer` and `reactor`
//!   modules) follows semver, and an item is deprecated for one minor
//!   release before it is removed.
//! * A `sys` wrapper's signature may change, or the wrapper may go, in any
//!   minor release (0.x -> 0.(x+1)), without deprecation. Patch releases
//!   never break it. Every such change is listed in CHANGELOG.md.
//! * Types that the public face hands out (`addr::UnixAddr`,
//!   `msg::Credentials`, `filter::SockFilter`, `sockopt::SocketType`, the
//!   signal numbers) follow the public face's rule wherever they are named.

/// Calls a `libc` function and turns the C convention "-1 and errno" into
/// `io::Result`; `syscall!(direct::name(...))` calls the function of
/// [`direct`] instead, whose `-errno` it turns into `io::Result` the same
/// way.
///
/// The caller writes the `unsafe` block's justification as a `// SAFETY:`
/// comment directly above the macro invocation.
macro_rules! syscall {
    (direct :: $fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        let res = unsafe { $crate::sys::direct::$fn($($arg),*) };
        if res < 0 {
            Err(std::io::Error::from_raw_os_error(-res as i32))
        } else {
            Ok(res)
        }
    }};
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe)]
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

/// Like `syscall!`, but retries while the call fails with EINTR.
///
/// The form `syscall_retry!(op => f(args))` also consults the fault plan
/// (`fault::interrupt(op)`) on every attempt, so that an injected EINTR
/// takes the same retry arm as a real one.
macro_rules! syscall_retry {
    ($($fn:ident)::+ ( $($arg:expr),* $(,)? )) => {{
        loop {
            match syscall!($($fn)::+($($arg),*)) {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                    $crate::sys::fault::note_retry();
                    continue;
                }
                other => break other,
            }
        }
    }};
    ($op:expr => $($fn:ident)::+ ( $($arg:expr),* $(,)? )) => {{
        loop {
            let res = match $crate::sys::fault::interrupt($op) {
                Some(injected) => Err(injected),
                None => syscall!($($fn)::+($($arg),*)),
            };
            match res {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                    $crate::sys::fault::note_retry();
                    continue;
                }
                other => break other,
            }
        }
    }};
}

pub mod addr;
pub mod caps;
pub mod cpu;
mod direct;
pub mod epoll;
pub mod errno;
pub mod eventfd;
pub mod fault;
pub mod fd;
pub mod filter;
pub mod io;
pub mod msg;
pub mod resource;
pub mod rlimit;
pub mod signal;
pub mod socket;
pub mod sockopt;
pub mod time;
pub mod timerfd;
pub mod udp;
