//! The store's contract, run against both engines: SQLite in a temporary
//! file, and a real PostgreSQL started for the test (`support/postgres.rs`;
//! skipped, with the reason printed, where PostgreSQL is not installed).
//!
//! Everything goes through the [`Db`] handle the server uses, so these
//! tests say what the server may rely on whichever store it talks to; then
//! what only PostgreSQL can show: two nodes (two `open_store` calls on one
//! database) racing for one name or one last room, and the database going
//! away and coming back under a running node.
//!
//! Every wait has a deadline: a call that could hang runs on its own
//! thread and the test fails if it does not answer in time.

mod support;

use std::sync::{mpsc, Barrier};
use std::time::{Duration, Instant};

use chat::db::{
    open_store, Action, BanRecord, Db, DbError, DbThread, Limits, Moderation, RoomRecord,
    StoreSpec, TopicRecord, FOREVER,
};
use chat::protocol::ServerLine;
use support::{postgres, TestServer, NOTHING};

/// The longest any one database call may take in these tests.
const CALL_WAIT: Duration = Duration::from_secs(20);

/// Runs `work` on its own thread and returns its result, or fails the test
/// if it takes longer than [`CALL_WAIT`].
fn within<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(CALL_WAIT)
        .unwrap_or_else(|_| panic!("{what}: no answer within {CALL_WAIT:?}"))
}

/// A stand-in hash: the store keeps whatever string it is given.
fn hash(tag: &str) -> String {
    format!("$argon2id$test${tag}")
}

/// Opens a store, failing the test with the error's text.
fn open(spec: &StoreSpec, history: usize, limits: Limits) -> (Db, DbThread, Vec<RoomRecord>) {
    let spec = spec.clone();
    within("open_store", move || open_store(&spec, history, limits))
        .unwrap_or_else(|e| panic!("open_store: {e}"))
}

/// The texts of a claim.
fn texts(claim: &chat::db::ClaimedDms) -> Vec<String> {
    claim.dms().iter().map(|d| d.text.clone()).collect()
}

/// A moderation action by `alice` at `time_ms`.
fn by_alice(time_ms: i64, action: Action) -> Moderation {
    Moderation {
        actor: "alice".into(),
        time_ms,
        action,
    }
}

/// The contract: what every store does the same, through `Db`.
fn contract(spec: &StoreSpec) {
    let limits = Limits {
        mailbox: 3,
        history_keep: 100,
        moderation_keep: 100,
        max_rooms: 4,
        rooms_per_user: 2,
    };
    let (db, thread, rooms) = open(spec, 3, limits);
    assert!(rooms.is_empty());
    assert_eq!(db.health().engine, spec.engine());

    // Accounts: names in any case, the first spelling kept.
    assert_eq!(db.register("Alice", hash("a"), 1), Ok("Alice".into()));
    assert_eq!(db.register("ALICE", hash("x"), 2), Err(DbError::Exists));
    assert_eq!(db.register("alice", hash("x"), 2), Err(DbError::Exists));
    let alice = db.user("aLiCe").unwrap().expect("alice");
    assert_eq!((alice.name.as_str(), alice.admin), ("Alice", false));
    assert_eq!(alice.password_hash, hash("a"));
    assert_eq!(alice.suspended_until, None);
    assert_eq!(db.user("nobody"), Ok(None));
    db.set_password_hash("ALICE", hash("a2")).unwrap();
    assert_eq!(db.user("alice").unwrap().unwrap().password_hash, hash("a2"));
    assert_eq!(
        db.set_password_hash("ghost", hash("g")),
        Err(DbError::NoSuchUser)
    );
    db.register("bob", hash("b"), 3).unwrap();
    db.register("carol", hash("c"), 3).unwrap();

    // Rooms: names in any case, then the limits (2 per owner, 4 in all).
    let (name, lobby) = db.create_room("Lobby", None, "alice", 10).unwrap();
    assert_eq!(name, "Lobby");
    assert_eq!(
        db.create_room("LOBBY", None, "bob", 11),
        Err(DbError::Exists)
    );
    db.create_room("vault", Some(hash("v")), "ALICE", 12)
        .unwrap();
    assert_eq!(
        db.create_room("a3", None, "alice", 13),
        Err(DbError::TooManyRooms)
    );
    let (_, b1) = db.create_room("b1", None, "bob", 14).unwrap();
    db.create_room("c1", None, "carol", 15).unwrap();
    assert_eq!(
        db.create_room("c2", None, "carol", 16),
        Err(DbError::TooManyRooms)
    );
    assert_eq!(db.room_counts("ALICE"), Ok((4, 2)));
    assert_eq!(db.room_counts("nobody"), Ok((4, 0)));
    let room = db.room("lobby").unwrap().expect("the lobby");
    assert_eq!(room.id, lobby);
    assert_eq!(room.owner.as_deref(), Some("Alice"));
    assert_eq!(room.password_hash, None);
    assert_eq!(db.room("nowhere"), Ok(None));
    db.set_room_password_hash("VAULT", hash("v2")).unwrap();
    assert_eq!(
        db.room("vault").unwrap().unwrap().password_hash,
        Some(hash("v2"))
    );
    assert!(matches!(
        db.set_room_password_hash("lobby", hash("x")),
        Err(DbError::Failed(_))
    ));

    // History: appended without waiting, numbered by the caller.
    for seq in 1..=5 {
        db.append_history(
            (lobby, "Lobby"),
            seq,
            1000 + seq as i64,
            "alice",
            &format!("m{seq}"),
        )
        .unwrap();
    }
    db.flush().unwrap();

    // Stored DMs: oldest first by arrival, the mailbox bounded (3), a
    // restored DM exempt from the bound, claims, deletion.
    db.store_dm("BOB", "alice", 10, "first").unwrap();
    db.store_dm("bob", "carol", 5, "second").unwrap();
    db.store_dm("bob", "alice", 11, "third").unwrap();
    assert_eq!(
        db.store_dm("bob", "alice", 12, "fourth"),
        Err(DbError::MailboxFull)
    );
    assert_eq!(
        db.store_dm("ghost", "alice", 12, "boo"),
        Err(DbError::NoSuchUser)
    );
    db.restore_dm("bob", "alice", 13, "restored").unwrap();
    let first = db.claim_dms("bob", 1, 10).unwrap();
    assert_eq!(texts(&first), ["first", "second", "third", "restored"]);
    assert_eq!(first.dms()[1].from, "carol");
    assert_eq!(first.dms()[1].time_ms, 5);
    assert!(db.claim_dms("bob", 1, 10).unwrap().is_empty(), "in flight");
    let mut taken_over = db.claim_dms("bob", 2, 10).unwrap();
    assert_eq!(taken_over.len(), 4);
    drop(first);
    taken_over.truncate(2);
    taken_over.delete().unwrap();
    assert_eq!(
        texts(&db.claim_dms("bob", 3, 10).unwrap()),
        ["third", "restored"]
    );

    // Moderation, through the same requests the server makes.
    let ban = |time_ms, target: &str| {
        by_alice(
            time_ms,
            Action::Ban {
                room_id: lobby,
                room: "Lobby".into(),
                target: target.into(),
                until_ms: None,
                reason: "spam".into(),
            },
        )
    };
    assert_eq!(db.moderate(ban(100, "BOB")), Ok("bob".into()));
    assert_eq!(db.moderate(ban(100, "ghost")), Err(DbError::NoSuchUser));
    assert_eq!(
        db.room("lobby").unwrap().unwrap().bans,
        [BanRecord {
            user: "bob".into(),
            until_ms: FOREVER,
            by: "alice".into()
        }]
    );
    let unban = || {
        by_alice(
            101,
            Action::Unban {
                room_id: lobby,
                room: "Lobby".into(),
                target: "bob".into(),
            },
        )
    };
    assert_eq!(db.moderate(unban()), Ok("bob".into()));
    assert_eq!(db.moderate(unban()), Err(DbError::NotFound));
    assert!(db.room("lobby").unwrap().unwrap().bans.is_empty());
    let suspend = by_alice(
        102,
        Action::Suspend {
            target: "Carol".into(),
            until_ms: Some(5000),
            reason: String::new(),
        },
    );
    assert_eq!(db.moderate(suspend), Ok("carol".into()));
    assert_eq!(
        db.user("carol").unwrap().unwrap().suspended_until,
        Some(5000)
    );
    let unsuspend = |time_ms| {
        by_alice(
            time_ms,
            Action::Unsuspend {
                target: "carol".into(),
            },
        )
    };
    assert_eq!(db.moderate(unsuspend(103)), Ok("carol".into()));
    assert_eq!(db.user("carol").unwrap().unwrap().suspended_until, None);
    assert_eq!(db.moderate(unsuspend(104)), Err(DbError::NotFound));
    let topic = by_alice(
        105,
        Action::Topic {
            room_id: lobby,
            room: "Lobby".into(),
            topic: "welcome".into(),
        },
    );
    assert_eq!(db.moderate(topic), Ok(String::new()));
    let close = by_alice(
        106,
        Action::Close {
            room_id: b1,
            room: "b1".into(),
        },
    );
    assert_eq!(db.moderate(close), Ok(String::new()));
    assert_eq!(db.room("b1"), Ok(None));
    let announce = by_alice(
        107,
        Action::Announce {
            text: "hello all".into(),
        },
    );
    assert_eq!(db.moderate(announce), Ok(String::new()));

    let health = db.health();
    assert!(health.ok, "{health:?}");
    drop(db);
    within("joining the DB thread", move || thread.join()).unwrap();

    // Reopened: rooms in creation order, the last 3 messages oldest first,
    // numbering going on, the topic, the new password hash.
    let (db, thread, rooms) = open(spec, 3, limits);
    let names: Vec<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["Lobby", "vault", "c1"]);
    let lobby_room = &rooms[0];
    let history: Vec<(u64, i64, &str, &str)> = lobby_room
        .history
        .iter()
        .map(|h| (h.seq, h.time_ms, h.user.as_str(), h.text.as_str()))
        .collect();
    assert_eq!(
        history,
        [
            (3, 1003, "alice", "m3"),
            (4, 1004, "alice", "m4"),
            (5, 1005, "alice", "m5")
        ]
    );
    assert_eq!(lobby_room.next_seq, 6);
    assert_eq!(
        lobby_room.topic,
        Some(TopicRecord {
            by: "alice".into(),
            time_ms: 105,
            text: "welcome".into()
        })
    );
    assert_eq!(rooms[1].password_hash, Some(hash("v2")));
    assert_eq!(rooms[2].next_seq, 1);
    assert_eq!(db.user("ALICE").unwrap().unwrap().password_hash, hash("a2"));
    assert_eq!(db.claim_dms("bob", 9, 10).unwrap().len(), 2);
    drop(db);
    within("joining the DB thread", move || thread.join()).unwrap();
}

#[test]
fn contract_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    contract(&StoreSpec::Sqlite(dir.path().join("chat.db")));
}

#[test]
fn contract_on_postgres() {
    let Some(pg) = postgres::start() else { return };
    contract(&pg.url().parse().unwrap());
    // The layout is PostgreSQL's own, at its version, with the moderation
    // log written.
    assert_eq!(pg.psql("chat", "SELECT version FROM schema_version"), "1");
    let log = pg.psql(
        "chat",
        "SELECT string_agg(action || ':' || COALESCE(target, '-'), ',' ORDER BY id) FROM moderation",
    );
    assert_eq!(
        log,
        "ban:bob,unban:bob,suspend:carol,unsuspend:carol,topic:-,close:-,announce:-"
    );
    // A database from a newer server is refused, and left as it is.
    pg.psql("chat", "UPDATE schema_version SET version = 7");
    let spec: StoreSpec = pg.url().parse().unwrap();
    let error = within("open_store", move || {
        open_store(&spec, 3, Limits::default()).map(|_| ())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("schema version 7 is newer than this server (1)"),
        "{error}"
    );
    assert_eq!(pg.psql("chat", "SELECT version FROM schema_version"), "7");
}

/// Two nodes on one database: both migrate at once, then race, round after
/// round, for one account name, one room name, and the last room an owner
/// may have. Each race has exactly one winner.
#[test]
fn two_nodes_race_with_one_winner() {
    let Some(pg) = postgres::start() else { return };
    let spec: StoreSpec = pg.url().parse().unwrap();
    let limits = Limits {
        rooms_per_user: 1,
        ..Limits::default()
    };
    // Started together: the second migration waits for the first.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| open(&spec, 10, limits));
        let b = s.spawn(|| open(&spec, 10, limits));
        (a.join().unwrap(), b.join().unwrap())
    });
    let ((a, a_thread, _), (b, b_thread, _)) = (a, b);

    const ROUNDS: usize = 15;
    let start = Barrier::new(2);
    for round in 0..ROUNDS {
        let owner = format!("owner{round}");
        a.register(&owner, hash("o"), 0).unwrap();
        let (registered, created, last_room) = std::thread::scope(|s| {
            let race = |db: &Db, spelling: String, room: String, mine: String| {
                let start = &start;
                let owner = owner.clone();
                let db = db.clone();
                s.spawn(move || {
                    start.wait();
                    let registered = db.register(&spelling, hash("r"), 0);
                    start.wait();
                    let created = db.create_room(&room, None, &spelling, 0);
                    start.wait();
                    let last_room = db.create_room(&mine, None, &owner, 0);
                    (registered, created, last_room)
                })
            };
            let one = race(
                &a,
                format!("Racer{round}"),
                format!("Room{round}"),
                format!("a{round}"),
            );
            let two = race(
                &b,
                format!("racer{round}"),
                format!("ROOM{round}"),
                format!("b{round}"),
            );
            let (one, two) = (one.join().unwrap(), two.join().unwrap());
            (
                [one.0, two.0.map(|_| String::new())],
                [one.1, two.1],
                [one.2, two.2],
            )
        });
        assert_eq!(
            wins(&registered, DbError::Exists),
            (1, 1),
            "round {round}: {registered:?}"
        );
        // The winner of the account creates the room too (the loser's
        // account does not exist, so it owns nothing, which is allowed).
        assert_eq!(
            wins(&created, DbError::Exists),
            (1, 1),
            "round {round}: {created:?}"
        );
        assert_eq!(
            wins(&last_room, DbError::TooManyRooms),
            (1, 1),
            "round {round}: {last_room:?}"
        );
    }
    // Each node sees what the other wrote.
    assert!(b.user(&format!("RACER{}", ROUNDS - 1)).unwrap().is_some());
    assert_eq!(
        a.room_counts("owner0"),
        Ok((2 * ROUNDS, 1)),
        "one room per round's name race, one per owner"
    );
    drop((a, b));
    within("joining", move || a_thread.join()).unwrap();
    within("joining", move || b_thread.join()).unwrap();
}

/// How many of `results` won, and how many lost with `loser`.
fn wins<T>(results: &[Result<T, DbError>], loser: DbError) -> (usize, usize) {
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Err(e) if *e == loser))
        .count();
    (ok, lost)
}

/// PostgreSQL stops under a running node: requests fail at once with
/// `Failed` and the health says so; it comes back: the same node, without
/// reopening, works again, and nothing acknowledged before was lost.
#[test]
fn postgres_down_then_back() {
    let Some(pg) = postgres::start() else { return };
    let (db, thread, _) = open(&pg.url().parse().unwrap(), 10, Limits::default());
    db.register("before", hash("b"), 0).unwrap();
    let (_, room) = db.create_room("lobby", None, "before", 0).unwrap();
    assert!(db.health().ok);

    pg.stop();
    for attempt in 0..3 {
        let node = db.clone();
        let started = Instant::now();
        let result = within("register while down", move || {
            node.register("during", hash("d"), 0)
        });
        assert!(
            matches!(&result, Err(DbError::Failed(_))),
            "attempt {attempt}: {result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "failing took {:?}",
            started.elapsed()
        );
    }
    let health = db.health();
    assert_eq!(health.engine, "postgres");
    assert!(!health.ok, "{health:?}");
    let error = health.last_error.unwrap_or_default();
    assert!(!error.is_empty());
    // History nobody waits for is queued without blocking the caller.
    let node = db.clone();
    within("append while down", move || {
        node.append_history((room, "lobby"), 1, 0, "before", "lost?")
    })
    .unwrap();

    pg.start_again();
    let deadline = Instant::now() + CALL_WAIT;
    loop {
        let node = db.clone();
        match within("user after restart", move || node.user("before")) {
            Ok(user) => {
                assert_eq!(user.expect("acknowledged before the stop").name, "before");
                break;
            }
            Err(DbError::Failed(_)) if Instant::now() < deadline => {
                // Reconnecting happens at most once a second: ask again.
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(other) => panic!("no recovery: {other:?}"),
        }
    }
    assert_eq!(db.register("after", hash("a"), 0), Ok("after".into()));
    assert_eq!(db.user("during"), Ok(None), "refused, so not stored");
    assert!(db.health().ok);
    drop(db);
    within("joining", move || thread.join()).unwrap();
}

/// An unreachable PostgreSQL at start is one clear line that names the
/// URL, without its password.
#[test]
fn unreachable_at_start_names_the_url_without_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let spec: StoreSpec = format!("postgres://chat:s3cret@127.0.0.1:{port}/chat")
        .parse()
        .unwrap();
    let error = within("open_store", move || {
        open_store(&spec, 10, Limits::default()).map(|_| ())
    })
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(&format!("postgres://chat:***@127.0.0.1:{port}/chat")),
        "{error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
    assert!(!error.contains('\n'), "{error}");
}

/// Another node in the middle of a batch: it has taken the rooms lock and
/// inserted an owner's room, not yet committed. Our node's `CREATE` for
/// the same owner must wait for it and then count that room: without the
/// lock it would count the committed rows only, and pass the limit. (The
/// other node is played by a plain connection, with the lock numbers of
/// `pg_schema.rs`; the same for a mailbox.)
#[test]
fn limits_wait_for_another_node_mid_batch() {
    let Some(pg) = postgres::start() else { return };
    let limits = Limits {
        rooms_per_user: 1,
        mailbox: 1,
        ..Limits::default()
    };
    let (db, thread, _) = open(&pg.url().parse().unwrap(), 10, limits);
    db.register("owner", hash("o"), 0).unwrap();
    let mut other = within("connect", {
        let url = pg.url();
        move || ::postgres::Client::connect(&url, ::postgres::NoTls)
    })
    .unwrap();
    // "chat" and "chau" in ASCII: the rooms lock and the mailbox locks.
    const LOCK_CLASS: i32 = 0x6368_6174;
    const LOCK_CLASS_MAILBOX: i32 = 0x6368_6175;

    let held_back = |other: &mut ::postgres::Client,
                     mid_batch: &str,
                     request: Box<dyn FnOnce() -> Result<(), DbError> + Send>,
                     expected: DbError| {
        other.batch_execute("BEGIN").unwrap();
        other.batch_execute(mid_batch).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(request());
        });
        // Wait until our node waits for the lock (polled, with a deadline).
        let deadline = Instant::now() + CALL_WAIT;
        loop {
            let waiting: i64 = other
                .query_one(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "our node never waited for the lock"
            );
            assert!(rx.try_recv().is_err(), "our node did not wait for the lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        other.batch_execute("COMMIT").unwrap();
        let result = rx
            .recv_timeout(CALL_WAIT)
            .expect("an answer after the COMMIT");
        assert_eq!(result, Err(expected));
    };

    let node = db.clone();
    held_back(
        &mut other,
        &format!(
            "SELECT pg_advisory_xact_lock({LOCK_CLASS}, 2);
             INSERT INTO rooms (name, created_ms, owner_id)
                 SELECT 'elsewhere', 0, id FROM users WHERE name = 'owner'"
        ),
        Box::new(move || node.create_room("here", None, "owner", 0).map(|_| ())),
        DbError::TooManyRooms,
    );
    let node = db.clone();
    held_back(
        &mut other,
        &format!(
            "SELECT pg_advisory_xact_lock({LOCK_CLASS_MAILBOX}, id::INTEGER) FROM users WHERE name = 'owner';
             INSERT INTO dms (to_user_id, from_user, time_ms, text)
                 SELECT id, 'x', 0, 'from elsewhere' FROM users WHERE name = 'owner'"
        ),
        Box::new(move || node.store_dm("owner", "y", 0, "from here")),
        DbError::MailboxFull,
    );
    drop(db);
    within("joining", move || thread.join()).unwrap();
}

/// A whole server on PostgreSQL: what it acknowledged (an account, a room
/// and its history, a stored DM) is there after a restart of the server.
#[test]
fn a_server_on_postgres_keeps_what_it_acknowledged() {
    let Some(pg) = postgres::start() else { return };
    let spec: StoreSpec = pg.url().parse().unwrap();
    let server = TestServer::start_with(|c| c.store = Some(spec.clone()));
    let mut bob = server.connect();
    bob.send("REGISTER bob pw");
    bob.expect("OK REGISTER bob");
    drop(bob);
    let mut alice = server.user_in("alice", "lobby");
    alice.send("SAY kept in postgres");
    alice.expect_msg("lobby", "alice", "kept in postgres");
    alice.send("DM bob waiting in postgres");
    alice.expect("OK DM bob stored");
    drop(alice);

    let server = server.restart();
    let mut bob = server.connect();
    bob.send("LOGIN bob pw");
    bob.expect("OK LOGIN bob");
    bob.expect_timed("DM alice", "waiting in postgres");
    let history = bob.join("lobby");
    assert!(
        matches!(&history[..], [ServerLine::History { text, .. }] if text == "kept in postgres"),
        "{history:?}"
    );
    assert_eq!(bob.sync(), NOTHING);
}

/// PostgreSQL stops under a running server: what needs it answers
/// `ERR SERVER_ERROR`, chat in rooms goes on, and once it is back the same
/// server registers again.
#[test]
fn chat_goes_on_while_postgres_is_down() {
    let Some(pg) = postgres::start() else { return };
    let spec: StoreSpec = pg.url().parse().unwrap();
    let server = TestServer::start_with(|c| c.store = Some(spec.clone()));
    let mut alice = server.user_in("alice", "lobby");
    let mut bob = server.user_in("bob", "lobby");
    alice.expect("JOINED lobby bob");

    pg.stop();
    alice.send("SAY still talking");
    alice.expect_msg("lobby", "alice", "still talking");
    bob.expect_msg("lobby", "alice", "still talking");
    let mut carol = server.connect();
    carol.send("REGISTER carol pw");
    carol.expect_prefix("ERR SERVER_ERROR");

    pg.start_again();
    let deadline = Instant::now() + CALL_WAIT;
    loop {
        carol.send("REGISTER carol pw");
        let line = carol.line();
        if line == "OK REGISTER carol" {
            break;
        }
        assert!(
            line.starts_with("ERR SERVER_ERROR") && Instant::now() < deadline,
            "no recovery: {line}"
        );
        // Reconnecting happens at most once a second: ask again.
        std::thread::sleep(Duration::from_millis(200));
    }
    carol.send("LOGIN carol pw");
    carol.expect("OK LOGIN carol");
}
