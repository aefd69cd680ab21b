//! Dispatch: the token lookup every epoll event goes through (generation
//! checked `Registry::get`), and whole loopback echo round trips through
//! the loop:
//!
//! * `echo_rtt/one_thread`: an echo server and a sockloop client
//!   connection in the same `EventLoop`; one iteration writes 64 B on the
//!   client and calls `run_once` until the echo is back.
//! * `echo_rtt/blocking_client`: a blocking `std::net::TcpStream` on a
//!   helper thread does the round trips while the bench thread runs the
//!   loop; time per round trip.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sockloop::net::TcpListener;
use sockloop::token::{Registry, Token};
use sockloop::{Buffer, ConnId, Context, EventLoop, Handler, ServerConfig};
use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

fn registry(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch/registry_get");
    let mut reg = Registry::new();
    let tokens: Vec<Token> = (0..10_000u64).map(|i| reg.insert(i)).collect();
    // Stale tokens: slots freed and reused, so the generation differs.
    let stale: Vec<Token> = tokens[..100].to_vec();
    for t in &stale {
        reg.remove(*t);
    }
    for i in 0..100u64 {
        reg.insert(i);
    }
    g.bench_function("live_10k", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 7919) % tokens.len();
            black_box(reg.get(black_box(tokens[i])))
        })
    });
    g.bench_function("stale", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % stale.len();
            let got = reg.get(black_box(stale[i]));
            debug_assert!(got.is_none());
            black_box(got)
        })
    });
    g.finish();
}

fn echo_server(ev: &mut EventLoop) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    ev.listen(listener, ServerConfig::default(), |_| {
        Box::new(|ctx: &mut Context<'_>, input: &mut Buffer| {
            if ctx.write(input.as_slice()).is_ok() {
                input.clear();
            }
        })
    })
    .unwrap();
    addr
}

/// Counts the bytes that come back.
struct Counter {
    open: Rc<Cell<bool>>,
    got: Rc<Cell<usize>>,
}

impl Handler for Counter {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        if let Ok(fd) = ctx.fd() {
            let _ = sockloop::sys::socket::set_nodelay(fd, true);
        }
        self.open.set(true);
    }
    fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
        self.got.set(self.got.get() + input.len());
        input.clear();
    }
}

fn echo_one_thread(c: &mut Criterion) {
    let mut ev = EventLoop::new().unwrap();
    let addr = echo_server(&mut ev);
    let open = Rc::new(Cell::new(false));
    let got = Rc::new(Cell::new(0));
    let client = Box::new(Counter {
        open: open.clone(),
        got: got.clone(),
    });
    let id: ConnId = ev.connect(addr, None, client).unwrap();
    while !open.get() {
        ev.run_once(Some(Duration::from_secs(1))).unwrap();
    }
    let msg = [0x5au8; 64];
    let mut want = 0;
    c.bench_function("dispatch/echo_rtt/one_thread_64B", |b| {
        b.iter(|| {
            ev.context().write_to(id, &msg).unwrap();
            want += msg.len();
            let mut turns = 0;
            while got.get() < want {
                ev.run_once(Some(Duration::from_secs(1))).unwrap();
                turns += 1;
                assert!(turns < 1000, "echo did not come back");
            }
        })
    });
}

fn echo_blocking_client(c: &mut Criterion) {
    let mut ev = EventLoop::new().unwrap();
    let addr = echo_server(&mut ev);
    let handle = ev.handle();
    let (tx, rx) = mpsc::channel::<u64>();
    let helper = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let msg = [0xa5u8; 64];
        let mut buf = [0u8; 64];
        // One command per measurement: do n round trips, then stop the loop.
        for n in rx {
            for _ in 0..n {
                s.write_all(&msg).unwrap();
                s.read_exact(&mut buf).unwrap();
            }
            handle.stop().unwrap();
        }
    });
    c.bench_function("dispatch/echo_rtt/blocking_client_64B", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            tx.send(iters).unwrap();
            ev.run().unwrap();
            start.elapsed()
        })
    });
    drop(tx);
    helper.join().unwrap();
}

criterion_group! {
    name = benches;
    config = config();
    targets = registry, echo_one_thread, echo_blocking_client
}
criterion_main!(benches);
