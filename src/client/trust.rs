//! How the client decides to trust the server, and the rustls config for
//! each way.
//!
//! There are four, chosen on the command line:
//!
//! | option | what is checked | for |
//! |---|---|---|
//! | (default) `--cert-pin cert.pem` | the server's certificate is *byte for byte* the one in the file; the handshake signatures prove the server holds its key | the course: the teacher hands out `cert.pem`; works for `localhost` and through a tunnel whose name is not in the certificate |
//! | `--ca FILE` [`--server-name NAME`] | the usual web check: a chain to the CA in FILE, valid dates, and NAME (default: `--host`) in the certificate | a real deployment, or a CA made for tests |
//! | `--ca system` [`--server-name NAME`] | the same web check, against the operating system's trust store | a server with a certificate from a public CA (e.g. Let's Encrypt for a real domain) |
//! | `--insecure` | nothing about who the server is ([`danger`](super::danger)) | reproducing the original's no-verification mode, with a warning every time |
//!
//! # Why pinning is real verification
//!
//! A TLS client has to answer two questions: *is this the certificate I
//! expect?* and *does the peer hold the private key of that certificate?*
//! The web answers the first with a CA chain and a host name. A pinned
//! certificate answers it directly, like an SSH `known_hosts` entry: only
//! that exact certificate is accepted, whatever name we dialled, so an ngrok
//! address like `0.tcp.sa.ngrok.io` works with a certificate made for
//! `localhost`. The second question is answered exactly as webpki would:
//! [`PinnedCertVerifier`] checks the handshake signatures with the *ring*
//! provider's algorithms. A machine in the middle has neither the pinned
//! certificate's key nor any way to make a different certificate match.
//!
//! # Presenting a client certificate
//!
//! Independently of how the server is checked, `--cert FILE --key FILE`
//! makes the client present a certificate of its own, for a server started
//! with `--client-ca` (a locked-down lab: only machines holding a
//! certificate signed by the lab's CA get in). rustls sends it only when the
//! server asks.
//!
//! What pinning leaves out, on purpose: the certificate's dates (a course
//! certificate is trusted for as long as the file is handed out, as with
//! SSH host keys) and revocation (to stop trusting it, hand out a new file).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::danger::NoVerification;
use crate::i18n::Msg;
use crate::tls::{ClientIdentity, ServerCheck};

/// How the server's identity is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Accept exactly the first certificate of this PEM file (the default,
    /// `cert.pem` in the working directory).
    Pin(PathBuf),
    /// Verify a chain to the CA certificate(s) in this PEM file and the
    /// server name.
    Ca(PathBuf),
    /// Verify a chain to the operating system's trusted CAs and the server
    /// name (`--ca system`).
    System,
    /// Check nothing (`--insecure`).
    Insecure,
}

/// The crypto provider of the client: *ring*, like the server's (see
/// `crate::tls`).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client config for `trust`, presenting `identity`
/// (a client certificate) if the server asks for one.
///
/// # Errors
///
/// [`Msg::TrustFileUnusable`] when the pinned certificate or the CA cannot
/// be loaded, [`Msg::SystemTrustUnusable`] when the system's store is
/// empty, [`Msg::ClientCertUnusable`] when `identity` cannot be used.
pub fn client_config(
    trust: &Trust,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, Msg> {
    let unusable = |e: crate::Error| Msg::TrustFileUnusable {
        detail: e.to_string(),
    };
    let check = match trust {
        Trust::Ca(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in crate::tls::load_certs(ca).map_err(unusable)? {
                roots.add(cert).map_err(|e| Msg::TrustFileUnusable {
                    detail: format!("cannot trust {}: {e}", ca.display()),
                })?;
            }
            ServerCheck::Roots(roots)
        }
        Trust::System => ServerCheck::Roots(crate::tls::system_roots().map_err(|e| {
            Msg::SystemTrustUnusable {
                detail: e.to_string(),
            }
        })?),
        Trust::Pin(file) => ServerCheck::Custom(Arc::new(
            PinnedCertVerifier::from_pem_file(file).map_err(unusable)?,
        )),
        Trust::Insecure => ServerCheck::Custom(Arc::new(NoVerification::new(
            provider().signature_verification_algorithms,
        ))),
    };
    crate::tls::client_config_with(check, identity).map_err(|e| match identity {
        Some(_) => Msg::ClientCertUnusable {
            detail: e.to_string(),
        },
        None => Msg::TrustFileUnusable {
            detail: e.to_string(),
        },
    })
}

/// Accepts exactly one certificate, whatever the server's name, and checks
/// that the server holds its key. See the module doc.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    /// The DER bytes of the one certificate we accept.
    pinned: CertificateDer<'static>,
    /// The signature algorithms the handshake signatures are checked with.
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    /// Pins `certificate`, checking signatures with the *ring* provider.
    pub fn new(certificate: CertificateDer<'static>) -> Self {
        PinnedCertVerifier {
            pinned: certificate,
            algorithms: provider().signature_verification_algorithms,
        }
    }

    /// Pins the first certificate of a PEM file (the server's own; any
    /// intermediates after it are ignored).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Tls`] naming the file when it cannot be read or holds
    /// no certificate.
    pub fn from_pem_file(path: &Path) -> crate::Result<Self> {
        let mut certs = crate::tls::load_certs(path)?;
        Ok(Self::new(certs.swap_remove(0)))
    }
}

impl ServerCertVerifier for PinnedCertVerifier {
    /// The whole identity check: is it the pinned certificate? The server
    /// name, the intermediates and the time are deliberately not used.
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            // rustls sends the server a bad_certificate alert and the
            // handshake fails; the client turns this into a sentence.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    /// Proof that the server holds the key (TLS 1.2), checked as webpki does.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    /// Proof that the server holds the key (TLS 1.3), checked as webpki does.
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    /// The signature schemes we can check, offered to the server.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The certificate bundled with the repository.
    fn bundled() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("cert.pem")
    }

    /// The pinned certificate is accepted under any name; any other
    /// certificate is refused as an invalid certificate.
    #[test]
    fn accepts_only_the_pinned_certificate() {
        let verifier = PinnedCertVerifier::from_pem_file(&bundled()).expect("bundled cert");
        let pinned = verifier.pinned.clone();
        let name = ServerName::try_from("0.tcp.sa.ngrok.io").unwrap();
        let now = UnixTime::now();
        assert!(verifier
            .verify_server_cert(&pinned, &[], &name, &[], now)
            .is_ok());
        let mut other = pinned.as_ref().to_vec();
        let last = other.len() - 1;
        other[last] ^= 1; // one bit off is another certificate
        let other = CertificateDer::from(other);
        assert!(matches!(
            verifier.verify_server_cert(&other, &[], &name, &[], now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure
            ))
        ));
    }

    /// A client certificate whose files are missing is refused with a
    /// sentence about the client certificate, naming the file.
    #[test]
    fn missing_client_certificate() {
        let identity = ClientIdentity {
            cert: "/nonexistent/me.pem".into(),
            key: "/nonexistent/me.key".into(),
        };
        let Err(Msg::ClientCertUnusable { detail }) =
            client_config(&Trust::Pin(bundled()), Some(&identity))
        else {
            panic!("a missing client certificate must be refused");
        };
        assert!(detail.contains("/nonexistent/me.pem"), "{detail}");
    }

    /// A missing pin file is a sentence that names the file and says
    /// what to do.
    #[test]
    fn missing_pin_file() {
        let Err(Msg::TrustFileUnusable { detail }) =
            client_config(&Trust::Pin("/nonexistent/cert.pem".into()), None)
        else {
            panic!("a missing file must be refused");
        };
        assert!(detail.contains("/nonexistent/cert.pem"), "{detail}");
    }

    /// Each mode builds a config from the bundled certificate.
    #[test]
    fn every_mode_builds() {
        client_config(&Trust::Pin(bundled()), None).expect("pin");
        client_config(&Trust::Ca(bundled()), None).expect("ca");
        client_config(&Trust::Insecure, None).expect("insecure");
    }
}
