//! Nodes that fail: server processes killed with `kill -9`, a Redis
//! restarted under them, PostgreSQL stopped under them, and a rolling
//! restart. Each node is this build's `server` binary as a child process,
//! sharing a real `redis-server` and either one SQLite file or a real
//! PostgreSQL (each started per test, and the test skipped with the reason
//! printed where it is not installed).
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
/// after `ttl` seconds without a beat: 2 where a test kills a node (so the
/// `kill -9` shows within a test's wait), the default elsewhere (a short
/// TTL on a loaded machine, as in the CI's stress pass, could declare a
/// live node gone; it would then announce itself again, but the test
/// would see its members leave and come back).
fn node(redis: &Redis, db: &Path, name: &str, ttl: &str) -> Node {
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
        ttl,
    ])
}

/// A node named `name` on `redis` and the PostgreSQL at `store`, with
/// the default `--node-ttl` (these tests kill no node).
fn pg_node(redis: &Redis, store: &str, name: &str) -> Node {
    let url = redis.url();
    server_node(&["--bus", &url, "--store", store, "--node-id", name])
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

/// ana on node `a` creates and joins `sala`, bia on node `b` joins it,
/// and ana has seen her come in.
fn ana_and_bia_in_sala(a: &Node, b: &Node) -> (TestClient, TestClient) {
    let mut ana = login(a, "ana");
    ana.send("CREATE sala");
    ana.expect("OK CREATE sala");
    ana.join("sala");
    let mut bia = login(b, "bia");
    bia.join("sala");
    ana.expect("JOINED sala bia");
    (ana, bia)
}

/// The pause between two tries of something that can only be asked
/// again (has the node reconnected, has the room healed), not waited for:
/// a try is a `SAY` and a `PING` or a `REGISTER`, and 10 tries a second
/// stay under the rate limits (`--msg-rate` 10 after a burst of 20,
/// `--register-rate` 2 after a burst of 300), so that a try is never
/// refused for its pace.
fn poll_pause() {
    std::thread::sleep(Duration::from_millis(100));
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
    let mut a = node(&redis, &db, "a", "2");
    let b = node(&redis, &db, "b", "2");

    let (_ana, mut bia) = ana_and_bia_in_sala(&a, &b);

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
    let a = node(&redis, &db, "a", "10");
    let b = node(&redis, &db, "b", "10");

    let (mut ana, mut bia) = ana_and_bia_in_sala(&a, &b);
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
        poll_pause();
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
        poll_pause();
    }
    bia.send("WHO");
    let who = bia.lines_until(|l| l.starts_with("OK WHO"));
    assert!(who.contains(&"USER ana".to_string()), "{who:?}");
    ana.send("DM bia still here");
    ana.expect("OK DM bia delivered");
    // Past the copies of "back?" still on their way to bia.
    let lines = bia.lines_until(|l| l.starts_with("DM ana "));
    assert!(lines
        .iter()
        .all(|l| l.starts_with("MSG sala ") || l.starts_with("DM ana ")));

    // No thread was left behind by the reconnections.
    let after = (threads(a.child.id()), threads(b.child.id()));
    assert_eq!(before, after, "threads before and after the restart");
}

#[test]
fn nodes_on_redis_and_postgres_race_and_chat_as_one_server() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let Some(pg) = support::postgres::start() else {
        return;
    };
    let nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| pg_node(&redis, &pg.url(), n))
        .collect();

    // REGISTER and CREATE of one name on three nodes at once: one winner.
    for round in 0..5 {
        let mut clients: Vec<TestClient> = nodes.iter().map(Node::connect).collect();
        let name = format!("racer{round}");
        for c in &mut clients {
            c.send(&format!("REGISTER {name} pw"));
        }
        let answers: Vec<String> = clients.iter_mut().map(TestClient::line).collect();
        let won = answers
            .iter()
            .filter(|a| a.starts_with("OK REGISTER"))
            .count();
        let lost = answers
            .iter()
            .filter(|a| a.starts_with("ERR USER_EXISTS"))
            .count();
        assert_eq!((won, lost), (1, 2), "{answers:?}");
        for (i, c) in clients.iter_mut().enumerate() {
            let user = format!("{name}x{i}");
            c.send(&format!("REGISTER {user} pw"));
            c.expect(&format!("OK REGISTER {user}"));
            c.send(&format!("LOGIN {user} pw"));
            c.expect(&format!("OK LOGIN {user}"));
        }
        let room = format!("sala{round}");
        for c in &mut clients {
            c.send(&format!("CREATE {room}"));
        }
        let answers: Vec<String> = clients.iter_mut().map(TestClient::line).collect();
        let won = answers
            .iter()
            .filter(|a| a.starts_with("OK CREATE"))
            .count();
        assert_eq!(won, 1, "{answers:?}");
        assert!(
            answers
                .iter()
                .all(|a| a.starts_with("OK CREATE") || a.starts_with("ERR ROOM_EXISTS")),
            "{answers:?}"
        );
        // Whoever won, everybody can join it, on every node, and talk.
        for c in &mut clients {
            c.join(&room);
        }
        clients[0].send("SAY todos aqui?");
        for c in &mut clients {
            let lines = c.lines_until(|l| l.starts_with("MSG "));
            assert!(
                lines.last().is_some_and(|l| l.ends_with(" todos aqui?")),
                "{lines:?}"
            );
        }
    }
}

#[test]
fn chat_goes_on_while_postgres_is_down() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let Some(pg) = support::postgres::start() else {
        return;
    };
    let a = pg_node(&redis, &pg.url(), "a");
    let b = pg_node(&redis, &pg.url(), "b");
    let (mut ana, mut bia) = ana_and_bia_in_sala(&a, &b);

    pg.stop();
    // What needs the store is refused, clearly; the room goes on.
    let mut newcomer = b.connect();
    newcomer.send("REGISTER caio pw");
    newcomer.expect_prefix("ERR SERVER_ERROR");
    ana.send("SAY still talking");
    bia.expect_msg("sala", "ana", "still talking");
    bia.send("SAY me too");
    ana.expect_msg("sala", "ana", "still talking");
    ana.expect_msg("sala", "bia", "me too");

    pg.start_again();
    // Back: the node recovers on its own (one attempt a second at most).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        newcomer.send("REGISTER caio pw");
        let answer = newcomer.line();
        if answer == "OK REGISTER caio" {
            break;
        }
        assert!(answer.starts_with("ERR SERVER_ERROR"), "{answer}");
        assert!(Instant::now() < deadline, "the store never came back");
        poll_pause();
    }
}

#[test]
fn a_rolling_restart_loses_nothing_acknowledged() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let Some(pg) = support::postgres::start() else {
        return;
    };
    let store = pg.url();
    let mut a = pg_node(&redis, &store, "a");
    let mut b = pg_node(&redis, &store, "b");
    let (mut ana, mut bia) = ana_and_bia_in_sala(&a, &b);
    // caio has an account and never logs in until the end: every DM to
    // him is stored.
    let mut caio = b.connect();
    caio.send("REGISTER caio pw");
    caio.expect("OK REGISTER caio");
    drop(caio);

    // Acknowledged before each restart: messages (their echo), an account
    // (OK REGISTER) and DMs for somebody offline (OK DM … stored).
    let mut said = Vec::new();
    let mut say = |who: &mut TestClient, text: &str| {
        who.send(&format!("SAY {text}"));
        who.lines_until(|l| l.starts_with("MSG sala ") && l.ends_with(text));
        said.push(text.to_owned());
    };
    say(&mut ana, "before a restarts");
    ana.send("DM caio first");
    ana.expect("OK DM caio stored");

    // a goes down; ana comes back on b.
    a.stop();
    ana.expect_closed();
    let mut a2 = pg_node(&redis, &store, "a2");
    let mut ana = login(&b, "ana");
    ana.join("sala");
    say(&mut bia, "between the restarts");
    let mut dani = a2.connect();
    dani.send("REGISTER dani pw");
    dani.expect("OK REGISTER dani");

    // Then b; everybody comes back on a2.
    b.stop();
    bia.expect_closed();
    let _b2 = pg_node(&redis, &store, "b2");
    let mut bia = login(&a2, "bia");
    bia.send("DM caio second");
    bia.expect("OK DM caio stored");
    let history: Vec<String> = bia
        .join("sala")
        .into_iter()
        .filter_map(|l| match l {
            chat::protocol::ServerLine::History { text, .. } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(history, said, "the room's history after both restarts");
    let mut caio = login(&a2, "caio");
    let lines = caio.sync();
    let dms: Vec<&String> = lines.iter().filter(|l| l.starts_with("DM ")).collect();
    assert_eq!(dms.len(), 2, "{lines:?}");
    assert!(
        dms[0].ends_with(" first") && dms[1].ends_with(" second"),
        "{dms:?}"
    );
    let mut dani = a2.connect();
    dani.send("LOGIN dani pw");
    dani.expect("OK LOGIN dani");
    drop(ana);
    a2.stop();
}

#[test]
fn a_node_paused_past_its_ttl_comes_back_whole() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let a = node(&redis, &db, "a", "2");
    let b = node(&redis, &db, "b", "2");
    let (mut ana, mut bia) = ana_and_bia_in_sala(&a, &b);

    // a stops beating (a machine swapping, a debugger): b declares it gone.
    support::send_signal(&a.child, "-STOP");
    bia.expect("LEFT sala ana quit");
    support::send_signal(&a.child, "-CONT");

    // a hears of its own death, or, if the pause broke its subscription
    // (a read interrupted by the stop), subscribes again; either way it
    // seats ana again, and the room is whole.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = a.logs.recv_timeout(left).expect("a says it is back");
        if line.contains("declared gone") || line.contains("bus: node a subscribed") {
            break;
        }
    }
    loop {
        ana.send("SAY still here");
        ana.send("PING x");
        ana.lines_until(|l| l == "PONG x");
        bia.send("PING x");
        let seen = bia.lines_until(|l| l == "PONG x");
        if seen.iter().any(|l| l.ends_with(" ana still here")) {
            break;
        }
        assert!(Instant::now() < deadline, "ana never came back for bia");
        poll_pause();
    }
    bia.send("WHO");
    let who = bia.lines_until(|l| l.starts_with("OK WHO"));
    assert!(who.contains(&"USER ana".to_string()), "{who:?}");
}
