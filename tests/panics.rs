//! Panic containment (issue 9): a handler callback that panics ends its
//! own connection (abortive close, `CloseReason::Panic`, an error-level
//! log line) and the loop serves the rest; a panic in `on_close` still
//! stops the loop, as documented on `Handler`.

use sockloop::net::TcpListener;
use sockloop::{Buffer, CloseReason, Context, EventLoop, Handler, LoopHandle, ServerConfig};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

type Log = Arc<Mutex<Vec<String>>>;

/// Error-level log records of this test process.
fn errors() -> &'static Mutex<Vec<String>> {
    static ERRORS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    ERRORS.get_or_init(Mutex::default)
}

struct Recorder;

impl log::Log for Recorder {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Error
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            errors()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn install_recorder() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        log::set_boxed_logger(Box::new(Recorder)).expect("logger");
        log::set_max_level(log::LevelFilter::Error);
    });
}

/// A loop on its own thread; `join` returns what `run` did (a panic that
/// escaped it is the thread's `Err`).
fn spawn_loop<F>(factory: F) -> (SocketAddr, LoopHandle, JoinHandle<()>)
where
    F: FnMut() -> Box<dyn Handler> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut factory = factory;
        let mut ev = EventLoop::new().expect("loop");
        let l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        ev.listen(l, ServerConfig::default(), move |_| factory())
            .unwrap();
        tx.send((addr, ev.handle())).unwrap();
        ev.run().expect("run");
    });
    let (addr, handle) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("loop started");
    (addr, handle, join)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn wait_for(log: &Log, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = log.lock().unwrap().clone();
        if pred(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(5)); // polling pace
    }
}

/// Echoes, but panics on `boom`.
struct Fragile {
    log: Log,
}

impl Handler for Fragile {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        let _ = ctx.write(input.as_slice()); // batched: lost with the panic
        if input.find(b"boom").is_some() {
            panic!("boom: this handler was asked to panic");
        }
        input.clear();
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
        self.log.lock().unwrap().push(format!("{r:?}"));
    }
}

fn echo_round(s: &mut TcpStream, i: usize) {
    let msg = format!("hello {i}\n");
    s.write_all(msg.as_bytes()).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("connection {i}: {e}"));
    assert_eq!(got, msg.as_bytes());
}

/// 100 connections are served before, and after, one connection's handler
/// panics; the panicking one is reset, the others never notice.
#[test]
fn a_panicking_handler_ends_only_its_connection_and_100_others_are_served() {
    install_recorder();
    let log: Log = Arc::default();
    let l2 = log.clone();
    let (addr, handle, join) = spawn_loop(move || Box::new(Fragile { log: l2.clone() }));
    let mut good: Vec<TcpStream> = (0..100).map(|_| connect(addr)).collect();
    let mut bad = connect(addr);
    for (i, s) in good.iter_mut().enumerate() {
        echo_round(s, i);
    }
    bad.write_all(b"boom").unwrap();
    let mut buf = [0u8; 16];
    let end = bad.read(&mut buf);
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset),
        "the panicking connection is aborted, its batched echo discarded"
    );
    let reasons = wait_for(&log, |v| !v.is_empty());
    assert_eq!(
        reasons,
        vec![r#"Panic("boom: this handler was asked to panic")"#.to_string()]
    );
    // The loop goes on: every other connection, and new ones.
    for (i, s) in good.iter_mut().enumerate() {
        echo_round(s, i);
    }
    echo_round(&mut connect(addr), 100);
    assert!(
        errors()
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.contains("panicked: boom: this handler was asked to panic")),
        "logged at error level: {:?}",
        errors().lock().unwrap()
    );
    // No other connection ended but by its peer's FIN.
    let others: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| *r != "PeerClosed")
        .cloned()
        .collect();
    assert_eq!(others.len(), 1, "{others:?}");
    drop(good);
    handle.stop().unwrap();
    join.join().expect("the loop thread did not panic");
}

/// `on_open` and `on_timer` panics are contained the same way.
#[test]
fn panics_in_on_open_and_on_timer_are_contained_too() {
    install_recorder();
    struct Moody {
        n: usize,
        log: Log,
    }
    impl Handler for Moody {
        fn on_open(&mut self, ctx: &mut Context<'_>) {
            match self.n {
                0 => panic!("in on_open"),
                1 => {
                    let _ = ctx.set_timer(Duration::from_millis(1));
                }
                _ => {}
            }
        }
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            if ctx.write(input.as_slice()).is_ok() {
                input.clear();
            }
        }
        fn on_timer(&mut self, _ctx: &mut Context<'_>, _t: sockloop::TimerId) {
            panic!("in on_timer");
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
            self.log.lock().unwrap().push(format!("{}: {r:?}", self.n));
        }
    }
    let log: Log = Arc::default();
    let l2 = log.clone();
    let count = Arc::new(AtomicUsize::new(0));
    let (addr, handle, join) = spawn_loop(move || {
        Box::new(Moody {
            n: count.fetch_add(1, Ordering::SeqCst),
            log: l2.clone(),
        })
    });
    let mut first = connect(addr);
    assert!(wait_for(&log, |v| v.len() == 1).len() == 1);
    let mut second = connect(addr);
    let mut b = [0u8; 1];
    for s in [&mut first, &mut second] {
        assert_eq!(
            s.read(&mut b).map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionReset)
        );
    }
    let mut v = wait_for(&log, |v| v.len() == 2);
    v.sort();
    assert_eq!(
        v,
        vec![
            r#"0: Panic("in on_open")"#.to_string(),
            r#"1: Panic("in on_timer")"#.to_string()
        ]
    );
    echo_round(&mut connect(addr), 2);
    handle.stop().unwrap();
    join.join().expect("the loop thread did not panic");
}

/// A panic in `on_close` is not contained: it unwinds out of `run()`.
#[test]
fn a_panic_in_on_close_stops_the_loop() {
    struct Closer;
    impl Handler for Closer {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            input.clear();
            ctx.close();
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, _r: &CloseReason) {
            panic!("in on_close");
        }
    }
    let (addr, _handle, join) = spawn_loop(|| Box::new(Closer));
    let mut s = connect(addr);
    s.write_all(b"x").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap(); // no linger wait
    let payload = join.join().expect_err("run() unwound");
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    assert_eq!(msg.as_deref(), Some("in on_close"));
}
