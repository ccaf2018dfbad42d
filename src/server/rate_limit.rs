//! Rate limits, as pure data structures: every method takes `now`.
//!
//! Two limits from the protocol's table live here:
//!
//! - [`TokenBucket`]: `SAY` and `DM` per connection, bursts of 20, then 10
//!   per second. One bucket per connection, owned by that connection's
//!   thread, so it needs no lock.
//! - [`FailedLogins`]: failed `LOGIN`s per *user name*. Behind a tunnel the
//!   whole class arrives from one address, so keying on the address would let
//!   one student lock everybody out; keying on the name protects each account
//!   from password guessing without that risk. It is shared by all
//!   connections, behind one short `Mutex` in the server state.
//!
//! Taking `now: Instant` as a parameter instead of reading the clock inside
//! makes these testable without sleeping: a test simply passes
//! `start + Duration::from_millis(…)` (ureq's `CurrentTime` idea).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A token bucket: holds up to `burst` tokens, refilled at `rate` per
/// second; each message takes one.
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

/// The window over which failures are counted, and how long a name stays
/// blocked once it has too many.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Above this many tracked names, stale entries are swept on the next
/// failure, so guessing random names cannot grow the map without bound.
const SWEEP_ABOVE: usize = 10_000;

/// Failed logins per user name (the key is the name's case-folded form).
#[derive(Debug)]
pub struct FailedLogins {
    /// Failures allowed in [`LOGIN_WINDOW`] before the name is blocked.
    limit: usize,
    /// Per name: the times of its recent failures and, once blocked, until
    /// when.
    names: HashMap<String, NameRecord>,
}

/// What is remembered about one user name.
#[derive(Debug, Default)]
struct NameRecord {
    /// Times of the failures inside the window, oldest first.
    failures: VecDeque<Instant>,
    /// Set when the limit was reached: `LOGIN` for this name is refused
    /// until then.
    blocked_until: Option<Instant>,
}

impl NameRecord {
    /// True when nothing about this record matters any more at `now`.
    fn is_stale(&self, now: Instant) -> bool {
        let blocked = self.blocked_until.is_some_and(|t| now < t);
        let recent = self
            .failures
            .back()
            .is_some_and(|&t| now.saturating_duration_since(t) < LOGIN_WINDOW);
        !blocked && !recent
    }
}

impl FailedLogins {
    /// `limit` failures per minute per name (the `--login-failures` option).
    pub fn new(limit: u32) -> Self {
        FailedLogins {
            limit: limit.max(1) as usize,
            names: HashMap::new(),
        }
    }

    /// Is `LOGIN` for this name refused right now?
    pub fn is_blocked(&self, key: &str, now: Instant) -> bool {
        self.names
            .get(key)
            .and_then(|r| r.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Records one failed attempt. Returns `true` if this failure blocked
    /// the name (so the caller can log it once).
    pub fn record_failure(&mut self, key: &str, now: Instant) -> bool {
        if self.names.len() > SWEEP_ABOVE {
            self.names.retain(|_, r| !r.is_stale(now));
        }
        let record = self.names.entry(key.to_string()).or_default();
        while record
            .failures
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= LOGIN_WINDOW)
        {
            record.failures.pop_front();
        }
        record.failures.push_back(now);
        if record.failures.len() >= self.limit {
            record.failures.clear();
            record.blocked_until = Some(now + LOGIN_WINDOW);
            return true;
        }
        false
    }

    /// A successful login forgets the name's failures.
    pub fn record_success(&mut self, key: &str) {
        self.names.remove(key);
    }

    /// How many names are tracked (for tests of the sweep).
    pub fn tracked(&self) -> usize {
        self.names.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A full bucket allows exactly `burst` messages at once.
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

    /// The fifth failure in a minute blocks the name for a minute.
    #[test]
    fn five_failures_block_the_name_for_a_minute() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(5);
        for i in 0..4 {
            assert!(!f.record_failure("alice", t0 + ms(i)));
            assert!(!f.is_blocked("alice", t0 + ms(i)));
        }
        assert!(f.record_failure("alice", t0 + ms(4)));
        assert!(f.is_blocked("alice", t0 + ms(5)));
        assert!(!f.is_blocked("bob", t0 + ms(5)), "other names are free");
        assert!(f.is_blocked("alice", t0 + ms(4) + LOGIN_WINDOW - ms(1)));
        assert!(!f.is_blocked("alice", t0 + ms(4) + LOGIN_WINDOW));
    }

    /// Four failures a minute (one every 15 s) never block a limit of five.
    #[test]
    fn old_failures_fall_out_of_the_window() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(5);
        for i in 0..20 {
            let now = t0 + Duration::from_secs(15 * i);
            assert!(!f.record_failure("alice", now), "failure {i}");
        }
    }

    /// A success forgets earlier failures.
    #[test]
    fn success_resets() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(2);
        f.record_failure("alice", t0);
        f.record_success("alice");
        assert!(!f.record_failure("alice", t0));
    }

    /// Random names cannot grow the map without bound once they go stale.
    #[test]
    fn stale_names_are_swept() {
        let t0 = Instant::now();
        let mut f = FailedLogins::new(5);
        for i in 0..=SWEEP_ABOVE {
            f.record_failure(&format!("u{i}"), t0);
        }
        let later = t0 + LOGIN_WINDOW + ms(1);
        f.record_failure("fresh", later);
        assert_eq!(f.tracked(), 1);
    }
}
