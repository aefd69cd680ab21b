//! Settings of connections and listeners: limits, timeouts, backpressure.

use std::time::Duration;

/// How long a graceful shutdown started by a signal lets connections
/// finish (answer what they received, flush, exchange FINs) before the
/// rest are closed with [`crate::CloseReason::Shutdown`]: 10 s. Change it
/// with [`crate::EventLoop::set_shutdown_grace`] (or the cluster's
/// `shutdown_grace`); shutdowns started from the API take their grace as an
/// argument.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Settings of each connection (accepted or outgoing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnConfig {
    /// Close a connection when no byte has been read or written for this
    /// long (`None`: never). Default 60 s.
    pub idle_timeout: Option<Duration>,
    /// Maximum unconsumed input per connection. Default 1 MiB.
    pub max_input: usize,
    /// Maximum queued output per connection; writing more closes it with
    /// [`crate::CloseReason::OutputLimit`]. Default 4 MiB.
    pub max_output: usize,
    /// When queued output exceeds this, the loop stops reading from the
    /// connection until the output drains (backpressure). Default 256 KiB.
    ///
    /// This suits request/response servers, where a connection's output is
    /// the answer to its input. A relay (proxy) must not tie a connection's
    /// reading to its own output: set `usize::MAX` there and pause the
    /// *other* side instead ([`crate::Context::pause_reading_of`]), or the
    /// two directions can deadlock.
    pub high_water: usize,
    /// After a graceful close has sent our FIN, how long to keep reading
    /// (and discarding) while waiting for the peer's FIN. Default 5 s.
    pub linger: Duration,
    /// Set TCP_NODELAY on TCP connections (accepted ones, and outgoing ones
    /// with the loop's default config). Default true: a reactor writes
    /// whole replies, so Nagle's algorithm only adds latency.
    pub nodelay: bool,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            idle_timeout: Some(Duration::from_secs(60)),
            max_input: crate::buffer::DEFAULT_MAX,
            max_output: 4 * crate::buffer::DEFAULT_MAX,
            high_water: 256 * 1024,
            linger: Duration::from_secs(5),
            nodelay: true,
        }
    }
}

/// Settings of a listening socket served by the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Settings for each accepted connection.
    pub conn: ConnConfig,
    /// Most connections served at once; more are accepted and closed at
    /// once. Default 100,000.
    pub max_conns: usize,
    /// Most connections accepted per wake-up (fairness). Default 256.
    pub accept_batch: usize,
    /// How long to stop accepting when out of descriptors even after the
    /// spare-fd trick. Default 100 ms.
    pub accept_pause: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            conn: ConnConfig::default(),
            max_conns: 100_000,
            accept_batch: 256,
            accept_pause: Duration::from_millis(100),
        }
    }
}
