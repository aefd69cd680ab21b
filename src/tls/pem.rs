//! Certificates, keys and configs from PEM files (rustls-pki-types'
//! `PemObject`; no PEM parsing of our own).
//!
//! Every error names the file and what was wrong with it, so a server that
//! cannot start says why: missing or unreadable file (the OS error), a file
//! that is not PEM or holds no item of the wanted kind, a key that does not
//! belong to the certificate.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::Path;
use std::sync::Arc;

fn pem_error(path: &Path, what: &str, e: pem::Error) -> io::Error {
    match e {
        pem::Error::Io(e) => io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        pem::Error::NoItemsFound => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no PEM {what} found in the file", path.display()),
        ),
        other => io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a valid PEM {what} file: {other}", path.display()),
        ),
    }
}

/// Reads every certificate (`BEGIN CERTIFICATE`) of a PEM file, leaf first.
///
/// # Errors
/// The OS error (with the path) if the file cannot be read; `InvalidData`
/// if it is not PEM or holds no certificate.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    // Read it ourselves first: a missing file is the OS error, not "no
    // items" (pem_file_iter would report it the same way, but say it here).
    let bytes = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "certificate", e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "certificate", pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, SEC1 EC or PKCS#1 RSA) of a PEM
/// file.
///
/// # Errors
/// As [`load_certs`]; `InvalidData` if the file holds no private key.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| pem_error(path, "private key", e))
}

/// The crypto provider sockloop's TLS uses (ring; see Cargo.toml for why).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: &str, e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
}

/// A server config from a certificate chain file and its key file (PEM),
/// TLS 1.2 and 1.3, no client authentication, advertising `alpn` (e.g.
/// `&[b"http/1.1"]`; empty for none). Session resumption works out of the
/// box: stateful (a 256-entry cache) and, for TLS 1.3, tickets
/// encrypted with a key made at start-up.
///
/// # Errors
/// As [`load_certs`] and [`load_private_key`]; `InvalidInput` if the key
/// does not match the certificate or is of an unsupported kind.
pub fn server_config_from_pem(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
    alpn: &[&[u8]],
) -> io::Result<Arc<rustls::ServerConfig>> {
    let certs = load_certs(cert_path.as_ref())?;
    let key = load_private_key(key_path.as_ref())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            tls_error(
                &format!(
                    "{} with {}",
                    key_path.as_ref().display(),
                    cert_path.as_ref().display()
                ),
                e,
            )
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| tls_error("ticketer", e))?;
    Ok(Arc::new(config))
}

/// Where Debian (and most Linux systems) keep the system's trusted CAs.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// A client config that trusts the CA certificates of `ca_path` (PEM), or
/// the system bundle ([`SYSTEM_CA_BUNDLE`]) when `None`. Server
/// certificates are verified (chain and name): there is no switch to turn
/// that off here.
///
/// # Errors
/// As [`load_certs`]; `InvalidData` if no certificate of the file is a
/// usable trust anchor.
pub fn client_config_from_pem(
    ca_path: Option<&Path>,
    alpn: &[&[u8]],
) -> io::Result<Arc<rustls::ClientConfig>> {
    let path = ca_path.unwrap_or(Path::new(SYSTEM_CA_BUNDLE));
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(load_certs(path)?);
    if added == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no usable CA certificate", path.display()),
        ));
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS versions", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
