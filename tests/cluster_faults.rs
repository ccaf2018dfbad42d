//! Nodes that fail: server processes killed with `kill -9`, and a Redis
//! restarted under them. Each node is this build's `server` binary as a
//! child process, sharing a real `redis-server` (started per test, skipped
//! with the reason printed where there is none) and one SQLite file.
//!
//! docs/SCALING.md's failure table says what each fault costs; these tests
//! hold the server to it.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::node::{server_node, Node};
use support::redis::Redis;
use support::TestClient;

/// A node named `name` on `redis`, with the database `db`, counted as gone
/// after 2 s without a beat (so a `kill -9` shows within a test's wait).
fn node(redis: &Redis, db: &Path, name: &str) -> Node {
    let url = redis.url();
    let db = db.to_str().expect("a UTF-8 path");
    server_node(&[
        "--bus",
        &url,
        "--db",
        db,
        "--node-id",
        name,
        "--node-ttl",
        "2",
    ])
}

/// Registers (if needed) and logs `user` in on `node`.
fn login(node: &Node, user: &str) -> TestClient {
    let mut c = node.connect();
    c.send(&format!("REGISTER {user} pw"));
    let answer = c.line();
    assert!(
        answer == format!("OK REGISTER {user}") || answer.starts_with("ERR USER_EXISTS"),
        "{answer}"
    );
    c.send(&format!("LOGIN {user} pw"));
    c.expect(&format!("OK LOGIN {user}"));
    c
}

/// The threads of process `pid` now.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_node_killed_with_sigkill_leaves_within_the_ttl() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let mut a = node(&redis, &db, "a");
    let b = node(&redis, &db, "b");

    let mut ana = login(&a, "ana");
    ana.send("CREATE sala");
    ana.expect("OK CREATE sala");
    ana.join("sala");
    let mut bia = login(&b, "bia");
    bia.join("sala");
    ana.expect("JOINED sala bia");

    let killed = Instant::now();
    a.kill9();
    // No goodbye from a: b notices the silence (2 s TTL, 0.4 s beats).
    bia.expect("LEFT sala ana quit");
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the dead node's member left after {took:?}"
    );
    bia.send("WHO");
    let who = bia.lines_until(|l| l.starts_with("OK WHO"));
    assert_eq!(who, vec!["USER bia".to_string(), "OK WHO 1".to_string()]);

    // ana's presence went with her node: a DM to her is stored, and she
    // gets it when she logs in on the node that is left.
    bia.send("DM ana are you there?");
    bia.expect("OK DM ana stored");
    let mut ana = login(&b, "ana");
    let lines = ana.sync();
    assert!(
        lines.iter().any(|l| l.ends_with(" are you there?")),
        "{lines:?}"
    );
}

#[test]
fn nodes_ride_out_a_redis_restart() {
    let Some(mut redis) = support::redis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let a = node(&redis, &db, "a");
    let b = node(&redis, &db, "b");

    let mut ana = login(&a, "ana");
    ana.send("CREATE sala");
    ana.expect("OK CREATE sala");
    ana.join("sala");
    let mut bia = login(&b, "bia");
    bia.join("sala");
    ana.expect("JOINED sala bia");
    let before = (threads(a.child.id()), threads(b.child.id()));

    redis.kill();
    // Down: each node still serves its own clients, and a message that
    // could reach nobody is refused, not swallowed.
    ana.send("PING down");
    ana.expect("PONG down");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        ana.send("SAY anyone?");
        ana.send("PING down");
        let lines = ana.lines_until(|l| l == "PONG down");
        if lines.iter().any(|l| l.starts_with("ERR SERVER_ERROR")) {
            break;
        }
        assert!(Instant::now() < deadline, "SAY never refused: {lines:?}");
    }
    redis.restart();
    a.wait_for_log("bus: node a subscribed");
    b.wait_for_log("bus: node b subscribed");

    // Back, and empty: the nodes announced their members and users again,
    // so the room spans both nodes as before.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        ana.send("SAY back?");
        ana.send("PING x");
        ana.lines_until(|l| l == "PONG x");
        bia.send("PING x");
        let seen = bia.lines_until(|l| l == "PONG x");
        if seen.iter().any(|l| l.ends_with(" ana back?")) {
            break;
        }
        assert!(Instant::now() < deadline, "messages never crossed again");
    }
    bia.send("WHO");
    let who = bia.lines_until(|l| l.starts_with("OK WHO"));
    assert!(who.contains(&"USER ana".to_string()), "{who:?}");
    ana.send("DM bia still here");
    ana.expect("OK DM bia delivered");
    bia.expect_prefix("DM ana ");

    // No thread was left behind by the reconnections.
    let after = (threads(a.child.id()), threads(b.child.id()));
    assert_eq!(before, after, "threads before and after the restart");
}
