//! TLS (feature `tls`): rustls driven over non-blocking sockets under
//! edge-triggered readiness.
//!
//! This layer sits between the I/O layers ([`crate::io`], `sys`) and the
//! reactor: the reactor uses it for connections of a listener configured
//! with a [`rustls::ServerConfig`] (and for outgoing connections given a
//! [`rustls::ClientConfig`]), so that a [`crate::Handler`] reads and writes
//! plaintext whether its connection is TLS or not. It knows nothing of the
//! reactor and can drive a rustls connection over any non-blocking socket
//! by itself ([`TlsSession`]).
//!
//! The classic mistakes of hand-written rustls loops that it avoids:
//!
//! | pitfall | what [`TlsSession`] does |
//! |---|---|
//! | reading one record per edge | every byte of a read is given to rustls and every complete record processed; only a short read or EAGAIN counts as drained |
//! | losing the edge when the plaintext buffer is full | decrypted bytes that do not fit stay in the session and the read reports "not drained" ([`TlsRead::Full`], `Data { drained: false }`), so the caller keeps the connection readable (the reactor's ready list) |
//! | never retrying a blocked flush | [`TlsSession::send_to`] reports a full socket; the caller flushes again on EPOLLOUT (the reactor queues the rest in the connection's output buffer, which it flushes on every EPOLLOUT) |
//! | dropping data that arrives with close_notify | plaintext decrypted before close_notify (or a FIN) is delivered first; [`TlsRead::Closed`] comes after |
//! | treating FIN without close_notify as a clean end | it is [`TlsRead::Truncated`] |
//! | panicking or killing the process on bad input | protocol errors are [`TlsRead::Protocol`] for that connection, with rustls's alert queued to send |
//!
//! Renegotiation: rustls never renegotiates; a TLS 1.2 peer that asks gets
//! a `no_renegotiation` alert (or a fatal one), never a new handshake.
//!
//! Certificates and keys come from PEM files through rustls-pki-types
//! ([`load_certs`], [`load_private_key`], [`server_config_from_pem`],
//! [`client_config_from_pem`]).

mod pem;
mod session;

pub use pem::{
    client_config_from_pem, load_certs, load_private_key, provider, server_config_from_pem,
    SYSTEM_CA_BUNDLE,
};
/// The rustls crate this build uses, so that configs are built with the
/// same version the reactor takes.
pub use rustls;
pub use session::{TlsRead, TlsSession};

#[cfg(test)]
mod tests;
