//! Scripted sessions over real TLS against the real server: every command
//! of the protocol, and every error code and `BYE` reason, asserted as the
//! exact line on the wire.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use chat::protocol::ServerLine;
use support::{read_to_close, TestClient, TestServer};

/// The example session of PROTOCOL.md, line for line (times aside).
#[test]
fn the_contract_example_session() {
    let server = TestServer::start();
    let mut alice = server.connect();
    alice.send("REGISTER alice 123");
    alice.expect("OK REGISTER alice");
    alice.send("LOGIN alice 123");
    alice.expect("OK LOGIN alice");
    alice.send("CREATE sala_publica");
    alice.expect("OK CREATE sala_publica");
    alice.send("JOIN sala_publica");
    alice.expect("OK JOIN sala_publica");
    let mut bob = server.user("bob");
    bob.join("sala_publica");
    alice.expect("JOINED sala_publica bob");
    alice.send("SAY olá, bob!");
    alice.expect_msg("sala_publica", "alice", "olá, bob!");
    bob.expect_msg("sala_publica", "alice", "olá, bob!");
    bob.send("SAY oi!");
    alice.expect_msg("sala_publica", "bob", "oi!");
    bob.expect_msg("sala_publica", "bob", "oi!");
    alice.send("QUIT");
    alice.expect("BYE QUIT Goodbye.");
    alice.expect_closed();
    bob.expect("LEFT sala_publica alice quit");
}

/// The greeting names the protocol version and the software.
#[test]
fn hello_line() {
    let server = TestServer::start();
    let mut c = TestClient::connect(server.addr);
    let hello = c.line();
    assert_eq!(
        hello,
        format!(
            "HELLO 1 chat-server/{} Type HELP for commands.",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// PING, HELP and QUIT work before login; PING echoes its token.
#[test]
fn ping_help_quit_before_login() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send("PING");
    c.expect("PONG");
    c.send("ping hello world");
    c.expect("PONG hello world");
    c.send("HELP");
    let lines = c.lines_until(|l| l.starts_with("OK "));
    assert_eq!(lines.last().map(String::as_str), Some("OK HELP"));
    let info: Vec<_> = lines.iter().filter(|l| l.starts_with("INFO ")).collect();
    assert_eq!(
        info.len(),
        lines.len() - 1,
        "only INFO lines before OK HELP"
    );
    for keyword in [
        "REGISTER", "LOGIN", "ROOMS", "CREATE", "JOIN", "LEAVE", "SAY", "WHO", "DM", "PING",
        "HELP", "QUIT",
    ] {
        assert!(
            info.iter()
                .any(|l| l.starts_with(&format!("INFO {keyword} "))),
            "HELP does not describe {keyword}"
        );
    }
    c.send("quit");
    c.expect("BYE QUIT Goodbye.");
    assert!(c.expect_closed().is_empty());
}

/// Commands that need a session answer NOT_LOGGED_IN before LOGIN.
#[test]
fn not_logged_in() {
    let server = TestServer::start();
    let mut c = server.connect();
    for command in [
        "ROOMS",
        "CREATE sala",
        "JOIN sala",
        "LEAVE",
        "SAY hi",
        "WHO",
        "DM bob hi",
    ] {
        c.send(command);
        let line = c.line();
        assert!(line.starts_with("ERR NOT_LOGGED_IN "), "{command}: {line}");
    }
}

/// Malformed lines get one ERR each and the connection goes on.
#[test]
fn parse_errors_keep_the_connection() {
    let server = TestServer::start();
    let mut c = server.user("alice");
    let cases = [
        ("", "ERR UNKNOWN_COMMAND "),
        ("FROB", "ERR UNKNOWN_COMMAND "),
        ("REGISTER", "ERR BAD_ARGS "),
        ("REGISTER bob", "ERR BAD_ARGS "),
        ("REGISTER b@d pw", "ERR BAD_NAME "),
        (
            "REGISTER thisnameiswaytoolongforthe32charlimit pw",
            "ERR BAD_NAME ",
        ),
        ("REGISTER bob bad\tpassword", "ERR BAD_PASSWORD "),
        ("ROOMS now", "ERR BAD_ARGS "),
        ("CREATE", "ERR BAD_ARGS "),
        ("CREATE sala!", "ERR BAD_NAME "),
        ("CREATE sala ", "ERR BAD_PASSWORD "),
        ("SAY", "ERR BAD_ARGS "),
        ("SAY    ", "ERR BAD_TEXT "),
        ("SAY bell\u{7}", "ERR BAD_TEXT "),
        ("SAY esc\u{1b}[2J", "ERR BAD_TEXT "),
        ("DM bob", "ERR BAD_ARGS "),
        ("DM bob nul\u{0}", "ERR BAD_TEXT "),
    ];
    for (line, expected) in cases {
        c.send(line);
        let got = c.line();
        assert!(
            got.starts_with(expected),
            "{line:?}: expected {expected:?}…, got {got:?}"
        );
    }
    c.send("PING still here");
    c.expect("PONG still here");
}

/// A CR before the LF is dropped, and keywords are case-insensitive.
#[test]
fn crlf_and_keyword_case() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send_raw(b"register carol pw\r\nLoGiN carol pw\r\n");
    c.expect("OK REGISTER carol");
    c.expect("OK LOGIN carol");
}

/// REGISTER errors: a taken name in any case.
#[test]
fn register_user_exists() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send("REGISTER Alice pw");
    c.expect("OK REGISTER Alice");
    c.send("REGISTER ALICE other");
    c.expect_prefix("ERR USER_EXISTS ");
}

/// LOGIN errors: wrong password and unknown user are the same line;
/// a second LOGIN on one connection is ALREADY_LOGGED_IN.
#[test]
fn login_errors() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send("REGISTER alice right");
    c.expect("OK REGISTER alice");
    c.send("LOGIN alice wrong");
    let wrong = c.line();
    c.send("LOGIN nobody wrong");
    let unknown = c.line();
    assert_eq!(wrong, "ERR BAD_CREDENTIALS Wrong user name or password.");
    assert_eq!(wrong, unknown);
    c.send("LOGIN alice");
    c.expect_prefix("ERR BAD_ARGS ");
    c.send("LOGIN alice right");
    c.expect("OK LOGIN alice");
    c.send("LOGIN alice right");
    c.expect_prefix("ERR ALREADY_LOGGED_IN ");
}

/// Failed logins are limited per user name: the sixth try within a minute
/// is RATE_LIMITED even with the right password, while other names and
/// other connections from the same address are unaffected.
#[test]
fn failed_login_throttling_is_per_name() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send("REGISTER alice right");
    c.expect("OK REGISTER alice");
    c.send("REGISTER bob right");
    c.expect("OK REGISTER bob");
    for _ in 0..5 {
        c.send("LOGIN alice wrong");
        c.expect("ERR BAD_CREDENTIALS Wrong user name or password.");
    }
    c.send("LOGIN alice right");
    c.expect_prefix("ERR RATE_LIMITED ");
    let mut other = server.connect();
    other.send("LOGIN alice right");
    other.expect_prefix("ERR RATE_LIMITED ");
    other.send("LOGIN bob right");
    other.expect("OK LOGIN bob");
}

/// CREATE: public and private rooms, ROOM_EXISTS in any case.
#[test]
fn create_rooms() {
    let server = TestServer::start();
    let mut c = server.user("alice");
    c.send("CREATE Sala");
    c.expect("OK CREATE Sala");
    c.send("CREATE segredo pass word");
    c.expect("OK CREATE segredo");
    c.send("CREATE sala");
    c.expect_prefix("ERR ROOM_EXISTS ");
    c.send("ROOMS");
    c.expect("ROOM Sala public 0");
    c.expect("ROOM segredo private 0");
    c.expect("OK ROOMS 2");
}

/// JOIN errors: unknown room, wrong password, already in the room.
#[test]
fn join_errors() {
    let server = TestServer::start();
    let mut c = server.user("alice");
    c.send("JOIN nowhere");
    c.expect_prefix("ERR NO_SUCH_ROOM ");
    c.send("CREATE priv s3cret");
    c.expect("OK CREATE priv");
    c.send("JOIN priv");
    c.expect_prefix("ERR BAD_ROOM_PASSWORD ");
    c.send("JOIN priv wrong");
    c.expect_prefix("ERR BAD_ROOM_PASSWORD ");
    c.send("JOIN priv s3cret");
    c.expect("OK JOIN priv");
    c.send("JOIN PRIV s3cret");
    c.expect_prefix("ERR ALREADY_IN_ROOM ");
}

/// LEAVE, SAY and WHO outside a room are NOT_IN_ROOM; in a room they work.
#[test]
fn leave_say_who() {
    let server = TestServer::start();
    let mut c = server.user("alice");
    for command in ["LEAVE", "SAY hi", "WHO"] {
        c.send(command);
        c.expect_prefix("ERR NOT_IN_ROOM ");
    }
    c.send("CREATE sala");
    c.expect("OK CREATE sala");
    c.join("sala");
    c.send("WHO");
    c.expect("USER alice");
    c.expect("OK WHO 1");
    c.send("SAY tab\tand  spaces");
    c.expect_msg("sala", "alice", "tab\tand  spaces");
    c.send("LEAVE");
    c.expect("OK LEAVE sala");
    c.send("LEAVE");
    c.expect_prefix("ERR NOT_IN_ROOM ");
}

/// DM to a user that does not exist.
#[test]
fn dm_no_such_user() {
    let server = TestServer::start();
    let mut c = server.user("alice");
    c.send("DM ghost boo");
    c.expect_prefix("ERR NO_SUCH_USER ");
}

/// SAY is rate limited per connection: the burst passes, the next is
/// RATE_LIMITED, and the connection stays usable.
#[test]
fn say_rate_limit() {
    let server = TestServer::start_with(|c| {
        // CREATE and JOIN take two of these; three are left for SAY/DM.
        c.msg_burst = 5;
        c.msg_rate = 1;
    });
    let mut c = server.user_in("alice", "sala");
    c.send_raw(b"SAY 1\nSAY 2\nSAY 3\nSAY 4\nDM alice 5\n");
    for n in ["1", "2", "3"] {
        c.expect_msg("sala", "alice", n);
    }
    c.expect_prefix("ERR RATE_LIMITED ");
    c.expect_prefix("ERR RATE_LIMITED ");
    c.send("PING ok");
    c.expect("PONG ok");
}

/// A line over the limit is LINE_TOO_LONG, discarded to its end, and the
/// next line is handled normally; so are 1 MB lines.
#[test]
fn line_too_long() {
    let server = TestServer::start();
    let mut c = server.user_in("alice", "sala");
    let mut long = vec![b'a'; 5000];
    long.push(b'\n');
    c.send_raw(&long);
    c.expect_prefix("ERR LINE_TOO_LONG ");
    let mut huge = b"SAY ".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 1 << 20));
    huge.extend_from_slice(b"\nSAY after\n");
    c.send_raw(&huge);
    c.expect_prefix("ERR LINE_TOO_LONG ");
    c.expect_msg("sala", "alice", "after");
    // The limit counts the LF: 4095 bytes + LF fit exactly.
    let mut exact = b"SAY ".to_vec();
    exact.extend(std::iter::repeat_n(b'y', 4091));
    exact.push(b'\n');
    c.send_raw(&exact);
    match c.parsed() {
        ServerLine::Msg { text, .. } => assert_eq!(text.len(), 4091),
        other => panic!("expected the MSG, got {other}"),
    }
}

/// A line that is not UTF-8 is BAD_ENCODING and the connection goes on.
#[test]
fn bad_encoding() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send_raw(b"PING \xff\xfe\n");
    c.expect_prefix("ERR BAD_ENCODING ");
    c.send("PING ok");
    c.expect("PONG ok");
}

/// Pipelined lines are answered in order, one final reply each.
#[test]
fn pipelining_keeps_order() {
    let server = TestServer::start();
    let mut c = server.connect();
    c.send_raw(b"REGISTER p pw\nLOGIN p pw\nCREATE r\nJOIN r\nWHO\nPING 1\nLEAVE\nQUIT\n");
    for expected in [
        "OK REGISTER p",
        "OK LOGIN p",
        "OK CREATE r",
        "OK JOIN r",
        "USER p",
        "OK WHO 1",
        "PONG 1",
        "OK LEAVE r",
        "BYE QUIT Goodbye.",
    ] {
        c.expect(expected);
    }
    c.expect_closed();
}

/// No LOGIN within the login timeout: BYE LOGIN_TIMEOUT, then close.
#[test]
fn login_timeout() {
    let server = TestServer::start_with(|c| c.login_timeout = Duration::from_secs(1));
    let mut c = server.connect();
    c.send("PING waiting");
    c.expect("PONG waiting");
    c.expect("BYE LOGIN_TIMEOUT No successful LOGIN in time.");
    c.expect_closed();
}

/// A logged-in connection is not subject to the login timeout.
#[test]
fn login_timeout_spares_logged_in_users() {
    let server = TestServer::start_with(|c| c.login_timeout = Duration::from_secs(1));
    let mut c = server.user("alice");
    let mut late = server.connect();
    late.expect("BYE LOGIN_TIMEOUT No successful LOGIN in time.");
    // `late` was connected after `c` logged in, so `c`'s deadline has passed.
    c.send("PING alive");
    c.expect("PONG alive");
}

/// Past the connection limit, a client gets BYE TOO_MANY_CONNECTIONS;
/// when a place frees up, the next one is served.
#[test]
fn connection_limit() {
    let server = TestServer::start_with(|c| c.max_connections = 2);
    let mut a = server.connect();
    let b = server.connect();
    let mut c = TestClient::connect(server.addr);
    c.expect("BYE TOO_MANY_CONNECTIONS The server is full; try again later.");
    c.expect_closed();
    drop(b);
    a.send("QUIT");
    a.expect("BYE QUIT Goodbye.");
    a.expect_closed();
    // Both places are free once the server has seen both disconnects; a
    // new client may race them, so try until one is served.
    let served = (0..50).any(|_| {
        let mut d = TestClient::connect(server.addr);
        d.line().starts_with("HELLO ")
    });
    assert!(served, "no connection was served after places were freed");
}

/// Shutdown: every connected client gets BYE SHUTDOWN and is closed, and
/// everything said before it is in the history after a restart.
#[test]
fn shutdown_says_bye_to_everyone() {
    let mut server = TestServer::start_with(|c| {
        c.msg_burst = 1000;
        c.msg_rate = 1000;
        c.line_burst = 1000;
        c.line_rate = 1000;
    });
    let mut alice = server.user_in("alice", "sala");
    let mut anon = server.connect();
    let said: Vec<String> = (0..200).map(|i| format!("message {i}")).collect();
    let batch: String = said.iter().map(|t| format!("SAY {t}\n")).collect();
    alice.send_raw(batch.as_bytes());
    for text in &said {
        alice.expect_msg("sala", "alice", text);
    }
    server.stop();
    alice.expect("BYE SHUTDOWN The server is shutting down.");
    alice.expect_closed();
    anon.expect("BYE SHUTDOWN The server is shutting down.");
    anon.expect_closed();

    let server = server.restart();
    let mut bob = server.user("bob");
    let history = bob.join("sala");
    let texts: Vec<String> = history
        .into_iter()
        .map(|line| match line {
            ServerLine::History { text, .. } => text,
            other => panic!("not history: {other}"),
        })
        .collect();
    assert_eq!(texts, said[150..], "the last 50 messages, oldest first");
}

/// A member that stops reading is dropped with SLOW_CONSUMER; everyone
/// else gets every message, in order.
#[test]
fn slow_consumer_is_dropped() {
    let server = TestServer::start_with(|c| {
        c.queue_lines = 16;
        c.history = 0;
        c.msg_burst = 100_000;
        c.msg_rate = 100_000;
        c.line_burst = 100_000;
        c.line_rate = 100_000;
    });
    let mut talker = server.user_in("talker", "sala");
    let mut reader = server.user_in("reader", "sala");
    let mut sleeper = server.user_in("sleeper", "sala");
    talker.expect("JOINED sala reader");
    talker.expect("JOINED sala sleeper");
    reader.expect("JOINED sala sleeper");
    // The sleeper never reads from here on. Each message is padded so that
    // its socket buffers fill and then its outbox overflows. The talker and
    // the reader read everything as it comes, 8 lines at a time in lock
    // step, so their own outboxes never hold more than a few lines.
    let pad = "x".repeat(3000);
    let n = 5000;
    let mut sleeper_left = false;
    for chunk in 0..n / 8 {
        let mut batch = String::new();
        for i in chunk * 8..chunk * 8 + 8 {
            batch.push_str(&format!("SAY {i} {pad}\n"));
        }
        talker.send_raw(batch.as_bytes());
        for client in [&mut talker, &mut reader] {
            let mut got = 0;
            while got < 8 {
                match client.parsed() {
                    ServerLine::Msg { text, .. } => {
                        let want = format!("{} ", chunk * 8 + got);
                        assert!(text.starts_with(&want), "message {want}out of order");
                        got += 1;
                    }
                    ServerLine::Left { room, user, reason } => {
                        assert_eq!((room.as_str(), user.as_str()), ("sala", "sleeper"));
                        assert_eq!(reason.as_str(), "quit");
                        sleeper_left = true;
                    }
                    other => panic!("unexpected {other}"),
                }
            }
        }
    }
    assert!(sleeper_left, "the sleeper was never dropped");
    // The sleeper's connection is closed (after a BYE if its socket could
    // still take one).
    let rest = sleeper.expect_closed();
    if let Some(last) = rest.last() {
        if last.starts_with("BYE") {
            assert_eq!(
                last,
                "BYE SLOW_CONSUMER You stopped reading and too many lines were waiting."
            );
        }
    }
}

/// A peer that speaks plain text instead of TLS gets no application data
/// and is closed; the server keeps serving others.
#[test]
fn plain_text_peer_is_closed() {
    let server = TestServer::start();
    let mut raw = TcpStream::connect(server.addr).expect("connect");
    raw.write_all(b"LOGIN alice pw\r\n").expect("write");
    let got = read_to_close(&mut raw);
    assert!(
        !got.windows(5).any(|w| w == b"HELLO"),
        "plain peer got application data"
    );
    let mut c = server.connect();
    c.send("PING");
    c.expect("PONG");
}

/// A peer that never completes the handshake is dropped at the deadline.
#[test]
fn stalled_handshake_is_dropped() {
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_secs(1));
    let mut raw = TcpStream::connect(server.addr).expect("connect");
    let got = read_to_close(&mut raw);
    assert!(got.is_empty(), "a silent peer got {} bytes", got.len());
}

/// When the database cannot be written (another process holds its write
/// lock past the busy timeout), REGISTER and CREATE answer SERVER_ERROR,
/// other connections keep working, and nothing half-done remains: once the
/// lock is gone the same name registers normally.
#[test]
fn database_failure_is_server_error() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    let mut bob = server.connect();
    let blocker = rusqlite::Connection::open(&server.config.db_path).expect("open the db");
    blocker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    bob.send("REGISTER bob pw");
    bob.expect_prefix("ERR SERVER_ERROR ");
    alice.send("CREATE sala");
    alice.expect_prefix("ERR SERVER_ERROR ");
    alice.send("PING");
    alice.expect("PONG");
    blocker.execute_batch("ROLLBACK").expect("release the lock");
    bob.send("REGISTER bob pw");
    bob.expect("OK REGISTER bob");
    alice.send("CREATE sala");
    alice.expect("OK CREATE sala");
}

/// Lines that arrive in the same packet as the end of the handshake are
/// answered at once (rustls decrypts them during the handshake; the server
/// must not wait for more bytes before handling them).
#[test]
fn lines_sent_with_the_handshake_are_answered() {
    let server = TestServer::start();
    for _ in 0..20 {
        let mut c = TestClient::connect_sending(server.addr, b"PING early\n");
        c.expect_prefix("HELLO 1 ");
        c.expect("PONG early");
    }
}
