//! The event loop: one `epoll_wait`, then every event to its handler.
//!
//! One turn of [`EventLoop::run_once`]:
//!
//! 1. wait: timeout 0 if the ready list is non-empty, else forever; the
//!    loop's timerfd, armed at the earliest timer's deadline, is what wakes
//!    it for timers, so a turn reads no clock unless one fires;
//! 2. dispatch every event by its token (stale tokens are dropped);
//! 3. serve the ready list: registrations that still have readiness the
//!    loop has not consumed (fairness caps, resumed readers), then the
//!    drain list (`on_drain` owed outside the connection's own callback);
//! 4. fire expired timers;
//! 5. reap: connections closed during this turn are removed from the slab,
//!    told `on_close`, and their descriptors closed, only now, so that no
//!    event of this batch can reach a slot or fd number reused within it.

use crate::buffer::Buffer;
use crate::net::TcpStream;
use crate::poll::{Interest, Poller, Ready};
use crate::reactor::accept::{Inbox, Listener};
use crate::reactor::config::{ConnConfig, ServerConfig, DEFAULT_SHUTDOWN_GRACE};
use crate::reactor::conn::{Conn, Flags};
use crate::reactor::context::Context;
use crate::reactor::handler::{CloseReason, ConnId, Handler};
use crate::reactor::siblings::Siblings;
use crate::reactor::stats::LoopStats;
use crate::reactor::waker::{LoopHandle, Shared, Task};
use crate::sys;
use crate::timer::{Clock, TimerId, Timers};
use crate::token::{Registry, Token};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Size of the loop's shared read buffer (and of each read).
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// Most reads from one connection per turn before others get a go.
pub(crate) const READS_PER_TURN: usize = 8;
/// Most events one `epoll_wait` returns.
const EVENTS_PER_WAIT: usize = 1024;

/// A loop-level timer callback.
pub(crate) type LoopTimerFn = Box<dyn FnOnce(&mut Context<'_>)>;

/// What a timer does when it fires.
pub(crate) enum TimerTask {
    Idle(Token),
    Connect(Token),
    Linger(Token),
    User(Token),
    ResumeAccept(Token),
    #[cfg(feature = "tls")]
    TlsHandshake(Token),
    Shutdown,
    Loop(LoopTimerFn),
}

/// What a token names.
pub(crate) enum Entry {
    Conn(Conn),
    Listener(Listener),
    Watched(Option<Box<dyn WatchedSource>>),
    Waker,
    Signals(OwnedFd),
    /// The loop's timerfd (`Core::timer_fd`): a timer is due.
    TimerFd,
}

/// A descriptor the loop watches for the user (UDP sockets, pipes, ...).
pub(crate) trait WatchedSource {
    fn on_ready(&mut self, ctx: &mut Context<'_>, ready: Ready);
}

struct Watch<S, F> {
    source: S,
    callback: F,
}

impl<S, F> WatchedSource for Watch<S, F>
where
    F: FnMut(&mut S, &mut Context<'_>, Ready),
{
    fn on_ready(&mut self, ctx: &mut Context<'_>, ready: Ready) {
        (self.callback)(&mut self.source, ctx, ready)
    }
}

/// Per-listener connection settings and count (index 0: outgoing/adopted).
pub(crate) struct Profile {
    pub(crate) config: ConnConfig,
    pub(crate) live: usize,
    /// The listener serves TLS.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::reactor::config::TlsConfig>,
}

/// Everything the loop owns; handlers reach it through [`Context`].
pub(crate) struct Core {
    pub(crate) poller: Poller,
    pub(crate) entries: Registry<Entry>,
    pub(crate) timers: Timers<TimerTask>,
    pub(crate) clock: Clock,
    /// The time as of this turn's first [`Core::now`] (ms on `clock`);
    /// read lazily: a turn that asks for no time reads no clock.
    now: u64,
    /// The turn (`stats.turns`) whose time `now` holds.
    now_turn: u64,
    /// Armed at the earliest timer's deadline: its event is how a turn
    /// learns that a timer is due, without reading the clock.
    timer_fd: OwnedFd,
    /// The deadline `timer_fd` is armed at (ms on `clock`); `u64::MAX`
    /// when disarmed, 0 while timers fire (re-armed once, after them).
    timer_armed: u64,
    /// `timer_fd`'s event came in this turn: fire what is due.
    timers_fired: bool,
    /// The end of the turn has work: something was put on `ready`,
    /// `drains` or `closing`, or `timers_fired` was set. Set beside each
    /// of them, so that the usual turn tests one flag, not four lists
    /// (`Core::serve_tail`); before the wait it means the ready or drain
    /// list holds what the last turn left for this one (wait 0).
    pub(crate) tail: bool,
    pub(crate) ready: Vec<Token>,
    /// Connections owed an `on_drain` outside their own callbacks.
    pub(crate) drains: Vec<Token>,
    pub(crate) closing: Vec<(Token, CloseReason)>,
    pub(crate) scratch_out: Buffer,
    /// A read buffer for the reads a shutdown makes (see
    /// `shutdown_conn`); empty until the first.
    pub(crate) shutdown_in: Buffer,
    pub(crate) profiles: Vec<Profile>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) conns: usize,
    /// The connection whose callback is running: its writes sit in
    /// `scratch_out` until the callback returns, so closes and half-closes
    /// requested for it wait until then (else FIN would overtake them).
    pub(crate) in_callback: Option<Token>,
    pub(crate) stop: bool,
    pub(crate) shutting_down: bool,
    /// How long a shutdown started by a signal lets connections finish.
    pub(crate) grace: Duration,
    /// Counters; plain integers, this thread only.
    pub(crate) stats: LoopStats,
    /// Handed-off connections taken in (wrapping), for the published load.
    pub(crate) handed_in: u32,
    /// Where handed-off connections come in: factory and config each.
    pub(crate) inboxes: Vec<Inbox>,
    /// The other loops of this loop's group, if it is in one.
    pub(crate) siblings: Option<Siblings>,
    /// Where this loop publishes its load whenever it changes, for an acceptor
    /// that hands connections to the least loaded loop (`Siblings`).
    pub(crate) published_load: Option<Arc<std::sync::atomic::AtomicU64>>,
}

/// A single-threaded epoll event loop.
///
/// ```
/// use sockloop::{Buffer, Context, EventLoop, ServerConfig};
/// use sockloop::net::TcpListener;
/// use std::io::{Read, Write};
///
/// let mut ev = EventLoop::new()?;
/// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
/// let addr = listener.local_addr()?;
/// ev.listen(listener, ServerConfig::default(), |_id| {
///     Box::new(|ctx: &mut Context<'_>, input: &mut Buffer| {
///         let _ = ctx.write(input.as_slice());
///         input.clear();
///     })
/// })?;
/// // A client on another thread; it stops the loop once echoed.
/// let handle = ev.handle();
/// let client = std::thread::spawn(move || -> std::io::Result<()> {
///     let mut s = std::net::TcpStream::connect(addr)?;
///     s.write_all(b"ping")?;
///     let mut back = [0u8; 4];
///     s.read_exact(&mut back)?;
///     assert_eq!(&back, b"ping");
///     handle.stop()
/// });
/// ev.run()?;
/// client.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EventLoop {
    core: Core,
    /// The shared read buffer (64 KiB): each read of a connection with no
    /// buffered input lands here and is handed to the handler in place.
    /// Outside `Core` so that the handler can borrow it while its context
    /// borrows the core.
    scratch_in: Buffer,
}

impl EventLoop {
    /// Creates a loop: an epoll instance, its waker (eventfd), and a 64 KiB
    /// shared read buffer. Also raises the soft RLIMIT_NOFILE to the hard
    /// limit (a reactor's whole point is many descriptors).
    ///
    /// # Errors
    /// EMFILE/ENFILE from `epoll_create1` or `eventfd`.
    pub fn new() -> io::Result<EventLoop> {
        if let Err(e) = sys::rlimit::raise_nofile_to_hard() {
            log::debug!("cannot raise RLIMIT_NOFILE: {e}");
        }
        let shared = Arc::new(Shared::new(sys::eventfd::create()?));
        EventLoop::with_shared(shared)
    }

    /// A loop woken through `shared` (whose handle may exist, and have
    /// tasks queued, before the loop does). Leaves RLIMIT_NOFILE alone.
    pub(crate) fn with_shared(shared: Arc<Shared>) -> io::Result<EventLoop> {
        let poller = Poller::new(EVENTS_PER_WAIT)?;
        let mut entries = Registry::new();
        let waker_tok = entries.insert(Entry::Waker);
        poller.add(shared.waker.as_fd(), waker_tok, Interest::READABLE)?;
        let timer_fd = sys::timerfd::create()?;
        let timer_tok = entries.insert(Entry::TimerFd);
        poller.add(timer_fd.as_fd(), timer_tok, Interest::READABLE)?;
        let scratch_in = crate::reactor::conn::shared_read_buffer();
        Ok(EventLoop {
            core: Core {
                poller,
                entries,
                timers: Timers::new(),
                clock: Clock::new(),
                now: 0,
                now_turn: u64::MAX,
                timer_fd,
                timer_armed: u64::MAX,
                timers_fired: false,
                tail: false,
                ready: Vec::new(),
                drains: Vec::new(),
                closing: Vec::new(),
                scratch_out: Buffer::with_max(usize::MAX),
                shutdown_in: Buffer::new(),
                profiles: vec![Profile {
                    config: ConnConfig::default(),
                    live: 0,
                    #[cfg(feature = "tls")]
                    tls: None,
                }],
                shared,
                conns: 0,
                in_callback: None,
                stop: false,
                shutting_down: false,
                grace: DEFAULT_SHUTDOWN_GRACE,
                stats: LoopStats::default(),
                handed_in: 0,
                inboxes: Vec::new(),
                siblings: None,
                published_load: None,
            },
            scratch_in,
        })
    }

    /// A handle to this loop that other threads can use to post work, wake
    /// it, or stop it.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(self.core.shared.clone())
    }

    /// A context for acting on the loop from outside any callback (write to
    /// a connection, connect, add timers).
    pub fn context(&mut self) -> Context<'_> {
        Context::new(&mut self.core, None)
    }

    /// Serves a listening socket (TCP or Unix): each accepted connection
    /// gets the handler `factory` builds for it.
    ///
    /// # Errors
    /// Errors of `epoll_ctl`; EMFILE when the spare descriptor cannot be
    /// opened.
    pub fn listen<L, F>(
        &mut self,
        listener: L,
        config: ServerConfig,
        factory: F,
    ) -> io::Result<Token>
    where
        L: Into<OwnedFd>,
        F: FnMut(ConnId) -> Box<dyn Handler> + 'static,
    {
        self.add_listener(listener.into(), config, Box::new(factory), false)
    }

    /// Serves a listening socket that other loops serve too (each holding
    /// its own descriptor of it, e.g. a `dup`): registered with
    /// `EPOLLEXCLUSIVE`, so a new connection wakes one waiting loop instead
    /// of all of them. The kernel wakes the loop that registered first
    /// among those waiting, so after every
    /// [`EXCLUSIVE_ROTATE`](crate::reactor::EXCLUSIVE_ROTATE) accepts the
    /// loop deletes and re-adds its registration, which moves it to the
    /// back of the socket's wait queue and lets the next loop take the
    /// following connections (nginx does the same).
    ///
    /// # Errors
    /// As [`EventLoop::listen`]; EINVAL on kernels without
    /// `EPOLLEXCLUSIVE` (before 4.5).
    pub fn listen_exclusive<L, F>(
        &mut self,
        listener: L,
        config: ServerConfig,
        factory: F,
    ) -> io::Result<Token>
    where
        L: Into<OwnedFd>,
        F: FnMut(ConnId) -> Box<dyn Handler> + 'static,
    {
        self.add_listener(listener.into(), config, Box::new(factory), true)
    }

    fn add_listener(
        &mut self,
        fd: OwnedFd,
        config: ServerConfig,
        factory: crate::reactor::accept::HandlerFactory,
        exclusive: bool,
    ) -> io::Result<Token> {
        sys::fd::set_nonblocking(fd.as_fd(), true)?;
        let profile = self.core.profiles.len() as u16;
        self.core.profiles.push(Profile {
            config: config.conn.clone(),
            live: 0,
            #[cfg(feature = "tls")]
            tls: config.tls.clone(),
        });
        let spare = crate::reactor::accept::SpareFd::open()?;
        let tok = self.core.entries.insert(Entry::Listener(Listener {
            fd,
            factory,
            profile,
            max_conns: config.max_conns,
            accept_batch: config.accept_batch.max(1),
            accept_pause: config.accept_pause,
            spare,
            paused: false,
            in_ready: false,
            exclusive,
            since_rotate: 0,
        }));
        let interest = if exclusive {
            Interest::EXCLUSIVE_READABLE
        } else {
            Interest::READABLE
        };
        let res = match self.core.entries.get(tok) {
            Some(Entry::Listener(l)) => self.core.poller.add(l.fd.as_fd(), tok, interest),
            _ => Ok(()),
        };
        if let Err(e) = res {
            self.core.entries.remove(tok);
            return Err(e);
        }
        Ok(tok)
    }

    /// Takes an already connected stream (TCP, Unix, one end of a
    /// socketpair) into the loop with `handler`; `on_open` runs at once.
    ///
    /// # Errors
    /// Errors of `fcntl` or `epoll_ctl` (EPERM for fds epoll cannot watch).
    pub fn adopt<S: Into<OwnedFd>>(
        &mut self,
        stream: S,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        self.context().adopt(stream, handler)
    }

    /// Starts an outgoing TCP connection; see [`Context::connect`].
    ///
    /// # Errors
    /// As [`Context::connect`].
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        timeout: Option<Duration>,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        self.context().connect(addr, timeout, handler)
    }

    /// Watches any descriptor (a UDP socket, a pipe, a timerfd...) and calls
    /// `callback` with it on each readiness edge. Readiness is
    /// edge-triggered: the callback must read (or write) until `WouldBlock`,
    /// or it will not be called again for what is already there. Dropping
    /// the registration ([`EventLoop::unwatch`]) closes the source.
    ///
    /// # Errors
    /// Errors of `epoll_ctl` (EPERM for regular files).
    pub fn watch<S, F>(&mut self, source: S, interest: Interest, callback: F) -> io::Result<Token>
    where
        S: AsFd + 'static,
        F: FnMut(&mut S, &mut Context<'_>, Ready) + 'static,
    {
        self.core.watch(source, interest, callback)
    }

    /// Stops watching and drops (closes) a source registered with
    /// [`EventLoop::watch`]. Returns false for an unknown token.
    pub fn unwatch(&mut self, token: Token) -> bool {
        match self.core.entries.get(token) {
            Some(Entry::Watched(_)) => {
                self.core.entries.remove(token);
                true
            }
            _ => false,
        }
    }

    /// Registers where connections handed to this loop by another thread
    /// come in (`Context::accept_handed`): their config and factory.
    /// Returns the inbox's index; inboxes are numbered in order from 0.
    pub(crate) fn add_inbox(
        &mut self,
        config: ServerConfig,
        factory: crate::reactor::accept::HandlerFactory,
    ) -> usize {
        let profile = self.core.profiles.len() as u16;
        self.core.profiles.push(Profile {
            config: config.conn.clone(),
            live: 0,
            // Handed connections of a TLS listener are TLS too.
            #[cfg(feature = "tls")]
            tls: config.tls.clone(),
        });
        self.core.inboxes.push(Inbox {
            factory,
            profile,
            max_conns: config.max_conns,
        });
        self.core.inboxes.len() - 1
    }

    /// Makes this loop `index` of a group whose handles are `handles`
    /// (this loop's own among them), publishing its load into `load`.
    pub(crate) fn join_group(
        &mut self,
        index: usize,
        handles: Arc<[LoopHandle]>,
        load: Option<Arc<std::sync::atomic::AtomicU64>>,
    ) {
        self.core.siblings = Some(Siblings { index, handles });
        self.core.published_load = load;
        self.core.publish_load();
    }

    /// What this loop has done so far: accepted, live and peak connections,
    /// events, turns, bytes in and out.
    pub fn stats(&self) -> LoopStats {
        self.core.current_stats()
    }

    /// Sets how long a graceful shutdown started by a signal
    /// ([`EventLoop::shutdown_on_signals`]) lets connections finish before
    /// the rest are closed with [`CloseReason::Shutdown`]. Default
    /// [`DEFAULT_SHUTDOWN_GRACE`](crate::reactor::DEFAULT_SHUTDOWN_GRACE)
    /// (10 s). Shutdowns started from the API take their grace as an
    /// argument.
    pub fn set_shutdown_grace(&mut self, grace: Duration) {
        self.core.grace = grace;
    }

    /// The grace of a shutdown started by a signal; see
    /// [`EventLoop::set_shutdown_grace`].
    pub fn shutdown_grace(&self) -> Duration {
        self.core.grace
    }

    /// Sets the settings for outgoing and adopted connections.
    pub fn set_conn_config(&mut self, config: ConnConfig) {
        self.core.profiles[0].config = config;
    }

    /// Stops the loop gracefully when one of `signals` (e.g. SIGINT,
    /// SIGTERM) arrives: the signals are blocked and read from a signalfd,
    /// and the shutdown lets connections finish for
    /// [`EventLoop::shutdown_grace`]. Call it before spawning threads,
    /// which inherit the signal mask.
    ///
    /// # Errors
    /// Errors of `pthread_sigmask`, `signalfd` or `epoll_ctl`.
    pub fn shutdown_on_signals(&mut self, signals: &[i32]) -> io::Result<()> {
        sys::signal::block(signals)?;
        let fd = sys::signal::signalfd(signals)?;
        let tok = self.core.entries.vacant_token();
        self.core.poller.add(fd.as_fd(), tok, Interest::READABLE)?;
        self.core.entries.insert(Entry::Signals(fd));
        Ok(())
    }

    /// Runs until [`Context::stop`]/[`LoopHandle::stop`], or until a
    /// graceful shutdown has closed every connection.
    ///
    /// # Errors
    /// Only if `epoll_wait` fails (a broken epoll fd).
    pub fn run(&mut self) -> io::Result<()> {
        self.core.stop = false;
        self.core.after_a_panic_in_timers();
        if self.core.shutting_down && self.core.conns == 0 {
            return Ok(()); // a shutdown already finished
        }
        // A shutdown that closes the last connection sets `stop` (`reap`).
        while !self.core.stop {
            self.turn(-1)?;
        }
        Ok(())
    }

    /// Runs one turn: waits at most `timeout` (`None`: until something
    /// happens), dispatches events, serves the ready list, fires timers,
    /// reaps closed connections. Returns how many events epoll reported.
    ///
    /// # Errors
    /// Only if `epoll_wait` fails.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.core.after_a_panic_in_timers();
        let ms = timeout.map_or(-1, |t| crate::timer::ceil_ms(t).min(i32::MAX as u64) as i32);
        self.turn(ms)
    }

    /// One turn of the loop, waiting at most `wait_ms` (-1: forever) for
    /// an event. Timers need no timeout here: the kernel wakes the loop
    /// through `timer_fd` when the earliest is due.
    ///
    /// Inlined into `run`: its loop then keeps the loop's state in
    /// registers from one turn to the next, and a turn makes no call and
    /// saves no register before its wait (`bench/instructions.sh`: 350 ->
    /// 307 per echo round trip; it cost 21 more when the turn still
    /// tested four lists and saved the outer callback's state).
    #[inline(always)]
    fn turn(&mut self, wait_ms: i32) -> io::Result<usize> {
        let EventLoop { core, scratch_in } = self;
        let timeout_ms = if core.tail || core.stop { 0 } else { wait_ms };
        let n = core.poller.wait_ms(timeout_ms)?;
        for i in 0..n {
            let (tok, ready) = core.poller.event(i);
            core.dispatch(tok, ready, scratch_in);
        }
        if core.tail {
            core.serve_tail(scratch_in);
        }
        core.stats.turns += 1;
        core.stats.events += n as u64;
        Ok(n)
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.core.conns
    }

    /// Starts a graceful shutdown, as on SIGTERM but with its own `grace`:
    /// see [`Context::shutdown`].
    pub fn shutdown(&mut self, grace: Duration) {
        self.context().shutdown(grace);
    }
}

impl Core {
    /// Routes one epoll event to whatever its token names. A
    /// connection's event goes straight into its read loop, whose first
    /// lookup is the only one (`Core::conn_ready`); everything else comes
    /// back to [`Core::dispatch_other`].
    #[inline(always)]
    fn dispatch(&mut self, tok: Token, ready: Ready, scratch_in: &mut Buffer) {
        self.conn_ready(tok, ready, scratch_in);
    }

    /// An event for a token that does not name a connection.
    #[inline(never)]
    pub(crate) fn dispatch_other(&mut self, tok: Token, ready: Ready) {
        match self.entries.get_mut(tok) {
            Some(Entry::Conn(_)) => {} // conn_ready's
            Some(Entry::Listener(_)) => self.accept_ready(tok),
            Some(Entry::Watched(_)) => self.watched_ready(tok, ready),
            Some(Entry::Waker) => self.run_posted(),
            Some(Entry::Signals(_)) => self.read_signals(tok),
            Some(Entry::TimerFd) => {
                // Read to reset it; arming it again (fire_timers) would too.
                if let Err(e) = sys::timerfd::drain(self.timer_fd.as_fd()) {
                    log::error!("reading the loop's timerfd: {e}");
                }
                self.timers_fired = true;
                self.tail = true;
            }
            None => log::trace!("dropped a stale event for {tok:?}"),
        }
    }

    fn watched_ready(&mut self, tok: Token, ready: Ready) {
        let Some(Entry::Watched(slot)) = self.entries.get_mut(tok) else {
            return;
        };
        let Some(mut source) = slot.take() else {
            return;
        };
        source.on_ready(&mut Context::new(self, None), ready);
        if let Some(Entry::Watched(slot)) = self.entries.get_mut(tok) {
            *slot = Some(source);
        }
    }

    /// Registers a user-watched descriptor.
    pub(crate) fn watch<S, F>(
        &mut self,
        source: S,
        interest: Interest,
        callback: F,
    ) -> io::Result<Token>
    where
        S: AsFd + 'static,
        F: FnMut(&mut S, &mut Context<'_>, Ready) + 'static,
    {
        let tok = self.entries.vacant_token();
        self.poller.add(source.as_fd(), tok, interest)?;
        Ok(self
            .entries
            .insert(Entry::Watched(Some(Box::new(Watch { source, callback })))))
    }

    /// Puts `tok` (a connection or a listener) on the ready list, served
    /// at the end of this turn, and marks the turn's tail as having work.
    /// The caller has checked that it is not on the list already (its
    /// `IN_READY` flag, a listener's `in_ready`).
    pub(crate) fn schedule_ready(&mut self, tok: Token) {
        self.ready.push(tok);
        self.tail = true;
    }

    /// The end of a turn that has work (`tail`): the ready list, the drain
    /// list, the timers due, the connections to reap. What these push for
    /// the next turn sets `tail` again.
    #[inline(never)]
    fn serve_tail(&mut self, scratch_in: &mut Buffer) {
        // `tail` stays set until the end: a loop timer that panics out of
        // fire_timers (which stops the loop) leaves it set, so a loop run
        // again still reaps what this turn closed.
        self.serve_ready_list(scratch_in);
        self.serve_drains();
        self.fire_timers();
        self.reap();
        // Pushed while serving: the next turn waits 0 and serves them.
        self.tail = !self.ready.is_empty() || !self.drains.is_empty();
    }

    fn serve_ready_list(&mut self, scratch_in: &mut Buffer) {
        if self.ready.is_empty() {
            return; // the usual turn: no swap of the list
        }
        // Entries pushed while serving wait for the next turn (timeout 0).
        let list = std::mem::take(&mut self.ready);
        for tok in list {
            match self.entries.get(tok) {
                Some(Entry::Conn(_)) => {
                    let mut redeliver = false;
                    if let Some(c) = self.conn_mut(tok) {
                        c.flags.remove(Flags::IN_READY);
                        redeliver = c.may_redeliver();
                        c.flags.remove(Flags::REDELIVER);
                    }
                    if redeliver {
                        // Resumed with input buffered: on_data sees it again.
                        self.redeliver(tok);
                    }
                    self.read_ready(tok, scratch_in);
                }
                Some(Entry::Listener(_)) => self.accept_ready(tok),
                _ => {}
            }
        }
    }

    /// Calls `on_drain` for the connections on the drain list whose output
    /// is still drained. Entries pushed meanwhile wait for the next turn.
    fn serve_drains(&mut self) {
        if self.drains.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.drains);
        for tok in list {
            let Some(c) = self.conn_mut(tok) else {
                continue;
            };
            c.flags.remove(Flags::IN_DRAIN);
            if self.drain_due(tok) {
                self.with_handler(tok, |h, ctx| h.on_drain(ctx));
            }
        }
    }

    fn fire_timers(&mut self) {
        if !self.timers_fired {
            return; // the usual turn: no timer is due, and no clock is read
        }
        self.timers_fired = false;
        // Timers armed by the ones that fire do not arm timer_fd one by
        // one: it is armed once, below, at whatever is earliest then.
        self.timer_armed = 0;
        let now = self.clock.now_ms();
        self.now = now;
        self.now_turn = self.stats.turns;
        while let Some((id, task)) = self.timers.pop_expired(now) {
            match task {
                TimerTask::Idle(tok) => self.idle_check(tok),
                TimerTask::Connect(tok) => self.connect_timeout(tok),
                TimerTask::Linger(tok) => {
                    if self.conn_mut(tok).is_some() {
                        self.finish(tok, CloseReason::Local);
                    }
                }
                TimerTask::User(tok) => {
                    self.with_handler(tok, |h, ctx| h.on_timer(ctx, id));
                }
                TimerTask::ResumeAccept(tok) => self.resume_accepting(tok),
                #[cfg(feature = "tls")]
                TimerTask::TlsHandshake(tok) => self.tls_handshake_timeout(tok),
                TimerTask::Shutdown => {
                    for tok in self.conn_tokens() {
                        self.finish(tok, CloseReason::Shutdown);
                    }
                }
                TimerTask::Loop(f) => f(&mut Context::new(self, None)),
            }
        }
        self.arm_timer_fd_afresh();
    }

    /// Removes the connections closed during this turn.
    pub(crate) fn reap(&mut self) {
        while !self.closing.is_empty() {
            let batch = std::mem::take(&mut self.closing);
            for (tok, reason) in batch {
                let Some(Entry::Conn(mut conn)) = self.entries.remove(tok) else {
                    continue;
                };
                self.conns -= 1;
                self.profiles[conn.profile as usize].live -= 1;
                #[cfg(feature = "tls")]
                let reason = match conn.tls.as_mut().and_then(|t| t.failure.take()) {
                    // A TLS error closed it gracefully (alert, FIN): say why.
                    Some(failure) if reason.is_graceful() => failure,
                    _ => reason,
                };
                if let Some(mut h) = conn.handler.take() {
                    h.on_close(&mut Context::new(self, None), &reason);
                }
                log::debug!("{} closed: {reason}", ConnId(tok));
                drop(conn); // closes the fd; epoll forgets it with the file
            }
            if self.shutting_down && self.conns == 0 {
                self.stop = true; // the shutdown is over: `run` returns
            }
        }
        self.publish_load();
    }

    /// Publishes the load word for a Handoff acceptor, if this loop has
    /// one: where the live connections or the handed-in count change
    /// (open_conn, reap, accept_handed), not once per turn, so that a
    /// turn that changes neither stores nothing.
    #[inline]
    pub(crate) fn publish_load(&self) {
        if let Some(load) = &self.published_load {
            crate::reactor::siblings::publish(load, self.conns, self.handed_in);
        }
    }

    fn run_posted(&mut self) {
        let _ = sys::eventfd::drain(self.shared.waker.as_fd());
        let tasks: Vec<Task> = self.shared.take_tasks();
        for task in tasks {
            task(&mut Context::new(self, None));
        }
        if self.shared.take_stop() {
            self.stop = true;
        }
        if let Some(grace) = self.shared.take_shutdown() {
            Context::new(self, None).shutdown(grace);
        }
    }

    fn read_signals(&mut self, tok: Token) {
        let Some(Entry::Signals(fd)) = self.entries.get(tok) else {
            return;
        };
        let mut got = None;
        while let Ok(Some(sig)) = sys::signal::read_signal(fd.as_fd()) {
            got = Some(sig);
        }
        if let Some(sig) = got {
            log::info!("signal {sig}: shutting down gracefully");
            let grace = self.grace;
            Context::new(self, None).shutdown(grace);
        }
    }

    /// Begins a graceful shutdown: accept what each listener's queue
    /// already holds, close the listeners, deliver what each connection
    /// has already received and give its handler `on_shutdown` (default:
    /// close gracefully), close what remains after `grace`.
    pub(crate) fn begin_shutdown(&mut self, grace: Duration) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        // Taken first: connections the drain below opens get their
        // on_shutdown as they open, and outgoing ones their handlers start
        // from now on are theirs to manage.
        let conns = self.conn_tokens();
        let listeners: Vec<Token> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Listener(_)))
            .map(|(t, _)| t)
            .collect();
        for tok in listeners {
            // Closing a listening socket resets every connection still in
            // its accept queue: their handshakes completed, their clients
            // may have sent a request. Accept them first.
            self.drain_listener(tok);
            self.entries.remove(tok); // closes the listening socket
        }
        for tok in conns {
            self.shutdown_conn(tok);
        }
        self.arm(grace, TimerTask::Shutdown);
        if self.conns == 0 {
            self.stop = true;
        }
    }

    /// Shutdown for one connection: read and deliver what the kernel has
    /// already received, then `on_shutdown`.
    pub(crate) fn shutdown_conn(&mut self, tok: Token) {
        let busy = self.in_callback == Some(tok);
        let Some(c) = self.conn_mut(tok) else { return };
        if c.flags.any(Flags::CLOSED | Flags::CLOSE_REQ) {
            return;
        }
        if busy {
            // Its own callback started the shutdown: it is busy; close it
            // once that callback has returned.
            return self.request_close(tok);
        }
        if !c.flags.contains(Flags::CONNECTING) {
            // At worst one read that finds nothing (EAGAIN). This may run
            // inside another connection's callback (ctx.shutdown()), which
            // holds the loop's shared read buffer: read into a second one,
            // kept for the rest of the shutdown.
            c.flags.insert(Flags::READABLE);
            let mut buf = std::mem::take(&mut self.shutdown_in);
            if buf.capacity() != READ_CHUNK || buf.max() != READ_CHUNK {
                buf = crate::reactor::conn::shared_read_buffer();
            }
            self.read_ready(tok, &mut buf);
            self.shutdown_in = buf;
        }
        if self
            .conn(tok)
            .is_some_and(|c| !c.flags.any(Flags::CLOSED | Flags::CLOSE_REQ))
        {
            self.with_handler(tok, |h, ctx| h.on_shutdown(ctx));
        }
    }

    /// The counters, with `live` as of now.
    pub(crate) fn current_stats(&self) -> LoopStats {
        LoopStats {
            live: self.conns,
            ..self.stats
        }
    }

    pub(crate) fn conn_tokens(&self) -> Vec<Token> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Conn(_)))
            .map(|(t, _)| t)
            .collect()
    }

    #[inline]
    pub(crate) fn conn_mut(&mut self, tok: Token) -> Option<&mut Conn> {
        match self.entries.get_mut(tok) {
            Some(Entry::Conn(c)) => Some(c),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn conn(&self, tok: Token) -> Option<&Conn> {
        match self.entries.get(tok) {
            Some(Entry::Conn(c)) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn config(&self, conn: &Conn) -> &ConnConfig {
        &self.profiles[conn.profile as usize].config
    }

    /// Registers a connected (or connecting) stream and runs `on_open` if
    /// it is already connected.
    pub(crate) fn open_conn(
        &mut self,
        fd: OwnedFd,
        profile: u16,
        handler: Box<dyn Handler>,
        connecting: bool,
    ) -> Result<Token, (io::Error, Box<dyn Handler>)> {
        let tok = self.entries.vacant_token();
        if let Err(e) = self.poller.add(fd.as_fd(), tok, Interest::STREAM) {
            return Err((e, handler));
        }
        let mut conn = Conn::new(fd, profile, handler, connecting);
        // Every path that appends to the input buffer obeys the config.
        conn.input
            .set_max(self.profiles[profile as usize].config.max_input);
        let inserted = self.entries.insert(Entry::Conn(conn));
        debug_assert_eq!(inserted, tok);
        self.conns += 1;
        self.publish_load();
        if self.conns > self.stats.peak_live {
            self.stats.peak_live = self.conns;
        }
        self.profiles[profile as usize].live += 1;
        if !connecting {
            self.start_idle_timer(tok);
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.profiles[profile as usize].tls {
                // A TLS listener: on_open waits for the handshake.
                let session = match crate::tls::TlsSession::server(tls.server.clone()) {
                    Ok(s) => s,
                    Err(e) => {
                        self.finish(tok, CloseReason::Error(e));
                        return Ok(tok);
                    }
                };
                let state = crate::reactor::tls::TlsState::new(
                    session,
                    tls.handshake_timeout,
                    tls.allow_truncation,
                );
                if let Some(c) = self.conn_mut(tok) {
                    c.set_tls(state);
                }
                self.tls_start(tok);
                return Ok(tok);
            }
            self.with_handler(tok, |h, ctx| h.on_open(ctx));
        }
        Ok(tok)
    }

    /// Starts the idle timeout of a connection that has just opened. Its
    /// first check comes after an eighth of the timeout (see
    /// [`Core::idle_check`] for why).
    pub(crate) fn start_idle_timer(&mut self, tok: Token) {
        let idle = match self.conn(tok) {
            Some(c) => self.config(c).idle_timeout,
            None => return,
        };
        let Some(idle) = idle else { return };
        let now = self.now();
        let first = now.saturating_add(idle_sample_ms(crate::timer::ceil_ms(idle)));
        let id = self.arm_at(first, TimerTask::Idle(tok));
        if let Some(c) = self.conn_mut(tok) {
            c.last_active = now;
            c.idle_timer = Some(id);
        }
    }

    /// The idle timer of `tok` fired: close the connection if it has been
    /// silent for its `idle_timeout`, else check again when it could be.
    ///
    /// Nothing on the hot path keeps time for this (a turn reads no
    /// clock). A TCP connection's silence is asked of the kernel
    /// (`TCP_INFO`, less one jiffy, `TCP_JIFFY_MS`): the check runs when the timeout
    /// could first be over, so once per timeout of a busy connection. Any
    /// other stream (a Unix socket) is sampled: the read and send paths set
    /// `Flags::ACTIVE`, and a check that finds it set counts the
    /// connection as active at that check. Such checks come every eighth of
    /// the timeout, so that connection is closed after between 1 and 1.125
    /// timeouts of silence, never sooner.
    fn idle_check(&mut self, tok: Token) {
        let now = self.now();
        let Core {
            entries, profiles, ..
        } = self;
        let Some(Entry::Conn(c)) = entries.get_mut(tok) else {
            return;
        };
        if c.flags.contains(Flags::CLOSED) {
            return;
        }
        let Some(idle) = profiles[c.profile as usize].config.idle_timeout else {
            return;
        };
        let idle_ms = crate::timer::ceil_ms(idle);
        if c.flags.contains(Flags::ACTIVE) {
            c.flags.remove(Flags::ACTIVE);
            c.last_active = now;
        }
        let (silent, next) = match sys::sockopt::tcp_silent_ms(c.fd.as_fd()) {
            // The kernel counts in jiffies: its count may exceed the true
            // silence by up to one. Taken off, so never closed too soon.
            Ok(ms) => {
                let ms = ms.saturating_sub(TCP_JIFFY_MS);
                (ms, idle_ms.saturating_sub(ms))
            }
            Err(_) => {
                let ms = now.saturating_sub(c.last_active);
                let left = idle_ms.saturating_sub(ms);
                (ms, left.min(idle_sample_ms(idle_ms)))
            }
        };
        if silent >= idle_ms {
            log::debug!(
                "{} silent for {silent} ms (idle timeout {idle:?}): closing",
                ConnId(tok)
            );
            self.finish(tok, CloseReason::IdleTimeout);
        } else {
            let id = self.arm_at(now.saturating_add(next.max(1)), TimerTask::Idle(tok));
            if let Some(c) = self.conn_mut(tok) {
                c.idle_timer = Some(id);
            }
        }
    }

    /// The time, in ms on the loop's clock: read at the first call of a
    /// turn, the same for the rest of it.
    pub(crate) fn now(&mut self) -> u64 {
        if self.now_turn != self.stats.turns {
            self.now = self.clock.now_ms();
            self.now_turn = self.stats.turns;
        }
        self.now
    }

    /// Arms a timer to fire `after` from now (never sooner: see
    /// [`Clock::deadline_after`]).
    pub(crate) fn arm(&mut self, after: Duration, task: TimerTask) -> TimerId {
        let deadline = self.clock.deadline_after(after);
        self.arm_at(deadline, task)
    }

    /// Arms a timer for `deadline` (ms on the loop's clock).
    pub(crate) fn arm_at(&mut self, deadline: u64, task: TimerTask) -> TimerId {
        let id = self.timers.insert(deadline, task);
        self.arm_timer_fd(deadline);
        id
    }

    /// Moves timer `id` to fire `after` from now; false if it is gone.
    pub(crate) fn rearm(&mut self, id: TimerId, after: Duration) -> bool {
        let deadline = self.clock.deadline_after(after);
        let moved = self.timers.reset(id, deadline);
        if moved {
            self.arm_timer_fd(deadline);
        }
        moved
    }

    /// A loop timer that panicked (which stops the loop, see `Handler`)
    /// left `timer_armed` at 0, the mark of timers firing: arm `timer_fd`
    /// again for what is pending, so that a loop run again after the panic
    /// is caught still fires its timers.
    #[inline]
    fn after_a_panic_in_timers(&mut self) {
        if self.timer_armed == 0 {
            self.arm_timer_fd_afresh();
        }
    }

    /// Arms `timer_fd` for the earliest pending timer, whatever it was
    /// armed at (after timers fired, or a panic among them).
    fn arm_timer_fd_afresh(&mut self) {
        self.timer_armed = u64::MAX;
        if let Some(d) = self.timers.next_deadline() {
            self.arm_timer_fd(d);
        }
    }

    /// Makes `timer_fd` expire by `deadline`: armed again only when
    /// `deadline` is earlier than what it is armed at. A later timer needs
    /// nothing (the earlier expiry re-arms it, `fire_timers`), and nor does
    /// a cancelled one (its expiry finds nothing due and re-arms).
    #[inline]
    fn arm_timer_fd(&mut self, deadline: u64) {
        if deadline < self.timer_armed {
            self.timer_armed = deadline;
            let at = self.clock.monotonic_ns_at(deadline);
            if let Err(e) = sys::timerfd::set(self.timer_fd.as_fd(), Some(at)) {
                // Not on a valid timerfd; say so rather than hang quietly.
                log::error!("arming the loop's timerfd: {e}");
            }
        }
    }

    /// Runs `f` with the connection's handler and a context for it, then
    /// flushes what the handler wrote and applies what it asked for.
    pub(crate) fn with_handler<F>(&mut self, tok: Token, f: F)
    where
        F: FnOnce(&mut dyn Handler, &mut Context<'_>),
    {
        let Some(conn) = self.conn_mut(tok) else {
            return;
        };
        if conn.flags.contains(Flags::CLOSED) {
            return;
        }
        let Some(handler) = conn.handler.take() else {
            return;
        };
        // Context::write may batch without a lookup (see its `batching`).
        let batching = conn.may_batch();
        self.run_handler(tok, handler, batching, f);
    }

    /// [`Core::with_handler`] for a caller that has taken the handler out
    /// of its (open) connection itself and decided `batching` with
    /// `Conn::may_batch`: the read path, which holds the connection.
    ///
    /// A callback at the top (no other callback running, the usual case)
    /// runs here; one inside another goes to [`Core::run_nested_handler`].
    #[inline(always)]
    pub(crate) fn run_handler<F>(
        &mut self,
        tok: Token,
        mut handler: Box<dyn Handler>,
        batching: bool,
        f: F,
    ) where
        F: FnOnce(&mut dyn Handler, &mut Context<'_>),
    {
        if self.in_callback.is_some() {
            return self.run_nested_handler(tok, handler, batching, f);
        }
        self.in_callback = Some(tok);
        // A panicking handler ends its own connection, not the loop. What
        // the callback borrowed from the loop is restored below whichever
        // way it returns: `in_callback`, the handler (and the in-scratch,
        // lent to on_data in place: the next read makes it whole again if
        // the handler replaced it, `fresh_scratch`).
        let res = panic::catch_unwind(AssertUnwindSafe(|| {
            f(&mut *handler, &mut Context::for_conn(self, tok, batching))
        }));
        self.in_callback = None;
        // Connections leave the slab only in reap, after every callback of
        // the turn, so this finds the same connection (its generation was
        // checked before the callback).
        let Core {
            entries,
            scratch_out,
            stats,
            ..
        } = self;
        if let Some(Entry::Conn(conn)) = entries.get_mut_checked_before(tok) {
            // Put back into the empty slot it was taken from: tested, so
            // that the store is plain (an assignment would first drop the
            // old value: a call, for a `None` that is always there; nothing
            // else ever fills a connection's handler slot).
            if conn.handler.is_none() {
                conn.handler = Some(handler);
            }
            if res.is_ok() {
                // The end of a top-level callback: the batch goes out here,
                // with the lookup just made, when nothing else is asked.
                match conn.send_batch(scratch_out, stats) {
                    crate::reactor::conn::Batch::Done => return,
                    crate::reactor::conn::Batch::Failed(status) => {
                        return self.write_failed(tok, status)
                    }
                    crate::reactor::conn::Batch::General => {}
                }
            }
        }
        match res {
            Ok(()) => self.after_callback(tok),
            Err(payload) => self.handler_panicked(tok, payload),
        }
    }

    /// [`Core::run_handler`] for a callback that runs inside another one
    /// (`on_open` of a stream adopted from a handler, `on_shutdown` of a
    /// shutdown started by one): it must not mix its writes with the outer
    /// one's, so it gets an out-scratch of its own, and the outer
    /// callback's state is put back after it.
    #[inline(never)]
    fn run_nested_handler<F>(
        &mut self,
        tok: Token,
        mut handler: Box<dyn Handler>,
        batching: bool,
        f: F,
    ) where
        F: FnOnce(&mut dyn Handler, &mut Context<'_>),
    {
        let outer = self.in_callback.replace(tok);
        let outer_out = std::mem::take(&mut self.scratch_out);
        let res = panic::catch_unwind(AssertUnwindSafe(|| {
            f(&mut *handler, &mut Context::for_conn(self, tok, batching))
        }));
        self.in_callback = outer;
        if let Some(Entry::Conn(conn)) = self.entries.get_mut(tok) {
            if conn.handler.is_none() {
                conn.handler = Some(handler);
            }
        }
        match res {
            Ok(()) => self.after_callback(tok),
            Err(payload) => self.handler_panicked(tok, payload),
        }
        self.scratch_out = outer_out;
    }

    /// A handler's callback panicked: its connection is aborted (the loop
    /// goes on), and its batched writes are dropped.
    #[cold]
    #[inline(never)]
    fn handler_panicked(&mut self, tok: Token, payload: Box<dyn std::any::Any + Send>) {
        // A write that was taking the scratch may have left an empty one
        // in its place.
        self.scratch_out.clear();
        self.scratch_out.set_max(usize::MAX);
        let msg = panic_message(payload.as_ref());
        log::error!(
            "{} handler panicked: {msg}; connection aborted",
            ConnId(tok)
        );
        self.abort_with(tok, CloseReason::Panic(msg));
    }

    /// Starts an outgoing connection.
    pub(crate) fn connect(
        &mut self,
        addr: SocketAddr,
        timeout: Option<Duration>,
        handler: Box<dyn Handler>,
    ) -> Result<Token, (io::Error, Box<dyn Handler>)> {
        let stream = match TcpStream::connect_nonblocking(addr) {
            Ok(s) => s,
            Err(e) => return Err((e, handler)),
        };
        if self.profiles[0].config.nodelay {
            // Before the handshake, so even the first bytes go out at once.
            let _ = stream.set_nodelay(true);
        }
        let tok = self.open_conn(stream.into(), 0, handler, true)?;
        if let Some(t) = timeout {
            self.arm(t, TimerTask::Connect(tok));
        }
        Ok(tok)
    }

    fn connect_timeout(&mut self, tok: Token) {
        if let Some(c) = self.conn(tok) {
            if c.flags.contains(Flags::CONNECTING) && !c.flags.contains(Flags::CLOSED) {
                self.finish(tok, CloseReason::ConnectTimeout);
            }
        }
    }

    /// Arms a loop-level timer.
    pub(crate) fn add_loop_timer(&mut self, after: Duration, f: LoopTimerFn) -> TimerId {
        self.arm(after, TimerTask::Loop(f))
    }
}

/// The longest jiffy (HZ=100): `TCP_INFO`'s silence, counted in jiffies,
/// may be this much more than the time that truly passed; the idle check
/// takes it off, so that a TCP connection is closed at most this much
/// after its idle timeout, never before it.
const TCP_JIFFY_MS: u64 = 10;

/// How often a sampled idle timeout (a stream that is not TCP) is checked:
/// every eighth of it, at least every millisecond.
fn idle_sample_ms(idle_ms: u64) -> u64 {
    (idle_ms / 8).max(1)
}

/// The message of a caught panic (`&str` or `String` payloads, as
/// `panic!` makes them).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic payload that is not a string)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle connection costs one slab slot and nothing else (its
    /// buffers are empty, its handler usually zero-sized): keep the slot
    /// small. The target is 256 bytes of user memory per idle connection.
    #[test]
    fn a_slab_slot_is_small() {
        let slot = std::mem::size_of::<(u32, Entry)>();
        println!(
            "slab slot: {slot} bytes (Conn {} bytes)",
            std::mem::size_of::<Conn>()
        );
        assert!(slot <= 192, "slab slot grew to {slot} bytes");
    }
}
