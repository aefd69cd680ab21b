//! Fault injection for tests: makes the I/O wrappers fail on purpose.
//!
//! Without the `fault-injection` feature every function here is an inlined
//! no-op and costs nothing. With it, a seeded plan decides, per call,
//! whether a wrapper is interrupted (EINTR), would block (EAGAIN), transfers
//! a single byte (short count), or fails with a reset, instead of doing its
//! work. The plan is off until [`configure`] is called, or until the first
//! wrapper call finds `SOCKLOOP_FAULT_SEED` in the environment (then
//! `SOCKLOOP_FAULT_RATE`, default 0.05, is the rate of each of EINTR, EAGAIN
//! and short counts, and `SOCKLOOP_FAULT_RESET_RATE`, default 0, the rate of
//! resets).
//!
//! # Determinism
//! The n-th decision of the plan is a pure function of `(seed, n)`. One
//! loop thread driven by the same client script sees the same faults for
//! the same seed as far as the order of its system calls repeats; network
//! timing can reorder calls, so a replay reproduces the fault *mix* exactly
//! and the fault *sequence* as far as the run's call order repeats.
//!
//! # Which injections are faithful
//! A fault is *faithful* when the real kernel could produce the same
//! observable sequence, so that a failure it provokes is a real bug and not
//! an artefact. Under edge-triggered epoll that rules out the naive
//! injections, and the plan corrects for it:
//!
//! - **EINTR** (read, readv, send, sendmsg, recv, accept4, epoll_wait): the
//!   injected error enters the wrapper's own retry loop (`syscall_retry!`)
//!   exactly where a real EINTR would, so the retry path itself is tested.
//!   Every retry is counted ([`Stats::retried`]). Always faithful.
//! - **EINTR on connect**: the real `connect` is issued first, and only if
//!   it started the handshake (EINPROGRESS or success) is EINTR returned
//!   instead. That is what Linux does: an interrupted connect carries on
//!   asynchronously. Injecting EINTR *without* issuing the connect would
//!   not be faithful (the socket would never become writable).
//! - **EAGAIN and short counts on reads and writes, EAGAIN on accept**: on
//!   their own these are *not* faithful. The loop takes EAGAIN or a short
//!   read to mean "drained", a short write to mean "send buffer full",
//!   clears its readiness flag and waits for the next edge. The kernel
//!   says EAGAIN only when the queue really is empty and a short count only
//!   when it really was drained (or full), so a new edge is guaranteed to
//!   follow once data arrives (or space frees). An injected one leaves data
//!   queued that produces no new edge: the connection hangs, and the bug
//!   would be the injector's. So each such injection also *owes an edge*:
//!   the descriptor is remembered, and before the next `epoll_wait` on the
//!   epoll instance it is registered with, it is re-armed with
//!   `EPOLL_CTL_MOD` (same events, same token), which makes epoll report it
//!   again if it is still ready. The modelled kernel behaviour is "the
//!   queue was empty (or full) at the instant of the call, and the data (or
//!   room) came right after": a real race, with the edge it really causes.
//!   No byte is lost: EAGAIN transfers nothing, a short count transfers a
//!   prefix. One more condition: EAGAIN and short counts on *reads* are
//!   injected only on TCP sockets that have not received the peer's FIN
//!   (`TCP_INFO` state ESTABLISHED/FIN_WAIT1/FIN_WAIT2). After the FIN,
//!   everything the peer sent is already queued, so the kernel's short read
//!   really means "only the FIN is left", and the loop relies on that
//!   (EPOLLRDHUP plus a short read ends the stream without another read).
//!   Injecting there would cut the stream: the first version of this module
//!   did, and the echo test caught the truncation.
//! - **Short epoll_wait**: the wait is given room for one event only. The
//!   events not returned stay on epoll's ready list for the next wait, as
//!   they do whenever a batch is larger than `maxevents`. Faithful.
//! - **ECONNRESET on reads and writes, ECONNABORTED on accept**: faithful
//!   as "the peer (or a middlebox) reset the connection" / "a queued
//!   connection was aborted before we took it". A reset ends that
//!   connection: a test must then accept a truncated stream (a prefix) for
//!   it, and check that nothing else is affected. Off by default.
//! - Not injected: EAGAIN on connect (for TCP it means "out of local
//!   ports", an error the caller reports, not a retry), and faults on the
//!   eventfd/signalfd/close/epoll_ctl calls (not byte I/O).

use std::io;
use std::os::fd::BorrowedFd;

/// The wrapped operation a fault decision is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `read`/`recv`.
    Read,
    /// `readv`.
    Readv,
    /// `write`/`send`.
    Write,
    /// `sendmsg` used as `writev`.
    Writev,
    /// `accept4`.
    Accept,
    /// `epoll_wait`.
    Wait,
    /// `connect`.
    Connect,
}

impl Op {
    /// Every operation, in counter order.
    pub const ALL: [Op; 7] = [
        Op::Read,
        Op::Readv,
        Op::Write,
        Op::Writev,
        Op::Accept,
        Op::Wait,
        Op::Connect,
    ];

    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    fn index(self) -> usize {
        self as usize
    }
}

/// The rates of each kind of fault, in faults per million calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rates {
    /// EINTR (retried inside the wrappers).
    pub eintr: u32,
    /// EAGAIN on reads, writes and accept (with the owed edge re-armed).
    pub eagain: u32,
    /// One-byte transfers on reads and writes (with the owed edge
    /// re-armed); one-event waits.
    pub short: u32,
    /// ECONNRESET on reads and writes, ECONNABORTED on accept.
    pub reset: u32,
}

impl Rates {
    /// The same rate (a fraction, e.g. 0.05) for EINTR, EAGAIN and short
    /// counts, and `reset` for resets.
    pub fn uniform(rate: f64, reset: f64) -> Rates {
        let per_million = |r: f64| (r.clamp(0.0, 1.0) * 1e6) as u32;
        Rates {
            eintr: per_million(rate),
            eagain: per_million(rate),
            short: per_million(rate),
            reset: per_million(reset),
        }
    }
}

/// The kinds of fault, in counter order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// EINTR.
    Eintr,
    /// EAGAIN.
    Eagain,
    /// A one-byte transfer (one event for `epoll_wait`).
    Short,
    /// ECONNRESET (ECONNABORTED for accept).
    Reset,
}

/// Counters of the faults a plan has injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Decisions taken (wrapper calls consulted).
    pub calls: u64,
    /// `injected[op][kind]`: faults of each kind per operation, indexed by
    /// `Op as usize` and `Kind as usize`.
    pub injected: [[u64; 4]; 7],
    /// EINTRs (injected or real) that a wrapper retried.
    pub retried: u64,
    /// Owed edges re-armed with `EPOLL_CTL_MOD` before a wait.
    pub rearmed: u64,
}

impl Stats {
    /// Faults of `kind` over every operation.
    pub fn total(&self, kind: Kind) -> u64 {
        self.injected.iter().map(|k| k[kind as usize]).sum()
    }

    /// Faults of every kind for `op`.
    pub fn of(&self, op: Op) -> u64 {
        self.injected[op as usize].iter().sum()
    }

    /// All faults injected.
    pub fn all(&self) -> u64 {
        self.injected.iter().flatten().sum()
    }
}

#[cfg(not(feature = "fault-injection"))]
mod imp {
    use super::*;

    #[inline(always)]
    pub fn limit(_op: Op, _fd: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        Ok(len)
    }
    #[inline(always)]
    pub fn interrupt(_op: Op) -> Option<io::Error> {
        None
    }
    #[inline(always)]
    pub fn note_retry() {}
    #[inline(always)]
    pub fn connect_interrupted() -> bool {
        false
    }
    #[inline(always)]
    pub fn wait_capacity(cap: usize) -> usize {
        cap
    }
    #[inline(always)]
    pub fn registered(_epfd: BorrowedFd<'_>, _fd: BorrowedFd<'_>, _events: u32, _data: u64) {}
    #[inline(always)]
    pub fn unregistered(_epfd: BorrowedFd<'_>, _fd: BorrowedFd<'_>) {}
    #[inline(always)]
    pub fn rearm_owed(_epfd: BorrowedFd<'_>) {}
    pub fn configure(_seed: u64, _rates: Rates) {}
    pub fn disable() {}
    pub fn stats() -> Stats {
        Stats::default()
    }
    pub fn seed() -> Option<u64> {
        None
    }
}

#[cfg(feature = "fault-injection")]
mod imp {
    use super::*;
    use std::collections::HashMap;
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Mutex, MutexGuard, Once};

    struct Plan {
        seed: u64,
        rates: Rates,
    }

    static ENABLED: AtomicBool = AtomicBool::new(false);
    static PLAN: Mutex<Option<Plan>> = Mutex::new(None);
    static STEP: AtomicU64 = AtomicU64::new(0);
    static CALLS: AtomicU64 = AtomicU64::new(0);
    static RETRIED: AtomicU64 = AtomicU64::new(0);
    static REARMED: AtomicU64 = AtomicU64::new(0);
    #[allow(clippy::declare_interior_mutable_const)]
    const ZERO: AtomicU64 = AtomicU64::new(0);
    static INJECTED: [AtomicU64; 28] = [ZERO; 28];
    static ENV: Once = Once::new();

    /// Registrations per (epfd, fd): (events, data), to re-arm owed edges.
    type Registrations = HashMap<(RawFd, RawFd), (u32, u64)>;
    static REGS: Mutex<Option<Registrations>> = Mutex::new(None);
    /// Descriptors owed an edge.
    static OWED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        // A panicking test thread must not wedge the plan for the others.
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn from_env() {
        ENV.call_once(|| {
            let Some(seed) = std::env::var("SOCKLOOP_FAULT_SEED")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            else {
                return;
            };
            let rate = |name: &str, default: f64| {
                std::env::var(name)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .unwrap_or(default)
            };
            let rates = Rates::uniform(
                rate("SOCKLOOP_FAULT_RATE", 0.05),
                rate("SOCKLOOP_FAULT_RESET_RATE", 0.0),
            );
            if !ENABLED.load(Ordering::Acquire) {
                configure(seed, rates);
                eprintln!("sockloop fault injection: seed {seed}, rates {rates:?}");
            }
        });
    }

    /// splitmix64: the n-th output for a seed, with no shared state beyond n.
    fn mix(seed: u64, n: u64) -> u64 {
        let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next decision: a number below one million, with the rates.
    fn roll() -> Option<(u32, Rates)> {
        from_env();
        if !ENABLED.load(Ordering::Acquire) {
            return None;
        }
        let (seed, rates) = {
            let plan = lock(&PLAN);
            let p = plan.as_ref()?;
            (p.seed, p.rates)
        };
        CALLS.fetch_add(1, Ordering::Relaxed);
        let n = STEP.fetch_add(1, Ordering::Relaxed);
        Some(((mix(seed, n) % 1_000_000) as u32, rates))
    }

    fn count(op: Op, kind: Kind) {
        INJECTED[op.index() * 4 + kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn owe(fd: RawFd) {
        lock(&OWED).push(fd);
    }

    pub fn limit(op: Op, fd: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        let Some((r, rates)) = roll() else {
            return Ok(len);
        };
        let bytes = matches!(op, Op::Read | Op::Readv | Op::Write | Op::Writev);
        let again = rates.eagain;
        let short = again.saturating_add(rates.short);
        let reset = short.saturating_add(rates.reset);
        let reads = matches!(op, Op::Read | Op::Readv);
        if (r < short) && reads && !before_peer_fin(fd) {
            // See "Which injections are faithful": once the peer's FIN has
            // arrived, every byte it sent is already queued, so the kernel
            // never answers a read with EAGAIN or a short count that a
            // later edge would make up for.
            return Ok(len);
        }
        if r < again && (bytes || op == Op::Accept) {
            count(op, Kind::Eagain);
            owe(fd.as_raw_fd());
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        if r >= again && r < short && bytes && len > 1 {
            count(op, Kind::Short);
            owe(fd.as_raw_fd());
            return Ok(1);
        }
        if r >= short && r < reset {
            if bytes {
                count(op, Kind::Reset);
                return Err(io::Error::from_raw_os_error(libc::ECONNRESET));
            }
            if op == Op::Accept {
                count(op, Kind::Reset);
                return Err(io::Error::from_raw_os_error(libc::ECONNABORTED));
            }
        }
        Ok(len)
    }

    /// True for a TCP socket that has not received the peer's FIN
    /// (ESTABLISHED, FIN_WAIT1, FIN_WAIT2; `TCP_INFO`). False for anything
    /// else, including non-TCP descriptors, whose state is not known.
    fn before_peer_fin(fd: BorrowedFd<'_>) -> bool {
        match super::super::sockopt::get::<libc::tcp_info>(fd, libc::IPPROTO_TCP, libc::TCP_INFO) {
            Ok(info) => matches!(
                i32::from(info.tcpi_state),
                1 /* ESTABLISHED */ | 4 /* FIN_WAIT1 */ | 5 /* FIN_WAIT2 */
            ),
            Err(_) => false,
        }
    }

    pub fn interrupt(op: Op) -> Option<io::Error> {
        let (r, rates) = roll()?;
        if r < rates.eintr && op != Op::Connect {
            count(op, Kind::Eintr);
            return Some(io::Error::from_raw_os_error(libc::EINTR));
        }
        None
    }

    pub fn note_retry() {
        RETRIED.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connect_interrupted() -> bool {
        match roll() {
            Some((r, rates)) if r < rates.eintr => {
                count(Op::Connect, Kind::Eintr);
                true
            }
            _ => false,
        }
    }

    pub fn wait_capacity(cap: usize) -> usize {
        match roll() {
            Some((r, rates)) if r < rates.short && cap > 1 => {
                count(Op::Wait, Kind::Short);
                1
            }
            _ => cap,
        }
    }

    pub fn registered(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>, events: u32, data: u64) {
        lock(&REGS)
            .get_or_insert_with(HashMap::new)
            .insert((epfd.as_raw_fd(), fd.as_raw_fd()), (events, data));
    }

    pub fn unregistered(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>) {
        if let Some(regs) = lock(&REGS).as_mut() {
            regs.remove(&(epfd.as_raw_fd(), fd.as_raw_fd()));
        }
    }

    pub fn rearm_owed(epfd: BorrowedFd<'_>) {
        let owed = std::mem::take(&mut *lock(&OWED));
        if owed.is_empty() {
            return;
        }
        let mut keep = Vec::new();
        let regs = lock(&REGS);
        for fd in owed {
            match regs.as_ref().and_then(|r| r.get(&(epfd.as_raw_fd(), fd))) {
                Some(&(events, data)) => {
                    // The descriptor may have been closed (EBADF) or its
                    // number reused by a file this epoll does not watch
                    // (ENOENT) since the fault: then nothing is owed.
                    if super::super::epoll::rearm(epfd, fd, events, data).is_ok() {
                        REARMED.fetch_add(1, Ordering::Relaxed);
                    }
                }
                // Registered with another epoll instance: its own wait
                // re-arms it.
                None => keep.push(fd),
            }
        }
        drop(regs);
        if !keep.is_empty() {
            let mut owed = lock(&OWED);
            // Bound the list: fds that no epoll knows (a machine driven
            // by hand, not by a loop) would otherwise accumulate.
            if owed.len() + keep.len() <= 4096 {
                owed.extend(keep);
            }
        }
    }

    pub fn configure(seed: u64, rates: Rates) {
        *lock(&PLAN) = Some(Plan { seed, rates });
        STEP.store(0, Ordering::Relaxed);
        CALLS.store(0, Ordering::Relaxed);
        RETRIED.store(0, Ordering::Relaxed);
        REARMED.store(0, Ordering::Relaxed);
        for c in &INJECTED {
            c.store(0, Ordering::Relaxed);
        }
        lock(&OWED).clear();
        ENABLED.store(true, Ordering::Release);
    }

    pub fn disable() {
        ENABLED.store(false, Ordering::Release);
        *lock(&PLAN) = None;
    }

    pub fn stats() -> Stats {
        let mut s = Stats {
            calls: CALLS.load(Ordering::Relaxed),
            retried: RETRIED.load(Ordering::Relaxed),
            rearmed: REARMED.load(Ordering::Relaxed),
            ..Stats::default()
        };
        for (i, c) in INJECTED.iter().enumerate() {
            s.injected[i / 4][i % 4] = c.load(Ordering::Relaxed);
        }
        s
    }

    pub fn seed() -> Option<u64> {
        lock(&PLAN).as_ref().map(|p| p.seed)
    }
}

/// Returns how many of `len` bytes the operation on `fd` may transfer, or
/// the error it must fail with (EAGAIN, ECONNRESET/ECONNABORTED). Called by
/// the wrappers before the system call. Without the feature: `Ok(len)`.
///
/// # Errors
/// Only with the `fault-injection` feature: the injected error.
#[inline(always)]
pub fn limit(op: Op, fd: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    imp::limit(op, fd, len)
}

/// An injected EINTR for `op`, consulted inside the wrappers' retry loops
/// in place of the system call. Without the feature: `None`.
#[inline(always)]
pub fn interrupt(op: Op) -> Option<io::Error> {
    imp::interrupt(op)
}

/// Counts one EINTR retry (called by `syscall_retry!`).
#[inline(always)]
pub fn note_retry() {
    imp::note_retry()
}

/// Whether a `connect` that has started its handshake must report EINTR.
#[inline(always)]
pub fn connect_interrupted() -> bool {
    imp::connect_interrupted()
}

/// How many events the next `epoll_wait` may return (`cap`, or 1).
#[inline(always)]
pub fn wait_capacity(cap: usize) -> usize {
    imp::wait_capacity(cap)
}

/// Records an epoll registration (to re-arm owed edges).
#[inline(always)]
pub fn registered(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>, events: u32, data: u64) {
    imp::registered(epfd, fd, events, data)
}

/// Forgets an epoll registration.
#[inline(always)]
pub fn unregistered(epfd: BorrowedFd<'_>, fd: BorrowedFd<'_>) {
    imp::unregistered(epfd, fd)
}

/// Re-arms the descriptors owed an edge on `epfd` (before a wait).
#[inline(always)]
pub fn rearm_owed(epfd: BorrowedFd<'_>) {
    imp::rearm_owed(epfd)
}

/// Starts injecting faults with `seed` and `rates`, process-wide, and
/// resets the counters. A no-op without the feature.
pub fn configure(seed: u64, rates: Rates) {
    imp::configure(seed, rates)
}

/// Stops injecting faults (counters are kept until the next
/// [`configure`]).
pub fn disable() {
    imp::disable()
}

/// The counters of the current (or last) plan.
pub fn stats() -> Stats {
    imp::stats()
}

/// The seed of the current plan, if one is active.
pub fn seed() -> Option<u64> {
    imp::seed()
}
