//! The waker: how other threads reach the loop.
//!
//! An eventfd is registered with the loop. [`LoopHandle::post`] pushes a
//! closure onto a mutex-protected queue and writes to the eventfd; the loop
//! wakes, drains the eventfd, and runs the queued closures on its thread.

use crate::reactor::context::Context;
use crate::sys;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Work posted to the loop from another thread.
pub(crate) type Task = Box<dyn FnOnce(&mut Context<'_>) + Send>;

pub(crate) struct Shared {
    pub(crate) waker: OwnedFd,
    tasks: Mutex<Vec<Task>>,
    stop: AtomicBool,
    // Grace period in ms + 1 of a requested shutdown; 0 = none.
    shutdown: AtomicU64,
}

impl Shared {
    pub(crate) fn new(waker: OwnedFd) -> Shared {
        Shared {
            waker,
            tasks: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            shutdown: AtomicU64::new(0),
        }
    }

    pub(crate) fn take_tasks(&self) -> Vec<Task> {
        match self.tasks.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    pub(crate) fn take_stop(&self) -> bool {
        self.stop.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn take_shutdown(&self) -> Option<Duration> {
        match self.shutdown.swap(0, Ordering::AcqRel) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1)),
        }
    }
}

/// A thread-safe handle to an [`crate::EventLoop`]: post work into it, wake
/// it, stop it. Cheap to clone.
#[derive(Clone)]
pub struct LoopHandle {
    pub(crate) shared: Arc<Shared>,
}

impl LoopHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> LoopHandle {
        LoopHandle { shared }
    }

    /// A handle (and its eventfd) for a loop not built yet: tasks posted
    /// to it wait in its queue until the loop built with
    /// `EventLoop::with_shared(handle.shared)` runs its first turn.
    pub(crate) fn detached() -> io::Result<LoopHandle> {
        Ok(LoopHandle::new(Arc::new(Shared::new(
            sys::eventfd::create()?,
        ))))
    }

    /// Runs `task` on the loop thread at its next turn.
    ///
    /// # Errors
    /// The errno of writing the eventfd (EBADF only if the loop is gone).
    pub fn post<F>(&self, task: F) -> io::Result<()>
    where
        F: FnOnce(&mut Context<'_>) + Send + 'static,
    {
        match self.shared.tasks.lock() {
            Ok(mut q) => q.push(Box::new(task)),
            Err(poisoned) => poisoned.into_inner().push(Box::new(task)),
        }
        self.wake()
    }

    /// Wakes the loop from `epoll_wait`.
    ///
    /// # Errors
    /// The errno of writing the eventfd.
    pub fn wake(&self) -> io::Result<()> {
        sys::eventfd::wake(self.shared.waker.as_fd())
    }

    /// Makes `run()` return after the current turn. Connections stay open.
    ///
    /// # Errors
    /// As [`LoopHandle::wake`].
    pub fn stop(&self) -> io::Result<()> {
        self.shared.stop.store(true, Ordering::Release);
        self.wake()
    }

    /// Starts a graceful shutdown (as SIGTERM would): stop accepting, flush
    /// and close every connection, abort what remains after `grace`.
    ///
    /// # Errors
    /// As [`LoopHandle::wake`].
    pub fn shutdown(&self, grace: Duration) -> io::Result<()> {
        let ms = grace.as_millis().min(u64::MAX as u128 - 1) as u64 + 1;
        self.shared.shutdown.store(ms, Ordering::Release);
        self.wake()
    }
}
