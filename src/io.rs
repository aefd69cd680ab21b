//! The readn/writen state machines, for any non-blocking descriptor.
//!
//! In the event path: between a readiness event and the bytes. The reactor
//! uses `read_available` on every readable edge; `ReadExact`/`WriteAll` are
//! for code that drives its own descriptors from epoll readiness (a
//! [`Poller`](crate::poll::Poller) or a watched source).
//!
//! The notes' `_tcp_readn` loops on EAGAIN: on a non-blocking socket that
//! spins a core at 100% until data arrives. Here EAGAIN *suspends*: the
//! machine keeps its progress and returns [`IoStatus::WouldBlock`]; call
//! `advance` again when epoll reports readiness. EINTR is retried inside the
//! `sys` wrappers, so it never reaches this layer.
//!
//! Each machine reports distinctly how it stopped: done, would block,
//! end of file (with the bytes received so far still available), reset by
//! the peer, broken pipe, or another error.
//!
//! A short read or short write on a stream socket means the kernel buffer
//! is drained (or full): under edge-triggered epoll the machine returns
//! `WouldBlock` right away instead of issuing one more call that could only
//! fail with EAGAIN. That saves a system call per message.
//!
//! ```
//! use sockloop::io::{IoStatus, ReadExact, WriteAll};
//! use std::os::fd::AsFd;
//!
//! let (a, b) = std::os::unix::net::UnixStream::pair()?;
//! a.set_nonblocking(true)?;
//! b.set_nonblocking(true)?;
//! let mut writer = WriteAll::new(b"ping".to_vec());
//! assert!(matches!(writer.advance(a.as_fd()), IoStatus::Done));
//! let mut reader = ReadExact::new(4);
//! assert!(matches!(reader.advance(b.as_fd()), IoStatus::Done));
//! assert_eq!(reader.filled(), b"ping");
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::buffer::Buffer;
use crate::sys;
use std::io::{self, IoSliceMut};
use std::os::fd::BorrowedFd;

/// How a step of an I/O state machine ended.
#[derive(Debug)]
pub enum IoStatus {
    /// The machine has finished: all bytes read or written.
    Done,
    /// The descriptor would block; progress is kept. Wait for readiness.
    WouldBlock,
    /// The peer closed its side (read returned 0) before the machine was
    /// done. The bytes received so far are still in the machine.
    Eof,
    /// The peer reset the connection (ECONNRESET).
    Reset,
    /// Writing to a connection that is closed for writing (EPIPE): the peer
    /// reset it earlier, or we shut down our side.
    BrokenPipe,
    /// Any other error, with its errno.
    Error(io::Error),
}

impl IoStatus {
    /// Classifies an error from a read or write.
    pub fn from_error(err: io::Error) -> IoStatus {
        match err.kind() {
            io::ErrorKind::WouldBlock => IoStatus::WouldBlock,
            io::ErrorKind::ConnectionReset => IoStatus::Reset,
            io::ErrorKind::BrokenPipe => IoStatus::BrokenPipe,
            _ => IoStatus::Error(err),
        }
    }

    /// True for [`IoStatus::Done`].
    pub fn is_done(&self) -> bool {
        matches!(self, IoStatus::Done)
    }

    /// The status as an `io::Error` for the failure variants (`Eof` becomes
    /// `UnexpectedEof`); `None` for `Done` and `WouldBlock`.
    pub fn into_error(self) -> Option<io::Error> {
        match self {
            IoStatus::Done | IoStatus::WouldBlock => None,
            IoStatus::Eof => Some(io::ErrorKind::UnexpectedEof.into()),
            IoStatus::Reset => Some(io::ErrorKind::ConnectionReset.into()),
            IoStatus::BrokenPipe => Some(io::ErrorKind::BrokenPipe.into()),
            IoStatus::Error(e) => Some(e),
        }
    }
}

/// readn: reads exactly `n` bytes, across as many readiness events as it
/// takes.
///
/// With [`set_low_water`](Self::set_low_water), a machine waiting for a
/// large remainder on a TCP socket raises the socket's `SO_RCVLOWAT` so that
/// epoll wakes it once the remainder (or as much as the kernel allows) is
/// queued, instead of once per arriving segment, and puts the mark back to
/// 1 when it stops.
#[derive(Debug, Clone)]
pub struct ReadExact {
    buf: Vec<u8>,
    filled: usize,
    /// Remainders above this many bytes set `SO_RCVLOWAT`; `None`: never.
    low_water_above: Option<usize>,
    /// The mark this machine last set (0: it has not touched the socket).
    mark: usize,
}

impl ReadExact {
    /// A machine that will read exactly `n` bytes.
    pub fn new(n: usize) -> ReadExact {
        ReadExact {
            buf: vec![0; n],
            filled: 0,
            low_water_above: None,
            mark: 0,
        }
    }

    /// Opts in to `SO_RCVLOWAT`: when a step suspends with more than
    /// `threshold` bytes still to read, the socket's receive low-water mark
    /// is set to the remainder, so readiness is reported only once that much
    /// is queued (Linux caps the mark at half the largest receive buffer and
    /// grows the buffer to fit; EOF, errors and resets still wake at once).
    /// When the machine stops (done, EOF, error) the mark goes back to 1, so
    /// the next, possibly small, message is reported as usual. `None` turns
    /// it off (the default).
    ///
    /// It pays for large reads: for a 1 MiB readn over loopback (the peer
    /// writing 16 KiB at a time) epoll woke the reader once instead of 4 to
    /// 8 times, and the machine made 2 read steps instead of 5 to 9 (5 runs;
    /// `tests/rcvlowat.rs`, ARCHITECTURE.md). Loopback delivers 64 KiB
    /// segments; over a real network segments are ~1.4 KiB, so there are
    /// more wake-ups to save (not measured here). It costs two `setsockopt` calls per large read, and
    /// it must only be used when the peer will send the whole remainder
    /// without waiting for us: a peer that sends part and then waits for a
    /// reply would not wake us until it closes. Descriptors that are not
    /// sockets (pipes) are left alone.
    pub fn set_low_water(&mut self, threshold: Option<usize>) {
        self.low_water_above = threshold;
    }

    /// Sets the mark for a large remainder after a suspending step.
    fn raise_mark(&mut self, fd: BorrowedFd<'_>) {
        let Some(threshold) = self.low_water_above else {
            return;
        };
        let rest = self.remaining().min(i32::MAX as usize);
        if rest <= threshold || rest == self.mark {
            return;
        }
        match sys::sockopt::set_int(fd, sys::sockopt::IntOpt::RecvLowat, rest as i32) {
            Ok(()) => self.mark = rest,
            Err(e) => {
                // ENOTSOCK (a pipe) or an old kernel: read as before.
                log::debug!("readn: SO_RCVLOWAT not available ({e}); not using it");
                self.low_water_above = None;
            }
        }
    }

    /// Puts the mark back to 1 when this machine stops.
    fn lower_mark(&mut self, fd: BorrowedFd<'_>) {
        if self.mark != 0 {
            self.mark = 0;
            if let Err(e) = sys::sockopt::set_int(fd, sys::sockopt::IntOpt::RecvLowat, 1) {
                log::debug!("readn: cannot reset SO_RCVLOWAT ({e})");
            }
        }
    }

    /// Takes bytes already read elsewhere (e.g. the part of a request body
    /// that arrived with its headers) from the front of `buf`, consuming
    /// them. Returns how many were taken.
    pub fn take_from(&mut self, buf: &mut Buffer) -> usize {
        let n = buf.len().min(self.remaining());
        self.buf[self.filled..self.filled + n].copy_from_slice(&buf.as_slice()[..n]);
        self.filled += n;
        buf.consume(n);
        n
    }

    /// Reads as much as is available, up to the remaining count.
    pub fn advance(&mut self, fd: BorrowedFd<'_>) -> IoStatus {
        let status = self.step(fd);
        match status {
            IoStatus::WouldBlock => self.raise_mark(fd),
            _ => self.lower_mark(fd),
        }
        status
    }

    fn step(&mut self, fd: BorrowedFd<'_>) -> IoStatus {
        while self.filled < self.buf.len() {
            let want = self.buf.len() - self.filled;
            match sys::io::read(fd, &mut self.buf[self.filled..]) {
                Ok(0) => return IoStatus::Eof,
                Ok(n) => {
                    self.filled += n;
                    if n < want {
                        // Short read: the socket is drained for now.
                        return IoStatus::WouldBlock;
                    }
                }
                Err(e) => return IoStatus::from_error(e),
            }
        }
        IoStatus::Done
    }

    /// The bytes read so far.
    pub fn filled(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// How many bytes are still to be read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.filled
    }

    /// True once all `n` bytes are read.
    pub fn is_done(&self) -> bool {
        self.filled == self.buf.len()
    }

    /// The bytes read so far, as an owned vector.
    pub fn into_inner(mut self) -> Vec<u8> {
        self.buf.truncate(self.filled);
        self.buf
    }
}

/// writen: writes all of its bytes, across as many readiness events as it
/// takes. Sockets are written with `send(MSG_NOSIGNAL)`, so a reset peer
/// yields `Reset`/`BrokenPipe`, never SIGPIPE; other descriptors (pipes)
/// fall back to `write` after the first ENOTSOCK.
#[derive(Debug, Clone)]
pub struct WriteAll {
    data: Vec<u8>,
    written: usize,
    not_a_socket: bool,
}

impl WriteAll {
    /// A machine that will write all of `data`.
    pub fn new(data: Vec<u8>) -> WriteAll {
        WriteAll {
            data,
            written: 0,
            not_a_socket: false,
        }
    }

    /// Writes as much as the descriptor takes.
    pub fn advance(&mut self, fd: BorrowedFd<'_>) -> IoStatus {
        while self.written < self.data.len() {
            let rest = &self.data[self.written..];
            let res = if self.not_a_socket {
                sys::io::write(fd, rest)
            } else {
                match sys::io::send(fd, rest) {
                    Err(e) if e.raw_os_error() == Some(sys_errno::ENOTSOCK) => {
                        self.not_a_socket = true;
                        continue;
                    }
                    other => other,
                }
            };
            match res {
                Ok(n) => {
                    self.written += n;
                    if n < rest.len() {
                        // Short write: the send buffer is full for now.
                        return IoStatus::WouldBlock;
                    }
                }
                Err(e) => return IoStatus::from_error(e),
            }
        }
        IoStatus::Done
    }

    /// How many bytes have been written.
    pub fn written(&self) -> usize {
        self.written
    }

    /// How many bytes are still to be written.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.written
    }

    /// True once every byte is written.
    pub fn is_done(&self) -> bool {
        self.written == self.data.len()
    }
}

// errno values needed above, from the sys layer (no libc outside sys).
mod sys_errno {
    pub use crate::sys::errno::ENOTSOCK;
}

/// What one read into a [`Buffer`] produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// `n` bytes arrived; `drained` is true when the read was short, which
    /// on a stream socket means nothing more is queued right now.
    Data {
        /// Bytes read.
        n: usize,
        /// The read was short: the socket is drained.
        drained: bool,
    },
    /// Failed or would block; see [`IoStatus`].
    Stop(IoStatus),
}

/// Reads what is available into `buf` (for framed protocols): one `readv`
/// into the buffer's spare room plus the caller's `spill` area (muduo's
/// trick: a large read never forces every connection to hold a large
/// buffer), then appends what landed in `spill` to `buf`.
///
/// The read never asks for more than `buf` may still take (`buf.max() -
/// buf.len()`), so every byte read is kept: none is dropped because it did
/// not fit. Returns `Stop(Eof)` when the peer closed, and `Stop(Error)` with
/// `OutOfMemory`, without reading, when `buf` is already at its maximum (a
/// full buffer can make no progress; the caller must consume or give up).
pub fn read_available(fd: BorrowedFd<'_>, buf: &mut Buffer, spill: &mut [u8]) -> ReadOutcome {
    let left = buf.max().saturating_sub(buf.len());
    if left == 0 {
        return ReadOutcome::Stop(IoStatus::Error(
            crate::buffer::BufferFull {
                max: buf.max(),
                wanted: buf.len() + 1,
            }
            .into(),
        ));
    }
    let room = buf.spare().len().min(left);
    let spill_len = spill.len().min(left - room);
    let wanted = room + spill_len;
    let res = {
        let mut iov = [
            IoSliceMut::new(&mut buf.spare()[..room]),
            IoSliceMut::new(&mut spill[..spill_len]),
        ];
        let iov = if room == 0 {
            &mut iov[1..]
        } else if spill_len == 0 {
            &mut iov[..1]
        } else {
            &mut iov[..]
        };
        sys::io::readv(fd, iov)
    };
    match res {
        Ok(0) => ReadOutcome::Stop(IoStatus::Eof),
        Ok(n) => {
            let in_buf = n.min(room);
            buf.commit(in_buf);
            if n > in_buf {
                // Fits: the read was sized to what the buffer may take.
                if let Err(e) = buf.extend(&spill[..n - in_buf]) {
                    return ReadOutcome::Stop(IoStatus::Error(e.into()));
                }
            }
            ReadOutcome::Data {
                n,
                drained: n < wanted,
            }
        }
        Err(e) => ReadOutcome::Stop(IoStatus::from_error(e)),
    }
}
