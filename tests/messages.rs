//! Every start-up error of the `server` and `client` binaries says what
//! happened and what to do next, on one line (issue 11): each test runs
//! the real binary the way a newcomer did and asserts the exact line.
//!
//! A server that cannot start prints one `error: …` line and exits with a
//! failure status ([`support::error_line`]); a client that cannot start
//! prints one sentence, in the user's language, on stderr.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chat::server::ServerTls;
use support::{error_line, pki, run_to_exit, TestServer};

/// The server binary in `dir` (its working directory), with a database
/// there and the test certificate unless `tls` is false.
fn server_in(dir: &Path, tls: bool) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    if tls {
        cmd.arg("--cert")
            .arg(&pki().cert)
            .arg("--key")
            .arg(&pki().key);
    }
    cmd.current_dir(dir)
        .args(["--fast-hash", "--db"])
        .arg(dir.join("chat.db"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The one error line of the server started with `--addr addr`.
fn addr_error(addr: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = server_in(dir.path(), true);
    cmd.args(["--addr", addr]);
    error_line(&run_to_exit(cmd))
}

/// `--addr 12346`, a port alone: the `HOST:PORT` form, with that port.
#[test]
fn server_addr_that_is_a_port_alone() {
    assert_eq!(
        addr_error("12346"),
        "error: config: --addr 12346 is a port without a host: give HOST:PORT, \
         e.g. --addr 0.0.0.0:12346 (every network interface) or --addr 127.0.0.1:12346 \
         (this machine only)"
    );
}

/// `--addr :12346`: the host is missing, not a name to look up.
#[test]
fn server_addr_without_a_host() {
    assert_eq!(
        addr_error(":12346"),
        "error: config: --addr :12346 has no host before the colon: give HOST:PORT, \
         e.g. --addr 0.0.0.0:12346 (every network interface) or --addr 127.0.0.1:12346 \
         (this machine only)"
    );
}

/// `--addr localhost`: the port is missing.
#[test]
fn server_addr_without_a_port() {
    assert_eq!(
        addr_error("localhost"),
        "error: config: --addr localhost has no port: give HOST:PORT, \
         e.g. --addr localhost:12345"
    );
}

/// `--addr ::1`: an IPv6 address goes in brackets.
#[test]
fn server_addr_ipv6_without_brackets() {
    assert_eq!(
        addr_error("::1"),
        "error: config: --addr ::1 has an IPv6 address without brackets: give \
         [ADDRESS]:PORT, e.g. --addr [::]:12345 (every network interface) or \
         --addr [::1]:12345 (this machine only)"
    );
}

/// A port another program listens on: the OS's reason, then another port
/// in the `--addr HOST:PORT` form.
#[test]
fn server_port_in_use_suggests_another() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let line = addr_error(&addr.to_string());
    let port = addr.port();
    let prefix = format!("error: cannot listen on {addr}: ");
    let hint = format!(
        "; another program (perhaps another chat server) is using port {port}: stop it, \
         or choose another port with --addr 127.0.0.1:PORT, e.g. --addr 127.0.0.1:{}",
        port.checked_add(1).unwrap_or(12345)
    );
    assert!(
        line.starts_with(&prefix) && line.ends_with(&hint),
        "{line:?}"
    );
}

/// Started in a folder without `cert.pem` (the defaults): which folder it
/// looked in, and the three ways out.
#[test]
fn server_started_where_cert_pem_is_not() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The server names its working directory as the OS reports it.
    let here = dir.path().canonicalize().expect("the folder's real path");
    let mut cmd = server_in(dir.path(), false);
    cmd.args(["--addr", "127.0.0.1:0"]);
    assert_eq!(
        error_line(&run_to_exit(cmd)),
        format!(
            "error: tls: cannot read certificates from cert.pem: No such file or directory \
             (os error 2); run the server in the folder that has cert.pem and key.pem (this one \
             is {}), give their paths with --cert FILE --key FILE, or make a new pair with \
             --generate-cert",
            here.display()
        )
    );
}

/// The certificate and the key given the wrong way round: each line says
/// what the file lacks and asks whether it is the other one.
#[test]
fn server_certificate_and_key_swapped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (&pki().cert, &pki().key);
    let run = |cert: &Path, key: &Path| {
        let mut cmd = server_in(dir.path(), false);
        cmd.arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(["--addr", "127.0.0.1:0"]);
        error_line(&run_to_exit(cmd))
    };
    assert_eq!(
        run(key, key),
        format!(
            "error: tls: no certificate found in {} (no -----BEGIN CERTIFICATE----- block): \
             is it the key, or another file?",
            key.display()
        )
    );
    assert_eq!(
        run(cert, cert),
        format!(
            "error: tls: cannot read a private key from {}: it holds no private key \
             (no -----BEGIN … PRIVATE KEY----- block): is it the certificate, or another file?",
            cert.display()
        )
    );
}

/// A `--db` that cannot be opened, and one that is not SQLite: each says
/// to give another path with `--db`.
#[test]
fn server_database_that_cannot_be_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |db: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
        cmd.arg("--cert")
            .arg(&pki().cert)
            .arg("--key")
            .arg(&pki().key)
            .arg("--db")
            .arg(db)
            .args(["--fast-hash", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        error_line(&run_to_exit(cmd))
    };
    let nowhere = dir.path().join("no-such-folder/chat.db");
    let line = run(&nowhere);
    let prefix = format!("error: db: cannot open {}: ", nowhere.display());
    assert!(
        line.starts_with(&prefix)
            && line.ends_with(
                "; check that its folder exists and that you may write there, or give another \
                 path with --db"
            ),
        "{line:?}"
    );
    let junk = dir.path().join("notes.db");
    std::fs::write(&junk, b"shopping list\n".repeat(100)).expect("write junk");
    assert_eq!(
        run(&junk),
        format!(
            "error: db: {} is not a SQLite database (file is not a database); it was left as \
             it is: give another file with --db, or move this one aside",
            junk.display()
        )
    );
}

/// `--generate-cert` where `cert.pem` exists: nothing is overwritten, and
/// the line says how to write elsewhere.
#[test]
fn generate_cert_over_an_existing_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cert.pem"), "mine\n").expect("write cert.pem");
    let mut cmd = server_in(dir.path(), false);
    cmd.arg("--generate-cert");
    assert_eq!(
        error_line(&run_to_exit(cmd)),
        "error: config: cert.pem already exists; add --force to overwrite it, or write the \
         new pair elsewhere with --cert DIR/cert.pem --key DIR/key.pem"
    );
    let kept = std::fs::read_to_string(dir.path().join("cert.pem")).expect("read back");
    assert_eq!(kept, "mine\n");
}

/// The first `--generate-cert` example of docs/TLS.md, run in a copy of
/// the repository's folder (which has the tracked `cert.pem` and
/// `key.pem`): it succeeds, writes into a new folder, and leaves the
/// repository's pair alone.
#[test]
fn generate_cert_example_of_the_docs_keeps_the_dev_pair() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["cert.pem", "key.pem"] {
        std::fs::copy(root.join(name), dir.path().join(name)).expect("copy the dev pair");
    }
    let before = std::fs::read(dir.path().join("cert.pem")).expect("read cert.pem");
    let mut cmd = server_in(dir.path(), false);
    cmd.args([
        "--generate-cert",
        "--cert",
        "mycert/cert.pem",
        "--key",
        "mycert/key.pem",
        "--san",
        "localhost",
        "--san",
        "127.0.0.1",
    ]);
    let out = run_to_exit(cmd);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("wrote mycert/cert.pem and mycert/key.pem (key readable by you only)")
            && said.ends_with("--cert-pin mycert/cert.pem\n"),
        "{said}"
    );
    assert!(dir.path().join("mycert/key.pem").is_file());
    let after = std::fs::read(dir.path().join("cert.pem")).expect("read cert.pem");
    assert_eq!(before, after, "the dev certificate was overwritten");
}

/// The log of a shutdown with one connection open says "1 connection".
#[test]
#[cfg(unix)] // signals
fn shutdown_log_counts_one_connection() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = server_in(dir.path(), true);
    cmd.args(["--addr", "127.0.0.1:0"]).stdout(Stdio::null());
    let mut child = cmd.spawn().expect("start the server binary");
    let logs = support::log_lines(&mut child);
    let addr = support::listening_addr(&logs);
    let mut c = support::TestClient::connect(addr);
    c.expect_prefix("HELLO 1 ");
    support::send_signal(&child, "-TERM");
    let line = support::wait_for_log(&logs, "shutting down: closing");
    assert!(
        line.ends_with("shutting down: closing 1 connection"),
        "{line:?}"
    );
    c.expect("BYE SHUTDOWN The server is shutting down.");
    assert!(support::wait_for_exit(child).status.success());
}

/// The first line of `BIN --help`.
fn help_first_line(bin: &str) -> String {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    help.lines().next().unwrap_or_default().to_string()
}

/// Each binary's `--help` opens with what that binary is, not with the
/// package's description.
#[test]
fn help_opens_with_each_binarys_own_line() {
    assert_eq!(
        help_first_line(env!("CARGO_BIN_EXE_server")),
        "The chat server: TLS on port 12345, accounts and rooms in SQLite"
    );
    assert_eq!(
        help_first_line(env!("CARGO_BIN_EXE_client")),
        "The chat client: connects over TLS to a chat server and shows menus"
    );
    // The load generator's, in its own package: loadgen/tests/loadgen.rs.
}

/// The client binary with `args`, `LANG=C`, stdin `input` (then closed),
/// run to its end.
fn client(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_client"))
        .args(args)
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client binary");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A client that failed to start has closed its stdin: that is fine.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    support::wait_for_exit(child)
}

/// The one line a client that could not start printed on stderr, after
/// asserting a failure status and nothing on stdout.
fn client_error(args: &[&str]) -> String {
    let out = client(args, "");
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

/// `client localhost:12345`, as `openssl s_client -connect` takes it: the
/// port alone, the host with `--host`, in both languages.
#[test]
fn client_host_and_port_as_the_port() {
    assert_eq!(
        client_error(&["localhost:12345", "--lang", "en"]),
        "localhost:12345 is a host and a port: give the port alone, and the host with --host \
         (e.g. client --host localhost 12345)."
    );
    assert_eq!(
        client_error(&["0.tcp.sa.ngrok.io:18001", "--lang", "pt"]),
        "0.tcp.sa.ngrok.io:18001 é um host e uma porta: dê só a porta, e o host com --host \
         (ex.: client --host 0.tcp.sa.ngrok.io 18001)."
    );
    assert_eq!(
        client_error(&["localhost", "--lang", "en"]),
        "\"localhost\" is not a port number (1 to 65535): give the server's port alone \
         (e.g. client 12345), and its host with --host."
    );
}

/// A host name that does not resolve is said to be that, not a server
/// that is down (`.invalid` never resolves, RFC 6761).
#[test]
fn client_host_that_does_not_resolve() {
    let line = client_error(&["--host", "chat.invalid", "--insecure", "--lang", "en"]);
    assert!(
        line.starts_with("Cannot find the server chat.invalid: the name could not be resolved (")
            && line.ends_with(
                "). Check the name given with --host (or use the server's IP address) and this \
                 computer's network."
            ),
        "{line:?}"
    );
}

/// Nothing listens on the port: check the server, the port and the host.
#[test]
fn client_server_not_running() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // closed again: nothing listens there now
    let line = client_error(&[
        &port.to_string(),
        "--host",
        "127.0.0.1",
        "--insecure",
        "--lang",
        "pt",
    ]);
    assert!(
        line.starts_with(&format!("Não foi possível conectar a 127.0.0.1:{port} ("))
            && line.ends_with(
                "). Confira se o servidor está rodando e se a porta e o --host são os dele."
            ),
        "{line:?}"
    );
}

/// The repository's development certificate and key (self-signed,
/// `CN=localhost`), what a class server runs with.
fn dev_certificate() -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    (root.join("cert.pem"), root.join("key.pem"))
}

/// `--ca system` against the class server's self-signed certificate: in
/// words, not rustls's debug text, and what to use instead (`--cert-pin`).
#[test]
fn client_ca_system_against_a_self_signed_certificate() {
    if let Err(e) = chat::tls::system_roots() {
        // Without a trust store the client says so instead (another test).
        eprintln!("skipped: this machine has no system trust store ({e})");
        return;
    }
    let (cert, key) = dev_certificate();
    let config = chat::tls::server_config(&cert, &key).expect("the dev certificate loads");
    let server = TestServer::start_tls(ServerTls::fixed(config));
    let port = server.addr.port().to_string();
    assert_eq!(
        client_error(&[&port, "--ca", "system", "--lang", "en"]),
        "REFUSED: the server's certificate is not signed by any CA this system trusts (it is \
         self-signed, or made by another CA). Nothing was sent. If this is the class server, \
         pin the server's own certificate instead: --cert-pin FILE, FILE being the server's \
         cert.pem."
    );
    // The way out it names works: the same server, pinned.
    let pinned = client(
        &[
            &port,
            "--cert-pin",
            cert.to_str().expect("utf-8"),
            "--lang",
            "en",
        ],
        "3\n",
    );
    let stdout = String::from_utf8_lossy(&pinned.stdout);
    assert!(pinned.status.success(), "{pinned:?}");
    assert!(stdout.contains("TLS handshake succeeded"), "{stdout}");
}

/// `--ca FILE` with a CA that did not sign the server's certificate.
#[test]
fn client_ca_that_did_not_sign_the_certificate() {
    let server = TestServer::start();
    let (other_ca, _) = dev_certificate();
    let other_ca = other_ca.to_str().expect("utf-8");
    assert_eq!(
        client_error(&[
            &server.addr.port().to_string(),
            "--ca",
            other_ca,
            "--lang",
            "pt"
        ]),
        format!(
            "RECUSADO: o certificado do servidor não foi assinado pela CA de {other_ca} (é \
             autoassinado, ou feito por outra CA). Nada foi enviado. Se este é o servidor da \
             turma, fixe o próprio certificado do servidor: --cert-pin ARQUIVO, sendo ARQUIVO o \
             cert.pem do servidor."
        )
    );
}

/// Joining a private room without its password: the server's "wrong or
/// missing", in the user's words, with how to join.
#[test]
fn client_private_room_without_password() {
    let server = TestServer::start();
    let port = server.addr.port().to_string();
    let ca = pki().ca.to_str().expect("utf-8");
    let script = "1\nana 123\n2\nana 123\n2\nsala_privada s senhasecreta\n3\nsala_privada\n4\n";
    let out = client(&[&port, "--ca", ca, "--lang", "en"], script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.lines().any(|l| l
            == "Wrong or missing password: that room is private; join it with its name and its \
                password (e.g. sala_privada senhasecreta)."),
        "{stdout}"
    );
}
