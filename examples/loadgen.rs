//! Load generator on sockloop's own client API: one `EventLoop`, one
//! `Context::connect` per connection, every reply checked byte for byte.
//!
//! ```text
//! cargo build --release --example echo --example loadgen
//! target/release/examples/echo --addr 127.0.0.1:7000 &
//! target/release/examples/loadgen --mode echo --addr 127.0.0.1:7000 \
//!     --conns 50 --size 64 --depth 16 --secs 10 --warmup 2 --server-pid $!
//! ```
//!
//! Options (defaults in brackets):
//!
//! * `--mode echo|resp|http` [echo], `--addr HOST:PORT` [127.0.0.1:7000]
//! * `--conns C` [50] connections, `--depth D` [1] requests in flight on
//!   each, `--size S` [64] payload bytes (echo payload, RESP value; unused
//!   by http and by `--resp ping`)
//! * `--secs T` [10] measured seconds, or `--count N`: measure until N
//!   requests completed (then `--timeout` [300] caps the measured window)
//! * `--warmup W` [1] seconds of uncounted load before measuring
//! * `--server-pid PID`: report the server's CPU time over the measured
//!   window (utime + stime from `/proc/PID/stat`)
//! * `--resp setget|ping` [setget]: the RESP workload (below)
//! * `--connect-inflight K` [256]: most connects in progress at once, so
//!   that a burst of 10,000 SYNs does not overrun the server's listen
//!   backlog; `--connect-timeout SECS` [10]
//!
//! Workloads; each connection keeps D requests in flight and checks every
//! reply byte against what it must be, in order:
//!
//! * `echo`: request k of connection c is S bytes cut from a fixed
//!   pseudo-random table at an offset derived from (c, k), so consecutive,
//!   duplicated or swapped replies differ; the reply must equal it.
//! * `resp` with `setget` (default): requests alternate
//!   `SET key:<c> <value_k>` (reply `+OK\r\n`) and `GET key:<c>` (reply
//!   `$S\r\n<value_{k-1}>\r\n`), sent as RESP arrays (binary-safe, as
//!   redis-benchmark does); the S-byte value is alphanumeric and changes with
//!   every SET, so each GET checks that the SET just before it took effect.
//!   Each connection owns its key, so pipelined replies are predictable.
//!   With `ping`: `PING`, reply `+PONG\r\n`.
//! * `http`: `GET / HTTP/1.1\r\nHost: x\r\n\r\n`, reply exactly
//!   `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!`.
//!
//! A reply byte that differs (or a byte when no reply is due) is a
//! mismatch: counted, the first few printed on stderr, and the connection
//! aborted. A connection that fails to connect or is closed by the server
//! is an error. Either makes the exit status 1 (as does measuring zero
//! requests); bad arguments give 2.
//!
//! Timeline: connects (paced), then the warmup, which starts once every
//! connect has finished; then the measured window. A request counts if it
//! was sent inside the window and its whole reply arrived inside it;
//! latency is from the moment it was handed to the loop to the moment the
//! read that completed its reply returned, recorded in an HDR histogram.
//!
//! Output, one JSON line on stdout: `mode conns size depth secs` (measured
//! seconds) `requests rps mb_s` (request + reply bytes of counted requests,
//! both directions, in 10^6 B/s) `p50_us p99_us p999_us errors mismatches
//! server_cpu_s server_cpu_us_per_req` (null without `--server-pid`).

use hdrhistogram::Histogram;
use sockloop::{Buffer, CloseReason, ConnConfig, Context, EventLoop, Handler};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

const HTTP_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
const HTTP_REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
const RESP_PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const RESP_PONG: &[u8] = b"+PONG\r\n";
const RESP_OK: &[u8] = b"+OK\r\n";
const CRLF: &[u8] = b"\r\n";
/// How many distinct payload offsets the pattern table has (a prime, so
/// the offsets of consecutive requests do not fall into a short cycle).
const OFFSETS: usize = 4093;
/// How many mismatches and errors are printed in full.
const PRINT_FIRST: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Echo,
    Resp,
    Http,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Resp => "resp",
            Mode::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespCmd {
    SetGet,
    Ping,
}

#[derive(Debug, Clone)]
struct Args {
    mode: Mode,
    addr: SocketAddr,
    conns: usize,
    size: usize,
    depth: usize,
    secs: f64,
    count: Option<u64>,
    timeout: f64,
    warmup: f64,
    server_pid: Option<u32>,
    resp: RespCmd,
    connect_inflight: usize,
    connect_timeout: f64,
}

const USAGE: &str = "usage: loadgen --mode echo|resp|http --addr HOST:PORT [--conns C] [--size S] \
[--depth D] [--secs T | --count N [--timeout SECS]] [--warmup W] [--server-pid PID] \
[--resp setget|ping] [--connect-inflight K] [--connect-timeout SECS]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        mode: Mode::Echo,
        addr: "127.0.0.1:7000".parse().map_err(|e| format!("{e}"))?,
        conns: 50,
        size: 64,
        depth: 1,
        secs: 10.0,
        count: None,
        timeout: 300.0,
        warmup: 1.0,
        server_pid: None,
        resp: RespCmd::SetGet,
        connect_inflight: 256,
        connect_timeout: 10.0,
    };
    fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        v.parse().map_err(|e| format!("{flag} {v}: {e}"))
    }
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mode" => {
                a.mode = match v.as_str() {
                    "echo" => Mode::Echo,
                    "resp" => Mode::Resp,
                    "http" => Mode::Http,
                    _ => return Err(format!("--mode {v}: expected echo, resp or http")),
                }
            }
            "--addr" => a.addr = num(&flag, v)?,
            "--conns" => a.conns = num(&flag, v)?,
            "--size" => a.size = num(&flag, v)?,
            "--depth" => a.depth = num(&flag, v)?,
            "--secs" => a.secs = num(&flag, v)?,
            "--count" => a.count = Some(num(&flag, v)?),
            "--timeout" => a.timeout = num(&flag, v)?,
            "--warmup" => a.warmup = num(&flag, v)?,
            "--server-pid" => a.server_pid = Some(num(&flag, v)?),
            "--resp" => {
                a.resp = match v.as_str() {
                    "setget" => RespCmd::SetGet,
                    "ping" => RespCmd::Ping,
                    _ => return Err(format!("--resp {v}: expected setget or ping")),
                }
            }
            "--connect-inflight" => a.connect_inflight = num(&flag, v)?,
            "--connect-timeout" => a.connect_timeout = num(&flag, v)?,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if a.conns == 0 || a.depth == 0 || a.connect_inflight == 0 {
        return Err("--conns, --depth and --connect-inflight must be at least 1".into());
    }
    if a.mode == Mode::Echo && a.size == 0 {
        return Err("--size must be at least 1 in echo mode".into());
    }
    for (name, v) in [
        ("--secs", a.secs),
        ("--warmup", a.warmup),
        ("--timeout", a.timeout),
        ("--connect-timeout", a.connect_timeout),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(format!("{name} must be a number of seconds >= 0"));
        }
    }
    Ok(a)
}

/// What every connection shares and never changes: the workload.
struct Workload {
    mode: Mode,
    resp: RespCmd,
    size: usize,
    depth: usize,
    /// `size + OFFSETS` pattern bytes; a payload is `size` of them.
    table: Vec<u8>,
    /// `$S\r\n`: the head of a GET reply.
    get_head: Vec<u8>,
}

impl Workload {
    fn new(a: &Args) -> Workload {
        // xorshift64: the same table on every run, so payloads are
        // reproducible; RESP values stay alphanumeric (readable in a
        // mismatch report, and safe even for a server that mishandles
        // binary values), echo gets every byte value.
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let len = if a.mode == Mode::Http {
            0
        } else {
            a.size + OFFSETS
        };
        let table = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = (x >> 24) as u8;
                if a.mode == Mode::Resp {
                    ALNUM[b as usize % ALNUM.len()]
                } else {
                    b
                }
            })
            .collect();
        Workload {
            mode: a.mode,
            resp: a.resp,
            size: a.size,
            depth: a.depth,
            table,
            get_head: format!("${}\r\n", a.size).into_bytes(),
        }
    }

    /// The payload of request `seq` on connection `conn`.
    fn payload(&self, conn: usize, seq: u64) -> &[u8] {
        let off = ((conn as u64).wrapping_mul(7919) ^ seq.wrapping_mul(104_729)) % OFFSETS as u64;
        &self.table[off as usize..off as usize + self.size]
    }

    /// The exact reply to request `seq`, in up to three pieces.
    fn reply(&self, conn: usize, seq: u64) -> [&[u8]; 3] {
        match (self.mode, self.resp) {
            (Mode::Echo, _) => [self.payload(conn, seq), &[], &[]],
            (Mode::Http, _) => [HTTP_REPLY, &[], &[]],
            (Mode::Resp, RespCmd::Ping) => [RESP_PONG, &[], &[]],
            (Mode::Resp, RespCmd::SetGet) if seq % 2 == 0 => [RESP_OK, &[], &[]],
            (Mode::Resp, RespCmd::SetGet) => [&self.get_head, self.payload(conn, seq - 1), CRLF],
        }
    }
}

/// Compares `input` with `reply` from byte `pos` of the reply on. Returns
/// how many bytes matched (all of `input`, or the rest of the reply), or
/// the offset in the reply of the first byte that differs.
fn match_reply(reply: &[&[u8]; 3], pos: usize, input: &[u8]) -> Result<usize, usize> {
    let mut skip = pos;
    let mut matched = 0;
    for part in reply {
        if skip >= part.len() {
            skip -= part.len();
            continue;
        }
        let want = &part[skip..];
        skip = 0;
        let n = want.len().min(input.len() - matched);
        let got = &input[matched..matched + n];
        if got != &want[..n] {
            let i = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(0);
            return Err(pos + matched + i);
        }
        matched += n;
        if matched == input.len() {
            break;
        }
    }
    Ok(matched)
}

/// Up to 24 bytes from `at` on, escaped for a terminal.
fn snippet(bytes: &[u8], at: usize) -> String {
    let end = bytes.len().min(at + 24);
    let s: String = bytes[at.min(end)..end]
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    format!("\"{s}\"")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connecting and warming up: nothing is counted.
    Warmup,
    /// The measured window.
    Measuring,
    /// Past the window (or `--count` reached): no new requests.
    Done,
}

/// The run's counters, shared by every connection.
struct Stats {
    phase: Phase,
    /// Replies completing at or after this are not counted.
    until: Option<Instant>,
    /// When the window ended (first completion past it, or the N-th).
    ended: Option<Instant>,
    count: Option<u64>,
    hist: Histogram<u64>,
    requests: u64,
    bytes: u64,
    errors: u64,
    mismatches: u64,
    connecting: usize,
    open: usize,
}

impl Stats {
    fn error(&mut self, what: std::fmt::Arguments<'_>) {
        self.errors += 1;
        if self.errors <= PRINT_FIRST {
            eprintln!("loadgen: error: {what}");
        }
    }
}

/// A request whose reply has not fully arrived.
struct Pending {
    seq: u64,
    sent: Instant,
    counted: bool,
}

/// One connection of the load.
struct Client {
    id: usize,
    work: Rc<Workload>,
    stats: Rc<RefCell<Stats>>,
    pending: VecDeque<Pending>,
    next_seq: u64,
    /// Bytes of the front request's reply matched so far.
    pos: usize,
    /// `*3\r\n$3\r\nSET\r\n$L\r\nkey:<id>\r\n$S\r\n` (resp setget).
    set_head: Vec<u8>,
    /// `*2\r\n$3\r\nGET\r\n$L\r\nkey:<id>\r\n` (resp setget).
    get_req: Vec<u8>,
    opened: bool,
    /// We aborted it (after a mismatch): its close is not another error.
    aborted: bool,
}

impl Client {
    fn new(id: usize, work: Rc<Workload>, stats: Rc<RefCell<Stats>>) -> Client {
        let key = format!("key:{id}");
        let set_head = format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
            key.len(),
            work.size
        );
        let get_req = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
        Client {
            id,
            pending: VecDeque::with_capacity(work.depth),
            work,
            stats,
            next_seq: 0,
            pos: 0,
            set_head: set_head.into_bytes(),
            get_req: get_req.into_bytes(),
            opened: false,
            aborted: false,
        }
    }

    /// Sends the next request; returns its size on the wire.
    fn send(&mut self, ctx: &mut Context<'_>, now: Instant, phase: Phase) -> usize {
        let seq = self.next_seq;
        self.next_seq += 1;
        let w = &*self.work;
        // Several writes in one callback leave in one send.
        let len = match (w.mode, w.resp) {
            (Mode::Echo, _) => {
                let p = w.payload(self.id, seq);
                let _ = ctx.write(p);
                p.len()
            }
            (Mode::Http, _) => {
                let _ = ctx.write(HTTP_REQUEST);
                HTTP_REQUEST.len()
            }
            (Mode::Resp, RespCmd::Ping) => {
                let _ = ctx.write(RESP_PING);
                RESP_PING.len()
            }
            (Mode::Resp, RespCmd::SetGet) if seq % 2 == 0 => {
                let _ = ctx.write(&self.set_head);
                let _ = ctx.write(w.payload(self.id, seq));
                let _ = ctx.write(CRLF);
                self.set_head.len() + w.size + CRLF.len()
            }
            (Mode::Resp, RespCmd::SetGet) => {
                let _ = ctx.write(&self.get_req);
                self.get_req.len()
            }
        };
        // A failed write closes the connection; on_close counts that.
        self.pending.push_back(Pending {
            seq,
            sent: now,
            counted: phase == Phase::Measuring,
        });
        len
    }

    fn request_len(&self, seq: u64) -> usize {
        match (self.work.mode, self.work.resp) {
            (Mode::Echo, _) => self.work.size,
            (Mode::Http, _) => HTTP_REQUEST.len(),
            (Mode::Resp, RespCmd::Ping) => RESP_PING.len(),
            (Mode::Resp, RespCmd::SetGet) if seq % 2 == 0 => {
                self.set_head.len() + self.work.size + CRLF.len()
            }
            (Mode::Resp, RespCmd::SetGet) => self.get_req.len(),
        }
    }

    fn mismatch(&mut self, ctx: &mut Context<'_>, st: &mut Stats, input: &[u8], detail: String) {
        st.mismatches += 1;
        if st.mismatches <= PRINT_FIRST {
            eprintln!(
                "loadgen: mismatch on connection {}: {detail}; got {}",
                self.id,
                snippet(input, 0)
            );
        }
        self.aborted = true;
        ctx.abort();
    }
}

impl Handler for Client {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        if let Ok(fd) = ctx.fd() {
            // Outgoing connections keep Nagle on by default; with several
            // small requests in flight it would hold them back.
            let _ = sockloop::SocketOptions::set_nodelay(&fd, true);
        }
        self.opened = true;
        let phase = {
            let mut st = self.stats.borrow_mut();
            st.connecting -= 1;
            st.open += 1;
            st.phase
        };
        if phase == Phase::Done {
            return;
        }
        let now = Instant::now();
        for _ in 0..self.work.depth {
            self.send(ctx, now, phase);
        }
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        let now = Instant::now();
        let work = self.work.clone();
        let stats = self.stats.clone();
        let mut st = stats.borrow_mut();
        let data = input.as_slice();
        let mut used = 0;
        let mut completed = 0;
        while used < data.len() {
            let Some(front) = self.pending.front() else {
                let detail = "bytes arrived with no request outstanding".to_string();
                return self.mismatch(ctx, &mut st, &data[used..], detail);
            };
            let reply = work.reply(self.id, front.seq);
            let total: usize = reply.iter().map(|p| p.len()).sum();
            match match_reply(&reply, self.pos, &data[used..]) {
                Ok(n) => {
                    used += n;
                    self.pos += n;
                }
                Err(at) => {
                    let whole: Vec<u8> = reply.concat();
                    let detail = format!(
                        "request #{} byte {at} of {}: expected {}",
                        front.seq,
                        whole.len(),
                        snippet(&whole, at)
                    );
                    let got_from = used + (at - self.pos);
                    return self.mismatch(ctx, &mut st, &data[got_from..], detail);
                }
            }
            if self.pos == total {
                let done = self.pending.pop_front().expect("front exists");
                self.pos = 0;
                completed += 1;
                if done.counted && st.phase == Phase::Measuring {
                    if st.until.is_some_and(|u| now >= u) {
                        st.phase = Phase::Done;
                        st.ended = Some(now);
                    } else {
                        let us = now.duration_since(done.sent).as_micros() as u64;
                        st.hist.saturating_record(us);
                        st.requests += 1;
                        st.bytes += (self.request_len(done.seq) + total) as u64;
                        if st.count.is_some_and(|c| st.requests >= c) {
                            st.phase = Phase::Done;
                            st.ended = Some(now);
                        }
                    }
                }
            }
        }
        input.clear();
        let phase = st.phase;
        drop(st);
        if phase != Phase::Done {
            for _ in 0..completed {
                self.send(ctx, now, phase);
            }
        }
    }

    fn on_close(&mut self, _ctx: &mut Context<'_>, reason: &CloseReason) {
        let mut st = self.stats.borrow_mut();
        if self.opened {
            st.open -= 1;
        } else {
            st.connecting -= 1;
        }
        if self.aborted || st.phase == Phase::Done {
            return;
        }
        let what = if self.opened { "closed" } else { "connect" };
        st.error(format_args!("connection {} {what}: {reason}", self.id));
    }
}

/// utime + stime of a process, in clock ticks, from `/proc/PID/stat`.
fn cpu_ticks(pid: u32) -> std::io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Field 2, the command name, is in parentheses and may hold spaces.
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad /proc/PID/stat");
    let rest = &s[s.rfind(')').ok_or_else(bad)? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14, 15.
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    Ok(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
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
    match run(&args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> std::io::Result<i32> {
    let tck = if args.server_pid.is_some() {
        clock_ticks()
    } else {
        100.0
    };
    let mut ev = EventLoop::new()?;
    // The run is bounded by its own clock; an idle connection (a server
    // that stopped answering) must not be closed under us meanwhile.
    ev.set_conn_config(ConnConfig {
        idle_timeout: None,
        ..ConnConfig::default()
    });
    let work = Rc::new(Workload::new(args));
    let stats = Rc::new(RefCell::new(Stats {
        phase: Phase::Warmup,
        until: None,
        ended: None,
        count: args.count,
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(std::io::Error::other)?,
        requests: 0,
        bytes: 0,
        errors: 0,
        mismatches: 0,
        connecting: 0,
        open: 0,
    }));
    let connect_timeout = Some(Duration::from_secs_f64(args.connect_timeout));
    let mut started = 0;
    let mut warmup_end: Option<Instant> = None;
    let mut window: Option<(Instant, Option<u64>)> = None;
    let tick = Duration::from_millis(100);
    loop {
        // Pace the connects: at most `connect_inflight` handshakes at once.
        while started < args.conns && stats.borrow().connecting < args.connect_inflight {
            let client = Client::new(started, work.clone(), stats.clone());
            stats.borrow_mut().connecting += 1;
            if let Err(e) = ev.connect(args.addr, connect_timeout, Box::new(client)) {
                let mut st = stats.borrow_mut();
                st.connecting -= 1;
                st.error(format_args!("connection {started} connect: {e}"));
            }
            started += 1;
        }
        let now = Instant::now();
        let (phase, connecting, open) = {
            let st = stats.borrow();
            (st.phase, st.connecting, st.open)
        };
        let all_connected = started == args.conns && connecting == 0;
        if all_connected && warmup_end.is_none() {
            warmup_end = Some(now + Duration::from_secs_f64(args.warmup));
        }
        let mut wake = now + tick;
        match (phase, warmup_end) {
            (Phase::Warmup, Some(end)) if now >= end => {
                let cpu = args.server_pid.map(cpu_ticks).transpose()?;
                window = Some((now, cpu));
                let limit = if args.count.is_some() {
                    args.timeout
                } else {
                    args.secs
                };
                let until = now + Duration::from_secs_f64(limit);
                let mut st = stats.borrow_mut();
                st.phase = Phase::Measuring;
                st.until = Some(until);
                wake = wake.min(until);
            }
            (Phase::Warmup, Some(end)) => wake = wake.min(end),
            (Phase::Measuring, _) => {
                let mut st = stats.borrow_mut();
                let until = st.until.expect("set when measuring starts");
                if now >= until {
                    // Nothing completed past the deadline to end it.
                    st.phase = Phase::Done;
                    st.ended = Some(until);
                    if st.count.is_some() {
                        st.error(format_args!(
                            "--count not reached within --timeout {} s",
                            args.timeout
                        ));
                    }
                }
                wake = wake.min(until);
            }
            _ => {}
        }
        if stats.borrow().phase == Phase::Done {
            break;
        }
        if all_connected && open == 0 {
            // Every connection failed or was closed: nothing left to measure.
            let mut st = stats.borrow_mut();
            st.ended = Some(now);
            st.error(format_args!("no connection left"));
            break;
        }
        ev.run_once(Some(wake.saturating_duration_since(now)))?;
    }
    let end_cpu = args.server_pid.map(cpu_ticks).transpose()?;
    let st = stats.borrow();
    let (start, start_cpu) = window.unwrap_or((st.ended.unwrap_or_else(Instant::now), None));
    let secs = st
        .ended
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(start)
        .as_secs_f64();
    let server_cpu = match (start_cpu, end_cpu) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / tck),
        _ => None,
    };
    println!("{}", report(args, &st, secs, server_cpu));
    let failed = st.mismatches > 0 || st.errors > 0 || st.requests == 0;
    Ok(if failed { 1 } else { 0 })
}

/// The JSON line.
fn report(args: &Args, st: &Stats, secs: f64, server_cpu: Option<f64>) -> String {
    let per_sec = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
    let q = |q: f64| {
        if st.requests == 0 {
            "null".to_string()
        } else {
            st.hist.value_at_quantile(q).to_string()
        }
    };
    let opt = |v: Option<f64>, prec: usize| match v {
        Some(v) if v.is_finite() => format!("{v:.prec$}"),
        _ => "null".to_string(),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "{{\"mode\":\"{}\",\"conns\":{},\"size\":{},\"depth\":{},\"secs\":{:.3},\
         \"requests\":{},\"rps\":{:.1},\"mb_s\":{:.3},\"p50_us\":{},\"p99_us\":{},\
         \"p999_us\":{},\"errors\":{},\"mismatches\":{},\"server_cpu_s\":{},\
         \"server_cpu_us_per_req\":{}}}",
        args.mode.name(),
        args.conns,
        args.size,
        args.depth,
        secs,
        st.requests,
        per_sec(st.requests as f64),
        per_sec(st.bytes as f64) / 1e6,
        q(0.5),
        q(0.99),
        q(0.999),
        st.errors,
        st.mismatches,
        opt(server_cpu, 2),
        opt(
            server_cpu
                .filter(|_| st.requests > 0)
                .map(|c| c * 1e6 / st.requests as f64),
            3
        ),
    );
    s
}
