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
    /// long (`None`: never). Default `None`: never, like Redis and
    /// memcached.
    ///
    /// Why not a timeout by default: an idle connection here costs one
    /// slab slot (about 200 bytes, no buffers) and a descriptor, and
    /// `max_conns` bounds how many there are; while closing a connection
    /// the client still holds in its pool (Redis and memcached clients
    /// keep them for hours) turns its next request into an error, and a
    /// request racing the close may be lost with no way to know whether it
    /// ran. Set one where the protocol lets clients expect it and the peers
    /// are not trusted: HTTP keep-alive (nginx closes idle keep-alive
    /// connections after 75 s; the http example uses 60 s), and as a cut
    /// against slowloris-style clients. A peer that vanished without a FIN
    /// (crashed host, dropped link) is noticed by an idle timeout, by a
    /// protocol heartbeat, or by TCP keepalive
    /// ([`crate::options::SocketOptions::set_keepalive`]).
    ///
    /// When it fires the connection is closed at once (FIN, or RST if the
    /// kernel still holds unread bytes) with
    /// [`crate::CloseReason::IdleTimeout`],
    /// and the loop logs it at debug level.
    ///
    /// Nothing on the hot path keeps time for it. A TCP connection's
    /// silence is the kernel's (`TCP_INFO`: the time since the last data
    /// segment sent or received, counted in jiffies), asked once per
    /// timeout of a busy connection; a silent one is closed when the
    /// timeout is over, within 10 ms (one jiffy is taken off the kernel's
    /// count, which may run up to one ahead of the time that passed). Any other stream (a Unix socket, a socketpair) is sampled every
    /// eighth of the timeout, so it is closed after between 1 and 1.125
    /// timeouts of silence. Either way never sooner than the timeout.
    pub idle_timeout: Option<Duration>,
    /// Maximum *unconsumed* input per connection, in bytes. Default 1 MiB.
    ///
    /// The handler always sees what arrived before the limit is judged: a
    /// read may take the input up to 64 KiB past this, `on_data` runs, and
    /// only if more than `max_input` bytes are still unconsumed when it
    /// returns does the connection end, with
    /// [`crate::CloseReason::InputLimit`]. So a handler that consumes every
    /// complete message never trips it for messages up to `max_input`
    /// bytes, however the peer splits or batches them; a handler that
    /// consumes nothing of a full buffer does. When it trips, the
    /// connection is aborted: the peer sees a reset (RST, `ECONNRESET`),
    /// never an orderly end of stream. Memory per connection is bounded by
    /// `max_input` + 64 KiB.
    pub max_input: usize,
    /// Maximum *queued* output per connection, in bytes: bytes written,
    /// offered to the kernel and not taken by it (they wait for EPOLLOUT).
    /// Default 4 MiB.
    ///
    /// Bytes the kernel takes never count, and queued output is offered
    /// again before the limit trips, so a handler writing up to
    /// `max_output` bytes (in any number of writes) to a peer that reads
    /// never trips it. Writing more than that to a peer that does not keep
    /// up makes [`crate::Context::write`] fail with `OutOfMemory`: the
    /// connection is aborted (the peer sees a reset, RST, not a FIN, so it
    /// can tell the stream was cut) and ends with
    /// [`crate::CloseReason::OutputLimit`]. To send more than this, stream
    /// it: write in pieces and continue in `on_drain`. Small writes a callback
    /// batches (under 64 KiB, in the loop's shared buffer) are offered to
    /// the kernel when the callback returns.
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
    /// The low-water mark of queued output, in bytes: after
    /// [`crate::Context::notify_writable`], `on_drain` is called once the
    /// queued output (bytes the kernel has not taken) is at or below this,
    /// at once if it already is, even if nothing was ever queued. A
    /// producer that writes its next piece there keeps its queue between
    /// `low_water` and `low_water` + one piece. Default 64 KiB; 0 waits
    /// for an empty queue.
    pub low_water: usize,
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
            idle_timeout: None,
            max_input: crate::buffer::DEFAULT_MAX,
            max_output: 4 * crate::buffer::DEFAULT_MAX,
            high_water: 256 * 1024,
            low_water: 64 * 1024,
            linger: Duration::from_secs(5),
            nodelay: true,
        }
    }
}

/// Settings of a listening socket served by the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Settings for each accepted connection: its limits (`max_input`,
    /// `max_output`: what they mean and what the peer sees when they trip
    /// is on [`ConnConfig`]), backpressure marks, and idle timeout (default
    /// none: idle connections are kept until the peer closes; set
    /// `conn.idle_timeout` for HTTP-like servers, see
    /// [`ConnConfig::idle_timeout`]).
    pub conn: ConnConfig,
    /// Most connections served at once; more are accepted and closed at
    /// once. Default 100,000.
    pub max_conns: usize,
    /// Most connections accepted per wake-up (fairness). Default 256.
    pub accept_batch: usize,
    /// How long to stop accepting when out of descriptors even after the
    /// spare-fd trick. Default 100 ms.
    pub accept_pause: Duration,
    /// Serve TLS on this listener (feature `tls`). `None` (the default):
    /// plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsConfig>,
}

/// TLS settings of a listener (feature `tls`): the rustls config, and what
/// the loop does around the handshake.
///
/// The handler of a TLS connection is the same as for plain TCP: `on_open`
/// runs once the handshake is done, `on_data` gets the decrypted bytes,
/// writes are encrypted, `close` sends close_notify before FIN. `on_close`
/// runs for every accepted connection, also for one whose handshake failed
/// or timed out (then without an `on_open` before it): its reason says why
/// ([`crate::CloseReason::Tls`], [`crate::CloseReason::TlsHandshakeTimeout`]).
#[cfg(feature = "tls")]
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Certificates, key, versions, ALPN, session resumption... as rustls
    /// takes them ([`crate::tls::server_config_from_pem`] builds one).
    pub server: std::sync::Arc<rustls::ServerConfig>,
    /// Close (with [`crate::CloseReason::TlsHandshakeTimeout`]) a peer that
    /// has not finished the handshake this long after the accept.
    /// Default 10 s.
    pub handshake_timeout: Duration,
    /// A peer's FIN without close_notify is a clean end of stream
    /// ([`crate::CloseReason::PeerClosed`], `on_peer_closed`) when true;
    /// when false (the default) it ends the connection with
    /// [`crate::CloseReason::TlsTruncated`]. Protocols that frame their own
    /// messages (HTTP/1.1 with Content-Length) may allow it; protocols
    /// that end a message with the end of stream must not.
    pub allow_truncation: bool,
}

#[cfg(feature = "tls")]
impl TlsConfig {
    /// TLS with `server`, a 10 s handshake deadline, truncation refused.
    pub fn new(server: std::sync::Arc<rustls::ServerConfig>) -> TlsConfig {
        TlsConfig {
            server,
            handshake_timeout: Duration::from_secs(10),
            allow_truncation: false,
        }
    }
}

#[cfg(feature = "tls")]
impl PartialEq for TlsConfig {
    /// Same rustls config (the same `Arc`) and the same settings.
    fn eq(&self, other: &TlsConfig) -> bool {
        std::sync::Arc::ptr_eq(&self.server, &other.server)
            && self.handshake_timeout == other.handshake_timeout
            && self.allow_truncation == other.allow_truncation
    }
}

#[cfg(feature = "tls")]
impl Eq for TlsConfig {}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            conn: ConnConfig::default(),
            max_conns: 100_000,
            accept_batch: 256,
            accept_pause: Duration::from_millis(100),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}
