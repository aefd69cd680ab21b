//! [`Context`]: what a handler can do, from inside a callback.

use crate::reactor::conn::{Flags, DIRECT_WRITE, OUT_BATCH};
use crate::reactor::event_loop::{Core, TimerTask};
use crate::reactor::handler::{ConnId, Handler};
use crate::reactor::stats::LoopStats;
use crate::reactor::waker::LoopHandle;
use crate::sys;
use crate::timer::TimerId;
use crate::token::Token;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

/// The loop, as seen from a callback. Methods without an id act on the
/// connection whose callback is running ("this connection"); the `_to` /
/// `_conn` variants act on any connection by [`ConnId`]. Ids of closed
/// connections are ignored (or give `NotConnected`).
pub struct Context<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) current: Option<Token>,
    /// The current connection's small writes may go straight into the
    /// shared out-scratch without looking it up: when the callback began it
    /// was connected, not closing or shut down for writing, and had nothing
    /// queued, and no method of this context has run since that could
    /// change that (each of them clears this; only the batching path of
    /// [`Context::write`] keeps it). False: `write` takes the general path
    /// (`Core::write_for`), which checks everything.
    batching: bool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(core: &'a mut Core, current: Option<Token>) -> Context<'a> {
        Context {
            core,
            current,
            batching: false,
        }
    }

    /// A context for a callback of `tok`; `batching` as the field says
    /// (decided by the caller from the connection's state).
    #[inline]
    pub(crate) fn for_conn(core: &'a mut Core, tok: Token, batching: bool) -> Context<'a> {
        Context {
            core,
            current: Some(tok),
            batching,
        }
    }

    /// This connection's id; `None` in loop-level callbacks (posted tasks,
    /// loop timers, `on_close`).
    pub fn id(&self) -> Option<ConnId> {
        self.current.map(ConnId)
    }

    fn this(&self) -> io::Result<Token> {
        self.current
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "no current connection"))
    }

    /// Writes `data` to this connection. Small writes are batched and sent
    /// when the callback returns, together with everything else the
    /// callback wrote (one `send` for a whole pipelined batch); a write of
    /// 1 KiB or more, or one that would take the batch past 64 KiB, is sent
    /// at once together with the batch ahead of it (one `sendmsg`). What the
    /// kernel does not take is queued and sent on EPOLLOUT. Bytes always
    /// leave in the order they were written.
    ///
    /// # Errors
    /// `BrokenPipe` if the connection is closing or shut down for writing;
    /// `OutOfMemory` if the bytes queued (written, offered to the kernel and
    /// not taken) would exceed the connection's `max_output`: the
    /// connection is then aborted (the peer sees a reset) and ends with
    /// [`crate::CloseReason::OutputLimit`]. A batched small write is
    /// offered only when the callback returns, so the limit can also trip
    /// then (`on_close` says so); `NotConnected` outside a connection
    /// callback.
    #[inline]
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        // The hot path: what write_for would do for a quiet current
        // connection, without finding it again, when the batch has room.
        if self.batching
            && data.len() < DIRECT_WRITE
            && self.core.scratch_out.append_within(data, OUT_BATCH)
        {
            return Ok(());
        }
        self.write_general(data)
    }

    /// [`Context::write`] when the hot path does not apply: the batch must
    /// grow first (it is allocated on demand), or the write is large, or
    /// the connection is not quiet.
    #[inline(never)]
    fn write_general(&mut self, data: &[u8]) -> io::Result<()> {
        if self.batching
            && data.len() < DIRECT_WRITE
            && self.core.scratch_out.len() + data.len() <= OUT_BATCH
        {
            let _ = self.core.scratch_out.extend(data);
            return Ok(());
        }
        self.batching = false;
        let tok = self.this()?;
        self.core.write_for(self.current, tok, data)
    }

    /// Writes `data` to another connection (or this one): sent at once if
    /// that connection has nothing queued, else queued behind its output.
    ///
    /// # Errors
    /// As [`Context::write`]; `NotConnected` for a closed id.
    pub fn write_to(&mut self, id: ConnId, data: &[u8]) -> io::Result<()> {
        self.batching = false;
        self.core.write_for(self.current, id.0, data)
    }

    /// Bytes written to this connection that the kernel has not taken yet:
    /// its queued output (offered to the kernel and refused, sent on
    /// EPOLLOUT; this is what `max_output` limits) plus, inside this
    /// connection's own callback, the small writes batched so far (under
    /// 64 KiB), which are offered to the kernel when the callback returns.
    /// 0 outside a connection callback.
    pub fn output_len(&self) -> usize {
        self.current.map_or(0, |t| self.output_len_of(ConnId(t)))
    }

    /// As [`Context::output_len`], for connection `id` (0 for a closed
    /// id); the batched writes count only when `id` is the connection whose
    /// callback is running.
    pub fn output_len_of(&self, id: ConnId) -> usize {
        let pending = if self.current == Some(id.0) {
            self.core.scratch_out.len()
        } else {
            0
        };
        self.core.conn(id.0).map_or(0, |c| c.queued_len()) + pending
    }

    /// Closes this connection gracefully: flush the output, send FIN, wait
    /// (bounded) for the peer's FIN, close. Later writes fail.
    pub fn close(&mut self) {
        self.batching = false;
        if let Some(t) = self.current {
            self.core.request_close(t);
        }
    }

    /// Closes connection `id` gracefully; see [`Context::close`].
    pub fn close_conn(&mut self, id: ConnId) {
        self.batching = false;
        self.core.request_close(id.0);
    }

    /// Aborts this connection: RST, queued output discarded.
    pub fn abort(&mut self) {
        self.batching = false;
        if let Some(t) = self.current {
            self.core.abort(t);
        }
    }

    /// Aborts connection `id`; see [`Context::abort`].
    pub fn abort_conn(&mut self, id: ConnId) {
        self.batching = false;
        self.core.abort(id.0);
    }

    /// Half-closes this connection: after the output is flushed, send FIN
    /// (`shutdown(SHUT_WR)`) but keep reading.
    pub fn shutdown_write(&mut self) {
        self.batching = false;
        if let Some(t) = self.current {
            self.shutdown_write_conn(ConnId(t));
        }
    }

    /// Half-closes connection `id`; see [`Context::shutdown_write`].
    pub fn shutdown_write_conn(&mut self, id: ConnId) {
        self.batching = false;
        if let Some(c) = self.core.conn_mut(id.0) {
            c.flags.insert(Flags::SHUT_WR_REQ);
        }
        if self.current != Some(id.0) {
            self.core.check_state(id.0);
        }
    }

    /// True once the peer of `id` has sent its FIN.
    pub fn peer_closed(&self, id: ConnId) -> bool {
        self.core
            .conn(id.0)
            .is_some_and(|c| c.flags.contains(Flags::PEER_FIN))
    }

    /// Stops reading from this connection (backpressure); bytes stay in the
    /// kernel buffer, and the peer is eventually flow-controlled by TCP.
    pub fn pause_reading(&mut self) {
        self.batching = false;
        if let Some(t) = self.current {
            self.pause_reading_of(ConnId(t));
        }
    }

    /// Stops reading from connection `id`.
    pub fn pause_reading_of(&mut self, id: ConnId) {
        self.batching = false;
        if let Some(c) = self.core.conn_mut(id.0) {
            c.flags.insert(Flags::USER_PAUSED);
        }
    }

    /// Resumes reading from this connection; see
    /// [`Context::resume_reading_of`].
    pub fn resume_reading(&mut self) {
        self.batching = false;
        if let Some(t) = self.current {
            self.resume_reading_of(ConnId(t));
        }
    }

    /// Resumes reading from connection `id` after
    /// [`Context::pause_reading`]. Bytes that arrived while it was paused
    /// are read on the next pass of the ready list (no new edge is needed).
    /// And if it was paused with input left unconsumed in its buffer,
    /// `on_data` is called again with that input on that pass, even if no
    /// new byte arrives: a handler can pause, leave complete messages in
    /// the buffer while it is busy (streaming a reply, say), and pick them
    /// up by resuming (in `on_drain`, say). Resuming a connection that is
    /// not paused changes nothing.
    pub fn resume_reading_of(&mut self, id: ConnId) {
        self.batching = false;
        if let Some(c) = self.core.conn_mut(id.0) {
            if c.flags.contains(Flags::USER_PAUSED) {
                c.flags.remove(Flags::USER_PAUSED);
                if !c.input.is_empty() {
                    c.flags.insert(Flags::REDELIVER);
                }
            }
            self.core.push_ready(id.0);
        }
    }

    /// Asks for one [`Handler::on_drain`] call as soon as this
    /// connection's queued output (bytes the kernel has not taken) is at or
    /// below its `low_water` mark ([`crate::ConnConfig::low_water`]). If
    /// it already is (an empty queue, even if nothing was ever queued), the
    /// call comes once the current callback has returned, in this turn,
    /// never from inside it. One call per request: ask again there for the
    /// next. This is how to stream a reply larger than `max_output` with
    /// bounded memory: write a piece, ask, write the next piece in
    /// `on_drain` (see the example on [`Handler::on_drain`]).
    pub fn notify_writable(&mut self) {
        if let Some(t) = self.current {
            self.notify_writable_of(ConnId(t));
        }
    }

    /// As [`Context::notify_writable`], for connection `id` (ignored for
    /// a closed id).
    pub fn notify_writable_of(&mut self, id: ConnId) {
        if let Some(c) = self.core.conn_mut(id.0) {
            c.flags.insert(Flags::NOTIFY_WRITABLE);
        }
        self.core.check_state(id.0);
    }

    /// Arms a one-shot timer for this connection; its handler's `on_timer`
    /// receives the returned id.
    ///
    /// # Errors
    /// `NotConnected` outside a connection callback.
    pub fn set_timer(&mut self, after: Duration) -> io::Result<TimerId> {
        let tok = self.this()?;
        Ok(self.core.arm(after, TimerTask::User(tok)))
    }

    /// Moves a timer to fire `after` from now, without allocating. Returns
    /// false if it already fired or was cancelled.
    pub fn reset_timer(&mut self, id: TimerId, after: Duration) -> bool {
        self.core.rearm(id, after)
    }

    /// Disarms a timer. Returns false if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.core.timers.cancel(id).is_some()
    }

    /// Arms a loop-level one-shot timer that runs `f`.
    pub fn add_timer<F>(&mut self, after: Duration, f: F) -> TimerId
    where
        F: FnOnce(&mut Context<'_>) + 'static,
    {
        self.core.add_loop_timer(after, Box::new(f))
    }

    /// Starts an outgoing TCP connection to `addr` (non-blocking connect:
    /// EINPROGRESS, then writability, then `SO_ERROR`). `handler.on_open`
    /// runs once connected; if it fails or `timeout` passes first,
    /// `on_close` runs with `ConnectFailed` or `ConnectTimeout`.
    ///
    /// # Errors
    /// Failures reported at once by `socket`/`connect` (EMFILE,
    /// ECONNREFUSED, ENETUNREACH, EADDRNOTAVAIL).
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        timeout: Option<Duration>,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        self.batching = false;
        self.core
            .connect(addr, timeout, handler)
            .map(ConnId)
            .map_err(|(e, _)| e)
    }

    /// As [`Context::connect`], but hands the handler back on failure.
    pub(crate) fn try_connect(
        &mut self,
        addr: SocketAddr,
        timeout: Option<Duration>,
        handler: Box<dyn Handler>,
    ) -> Result<ConnId, (io::Error, Box<dyn Handler>)> {
        self.batching = false;
        self.core.connect(addr, timeout, handler).map(ConnId)
    }

    /// Takes an already connected stream into the loop; see
    /// [`crate::EventLoop::adopt`].
    ///
    /// # Errors
    /// Errors of `fcntl` or `epoll_ctl`.
    pub fn adopt<S: Into<OwnedFd>>(
        &mut self,
        stream: S,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        self.batching = false;
        let fd: OwnedFd = stream.into();
        sys::fd::set_nonblocking(fd.as_fd(), true)?;
        self.core
            .open_conn(fd, 0, handler, false)
            .map(ConnId)
            .map_err(|(e, _)| e)
    }

    /// The peer address of this connection.
    ///
    /// # Errors
    /// `NotConnected`; `InvalidInput` for a non-IP (Unix) socket.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sys::socket::peer_addr(self.fd()?)
    }

    /// The local address of this connection.
    ///
    /// # Errors
    /// As [`Context::peer_addr`].
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sys::socket::local_addr(self.fd()?)
    }

    /// This connection's descriptor, e.g. to set socket options.
    ///
    /// # Errors
    /// `NotConnected` outside a connection callback.
    pub fn fd(&self) -> io::Result<BorrowedFd<'_>> {
        let tok = self.this()?;
        self.core
            .conn(tok)
            .map(|c| c.fd.as_fd())
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// The loop's clock: time since the loop started, in whole ms, read
    /// now (a turn reads no clock unless something asks for the time).
    pub fn now(&self) -> Duration {
        Duration::from_millis(self.core.clock.now_ms())
    }

    /// How many connections the loop holds.
    pub fn connection_count(&self) -> usize {
        self.core.conns
    }

    /// What this loop has done so far (see [`LoopStats`]).
    pub fn stats(&self) -> LoopStats {
        self.core.current_stats()
    }

    /// True once a graceful shutdown of this loop has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.core.shutting_down
    }

    /// This loop's index in its group of loops (a cluster's `sockloop-K`
    /// thread runs loop K); 0 for a loop on its own.
    pub fn loop_index(&self) -> usize {
        self.core.siblings.as_ref().map_or(0, |s| s.index)
    }

    /// How many loops the group of this loop has; 1 for a loop on its own.
    pub fn loop_count(&self) -> usize {
        self.core.siblings.as_ref().map_or(1, |s| s.handles.len())
    }

    /// Runs `task` on loop `index` of this loop's group, at its next turn,
    /// with that loop's `Context` (posting to this loop's own index runs it
    /// here at the next turn). Tasks posted by one thread to one loop run
    /// in the order they were posted. Connection ids are per loop: a
    /// [`ConnId`] taken here means nothing on another loop.
    ///
    /// # Errors
    /// `InvalidInput` when `index >= loop_count()`; the errno of writing
    /// the target's eventfd.
    pub fn post_to<F>(&self, index: usize, task: F) -> io::Result<()>
    where
        F: FnOnce(&mut Context<'_>) + Send + 'static,
    {
        match &self.core.siblings {
            Some(s) => match s.handles.get(index) {
                Some(h) => h.post(task),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("no loop {index} in a group of {}", s.handles.len()),
                )),
            },
            None if index == 0 => LoopHandle::new(self.core.shared.clone()).post(task),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no loop {index}: this loop is on its own"),
            )),
        }
    }

    /// Runs `task` on every loop of this loop's group, this one included
    /// (at its next turn), each time with that loop's `Context`. Order per
    /// sender and receiver is kept as for [`Context::post_to`].
    ///
    /// # Errors
    /// The first error of writing a loop's eventfd (the loops before it
    /// have the task).
    pub fn post_all<F>(&self, task: F) -> io::Result<()>
    where
        F: Fn(&mut Context<'_>) + Send + Sync + 'static,
    {
        let task = Arc::new(task);
        for i in 0..self.loop_count() {
            let t = task.clone();
            self.post_to(i, move |ctx| t(ctx))?;
        }
        Ok(())
    }

    /// Serves `fd`, a connection another thread accepted for this loop,
    /// with inbox `inbox`'s factory and config.
    pub(crate) fn accept_handed(&mut self, inbox: usize, fd: OwnedFd) {
        self.batching = false;
        self.core.accept_handed(inbox, fd);
    }

    /// Makes `run()` return after this turn; connections stay open.
    pub fn stop(&mut self) {
        self.batching = false;
        self.core.stop = true;
    }

    /// Graceful shutdown: close listeners, close every connection after
    /// flushing its output, abort what is left after `grace`; `run()`
    /// returns once no connection remains.
    pub fn shutdown(&mut self, grace: Duration) {
        self.batching = false;
        self.core.begin_shutdown(grace);
    }
}
