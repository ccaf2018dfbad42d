//! Several server nodes sharing their rooms through a real Redis
//! (`--bus redis://…`): everything PROTOCOL.md promises still holds when
//! the members of a room sit on different nodes.
//!
//! The nodes here run in this process and share one SQLite file, which is
//! enough to test the bus; `tests/store_postgres.rs` tests the shared
//! store, and `tests/cluster_faults.rs` real processes killed with
//! `kill -9`. Each test starts its own `redis-server` on a free port, and
//! is skipped (with the reason printed) where there is none.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::thread;

use chat::bus::BusSpec;
use chat::protocol::ServerLine;
use support::redis::Redis;
use support::{TestClient, TestServer};

/// `n` nodes named `n1`, `n2`, … on `redis`, sharing one database, with
/// the message rate limits raised (the tests send bursts).
fn nodes(redis: &Redis, n: usize) -> (tempfile::TempDir, Vec<TestServer>) {
    let _ = env_logger::builder().is_test(true).try_init();
    let dir = tempfile::tempdir().expect("temp dir");
    let db: PathBuf = dir.path().join("chat.db");
    let nodes = (1..=n)
        .map(|i| {
            TestServer::start_on(&db, |c| {
                c.bus = BusSpec::Redis(redis.url());
                c.node_id = Some(format!("n{i}"));
                c.msg_rate = 10_000;
                c.msg_burst = 10_000;
                c.line_rate = 10_000;
                c.line_burst = 10_000;
            })
        })
        .collect();
    (dir, nodes)
}

/// A user registered and logged in on `node`.
fn login(node: &TestServer, user: &str) -> TestClient {
    node.user(user)
}

/// ana on n1 creates and joins `room`, bia on n2 joins it, and ana has
/// seen her come in.
fn ana_and_bia_in(nodes: &[TestServer], room: &str) -> (TestClient, TestClient) {
    let mut ana = login(&nodes[0], "ana");
    ana.send(&format!("CREATE {room}"));
    ana.expect(&format!("OK CREATE {room}"));
    ana.join(room);
    let mut bia = login(&nodes[1], "bia");
    bia.join(room);
    until_joined(&mut ana, room, "bia");
    (ana, bia)
}

/// Reads lines until `JOINED <room> <user>`, returning what came before.
fn until_joined(client: &mut TestClient, room: &str, user: &str) -> Vec<String> {
    let want = format!("JOINED {room} {user}");
    let mut lines = client.lines_until(|l| l == want);
    lines.pop();
    lines
}

#[test]
fn members_on_three_nodes_see_one_order() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let (_dir, nodes) = nodes(&redis, 3);
    let (mut ana, mut bia) = ana_and_bia_in(&nodes, "geral");
    let mut caio = login(&nodes[2], "caio");
    caio.join("geral");
    until_joined(&mut ana, "geral", "caio");
    until_joined(&mut bia, "geral", "caio");

    // Everybody talks at once, from three nodes.
    const EACH: usize = 60;
    let speakers: Vec<_> = [("ana", ana), ("bia", bia), ("caio", caio)]
        .into_iter()
        .map(|(name, mut client)| {
            thread::spawn(move || {
                for i in 0..EACH {
                    client.send(&format!("SAY {name} {i}"));
                }
                let mut seen = Vec::new();
                while seen.len() < 3 * EACH {
                    if let ServerLine::Msg { user, text, .. } = client.parsed() {
                        seen.push(format!("{user}: {text}"));
                    }
                }
                seen
            })
        })
        .collect();
    let orders: Vec<Vec<String>> = speakers
        .into_iter()
        .map(|t| t.join().expect("a speaker panicked"))
        .collect();
    assert_eq!(orders[0].len(), 3 * EACH);
    assert_eq!(orders[0], orders[1], "ana and bia saw different orders");
    assert_eq!(orders[0], orders[2], "ana and caio saw different orders");
    // Each speaker's own messages in the order it sent them.
    for name in ["ana", "bia", "caio"] {
        let own: Vec<&String> = orders[0]
            .iter()
            .filter(|l| l.starts_with(&format!("{name}: ")))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("{name}: {name} {i}")).collect();
        assert_eq!(
            own.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }
}

#[test]
fn joins_leaves_who_and_rooms_span_the_nodes() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let (_dir, nodes) = nodes(&redis, 2);
    // A room made on n1 is there for n2.
    let (mut ana, mut bia) = ana_and_bia_in(&nodes, "sala");

    for client in [&mut ana, &mut bia] {
        client.send("WHO");
        let lines = client.lines_until(|l| l.starts_with("OK WHO"));
        let names: HashSet<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("USER "))
            .collect();
        assert_eq!(names, HashSet::from(["ana", "bia"]), "{lines:?}");
        client.send("ROOMS");
        let lines = client.lines_until(|l| l.starts_with("OK ROOMS"));
        assert!(
            lines.iter().any(|l| l == "ROOM sala public 2"),
            "ROOMS counts both nodes' members: {lines:?}"
        );
    }

    bia.send("LEAVE");
    bia.expect("OK LEAVE sala");
    ana.expect("LEFT sala bia leave");
    ana.send("ROOMS");
    let lines = ana.lines_until(|l| l.starts_with("OK ROOMS"));
    assert!(lines.iter().any(|l| l == "ROOM sala public 1"), "{lines:?}");

    // A member whose connection ends is `quit` for the other node.
    bia.join("sala");
    until_joined(&mut ana, "sala", "bia");
    drop(bia);
    ana.expect("LEFT sala bia quit");
}

#[test]
fn history_on_join_holds_what_every_node_said_in_order() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let (_dir, nodes) = nodes(&redis, 2);
    let (mut ana, mut bia) = ana_and_bia_in(&nodes, "hist");
    for i in 0..5 {
        ana.send(&format!("SAY a{i}"));
        bia.send(&format!("SAY b{i}"));
    }
    let mut said = Vec::new();
    while said.len() < 10 {
        if let ServerLine::Msg { user, text, .. } = ana.parsed() {
            said.push(format!("{user} {text}"));
        }
    }
    // A newcomer on either node replays the same history, in that order.
    for node in &nodes {
        let mut caio = node.connect();
        caio.send("LOGIN caio pw");
        let first = caio.line();
        if first.starts_with("ERR") {
            caio.send("REGISTER caio pw");
            caio.expect("OK REGISTER caio");
            caio.send("LOGIN caio pw");
            caio.expect("OK LOGIN caio");
        }
        let history: Vec<String> = caio
            .join("hist")
            .into_iter()
            .filter_map(|l| match l {
                ServerLine::History { user, text, .. } => Some(format!("{user} {text}")),
                _ => None,
            })
            .collect();
        assert_eq!(history, said);
        caio.send("LEAVE");
        caio.expect("OK LEAVE hist");
    }
}

#[test]
fn a_login_on_another_node_closes_the_older_session() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let (_dir, nodes) = nodes(&redis, 2);
    let mut first = login(&nodes[0], "ana");
    first.send("CREATE casa");
    first.expect("OK CREATE casa");
    first.join("casa");
    let mut watcher = login(&nodes[1], "bia");
    watcher.join("casa");
    until_joined(&mut first, "casa", "bia");

    let mut second = nodes[1].connect();
    second.send("LOGIN ana pw");
    second.expect("OK LOGIN ana");
    let rest = first.expect_closed();
    assert!(
        rest.iter()
            .any(|l| l.starts_with("BYE LOGGED_IN_ELSEWHERE")),
        "{rest:?}"
    );
    watcher.expect("LEFT casa ana quit");

    // And back the other way: exactly one session survives each time.
    let mut third = nodes[0].connect();
    third.send("LOGIN ana pw");
    third.expect("OK LOGIN ana");
    let rest = second.expect_closed();
    assert!(
        rest.iter()
            .any(|l| l.starts_with("BYE LOGGED_IN_ELSEWHERE")),
        "{rest:?}"
    );
    third.send("PING x");
    third.expect("PONG x");
}

#[test]
fn a_dm_reaches_a_user_on_another_node_or_waits_for_them() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let (_dir, nodes) = nodes(&redis, 2);
    let mut ana = login(&nodes[0], "ana");
    let mut bia = login(&nodes[1], "bia");
    ana.send("DM bia oi bia");
    ana.expect("OK DM bia delivered");
    let dm = bia.expect_prefix("DM ana ");
    assert!(dm.ends_with(" oi bia"), "{dm}");

    // Offline: stored, and delivered at the next login on any node.
    drop(bia);
    let mut caio = login(&nodes[1], "caio");
    caio.send("PING s");
    caio.expect("PONG s");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        ana.send("DM bia volta logo");
        let answer = ana.line();
        if answer == "OK DM bia stored" {
            break;
        }
        // bia's logout may not have reached Redis yet: then n2 stores it.
        assert_eq!(answer, "OK DM bia delivered");
        assert!(
            std::time::Instant::now() < deadline,
            "bia never went offline"
        );
    }
    let mut bia = nodes[0].connect();
    bia.send("LOGIN bia pw");
    bia.expect("OK LOGIN bia");
    let lines = bia.sync();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("DM ana ") && l.ends_with(" volta logo")),
        "{lines:?}"
    );
}

#[test]
fn moderation_reaches_members_on_other_nodes() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let (dir, nodes) = nodes(&redis, 2);
    let (mut ana, mut bia) = ana_and_bia_in(&nodes, "aula");

    // The owner on n1 sets the topic: bia on n2 sees it.
    ana.send("TOPIC prova na sexta");
    ana.expect_prefix("TOPIC aula ana ");
    ana.expect("OK TOPIC");
    let topic = bia.expect_prefix("TOPIC aula ana ");
    assert!(topic.ends_with(" prova na sexta"), "{topic}");

    // KICK of a member on another node: out on its node, LEFT everywhere.
    ana.send("KICK bia conversa");
    bia.expect("KICKED aula ana conversa");
    // The kick is done on bia's node: its LEFT may come before the OK.
    let mut lines = vec![ana.line(), ana.line()];
    lines.sort();
    assert_eq!(lines, ["LEFT aula bia kick", "OK KICK bia"]);

    // BAN: noted on every node, so JOIN on bia's node is refused. caio,
    // on bia's node, tells when n2 has applied it: the bus brings events in
    // order, so his copy of ana's next message comes after the ban.
    let mut caio = login(&nodes[1], "caio");
    caio.join("aula");
    until_joined(&mut ana, "aula", "caio");
    ana.send("BAN bia");
    ana.expect("OK BAN bia");
    ana.send("SAY after the ban");
    ana.expect_msg("aula", "ana", "after the ban");
    caio.expect_msg("aula", "ana", "after the ban");
    bia.send("JOIN aula");
    bia.expect_prefix("ERR BANNED");
    ana.send("UNBAN bia");
    ana.expect("OK UNBAN bia");
    ana.send("SAY after the unban");
    ana.expect_msg("aula", "ana", "after the unban");
    caio.expect_msg("aula", "ana", "after the unban");
    bia.join("aula");
    until_joined(&mut ana, "aula", "bia");

    // CLOSE on n1: bia on n2 is told, and the room is gone there too.
    ana.send("CLOSE aula");
    ana.expect("CLOSED aula ana");
    ana.expect("OK CLOSE aula");
    bia.expect("CLOSED aula ana");
    caio.expect("JOINED aula bia");
    caio.expect("CLOSED aula ana");
    bia.send("SAY still here?");
    bia.expect_prefix("ERR NOT_IN_ROOM");
    // Made again under the same name, on the other node: nobody from the
    // closed room sits in it.
    bia.send("CREATE aula");
    bia.expect("OK CREATE aula");
    bia.join("aula");
    bia.send("WHO");
    assert_eq!(
        bia.lines_until(|l| l.starts_with("OK WHO")),
        ["USER bia", "OK WHO 1"]
    );

    // ANNOUNCE and SUSPEND from an admin reach users on the other node.
    chat::accounts::set_admin(&dir.path().join("chat.db"), "ana", true, false)
        .expect("make ana an admin");
    let mut prof = nodes[0].connect();
    prof.send("LOGIN ana pw");
    prof.expect("OK LOGIN ana");
    prof.send("ANNOUNCE aula amanhã");
    prof.expect_prefix("NOTICE ");
    let reached = prof.expect_prefix("OK ANNOUNCE ");
    assert_eq!(reached, "OK ANNOUNCE 3", "every user, on both nodes");
    let notice = bia.expect_prefix("NOTICE ");
    assert!(notice.ends_with(" ana aula amanhã"), "{notice}");
    prof.send("SUSPEND bia 10 spam");
    prof.expect("OK SUSPEND bia");
    let rest = bia.expect_closed();
    assert!(
        rest.iter().any(|l| l.starts_with("BYE SUSPENDED")),
        "{rest:?}"
    );
    let mut again = nodes[1].connect();
    again.send("LOGIN bia pw");
    again.expect_prefix("ERR SUSPENDED");
}

#[test]
fn a_seat_redis_kept_for_a_member_gone_is_cleared_at_the_next_subscription() {
    let Some(redis) = support::redis::start() else {
        return;
    };
    let (_dir, nodes) = nodes(&redis, 2);
    let (mut ana, mut bia) = ana_and_bia_in(&nodes, "sala");

    // A Redis that kept its data across a restart may still seat a member
    // of n2 who left while it could not be told: "ghost".
    let client = redis::Client::open(redis.url()).expect("a redis client");
    let mut conn = client.get_connection().expect("connect to redis");
    let _: i64 = redis::cmd("ZADD")
        .arg("chat:seats:sala")
        .arg(0)
        .arg("n2/999999/ghost")
        .query(&mut conn)
        .expect("ZADD");
    // Both nodes lose their subscription and take a snapshot again: n2
    // sees a seat of its own that it does not have, and clears it.
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut conn)
        .expect("CLIENT KILL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let seats: Vec<String> = redis::cmd("ZRANGE")
            .arg("chat:seats:sala")
            .arg(0)
            .arg(-1)
            .query(&mut conn)
            .expect("ZRANGE");
        let mut names = Vec::new();
        for client in [&mut ana, &mut bia] {
            client.send("WHO");
            let mut who: Vec<String> = client
                .lines_until(|l| l.starts_with("OK WHO"))
                .into_iter()
                .filter(|l| l.starts_with("USER "))
                .collect();
            who.sort();
            names.push(who);
        }
        let whole = ["USER ana", "USER bia"];
        if !seats.iter().any(|s| s.ends_with("/ghost")) && names.iter().all(|w| w == &whole) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still seated: {seats:?}, {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
