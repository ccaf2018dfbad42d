//! The server's memory, threads and CPU time, read from `/proc/<pid>` (Linux
//! only) when the load generator is given `--server-pid`.

use serde::Serialize;

/// Clock ticks per second of `utime`/`stime` in `/proc/<pid>/stat`. It is
/// `USER_HZ`, 100 on every Linux architecture in practice; reading it
/// properly (`sysconf(_SC_CLK_TCK)`) would need `unsafe` or another crate.
const CLK_TCK: u64 = 100;

/// One look at a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ProcSample {
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kib: u64,
    /// Threads (`Threads`).
    pub threads: u64,
    /// User + system CPU time so far, seconds.
    pub cpu_s: f64,
}

/// Reads `/proc/<pid>/status` and `/proc/<pid>/stat`; `None` if the
/// process does not exist (or this is not Linux).
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse(&status, &stat)
}

/// The pure part of [`sample`].
fn parse(status: &str, stat: &str) -> Option<ProcSample> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    // The command name (field 2) may contain spaces and parentheses: count
    // fields from the last ')'. utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(ProcSample {
        rss_kib: field("VmRSS:")?,
        threads: field("Threads:")?,
        cpu_s: (utime + stime) as f64 / CLK_TCK as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields come from where `proc(5)` puts them.
    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tserver\nVmRSS:\t  123456 kB\nThreads:\t42\n";
        let stat = "77 (ser ver)) S 1 77 77 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 42 0";
        let s = parse(status, stat).unwrap();
        assert_eq!((s.rss_kib, s.threads), (123_456, 42));
        assert!((s.cpu_s - 3.0).abs() < 1e-9);
    }

    /// This very process can be sampled.
    #[cfg(target_os = "linux")]
    #[test]
    fn samples_itself() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0 && s.threads > 0);
    }
}
