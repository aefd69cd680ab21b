//! The multi-loop layer: N independent [`EventLoop`]s, one per thread,
//! sharing nothing on the hot path, and three ways to spread connections
//! over them ([`Balance`]).
//!
//! ```no_run
//! use sockloop::cluster::{Balance, Cluster};
//! use sockloop::{Buffer, Context, ServerConfig};
//!
//! let mut cluster = Cluster::new(4)?;
//! cluster.shutdown_on_signals(&[sockloop::sys::signal::SIGINT, sockloop::sys::signal::SIGTERM]);
//! let addr = cluster.listen(
//!     "127.0.0.1:7000".parse().unwrap(),
//!     Balance::Reuseport,
//!     ServerConfig::default(),
//!     // Runs once on each loop's thread: what it builds need not be Send.
//!     |_loop_index| {
//!         |_id| {
//!             Box::new(|ctx: &mut Context<'_>, input: &mut Buffer| {
//!                 let _ = ctx.write(input.as_slice());
//!                 input.clear();
//!             }) as Box<dyn sockloop::Handler>
//!         }
//!     },
//! )?;
//! eprintln!("listening on {addr}");
//! let stats = cluster.run()?; // until SIGINT/SIGTERM
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Threads: loop K runs on a thread named `sockloop-K`. With two loops or
//! more the caller's thread runs the *base* loop, which serves no
//! connection: it reads the signalfd, runs the [`Balance::Handoff`]
//! acceptors, and waits for the loops. With one loop, that loop runs on
//! the caller's thread and every balance mode is a plain listener.
//!
//! Files: `mod.rs` (this: [`Cluster`], [`ClusterHandle`], start and
//! shutdown), `listeners.rs` (the reuseport group), `handoff.rs` (the
//! acceptor and its least-loaded choice). The CPU syscalls (pinning, the
//! reuseport CBPF program) are in `sys/cpu.rs`; `EPOLLEXCLUSIVE` in
//! `poll.rs`; the loops' hooks (inboxes, sibling handles, counters,
//! `on_shutdown`) in the reactor, which knows nothing of this module.

mod handoff;
mod listeners;

use crate::poll::Interest;
use crate::reactor::{
    ConnId, Context, EventLoop, Handler, HandlerFactory, LoopHandle, LoopStats, ServerConfig,
    DEFAULT_SHUTDOWN_GRACE,
};
use crate::sys;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How a listener's connections are spread over the loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// One `SO_REUSEPORT` socket per loop; the kernel picks the socket by a
    /// hash of the connection's addresses and ports: even over many
    /// connections, no shared state, blind to how busy a loop is (a loop
    /// stuck in a long callback keeps receiving its share, which waits).
    /// With [`Cluster::pin`], a classic-BPF program steers each connection
    /// to the loop pinned to the CPU that received it. The default.
    #[default]
    Reuseport,
    /// One socket registered in every loop with `EPOLLEXCLUSIVE`: a new
    /// connection wakes one *waiting* loop (a busy one is skipped), and each
    /// loop re-registers after [`crate::reactor::EXCLUSIVE_ROTATE`] accepts
    /// so that the first registered loop does not take everything.
    Exclusive,
    /// One acceptor, on the base loop, hands each connection to the loop
    /// with the fewest live connections. Fairest, and never stalled by a
    /// busy loop; costs a cross-thread post (batched) per accept burst.
    Handoff,
}

impl FromStr for Balance {
    type Err = String;

    /// `reuseport`, `exclusive` or `handoff`.
    fn from_str(s: &str) -> Result<Balance, String> {
        match s {
            "reuseport" => Ok(Balance::Reuseport),
            "exclusive" => Ok(Balance::Exclusive),
            "handoff" => Ok(Balance::Handoff),
            _ => Err(format!(
                "unknown balance {s:?} (reuseport, exclusive or handoff)"
            )),
        }
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Balance::Reuseport => "reuseport",
            Balance::Exclusive => "exclusive",
            Balance::Handoff => "handoff",
        })
    }
}

type MakeFactory = Arc<dyn Fn(usize) -> HandlerFactory + Send + Sync>;
type Setup = Arc<dyn Fn(&mut EventLoop) + Send + Sync>;

/// One listener of the cluster, bound at `Cluster::listen`.
struct Spec {
    balance: Balance,
    config: ServerConfig,
    make: MakeFactory,
    /// Reuseport: one per loop; otherwise one.
    sockets: Vec<OwnedFd>,
}

/// What the loops, the base loop and the handles share.
struct Control {
    shutdown_req: AtomicBool,
    grace_ms: AtomicU64,
    exits: Mutex<Vec<(usize, Result<LoopStats, String>)>>,
}

impl Control {
    fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms.load(Ordering::Relaxed))
    }
    fn push_exit(&self, i: usize, res: Result<LoopStats, String>) {
        match self.exits.lock() {
            Ok(mut v) => v.push((i, res)),
            Err(p) => p.into_inner().push((i, res)),
        }
    }
    fn take_exits(&self) -> Vec<(usize, Result<LoopStats, String>)> {
        match self.exits.lock() {
            Ok(mut v) => std::mem::take(&mut *v),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

/// Holds every loop (and the base loop's acceptors) until all loops have
/// built themselves and registered their listeners: a loop that accepted
/// early could use up the descriptors another still needs to start (its
/// epoll, its spare), which would fail that loop and with it the cluster.
struct Gate {
    n: usize,
    /// (loops ready, one failed)
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// One loop is ready; waits for the others. False if one failed.
    fn arrive(&self) -> bool {
        let mut st = self.lock();
        st.0 += 1;
        self.cv.notify_all();
        self.wait_on(st)
    }
    /// Waits for every loop. False if one failed.
    fn wait(&self) -> bool {
        let st = self.lock();
        self.wait_on(st)
    }
    fn wait_on(&self, mut st: std::sync::MutexGuard<'_, (usize, bool)>) -> bool {
        while st.0 < self.n && !st.1 {
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        !st.1 || st.0 >= self.n
    }
    /// A loop ended (failed to start, or later: then nobody waits).
    fn fail(&self) {
        self.lock().1 = true;
        self.cv.notify_all();
    }
}

/// N event loops, one per thread, serving the same listeners. Build it,
/// [`Cluster::listen`], then [`Cluster::run`]; stop it with a signal
/// ([`Cluster::shutdown_on_signals`]) or [`ClusterHandle::shutdown`].
pub struct Cluster {
    threads: usize,
    pin: bool,
    signals: Vec<i32>,
    setup: Option<Setup>,
    specs: Vec<Spec>,
    loops: Arc<[LoopHandle]>,
    base: LoopHandle,
    control: Arc<Control>,
}

/// A thread-safe handle to a [`Cluster`]: post work to its loops, shut it
/// down. Cheap to clone; valid before `run` (work waits for the loops).
#[derive(Clone)]
pub struct ClusterHandle {
    loops: Arc<[LoopHandle]>,
    base: Option<LoopHandle>,
    control: Arc<Control>,
}

impl Cluster {
    /// A cluster of `threads` loops (threads `sockloop-0` ..
    /// `sockloop-{threads-1}`, started by [`Cluster::run`]).
    ///
    /// # Errors
    /// `InvalidInput` for 0 threads; EMFILE/ENFILE from `eventfd`.
    pub fn new(threads: usize) -> io::Result<Cluster> {
        if threads == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a cluster needs at least one loop",
            ));
        }
        let loops = (0..threads)
            .map(|_| LoopHandle::detached())
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Cluster {
            threads,
            pin: false,
            signals: Vec::new(),
            setup: None,
            specs: Vec::new(),
            loops: loops.into(),
            base: LoopHandle::detached()?,
            control: Arc::new(Control {
                shutdown_req: AtomicBool::new(false),
                grace_ms: AtomicU64::new(DEFAULT_SHUTDOWN_GRACE.as_millis() as u64),
                exits: Mutex::new(Vec::new()),
            }),
        })
    }

    /// How many loops the cluster runs.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Pins loop K to the K-th CPU this thread may run on (modulo their
    /// number). With [`Balance::Reuseport`] and no more loops than CPUs, it
    /// also attaches the CBPF program that sends each connection to the
    /// loop of the CPU that received it. With one loop, that loop is the
    /// caller's thread, which stays pinned after `run`. Call it before
    /// [`Cluster::listen`] so that the program steers from the first
    /// connection on; called after, connections that arrive before `run`
    /// are spread by hash. Default off.
    pub fn pin(&mut self, on: bool) -> &mut Cluster {
        self.pin = on;
        self
    }

    /// How long a graceful shutdown lets connections finish before the
    /// rest are closed with [`crate::CloseReason::Shutdown`]. Default
    /// [`DEFAULT_SHUTDOWN_GRACE`] (10 s).
    pub fn shutdown_grace(&mut self, grace: Duration) -> &mut Cluster {
        self.control.grace_ms.store(
            grace.as_millis().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
        self
    }

    /// Shuts the whole cluster down gracefully when one of `signals`
    /// arrives: [`Cluster::run`] blocks them on the caller's thread before
    /// starting the loops (which inherit the mask) and reads them from one
    /// signalfd; every loop is then told. Other threads of the process
    /// must block them too, or the kernel may deliver them there.
    pub fn shutdown_on_signals(&mut self, signals: &[i32]) -> &mut Cluster {
        self.signals = signals.to_vec();
        self
    }

    /// Runs `setup` on each loop's thread once its loop exists, before its
    /// listeners are registered (e.g. [`EventLoop::set_conn_config`]).
    pub fn on_loop_start<S>(&mut self, setup: S) -> &mut Cluster
    where
        S: Fn(&mut EventLoop) + Send + Sync + 'static,
    {
        self.setup = Some(Arc::new(setup));
        self
    }

    /// A handle to post work to the loops and shut the cluster down.
    pub fn handle(&self) -> ClusterHandle {
        ClusterHandle {
            loops: self.loops.clone(),
            base: (self.threads > 1).then(|| self.base.clone()),
            control: self.control.clone(),
        }
    }

    /// Binds `addr` now and serves it on every loop once the cluster runs,
    /// spreading connections by `balance`. `make` runs once on each loop's
    /// thread with the loop's index and returns that loop's handler
    /// factory, so handlers and what they share on a loop need not be
    /// `Send`. `config.max_conns` is for the whole cluster: each loop
    /// serves at most its share (rounded up). Returns the bound address
    /// (port 0 picks a free port).
    ///
    /// # Errors
    /// As `TcpListener::bind` (EADDRINUSE, EACCES, EADDRNOTAVAIL, EMFILE).
    pub fn listen<M, F>(
        &mut self,
        addr: SocketAddr,
        balance: Balance,
        mut config: ServerConfig,
        make: M,
    ) -> io::Result<SocketAddr>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut(ConnId) -> Box<dyn Handler> + 'static,
    {
        let (sockets, bound) = if balance == Balance::Reuseport && self.threads > 1 {
            listeners::reuseport_group(addr, self.threads)?
        } else {
            let (fd, bound) = listeners::single(addr)?;
            (vec![fd], bound)
        };
        config.max_conns = config.max_conns.div_ceil(self.threads).max(1);
        if self.pin && sockets.len() > 1 {
            // Steer from the first SYN on: the group already listens, and a
            // connection that arrives before `run` would otherwise be
            // queued by hash on another loop's socket. `run` attaches it
            // again with the CPUs it pins the loops to.
            self.attach_cpu_program(&sockets[0], &sys::cpu::allowed_cpus()?);
        }
        self.specs.push(Spec {
            balance,
            config,
            make: Arc::new(move |i| Box::new(make(i)) as HandlerFactory),
            sockets,
        });
        Ok(bound)
    }

    /// Starts the loops and serves until a graceful shutdown has ended on
    /// every loop (or a loop's `run` returned, which shuts the others
    /// down). Logs each loop's counters at info level and returns them,
    /// loop 0 first.
    ///
    /// # Errors
    /// Failures to start (signalfd, epoll, `EPOLLEXCLUSIVE` on old kernels,
    /// thread spawn); a loop that failed or panicked (the others are shut
    /// down first).
    pub fn run(mut self) -> io::Result<Vec<LoopStats>> {
        if let Err(e) = sys::rlimit::raise_nofile_to_hard() {
            log::debug!("cannot raise RLIMIT_NOFILE: {e}");
        }
        let cpus = if self.pin {
            sys::cpu::allowed_cpus()?
        } else {
            Vec::new()
        };
        if self.threads == 1 {
            return self.run_one(&cpus);
        }
        self.attach_cpu_programs(&cpus);
        if !self.signals.is_empty() {
            sys::signal::block(&self.signals)?;
        }
        let mut base = EventLoop::with_shared(self.base.shared.clone())?;
        let shutdown = self.control.clone();
        if !self.signals.is_empty() {
            let fd = sys::signal::signalfd(&self.signals)?;
            base.watch(fd, Interest::READABLE, move |fd, ctx, _| {
                let mut got = None;
                while let Ok(Some(sig)) = sys::signal::read_signal(fd.as_fd()) {
                    got = Some(sig);
                }
                if let Some(sig) = got {
                    log::info!("signal {sig}: shutting the cluster down gracefully");
                    shutdown.shutdown_req.store(true, Ordering::Release);
                    ctx.stop();
                }
            })?;
        }
        // Handoff acceptors on the base loop.
        let loads: Vec<Arc<AtomicU64>> = (0..self.threads)
            .map(|_| Arc::new(AtomicU64::new(0)))
            .collect();
        let balancer = Rc::new(RefCell::new(handoff::Balancer::new(
            self.loops.clone(),
            loads.clone(),
        )));
        let mut acceptors = Vec::new();
        let mut inbox = 0;
        for spec in &mut self.specs {
            if spec.balance != Balance::Handoff {
                continue;
            }
            let fd = spec
                .sockets
                .pop()
                .expect("a handoff listener has its socket");
            let acc =
                handoff::Acceptor::new(fd, inbox, balancer.clone(), spec.config.accept_pause)?;
            let watched = acc.clone();
            let tok = base.watch(
                handoff::Watched(acc.clone()),
                Interest::READABLE,
                move |_, ctx, _| watched.accept_ready(ctx),
            )?;
            acceptors.push((acc, tok));
            inbox += 1;
        }
        let gate = Arc::new(Gate {
            n: self.threads,
            state: Mutex::new((0, false)),
            cv: Condvar::new(),
        });
        let threads = self.spawn_loops(&cpus, &loads, &gate)?;
        // No accepting (here or in the loops) before every loop is set up.
        gate.wait();
        let mut stats: Vec<Option<LoopStats>> = vec![None; self.threads];
        let mut failure: Option<String> = None;
        let mut exited = 0;
        let mut shutting_down = false;
        while exited < self.threads {
            if let Err(e) = base.run() {
                failure.get_or_insert(format!("base loop: {e}"));
                self.control.shutdown_req.store(true, Ordering::Release);
            }
            for (i, res) in self.control.take_exits() {
                exited += 1;
                match res {
                    Ok(s) => stats[i] = Some(s),
                    Err(e) => {
                        failure.get_or_insert(format!("loop {i}: {e}"));
                    }
                }
                // One loop ending ends the cluster.
                self.control.shutdown_req.store(true, Ordering::Release);
            }
            if self.control.shutdown_req.load(Ordering::Acquire) && !shutting_down {
                shutting_down = true;
                // Hand out what the handoff queues hold first: those posts
                // reach each loop before its shutdown (per-sender order).
                for (acc, tok) in acceptors.drain(..) {
                    acc.drain_and_close(&mut base.context());
                    base.unwatch(tok);
                }
                let grace = self.control.grace();
                for (i, h) in self.loops.iter().enumerate() {
                    if let Err(e) = h.post(move |ctx| ctx.shutdown(grace)) {
                        log::error!("cannot tell loop {i} to shut down: {e}");
                    }
                }
            }
        }
        for (i, t) in threads.into_iter().enumerate() {
            if t.join().is_err() {
                failure.get_or_insert(format!("loop {i} panicked"));
            }
        }
        let stats: Vec<LoopStats> = stats.into_iter().map(Option::unwrap_or_default).collect();
        for (i, s) in stats.iter().enumerate() {
            log::info!("sockloop-{i}: {s}");
        }
        match failure {
            Some(msg) => Err(io::Error::other(msg)),
            None => Ok(stats),
        }
    }

    /// One loop: on the caller's thread, with its own signalfd.
    fn run_one(self, cpus: &[usize]) -> io::Result<Vec<LoopStats>> {
        if let Some(&cpu) = cpus.first() {
            if let Err(e) = sys::cpu::pin_current_thread(cpu) {
                log::warn!("cannot pin the loop to CPU {cpu}: {e}");
            }
        }
        let mut ev = EventLoop::with_shared(self.loops[0].shared.clone())?;
        ev.join_group(0, self.loops.clone(), None);
        ev.set_shutdown_grace(self.control.grace());
        if !self.signals.is_empty() {
            ev.shutdown_on_signals(&self.signals)?;
        }
        if let Some(setup) = &self.setup {
            setup(&mut ev);
        }
        for spec in self.specs {
            for fd in spec.sockets {
                ev.listen(fd, spec.config.clone(), (spec.make)(0))?;
            }
        }
        ev.run()?;
        let stats = ev.stats();
        log::info!("sockloop-0: {stats}");
        Ok(vec![stats])
    }

    /// `--pin` with reuseport: steer each connection to its CPU's loop.
    fn attach_cpu_programs(&self, cpus: &[usize]) {
        for spec in &self.specs {
            if spec.balance == Balance::Reuseport && spec.sockets.len() > 1 {
                self.attach_cpu_program(&spec.sockets[0], cpus);
            }
        }
    }

    /// Attaches (or replaces) the CPU program of the reuseport group of
    /// `first`; when it cannot, connections are spread by hash, which is
    /// logged, not an error.
    fn attach_cpu_program(&self, first: &OwnedFd, cpus: &[usize]) {
        if cpus.is_empty() {
            return;
        }
        if self.threads > cpus.len() {
            log::warn!(
                "{} loops on {} CPUs: connections are spread by hash, not by CPU",
                self.threads,
                cpus.len()
            );
            return;
        }
        if let Err(e) = sys::cpu::attach_reuseport_cpu_program(first.as_fd(), &cpus[..self.threads])
        {
            log::warn!("cannot attach the reuseport CPU program: {e}");
        }
    }

    /// Starts the worker threads; each takes its sockets (or a `dup` of the
    /// shared one) and builds its loop and factories there.
    fn spawn_loops(
        &mut self,
        cpus: &[usize],
        loads: &[Arc<AtomicU64>],
        gate: &Arc<Gate>,
    ) -> io::Result<Vec<std::thread::JoinHandle<()>>> {
        // What each worker registers, in spec order.
        let mut per_loop: Vec<Vec<Registration>> = (0..self.threads).map(|_| Vec::new()).collect();
        for spec in &mut self.specs {
            match spec.balance {
                Balance::Reuseport => {
                    for (i, fd) in spec.sockets.drain(..).enumerate() {
                        per_loop[i].push(Registration {
                            kind: Kind::Plain(fd),
                            config: spec.config.clone(),
                            make: spec.make.clone(),
                        });
                    }
                }
                Balance::Exclusive => {
                    let fd = spec
                        .sockets
                        .pop()
                        .expect("an exclusive listener has its socket");
                    // Each loop owns a descriptor of the one socket; the
                    // socket closes with the last of them.
                    let mut fds = (1..self.threads)
                        .map(|_| sys::fd::dup(fd.as_fd()))
                        .collect::<io::Result<Vec<_>>>()?;
                    fds.push(fd);
                    for (regs, own) in per_loop.iter_mut().zip(fds) {
                        regs.push(Registration {
                            kind: Kind::Exclusive(own),
                            config: spec.config.clone(),
                            make: spec.make.clone(),
                        });
                    }
                }
                Balance::Handoff => {
                    for regs in per_loop.iter_mut() {
                        regs.push(Registration {
                            kind: Kind::Inbox,
                            config: spec.config.clone(),
                            make: spec.make.clone(),
                        });
                    }
                }
            }
        }
        let mut threads = Vec::with_capacity(self.threads);
        for (i, regs) in per_loop.into_iter().enumerate() {
            let start = Start {
                index: i,
                cpu: (!cpus.is_empty()).then(|| cpus[i % cpus.len()]),
                loops: self.loops.clone(),
                base: self.base.clone(),
                control: self.control.clone(),
                load: loads[i].clone(),
                setup: self.setup.clone(),
                regs,
                gate: gate.clone(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("sockloop-{i}"))
                .spawn(move || start.run());
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Stop the ones already running before reporting.
                    gate.fail();
                    for h in self.loops.iter().take(i) {
                        let _ = h.post(|ctx| ctx.shutdown(Duration::ZERO));
                    }
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(e);
                }
            }
        }
        Ok(threads)
    }
}

enum Kind {
    Plain(OwnedFd),
    Exclusive(OwnedFd),
    Inbox,
}

struct Registration {
    kind: Kind,
    config: ServerConfig,
    make: MakeFactory,
}

/// Everything a worker thread needs to build and run its loop.
struct Start {
    index: usize,
    cpu: Option<usize>,
    loops: Arc<[LoopHandle]>,
    base: LoopHandle,
    control: Arc<Control>,
    load: Arc<AtomicU64>,
    setup: Option<Setup>,
    regs: Vec<Registration>,
    gate: Arc<Gate>,
}

/// Reports a worker's end to the base loop, also when it panics.
struct ExitGuard {
    index: usize,
    base: LoopHandle,
    control: Arc<Control>,
    gate: Arc<Gate>,
    result: Option<Result<LoopStats, String>>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Releases the others if this loop failed before the gate.
        self.gate.fail();
        let res = self
            .result
            .take()
            .unwrap_or_else(|| Err("panicked".to_string()));
        self.control.push_exit(self.index, res);
        if let Err(e) = self.base.post(|ctx| ctx.stop()) {
            log::error!(
                "loop {} cannot tell the base loop it ended: {e}",
                self.index
            );
        }
    }
}

impl Start {
    fn run(self) {
        let mut guard = ExitGuard {
            index: self.index,
            base: self.base.clone(),
            control: self.control.clone(),
            gate: self.gate.clone(),
            result: None,
        };
        let res = self.serve();
        guard.result = Some(res.map_err(|e| e.to_string()));
    }

    fn serve(self) -> io::Result<LoopStats> {
        if let Some(cpu) = self.cpu {
            if let Err(e) = sys::cpu::pin_current_thread(cpu) {
                log::warn!("cannot pin loop {} to CPU {cpu}: {e}", self.index);
            }
        }
        let shared = self.loops[self.index].shared.clone();
        let mut ev = EventLoop::with_shared(shared)?;
        ev.join_group(self.index, self.loops.clone(), Some(self.load));
        ev.set_shutdown_grace(self.control.grace());
        if let Some(setup) = &self.setup {
            setup(&mut ev);
        }
        for reg in self.regs {
            let factory = (reg.make)(self.index);
            match reg.kind {
                Kind::Plain(fd) => {
                    ev.listen(fd, reg.config, factory)?;
                }
                Kind::Exclusive(fd) => {
                    ev.listen_exclusive(fd, reg.config, factory)?;
                }
                Kind::Inbox => {
                    ev.add_inbox(reg.config, factory);
                }
            }
        }
        if !self.gate.arrive() {
            // Another loop could not start: the cluster is ending.
            return Ok(ev.stats());
        }
        ev.run()?;
        Ok(ev.stats())
    }
}

impl ClusterHandle {
    /// How many loops the cluster has.
    pub fn loop_count(&self) -> usize {
        self.loops.len()
    }

    /// Runs `task` on loop `index` at its next turn, with that loop's
    /// `Context`. Tasks one thread posts to one loop run in order.
    ///
    /// # Errors
    /// `InvalidInput` for an index out of range; the errno of writing the
    /// loop's eventfd.
    pub fn post_to<F>(&self, index: usize, task: F) -> io::Result<()>
    where
        F: FnOnce(&mut Context<'_>) + Send + 'static,
    {
        match self.loops.get(index) {
            Some(h) => h.post(task),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no loop {index} in a cluster of {}", self.loops.len()),
            )),
        }
    }

    /// Runs `task` on every loop, each with its own `Context`.
    ///
    /// # Errors
    /// The first error of writing a loop's eventfd.
    pub fn post_all<F>(&self, task: F) -> io::Result<()>
    where
        F: Fn(&mut Context<'_>) + Send + Sync + 'static,
    {
        let task = Arc::new(task);
        for h in self.loops.iter() {
            let t = task.clone();
            h.post(move |ctx| t(ctx))?;
        }
        Ok(())
    }

    /// Shuts every loop down gracefully (as a signal would): stop
    /// accepting, accept what the listen queues hold, deliver what each
    /// connection has received, `Handler::on_shutdown`, close what remains
    /// after the cluster's grace.
    ///
    /// # Errors
    /// The errno of writing an eventfd.
    pub fn shutdown(&self) -> io::Result<()> {
        match &self.base {
            Some(base) => {
                self.control.shutdown_req.store(true, Ordering::Release);
                base.post(|ctx| ctx.stop())
            }
            None => self.loops[0].shutdown(self.control.grace()),
        }
    }
}
