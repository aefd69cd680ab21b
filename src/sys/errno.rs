//! The errno values the layers above `sys` need to recognise by number.

pub use libc::{
    EADDRINUSE, EAGAIN, ECONNABORTED, ECONNREFUSED, ECONNRESET, EINPROGRESS, EINTR, EMFILE, ENFILE,
    ENOBUFS, ENOMEM, ENOTSOCK, EPIPE, ETIMEDOUT,
};
