//! What the database keeps, and for how long (protocol 1.1): a stored DM is
//! deleted only once it has been written to its recipient's socket, so
//! neither `kill -9` nor a disconnect during delivery loses one; and the
//! disk is bounded by `--mailbox`, `--history-keep`, `--max-rooms` and
//! `--rooms-per-user`, which hold across restarts and against racing
//! clients.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use support::{ServerBinary, TestClient, TestServer, WAIT};

/// Text of the `n`th test DM: a number to recognise it, and enough bytes
/// that a few hundred of them fill every buffer between the server and a
/// client that does not read.
fn dm_text(n: usize) -> String {
    format!("n{n:05} {}", "x".repeat(3900))
}

/// The number of a test DM, from a `DM <from> <time> <text>` line.
fn dm_number(line: &str) -> Option<usize> {
    let text = line.strip_prefix("DM ")?.splitn(3, ' ').nth(2)?;
    text.strip_prefix('n')?.get(..5)?.parse().ok()
}

/// Sends DMs `range` to `to` from `senders` connections at once (so the
/// database commits them in batches) and waits for every `OK DM … stored`.
fn store_dms(addr: SocketAddr, to: &str, count: usize, senders: usize) {
    let per = count / senders;
    let workers: Vec<_> = (0..senders)
        .map(|s| {
            let to = to.to_string();
            thread::spawn(move || {
                let mut c = TestClient::connect(addr);
                c.expect_prefix("HELLO ");
                let name = format!("sender{s}");
                c.send(&format!("REGISTER {name} pw"));
                c.expect(&format!("OK REGISTER {name}"));
                c.send(&format!("LOGIN {name} pw"));
                c.expect(&format!("OK LOGIN {name}"));
                let mut batch = String::new();
                for n in s * per..(s + 1) * per {
                    batch.push_str(&format!("DM {to} {}\n", dm_text(n)));
                }
                c.send_raw(batch.as_bytes());
                for _ in 0..per {
                    c.expect(&format!("OK DM {to} stored"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a sender failed");
    }
}

/// The stored DMs of the database file, read from another connection (the
/// server's WAL lets readers in while it runs).
fn stored_dms(db: &Path) -> i64 {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only");
    conn.query_row("SELECT COUNT(*) FROM dms", [], |r| r.get(0))
        .expect("count dms")
}

/// Waits, at most [`WAIT`], until `done` holds: for a state that only the
/// database file shows. Looks again every 10 ms.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "not in time: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads DM lines until the connection ends (cleanly or not), returning
/// their numbers: what a client still gets of a connection whose server
/// died, from the bytes the kernel had already been given.
fn read_dms_to_end(c: &mut TestClient) -> BTreeSet<usize> {
    let mut got = BTreeSet::new();
    while let Ok(Some(line)) = c.try_line() {
        got.extend(dm_number(&line));
    }
    got
}

/// Logs in and reads the stored DMs that follow, up to a `PING`'s `PONG`:
/// the delivery runs on the connection's own thread right after `LOGIN`,
/// so the `PONG` comes after the last of them.
fn login_and_read_dms(c: &mut TestClient, user: &str) -> Vec<usize> {
    c.send(&format!("LOGIN {user} pw"));
    c.expect(&format!("OK LOGIN {user}"));
    c.sync()
        .iter()
        .filter_map(|l| {
            assert!(l.starts_with("DM "), "not a DM: {l:.60}");
            dm_number(l)
        })
        .collect()
}

/// Starts the server binary on `db`, with limits that let the test's
/// senders pipeline, and returns it with its address.
fn spawn_server(db: &Path) -> (ServerBinary, SocketAddr) {
    let server = ServerBinary::start(
        db,
        &[
            "--fast-hash",
            "--mailbox",
            "3000",
            "--msg-rate",
            "100000",
            "--msg-burst",
            "100000",
            "--line-rate",
            "100000",
            "--line-burst",
            "100000",
        ],
    );
    let addr = server.addr;
    (server, addr)
}

/// `kill -9` in the middle of a delivery of 2,000 stored DMs (7.8 MB, more
/// than the kernel buffers (4 MiB at most for a socket's send buffer here) between the server and a client that does
/// not read): after a restart every one of them arrives, at the first
/// connection (from what the kernel already had) or at the next login.
/// Duplicates are allowed; a loss is not. A delivery that then completes
/// leaves nothing stored: the login after it gets none.
#[test]
fn stored_dms_survive_kill_9_mid_delivery() {
    const COUNT: usize = 2000;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let (mut server, addr) = spawn_server(&db);
    let mut bob = TestClient::connect(addr);
    bob.expect_prefix("HELLO ");
    bob.send("REGISTER bob pw");
    bob.expect("OK REGISTER bob");
    drop(bob);
    store_dms(addr, "bob", COUNT, 5);
    assert_eq!(stored_dms(&db), COUNT as i64);

    // Bob logs in on a small window and reads only the first DM; the
    // delivery goes on until every buffer is full, and then it waits.
    let mut bob = TestClient::connect_small_window(addr);
    bob.expect_prefix("HELLO ");
    bob.send("LOGIN bob pw");
    bob.expect("OK LOGIN bob");
    let first = bob.line();
    let mut got = BTreeSet::new();
    got.extend(dm_number(&first));
    assert_eq!(got.len(), 1, "a test DM: {first:.60}");
    // Kill it once a quarter has been delivered (2 MB, half of what
    // Linux lets a socket's send buffer grow to by default): the delivery
    // is then under way, or already waiting for Bob with its buffers full.
    wait_until("a quarter is delivered", || {
        stored_dms(&db) <= (COUNT - COUNT / 4) as i64
    });
    server.kill();

    got.extend(read_dms_to_end(&mut bob));
    let before_restart = got.len();
    assert!(before_restart < COUNT, "the delivery was cut");

    let (_server, addr) = spawn_server(&db);
    let mut bob = TestClient::connect(addr);
    bob.expect_prefix("HELLO ");
    got.extend(login_and_read_dms(&mut bob, "bob"));
    let missing: Vec<usize> = (0..COUNT).filter(|n| !got.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} DMs lost (had {before_restart} before the restart): {:?}…",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    bob.send("QUIT");
    bob.expect("BYE QUIT Goodbye.");

    // Delivered and written: nothing left to deliver.
    let mut bob = TestClient::connect(addr);
    bob.expect_prefix("HELLO ");
    assert_eq!(login_and_read_dms(&mut bob, "bob"), Vec::<usize>::new());
    assert_eq!(stored_dms(&db), 0);
}

/// The recipient stops reading in the middle of its stored DMs, and the
/// server gives up on it (the write times out, the connection is closed):
/// the DMs that were not written to its socket arrive at the next login.
/// With what the client still reads of the old connection (the bytes the
/// kernel had been given), none is lost.
#[test]
fn a_failed_write_during_delivery_loses_nothing() {
    const COUNT: usize = 2000;
    let server = TestServer::start_with(|c| {
        c.mailbox = 3000;
        c.write_timeout = Duration::from_secs(1);
        (c.msg_rate, c.msg_burst) = (100_000, 100_000);
        (c.line_rate, c.line_burst) = (100_000, 100_000);
    });
    let mut bob = server.connect();
    bob.send("REGISTER bob pw");
    bob.expect("OK REGISTER bob");
    drop(bob);
    store_dms(server.addr, "bob", COUNT, 5);

    let mut bob = TestClient::connect_small_window(server.addr);
    bob.expect_prefix("HELLO ");
    bob.send("LOGIN bob pw");
    bob.expect("OK LOGIN bob");
    let mut got = BTreeSet::new();
    got.extend(dm_number(&bob.line()));

    // The delivery is under way (its first piece is done) when the server
    // gives up on Bob: Ann's DMs, delivered to him online while he reads
    // nothing, fill what is left of the buffers until his writer fails.
    // Once his session is gone, her DMs are stored instead. (Hers are not
    // test DMs, and are ignored.)
    let db = server.config.db_path.clone();
    wait_until("the first piece is delivered", || {
        stored_dms(&db) < COUNT as i64
    });
    let mut ann = server.user("ann");
    let flood = format!("DM bob flood {}\n", "y".repeat(3900)).repeat(50);
    let deadline = Instant::now() + WAIT;
    loop {
        ann.send_raw(flood.as_bytes());
        let answers: Vec<String> = (0..50).map(|_| ann.expect_prefix("OK DM bob ")).collect();
        if answers.iter().any(|a| a.ends_with(" stored")) {
            break;
        }
        assert!(Instant::now() < deadline, "bob's session did not end");
    }
    got.extend(read_dms_to_end(&mut bob));
    let before = got.len();
    assert!(before < COUNT, "the delivery was cut");

    let mut bob = server.connect();
    got.extend(login_and_read_dms(&mut bob, "bob"));
    let missing: Vec<usize> = (0..COUNT).filter(|n| !got.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} DMs lost (bob had {before} of the first connection): {:?}…",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
}

/// `--mailbox 3`: the fourth DM to an offline user is `ERR MAILBOX_FULL`
/// and is not stored; once the user has logged in and read them, DMs can
/// be stored again. Another recipient's mailbox is its own.
#[test]
fn mailbox_limit() {
    let server = TestServer::start_with(|c| c.mailbox = 3);
    for name in ["bob", "cid"] {
        let mut c = server.connect();
        c.send(&format!("REGISTER {name} pw"));
        c.expect(&format!("OK REGISTER {name}"));
    }
    let mut ann = server.user("ann");
    for n in 0..3 {
        ann.send(&format!("DM bob m{n}"));
        ann.expect("OK DM bob stored");
    }
    ann.send("DM bob m3");
    ann.expect_prefix("ERR MAILBOX_FULL ");
    ann.send("DM cid hello");
    ann.expect("OK DM cid stored");

    let mut bob = server.connect();
    bob.send("LOGIN bob pw");
    bob.expect("OK LOGIN bob");
    let texts: Vec<String> = bob
        .sync()
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts, ["m0", "m1", "m2"], "m3 was not stored");
    bob.send("QUIT");
    bob.expect("BYE QUIT Goodbye.");

    ann.send("DM bob again");
    ann.expect("OK DM bob stored");
}

/// `--history-keep 20` (with `--history 5`): after 60 messages in one room
/// and 30 in another, the file holds only the newest 20 of each, and a
/// restarted server replays the right five.
#[test]
fn history_keep_bounds_the_file() {
    let server = TestServer::start_with(|c| {
        c.history = 5;
        c.history_keep = 20;
        (c.msg_rate, c.msg_burst) = (100_000, 100_000);
        (c.line_rate, c.line_burst) = (100_000, 100_000);
    });
    let mut ann = server.user_in("ann", "big");
    for n in 1..=60 {
        ann.send(&format!("SAY big{n}"));
    }
    ann.sync();
    ann.send("CREATE small");
    ann.expect("OK CREATE small");
    ann.join("small");
    for n in 1..=30 {
        ann.send(&format!("SAY small{n}"));
    }
    ann.sync();
    drop(ann);
    let db = server.config.db_path.clone();
    // A graceful stop writes everything queued for the database.
    let server = server.restart();

    let conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only");
    let kept: Vec<(String, i64, i64, i64)> = conn
        .prepare(
            "SELECT r.name, COUNT(*), MIN(m.seq), MAX(m.seq)
             FROM messages AS m JOIN rooms AS r ON r.id = m.room_id
             GROUP BY r.name ORDER BY r.name",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(
        kept,
        [
            ("big".to_string(), 20, 41, 60),
            ("small".to_string(), 20, 11, 30)
        ]
    );
    drop(conn);

    let mut bob = server.user("bob");
    let replay: Vec<String> = bob
        .join("big")
        .iter()
        .map(|l| l.to_string().rsplit(' ').next().unwrap_or_default().into())
        .collect();
    assert_eq!(replay, ["big56", "big57", "big58", "big59", "big60"]);
    // Numbering goes on after the newest kept message.
    bob.send("SAY after");
    bob.expect_msg("big", "bob", "after");
}

/// The layout of schema version 1 (before rooms had owners), as a server
/// of that version made it.
const SCHEMA_V1: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE rooms (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE messages (id INTEGER PRIMARY KEY, room_id INTEGER NOT NULL REFERENCES rooms(id),
    seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, user TEXT NOT NULL, text TEXT NOT NULL,
    UNIQUE (room_id, seq));
CREATE TABLE dms (id INTEGER PRIMARY KEY, to_user_id INTEGER NOT NULL REFERENCES users(id),
    from_user TEXT NOT NULL, time_ms INTEGER NOT NULL, text TEXT NOT NULL);
CREATE INDEX dms_to_user_id ON dms (to_user_id);
PRAGMA user_version = 1;
";

/// A database at schema version 1: an account `old` (password `pw`, hashed
/// by a server of this version), a room `lobby` without owner and with two
/// messages, and one stored DM for `old`.
fn version_1_database(path: &Path) {
    // The account is made by a server, so that its hash is real.
    {
        let mut server = TestServer::start_on(path, |_| {});
        let mut c = server.connect();
        c.send("REGISTER old pw");
        c.expect("OK REGISTER old");
        drop(c);
        server.stop();
    }
    let hash: String = Connection::open(path)
        .expect("open")
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .expect("the hash");
    std::fs::remove_file(path).expect("start again at version 1");
    let _ = std::fs::remove_file(path.with_extension("db-wal"));
    let _ = std::fs::remove_file(path.with_extension("db-shm"));
    let conn = Connection::open(path).expect("create");
    conn.execute_batch(SCHEMA_V1).expect("schema 1");
    conn.execute(
        "INSERT INTO users (name, password_hash, created_ms) VALUES ('old', ?1, 0)",
        [&hash],
    )
    .expect("user");
    conn.execute_batch(
        "INSERT INTO rooms (name, password_hash, created_ms) VALUES ('lobby', NULL, 0);
         INSERT INTO messages (room_id, seq, time_ms, user, text) VALUES
             (1, 1, 1000, 'old', 'first'), (1, 2, 2000, 'old', 'second');
         INSERT INTO dms (to_user_id, from_user, time_ms, text) VALUES (1, 'ann', 3000, 'kept');",
    )
    .expect("rows");
}

/// A database made at schema version 1 opens (and is migrated): the
/// account logs in, its stored DM arrives, the room replays its history
/// and numbering goes on; the old room has no owner, and the file says
/// version 2.
#[test]
fn version_1_database_is_migrated_with_its_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    version_1_database(&path);

    let server = TestServer::start_on(&path, |_| {});
    let mut old = server.connect();
    old.send("LOGIN old pw");
    old.expect("OK LOGIN old");
    old.expect_timed("DM ann", "kept");
    let history = old.join("lobby");
    let texts: Vec<String> = history.iter().map(|l| l.to_string()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].ends_with(" old first") && texts[1].ends_with(" old second"));
    old.send("SAY third");
    old.expect_msg("lobby", "old", "third");

    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open read-only");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, chat::db::SCHEMA_VERSION);
    let owner: Option<i64> = conn
        .query_row("SELECT owner_id FROM rooms WHERE name = 'lobby'", [], |r| {
            r.get(0)
        })
        .expect("owner");
    assert_eq!(owner, None);
}

/// `--max-rooms 5` with one room made before owners existed: 8 users
/// CREATE at the same instant, exactly 4 succeed; after a restart the limit
/// still holds (the old room counts toward it).
#[test]
fn max_rooms_holds_under_racing_creates_and_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    version_1_database(&path);
    let server = TestServer::start_on(&path, |c| c.max_rooms = 5);
    let racers: Vec<TestClient> = (0..8).map(|i| server.user(&format!("racer{i}"))).collect();
    let start = Barrier::new(8);
    let results: Vec<String> = thread::scope(|s| {
        let workers: Vec<_> = racers
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    c.send(&format!("CREATE room{i}"));
                    c.line()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("racer"))
            .collect()
    });
    let created = results
        .iter()
        .filter(|r| r.starts_with("OK CREATE"))
        .count();
    let refused = results
        .iter()
        .filter(|r| r.starts_with("ERR TOO_MANY_ROOMS "))
        .count();
    assert_eq!((created, refused), (4, 4), "{results:?}");

    let server = server.restart();
    let mut c = server.user("late");
    c.send("CREATE late");
    c.expect("ERR TOO_MANY_ROOMS The server has 5 rooms, the most it keeps; join one of them.");
    // A private room refused by the limit is refused before its password
    // is hashed, with the same answer.
    c.send("CREATE late secret");
    c.expect("ERR TOO_MANY_ROOMS The server has 5 rooms, the most it keeps; join one of them.");
    c.send("ROOMS");
    let rooms = c.lines_until(|l| l.starts_with("OK ROOMS"));
    assert_eq!(rooms.last().map(String::as_str), Some("OK ROOMS 5"));
}

/// `--rooms-per-user 2`: a third room of the same owner is refused, also
/// after a restart, while another user may still create; a name that is
/// taken is still `ROOM_EXISTS`, not the limit.
#[test]
fn rooms_per_user_holds_across_restarts() {
    let server = TestServer::start_with(|c| c.rooms_per_user = 2);
    let mut ann = server.user("ann");
    ann.send("CREATE a1");
    ann.expect("OK CREATE a1");
    ann.send("CREATE a2 secret");
    ann.expect("OK CREATE a2");
    ann.send("CREATE a3");
    ann.expect("ERR TOO_MANY_ROOMS You own 2 rooms, the most one account may; use one of them.");
    ann.send("CREATE A1");
    ann.expect_prefix("ERR ROOM_EXISTS ");
    drop(ann);

    let server = server.restart();
    let mut ann = server.connect();
    ann.send("LOGIN ann pw");
    ann.expect("OK LOGIN ann");
    ann.send("CREATE a3");
    ann.expect_prefix("ERR TOO_MANY_ROOMS ");
    let mut bob = server.user("bob");
    bob.send("CREATE b1");
    bob.expect("OK CREATE b1");
    // The refused room does not exist.
    bob.send("JOIN a3");
    bob.expect_prefix("ERR NO_SUCH_ROOM ");
}

/// The example database shipped with the repository opens (migrated if
/// its schema is older), keeping its accounts and rooms; `professor` is an
/// admin and owns one room, as the README says.
#[test]
fn the_example_database_still_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/chat.db.example"),
        &path,
    )
    .expect("copy chat.db.example");
    let count = |sql: &str| -> i64 {
        Connection::open(&path)
            .expect("open")
            .query_row(sql, [], |r| r.get(0))
            .expect(sql)
    };
    let (users, rooms) = (
        count("SELECT COUNT(*) FROM users"),
        count("SELECT COUNT(*) FROM rooms"),
    );
    assert!(users > 0 && rooms > 0, "the example has accounts and rooms");
    let (db, thread, loaded) = chat::db::open(&path, 50).expect("open the example");
    assert_eq!(loaded.len() as i64, rooms);
    drop(db);
    thread.join().expect("close");
    assert_eq!(count("PRAGMA user_version"), chat::db::SCHEMA_VERSION);
    assert_eq!(count("SELECT COUNT(*) FROM users"), users);
    assert_eq!(
        count("SELECT admin FROM users WHERE name = 'professor'"),
        1,
        "professor is an admin"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM rooms WHERE owner_id = \
             (SELECT id FROM users WHERE name = 'professor')"
        ),
        1,
        "professor owns one room"
    );
}

/// DMs sent while their recipient logs in, 20 times over: some find Bob
/// offline and are stored while his login is delivering, some are handed
/// over by the sender, some are delivered online. Every one arrives, and
/// exactly once: the login and a sender never send the same stored row.
#[test]
fn dms_racing_a_login_arrive_exactly_once() {
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 30;
    let server = TestServer::start_with(|c| {
        (c.msg_rate, c.msg_burst) = (100_000, 100_000);
        (c.line_rate, c.line_burst) = (100_000, 100_000);
    });
    let mut bob = server.connect();
    bob.send("REGISTER bob pw");
    bob.expect("OK REGISTER bob");
    drop(bob);
    let mut ann = server.user("ann");
    let mut got: Vec<String> = Vec::new();
    let texts = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .map(|l| {
                assert!(l.starts_with("DM ann "), "not a DM from ann: {l}");
                l.rsplit(' ').next().unwrap_or_default().to_string()
            })
            .collect()
    };
    for round in 0..ROUNDS {
        let start = Barrier::new(2);
        let burst: String = (0..PER_ROUND)
            .map(|i| format!("DM bob r{round}m{i}\n"))
            .collect();
        let mut bob = server.connect();
        let lines = thread::scope(|s| {
            let sender = s.spawn(|| {
                start.wait();
                ann.send_raw(burst.as_bytes());
                for _ in 0..PER_ROUND {
                    ann.expect_prefix("OK DM bob ");
                }
                // Every DM of hers has been handled, hand-overs included.
                ann.sync();
            });
            start.wait();
            bob.send("LOGIN bob pw");
            bob.expect("OK LOGIN bob");
            let mut lines = bob.sync();
            sender.join().expect("ann");
            lines.extend(bob.sync());
            lines
        });
        got.extend(texts(lines));
        bob.send("QUIT");
        bob.expect("BYE QUIT Goodbye.");
    }
    // Anything still stored comes now.
    let mut bob = server.connect();
    bob.send("LOGIN bob pw");
    bob.expect("OK LOGIN bob");
    got.extend(texts(bob.sync()));

    let mut sorted = got.clone();
    sorted.sort();
    let mut expected: Vec<String> = (0..ROUNDS)
        .flat_map(|r| (0..PER_ROUND).map(move |i| format!("r{r}m{i}")))
        .collect();
    expected.sort();
    assert_eq!(sorted, expected, "each DM exactly once");
}

/// The disk a room's history takes stops growing at `--history-keep`: the
/// file holds the same after 10,000 longest messages (4,091 bytes of text)
/// as after 4,000, with `--history-keep 1000`. Prints the bytes per kept
/// message (`cargo test --test limits_db history_file -- --nocapture`).
#[test]
fn history_file_stops_growing() {
    const KEEP: u64 = 1000;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    let limits = chat::db::Limits {
        history_keep: KEEP as usize,
        ..Default::default()
    };
    let (db, thread, _) = chat::db::open_with(&path, 50, limits).expect("open");
    let (_, room) = db.create_room("r", None, "ann", 0).expect("room");
    let text = "x".repeat(4091);
    let size_after = |from: u64, to: u64| -> u64 {
        for seq in from..=to {
            db.append_history((room, "r"), seq, 1_733_500_000_000, "alice_the_user", &text)
                .expect("append");
        }
        db.flush().expect("flush");
        // Fold the write-ahead log into the file, so its size is the data's.
        let conn = Connection::open(&path).expect("open");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        let kept: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .expect("count");
        assert_eq!(kept, KEEP as i64);
        std::fs::metadata(&path).expect("size").len()
    };
    let at_4000 = size_after(1, 4 * KEEP);
    let at_10000 = size_after(4 * KEEP + 1, 10 * KEEP);
    eprintln!(
        "history file: {at_4000} bytes after 4,000 messages, {at_10000} after 10,000; \
         {} bytes per kept message",
        at_10000 / KEEP
    );
    assert!(
        at_10000 <= at_4000 + 64 * 1024,
        "the file grew from {at_4000} to {at_10000} bytes"
    );
    drop(db);
    thread.join().expect("close");
}
