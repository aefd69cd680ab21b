//! What a user implements: [`Handler`], the per-connection callbacks, and
//! the reasons a connection can end ([`CloseReason`]).

use crate::buffer::Buffer;
use crate::reactor::context::Context;
use crate::timer::TimerId;
use crate::token::Token;
use std::fmt;
use std::io;

/// Identifies a connection in its loop. Stale ids (of closed connections)
/// are ignored by every operation that takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) Token);

impl ConnId {
    /// The token the loop registered this connection under.
    pub fn token(self) -> Token {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.0.key(), self.0.generation())
    }
}

/// Why a connection ended; given to [`Handler::on_close`].
#[derive(Debug)]
pub enum CloseReason {
    /// The peer closed its side (read returned 0) and we then closed ours.
    PeerClosed,
    /// We closed gracefully ([`Context::close`]): output flushed, FIN sent.
    Local,
    /// We aborted ([`Context::abort`]): RST sent, pending output discarded.
    Aborted,
    /// The peer reset the connection (ECONNRESET).
    Reset,
    /// A write failed with EPIPE: the connection was already closed for
    /// writing (typically the peer reset it).
    BrokenPipe,
    /// No bytes moved for the connection's idle timeout.
    IdleTimeout,
    /// An outgoing connection was not established within its timeout.
    ConnectTimeout,
    /// An outgoing connection failed (ECONNREFUSED, EHOSTUNREACH, ...).
    ConnectFailed(io::Error),
    /// The peer sent more than the input buffer's maximum without it being
    /// consumed.
    InputLimit,
    /// More output was queued than the output buffer's maximum.
    OutputLimit,
    /// The loop shut down and the connection did not finish in time.
    Shutdown,
    /// Any other I/O error on the connection.
    Error(io::Error),
}

impl CloseReason {
    /// True for the orderly endings: `PeerClosed` and `Local`.
    pub fn is_graceful(&self) -> bool {
        matches!(self, CloseReason::PeerClosed | CloseReason::Local)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Aborted => f.write_str("aborted locally (RST)"),
            CloseReason::Reset => f.write_str("reset by peer"),
            CloseReason::BrokenPipe => f.write_str("broken pipe"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::ConnectTimeout => f.write_str("connect timed out"),
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            CloseReason::InputLimit => f.write_str("input buffer limit exceeded"),
            CloseReason::OutputLimit => f.write_str("output buffer limit exceeded"),
            CloseReason::Shutdown => f.write_str("loop shut down"),
            CloseReason::Error(e) => write!(f, "I/O error: {e}"),
        }
    }
}

/// The callbacks of one connection. Every method but `on_data` has a
/// default. All run on the loop thread and must not block.
///
/// A closure `FnMut(&mut Context, &mut Buffer)` is a `Handler` whose
/// `on_data` is the closure.
pub trait Handler {
    /// The connection is established (accepted, or an outgoing connect
    /// completed). Writes made here are sent at once.
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// Bytes arrived. `input` holds everything received and not yet
    /// consumed; consume what you handle ([`Buffer::consume`]) and leave a
    /// partial message in place: it is kept, and the next bytes are
    /// appended to it. Unconsumed input beyond the connection's input
    /// maximum closes it with [`CloseReason::InputLimit`].
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer);

    /// The output buffer, which had filled because the socket would block,
    /// is empty again: a good moment to resume a paused producer.
    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// The peer shut down its sending side (half-close: read returned 0).
    /// We can still write. The default closes gracefully once the output
    /// is flushed, so that no connection lingers in CLOSE_WAIT.
    fn on_peer_closed(&mut self, ctx: &mut Context<'_>) {
        ctx.close();
    }

    /// The loop is shutting down gracefully (a signal,
    /// [`Context::shutdown`], [`crate::LoopHandle::shutdown`], or a
    /// cluster-wide shutdown). Called once per connection, after the bytes
    /// the kernel had already received for it have been given to
    /// [`Handler::on_data`] (also for connections accepted from a listen
    /// queue while shutting down). The default closes gracefully: output
    /// flushed, FIN, later input discarded. Override it to finish work
    /// first (an HTTP server answers a request in progress and marks its
    /// last response `Connection: close`, closes idle keep-alive
    /// connections after a short grace); whatever is still open when the
    /// shutdown's grace ends is closed with [`CloseReason::Shutdown`].
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        ctx.close();
    }

    /// A timer set with [`Context::set_timer`] fired.
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        let _ = (ctx, timer);
    }

    /// The connection is gone; its descriptor is closed right after this
    /// returns. `ctx` can still act on other connections.
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        let _ = (ctx, reason);
    }
}

impl<F> Handler for F
where
    F: FnMut(&mut Context<'_>, &mut Buffer),
{
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        self(ctx, input)
    }
}
