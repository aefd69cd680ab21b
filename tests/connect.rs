//! Outgoing connects: success, refused, timed out, retried with backoff,
//! cancelled; and the `connect` example's one-line report.

use sockloop::net::TcpListener;
use sockloop::reactor::connector::{connect_with_retry, ConnectPolicy, Connector};
use sockloop::{Buffer, CloseReason, Context, EventLoop, Handler};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Events = Rc<RefCell<Vec<(String, Duration)>>>;

struct Recorder {
    start: Instant,
    events: Events,
    stop_on_open: bool,
}

impl Handler for Recorder {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.events
            .borrow_mut()
            .push(("open".into(), self.start.elapsed()));
        if self.stop_on_open {
            ctx.stop();
        }
    }
    fn on_data(&mut self, _: &mut Context<'_>, i: &mut Buffer) {
        i.clear();
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        let s = match reason {
            CloseReason::ConnectFailed(e) => format!("failed {:?}", e.kind()),
            other => format!("{other:?}"),
        };
        self.events.borrow_mut().push((s, self.start.elapsed()));
        ctx.stop();
    }
}

fn recorder(events: &Events, stop_on_open: bool) -> Box<Recorder> {
    Box::new(Recorder {
        start: Instant::now(),
        events: events.clone(),
        stop_on_open,
    })
}

fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap() // dropped: nobody listens there now
}

/// A listener whose accept queue is full: Linux drops further SYNs, so a
/// connect to it neither succeeds nor is refused, it times out. Loopback
/// only; nothing leaves the machine.
fn black_hole() -> (TcpListener, std::net::TcpStream, SocketAddr) {
    let l = TcpListener::bind_with("127.0.0.1:0".parse().unwrap(), true, 0).unwrap();
    let addr = l.local_addr().unwrap();
    let filler = std::net::TcpStream::connect(addr).unwrap(); // fills the queue of 1
    (l, filler, addr)
}

fn run_bounded(ev: &mut EventLoop) {
    let deadline = Instant::now() + Duration::from_secs(20);
    ev.run().unwrap();
    assert!(Instant::now() < deadline);
}

#[test]
fn connect_succeeds_and_opens() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let events: Events = Rc::default();
    let mut ev = EventLoop::new().unwrap();
    ev.connect(
        l.local_addr().unwrap(),
        Some(Duration::from_secs(5)),
        recorder(&events, true),
    )
    .unwrap();
    run_bounded(&mut ev);
    assert_eq!(events.borrow()[0].0, "open");
}

#[test]
fn connect_to_nobody_is_refused() {
    let events: Events = Rc::default();
    let mut ev = EventLoop::new().unwrap();
    match ev.connect(
        closed_port(),
        Some(Duration::from_secs(5)),
        recorder(&events, true),
    ) {
        Ok(_) => run_bounded(&mut ev),
        Err(e) => events
            .borrow_mut()
            .push((format!("failed {:?}", e.kind()), Duration::ZERO)),
    }
    assert_eq!(events.borrow()[0].0, "failed ConnectionRefused");
}

#[test]
fn connect_to_a_full_accept_queue_times_out_on_the_loop_timer() {
    let (_l, _filler, addr) = black_hole();
    let events: Events = Rc::default();
    let mut ev = EventLoop::new().unwrap();
    ev.connect(
        addr,
        Some(Duration::from_millis(300)),
        recorder(&events, true),
    )
    .unwrap();
    run_bounded(&mut ev);
    let (what, at) = events.borrow()[0].clone();
    assert_eq!(what, "ConnectTimeout");
    assert!(at >= Duration::from_millis(300), "fired early: {at:?}");
    assert!(at < Duration::from_millis(900), "fired late: {at:?}");
}

#[test]
fn retries_back_off_exponentially_then_give_up() {
    let events: Events = Rc::default();
    let mut ev = EventLoop::new().unwrap();
    let policy = ConnectPolicy {
        timeout: Some(Duration::from_secs(1)),
        max_attempts: 4,
        initial_backoff: Duration::from_millis(40),
        max_backoff: Duration::from_secs(1),
    };
    let c = connect_with_retry(
        &mut ev.context(),
        closed_port(),
        policy,
        recorder(&events, true),
    );
    run_bounded(&mut ev);
    assert_eq!(c.attempts(), 4);
    let (what, at) = events.borrow()[0].clone();
    assert_eq!(
        what, "failed ConnectionRefused",
        "the last attempt's reason"
    );
    // Waits of 40 + 80 + 160 ms between the four attempts.
    assert!(at >= Duration::from_millis(280), "gave up too soon: {at:?}");
    assert_eq!(
        events.borrow().len(),
        1,
        "the handler hears of the failure once"
    );
}

#[test]
fn retrying_connects_once_the_server_appears() {
    let target = closed_port();
    let events: Events = Rc::default();
    let mut ev = EventLoop::new().unwrap();
    let policy = ConnectPolicy {
        max_attempts: 50,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        ..ConnectPolicy::default()
    };
    let c = connect_with_retry(&mut ev.context(), target, policy, recorder(&events, true));
    // Bring the server up after the first failures.
    let holder: Rc<RefCell<Option<std::net::TcpListener>>> = Rc::default();
    let h2 = holder.clone();
    ev.context()
        .add_timer(Duration::from_millis(100), move |_| {
            *h2.borrow_mut() = Some(std::net::TcpListener::bind(target).unwrap());
        });
    run_bounded(&mut ev);
    assert_eq!(events.borrow()[0].0, "open");
    assert!(c.attempts() >= 2, "attempts: {}", c.attempts());
    assert!(c.is_connected());
}

#[test]
fn cancel_stops_retrying_and_tells_the_handler() {
    let events: Events = Rc::default();
    let mut ev = EventLoop::new().unwrap();
    let policy = ConnectPolicy {
        max_attempts: 100,
        initial_backoff: Duration::from_millis(30),
        ..ConnectPolicy::default()
    };
    let c: Connector = connect_with_retry(
        &mut ev.context(),
        closed_port(),
        policy,
        recorder(&events, false),
    );
    let c2 = c.clone();
    ev.context()
        .add_timer(Duration::from_millis(100), move |ctx| c2.cancel(ctx));
    run_bounded(&mut ev);
    assert_eq!(events.borrow()[0].0, "failed Interrupted");
    let attempts = c.attempts();
    assert!((2..10).contains(&attempts), "attempts: {attempts}");
}

/// The race behind a flaky `cancel_stops_retrying_and_tells_the_handler`:
/// a cancel that lands while an attempt is in flight (its socket aborted)
/// must still report `Interrupted`, not the abort. A black hole keeps the
/// attempt in flight for certain.
#[test]
fn cancel_during_an_attempt_in_flight_reports_interrupted() {
    let (_l, _filler, hole) = black_hole();
    let events: Events = Rc::default();
    let mut ev = EventLoop::new().unwrap();
    let policy = ConnectPolicy {
        timeout: Some(Duration::from_secs(5)),
        max_attempts: 3,
        ..ConnectPolicy::default()
    };
    let c: Connector =
        connect_with_retry(&mut ev.context(), hole, policy, recorder(&events, false));
    let c2 = c.clone();
    ev.context()
        .add_timer(Duration::from_millis(50), move |ctx| c2.cancel(ctx));
    run_bounded(&mut ev);
    assert_eq!(events.borrow()[0].0, "failed Interrupted");
    assert_eq!(c.attempts(), 1);
}

fn run_example(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "connect", "--"])
        .args(args)
        .output()
        .expect("cargo run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn connect_example_prints_one_line_and_exit_code() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ok = l.local_addr().unwrap().to_string();
    let (code, out) = run_example(&["--addr", &ok, "--timeout-ms", "2000"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("connected in ") && out.ends_with(" ms\n") && out.lines().count() == 1,
        "{out:?}"
    );

    let (code, out) = run_example(&["--addr", &closed_port().to_string(), "--timeout-ms", "2000"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("refused after "), "{out:?}");

    let (_l, _filler, hole) = black_hole();
    let (code, out) = run_example(&["--addr", &hole.to_string(), "--timeout-ms", "200"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with("timed out after "), "{out:?}");
}
