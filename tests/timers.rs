//! Timers and idle timeouts, now that a turn reads no clock: the loop's
//! timerfd must wake it for the earliest timer however the timers are
//! armed, moved or cancelled, and whether or not I/O keeps it busy; idle
//! timeouts are asked of the kernel (TCP) or sampled (other streams). One
//! test per way it could go wrong.

use sockloop::{Buffer, CloseReason, Context, EventLoop, Handler, ServerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Runs a loop on its own thread after `setup`; a watchdog stops it after
/// 10 s so that a timer that never fires fails the test instead of hanging
/// it. Returns what `setup` returned and the thread (its result: whether
/// the loop was stopped by the test's own timer rather than the watchdog).
fn run_loop<T, F>(setup: F) -> (T, JoinHandle<bool>)
where
    T: Send + 'static,
    F: FnOnce(&mut EventLoop) -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().expect("loop");
        let value = setup(&mut ev);
        let handle = ev.handle();
        let done = Arc::new(AtomicBool::new(false));
        let d2 = done.clone();
        let watchdog = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !d2.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::park_timeout(Duration::from_millis(50));
            }
            if !d2.load(Ordering::SeqCst) {
                let _ = handle.stop();
            }
        });
        tx.send(value).unwrap();
        let start = Instant::now();
        ev.run().expect("run");
        let in_time = start.elapsed() < Duration::from_secs(9);
        done.store(true, Ordering::SeqCst);
        watchdog.thread().unpark();
        watchdog.join().unwrap();
        in_time
    });
    (rx.recv().expect("loop thread started"), join)
}

type Fired = Arc<Mutex<Vec<(&'static str, Duration)>>>;

fn note(fired: &Fired, name: &'static str, start: Instant) {
    fired.lock().unwrap().push((name, start.elapsed()));
}

/// The timers that fired are `names`, in that order, and the last fired
/// no sooner than `min` after the start (and, with `max`, before it).
fn assert_fired(fired: &Fired, names: &[&str], min: Duration, max: Option<Duration>) {
    let fired = fired.lock().unwrap();
    assert_eq!(fired.iter().map(|f| f.0).collect::<Vec<_>>(), names);
    let last = fired[fired.len() - 1].1;
    assert!(last >= min, "fired early: {fired:?}");
    if let Some(max) = max {
        assert!(last < max, "fired late: {fired:?}");
    }
}

/// Runs a loop whose timers `arm` sets (given the loop's context, the
/// time it started and where to note what fires), asserts that one of
/// them stopped the loop (else fails with `what`), and returns what fired.
fn fire_timers<F>(what: &str, arm: F) -> Fired
where
    F: FnOnce(&mut Context<'_>, Instant, Fired) + Send + 'static,
{
    let fired: Fired = Arc::default();
    let f = fired.clone();
    let ((), join) = run_loop(move |ev| {
        let start = Instant::now();
        arm(&mut ev.context(), start, f);
    });
    assert!(join.join().unwrap(), "{what}");
    fired
}

#[test]
fn a_timer_armed_earlier_than_the_pending_one_fires_at_its_own_time() {
    let fired = fire_timers("no timer stopped the loop", |ctx, start, f| {
        let f1 = f.clone();
        ctx.add_timer(Duration::from_secs(5), move |ctx| {
            note(&f1, "late", start);
            ctx.stop();
        });
        // Earlier than what the timerfd is armed at: it must be re-armed.
        ctx.add_timer(Duration::from_millis(50), move |ctx| {
            note(&f, "early", start);
            ctx.stop();
        });
    });
    let late = Some(Duration::from_secs(2));
    assert_fired(&fired, &["early"], Duration::from_millis(50), late);
}

#[test]
fn cancelling_the_earliest_timer_still_fires_the_next_on_time() {
    let fired = fire_timers("no timer stopped the loop", |ctx, start, f| {
        let f1 = f.clone();
        let first = ctx.add_timer(Duration::from_millis(30), move |_| {
            note(&f1, "cancelled", start)
        });
        ctx.add_timer(Duration::from_millis(120), move |ctx| {
            note(&f, "next", start);
            ctx.stop();
        });
        // The timerfd stays armed at 30 ms; its expiry finds nothing due
        // and must arm it again for 120 ms.
        assert!(ctx.cancel_timer(first));
    });
    let late = Some(Duration::from_secs(2));
    assert_fired(&fired, &["next"], Duration::from_millis(120), late);
}

#[test]
fn moving_a_timer_earlier_fires_it_at_the_new_time() {
    let fired = fire_timers("the moved timer did not fire", |ctx, start, f| {
        let id = ctx.add_timer(Duration::from_secs(30), move |ctx| {
            note(&f, "moved", start);
            ctx.stop();
        });
        assert!(ctx.reset_timer(id, Duration::from_millis(60)));
    });
    let late = Some(Duration::from_secs(2));
    assert_fired(&fired, &["moved"], Duration::from_millis(60), late);
}

#[test]
fn a_timer_armed_by_a_firing_timer_fires_too() {
    let fired = fire_timers("the second timer did not fire", |ctx, start, f| {
        ctx.add_timer(Duration::from_millis(20), move |ctx| {
            note(&f, "first", start);
            let f2 = f.clone();
            ctx.add_timer(Duration::from_millis(40), move |ctx| {
                note(&f2, "second", start);
                ctx.stop();
            });
        });
    });
    assert_fired(
        &fired,
        &["first", "second"],
        Duration::from_millis(60),
        None,
    );
}

struct Echo {
    closed: Option<mpsc::Sender<(String, Instant)>>,
    /// Stop the loop when this connection closes.
    stop: bool,
}

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if ctx.write(input.as_slice()).is_ok() {
            input.clear();
        }
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        if let Some(tx) = self.closed.take() {
            let _ = tx.send((format!("{reason:?}"), Instant::now()));
        }
        if self.stop {
            ctx.stop();
        }
    }
}

fn echo_server(
    config: ServerConfig,
    closed: mpsc::Sender<(String, Instant)>,
) -> (SocketAddr, sockloop::LoopHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().expect("loop");
        let l = sockloop::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let closed = Mutex::new(Some(closed));
        ev.listen(l, config, move |_| {
            Box::new(Echo {
                closed: closed.lock().unwrap().take(),
                stop: false,
            })
        })
        .unwrap();
        tx.send((addr, ev.handle())).unwrap();
        ev.run().expect("run");
    });
    let (addr, handle) = rx.recv().unwrap();
    (addr, handle, join)
}

#[test]
fn a_timer_fires_on_time_while_io_never_lets_the_wait_time_out() {
    // A client keeps the loop's connection busy, so every epoll_wait
    // returns with an event and none times out: only the timerfd can say
    // that the timer is due.
    let (tx, _rx) = mpsc::channel();
    let (addr, handle, join) = echo_server(ServerConfig::default(), tx);
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let client = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 64];
        let mut round_trips = 0u64;
        while !s2.load(Ordering::SeqCst) {
            s.write_all(&[7u8; 64]).unwrap();
            s.read_exact(&mut b).unwrap();
            round_trips += 1;
        }
        round_trips
    });
    let (fired_tx, fired_rx) = mpsc::channel();
    let start = Instant::now();
    handle
        .post(move |ctx| {
            ctx.add_timer(Duration::from_millis(150), move |_| {
                let _ = fired_tx.send(start.elapsed());
            });
        })
        .unwrap();
    let fired = fired_rx.recv_timeout(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    let round_trips = client.join().unwrap();
    handle.stop().unwrap();
    join.join().unwrap();
    let fired = fired.expect("the timer never fired under constant I/O");
    assert!(
        fired >= Duration::from_millis(150),
        "fired early: {fired:?}"
    );
    assert!(fired < Duration::from_secs(2), "fired late: {fired:?}");
    assert!(round_trips > 10, "the client did not keep the loop busy");
}

/// Writes `byte` every `every`, `times` times, reading each echo back, then
/// waits for the loop's idle close: the EOF here and `IdleTimeout` from
/// `on_close`. Returns how long after the last echo came back the loop
/// closed the connection.
fn trickle_then_await_idle_close<S: Read + Write>(
    s: &mut S,
    every: Duration,
    times: usize,
    closed: &mpsc::Receiver<(String, Instant)>,
) -> Duration {
    let mut b = [0u8; 1];
    let mut last = Instant::now();
    for _ in 0..times {
        std::thread::sleep(every);
        s.write_all(b"x").unwrap();
        s.read_exact(&mut b).unwrap();
        last = Instant::now();
    }
    assert_eq!(s.read(&mut b).unwrap(), 0, "expected the idle close");
    let (reason, at) = closed.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(reason, "IdleTimeout");
    at - last
}

#[test]
fn a_tcp_connection_that_trickles_a_byte_every_quarter_timeout_stays_open() {
    let (tx, rx) = mpsc::channel();
    let mut config = ServerConfig::default();
    config.conn.idle_timeout = Some(Duration::from_millis(600));
    let (addr, handle, join) = echo_server(config, tx);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // 1.2 s of traffic, two timeouts' worth, a byte every quarter of it:
    // still open. Then silence.
    let silent = trickle_then_await_idle_close(&mut s, Duration::from_millis(150), 8, &rx);
    // (Counted from when the echo was back here: the kernel's count began a
    // little before it, so allow for the delivery and a jiffy.)
    assert!(
        silent >= Duration::from_millis(590),
        "closed early: {silent:?}"
    );
    assert!(silent < Duration::from_secs(2), "closed late: {silent:?}");
    handle.stop().unwrap();
    join.join().unwrap();
}

#[test]
fn a_unix_stream_is_closed_after_its_sampled_idle_timeout_never_sooner() {
    // Not TCP: no TCP_INFO, so activity is sampled (Flags::ACTIVE) every
    // eighth of the timeout, and the close comes 1 to 1.125 timeouts
    // after the last byte.
    let idle = Duration::from_millis(800);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let (tx, rx) = mpsc::channel();
    let ((), join) = run_loop(move |ev| {
        ev.set_conn_config(sockloop::ConnConfig {
            idle_timeout: Some(idle),
            ..Default::default()
        });
        let echo = Echo {
            closed: Some(tx),
            stop: true,
        };
        ev.adopt(theirs, Box::new(echo)).unwrap();
    });
    let mut s = ours;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let silent = trickle_then_await_idle_close(&mut s, Duration::from_millis(200), 6, &rx);
    // (The loop saw the last byte a little before `last`, when the echo
    // was back here.)
    assert!(
        silent >= idle - Duration::from_millis(10),
        "closed early: {silent:?}"
    );
    assert!(silent < idle * 3, "closed late: {silent:?}");
    assert!(join.join().unwrap(), "the close did not stop the loop");
}

#[test]
fn a_loop_run_again_after_a_panicking_loop_timer_still_fires_timers() {
    let mut ev = EventLoop::new().unwrap();
    ev.context()
        .add_timer(Duration::from_millis(10), |_| panic!("a loop timer panics"));
    // A panic in a loop timer stops the loop (it is not a connection's).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.run()));
    assert!(caught.is_err(), "the panic did not reach run's caller");
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    ev.context().add_timer(Duration::from_millis(20), move |_| {
        f.store(true, Ordering::SeqCst);
    });
    let start = Instant::now();
    while !fired.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(5) {
        ev.run_once(Some(Duration::from_millis(500))).unwrap();
    }
    assert!(
        fired.load(Ordering::SeqCst),
        "no timer fired after the panic"
    );
}

/// A connection closed in the turn whose loop timer panics (the panic
/// stops the loop before the end of the turn reaps it) is reaped by the
/// next turn of a loop run again: its `on_close` comes, no event needed.
#[test]
fn a_connection_closed_in_the_turn_of_a_panicking_loop_timer_is_reaped_by_the_next_turn() {
    struct Closes(Arc<Mutex<Vec<String>>>);
    impl Handler for Closes {
        fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
            input.clear();
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
            self.0.lock().unwrap().push(format!("{reason:?}"));
        }
    }
    let closes = Arc::new(Mutex::new(Vec::new()));
    let c2 = closes.clone();
    let mut ev = EventLoop::new().unwrap();
    let l = sockloop::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = l.local_addr().unwrap();
    ev.listen(l, ServerConfig::default(), move |_| {
        Box::new(Closes(c2.clone()))
    })
    .unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    while ev.connection_count() == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "not accepted");
        ev.run_once(Some(Duration::from_millis(100))).unwrap();
    }
    // Both due before the next turn: the timer, and the client's reset.
    ev.context()
        .add_timer(Duration::from_millis(1), |_| panic!("a loop timer panics"));
    sockloop::SocketOptions::set_linger(&client, sockloop::Linger::Abort).unwrap();
    drop(client); // RST
    std::thread::sleep(Duration::from_millis(20)); // past the timer's deadline
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        ev.run_once(Some(Duration::ZERO))
    }));
    assert!(caught.is_err(), "the timer did not panic in that turn");
    assert_eq!(ev.connection_count(), 1, "reaped in the panicking turn");
    assert!(closes.lock().unwrap().is_empty());
    // No event is left for it: only the end of the next turn reaps it.
    ev.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(ev.connection_count(), 0, "not reaped by the next turn");
    assert_eq!(*closes.lock().unwrap(), vec!["Reset".to_string()]);
}
