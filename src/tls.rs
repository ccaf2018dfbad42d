//! TLS set-up: certificates and keys from PEM files, the rustls configs
//! built once per process, and the server handshake with a deadline.
//!
//! A rustls `ServerConfig` is expensive to build (it parses the key and
//! prepares the signer) and cheap to share, so the server builds one at start
//! and hands every connection an `Arc` clone of it (rustls's own
//! `tlsserver-mio` example does the same). PEM parsing uses the
//! `PemObject` trait of `rustls-pki-types`; `rustls-pemfile` is unmaintained.
//!
//! The crypto provider is *ring*, chosen explicitly rather than through
//! rustls's process-wide default, so that nothing depends on which provider
//! features some other crate happened to enable.

use std::io::{self, ErrorKind};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, ServerConnection};

use crate::error::{Error, Result};

/// The crypto provider every config of this crate uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads every certificate of a PEM file (a leaf, or a leaf followed by its
/// intermediates).
///
/// # Errors
///
/// [`Error::Tls`] naming the file when it cannot be read or holds no
/// certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let shown = path.display();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| Error::Tls(format!("cannot read certificates from {shown}: {e}")))?;
    let certs = iter
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("cannot read certificates from {shown}: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("no certificate found in {shown}")));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// [`Error::Tls`] naming the file when it cannot be read or holds no key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        Error::Tls(format!(
            "cannot read a private key from {}: {e}",
            path.display()
        ))
    })
}

/// Builds the server's TLS config from a certificate chain file and a key
/// file. TLS 1.2 and 1.3, no client certificates.
///
/// # Errors
///
/// [`Error::Tls`] when a file cannot be used or the key does not match the
/// certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let certs = load_certs(cert)?;
    let key = load_key(key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls(format!("cannot use {}: {e}", cert.display())))?;
    Ok(Arc::new(config))
}

/// Builds a client config that trusts exactly the certificates in `ca`
/// (a CA, or the server's own self-signed certificate).
///
/// # Errors
///
/// [`Error::Tls`] when the file cannot be read or a certificate in it is
/// not usable as a trust anchor.
pub fn client_config(ca: &Path) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("cannot trust {}: {e}", ca.display())))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Parses a host name or IP address for SNI and certificate checks.
///
/// # Errors
///
/// [`Error::Tls`] when `host` is neither a DNS name nor an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::Tls(format!("{host:?} is not a valid server name")))
}

/// Drives a server handshake on a blocking socket until it completes or
/// `deadline` passes.
///
/// The socket's read timeout is re-armed before every read with the time
/// that is left, so a peer that trickles one byte every few seconds is cut
/// off at the deadline just like a silent one. The caller owns the
/// connection alone at this point (no writer thread exists yet), so no lock
/// is involved.
///
/// # Errors
///
/// [`Error::Tls`] for a protocol failure (including a peer that speaks
/// plain text) or a handshake that ran out of time; [`Error::Io`] when the
/// socket fails or the peer goes away.
pub fn handshake(conn: &mut ServerConnection, socket: &TcpStream, deadline: Instant) -> Result<()> {
    // `&TcpStream` is itself `Read + Write`: the handshake borrows the
    // socket, which the caller may share (e.g. to shut it down from
    // another thread).
    let mut socket = socket;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Tls("handshake timed out".into()));
        }
        socket
            .set_read_timeout(Some(left))
            .and_then(|()| socket.set_write_timeout(Some(left)))
            .map_err(|e| Error::io("set socket timeout", e))?;
        match conn.complete_io(&mut socket) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(Error::Tls(
                    "peer closed the connection during the handshake".into(),
                ))
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                return Err(Error::Tls("handshake timed out".into()));
            }
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                // rustls reports protocol errors (a plain-text peer, a bad
                // record) as InvalidData. It has queued an alert: one last
                // best-effort write delivers it, as rustls's examples do.
                let _ = conn.write_tls(&mut socket);
                return Err(Error::Tls(e.to_string()));
            }
            Err(e) => return Err(Error::io("handshake", e)),
        }
    }
    Ok(())
}

/// A read or write that ran out of time shows up as `WouldBlock` on Unix and
/// `TimedOut` on Windows; both mean the same thing to us (ureq's
/// `normalize_would_block`).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled development certificate and key build a server config.
    #[test]
    fn bundled_certificate_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        server_config(&dir.join("cert.pem"), &dir.join("key.pem")).expect("bundled cert works");
        client_config(&dir.join("cert.pem")).expect("bundled cert is a trust anchor");
    }

    /// A missing file is one clear line naming it.
    #[test]
    fn missing_certificate_names_the_file() {
        let e = server_config(Path::new("/nonexistent/c.pem"), Path::new("k.pem")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("tls: cannot read certificates from /nonexistent/c.pem"),
            "{text}"
        );
    }

    /// A key file that holds no key is refused with its name.
    #[test]
    fn certificate_as_key_is_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let e = server_config(&dir.join("cert.pem"), &dir.join("cert.pem")).unwrap_err();
        assert!(
            e.to_string().contains("cannot read a private key from"),
            "{e}"
        );
    }
}
