//! [`TlsSession`]: one rustls connection driven over a non-blocking socket
//! under edge-triggered readiness.

use crate::buffer::Buffer;
use crate::io::IoStatus;
use crate::sys;
use rustls::pki_types::ServerName;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

/// What one [`TlsSession::read`] produced.
#[derive(Debug)]
pub enum TlsRead {
    /// `n` plaintext bytes were appended to the buffer (0 for records that
    /// carry none: handshake, tickets, a partial record). `drained` is
    /// true when the socket has nothing more right now *and* no decrypted
    /// or undecrypted bytes wait in the session: only then may the caller
    /// forget the readiness.
    Data {
        /// Plaintext bytes appended.
        n: usize,
        /// Nothing more to read until the next readiness edge.
        drained: bool,
    },
    /// The buffer is at its maximum and decrypted bytes still wait: the
    /// reader must consume some before reading again (the readiness is kept:
    /// the bytes are in the session, not in the kernel).
    Full,
    /// The peer sent close_notify and everything before it has been
    /// delivered: a clean end of stream.
    Closed,
    /// The peer closed TCP (FIN) without close_notify: the stream may have
    /// been cut short by an attacker or a crash.
    Truncated,
    /// The socket failed (`Reset`, `Error`); see [`IoStatus`].
    Io(IoStatus),
    /// The peer broke the protocol (bad record, garbage handshake,
    /// plaintext on a TLS port, renegotiation...). The alert rustls queued
    /// is waiting in [`TlsSession::wants_write`]: flush it, then close.
    Protocol(rustls::Error),
}

/// One TLS connection (client or server) over a non-blocking socket.
///
/// The session does its own socket reads ([`TlsSession::read`]) but leaves
/// writing to the caller's choice: [`TlsSession::send_to`] writes the
/// pending TLS bytes to the socket, [`TlsSession::move_to`] appends them
/// to an output buffer (when earlier bytes are queued there, or the socket
/// is full).
///
/// Edge-triggered rules it keeps:
/// * a read that comes back short, or EAGAIN, is the only thing that says
///   "drained"; records that arrive together are all processed;
/// * decrypted bytes that do not fit the caller's buffer stay in the
///   session and are reported as not drained, so readiness is never lost
///   while they wait;
/// * after every read the caller must check [`TlsSession::wants_write`]
///   (handshake messages, tickets, key updates, alerts) and flush.
pub struct TlsSession {
    conn: rustls::Connection,
    /// Ciphertext read from the socket but not yet given to rustls (it
    /// stopped taking records while decrypted bytes waited).
    cipher_in: Buffer,
    /// The socket returned end of file.
    eof: bool,
    /// close_notify received.
    peer_closed: bool,
    /// Our close_notify is queued.
    closing: bool,
    /// A protocol error was reported.
    failed: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field(
                "server",
                &matches!(self.conn, rustls::Connection::Server(_)),
            )
            .field("handshaking", &self.conn.is_handshaking())
            .field("eof", &self.eof)
            .field("peer_closed", &self.peer_closed)
            .finish()
    }
}

/// `io::Write` over a socket with `send(MSG_NOSIGNAL)` (and `sendmsg` for
/// rustls's vectored writes).
struct SockWriter<'a> {
    fd: BorrowedFd<'a>,
    /// The socket took less than offered, or said EAGAIN: it is full.
    full: bool,
}

impl Write for SockWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // sendmsg with one slice: `sys::io::send` keeps the callers it
        // has without TLS (it is inlined into the plain connections' send
        // fast path; see BENCHMARKS.md on what the feature costs them).
        let n = match sys::io::send_vectored(self.fd, &[IoSlice::new(buf)]) {
            Ok(n) => n,
            Err(e) => {
                self.full |= e.kind() == io::ErrorKind::WouldBlock;
                return Err(e);
            }
        };
        if n < buf.len() {
            self.full = true;
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let n = match sys::io::send_vectored(self.fd, bufs) {
            Ok(n) => n,
            Err(e) => {
                self.full |= e.kind() == io::ErrorKind::WouldBlock;
                return Err(e);
            }
        };
        if n < total {
            self.full = true;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `io::Write` that appends to a [`Buffer`] (with no maximum: the caller
/// bounds what it queues).
struct BufWriter<'a>(&'a mut Buffer);

impl Write for BufWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn protocol_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsSession {
    fn with(conn: rustls::Connection) -> TlsSession {
        let mut conn = conn;
        // The caller bounds output (max_output on plaintext before it gets
        // here); rustls's own 64 KiB limit would make writes partial.
        conn.set_buffer_limit(None);
        TlsSession {
            conn,
            cipher_in: Buffer::with_max(usize::MAX),
            eof: false,
            peer_closed: false,
            closing: false,
            failed: false,
        }
    }

    /// The server side of a connection just accepted.
    ///
    /// # Errors
    /// `InvalidInput` if rustls refuses the config.
    pub fn server(config: Arc<rustls::ServerConfig>) -> io::Result<TlsSession> {
        let conn = rustls::ServerConnection::new(config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(TlsSession::with(conn.into()))
    }

    /// The client side, for a server named `name` (its certificate is
    /// verified against `name` as the config's verifier says; by default
    /// the chain and the name are checked). The ClientHello is queued at
    /// once: flush it when the TCP connection is up.
    ///
    /// # Errors
    /// `InvalidInput` if rustls refuses the config.
    pub fn client(
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsSession> {
        let conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(TlsSession::with(conn.into()))
    }

    /// True until the handshake is complete.
    #[inline]
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// True when TLS bytes wait to be written (handshake, data, alerts).
    #[inline]
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// The ALPN protocol both sides agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The server name the client asked for (SNI); server side only.
    pub fn sni(&self) -> Option<&str> {
        match &self.conn {
            rustls::Connection::Server(s) => s.server_name(),
            rustls::Connection::Client(_) => None,
        }
    }

    /// The negotiated TLS version, once the handshake is done.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The negotiated cipher suite, once the handshake is done.
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.conn.negotiated_cipher_suite()
    }

    /// The rustls connection, for anything else (peer certificates, ...).
    pub fn connection(&self) -> &rustls::Connection {
        &self.conn
    }

    /// True once close_notify was received.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Moves decrypted bytes into `plain`, up to its maximum. Returns true
    /// if decrypted bytes are still waiting (the buffer is full).
    fn take_plain(&mut self, plain: &mut Buffer) -> Result<bool, TlsRead> {
        loop {
            let pending = match self.conn.process_new_packets() {
                Ok(state) => {
                    if state.peer_has_closed() {
                        self.peer_closed = true;
                    }
                    state.plaintext_bytes_to_read()
                }
                Err(e) => return Err(self.fail(e)),
            };
            if pending == 0 {
                return Ok(false);
            }
            let room = plain.max().saturating_sub(plain.len());
            if room == 0 {
                return Ok(true);
            }
            let want = pending.min(room);
            let Ok(space) = plain.writable(want) else {
                return Ok(true);
            };
            match self.conn.reader().read(&mut space[..want]) {
                Ok(n) => plain.commit(n),
                // Not reachable with pending > 0; treat as nothing to take.
                Err(_) => return Ok(false),
            }
        }
    }

    fn fail(&mut self, e: rustls::Error) -> TlsRead {
        self.failed = true;
        TlsRead::Protocol(e)
    }

    /// Gives `data` (ciphertext) to rustls record by record, moving the
    /// plaintext into `plain`; what rustls cannot take because the
    /// plaintext waits is kept in `cipher_in`. Returns true if the session
    /// still holds bytes (decrypted or not).
    fn feed(&mut self, mut data: &[u8], plain: &mut Buffer) -> Result<bool, TlsRead> {
        while !data.is_empty() {
            match self.conn.read_tls(&mut data) {
                Ok(_) => {}
                Err(e) => {
                    // rustls refuses more while its received plaintext is
                    // over its limit (our buffer is full), or while its
                    // record buffer is full of one unfinished giant.
                    if self.take_plain(plain)? {
                        break;
                    }
                    return Err(self.fail(rustls::Error::General(format!("TLS read: {e}"))));
                }
            }
            if self.take_plain(plain)? {
                break;
            }
        }
        let held = !data.is_empty();
        if held {
            // Keep the rest for when the reader has made room. From the
            // cipher_in buffer itself (re-feeding) the rest is its tail.
            let rest = data.to_vec();
            self.cipher_in = Buffer::with_max(usize::MAX);
            let _ = self.cipher_in.extend(&rest);
        } else {
            self.cipher_in.release();
        }
        Ok(held
            || self
                .conn
                .process_new_packets()
                .is_ok_and(|s| s.plaintext_bytes_to_read() > 0))
    }

    /// Reads TLS from `fd` (at most one `read` of `spill.len()` bytes),
    /// processes every complete record, and appends the plaintext to
    /// `plain` without going past its maximum. Call again while the result
    /// is `Data { drained: false, .. }`; check
    /// [`TlsSession::wants_write`] after every call.
    ///
    /// Bytes decrypted before close_notify (or before a FIN) are always
    /// delivered before `Closed` (or `Truncated`) is reported.
    pub fn read(&mut self, fd: BorrowedFd<'_>, plain: &mut Buffer, spill: &mut [u8]) -> TlsRead {
        if self.failed {
            return TlsRead::Io(IoStatus::BrokenPipe);
        }
        let before = plain.len();
        // 1. What an earlier read decrypted or kept.
        let held = match self.take_plain(plain) {
            Ok(true) => true,
            Ok(false) if !self.cipher_in.is_empty() => {
                let kept = std::mem::take(&mut self.cipher_in);
                match self.feed(kept.as_slice(), plain) {
                    Ok(h) => h,
                    Err(r) => return r,
                }
            }
            Ok(false) => false,
            Err(r) => return r,
        };
        let n = plain.len() - before;
        if held {
            return if n == 0 {
                TlsRead::Full
            } else {
                TlsRead::Data { n, drained: false }
            };
        }
        if self.peer_closed || self.eof {
            if n > 0 {
                return TlsRead::Data { n, drained: false };
            }
            return if self.peer_closed {
                TlsRead::Closed
            } else {
                TlsRead::Truncated
            };
        }
        // 2. One read from the socket.
        match sys::io::read(fd, spill) {
            Ok(0) => {
                self.eof = true;
                // Tell rustls (it then reports truncation itself too).
                let _ = self.conn.read_tls(&mut &[][..]);
                if n > 0 {
                    TlsRead::Data { n, drained: false }
                } else if self.peer_closed {
                    TlsRead::Closed
                } else {
                    TlsRead::Truncated
                }
            }
            Ok(got) => {
                let short = got < spill.len();
                let data = &spill[..got];
                match self.feed(data, plain) {
                    Ok(held) => {
                        let n = plain.len() - before;
                        if held && n == 0 {
                            return TlsRead::Full;
                        }
                        TlsRead::Data {
                            n,
                            // close_notify seen: the next call says Closed.
                            drained: short && !held && !self.peer_closed,
                        }
                    }
                    Err(r) => r,
                }
            }
            Err(e) => match IoStatus::from_error(e) {
                IoStatus::WouldBlock => TlsRead::Data { n, drained: true },
                status => TlsRead::Io(status),
            },
        }
    }

    /// Encrypts `data` (buffered inside rustls until the handshake is done
    /// if it is not yet). Nothing is written to the socket: flush with
    /// [`TlsSession::send_to`] or [`TlsSession::move_to`].
    ///
    /// # Errors
    /// `BrokenPipe` after close_notify was queued or a protocol error.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.closing || self.failed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "TLS session is closed for writing",
            ));
        }
        self.conn.writer().write_all(data)
    }

    /// Writes pending TLS bytes to `fd` until there are none (`Ok(true)`)
    /// or the socket is full (`Ok(false)`: wait for EPOLLOUT and call
    /// again).
    ///
    /// # Errors
    /// The socket's errors (ECONNRESET, EPIPE, ...).
    pub fn send_to(&mut self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        let mut w = SockWriter { fd, full: false };
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut w) {
                Ok(_) if w.full => return Ok(false),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Appends all pending TLS bytes to `out` (for the caller to send in
    /// order behind what it already queued). Returns how many.
    pub fn move_to(&mut self, out: &mut Buffer) -> usize {
        let before = out.len();
        let mut w = BufWriter(out);
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut w).is_err() {
                break; // only BufferFull, which a usize::MAX buffer never is
            }
        }
        out.len() - before
    }

    /// Queues close_notify (once); later writes fail. Flush it, then shut
    /// the socket down.
    pub fn close_notify(&mut self) {
        // After a protocol error the alert already said goodbye.
        if !self.closing && !self.failed {
            self.closing = true;
            self.conn.send_close_notify();
        }
    }

    /// True once the session failed with a protocol error.
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// True once close_notify was queued.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Turns a protocol error into the `io::Error` (`InvalidData`, the
    /// rustls error inside) that reports it.
    pub fn error_to_io(e: rustls::Error) -> io::Error {
        protocol_error(e)
    }
}
