//! Rate limits, as data structures that never read the clock: every method
//! takes `now`.
//!
//! - [`TokenBucket`]: a budget that refills at a steady rate. Each
//!   connection owns two, and its own thread is the only one to touch
//!   them, so they need no lock: one for every line it sends
//!   (`--line-burst`, `--line-rate`), one for the commands that reach other
//!   people (`SAY`, `DM`, `JOIN`, `LEAVE`, `CREATE`: `--msg-burst`,
//!   `--msg-rate`).
//! - [`SharedBucket`]: a token bucket behind a short lock, for a budget of
//!   the whole server: registrations (`--register-burst`,
//!   `--register-rate`), which cost a password hash each.
//! - [`AttemptLimit`]: failed attempts per key, for guesses that cost an
//!   argon2 run: `LOGIN` per user name (`--login-failures`), and a private
//!   room's password per user and room (`--room-password-failures`).
//!
//! # Attempts in progress count
//!
//! A limit that is checked before the hash and charged after it can be
//! passed by guessing in parallel: two hundred `LOGIN`s sent at the same
//! instant all find the name unblocked, and all get hashed. So
//! [`AttemptLimit::begin`] admits an attempt only while
//! `failures in the window + attempts in progress < limit`, and hands back
//! an [`Attempt`]: a guard that holds its place until it ends with
//! [`Attempt::failed`] or [`Attempt::succeeded`], or is dropped without a
//! verdict (a database error, say), which just gives the place back. With a
//! limit of 5, at most 5 guesses of one name are ever being hashed or
//! counted, however many arrive together; the others are refused at once,
//! before any hashing.
//!
//! # Keys, never addresses
//!
//! Behind a tunnel the whole class arrives from one address, so a limit
//! keyed on the address would let one student lock everybody out. The
//! attempt limits are keyed on what is being guessed (a user name, or a
//! user and a room), which protects each secret without that risk.
//!
//! Taking `now: Instant` as a parameter instead of reading the clock inside
//! makes these testable without sleeping: a test passes
//! `start + Duration::from_millis(…)`.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::sync;

/// A token bucket: holds up to `burst` tokens, refilled at `rate` per
/// second; each use takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens available now, fractional so that slow refills add up.
    tokens: f64,
    /// The bucket's size: the longest burst allowed.
    burst: f64,
    /// Tokens added per second.
    rate: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, rate: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            rate: f64::from(rate),
            last: now,
        }
    }

    /// Takes one token if there is one. `false` means "rate limited".
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A [`TokenBucket`] shared by every connection, behind a lock held only
/// for the arithmetic.
#[derive(Debug)]
pub struct SharedBucket {
    /// The bucket.
    bucket: Mutex<TokenBucket>,
}

impl SharedBucket {
    /// A full bucket of `burst` tokens, refilled at `rate` per second.
    pub fn new(burst: u32, rate: u32, now: Instant) -> Self {
        SharedBucket {
            bucket: Mutex::new(TokenBucket::new(burst, rate, now)),
        }
    }

    /// Takes one token if there is one. `false` means "rate limited".
    pub fn try_take(&self, now: Instant) -> bool {
        sync::lock(&self.bucket).try_take(now)
    }
}

/// The window over which failures are counted, and how long a key stays
/// blocked once it has too many.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Above this many tracked keys, stale entries are swept on the next
/// attempt, so guessing random names cannot grow the map without bound.
const SWEEP_ABOVE: usize = 10_000;

/// Failed attempts per key, with attempts in progress counted (see the
/// module documentation). Shared by all connections; its lock is held only
/// for a map update, never across the hash.
#[derive(Debug)]
pub struct AttemptLimit<K> {
    /// Failures (plus attempts in progress) allowed in [`FAILURE_WINDOW`].
    limit: usize,
    /// Per key: its recent failures, its attempts in progress, and, once
    /// blocked, until when.
    keys: Mutex<HashMap<K, Record>>,
}

/// What is remembered about one key.
#[derive(Debug, Default)]
struct Record {
    /// Times of the failures inside the window, oldest first.
    failures: VecDeque<Instant>,
    /// Attempts admitted and not yet ended.
    in_progress: usize,
    /// Set when the limit was reached: attempts for this key are refused
    /// until then.
    blocked_until: Option<Instant>,
}

impl Record {
    /// Forgets the failures that left the window and a block that is over.
    fn expire(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= FAILURE_WINDOW)
        {
            self.failures.pop_front();
        }
        if self.blocked_until.is_some_and(|until| now >= until) {
            self.blocked_until = None;
        }
    }

    /// True when nothing about this record matters any more at `now`.
    fn is_stale(&mut self, now: Instant) -> bool {
        self.expire(now);
        self.in_progress == 0 && self.failures.is_empty() && self.blocked_until.is_none()
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A wrong guess: counted.
    Failed,
    /// The right secret: the key's failures are forgotten.
    Succeeded,
    /// No verdict (the attempt could not be checked): not counted.
    Released,
}

impl<K: Hash + Eq + Clone> AttemptLimit<K> {
    /// `limit` failures per minute per key (at least 1).
    pub fn new(limit: u32) -> Self {
        AttemptLimit {
            limit: limit.max(1) as usize,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one attempt for `key`, or refuses it (`None`: answer
    /// `RATE_LIMITED` without checking anything). Admitted while the key is
    /// not blocked and its failures in the window plus its attempts in
    /// progress are under the limit.
    pub fn begin(&self, key: K, now: Instant) -> Option<Attempt<'_, K>> {
        let mut keys = sync::lock(&self.keys);
        if keys.len() > SWEEP_ABOVE {
            keys.retain(|_, r| !r.is_stale(now));
        }
        let record = keys.entry(key.clone()).or_default();
        record.expire(now);
        if record.blocked_until.is_some()
            || record.failures.len() + record.in_progress >= self.limit
        {
            return None;
        }
        record.in_progress += 1;
        Some(Attempt {
            limit: self,
            key,
            ended: false,
        })
    }

    /// Ends one attempt of `key`. Returns `true` if this failure blocked
    /// the key (so that the caller can log it once).
    fn end(&self, key: &K, outcome: Outcome, now: Instant) -> bool {
        let mut keys = sync::lock(&self.keys);
        let Some(record) = keys.get_mut(key) else {
            return false; // cannot happen: a record in progress is never swept
        };
        record.in_progress = record.in_progress.saturating_sub(1);
        record.expire(now);
        let mut blocked = false;
        match outcome {
            Outcome::Failed => {
                record.failures.push_back(now);
                if record.failures.len() >= self.limit {
                    record.failures.clear();
                    record.blocked_until = Some(now + FAILURE_WINDOW);
                    blocked = true;
                }
            }
            // (No block can be set while a success is in progress: it
            // holds one of the places a block needs.)
            Outcome::Succeeded => record.failures.clear(),
            Outcome::Released => {}
        }
        if record.is_stale(now) {
            keys.remove(key);
        }
        blocked
    }

    /// How many keys are tracked (for tests of the sweep).
    pub fn tracked(&self) -> usize {
        sync::lock(&self.keys).len()
    }
}

/// One admitted attempt: it holds its place in the limit until it ends.
/// Dropping it without a verdict gives the place back uncounted.
#[derive(Debug)]
#[must_use = "an attempt holds its place until it ends"]
pub struct Attempt<'a, K: Hash + Eq + Clone> {
    /// The limit that admitted it.
    limit: &'a AttemptLimit<K>,
    /// What is being guessed.
    key: K,
    /// Set once a verdict was recorded, so that `Drop` does nothing.
    ended: bool,
}

impl<K: Hash + Eq + Clone> Attempt<'_, K> {
    /// The guess was wrong: it counts. Returns `true` if this failure
    /// blocked the key.
    pub fn failed(mut self, now: Instant) -> bool {
        self.ended = true;
        self.limit.end(&self.key, Outcome::Failed, now)
    }

    /// The guess was right: the key's failures are forgotten.
    pub fn succeeded(mut self, now: Instant) {
        self.ended = true;
        self.limit.end(&self.key, Outcome::Succeeded, now);
    }
}

impl<K: Hash + Eq + Clone> Drop for Attempt<'_, K> {
    fn drop(&mut self) {
        if !self.ended {
            self.limit.end(&self.key, Outcome::Released, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A full bucket allows exactly `burst` uses at once.
    #[test]
    fn bucket_allows_the_burst_then_refuses() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 10, t0);
        for i in 0..20 {
            assert!(b.try_take(t0), "message {i} of the burst");
        }
        assert!(!b.try_take(t0));
    }

    /// After the burst, tokens come back at `rate` per second.
    #[test]
    fn bucket_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 10, t0);
        while b.try_take(t0) {}
        assert!(!b.try_take(t0 + ms(50)), "half a token is not a token");
        assert!(b.try_take(t0 + ms(100)), "one token after 100 ms");
        assert!(!b.try_take(t0 + ms(100)));
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        let taken = (0..100).take_while(|_| b.try_take(later)).count();
        assert_eq!(taken, 20);
    }

    /// The shared bucket is the same arithmetic behind a lock.
    #[test]
    fn shared_bucket_is_one_budget() {
        let t0 = Instant::now();
        let b = SharedBucket::new(3, 1, t0);
        assert_eq!((0..10).filter(|_| b.try_take(t0)).count(), 3);
        assert!(b.try_take(t0 + Duration::from_secs(1)));
        assert!(!b.try_take(t0 + Duration::from_secs(1)));
    }

    /// The fifth failure in a minute blocks the key for a minute.
    #[test]
    fn five_failures_block_the_key_for_a_minute() {
        let t0 = Instant::now();
        let f = AttemptLimit::new(5);
        for i in 0..4 {
            let a = f.begin("alice", t0 + ms(i)).expect("admitted");
            assert!(!a.failed(t0 + ms(i)));
        }
        let a = f.begin("alice", t0 + ms(4)).expect("the fifth is admitted");
        assert!(a.failed(t0 + ms(4)), "the fifth failure blocks");
        assert!(f.begin("alice", t0 + ms(5)).is_none());
        assert!(f.begin("bob", t0 + ms(5)).is_some(), "other keys are free");
        let end = t0 + ms(4) + FAILURE_WINDOW;
        assert!(f.begin("alice", end - ms(1)).is_none());
        assert!(f.begin("alice", end).is_some());
    }

    /// Attempts in progress count: with a limit of 5, the sixth of six
    /// simultaneous attempts is refused before any of them has a verdict,
    /// and a verdict-less end gives its place back.
    #[test]
    fn attempts_in_progress_count() {
        let t0 = Instant::now();
        let f = AttemptLimit::new(5);
        let mut open: Vec<_> = (0..5)
            .map(|_| f.begin("alice", t0).expect("admitted"))
            .collect();
        assert!(f.begin("alice", t0).is_none(), "five in progress");
        drop(open.pop()); // no verdict: released, not counted
        let again = f.begin("alice", t0).expect("a released place is free");
        assert!(f.begin("alice", t0).is_none());
        open.push(again);
        // All five fail: blocked, and still nothing more is admitted.
        let blocked = open.into_iter().map(|a| a.failed(t0)).filter(|&b| b);
        assert_eq!(blocked.count(), 1, "the limit is reached once");
        assert!(f.begin("alice", t0 + ms(1)).is_none());
    }

    /// A failure counts against what is in progress: 3 failures leave 2
    /// places, whatever is sent at once.
    #[test]
    fn failures_and_attempts_in_progress_add_up() {
        let t0 = Instant::now();
        let f = AttemptLimit::new(5);
        for _ in 0..3 {
            let _ = f.begin("room", t0).expect("admitted").failed(t0);
        }
        let admitted: Vec<_> = (0..10).filter_map(|_| f.begin("room", t0)).collect();
        assert_eq!(admitted.len(), 2);
    }

    /// Four failures a minute (one every 15 s) never block a limit of five.
    #[test]
    fn old_failures_fall_out_of_the_window() {
        let t0 = Instant::now();
        let f = AttemptLimit::new(5);
        for i in 0..20 {
            let now = t0 + Duration::from_secs(15 * i);
            let a = f
                .begin("alice", now)
                .unwrap_or_else(|| panic!("attempt {i}"));
            assert!(!a.failed(now), "failure {i}");
        }
    }

    /// A success forgets earlier failures.
    #[test]
    fn success_forgets_failures() {
        let t0 = Instant::now();
        let f = AttemptLimit::new(2);
        let _ = f.begin("alice", t0).expect("admitted").failed(t0);
        f.begin("alice", t0).expect("admitted").succeeded(t0);
        let a = f.begin("alice", t0).expect("failures forgotten");
        let b = f.begin("alice", t0).expect("two places again");
        assert!(!a.failed(t0));
        assert!(b.failed(t0), "two failures block");
    }

    /// Ended attempts leave nothing behind; random keys cannot grow the
    /// map without bound once they go stale.
    #[test]
    fn stale_keys_are_swept() {
        let t0 = Instant::now();
        let f = AttemptLimit::new(5);
        f.begin("ok".to_string(), t0)
            .expect("admitted")
            .succeeded(t0);
        drop(f.begin("gone".to_string(), t0));
        assert_eq!(f.tracked(), 0, "nothing to remember");
        for i in 0..=SWEEP_ABOVE {
            let _ = f.begin(format!("u{i}"), t0).expect("admitted").failed(t0);
        }
        let held = f.begin("held".to_string(), t0).expect("admitted");
        let later = t0 + FAILURE_WINDOW + ms(1);
        let _ = f
            .begin("fresh".to_string(), later)
            .expect("admitted")
            .failed(later);
        assert_eq!(f.tracked(), 2, "the one in progress and the fresh one");
        held.succeeded(later);
        assert_eq!(f.tracked(), 1);
    }

    /// Keys can be pairs: a user guessing one room's password does not
    /// block another user, or another room.
    #[test]
    fn pair_keys_are_independent() {
        let t0 = Instant::now();
        let f = AttemptLimit::new(1);
        let key = |u: &str, r: &str| (u.to_string(), r.to_string());
        assert!(f.begin(key("eve", "vip"), t0).expect("admitted").failed(t0));
        assert!(f.begin(key("eve", "vip"), t0).is_none());
        assert!(f.begin(key("bob", "vip"), t0).is_some());
        assert!(f.begin(key("eve", "lab"), t0).is_some());
    }
}
