//! Sockets: TCP listeners and streams (more families in their own files).
//!
//! These are thin, non-blocking owners of a descriptor that convert to and
//! from `std::net` types and implement the `std::os::fd` traits, so they
//! mix with the rest of the Rust ecosystem.

pub mod tcp;

pub use tcp::{TcpListener, TcpStream};
