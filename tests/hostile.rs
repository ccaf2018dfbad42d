//! Hostile and unlucky peers: many stalled handshakes, a server killed
//! with `kill -9` right after acknowledging registrations, a member who
//! stops reading, and an operator who presses Ctrl-C twice.

mod support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use chat::protocol::ServerLine;
use support::{
    connection_thread_names, read_to_close, wait_for_log, ServerBinary, TestClient, TestServer,
    WAIT,
};

/// How many of this process's threads serve connections.
fn connection_threads() -> usize {
    connection_thread_names().len()
}

/// The connection numbers that have a thread of each kind: handshake
/// (`conn-N-tls`), reader (`conn-N`), writer (`conn-N-writer`).
struct Census {
    /// Connections in their handshake.
    tls: BTreeSet<String>,
    /// Connections with a reader.
    readers: BTreeSet<String>,
    /// Connections with a writer.
    writers: BTreeSet<String>,
}

/// Takes the census of this process's connection threads.
fn thread_census() -> Census {
    let mut census = Census {
        tls: BTreeSet::new(),
        readers: BTreeSet::new(),
        writers: BTreeSet::new(),
    };
    for name in connection_thread_names() {
        let id = name.trim_start_matches("conn-");
        if let Some(id) = id.strip_suffix("-tls") {
            census.tls.insert(id.to_owned());
        } else if let Some(id) = id.strip_suffix("-writer") {
            census.writers.insert(id.to_owned());
        } else {
            census.readers.insert(id.to_owned());
        }
    }
    census
}

/// 50 peers that open TCP and never start the handshake do not stop a
/// real client from logging in; each is closed at the handshake deadline,
/// and then no thread is left serving them.
///
/// On the way it checks the threads: a handshake costs one thread, which
/// ends once the handshake is done, and a session costs exactly a reader
/// and a writer (the handshake's thread ending is what keeps an idle
/// client's memory small, see docs/BENCHMARKS.md).
#[test]
fn fifty_stalled_handshakes() {
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_secs(2));
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    let mut alice = server.user("alice");
    alice.send("PING served");
    alice.expect("PONG served");
    // Alice is served by exactly a reader and a writer, and her handshake
    // thread ends right after starting them; the stalled peers have only
    // handshake threads (until their deadline). (Thread names are read
    // from /proc: Linux only.)
    if cfg!(target_os = "linux") {
        let settled = |c: &Census| {
            c.readers.len() == 1 && c.writers == c.readers && c.tls.is_disjoint(&c.readers)
        };
        let deadline = Instant::now() + WAIT;
        while !settled(&thread_census()) && Instant::now() < deadline {
            thread::yield_now();
        }
        assert!(
            settled(&thread_census()),
            "connection threads: {:?}",
            connection_thread_names()
        );
    }
    for socket in &mut stalled {
        assert!(read_to_close(socket).is_empty(), "a stalled peer got data");
    }
    drop(alice);
    // The threads end right after closing; give them a bounded moment.
    let deadline = Instant::now() + WAIT;
    while connection_threads() > 0 && Instant::now() < deadline {
        thread::yield_now();
    }
    assert_eq!(
        connection_threads(),
        0,
        "connection threads outlived their peers"
    );
}

/// Starts the server binary on `db` (cheap hashing) and returns it with
/// its address.
fn spawn_server(db: &std::path::Path, extra: &[&str]) -> (ServerBinary, SocketAddr) {
    let server = ServerBinary::start(db, &[&["--fast-hash"], extra].concat());
    let addr = server.addr;
    (server, addr)
}

/// Every account whose `OK REGISTER` was sent survives `kill -9` of the
/// server right after, and the database passes `PRAGMA integrity_check`.
#[test]
fn registrations_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let (mut child, addr) = spawn_server(&db, &[]);
    // 8 connections, 25 pipelined registrations each.
    let workers: Vec<_> = (0..8)
        .map(|w| {
            thread::spawn(move || {
                let mut c = TestClient::connect(addr);
                c.expect_prefix("HELLO ");
                let mut batch = String::new();
                for i in 0..25 {
                    batch.push_str(&format!("REGISTER u{w}x{i} pw\n"));
                }
                c.send_raw(batch.as_bytes());
                for i in 0..25 {
                    c.expect(&format!("OK REGISTER u{w}x{i}"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a registering client failed");
    }
    child.kill();

    let conn = rusqlite::Connection::open(&db).expect("open after the crash");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let users: i64 = conn
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .expect("count users");
    assert_eq!(users, 200);
    drop(conn);

    // And the restarted server lets them log in. (A separate process: an
    // in-process server would add `conn-` threads to this test binary,
    // which the stalled-handshake test counts.)
    let (mut child, addr) = spawn_server(&db, &[]);
    let mut c = TestClient::connect(addr);
    c.expect_prefix("HELLO ");
    c.send("LOGIN u7x24 pw");
    c.expect("OK LOGIN u7x24");
    child.kill();
}

/// The server's resident memory, from `/proc` (Linux).
#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// Registers, logs in and joins `room` on a server process.
fn member(addr: SocketAddr, name: &str, room: &str) -> TestClient {
    member_over(TestClient::connect(addr), name, room)
}

/// Like [`member`], over an already connected client.
fn member_over(mut c: TestClient, name: &str, room: &str) -> TestClient {
    c.expect_prefix("HELLO ");
    c.send(&format!("REGISTER {name} pw"));
    c.expect(&format!("OK REGISTER {name}"));
    c.send(&format!("LOGIN {name} pw"));
    c.expect(&format!("OK LOGIN {name}"));
    c.send(&format!("CREATE {room}"));
    let _ = c.line(); // OK CREATE, or ROOM_EXISTS for the later members
    c.join(room);
    c
}

/// A member that stops reading while 30 MB are said in its room costs the
/// server a bounded amount of memory: its outbox holds at most
/// `--queue-lines` lines, then it is dropped. (Were the outbox unbounded,
/// the server would hold all 30 MB for it.)
#[test]
#[cfg(target_os = "linux")] // the server's RSS, from /proc
fn a_stalled_reader_costs_bounded_memory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let (child, addr) = spawn_server(&db, &[&["--queue-lines", "64"], FLOOD_OPTIONS].concat());
    let pid = child.child().id();
    let (mut talker, mut reader, _sleeper) = room_with_a_sleeper(addr);
    let before = rss_kib(pid);
    flood(&mut talker, &mut reader);
    let after = rss_kib(pid);
    let growth = after.saturating_sub(before);
    eprintln!("RSS before {before} KiB, after {after} KiB");
    assert!(
        growth < 16 * 1024,
        "server RSS grew by {growth} KiB while 30 MB went to a member that does not read"
    );
}

/// Server options for [`flood`]: no history replay, no rate limit.
const FLOOD_OPTIONS: &[&str] = &[
    "--history",
    "0",
    "--msg-burst",
    "100000",
    "--msg-rate",
    "100000",
    "--line-burst",
    "100000",
    "--line-rate",
    "100000",
];

/// Three members of `sala`: a talker, a reader, and a sleeper whose small
/// receive window fills fast and who never reads (keep it alive).
fn room_with_a_sleeper(addr: SocketAddr) -> (TestClient, TestClient, TestClient) {
    let mut talker = member(addr, "talker", "sala");
    let mut reader = member(addr, "reader", "sala");
    let sleeper = member_over(TestClient::connect_small_window(addr), "sleeper", "sala");
    talker.expect("JOINED sala reader");
    talker.expect("JOINED sala sleeper");
    reader.expect("JOINED sala sleeper");
    (talker, reader, sleeper)
}

/// `talker` says 30 MB (10,000 lines of 3 KB) in its room, in batches of
/// 8, and waits for each batch to reach itself and `reader`.
fn flood(talker: &mut TestClient, reader: &mut TestClient) {
    let pad = "x".repeat(3000);
    for chunk in 0..1250 {
        let batch: String = (0..8)
            .map(|i| format!("SAY {} {pad}\n", chunk * 8 + i))
            .collect();
        talker.send_raw(batch.as_bytes());
        for c in [&mut *talker, &mut *reader] {
            let mut got = 0;
            while got < 8 {
                if let ServerLine::Msg { .. } = c.parsed() {
                    got += 1;
                }
            }
        }
    }
}

/// A second SIGTERM during a graceful stop exits at once, with status 130.
/// The graceful stop is kept busy by a member who stopped reading: its
/// writer is blocked on a full socket (for up to the 10 s write timeout),
/// and the stop waits up to 5 s for it. Were the second signal ignored,
/// the process would exit with status 0 once that wait was over.
#[test]
#[cfg(unix)] // signals
fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let (server, addr) = spawn_server(&db, FLOOD_OPTIONS);
    let (mut talker, mut reader, _sleeper) = room_with_a_sleeper(addr);
    flood(&mut talker, &mut reader);

    support::send_signal(server.child(), "-TERM");
    wait_for_log(&server.log, "shutting down: closing");
    support::send_signal(server.child(), "-TERM");
    wait_for_log(&server.log, "second signal: exiting now");
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(130), "{status:?}");
}
