//! The multi-loop layer over loopback: how each balance mode spreads
//! connections, that a stuck loop does not hold the others back, that
//! cross-loop posts keep their order, that a shutdown accepts and answers
//! what the listen queues hold and resets nothing, the threads' names, and
//! CPU steering with `--pin`.

use sockloop::cluster::{Balance, Cluster, ClusterHandle};
use sockloop::{Buffer, Context, Handler, LoopStats, ServerConfig};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Says which loop it runs on (one byte, `'0' + index`) when it opens,
/// then echoes.
struct WhoEcho {
    index: usize,
}

impl Handler for WhoEcho {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx.write(&[b'0' + self.index as u8]);
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if ctx.write(input.as_slice()).is_ok() {
            input.clear();
        }
    }
}

struct Running {
    addr: SocketAddr,
    handle: ClusterHandle,
    thread: Option<JoinHandle<std::io::Result<Vec<LoopStats>>>>,
}

impl Running {
    fn start(threads: usize, balance: Balance) -> Running {
        Running::start_with(threads, balance, false)
    }

    fn start_with(threads: usize, balance: Balance, pin: bool) -> Running {
        let mut cluster = Cluster::new(threads).unwrap();
        cluster.pin(pin).shutdown_grace(Duration::from_secs(5));
        let addr = cluster
            .listen(
                "127.0.0.1:0".parse().unwrap(),
                balance,
                ServerConfig::default(),
                |index| move |_| Box::new(WhoEcho { index }) as Box<dyn Handler>,
            )
            .unwrap();
        let handle = cluster.handle();
        let thread = Some(thread::spawn(move || cluster.run()));
        Running {
            addr,
            handle,
            thread,
        }
    }

    /// Shuts down and returns each loop's counters.
    fn stop(mut self) -> Vec<LoopStats> {
        self.handle.shutdown().unwrap();
        self.thread.take().unwrap().join().unwrap().unwrap()
    }

    /// Blocks loop `i` in a posted task until the returned sender is
    /// dropped or sent to; returns once the loop is inside the task.
    fn block_loop(&self, i: usize) -> mpsc::Sender<()> {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (inside_tx, inside_rx) = mpsc::channel::<()>();
        self.handle
            .post_to(i, move |_ctx| {
                let _ = inside_tx.send(());
                // The stuck callback under test; bounded so a failing test
                // cannot hang.
                let _ = release_rx.recv_timeout(Duration::from_secs(30));
            })
            .unwrap();
        inside_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the loop ran the blocking task");
        release_tx
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = self.handle.shutdown();
            let _ = t.join();
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// The loop index a fresh connection's server announces.
fn which_loop(s: &mut TcpStream) -> usize {
    let mut b = [0u8; 1];
    s.read_exact(&mut b).expect("the loop's index");
    (b[0] - b'0') as usize
}

fn spread(balance: Balance) -> (Vec<usize>, Vec<LoopStats>) {
    let cluster = Running::start(4, balance);
    let mut counts = vec![0usize; 4];
    let mut conns = Vec::new();
    for _ in 0..400 {
        let mut s = connect(cluster.addr);
        counts[which_loop(&mut s)] += 1;
        conns.push(s); // long-lived: all 400 stay open
    }
    // Every connection is served by the loop that announced itself.
    for s in conns.iter_mut().step_by(37) {
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
    }
    drop(conns);
    let stats = cluster.stop();
    eprintln!("{balance}: connections per loop {counts:?}");
    (counts, stats)
}

fn check_stats(counts: &[usize], stats: &[LoopStats]) {
    assert_eq!(stats.len(), 4);
    for (i, s) in stats.iter().enumerate() {
        assert_eq!(s.accepted, counts[i] as u64, "loop {i}: {s}");
        assert_eq!(s.live, 0, "loop {i} ended with connections: {s}");
        assert!(s.peak_live <= counts[i], "loop {i}: {s}");
        if counts[i] > 0 {
            assert!(s.turns > 0 && s.events > 0, "loop {i}: {s}");
            assert!(s.bytes_out >= counts[i] as u64, "loop {i}: {s}");
        }
    }
    let bytes_in: u64 = stats.iter().map(|s| s.bytes_in).sum();
    assert_eq!(bytes_in, 4 * 400_usize.div_ceil(37) as u64);
}

#[test]
fn handoff_spreads_400_connections_within_one_of_fair() {
    let (counts, stats) = spread(Balance::Handoff);
    let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(max - min <= 1, "handoff is not fair: {counts:?}");
    check_stats(&counts, &stats);
}

#[test]
fn reuseport_spreads_400_connections_over_every_loop() {
    let (counts, stats) = spread(Balance::Reuseport);
    // A hash of the client's port: roughly even, never empty.
    assert!(counts.iter().all(|&c| c >= 40), "reuseport: {counts:?}");
    check_stats(&counts, &stats);
}

#[test]
fn exclusive_spreads_400_connections_over_every_loop() {
    let (counts, stats) = spread(Balance::Exclusive);
    // The rotation hands the listener on every EXCLUSIVE_ROTATE accepts.
    assert!(counts.iter().all(|&c| c >= 40), "exclusive: {counts:?}");
    check_stats(&counts, &stats);
}

/// Loop 0 is stuck in a callback; 40 connections arrive. Returns how many
/// were served (with the loop that served them) while it was stuck, and
/// checks that every one is served once it is released.
fn with_loop_0_stuck(balance: Balance, expect_while_stuck: usize) -> Vec<usize> {
    let cluster = Running::start(4, balance);
    let release = cluster.block_loop(0);
    let (tx, rx) = mpsc::channel();
    let mut clients = Vec::new();
    for n in 0..40 {
        let tx = tx.clone();
        let addr = cluster.addr;
        clients.push(thread::spawn(move || {
            let mut s = connect(addr);
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let i = which_loop(&mut s);
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            let _ = tx.send((n, i));
        }));
    }
    drop(tx);
    let mut served = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while served.len() < 40 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((_, i)) => served.push(i),
            Err(_) => break,
        }
    }
    eprintln!(
        "{balance}: {} of 40 served while loop 0 was stuck",
        served.len()
    );
    assert!(
        served.len() >= expect_while_stuck,
        "{balance}: only {} served while loop 0 was stuck",
        served.len()
    );
    assert!(
        served.iter().all(|&i| i != 0),
        "the stuck loop served someone"
    );
    drop(release);
    let mut total = served.len();
    while rx.recv_timeout(Duration::from_secs(20)).is_ok() {
        total += 1;
    }
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(total, 40, "{balance}: not every connection was served");
    cluster.stop();
    served
}

#[test]
fn a_stuck_loop_does_not_stall_the_others_handoff() {
    // Live counts are equal but for the stuck loop's in-flight ones: it
    // gets its quarter, the other three quarters are served at once.
    with_loop_0_stuck(Balance::Handoff, 29);
}

#[test]
fn a_stuck_loop_does_not_stall_the_others_exclusive() {
    // The kernel skips an epoll instance with no waiter: every connection
    // goes to a loop that is waiting.
    with_loop_0_stuck(Balance::Exclusive, 40);
}

#[test]
fn a_stuck_loop_does_not_stall_the_others_reuseport() {
    // The hash sends about a quarter to the stuck loop's socket, where
    // they wait; the others are served.
    with_loop_0_stuck(Balance::Reuseport, 10);
}

#[test]
fn cross_loop_posts_arrive_in_order() {
    let cluster = Running::start(4, Balance::Reuseport);
    let (tx, rx) = mpsc::channel::<(usize, usize, usize)>();
    const N: usize = 500;
    // Every loop sends N numbered posts to every loop (itself included),
    // half with post_to, half with post_all.
    for from in 0..4 {
        let tx = tx.clone();
        cluster
            .handle
            .post_to(from, move |ctx| {
                assert_eq!(ctx.loop_index(), from);
                assert_eq!(ctx.loop_count(), 4);
                for seq in 0..N {
                    if seq % 2 == 0 {
                        for to in 0..4 {
                            let tx = tx.clone();
                            ctx.post_to(to, move |ctx| {
                                let _ = tx.send((from, ctx.loop_index(), seq));
                            })
                            .unwrap();
                        }
                    } else {
                        let tx = std::sync::Mutex::new(tx.clone());
                        ctx.post_all(move |ctx| {
                            let _ = tx.lock().unwrap().send((from, ctx.loop_index(), seq));
                        })
                        .unwrap();
                    }
                }
                assert!(ctx.post_to(4, |_| {}).is_err());
            })
            .unwrap();
    }
    drop(tx);
    let mut next = [[0usize; 4]; 4];
    let mut got = 0;
    while got < 4 * 4 * N {
        let (from, to, seq) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("all posts delivered");
        assert_eq!(
            seq, next[from][to],
            "posts from {from} to {to} out of order"
        );
        next[from][to] += 1;
        got += 1;
    }
    cluster.stop();
}

#[test]
fn loops_run_on_threads_named_sockloop_k() {
    let cluster = Running::start(3, Balance::Reuseport);
    // The loops exist once each has announced itself on a connection...
    // but a connection lands on one loop only: ask each loop directly.
    let (tx, rx) = mpsc::channel();
    for i in 0..3 {
        let tx = tx.clone();
        cluster
            .handle
            .post_to(i, move |_| {
                let _ = tx.send(thread::current().name().map(str::to_string));
            })
            .unwrap();
    }
    let mut names: Vec<String> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["sockloop-0", "sockloop-1", "sockloop-2"]);
    // And the kernel knows them by those names (ps, top -H, perf).
    let comms: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .filter(|c| c.starts_with("sockloop-"))
        .collect();
    // (Other tests of this binary run clusters at the same time.)
    for name in ["sockloop-0", "sockloop-1", "sockloop-2"] {
        assert!(comms.iter().any(|c| c == name), "{name} not in {comms:?}");
    }
    cluster.stop();
}

/// Every loop is stuck while 40 clients connect and send a line, so their
/// connections wait in the listen queues (or, for handoff, in the loops'
/// task queues); then the cluster shuts down. Each client must get its
/// line back and an orderly end of stream: closing a listener with
/// connections in its queue would reset them.
fn shutdown_answers_what_the_queues_hold(balance: Balance) {
    let cluster = Running::start(4, balance);
    let releases: Vec<_> = (0..4).map(|i| cluster.block_loop(i)).collect();
    let mut clients = Vec::new();
    for n in 0..40 {
        let mut s = connect(cluster.addr);
        s.write_all(format!("line {n}\n").as_bytes()).unwrap();
        clients.push((n, s));
    }
    cluster.handle.shutdown().unwrap();
    drop(releases);
    for (n, mut s) in clients {
        let mut got = Vec::new();
        match s.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                panic!("{balance}: client {n} was reset after {got:?}")
            }
            Err(e) => panic!("{balance}: client {n}: {e}"),
        }
        assert_eq!(&got[1..], format!("line {n}\n").as_bytes(), "client {n}");
    }
    let stats = cluster.stop();
    let accepted: u64 = stats.iter().map(|s| s.accepted).sum();
    assert_eq!(accepted, 40);
}

#[test]
fn shutdown_answers_what_the_queues_hold_reuseport() {
    shutdown_answers_what_the_queues_hold(Balance::Reuseport);
}

#[test]
fn shutdown_answers_what_the_queues_hold_exclusive() {
    shutdown_answers_what_the_queues_hold(Balance::Exclusive);
}

#[test]
fn shutdown_answers_what_the_queues_hold_handoff() {
    shutdown_answers_what_the_queues_hold(Balance::Handoff);
}

#[test]
fn one_loop_serves_every_mode_on_the_callers_thread() {
    for balance in [Balance::Reuseport, Balance::Exclusive, Balance::Handoff] {
        let cluster = Running::start(1, balance);
        let mut s = connect(cluster.addr);
        assert_eq!(which_loop(&mut s), 0);
        s.write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
        drop(s);
        let stats = cluster.stop();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].accepted, 1);
    }
}

#[test]
fn zero_threads_and_bad_balance_names_are_errors() {
    assert!(Cluster::new(0).is_err());
    assert_eq!("handoff".parse::<Balance>(), Ok(Balance::Handoff));
    assert_eq!("exclusive".parse::<Balance>(), Ok(Balance::Exclusive));
    assert_eq!("reuseport".parse::<Balance>(), Ok(Balance::Reuseport));
    assert!("roundrobin".parse::<Balance>().is_err());
}

#[test]
fn pinned_reuseport_serves_a_connection_on_the_loop_of_its_cpu() {
    let cpus = sockloop::sys::cpu::allowed_cpus().unwrap();
    if cpus.len() < 2 {
        eprintln!("SKIPPED: needs 2 CPUs, this thread may use {cpus:?}");
        return;
    }
    let cluster = Running::start_with(2, Balance::Reuseport, true);
    for (k, &cpu) in cpus.iter().take(2).enumerate() {
        let addr = cluster.addr;
        let landed: Vec<usize> = thread::spawn(move || {
            sockloop::sys::cpu::pin_current_thread(cpu).unwrap();
            (0..20).map(|_| which_loop(&mut connect(addr))).collect()
        })
        .join()
        .unwrap();
        // Over loopback the SYN is processed on the sending CPU, so the
        // program picks the loop pinned there.
        assert!(
            landed.iter().all(|&l| l == k),
            "client on CPU {cpu}: connections served by loops {landed:?}, expected {k}"
        );
    }
    cluster.stop();
}

#[test]
fn an_exclusive_registration_is_never_modified_only_deleted_and_added() {
    use sockloop::poll::{Interest, Poller};
    use sockloop::Token;
    use std::os::fd::AsFd;
    let listener = sockloop::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let fd: std::os::fd::OwnedFd = listener.into();
    let poller = Poller::new(8).unwrap();
    let tok = Token::from_u64(7);
    poller
        .add(fd.as_fd(), tok, Interest::EXCLUSIVE_READABLE)
        .unwrap();
    let err = poller
        .modify(fd.as_fd(), tok, Interest::EXCLUSIVE_READABLE)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    poller.delete(fd.as_fd()).unwrap();
    poller
        .add(fd.as_fd(), tok, Interest::EXCLUSIVE_READABLE)
        .unwrap();
}
