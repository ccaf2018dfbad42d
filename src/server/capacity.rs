//! How many clients this machine lets the server hold, and why.
//!
//! A thread-per-client server runs into the operating system's limits long
//! before it runs out of memory. Per client we use:
//!
//! - **2 threads** (reader and writer), each counting against
//!   `kernel.pid_max` and `kernel.threads-max`, plus a third while the
//!   TLS handshake runs (short-lived, so only the handshakes in progress
//!   count; [`RESERVE`] leaves room for them, and a session thread that
//!   still cannot start gets the client `BYE TOO_MANY_CONNECTIONS`);
//! - **4 memory maps per thread** (its stack, the stack's guard page, and
//!   Rust's small signal stack with its own guard page), counting against
//!   `vm.max_map_count` (65,530 by default: about 8,000 clients);
//! - **1 file descriptor** (the socket, shared by both threads), counting
//!   against the open-file limit (`ulimit -n`).
//!
//! At start the server raises its open-file limit to the hard limit, reads
//! the others, and caps `--max-connections` to what they allow, so that a
//! client past the limit is told `BYE TOO_MANY_CONNECTIONS` instead of the
//! server failing to start a thread. The arithmetic is a pure function,
//! [`estimate`], so it is tested without touching the real limits.

/// Threads the server runs per client.
pub const THREADS_PER_CLIENT: u64 = 2;

/// Memory maps per thread (measured on Linux: stack, its guard page, the
/// signal stack Rust sets up for overflow reports, and its guard page).
pub const MAPS_PER_THREAD: u64 = 4;

/// Descriptors, maps and threads kept for everything that is not a client:
/// the listener, the database and its WAL, the accept and DB threads, the
/// libraries' own maps, and the connections being refused.
pub const RESERVE: u64 = 256;

/// The operating system limits that bound the number of clients. `None`
/// means "unknown or unlimited on this system".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Open files (the soft `RLIMIT_NOFILE`, after raising it).
    pub open_files: Option<u64>,
    /// `vm.max_map_count`.
    pub max_map_count: Option<u64>,
    /// `kernel.pid_max` (each thread takes an id).
    pub pid_max: Option<u64>,
    /// `kernel.threads-max`.
    pub threads_max: Option<u64>,
}

/// Which limit binds first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The open-file limit.
    OpenFiles,
    /// `vm.max_map_count`.
    MaxMapCount,
    /// `kernel.pid_max`.
    PidMax,
    /// `kernel.threads-max`.
    ThreadsMax,
}

impl Bound {
    /// The name a user would look up or raise.
    pub fn name(self) -> &'static str {
        match self {
            Bound::OpenFiles => "the open-file limit (ulimit -n)",
            Bound::MaxMapCount => "vm.max_map_count",
            Bound::PidMax => "kernel.pid_max",
            Bound::ThreadsMax => "kernel.threads-max",
        }
    }
}

/// Clients the limits allow, and the limit that binds; `None` when no limit
/// is known.
pub fn estimate(limits: &Limits) -> Option<(u64, Bound)> {
    let per = |total: Option<u64>, cost: u64, bound: Bound| {
        total.map(|t| (t.saturating_sub(RESERVE) / cost, bound))
    };
    [
        per(limits.open_files, 1, Bound::OpenFiles),
        per(
            limits.max_map_count,
            THREADS_PER_CLIENT * MAPS_PER_THREAD,
            Bound::MaxMapCount,
        ),
        per(limits.pid_max, THREADS_PER_CLIENT, Bound::PidMax),
        per(limits.threads_max, THREADS_PER_CLIENT, Bound::ThreadsMax),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(clients, _)| *clients)
}

/// Raises the open-file limit to the hard limit and reads the others.
pub fn read_limits() -> Limits {
    let open_files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            log::warn!("cannot raise the open-file limit: {e}");
            None
        }
    };
    Limits {
        open_files,
        max_map_count: read_proc("/proc/sys/vm/max_map_count"),
        pid_max: read_proc("/proc/sys/kernel/pid_max"),
        threads_max: read_proc("/proc/sys/kernel/threads-max"),
    }
}

/// Reads one number from a `/proc` file (Linux only; elsewhere `None`).
fn read_proc(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At Linux's default limits, memory maps bind first, near 8,000.
    #[test]
    fn default_linux_limits_are_bound_by_maps() {
        let limits = Limits {
            open_files: Some(20_000),
            max_map_count: Some(65_530),
            pid_max: Some(32_768),
            threads_max: Some(190_000),
        };
        assert_eq!(
            estimate(&limits),
            Some((((65_530 - RESERVE) / 8), Bound::MaxMapCount))
        );
    }

    /// A low `ulimit -n` binds before anything else.
    #[test]
    fn a_small_open_file_limit_binds() {
        let limits = Limits {
            open_files: Some(1024),
            max_map_count: Some(65_530),
            ..Limits::default()
        };
        assert_eq!(estimate(&limits), Some((1024 - RESERVE, Bound::OpenFiles)));
    }

    /// With nothing known, there is no estimate.
    #[test]
    fn unknown_limits_give_no_estimate() {
        assert_eq!(estimate(&Limits::default()), None);
    }
}
