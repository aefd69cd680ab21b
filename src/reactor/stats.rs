//! Per-loop counters: plain integers in the loop's own `Core`, bumped on
//! the hot path with no atomics and no sharing. Read them from the loop's
//! thread ([`crate::EventLoop::stats`], [`crate::Context::stats`]); a
//! cluster hands each loop's final figures back when it stops.

/// What one loop has done since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Connections accepted (from its listeners, or handed to it by a
    /// cluster's acceptor). Connections shed at once (over `max_conns`, out
    /// of descriptors) are not counted.
    pub accepted: u64,
    /// Connections open now (accepted, outgoing and adopted).
    pub live: usize,
    /// The most connections open at once.
    pub peak_live: usize,
    /// Events `epoll_wait` reported.
    pub events: u64,
    /// Turns of the loop (one `epoll_wait` each).
    pub turns: u64,
    /// Bytes read from connections.
    pub bytes_in: u64,
    /// Bytes the kernel took from connections' writes.
    pub bytes_out: u64,
}

impl std::fmt::Display for LoopStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "accepted {} live {} peak {} events {} turns {} bytes in {} out {}",
            self.accepted,
            self.live,
            self.peak_live,
            self.events,
            self.turns,
            self.bytes_in,
            self.bytes_out
        )
    }
}
