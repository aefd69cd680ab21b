//! The reactor: one thread, one epoll instance, a slab of connections.
//!
//! In the event path: all of it above the syscalls. A turn waits
//! ([`crate::poll`]), dispatches readiness to connections, listeners and
//! watched sources, runs expired timers ([`crate::timer`]) and reaps closed
//! connections.
//!
//! Everything above the I/O layers that makes a loop out of them:
//!
//! | file | what it holds |
//! |---|---|
//! | `event_loop.rs` | [`EventLoop`] and its turn: wait, dispatch, ready list, timers, reap |
//! | `conn.rs` | a connection's state and the read path, write path and closes |
//! | `accept.rs` | the acceptor: batches, EMFILE spare descriptor, `max_conns` |
//! | `config.rs` | [`ConnConfig`] and [`ServerConfig`] |
//! | `context.rs` | [`Context`], what a callback can do |
//! | `handler.rs` | [`Handler`], the callbacks, and [`CloseReason`] |
//! | `waker.rs` | [`LoopHandle`]: the eventfd other threads wake the loop with |
//! | `connector.rs` | outgoing connects retried with backoff |
//! | `stats.rs` | [`LoopStats`], the loop's counters |
//! | `siblings.rs` | a loop's place in a group of loops (cross-loop posts, published load) |
//!
//! An event goes `EventLoop::run_once` -> `Core::dispatch` ->
//! `Core::conn_ready` (conn.rs: the first read's lookup routes it; other
//! tokens go to `Core::dispatch_other`, a connection that is connecting,
//! closed or has output queued for EPOLLOUT to `Core::conn_event`) -> the
//! read -> `Handler::on_data`; ARCHITECTURE.md walks the whole path.

pub(crate) mod accept;
pub(crate) mod config;
pub(crate) mod conn;
pub mod connector;
pub(crate) mod context;
pub(crate) mod event_loop;
pub(crate) mod handler;
pub(crate) mod siblings;
pub(crate) mod stats;
#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod waker;

pub use accept::{HandlerFactory, EXCLUSIVE_ROTATE};
#[cfg(feature = "tls")]
pub use config::TlsConfig;
pub use config::{ConnConfig, ServerConfig, DEFAULT_SHUTDOWN_GRACE};
pub use context::Context;
pub use event_loop::EventLoop;
pub use handler::{CloseReason, ConnId, Handler};
pub use stats::LoopStats;
pub use waker::LoopHandle;
