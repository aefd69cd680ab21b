//! One non-blocking connect with a timeout, reported in one line.
//!
//! ```text
//! cargo run --example connect -- --addr 127.0.0.1:7000 --timeout-ms 1000
//! ```
//! Prints exactly one line and exits with its code:
//! `connected in X ms` (0), `refused after X ms` (1), `timed out after X ms`
//! (2), `failed after X ms: ERROR` (3). Optional `--attempts N` retries with
//! exponential backoff (`--backoff-ms N`, doubling) before giving up.

use sockloop::reactor::connector::{connect_with_retry, ConnectPolicy};
use sockloop::{Buffer, CloseReason, Context, EventLoop, Handler};
use std::cell::RefCell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::{Duration, Instant};

struct Probe {
    start: Instant,
    outcome: Rc<RefCell<Option<(String, i32)>>>,
}

impl Probe {
    fn finish(&mut self, ctx: &mut Context<'_>, what: &str, code: i32) {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        *self.outcome.borrow_mut() = Some((format!("{what} {ms:.1} ms"), code));
        ctx.stop();
    }
}

impl Handler for Probe {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.finish(ctx, "connected in", 0);
        ctx.close();
    }
    fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
        input.clear();
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        if self.outcome.borrow().is_some() {
            return;
        }
        match reason {
            CloseReason::ConnectTimeout => self.finish(ctx, "timed out after", 2),
            CloseReason::ConnectFailed(e) if e.kind() == ErrorKind::ConnectionRefused => {
                self.finish(ctx, "refused after", 1)
            }
            other => {
                let what = format!("failed ({other}) after");
                self.finish(ctx, &what, 3)
            }
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let mut addr = None;
    let mut policy = ConnectPolicy {
        timeout: Some(Duration::from_millis(3000)),
        ..ConnectPolicy::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let num = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        let res: Result<(), String> = match flag.as_str() {
            "--addr" => value
                .parse()
                .map(|a| addr = Some(a))
                .map_err(|e| format!("--addr: {e}")),
            "--timeout-ms" => num().map(|n| policy.timeout = Some(Duration::from_millis(n))),
            "--attempts" => num().map(|n| policy.max_attempts = n.clamp(1, u32::MAX as u64) as u32),
            "--backoff-ms" => num().map(|n| policy.initial_backoff = Duration::from_millis(n)),
            other => Err(format!("unknown argument {other}")),
        };
        if let Err(e) = res {
            eprintln!("{e}\nusage: connect --addr HOST:PORT [--timeout-ms N] [--attempts N] [--backoff-ms N]");
            std::process::exit(64);
        }
    }
    let Some(addr) = addr else {
        eprintln!(
            "usage: connect --addr HOST:PORT [--timeout-ms N] [--attempts N] [--backoff-ms N]"
        );
        std::process::exit(64);
    };
    let outcome = Rc::new(RefCell::new(None));
    let result = (|| -> std::io::Result<()> {
        let mut ev = EventLoop::new()?;
        let probe = Probe {
            start: Instant::now(),
            outcome: outcome.clone(),
        };
        connect_with_retry(&mut ev.context(), addr, policy, Box::new(probe));
        ev.run()
    })();
    if let Err(e) = result {
        println!("failed after 0.0 ms: {e}");
        std::process::exit(3);
    }
    let (line, code) = outcome
        .borrow_mut()
        .take()
        .unwrap_or(("failed after 0.0 ms: no outcome".into(), 3));
    println!("{line}");
    std::process::exit(code);
}
