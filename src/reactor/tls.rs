//! TLS connections in the loop (feature `tls`): what the read path, the
//! send path, the close path and the connect path do for a connection that
//! has a [`TlsSession`], kept out of conn.rs. A TLS connection also has
//! the `Flags::TLS` bit, which the read and the send hot paths test inside
//! the flag tests they make anyway (`READABLE`, `WRITABLE`): a plain
//! connection pays no branch of its own for TLS there.
//!
//! A TLS connection's output buffer holds *ciphertext*: plaintext is
//! encrypted where a plain connection would `send` it (after the callback,
//! for everything the callback wrote: one record, one send), and what the
//! socket does not take is queued as TLS bytes, so the existing write path
//! (EPOLLOUT flush, backpressure, `on_drain`, FIN after the flush) works on
//! it unchanged. The input buffer holds plaintext. Limits therefore apply
//! to the plaintext on input and to the queued TLS bytes on output (each
//! record adds 22 bytes in TLS 1.3, 29 in TLS 1.2 with AES-GCM, to up to
//! 16 KiB of plaintext).

use crate::buffer::Buffer;
use crate::io::IoStatus;
use crate::reactor::conn::Flags;
use crate::reactor::context::Context;
use crate::reactor::event_loop::{Core, Entry, TimerTask, READS_PER_TURN, READ_CHUNK};
use crate::reactor::handler::{CloseReason, ConnId, Handler};
use crate::sys;
use crate::timer::TimerId;
use crate::tls::{TlsRead, TlsSession};
use crate::token::Token;
use rustls::pki_types::ServerName;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

/// Default deadline of a client handshake (after the TCP connect).
pub(crate) const CLIENT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS part of a connection (boxed in `Conn`, so plain connections
/// carry one pointer).
pub(crate) struct TlsState {
    pub(crate) session: TlsSession,
    /// `on_open` has run (the handshake is done).
    opened: bool,
    /// Plaintext written before the handshake finished (by other
    /// connections' handlers, or while connecting), sent once it has:
    /// counted as queued output, like a connecting plain connection's.
    pub(crate) early: Buffer,
    handshake_timer: Option<TimerId>,
    handshake_timeout: Duration,
    allow_truncation: bool,
    /// Why the connection ends, once a protocol error started a graceful
    /// close (alert, FIN, wait for the peer's FIN): reported instead of
    /// `Local`.
    pub(crate) failure: Option<CloseReason>,
}

impl TlsState {
    pub(crate) fn new(
        session: TlsSession,
        handshake_timeout: Duration,
        allow_truncation: bool,
    ) -> Box<TlsState> {
        Box::new(TlsState {
            session,
            opened: false,
            early: Buffer::with_max(usize::MAX),
            handshake_timer: None,
            handshake_timeout,
            allow_truncation,
            failure: None,
        })
    }
}

fn closing_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "connection is closing or shut down for writing",
    )
}

fn may_read(flags: Flags) -> bool {
    flags.contains(Flags::READABLE)
        && !flags.any(Flags::USER_PAUSED | Flags::HW_PAUSED | Flags::CLOSED | Flags::CONNECTING)
}

impl Core {
    /// An accepted (or connected) TLS connection starts its handshake:
    /// arm the deadline and send what the session has (a client's
    /// ClientHello).
    pub(crate) fn tls_start(&mut self, tok: Token) {
        let Some(c) = self.conn_mut(tok) else { return };
        let Some(t) = c.tls.as_mut() else { return };
        let after = t.handshake_timeout;
        let id = self.arm(after, TimerTask::TlsHandshake(tok));
        if let Some(t) = self.conn_mut(tok).and_then(|c| c.tls.as_mut()) {
            t.handshake_timer = Some(id);
        }
        let _ = self.tls_flush(tok); // a failure has closed it
    }

    /// The TCP connect of an outgoing TLS connection completed: what the
    /// handler wrote meanwhile (plaintext, queued) goes into the session,
    /// to be sent once the handshake is done; the ClientHello goes now.
    pub(crate) fn tls_connected(&mut self, tok: Token) {
        let Some(c) = self.conn_mut(tok) else { return };
        let Some(t) = c.tls.as_mut() else { return };
        if !c.output.is_empty() {
            // Not reached (writes while connecting go to `early`): keep
            // the order if it ever is.
            let _ = t.early.extend(c.output.as_slice());
            c.output.release();
        }
        self.tls_start(tok);
    }

    /// The handshake deadline passed.
    pub(crate) fn tls_handshake_timeout(&mut self, tok: Token) {
        let Some(c) = self.conn_mut(tok) else { return };
        if c.flags.contains(Flags::CLOSED) {
            return;
        }
        if let Some(t) = c.tls.as_mut() {
            t.handshake_timer = None;
            if !t.opened {
                self.finish(tok, CloseReason::TlsHandshakeTimeout);
            }
        }
    }

    /// Sends the TLS bytes the session has (handshake, records, alerts):
    /// straight to the socket when nothing is queued ahead, else (and for
    /// what the socket does not take) into the output buffer, which the
    /// write path flushes on EPOLLOUT.
    ///
    /// # Errors
    /// `BrokenPipe` when the send failed (the connection is closed with the
    /// send's reason); `OutOfMemory` when the TLS bytes left queued exceed
    /// `max_output` (the connection is aborted with `OutputLimit`).
    pub(crate) fn tls_flush(&mut self, tok: Token) -> io::Result<()> {
        let Core {
            entries, profiles, ..
        } = self;
        let Some(Entry::Conn(c)) = entries.get_mut(tok) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        if c.flags.contains(Flags::CLOSED) {
            return Err(closing_error());
        }
        let Some(t) = c.tls.as_mut() else {
            return Ok(());
        };
        if !t.session.wants_write() {
            return Ok(());
        }
        let max = profiles[c.profile as usize].config.max_output;
        if c.output.is_empty() && c.flags.contains(Flags::WRITABLE) {
            match t.session.send_to(c.fd.as_fd()) {
                Ok(true) => {
                    c.flags.insert(Flags::ACTIVE);
                    return Ok(());
                }
                Ok(false) => {
                    c.flags.insert(Flags::ACTIVE);
                    c.flags.remove(Flags::WRITABLE);
                }
                Err(e) => return self.tls_send_failed(tok, e),
            }
        }
        // Behind queued bytes, or what the socket did not take: queue.
        c.output.set_max(usize::MAX); // the limit is enforced below
        t.session.move_to(&mut c.output);
        if c.output.len() > max {
            // Before the limit trips, offer the queue once more (an eager
            // reader may have made room): bytes the kernel takes never
            // count against max_output.
            // (send_vectored, not send: see SockWriter::write in src/tls.)
            match sys::io::send_vectored(
                c.fd.as_fd(),
                &[std::io::IoSlice::new(c.output.as_slice())],
            ) {
                Ok(n) => c.output.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return self.tls_send_failed(tok, e),
            }
            let left = c.output.len();
            if left > max {
                self.abort_with(tok, CloseReason::OutputLimit);
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "output limit: {left} TLS bytes not taken by the kernel, maximum {max}"
                    ),
                ));
            }
        }
        let Some(c) = self.conn_mut(tok) else {
            return Ok(());
        };
        let Some(t) = c.tls.as_ref() else {
            return Ok(());
        };
        if t.opened {
            c.flags.insert(Flags::WANT_DRAIN);
        }
        Ok(())
    }

    fn tls_send_failed(&mut self, tok: Token, e: io::Error) -> io::Result<()> {
        let reason = match IoStatus::from_error(e) {
            IoStatus::Reset => CloseReason::Reset,
            IoStatus::Error(e) => CloseReason::Error(e),
            _ => CloseReason::BrokenPipe,
        };
        self.finish(tok, reason);
        Err(closing_error())
    }

    /// The send path of a TLS connection (conn.rs's `send_or_queue` hands
    /// over here): encrypt `head` then `data` (one record for a callback's
    /// whole batch), then send or queue the TLS bytes.
    ///
    /// # Errors
    /// As [`Core::tls_flush`]; `BrokenPipe` once close_notify was sent.
    pub(crate) fn tls_send(&mut self, tok: Token, head: &[u8], data: &[u8]) -> io::Result<()> {
        let Core {
            entries, profiles, ..
        } = self;
        let Some(Entry::Conn(c)) = entries.get_mut(tok) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        let Some(t) = c.tls.as_mut() else {
            return Err(closing_error());
        };
        if !t.opened {
            // Before the handshake is done: keep it, bounded like a
            // connecting plain connection's queue; sent once it is done.
            let max = profiles[c.profile as usize].config.max_output;
            let left = t.early.len() + head.len() + data.len();
            if left > max {
                self.abort_with(tok, CloseReason::OutputLimit);
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "output limit: {left} bytes queued during the TLS handshake, maximum {max}"
                    ),
                ));
            }
            let _ = t.early.extend(head);
            let _ = t.early.extend(data);
            c.flags.insert(Flags::WANT_DRAIN);
            return Ok(());
        }
        if !head.is_empty() {
            t.session.write(head)?;
        }
        if !data.is_empty() {
            t.session.write(data)?;
        }
        // Plaintext, as the handler wrote it (encrypted and on its way:
        // what the socket does not take is queued as TLS bytes).
        self.stats.bytes_out += (head.len() + data.len()) as u64;
        self.tls_flush(tok)
    }

    /// Before our FIN: queue close_notify. Returns true if it could not be
    /// sent at once (the close goes on once the output is flushed).
    pub(crate) fn tls_close_notify(&mut self, tok: Token) -> bool {
        let Some(t) = self.conn_mut(tok).and_then(|c| c.tls.as_mut()) else {
            return false;
        };
        if t.session.is_closing() || t.session.has_failed() {
            return false;
        }
        t.session.close_notify();
        if self.tls_flush(tok).is_err() {
            return true; // closed (or aborted) already
        }
        self.conn(tok).is_some_and(|c| !c.output.is_empty())
    }

    /// A protocol error: the alert is on its way (flushed by the caller);
    /// close gracefully so it is not destroyed by an RST, and report the
    /// error as the reason.
    fn tls_failed(&mut self, tok: Token, e: rustls::Error) {
        log::debug!("{}: TLS error: {e}", ConnId(tok));
        if let Some(t) = self.conn_mut(tok).and_then(|c| c.tls.as_mut()) {
            t.failure = Some(CloseReason::Tls(TlsSession::error_to_io(e)));
        }
        self.request_close(tok);
    }

    /// The read path of a TLS connection (conn.rs's `read_ready` hands
    /// over here): read records until the socket is drained or the
    /// fairness cap, deliver the plaintext, flush what the session wants
    /// to send after every read, run `on_open` once the handshake is done.
    pub(crate) fn tls_read_ready(&mut self, tok: Token, scratch_in: &mut Buffer) {
        for _ in 0..READS_PER_TURN {
            let Core { entries, .. } = self;
            let Some(Entry::Conn(c)) = entries.get_mut(tok) else {
                return;
            };
            if !may_read(c.flags) {
                return;
            }
            // The shared read buffer is the ciphertext landing area.
            let spill = crate::reactor::conn::fresh_scratch(scratch_in);
            if c.flags.contains(Flags::CLOSE_REQ) {
                // Closing: discard what still arrives, until the FIN.
                match sys::io::read(c.fd.as_fd(), spill) {
                    Ok(0) => return self.peer_fin(tok),
                    Ok(n) => {
                        if n < spill.len() && !c.flags.contains(Flags::RDHUP) {
                            c.flags.remove(Flags::READABLE);
                            return;
                        }
                        // A full read, or EPOLLRDHUP said the FIN is queued
                        // behind these bytes (no new edge will announce
                        // it): read on.
                        continue;
                    }
                    Err(e) => match IoStatus::from_error(e) {
                        IoStatus::WouldBlock => {
                            c.flags.remove(Flags::READABLE);
                            return;
                        }
                        IoStatus::Reset => return self.finish(tok, CloseReason::Reset),
                        _ => return self.finish(tok, CloseReason::BrokenPipe),
                    },
                }
            }
            let Some(t) = c.tls.as_mut() else { return };
            // As for plain reads: the handler must see the bytes before the
            // limit (on unconsumed input) is judged, so a read may take the
            // buffer up to one chunk past the maximum (tls_deliver judges).
            let max_input = c.input.max();
            c.input.set_max(max_input.saturating_add(READ_CHUNK));
            let res = t.session.read(c.fd.as_fd(), &mut c.input, spill);
            c.input.set_max(max_input);
            c.flags.insert(Flags::ACTIVE);
            let opening = !t.opened && !t.session.is_handshaking();
            let mut early = false;
            if opening {
                t.opened = true;
                if let Some(id) = t.handshake_timer.take() {
                    self.timers.cancel(id);
                }
                if !t.early.is_empty() {
                    // What was written before: first out, in order.
                    let _ = t.session.write(t.early.as_slice());
                    self.stats.bytes_out += t.early.len() as u64;
                    t.early = Buffer::with_max(usize::MAX);
                    early = true;
                }
            }
            if let TlsRead::Data { n, .. } = res {
                self.stats.bytes_in += n as u64; // plaintext, as the handler sees it
            }
            // Handshake replies, tickets, key updates, alerts: out now.
            if self.tls_flush(tok).is_err() {
                return; // the send failed: closed
            }
            if early && self.conn(tok).is_some_and(|c| c.output.is_empty()) {
                // The early bytes went out at once: the writer who queued
                // them hears on_drain as if they had waited on EPOLLOUT.
                self.push_drain(tok);
            }
            if opening {
                self.with_handler(tok, |h, ctx| h.on_open(ctx));
            }
            let Some(c) = self.conn_mut(tok) else { return };
            if c.flags.contains(Flags::CLOSED) {
                return;
            }
            let opened = c.tls.as_ref().is_some_and(|t| t.opened);
            let allow_truncation = c.tls.as_ref().is_some_and(|t| t.allow_truncation);
            match res {
                TlsRead::Data { n, drained } => {
                    if drained {
                        c.flags.remove(Flags::READABLE);
                    }
                    let eof_next = drained && c.flags.contains(Flags::RDHUP);
                    if n > 0 && opened {
                        self.tls_deliver(tok, max_input);
                    }
                    if eof_next {
                        // EPOLLRDHUP and a short read: the FIN is next, and
                        // no new edge will announce it. Read it.
                        if let Some(c) = self.conn_mut(tok) {
                            c.flags.insert(Flags::READABLE);
                        }
                    } else if drained {
                        return;
                    }
                }
                TlsRead::Full => {
                    // The input is past its maximum and more plaintext
                    // waits (tls_deliver judges first; this is the guard).
                    return self.abort_with(tok, CloseReason::InputLimit);
                }
                TlsRead::Closed => {
                    if !opened {
                        return self.finish(tok, CloseReason::PeerClosed);
                    }
                    // close_notify: a clean end of the peer's stream.
                    return self.peer_fin(tok);
                }
                TlsRead::Truncated => {
                    if opened && allow_truncation {
                        return self.peer_fin(tok);
                    }
                    if !opened {
                        return self.finish(tok, CloseReason::TlsTruncated);
                    }
                    // The peer's stream may have been cut: the handler is
                    // not told it ended well (no on_peer_closed). What we
                    // queued still goes out; then we close, and say why.
                    c.flags.insert(Flags::PEER_FIN);
                    c.flags.remove(Flags::READABLE);
                    if let Some(t) = c.tls.as_mut() {
                        t.failure = Some(CloseReason::TlsTruncated);
                    }
                    return self.request_close(tok);
                }
                TlsRead::Io(IoStatus::Reset) => return self.finish(tok, CloseReason::Reset),
                TlsRead::Io(IoStatus::Error(e)) => return self.finish(tok, CloseReason::Error(e)),
                TlsRead::Io(_) => return self.finish(tok, CloseReason::BrokenPipe),
                TlsRead::Protocol(e) => {
                    // The alert rustls queued was flushed above.
                    return self.tls_failed(tok, e);
                }
            }
        }
        // Fairness cap reached with bytes still queued: continue next turn.
        self.push_ready(tok);
    }

    /// Hands the connection's plaintext to its handler; what it leaves
    /// unconsumed stays for the next bytes. As for plain connections, the
    /// limit is on *unconsumed* input: judged after `on_data`.
    fn tls_deliver(&mut self, tok: Token, max: usize) {
        let Some(c) = self.conn_mut(tok) else { return };
        let mut input = std::mem::replace(&mut c.input, Buffer::with_max(max));
        input.set_max(max);
        self.with_handler(tok, |h, ctx| h.on_data(ctx, &mut input));
        if let Some(c) = self.conn_mut(tok) {
            let over = input.len() > max;
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

    /// Starts an outgoing TLS connection; see [`Context::connect_tls`].
    pub(crate) fn connect_tls(
        &mut self,
        addr: SocketAddr,
        timeout: Option<Duration>,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        handler: Box<dyn Handler>,
    ) -> io::Result<Token> {
        let session = TlsSession::client(config, name)?;
        let tok = self.connect(addr, timeout, handler).map_err(|(e, _)| e)?;
        if let Some(c) = self.conn_mut(tok) {
            let bound = timeout.unwrap_or(CLIENT_HANDSHAKE_TIMEOUT);
            c.set_tls(TlsState::new(session, bound, false));
        }
        Ok(tok)
    }

    fn tls_of(&self, tok: Option<Token>) -> Option<&TlsSession> {
        self.conn(tok?)?.tls.as_ref().map(|t| &t.session)
    }
}

impl Context<'_> {
    /// True if this connection is TLS (feature `tls`).
    pub fn is_tls(&self) -> bool {
        self.core.tls_of(self.current).is_some()
    }

    /// The ALPN protocol negotiated on this TLS connection (e.g.
    /// `b"http/1.1"`); `None` for plain TCP or when the peers agreed on
    /// none (feature `tls`).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.core.tls_of(self.current)?.alpn_protocol()
    }

    /// The server name the client asked for (SNI) on this accepted TLS
    /// connection; `None` for plain TCP, outgoing connections, or a client
    /// that sent none (feature `tls`).
    pub fn sni(&self) -> Option<&str> {
        self.core.tls_of(self.current)?.sni()
    }

    /// The TLS version of this connection, once the handshake is done
    /// (`None` for plain TCP) (feature `tls`).
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        self.core.tls_of(self.current)?.protocol_version()
    }

    /// The TLS session of this connection, for anything else rustls knows
    /// (cipher suite, peer certificates) (feature `tls`).
    pub fn tls_session(&self) -> Option<&TlsSession> {
        self.core.tls_of(self.current)
    }

    /// Starts an outgoing TLS connection to `addr`: the TCP connect as for
    /// [`Context::connect`] (bounded by `timeout`), then the handshake
    /// with `config`, verifying the server's certificate for `name` (with
    /// the verifier of `config`: by default, the chain against its roots
    /// and the name), bounded by `timeout` as well (counted from the TCP
    /// connect's completion; 10 s when `timeout` is `None`), so a server
    /// that accepts and then stalls cannot hold the connection longer than
    /// the caller allowed. `handler.on_open` runs once the
    /// handshake is done; writes made before are sent after it. A failed
    /// handshake ends in `on_close` with [`CloseReason::Tls`] (a bad
    /// certificate) or [`CloseReason::TlsHandshakeTimeout`] (feature
    /// `tls`).
    ///
    /// # Errors
    /// As [`Context::connect`]; `InvalidInput` if rustls refuses `config`.
    pub fn connect_tls(
        &mut self,
        addr: SocketAddr,
        timeout: Option<Duration>,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        self.core
            .connect_tls(addr, timeout, config, name, handler)
            .map(ConnId)
    }
}
