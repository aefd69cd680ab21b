//! The acceptor: turns a listening socket's readiness into connections.
//!
//! The acceptor accepts until EAGAIN, but at most
//! [`ServerConfig::accept_batch`](crate::ServerConfig::accept_batch) connections per wake-up so a connection
//! storm cannot starve established connections (the rest are taken on the
//! next turn through the ready list, without waiting for a new edge).
//!
//! Out of descriptors (EMFILE/ENFILE), the pending connection stays in the
//! kernel's queue and the listener stays readable: a naive loop would spin
//! on it. The acceptor keeps one spare descriptor (on `/dev/null`, muduo's
//! and libuv's trick): it closes the spare, accepts the connection, closes
//! it at once (the client sees an orderly close instead of hanging), and
//! reopens the spare. If even that fails it stops accepting for
//! [`ServerConfig::accept_pause`](crate::ServerConfig::accept_pause) on a timer.
//!
//! A listener shared by several loops with `EPOLLEXCLUSIVE`
//! ([`crate::EventLoop::listen_exclusive`]) re-registers itself every
//! [`EXCLUSIVE_ROTATE`] accepts, so that the kernel, which wakes the first
//! registered waiting loop, does not give every connection to one loop.
//! Connections accepted by another thread and handed to this loop come in
//! through an inbox ([`Core::accept_handed`]). At shutdown every listener's
//! queue is drained before it is closed ([`Core::drain_listener`]).

use crate::poll::Interest;
use crate::reactor::event_loop::{Core, Entry, TimerTask};
use crate::reactor::handler::{ConnId, Handler};
use crate::sys;
use crate::token::Token;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// What one use of the spare descriptor achieved.
pub(crate) enum Shed {
    /// A pending connection was accepted and closed.
    One,
    /// Nothing was pending: wait for the next edge.
    QueueEmpty,
    /// No spare to give up, or accept failed otherwise: pause accepting.
    NoSpare,
}

/// One descriptor held in reserve (on `/dev/null`) for when the process is
/// out of them: the acceptor of a loop and the Handoff acceptor of a
/// cluster each keep one.
pub(crate) struct SpareFd(Option<OwnedFd>);

impl SpareFd {
    /// Opens the spare.
    ///
    /// # Errors
    /// EMFILE/ENFILE: already out of descriptors.
    pub(crate) fn open() -> io::Result<SpareFd> {
        Ok(SpareFd(Some(sys::fd::open_dev_null()?)))
    }

    /// Reopens the spare if a failed [`SpareFd::shed`] left none.
    pub(crate) fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = sys::fd::open_dev_null().ok();
        }
    }

    /// EMFILE on `listener`: closes the spare, accepts one connection and
    /// closes it at once (the client sees an orderly close instead of
    /// hanging in the queue), reopens the spare.
    pub(crate) fn shed(&mut self, listener: BorrowedFd<'_>) -> Shed {
        let Some(spare) = self.0.take() else {
            return Shed::NoSpare;
        };
        drop(spare);
        let shed = match sys::socket::accept(listener) {
            Ok((fd, _)) => {
                log::warn!("out of file descriptors: closed a new connection at once");
                drop(fd); // before reopening the spare, which needs its slot
                Shed::One
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Shed::QueueEmpty,
            Err(e) if e.raw_os_error() == Some(sys::errno::ECONNABORTED) => Shed::One,
            Err(e) => {
                log::warn!("out of file descriptors, and accept failed: {e}");
                Shed::NoSpare
            }
        };
        self.0 = sys::fd::open_dev_null().ok();
        shed
    }
}

/// Builds the handler of each accepted connection.
pub type HandlerFactory = Box<dyn FnMut(ConnId) -> Box<dyn Handler>>;

/// How many connections a loop accepts from an `EPOLLEXCLUSIVE` listener
/// before it deletes and re-adds its registration (two `epoll_ctl`), which
/// puts it behind the other loops in the socket's wait queue.
pub const EXCLUSIVE_ROTATE: u32 = 16;

/// Where connections accepted elsewhere (a cluster's acceptor) arrive.
pub(crate) struct Inbox {
    pub(crate) factory: HandlerFactory,
    pub(crate) profile: u16,
    pub(crate) max_conns: usize,
}

/// A listening socket registered with the loop.
pub(crate) struct Listener {
    pub(crate) fd: OwnedFd,
    pub(crate) factory: HandlerFactory,
    pub(crate) profile: u16,
    pub(crate) max_conns: usize,
    pub(crate) accept_batch: usize,
    pub(crate) accept_pause: Duration,
    pub(crate) spare: SpareFd,
    pub(crate) paused: bool,
    pub(crate) in_ready: bool,
    /// Registered with `EPOLLEXCLUSIVE` (shared with other loops).
    pub(crate) exclusive: bool,
    /// Accepts since the last re-registration (exclusive only).
    pub(crate) since_rotate: u32,
}

impl Core {
    /// The listener at `tok` is readable: accept a batch.
    pub(crate) fn accept_ready(&mut self, tok: Token) {
        let accepted = self.accept_some(tok, false);
        if accepted > 0 {
            self.rotate_exclusive(tok, accepted);
        }
    }

    /// Shutdown: accept everything the listener's queue holds now.
    pub(crate) fn drain_listener(&mut self, tok: Token) {
        self.accept_some(tok, true);
    }

    /// Accepts up to the listener's batch (`drain`: until the queue is
    /// empty); returns how many connections were opened.
    fn accept_some(&mut self, tok: Token, drain: bool) -> u32 {
        let (batch, max) = match self.entries.get_mut(tok) {
            Some(Entry::Listener(l)) if !l.paused || drain => {
                l.in_ready = false;
                let batch = if drain {
                    usize::MAX
                } else if l.exclusive {
                    // Rotate within a burst too: after this many the loop
                    // goes behind the others, which the next arrivals wake.
                    l.accept_batch.min(EXCLUSIVE_ROTATE as usize)
                } else {
                    l.accept_batch
                };
                (batch, l.max_conns)
            }
            _ => return 0,
        };
        let mut opened = 0;
        for _ in 0..batch {
            let Some(Entry::Listener(l)) = self.entries.get_mut(tok) else {
                return opened;
            };
            let profile = l.profile;
            match sys::socket::accept(l.fd.as_fd()) {
                Ok((fd, _peer)) => {
                    if self.profiles[profile as usize].live >= max {
                        log::debug!("connection limit ({max}) reached: closing a new connection");
                        drop(fd);
                        continue;
                    }
                    let handler_tok = self.entries.vacant_token();
                    let Some(Entry::Listener(l)) = self.entries.get_mut(tok) else {
                        return opened;
                    };
                    let handler = (l.factory)(ConnId(handler_tok));
                    if self.open_accepted(fd, profile, handler) {
                        opened += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return opened,
                Err(e) if e.raw_os_error() == Some(sys::errno::ECONNABORTED) => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(sys::errno::EMFILE) | Some(sys::errno::ENFILE)
                    ) =>
                {
                    match self.shed_with_spare(tok) {
                        Shed::One => {}
                        // Out of descriptors, accept4 fails with EMFILE
                        // before it looks at the queue, so EMFILE does not
                        // mean a connection is pending. Once the spare's
                        // accept finds the queue empty, stop until the
                        // next edge: going on (or re-queueing the listener)
                        // spins the loop at 100% CPU for as long as the
                        // descriptors stay exhausted.
                        Shed::QueueEmpty => return opened,
                        Shed::NoSpare => {
                            log::warn!("out of file descriptors: pausing accept");
                            self.pause_accepting(tok);
                            return opened;
                        }
                    }
                }
                Err(e) => {
                    log::warn!("accept failed: {e}: pausing accept");
                    self.pause_accepting(tok);
                    return opened;
                }
            }
        }
        // Batch used up: come back next turn without waiting for an edge.
        if let Some(Entry::Listener(l)) = self.entries.get_mut(tok) {
            if !l.in_ready {
                l.in_ready = true;
                self.schedule_ready(tok);
            }
        }
        opened
    }

    /// Registers an accepted connection; during a shutdown it gets its
    /// `on_shutdown` at once. False if it could not be registered.
    fn open_accepted(&mut self, fd: OwnedFd, profile: u16, handler: Box<dyn Handler>) -> bool {
        if self.profiles[profile as usize].config.nodelay {
            // Not TCP (a Unix listener): ENOPROTOOPT, harmless.
            let _ = sys::socket::set_nodelay(fd.as_fd(), true);
        }
        match self.open_conn(fd, profile, handler, false) {
            Ok(tok) => {
                self.stats.accepted += 1;
                if self.shutting_down {
                    self.shutdown_conn(tok);
                }
                true
            }
            Err((e, _)) => {
                log::warn!("cannot register an accepted connection: {e}");
                false
            }
        }
    }

    /// A connection another thread accepted for this loop, to serve with
    /// inbox `inbox`'s factory and config (see `EventLoop::add_inbox`).
    pub(crate) fn accept_handed(&mut self, inbox: usize, fd: OwnedFd) {
        let Some(ib) = self.inboxes.get(inbox) else {
            log::error!("a connection was handed to unknown inbox {inbox}: closing it");
            return;
        };
        let (profile, max) = (ib.profile, ib.max_conns);
        self.handed_in = self.handed_in.wrapping_add(1);
        self.publish_load();
        if self.profiles[profile as usize].live >= max {
            log::debug!("connection limit ({max}) reached: closing a handed-off connection");
            return;
        }
        let handler_tok = self.entries.vacant_token();
        let handler = (self.inboxes[inbox].factory)(ConnId(handler_tok));
        self.open_accepted(fd, profile, handler);
    }

    /// Exclusive listeners: after `EXCLUSIVE_ROTATE` accepts, go to the
    /// back of the socket's wait queue (delete, add; never MOD).
    fn rotate_exclusive(&mut self, tok: Token, accepted: u32) {
        let Some(Entry::Listener(l)) = self.entries.get_mut(tok) else {
            return;
        };
        if !l.exclusive {
            return;
        }
        l.since_rotate += accepted;
        if l.since_rotate < EXCLUSIVE_ROTATE {
            return;
        }
        l.since_rotate = 0;
        if let Err(e) = self.poller.delete(l.fd.as_fd()) {
            log::warn!("cannot rotate an exclusive listener (delete): {e}");
            return;
        }
        if let Err(e) = self
            .poller
            .add(l.fd.as_fd(), tok, Interest::EXCLUSIVE_READABLE)
        {
            // Not registered any more: this loop stops accepting; the
            // other loops of the group go on.
            log::error!("cannot re-add an exclusive listener: {e}");
        }
    }

    /// EMFILE on listener `tok`: [`SpareFd::shed`].
    fn shed_with_spare(&mut self, tok: Token) -> Shed {
        match self.entries.get_mut(tok) {
            Some(Entry::Listener(l)) => l.spare.shed(l.fd.as_fd()),
            _ => Shed::NoSpare,
        }
    }

    fn pause_accepting(&mut self, tok: Token) {
        if let Some(Entry::Listener(l)) = self.entries.get_mut(tok) {
            l.paused = true;
            let pause = l.accept_pause;
            self.arm(pause, TimerTask::ResumeAccept(tok));
        }
    }

    pub(crate) fn resume_accepting(&mut self, tok: Token) {
        if let Some(Entry::Listener(l)) = self.entries.get_mut(tok) {
            l.paused = false;
            l.spare.refill();
            if !l.in_ready {
                l.in_ready = true;
                self.schedule_ready(tok);
            }
        }
    }
}
