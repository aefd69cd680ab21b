//! Outgoing connections that retry with exponential backoff (muduo's
//!
//! In the event path: a connection's `on_close` for a failed attempt
//! schedules a timer; its expiry starts the next `Context::connect`.
//! `Connector`), on top of [`Context::connect`].
//!
//! Each attempt is a non-blocking connect: EINPROGRESS, then writability,
//! then `SO_ERROR`, bounded by [`ConnectPolicy::timeout`]. A failed or
//! timed-out attempt is retried after a backoff that doubles from
//! `initial_backoff` up to `max_backoff`, at most `max_attempts` times in
//! all. The user's handler sees `on_open` once connected; if every attempt
//! fails (or the connector is cancelled) it sees `on_close` with the last
//! attempt's reason.
//!
//! ```
//! use sockloop::reactor::connector::{connect_with_retry, ConnectPolicy};
//! use sockloop::{Buffer, Context, EventLoop, Handler};
//! use std::time::Duration;
//!
//! struct StopWhenOpen;
//! impl Handler for StopWhenOpen {
//!     fn on_open(&mut self, ctx: &mut Context<'_>) {
//!         ctx.stop(); // connected: done
//!     }
//!     fn on_data(&mut self, _ctx: &mut Context<'_>, input: &mut Buffer) {
//!         input.clear();
//!     }
//! }
//!
//! let server = std::net::TcpListener::bind("127.0.0.1:0")?; // a free port
//! let mut ev = EventLoop::new()?;
//! let policy = ConnectPolicy {
//!     timeout: Some(Duration::from_secs(1)),
//!     max_attempts: 5,
//!     ..ConnectPolicy::default()
//! };
//! let addr = server.local_addr()?;
//! let connector = connect_with_retry(&mut ev.context(), addr, policy, Box::new(StopWhenOpen));
//! // connector.cancel() would stop retrying.
//! ev.run()?;
//! # drop(connector);
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::buffer::Buffer;
use crate::reactor::context::Context;
use crate::reactor::handler::{CloseReason, ConnId, Handler};
use crate::timer::TimerId;
use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// How an outgoing connection is attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectPolicy {
    /// Time limit of each attempt (`None`: the kernel's, about 2 minutes).
    pub timeout: Option<Duration>,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Cap of the wait between attempts.
    pub max_backoff: Duration,
}

impl Default for ConnectPolicy {
    fn default() -> Self {
        ConnectPolicy {
            timeout: Some(Duration::from_secs(3)),
            max_attempts: 1,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl ConnectPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }
}

#[derive(Default)]
struct State {
    cancelled: Cell<bool>,
    attempts: Cell<u32>,
    current: Cell<Option<ConnId>>,
    connected: Cell<bool>,
    retry_timer: Cell<Option<TimerId>>,
    // The user's handler while waiting between attempts.
    parked: RefCell<Option<Box<dyn Handler>>>,
}

/// A running connector: query it, or cancel it.
#[derive(Clone)]
pub struct Connector {
    state: Rc<State>,
}

impl Connector {
    /// How many attempts have been started.
    pub fn attempts(&self) -> u32 {
        self.state.attempts.get()
    }

    /// True once an attempt has connected.
    pub fn is_connected(&self) -> bool {
        self.state.connected.get()
    }

    /// The connection of the current (or successful) attempt.
    pub fn conn_id(&self) -> Option<ConnId> {
        self.state.current.get()
    }

    /// Stops retrying. An attempt in progress is abandoned (its socket
    /// closed); the handler's `on_close` then runs with `ConnectFailed`
    /// (`Interrupted`). A connection already established is not touched.
    pub fn cancel(&self, ctx: &mut Context<'_>) {
        if self.state.connected.get() || self.state.cancelled.replace(true) {
            return;
        }
        if let Some(t) = self.state.retry_timer.take() {
            ctx.cancel_timer(t);
            if let Some(mut h) = self.state.parked.borrow_mut().take() {
                h.on_close(ctx, &cancelled());
            }
        } else if let Some(id) = self.state.current.get() {
            ctx.abort_conn(id);
        }
    }
}

fn cancelled() -> CloseReason {
    CloseReason::ConnectFailed(io::Error::new(
        io::ErrorKind::Interrupted,
        "connector cancelled",
    ))
}

/// Connects to `addr` following `policy`; `handler` serves the connection
/// once established. Failures that happen at once (refused before the
/// handshake, out of descriptors) count as attempts like the others.
pub fn connect_with_retry(
    ctx: &mut Context<'_>,
    addr: SocketAddr,
    policy: ConnectPolicy,
    handler: Box<dyn Handler>,
) -> Connector {
    let state = Rc::new(State::default());
    attempt(ctx, addr, Rc::new(policy), state.clone(), handler);
    Connector { state }
}

fn attempt(
    ctx: &mut Context<'_>,
    addr: SocketAddr,
    policy: Rc<ConnectPolicy>,
    state: Rc<State>,
    handler: Box<dyn Handler>,
) {
    state.attempts.set(state.attempts.get() + 1);
    let wrapper = Box::new(Attempt {
        addr,
        policy: policy.clone(),
        state: state.clone(),
        inner: Some(handler),
    });
    match ctx.try_connect(addr, policy.timeout, wrapper) {
        Ok(id) => state.current.set(Some(id)),
        Err((e, mut wrapper)) => {
            // Failed at once (refused before the handshake, EMFILE): the
            // same as a failed attempt.
            wrapper.on_close(ctx, &CloseReason::ConnectFailed(e));
        }
    }
}

/// Wraps the user's handler for one attempt.
struct Attempt {
    addr: SocketAddr,
    policy: Rc<ConnectPolicy>,
    state: Rc<State>,
    inner: Option<Box<dyn Handler>>,
}

impl Handler for Attempt {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.state.connected.set(true);
        if let Some(h) = &mut self.inner {
            h.on_open(ctx);
        }
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if let Some(h) = &mut self.inner {
            h.on_data(ctx, input);
        }
    }
    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        if let Some(h) = &mut self.inner {
            h.on_drain(ctx);
        }
    }
    fn on_peer_closed(&mut self, ctx: &mut Context<'_>) {
        if let Some(h) = &mut self.inner {
            h.on_peer_closed(ctx);
        }
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        if let Some(h) = &mut self.inner {
            h.on_timer(ctx, timer);
        }
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        let Some(mut inner) = self.inner.take() else {
            return;
        };
        let failed_attempt = matches!(
            reason,
            CloseReason::ConnectFailed(_) | CloseReason::ConnectTimeout
        ) && !self.state.connected.get();
        let tries = self.state.attempts.get();
        if !failed_attempt || self.state.cancelled.get() || tries >= self.policy.max_attempts.max(1)
        {
            // A named binding, not `&cancelled()` inside the `if`: Rust
            // 1.75 (our MSRV) does not extend a temporary's lifetime out of
            // an `if` arm (E0716); newer compilers do.
            let cancelled_reason;
            // Cancelled before a connection was made: whether the attempt
            // failed on its own or was aborted by `cancel` while in flight,
            // the handler hears the documented `Interrupted`.
            let reason = if self.state.cancelled.get() && !self.state.connected.get() {
                cancelled_reason = cancelled();
                &cancelled_reason
            } else {
                reason
            };
            inner.on_close(ctx, reason);
            return;
        }
        let wait = self.policy.backoff(tries);
        log::debug!(
            "connect to {} failed ({reason}); retry {} in {wait:?}",
            self.addr,
            tries + 1
        );
        self.state.current.set(None);
        *self.state.parked.borrow_mut() = Some(inner);
        let (addr, policy, state) = (self.addr, self.policy.clone(), self.state.clone());
        let timer = ctx.add_timer(wait, move |ctx| {
            state.retry_timer.set(None);
            let parked = state.parked.borrow_mut().take();
            if let Some(h) = parked {
                attempt(ctx, addr, policy, state, h);
            }
        });
        self.state.retry_timer.set(Some(timer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = ConnectPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
            ..ConnectPolicy::default()
        };
        let waits: Vec<u128> = (1..=6).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 700, 700, 700]);
        assert_eq!(p.backoff(200), Duration::from_millis(700), "no overflow");
    }
}
