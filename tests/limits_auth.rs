//! Password hashing under attack (issue 10, items 7 and 8): a `LOGIN` is not
//! queued behind a flood of `REGISTER`s, over TLS against the real server
//! at the real argon2 cost.
//!
//! The check counts, rather than times: how many of the attackers'
//! registrations were answered while one `LOGIN` waited for its answer.
//! With one queue, first come first served, the login waited behind one
//! registration per attacking connection (each keeps one waiting); with
//! logins served first, it waits for the runs already under way and runs
//! beside the next ones: about two per hashing thread, whatever the number
//! of attackers. A count does not depend on how fast the machine is.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use support::{TestClient, TestServer};

/// Held by each test of this file while it runs.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Answers counted across threads, with a wait for a given count.
#[derive(Default)]
struct Counter {
    /// Registrations answered so far.
    count: Mutex<u64>,
    /// Signalled at every one.
    changed: Condvar,
}

impl Counter {
    /// One more.
    fn add(&self) {
        *self.count.lock().unwrap() += 1;
        self.changed.notify_all();
    }

    /// The count now.
    fn get(&self) -> u64 {
        *self.count.lock().unwrap()
    }

    /// Waits until the count reaches `target` (at most 60 s).
    fn wait_for(&self, target: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut count = self.count.lock().unwrap();
        while *count < target {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {count} registrations answered of {target}"
            );
            count = self.changed.wait_timeout(count, left).unwrap().0;
        }
    }
}

/// The server's hashing threads: it runs in this process, so it sees the
/// same cores (the rule of `chat::auth`).
fn hashing_threads() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get()) * chat::auth::MAX_CONCURRENT_PER_CORE
}

/// One attacking connection: `REGISTER` of a fresh name, again as soon as
/// it is answered, until `stop`.
fn attacker(
    server: &TestServer,
    i: usize,
    stop: Arc<AtomicBool>,
    answered: Arc<Counter>,
) -> thread::JoinHandle<()> {
    let mut c = server.connect();
    thread::Builder::new()
        .name(format!("attacker-{i}"))
        .spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                c.send(&format!("REGISTER f{i}_{n} pw"));
                c.expect(&format!("OK REGISTER f{i}_{n}"));
                answered.add();
            }
        })
        .expect("spawn an attacker")
}

/// A `LOGIN` made while many connections keep one `REGISTER` each waiting
/// for the hashing pool (production argon2, the server-wide registration
/// limit out of the way) is answered while only a few registrations are:
/// far fewer than the attackers, each of which had one waiting when the
/// login came. Three logins in a row, each on a new connection.
#[test]
fn a_login_is_not_queued_behind_a_register_flood() {
    let _turn = one_at_a_time();
    let server = TestServer::start_with(|c| {
        c.fast_hash = false;
        c.register_burst = u32::MAX;
        c.register_rate = u32::MAX;
    });
    let mut alice = server.connect();
    alice.send("REGISTER alice pw");
    alice.expect("OK REGISTER alice");

    // Ten attackers per hashing thread: with one queue, a login would
    // wait behind about that many registrations; with logins first,
    // behind about two per thread. Not more than 320 threads of ours.
    let attackers = (10 * hashing_threads()).clamp(40, 320);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Counter::default());
    let flood: Vec<_> = (0..attackers)
        .map(|i| attacker(&server, i, stop.clone(), answered.clone()))
        .collect();

    // Every attacker has had a registration answered: the queue holds
    // one of each, in a steady state.
    let mut target = attackers as u64;
    for round in 0..3 {
        answered.wait_for(target);
        let mut login = TestClient::connect(server.addr);
        login.expect_prefix("HELLO ");
        let before = answered.get();
        login.send("LOGIN alice pw");
        login.expect("OK LOGIN alice");
        let during = answered.get() - before;
        println!("login {round}: {during} registrations answered while it waited");
        assert!(
            during < attackers as u64 / 2,
            "login {round}: {during} registrations were answered while it waited \
             ({attackers} attackers, {} hashing threads)",
            hashing_threads()
        );
        target = answered.get() + attackers as u64 / 2;
    }

    stop.store(true, Ordering::Relaxed);
    for a in flood {
        a.join().expect("an attacker failed");
    }
}

/// This process's resident memory, KiB (`VmRSS`; the server runs in it).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("Linux /proc")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Many password hashes at the production cost leave the server with no
/// more memory than one argon2 buffer (19 MiB) per hashing thread, plus
/// slack for the connections' own: 64 clients registering and logging in
/// at once, 128 argon2 runs. (Before, each run allocated its buffer and
/// the allocator kept the freed ones.)
#[test]
#[cfg(target_os = "linux")]
fn hashing_memory_is_one_buffer_per_hashing_thread() {
    let _turn = one_at_a_time();
    let server = TestServer::start_with(|c| {
        c.fast_hash = false;
        c.register_burst = u32::MAX;
        c.register_rate = u32::MAX;
    });
    let before = rss_kib();
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let addr = server.addr;
            thread::Builder::new()
                .name(format!("client-{i}"))
                .spawn(move || {
                    let mut c = TestClient::connect(addr);
                    c.expect_prefix("HELLO ");
                    c.send(&format!("REGISTER m{i} pw"));
                    c.expect(&format!("OK REGISTER m{i}"));
                    c.send(&format!("LOGIN m{i} pw"));
                    c.expect(&format!("OK LOGIN m{i}"));
                })
                .expect("spawn a client")
        })
        .collect();
    for c in clients {
        c.join().expect("a client failed");
    }
    let grown_kib = rss_kib().saturating_sub(before);
    let buffers_kib = hashing_threads() as u64 * 19 * 1024;
    println!("RSS grew by {grown_kib} KiB; the hashing buffers are {buffers_kib} KiB");
    assert!(
        grown_kib < buffers_kib + 48 * 1024,
        "RSS grew by {grown_kib} KiB after 128 hashes ({buffers_kib} KiB of hashing buffers)"
    );
}
