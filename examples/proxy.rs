//! TCP proxy: every accepted client gets its own connection to the
//! upstream, and bytes are relayed both ways.
//!
//! ```text
//! cargo run --release --example proxy -- --listen 127.0.0.1:7001 \
//!     --upstream 127.0.0.1:7000 --connect-timeout-ms 3000 --idle-timeout-secs 60
//! ```
//! Prints `listening on ADDR` on stderr once bound (`--listen` with port 0
//! picks a free port); logs via `RUST_LOG`; SIGINT/SIGTERM stop it
//! gracefully.
//!
//! * Bytes a client sends while the upstream connect is in progress are
//!   queued on the connecting upstream and sent once it is established.
//! * Backpressure: while one side's queued output is above [`HIGH_WATER`],
//!   the proxy stops reading from the other side, and resumes when that
//!   output has drained (`on_drain`). Memory per pair stays bounded
//!   whatever the speeds of the two peers: a slow side slows the fast one
//!   down through TCP flow control.
//! * Half-close: a FIN from one side is passed on (`shutdown(SHUT_WR)`) to
//!   the other once what was queued for it is flushed; the other direction
//!   keeps flowing. A connection is closed when both directions are done.
//! * A refused or timed-out upstream closes the client (with a log line); a
//!   reset on either side aborts (RST) the other.

#[path = "common/cli.rs"]
mod cli;

use sockloop::{Buffer, CloseReason, ConnId, Context, Handler};
use std::net::SocketAddr;
use std::time::Duration;

/// Stop reading from one side while the other side has more than this
/// queued (and not yet taken by its kernel socket buffer).
const HIGH_WATER: usize = 256 * 1024;

/// Sends what `input` holds to `to`, and stops reading from this side if
/// `to` now has more than [`HIGH_WATER`] queued; `to`'s handler resumes
/// us in its `on_drain`.
fn relay(ctx: &mut Context<'_>, to: ConnId, input: &mut Buffer) {
    match ctx.write_to(to, input.as_slice()) {
        Ok(()) => {
            input.clear();
            if ctx.output_len_of(to) > HIGH_WATER {
                ctx.pause_reading();
            }
        }
        Err(e) => {
            // The other side is gone or shut down for writing: these bytes
            // cannot be delivered, so tell our peer with a reset rather than
            // an orderly close.
            log::debug!("relay to {to} failed: {e}; aborting the pair");
            input.clear();
            ctx.abort();
            ctx.abort_conn(to);
        }
    }
}

/// Ends the other connection of a pair after this one ended for `reason`:
/// an orderly ending is passed on as an orderly close (after flushing what
/// is queued for it), a reset or error as a reset.
fn close_other(ctx: &mut Context<'_>, other: ConnId, reason: &CloseReason) {
    match reason {
        CloseReason::PeerClosed
        | CloseReason::Local
        | CloseReason::IdleTimeout
        | CloseReason::Shutdown
        | CloseReason::ConnectTimeout
        | CloseReason::ConnectFailed(_) => ctx.close_conn(other),
        CloseReason::Aborted
        | CloseReason::Reset
        | CloseReason::BrokenPipe
        | CloseReason::InputLimit
        | CloseReason::OutputLimit
        | CloseReason::Panic(_)
        | CloseReason::Error(_) => ctx.abort_conn(other),
    }
}

/// The accepted (client) side of a pair.
struct Client {
    upstream_addr: SocketAddr,
    connect_timeout: Duration,
    upstream: Option<ConnId>,
}

impl Handler for Client {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let Some(me) = ctx.id() else { return };
        let handler = Box::new(Upstream {
            client: me,
            addr: self.upstream_addr,
        });
        match ctx.connect(self.upstream_addr, Some(self.connect_timeout), handler) {
            Ok(up) => {
                log::debug!(
                    "{me}: connecting to upstream {} as {up}",
                    self.upstream_addr
                );
                self.upstream = Some(up);
            }
            Err(e) => {
                log::warn!(
                    "{me}: upstream {}: connect failed: {e}; closing the client",
                    self.upstream_addr
                );
                ctx.close();
            }
        }
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        match self.upstream {
            Some(up) => relay(ctx, up, input),
            None => input.clear(), // closing: the upstream never came up
        }
    }

    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        // Our output (bytes from the upstream) is flushed: read it again.
        if let Some(up) = self.upstream {
            ctx.resume_reading_of(up);
        }
    }

    fn on_peer_closed(&mut self, ctx: &mut Context<'_>) {
        // The client is done sending: pass its FIN on once the upstream has
        // flushed what it got. We keep relaying the other direction; this
        // connection closes once the upstream's FIN has been passed to it.
        match self.upstream {
            Some(up) => ctx.shutdown_write_conn(up),
            None => ctx.close(),
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        if let Some(up) = self.upstream {
            close_other(ctx, up, reason);
        }
    }
}

/// The outgoing (upstream) side of a pair.
struct Upstream {
    client: ConnId,
    addr: SocketAddr,
}

impl Handler for Upstream {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        log::debug!("{}: upstream {} connected", self.client, self.addr);
        // The loop sets TCP_NODELAY on accepted connections only; small
        // relayed requests must not wait for Nagle here either.
        if let Err(e) = ctx
            .fd()
            .and_then(|fd| sockloop::SocketOptions::set_nodelay(&fd, true))
        {
            log::debug!("{}: TCP_NODELAY on the upstream: {e}", self.client);
        }
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        relay(ctx, self.client, input);
    }

    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        ctx.resume_reading_of(self.client);
    }

    fn on_peer_closed(&mut self, ctx: &mut Context<'_>) {
        ctx.shutdown_write_conn(self.client);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        if matches!(
            reason,
            CloseReason::ConnectFailed(_) | CloseReason::ConnectTimeout
        ) {
            log::warn!(
                "{}: upstream {}: {reason}; closing the client",
                self.client,
                self.addr
            );
        }
        close_other(ctx, self.client, reason);
    }
}

fn main() {
    let cli = cli::Cli::parse_cluster(
        "proxy",
        "proxy [--listen HOST:PORT] [--upstream HOST:PORT] [--connect-timeout-ms N] \
         [--idle-timeout-secs N (0: never)] [--max-conns N]",
        &[
            "--listen",
            "--upstream",
            "--connect-timeout-ms",
            "--idle-timeout-secs",
            "--max-conns",
        ],
    );
    let listen = cli.addr("--listen", "127.0.0.1:7001");
    let upstream_addr = cli.addr("--upstream", "127.0.0.1:7000");
    let connect_timeout = Duration::from_millis(cli.get("--connect-timeout-ms", 3000));
    // Each client takes two connections (its own and the upstream's).
    let mut config = cli.server_config(60, 50_000);
    // The loop's own backpressure stops reading from a connection whose
    // *own* output is above its high-water mark: right for echo, but in a
    // proxy it would couple the two directions (a slow upload would stop the
    // download, and an upstream like echo then deadlocks with us). The
    // proxy applies backpressure across the pair itself (HIGH_WATER), which
    // also keeps every output far below max_output.
    config.conn.high_water = usize::MAX;
    let upstream_config = config.conn.clone();
    cli::serve_cluster(
        &cli,
        "proxy",
        listen,
        config,
        // Outgoing (upstream) connections use the loop's default config.
        move |ev| ev.set_conn_config(upstream_config.clone()),
        move |_loop| {
            move |_| {
                Box::new(Client {
                    upstream_addr,
                    connect_timeout,
                    upstream: None,
                }) as Box<dyn Handler>
            }
        },
    )
}
