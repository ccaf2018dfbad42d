//! The `server` binary itself: it logs the real bound port, serves, stops
//! on SIGTERM with exit status 0, and refuses to start with one clear line
//! on stderr (never a panic) when a file or the port is unusable.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{
    error_line, listening_addr, log_lines, pki, run_to_exit, send_signal, wait_for_exit, TestClient,
};

/// The server binary with the test certificate and a database in `dir`.
fn server(dir: &Path) -> Command {
    server_with(dir, &pki().cert, &pki().key)
}

/// The server binary with the given certificate and key files.
fn server_with(dir: &Path, cert: &Path, key: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("--db")
        .arg(dir.join("chat.db"))
        .arg("--fast-hash")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Asserts a start-up failure whose one `error: …` line mentions `needle`.
fn assert_one_clear_line(out: &Output, needle: &str) {
    let line = error_line(out);
    assert!(
        line.contains(needle),
        "{line:?} does not mention {needle:?}"
    );
}

/// `--addr 127.0.0.1:0` logs `listening on 127.0.0.1:<real port>`; a TLS
/// client can use that port; SIGTERM ends the process with status 0.
#[test]
#[cfg(unix)] // signals
fn logs_the_real_port_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = server(dir.path())
        .args(["--addr", "127.0.0.1:0"])
        .spawn()
        .expect("start the server binary");
    let rx = log_lines(&mut child);
    let addr = listening_addr(&rx);
    assert_ne!(addr.port(), 0);
    let mut c = TestClient::connect(addr);
    c.expect_prefix("HELLO 1 ");
    c.send("REGISTER zoe secret password");
    c.expect("OK REGISTER zoe");
    send_signal(&child, "-TERM");
    c.expect("BYE SHUTDOWN The server is shutting down.");
    let status = wait_for_exit(child).status;
    assert!(status.success(), "exit status {status:?}");
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(
        logs.iter().all(|l| !l.contains("secret password")),
        "a password reached the log"
    );
}

/// A missing certificate file: one line naming it.
#[test]
fn missing_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = server_with(dir.path(), Path::new("/nonexistent/cert.pem"), &pki().key);
    cmd.args(["--addr", "127.0.0.1:0"]);
    let out = run_to_exit(cmd);
    assert_one_clear_line(&out, "/nonexistent/cert.pem");
}

/// A key file that is not a key: one line naming it.
#[test]
fn unusable_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = server_with(dir.path(), &pki().cert, &pki().cert);
    cmd.args(["--addr", "127.0.0.1:0"]);
    let out = run_to_exit(cmd);
    assert_one_clear_line(&out, "private key");
}

/// A database file that is not SQLite: one line naming it, and the file
/// is left as it was.
#[test]
fn database_that_is_not_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let junk = b"this is not a database, it is a shopping list\n".repeat(100);
    std::fs::write(&db, &junk).expect("write junk");
    let mut cmd = server(dir.path());
    cmd.args(["--addr", "127.0.0.1:0"]);
    let out = run_to_exit(cmd);
    assert_one_clear_line(&out, "not a SQLite database");
    assert_eq!(std::fs::read(&db).expect("read back"), junk);
}

/// A port in use: one line naming the address.
#[test]
fn port_in_use() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut cmd = server(dir.path());
    cmd.args(["--addr", &addr]);
    let out = run_to_exit(cmd);
    assert_one_clear_line(&out, &format!("cannot listen on {addr}"));
}

/// A limit of zero is refused before anything starts.
#[test]
fn zero_limit_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = server(dir.path());
    cmd.args(["--addr", "127.0.0.1:0", "--queue-lines", "0"]);
    let out = run_to_exit(cmd);
    assert_one_clear_line(&out, "--queue-lines must be at least 66 (--history 50 + 16");
}

/// `--help` documents every option of the issue, by its exact name.
#[test]
fn help_lists_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--addr",
        "--cert",
        "--key",
        "--db",
        "--history",
        "--fast-hash",
        "--handshake-timeout",
        "--login-timeout",
        "--msg-rate",
        "--msg-burst",
        "--login-failures",
        "--queue-lines",
        "--max-connections",
        "--max-line",
        "--client-ca",
        "--generate-cert",
        "--san",
        "--days",
        "--force",
    ] {
        assert!(help.contains(option), "--help does not mention {option}");
    }
}

/// `server user add NAME` with the password piped on standard input.
fn user_add(db: &Path, name: &str, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["user", "add", name, "--db"])
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server binary");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("write the password");
    wait_for_exit(child)
}

/// `server user add` makes an account the server then logs in, with the
/// password given on standard input; a taken name, a bad name and no
/// password are one clear line each and a failure status.
#[test]
fn user_add_makes_an_account_that_logs_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let made = user_add(&db, "Aluno1", "senha com espaços\n");
    assert!(made.status.success(), "{made:?}");
    assert_eq!(
        String::from_utf8_lossy(&made.stdout).trim(),
        format!("created user Aluno1 in {}", db.display())
    );
    assert_one_clear_line(&user_add(&db, "aluno1", "x\n"), "aluno1 exists already");
    assert_one_clear_line(&user_add(&db, "a/b", "x\n"), "not a valid user name");
    assert_one_clear_line(&user_add(&db, "bob", ""), "no password on standard input");

    let server = support::TestServer::start_on(&db, |c| c.registration_open = false);
    let mut c = server.connect();
    c.send("LOGIN aluno1 senha com espaços");
    c.expect("OK LOGIN Aluno1");
}
