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
//! * A new client first gets one line for itself, `* welcome conn#N.G
//!   (K online)`, once it is in the room: from then on it receives every
//!   line the others send.
//! * A partial line is kept until its newline arrives; a line longer than
//!   [`MAX_LINE`] closes that client.
//! * A slow reader whose queued output passes [`SLOW_READER_LIMIT`] is
//!   disconnected (with a log line) instead of growing the server's memory;
//!   the others are not held back by it.

use sockloop::net::TcpListener;
use sockloop::sys::signal::{SIGINT, SIGTERM};
use sockloop::{Buffer, CloseReason, ConnId, Context, EventLoop, Handler, ServerConfig};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Longest accepted line, without its newline.
const MAX_LINE: usize = 8 * 1024;
/// A client with more than this queued for it is disconnected.
const SLOW_READER_LIMIT: usize = 1024 * 1024;

/// Who is in the room, in order of arrival (ids sort by slot, which is
/// good enough for a stable broadcast order).
#[derive(Default)]
struct Room {
    members: BTreeSet<ConnId>,
}

struct Member {
    id: ConnId,
    room: Rc<RefCell<Room>>,
}

impl Member {
    /// Sends one line (with its newline) from this member to all others.
    fn broadcast(&self, ctx: &mut Context<'_>, line: &[u8]) {
        let prefix = format!("{}: ", self.id);
        let mut msg = Vec::with_capacity(prefix.len() + line.len());
        msg.extend_from_slice(prefix.as_bytes());
        msg.extend_from_slice(line);
        // Copy the member list: no borrow of the room is held while the
        // loop acts on connections.
        let others: Vec<ConnId> = self
            .room
            .borrow()
            .members
            .iter()
            .copied()
            .filter(|&m| m != self.id)
            .collect();
        for other in others {
            let queued = ctx.output_len_of(other);
            if queued + msg.len() > SLOW_READER_LIMIT {
                log::warn!("{other}: slow reader ({queued} bytes queued): disconnecting it");
                // Leave at once: the room must not wait for its on_close.
                self.room.borrow_mut().members.remove(&other);
                ctx.abort_conn(other);
                continue;
            }
            if let Err(e) = ctx.write_to(other, &msg) {
                log::debug!("{other}: cannot deliver: {e}");
            }
        }
    }
}

impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let online = {
            let mut room = self.room.borrow_mut();
            room.members.insert(self.id);
            room.members.len()
        };
        log::info!("{} joined ({online} online)", self.id);
        let _ = ctx.write(format!("* welcome {} ({online} online)\n", self.id).as_bytes());
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
            log::warn!("{}: line longer than {MAX_LINE} bytes: closing", self.id);
            input.clear();
            let _ = ctx.write(format!("* line longer than {MAX_LINE} bytes\n").as_bytes());
            ctx.close();
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
        let online = {
            let mut room = self.room.borrow_mut();
            room.members.remove(&self.id);
            room.members.len()
        };
        log::info!("{} left: {reason} ({online} online)", self.id);
    }
}

struct Args {
    addr: SocketAddr,
    idle_timeout_secs: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: "127.0.0.1:7003".parse().map_err(|e| format!("{e}"))?,
        idle_timeout_secs: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--idle-timeout-secs" => {
                args.idle_timeout_secs = value()?
                    .parse()
                    .map_err(|e| format!("--idle-timeout-secs: {e}"))?
            }
            "-h" | "--help" => {
                return Err(
                    "usage: chat [--addr HOST:PORT] [--idle-timeout-secs N (0: none)]".into(),
                )
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(&args) {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}

fn serve(args: &Args) -> std::io::Result<()> {
    let mut ev = EventLoop::new()?;
    ev.shutdown_on_signals(&[SIGINT, SIGTERM])?;
    let listener = TcpListener::bind(args.addr)?;
    let mut config = ServerConfig::default();
    config.conn.idle_timeout = match args.idle_timeout_secs {
        0 => None,
        n => Some(Duration::from_secs(n)),
    };
    // Output is bounded by the slow-reader limit (checked before each
    // write); the loop's per-connection cap only has to stay above it.
    config.conn.max_output = 2 * SLOW_READER_LIMIT;
    eprintln!("listening on {}", listener.local_addr()?);
    let room = Rc::new(RefCell::new(Room::default()));
    ev.listen(listener, config, move |id| {
        Box::new(Member {
            id,
            room: room.clone(),
        })
    })?;
    ev.run()
}
