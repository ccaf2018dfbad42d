//! The limits on a connection's early life and on silence (protocol 1.1):
//! a handshake ends at its deadline however its bytes trickle in
//! (`--handshake-timeout`), handshakes beyond `--max-handshakes` wait in
//! the listen queue, connections beyond `--max-unauthenticated` are told
//! `BYE TOO_MANY_CONNECTIONS`, and a logged-in client that sends no line
//! for `--idle-timeout` is told `BYE IDLE`.
//!
//! Every test runs a real server on 127.0.0.1 and talks real TLS (or, for
//! the attackers, raw TCP) to it.

mod support;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{mpsc, PoisonError, RwLock, RwLockReadGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use support::{client_tls, connection_thread_names, TestClient, TestServer, WAIT};

/// The test that counts this process's connection threads takes this for
/// writing; every other test takes it for reading, so that their servers'
/// threads are not in its census.
static CENSUS: RwLock<()> = RwLock::new(());

/// Runs beside the other tests of this file, but never beside the census.
fn shared() -> RwLockReadGuard<'static, ()> {
    CENSUS.read().unwrap_or_else(PoisonError::into_inner)
}

/// The bytes of a real TLS ClientHello, as rustls's client sends it.
fn client_hello() -> Vec<u8> {
    let name = "localhost".try_into().expect("server name");
    let mut conn = ClientConnection::new(client_tls(), name).expect("client connection");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("write into a Vec");
    }
    assert!(hello.len() > 100, "a ClientHello of {} bytes", hello.len());
    hello
}

/// Connects a TLS client on its own thread and sends its first line (or
/// nothing, if the connection fails) on the returned channel. The client
/// waits at most [`WAIT`] for it.
fn hello_in_background(addr: SocketAddr) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("test-waiting-client".into())
        .spawn(move || {
            let mut client = TestClient::connect(addr);
            if let Ok(Some(line)) = client.try_line() {
                let _ = tx.send(line);
            }
        })
        .expect("spawn a client thread");
    rx
}

/// A ClientHello sent one byte every 100 ms is cut off at the handshake
/// deadline (1 s here), not when the bytes stop: the server closes the
/// socket long before the dribble would have finished. Meanwhile a normal
/// client connects and is served.
#[test]
fn a_dribbled_client_hello_is_closed_at_the_handshake_deadline() {
    let _census = shared();
    const DRIBBLE: Duration = Duration::from_secs(6);
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_secs(1));
    let hello = client_hello();
    let mut raw = TcpStream::connect(server.addr).expect("connect");
    // The pause between two bytes is this read's timeout: a read that
    // returns instead means the server closed the socket.
    raw.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let start = Instant::now();
    let mut sent = 0;
    let mut closed_after = None;
    let mut buf = [0u8; 1024];
    while start.elapsed() < DRIBBLE && sent < hello.len() {
        if raw.write_all(&hello[sent..=sent]).is_err() {
            closed_after = Some(start.elapsed());
            break;
        }
        sent += 1;
        if sent == 3 {
            let mut normal = server.connect();
            normal.send("PING meanwhile");
            normal.expect("PONG meanwhile");
        }
        match raw.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(n) => {
                assert_eq!(n, 0, "the server sent {n} bytes to half a ClientHello");
                closed_after = Some(start.elapsed());
                break;
            }
            Err(_) => {
                closed_after = Some(start.elapsed());
                break;
            }
        }
    }
    let closed_after = closed_after.unwrap_or_else(|| {
        panic!(
            "still open after {DRIBBLE:?} of dribbling ({sent} of {} bytes)",
            hello.len()
        )
    });
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}, with a 1 s handshake deadline"
    );
}

/// With `max_handshakes` 2 and two silent peers holding both places, a
/// third client's handshake does not even start (it waits in the listen
/// queue); when one silent peer goes away, the waiting client is served at
/// once, long before the handshake deadline would have freed a place.
#[test]
fn handshakes_beyond_the_limit_wait_until_a_place_is_free() {
    let _census = shared();
    let server = TestServer::start_with(|c| {
        c.max_handshakes = 2;
        c.handshake_timeout = Duration::from_secs(30);
    });
    // The listen queue is first in, first out: these two are accepted
    // before the client that follows them.
    let first = TcpStream::connect(server.addr).expect("connect");
    let _second = TcpStream::connect(server.addr).expect("connect");
    let hello = hello_in_background(server.addr);
    match hello.recv_timeout(Duration::from_secs(1)) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        other => panic!("a third handshake ran beside two: {other:?}"),
    }
    let freed = Instant::now();
    drop(first);
    let line = hello
        .recv_timeout(WAIT)
        .expect("the waiting client was served once a place was free");
    assert!(line.starts_with("HELLO 1 "), "first line {line:?}");
    assert!(
        freed.elapsed() < Duration::from_secs(5),
        "served {:?} after a place was freed",
        freed.elapsed()
    );
}

/// A shutdown stops an accept loop that waits for a handshake place: the
/// server stops at once instead of after the handshake deadline of the
/// peer holding the place (30 s here, more than `stop` waits).
#[test]
fn shutdown_stops_an_accept_loop_waiting_for_a_handshake_place() {
    let _census = shared();
    let mut server = TestServer::start_with(|c| {
        c.max_handshakes = 1;
        c.handshake_timeout = Duration::from_secs(30);
    });
    let _holder = TcpStream::connect(server.addr).expect("connect");
    let hello = hello_in_background(server.addr);
    match hello.recv_timeout(Duration::from_millis(500)) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        other => panic!("a second handshake ran beside one: {other:?}"),
    }
    let start = Instant::now();
    server.stop();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        start.elapsed()
    );
    // The waiting client never got a HELLO: its thread ends without one.
    assert!(
        hello.recv_timeout(WAIT).is_err(),
        "a client was greeted after shutdown"
    );
}

/// The connection numbers that have a handshake thread (`conn-N-tls`) now.
#[cfg(target_os = "linux")]
fn handshake_threads() -> BTreeSet<u64> {
    connection_thread_names()
        .iter()
        .filter_map(|name| {
            name.strip_prefix("conn-")?
                .strip_suffix("-tls")?
                .parse()
                .ok()
        })
        .collect()
}

/// 50 silent peers with `max_handshakes` 2 cost the server two handshake
/// threads at a time, not 50: the others wait in the listen queue, and are
/// taken two by two as the deadline (1 s) frees the places.
///
/// (Thread names are read from /proc: Linux only.)
#[cfg(target_os = "linux")]
#[test]
fn fifty_silent_peers_cost_at_most_two_handshake_threads() {
    let _census = CENSUS.write().unwrap_or_else(PoisonError::into_inner);
    // No connection thread of an earlier test may be counted.
    let deadline = Instant::now() + WAIT;
    while !connection_thread_names().is_empty() && Instant::now() < deadline {
        thread::yield_now();
    }
    assert_eq!(connection_thread_names(), Vec::<String>::new());

    let server = TestServer::start_with(|c| {
        c.max_handshakes = 2;
        c.handshake_timeout = Duration::from_secs(1);
    });
    let _silent: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    // Watch long enough for the deadline to free the first two places.
    let mut seen = BTreeSet::new();
    let mut most = 0;
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline && seen.len() < 4 {
        let now = handshake_threads();
        most = most.max(now.len());
        seen.extend(now);
        thread::yield_now();
    }
    assert!(
        seen.len() >= 4,
        "places were not given back at the deadline: handshake threads seen {seen:?}"
    );
    // A thread that has given its place back may still be on its way out
    // when its successor starts. Both places are taken at the same instant
    // and time out at the same instant, so on a busy machine both threads
    // may still be on their way out: at most twice the limit, never 50.
    assert!(
        most <= 4,
        "{most} handshake threads at once with max_handshakes 2"
    );
}

/// With `max_unauthenticated` 2, a third connection that has not logged in
/// is told `BYE TOO_MANY_CONNECTIONS` right after its handshake. A `LOGIN`
/// gives its place back before its `OK LOGIN`, and so does a disconnect.
#[test]
fn connections_not_logged_in_beyond_the_limit_are_refused() {
    let _census = shared();
    let server = TestServer::start_with(|c| c.max_unauthenticated = 2);
    let mut first = server.connect();
    let second = server.connect();
    let mut third = TestClient::connect(server.addr);
    third.expect_prefix("BYE TOO_MANY_CONNECTIONS ");
    third.expect_closed();

    // REGISTER is not a login: still two places taken.
    first.send("REGISTER alice pw");
    first.expect("OK REGISTER alice");
    let mut refused = TestClient::connect(server.addr);
    refused.expect_prefix("BYE TOO_MANY_CONNECTIONS ");

    first.send("LOGIN alice pw");
    first.expect("OK LOGIN alice");
    let mut fourth = server.connect();
    fourth.send("PING");
    fourth.expect("PONG");

    // `second` and `fourth` hold both places again; when `second` goes
    // away its place comes back (once its thread has seen it go).
    let mut refused = TestClient::connect(server.addr);
    refused.expect_prefix("BYE TOO_MANY_CONNECTIONS ");
    drop(second);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut next = TestClient::connect(server.addr);
        let line = next.line();
        if line.starts_with("HELLO 1 ") {
            break;
        }
        assert!(line.starts_with("BYE TOO_MANY_CONNECTIONS "), "{line}");
        assert!(
            Instant::now() < deadline,
            "the place of a closed connection was not given back"
        );
    }
}

/// With `idle_timeout` 1 s, a member who says nothing gets `BYE IDLE` and
/// is closed, and the room hears `LEFT … quit`; the other member, who
/// sends a `PING` every 200 ms, stays.
#[test]
fn a_silent_member_gets_bye_idle_and_a_pinging_one_stays() {
    let _census = shared();
    let server = TestServer::start_with(|c| c.idle_timeout = Duration::from_secs(1));
    // Each has a second for their steps here: a few commands each.
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    bob.send("CREATE lobby");
    bob.expect("OK CREATE lobby");
    bob.join("lobby");
    alice.join("lobby");
    bob.expect("JOINED lobby alice");
    let alice_spoke = Instant::now();

    let deadline = Instant::now() + WAIT;
    let mut heard = false;
    let mut pings = 0;
    while !heard {
        assert!(Instant::now() < deadline, "bob never heard alice leave");
        pings += 1;
        bob.send(&format!("PING {pings}"));
        for line in bob.lines_until(|l| l.starts_with("PONG ")) {
            if line == "LEFT lobby alice quit" {
                heard = true;
            } else {
                assert_eq!(line, format!("PONG {pings}"));
            }
        }
        // Bob's pace: five lines a second, well inside his idle timeout.
        thread::sleep(Duration::from_millis(200));
    }
    alice.expect("BYE IDLE You sent nothing for too long.");
    alice.expect_closed();
    assert!(
        alice_spoke.elapsed() >= Duration::from_millis(900),
        "alice was dropped after {:?}",
        alice_spoke.elapsed()
    );
    assert!(pings >= 4, "bob sent only {pings} pings");
    // Bob, silent by now for less than his timeout, is still served.
    assert_eq!(bob.sync(), support::NOTHING);
}

/// A TLS client whose reads can wait a chosen time, for a test that writes
/// and polls in turn.
struct PollingClient {
    /// The TLS stream.
    tls: StreamOwned<ClientConnection, TcpStream>,
    /// Bytes received and not yet returned as a line.
    pending: Vec<u8>,
}

impl PollingClient {
    /// Connects (the handshake happens on first use).
    fn connect(addr: SocketAddr) -> Self {
        let socket = TcpStream::connect(addr).expect("connect");
        socket.set_write_timeout(Some(WAIT)).expect("write timeout");
        let name = "localhost".try_into().expect("server name");
        let conn = ClientConnection::new(client_tls(), name).expect("client connection");
        PollingClient {
            tls: StreamOwned::new(conn, socket),
            pending: Vec::new(),
        }
    }

    /// Sends `bytes`; false if the connection is gone.
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.tls.write_all(bytes).is_ok() && self.tls.flush().is_ok()
    }

    /// The next line if one arrives within `wait`: `Ok(None)` if none did,
    /// `Err(())` if the connection closed first.
    fn line_within(&mut self, wait: Duration) -> Result<Option<String>, ()> {
        let until = Instant::now() + wait;
        loop {
            if let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                return Ok(Some(String::from_utf8_lossy(&line[..end]).into_owned()));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.tls
                .sock
                .set_read_timeout(Some(left))
                .expect("read timeout");
            let mut buf = [0u8; 1024];
            match self.tls.read(&mut buf) {
                Ok(0) => return Err(()),
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(_) => return Err(()),
            }
        }
    }

    /// The next line, within [`WAIT`].
    fn line(&mut self) -> String {
        match self.line_within(WAIT) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("no line within {WAIT:?}"),
            Err(()) => panic!("closed while a line was expected"),
        }
    }
}

/// With `idle_timeout` 1 s, a logged-in client that sends the bytes of a
/// line one by one (every 100 ms) but never its end gets `BYE IDLE` all the
/// same: the timeout counts from the last complete line, not the last byte.
#[test]
fn a_partial_line_dribbled_byte_by_byte_still_gets_bye_idle() {
    let _census = shared();
    const DRIBBLE: Duration = Duration::from_secs(5);
    let server = TestServer::start_with(|c| c.idle_timeout = Duration::from_secs(1));
    let mut carol = PollingClient::connect(server.addr);
    assert!(carol.line().starts_with("HELLO 1 "));
    assert!(carol.send(b"REGISTER carol pw\nLOGIN carol pw\n"));
    assert_eq!(carol.line(), "OK REGISTER carol");
    assert_eq!(carol.line(), "OK LOGIN carol");
    let logged_in = Instant::now();

    let partial = b"SAY this line is sent one byte at a time and never ends";
    let mut bye = None;
    for byte in partial.iter().cycle() {
        assert!(
            logged_in.elapsed() < DRIBBLE,
            "still served after {DRIBBLE:?} of a dribbled partial line"
        );
        if !carol.send(&[*byte]) {
            break; // closed: the BYE, if any, was read below
        }
        match carol.line_within(Duration::from_millis(100)) {
            Ok(None) => {}
            Ok(Some(line)) => {
                bye = Some((line, logged_in.elapsed()));
                break;
            }
            Err(()) => break,
        }
    }
    let (line, after) = bye.expect("closed without a BYE");
    assert_eq!(line, "BYE IDLE You sent nothing for too long.");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "BYE IDLE after {after:?}, with a 1 s idle timeout"
    );
    assert!(
        carol.line_within(WAIT).is_err(),
        "still open after BYE IDLE"
    );
}
