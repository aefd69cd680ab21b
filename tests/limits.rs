//! `max_input` and `max_output` mean what they say (issue 9), over real
//! loopback sockets:
//!
//! * bug 1: `max_input` is the maximum of *unconsumed* input. 8 pipelined
//!   SETs of 1,000,000-byte values, each under the resp example's 1 MiB
//!   limit, sent in one write, are all answered;
//! * bug 2: `max_output` is the maximum of bytes the kernel has not taken.
//!   An MGET of 5 x 1,000,000-byte values, whose reply starts with a small
//!   write, reaches an eager reader whole (5,000,064 bytes);
//! * a limit that trips is a reset (RST) the peer can see, never a FIN;
//! * the property tests: seeded random framing, chunking and batching,
//!   several hundred cases each, on an in-process loop.

mod common;

use common::{Rng, Server};
use sockloop::net::TcpListener;
use sockloop::{Buffer, CloseReason, Context, EventLoop, Handler, LoopHandle, ServerConfig};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const VALUE: usize = 1_000_000;

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// `SET key <value>` as a RESP multibulk command.
fn set_command(key: &str, value: &[u8]) -> Vec<u8> {
    let mut c = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
        key.len(),
        value.len()
    )
    .into_bytes();
    c.extend_from_slice(value);
    c.extend_from_slice(b"\r\n");
    c
}

/// A 1,000,000-byte value distinct per `i` (so reordering would show).
fn value(i: usize) -> Vec<u8> {
    (0..VALUE)
        .map(|j| b'a' + ((j * 7 + i * 13) % 26) as u8)
        .collect()
}

/// Writes `data` from a thread (the server answers while we send).
fn send_in_background(s: &TcpStream, data: Vec<u8>) -> JoinHandle<std::io::Result<()>> {
    let mut w = s.try_clone().unwrap();
    std::thread::spawn(move || w.write_all(&data))
}

/// Bug 1: `resp --max-input-mib 1`; one write of 8 pipelined SETs of
/// 1,000,000-byte values. Each command is under the limit and the handler
/// consumes each as soon as it is complete: all 8 get `+OK`, and the values
/// are stored intact.
#[test]
fn eight_pipelined_sets_just_under_max_input_are_all_answered() {
    let server = Server::start("resp", &["--max-input-mib", "1"]);
    let mut s = connect(server.addr);
    let mut batch = Vec::new();
    for i in 0..8 {
        let cmd = set_command(&format!("k{i}"), &value(i));
        assert!(cmd.len() < 1 << 20, "each command is under the limit");
        batch.extend_from_slice(&cmd);
    }
    let writer = send_in_background(&s, batch);
    let mut replies = vec![0u8; 8 * 5];
    s.read_exact(&mut replies)
        .expect("8 replies (a reset here is the bug: InputLimit)");
    assert_eq!(replies, b"+OK\r\n".repeat(8));
    writer.join().unwrap().expect("the whole batch was taken");
    // The last value went through the buffer at its fullest: intact.
    s.write_all(b"*2\r\n$3\r\nGET\r\n$2\r\nk7\r\n").unwrap();
    let mut reply = vec![0u8; 10 + VALUE + 2];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[..10], b"$1000000\r\n");
    assert!(reply[10..10 + VALUE] == value(7)[..], "k7 differs");
}

/// Bug 2: `resp --max-input-mib 1` (max_output 4 MiB), five 1,000,000-byte
/// values stored, then `MGET k0 k1 k2 k3 k4` from a client that reads as
/// fast as it can. The reply starts with the small `*5\r\n` (batched in the
/// shared out-scratch); the large values after it must not count as queued
/// behind it: all 5,000,064 bytes arrive, in order.
#[test]
fn mget_of_five_megabytes_after_a_small_write_arrives_whole() {
    let server = Server::start("resp", &["--max-input-mib", "1"]);
    let mut s = connect(server.addr);
    for i in 0..5 {
        let writer = send_in_background(&s, set_command(&format!("k{i}"), &value(i)));
        let mut ok = [0u8; 5];
        s.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        writer.join().unwrap().unwrap();
    }
    s.write_all(
        b"*6\r\n$4\r\nMGET\r\n$2\r\nk0\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\nk3\r\n$2\r\nk4\r\n",
    )
    .unwrap();
    let mut expected = b"*5\r\n".to_vec();
    for i in 0..5 {
        expected.extend_from_slice(b"$1000000\r\n");
        expected.extend_from_slice(&value(i));
        expected.extend_from_slice(b"\r\n");
    }
    assert_eq!(expected.len(), 5_000_064);
    let mut got = vec![0u8; expected.len()];
    let mut n = 0;
    while n < got.len() {
        match s.read(&mut got[n..]) {
            Ok(0) => panic!("end of stream after {n} of 5,000,064 bytes"),
            Ok(k) => n += k,
            Err(e) => panic!("{e} after {n} of 5,000,064 bytes"),
        }
    }
    assert!(got == expected, "the MGET reply differs");
    // The connection is still usable.
    s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut pong = [0u8; 7];
    s.read_exact(&mut pong).unwrap();
    assert_eq!(&pong, b"+PONG\r\n");
}

type Log = Arc<Mutex<Vec<String>>>;

/// A loop on a thread serving one listener per config; returns their
/// addresses. Stopped through the handle.
fn spawn_loop<F>(
    configs: Vec<ServerConfig>,
    factory: F,
) -> (Vec<SocketAddr>, LoopHandle, JoinHandle<()>)
where
    F: Fn() -> Box<dyn Handler> + Send + Clone + 'static,
{
    let (tx, rx) = mpsc::channel();
    let join = std::thread::spawn(move || {
        let mut ev = EventLoop::new().expect("loop");
        let mut addrs = Vec::new();
        for config in configs {
            let l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            addrs.push(l.local_addr().unwrap());
            let f = factory.clone();
            ev.listen(l, config, move |_| f()).unwrap();
        }
        tx.send((addrs, ev.handle())).unwrap();
        ev.run().expect("run");
    });
    let (addrs, handle) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("loop started");
    (addrs, handle, join)
}

fn wait_for(log: &Log, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = log.lock().unwrap().clone();
        if v.len() >= n || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(5)); // polling pace
    }
}

/// Reads until end of stream or error; returns the bytes and how it ended.
fn read_until_end(s: &mut TcpStream) -> (usize, Option<ErrorKind>) {
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (n, None),
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e.kind())),
        }
    }
}

/// Writes far more than `max_output` at once to a peer that is not
/// reading: the write fails, the connection ends with `OutputLimit`, and
/// the peer sees a reset (ECONNRESET), not an orderly end of stream that
/// would pass for a complete reply.
#[test]
fn an_output_limit_that_trips_is_a_reset_the_peer_sees() {
    let log: Log = Arc::default();
    struct Flood(Log);
    impl Handler for Flood {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            input.clear();
            let big = vec![b'x'; 64 << 20];
            let r = ctx.write(b"header\r\n").and_then(|_| ctx.write(&big));
            self.0
                .lock()
                .unwrap()
                .push(format!("write: {:?}", r.map_err(|e| e.kind())));
        }
        fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
            self.0.lock().unwrap().push(format!("{r:?}"));
        }
    }
    let mut config = ServerConfig::default();
    config.conn.max_output = 1 << 20;
    let l2 = log.clone();
    let (addrs, handle, join) = spawn_loop(vec![config], move || Box::new(Flood(l2.clone())));
    let mut s = connect(addrs[0]);
    s.write_all(b"go").unwrap();
    assert_eq!(
        wait_for(&log, 2),
        vec!["write: Err(OutOfMemory)".to_string(), "OutputLimit".into()]
    );
    let (n, end) = read_until_end(&mut s);
    assert_eq!(
        end,
        Some(ErrorKind::ConnectionReset),
        "after {n} bytes the stream must end in a reset, not a FIN"
    );
    handle.stop().unwrap();
    join.join().unwrap();
}

/// The same for `max_input`: a peer that sends more than the handler
/// consumes sees a reset.
#[test]
fn an_input_limit_that_trips_is_a_reset_the_peer_sees() {
    let log: Log = Arc::default();
    struct Hoarder(Log);
    impl Handler for Hoarder {
        fn on_data(&mut self, _ctx: &mut Context<'_>, _input: &mut Buffer) {}
        fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
            self.0.lock().unwrap().push(format!("{r:?}"));
        }
    }
    let mut config = ServerConfig::default();
    config.conn.max_input = 200_000;
    let l2 = log.clone();
    let (addrs, handle, join) = spawn_loop(vec![config], move || Box::new(Hoarder(l2.clone())));
    let mut s = connect(addrs[0]);
    let _ = s.write_all(&vec![b'x'; 1 << 20]); // fails once the server resets
    assert_eq!(wait_for(&log, 1), vec!["InputLimit".to_string()]);
    let (_, end) = read_until_end(&mut s);
    assert_eq!(end, Some(ErrorKind::ConnectionReset));
    handle.stop().unwrap();
    join.join().unwrap();
}

/// Frames: a 4-byte big-endian length of the whole frame, then filler.
/// The handler consumes every complete frame as soon as it sees it and
/// answers each with its 4-byte length.
struct Framer {
    log: Log,
}

impl Handler for Framer {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        loop {
            let b = input.as_slice();
            if b.len() < 4 {
                return;
            }
            let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            if b.len() < len {
                return;
            }
            if ctx.write(&b[..4]).is_err() {
                return;
            }
            input.consume(len);
        }
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
        if !r.is_graceful() {
            self.log.lock().unwrap().push(format!("{r:?}"));
        }
    }
}

fn seed() -> u64 {
    std::env::var("SOCKLOOP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0009)
}

/// Property: a handler that consumes every complete frame never gets
/// `InputLimit`, for frame sizes up to `max_input` and any way the sender
/// splits and batches its bytes. 400 seeded cases over three limits (below
/// the 64 KiB read chunk, near it, and well above), frames mostly near the
/// limit, sent in random chunks with random pauses (so reads batch
/// differently).
#[test]
fn property_consuming_every_complete_frame_never_trips_max_input() {
    let limits = [3_000usize, 65_536, 300_000];
    let configs = limits
        .iter()
        .map(|&m| {
            let mut c = ServerConfig::default();
            c.conn.max_input = m;
            c
        })
        .collect();
    let log: Log = Arc::default();
    let l2 = log.clone();
    let (addrs, handle, join) = spawn_loop(configs, move || Box::new(Framer { log: l2.clone() }));
    let base = seed();
    let cases = 400;
    let mut bytes = 0usize;
    for case in 0..cases {
        let mut rng = Rng::new(base + case);
        let which = rng.range(0, limits.len() - 1);
        let max = limits[which];
        let frames = rng.range(1, 6);
        let mut stream = Vec::new();
        let mut lens = Vec::new();
        for _ in 0..frames {
            let len = match rng.range(0, 3) {
                0 => rng.range(4, max),
                _ => rng.range(max.saturating_sub(64).max(4), max), // at the limit
            };
            let start = stream.len();
            stream.resize(start + len, (case % 251) as u8);
            stream[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
            lens.push(len as u32);
        }
        bytes += stream.len();
        let mut s = connect(addrs[which]);
        s.set_nodelay(true).unwrap();
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let end = r.read_to_end(&mut got).err().map(|e| e.kind());
            (got, end)
        });
        let mut at = 0;
        while at < stream.len() {
            let n = rng.range(1, 2 * max).min(stream.len() - at);
            if let Err(e) = s.write_all(&stream[at..at + n]) {
                panic!("case {case} (seed {}): write failed: {e}", base + case);
            }
            at += n;
            if rng.range(0, 7) == 0 {
                std::thread::sleep(Duration::from_micros(rng.range(0, 2000) as u64));
            }
        }
        s.shutdown(Shutdown::Write).unwrap();
        let (got, end) = reader.join().unwrap();
        let want: Vec<u8> = lens.iter().flat_map(|l| l.to_be_bytes()).collect();
        assert_eq!(
            (end, got.len()),
            (None, want.len()),
            "case {case} (seed {}, max_input {max}, frames {lens:?}): {:?}",
            base + case,
            log.lock().unwrap()
        );
        assert_eq!(got, want, "case {case}: acks differ");
    }
    assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
    println!("{cases} cases, {bytes} bytes of frames, seed {base}");
    handle.stop().unwrap();
    join.join().unwrap();
}

/// Writes the reply the client asked for (`N` bytes, split by the seed)
/// in one callback, then closes gracefully.
struct Splitter {
    log: Log,
}

/// The reply's bytes: position-dependent so loss or reordering shows.
fn reply_byte(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

impl Handler for Splitter {
    fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
        if input.len() < 16 {
            return;
        }
        let b = input.as_slice();
        let n = u64::from_be_bytes(b[..8].try_into().unwrap()) as usize;
        let seed = u64::from_be_bytes(b[8..16].try_into().unwrap());
        input.consume(16);
        let data: Vec<u8> = (0..n).map(reply_byte).collect();
        let mut rng = Rng::new(seed);
        let mut at = 0;
        while at < n {
            // Mostly small pieces (batched), some around the direct-send
            // threshold, some large.
            let piece = match rng.range(0, 5) {
                0..=2 => rng.range(1, 300),
                3 => rng.range(900, 1200),
                _ => rng.range(1, n),
            }
            .min(n - at);
            if let Err(e) = ctx.write(&data[at..at + piece]) {
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("write of {piece} at {at}/{n}: {e}"));
                return;
            }
            at += piece;
        }
        ctx.close();
    }
    fn on_close(&mut self, _ctx: &mut Context<'_>, r: &CloseReason) {
        if !r.is_graceful() {
            self.log.lock().unwrap().push(format!("{r:?}"));
        }
    }
}

/// Property: a handler that writes N <= `max_output` bytes, split in any
/// way, in one callback, never gets `OutputLimit` while the peer reads
/// eagerly. 300 seeded cases, N up to and including `max_output`.
#[test]
fn property_writing_up_to_max_output_in_any_split_never_trips_it() {
    let max = 256 * 1024;
    let mut config = ServerConfig::default();
    config.conn.max_output = max;
    let log: Log = Arc::default();
    let l2 = log.clone();
    let (addrs, handle, join) =
        spawn_loop(vec![config], move || Box::new(Splitter { log: l2.clone() }));
    let base = seed();
    let cases = 300;
    for case in 0..cases {
        let mut rng = Rng::new(base ^ (case << 32));
        let n = match rng.range(0, 3) {
            0 => rng.range(1, max),
            1 => max,
            _ => rng.range(max - 2048, max),
        };
        let mut s = connect(addrs[0]);
        let mut req = (n as u64).to_be_bytes().to_vec();
        req.extend_from_slice(&rng.next_u64().to_be_bytes());
        s.write_all(&req).unwrap();
        let mut got = Vec::with_capacity(n);
        let end = s.read_to_end(&mut got).err().map(|e| e.kind());
        assert_eq!(
            (end, got.len()),
            (None, n),
            "case {case} (seed {base}): {:?}",
            log.lock().unwrap()
        );
        assert!(
            got.iter().enumerate().all(|(i, &b)| b == reply_byte(i)),
            "case {case}: reply differs"
        );
    }
    assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
    handle.stop().unwrap();
    join.join().unwrap();
}

/// `output_len` counts what the kernel has not taken: inside the callback,
/// the batched small writes; after a large write sent with the batch ahead
/// of it, nothing (the kernel took both); in a later callback, nothing.
#[test]
fn output_len_counts_only_bytes_the_kernel_has_not_taken() {
    let log: Log = Arc::default();
    struct Measure(Log);
    impl Handler for Measure {
        fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
            input.clear();
            let mut seen = vec![ctx.output_len()];
            ctx.write(b"0123456789").unwrap();
            seen.push(ctx.output_len());
            ctx.write(&[b'x'; 2048]).unwrap();
            seen.push(ctx.output_len());
            self.0.lock().unwrap().push(format!("{seen:?}"));
        }
    }
    let l2 = log.clone();
    let (addrs, handle, join) = spawn_loop(vec![ServerConfig::default()], move || {
        Box::new(Measure(l2.clone()))
    });
    let mut s = connect(addrs[0]);
    for _ in 0..2 {
        s.write_all(b"?").unwrap();
        let mut got = vec![0u8; 10 + 2048];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got[..10], b"0123456789");
    }
    assert_eq!(
        wait_for(&log, 2),
        vec!["[0, 10, 0]".to_string(), "[0, 10, 0]".to_string()]
    );
    handle.stop().unwrap();
    join.join().unwrap();
}
