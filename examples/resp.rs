//! A RESP2 (Redis protocol) server: an in-memory string store.
//!
//! ```text
//! cargo run --release --example resp -- --addr 127.0.0.1:6380 \
//!     --idle-timeout-secs 0 --max-conns 100000 --max-input-mib 64
//! redis-cli -p 6380 SET greeting hello
//! redis-benchmark -p 6380 -t ping,set,get,incr,mset -n 100000 -c 50 -P 16
//! ```
//!
//! Commands: PING, ECHO, SET (EX, PX, NX, XX, KEEPTTL), GET, DEL, EXISTS,
//! INCR, DECR, INCRBY, DECRBY, MSET, MGET, DBSIZE, FLUSHALL, FLUSHDB,
//! EXPIRE, PEXPIRE, TTL, PTTL, SELECT 0, QUIT; and enough of `COMMAND`
//! (an empty array) and `CONFIG GET` (`save` and `appendonly`, nothing
//! else) that redis-cli and redis-benchmark start cleanly.
//!
//! * Multibulk and inline commands (inline: split on blanks, no quoting);
//!   pipelined commands are answered in order, a batch with one `send`.
//!   Parsing happens in place in the input buffer (see `resp/parser.rs`, a
//!   std-only module also used by tests and fuzzing).
//! * A protocol error answers `-ERR Protocol error: ...` and closes; an
//!   unknown command answers `-ERR unknown command '...'`.
//! * Memory: a bulk string over 512 MiB is a protocol error; before that,
//!   a connection's unconsumed input may hold at most `--max-input-mib`
//!   (default 64 MiB, the library's default of 1 MiB being too small for
//!   realistic values): a command larger than that closes the connection.
//!   Queued output (bytes the kernel has not taken yet) may reach 4 times
//!   that (a large MGET to a slow reader); beyond, the connection is reset
//!   (the client sees ECONNRESET, not a reply that looks complete).
//! * Expiry: lazy (an expired key is deleted when touched) plus a sweep
//!   every 100 ms on a loop timer, armed only while keys have a deadline.
//!   Times are the loop's millisecond clock.
//! * One loop, no `--threads`: the keyspace is one `Rc<RefCell<Db>>` that
//!   only this thread touches, which is what makes every command atomic
//!   and gives all clients one order of writes, as in Redis. Sharding it
//!   over loops (a key's loop by hash, commands posted there) would keep
//!   single-key commands atomic but not MSET/MGET/DEL over keys on several
//!   loops, nor FLUSHALL/DBSIZE without a cross-loop barrier: Redis itself
//!   runs commands on one thread (its I/O threads only read and write).
//!
//! Prints `listening on ADDR` on stderr once bound; logs via `RUST_LOG`;
//! SIGINT/SIGTERM stop it gracefully.

#[path = "resp/parser.rs"]
mod parser;

#[path = "common/cli.rs"]
mod cli;

use parser::{parse_command_resuming, parse_int, Command, Resume};
use sockloop::{Buffer, Context, Handler};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Write as _};
use std::rc::Rc;
use std::time::Duration;

/// How often expired keys are swept while some key has a deadline.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// Most keys one sweep deletes; past that it comes back in 1 ms, so a mass
/// expiry cannot stall the loop.
const SWEEP_BATCH: usize = 10_000;

/// A stored value and its deadline (loop clock, ms).
struct Entry {
    value: Vec<u8>,
    expires: Option<u64>,
}

/// The key space, shared by every connection of the loop.
#[derive(Default)]
struct Db {
    map: HashMap<Vec<u8>, Entry>,
    /// Deadlines, soonest first. An element is stale when its key is gone
    /// or got another deadline since; the sweep skips those.
    deadlines: BinaryHeap<Reverse<(u64, Vec<u8>)>>,
    sweep_armed: bool,
}

impl Db {
    /// The live entry of `key`, deleting it first if it has expired.
    fn live(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let expired = matches!(self.map.get(key), Some(e) if e.expires.is_some_and(|d| d <= now));
        if expired {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    /// Sets `key` to `value` with deadline `expires`, reusing the existing
    /// allocations when the key exists.
    fn set(&mut self, key: &[u8], value: &[u8], expires: Option<u64>) {
        match self.map.get_mut(key) {
            Some(e) => {
                e.value.clear();
                e.value.extend_from_slice(value);
                e.expires = expires;
            }
            None => {
                self.map.insert(
                    key.to_vec(),
                    Entry {
                        value: value.to_vec(),
                        expires,
                    },
                );
            }
        }
        if let Some(d) = expires {
            self.track_deadline(key, d);
        }
    }

    fn track_deadline(&mut self, key: &[u8], deadline: u64) {
        self.deadlines.push(Reverse((deadline, key.to_vec())));
        if self.deadlines.len() > 2 * self.map.len() + 1024 {
            // Mostly stale (keys overwritten or re-expired): rebuild.
            self.deadlines = self
                .map
                .iter()
                .filter_map(|(k, e)| e.expires.map(|d| Reverse((d, k.clone()))))
                .collect();
        }
    }

    /// Deletes up to [`SWEEP_BATCH`] expired keys; true if more are due.
    fn sweep(&mut self, now: u64) -> bool {
        for _ in 0..SWEEP_BATCH {
            match self.deadlines.peek() {
                Some(Reverse((d, _))) if *d <= now => {}
                _ => return false,
            }
            let Some(Reverse((d, key))) = self.deadlines.pop() else {
                return false;
            };
            if matches!(self.map.get(&key), Some(e) if e.expires == Some(d)) {
                self.map.remove(&key);
            }
        }
        matches!(self.deadlines.peek(), Some(Reverse((d, _))) if *d <= now)
    }

    fn clear(&mut self) {
        self.map.clear();
        self.deadlines.clear();
    }
}

/// Arms the sweep timer unless it is armed or nothing has a deadline.
fn arm_sweep(ctx: &mut Context<'_>, db: &Rc<RefCell<Db>>, after: Duration) {
    {
        let mut d = db.borrow_mut();
        if d.sweep_armed || d.deadlines.is_empty() {
            return;
        }
        d.sweep_armed = true;
    }
    let db = db.clone();
    ctx.add_timer(after, move |ctx| {
        let now = ctx.now().as_millis() as u64;
        let behind = {
            let mut d = db.borrow_mut();
            d.sweep_armed = false;
            d.sweep(now)
        };
        let next = if behind {
            Duration::from_millis(1)
        } else {
            SWEEP_EVERY
        };
        arm_sweep(ctx, &db, next);
    });
}

/// What to do after a command.
enum Flow {
    Continue,
    Close,
}

/// One connection: a handle on the shared key space.
struct Resp {
    db: Rc<RefCell<Db>>,
    /// Where the parse of an incomplete command at the front of the input
    /// stopped, so a large command arriving in many reads is parsed once.
    resume: Resume,
}

impl Handler for Resp {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        let now = ctx.now().as_millis() as u64;
        let bytes = input.as_slice();
        let mut pos = 0;
        let mut close = false;
        {
            let mut db = self.db.borrow_mut();
            while pos < bytes.len() {
                match parse_command_resuming(&bytes[pos..], &mut self.resume) {
                    Ok(None) => break,
                    Ok(Some((cmd, used))) => {
                        pos += used;
                        match execute(&mut db, now, ctx, &cmd) {
                            Ok(Flow::Continue) => {}
                            // A failed write: the connection is going away.
                            Ok(Flow::Close) | Err(_) => {
                                close = true;
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        log::debug!("protocol error: {e}");
                        let mut buf = [0u8; 128];
                        let msg =
                            format_into(&mut buf, format_args!("-ERR Protocol error: {e}\r\n"));
                        let _ = ctx.write(msg);
                        close = true;
                        break;
                    }
                }
            }
        }
        arm_sweep(ctx, &self.db, SWEEP_EVERY);
        if close {
            input.clear();
            ctx.close();
        } else {
            input.consume(pos);
        }
    }
}

/// Formats into a stack buffer (truncating): no allocation.
fn format_into<'b>(buf: &'b mut [u8], args: std::fmt::Arguments<'_>) -> &'b [u8] {
    let cap = buf.len();
    let mut w = &mut buf[..];
    let _ = w.write_fmt(args);
    let n = cap - w.len();
    &buf[..n]
}

fn int(ctx: &mut Context<'_>, n: i64) -> io::Result<()> {
    let mut buf = [0u8; 24];
    ctx.write(format_into(&mut buf, format_args!(":{n}\r\n")))
}

fn bulk(ctx: &mut Context<'_>, data: &[u8]) -> io::Result<()> {
    let mut buf = [0u8; 24];
    ctx.write(format_into(&mut buf, format_args!("${}\r\n", data.len())))?;
    ctx.write(data)?;
    ctx.write(b"\r\n")
}

fn bulk_or_nil(ctx: &mut Context<'_>, data: Option<&[u8]>) -> io::Result<()> {
    match data {
        Some(d) => bulk(ctx, d),
        None => ctx.write(b"$-1\r\n"),
    }
}

fn array_len(ctx: &mut Context<'_>, n: usize) -> io::Result<()> {
    let mut buf = [0u8; 24];
    ctx.write(format_into(&mut buf, format_args!("*{n}\r\n")))
}

fn wrong_args(ctx: &mut Context<'_>, name: &str) -> io::Result<Flow> {
    let mut buf = [0u8; 96];
    ctx.write(format_into(
        &mut buf,
        format_args!("-ERR wrong number of arguments for '{name}' command\r\n"),
    ))?;
    Ok(Flow::Continue)
}

fn reply(ctx: &mut Context<'_>, bytes: &[u8]) -> io::Result<Flow> {
    ctx.write(bytes)?;
    Ok(Flow::Continue)
}

const NOT_INTEGER: &[u8] = b"-ERR value is not an integer or out of range\r\n";
const SYNTAX: &[u8] = b"-ERR syntax error\r\n";

/// `-ERR unknown command 'NAME', with args beginning with: 'A' ...`, as
/// Redis words it; CR and LF become spaces and long text is cut.
fn unknown_command(ctx: &mut Context<'_>, cmd: &Command<'_>) -> io::Result<Flow> {
    let mut buf = [0u8; 256];
    let mut len = 0;
    let mut put = |s: &[u8], buf: &mut [u8; 256]| {
        for &b in s.iter().take(64) {
            if len < 250 {
                buf[len] = if b == b'\r' || b == b'\n' { b' ' } else { b };
                len += 1;
            }
        }
    };
    let mut args = cmd.args();
    put(b"-ERR unknown command '", &mut buf);
    put(args.next().unwrap_or_default(), &mut buf);
    put(b"', with args beginning with: ", &mut buf);
    for a in args.take(4) {
        put(b"'", &mut buf);
        put(a, &mut buf);
        put(b"' ", &mut buf);
    }
    buf[len..len + 2].copy_from_slice(b"\r\n");
    len += 2;
    ctx.write(&buf[..len])?;
    Ok(Flow::Continue)
}

/// Runs one command, writing its reply.
fn execute(db: &mut Db, now: u64, ctx: &mut Context<'_>, cmd: &Command<'_>) -> io::Result<Flow> {
    let argc = cmd.len();
    let mut args = cmd.args();
    let Some(name) = args.next() else {
        return Ok(Flow::Continue); // an empty command
    };
    let mut upper = [0u8; 16];
    let name_uc: &[u8] = match upper.get_mut(..name.len()) {
        Some(u) => {
            u.copy_from_slice(name);
            u.make_ascii_uppercase();
            u
        }
        None => b"",
    };
    match name_uc {
        b"PING" => match args.next() {
            None => reply(ctx, b"+PONG\r\n"),
            Some(msg) if argc == 2 => bulk(ctx, msg).map(|_| Flow::Continue),
            Some(_) => wrong_args(ctx, "ping"),
        },
        b"ECHO" => match (argc, args.next()) {
            (2, Some(msg)) => bulk(ctx, msg).map(|_| Flow::Continue),
            _ => wrong_args(ctx, "echo"),
        },
        b"GET" => match (argc, args.next()) {
            (2, Some(key)) => {
                let v = db.live(key, now).map(|e| &e.value[..]);
                bulk_or_nil(ctx, v).map(|_| Flow::Continue)
            }
            _ => wrong_args(ctx, "get"),
        },
        b"SET" => {
            let (Some(key), Some(value)) = (args.next(), args.next()) else {
                return wrong_args(ctx, "set");
            };
            set_command(db, now, ctx, key, value, args)
        }
        b"DEL" | b"EXISTS" => {
            if argc < 2 {
                let n = if name_uc == b"DEL" { "del" } else { "exists" };
                return wrong_args(ctx, n);
            }
            let del = name_uc == b"DEL";
            let mut n = 0;
            for key in args {
                if db.live(key, now).is_some() {
                    n += 1;
                    if del {
                        db.map.remove(key);
                    }
                }
            }
            int(ctx, n).map(|_| Flow::Continue)
        }
        b"INCR" | b"DECR" | b"INCRBY" | b"DECRBY" => {
            let by_arg = name_uc.len() == 6;
            let lname = match name_uc {
                b"INCR" => "incr",
                b"DECR" => "decr",
                b"INCRBY" => "incrby",
                _ => "decrby",
            };
            if argc != if by_arg { 3 } else { 2 } {
                return wrong_args(ctx, lname);
            }
            let key = args.next().unwrap_or_default();
            let mut delta = 1;
            if by_arg {
                match parse_int(args.next().unwrap_or_default()) {
                    Some(d) => delta = d,
                    None => return reply(ctx, NOT_INTEGER),
                }
            }
            let delta = if name_uc[0] == b'D' {
                match delta.checked_neg() {
                    Some(d) => d,
                    None => return reply(ctx, b"-ERR decrement would overflow\r\n"),
                }
            } else {
                delta
            };
            incr_by(db, now, ctx, key, delta)
        }
        b"MSET" => {
            if argc < 3 || argc % 2 == 0 {
                return wrong_args(ctx, "mset");
            }
            while let (Some(k), Some(v)) = (args.next(), args.next()) {
                db.set(k, v, None);
            }
            reply(ctx, b"+OK\r\n")
        }
        b"MGET" => {
            if argc < 2 {
                return wrong_args(ctx, "mget");
            }
            array_len(ctx, argc - 1)?;
            for key in args {
                let v = db.live(key, now).map(|e| &e.value[..]);
                bulk_or_nil(ctx, v)?;
            }
            Ok(Flow::Continue)
        }
        b"DBSIZE" => match argc {
            1 => int(ctx, db.map.len() as i64).map(|_| Flow::Continue),
            _ => wrong_args(ctx, "dbsize"),
        },
        b"FLUSHALL" | b"FLUSHDB" => {
            if argc > 2 {
                return reply(ctx, SYNTAX);
            }
            db.clear();
            reply(ctx, b"+OK\r\n")
        }
        b"EXPIRE" | b"PEXPIRE" => {
            let lname = if name_uc[0] == b'P' {
                "pexpire"
            } else {
                "expire"
            };
            let (3, Some(key), Some(amount)) = (argc, args.next(), args.next()) else {
                return wrong_args(ctx, lname);
            };
            let Some(amount) = parse_int(amount) else {
                return reply(ctx, NOT_INTEGER);
            };
            let ms = if lname == "expire" {
                amount.checked_mul(1000)
            } else {
                Some(amount)
            };
            let Some(deadline) = ms.and_then(|ms| deadline_after(now, ms)) else {
                return reply(ctx, b"-ERR invalid expire time in 'expire' command\r\n");
            };
            if db.live(key, now).is_none() {
                return int(ctx, 0).map(|_| Flow::Continue);
            }
            match deadline {
                None => {
                    // Zero or negative: the key is deleted at once.
                    db.map.remove(key);
                }
                Some(d) => {
                    if let Some(e) = db.live(key, now) {
                        e.expires = Some(d);
                    }
                    db.track_deadline(key, d);
                }
            }
            int(ctx, 1).map(|_| Flow::Continue)
        }
        b"TTL" | b"PTTL" => {
            let ms = name_uc[0] == b'P';
            let (2, Some(key)) = (argc, args.next()) else {
                return wrong_args(ctx, if ms { "pttl" } else { "ttl" });
            };
            let n = match db.live(key, now) {
                None => -2,
                Some(Entry { expires: None, .. }) => -1,
                Some(Entry {
                    expires: Some(d), ..
                }) => {
                    let left = (*d - now) as i64;
                    if ms {
                        left
                    } else {
                        (left + 500) / 1000
                    }
                }
            };
            int(ctx, n).map(|_| Flow::Continue)
        }
        b"SELECT" => match (argc, args.next()) {
            (2, Some(b"0")) => reply(ctx, b"+OK\r\n"),
            (2, Some(_)) => reply(ctx, b"-ERR DB index is out of range\r\n"),
            _ => wrong_args(ctx, "select"),
        },
        b"QUIT" => {
            ctx.write(b"+OK\r\n")?;
            Ok(Flow::Close)
        }
        // redis-cli asks for `COMMAND DOCS` (hints) when interactive.
        b"COMMAND" => reply(ctx, b"*0\r\n"),
        b"CONFIG" => config_command(ctx, args),
        _ => unknown_command(ctx, cmd),
    }
}

/// The deadline `ms` from `now`: `Some(None)` when `ms <= 0` (expire at
/// once), `None` when it overflows.
fn deadline_after(now: u64, ms: i64) -> Option<Option<u64>> {
    if ms <= 0 {
        return Some(None);
    }
    now.checked_add(ms as u64)
        .filter(|d| *d < i64::MAX as u64)
        .map(Some)
}

/// `SET key value [EX s | PX ms | KEEPTTL] [NX | XX]`.
fn set_command<'a>(
    db: &mut Db,
    now: u64,
    ctx: &mut Context<'_>,
    key: &[u8],
    value: &[u8],
    mut opts: impl Iterator<Item = &'a [u8]>,
) -> io::Result<Flow> {
    let (mut nx, mut xx, mut keep_ttl) = (false, false, false);
    let mut expire_ms: Option<i64> = None;
    while let Some(opt) = opts.next() {
        let is = |s: &[u8]| opt.eq_ignore_ascii_case(s);
        if is(b"NX") && !xx {
            nx = true;
        } else if is(b"XX") && !nx {
            xx = true;
        } else if is(b"KEEPTTL") && expire_ms.is_none() {
            keep_ttl = true;
        } else if (is(b"EX") || is(b"PX")) && expire_ms.is_none() && !keep_ttl {
            let Some(n) = opts.next() else {
                return reply(ctx, SYNTAX);
            };
            let Some(n) = parse_int(n) else {
                return reply(ctx, NOT_INTEGER);
            };
            let ms = if is(b"EX") {
                n.checked_mul(1000)
            } else {
                Some(n)
            };
            match ms {
                Some(ms) if ms > 0 => expire_ms = Some(ms),
                _ => return reply(ctx, b"-ERR invalid expire time in 'set' command\r\n"),
            }
        } else {
            return reply(ctx, SYNTAX);
        }
    }
    let deadline = match expire_ms {
        Some(ms) => match deadline_after(now, ms) {
            Some(d) => d,
            None => return reply(ctx, b"-ERR invalid expire time in 'set' command\r\n"),
        },
        None => None,
    };
    let existing = db.live(key, now);
    let exists = existing.is_some();
    if (nx && exists) || (xx && !exists) {
        return reply(ctx, b"$-1\r\n");
    }
    let expires = if keep_ttl {
        existing.and_then(|e| e.expires)
    } else {
        deadline
    };
    db.set(key, value, expires);
    reply(ctx, b"+OK\r\n")
}

/// INCR, DECR, INCRBY, DECRBY: the value must be a strict 64-bit decimal.
fn incr_by(
    db: &mut Db,
    now: u64,
    ctx: &mut Context<'_>,
    key: &[u8],
    delta: i64,
) -> io::Result<Flow> {
    let n = match db.live(key, now) {
        Some(e) => {
            let Some(old) = parse_int(&e.value) else {
                return reply(ctx, NOT_INTEGER);
            };
            let Some(n) = old.checked_add(delta) else {
                return reply(ctx, b"-ERR increment or decrement would overflow\r\n");
            };
            e.value.clear();
            let _ = write!(e.value, "{n}");
            n
        }
        None => {
            let mut buf = [0u8; 24];
            let digits = format_into(&mut buf, format_args!("{delta}"));
            db.set(key, digits, None);
            delta
        }
    };
    int(ctx, n).map(|_| Flow::Continue)
}

/// `CONFIG GET param...`: `save` is empty and `appendonly` is `no` (what
/// redis-benchmark asks for); other parameters are not listed.
fn config_command<'a>(
    ctx: &mut Context<'_>,
    mut args: impl Iterator<Item = &'a [u8]> + Clone,
) -> io::Result<Flow> {
    match args.next() {
        Some(sub) if sub.eq_ignore_ascii_case(b"GET") => {}
        _ => return reply(ctx, b"-ERR only CONFIG GET is supported\r\n"),
    }
    let known = |p: &[u8]| -> Option<(&'static [u8], &'static [u8])> {
        if p.eq_ignore_ascii_case(b"save") {
            Some((b"save", b""))
        } else if p.eq_ignore_ascii_case(b"appendonly") {
            Some((b"appendonly", b"no"))
        } else {
            None
        }
    };
    let n = args.clone().filter_map(known).count();
    array_len(ctx, 2 * n)?;
    for (name, value) in args.filter_map(known) {
        bulk(ctx, name)?;
        bulk(ctx, value)?;
    }
    Ok(Flow::Continue)
}

fn main() {
    let cli = cli::Cli::parse(
        "resp",
        "resp [--addr HOST:PORT] [--idle-timeout-secs N (0: never)] [--max-conns N] [--max-input-mib N]",
        &["--addr", "--idle-timeout-secs", "--max-conns", "--max-input-mib"],
    );
    let addr = cli.addr("--addr", "127.0.0.1:6380");
    // Like Redis: no idle timeout unless asked for.
    let mut config = cli.server_config(0, 100_000);
    let max_input_mib: usize = cli.get("--max-input-mib", 64);
    if max_input_mib == 0 {
        cli.fail("--max-input-mib must be at least 1");
    }
    config.conn.max_input = max_input_mib.saturating_mul(1024 * 1024);
    config.conn.max_output = config.conn.max_input.saturating_mul(4);
    let db = Rc::new(RefCell::new(Db::default()));
    cli::serve(
        "resp",
        addr,
        config,
        |_| {},
        move |_| {
            Box::new(Resp {
                db: db.clone(),
                resume: Resume::default(),
            })
        },
    )
}
