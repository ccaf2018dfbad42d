//! TLS for real deployments: mutual TLS (`--client-ca`), certificate
//! chains, every key format, reloading the certificate without a restart,
//! `--generate-cert`, and the expiry checks.
//!
//! Every certificate here is made by rcgen at test time (a CA, an
//! intermediate, server and client certificates), except the RSA and SEC1
//! keys that rcgen cannot make, which are test-only files under
//! `tests/data/`. No test turns verification off: each client trusts a
//! real CA or pins a real certificate, as a real client would.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chat::client::trust::{self, Trust};
use chat::server::ServerTls;
use chat::tls::{self, CertInfo, ClientIdentity, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use support::{
    error_line, listening_addr, log_lines, run_to_exit, send_signal, wait_for_exit, wait_for_log,
    TestClient, TestServer,
};
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------
// A small PKI, made fresh for each test that needs one.
// ---------------------------------------------------------------------------

/// A certificate authority: its certificate and key, to sign others with.
struct Ca {
    /// The CA's certificate.
    cert: rcgen::Certificate,
    /// The CA's key.
    key: KeyPair,
}

impl Ca {
    /// A root CA named `name`.
    fn root(name: &str) -> Ca {
        let key = KeyPair::generate().expect("ca key");
        let cert = ca_params(name).self_signed(&key).expect("ca cert");
        Ca { cert, key }
    }

    /// An intermediate CA named `name`, signed by `self`.
    fn intermediate(&self, name: &str) -> Ca {
        let key = KeyPair::generate().expect("intermediate key");
        let cert = ca_params(name)
            .signed_by(&key, &self.cert, &self.key)
            .expect("intermediate cert");
        Ca { cert, key }
    }

    /// A server certificate for localhost / 127.0.0.1 with CN `cn`, valid
    /// from `not_before` to `not_after`.
    fn server(&self, cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("server params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = not_before;
        params.not_after = not_after;
        self.sign(params)
    }

    /// A server certificate valid from yesterday for a year.
    fn server_now(&self, cn: &str) -> Leaf {
        let now = OffsetDateTime::now_utc();
        self.server(cn, now - Duration::days(1), now + Duration::days(365))
    }

    /// A client certificate with CN `cn`.
    fn client(&self, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// Signs `params` with a new key.
    fn sign(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf cert");
        Leaf { cert, key }
    }

    /// A client config that trusts this CA (the usual WebPKI check).
    fn trusted_by(&self, dir: &Path, identity: Option<&ClientIdentity>) -> Arc<ClientConfig> {
        let ca = write(dir, "trusted-ca.pem", &self.cert.pem());
        trust::client_config(&Trust::Ca(ca), identity).expect("client config")
    }
}

/// The parameters of a CA certificate named `name`.
fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    params
}

/// An end-entity certificate and its key.
struct Leaf {
    /// The certificate.
    cert: rcgen::Certificate,
    /// Its key.
    key: KeyPair,
}

impl Leaf {
    /// Writes `<name>.pem` (the certificate, followed by `chain`) and
    /// `<name>.key` (PKCS#8) into `dir`; returns them as server files.
    fn write(&self, dir: &Path, name: &str, chain: &[&Ca]) -> TlsFiles {
        let mut pem = self.cert.pem();
        for ca in chain {
            pem.push_str(&ca.cert.pem());
        }
        TlsFiles::new(
            write(dir, &format!("{name}.pem"), &pem),
            write(dir, &format!("{name}.key"), &self.key.serialize_pem()),
        )
    }

    /// Writes the certificate and key as a client identity.
    fn identity(&self, dir: &Path, name: &str) -> ClientIdentity {
        let files = self.write(dir, name, &[]);
        ClientIdentity {
            cert: files.cert,
            key: files.key,
        }
    }

    /// The certificate's DER bytes.
    fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
}

/// Writes `text` to `dir/name`, returning the path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// The first line the server sends a client using `tls`, or the error
/// that ended the connection instead.
fn first_line(addr: SocketAddr, tls: Arc<ClientConfig>) -> Result<String, String> {
    let mut client = TestClient::connect_with(addr, tls);
    match client.try_line() {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err("closed without a line".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A connected client that has read `HELLO`.
fn hello(addr: SocketAddr, tls: Arc<ClientConfig>) -> TestClient {
    let mut client = TestClient::connect_with(addr, tls);
    client.expect_prefix("HELLO 1 ");
    client
}

// ---------------------------------------------------------------------------
// Mutual TLS
// ---------------------------------------------------------------------------

/// A server for a locked-down lab: its certificate from one CA, client
/// certificates required from another. Returns the temporary directory,
/// both CAs and the running server.
fn lab_server() -> (tempfile::TempDir, Ca, Ca, TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server_ca = Ca::root("chat server CA");
    let lab_ca = Ca::root("lab client CA");
    let files = server_ca
        .server_now("chat.lab")
        .write(dir.path(), "server", &[])
        .with_client_ca(write(dir.path(), "lab-ca.pem", &lab_ca.cert.pem()));
    let server = TestServer::start_tls(ServerTls::load(files).expect("load"));
    (dir, server_ca, lab_ca, server)
}

/// With `--client-ca`, a client whose certificate the lab's CA signed
/// completes the handshake and chats.
#[test]
fn mutual_tls_accepts_a_client_certificate_signed_by_the_ca() {
    let (dir, server_ca, lab_ca, server) = lab_server();

    let me = lab_ca
        .client("student-07")
        .identity(dir.path(), "student-07");
    let mut c = hello(server.addr, server_ca.trusted_by(dir.path(), Some(&me)));
    c.send("REGISTER ana pw");
    c.expect("OK REGISTER ana");
}

/// With `--client-ca`, a client without a certificate is refused during
/// the handshake: it never gets `HELLO`.
#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let (dir, server_ca, _lab_ca, server) = lab_server();

    let refused = first_line(server.addr, server_ca.trusted_by(dir.path(), None));
    let why = refused.expect_err("a client without a certificate got in");
    assert!(why.contains("CertificateRequired"), "{why}");
}

/// With `--client-ca`, a certificate signed by another CA is refused.
#[test]
fn mutual_tls_refuses_a_certificate_from_another_ca() {
    let (dir, server_ca, _lab_ca, server) = lab_server();
    let stranger_ca = Ca::root("some other CA");

    let stranger = stranger_ca
        .client("intruder")
        .identity(dir.path(), "intruder");
    let refused = first_line(
        server.addr,
        server_ca.trusted_by(dir.path(), Some(&stranger)),
    );
    let why = refused.expect_err("a certificate of another CA got in");
    assert!(why.contains("UnknownCA"), "{why}");
}

/// Without `--client-ca` nothing changes: clients with and without a
/// certificate both get in (the server never asks for one).
#[test]
fn without_client_ca_client_certificates_are_not_asked_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::root("chat server CA");
    let files = ca.server_now("chat.lab").write(dir.path(), "server", &[]);
    let server = TestServer::start_tls(ServerTls::load(files).expect("load"));
    let me = ca.client("student-01").identity(dir.path(), "student-01");
    hello(server.addr, ca.trusted_by(dir.path(), Some(&me)));
    hello(server.addr, ca.trusted_by(dir.path(), None));
}

// ---------------------------------------------------------------------------
// Chains and key formats
// ---------------------------------------------------------------------------

/// A server certificate issued by an intermediate: with the full chain in
/// `--cert`, a client that trusts only the root accepts it; with the leaf
/// alone, the same client refuses it (so the intermediate really is sent).
#[test]
fn serves_a_chain_with_an_intermediate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Ca::root("chat root CA");
    let intermediate = root.intermediate("chat intermediate CA");
    let leaf = intermediate.server_now("chat.example");
    let client = root.trusted_by(dir.path(), None);

    let full = leaf.write(dir.path(), "full-chain", &[&intermediate]);
    let server = TestServer::start_tls(ServerTls::load(full).expect("load the chain"));
    let c = hello(server.addr, client.clone());
    assert_eq!(c.server_certificate(), leaf.der());

    let alone = leaf.write(dir.path(), "leaf-only", &[]);
    let server = TestServer::start_tls(ServerTls::load(alone).expect("load the leaf"));
    let why = first_line(server.addr, client).expect_err("a broken chain was accepted");
    assert!(why.contains("UnknownIssuer"), "{why}");
}

/// The server loads PKCS#8 (rcgen), SEC1 (`BEGIN EC PRIVATE KEY`) and
/// PKCS#1 (`BEGIN RSA PRIVATE KEY`) keys, and serves with each.
#[test]
fn loads_pkcs8_sec1_and_pkcs1_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let ca = Ca::root("chat server CA");
    let pkcs8 = ca.server_now("pkcs8").write(dir.path(), "pkcs8", &[]);
    let cases = [
        (
            "PKCS#8",
            pkcs8.cert.clone(),
            pkcs8.key.clone(),
            "PRIVATE KEY-----",
        ),
        (
            "SEC1",
            data.join("ec-cert.pem"),
            data.join("ec-sec1-key.pem"),
            "BEGIN EC PRIVATE KEY",
        ),
        (
            "PKCS#1",
            data.join("rsa-cert.pem"),
            data.join("rsa-pkcs1-key.pem"),
            "BEGIN RSA PRIVATE KEY",
        ),
    ];
    for (format, cert, key, marker) in cases {
        let text = std::fs::read_to_string(&key).expect("read key");
        assert!(text.contains(marker), "{format}: {key:?} is not {marker}");
        let server = TestServer::start_tls(
            ServerTls::load(TlsFiles::new(&cert, &key))
                .unwrap_or_else(|e| panic!("{format} key refused: {e}")),
        );
        // The client's default mode: pin the server's certificate.
        let pinned = trust::client_config(&Trust::Pin(cert.clone()), None).expect("pin");
        hello(server.addr, pinned);
    }
}

// ---------------------------------------------------------------------------
// Reload
// ---------------------------------------------------------------------------

/// A reload (what SIGHUP does) makes new handshakes get the new
/// certificate, while a connection made before it keeps chatting.
#[test]
fn reload_reaches_new_handshakes_while_an_old_connection_keeps_chatting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::root("chat server CA");
    let old = ca.server_now("chat v1");
    let files = old.write(dir.path(), "server", &[]);
    let tls = ServerTls::load(files.clone()).expect("load");
    let server = TestServer::start_tls(tls.clone());
    let client = ca.trusted_by(dir.path(), None);

    let mut before = hello(server.addr, client.clone());
    assert_eq!(before.server_certificate(), old.der());
    before.send("REGISTER ana pw");
    before.expect("OK REGISTER ana");
    before.send("LOGIN ana pw");
    before.expect("OK LOGIN ana");
    before.send("CREATE sala");
    before.expect("OK CREATE sala");
    before.join("sala");

    // Rotate: new files at the same paths, then the reload.
    let new = ca.server_now("chat v2");
    new.write(dir.path(), "server", &[]);
    let info = tls.reload().expect("reload");
    assert_eq!(info.subject, "CN=chat v2");

    let mut after = hello(server.addr, client);
    assert_eq!(after.server_certificate(), new.der());
    after.send("REGISTER bia pw");
    after.expect("OK REGISTER bia");
    after.send("LOGIN bia pw");
    after.expect("OK LOGIN bia");
    after.join("sala");
    after.send("SAY oi, certificado novo");
    before.expect("JOINED sala bia");
    before.expect_msg("sala", "bia", "oi, certificado novo");
    before.send("SAY e eu continuo aqui");
    after.expect_msg("sala", "bia", "oi, certificado novo");
    after.expect_msg("sala", "ana", "e eu continuo aqui");
}

/// Bad files at reload (not a certificate, a key of another certificate,
/// an expired certificate) are refused with a reason, and new handshakes
/// still get the old certificate.
#[test]
fn bad_files_at_reload_keep_the_old_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::root("chat server CA");
    let good = ca.server_now("chat good");
    let files = good.write(dir.path(), "server", &[]);
    let tls = ServerTls::load(files.clone()).expect("load");
    let server = TestServer::start_tls(tls.clone());
    let client = ca.trusted_by(dir.path(), None);

    let other_key = KeyPair::generate().expect("key").serialize_pem();
    let now = OffsetDateTime::now_utc();
    let expired = ca.server(
        "chat expired",
        now - Duration::days(60),
        now - Duration::days(1),
    );
    let bad: [(&str, String, String, &str); 3] = [
        (
            "a key as certificate",
            good.key.serialize_pem(),
            good.key.serialize_pem(),
            "no certificate found in",
        ),
        (
            "a key of another certificate",
            good.cert.pem(),
            other_key,
            "does not belong to the certificate",
        ),
        (
            "an expired certificate",
            expired.cert.pem(),
            expired.key.serialize_pem(),
            "expired on",
        ),
    ];
    for (case, cert, key, reason) in bad {
        std::fs::write(&files.cert, cert).expect("write cert");
        std::fs::write(&files.key, key).expect("write key");
        let e = tls.reload().expect_err(case).to_string();
        assert!(e.starts_with("tls: ") && e.contains(reason), "{case}: {e}");
        let c = hello(server.addr, client.clone());
        assert_eq!(c.server_certificate(), good.der(), "{case}");
    }
}

// ---------------------------------------------------------------------------
// The server binary: start-up refusals, --generate-cert, a real SIGHUP
// ---------------------------------------------------------------------------

/// The server binary with `args`, its stderr piped.
fn server_bin(args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The arguments to serve `files` on a free port with a database in `dir`.
fn serve_args(dir: &Path, files: &TlsFiles) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--fast-hash".into(),
        "--db".into(),
        dir.join("chat.db").into(),
        "--cert".into(),
        files.cert.clone().into(),
        "--key".into(),
        files.key.clone().into(),
    ];
    if let Some(ca) = &files.client_ca {
        args.extend(["--client-ca".into(), ca.clone().into()]);
    }
    args
}

/// An expired certificate: the server refuses to start, with one line that
/// names the file, the date, and the command that makes a new one.
#[test]
fn expired_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = OffsetDateTime::now_utc();
    let files = Ca::root("chat server CA")
        .server("chat", now - Duration::days(400), now - Duration::days(35))
        .write(dir.path(), "old", &[]);
    let args = serve_args(dir.path(), &files);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let line = error_line(&run_to_exit(server_bin(&args)));
    assert!(
        line.starts_with("error: tls: the certificate in "),
        "{line}"
    );
    assert!(line.contains("old.pem expired on "), "{line}");
    assert!(line.contains("server --generate-cert --force"), "{line}");
}

/// A key that belongs to another certificate: one clear line.
#[test]
fn key_of_another_certificate_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::root("chat server CA");
    let mut files = ca.server_now("one").write(dir.path(), "one", &[]);
    files.key = ca.server_now("two").write(dir.path(), "two", &[]).key;
    let args = serve_args(dir.path(), &files);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let line = error_line(&run_to_exit(server_bin(&args)));
    assert!(
        line.contains("two.key does not belong to the certificate in"),
        "{line}"
    );
}

/// `--generate-cert` writes a certificate the client's default mode (pin
/// `cert.pem`) accepts, a key only its owner can read, refuses to
/// overwrite them without `--force`, and puts `--san` names in it.
#[test]
fn generate_cert_output_is_accepted_by_the_default_client() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let generate = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--generate-cert".as_ref(),
            "--cert".as_ref(),
            cert.as_os_str(),
            "--key".as_ref(),
            key.as_os_str(),
        ];
        args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
        run_to_exit(server_bin(&args))
    };

    let out = generate(&[]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("localhost, 127.0.0.1, ::1"), "{said}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    }
    let first = std::fs::read(&cert).expect("cert");

    // The client's default verification: pin the file the server uses.
    let server = TestServer::start_tls(ServerTls::load(TlsFiles::new(&cert, &key)).expect("load"));
    let pinned = trust::client_config(&Trust::Pin(cert.clone()), None).expect("pin");
    let c = hello(server.addr, pinned);
    let shown = CertificateDer::from(c.server_certificate());
    let info = CertInfo::parse(&shown).expect("parse");
    assert_eq!(info.subject, "CN=localhost");
    assert!(info.not_after > OffsetDateTime::now_utc() + Duration::days(360));

    // No overwrite without --force; nothing changed.
    let line = error_line(&generate(&[]));
    assert!(line.contains("already exists; add --force"), "{line}");
    assert_eq!(std::fs::read(&cert).expect("cert"), first);

    // With --force and names of our own.
    let out = generate(&[
        "--force",
        "--san",
        "chat.example.org",
        "--san",
        "10.0.0.5",
        "--days",
        "90",
    ]);
    assert!(out.status.success(), "{out:?}");
    let certs = tls::load_certs(&cert).expect("certs");
    let info = CertInfo::parse(&certs[0]).expect("parse");
    assert_eq!(info.subject, "CN=chat.example.org");
    assert!(info.not_after < OffsetDateTime::now_utc() + Duration::days(91));
    assert_ne!(std::fs::read(&cert).expect("cert"), first);
}

/// The real thing, end to end: the binary with `--client-ca` and a
/// certificate that expires in 10 days warns about it at start, logs the
/// client certificate's subject with "handshake ok", and on a real SIGHUP
/// loads the renewed certificate for new handshakes while the first
/// connection stays up.
#[test]
#[cfg(unix)] // signals
fn real_sighup_rotates_the_certificate_of_a_mutual_tls_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::root("chat CA");
    let now = OffsetDateTime::now_utc();
    let expiring = ca.server(
        "chat expiring",
        now - Duration::days(80),
        now + Duration::days(10),
    );
    let files = expiring
        .write(dir.path(), "server", &[])
        .with_client_ca(write(dir.path(), "lab-ca.pem", &ca.cert.pem()));
    let me = ca.client("student-07").identity(dir.path(), "student-07");
    let client = ca.trusted_by(dir.path(), Some(&me));

    let args = serve_args(dir.path(), &files);
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let mut child = server_bin(&args).spawn().expect("start the server binary");
    let logs = log_lines(&mut child);
    let warning = wait_for_log(&logs, "expires in");
    assert!(warning.contains("CN=chat expiring"), "{warning}");
    let addr = listening_addr(&logs);

    let mut first = hello(addr, client.clone());
    assert_eq!(first.server_certificate(), expiring.der());
    let ok = wait_for_log(&logs, "handshake ok");
    assert!(ok.contains("client certificate CN=student-07"), "{ok}");

    let renewed = ca.server_now("chat renewed");
    renewed.write(dir.path(), "server", &[]);
    send_signal(&child, "-HUP");
    let reloaded = wait_for_log(&logs, "certificate reloaded");
    assert!(reloaded.contains("CN=chat renewed"), "{reloaded}");

    let second = hello(addr, client);
    assert_eq!(second.server_certificate(), renewed.der());
    first.send("PING still-here");
    first.expect("PONG still-here");

    send_signal(&child, "-TERM");
    first.expect("BYE SHUTDOWN The server is shutting down.");
    let status = wait_for_exit(child).status;
    assert!(status.success(), "{status:?}");
}

// ---------------------------------------------------------------------------
// The client: --ca system, --cert/--key
// ---------------------------------------------------------------------------

/// `client --ca system` verifies with the operating system's trusted CAs:
/// a certificate from the test CA (which no system trusts) is refused with
/// the sentence for that mode. On a machine without a trust store, the
/// client says so instead; either way, nothing is sent.
#[test]
fn client_ca_system_refuses_a_certificate_no_system_ca_signed() {
    let server = TestServer::start();
    let out = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(["--lang", "en", "--host", "127.0.0.1", "--ca", "system"])
        .arg(server.addr.port().to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run the client");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "REFUSED: the server's certificate is not signed by any CA this system trusts"
        ) || stderr.contains("Cannot load this system's trusted CAs"),
        "{stderr}"
    );
}

/// `client --cert FILE --key FILE` logs in to a mutual-TLS server; the
/// same client without them is refused (the terminal client, end to end).
#[test]
fn client_binary_presents_its_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = Ca::root("lab CA");
    let files = ca
        .server_now("chat.lab")
        .write(dir.path(), "server", &[])
        .with_client_ca(write(dir.path(), "lab-ca.pem", &ca.cert.pem()));
    let server = TestServer::start_tls(ServerTls::load(files).expect("load"));
    let me = ca.client("student-07").identity(dir.path(), "student-07");
    let ca_file = write(dir.path(), "ca.pem", &ca.cert.pem());
    // `typed`: what the user types; `None` types nothing and keeps stdin
    // open, so only the server can end the session.
    let run = |identity: Option<&ClientIdentity>, typed: Option<&[u8]>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_client"));
        cmd.args(["--lang", "en", "--host", "localhost", "--ca"])
            .arg(&ca_file)
            .arg(server.addr.port().to_string());
        if let Some(id) = identity {
            cmd.arg("--cert").arg(&id.cert).arg("--key").arg(&id.key);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run the client");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(typed) = typed {
            use std::io::Write as _;
            stdin.write_all(typed).expect("type");
        }
        // stdin stays open while the client runs: what the test typed is
        // all it gets, and end of input would be a command of its own.
        let out = wait_for_exit(child);
        drop(stdin);
        out
    };
    // Menu option 3 quits.
    let with = run(Some(&me), Some(b"3\n"));
    let said = String::from_utf8_lossy(&with.stdout);
    assert!(with.status.success(), "{with:?}");
    assert!(said.contains("verified with the CA in"), "{said}");

    // With TLS 1.3 the client finishes its side of the handshake before the
    // server has checked its certificate; the server's refusal is the
    // first thing it sends, instead of HELLO. The client waits for those
    // first words before showing anything, and turns the refusal into
    // what to do about it: one line on stderr, no menu, a failure status.
    let refused_with = |identity: Option<&ClientIdentity>, expected: &str| {
        let out = run(identity, None);
        assert!(!out.status.success(), "{out:?}");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(stderr.contains(expected), "{stderr}");
        assert!(
            !stdout.contains("Menu"),
            "a menu before the refusal: {stdout}"
        );
    };
    let stranger = Ca::root("some other CA")
        .client("intruder")
        .identity(dir.path(), "intruder");
    refused_with(
        Some(&stranger),
        "The server refused your client certificate (UnknownCA)",
    );
    refused_with(
        None,
        "The server accepts only clients with a certificate: run the client with --cert FILE --key FILE",
    );
}
