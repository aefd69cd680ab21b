//! Line-based chat room: every complete line a client sends is sent to
//! every other client, prefixed with the sender's id (`conn#N.G: `).
//!
//! ```text
//! cargo run --release --example chat -- --addr 127.0.0.1:7003
//! nc 127.0.0.1 7003      # in two or more terminals
//! ```
//! Prints `listening on ADDR` on stderr once bound (port 0 picks a free
//! port); logs via `RUST_LOG`; SIGINT/SIGTERM stop it gracefully.
//!
//! * A new client first gets one line for itself, `* welcome conn#N.G@L
//!   (K online)` (L: the loop serving it), once it is in the room: from
//!   then on it receives every line the others send.
//! * `--threads N --balance reuseport|exclusive|handoff [--pin]`: N loops.
//!   Each loop keeps the members it serves (a thread-local room: the loops
//!   share nothing); a line is posted to every loop
//!   (`Context::post_all`), which writes it to its own members. Lines of
//!   one sender reach each receiver in order, whatever loops they are on.
//! * A partial line is kept until its newline arrives; a line longer than
//!   [`MAX_LINE`] closes that client.
//! * A slow reader whose queued output passes [`SLOW_READER_LIMIT`] is
//!   disconnected (with a log line) instead of growing the server's memory;
//!   the others are not held back by it.

#[path = "common/cli.rs"]
mod cli;

use sockloop::{Buffer, CloseReason, ConnId, Context, Handler};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Longest accepted line, without its newline.
const MAX_LINE: usize = 8 * 1024;
/// A client with more than this queued for it is disconnected.
const SLOW_READER_LIMIT: usize = 1024 * 1024;

/// Who is in the room on this loop, in order of arrival (ids sort by slot,
/// which is good enough for a stable broadcast order).
#[derive(Default)]
struct Room {
    members: BTreeSet<ConnId>,
}

thread_local! {
    /// This loop's part of the room: each loop runs on its own thread.
    static ROOM: RefCell<Room> = RefCell::new(Room::default());
}

struct Member {
    id: ConnId,
    loop_index: usize,
    /// Members on every loop.
    online: Arc<AtomicUsize>,
}

/// Writes `msg` to this loop's members, but the sender (`from`: its loop
/// and id).
fn deliver(ctx: &mut Context<'_>, msg: &[u8], from: (usize, ConnId)) {
    let here = ctx.loop_index();
    // Copy the member list: no borrow of the room is held while the loop
    // acts on connections.
    let members: Vec<ConnId> = ROOM.with(|r| {
        r.borrow()
            .members
            .iter()
            .copied()
            .filter(|&m| (here, m) != from)
            .collect()
    });
    for other in members {
        let queued = ctx.output_len_of(other);
        if queued + msg.len() > SLOW_READER_LIMIT {
            log::warn!("{other}@{here}: slow reader ({queued} bytes queued): disconnecting it");
            // Leave at once: the room must not wait for its on_close.
            ROOM.with(|r| r.borrow_mut().members.remove(&other));
            ctx.abort_conn(other);
            continue;
        }
        if let Err(e) = ctx.write_to(other, msg) {
            log::debug!("{other}@{here}: cannot deliver: {e}");
        }
    }
}

impl Member {
    /// Sends one line (with its newline) from this member to all others,
    /// on every loop.
    fn broadcast(&self, ctx: &mut Context<'_>, line: &[u8]) {
        let prefix = format!("{}@{}: ", self.id, self.loop_index);
        let mut msg = Vec::with_capacity(prefix.len() + line.len());
        msg.extend_from_slice(prefix.as_bytes());
        msg.extend_from_slice(line);
        let from = (self.loop_index, self.id);
        if ctx.loop_count() == 1 {
            return deliver(ctx, &msg, from);
        }
        let msg: Arc<[u8]> = msg.into();
        if let Err(e) = ctx.post_all(move |ctx| deliver(ctx, &msg, from)) {
            log::error!("cannot broadcast: {e}");
        }
    }
}

impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ROOM.with(|r| r.borrow_mut().members.insert(self.id));
        let online = self.online.fetch_add(1, Ordering::Relaxed) + 1;
        log::info!("{}@{} joined ({online} online)", self.id, self.loop_index);
        let _ = ctx.write(
            format!(
                "* welcome {}@{} ({online} online)\n",
                self.id, self.loop_index
            )
            .as_bytes(),
        );
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        let mut start = 0;
        let data = input.as_slice();
        while let Some(pos) = data[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            if pos > MAX_LINE {
                break; // handled below as an over-long line
            }
            self.broadcast(ctx, &data[start..end]);
            start = end;
        }
        let rest = &data[start..];
        let too_long = match rest.iter().position(|&b| b == b'\n') {
            Some(pos) => pos > MAX_LINE,
            None => rest.len() > MAX_LINE,
        };
        input.consume(start);
        if too_long {
            log::warn!(
                "{}@{}: line longer than {MAX_LINE} bytes: closing",
                self.id,
                self.loop_index
            );
            input.clear();
            let _ = ctx.write(format!("* line longer than {MAX_LINE} bytes\n").as_bytes());
            ctx.close();
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
        ROOM.with(|r| r.borrow_mut().members.remove(&self.id));
        let online = self.online.fetch_sub(1, Ordering::Relaxed) - 1;
        log::info!(
            "{}@{} left: {reason} ({online} online)",
            self.id,
            self.loop_index
        );
    }
}

fn main() {
    let cli = cli::Cli::parse_cluster(
        "chat",
        "chat [--addr HOST:PORT] [--idle-timeout-secs N (0: never)] [--max-conns N]",
        &["--addr", "--idle-timeout-secs", "--max-conns"],
    );
    let addr = cli.addr("--addr", "127.0.0.1:7003");
    let mut config = cli.server_config(0, 100_000);
    // Output is bounded by the slow-reader limit (checked before each
    // write); the loop's per-connection cap only has to stay above it.
    config.conn.max_output = 2 * SLOW_READER_LIMIT;
    let online = Arc::new(AtomicUsize::new(0));
    cli::serve_cluster(
        &cli,
        "chat",
        addr,
        config,
        |_| {},
        move |loop_index| {
            let online = online.clone();
            move |id| {
                Box::new(Member {
                    id,
                    loop_index,
                    online: online.clone(),
                }) as Box<dyn Handler>
            }
        },
    )
}
