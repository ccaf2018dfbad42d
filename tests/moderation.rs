//! Moderation over real TLS against the real server: every command and
//! error code of the contract from an owner, an admin, a member and a
//! stranger; bans, topics and suspensions across a restart; timed bans and
//! suspensions ending on a clock the test moves; the moderation log; and
//! the races the contract names, each repeated.

mod support;

use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

use chat::clock::Clock;
use chat::protocol::ServerLine;
use rusqlite::Connection;
use support::{TestClient, TestServer};

/// Makes `user` an admin in the database, as `server user admin` does; it
/// counts from the user's next login.
fn make_admin(server: &TestServer, user: &str) {
    let conn = Connection::open(&server.config.db_path).expect("open the database");
    conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
    let changed = conn
        .execute("UPDATE users SET admin = 1 WHERE name = ?1", [user])
        .expect("update");
    assert_eq!(changed, 1, "no account {user}");
}

/// A registered admin, logged in.
fn admin(server: &TestServer, user: &str) -> TestClient {
    let mut c = server.connect();
    c.send(&format!("REGISTER {user} pw"));
    c.expect(&format!("OK REGISTER {user}"));
    make_admin(server, user);
    c.send(&format!("LOGIN {user} pw"));
    c.expect(&format!("OK LOGIN {user}"));
    c
}

/// One number from the database.
fn count(db: &Path, sql: &str) -> i64 {
    let conn = Connection::open(db).expect("open the database");
    conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// The `INFO` lines of `HELP`, first words only.
fn help_keywords(c: &mut TestClient) -> Vec<String> {
    c.send("HELP");
    let lines = c.lines_until(|l| l == "OK HELP");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("INFO "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_owner_kicks_a_member() {
    let server = TestServer::start();
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user_in("bob", "sala");
    ana.expect("JOINED sala bob");
    let mut eve = server.user_in("eve", "sala");
    ana.expect("JOINED sala eve");
    bob.expect("JOINED sala eve");

    ana.send("KICK bob please stop flooding");
    ana.expect("LEFT sala bob kick");
    ana.expect("OK KICK bob");
    bob.expect("KICKED sala ana please stop flooding");
    eve.expect("LEFT sala bob kick");

    // Bob is in no room, and can come back (a kick is not a ban).
    bob.send("SAY still here?");
    bob.expect_prefix("ERR NOT_IN_ROOM ");
    bob.send("WHO");
    bob.expect_prefix("ERR NOT_IN_ROOM ");
    bob.join("sala");
    ana.expect("JOINED sala bob");

    // Without a reason, KICKED has none.
    ana.send("kick BOB");
    ana.expect("LEFT sala bob kick");
    ana.expect("OK KICK bob");
    bob.expect("KICKED sala ana");
    eve.sync();
}

#[test]
fn who_may_do_what() {
    let server = TestServer::start();
    let mut ana = server.user_in("ana", "sala"); // owner of sala
    let mut bob = server.user_in("bob", "sala"); // a member
    ana.expect("JOINED sala bob");
    let mut stranger = server.user("eve"); // in no room
    let mut root = admin(&server, "root");

    // A member who does not own the room.
    for line in [
        "KICK ana",
        "BAN ana",
        "UNBAN ana",
        "BANS",
        "TOPIC new topic",
        "CLOSE sala",
    ] {
        bob.send(line);
        let err = bob.expect_prefix("ERR NOT_ALLOWED ");
        assert!(err.contains("owner or an admin"), "{line}: {err}");
    }
    for line in ["SUSPEND ana", "UNSUSPEND ana", "ANNOUNCE hi"] {
        bob.send(line);
        let err = bob.expect_prefix("ERR NOT_ALLOWED ");
        assert!(err.contains("admin"), "{line}: {err}");
    }
    // Reading the topic is for every member.
    bob.send("TOPIC");
    bob.expect("OK TOPIC");

    // Somebody in no room.
    for line in [
        "KICK bob",
        "BAN bob",
        "UNBAN bob",
        "BANS",
        "TOPIC",
        "TOPIC x",
    ] {
        stranger.send(line);
        stranger.expect_prefix("ERR NOT_IN_ROOM ");
    }
    stranger.send("CLOSE sala");
    stranger.expect_prefix("ERR NOT_ALLOWED ");
    stranger.send("CLOSE nowhere");
    stranger.expect_prefix("ERR NO_SUCH_ROOM ");

    // The owner, but not an admin.
    for line in ["SUSPEND bob", "UNSUSPEND bob", "ANNOUNCE hi"] {
        ana.send(line);
        ana.expect_prefix("ERR NOT_ALLOWED ");
    }
    ana.send("KICK ana");
    let err = ana.expect_prefix("ERR NOT_ALLOWED ");
    assert!(err.contains("yourself"), "{err}");
    ana.send("KICK eve");
    ana.expect_prefix("ERR NO_SUCH_USER ");
    ana.send("BAN nobody_at_all");
    ana.expect_prefix("ERR NO_SUCH_USER ");
    ana.send("UNBAN bob");
    ana.expect_prefix("ERR NOT_BANNED ");
    ana.send("KICK b@d");
    ana.expect_prefix("ERR NO_SUCH_USER ");
    ana.send("KICK");
    ana.expect_prefix("ERR BAD_ARGS ");
    ana.send("BAN bob 0");
    ana.expect_prefix("ERR BAD_ARGS ");
    ana.send("BAN bob 525601 too long");
    ana.expect_prefix("ERR BAD_ARGS ");
    ana.send("TOPIC \u{1}");
    ana.expect_prefix("ERR BAD_TEXT ");

    // An admin in the room may act, but nobody acts on an admin.
    root.join("sala");
    ana.expect("JOINED sala root");
    bob.expect("JOINED sala root");
    ana.send("KICK root");
    let err = ana.expect_prefix("ERR NOT_ALLOWED ");
    assert!(err.contains("Admins"), "{err}");
    ana.send("BAN root");
    ana.expect_prefix("ERR NOT_ALLOWED ");
    root.send("SUSPEND root");
    root.expect_prefix("ERR NOT_ALLOWED ");
    root.send("KICK bob");
    root.expect("LEFT sala bob kick");
    root.expect("OK KICK bob");
    bob.expect("KICKED sala root");
    ana.expect("LEFT sala bob kick");
    root.send("SUSPEND nobody_at_all");
    root.expect_prefix("ERR NO_SUCH_USER ");
    root.send("UNSUSPEND bob");
    root.expect_prefix("ERR NOT_SUSPENDED ");
    root.send("ANNOUNCE");
    root.expect_prefix("ERR BAD_ARGS ");
    root.send("ANNOUNCE \u{7}");
    root.expect_prefix("ERR BAD_TEXT ");

    // Before LOGIN, none of it.
    let mut anon = server.connect();
    anon.send("KICK bob");
    anon.expect_prefix("ERR NOT_LOGGED_IN ");
}

#[test]
fn an_admin_suspending_another_admin_is_refused() {
    let server = TestServer::start();
    let mut root = admin(&server, "root");
    let _other = admin(&server, "other");
    root.send("SUSPEND other 5 nope");
    let err = root.expect_prefix("ERR NOT_ALLOWED ");
    assert!(err.contains("Admins"), "{err}");
}

#[test]
fn help_lists_what_the_session_may_use() {
    let server = TestServer::start();
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user_in("bob", "sala");
    ana.expect("JOINED sala bob");
    let mut root = admin(&server, "root");

    let member = help_keywords(&mut bob);
    assert!(member.contains(&"TOPIC".to_owned()), "{member:?}");
    for word in ["KICK", "BAN", "CLOSE", "SUSPEND", "ANNOUNCE"] {
        assert!(!member.contains(&word.to_owned()), "{word} in {member:?}");
    }
    let owner = help_keywords(&mut ana);
    for word in ["KICK", "BAN", "UNBAN", "BANS", "CLOSE"] {
        assert!(owner.contains(&word.to_owned()), "{word} not in {owner:?}");
    }
    assert!(!owner.contains(&"SUSPEND".to_owned()), "{owner:?}");
    // The owner elsewhere is a member like any other.
    ana.send("CREATE other");
    ana.expect("OK CREATE other");
    bob.send("CREATE bobs");
    bob.expect("OK CREATE bobs");
    ana.send("LEAVE");
    ana.expect("OK LEAVE sala");
    bob.expect("LEFT sala ana leave");
    assert!(!help_keywords(&mut ana).contains(&"KICK".to_owned()));

    let everything = help_keywords(&mut root);
    for word in ["KICK", "BAN", "SUSPEND", "UNSUSPEND", "ANNOUNCE"] {
        assert!(
            everything.contains(&word.to_owned()),
            "{word} not in {everything:?}"
        );
    }
}

#[test]
fn a_ban_keeps_a_user_out_until_lifted_and_survives_a_restart() {
    let server = TestServer::start();
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user_in("bob", "sala");
    ana.expect("JOINED sala bob");

    ana.send("BAN bob spamming links");
    ana.expect("LEFT sala bob kick");
    ana.expect("OK BAN bob");
    bob.expect("KICKED sala ana spamming links");
    bob.send("JOIN sala");
    let err = bob.expect_prefix("ERR BANNED ");
    assert!(err.contains("until lifted"), "{err}");
    ana.send("BANS");
    ana.expect("BANNED sala bob forever ana");
    ana.expect("OK BANS 1");

    // Banning somebody who is not in the room keeps them out too.
    let mut eve = server.user("eve");
    ana.send("BAN eve 30");
    ana.expect("OK BAN eve");
    eve.send("JOIN sala");
    let err = eve.expect_prefix("ERR BANNED ");
    assert!(err.contains("until 2"), "names the end: {err}");
    ana.send("BANS");
    let lines = ana.lines_until(|l| l.starts_with("OK BANS"));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.contains(&"BANNED sala bob forever ana".to_owned()));
    assert!(lines[..2]
        .iter()
        .any(|l| l.starts_with("BANNED sala eve 2") && l.ends_with(" ana")));
    assert_eq!(lines[2], "OK BANS 2");
    drop((bob, eve, ana));

    let server = server.restart();
    let mut bob = server.connect();
    bob.send("LOGIN bob pw");
    bob.expect("OK LOGIN bob");
    bob.send("JOIN sala");
    bob.expect_prefix("ERR BANNED ");
    let mut ana = server.connect();
    ana.send("LOGIN ana pw");
    ana.expect("OK LOGIN ana");
    ana.join("sala");
    ana.send("UNBAN bob");
    ana.expect("OK UNBAN bob");
    ana.send("UNBAN bob");
    ana.expect_prefix("ERR NOT_BANNED ");
    bob.join("sala");
    ana.expect("JOINED sala bob");
    assert_eq!(
        count(
            &server.config.db_path,
            "SELECT COUNT(*) FROM bans WHERE user_id = (SELECT id FROM users WHERE name = 'bob')"
        ),
        0
    );
}

#[test]
fn a_banned_user_is_refused_whatever_the_password() {
    let server = TestServer::start();
    let mut ana = server.user("ana");
    ana.send("CREATE cofre s3nha");
    ana.expect("OK CREATE cofre");
    ana.send("JOIN cofre s3nha");
    ana.expect("OK JOIN cofre");
    let mut bob = server.user("bob");
    ana.send("BAN bob");
    ana.expect("OK BAN bob");
    for line in ["JOIN cofre s3nha", "JOIN cofre wrong", "JOIN cofre"] {
        bob.send(line);
        bob.expect_prefix("ERR BANNED ");
    }
}

#[test]
fn timed_bans_and_suspensions_end_on_the_clock() {
    let clock = Clock::system();
    let server = TestServer::start_with(|c| c.clock = clock.clone());
    let mut ana = server.user_in("ana", "sala");
    let mut root = admin(&server, "root");
    let mut bob = server.user("bob");

    ana.send("BAN bob 10 cool off");
    ana.expect("OK BAN bob");
    bob.send("JOIN sala");
    bob.expect_prefix("ERR BANNED ");
    clock.advance(Duration::from_secs(9 * 60));
    bob.send("JOIN sala");
    bob.expect_prefix("ERR BANNED ");
    clock.advance(Duration::from_secs(61));
    bob.join("sala");
    ana.expect("JOINED sala bob");
    ana.send("BANS");
    ana.expect("OK BANS 0");
    // An ended ban is no ban.
    ana.send("UNBAN bob");
    ana.expect_prefix("ERR NOT_BANNED ");

    root.send("SUSPEND bob 60 exam");
    root.expect("OK SUSPEND bob");
    let bye = bob.expect_prefix("BYE SUSPENDED An admin suspended this account until 2");
    assert!(bye.ends_with("Z."), "names the end: {bye}");
    ana.expect("LEFT sala bob quit");
    let mut again = server.connect();
    again.send("LOGIN bob pw");
    let err = again.expect_prefix("ERR SUSPENDED ");
    assert!(err.contains("until 2"), "names the end: {err}");
    clock.advance(Duration::from_secs(61 * 60));
    again.send("LOGIN bob pw");
    again.expect("OK LOGIN bob");
    root.send("UNSUSPEND bob");
    root.expect_prefix("ERR NOT_SUSPENDED ");
}

#[test]
fn a_suspension_closes_every_session_and_survives_a_restart() {
    let server = TestServer::start();
    let mut root = admin(&server, "root");
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user_in("bob", "sala");
    ana.expect("JOINED sala bob");

    root.send("SUSPEND bob");
    root.expect("OK SUSPEND bob");
    bob.expect("BYE SUSPENDED An admin suspended this account until lifted.");
    bob.expect_closed();
    ana.expect("LEFT sala bob quit");

    // The password is checked first: a wrong one says nothing more.
    let mut guess = server.connect();
    guess.send("LOGIN bob wrong");
    guess.expect_prefix("ERR BAD_CREDENTIALS ");
    guess.send("LOGIN bob pw");
    let err = guess.expect_prefix("ERR SUSPENDED ");
    assert!(err.contains("until lifted"), "{err}");
    drop((guess, ana, root));

    let server = server.restart();
    let mut bob = server.connect();
    bob.send("LOGIN bob pw");
    bob.expect_prefix("ERR SUSPENDED ");
    let mut root = server.connect();
    root.send("LOGIN root pw");
    root.expect("OK LOGIN root");
    root.send("UNSUSPEND BOB");
    root.expect("OK UNSUSPEND bob");
    bob.send("LOGIN bob pw");
    bob.expect("OK LOGIN bob");
}

#[test]
fn the_topic_is_shown_on_join_and_survives_a_restart() {
    let server = TestServer::start();
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user_in("bob", "sala");
    ana.expect("JOINED sala bob");
    ana.send("SAY first");
    ana.expect_msg("sala", "ana", "first");
    bob.expect_msg("sala", "ana", "first");

    ana.send("TOPIC Exam review until 10:00");
    let time = ana.expect_timed("TOPIC sala ana", "Exam review until 10:00");
    ana.expect("OK TOPIC");
    bob.expect(&format!("TOPIC sala ana {time} Exam review until 10:00"));
    bob.send("TOPIC");
    bob.expect(&format!("TOPIC sala ana {time} Exam review until 10:00"));
    bob.expect("OK TOPIC");

    // A joiner: HISTORY, then TOPIC, then OK JOIN.
    let mut eve = server.user("eve");
    eve.send("JOIN sala");
    assert!(matches!(eve.parsed(), ServerLine::History { .. }));
    eve.expect(&format!("TOPIC sala ana {time} Exam review until 10:00"));
    eve.expect("OK JOIN sala");
    drop((ana, bob, eve));

    let server = server.restart();
    let mut eve = server.connect();
    eve.send("LOGIN eve pw");
    eve.expect("OK LOGIN eve");
    let before_ok = eve.join("sala");
    assert!(
        before_ok
            .iter()
            .any(|l| l.to_string() == format!("TOPIC sala ana {time} Exam review until 10:00")),
        "{before_ok:?}"
    );
}

#[test]
fn closing_a_room_deletes_it_with_its_history_bans_and_topic() {
    let server = TestServer::start();
    let db = server.config.db_path.clone();
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user_in("bob", "sala");
    ana.expect("JOINED sala bob");
    let _eve = server.user("eve");
    ana.send("SAY soon gone");
    ana.expect_msg("sala", "ana", "soon gone");
    bob.expect_msg("sala", "ana", "soon gone");
    ana.send("TOPIC a topic");
    ana.lines_until(|l| l == "OK TOPIC");
    bob.expect_prefix("TOPIC sala ana ");
    ana.send("BAN eve");
    ana.expect("OK BAN eve");
    let mut root = admin(&server, "root");

    // A member who is not the owner may not; an admin may.
    bob.send("CLOSE sala");
    bob.expect_prefix("ERR NOT_ALLOWED ");
    root.send("CLOSE SALA");
    root.expect("OK CLOSE sala");
    ana.expect("CLOSED sala root");
    bob.expect("CLOSED sala root");
    bob.send("SAY anyone?");
    bob.expect_prefix("ERR NOT_IN_ROOM ");
    bob.send("LEAVE");
    bob.expect_prefix("ERR NOT_IN_ROOM ");
    ana.send("ROOMS");
    ana.expect("OK ROOMS 0");
    ana.send("JOIN sala");
    ana.expect_prefix("ERR NO_SUCH_ROOM ");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM rooms"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM messages"), 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM bans"), 0);

    // The name is free again, for a room with nothing of the old one.
    bob.send("CREATE sala");
    bob.expect("OK CREATE sala");
    let history = bob.join("sala");
    assert!(history.is_empty(), "{history:?}");
    drop((ana, bob, root));
    let server = server.restart();
    let mut eve = server.connect();
    eve.send("LOGIN eve pw");
    eve.expect("OK LOGIN eve");
    assert!(eve.join("sala").is_empty());
}

#[test]
fn an_owner_closes_their_own_room() {
    let server = TestServer::start();
    let mut ana = server.user_in("ana", "sala");
    ana.send("CLOSE sala");
    ana.expect("CLOSED sala ana");
    ana.expect("OK CLOSE sala");
    ana.send("WHO");
    ana.expect_prefix("ERR NOT_IN_ROOM ");
}

#[test]
fn an_announcement_reaches_every_logged_in_connection() {
    let server = TestServer::start();
    let mut root = admin(&server, "root");
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user("bob");
    let mut anon = server.connect();

    root.send("ANNOUNCE class ends in five minutes");
    let time = root.expect_timed("NOTICE", "root class ends in five minutes");
    root.expect("OK ANNOUNCE 3");
    ana.expect(&format!("NOTICE {time} root class ends in five minutes"));
    bob.expect(&format!("NOTICE {time} root class ends in five minutes"));
    // Not logged in: not reached.
    assert!(anon.sync().is_empty());
}

/// A row of the moderation log: actor, action, target, room, reason, and
/// whether it has an end.
type LogRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

#[test]
fn every_action_is_in_the_moderation_log() {
    let server = TestServer::start();
    let db = server.config.db_path.clone();
    let mut root = admin(&server, "root");
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user_in("bob", "sala");
    ana.expect("JOINED sala bob");
    ana.send("KICK bob noise");
    ana.lines_until(|l| l == "OK KICK bob");
    bob.expect("KICKED sala ana noise");
    ana.send("BAN bob 5 more noise");
    ana.expect("OK BAN bob");
    ana.send("UNBAN bob");
    ana.expect("OK UNBAN bob");
    ana.send("TOPIC quiet please");
    ana.lines_until(|l| l == "OK TOPIC");
    root.send("SUSPEND bob 1");
    root.expect("OK SUSPEND bob");
    root.send("UNSUSPEND bob");
    root.expect("OK UNSUSPEND bob");
    root.send("ANNOUNCE bye");
    root.lines_until(|l| l.starts_with("OK ANNOUNCE"));
    root.send("CLOSE sala");
    root.expect("OK CLOSE sala");

    let conn = Connection::open(&db).expect("open");
    let rows: Vec<LogRow> = conn
        .prepare("SELECT actor, action, target, room, reason, until_ms IS NOT NULL FROM moderation ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let s = |x: &str| Some(x.to_owned());
    assert_eq!(
        rows,
        vec![
            (
                "ana".into(),
                "kick".into(),
                s("bob"),
                s("sala"),
                s("noise"),
                false
            ),
            (
                "ana".into(),
                "ban".into(),
                s("bob"),
                s("sala"),
                s("more noise"),
                true
            ),
            (
                "ana".into(),
                "unban".into(),
                s("bob"),
                s("sala"),
                None,
                false
            ),
            (
                "ana".into(),
                "topic".into(),
                None,
                s("sala"),
                s("quiet please"),
                false
            ),
            ("root".into(), "suspend".into(), s("bob"), None, None, true),
            (
                "root".into(),
                "unsuspend".into(),
                s("bob"),
                None,
                None,
                false
            ),
            (
                "root".into(),
                "announce".into(),
                None,
                None,
                s("bye"),
                false
            ),
            ("root".into(), "close".into(), None, s("sala"), None, false),
        ]
    );
}

/// A server whose rate limits never get in the way of a race repeated in
/// a loop.
fn unlimited() -> TestServer {
    TestServer::start_with(|c| {
        c.msg_rate = 1_000_000;
        c.msg_burst = 1_000_000;
        c.line_rate = 1_000_000;
        c.line_burst = 1_000_000;
    })
}

/// Runs `a` and `b` at the same moment on two threads.
fn at_once<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    let start = Barrier::new(2);
    thread::scope(|s| {
        let first = s.spawn(|| {
            start.wait();
            a()
        });
        let second = s.spawn(|| {
            start.wait();
            b()
        });
        (first.join().expect("a"), second.join().expect("b"))
    })
}

/// A `KICK` racing the target's own `SAY`: the message comes before the
/// `LEFT … kick` for everyone, or for no one.
#[test]
fn race_kick_against_the_targets_say() {
    let server = unlimited();
    let mut ana = server.user_in("ana", "sala");
    let mut eve = server.user_in("eve", "sala");
    ana.expect("JOINED sala eve");
    for round in 0..20 {
        let bob_name = format!("bob{round}");
        let mut bob = server.user_in(&bob_name, "sala");
        ana.expect(&format!("JOINED sala {bob_name}"));
        eve.expect(&format!("JOINED sala {bob_name}"));
        let text = format!("last words {round}");
        at_once(
            || ana.send(&format!("KICK {bob_name}")),
            || bob.send(&format!("SAY {text}")),
        );
        let msg = format!(" {bob_name} {text}");
        let seen = |lines: &[String]| {
            lines
                .iter()
                .any(|l| l.starts_with("MSG ") && l.ends_with(&msg))
        };
        let ana_lines = ana.lines_until(|l| *l == format!("OK KICK {bob_name}"));
        let eve_lines = eve.lines_until(|l| *l == format!("LEFT sala {bob_name} kick"));
        let bob_lines = bob.lines_until(|l| l.starts_with("KICKED "));
        let (in_ana, in_eve, in_bob) = (seen(&ana_lines), seen(&eve_lines), seen(&bob_lines));
        assert_eq!(
            (in_ana, in_eve, in_bob),
            (in_eve, in_eve, in_eve),
            "round {round}: ana {ana_lines:?} eve {eve_lines:?} bob {bob_lines:?}"
        );
        if in_eve {
            let at = ana_lines.iter().position(|l| l.ends_with(&msg)).unwrap();
            let left = ana_lines
                .iter()
                .position(|l| *l == format!("LEFT sala {bob_name} kick"))
                .unwrap();
            assert!(at < left, "round {round}: {ana_lines:?}");
        } else {
            // Its SAY found it in no room.
            bob.expect_prefix("ERR NOT_IN_ROOM ");
        }
        // Nothing of bob's after the kick, anywhere.
        assert!(eve.sync().is_empty());
        assert!(ana.sync().is_empty());
        bob.send("QUIT");
        bob.expect_prefix("BYE QUIT");
    }
}

/// A `BAN` while the target is joining: it is refused, or it got in first
/// and is kicked; either way it ends outside.
#[test]
fn race_ban_against_the_targets_join() {
    let server = unlimited();
    let mut ana = server.user_in("ana", "sala");
    let mut bob = server.user("bob");
    for round in 0..20 {
        at_once(|| ana.send("BAN bob"), || bob.send("JOIN sala"));
        let first = bob.line();
        if first.starts_with("ERR BANNED ") {
            // Refused.
        } else {
            assert_eq!(first, "OK JOIN sala", "round {round}");
            bob.expect("KICKED sala ana");
        }
        let ana_lines = ana.lines_until(|l| l == "OK BAN bob");
        assert!(
            ana_lines.len() == 1 || ana_lines[..2] == ["JOINED sala bob", "LEFT sala bob kick"],
            "round {round}: {ana_lines:?}"
        );
        ana.send("WHO");
        ana.expect("USER ana");
        ana.expect("OK WHO 1");
        ana.send("UNBAN bob");
        ana.expect("OK UNBAN bob");
        assert!(bob.sync().is_empty(), "round {round}");
    }
}

/// `CLOSE` while members talk: no `MSG` after `CLOSED`, every later `SAY`
/// is `NOT_IN_ROOM`, and nothing of the room is left in the database.
#[test]
fn race_close_while_members_talk() {
    let server = unlimited();
    let db = server.config.db_path.clone();
    let mut root = admin(&server, "root");
    for round in 0..5 {
        let room = format!("r{round}");
        let talkers: Vec<TestClient> = (0..3)
            .map(|i| server.user_in(&format!("t{round}x{i}"), &room))
            .collect();
        thread::scope(|s| {
            for (i, mut talker) in talkers.into_iter().enumerate() {
                s.spawn(move || {
                    let mut closed = false;
                    let mut said = 0;
                    // Talk until CLOSED has been seen and a SAY after it
                    // was refused.
                    while !closed {
                        talker.send(&format!("SAY {i} {said}"));
                        said += 1;
                        let lines = talker.sync();
                        for line in &lines {
                            if closed {
                                assert!(!line.starts_with("MSG "), "MSG after CLOSED: {lines:?}");
                            }
                            if line.starts_with("CLOSED ") {
                                closed = true;
                            }
                        }
                    }
                    talker.send("SAY after");
                    talker.expect_prefix("ERR NOT_IN_ROOM ");
                });
            }
            root.send(&format!("CLOSE {room}"));
            root.expect(&format!("OK CLOSE {room}"));
        });
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM messages"),
            0,
            "round {round}"
        );
        assert_eq!(count(&db, "SELECT COUNT(*) FROM rooms"), 0, "round {round}");
    }
    // Messages said just before a CLOSE that reach the database late are
    // dropped, not stored in another room.
    drop(root);
    let mut server = server;
    server.stop();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM messages"), 0);
}

/// `SUSPEND` while the user logs in on a second connection: that login is
/// refused, or it made its session first and is closed with
/// `BYE SUSPENDED`; it never stays.
#[test]
fn race_suspend_against_a_second_login() {
    let server = unlimited();
    let mut root = admin(&server, "root");
    for round in 0..20 {
        let user = format!("u{round}");
        let mut first = server.user(&user);
        let mut second = server.connect();
        at_once(
            || root.send(&format!("SUSPEND {user}")),
            || second.send(&format!("LOGIN {user} pw")),
        );
        root.expect(&format!("OK SUSPEND {user}"));
        // The first session ends either way: suspended, or taken over by
        // the second login just before the suspension.
        let bye = first.expect_prefix("BYE ");
        assert!(
            bye.starts_with("BYE SUSPENDED") || bye.starts_with("BYE LOGGED_IN_ELSEWHERE"),
            "round {round}: {bye}"
        );
        let answer = second.line();
        if answer.starts_with("ERR SUSPENDED ") {
            // Refused: the connection lives on, not logged in.
            second.send("WHO");
            second.expect_prefix("ERR NOT_LOGGED_IN ");
        } else {
            // In first, and then closed by the suspension.
            assert_eq!(answer, format!("OK LOGIN {user}"), "round {round}");
            let rest = second.expect_closed();
            assert!(
                rest.iter().any(|l| l.starts_with("BYE SUSPENDED")),
                "round {round}: {rest:?}"
            );
        }
        root.send(&format!("UNSUSPEND {user}"));
        root.expect(&format!("OK UNSUSPEND {user}"));
    }
}

/// The moderation log keeps its newest `--moderation-keep` rows: a room's
/// owner changing the topic in a loop cannot grow the database forever.
#[test]
fn the_moderation_log_is_bounded() {
    let server = TestServer::start_with(|c| c.moderation_keep = 3);
    let db = server.config.db_path.clone();
    let mut ana = server.user_in("ana", "sala");
    for i in 0..6 {
        ana.send(&format!("TOPIC topic {i}"));
        ana.lines_until(|l| l == "OK TOPIC");
    }
    assert_eq!(count(&db, "SELECT COUNT(*) FROM moderation"), 3);
    let conn = Connection::open(&db).expect("open");
    let oldest: String = conn
        .query_row(
            "SELECT reason FROM moderation ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("oldest");
    assert_eq!(oldest, "topic 3");
}
