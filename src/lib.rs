//! sockloop: a hand-rolled, single-threaded epoll event loop on raw
//! system calls.
//!
//! One thread registers non-blocking sockets with epoll (edge-triggered,
//! once) and keeps every connection's state in a slab. Handlers see bytes in
//! a [`Buffer`] and write replies through a [`Context`]; the loop sends them
//! at once and waits for writability only when the socket would block.
//!
//! ```
//! use sockloop::{Buffer, Context, EventLoop, ServerConfig};
//! use sockloop::net::TcpListener;
//! use std::io::{Read, Write};
//!
//! // An echo server on a free loopback port.
//! let mut ev = EventLoop::new()?;
//! let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
//! let addr = listener.local_addr()?;
//! ev.listen(listener, ServerConfig::default(), |_id| {
//!     Box::new(|ctx: &mut Context<'_>, input: &mut Buffer| {
//!         let _ = ctx.write(input.as_slice());
//!         input.clear();
//!     })
//! })?;
//! // Stop the loop from another thread once a client got its echo.
//! let handle = ev.handle();
//! let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
//!     let mut s = std::net::TcpStream::connect(addr)?;
//!     s.write_all(b"hello")?;
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf)?;
//!     handle.stop()?;
//!     Ok(buf.to_vec())
//! });
//! ev.run()?;
//! assert_eq!(client.join().unwrap()?, b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Sharing state between connections
//!
//! The loop, the listener's handler factory and every handler live on the
//! loop's thread, so state that connections share (a key space, a chat
//! room) needs no lock: put it in an `Rc<RefCell<...>>`, let the factory
//! capture it, and give each handler a clone. Keep each borrow short,
//! within one callback: a `borrow_mut` still held when another handler
//! borrows panics (that can happen inside a callback too: [`Context::adopt`]
//! runs the new connection's `on_open` at once). Here one client stores a
//! value and another reads it:
//!
//! ```
//! use sockloop::{Buffer, Context, EventLoop, Handler, ServerConfig};
//! use sockloop::net::TcpListener;
//! use std::cell::RefCell;
//! use std::collections::HashMap;
//! use std::io::{BufRead, BufReader, Write};
//! use std::rc::Rc;
//!
//! type Store = Rc<RefCell<HashMap<String, String>>>;
//!
//! /// `set KEY VALUE\n` answers `ok\n`; `get KEY\n` answers the value.
//! struct Kv {
//!     store: Store,
//! }
//!
//! impl Handler for Kv {
//!     fn on_data(&mut self, ctx: &mut Context<'_>, input: &mut Buffer) {
//!         while let Some(end) = input.find(b"\n") {
//!             let line = String::from_utf8_lossy(&input.as_slice()[..end]).into_owned();
//!             input.consume(end + 1);
//!             let mut words = line.split_whitespace();
//!             let reply = match (words.next(), words.next(), words.next()) {
//!                 (Some("set"), Some(k), Some(v)) => {
//!                     self.store.borrow_mut().insert(k.into(), v.into());
//!                     "ok".to_string()
//!                 }
//!                 (Some("get"), Some(k), None) => {
//!                     self.store.borrow().get(k).cloned().unwrap_or_default()
//!                 }
//!                 _ => "error".to_string(),
//!             };
//!             if ctx.write(format!("{reply}\n").as_bytes()).is_err() {
//!                 return;
//!             }
//!         }
//!     }
//! }
//!
//! let mut ev = EventLoop::new()?;
//! let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
//! let addr = listener.local_addr()?;
//! let store: Store = Rc::default();
//! let shared = store.clone();
//! ev.listen(listener, ServerConfig::default(), move |_id| {
//!     Box::new(Kv { store: shared.clone() })
//! })?;
//! let handle = ev.handle();
//! let clients = std::thread::spawn(move || -> std::io::Result<String> {
//!     let ask = |line: &str| -> std::io::Result<String> {
//!         let mut s = std::net::TcpStream::connect(addr)?;
//!         s.write_all(line.as_bytes())?;
//!         let mut reply = String::new();
//!         BufReader::new(s).read_line(&mut reply)?;
//!         Ok(reply)
//!     };
//!     assert_eq!(ask("set greeting hello\n")?, "ok\n");
//!     let got = ask("get greeting\n")?; // another connection
//!     handle.stop()?;
//!     Ok(got)
//! });
//! ev.run()?;
//! assert_eq!(clients.join().unwrap()?, "hello\n");
//! assert_eq!(store.borrow().len(), 1); // the loop's thread still holds it
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Limits, streaming, panics
//!
//! [`ConnConfig`] says what `max_input` (unconsumed input) and `max_output`
//! (bytes the kernel has not taken) mean and what the peer sees when they
//! trip (a reset). Replies larger than `max_output` are streamed with
//! [`Context::notify_writable`] (example on [`Handler::on_drain`]). A
//! handler callback that panics ends its connection only (see
//! [`Handler`]).
//!
//! The layers, bottom up (see ARCHITECTURE.md): [`sys`] (raw system
//! calls, the only layer allowed to touch memory the compiler cannot
//! check), [`poll`], [`timer`], [`buffer`], [`io`] (readn/writen state
//! machines), [`net`] and [`options`], the [`reactor`]: [`EventLoop`],
//! [`Handler`], [`Context`], [`ServerConfig`]; and above it the
//! [`cluster`]: N loops on N threads.
//!
//! What a server needs is re-exported here: the loop and handler types,
//! the socket types ([`TcpListener`], [`UdpSocket`], [`UnixStream::pair`],
//! [`UnixDatagram::pair`], ...), the option types ([`SocketOptions`],
//! [`Linger`], [`Keepalive`], ...), and the signal numbers for
//! [`EventLoop::shutdown_on_signals`] ([`SIGINT`], [`SIGTERM`]). That is the
//! public face, under semver. [`sys`] stays public as the learner's layer
//! with a weaker promise; see its "Stability" section.
#![deny(missing_docs)]

pub mod buffer;
pub mod cluster;
pub mod io;
pub mod net;
pub mod options;
pub mod poll;
pub mod reactor;
pub mod sys;
pub mod timer;
pub mod token;

// The public face: what a server author needs, re-exported here. `sys`
// stays public as the learner's layer, under the weaker stability rule
// stated in its module docs (see ARCHITECTURE.md, "Public API").
pub use buffer::{Buffer, BufferFull};
pub use io::{IoStatus, ReadExact, WriteAll};
pub use net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
pub use options::{
    Credentials, Keepalive, Linger, OutOfBand, SockFilter, SocketOptions, SocketType,
};
pub use reactor::connector;
pub use reactor::{
    CloseReason, ConnConfig, ConnId, Context, EventLoop, Handler, LoopHandle, LoopStats,
    ServerConfig,
};
/// Signal numbers for [`EventLoop::shutdown_on_signals`] (from
/// `sys::signal`, so that a server needs no `libc` and no `sys` path).
pub use sys::signal::{SIGINT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2};
pub use timer::TimerId;
pub use token::Token;

// The README's example is compiled as a doctest, so it cannot drift from
// the public face it shows.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
