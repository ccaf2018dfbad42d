//! One clock for the whole load generator: nanoseconds since the process
//! started, from the monotonic clock.
//!
//! A message's send time travels in its text and its latency is computed
//! when it comes back, possibly on another worker thread. Both ends are this
//! same process, so one process-wide `Instant` is a shared epoch that never
//! jumps (wall-clock time can, under NTP), and `u64` nanoseconds fit in a
//! line as plain digits.

use std::sync::OnceLock;
use std::time::Instant;

/// The process's epoch, fixed by the first call.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// A run id for user names: base-36 digits from the wall clock and the
/// process id, so that reruns against one database do not collide.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 40);
    // A round of splitmix64, so that runs a few ns apart differ everywhere.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..6)
        .map(|i| digits[((x >> (i * 6)) % 36) as usize] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run ids are six name-safe characters.
    #[test]
    fn run_id_is_name_safe() {
        let id = run_id();
        assert_eq!(id.len(), 6);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
