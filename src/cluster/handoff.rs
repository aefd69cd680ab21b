//! `Balance::Handoff`: the acceptor. It runs on the cluster's base loop
//! (the caller's thread), which serves no connection, so a worker loop
//! stuck in a long callback never holds back accepting.
//!
//! Each accepted descriptor goes to the worker with the fewest live
//! connections. A worker publishes, whenever it changes and with a relaxed
//! store, one word: its live connections and how many handed-off connections it
//! has taken in. The acceptor adds what it has sent that the worker has not
//! taken yet, so a burst of accepts (or a worker that is stuck and does not
//! publish) counts at once. Descriptors are posted in batches, one task
//! (one eventfd write) per worker per batch.

use crate::reactor::accept::{Shed, SpareFd};
use crate::reactor::siblings::unpack_load;
use crate::reactor::{Context, LoopHandle};
use crate::sys;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most descriptors handed to the workers in one batch.
const BATCH: usize = 64;

/// What the acceptors of one cluster share: where to send, and what was
/// sent.
pub(crate) struct Balancer {
    targets: Arc<[LoopHandle]>,
    loads: Vec<Arc<AtomicU64>>,
    sent: Vec<u32>,
    next: usize,
}

impl Balancer {
    pub(crate) fn new(targets: Arc<[LoopHandle]>, loads: Vec<Arc<AtomicU64>>) -> Balancer {
        let n = targets.len();
        Balancer {
            targets,
            loads,
            sent: vec![0; n],
            next: 0,
        }
    }

    /// The worker with the fewest live connections, counting those sent
    /// to it and not yet taken in; ties go round robin.
    fn pick(&mut self) -> usize {
        let n = self.targets.len();
        let (mut best, mut best_load) = (self.next % n, u64::MAX);
        for k in 0..n {
            let i = (self.next + k) % n;
            let (live, taken) = unpack_load(self.loads[i].load(Ordering::Relaxed));
            let load = live as u64 + self.sent[i].wrapping_sub(taken) as u64;
            if load < best_load {
                best_load = load;
                best = i;
            }
        }
        self.next = (best + 1) % n;
        self.sent[best] = self.sent[best].wrapping_add(1);
        best
    }
}

/// One handoff listener on the base loop.
pub(crate) struct Acceptor {
    fd: OwnedFd,
    state: RefCell<State>,
}

struct State {
    inbox: usize,
    balancer: Rc<RefCell<Balancer>>,
    batches: Vec<Vec<OwnedFd>>,
    spare: SpareFd,
    paused: bool,
    accept_pause: Duration,
    closed: bool,
}

/// The watched source: the listener's descriptor.
pub(crate) struct Watched(pub(crate) Rc<Acceptor>);

impl AsFd for Watched {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

impl Acceptor {
    pub(crate) fn new(
        fd: OwnedFd,
        inbox: usize,
        balancer: Rc<RefCell<Balancer>>,
        accept_pause: Duration,
    ) -> io::Result<Rc<Acceptor>> {
        sys::fd::set_nonblocking(fd.as_fd(), true)?;
        let n = balancer.borrow().targets.len();
        Ok(Rc::new(Acceptor {
            fd,
            state: RefCell::new(State {
                inbox,
                balancer,
                batches: (0..n).map(|_| Vec::new()).collect(),
                spare: SpareFd::open()?,
                paused: false,
                accept_pause,
                closed: false,
            }),
        }))
    }

    /// Accepts until the queue is empty and hands every connection out.
    pub(crate) fn accept_ready(self: &Rc<Self>, ctx: &mut Context<'_>) {
        let mut st = self.state.borrow_mut();
        if st.paused || st.closed {
            return;
        }
        let mut in_batch = 0;
        loop {
            match sys::socket::accept(self.fd.as_fd()) {
                Ok((fd, _)) => {
                    let target = st.balancer.borrow_mut().pick();
                    st.batches[target].push(fd);
                    in_batch += 1;
                    if in_batch == BATCH {
                        st.flush();
                        in_batch = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(sys::errno::ECONNABORTED) => continue,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(sys::errno::EMFILE) | Some(sys::errno::ENFILE)
                    ) =>
                {
                    // As the reactor's acceptor: shed one connection with
                    // the spare; stop at an empty queue so as not to spin.
                    match st.spare.shed(self.fd.as_fd()) {
                        Shed::One => {}
                        Shed::QueueEmpty => break,
                        Shed::NoSpare => {
                            st.pause(self, ctx);
                            break;
                        }
                    }
                }
                Err(e) => {
                    log::warn!("accept failed: {e}: pausing accept");
                    st.pause(self, ctx);
                    break;
                }
            }
        }
        st.flush();
    }

    /// Shutdown: hand out what the queue holds, then stop for good (the
    /// descriptor closes when the last reference goes).
    pub(crate) fn drain_and_close(self: &Rc<Self>, ctx: &mut Context<'_>) {
        {
            let mut st = self.state.borrow_mut();
            st.paused = false;
        }
        self.accept_ready(ctx);
        self.state.borrow_mut().closed = true;
    }
}

impl State {
    fn flush(&mut self) {
        let bal = self.balancer.borrow();
        for (i, batch) in self.batches.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let fds = std::mem::take(batch);
            let inbox = self.inbox;
            let res = bal.targets[i].post(move |ctx| {
                for fd in fds {
                    ctx.accept_handed(inbox, fd);
                }
            });
            if let Err(e) = res {
                log::error!("cannot hand connections to loop {i}: {e}");
            }
        }
    }

    fn pause(&mut self, acceptor: &Rc<Acceptor>, ctx: &mut Context<'_>) {
        log::warn!("acceptor: pausing accept for {:?}", self.accept_pause);
        self.paused = true;
        let again = acceptor.clone();
        ctx.add_timer(self.accept_pause, move |ctx| {
            {
                let mut st = again.state.borrow_mut();
                st.paused = false;
                st.spare.refill();
            }
            again.accept_ready(ctx);
        });
    }
}
