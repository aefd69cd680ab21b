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

use crate::reactor::event_loop::{Core, Entry, TimerTask};
use crate::reactor::handler::{ConnId, Handler};
use crate::sys;
use crate::token::Token;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// What one use of the spare descriptor achieved.
enum Shed {
    /// A pending connection was accepted and closed.
    One,
    /// Nothing was pending: wait for the next edge.
    QueueEmpty,
    /// No spare to give up, or accept failed otherwise: pause accepting.
    NoSpare,
}

/// Builds the handler of each accepted connection.
pub type HandlerFactory = Box<dyn FnMut(ConnId) -> Box<dyn Handler>>;

/// A listening socket registered with the loop.
pub(crate) struct Listener {
    pub(crate) fd: OwnedFd,
    pub(crate) factory: HandlerFactory,
    pub(crate) profile: u16,
    pub(crate) max_conns: usize,
    pub(crate) accept_batch: usize,
    pub(crate) accept_pause: Duration,
    pub(crate) spare: Option<OwnedFd>,
    pub(crate) paused: bool,
    pub(crate) in_ready: bool,
}

impl Core {
    /// The listener at `tok` is readable: accept a batch.
    pub(crate) fn accept_ready(&mut self, tok: Token) {
        let (batch, max) = match self.entries.get_mut(tok) {
            Some(Entry::Listener(l)) if !l.paused => {
                l.in_ready = false;
                (l.accept_batch, l.max_conns)
            }
            _ => return,
        };
        for _ in 0..batch {
            let Some(Entry::Listener(l)) = self.entries.get_mut(tok) else {
                return;
            };
            let profile = l.profile;
            match sys::socket::accept(l.fd.as_fd()) {
                Ok((fd, _peer)) => {
                    if self.profiles[profile as usize].live >= max || self.shutting_down {
                        log::debug!("connection limit ({max}) reached: closing a new connection");
                        drop(fd);
                        continue;
                    }
                    let handler_tok = self.entries.vacant_token();
                    let Some(Entry::Listener(l)) = self.entries.get_mut(tok) else {
                        return;
                    };
                    let handler = (l.factory)(ConnId(handler_tok));
                    if self.profiles[profile as usize].config.nodelay {
                        // Not TCP (a Unix listener): ENOPROTOOPT, harmless.
                        let _ = sys::socket::set_nodelay(fd.as_fd(), true);
                    }
                    if let Err((e, _)) = self.open_conn(fd, profile, handler, false) {
                        log::warn!("cannot register an accepted connection: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
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
                        Shed::QueueEmpty => return,
                        Shed::NoSpare => {
                            log::warn!("out of file descriptors: pausing accept");
                            self.pause_accepting(tok);
                            return;
                        }
                    }
                }
                Err(e) => {
                    log::warn!("accept failed: {e}: pausing accept");
                    self.pause_accepting(tok);
                    return;
                }
            }
        }
        // Batch used up: come back next turn without waiting for an edge.
        if let Some(Entry::Listener(l)) = self.entries.get_mut(tok) {
            if !l.in_ready {
                l.in_ready = true;
                self.ready.push(tok);
            }
        }
    }

    /// EMFILE: close the spare fd, accept and close one connection, reopen
    /// the spare.
    fn shed_with_spare(&mut self, tok: Token) -> Shed {
        let Some(Entry::Listener(l)) = self.entries.get_mut(tok) else {
            return Shed::NoSpare;
        };
        let Some(spare) = l.spare.take() else {
            return Shed::NoSpare;
        };
        drop(spare);
        let res = sys::socket::accept(l.fd.as_fd());
        let shed = match res {
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
        l.spare = sys::fd::open_dev_null().ok();
        shed
    }

    fn pause_accepting(&mut self, tok: Token) {
        if let Some(Entry::Listener(l)) = self.entries.get_mut(tok) {
            l.paused = true;
            let deadline = self.clock.deadline_after(l.accept_pause);
            self.timers.insert(deadline, TimerTask::ResumeAccept(tok));
        }
    }

    pub(crate) fn resume_accepting(&mut self, tok: Token) {
        if let Some(Entry::Listener(l)) = self.entries.get_mut(tok) {
            l.paused = false;
            if l.spare.is_none() {
                l.spare = sys::fd::open_dev_null().ok();
            }
            if !l.in_ready {
                l.in_ready = true;
                self.ready.push(tok);
            }
        }
    }
}
