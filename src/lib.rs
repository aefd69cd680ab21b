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
//! The layers, bottom up (see ARCHITECTURE.md): [`sys`] (raw system
//! calls, the only layer allowed to touch memory the compiler cannot
//! check), [`poll`], [`timer`], [`buffer`], [`io`] (readn/writen state
//! machines), [`net`] and [`options`], and the [`reactor`]: [`EventLoop`],
//! [`Handler`], [`Context`], [`ServerConfig`].
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
pub mod io;
pub mod net;
pub mod options;
pub mod poll;
pub mod reactor;
pub mod sys;
pub mod timer;
#[cfg(feature = "tls")]
pub mod tls;
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
#[cfg(feature = "tls")]
pub use reactor::TlsConfig;
pub use reactor::{
    CloseReason, ConnConfig, ConnId, Context, EventLoop, Handler, LoopHandle, ServerConfig,
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
