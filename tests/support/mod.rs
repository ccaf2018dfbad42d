//! Shared test support: a real server on `127.0.0.1:0` with a temporary
//! database and a certificate authority made by rcgen for this test run,
//! and a line-oriented TLS client whose every read has a deadline.
//!
//! Nothing here sleeps to wait for an event: a test waits for the *line*
//! that proves the event, and fails with a clear message if it does not
//! come within [`WAIT`]. What can only be asked (is Redis up, has a child
//! process exited) is asked again every few milliseconds until that same
//! deadline, never slept on for a fixed time.

#![allow(dead_code)] // each test file uses a different part of this module

// The multi-node tests' parts: a throwaway Redis for `--bus redis://…`,
// a throwaway PostgreSQL for `--store postgres://…`, and server nodes as
// child processes.
pub mod node;
pub mod postgres;
pub mod redis;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::Duration;

use chat::protocol::ServerLine;
use chat::server::{self, ServerTls, Shutdown};
use chat::Config;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// How long a test waits for any one line before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// No lines at all: what `sync()` returns when nothing else was sent.
pub const NOTHING: Vec<String> = Vec::new();

/// A CA, and a server certificate for `localhost` / `127.0.0.1` signed by
/// it, written once per test process to a temporary directory.
pub struct TestPki {
    /// Holds the files alive.
    _dir: tempfile::TempDir,
    /// The CA certificate (what clients trust).
    pub ca: PathBuf,
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// The server's key.
    pub key: PathBuf,
}

/// The process-wide test PKI.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "chat test CA");
        let ca = ca_params.self_signed(&ca_key).expect("ca cert");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf cert");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write pem");
            path
        };
        TestPki {
            ca: write("ca.pem", ca.pem()),
            cert: write("cert.pem", leaf.pem()),
            key: write("key.pem", leaf_key.serialize_pem()),
            _dir: dir,
        }
    })
}

/// The client TLS config that trusts the test CA.
pub fn client_tls() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| chat::tls::client_config(&pki().ca).expect("client config"))
        .clone()
}

/// A running server. Dropping it stops it.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its configuration (the database path included), for restarts.
    pub config: Config,
    /// Its stop signal.
    shutdown: Shutdown,
    /// Receives `run`'s result when it returns.
    done: Option<mpsc::Receiver<chat::Result<()>>>,
    /// The temporary directory of the database, shared across restarts.
    dir: Arc<tempfile::TempDir>,
    /// Its TLS identity (the test PKI's unless started with
    /// [`TestServer::start_tls`]), kept for restarts.
    tls: ServerTls,
}

impl TestServer {
    /// A server with the protocol's defaults, fast hashing and a fresh database.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Like [`TestServer::start`], with `adjust` applied to the config.
    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = Config {
            db_path: dir.path().join("chat.db"),
            fast_hash: true,
            ..Config::default()
        };
        adjust(&mut config);
        Self::launch(config, dir)
    }

    /// A server on an existing database file.
    pub fn start_on(db: &Path, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut config = Config {
            db_path: db.to_path_buf(),
            fast_hash: true,
            ..Config::default()
        };
        adjust(&mut config);
        Self::launch(config, dir)
    }

    /// A server with the given TLS identity (e.g. loaded from files with
    /// `ServerTls::load`, so that the test can call `reload` on a clone),
    /// fast hashing and a fresh database.
    pub fn start_tls(tls: ServerTls) -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let config = Config {
            db_path: dir.path().join("chat.db"),
            fast_hash: true,
            ..Config::default()
        };
        Self::launch_tls(config, dir, tls)
    }

    /// Binds port 0 and runs the server on a thread, with the test PKI's
    /// certificate.
    fn launch(config: Config, dir: Arc<tempfile::TempDir>) -> Self {
        let tls = chat::tls::server_config(&pki().cert, &pki().key).expect("server tls");
        Self::launch_tls(config, dir, ServerTls::fixed(tls))
    }

    /// Binds port 0 and runs the server with `tls` on a thread.
    fn launch_tls(config: Config, dir: Arc<tempfile::TempDir>, tls: ServerTls) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = Shutdown::new();
        let (tx, rx) = mpsc::channel();
        let run_config = config.clone();
        let run_shutdown = shutdown.clone();
        let run_tls = tls.clone();
        thread::Builder::new()
            .name(format!("test-server-{}", addr.port()))
            .spawn(move || {
                let _ = tx.send(server::run_with(
                    listener,
                    run_tls,
                    run_config,
                    run_shutdown,
                ));
            })
            .expect("spawn server");
        TestServer {
            addr,
            config,
            shutdown,
            done: Some(rx),
            dir,
            tls,
        }
    }

    /// Stops the server the way Ctrl-C does and waits for `run` to return.
    pub fn stop(&mut self) {
        if let Some(done) = self.done.take() {
            self.shutdown.trigger();
            let result = done
                .recv_timeout(Duration::from_secs(20))
                .expect("server did not stop within 20 s");
            result.expect("server::run returned an error");
        }
    }

    /// Stops this server and starts a new one on the same database.
    pub fn restart(mut self) -> TestServer {
        self.stop();
        let config = self.config.clone();
        let dir = self.dir.clone();
        Self::launch_tls(config, dir, self.tls.clone())
    }

    /// A TLS connection that has read the `HELLO` line.
    pub fn connect(&self) -> TestClient {
        let mut c = TestClient::connect(self.addr);
        let hello = c.line();
        assert!(
            hello.starts_with("HELLO 1 chat-server/"),
            "greeting was {hello:?}"
        );
        c
    }

    /// A connection logged in as `user` (registered first, password `pw`).
    pub fn user(&self, user: &str) -> TestClient {
        let mut c = self.connect();
        c.send(&format!("REGISTER {user} pw"));
        c.expect(&format!("OK REGISTER {user}"));
        c.send(&format!("LOGIN {user} pw"));
        c.expect(&format!("OK LOGIN {user}"));
        c
    }

    /// A logged-in user who has joined `room` (creating it if needed).
    pub fn user_in(&self, user: &str, room: &str) -> TestClient {
        let mut c = self.user(user);
        c.send(&format!("CREATE {room}"));
        let created = c.line();
        assert!(
            created == format!("OK CREATE {room}") || created.starts_with("ERR ROOM_EXISTS"),
            "CREATE {room}: {created}"
        );
        c.join(room);
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.stop();
        } else {
            self.shutdown.trigger();
        }
    }
}

/// A line-oriented TLS client for tests. Every read waits at most [`WAIT`].
pub struct TestClient {
    /// The TLS stream, behind a line buffer.
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TestClient {
    /// Connects and completes the handshake (it happens on first I/O).
    pub fn connect(addr: SocketAddr) -> TestClient {
        Self::connect_sending(addr, b"")
    }

    /// Connects with `early` already queued in the TLS session: rustls
    /// sends it right behind the client's last handshake message, usually
    /// in the same TCP segment.
    pub fn connect_sending(addr: SocketAddr, early: &[u8]) -> TestClient {
        let socket = TcpStream::connect(addr).expect("connect to the test server");
        Self::over(socket, early)
    }

    /// Connects with the client TLS config `tls` (another CA, a client
    /// certificate) instead of the test PKI's. The handshake happens on the
    /// first read.
    pub fn connect_with(addr: SocketAddr, tls: Arc<ClientConfig>) -> TestClient {
        let socket = TcpStream::connect(addr).expect("connect to the test server");
        socket.set_read_timeout(Some(WAIT)).expect("read timeout");
        socket.set_write_timeout(Some(WAIT)).expect("write timeout");
        let name = "localhost".try_into().expect("server name");
        let conn = ClientConnection::new(tls, name).expect("client connection");
        TestClient {
            stream: BufReader::new(StreamOwned::new(conn, socket)),
        }
    }

    /// The next line, or the error that ended the connection instead (a
    /// TLS alert, say); `Ok(None)` for a clean close. Waits at most
    /// [`WAIT`].
    pub fn try_line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(line.trim_end_matches('\n').to_string())),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server sent nothing within {WAIT:?}")
            }
            Err(e) => Err(e),
        }
    }

    /// The DER bytes of the certificate the server showed (its leaf), once
    /// the handshake is done.
    pub fn server_certificate(&self) -> Vec<u8> {
        self.stream
            .get_ref()
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the handshake is done and the server showed a certificate")
            .to_vec()
    }

    /// Connects with a small, fixed receive buffer (64 KiB, no
    /// autotuning), so that a client that stops reading fills its TCP
    /// window quickly, as a slow phone would.
    pub fn connect_small_window(addr: SocketAddr) -> TestClient {
        let socket = small_window_socket(addr);
        socket
            .connect(&addr.into())
            .expect("connect to the test server");
        Self::over(socket.into(), b"")
    }

    /// A TLS client over a connected socket, with `early` queued.
    fn over(socket: TcpStream, early: &[u8]) -> TestClient {
        socket.set_read_timeout(Some(WAIT)).expect("read timeout");
        socket.set_write_timeout(Some(WAIT)).expect("write timeout");
        let name = "localhost".try_into().expect("server name");
        let mut conn = ClientConnection::new(client_tls(), name).expect("client connection");
        conn.writer().write_all(early).expect("queue early bytes");
        TestClient {
            stream: BufReader::new(StreamOwned::new(conn, socket)),
        }
    }

    /// Sends one line (LF added).
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let s = self.stream.get_mut();
        s.write_all(bytes).expect("send to the server");
        s.flush().expect("flush to the server");
    }

    /// The next line from the server, without its LF.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => panic!("the server closed the connection while a line was expected"),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server sent no line within {WAIT:?}")
            }
            Err(e) => panic!("reading from the server failed: {e}"),
        }
        assert!(line.ends_with('\n'), "line without LF: {line:?}");
        line.pop();
        line
    }

    /// The next line, parsed.
    pub fn parsed(&mut self) -> ServerLine {
        let line = self.line();
        ServerLine::parse(&line).unwrap_or_else(|| panic!("not a protocol line: {line:?}"))
    }

    /// Asserts the next line is exactly `expected`.
    pub fn expect(&mut self, expected: &str) {
        let got = self.line();
        assert_eq!(got, expected);
    }

    /// Asserts the next line starts with `prefix`; returns it.
    pub fn expect_prefix(&mut self, prefix: &str) -> String {
        let got = self.line();
        assert!(got.starts_with(prefix), "expected {prefix:?}…, got {got:?}");
        got
    }

    /// Asserts the next line is `MSG <room> <time> <user> <text>`.
    pub fn expect_msg(&mut self, room: &str, user: &str, text: &str) {
        match self.parsed() {
            ServerLine::Msg {
                room: r,
                user: u,
                text: t,
                ..
            } => assert_eq!((r.as_str(), u.as_str(), t.as_str()), (room, user, text)),
            other => panic!("expected MSG {room} {user} {text}, got {other}"),
        }
    }

    /// Reads the next line and asserts it is exactly `<head> <time> <tail>`,
    /// where `<time>` is a valid RFC 3339 time; returns that time.
    pub fn expect_timed(&mut self, head: &str, tail: &str) -> String {
        let line = self.line();
        let time = line
            .strip_prefix(head)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|rest| rest.get(..24))
            .unwrap_or_else(|| panic!("expected `{head} <time> {tail}`, got {line:?}"));
        assert!(
            chat::protocol::Timestamp::parse(time).is_some(),
            "bad time {time:?} in {line:?}"
        );
        assert_eq!(line, format!("{head} {time} {tail}"));
        time.to_string()
    }

    /// Sends `JOIN room` and reads up to `OK JOIN`, returning the history
    /// lines (and the `TOPIC` line, if the room has one) that came before
    /// it.
    pub fn join(&mut self, room: &str) -> Vec<ServerLine> {
        self.send(&format!("JOIN {room}"));
        let mut history = Vec::new();
        loop {
            let line = self.parsed();
            match line {
                ServerLine::History { .. } | ServerLine::Topic { .. } => history.push(line),
                ServerLine::Ok {
                    ref command,
                    ref rest,
                } if command == "JOIN" => {
                    assert!(rest.eq_ignore_ascii_case(room), "joined {rest}, not {room}");
                    return history;
                }
                other => panic!("while joining {room}: {other}"),
            }
        }
    }

    /// Asserts the server closes the connection next (after any lines
    /// still in flight, which are returned).
    pub fn expect_closed(&mut self) -> Vec<String> {
        let mut rest = Vec::new();
        loop {
            let mut line = String::new();
            match self.stream.read_line(&mut line) {
                Ok(0) => return rest,
                Ok(_) => rest.push(line.trim_end_matches('\n').to_string()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("the server did not close the connection within {WAIT:?}; got {rest:?}")
                }
                // Closed without close_notify, or reset: closed all the same.
                Err(_) => return rest,
            }
        }
    }

    /// Reads lines until one that satisfies `stop`, returning all of them.
    pub fn lines_until(&mut self, stop: impl Fn(&str) -> bool) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let done = stop(&line);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }

    /// A `PING` round trip: every line the server sent before it has been
    /// read when this returns. Returns those lines.
    pub fn sync(&mut self) -> Vec<String> {
        self.send("PING sync");
        let mut lines = self.lines_until(|l| l == "PONG sync");
        lines.pop();
        lines
    }
}

/// Reads everything a plain TCP peer gets before the server closes (with a
/// deadline).
pub fn read_to_close(socket: &mut TcpStream) -> Vec<u8> {
    socket.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server did not close within {WAIT:?}")
            }
            Err(_) => return got,
        }
    }
}

/// Runs a command that must exit by itself (a server that refuses to
/// start, a one-shot tool) and returns its output, with a deadline.
pub fn run_to_exit(mut cmd: std::process::Command) -> std::process::Output {
    wait_for_exit(cmd.spawn().expect("start the binary"))
}

/// A child process's stderr (piped), line by line, on a channel. A thread
/// of its own reads it, so the child never blocks on a full pipe.
pub fn log_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits, at most [`WAIT`] in all, for a log line containing `needle`
/// and returns it; the lines before it are consumed.
pub fn wait_for_log(logs: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match logs.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?} in time"),
        }
    }
}

/// The address from a server's `listening on ADDR` log line.
pub fn listening_addr(logs: &mpsc::Receiver<String>) -> SocketAddr {
    const NEEDLE: &str = "listening on ";
    let line = wait_for_log(logs, NEEDLE);
    let at = line.find(NEEDLE).expect("found") + NEEDLE.len();
    line[at..]
        .trim()
        .parse()
        .expect("an address after 'listening on'")
}

/// Waits for a child process to exit, at most [`WAIT`], and returns its
/// status and whatever of its output was piped and not taken.
pub fn wait_for_exit(child: std::process::Child) -> std::process::Output {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(WAIT)
        .expect("the process did not exit in time")
        .expect("wait for the process")
}

/// Sends `signal` (e.g. `-TERM`, `-HUP`) to a child process with the
/// system's `kill` command.
pub fn send_signal(child: &std::process::Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} failed");
}

/// A TCP socket for `addr`, not yet connected, with a small, fixed
/// receive buffer (64 KiB, no autotuning); set more options on it, then
/// connect.
pub fn small_window_socket(addr: SocketAddr) -> socket2::Socket {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .expect("socket");
    socket.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
    socket
}

/// Names of this process's threads that serve connections (`conn-…`):
/// the servers of `TestServer` run in the test's own process. Read from
/// `/proc`: empty where there is none.
pub fn connection_thread_names() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with("conn-"))
        .collect()
}

/// The `server` binary as a child process, listening on `127.0.0.1:0`
/// with the test PKI, logging at `info`: killed when dropped, so that a
/// failing test leaves no server behind.
pub struct ServerBinary {
    /// The process; taken by [`ServerBinary::wait_for_exit`].
    child: Option<std::process::Child>,
    /// Its log lines (stderr), as they come.
    pub log: mpsc::Receiver<String>,
    /// Where it listens (from its `listening on` line).
    pub addr: SocketAddr,
}

impl ServerBinary {
    /// Starts this build's server on `db` with `options`, and waits until
    /// it listens.
    pub fn start(db: &Path, options: &[&str]) -> ServerBinary {
        // `option_env!`: this module is shared with the load generator's
        // tests, a package that has no `server` binary of its own.
        let Some(binary) = option_env!("CARGO_BIN_EXE_server") else {
            panic!("ServerBinary::start is for the chat package's tests, which build the server");
        };
        Self::start_binary(binary, db, options)
    }

    /// [`ServerBinary::start`] on a given address (a restart that must come
    /// back on the port its clients know).
    pub fn start_at(db: &Path, addr: &str, options: &[&str]) -> ServerBinary {
        let Some(binary) = option_env!("CARGO_BIN_EXE_server") else {
            panic!(
                "ServerBinary::start_at is for the chat package's tests, which build the server"
            );
        };
        Self::spawn(binary, addr, db, options)
    }

    /// [`ServerBinary::start`] with another build of the server (for a
    /// measurement against an older one).
    pub fn start_binary(binary: &str, db: &Path, options: &[&str]) -> ServerBinary {
        Self::spawn(binary, "127.0.0.1:0", db, options)
    }

    /// Starts `binary` on `addr` and waits until it listens.
    fn spawn(binary: &str, addr: &str, db: &Path, options: &[&str]) -> ServerBinary {
        let mut child = std::process::Command::new(binary)
            .args(["--addr", addr])
            .args(options)
            .arg("--cert")
            .arg(&pki().cert)
            .arg("--key")
            .arg(&pki().key)
            .arg("--db")
            .arg(db)
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the server binary");
        let log = log_lines(&mut child);
        let addr = listening_addr(&log);
        ServerBinary {
            child: Some(child),
            log,
            addr,
        }
    }

    /// The process itself.
    pub fn child(&self) -> &std::process::Child {
        self.child.as_ref().expect("the process is still ours")
    }

    /// A connection that has read `HELLO`.
    pub fn connect(&self) -> TestClient {
        let mut c = TestClient::connect(self.addr);
        c.expect_prefix("HELLO 1 ");
        c
    }

    /// `kill -9`, and wait for the process to be gone.
    pub fn kill(&mut self) {
        let child = self.child.as_mut().expect("the process is still ours");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// Waits (at most [`WAIT`]) for the process to exit on its own.
    pub fn wait_for_exit(mut self) -> std::process::ExitStatus {
        let child = self.child.take().expect("the process is still ours");
        wait_for_exit(child).status
    }
}

impl Drop for ServerBinary {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The one `error: ` line of a binary that failed to start, asserting that
/// there is exactly one, that nothing panicked, and a failure status.
pub fn error_line(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(!stderr.contains("panicked"), "panic in stderr: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    errors[0].to_string()
}

impl TestClient {
    /// A TLS client over a socket the test connected itself, with socket
    /// options of its own; the handshake happens on first I/O.
    pub fn over_socket(socket: TcpStream) -> TestClient {
        Self::over(socket, b"")
    }
}
