//! The event loop over real loopback sockets: one test per behaviour.

use sockloop::net::TcpListener;
use sockloop::sys;
use sockloop::{
    Buffer, CloseReason, ConnId, Context, EventLoop, Handler, LoopHandle, ServerConfig,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Log = Arc<Mutex<Vec<String>>>;

/// Runs a loop on its own thread; `setup` registers what it serves and
/// returns the address. The loop runs until stopped through the handle.
fn spawn_loop<F>(setup: F) -> (SocketAddr, LoopHandle, JoinHandle<()>)
where
    F: FnOnce(&mut EventLoop) -> SocketAddr + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().expect("loop");
        let addr = setup(&mut ev);
        tx.send((addr, ev.handle())).unwrap();
        ev.run().expect("run");
    });
    let (addr, handle) = rx.recv().expect("loop thread started");
    (addr, handle, join)
}

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap()
}

struct Echo {
    log: Option<Log>,
}

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if ctx.write(input.as_slice()).is_ok() {
            input.clear();
        }
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
        if let Some(log) = &self.log {
            log.lock().unwrap().push(format!("{reason:?}"));
        }
    }
}

fn echo_server(config: ServerConfig, log: Option<Log>) -> (SocketAddr, LoopHandle, JoinHandle<()>) {
    spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, config, move |_| Box::new(Echo { log: log.clone() }))
            .unwrap();
        addr
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(7919) >> 3) as u8).collect()
}

fn wait_for(log: &Log, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = log.lock().unwrap().clone();
        if v.len() >= n || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn echo_of_16_mib_is_byte_exact() {
    let (addr, handle, join) = echo_server(ServerConfig::default(), None);
    let data = pattern(16 << 20);
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let to_send = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&to_send).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::with_capacity(data.len());
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "echo differs");
    handle.stop().unwrap();
    join.join().unwrap();
}

/// `on_data` is lent the loop's shared read buffer in place. A handler may
/// take it (`mem::take`, leaving an empty one without an allocation) or
/// shrink it: the loop's next read must still get the whole chunk, never
/// a 0-byte read that would look like the peer's FIN.
#[test]
fn a_handler_that_takes_or_shrinks_the_lent_buffer_does_not_break_the_next_read() {
    struct Taker {
        turn: usize,
    }
    impl Handler for Taker {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            self.turn += 1;
            let got = if self.turn % 2 == 1 {
                std::mem::take(input)
            } else {
                // Empty (everything consumed), but 8 bytes of room.
                let mut small = Buffer::with_max(16);
                small.writable(8).unwrap();
                std::mem::replace(input, small)
            };
            let _ = ctx.write(got.as_slice());
        }
    }
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let closes = log.clone();
    let (addr, handle, join) = spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), move |_| {
            let closes = closes.clone();
            Box::new(Closes {
                inner: Taker { turn: 0 },
                log: closes,
            })
        })
        .unwrap();
        addr
    });
    struct Closes {
        inner: Taker,
        log: Log,
    }
    impl Handler for Closes {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            self.inner.on_data(ctx, input)
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
            self.log.lock().unwrap().push(format!("{reason:?}"));
        }
    }
    let mut s = connect(addr);
    for i in 0..6u8 {
        let msg = [b'a' + i; 10];
        s.write_all(&msg).unwrap();
        let mut back = [0u8; 10];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg, "round trip {i}");
    }
    assert!(
        log.lock().unwrap().is_empty(),
        "closed: {:?}",
        log.lock().unwrap()
    );
    drop(s);
    assert_eq!(wait_for(&log, 1), vec!["PeerClosed".to_string()]);
    handle.stop().unwrap();
    join.join().unwrap();
}

/// Two connections with data in the same epoll batch; whichever handler
/// runs first closes the other. The closed one must get no `on_data` from
/// the event already in the batch, and its slot is only reused after the
/// batch: a connection accepted later gets a different token and none of
/// the old connection's events.
#[test]
fn an_event_for_a_connection_closed_earlier_in_the_batch_is_not_delivered() {
    let log: Log = Arc::default();
    let ids: Arc<Mutex<Vec<ConnId>>> = Arc::default();
    struct Killer {
        log: Log,
        ids: Arc<Mutex<Vec<ConnId>>>,
    }
    impl Handler for Killer {
        fn on_open(&mut self, ctx: &mut Context<'_>) {
            self.ids.lock().unwrap().push(ctx.id().unwrap());
        }
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            let me = ctx.id().unwrap();
            self.log.lock().unwrap().push(format!("data {me}"));
            input.clear();
            let others: Vec<ConnId> = self
                .ids
                .lock()
                .unwrap()
                .iter()
                .copied()
                .filter(|&i| i != me)
                .collect();
            for other in others {
                ctx.abort_conn(other);
            }
            let _ = ctx.write(b"k");
        }
        fn on_close(&mut self, ctx: &mut Context<'_>, _r: &CloseReason) {
            assert!(ctx.id().is_none());
            self.log.lock().unwrap().push("closed".into());
        }
    }
    let (log2, ids2) = (log.clone(), ids.clone());
    let (tx, rx) = mpsc::channel::<()>();
    let (addr, handle, join) = spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), move |_| {
            Box::new(Killer {
                log: log2.clone(),
                ids: ids2.clone(),
            })
        })
        .unwrap();
        addr
    });
    let mut a = connect(addr);
    let mut b = connect(addr);
    // Wait until both are open in the loop.
    while ids.lock().unwrap().len() < 2 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Pause the loop inside a posted task so both writes land in one batch.
    handle
        .post(move |_ctx| {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        })
        .unwrap();
    a.write_all(b"1").unwrap();
    b.write_all(b"2").unwrap();
    tx.send(()).unwrap();
    let events = wait_for(&log, 2);
    let datas = events.iter().filter(|e| e.starts_with("data")).count();
    assert_eq!(
        datas, 1,
        "exactly one handler ran; the other was closed first: {events:?}"
    );
    // A new connection may take the freed slot, with a new generation.
    let old: Vec<ConnId> = ids.lock().unwrap().clone();
    let mut c = connect(addr);
    c.write_all(b"3").unwrap();
    let mut k = [0u8; 1];
    c.read_exact(&mut k).unwrap();
    let all = ids.lock().unwrap().clone();
    let newest = all.last().unwrap();
    assert!(!old.contains(newest), "a reused slot must get a new token");
    handle.stop().unwrap();
    join.join().unwrap();
}

#[test]
fn timers_fire_in_deadline_order_never_early_and_cancelled_ones_never() {
    let fired: Log = Arc::default();
    let f2 = fired.clone();
    let (_addr, handle, join) = spawn_loop(move |ev| {
        let mut ctx = ev.context();
        let start = Instant::now();
        for (name, ms) in [("c", 60u64), ("a", 20), ("b", 40), ("x", 30)] {
            let f = f2.clone();
            let id = ctx.add_timer(Duration::from_millis(ms), move |_ctx| {
                let el = start.elapsed();
                assert!(
                    el >= Duration::from_millis(ms),
                    "{name} fired early: {el:?}"
                );
                f.lock().unwrap().push(name.to_string());
            });
            if name == "x" {
                assert!(ctx.cancel_timer(id));
            }
        }
        let f = f2.clone();
        ctx.add_timer(Duration::from_millis(80), move |ctx| {
            f.lock().unwrap().push("stop".into());
            ctx.stop();
        });
        "127.0.0.1:1".parse().unwrap()
    });
    join.join().unwrap();
    drop(handle);
    assert_eq!(*fired.lock().unwrap(), vec!["a", "b", "c", "stop"]);
}

#[test]
fn waker_runs_work_posted_from_other_threads() {
    let (_addr, handle, join) = spawn_loop(|_ev| "127.0.0.1:1".parse().unwrap());
    let (tx, rx) = mpsc::channel();
    let mut posters = Vec::new();
    for t in 0..4 {
        let h = handle.clone();
        let tx = tx.clone();
        posters.push(std::thread::spawn(move || {
            for i in 0..100 {
                let tx = tx.clone();
                h.post(move |ctx| {
                    assert!(ctx.id().is_none());
                    tx.send(t * 1000 + i).unwrap();
                })
                .unwrap();
            }
        }));
    }
    for p in posters {
        p.join().unwrap();
    }
    let mut got: Vec<i32> = (0..400)
        .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
        .collect();
    got.sort();
    let want: Vec<i32> = (0..4)
        .flat_map(|t| (0..100).map(move |i| t * 1000 + i))
        .collect();
    assert_eq!(got, want);
    handle.stop().unwrap();
    join.join().unwrap();
}

/// A signal whose handler was installed without SA_RESTART interrupts
/// epoll_wait with EINTR; the loop must retry and lose nothing.
#[test]
fn signals_without_sa_restart_do_not_disturb_the_loop() {
    sys::signal::install_counting_handler(sys::signal::SIGUSR1, false).unwrap();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (addr, handle, join) = spawn_loop(move |ev| {
        tid_tx.send(sys::signal::current_thread()).unwrap();
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), |_| Box::new(Echo { log: None }))
            .unwrap();
        addr
    });
    let loop_thread = tid_rx.recv().unwrap();
    let before = sys::signal::delivered_count();
    let mut s = connect(addr);
    for round in 0..50u8 {
        // The loop is idle in epoll_wait between rounds: interrupt it.
        for _ in 0..3 {
            sys::signal::signal_thread(loop_thread, sys::signal::SIGUSR1).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        let msg = [round; 100];
        s.write_all(&msg).unwrap();
        let mut back = [0u8; 100];
        s.read_exact(&mut back).unwrap();
        assert_eq!(back, msg);
    }
    assert!(
        sys::signal::delivered_count() > before,
        "no signal was delivered"
    );
    handle.stop().unwrap();
    join.join().unwrap();
}

/// The raw wrapper really sees EINTR (so the test above is not vacuous),
/// and the retrying one does not.
#[test]
fn epoll_wait_without_retry_reports_eintr() {
    sys::signal::install_counting_handler(sys::signal::SIGUSR2, false).unwrap();
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        tx.send(sys::signal::current_thread()).unwrap();
        let ep = sys::epoll::create().unwrap();
        let mut buf = sys::epoll::EventBuf::with_capacity(4);
        let r = sys::epoll::wait_once(ep.as_fd(), &mut buf, 10_000);
        done_tx.send(()).unwrap();
        r
    });
    let tid = rx.recv().unwrap();
    // Signal until the wait returns (a signal sent before the thread is
    // inside epoll_wait is simply handled earlier; keep going).
    while done_rx.recv_timeout(Duration::from_millis(5)).is_err() {
        sys::signal::signal_thread(tid, sys::signal::SIGUSR2).unwrap();
    }
    let err = t.join().unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Interrupted);
}

#[test]
fn unconsumed_input_over_the_limit_closes_that_connection_only() {
    let log: Log = Arc::default();
    let l2 = log.clone();
    struct Hoarder(Log);
    impl Handler for Hoarder {
        fn on_data(&mut self, _ctx: &mut Context<'_>, _input: &mut Buffer) {} // never consumes
        fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
            self.0.lock().unwrap().push(format!("{r:?}"));
        }
    }
    let mut config = ServerConfig::default();
    config.conn.max_input = 64 * 1024;
    let (addr, handle, join) = spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, config, move |_| Box::new(Hoarder(l2.clone())))
            .unwrap();
        addr
    });
    let bystander = connect(addr);
    let mut s = connect(addr);
    let _ = s.write_all(&vec![b'x'; 1 << 20]); // may fail once the server closes
    assert_eq!(wait_for(&log, 1), vec!["InputLimit".to_string()]);
    // The other connection is untouched.
    bystander.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(
        (&bystander).read(&mut b).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    handle.stop().unwrap();
    join.join().unwrap();
}

/// A client that sends megabytes without reading: the server stops reading
/// from it once its queued echo passes the high-water mark, so memory stays
/// bounded; when the client reads, everything arrives intact.
#[test]
fn backpressure_bounds_output_for_a_client_that_does_not_read() {
    let max_seen = Arc::new(Mutex::new(0usize));
    struct Watch(Arc<Mutex<usize>>);
    impl Handler for Watch {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            let _ = ctx.write(input.as_slice());
            input.clear();
            let mut m = self.0.lock().unwrap();
            *m = (*m).max(ctx.output_len());
        }
    }
    let m2 = max_seen.clone();
    let mut config = ServerConfig::default();
    config.conn.high_water = 128 * 1024;
    let (addr, handle, join) = spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, config, move |_| Box::new(Watch(m2.clone())))
            .unwrap();
        addr
    });
    let data = pattern(32 << 20);
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    w.set_nonblocking(true).unwrap();
    // Send until the kernel buffers on both sides are full.
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stalls = 0;
    while sent < data.len() && Instant::now() < deadline {
        match w.write(&data[sent..]) {
            Ok(n) => {
                sent += n;
                stalls = 0;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                stalls += 1;
                if stalls > 200 {
                    break; // the server stopped reading: backpressure works
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(sent < data.len(), "the server never pushed back");
    let max = *max_seen.lock().unwrap();
    assert!(max <= 128 * 1024 + 64 * 1024, "output grew to {max}");
    // Now read everything back, sending the rest as we go.
    w.set_nonblocking(false).unwrap();
    let rest = data[sent..].to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&rest).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == data, "echo differs after backpressure");
    handle.stop().unwrap();
    join.join().unwrap();
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let log: Log = Arc::default();
    let mut config = ServerConfig::default();
    config.conn.idle_timeout = Some(Duration::from_millis(200));
    let (addr, handle, join) = echo_server(config, Some(log.clone()));
    let start = Instant::now();
    let mut s = connect(addr);
    // Activity postpones the timeout (lazy deadline)...
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
    }
    // ...and silence ends the connection.
    let mut b = [0u8; 1];
    assert_eq!(
        s.read(&mut b).unwrap(),
        0,
        "expected EOF from the idle timeout"
    );
    let el = start.elapsed();
    assert!(el >= Duration::from_millis(500), "closed too early: {el:?}");
    assert!(el < Duration::from_secs(3), "closed too late: {el:?}");
    assert_eq!(wait_for(&log, 1), vec!["IdleTimeout".to_string()]);
    handle.stop().unwrap();
    join.join().unwrap();
}

fn close_wait_count(port: u16) -> usize {
    let mut n = 0;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local_port = cols[1]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && cols[3] == "08" {
                n += 1; // 08 = CLOSE_WAIT
            }
        }
    }
    n
}

/// Half-close: the client sends, then FIN. The server still writes what it
/// owes, then closes: no connection stays in CLOSE_WAIT.
#[test]
fn half_close_gets_the_full_reply_and_leaves_no_close_wait() {
    let log: Log = Arc::default();
    let (addr, handle, join) = echo_server(ServerConfig::default(), Some(log.clone()));
    let mut clients = Vec::new();
    for i in 0..20 {
        let mut s = connect(addr);
        let msg = pattern(100_000 + i);
        s.write_all(&msg).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        clients.push((s, msg));
    }
    for (mut s, msg) in clients {
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert!(got == msg);
    }
    let reasons = wait_for(&log, 20);
    assert!(reasons.iter().all(|r| r == "PeerClosed"), "{reasons:?}");
    assert_eq!(close_wait_count(addr.port()), 0);
    handle.stop().unwrap();
    join.join().unwrap();
}

#[test]
fn abort_sends_rst_and_graceful_close_sends_fin_after_the_reply() {
    struct Closer;
    impl Handler for Closer {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            let abort = input.as_slice().starts_with(b"abort");
            let _ = ctx.write(b"bye");
            input.clear();
            if abort {
                ctx.abort();
            } else {
                ctx.close();
            }
        }
    }
    let (addr, handle, join) = spawn_loop(|ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), |_| Box::new(Closer))
            .unwrap();
        addr
    });
    let mut g = connect(addr);
    g.write_all(b"close").unwrap();
    let mut got = Vec::new();
    g.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye", "graceful close flushes, then FIN");

    let mut a = connect(addr);
    a.write_all(b"abort").unwrap();
    let mut buf = [0u8; 16];
    let r = loop {
        match a.read(&mut buf) {
            Ok(n) if n > 0 => continue, // reply may or may not arrive before the RST
            other => break other,
        }
    };
    assert_eq!(
        r.unwrap_err().kind(),
        ErrorKind::ConnectionReset,
        "abort must send RST"
    );
    handle.stop().unwrap();
    join.join().unwrap();
}

/// SIGPIPE is restored to its default (deadly) action; a client that
/// resets while the server is writing must only end that connection.
#[test]
fn a_peer_reset_while_writing_never_raises_sigpipe() {
    sys::signal::set_default(sys::signal::SIGPIPE).unwrap();
    let log: Log = Arc::default();
    struct Firehose(Log);
    impl Handler for Firehose {
        fn on_open(&mut self, ctx: &mut Context<'_>) {
            let _ = ctx.write(&vec![0u8; 2 << 20]);
        }
        fn on_data(&mut self, _: &mut Context<'_>, i: &mut Buffer) {
            i.clear();
        }
        fn on_drain(&mut self, ctx: &mut Context<'_>) {
            let _ = ctx.write(&vec![0u8; 2 << 20]);
        }
        fn on_close(&mut self, _: &mut Context<'_>, r: &CloseReason) {
            self.0.lock().unwrap().push(format!("{r:?}"));
        }
    }
    let l2 = log.clone();
    let (addr, handle, join) = spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), move |_| {
            Box::new(Firehose(l2.clone()))
        })
        .unwrap();
        addr
    });
    for _ in 0..5 {
        let mut s = connect(addr);
        let mut b = [0u8; 4096];
        s.read_exact(&mut b).unwrap();
        sys::socket::set_linger_abort(s.as_fd()).unwrap();
        drop(s); // RST while the server has megabytes queued
    }
    let reasons = wait_for(&log, 5);
    assert_eq!(reasons.len(), 5);
    assert!(
        reasons.iter().all(|r| r == "Reset" || r == "BrokenPipe"),
        "{reasons:?}"
    );
    handle.stop().unwrap();
    join.join().unwrap();
}

#[test]
fn connect_to_a_closed_port_reports_refused() {
    // Bind then drop a listener: nobody listens on that port now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let log: Log = Arc::default();
    struct Outgoing(Log);
    impl Handler for Outgoing {
        fn on_open(&mut self, _: &mut Context<'_>) {
            self.0.lock().unwrap().push("open".into());
        }
        fn on_data(&mut self, _: &mut Context<'_>, _: &mut Buffer) {}
        fn on_close(&mut self, ctx: &mut Context<'_>, r: &CloseReason) {
            let s = match r {
                CloseReason::ConnectFailed(e) => format!("failed {:?}", e.kind()),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(s);
            ctx.stop();
        }
    }
    let l2 = log.clone();
    let (_a, _h, join) = spawn_loop(move |ev| {
        match ev.connect(
            target,
            Some(Duration::from_secs(5)),
            Box::new(Outgoing(l2.clone())),
        ) {
            Ok(_) => {}
            Err(e) => {
                // Refused at once is also a correct report.
                l2.lock().unwrap().push(format!("failed {:?}", e.kind()));
                ev.context().stop();
            }
        }
        target
    });
    join.join().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec!["failed ConnectionRefused".to_string()]
    );
}

#[test]
fn connections_beyond_max_conns_are_closed_at_once() {
    let config = ServerConfig {
        max_conns: 2,
        ..ServerConfig::default()
    };
    let (addr, handle, join) = echo_server(config, None);
    let mut a = connect(addr);
    let mut b = connect(addr);
    for s in [&mut a, &mut b] {
        s.write_all(b"ok").unwrap();
        let mut r = [0u8; 2];
        s.read_exact(&mut r).unwrap();
    }
    let mut c = connect(addr);
    let mut r = [0u8; 1];
    let n = c.read(&mut r);
    assert!(
        matches!(n, Ok(0)) || n.is_err(),
        "third connection must be closed: {n:?}"
    );
    handle.stop().unwrap();
    join.join().unwrap();
}

/// A paused reader with bytes already queued gets them after resuming,
/// with no new edge from the kernel: the ready list remembers.
#[test]
fn resumed_reader_gets_bytes_that_arrived_while_paused() {
    struct Pauser {
        seen: usize,
    }
    impl Handler for Pauser {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            self.seen += input.len();
            let reply = input.as_slice().to_ascii_lowercase();
            input.clear();
            let _ = ctx.write(&reply);
            if self.seen == 1 {
                ctx.pause_reading();
                let _ = ctx.set_timer(Duration::from_millis(100));
            }
        }
        fn on_timer(&mut self, ctx: &mut Context<'_>, _t: sockloop::TimerId) {
            ctx.resume_reading();
        }
    }
    let (addr, handle, join) = spawn_loop(|ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), |_| Box::new(Pauser { seen: 0 }))
            .unwrap();
        addr
    });
    let mut s = connect(addr);
    s.write_all(b"A").unwrap();
    let mut r = [0u8; 1];
    s.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"a");
    s.write_all(b"B").unwrap(); // arrives while paused: its edge is consumed
    s.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"b");
    handle.stop().unwrap();
    join.join().unwrap();
}

#[test]
fn graceful_shutdown_flushes_pending_replies_then_run_returns() {
    /// Echo that counts what it has seen.
    struct Counting(Arc<std::sync::atomic::AtomicUsize>);
    impl Handler for Counting {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            if ctx.write(input.as_slice()).is_ok() {
                self.0
                    .fetch_add(input.len(), std::sync::atomic::Ordering::SeqCst);
                input.clear();
            }
        }
    }
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s2 = seen.clone();
    let mut config = ServerConfig::default();
    config.conn.high_water = usize::MAX;
    let (addr, handle, join) = spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, config, move |_| Box::new(Counting(s2.clone())))
            .unwrap();
        addr
    });
    let mut s = connect(addr);
    let data = pattern(4 << 20);
    s.write_all(&data[..1 << 20]).unwrap();
    // Make sure the server has read it all (a shutdown discards input not
    // read yet: the request was not taken, only replies are flushed).
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.load(std::sync::atomic::Ordering::SeqCst) < 1 << 20 {
        assert!(Instant::now() < deadline, "the server did not read it all");
        std::thread::sleep(Duration::from_millis(1)); // polling pace
    }
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    handle.shutdown(Duration::from_secs(5)).unwrap();
    let mut got = first.to_vec();
    s.read_to_end(&mut got).unwrap();
    assert!(got == data[..1 << 20], "a pending reply was truncated");
    join.join().unwrap(); // run() returned by itself
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

/// A small `max_input` holds from the very first read: unconsumed bytes
/// that arrived in one read and exceed it close the connection.
#[test]
fn a_small_input_limit_holds_from_the_first_read() {
    let log: Log = Arc::default();
    let l2 = log.clone();
    struct Hoarder(Log);
    impl Handler for Hoarder {
        fn on_data(&mut self, _ctx: &mut Context<'_>, _input: &mut Buffer) {}
        fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
            self.0.lock().unwrap().push(format!("{r:?}"));
        }
    }
    let mut config = ServerConfig::default();
    config.conn.max_input = 1000;
    let (addr, handle, join) = spawn_loop(move |ev| {
        let l = listener();
        let addr = l.local_addr().unwrap();
        ev.listen(l, config, move |_| Box::new(Hoarder(l2.clone())))
            .unwrap();
        addr
    });
    let mut s = connect(addr);
    s.write_all(&[b'x'; 5000]).unwrap();
    assert_eq!(wait_for(&log, 1), vec!["InputLimit".to_string()]);
    handle.stop().unwrap();
    join.join().unwrap();
}
