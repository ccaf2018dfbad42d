//! End-to-end tests of the real `client` binary against the real server.
//!
//! Each test starts a server in-process ([`support::TestServer`], port 0,
//! test CA) and runs the client binary with piped stdin and stdout, exactly
//! as a student's terminal would drive it, only faster. A test writes lines
//! to the client's stdin and waits for the *line of output* that proves the
//! effect, with a deadline ([`support::WAIT`]); nothing sleeps to
//! synchronise. A [`Client`] kills its process when dropped, so a failing
//! test never leaves one behind, and every line any client prints is checked
//! for a raw ESC or C1 CSI character.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use support::{pki, TestServer, WAIT};

/// One thing a client printed.
enum Output {
    /// A line of stdout or stderr, without its newline.
    Line(String),
    /// One of the two streams ended.
    End,
}

/// A running client process with piped standard streams.
struct Client {
    /// The process; killed on drop if still running.
    child: Child,
    /// Its stdin; `None` once closed.
    stdin: Option<ChildStdin>,
    /// Lines from its stdout and stderr, in arrival order.
    output: Receiver<Output>,
    /// Every line read so far, for failure messages.
    transcript: Vec<String>,
    /// How many of stdout and stderr are still open.
    open_streams: usize,
}

impl Client {
    /// Runs the client with `--lang lang`, `args` and the server's port, in
    /// `cwd` (the test's working directory when `None`).
    fn spawn(port: u16, lang: &str, args: &[&str], cwd: Option<&Path>) -> Client {
        let mut command = Command::new(env!("CARGO_BIN_EXE_client"));
        command
            .arg(port.to_string())
            .args(["--lang", lang])
            .args(args)
            // Keep the test independent of the developer's locale.
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn().expect("start the client binary");
        let (tx, output) = mpsc::channel();
        forward_lines(child.stdout.take().expect("stdout"), tx.clone());
        forward_lines(child.stderr.take().expect("stderr"), tx);
        Client {
            stdin: child.stdin.take(),
            child,
            output,
            transcript: Vec::new(),
            open_streams: 2,
        }
    }

    /// The usual client: trusts the test CA, connects to `localhost`.
    fn start(server: &TestServer, lang: &str) -> Client {
        let ca = pki().ca.to_str().expect("utf-8 path");
        Client::spawn(server.addr.port(), lang, &["--ca", ca], None)
    }

    /// Types one line.
    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").expect("write to the client");
        stdin.flush().expect("flush to the client");
    }

    /// Closes stdin, as Ctrl-D or the end of a pipe does.
    fn close_input(&mut self) {
        self.stdin = None;
    }

    /// The next line of output, or `None` when both streams have ended.
    /// Fails the test after [`WAIT`] without one.
    fn next_line(&mut self, waiting_for: &str) -> Option<String> {
        let deadline = Instant::now() + WAIT;
        while self.open_streams > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(Output::Line(line)) => {
                    assert!(
                        !line.contains('\x1b') && !line.contains('\u{9b}'),
                        "raw escape character in client output: {line:?}"
                    );
                    self.transcript.push(line.clone());
                    return Some(line);
                }
                Ok(Output::End) => self.open_streams -= 1,
                Err(_) => panic!(
                    "no {waiting_for:?} within {WAIT:?}; the client printed:\n{}",
                    self.transcript.join("\n")
                ),
            }
        }
        None
    }

    /// Waits for the line `wanted`, skipping others; returns the lines
    /// skipped before it.
    fn expect(&mut self, wanted: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            match self.next_line(wanted) {
                Some(line) if line == wanted => return skipped,
                Some(line) => skipped.push(line),
                None => panic!(
                    "the client ended without printing {wanted:?}; it printed:\n{}",
                    self.transcript.join("\n")
                ),
            }
        }
    }

    /// Waits for a line that starts with `prefix`, skipping others;
    /// returns it.
    fn expect_prefix(&mut self, prefix: &str) -> String {
        loop {
            match self.next_line(prefix) {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => {}
                None => panic!(
                    "the client ended without printing {prefix:?}…; it printed:\n{}",
                    self.transcript.join("\n")
                ),
            }
        }
    }

    /// Waits for the process to end; returns its status and the lines it
    /// printed meanwhile.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let mut rest = Vec::new();
        while let Some(line) = self.next_line("the end of the output") {
            rest.push(line);
        }
        // Both streams are closed: the process is exiting.
        let status = self.child.wait().expect("wait for the client");
        (status, rest)
    }
}

impl Drop for Client {
    /// A test that fails must not leave a client running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line of `stream` to `tx`, then [`Output::End`].
fn forward_lines(stream: impl Read + Send + 'static, tx: Sender<Output>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(Output::Line(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Output::End);
    });
}

/// Registers and logs in `user` (password 123) through the menus.
fn log_in(c: &mut Client, lang: &str, user: &str) {
    c.send("1");
    c.send(&format!("{user} 123"));
    c.send("2");
    c.send(&format!("{user} 123"));
    c.expect(&match lang {
        "pt" => format!("Você entrou como {user}."),
        _ => format!("Logged in as {user}."),
    });
}

/// Creates the public room `room` (so the user owns it) and enters it,
/// through the English menus.
fn create_and_enter(c: &mut Client, room: &str) {
    c.send("2");
    c.send(&format!("{room} n"));
    c.expect(&format!("Public room {room} created."));
    enter(c, room);
}

/// Enters `room` through the English menus.
fn enter(c: &mut Client, room: &str) {
    c.send("3");
    c.send(room);
    c.expect(&format!(
        "You are in {room}. Type to chat; /menu opens the menu, /leave leaves the room, /help \
         lists the commands."
    ));
}

/// Makes `user` an admin in the server's database, as `server user admin
/// <user> on` will; the role is read at the user's next login.
fn make_admin(server: &TestServer, user: &str) {
    let db = rusqlite::Connection::open(&server.config.db_path).expect("open the test database");
    db.busy_timeout(WAIT).expect("busy timeout");
    let changed = db
        .execute("UPDATE users SET admin = 1 WHERE name = ?1", [user])
        .expect("grant admin");
    assert_eq!(changed, 1, "no account {user}");
}

/// A temporary working directory whose `cert.pem` is a copy of `cert`.
fn dir_with_cert_pem(cert: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(cert, dir.path().join("cert.pem")).expect("copy cert.pem");
    dir
}

/// A TCP forwarder on another port, like a tunnel (ngrok): accepts up to
/// `connections` connections and copies bytes both ways to `target`.
fn forwarder(target: SocketAddr, connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
    let addr = listener.local_addr().expect("forwarder addr");
    thread::spawn(move || {
        for inbound in listener.incoming().take(connections) {
            let Ok(inbound) = inbound else { continue };
            let Ok(outbound) = TcpStream::connect(target) else {
                continue;
            };
            for (mut from, mut to) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    addr
}

/// The original course session, end to end: usuario1 (in Portuguese)
/// registers, logs in, creates a public and a private room, lists them,
/// joins and chats; usuario2 (in English) joins, sees the earlier message,
/// is announced to usuario1, and they see each other's messages and a DM.
/// `/menu` shows options 5 and 6 while messages keep arriving, `6` goes
/// back to the chat, `/leave` goes back to a menu without 5 and 6. Option 4
/// and the end of stdin both quit with status 0.
#[test]
fn original_walkthrough_two_users() {
    let server = TestServer::start();
    let mut u1 = Client::start(&server, "pt");
    u1.expect(&format!(
        "Handshake TLS bem-sucedido (TLS 1.3); certificado de localhost verificado com a CA de {}.",
        pki().ca.display()
    ));
    u1.expect("Escolha uma opção:");
    u1.send("1");
    u1.expect("Digite usuário e senha na mesma linha (ex.: usuario1 123):");
    u1.send("usuario1 123");
    u1.expect("Conta usuario1 criada. Agora entre com ela (opção 2).");
    u1.send("2");
    u1.send("usuario1 123");
    u1.expect("Você entrou como usuario1.");
    u1.send("2");
    u1.send("sala_publica n");
    u1.expect("Sala pública sala_publica criada.");
    u1.send("2");
    u1.send("sala_privada s senhasecreta");
    u1.expect("Sala privada sala_privada criada.");
    u1.send("1");
    u1.expect("Salas:");
    u1.expect("  sala_privada (privada, 0 online)");
    u1.expect("  sala_publica (pública, 0 online)");
    u1.send("3");
    u1.send("sala_publica");
    u1.expect("Você está na sala sala_publica. Digite para conversar; /menu abre o menu, /leave sai da sala, /help lista os comandos.");
    u1.send("olá, alguém aí?");
    u1.expect("[usuario1@sala_publica]: olá, alguém aí?");

    // The second user, in English; the history is marked as earlier.
    let mut u2 = Client::start(&server, "en");
    log_in(&mut u2, "en", "usuario2");
    u2.send("3");
    u2.send("sala_publica");
    u2.expect("You are in sala_publica. Type to chat; /menu opens the menu, /leave leaves the room, /help lists the commands.");
    u2.expect("--- 1 earlier message ---");
    u2.expect("  [usuario1@sala_publica]: olá, alguém aí?");
    u2.expect("--- end of earlier messages ---");
    u1.expect("*** usuario2 entrou na sala. ***");

    // Both see each other's messages.
    u2.send("oi, usuario1!");
    u2.expect("[usuario2@sala_publica]: oi, usuario1!");
    u1.expect("[usuario2@sala_publica]: oi, usuario1!");
    u1.send("tudo bem?");
    u2.expect("[usuario1@sala_publica]: tudo bem?");

    // /menu: options 5 and 6 name the room; messages keep arriving.
    u1.send("/menu");
    u1.expect("5 - Sair da sala sala_publica");
    u1.expect("6 - Voltar ao chat da sala sala_publica");
    u2.send("still there?");
    u1.expect("[usuario2@sala_publica]: still there?");
    u1.send("6");
    u1.expect("De volta ao chat da sala sala_publica.");

    // /who and a direct message.
    u1.send("/who");
    u1.expect("Na sala (2): usuario1, usuario2");
    u2.send("/msg usuario1 psst");
    u1.expect("[mensagem direta de usuario2]: psst");
    u2.expect("Direct message delivered to usuario1.");

    // /leave: a menu without 5 and 6; the other user sees the leave notice.
    u1.send("/leave");
    u1.expect("Você saiu da sala sala_publica.");
    let menu = u1.expect("Escolha uma opção:");
    assert!(
        menu.contains(&"4 - Sair do programa".to_string()),
        "{menu:?}"
    );
    assert!(
        !menu
            .iter()
            .any(|l| l.starts_with("5 -") || l.starts_with("6 -")),
        "{menu:?}"
    );
    u2.expect("*** usuario1 left the room. ***");

    // Option 4 quits with status 0.
    u1.send("4");
    u1.expect("Até logo!");
    let (status, _) = u1.finish();
    assert!(status.success(), "{status}");

    // The end of stdin quits too, with status 0.
    u2.close_input();
    u2.expect("Goodbye!");
    let (status, _) = u2.finish();
    assert!(status.success(), "{status}");
}

/// A whole session typed ahead into a pipe runs in order: each line waits
/// for the reply that decides what it means (`printf ... | client`).
#[test]
fn piped_script_runs_in_order() {
    let server = TestServer::start();
    let mut c = Client::start(&server, "en");
    for line in [
        "1", "ana 123", "2", "ana 123", "2", "sala n", "3", "sala", "hello", "/leave", "4",
    ] {
        c.send(line);
    }
    c.close_input();
    let (status, out) = c.finish();
    assert!(status.success(), "{status}: {out:#?}");
    let position = |wanted: &str| {
        out.iter()
            .position(|l| l == wanted)
            .unwrap_or_else(|| panic!("{wanted:?} not in {out:#?}"))
    };
    let order = [
        position("Account ana created. Now log in (option 2)."),
        position("Logged in as ana."),
        position("Public room sala created."),
        position("[ana@sala]: hello"),
        position("You left sala."),
        position("Goodbye!"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{out:#?}");
}

/// A wrong private-room password is one sentence in the user's language
/// (never the server's English text); the right one lets the user in.
#[test]
fn wrong_private_room_password() {
    let server = TestServer::start();
    let mut c = Client::start(&server, "pt");
    log_in(&mut c, "pt", "usuario1");
    c.send("2");
    c.send("sala_privada s senhasecreta");
    c.expect("Sala privada sala_privada criada.");
    c.send("3");
    c.send("sala_privada errada");
    let refused = "Senha incorreta ou ausente: essa sala é privada; entre com o nome e a senha \
                   dela (ex.: sala_privada senhasecreta).";
    let before = c.expect(refused);
    assert!(!before.iter().any(|l| l.contains("room password")));
    c.expect("Escolha uma opção:");
    c.send("3");
    c.send("sala_privada");
    c.expect(refused);
    c.send("3");
    c.send("sala_privada senhasecreta");
    c.expect("Você está na sala sala_privada. Digite para conversar; /menu abre o menu, /leave sai da sala, /help lista os comandos.");
    c.send("/quit");
    c.expect("Até logo!");
    assert!(c.finish().0.success());
}

/// By default the client pins `cert.pem` of its working directory: the
/// test server's own certificate is accepted.
#[test]
fn default_pins_cert_pem_in_working_directory() {
    let server = TestServer::start();
    let dir = dir_with_cert_pem(&pki().cert);
    let mut c = Client::spawn(server.addr.port(), "en", &[], Some(dir.path()));
    c.expect("TLS handshake succeeded (TLS 1.3); the server's certificate is the one in cert.pem.");
    log_in(&mut c, "en", "pinned");
    c.send("4");
    c.expect("Goodbye!");
    assert!(c.finish().0.success());
}

/// A server presenting another certificate than the pinned one is refused
/// before anything is sent: one sentence on stderr, non-zero status.
#[test]
fn other_certificate_than_the_pinned_one_is_refused() {
    let server = TestServer::start();
    // The CA's certificate is a perfectly valid certificate, but not the
    // server's: pinning it must refuse the server.
    let dir = dir_with_cert_pem(&pki().ca);
    let c = Client::spawn(server.addr.port(), "pt", &[], Some(dir.path()));
    let (status, out) = c.finish();
    assert!(!status.success());
    assert_eq!(
        out,
        ["RECUSADO: o certificado do servidor não é o de cert.pem. Este pode não ser o servidor certo, ou alguém está no meio do caminho. Nada foi enviado. Confira o --host e a porta, e peça ao dono do servidor o cert.pem atual dele."]
    );
}

/// With `--ca`, the name checked is `--server-name` (not `--host`): a
/// name the certificate does not have is refused.
#[test]
fn ca_mode_checks_the_server_name() {
    let server = TestServer::start();
    let ca = pki().ca.to_str().unwrap();
    let c = Client::spawn(
        server.addr.port(),
        "en",
        &["--ca", ca, "--server-name", "wrong.example"],
        None,
    );
    let (status, out) = c.finish();
    assert!(!status.success());
    assert_eq!(
        out,
        ["REFUSED: the server's certificate is not for the name wrong.example. Nothing was sent. \
          Give a name it has with --server-name NAME, or pin the server's own certificate \
          instead: --cert-pin FILE, FILE being the server's cert.pem."]
    );
}

/// `--insecure` connects without verification and says so every time.
#[test]
fn insecure_mode_warns() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap(); // no cert.pem anywhere
    let mut c = Client::spawn(server.addr.port(), "en", &["--insecure"], Some(dir.path()));
    let first = c.next_line("the warning").unwrap();
    assert!(first.starts_with("WARNING: --insecure: the server's certificate is NOT verified."));
    c.expect("TLS handshake succeeded (TLS 1.3), WITHOUT verifying the server.");
    c.send("3");
    c.expect("Goodbye!");
    assert!(c.finish().0.success());
}

/// Through a tunnel (a TCP forwarder on another port) whose host name is
/// not in the certificate: pinning works whatever the name, and `--ca`
/// works when `--server-name` gives a name the certificate has.
#[test]
fn through_a_tunnel() {
    let server = TestServer::start();
    let tunnel = forwarder(server.addr, 2);
    let dir = dir_with_cert_pem(&pki().cert);
    let mut pinned = Client::spawn(
        tunnel.port(),
        "en",
        &["--host", "127.0.0.1", "--server-name", "0.tcp.sa.ngrok.io"],
        Some(dir.path()),
    );
    pinned.expect(
        "TLS handshake succeeded (TLS 1.3); the server's certificate is the one in cert.pem.",
    );
    log_in(&mut pinned, "en", "tunnel1");

    let ca = pki().ca.to_str().unwrap();
    let mut with_ca = Client::spawn(
        tunnel.port(),
        "en",
        &[
            "--host",
            "127.0.0.1",
            "--ca",
            ca,
            "--server-name",
            "localhost",
        ],
        None,
    );
    with_ca.expect(&format!(
        "TLS handshake succeeded (TLS 1.3); certificate for localhost verified with the CA in {ca}."
    ));
    log_in(&mut with_ca, "en", "tunnel2");
    for c in [pinned, with_ca] {
        let mut c = c;
        c.send("4");
        c.expect("Goodbye!");
        assert!(c.finish().0.success());
    }
}

/// Text with control characters cannot reach another user through the
/// real server (it answers BAD_TEXT), the client refuses to send it, and
/// no raw ESC appears in any output (checked on every line by `Client`).
#[test]
fn escape_sequences_cannot_arrive() {
    let server = TestServer::start();
    let mut alice = Client::start(&server, "en");
    log_in(&mut alice, "en", "alice");
    alice.send("2");
    alice.send("sala n");
    alice.expect("Public room sala created.");
    alice.send("3");
    alice.send("sala");
    alice.expect("You are in sala. Type to chat; /menu opens the menu, /leave leaves the room, /help lists the commands.");

    let mut mallory = server.user_in("mallory", "sala");
    for attack in [
        "SAY \x1b[2J\x1b[Hgotcha",
        "SAY \u{9b}2Jgotcha",
        "DM alice \x1b]0;pwned\x07",
        "DM alice \u{9b}31mred",
    ] {
        mallory.send(attack);
        mallory.expect_prefix("ERR BAD_TEXT ");
    }
    mallory.send("SAY harmless");
    alice.expect("[mallory@sala]: harmless");

    // Typed by alice: refused before it is sent.
    alice.send("\x1b[31mred");
    alice.expect("Messages must not be blank or contain control characters.");
    alice.send("/quit");
    alice.expect("Goodbye!");
    assert!(alice.finish().0.success());
}

/// A fake server on a free port: it completes the TLS handshake with the
/// test PKI's certificate, writes `lines`, then reads until the client goes
/// away. Returns the port and the thread to join.
fn fake_server(lines: &'static str) -> (u16, thread::JoinHandle<()>) {
    use rustls::{ServerConnection, StreamOwned};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = chat::tls::server_config(&pki().cert, &pki().key).unwrap();
    let fake = thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let conn = ServerConnection::new(Arc::clone(&tls)).unwrap();
        let mut stream = StreamOwned::new(conn, socket);
        stream.write_all(lines.as_bytes()).unwrap();
        stream.flush().unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    (port, fake)
}

/// A hostile (or buggy) server that does send control characters cannot
/// drive the terminal: the client shows them as visible placeholders.
#[test]
fn hostile_server_cannot_drive_the_terminal() {
    let (port, fake) = fake_server(
        "HELLO 1 evil/1.0 hi\n\
         MSG sala 2026-11-30T07:50:09.123Z mallory \x1b[2J\x1b[Hcleared\n\
         DM mallory 2026-11-30T07:50:09.123Z \u{9b}31mred\x07\n",
    );
    let ca = pki().ca.to_str().unwrap();
    let mut c = Client::spawn(port, "en", &["--ca", ca, "--host", "127.0.0.1"], None);
    c.expect("[mallory@sala]: ^[[2J^[[Hcleared");
    c.expect("[DM from mallory]: \u{FFFD}31mred^G");
    c.close_input();
    let (status, _) = c.finish();
    assert!(status.success());
    fake.join().unwrap();
}

/// No server on the port: one clear line on stderr, non-zero status.
#[test]
fn unreachable_server() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let c = Client::spawn(port, "en", &["--insecure", "--host", "127.0.0.1"], None);
    let (status, out) = c.finish();
    assert!(!status.success());
    assert_eq!(out.len(), 1, "{out:#?}");
    assert!(
        out[0].starts_with(&format!("Cannot connect to 127.0.0.1:{port} (")),
        "{out:#?}"
    );
    assert!(
        out[0].ends_with(
            "). Check that the server is running and that the port and --host are the server's."
        ),
        "{out:#?}"
    );
}

/// The server shutting down: the client shows the BYE reason in the
/// user's language and exits with a non-zero status.
#[test]
fn server_shutdown_shows_the_reason() {
    let mut server = TestServer::start();
    let mut c = Client::start(&server, "pt");
    log_in(&mut c, "pt", "usuario1");
    server.stop();
    c.expect("O servidor está sendo desligado: rode o cliente de novo quando ele voltar.");
    let (status, _) = c.finish();
    assert!(!status.success());
}

/// `--help` lists every option that docs/CLIENT.md describes.
#[test]
fn help_lists_the_options() {
    let out = Command::new(env!("CARGO_BIN_EXE_client"))
        .arg("--help")
        .output()
        .expect("run client --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--host",
        "--lang",
        "--cert-pin",
        "--ca",
        "--server-name",
        "--insecure",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

/// What `/help` ends with, in English.
const HELP_END: &str = "Anything else is said in the room. At the main menu, a line that starts \
                        with / is one of these commands.";

/// A plain user (not an admin, not the room's owner): `/help` lists the
/// commands everybody has and no moderation command, and a moderation
/// command is refused with a sentence saying who may use it.
#[test]
fn plain_user_help_and_refused_moderation() {
    let server = TestServer::start();
    let mut alice = Client::start(&server, "en");
    log_in(&mut alice, "en", "alice");
    create_and_enter(&mut alice, "sala");
    let mut bob = Client::start(&server, "en");
    log_in(&mut bob, "en", "bob");
    enter(&mut bob, "sala");

    bob.send("/help");
    bob.expect("Chat commands:");
    let help = bob.expect(HELP_END);
    assert_eq!(
        help,
        [
            "  /menu               open the menu (you stay in the room)",
            "  /leave              leave the room",
            "  /who                who is in the room",
            "  /msg <user> <text>  send a direct message",
            "  /topic              show the room's topic",
            "  /help               this help",
            "  /quit               quit",
        ]
    );
    // None of the server's own HELP lines were shown.
    assert!(!bob.transcript.iter().any(|l| l.contains("REGISTER")));

    bob.send("/kick alice");
    bob.expect(
        "Only the room's owner or an admin may do that, and nobody may kick or ban themselves \
         or an admin.",
    );
    bob.send("/announce hello everybody");
    bob.expect("Only an admin may do that, and nobody may suspend themselves or an admin.");
    // Still chatting.
    bob.send("still here");
    alice.expect("[bob@sala]: still here");
    bob.send("/quit");
    bob.expect("Goodbye!");
    assert!(bob.finish().0.success());
}

/// A line whose first word the client does not know (a newer server's
/// event) is not shown; what follows it is.
#[test]
fn unknown_server_lines_are_ignored() {
    let (port, fake) = fake_server(
        "HELLO 1 future/2.0 hi\n\
         FROBNICATE sala 42\n\
         REACTION sala 2026-11-30T07:50:09.123Z bob :+1:\n\
         LEFT sala carol vanished\n\
         MSG sala 2026-11-30T07:50:09.123Z mallory after\n",
    );
    let ca = pki().ca.to_str().unwrap();
    let mut c = Client::spawn(port, "en", &["--ca", ca, "--host", "127.0.0.1"], None);
    let before = c.expect("[mallory@sala]: after");
    assert!(
        !before
            .iter()
            .any(|l| l.contains("FROBNICATE") || l.contains("REACTION")),
        "{before:#?}"
    );
    // An unknown LEFT reason reads as leave.
    assert!(
        before.contains(&"*** carol left the room. ***".to_string()),
        "{before:#?}"
    );
    c.close_input();
    let (status, _) = c.finish();
    assert!(status.success());
    fake.join().unwrap();
}

/// The room's owner sets the topic: every member sees it change, a user
/// who joins later sees it after the history, and `/topic` shows it.
#[test]
fn topic_set_and_shown_on_join() {
    let server = TestServer::start();
    let mut alice = Client::start(&server, "en");
    log_in(&mut alice, "en", "alice");
    create_and_enter(&mut alice, "sala");
    alice.send("hello");
    alice.expect("[alice@sala]: hello");
    alice.send("/topic Exam review until 10:00");
    alice.expect("*** alice set the topic: Exam review until 10:00 ***");

    let mut bob = Client::start(&server, "pt");
    log_in(&mut bob, "pt", "bob");
    bob.send("3");
    bob.send("sala");
    bob.expect("--- fim das mensagens anteriores ---");
    let topic = bob.next_line("the topic").expect("a line");
    assert!(
        topic.starts_with("Tópico de sala: Exam review until 10:00 (definido por alice em ")
            && topic.ends_with(" UTC)"),
        "{topic:?}"
    );
    bob.send("/topic");
    bob.expect(&topic);

    // The owner's /help lists setting the topic; bob's does not.
    alice.send("/help");
    let help = alice.expect(HELP_END);
    assert!(
        help.iter().any(|l| l.starts_with("  /topic [text] ")),
        "{help:#?}"
    );
    assert!(
        help.iter()
            .any(|l| l.starts_with("  /kick <user> [reason] ")),
        "{help:#?}"
    );
    assert!(
        !help.iter().any(|l| l.starts_with("  /announce")),
        "{help:#?}"
    );
    bob.send("/help");
    let help = bob.expect("Qualquer outra coisa é dita na sala. No menu principal, uma linha que começa com / é um destes comandos.");
    assert!(help.iter().any(|l| l.starts_with("  /topic ")), "{help:#?}");
    assert!(!help.iter().any(|l| l.starts_with("  /kick")), "{help:#?}");
}

/// The owner kicks a member: the member sees who and why and is back at
/// the main menu; the owner sees the member removed. A ban keeps the
/// member out, with the server's text naming the end, and `/bans` lists it.
#[test]
fn kick_and_ban_seen_by_both_sides() {
    let server = TestServer::start();
    let mut alice = Client::start(&server, "en");
    log_in(&mut alice, "en", "alice");
    create_and_enter(&mut alice, "sala");
    let mut bob = Client::start(&server, "pt");
    log_in(&mut bob, "pt", "bob");
    bob.send("3");
    bob.send("sala");
    bob.expect("Você está na sala sala. Digite para conversar; /menu abre o menu, /leave sai da sala, /help lista os comandos.");
    alice.expect("*** bob joined the room. ***");

    alice.send("/kick bob please stop flooding");
    bob.expect("*** Você foi removido da sala sala por alice: please stop flooding ***");
    bob.expect("--- Menu principal ---");
    let menu = bob.expect("Escolha uma opção:");
    assert!(!menu.iter().any(|l| l.starts_with("5 -")), "{menu:?}");
    alice.expect("*** bob was removed from the room. ***");
    alice.expect("You removed bob from the room.");

    // Back in, then banned for 30 minutes.
    bob.send("3");
    bob.send("sala");
    bob.expect("Você está na sala sala. Digite para conversar; /menu abre o menu, /leave sai da sala, /help lista os comandos.");
    alice.send("/ban bob 30 flooding again");
    bob.expect("*** Você foi removido da sala sala por alice: flooding again ***");
    alice.expect("*** bob was removed from the room. ***");
    alice.expect("bob is banned from sala for 30 minutes.");
    bob.send("3");
    bob.send("sala");
    bob.expect_prefix("Um banimento impede você de entrar nessa sala. O servidor diz: ");

    alice.send("/bans");
    alice.expect("Bans in sala (1):");
    let ban = alice.next_line("the ban").expect("a line");
    assert!(
        ban.starts_with("  bob until ") && ban.ends_with(" UTC, by alice"),
        "{ban:?}"
    );
    alice.send("/unban bob");
    alice.expect("bob may join sala again.");
    bob.send("3");
    bob.send("sala");
    bob.expect("Você está na sala sala. Digite para conversar; /menu abre o menu, /leave sai da sala, /help lista os comandos.");
}

/// The owner closes the room: everybody in it is back at the main menu.
#[test]
fn close_sends_everybody_to_the_menu() {
    let server = TestServer::start();
    let mut alice = Client::start(&server, "en");
    log_in(&mut alice, "en", "alice");
    create_and_enter(&mut alice, "sala");
    let mut bob = Client::start(&server, "en");
    log_in(&mut bob, "en", "bob");
    enter(&mut bob, "sala");

    alice.send("/close");
    bob.expect("*** The room sala was closed by alice. ***");
    bob.expect("--- Main menu ---");
    alice.expect("*** The room sala was closed by alice. ***");
    alice.expect("The room sala is closed: its messages, bans and topic are deleted.");
    bob.send("3");
    bob.send("sala");
    bob.expect("There is no room with that name: list the rooms, or create it.");
}

/// An admin's announcement reaches every logged-in user as a notice,
/// the admin included; the admin's `/help` lists the admin commands.
#[test]
fn announce_is_a_notice() {
    let server = TestServer::start();
    let mut bob = Client::start(&server, "pt");
    log_in(&mut bob, "pt", "bob");
    let mut prof = Client::start(&server, "en");
    prof.send("1");
    prof.send("prof 123");
    prof.expect("Account prof created. Now log in (option 2).");
    make_admin(&server, "prof");
    prof.send("2");
    prof.send("prof 123");
    prof.expect("Logged in as prof.");

    // At the main menu: a /command.
    prof.send("/announce class ends in five minutes");
    bob.expect("[AVISO de prof]: class ends in five minutes");
    prof.expect("[NOTICE from prof]: class ends in five minutes");
    prof.expect("Notice sent to 2 connections.");

    prof.send("/help");
    let help = prof.expect(HELP_END);
    for command in ["  /suspend ", "  /unsuspend ", "  /announce "] {
        assert!(help.iter().any(|l| l.starts_with(command)), "{help:#?}");
    }

    // Suspended: bob's session ends with the reason.
    prof.send("/suspend bob 60 cheating");
    let bye = bob.expect_prefix(
        "Um administrador suspendeu sua conta; esta sessão foi encerrada. O servidor diz: An \
         admin suspended this account until 2",
    );
    assert!(bye.ends_with("Z."), "names the end: {bye}");
    prof.expect(
        "bob is suspended for 60 minutes: their sessions are closed and they cannot log in.",
    );
    let (status, _) = bob.finish();
    assert!(!status.success());
}
