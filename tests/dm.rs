//! Direct messages: delivered at once to a user who is online, stored for
//! one who is not and handed over at their next login (oldest first, once,
//! even across a server restart), refused for a user who does not exist.
//!
//! Nothing here sleeps: a test waits for the line that proves an event, and
//! proves that nothing more came with `sync()` (a `PING` round trip).

mod support;

use chat::protocol::ServerLine;
use support::{TestClient, TestServer, NOTHING};

/// Registers `user` (password `pw`) without logging in, so the user exists
/// but is offline.
fn register_only(server: &TestServer, user: &str) {
    let mut c = server.connect();
    c.send(&format!("REGISTER {user} pw"));
    c.expect(&format!("OK REGISTER {user}"));
}

/// A fresh connection that sends `LOGIN <user> pw` and reads `OK LOGIN`.
fn login(server: &TestServer, user: &str) -> TestClient {
    let mut c = server.connect();
    c.send(&format!("LOGIN {user} pw"));
    c.expect(&format!("OK LOGIN {user}"));
    c
}

/// A DM to an online user arrives as `DM <from> <time> <text>`; the sender gets `OK DM <user> delivered`, with the name as registered.
#[test]
fn dm_to_an_online_user_is_delivered() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");

    alice.send("DM BOB olá, bob: tudo bem?");
    alice.expect("OK DM bob delivered");
    bob.expect_timed("DM alice", "olá, bob: tudo bem?");
    assert_eq!(bob.sync(), NOTHING);
}

/// DMs to an offline user are `stored`, arrive right after `OK LOGIN` oldest first, and only once.
#[test]
fn dms_to_an_offline_user_wait_for_the_next_login() {
    let server = TestServer::start();
    register_only(&server, "bob");
    let mut alice = server.user("alice");
    for text in ["primeira", "segunda", "terceira"] {
        alice.send(&format!("DM bob {text}"));
        alice.expect("OK DM bob stored");
    }

    let mut bob = login(&server, "bob");
    let times: Vec<String> = ["primeira", "segunda", "terceira"]
        .iter()
        .map(|text| bob.expect_timed("DM alice", text))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times out of order: {times:?}"
    );
    assert_eq!(bob.sync(), NOTHING);

    // Delivered means gone: the next login brings nothing.
    bob.send("QUIT");
    bob.expect("BYE QUIT Goodbye.");
    bob.expect_closed();
    let mut bob = login(&server, "bob");
    assert_eq!(bob.sync(), NOTHING);
}

/// A stored DM is on disk: it is delivered after a server restart.
#[test]
fn stored_dms_survive_a_restart() {
    let server = TestServer::start();
    register_only(&server, "bob");
    let mut alice = server.user("alice");
    alice.send("DM bob guardei isto para ti");
    alice.expect("OK DM bob stored");
    drop(alice);

    let server = server.restart();
    let mut bob = login(&server, "bob");
    bob.expect_timed("DM alice", "guardei isto para ti");
    assert_eq!(bob.sync(), NOTHING);
}

/// A DM to a user who is not registered is `ERR NO_SUCH_USER`, and nothing is kept for that name.
#[test]
fn dm_to_an_unknown_user_is_refused() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    alice.send("DM ghost olá?");
    let refused = alice.expect_prefix("ERR NO_SUCH_USER ");
    assert!(
        refused.len() > "ERR NO_SUCH_USER ".len(),
        "no text: {refused:?}"
    );

    // Registering the name afterwards finds no message waiting.
    let mut ghost = server.user("ghost");
    assert_eq!(ghost.sync(), NOTHING);
}

/// An unknown user and a name no user could have get the same `NO_SUCH_USER` line, as `protocol::command::NO_SUCH_USER_TEXT` promises.
#[test]

fn unknown_and_invalid_user_names_read_the_same() {
    let server = TestServer::start();
    let mut alice = server.user("alice");
    let expected = format!(
        "ERR NO_SUCH_USER {}",
        chat::protocol::command::NO_SUCH_USER_TEXT
    );
    alice.send("DM g*host olá?");
    alice.expect(&expected);
    alice.send("DM ghost olá?");
    alice.expect(&expected);
}

/// A backlog of stored DMs larger than the outbox is delivered whole, in
/// order, in pieces that fit, and the recipient is not mistaken for a slow
/// consumer.
#[test]
fn a_large_backlog_of_stored_dms_is_not_lost() {
    let server = TestServer::start_with(|c| {
        c.queue_lines = 20;
        c.history = 0;
        c.msg_burst = 1000;
        c.msg_rate = 1000;
    });
    let mut carol = server.user("carol");
    carol.send("QUIT");
    carol.expect("BYE QUIT Goodbye.");
    let mut alice = server.user("alice");
    for i in 0..100 {
        alice.send(&format!("DM carol backlog {i}"));
        alice.expect("OK DM carol stored");
    }
    let mut carol = server.connect();
    carol.send("LOGIN carol pw");
    carol.expect("OK LOGIN carol");
    for i in 0..100 {
        match carol.parsed() {
            ServerLine::Dm { from, text, .. } => {
                assert_eq!((from.as_str(), text), ("alice", format!("backlog {i}")));
            }
            other => panic!("expected stored DM {i}, got {other}"),
        }
    }
    assert!(carol.sync().is_empty(), "nothing after the backlog");
}
