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
//! machines), [`net`], and the [`reactor`]: [`EventLoop`], [`Handler`],
//! [`Context`], [`ServerConfig`]; above it the [`cluster`]: N loops on N
//! threads.
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

pub use buffer::{Buffer, BufferFull};
pub use reactor::connector;
pub use reactor::{
    CloseReason, ConnConfig, ConnId, Context, EventLoop, Handler, LoopHandle, LoopStats,
    ServerConfig,
};
pub use timer::TimerId;
pub use token::Token;
