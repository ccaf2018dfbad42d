//! Rooms, seen from the wire: who gets each `MSG`, `JOINED` and `LEFT`; one
//! message order for every member; history on `JOIN` (also after a
//! restart); `WHO` and `ROOMS`; private rooms; room names in any case; and
//! what a room sees when a member's session ends or is taken over.
//!
//! Nothing here sleeps. A test waits for the line that proves an event (each
//! read has a deadline), and proves that a client got *nothing* with
//! `sync()`: a `PING` round trip, after which every line the server sent
//! before the `PONG` has been read.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use chat::protocol::ServerLine;
use rustls::{ClientConnection, StreamOwned};
use support::{TestClient, TestServer, NOTHING, WAIT};

/// `user` says each of `texts` in `room` and reads each `MSG` echo. Returns
/// the `HISTORY` lines a newcomer should get for them, times included.
fn say_all(c: &mut TestClient, room: &str, user: &str, texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .map(|text| {
            c.send(&format!("SAY {text}"));
            let time = c.expect_timed(&format!("MSG {room}"), &format!("{user} {text}"));
            format!("HISTORY {room} {time} {user} {text}")
        })
        .collect()
}

/// Sends `JOIN <room>` and returns every line up to and including its
/// final reply (`OK` or `ERR`).
fn join_lines(c: &mut TestClient, room: &str) -> Vec<String> {
    c.send(&format!("JOIN {room}"));
    c.lines_until(|l| l.starts_with("OK ") || l.starts_with("ERR "))
}

/// `lines` followed by one more line.
fn followed_by(lines: &[String], last: &str) -> Vec<String> {
    let mut all = lines.to_vec();
    all.push(last.to_string());
    all
}

/// Sends one command and returns every line up to and including its final
/// `OK`/`ERR` reply.
fn ask(c: &mut TestClient, command: &str) -> Vec<String> {
    c.send(command);
    c.lines_until(|l| l.starts_with("OK ") || l.starts_with("ERR "))
}

// ----- broadcast and membership events ------------------------------------

/// A `SAY` reaches every member of the room, the sender included, as the same `MSG` line, and nobody outside it.
#[test]
fn say_reaches_every_member_and_only_them() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let mut bob = server.user_in("bob", "sala");
    let mut carol = server.user_in("carol", "sala");
    let mut dave = server.user_in("dave", "outra");
    alice.expect("JOINED sala bob");
    alice.expect("JOINED sala carol");
    bob.expect("JOINED sala carol");

    alice.send("SAY olá a todos");
    let time = alice.expect_timed("MSG sala", "alice olá a todos");
    bob.expect(&format!("MSG sala {time} alice olá a todos"));
    carol.expect(&format!("MSG sala {time} alice olá a todos"));

    // No `OK SAY` for the sender, nothing at all for the other room.
    assert_eq!(alice.sync(), NOTHING);
    assert_eq!(dave.sync(), NOTHING);
}

/// `JOINED` goes to the members already in the room, never to the joiner itself.
#[test]
fn joined_goes_to_the_others_only() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let mut bob = server.user("bob");
    assert_eq!(join_lines(&mut bob, "sala"), ["OK JOIN sala"]);
    alice.expect("JOINED sala bob");
    assert_eq!(bob.sync(), NOTHING);
    assert_eq!(alice.sync(), NOTHING);
}

/// `LEAVE` answers `OK LEAVE` and the others get `LEFT <room> <user> leave`.
#[test]
fn leave_sends_left_leave() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let mut bob = server.user_in("bob", "sala");
    alice.expect("JOINED sala bob");

    bob.send("LEAVE");
    bob.expect("OK LEAVE sala");
    alice.expect("LEFT sala bob leave");
    assert_eq!(bob.sync(), NOTHING);
}

/// A member who sends `QUIT` is announced to the room as `LEFT <room> <user> quit`.
#[test]
fn quit_sends_left_quit() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let mut bob = server.user_in("bob", "sala");
    alice.expect("JOINED sala bob");

    bob.send("QUIT");
    bob.expect("BYE QUIT Goodbye.");
    assert_eq!(bob.expect_closed(), NOTHING);
    alice.expect("LEFT sala bob quit");
}

/// A member whose client just goes away (the connection is dropped) is announced as `LEFT … quit`.
#[test]
fn dropped_connection_sends_left_quit() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let bob = server.user_in("bob", "sala");
    alice.expect("JOINED sala bob");

    drop(bob);
    alice.expect("LEFT sala bob quit");
    assert_eq!(alice.sync(), NOTHING);
}

/// Joining another room leaves the old one: its members get `LEFT … leave`, the new one's get `JOINED`, and the joiner gets no `OK LEAVE`.
#[test]
fn joining_another_room_leaves_the_old_one() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let mut bob = server.user_in("bob", "sala");
    let mut carol = server.user_in("carol", "outra");
    alice.expect("JOINED sala bob");

    assert_eq!(join_lines(&mut bob, "outra"), ["OK JOIN outra"]);
    alice.expect("LEFT sala bob leave");
    carol.expect("JOINED outra bob");
    assert_eq!(bob.sync(), NOTHING);
    assert_eq!(alice.sync(), NOTHING);
}

/// A TLS session logged in on a raw socket: the TLS stream behind a line
/// buffer, so that a test can reach the TCP socket underneath.
type RawSession = BufReader<StreamOwned<ClientConnection, TcpStream>>;

/// Connects without the harness, registers and logs in `user`, joins
/// `room`, and returns the session once `OK JOIN` has been read.
fn raw_member(server: &TestServer, user: &str, room: &str) -> RawSession {
    let socket = TcpStream::connect(server.addr).expect("connect");
    socket.set_read_timeout(Some(WAIT)).expect("read timeout");
    let name = "localhost".try_into().expect("server name");
    let conn = ClientConnection::new(support::client_tls(), name).expect("client connection");
    let mut session = BufReader::new(StreamOwned::new(conn, socket));
    let commands = format!("REGISTER {user} pw\nLOGIN {user} pw\nJOIN {room}\n");
    session
        .get_mut()
        .write_all(commands.as_bytes())
        .expect("send");
    let expected = [
        "HELLO".to_string(),
        format!("OK REGISTER {user}"),
        format!("OK LOGIN {user}"),
        format!("OK JOIN {room}"),
    ];
    for want in expected {
        let mut line = String::new();
        session
            .read_line(&mut line)
            .expect("read a line within WAIT");
        assert!(line.starts_with(&want), "expected {want:?}, got {line:?}");
    }
    session
}

/// A member whose TCP connection is reset (no `QUIT`, no TLS close) is announced as `LEFT … quit`.
#[test]
fn reset_connection_sends_left_quit() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let bob = raw_member(&server, "bob", "sala");
    alice.expect("JOINED sala bob");

    // Linger 0: closing the socket sends a TCP RST instead of a FIN.
    let socket = &bob.get_ref().sock;
    socket2::SockRef::from(socket)
        .set_linger(Some(Duration::ZERO))
        .expect("set linger");
    drop(bob);
    alice.expect("LEFT sala bob quit");
    assert_eq!(alice.sync(), NOTHING);
}

// ----- one order for everyone ------------------------------------------

/// Five members pipelining 40 `SAY`s each at once all see the same 200 `MSG` lines in the same order, each sender's in the order sent.
#[test]
fn everyone_sees_one_identical_order() {
    const MEMBERS: usize = 5;
    const EACH: usize = 40;
    let server = TestServer::start_with(|c| {
        c.msg_burst = 1000;
        c.msg_rate = 1000;
    });
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("m{i}")).collect();
    let mut members: Vec<TestClient> = names.iter().map(|n| server.user_in(n, "sala")).collect();
    // Each member has heard of everyone who joined after it, and nothing else.
    for (i, member) in members.iter_mut().enumerate() {
        let joined: Vec<String> = names[i + 1..]
            .iter()
            .map(|n| format!("JOINED sala {n}"))
            .collect();
        assert_eq!(member.sync(), joined);
    }

    let start = Arc::new(Barrier::new(MEMBERS));
    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, mut member)| {
            let start = start.clone();
            thread::spawn(move || {
                let burst: String = (0..EACH).map(|k| format!("SAY m{i} says {k}\n")).collect();
                start.wait();
                member.send_raw(burst.as_bytes());
                let seen: Vec<ServerLine> = (0..MEMBERS * EACH).map(|_| member.parsed()).collect();
                assert_eq!(
                    member.sync(),
                    NOTHING,
                    "m{i} got more than {} lines",
                    MEMBERS * EACH
                );
                // Handed back, not dropped: a member that disconnected now
                // would send `LEFT … quit` to those still reading.
                (seen, member)
            })
        })
        .collect();
    let (seen, _members): (Vec<Vec<ServerLine>>, Vec<TestClient>) = threads
        .into_iter()
        .map(|t| t.join().expect("a member's thread failed"))
        .unzip();

    for (i, sequence) in seen.iter().enumerate() {
        assert_eq!(sequence, &seen[0], "m{i} saw another order than m0");
    }
    for (i, name) in names.iter().enumerate() {
        let own: Vec<String> = seen[0]
            .iter()
            .filter_map(|line| match line {
                ServerLine::Msg {
                    room, user, text, ..
                } if room == "sala" => (user == name).then(|| text.clone()),
                other => panic!("not a MSG in sala: {other}"),
            })
            .collect();
        let sent: Vec<String> = (0..EACH).map(|k| format!("m{i} says {k}")).collect();
        assert_eq!(own, sent, "{name}'s messages are out of order");
    }
}

// ----- history ----------------------------------------------------------

/// A newcomer's `JOIN` replays the room's messages as `HISTORY` lines, oldest first, each with its `MSG`'s time, then `OK JOIN`.
#[test]
fn join_replays_history_oldest_first() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let history = say_all(&mut alice, "sala", "alice", &["um", "dois", "três"]);

    let mut bob = server.user("bob");
    assert_eq!(
        join_lines(&mut bob, "sala"),
        followed_by(&history, "OK JOIN sala")
    );
    alice.expect("JOINED sala bob");
}

/// With `history = 5`, a `JOIN` after 8 messages replays only the last 5.
#[test]
fn history_keeps_only_the_last_messages() {
    let server = TestServer::start_with(|c| c.history = 5);
    let mut alice = server.user_in("alice", "sala");
    let texts: Vec<String> = (1..=8).map(|n| format!("mensagem {n}")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let history = say_all(&mut alice, "sala", "alice", &texts);

    let mut bob = server.user("bob");
    assert_eq!(
        join_lines(&mut bob, "sala"),
        followed_by(&history[3..], "OK JOIN sala")
    );
}

/// History is kept on disk: after a restart it is replayed identically (times included), and new messages follow the old ones in order.
#[test]
fn history_survives_restarts() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let mut history = say_all(&mut alice, "sala", "alice", &["antes", "do", "restart"]);
    drop(alice);

    let server = server.restart();
    let mut bob = server.user("bob");
    assert_eq!(
        join_lines(&mut bob, "sala"),
        followed_by(&history, "OK JOIN sala")
    );
    history.extend(say_all(
        &mut bob,
        "sala",
        "bob",
        &["depois", "do", "restart"],
    ));
    drop(bob);

    let server = server.restart();
    let mut alice = server.connect();
    alice.send("LOGIN alice pw");
    alice.expect("OK LOGIN alice");
    assert_eq!(
        join_lines(&mut alice, "sala"),
        followed_by(&history, "OK JOIN sala")
    );
}

// ----- WHO and ROOMS ------------------------------------------------------

/// `WHO` lists the room's members in the order they joined (not sorted), then `OK WHO <count>`.
#[test]
fn who_lists_members_in_join_order() {
    let server = TestServer::start();
    let _carol = server.user_in("carol", "sala");
    let mut alice = server.user_in("alice", "sala");
    let _bob = server.user_in("bob", "sala");
    alice.expect("JOINED sala bob");

    assert_eq!(
        ask(&mut alice, "WHO"),
        ["USER carol", "USER alice", "USER bob", "OK WHO 3"]
    );
}

/// `ROOMS` shows how many members each room has online, and the count drops after a `LEAVE`.
#[test]
fn rooms_counts_members_online() {
    let server = TestServer::start();
    let mut alice = server.user_in("alice", "sala");
    let mut bob = server.user_in("bob", "sala");
    assert_eq!(
        ask(&mut alice, "CREATE vazia"),
        ["JOINED sala bob", "OK CREATE vazia"]
    );

    assert_eq!(
        ask(&mut alice, "ROOMS"),
        ["ROOM sala public 2", "ROOM vazia public 0", "OK ROOMS 2"]
    );
    assert_eq!(ask(&mut bob, "LEAVE"), ["OK LEAVE sala"]);
    assert_eq!(
        ask(&mut bob, "ROOMS"),
        ["ROOM sala public 1", "ROOM vazia public 0", "OK ROOMS 2"]
    );
}

/// `ROOMS` sorts by name without regard to case (`Alpha, beta, charlie, Delta`), showing names as created.
#[test]
fn rooms_are_sorted_ignoring_case() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    for room in ["beta", "Delta", "charlie", "Alpha"] {
        assert_eq!(
            ask(&mut alice, &format!("CREATE {room}")),
            [format!("OK CREATE {room}")]
        );
    }
    assert_eq!(
        ask(&mut alice, "ROOMS"),
        [
            "ROOM Alpha public 0",
            "ROOM beta public 0",
            "ROOM charlie public 0",
            "ROOM Delta public 0",
            "OK ROOMS 4"
        ]
    );
}

// ----- private rooms and names --------------------------------------------

/// A private room is joined only with its password (which may contain spaces); a wrong or missing one is `BAD_ROOM_PASSWORD`.
#[test]
fn private_room_needs_its_password() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    assert_eq!(
        ask(&mut alice, "CREATE secreta abre te sésamo"),
        ["OK CREATE secreta"]
    );
    assert_eq!(
        join_lines(&mut alice, "secreta abre te sésamo"),
        ["OK JOIN secreta"]
    );

    let mut bob = server.user("bob");
    let refused = "ERR BAD_ROOM_PASSWORD Wrong or missing room password.";
    assert_eq!(join_lines(&mut bob, "secreta"), [refused]);
    assert_eq!(join_lines(&mut bob, "secreta abre te"), [refused]);
    assert_eq!(join_lines(&mut bob, "secreta ABRE TE SÉSAMO"), [refused]);
    // Failed attempts are not announced.
    assert_eq!(alice.sync(), NOTHING);

    assert_eq!(
        join_lines(&mut bob, "secreta abre te sésamo"),
        ["OK JOIN secreta"]
    );
    alice.expect("JOINED secreta bob");
    assert_eq!(
        ask(&mut bob, "ROOMS"),
        ["ROOM secreta private 2", "OK ROOMS 1"]
    );
}

/// Room names ignore case: `JOIN SALA` joins `sala`, and every reply and event shows the name as created.
#[test]
fn room_names_ignore_case() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    assert_eq!(ask(&mut alice, "CREATE sala"), ["OK CREATE sala"]);
    assert_eq!(join_lines(&mut alice, "SALA"), ["OK JOIN sala"]);

    let mut bob = server.user("bob");
    assert_eq!(
        ask(&mut bob, "CREATE Sala"),
        ["ERR ROOM_EXISTS A room with that name exists."]
    );
    assert_eq!(join_lines(&mut bob, "Sala"), ["OK JOIN sala"]);
    alice.expect("JOINED sala bob");
    bob.send("SAY oi");
    bob.expect_timed("MSG sala", "bob oi");
    assert_eq!(
        join_lines(&mut bob, "sALA"),
        ["ERR ALREADY_IN_ROOM You are in that room already."]
    );
}

/// An unknown room and a name no room could have get the same `NO_SUCH_ROOM` line, as `protocol::command::NO_SUCH_ROOM_TEXT` promises.
#[test]

fn unknown_and_invalid_room_names_read_the_same() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    let expected = format!(
        "ERR NO_SUCH_ROOM {}",
        chat::protocol::command::NO_SUCH_ROOM_TEXT
    );
    assert_eq!(join_lines(&mut alice, "sala#1"), [expected.as_str()]);
    assert_eq!(join_lines(&mut alice, "nenhuma"), [expected.as_str()]);
}

// ----- sessions ending ----------------------------------------------------

/// A second login of the same user closes the first connection with `BYE LOGGED_IN_ELSEWHERE`; its room sees `LEFT … quit`, and the new session can rejoin.
#[test]
fn a_new_login_takes_over_the_session() {
    let server = TestServer::start();
    let mut first = server.user_in("alice", "sala");
    let mut bob = server.user_in("bob", "sala");
    first.expect("JOINED sala bob");

    let mut second = server.connect();
    second.send("LOGIN alice pw");
    second.expect("OK LOGIN alice");
    first.expect("BYE LOGGED_IN_ELSEWHERE You logged in on another connection.");
    assert_eq!(first.expect_closed(), NOTHING);
    bob.expect("LEFT sala alice quit");

    assert_eq!(join_lines(&mut second, "sala"), ["OK JOIN sala"]);
    bob.expect("JOINED sala alice");
    assert_eq!(ask(&mut bob, "WHO"), ["USER bob", "USER alice", "OK WHO 2"]);
    assert_eq!(ask(&mut bob, "ROOMS"), ["ROOM sala public 2", "OK ROOMS 1"]);
}

/// Racing CREATEs of one name: exactly one `OK CREATE`, and everyone who
/// was told `ROOM_EXISTS` can JOIN it at once (never `NO_SUCH_ROOM`).
#[test]
fn racing_creates_leave_a_joinable_room() {
    let server = TestServer::start();
    let clients: Vec<TestClient> = (0..20).map(|i| server.user(&format!("racer{i}"))).collect();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients.len()));
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                c.send_raw(b"CREATE arena\nJOIN arena\n");
                let created = c.line();
                let joined = c.lines_until(|l| l.starts_with("OK ") || l.starts_with("ERR "));
                (created, joined.last().cloned().unwrap_or_default())
            })
        })
        .collect();
    let mut oks = 0;
    for t in threads {
        let (created, joined) = t.join().expect("a racer failed");
        if created == "OK CREATE arena" {
            oks += 1;
        } else {
            assert!(created.starts_with("ERR ROOM_EXISTS "), "{created}");
        }
        assert_eq!(joined, "OK JOIN arena");
    }
    assert_eq!(oks, 1);
}
