//! sockloop: a hand-rolled, single-threaded epoll event loop.
#![deny(missing_docs)]

pub mod net;
pub mod options;
pub mod sys;
