//! The `chat` example as a black box: lines are broadcast to the others in
//! order, partial lines wait for their newline, over-long lines and slow
//! readers are cut off while the others carry on.

mod common;

use common::procs::Server;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

fn start_chat() -> Server {
    Server::example("chat", &["--addr", "127.0.0.1:0"])
}

/// A chat client: connects, then reads its welcome line, which the server
/// sends once the client is in the room (so broadcasts sent after this
/// returns reach it).
struct Client {
    id: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn join(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        let writer = s.try_clone().unwrap();
        let mut reader = BufReader::new(s);
        let mut welcome = String::new();
        reader.read_line(&mut welcome).unwrap();
        assert!(welcome.starts_with("* welcome "), "{welcome:?}");
        let id = welcome.split_whitespace().nth(2).unwrap().to_string();
        Client { id, reader, writer }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        let n = self.reader.read_line(&mut l).expect("read a line");
        assert!(n > 0, "unexpected EOF");
        assert!(l.ends_with('\n'), "partial line {l:?}");
        l.pop();
        l
    }
}

#[test]
fn three_clients_lines_broadcast_to_the_others_in_order() {
    const N: usize = 300;
    let chat = start_chat();
    let a = Client::join(chat.addr);
    let b = Client::join(chat.addr);
    let mut c = Client::join(chat.addr);
    let (a_id, b_id, c_id) = (a.id.clone(), b.id.clone(), c.id.clone());
    assert!(a_id != b_id && b_id != c_id && a_id != c_id);

    // A and B talk at the same time; A splits each line over three writes
    // (the server must wait for the newline); C says one thing.
    let mut aw = a.writer.try_clone().unwrap();
    let a_send = thread::spawn(move || {
        for i in 0..N {
            aw.write_all(b"a-").unwrap();
            aw.write_all(i.to_string().as_bytes()).unwrap();
            aw.write_all(b"\n").unwrap();
        }
    });
    let mut bw = b.writer.try_clone().unwrap();
    let b_send = thread::spawn(move || {
        let all: String = (0..N).map(|i| format!("b-{i}\n")).collect();
        bw.write_all(all.as_bytes()).unwrap();
    });
    c.writer.write_all(b"c says hi\n").unwrap();

    // Everyone gets the others' lines, each sender's in order, never its own.
    let check = |mut client: Client, from: Vec<(String, &'static str, usize)>| {
        thread::spawn(move || {
            let mut next = vec![0usize; from.len()];
            let total: usize = from.iter().map(|f| f.2).sum();
            for _ in 0..total {
                let line = client.line();
                let (who, text) = line.split_once(": ").expect("prefixed line");
                let k = from
                    .iter()
                    .position(|f| f.0 == who)
                    .unwrap_or_else(|| panic!("{}: line from {who}: {text}", client.id));
                let want = if from[k].1 == "c" {
                    "c says hi".to_string()
                } else {
                    format!("{}-{}", from[k].1, next[k])
                };
                assert_eq!(text, want, "{} from {who}", client.id);
                next[k] += 1;
            }
            client
        })
    };
    let ra = check(a, vec![(b_id.clone(), "b", N), (c_id.clone(), "c", 1)]);
    let rb = check(b, vec![(a_id.clone(), "a", N), (c_id.clone(), "c", 1)]);
    let rc = check(c, vec![(a_id.clone(), "a", N), (b_id.clone(), "b", N)]);
    a_send.join().unwrap();
    b_send.join().unwrap();
    let mut a = ra.join().unwrap();
    let mut b = rb.join().unwrap();
    let mut c = rc.join().unwrap();

    // Nothing extra is pending: a final line from C arrives next at A and B.
    c.writer.write_all(b"bye\n").unwrap();
    assert_eq!(a.line(), format!("{c_id}: bye"));
    assert_eq!(b.line(), format!("{c_id}: bye"));
}

#[test]
fn slow_reader_is_disconnected_while_others_continue() {
    const LINE: usize = 1024;
    const BATCH: usize = 256; // lines per round: 256 KiB, below the limit
    const ROUNDS: usize = 128; // 32 MiB in all
    let chat = start_chat();
    let mut sender = Client::join(chat.addr);
    let slow = Client::join(chat.addr); // never reads
    let mut other = Client::join(chat.addr);
    let sender_id = sender.id.clone();

    // The reader acknowledges each round, and the sender waits for that
    // before the next one: `other` is never more than a round behind, so
    // only `slow` can pass the server's 1 MiB limit.
    let (ack_tx, ack_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        for round in 0..ROUNDS {
            for i in 0..BATCH {
                let line = other.line();
                let want_prefix = format!("{sender_id}: {round}.{i} ");
                assert!(line.starts_with(&want_prefix), "{line:.40}");
                // "ID: " and the line without its newline
                assert_eq!(line.len(), sender_id.len() + 2 + LINE - 1);
            }
            ack_tx.send(round).unwrap();
        }
        other
    });
    for round in 0..ROUNDS {
        let mut batch = Vec::with_capacity(BATCH * LINE);
        for i in 0..BATCH {
            let head = format!("{round}.{i} ");
            batch.extend_from_slice(head.as_bytes());
            batch.resize(batch.len() + LINE - head.len() - 1, b'x');
            batch.push(b'\n');
        }
        sender.writer.write_all(&batch).unwrap();
        assert_eq!(ack_rx.recv().expect("reader failed"), round);
    }
    let mut other = reader.join().unwrap();

    let log = chat
        .wait_for_log("slow reader", Duration::from_secs(10))
        .expect("no slow-reader log line");
    assert!(log.contains(&slow.id), "{log}");

    // The slow client's connection was cut: reading what it has buffered
    // ends in EOF or a reset, not a timeout.
    let mut s = slow.reader.into_inner();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0usize;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("slow reader not disconnected after {got} bytes: {e}"),
        }
    }
    assert!(got < ROUNDS * BATCH * LINE, "slow reader got everything");

    // The room still works for the others.
    sender.writer.write_all(b"still here\n").unwrap();
    assert_eq!(other.line(), format!("{}: still here", sender.id));
}

#[test]
fn over_long_line_closes_that_client_only() {
    let chat = start_chat();
    let mut talker = Client::join(chat.addr);
    let mut listener = Client::join(chat.addr);
    let mut rambler = Client::join(chat.addr);
    rambler.writer.write_all(&[b'y'; 9000]).unwrap();
    let notice = rambler.line();
    assert!(notice.starts_with("* line longer than"), "{notice}");
    let mut rest = Vec::new();
    match rambler.reader.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "{rest:?}"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("rambler not closed: {e}"),
    }
    talker.writer.write_all(b"normal line\n").unwrap();
    assert_eq!(listener.line(), format!("{}: normal line", talker.id));
}

#[test]
fn four_loops_deliver_every_line_to_every_client() {
    const LINES: usize = 100;
    let chat = Server::example(
        "chat",
        &[
            "--addr",
            "127.0.0.1:0",
            "--threads",
            "4",
            "--balance",
            "handoff",
        ],
    );
    // Handoff spreads 8 clients two per loop (ids end in @LOOP).
    let clients: Vec<Client> = (0..8).map(|_| Client::join(chat.addr)).collect();
    let mut loops: Vec<&str> = clients
        .iter()
        .map(|c| c.id.rsplit('@').next().unwrap())
        .collect();
    loops.sort();
    loops.dedup();
    assert_eq!(loops, ["0", "1", "2", "3"], "clients not on every loop");
    let ids: Vec<String> = clients.iter().map(|c| c.id.clone()).collect();
    let mut readers = Vec::new();
    for (me, mut c) in clients.into_iter().enumerate() {
        let mut w = c.writer.try_clone().unwrap();
        let ids = ids.clone();
        readers.push(thread::spawn(move || {
            let sender = thread::spawn(move || {
                for i in 0..LINES {
                    w.write_all(format!("{me}-{i}\n").as_bytes()).unwrap();
                }
            });
            // Everyone else's lines, each sender's in order.
            let mut next = vec![0usize; ids.len()];
            for _ in 0..(ids.len() - 1) * LINES {
                let line = c.line();
                let (who, text) = line.split_once(": ").expect("prefixed line");
                let k = ids.iter().position(|id| id == who).expect("a known sender");
                assert_ne!(k, me, "{} got its own line", c.id);
                assert_eq!(text, format!("{k}-{}", next[k]), "{} from {who}", c.id);
                next[k] += 1;
            }
            sender.join().unwrap();
        }));
    }
    for r in readers {
        r.join().unwrap();
    }
}
