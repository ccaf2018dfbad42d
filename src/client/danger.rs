//! `--insecure`: a certificate verifier that does not verify who the server
//! is. Named after rustls's own `danger` module, so that every use of it
//! reads as what it is.
//!
//! The original Python client connected with `ssl.CERT_NONE`, so the course
//! keeps this mode for comparison (and for servers whose `cert.pem` a
//! student does not have). It encrypts, but against a *passive* listener
//! only: whoever sits between the client and the server (the café Wi-Fi, a
//! tunnel) can present their own certificate, read the password typed at
//! login and change every message. The client prints a warning every time
//! this mode is used.
//!
//! The handshake signatures are still checked, which only proves that the
//! server holds the key of *whatever* certificate it showed, not who it is.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate. Do not use it for anything that matters.
#[derive(Debug)]
pub struct NoVerification {
    /// The signature algorithms the handshake signatures are checked with.
    algorithms: WebPkiSupportedAlgorithms,
}

impl NoVerification {
    /// A verifier that accepts every certificate, checking handshake
    /// signatures with `algorithms`.
    pub fn new(algorithms: WebPkiSupportedAlgorithms) -> Self {
        NoVerification { algorithms }
    }
}

impl ServerCertVerifier for NoVerification {
    /// Accepts whatever certificate the server shows: this is the danger.
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    /// Checks the TLS 1.2 handshake signature against the shown certificate.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    /// Checks the TLS 1.3 handshake signature against the shown certificate.
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
