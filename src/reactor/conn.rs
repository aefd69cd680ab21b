//! A connection's state in the slab, and the loop's work on it: the read
//! path, the write path, and the three ways of closing.
//!
//! Readiness is edge-triggered, so the loop remembers it in two flags:
//! `READABLE` is set by an EPOLLIN/EPOLLRDHUP edge and cleared only when a
//! read comes back short or with EAGAIN; `WRITABLE` is set by EPOLLOUT and
//! cleared when a send is short or fails with EAGAIN. A connection that
//! stops reading while still `READABLE` (fairness cap, paused by the user or
//! by backpressure) is put on the ready list when it may read again, because
//! no new edge will come for bytes that are already queued.

use crate::buffer::Buffer;
use crate::io::{read_available, IoStatus, ReadOutcome};
use crate::poll::Ready;
use crate::reactor::event_loop::{Core, Entry, TimerTask, READS_PER_TURN, READ_CHUNK};
use crate::reactor::handler::{CloseReason, Handler};
use crate::sys;
use crate::timer::TimerId;
use crate::token::Token;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, OwnedFd};

/// Writes at least this large, with nothing queued ahead of them, are sent
/// at once instead of being copied into the shared out-scratch.
pub(crate) const DIRECT_WRITE: usize = 1024;
/// The most bytes a callback's small writes are batched in the shared
/// out-scratch before they are offered to the kernel (then at once, with
/// the write that would overfill the batch).
pub(crate) const OUT_BATCH: usize = 64 * 1024;

/// A connection's state bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Flags(u32);

impl Flags {
    /// The kernel may have bytes (or EOF) for us. The same bit as
    /// `EPOLLIN` (see [`readiness_flags`]).
    pub(crate) const READABLE: Flags = Flags(1);
    /// Non-blocking connect in progress.
    pub(crate) const CONNECTING: Flags = Flags(1 << 1);
    /// The send buffer may have room. The same bit as `EPOLLOUT`.
    pub(crate) const WRITABLE: Flags = Flags(1 << 2);
    /// The peer's FIN has been read.
    pub(crate) const PEER_FIN: Flags = Flags(1 << 3);
    /// The user paused reading.
    pub(crate) const USER_PAUSED: Flags = Flags(1 << 4);
    /// Backpressure paused reading (output above the high-water mark).
    pub(crate) const HW_PAUSED: Flags = Flags(1 << 5);
    /// Close once the output is flushed.
    pub(crate) const CLOSE_REQ: Flags = Flags(1 << 6);
    /// Shut down our writing side once the output is flushed.
    pub(crate) const SHUT_WR_REQ: Flags = Flags(1 << 7);
    /// Our FIN has been sent.
    pub(crate) const WR_SHUT: Flags = Flags(1 << 8);
    /// Finished: waiting to be reaped at the end of the turn.
    pub(crate) const CLOSED: Flags = Flags(1 << 9);
    /// On the ready list.
    pub(crate) const IN_READY: Flags = Flags(1 << 10);
    /// EPOLLRDHUP seen: the peer's FIN is queued behind the data.
    pub(crate) const RDHUP: Flags = Flags(1 << 11);
    /// Output was queued: tell the handler when it drains.
    pub(crate) const WANT_DRAIN: Flags = Flags(1 << 12);
    /// On the drain list.
    pub(crate) const IN_DRAIN: Flags = Flags(1 << 13);
    /// The handler asked for `on_drain` once output is at or below the
    /// low-water mark (`Context::notify_writable`).
    pub(crate) const NOTIFY_WRITABLE: Flags = Flags(1 << 14);
    /// Resumed from a user pause with input buffered: deliver it again on
    /// the ready-list pass even if no new byte arrives.
    pub(crate) const REDELIVER: Flags = Flags(1 << 15);
    /// The connection speaks TLS: mirrors `Conn::tls` (set with it, by
    /// `Conn::set_tls`, never cleared), so that the read and the send hot
    /// paths send a TLS connection to its own path inside the flag tests
    /// they make anyway: a plain connection pays no branch for TLS there.
    pub(crate) const TLS: Flags = Flags(1 << 16);
    /// Bytes were read or sent since the last idle check: how a stream
    /// that is not TCP shows it is not idle (see `Core::idle_check`; a
    /// TCP connection's silence is asked of the kernel).
    pub(crate) const ACTIVE: Flags = Flags(1 << 17);

    #[inline]
    pub(crate) fn contains(self, f: Flags) -> bool {
        self.0 & f.0 == f.0
    }
    #[inline]
    pub(crate) fn any(self, f: Flags) -> bool {
        self.0 & f.0 != 0
    }
    #[inline]
    pub(crate) fn insert(&mut self, f: Flags) {
        self.0 |= f.0;
    }
    #[inline]
    pub(crate) fn remove(&mut self, f: Flags) {
        self.0 &= !f.0;
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

/// One connection's state, stored in the slab.
pub(crate) struct Conn {
    pub(crate) fd: OwnedFd,
    pub(crate) flags: Flags,
    pub(crate) profile: u16,
    pub(crate) input: Buffer,
    pub(crate) output: Buffer,
    pub(crate) handler: Option<Box<dyn Handler>>,
    /// When the connection was last known to be active (ms on the loop's
    /// clock): its opening, or the last idle check that found
    /// `Flags::ACTIVE` set. Used for streams that are not TCP only.
    pub(crate) last_active: u64,
    pub(crate) idle_timer: Option<TimerId>,
    /// TLS connections: the session and its state (see reactor/tls.rs).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Box<crate::reactor::tls::TlsState>>,
}

impl Conn {
    pub(crate) fn new(
        fd: OwnedFd,
        profile: u16,
        handler: Box<dyn Handler>,
        connecting: bool,
    ) -> Conn {
        let mut flags = Flags::default();
        if connecting {
            flags.insert(Flags::CONNECTING);
        } else {
            flags.insert(Flags::WRITABLE);
        }
        Conn {
            fd,
            flags,
            profile,
            input: Buffer::new(),
            output: Buffer::new(),
            handler: Some(handler),
            last_active: 0,
            idle_timer: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Makes this a TLS connection: its session, and the `TLS` flag.
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, state: Box<crate::reactor::tls::TlsState>) {
        self.tls = Some(state);
        self.flags.insert(Flags::TLS);
    }

    /// Bytes queued for the peer: the output buffer, plus (TLS) what was
    /// written before the handshake finished.
    pub(crate) fn queued_len(&self) -> usize {
        #[cfg(feature = "tls")]
        if let Some(t) = &self.tls {
            return self.output.len() + t.early.len();
        }
        self.output.len()
    }

    /// Whether a callback's small writes may go straight into the shared
    /// out-scratch (`Context`'s `batching`): connected, not closing or shut
    /// down for writing, nothing queued.
    #[inline]
    pub(crate) fn may_batch(&self) -> bool {
        !self.flags.any(
            Flags::CLOSED
                | Flags::CLOSE_REQ
                | Flags::SHUT_WR_REQ
                | Flags::WR_SHUT
                | Flags::CONNECTING,
        ) && self.output.is_empty()
    }

    /// Buffered input is owed a new delivery and nothing stops it.
    pub(crate) fn may_redeliver(&self) -> bool {
        self.flags.contains(Flags::REDELIVER)
            && !self.input.is_empty()
            && !self.flags.any(
                Flags::USER_PAUSED
                    | Flags::HW_PAUSED
                    | Flags::CLOSED
                    | Flags::CLOSE_REQ
                    | Flags::CONNECTING,
            )
    }

    fn may_read(&self) -> bool {
        self.flags.contains(Flags::READABLE)
            && !self
                .flags
                .any(Flags::USER_PAUSED | Flags::HW_PAUSED | Flags::CLOSED | Flags::CONNECTING)
    }
}

impl Core {
    /// An epoll event for a connection.
    pub(crate) fn conn_event(&mut self, tok: Token, ready: Ready, scratch_in: &mut Buffer) {
        let Some(mut c) = self.conn_mut(tok) else {
            return;
        };
        if c.flags.any(Flags::CLOSED | Flags::CONNECTING) {
            if c.flags.contains(Flags::CLOSED) {
                return; // closed earlier in this batch: the event is stale
            }
            if ready.is_writable() || ready.is_error() || ready.is_hup() {
                self.finish_connect(tok);
            }
            let Some(again) = self.conn_mut(tok) else {
                return;
            };
            if again.flags.any(Flags::CONNECTING | Flags::CLOSED) {
                return;
            }
            c = again;
        }
        c.flags.insert(readiness_flags(ready));
        if (ready.is_writable() || ready.is_error()) && !c.output.is_empty() {
            self.flush_output(tok);
        }
        self.read_ready(tok, scratch_in);
    }

    /// The writability that ends a non-blocking connect: SO_ERROR says how.
    fn finish_connect(&mut self, tok: Token) {
        let Some(c) = self.conn_mut(tok) else { return };
        match sys::sockopt::take_error(c.fd.as_fd()) {
            Ok(None) => {
                c.flags.remove(Flags::CONNECTING);
                c.flags.insert(Flags::WRITABLE);
                self.start_idle_timer(tok);
                #[cfg(feature = "tls")]
                if self.conn(tok).is_some_and(|c| c.tls.is_some()) {
                    return self.tls_connected(tok); // on_open after the handshake
                }
                self.with_handler(tok, |h, ctx| h.on_open(ctx));
                // Bytes written while connecting were queued: send them.
                if self.conn(tok).is_some_and(|c| !c.output.is_empty()) {
                    self.flush_output(tok);
                }
            }
            Ok(Some(e)) | Err(e) => self.finish(tok, CloseReason::ConnectFailed(e)),
        }
    }

    /// Reads while the connection is readable and may read, at most
    /// `READS_PER_TURN` times, delivering each chunk to the handler.
    ///
    /// `scratch_in` is the loop's shared read buffer (64 KiB, kept outside
    /// `Core` so that a handler can be given it without moving it).
    pub(crate) fn read_ready(&mut self, tok: Token, scratch_in: &mut Buffer) {
        self.read_loop(tok, None, scratch_in);
    }

    /// The epoll event `ready` for `tok`, which may name a connection: the
    /// read loop's first lookup is the event's only one. A connected
    /// connection that is readable, or writable with nothing queued, only
    /// needs its flags set before the reads; connecting, closed, or output
    /// waiting for EPOLLOUT: the general path (`conn_event`). A token that
    /// names something else goes to `dispatch_other`.
    /// Always inlined: with the `tls` feature the turn grew past what
    /// LLVM inlines by itself, and an out-of-line call here cost the plain
    /// echo 31 instructions per round trip (329 against 298).
    #[inline(always)]
    pub(crate) fn conn_ready(&mut self, tok: Token, ready: Ready, scratch_in: &mut Buffer) {
        self.read_loop(tok, Some(ready), scratch_in);
    }

    /// [`Core::read_ready`], and with `event` the dispatch of that event
    /// (see [`Core::conn_ready`]) done with the first read's lookup. The
    /// first read is inline (usually the only one: a short read means
    /// drained); the others of the turn's `READS_PER_TURN` are out of line.
    #[inline(always)]
    fn read_loop(&mut self, tok: Token, event: Option<Ready>, scratch_in: &mut Buffer) {
        if self.read_step(tok, event, scratch_in) {
            self.read_more(tok, scratch_in);
        }
    }

    /// The reads after the first one of a turn.
    #[inline(never)]
    fn read_more(&mut self, tok: Token, scratch_in: &mut Buffer) {
        for _ in 1..READS_PER_TURN {
            if !self.read_step(tok, None, scratch_in) {
                return;
            }
        }
        // Fairness cap reached with bytes still queued: continue next turn.
        self.push_ready(tok);
    }

    /// One read of `tok` and the delivery of what it brought (with `event`:
    /// the event's dispatch first). True when the connection may have more
    /// to read now.
    #[inline(always)]
    fn read_step(&mut self, tok: Token, event: Option<Ready>, scratch_in: &mut Buffer) -> bool {
        let Core { entries, stats, .. } = self;
        let Some(Entry::Conn(c)) = entries.get_mut(tok) else {
            if let Some(ready) = event {
                self.dispatch_other(tok, ready);
            }
            return false;
        };
        if let Some(ready) = event {
            if c.flags.any(Flags::CLOSED | Flags::CONNECTING)
                || (!c.output.is_empty() && (ready.is_writable() || ready.is_error()))
            {
                self.conn_event(tok, ready, scratch_in);
                return false;
            }
            c.flags.insert(readiness_flags(ready));
        }
        // One test for the usual case: readable, not paused, open, plain.
        const READ_MASK: u32 = Flags::READABLE.0
            | Flags::USER_PAUSED.0
            | Flags::HW_PAUSED.0
            | Flags::CLOSED.0
            | Flags::CONNECTING.0
            | Flags::TLS.0;
        #[cfg(feature = "tls")]
        debug_assert_eq!(c.flags.contains(Flags::TLS), c.tls.is_some());
        // (Without the `tls` feature the block holds only the first test.)
        #[allow(clippy::collapsible_if)]
        if c.flags.0 & READ_MASK != Flags::READABLE.0 {
            if !c.may_read() {
                return false;
            }
            #[cfg(feature = "tls")]
            if c.tls.is_some() {
                self.tls_read_ready(tok, scratch_in);
                return false;
            }
        }
        // Empty input buffer: read into the loop's shared 64 KiB buffer,
        // so a connection holds no buffer of its own between messages.
        // Otherwise append to its buffer, spilling into the shared one.
        let from_scratch = c.input.is_empty();
        let outcome = if from_scratch {
            // The whole shared buffer (made whole again here if a
            // handler replaced it): its spare room is the whole chunk.
            let space = fresh_scratch(scratch_in);
            let want = space.len();
            match sys::io::read(c.fd.as_fd(), space) {
                Ok(0) => ReadOutcome::Stop(IoStatus::Eof),
                Ok(n) => {
                    scratch_in.commit_read(n);
                    ReadOutcome::Data {
                        n,
                        drained: n < want,
                    }
                }
                Err(e) => ReadOutcome::Stop(IoStatus::from_error(e)),
            }
        } else {
            // The buffer's maximum is the config's max_input (set at
            // open), and it holds at most that between callbacks. The
            // limit is on *unconsumed* input, so the handler must see
            // the bytes before we judge: let this read take the buffer
            // up to one chunk past the maximum (nothing read is ever
            // dropped), and judge after on_data (`deliver`).
            let max_input = c.input.max();
            c.input.set_max(max_input.saturating_add(READ_CHUNK));
            let spill = fresh_scratch(scratch_in);
            let outcome = read_available(c.fd.as_fd(), &mut c.input, spill);
            c.input.set_max(max_input);
            outcome
        };
        match outcome {
            ReadOutcome::Data { n, drained } => {
                stats.bytes_in += n as u64;
                let mut f = c.flags;
                f.insert(Flags::ACTIVE);
                if drained {
                    f.remove(Flags::READABLE);
                }
                c.flags = f;
                let eof_next = drained && c.flags.contains(Flags::RDHUP);
                if c.flags.contains(Flags::CLOSE_REQ) {
                    // Closing: discard what still arrives.
                    c.input.release();
                    scratch_in.clear();
                } else if let Some(handler) = c.handler.take() {
                    // Taken here, with the connection in hand (may_read:
                    // it is open), rather than found again.
                    let batching = c.may_batch();
                    if from_scratch {
                        self.deliver_scratch(tok, scratch_in, handler, batching);
                    } else {
                        c.flags.remove(Flags::REDELIVER); // delivered now
                        let input = std::mem::take(&mut c.input);
                        self.deliver_own(tok, input, handler, batching);
                    }
                } else {
                    // No handler to call (inside its own callback: not
                    // on this path, but keep the bytes as deliver would).
                    let kept = !from_scratch || c.input.extend(scratch_in.as_slice()).is_ok();
                    scratch_in.clear();
                    if !kept {
                        self.abort_with(tok, CloseReason::InputLimit);
                        return false;
                    }
                }
                if eof_next {
                    // EPOLLRDHUP and a short read: the FIN is next; no
                    // need to spend a read to see the 0.
                    self.peer_fin(tok);
                    return false;
                }
                if drained {
                    // Not READABLE any more (only an event sets it
                    // again): the next round would stop; stop here.
                    return false;
                }
            }
            ReadOutcome::Stop(IoStatus::WouldBlock) => {
                c.flags.remove(Flags::READABLE);
                return false;
            }
            ReadOutcome::Stop(IoStatus::Eof) => {
                self.peer_fin(tok);
                return false;
            }
            ReadOutcome::Stop(IoStatus::Reset) => {
                self.finish(tok, CloseReason::Reset);
                return false;
            }
            ReadOutcome::Stop(IoStatus::Error(e)) if e.kind() == io::ErrorKind::OutOfMemory => {
                self.abort_with(tok, CloseReason::InputLimit);
                return false;
            }
            ReadOutcome::Stop(IoStatus::Error(e)) => {
                self.finish(tok, CloseReason::Error(e));
                return false;
            }
            ReadOutcome::Stop(IoStatus::BrokenPipe | IoStatus::Done) => {
                self.finish(tok, CloseReason::BrokenPipe);
                return false;
            }
        }
        true
    }

    pub(crate) fn push_ready(&mut self, tok: Token) {
        if let Some(c) = self.conn_mut(tok) {
            if (c.may_read() || c.may_redeliver()) && !c.flags.contains(Flags::IN_READY) {
                c.flags.insert(Flags::IN_READY);
                self.schedule_ready(tok);
            }
        }
    }

    /// Hands what the shared read buffer holds to the handler (`handler`,
    /// taken from the connection). Bytes it leaves unconsumed move into the
    /// connection's own buffer; the shared one is left empty (and whole:
    /// see below).
    #[inline(always)]
    fn deliver_scratch(
        &mut self,
        tok: Token,
        input: &mut Buffer,
        handler: Box<dyn Handler>,
        batching: bool,
    ) {
        self.run_handler(tok, handler, batching, |h, ctx| h.on_data(ctx, input));
        let kept = input.is_empty()
            || match self.conn_mut(tok) {
                Some(c) => c.input.extend(input.as_slice()).is_ok(),
                None => true,
            };
        // Left as the handler left it: every reader of the shared buffer
        // empties it first, and makes it whole again if the handler
        // replaced or resized it (`fresh_scratch`).
        if !kept {
            self.abort_with(tok, CloseReason::InputLimit);
        }
    }

    /// Delivers the connection's buffered input again (resumed with input
    /// buffered: `resume_reading`), as the read path delivers its own.
    pub(crate) fn redeliver(&mut self, tok: Token) {
        let Some(c) = self.conn_mut(tok) else { return };
        if c.flags.contains(Flags::CLOSED) {
            return;
        }
        let Some(handler) = c.handler.take() else {
            return;
        };
        c.flags.remove(Flags::REDELIVER); // delivered now
        let batching = c.may_batch();
        let input = std::mem::take(&mut c.input);
        self.deliver_own(tok, input, handler, batching);
    }

    /// Hands the connection's own input buffer (taken out of it) to the
    /// handler, and puts it back.
    fn deliver_own(
        &mut self,
        tok: Token,
        mut input: Buffer,
        handler: Box<dyn Handler>,
        batching: bool,
    ) {
        self.run_handler(tok, handler, batching, |h, ctx| h.on_data(ctx, &mut input));
        if let Some(c) = self.conn_mut(tok) {
            let over = input.len() > input.max();
            if input.is_empty() {
                input.release(); // drained: an idle connection holds nothing
            }
            c.input = input;
            if over {
                // The handler saw it all and left more than max_input.
                self.abort_with(tok, CloseReason::InputLimit);
            }
        }
    }
}

impl Conn {
    /// Sends a top-level callback's batch on the hot path: a writable
    /// connection with nothing queued and no close or half-close asked for
    /// sends it in one call, straight from the scratch; when the kernel
    /// takes all of it there is nothing else to do (check_state would find
    /// no queue and no request). `General`: `after_callback` must run (the
    /// rest of a short send is left in the scratch for it to queue, and
    /// WRITABLE cleared so that it does not offer it again).
    #[inline(always)]
    pub(crate) fn send_batch(
        &mut self,
        scratch_out: &mut Buffer,
        stats: &mut crate::reactor::stats::LoopStats,
    ) -> Batch {
        // One test: writable, and nothing asked or pending that the
        // general path must see. A TLS connection's plaintext must go
        // through its session (the general path encrypts it), so TLS is
        // in the same test. (A callback that wrote nothing takes the
        // general path too when the test fails, which then finds nothing
        // to do.)
        const SEND_MASK: u32 = Flags::CLOSED.0
            | Flags::CONNECTING.0
            | Flags::CLOSE_REQ.0
            | Flags::SHUT_WR_REQ.0
            | Flags::WR_SHUT.0
            | Flags::NOTIFY_WRITABLE.0
            | Flags::WRITABLE.0
            | Flags::TLS.0;
        #[cfg(feature = "tls")]
        debug_assert_eq!(self.flags.contains(Flags::TLS), self.tls.is_some());
        if self.flags.0 & SEND_MASK != Flags::WRITABLE.0 || !self.output.is_empty() {
            return Batch::General;
        }
        let batch = scratch_out.as_slice();
        if batch.is_empty() {
            return Batch::Done;
        }
        match sys::io::send(self.fd.as_fd(), batch) {
            Ok(n) => {
                stats.bytes_out += n as u64;
                self.flags.insert(Flags::ACTIVE);
                if n == batch.len() {
                    scratch_out.clear();
                    return Batch::Done;
                }
                self.flags.remove(Flags::WRITABLE);
                scratch_out.consume(n);
                Batch::General
            }
            Err(e) => match IoStatus::from_error(e) {
                IoStatus::WouldBlock => {
                    self.flags.remove(Flags::WRITABLE);
                    Batch::General
                }
                status => {
                    scratch_out.clear();
                    Batch::Failed(status)
                }
            },
        }
    }
}

/// What [`Conn::send_batch`] did.
pub(crate) enum Batch {
    /// Sent (or nothing to send): nothing else to do.
    Done,
    /// `after_callback` must queue the rest or apply what was asked.
    General,
    /// The send failed: close with this status.
    Failed(IoStatus),
}

/// The flags an epoll event sets. The usual events (readable, writable,
/// or both, and nothing else) map bit for bit: `READABLE` is `EPOLLIN`'s
/// bit and `WRITABLE` `EPOLLOUT`'s.
#[inline]
pub(crate) fn readiness_flags(ready: Ready) -> Flags {
    const IN: u32 = sys::epoll::EPOLLIN as u32;
    const OUT: u32 = sys::epoll::EPOLLOUT as u32;
    const _: () = assert!(Flags::READABLE.0 == IN && Flags::WRITABLE.0 == OUT);
    let bits = ready.bits();
    if bits & !(IN | OUT) == 0 {
        return Flags(bits);
    }
    readiness_flags_slow(ready)
}

#[cold]
#[inline(never)]
fn readiness_flags_slow(ready: Ready) -> Flags {
    let mut f = Flags::default();
    if ready.is_read_closed() {
        f.insert(Flags::RDHUP);
    }
    if ready.is_readable() || ready.is_read_closed() || ready.is_error() {
        f.insert(Flags::READABLE);
    }
    if ready.is_writable() || ready.is_error() {
        f.insert(Flags::WRITABLE);
    }
    f
}

impl Core {
    /// After any callback on `tok`: send what it wrote (one send for all of
    /// it), queue the rest, apply backpressure and pending closes.
    pub(crate) fn after_callback(&mut self, tok: Token) {
        let Core {
            entries,
            scratch_out,
            stats,
            ..
        } = self;
        if let Some(Entry::Conn(c)) = entries.get_mut(tok) {
            match c.send_batch(scratch_out, stats) {
                Batch::Done => return,
                Batch::Failed(status) => return self.write_failed(tok, status),
                Batch::General => {}
            }
        }
        if !self.scratch_out.is_empty() {
            let mut out = std::mem::take(&mut self.scratch_out);
            // A failure has closed the connection; the handler hears of it
            // in on_close.
            let _ = self.send_or_queue(tok, out.as_slice(), &[]);
            out.clear();
            self.scratch_out = out;
        }
        self.check_state(tok);
    }

    /// Offers the connection's queued output, then `head`, then `data` to
    /// the kernel in one `send`/`sendmsg` when the socket may take them,
    /// and queues what it does not take. Queued output is offered again
    /// only as a last chance before the limit trips (an eager reader may
    /// have made room since the last short send): bytes the kernel takes
    /// never count against `max_output`.
    ///
    /// # Errors
    /// `OutOfMemory` when the bytes left queued would exceed `max_output`
    /// (the connection is then aborted with `OutputLimit`); `BrokenPipe`
    /// when the connection is closed or the send failed (it is then closed
    /// with the send's reason).
    pub(crate) fn send_or_queue(&mut self, tok: Token, head: &[u8], data: &[u8]) -> io::Result<()> {
        let Some(Entry::Conn(c)) = self.entries.get_mut(tok) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if c.flags.contains(Flags::CLOSED) {
            return Err(closing_error());
        }
        #[cfg(feature = "tls")]
        if c.tls.is_some() {
            return self.tls_send(tok, head, data);
        }
        let queued = c.output.len();
        let total = queued + head.len() + data.len();
        let mut sent = 0;
        if total > 0 && !c.flags.contains(Flags::CONNECTING) {
            let offer = if queued == 0 {
                c.flags.contains(Flags::WRITABLE)
            } else {
                // Normally a queue means the last send was short and we wait
                // for EPOLLOUT; but before the limit trips, try once more.
                c.flags.contains(Flags::WRITABLE)
                    || total > self.profiles[c.profile as usize].config.max_output
            };
            if offer {
                let res = if queued == 0 && data.is_empty() {
                    // The common case: the end of a callback, its batch.
                    sys::io::send(c.fd.as_fd(), head)
                } else if queued == 0 && head.is_empty() {
                    sys::io::send(c.fd.as_fd(), data)
                } else {
                    let parts = [c.output.as_slice(), head, data];
                    let mut iov = [IoSlice::new(&[]); 3];
                    let mut cnt = 0;
                    for p in parts.iter().filter(|p| !p.is_empty()) {
                        iov[cnt] = IoSlice::new(p);
                        cnt += 1;
                    }
                    sys::io::send_vectored(c.fd.as_fd(), &iov[..cnt])
                };
                match res {
                    Ok(n) => {
                        sent = n;
                        self.stats.bytes_out += n as u64;
                        c.flags.insert(Flags::ACTIVE);
                        if n < total {
                            c.flags.remove(Flags::WRITABLE);
                        } else {
                            c.flags.insert(Flags::WRITABLE);
                        }
                    }
                    Err(e) => match IoStatus::from_error(e) {
                        IoStatus::WouldBlock => c.flags.remove(Flags::WRITABLE),
                        status => {
                            self.write_failed(tok, status);
                            return Err(closing_error());
                        }
                    },
                }
            }
        }
        if sent == total {
            if queued > 0 {
                // The last-chance send took the whole queue.
                self.output_drained(tok);
            }
            return Ok(());
        }
        // What the kernel did not take, in order: queue, head, data.
        let from_queue = sent.min(queued);
        c.output.consume(from_queue);
        let rest = sent - from_queue;
        let head_rest = &head[rest.min(head.len())..];
        let data_rest = &data[rest.saturating_sub(head.len())..];
        let max = self.profiles[c.profile as usize].config.max_output;
        let left = c.output.len() + head_rest.len() + data_rest.len();
        if left > max {
            self.abort_with(tok, CloseReason::OutputLimit);
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("output limit: {left} bytes not taken by the kernel, maximum {max}"),
            ));
        }
        c.output.set_max(usize::MAX); // the limit is enforced above
        let _ = c.output.extend(head_rest);
        let _ = c.output.extend(data_rest);
        c.flags.insert(Flags::WANT_DRAIN);
        Ok(())
    }

    /// The queued output was sent outside `flush_output` (by a last-chance
    /// send): release the buffer, lift backpressure, and let the handler
    /// hear `on_drain` from the drain list (it may be in a callback now).
    fn output_drained(&mut self, tok: Token) {
        let Some(c) = self.conn_mut(tok) else { return };
        c.output.release();
        let resumed = c.flags.contains(Flags::HW_PAUSED);
        c.flags.remove(Flags::HW_PAUSED);
        if c.flags.contains(Flags::WANT_DRAIN) {
            self.push_drain(tok);
        }
        if resumed {
            self.push_ready(tok);
        }
    }

    /// Puts `tok` on the drain list: `on_drain` is called for it at the end
    /// of this turn's dispatch, outside any of its callbacks.
    pub(crate) fn push_drain(&mut self, tok: Token) {
        if let Some(c) = self.conn_mut(tok) {
            if !c.flags.contains(Flags::IN_DRAIN) {
                c.flags.insert(Flags::IN_DRAIN);
                self.drains.push(tok);
                self.tail = true;
            }
        }
    }

    pub(crate) fn write_failed(&mut self, tok: Token, status: IoStatus) {
        let reason = match status {
            IoStatus::Reset => CloseReason::Reset,
            IoStatus::BrokenPipe => CloseReason::BrokenPipe,
            IoStatus::Error(e) => CloseReason::Error(e),
            _ => CloseReason::BrokenPipe,
        };
        self.finish(tok, reason);
    }

    /// EPOLLOUT with queued output: send as much as the socket takes.
    pub(crate) fn flush_output(&mut self, tok: Token) {
        let Core { entries, stats, .. } = self;
        let Some(Entry::Conn(c)) = entries.get_mut(tok) else {
            return;
        };
        while !c.output.is_empty() && c.flags.contains(Flags::WRITABLE) {
            let len = c.output.len();
            match sys::io::send(c.fd.as_fd(), c.output.as_slice()) {
                Ok(n) => {
                    stats.bytes_out += n as u64;
                    c.output.consume(n);
                    c.flags.insert(Flags::ACTIVE);
                    if n < len {
                        c.flags.remove(Flags::WRITABLE);
                    }
                }
                Err(e) => match IoStatus::from_error(e) {
                    IoStatus::WouldBlock => c.flags.remove(Flags::WRITABLE),
                    status => return self.write_failed(tok, status),
                },
            }
        }
        if c.output.is_empty() {
            c.output.release();
            let resumed = c.flags.contains(Flags::HW_PAUSED);
            c.flags.remove(Flags::HW_PAUSED);
            if resumed {
                self.push_ready(tok);
            }
        }
        if self.drain_due(tok) {
            self.with_handler(tok, |h, ctx| h.on_drain(ctx));
            return;
        }
        self.check_state(tok);
    }

    /// Whether `on_drain` is owed now: output queued earlier has drained
    /// (`WANT_DRAIN`), or the handler asked for it and the queue is at or
    /// below the low-water mark (`NOTIFY_WRITABLE`). Clears both requests
    /// when it is (one call answers both); closing connections get none.
    pub(crate) fn drain_due(&mut self, tok: Token) -> bool {
        let Some(Entry::Conn(c)) = self.entries.get_mut(tok) else {
            return false;
        };
        if !c.flags.any(Flags::WANT_DRAIN | Flags::NOTIFY_WRITABLE) {
            return false;
        }
        if c.flags.contains(Flags::CONNECTING) {
            return false; // asked again once connected and flushed
        }
        if c.flags.any(Flags::CLOSE_REQ | Flags::CLOSED) {
            c.flags.remove(Flags::WANT_DRAIN);
            return false;
        }
        let queued = c.output.len();
        let due = (c.flags.contains(Flags::WANT_DRAIN) && queued == 0)
            || (c.flags.contains(Flags::NOTIFY_WRITABLE)
                && queued <= self.profiles[c.profile as usize].config.low_water);
        if due {
            c.flags.remove(Flags::WANT_DRAIN | Flags::NOTIFY_WRITABLE);
        }
        due
    }

    /// Applies backpressure and carries out requested half-closes and
    /// closes whose output has been flushed.
    pub(crate) fn check_state(&mut self, tok: Token) {
        if self.in_callback == Some(tok) {
            return; // after_callback runs it once the callback's writes are out
        }
        let Some(Entry::Conn(c)) = self.entries.get_mut(tok) else {
            return;
        };
        if c.flags.contains(Flags::CLOSED) {
            return;
        }
        if c.flags.contains(Flags::NOTIFY_WRITABLE)
            && c.output.len() <= self.profiles[c.profile as usize].config.low_water
        {
            // Asked for and already true: on_drain from the drain list, not
            // from inside whatever callback just returned.
            self.push_drain(tok);
        }
        let Some(Entry::Conn(c)) = self.entries.get_mut(tok) else {
            return;
        };
        if !c.output.is_empty() {
            if c.output.len() > self.profiles[c.profile as usize].config.high_water {
                c.flags.insert(Flags::HW_PAUSED);
            }
            return;
        }
        // The common case on the hot path: nothing queued, nothing asked.
        if !c.flags.any(Flags::CLOSE_REQ | Flags::SHUT_WR_REQ)
            || c.flags.contains(Flags::CONNECTING)
        {
            return;
        }
        let linger = self.profiles[c.profile as usize].config.linger;
        if c.flags.any(Flags::CLOSE_REQ | Flags::SHUT_WR_REQ) && !c.flags.contains(Flags::WR_SHUT) {
            #[cfg(feature = "tls")]
            let c = {
                if c.tls.is_some() && self.tls_close_notify(tok) {
                    return; // close_notify queued: FIN once it is flushed
                }
                let Some(c) = self.conn_mut(tok) else { return };
                c
            };
            c.flags.insert(Flags::WR_SHUT);
            // Our FIN. ENOTCONN means the peer is already gone: fine.
            let _ = sys::socket::shutdown(c.fd.as_fd(), sys::socket::SHUT_WR);
            if c.flags.contains(Flags::CLOSE_REQ) && !c.flags.contains(Flags::PEER_FIN) {
                // Wait (bounded) for the peer's FIN so that our last bytes
                // are not destroyed by an RST for data it sends meanwhile.
                self.arm(linger, TimerTask::Linger(tok));
                if let Some(c) = self.conn_mut(tok) {
                    c.input.release();
                    // Keep reading (to discard) until the FIN.
                    c.flags.remove(Flags::USER_PAUSED | Flags::HW_PAUSED);
                }
                self.push_ready(tok);
                return;
            }
        }
        let Some(c) = self.conn(tok) else { return };
        if c.flags.contains(Flags::WR_SHUT) && c.flags.contains(Flags::PEER_FIN) {
            let reason =
                if c.flags.contains(Flags::CLOSE_REQ) && !c.flags.contains(Flags::SHUT_WR_REQ) {
                    CloseReason::Local
                } else {
                    CloseReason::PeerClosed
                };
            self.finish(tok, reason);
        }
    }

    /// The peer's FIN has been read.
    pub(crate) fn peer_fin(&mut self, tok: Token) {
        let Some(c) = self.conn_mut(tok) else { return };
        if c.flags.contains(Flags::CLOSED) {
            return;
        }
        c.flags.insert(Flags::PEER_FIN);
        c.flags.remove(Flags::READABLE);
        if c.flags.contains(Flags::CLOSE_REQ) {
            if c.flags.contains(Flags::WR_SHUT) {
                self.finish(tok, CloseReason::Local);
            }
            return; // closes once flushed (check_state)
        }
        if !c.input.is_empty() {
            // Unconsumed partial message at EOF: it can never complete.
            c.input.release();
        }
        self.with_handler(tok, |h, ctx| h.on_peer_closed(ctx));
    }

    /// Graceful close: after the output is flushed, FIN, then wait for the
    /// peer's FIN (bounded by the linger time), then close.
    pub(crate) fn request_close(&mut self, tok: Token) {
        if let Some(c) = self.conn_mut(tok) {
            if c.flags.contains(Flags::CONNECTING) {
                return self.finish(tok, CloseReason::Local);
            }
            c.flags.insert(Flags::CLOSE_REQ);
            if c.flags.contains(Flags::PEER_FIN) {
                // The peer already closed: reason is theirs.
                c.flags.insert(Flags::SHUT_WR_REQ);
            }
        }
        self.check_state(tok);
    }

    /// Abortive close: SO_LINGER {on, 0}, so close sends RST and discards
    /// unsent data; no TIME_WAIT on our side.
    pub(crate) fn abort(&mut self, tok: Token) {
        if let Some(c) = self.conn_mut(tok) {
            if let Err(e) = sys::socket::set_linger_abort(c.fd.as_fd()) {
                log::debug!("SO_LINGER for abort failed: {e}");
            }
            c.output.release();
        }
        self.finish(tok, CloseReason::Aborted);
    }

    /// Ends the connection with `reason` abortively (RST, queued output
    /// discarded), so that the peer can tell the stream was cut: used when
    /// a limit trips.
    pub(crate) fn abort_with(&mut self, tok: Token, reason: CloseReason) {
        if let Some(c) = self.conn_mut(tok) {
            if c.flags.contains(Flags::CLOSED) {
                return;
            }
            if let Err(e) = sys::socket::set_linger_abort(c.fd.as_fd()) {
                log::debug!("SO_LINGER for abort failed: {e}");
            }
            c.output.release();
            c.input.release();
        }
        self.finish(tok, reason);
    }

    /// Ends the connection now; it is reaped at the end of the turn.
    pub(crate) fn finish(&mut self, tok: Token, reason: CloseReason) {
        let Some(c) = self.conn_mut(tok) else { return };
        if c.flags.contains(Flags::CLOSED) {
            return;
        }
        c.flags.insert(Flags::CLOSED);
        c.flags.remove(Flags::READABLE | Flags::WRITABLE);
        if let Some(id) = c.idle_timer.take() {
            self.timers.cancel(id);
        }
        self.closing.push((tok, reason));
        self.tail = true;
    }

    /// Writes `data` to the connection `tok` on behalf of the current
    /// callback: small writes of the current connection with nothing queued
    /// are batched in the shared out-scratch (sent when the callback
    /// returns); a large write, or one that would overfill the batch, goes
    /// to the kernel at once together with the batch (one `sendmsg`); writes
    /// behind queued output are queued.
    pub(crate) fn write_for(
        &mut self,
        current: Option<Token>,
        tok: Token,
        data: &[u8],
    ) -> io::Result<()> {
        let Some(c) = self.conn(tok) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if c.flags
            .any(Flags::CLOSED | Flags::CLOSE_REQ | Flags::SHUT_WR_REQ | Flags::WR_SHUT)
        {
            return Err(closing_error());
        }
        let is_current = current == Some(tok);
        if is_current && c.output.is_empty() && !c.flags.contains(Flags::CONNECTING) {
            if data.len() < DIRECT_WRITE && self.scratch_out.len() + data.len() <= OUT_BATCH {
                // Sent in one go with the callback's other writes when it
                // returns (one send for a whole pipelined batch).
                let _ = self.scratch_out.extend(data);
                return Ok(());
            }
            // A large write (coalescing saves little, copying costs more) or
            // a full batch: offer the batch and this write to the kernel now,
            // in order, in one sendmsg. What it does not take is queued.
            let mut batch = std::mem::take(&mut self.scratch_out);
            let res = self.send_or_queue(tok, batch.as_slice(), data);
            batch.clear();
            self.scratch_out = batch;
            return res;
        }
        let res = self.send_or_queue(tok, &[], data);
        if !is_current {
            self.check_state(tok);
        }
        res
    }
}

/// The loop's shared read buffer, emptied, as room for one read: the whole
/// `READ_CHUNK`. Every read into it starts here. A handler lent it by
/// `deliver_scratch` may have replaced or resized it (`mem::take(input)`,
/// say); it is then allocated again, so that a read never gets less than
/// the whole chunk (a 0-byte read would look like EOF).
#[inline(always)]
pub(crate) fn fresh_scratch(scratch_in: &mut Buffer) -> &mut [u8] {
    scratch_in.clear();
    if scratch_in.capacity() != READ_CHUNK {
        renew_scratch(scratch_in);
    }
    scratch_in.spare()
}

#[cold]
#[inline(never)]
fn renew_scratch(scratch_in: &mut Buffer) {
    *scratch_in = shared_read_buffer();
}

/// The loop's shared read buffer: `READ_CHUNK` bytes, allocated once.
pub(crate) fn shared_read_buffer() -> Buffer {
    let mut b = Buffer::with_max(READ_CHUNK);
    let _ = b.writable(READ_CHUNK);
    b
}

fn closing_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "connection is closing or shut down for writing",
    )
}
