//! A minimal HTTP/1.1 server: `GET /` answers `Hello, World!`.
//!
//! ```text
//! cargo run --release --example http -- --addr 127.0.0.1:8080 \
//!     --idle-timeout-secs 60 --max-conns 100000
//! curl -v http://127.0.0.1:8080/
//! wrk -t2 -c50 -d5s http://127.0.0.1:8080/
//! ```
//!
//! * keep-alive (HTTP/1.1 by default, HTTP/1.0 with `Connection:
//!   keep-alive`) and pipelining: every complete request in one read is
//!   answered, in order, and the answers leave in one `send`;
//! * `GET /` and `HEAD /` answer 200 with `Content-Type: text/plain`,
//!   `Content-Length: 13` and `Date`; other paths 404; other methods on
//!   `/` 405;
//! * every response carries a `Date` (IMF-fixdate, formatted once per
//!   second: `http/date.rs`);
//! * request bodies (by `Content-Length`, or chunked; at most 1 MiB, else
//!   413) are read and discarded; a `Content-Length` body also when it
//!   arrives after the answer, a chunked one before it (its size is known
//!   only at its end);
//! * malformed heads or chunked framing: 400, head over 8 KiB or 64
//!   fields: 431, a transfer coding other than chunked: 501, an `HTTP/x.y`
//!   other than 1.0/1.1: 505; each then closes;
//! * `Connection: close` (or HTTP/1.0) closes after the answer;
//! * graceful shutdown (SIGINT/SIGTERM): requests already received are
//!   answered; the next answer on each connection carries `Connection:
//!   close` and the connection closes after it; a keep-alive connection
//!   with no request in progress is closed after [`SHUTDOWN_IDLE_GRACE`]
//!   if no request comes (a client may have one on the way);
//! * `--threads N --balance reuseport|exclusive|handoff [--pin]`: N loops;
//! * HTTPS with `--tls-cert PEM --tls-key PEM` (build with `--features
//!   tls`): the same handler, ALPN `http/1.1`; a client that drops TCP
//!   without close_notify is a normal end (every answer has its length).
//!
//! Requests are parsed with `httparse`, in place in the connection's input
//! buffer (see `http/parser.rs`, also used by tests and fuzzing): no
//! allocation per request. Prints `listening on ADDR` on stderr once
//! bound; logs via `RUST_LOG`; SIGINT/SIGTERM stop it gracefully.

#[path = "http/parser.rs"]
mod parser;

#[path = "http/date.rs"]
mod date;

#[path = "common/cli.rs"]
mod cli;

use parser::{parse_request_into, Chunked, HttpError, Method, Request, Version};
use sockloop::{Buffer, Context, Handler, TimerId};
use std::cell::RefCell;
use std::io::Write as _;

/// The hot path's answer up to the date, and what follows the date.
const HELLO_PRE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nDate: ";
const HELLO_POST: &[u8] = b"\r\n\r\nHello, World!";
const HELLO_LEN: usize = HELLO_PRE.len() + date::LEN + HELLO_POST.len();
const HELLO_BODY: &[u8] = b"Hello, World!";
const HELLO_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n";
const NOT_FOUND_HEAD: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n";
const NOT_FOUND_BODY: &[u8] = b"Not Found\n";
const NOT_ALLOWED_HEAD: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n\
Content-Type: text/plain\r\nContent-Length: 19\r\n";
const NOT_ALLOWED_BODY: &[u8] = b"Method Not Allowed\n";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

const TIMEOUT_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n\
Content-Length: 16\r\nConnection: close\r\n";
const TIMEOUT_408_BODY: &[u8] = b"Request Timeout\n";

/// How long, during a shutdown, a keep-alive connection with no request in
/// progress stays open for one that may be on its way.
const SHUTDOWN_IDLE_GRACE: std::time::Duration = std::time::Duration::from_millis(1000);

/// How many `GET /` answers one write carries at most: a pipelined run of
/// them is written as one slice of [`Stamp::hellos`]. 8 x 115 bytes stays
/// under the reactor's direct-write threshold (1 KiB), so the runs still
/// batch with the rest of the callback's output into one `send`.
const HELLO_RUN: usize = 8;
// sockloop's direct-write threshold (`Context::write`: 1 KiB or more is sent
// at once): a full run must stay below it.
const _: () = assert!(HELLO_LEN * HELLO_RUN < 1024);

/// The date, and the hot path's whole answer with it, per loop thread:
/// re-rendered once per second, shared by all the loop's connections.
struct Stamp {
    date: date::DateCache,
    /// [`HELLO_RUN`] copies of the `GET /` answer, back to back.
    hellos: [u8; HELLO_LEN * HELLO_RUN],
}

thread_local! {
    static STAMP: RefCell<Stamp> = const {
        RefCell::new(Stamp {
            date: date::DateCache::new(),
            hellos: [0; HELLO_LEN * HELLO_RUN],
        })
    };
}

impl Stamp {
    /// Re-renders the date and the `GET /` answer if the second of `now`
    /// (the loop clock) is not the one they were rendered for.
    #[inline]
    fn refresh(&mut self, now: std::time::Duration) {
        if self.date.is_stale(now) {
            let date = *self.date.get(now);
            for h in self.hellos.chunks_exact_mut(HELLO_LEN) {
                h[..HELLO_PRE.len()].copy_from_slice(HELLO_PRE);
                h[HELLO_PRE.len()..HELLO_PRE.len() + date::LEN].copy_from_slice(&date);
                h[HELLO_PRE.len() + date::LEN..].copy_from_slice(HELLO_POST);
            }
        }
    }

    /// The `Date` field line, CRLF included.
    fn date_line(&self) -> &[u8] {
        &self.hellos[HELLO_PRE.len() - 6..HELLO_PRE.len() + date::LEN + 2]
    }
}

/// One batch's output. Keep-alive `GET /` answers are counted, and written
/// as one run of [`Stamp::hellos`] when [`HELLO_RUN`] are due, before any
/// other write (so answers leave in request order), and at the end of the
/// batch ([`Out::flush`]). A failed write is reported by the call that
/// makes it: the connection is going away either way.
struct Out<'s> {
    stamp: &'s Stamp,
    /// `GET /` answers due and not yet written.
    hellos: usize,
}

impl Out<'_> {
    /// One keep-alive HTTP/1.1 `GET /` answer.
    #[inline]
    fn hello(&mut self, ctx: &mut Context<'_>) -> std::io::Result<()> {
        self.hellos += 1;
        if self.hellos == HELLO_RUN {
            self.flush(ctx)
        } else {
            Ok(())
        }
    }

    /// Writes the `GET /` answers due.
    #[inline]
    fn flush(&mut self, ctx: &mut Context<'_>) -> std::io::Result<()> {
        match std::mem::take(&mut self.hellos) {
            0 => Ok(()),
            n => ctx.write(&self.stamp.hellos[..n * HELLO_LEN]),
        }
    }

    /// Writes `data` after the answers due.
    fn write(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> std::io::Result<()> {
        self.flush(ctx)?;
        ctx.write(data)
    }
}

/// Runs `f` with this loop's [`Stamp`], fresh for the loop's current time.
/// Once per callback (a whole read's batch of requests), not per request:
/// the loop clock does not move inside a callback.
#[inline]
fn with_stamp<R>(ctx: &mut Context<'_>, f: impl FnOnce(&mut Context<'_>, &Stamp) -> R) -> R {
    let now = ctx.now();
    STAMP.with(|s| {
        let mut s = s.borrow_mut();
        s.refresh(now);
        f(ctx, &s)
    })
}

/// What a request is answered with, decided from its head (kept while a
/// chunked body is read).
#[derive(Clone, Copy)]
struct Answer {
    route: Route,
    version: Version,
    keep_alive: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Route {
    Hello,
    HelloHead,
    NotAllowed,
    NotFound,
}

impl Answer {
    fn of(req: &Request<'_>) -> Answer {
        let root = matches!(req.target, [b'/'] | [b'/', b'?', ..]);
        let route = match (root, req.method) {
            (true, Method::Get) => Route::Hello,
            (true, Method::Head) => Route::HelloHead,
            (true, _) => Route::NotAllowed,
            _ => Route::NotFound,
        };
        Answer {
            route,
            version: req.version,
            keep_alive: req.keep_alive(),
        }
    }
}

/// Whether `req` is a keep-alive HTTP/1.1 `GET /` without a body: what
/// [`Answer::of`] and [`respond`] answer with one of [`Stamp::hellos`].
#[inline]
fn is_hello(req: &Request<'_>) -> bool {
    req.method == Method::Get
        && matches!(req.target, [b'/'] | [b'/', b'?', ..])
        && req.version == Version::Http11
        && !req.conn_close
        && !req.chunked
        && req.content_length == 0
}

/// The request body still to be read and discarded. A plain `u8` tag
/// (`repr(u8)`, not a niche in `Chunked`'s state): the batch loop tests it
/// for `None` before every request with one compare.
#[repr(u8)]
enum Body {
    None,
    /// `Content-Length` bytes left.
    Skip(usize),
    /// A chunked body, and the answer to send once it is complete.
    Chunked(Chunked, Answer),
}

/// One connection's state: the body being discarded, the deadline of a
/// request head in progress, and what a shutdown asked.
struct Http {
    /// The loop is shutting down: the next answer is the last.
    draining: bool,
    /// Closes an idle keep-alive connection during a shutdown.
    idle_close: Option<TimerId>,
    /// Part of a request head waits in the input buffer.
    partial_head: bool,
    body: Body,
    /// How long a request head may take to arrive in full (`None`: no
    /// limit). The idle timeout alone does not stop a client that drips a
    /// head one byte at a time, just faster than the idle timeout.
    head_timeout: Option<std::time::Duration>,
    head_timer: Option<TimerId>,
}

impl Http {
    fn new(head_timeout: Option<std::time::Duration>) -> Http {
        Http {
            draining: false,
            idle_close: None,
            partial_head: false,
            body: Body::None,
            head_timeout,
            head_timer: None,
        }
    }

    /// Arms the head deadline when a partial head waits in the buffer
    /// (once per head: later bytes of the same head do not move it), and
    /// disarms it when none does.
    fn track_head(&mut self, ctx: &mut Context<'_>, partial_head: bool, completed_one: bool) {
        if completed_one || !partial_head {
            if let Some(t) = self.head_timer.take() {
                ctx.cancel_timer(t);
            }
        }
        if partial_head && self.head_timer.is_none() {
            if let Some(limit) = self.head_timeout {
                self.head_timer = ctx.set_timer(limit).ok();
            }
        }
    }
}

impl Handler for Http {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        with_stamp(ctx, |ctx, stamp| self.serve(ctx, input, stamp));
    }

    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        self.draining = true;
        if self.partial_head || !matches!(self.body, Body::None) {
            // A request in progress: it is answered (with `Connection:
            // close`) when it completes, or meets its head deadline, or
            // the end of the shutdown's grace.
            return;
        }
        // Idle keep-alive: a request may be in flight towards us; closing
        // now would make the client see the connection end instead of an
        // answer.
        match ctx.set_timer(SHUTDOWN_IDLE_GRACE) {
            Ok(t) => self.idle_close = Some(t),
            Err(_) => ctx.close(),
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        if self.idle_close == Some(timer) {
            self.idle_close = None;
            if !self.partial_head && matches!(self.body, Body::None) {
                ctx.close();
            }
            return;
        }
        if self.head_timer == Some(timer) {
            self.head_timer = None;
            log::debug!("request head not complete in time: 408");
            let _ = with_stamp(ctx, |ctx, stamp| {
                ctx.write(TIMEOUT_408)?;
                ctx.write(stamp.date_line())?;
                ctx.write(b"\r\n")?;
                ctx.write(TIMEOUT_408_BODY)
            });
            ctx.close();
        }
    }
}

impl Http {
    /// Answers every complete request in `input` (one read's batch) with
    /// the date and answers of `stamp`.
    fn serve(&mut self, ctx: &mut Context<'_>, input: &mut Buffer, stamp: &Stamp) {
        // The batch's output, on this frame: its run count stays out of
        // memory the caller could see.
        let out = &mut Out { stamp, hellos: 0 };
        // Parse from an offset and consume once at the end: one pass over
        // the batch, no compaction between requests.
        let mut pos = 0;
        let bytes = input.as_slice();
        let mut close = false;
        let mut completed_one = false;
        let mut req = Request::EMPTY;
        while pos < bytes.len() {
            match &mut self.body {
                Body::Skip(left) => {
                    let n = (*left).min(bytes.len() - pos);
                    *left -= n;
                    pos += n;
                    if *left == 0 {
                        self.body = Body::None;
                    }
                    continue;
                }
                Body::Chunked(..) => {
                    let (used, step) = self.chunked(ctx, out, &bytes[pos..]);
                    pos += used;
                    match step {
                        Step::Next => continue,
                        Step::Wait => break,
                        Step::Close => {
                            close = true;
                            break;
                        }
                    }
                }
                Body::None => {}
            }
            match parse_request_into(&bytes[pos..], &mut req) {
                Ok(None) => break,
                Ok(Some(used)) => {
                    pos += used;
                    completed_one = true;
                    if !self.draining && is_hello(&req) {
                        // The hot path, decided before anything else.
                        if out.hello(ctx).is_err() {
                            close = true;
                            break;
                        }
                        continue;
                    }
                    if self.other(ctx, out, &req, bytes.len() - pos) {
                        close = true;
                        break;
                    }
                }
                Err(e) => {
                    refuse(ctx, out, e);
                    close = true;
                    break;
                }
            }
        }
        if out.flush(ctx).is_err() {
            close = true;
        }
        let partial_head = !close && matches!(self.body, Body::None) && pos < bytes.len();
        self.partial_head = partial_head;
        if close {
            input.clear();
            ctx.close();
        } else {
            input.consume(pos);
        }
        self.track_head(ctx, partial_head, completed_one);
    }

    /// Feeds `rest` to the chunked body being read; answers once it is
    /// complete. Returns the bytes used and what the batch does next.
    #[inline(never)]
    fn chunked(&mut self, ctx: &mut Context<'_>, out: &mut Out<'_>, rest: &[u8]) -> (usize, Step) {
        let Body::Chunked(dec, answer) = &mut self.body else {
            return (0, Step::Next);
        };
        match dec.feed(rest) {
            Ok(used) if !dec.is_done() => (used, Step::Wait), // the rest of a line is still to come
            Ok(used) => {
                let mut answer = *answer;
                answer.keep_alive &= !self.draining;
                self.body = Body::None;
                if respond(ctx, answer, out).is_err() || !answer.keep_alive {
                    (used, Step::Close)
                } else {
                    (used, Step::Next)
                }
            }
            Err(e) => {
                log::debug!("bad chunked body: {e}");
                let _ = respond_error(ctx, e, out);
                (0, Step::Close)
            }
        }
    }

    /// Everything but the hot path for a request whose head just ended,
    /// `left` bytes before the end of the batch. Out of line, so the batch
    /// loop stays small. Returns true when the connection is to close.
    #[inline(never)]
    fn other(
        &mut self,
        ctx: &mut Context<'_>,
        out: &mut Out<'_>,
        req: &Request<'_>,
        left: usize,
    ) -> bool {
        let mut answer = Answer::of(req);
        // Shutting down: this answer is the last (`Connection:
        // close`), then the connection closes.
        answer.keep_alive &= !self.draining;
        if req.chunked {
            if req.expect_continue && left == 0 {
                let _ = out.write(ctx, CONTINUE);
            }
            // Answered once the body is complete: only then is
            // its size known to be within the limit.
            self.body = Body::Chunked(Chunked::new(), answer);
            return false;
        }
        let body_here = req.content_length.min(left);
        if req.expect_continue && body_here < req.content_length {
            // The client waits for this before sending the body
            // that it will send anyway after our final answer.
            let _ = out.write(ctx, CONTINUE);
        }
        if req.content_length > 0 {
            self.body = Body::Skip(req.content_length);
        }
        respond(ctx, answer, out).is_err() || !answer.keep_alive
    }
}

/// What the batch loop does after a step of a chunked body.
enum Step {
    /// Go on with the next bytes.
    Next,
    /// Wait for more bytes.
    Wait,
    /// Close the connection (after what was written).
    Close,
}

/// Answers a head refused with `e`; the connection closes afterwards.
#[cold]
#[inline(never)]
fn refuse(ctx: &mut Context<'_>, out: &mut Out<'_>, e: HttpError) {
    log::debug!("bad request: {e}");
    let _ = respond_error(ctx, e, out);
}

/// Writes the answer. Errors mean the connection is going away.
#[inline]
fn respond(ctx: &mut Context<'_>, a: Answer, out: &mut Out<'_>) -> std::io::Result<()> {
    if a.route == Route::Hello && a.keep_alive && a.version == Version::Http11 {
        // The hot path: the answer rendered with this second's date, in a
        // run with the ones around it.
        return out.hello(ctx);
    }
    respond_other(ctx, a, out)
}

/// [`respond`] for all but a keep-alive HTTP/1.1 `GET /`.
#[inline(never)]
fn respond_other(ctx: &mut Context<'_>, a: Answer, out: &mut Out<'_>) -> std::io::Result<()> {
    let (head, body) = match a.route {
        Route::Hello => (HELLO_HEAD, HELLO_BODY),
        Route::HelloHead => (HELLO_HEAD, &b""[..]),
        Route::NotAllowed => (NOT_ALLOWED_HEAD, NOT_ALLOWED_BODY),
        Route::NotFound => (NOT_FOUND_HEAD, NOT_FOUND_BODY),
    };
    out.write(ctx, head)?;
    ctx.write(connection_header(a.version, a.keep_alive))?;
    ctx.write(out.stamp.date_line())?;
    ctx.write(b"\r\n")?;
    ctx.write(body)
}

/// The `Connection` field, when the default for the version does not say
/// what we do.
fn connection_header(version: Version, keep_alive: bool) -> &'static [u8] {
    match (version, keep_alive) {
        (Version::Http11, true) => b"",
        (Version::Http10, true) => b"Connection: keep-alive\r\n",
        (_, false) => b"Connection: close\r\n",
    }
}

/// Answers a refused request; the connection closes afterwards.
fn respond_error(ctx: &mut Context<'_>, e: HttpError, out: &mut Out<'_>) -> std::io::Result<()> {
    let (code, reason) = e.status();
    // A stack buffer: no allocation even on the error path.
    let mut buf = [0u8; 256];
    let mut w = &mut buf[..];
    let body_len = reason.len() + 1;
    write!(
        w,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\
         Connection: close\r\n"
    )?;
    let n = 256 - w.len();
    out.write(ctx, &buf[..n])?;
    ctx.write(out.stamp.date_line())?;
    ctx.write(b"\r\n")?;
    ctx.write(reason.as_bytes())?;
    ctx.write(b"\n")
}

fn main() {
    let cli = cli::Cli::parse_cluster(
        "http",
        "http [--addr HOST:PORT] [--idle-timeout-secs N (0: never)] [--max-conns N] \
         [--head-timeout-secs N (0: never)] [--tls-cert PEM --tls-key PEM]",
        &[
            "--addr",
            "--idle-timeout-secs",
            "--max-conns",
            "--head-timeout-secs",
            cli::TLS_SERVER_FLAGS[0],
            cli::TLS_SERVER_FLAGS[1],
        ],
    );
    let addr = cli.addr("--addr", "127.0.0.1:8080");
    #[allow(unused_mut)]
    let mut config = cli.server_config(60, 100_000);
    // HTTPS with --tls-cert/--tls-key (feature `tls`), ALPN http/1.1.
    #[cfg(feature = "tls")]
    {
        config.tls = cli::tls_server(
            "http",
            cli.value("--tls-cert"),
            cli.value("--tls-key"),
            &[b"http/1.1"],
        );
        if let Some(tls) = config.tls.as_mut() {
            // Every answer carries Content-Length: a cut stream is seen.
            tls.allow_truncation = true;
        }
    }
    #[cfg(not(feature = "tls"))]
    cli::no_tls(
        "http",
        cli.value("--tls-cert").is_some() || cli.value("--tls-key").is_some(),
    );
    let head_timeout = match cli.get("--head-timeout-secs", 10u64) {
        0 => None,
        n => Some(std::time::Duration::from_secs(n)),
    };
    cli::serve_cluster(
        &cli,
        "http",
        addr,
        config,
        |_| {},
        move |_loop| move |_| Box::new(Http::new(head_timeout)) as Box<dyn Handler>,
    )
}
