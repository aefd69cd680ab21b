//! Timers: a binary min-heap of deadlines over a slab of timer slots.
//!
//! In the event path: the deadline of each turn's wait (the earliest timer
//! bounds `epoll_wait`'s timeout) and the expiry step after dispatch (idle
//! timeouts, connect timeouts, `Context::set_timer`).
//!
//! * insert and expiry are O(log n); cancel is O(1) (the heap entry is left
//!   behind and skipped when it surfaces, and the heap is compacted when such
//!   leftovers outnumber live timers);
//! * [`Timers::reset`] to a *later* deadline only stores the new deadline in
//!   the slot: no heap operation, no allocation. When the old heap entry
//!   surfaces it is pushed again at the stored deadline. This is the lazy
//!   deadline that libev's manual recommends for idle timeouts, which every
//!   connection moves forward on every read.
//!
//! Time is kept in whole milliseconds since the loop started, from the
//! monotonic clock (`Instant`): wall-clock jumps cannot fire or delay timers.

use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// Identifies one armed timer. Stale ids (fired or cancelled) are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: u32,
    generation: u32,
}

struct Slot<T> {
    deadline: u64,
    generation: u32,
    payload: T,
}

/// A set of one-shot timers carrying a payload `T`.
pub struct Timers<T> {
    // (deadline ms, key, generation): ordered by deadline, then key.
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    slots: Slab<Slot<T>>,
    next_generation: u32,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            slots: Slab::new(),
            next_generation: 1,
        }
    }
}

impl<T> Timers<T> {
    /// An empty timer set.
    pub fn new() -> Timers<T> {
        Timers::default()
    }

    /// Arms a timer that is due at `deadline` (ms on the loop clock).
    pub fn insert(&mut self, deadline: u64, payload: T) -> TimerId {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let key = self.slots.insert(Slot {
            deadline,
            generation,
            payload,
        }) as u32;
        self.heap.push(Reverse((deadline, key, generation)));
        TimerId { key, generation }
    }

    fn slot_mut(&mut self, id: TimerId) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(id.key as usize)
            .filter(|s| s.generation == id.generation)
    }

    /// Disarms a timer and returns its payload; `None` if it already fired
    /// or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.slot_mut(id)?;
        let slot = self.slots.remove(id.key as usize);
        self.settle();
        self.maybe_compact();
        Some(slot.payload)
    }

    /// Drops dead entries (of cancelled or fired timers) from the top of
    /// the heap, so that its top is always a live timer's: called after
    /// every removal, so that [`Timers::next_deadline`], read every loop
    /// turn, is one look at the top and a dead entry never causes a wake-up.
    fn settle(&mut self) {
        while let Some(&Reverse((_, key, generation))) = self.heap.peek() {
            match self.slots.get(key as usize) {
                Some(s) if s.generation == generation => break,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }

    /// Moves a timer's deadline. Later deadlines cost no heap work and no
    /// allocation; earlier ones push a new heap entry. Returns false if the
    /// timer already fired or was cancelled.
    pub fn reset(&mut self, id: TimerId, deadline: u64) -> bool {
        let Some(slot) = self.slot_mut(id) else {
            return false;
        };
        let earlier = deadline < slot.deadline;
        slot.deadline = deadline;
        if earlier {
            self.heap.push(Reverse((deadline, id.key, id.generation)));
        }
        true
    }

    /// The deadline of a live timer.
    pub fn deadline(&self, id: TimerId) -> Option<u64> {
        self.slots
            .get(id.key as usize)
            .filter(|s| s.generation == id.generation)
            .map(|s| s.deadline)
    }

    /// The earliest deadline that may be due, for the poll timeout. It can
    /// be earlier than the true next expiry (the old entry of a timer
    /// postponed by [`Timers::reset`] surfaces first); the loop then wakes
    /// once, moves it, and waits again. Entries of cancelled or fired timers
    /// never surface here: every removal drops them from the top of the
    /// heap, so this is one look at it.
    #[inline]
    pub fn next_deadline(&mut self) -> Option<u64> {
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// Whether [`Timers::pop_expired`] may find a timer due at `now`: the
    /// earliest entry of the heap is due (it may be a cancelled one, which
    /// `pop_expired` drops). False means no timer is due.
    #[inline]
    pub fn may_be_due(&self, now: u64) -> bool {
        matches!(self.heap.peek(), Some(Reverse((d, _, _))) if *d <= now)
    }

    /// Removes and returns one timer that is due at `now`, earliest first.
    pub fn pop_expired(&mut self, now: u64) -> Option<(TimerId, T)> {
        while let Some(&Reverse((deadline, key, generation))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let Some(slot) = self.slots.get(key as usize) else {
                continue; // cancelled
            };
            if slot.generation != generation || slot.deadline < deadline {
                continue; // cancelled and reused, or superseded by an earlier entry
            }
            if slot.deadline > deadline {
                // Postponed by reset(): carry it to its new deadline.
                let d = slot.deadline;
                self.heap.push(Reverse((d, key, generation)));
                continue;
            }
            let slot = self.slots.remove(key as usize);
            self.settle();
            return Some((TimerId { key, generation }, slot.payload));
        }
        self.settle();
        None
    }

    /// How many timers are armed.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn maybe_compact(&mut self) {
        // Cancelled entries stay in the heap until they surface; keep them
        // from outnumbering the live ones (bounded memory under churn).
        if self.heap.len() > 1024 && self.heap.len() > 4 * self.slots.len() {
            let slots = &self.slots;
            let live: Vec<_> = std::mem::take(&mut self.heap)
                .into_vec()
                .into_iter()
                .filter(|Reverse((d, key, generation))| {
                    matches!(slots.get(*key as usize),
                        Some(s) if s.generation == *generation && s.deadline >= *d)
                })
                .collect();
            self.heap = BinaryHeap::from(live);
        }
    }
}

/// The loop's monotonic millisecond clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start_ns: u64,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn new() -> Clock {
        Clock {
            start_ns: mono_ns(),
        }
    }

    #[inline]
    fn elapsed_ns(&self) -> u64 {
        mono_ns().saturating_sub(self.start_ns)
    }

    /// Milliseconds since the clock started, rounded down.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        self.elapsed_ns() / 1_000_000
    }

    /// The deadline for a timer armed now that must not fire before `after`
    /// has passed: the current time is rounded *up*, then `after` is added
    /// rounded up, so rounding never makes a timer fire early.
    pub fn deadline_after(&self, after: Duration) -> u64 {
        self.elapsed_ns()
            .div_ceil(1_000_000)
            .saturating_add(ceil_ms(after))
    }

    /// The `CLOCK_MONOTONIC` time, in nanoseconds, of `ms` on this clock:
    /// what a timerfd armed with `TFD_TIMER_ABSTIME` for that deadline is
    /// given.
    pub fn monotonic_ns_at(&self, ms: u64) -> u64 {
        self.start_ns.saturating_add(ms.saturating_mul(1_000_000))
    }

    /// How long from `now` (ms on this clock) until `deadline`, in whole
    /// milliseconds (zero if it has passed).
    pub fn until(&self, now: u64, deadline: u64) -> Duration {
        Duration::from_millis(deadline.saturating_sub(now))
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds. It cannot fail on Linux; if it ever
/// did, `Instant` (the same clock through std) is the fallback. Inlined:
/// the loop reads it whenever its timers fire.
#[inline]
fn mono_ns() -> u64 {
    match crate::sys::time::monotonic_ns() {
        Ok(ns) => ns,
        Err(_) => mono_ns_fallback(),
    }
}

#[cold]
#[inline(never)]
fn mono_ns_fallback() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Whole milliseconds in `d`, rounded up (64-bit arithmetic only: this runs
/// every loop turn).
pub fn ceil_ms(d: Duration) -> u64 {
    let ms = d.as_secs().saturating_mul(1000);
    ms.saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_in_deadline_order_and_skip_cancelled() {
        let mut t = Timers::new();
        let a = t.insert(30, "a");
        t.insert(10, "b");
        t.insert(20, "c");
        assert_eq!(t.cancel(a), Some("a"));
        assert_eq!(t.cancel(a), None, "a second cancel is a no-op");
        assert_eq!(t.next_deadline(), Some(10));
        assert_eq!(t.pop_expired(5).map(|x| x.1), None);
        assert_eq!(t.pop_expired(25).map(|x| x.1), Some("b"));
        assert_eq!(t.pop_expired(25).map(|x| x.1), Some("c"));
        assert_eq!(t.pop_expired(100).map(|x| x.1), None);
        assert!(t.is_empty());
    }

    /// The loop's wait is bounded by `next_deadline`, which only looks at
    /// the top of the heap: a cancelled or fired timer's entry must never
    /// be there, or the loop would wake for nothing.
    #[test]
    fn next_deadline_never_names_a_dead_timer() {
        let mut t = Timers::new();
        let a = t.insert(10, "a");
        let b = t.insert(20, "b");
        t.insert(30, "c");
        assert_eq!(t.cancel(a), Some("a"));
        assert_eq!(t.next_deadline(), Some(20), "a cancelled top is dropped");
        // An earlier reset leaves b's old entry behind: once b fires, that
        // entry is dead and must not bound the wait either.
        assert!(t.reset(b, 15));
        assert_eq!(t.next_deadline(), Some(15));
        assert_eq!(t.pop_expired(16).map(|x| x.1), Some("b"));
        assert_eq!(t.next_deadline(), Some(30), "b's stale entry is dropped");
        assert_eq!(t.pop_expired(29).map(|x| x.1), None);
        assert_eq!(t.next_deadline(), Some(30));
        // The last live timer cancelled: nothing bounds the wait.
        let d = t.insert(40, "d");
        assert_eq!(t.pop_expired(30).map(|x| x.1), Some("c"));
        assert_eq!(t.cancel(d), Some("d"));
        assert_eq!(t.next_deadline(), None);
        assert!(t.is_empty());
    }

    #[test]
    fn reset_later_is_lazy_and_reset_earlier_fires_early() {
        let mut t = Timers::new();
        let id = t.insert(10, 1);
        let heap_before = t.heap.len();
        assert!(t.reset(id, 50));
        assert_eq!(t.heap.len(), heap_before, "postponing pushes nothing");
        assert_eq!(
            t.pop_expired(10),
            None,
            "postponed entry is carried, not fired"
        );
        assert_eq!(t.pop_expired(49), None);
        assert_eq!(t.pop_expired(50).map(|x| x.1), Some(1));

        let id = t.insert(100, 2);
        assert!(t.reset(id, 40));
        assert_eq!(t.pop_expired(40).map(|x| x.1), Some(2));
        assert_eq!(t.pop_expired(1000), None, "the superseded entry is skipped");
    }

    #[test]
    fn cancelled_entries_are_compacted() {
        let mut t = Timers::new();
        for i in 0..10_000u64 {
            let id = t.insert(1_000_000 + i, i);
            t.cancel(id);
        }
        assert!(
            t.heap.len() <= 1025,
            "heap holds {} leftovers",
            t.heap.len()
        );
    }

    #[test]
    fn deadlines_never_round_down() {
        let c = Clock::new();
        let d = c.deadline_after(Duration::from_micros(1));
        assert!(d >= 1);
        assert!(c.until(c.now_ms(), d) <= Duration::from_millis(2));
        assert_eq!(ceil_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_ms(Duration::from_millis(5)), 5);
        assert_eq!(ceil_ms(Duration::new(2, 1)), 2001);
    }
}
