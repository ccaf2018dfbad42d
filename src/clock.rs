//! The server's clock: what time it is for message times and for deciding
//! whether a ban or a suspension has ended.
//!
//! It is the system clock plus an offset that is zero in a real server.
//! Tests move it forward ([`Clock::advance`]) to see an hour-long ban end
//! without waiting an hour. Expiry needs no timer: a ban or a suspension
//! stores when it ends, and whoever asks (`JOIN`, `LOGIN`, `BANS`) compares
//! that with [`Clock::now`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::protocol::Timestamp;

/// A cheap, cloneable handle on one clock; clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Milliseconds added to the system clock.
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock, as a real server uses it.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Milliseconds since the Unix epoch, now.
    pub fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp(ms.saturating_add(self.offset_ms.load(Ordering::Relaxed)))
    }

    /// Moves this clock (and every clone of it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clones share the offset, and advancing moves `now` by at least that.
    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(3600));
        let after = other.now();
        assert!(after.0 - before.0 >= 3_600_000, "{before:?} {after:?}");
        assert!(after.0 - before.0 < 3_700_000, "{before:?} {after:?}");
    }
}
