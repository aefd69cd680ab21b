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
//! * `GET /` and `HEAD /` answer 200 with exactly
//!   `Content-Type: text/plain` and `Content-Length: 13` (no `Date` or
//!   `Server`: a comparison peer sends the same bytes); other paths 404;
//!   other methods on `/` 405;
//! * request bodies (by `Content-Length`, at most 1 MiB, else 413) are
//!   read and discarded, also when they arrive after the answer;
//! * malformed heads: 400, head over 8 KiB: 431, `Transfer-Encoding`: 501,
//!   an `HTTP/x.y` other than 1.0/1.1: 505; each then closes;
//! * `Connection: close` (or HTTP/1.0) closes after the answer;
//! * graceful shutdown (SIGINT/SIGTERM): requests already received are
//!   answered; the next answer on each connection carries `Connection:
//!   close` and the connection closes after it; a keep-alive connection
//!   with no request in progress is closed after [`SHUTDOWN_IDLE_GRACE`]
//!   if no request comes (a client may have one on the way).
//! * `--threads N --balance reuseport|exclusive|handoff [--pin]`: N loops.
//! * HTTPS with `--tls-cert PEM --tls-key PEM` (build with `--features
//!   tls`): the same handler, ALPN `http/1.1`; a client that drops TCP
//!   without close_notify is a normal end (every answer has its length).
//!
//! Parsing happens in place in the connection's input buffer (see
//! `http/parser.rs`, a std-only module also used by tests and fuzzing):
//! no allocation per request. Prints `listening on ADDR` on stderr once
//! bound; logs via `RUST_LOG`; SIGINT/SIGTERM stop it gracefully.

#[path = "http/parser.rs"]
mod parser;

#[path = "common/cli.rs"]
mod cli;

use parser::{parse_request, HttpError, Method, Request, Version};
use sockloop::{Buffer, Context, Handler, TimerId};
use std::io::Write as _;

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const HELLO_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n";
const NOT_FOUND_HEAD: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n";
const NOT_FOUND_BODY: &[u8] = b"Not Found\n";
const NOT_ALLOWED_HEAD: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n\
Content-Type: text/plain\r\nContent-Length: 19\r\n";
const NOT_ALLOWED_BODY: &[u8] = b"Method Not Allowed\n";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

const TIMEOUT_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n\
Content-Length: 16\r\nConnection: close\r\n\r\nRequest Timeout\n";

/// How long, during a shutdown, a keep-alive connection with no request in
/// progress stays open for one that may be on its way.
const SHUTDOWN_IDLE_GRACE: std::time::Duration = std::time::Duration::from_millis(1000);

/// One connection's state: how many body bytes of the last request are
/// still to be discarded, and the deadline of a request head in progress.
#[derive(Default)]
struct Http {
    /// The loop is shutting down: the next answer is the last.
    draining: bool,
    /// Closes an idle keep-alive connection during a shutdown.
    idle_close: Option<TimerId>,
    /// Part of a request head waits in the input buffer.
    partial_head: bool,
    skip_body: usize,
    /// How long a request head may take to arrive in full (`None`: no
    /// limit). The idle timeout alone does not stop a client that drips a
    /// head one byte at a time, just faster than the idle timeout.
    head_timeout: Option<std::time::Duration>,
    head_timer: Option<TimerId>,
}

impl Http {
    fn new(head_timeout: Option<std::time::Duration>) -> Http {
        Http {
            head_timeout,
            ..Http::default()
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
        // Parse from an offset and consume once at the end: one pass over
        // the batch, no compaction between requests.
        let mut pos = 0;
        let bytes = input.as_slice();
        let mut close = false;
        let mut completed_one = false;
        while pos < bytes.len() {
            if self.skip_body > 0 {
                let n = self.skip_body.min(bytes.len() - pos);
                self.skip_body -= n;
                pos += n;
                continue;
            }
            match parse_request(&bytes[pos..]) {
                Ok(None) => break,
                Ok(Some((req, used))) => {
                    pos += used;
                    completed_one = true;
                    let body_here = req.content_length.min(bytes.len() - pos);
                    if req.expect_continue && body_here < req.content_length {
                        // The client waits for this before sending the body
                        // that it will send anyway after our final answer.
                        let _ = ctx.write(CONTINUE);
                    }
                    self.skip_body = req.content_length;
                    let keep_alive = req.keep_alive() && !self.draining;
                    if respond(ctx, &req, keep_alive).is_err() || !keep_alive {
                        close = true;
                        break;
                    }
                }
                Err(e) => {
                    log::debug!("bad request: {e}");
                    let _ = respond_error(ctx, e);
                    close = true;
                    break;
                }
            }
        }
        let partial_head = !close && self.skip_body == 0 && pos < bytes.len();
        self.partial_head = partial_head;
        if close {
            input.clear();
            ctx.close();
        } else {
            input.consume(pos);
        }
        self.track_head(ctx, partial_head, completed_one);
    }

    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        self.draining = true;
        if self.partial_head || self.skip_body > 0 {
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
            if !self.partial_head && self.skip_body == 0 {
                ctx.close();
            }
            return;
        }
        if self.head_timer == Some(timer) {
            self.head_timer = None;
            log::debug!("request head not complete in time: 408");
            let _ = ctx.write(TIMEOUT_408);
            ctx.close();
        }
    }
}

/// Writes the answer to `req`. Errors mean the connection is going away.
fn respond(ctx: &mut Context<'_>, req: &Request<'_>, keep_alive: bool) -> std::io::Result<()> {
    let head_only = req.method == Method::Head;
    let (head, body) = match (req.path(), req.method) {
        (b"/", Method::Get) if keep_alive && req.version == Version::Http11 => {
            // The hot path: one static write.
            return ctx.write(HELLO);
        }
        (b"/", Method::Get | Method::Head) => (HELLO_HEAD, &HELLO[HELLO.len() - 13..]),
        (b"/", _) => (NOT_ALLOWED_HEAD, NOT_ALLOWED_BODY),
        _ => (NOT_FOUND_HEAD, NOT_FOUND_BODY),
    };
    ctx.write(head)?;
    ctx.write(connection_header(req.version, keep_alive))?;
    ctx.write(b"\r\n")?;
    if !head_only {
        ctx.write(body)?;
    }
    Ok(())
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

/// Answers a refused request head; the connection closes afterwards.
fn respond_error(ctx: &mut Context<'_>, e: HttpError) -> std::io::Result<()> {
    let (code, reason) = e.status();
    // A stack buffer: no allocation even on the error path.
    let mut buf = [0u8; 256];
    let mut w = &mut buf[..];
    let body_len = reason.len() + 1;
    write!(
        w,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\n\
         Connection: close\r\n\r\n{reason}\n"
    )?;
    let n = 256 - w.len();
    ctx.write(&buf[..n])
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
