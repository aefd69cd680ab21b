//! What a loop knows of the other loops of its group (a cluster): its own
//! index, every loop's [`LoopHandle`] for cross-loop posts, and where to
//! publish its load for an acceptor that hands connections out.
//!
//! The reactor does not know who built the group; a loop alone is index 0
//! of a group of one whose only handle is its own.

use crate::reactor::waker::LoopHandle;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A loop's place in its group.
pub(crate) struct Siblings {
    pub(crate) index: usize,
    pub(crate) handles: Arc<[LoopHandle]>,
}

/// Publishes a loop's load into `load` (the loop's `published_load`,
/// whenever it changes: `Core::publish_load`), relaxed: live connections in the high 32 bits,
/// handed-off connections taken in so far (wrapping) in the low.
#[inline]
pub(crate) fn publish(load: &AtomicU64, live: usize, handed_in: u32) {
    let live = live.min(u32::MAX as usize) as u64;
    load.store((live << 32) | handed_in as u64, Ordering::Relaxed);
}

/// Splits a published load word into (live, handed-in).
pub(crate) fn unpack_load(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}
