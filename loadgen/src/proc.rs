//! The server's memory, threads and CPU time, read from `/proc/<pid>` (Linux
//! only) when the load generator is given `--server-pid`; and how much of
//! its memory is thread stacks. Several server nodes (`--server-pid
//! P1,P2`) are added up and reported as one server ([`sample_all`],
//! [`stacks_kib_all`]).

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
    /// The largest resident set size the process has had so far, KiB
    /// (`VmHWM`, its "high water mark"), if the kernel reports it.
    pub peak_rss_kib: Option<u64>,
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

/// One look at each of `pids` (several server nodes, counted as one
/// server), added up: RSS, threads and CPU time; the peak RSS is the sum of
/// each one's own peak, an upper bound of their peak together, and `None`
/// unless every one reports it. `None` if `pids` is empty or any of them
/// cannot be read: a sum missing a node would be wrong, not smaller.
pub fn sample_all(pids: &[u32]) -> Option<ProcSample> {
    total(pids.iter().map(|&pid| sample(pid)))
}

/// The sum of `samples`, `None` if there are none or any is `None`.
fn total(samples: impl IntoIterator<Item = Option<ProcSample>>) -> Option<ProcSample> {
    let mut sum: Option<ProcSample> = None;
    for s in samples {
        let s = s?;
        sum = Some(match sum {
            None => s,
            Some(t) => ProcSample {
                rss_kib: t.rss_kib + s.rss_kib,
                peak_rss_kib: t.peak_rss_kib.zip(s.peak_rss_kib).map(|(a, b)| a + b),
                threads: t.threads + s.threads,
                cpu_s: t.cpu_s + s.cpu_s,
            },
        });
    }
    sum
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
        peak_rss_kib: field("VmHWM:"),
        threads: field("Threads:")?,
        cpu_s: (utime + stime) as f64 / CLK_TCK as f64,
    })
}

/// The resident KiB of the server's thread stacks: the memory mappings
/// that hold the stack pointer of one of its threads. `None` if that
/// cannot be read (not Linux, or no permission: a thread's stack pointer,
/// in `/proc/<pid>/task/<tid>/syscall`, is readable only by who may trace
/// the process, e.g. root).
///
/// Only threads blocked in a system call show their stack pointer; a
/// server at rest has all but a few so (idle readers in `read`, writers
/// in `futex`), and a thread that is running is missed, not miscounted.
pub fn stacks_kib(pid: u32) -> Option<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let maps = parse_smaps(&smaps);
    let mut pointers = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("syscall");
        match std::fs::read_to_string(&path) {
            Ok(text) => pointers.extend(stack_pointer(&text)),
            // A thread that ended meanwhile is simply not counted.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    (!pointers.is_empty()).then(|| resident_kib_holding(&maps, &mut pointers))
}

/// [`stacks_kib`] of each of `pids`, added up; `None` if `pids` is empty
/// or any of them cannot be read.
pub fn stacks_kib_all(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| stacks_kib(pid)).sum()
}

/// One mapping of `/proc/<pid>/smaps`: its address range and resident KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    /// First address.
    start: u64,
    /// One past the last address.
    end: u64,
    /// `Rss:`, KiB.
    rss_kib: u64,
}

/// The mappings of an `smaps` text, in order.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(rss) = line.strip_prefix("Rss:") {
            if let (Some(last), Some(kib)) = (
                maps.last_mut(),
                rss.split_whitespace().next().and_then(|v| v.parse().ok()),
            ) {
                last.rss_kib = kib;
            }
            continue;
        }
        // A mapping's header starts with "start-end " in hex; field lines
        // start with a name and a colon.
        let Some((range, _)) = line.split_once(' ') else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        if let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            maps.push(Mapping {
                start,
                end,
                rss_kib: 0,
            });
        }
    }
    maps
}

/// The stack pointer in a `syscall` file: "nr arg1 … arg6 sp pc" for a
/// thread blocked in a system call; "running" or "-1 sp pc" otherwise.
fn stack_pointer(text: &str) -> Option<u64> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() < 3 || fields[0] == "running" {
        return None;
    }
    let sp = fields[fields.len() - 2].strip_prefix("0x")?;
    u64::from_str_radix(sp, 16).ok()
}

/// The resident KiB of the mappings that hold at least one of `pointers`,
/// each mapping counted once. `maps` must be in address order (as in
/// `smaps`).
fn resident_kib_holding(maps: &[Mapping], pointers: &mut [u64]) -> u64 {
    pointers.sort_unstable();
    let mut total = 0;
    let mut next = 0;
    for map in maps {
        // Skip the pointers below this mapping (they were in none).
        while next < pointers.len() && pointers[next] < map.start {
            next += 1;
        }
        if next < pointers.len() && pointers[next] < map.end {
            total += map.rss_kib;
            while next < pointers.len() && pointers[next] < map.end {
                next += 1;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mappings, their RSS, and stack pointers found in them: each mapping
    /// that holds a pointer counts once, the others not at all.
    #[test]
    fn sums_the_mappings_that_hold_a_stack_pointer() {
        let smaps = "\
7f0000000000-7f0000040000 rw-p 00000000 00:00 0
Size:                256 kB
Rss:                  12 kB
7f0000040000-7f0000041000 ---p 00000000 00:00 0
Rss:                   0 kB
7f0000041000-7f0000081000 rw-p 00000000 00:00 0
Rss:                   8 kB
7f0000100000-7f0000200000 rw-p 00000000 00:00 0 [heap]
Rss:                 900 kB
";
        let maps = parse_smaps(smaps);
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[2].rss_kib, 8);
        let reader = "0 0x3 0x7f00 0x800 0x0 0x0 0x0 0x7f000003e000 0x7f11";
        let writer = "202 0x7f 0x80 0x0 0x0 0x0 0x0 0x7f000007f000 0x7f12";
        let same_stack = "202 0x7f 0x80 0x0 0x0 0x0 0x0 0x7f000007e000 0x7f12";
        let mut sps: Vec<u64> = [reader, writer, same_stack, "running\n"]
            .iter()
            .filter_map(|t| stack_pointer(t))
            .collect();
        assert_eq!(sps.len(), 3);
        assert_eq!(resident_kib_holding(&maps, &mut sps), 12 + 8);
    }

    /// The fields come from where `proc(5)` puts them.
    #[test]
    fn parses_status_and_stat() {
        let status = "Name:\tserver\nVmHWM:\t  234567 kB\nVmRSS:\t  123456 kB\nThreads:\t42\n";
        let stat = "77 (ser ver)) S 1 77 77 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 42 0";
        let s = parse(status, stat).unwrap();
        assert_eq!((s.rss_kib, s.threads), (123_456, 42));
        assert_eq!(s.peak_rss_kib, Some(234_567));
        assert!((s.cpu_s - 3.0).abs() < 1e-9);
    }

    /// Several processes add up as one server; one that cannot be read,
    /// or none at all, gives no sum.
    #[test]
    fn sums_several_processes() {
        let a = ProcSample {
            rss_kib: 100,
            peak_rss_kib: Some(150),
            threads: 3,
            cpu_s: 1.5,
        };
        let b = ProcSample {
            rss_kib: 20,
            peak_rss_kib: Some(30),
            threads: 2,
            cpu_s: 0.25,
        };
        let sum = total([Some(a), Some(b)]).unwrap();
        assert_eq!((sum.rss_kib, sum.threads), (120, 5));
        assert_eq!(sum.peak_rss_kib, Some(180));
        assert!((sum.cpu_s - 1.75).abs() < 1e-9);
        let no_peak = ProcSample {
            peak_rss_kib: None,
            ..b
        };
        assert_eq!(total([Some(a), Some(no_peak)]).unwrap().peak_rss_kib, None);
        assert_eq!(total([Some(a), None]), None);
        assert_eq!(total([]), None);
        assert_eq!(total([Some(a)]), Some(a));
        assert_eq!(sample_all(&[]), None);
        assert_eq!(stacks_kib_all(&[]), None);
    }

    /// This very process can be sampled.
    #[cfg(target_os = "linux")]
    #[test]
    fn samples_itself() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0 && s.threads > 0);
    }
}
