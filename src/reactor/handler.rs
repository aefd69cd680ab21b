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
    /// One of the connection's handler callbacks (`on_open`, `on_data`,
    /// `on_drain`, `on_peer_closed`, `on_timer`) panicked, with this
    /// message. The panic was caught at the callback's boundary: this
    /// connection was aborted (RST, its batched and queued output
    /// discarded), the panic logged at error level, and the loop carried
    /// on serving the others. See [`Handler`] for what is not contained.
    Panic(String),
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
            CloseReason::Panic(msg) => write!(f, "handler panicked: {msg}"),
            CloseReason::Error(e) => write!(f, "I/O error: {e}"),
        }
    }
}

/// The callbacks of one connection. Every method but `on_data` has a
/// default. All run on the loop thread and must not block.
///
/// # Panics
///
/// A panic that unwinds out of `on_open`, `on_data`, `on_drain`,
/// `on_peer_closed` or `on_timer` (including one raised by a [`Context`]
/// method it called) ends that connection only: it is aborted (the peer
/// sees a reset), the panic message is logged at error level, `on_close`
/// is called with [`CloseReason::Panic`], and the loop serves the other
/// connections on. Whatever the handler shares with others (an
/// `Rc<RefCell<..>>`) may have been left half-updated by the panic: that
/// is the handler's to judge in `on_close`.
///
/// Not contained, so they unwind out of [`crate::EventLoop::run`] and stop
/// the loop: a panic in `on_close` (it runs while the loop reaps closed
/// connections), in a listener's handler factory, in a closure posted with
/// [`crate::LoopHandle::post`] or armed with [`Context::add_timer`], in a
/// callback of [`crate::EventLoop::watch`], and in the loop's own code. With
/// `panic = "abort"` nothing is contained: the process ends.
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

    /// Room to write again. Called once the queued output (bytes the
    /// kernel did not take, which had to wait for the socket) has drained
    /// to empty; and once per [`Context::notify_writable`] request, as soon
    /// as the queued output is at or below the connection's `low_water`
    /// mark ([`crate::ConnConfig::low_water`]): at once, after the current
    /// callback, if it already is, even if nothing was ever queued. Never
    /// called for a connection that is closing.
    ///
    /// Streaming a reply larger than `max_output` in bounded memory: write
    /// a piece, ask for `notify_writable`, write the next piece here. While
    /// busy, pause reading so that the next requests wait in the input
    /// buffer (or in the kernel); [`Context::resume_reading`] then delivers
    /// what is buffered again. Here 100 MiB go to a client through a
    /// connection whose `max_output` is 1 MiB, and the queue never holds
    /// more than `low_water` + one piece:
    ///
    /// ```
    /// use sockloop::{Buffer, Context, EventLoop, Handler, ServerConfig};
    /// use sockloop::net::TcpListener;
    /// use std::cell::Cell;
    /// use std::io::{Read, Write};
    /// use std::rc::Rc;
    ///
    /// const PIECE: usize = 64 * 1024;
    /// static ZEROS: [u8; PIECE] = [0; PIECE];
    ///
    /// /// Answers a request line `N\n` with N zero bytes, streamed.
    /// struct Streamer {
    ///     left: usize,
    ///     most_queued: Rc<Cell<usize>>,
    /// }
    ///
    /// impl Streamer {
    ///     fn pump(&mut self, ctx: &mut Context<'_>) {
    ///         // A few pieces per call, stopping as soon as the kernel
    ///         // refuses some; then ask to be called when there is room.
    ///         for _ in 0..16 {
    ///             if self.left == 0 {
    ///                 break;
    ///             }
    ///             let n = self.left.min(PIECE);
    ///             if ctx.write(&ZEROS[..n]).is_err() {
    ///                 return; // closed: on_close says why
    ///             }
    ///             self.left -= n;
    ///             self.most_queued.set(self.most_queued.get().max(ctx.output_len()));
    ///             if ctx.output_len() > 0 {
    ///                 break;
    ///             }
    ///         }
    ///         if self.left > 0 {
    ///             ctx.notify_writable();
    ///         } else {
    ///             ctx.resume_reading(); // the next request, if buffered
    ///         }
    ///     }
    /// }
    ///
    /// impl Handler for Streamer {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
    ///         if self.left > 0 {
    ///             return; // busy: requests wait in the buffer
    ///         }
    ///         let Some(end) = input.find(b"\n") else { return };
    ///         let n = std::str::from_utf8(&input.as_slice()[..end])
    ///             .ok()
    ///             .and_then(|s| s.parse().ok());
    ///         input.consume(end + 1);
    ///         match n {
    ///             Some(n) => {
    ///                 self.left = n;
    ///                 ctx.pause_reading();
    ///                 self.pump(ctx);
    ///             }
    ///             None => ctx.abort(),
    ///         }
    ///     }
    ///
    ///     fn on_drain(&mut self, ctx: &mut Context<'_>) {
    ///         self.pump(ctx);
    ///     }
    /// }
    ///
    /// let mut ev = EventLoop::new()?;
    /// let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    /// let addr = listener.local_addr()?;
    /// let mut config = ServerConfig::default();
    /// config.conn.max_output = 1 << 20; // 1 MiB, for 100 MiB replies
    /// let low_water = config.conn.low_water;
    /// let most_queued = Rc::new(Cell::new(0));
    /// let seen = most_queued.clone();
    /// ev.listen(listener, config, move |_id| {
    ///     Box::new(Streamer { left: 0, most_queued: seen.clone() })
    /// })?;
    /// let handle = ev.handle();
    /// let client = std::thread::spawn(move || -> std::io::Result<usize> {
    ///     let mut s = std::net::TcpStream::connect(addr)?;
    ///     s.write_all(b"104857600\n")?;
    ///     let mut buf = vec![0u8; PIECE];
    ///     let mut got = 0;
    ///     while got < 100 << 20 {
    ///         match s.read(&mut buf)? {
    ///             0 => break,
    ///             n => got += n,
    ///         }
    ///     }
    ///     handle.stop()?;
    ///     Ok(got)
    /// });
    /// ev.run()?;
    /// assert_eq!(client.join().unwrap()?, 100 << 20);
    /// assert!(most_queued.get() <= low_water + PIECE);
    /// # Ok::<(), std::io::Error>(())
    /// ```
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
