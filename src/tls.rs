//! TLS set-up: certificates and keys from PEM files, the rustls configs
//! built from them, the checks a real deployment needs (a key that matches,
//! a certificate that has not expired), a fresh self-signed certificate for
//! `server --generate-cert`, and the server handshake with a deadline.
//!
//! A rustls `ServerConfig` is expensive to build (it parses the key and
//! prepares the signer) and cheap to share, so the server builds one at start
//! and hands every connection an `Arc` clone of it (rustls's own
//! `tlsserver-mio` example does the same). A reload (SIGHUP) builds a whole
//! new config with the same functions and swaps the `Arc`: see
//! `server::reload`. PEM parsing uses the `PemObject` trait of
//! `rustls-pki-types`; `rustls-pemfile` is unmaintained.
//!
//! The functions here do no logging and keep no state: they read files and
//! return a config or one error sentence, so the binary, the reload and the
//! tests all get the same checks and the same words.
//!
//! The crypto provider is *ring*, chosen explicitly rather than through
//! rustls's process-wide default, so that nothing depends on which provider
//! features some other crate happened to enable.

use std::io::{self, ErrorKind, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, InconsistentKeys, RootCertStore, ServerConfig, ServerConnection};
use time::OffsetDateTime;

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
    let unreadable = |e| {
        Error::Tls(format!(
            "cannot read certificates from {shown}: {}",
            pem_error(e)
        ))
    };
    let iter = CertificateDer::pem_file_iter(path).map_err(unreadable)?;
    let certs = iter
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "no certificate found in {shown} (no -----BEGIN CERTIFICATE----- block): is it the \
             key, or another file?"
        )));
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
            "cannot read a private key from {}: {}",
            path.display(),
            pem_error(e)
        ))
    })
}

/// A PEM file's error in words: for a file that cannot be read, the
/// operating system's reason alone (`No such file or directory (os error
/// 2)`), without the parser's "I/O error:" before it.
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as Pem;
    match e {
        Pem::Io(e) => e.to_string(),
        // Only `load_key` meets this one: `load_certs` counts what it found.
        Pem::NoItemsFound => "it holds no private key (no -----BEGIN … PRIVATE KEY----- \
                              block): is it the certificate, or another file?"
            .into(),
        other => other.to_string(),
    }
}

/// How many days before its end a certificate is reported as expiring
/// soon: at start, after a reload, and once a day while the server runs.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The command that makes a new development certificate, quoted in every
/// "expired" message so the fix is one copy-paste away.
pub const GENERATE_COMMAND: &str = "server --generate-cert --force";

/// The files the server's TLS identity comes from. Kept by the running
/// server so that a reload (SIGHUP) reads the same paths again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM): the leaf first, then any intermediates.
    pub cert: PathBuf,
    /// The private key of the leaf (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// With mutual TLS: the CA certificate(s) that client certificates must
    /// chain to (`--client-ca`). `None`: clients show no certificate.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// A certificate and key, without client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }

    /// The same files, with mutual TLS against the CA in `ca`.
    pub fn with_client_ca(mut self, ca: impl Into<PathBuf>) -> Self {
        self.client_ca = Some(ca.into());
        self
    }
}

/// What the server tells about a certificate: in the log at start and at
/// each reload, and for the expiry checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject as text, e.g. `CN=localhost`.
    pub subject: String,
    /// The serial number in hex, e.g. `3a:9f:…`: what tells two versions
    /// of a certificate for the same name apart (see `docs/TLS.md`).
    pub serial: String,
    /// The end of the validity period (notAfter), in UTC.
    pub not_after: OffsetDateTime,
}

impl CertInfo {
    /// Reads the subject, serial and expiry of a DER certificate.
    ///
    /// rustls and webpki check a certificate's dates during a handshake but
    /// do not expose them (nor a printable subject), so this uses
    /// `x509-parser`, the rusticata project's maintained X.509 parser.
    ///
    /// # Errors
    ///
    /// [`Error::Tls`] when the bytes are not an X.509 certificate.
    pub fn parse(cert: &CertificateDer<'_>) -> Result<CertInfo> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| Error::Tls(format!("not an X.509 certificate: {e}")))?;
        let not_after =
            OffsetDateTime::from_unix_timestamp(parsed.validity().not_after.timestamp())
                .map_err(|e| Error::Tls(format!("certificate end date out of range: {e}")))?;
        Ok(CertInfo {
            subject: parsed.subject().to_string(),
            serial: parsed.raw_serial_as_string(),
            not_after,
        })
    }

    /// Where this certificate stands at `now` (a parameter, so tests step
    /// time instead of waiting for it).
    pub fn expiry(&self, now: OffsetDateTime) -> Expiry {
        let left = self.not_after - now;
        if left.is_negative() {
            Expiry::Expired
        } else if left.whole_days() < EXPIRY_WARNING_DAYS {
            Expiry::Soon {
                days: left.whole_days(),
            }
        } else {
            Expiry::Valid
        }
    }

    /// The end date as `2026-07-01 12:00 UTC`, for messages.
    pub fn not_after_text(&self) -> String {
        let d = self.not_after;
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        )
    }
}

/// A certificate's standing at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// More than [`EXPIRY_WARNING_DAYS`] left.
    Valid,
    /// It ends within [`EXPIRY_WARNING_DAYS`]: time to renew it.
    Soon {
        /// Whole days left (0 on the last day).
        days: i64,
    },
    /// Its notAfter has passed: every verifying client will refuse it.
    Expired,
}

/// The printable subject of a certificate (`CN=student-07, O=Lab`), or a
/// placeholder if it cannot be parsed. For log lines, e.g. the client
/// certificate of a mutual-TLS connection.
pub fn subject(cert: &CertificateDer<'_>) -> String {
    CertInfo::parse(cert).map_or_else(|_| "(unparsable certificate)".into(), |i| i.subject)
}

/// A server config ready to use, and what its certificate says.
pub struct ServerTlsConfig {
    /// The rustls config, shared by every connection started with it.
    pub config: Arc<ServerConfig>,
    /// The leaf certificate's subject, serial and expiry.
    pub leaf: CertInfo,
}

/// Builds the server's TLS config from `files`, checking everything a
/// teacher could get wrong, with one sentence per mistake:
///
/// - the certificate file holds no certificate (a key file given as
///   `--cert`, say) or cannot be read;
/// - the key file holds no key, or a key in a format *ring* cannot use;
/// - the key does not belong to the certificate (rustls's `keys_match`
///   compares the public key of the two, inside `with_single_cert`);
/// - the certificate has expired at `now`;
/// - the `--client-ca` file holds no usable CA certificate.
///
/// A chain (leaf, then intermediates) is sent to clients as it is in the
/// file. TLS 1.2 and 1.3.
///
/// # Errors
///
/// [`Error::Tls`] naming the file and the problem.
pub fn load_server(files: &TlsFiles, now: OffsetDateTime) -> Result<ServerTlsConfig> {
    let certs = load_certs(&files.cert)?;
    let leaf = CertInfo::parse(&certs[0])
        .map_err(|e| Error::Tls(format!("cannot use {}: {e}", files.cert.display())))?;
    if leaf.expiry(now) == Expiry::Expired {
        return Err(Error::Tls(format!(
            "the certificate in {} expired on {}; make a new one with `{GENERATE_COMMAND}` \
             (or renew it) and start again",
            files.cert.display(),
            leaf.not_after_text()
        )));
    }
    let key = load_key(&files.key)?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca)?),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => Error::Tls(format!(
            "the key in {} does not belong to the certificate in {}",
            files.key.display(),
            files.cert.display()
        )),
        other => Error::Tls(format!(
            "cannot use {} with {}: {other}",
            files.cert.display(),
            files.key.display()
        )),
    })?;
    Ok(ServerTlsConfig {
        config: Arc::new(config),
        leaf,
    })
}

/// The one application protocol the server offers in ALPN when its web
/// side is on (`--web on`): HTTP/1.1, never `h2`.
///
/// This is the routing rule of the port. A browser offers `h2` and
/// `http/1.1`; the server picks `http/1.1` and the connection is served
/// HTTP (`web`). The terminal client and `openssl s_client` offer no ALPN
/// at all: nothing is negotiated, and the connection gets protocol v1 as
/// it always did, `HELLO` first. A client that offers ALPN with no
/// protocol in common (only `h2`, say) is refused by rustls during the
/// handshake with the `no_application_protocol` alert, as RFC 7301 asks.
pub const ALPN_HTTP: &[u8] = b"http/1.1";

/// `config` with `protocols` as the ALPN protocols it offers (none: ALPN is
/// not offered). A `ServerConfig` is immutable once shared, so this makes
/// a copy (a few `Arc` clones) unless the caller held the only one.
pub fn with_alpn(config: Arc<ServerConfig>, protocols: &[Vec<u8>]) -> Arc<ServerConfig> {
    if config.alpn_protocols == protocols {
        return config;
    }
    let mut config = Arc::unwrap_or_clone(config);
    config.alpn_protocols = protocols.to_vec();
    Arc::new(config)
}

/// Builds the server's TLS config from a certificate chain file and a key
/// file, without client certificates: [`load_server`] at the current time.
///
/// # Errors
///
/// [`Error::Tls`] when a file cannot be used, the key does not match the
/// certificate, or the certificate has expired.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    load_server(&TlsFiles::new(cert, key), OffsetDateTime::now_utc()).map(|tls| tls.config)
}

/// The mutual-TLS check: a client must present a certificate that chains to
/// a CA in `ca` and is valid now (webpki's usual checks, for the
/// client-authentication purpose). Clients without one are refused during
/// the handshake.
fn client_verifier(ca: &Path) -> Result<Arc<dyn ClientCertVerifier>> {
    let roots = roots_from(ca)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| Error::Tls(format!("cannot use {} as client CA: {e}", ca.display())))
}

/// A root store holding every certificate of the PEM file `ca`.
fn roots_from(ca: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("cannot trust {}: {e}", ca.display())))?;
    }
    Ok(roots)
}

/// The operating system's trust store (what browsers on this machine
/// trust), for a server with a CA-issued certificate (`client --ca system`).
///
/// # Errors
///
/// [`Error::Tls`] when no certificate at all could be loaded. Individual
/// unreadable certificates are skipped, as browsers do.
pub fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "it is empty".to_string(), ToString::to_string);
        return Err(Error::Tls(format!(
            "no trusted certificate in the system's trust store: {why}"
        )));
    }
    Ok(roots)
}

/// A client certificate and its key (`client --cert FILE --key FILE`), for
/// a server that requires mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The client's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How a client checks the server: trust anchors (a CA file, the system's
/// store) or a custom verifier (a pinned certificate, or none).
pub enum ServerCheck {
    /// The usual WebPKI check against these roots, with the host name.
    Roots(RootCertStore),
    /// A verifier of our own (see `client::trust`).
    Custom(Arc<dyn ServerCertVerifier>),
}

/// Builds a client config (TLS 1.2 and 1.3) that checks the server with
/// `check`, and presents `identity` if the server asks for a certificate.
///
/// # Errors
///
/// [`Error::Tls`] when the identity's files cannot be used (naming them),
/// or the key does not belong to the certificate.
pub fn client_config_with(
    check: ServerCheck,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match check {
        ServerCheck::Roots(roots) => builder.with_root_certificates(roots),
        // "dangerous" is rustls's name for "you are replacing the WebPKI
        // check": with a stricter one (a pinned certificate) or, for
        // --insecure, with none.
        ServerCheck::Custom(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(verifier),
    };
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let certs = load_certs(&id.cert)?;
            let key = load_key(&id.key)?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                Error::Tls(format!(
                    "cannot use {} with {}: {e}",
                    id.cert.display(),
                    id.key.display()
                ))
            })?
        }
    };
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
    client_config_with(ServerCheck::Roots(roots_from(ca)?), None)
}

/// A fresh self-signed certificate and its key, both PEM.
pub struct Generated {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM, PKCS#8).
    pub key_pem: String,
    /// Its subject, serial and end date.
    pub info: CertInfo,
}

/// The names `--generate-cert` puts in a certificate when none is given.
pub const DEFAULT_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Makes a self-signed ECDSA P-256 certificate for `names` (DNS names or IP
/// addresses; the first is also the subject's CN), valid from `now` for
/// `days` days, with a new key. The same kind as the bundled development
/// certificate: a server certificate (not a CA), usable for TLS servers.
///
/// # Errors
///
/// [`Error::Config`] for an empty list or a name that is neither a DNS name
/// nor an IP address; [`Error::Tls`] if generation fails.
pub fn generate_self_signed(names: &[String], days: u32, now: OffsetDateTime) -> Result<Generated> {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    let first = names
        .first()
        .ok_or_else(|| Error::Config("--san: at least one name is needed".into()))?;
    if days == 0 {
        return Err(Error::Config("--days must be at least 1".into()));
    }
    // rcgen takes any ASCII text as a DNS name; a client would then refuse
    // the certificate for a name it can never match. Check each name the
    // way a client parses the name it dials.
    for name in names {
        if ServerName::try_from(name.as_str()).is_err() {
            return Err(Error::Config(format!(
                "--san {name:?} is neither a DNS name nor an IP address"
            )));
        }
    }
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(|e| Error::Config(format!("--san {names:?}: {e}")))?;
    params
        .distinguished_name
        .push(DnType::CommonName, first.as_str());
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // A minute in the past, so that a client whose clock is a little behind
    // does not see a certificate "not yet valid".
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::days(i64::from(days));
    // KeyPair::generate() is ECDSA P-256 with SHA-256 (rcgen's default).
    let key = KeyPair::generate().map_err(|e| Error::Tls(format!("key generation: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(format!("certificate generation: {e}")))?;
    let info = CertInfo::parse(cert.der())?;
    Ok(Generated {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        info,
    })
}

/// Writes a generated certificate and key to `cert` and `key`. The key file
/// is readable by its owner only (mode 0600) on Unix. Existing files are
/// kept unless `force` is set: overwriting a real certificate by accident
/// would take a class offline.
///
/// # Errors
///
/// [`Error::Config`] when a file exists and `force` is off; [`Error::Io`]
/// when a file cannot be written.
pub fn write_generated(generated: &Generated, cert: &Path, key: &Path, force: bool) -> Result<()> {
    if !force {
        for path in [cert, key] {
            if path.exists() {
                return Err(Error::Config(format!(
                    "{} already exists; add --force to overwrite it, or write the new pair \
                     elsewhere with --cert DIR/cert.pem --key DIR/key.pem",
                    path.display()
                )));
            }
        }
    }
    write_file(key, generated.key_pem.as_bytes(), true)?;
    write_file(cert, generated.cert_pem.as_bytes(), false)
}

/// Writes `bytes` to `path`, replacing it; `secret` files get mode 0600.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let failed = |e| Error::io(format!("write {}", path.display()), e);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // `mode` applies when the file is created; an existing key file
        // (with --force) gets the same permissions explicitly below.
        options.mode(0o600);
        let mut file = options.open(path).map_err(failed)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(failed)?;
        return file.write_all(bytes).map_err(failed);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(bytes).map_err(failed)
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
/// `deadline` passes, however the peer's bytes arrive.
///
/// rustls's `complete_io` would be shorter, but it keeps reading for as
/// long as bytes keep coming, so a deadline checked between its calls is
/// not a deadline: a ClientHello dribbled one byte at a time kept a socket
/// open for as long as the bytes kept coming. So this runs the loop of
/// `complete_io` itself, one step at a time (`write_tls`, `read_tls`,
/// `process_new_packets`), and before each step that can block it sets
/// the socket's timeout to the time left until `deadline`. No system call
/// can wait past it, and a peer that sends one byte every few seconds is
/// cut off at the deadline just like a silent one.
///
/// When it returns `Ok`, everything the handshake queued for the peer has
/// been written (with TLS 1.2 the server's last flight follows the
/// client's; with TLS 1.3 the session tickets). Lines the client sent
/// right behind its last handshake message may already be decrypted: they
/// wait in `conn.reader()`.
///
/// The caller owns the connection alone at this point (no writer thread
/// exists yet), so no lock is involved.
///
/// # Errors
///
/// [`Error::Tls`] for a protocol failure (including a peer that speaks
/// plain text), a peer that closed, or a handshake that ran out of time;
/// [`Error::Io`] when the socket fails.
pub fn handshake(conn: &mut ServerConnection, socket: &TcpStream, deadline: Instant) -> Result<()> {
    // `&TcpStream` is itself `Read + Write`: the handshake borrows the
    // socket, which the caller may share (e.g. to shut it down from
    // another thread).
    let mut socket = socket;
    loop {
        // 1. Send whatever rustls has queued: our flight, or an alert.
        while conn.wants_write() {
            let left = time_left(deadline)?;
            socket
                .set_write_timeout(Some(left))
                .map_err(|e| Error::io("set the socket's write timeout", e))?;
            match conn.write_tls(&mut socket) {
                Ok(0) => return Err(peer_closed()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(timed_out()),
                Err(e) => return Err(Error::io("handshake", e)),
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        // 2. Wait for the peer's next bytes, no longer than the time left.
        let left = time_left(deadline)?;
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| Error::io("set the socket's read timeout", e))?;
        match conn.read_tls(&mut socket) {
            Ok(0) => return Err(peer_closed()),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => return Err(timed_out()),
            Err(e) => return Err(Error::io("handshake", e)),
        }
        // 3. Let rustls act on them (memory only).
        if let Err(e) = conn.process_new_packets() {
            // A protocol error (a plain-text peer, a bad record). rustls
            // has queued an alert saying so: one last best-effort write
            // delivers it, if there is time left for it.
            if let Ok(left) = time_left(deadline) {
                if socket.set_write_timeout(Some(left)).is_ok() {
                    let _ = conn.write_tls(&mut socket);
                }
            }
            return Err(Error::Tls(e.to_string()));
        }
    }
}

/// The time left until `deadline`, or the "timed out" error if none is.
fn time_left(deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out())
    } else {
        Ok(left)
    }
}

/// The error of a handshake that ran out of time.
fn timed_out() -> Error {
    Error::Tls("handshake timed out".into())
}

/// The error of a peer that went away in the middle of the handshake.
fn peer_closed() -> Error {
    Error::Tls("peer closed the connection during the handshake".into())
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

    /// A certificate ending at `not_after`, for the expiry rules.
    fn ending(not_after: OffsetDateTime) -> CertInfo {
        CertInfo {
            subject: "CN=test".into(),
            serial: "01".into(),
            not_after,
        }
    }

    /// More than 30 days left is fine, 30 days or fewer is "soon" (with the
    /// whole days left), past the end is expired; time is a parameter.
    #[test]
    fn expiry_thresholds() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time");
        let days = time::Duration::days;
        assert_eq!(ending(now + days(31)).expiry(now), Expiry::Valid);
        assert_eq!(
            ending(now + days(29)).expiry(now),
            Expiry::Soon { days: 29 }
        );
        assert_eq!(
            ending(now + time::Duration::hours(5)).expiry(now),
            Expiry::Soon { days: 0 }
        );
        assert_eq!(
            ending(now - time::Duration::seconds(1)).expiry(now),
            Expiry::Expired
        );
    }

    /// The bundled development certificate is ECDSA P-256 and far from
    /// expiring, so a fresh clone starts without warnings.
    #[test]
    fn bundled_certificate_is_p256_and_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let certs = load_certs(&dir.join("cert.pem")).expect("bundled cert");
        let (_, parsed) = x509_parser::parse_x509_certificate(certs[0].as_ref()).expect("x509");
        // id-ecPublicKey with the prime256v1 curve.
        let spki = parsed.public_key();
        assert_eq!(spki.algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .expect("a named curve");
        assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7");
        let info = CertInfo::parse(&certs[0]).expect("parse");
        assert_eq!(info.expiry(OffsetDateTime::now_utc()), Expiry::Valid);
    }

    /// A generated certificate loads with its key, names its first SAN as
    /// subject and ends `days` after `now`; with another generated key the
    /// mismatch is one sentence naming both files.
    #[test]
    fn generated_certificate_loads_and_a_foreign_key_is_named() {
        let dir = tempfile_dir();
        let now = OffsetDateTime::now_utc();
        let names = vec!["chat.example.org".to_string(), "192.0.2.7".to_string()];
        let one = generate_self_signed(&names, 10, now).expect("generate");
        let two = generate_self_signed(&names, 10, now).expect("generate");
        assert_eq!(one.info.subject, "CN=chat.example.org");
        assert_eq!(
            one.info.expiry(now),
            Expiry::Soon { days: 9 },
            "ten days minus the running second"
        );
        let (cert, key, other) = (dir.join("c.pem"), dir.join("k.pem"), dir.join("o.pem"));
        write_generated(&one, &cert, &key, false).expect("write");
        std::fs::write(&other, &two.key_pem).expect("write other key");
        load_server(&TlsFiles::new(&cert, &key), now).expect("loads");
        let e = load_server(&TlsFiles::new(&cert, &other), now)
            .err()
            .expect("mismatch");
        assert_eq!(
            e.to_string(),
            format!(
                "tls: the key in {} does not belong to the certificate in {}",
                other.display(),
                cert.display()
            )
        );
        // Ten days later the same files are refused as expired.
        let later = now + time::Duration::days(11);
        let e = load_server(&TlsFiles::new(&cert, &key), later)
            .err()
            .expect("expired");
        assert!(e.to_string().contains("expired on"), "{e}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// No names, zero days, or a name that is not one are refused.
    #[test]
    fn generate_refuses_bad_input() {
        let now = OffsetDateTime::now_utc();
        assert!(generate_self_signed(&[], 10, now).is_err());
        assert!(generate_self_signed(&["localhost".into()], 0, now).is_err());
        assert!(generate_self_signed(&["not a name!".into()], 10, now).is_err());
    }

    /// A fresh directory under the system's temp dir (the library has no
    /// `tempfile` dependency; the test cleans up itself).
    fn tempfile_dir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chat-tls-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
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
