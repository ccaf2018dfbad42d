//! The human summary of each scenario: a two-column table on stdout. (The
//! same reports serialize to JSON with `--json`; see the report types.)

use std::fmt::{self, Display, Write};

use super::accounting::Percentiles;
use super::capacity::CapacityReport;
use super::fanout::{Ack, FanoutReport, Shape, Transport};
use super::flood::RegisterFloodReport;
use super::logins::LoginsReport;
use super::proc::ProcSample;
use super::rate_sweep::RateSweepReport;
use super::sweep::SweepReport;

/// How many samples of error text a report keeps.
pub const ERROR_SAMPLES: usize = 10;

/// Errors seen by one worker, or by all of them: how many, and the text of
/// the first few (the report shows those; a thousand copies of one failure
/// would say nothing more).
#[derive(Debug, Default)]
pub struct ErrorLog {
    /// Errors seen.
    pub count: u64,
    /// The first [`ERROR_SAMPLES`] of them.
    pub samples: Vec<String>,
}

impl ErrorLog {
    /// Notes one error.
    pub fn note(&mut self, what: String) {
        self.count += 1;
        if self.samples.len() < ERROR_SAMPLES {
            self.samples.push(what);
        }
    }

    /// Adds another worker's errors to these.
    pub fn absorb(&mut self, other: ErrorLog) {
        self.count += other.count;
        let room = ERROR_SAMPLES.saturating_sub(self.samples.len());
        self.samples.extend(other.samples.into_iter().take(room));
    }
}

/// A table of `label  value` rows, labels padded to one width.
struct Table {
    /// The rows.
    rows: Vec<(String, String)>,
}

impl Table {
    /// An empty table.
    fn new() -> Table {
        Table { rows: Vec::new() }
    }

    /// Adds a row.
    fn row(&mut self, label: &str, value: impl Display) -> &mut Table {
        self.rows.push((label.to_owned(), value.to_string()));
        self
    }

    /// Adds a row if there is a value.
    fn row_if(&mut self, label: &str, value: Option<impl Display>) -> &mut Table {
        if let Some(value) = value {
            self.row(label, value);
        }
        self
    }

    /// Adds a heading row (no value).
    fn heading(&mut self, text: &str) -> &mut Table {
        self.rows.push((format!("-- {text}"), String::new()));
        self
    }

    /// Writes the table, then the error samples indented under it.
    fn write_with_samples(&self, f: &mut fmt::Formatter<'_>, samples: &[String]) -> fmt::Result {
        write!(f, "{self}")?;
        for s in samples {
            writeln!(f, "    {s}")?;
        }
        Ok(())
    }
}

impl Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(0);
        for (label, value) in &self.rows {
            if value.is_empty() {
                writeln!(f, "{label}")?;
            } else {
                writeln!(f, "{label:<width$}  {value}")?;
            }
        }
        Ok(())
    }
}

/// The servers' addresses, for a row shown only when the clients were
/// spread over several (one address is the usual case, said by the
/// command line).
fn servers(addrs: &[std::net::SocketAddr]) -> Option<String> {
    (addrs.len() > 1).then(|| {
        let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        format!("{} (clients spread round robin)", list.join(", "))
    })
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `p50 0.41 / p99 1.20 / p99.9 2.31 / max 4.00 ms (n samples)`.
fn latency(p: &Percentiles) -> String {
    format!(
        "p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3} ms  ({} samples)",
        p.p50_ms,
        p.p99_ms,
        p.p999_ms,
        p.max_ms,
        thousands(p.count as f64)
    )
}

impl Display for FanoutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = Table::new();
        let rate = match self.rate {
            Some(r) => format!("{r} msg/s each"),
            None => format!("flat out, window {}", self.window),
        };
        t.heading(&format!(
            "fanout: {} room(s) x {} members, {} sender(s) per room, {rate}, {} B text",
            self.rooms, self.members, self.senders, self.size
        ))
        .row_if("servers", servers(&self.addrs))
        .row(
            "members joined",
            format!("{} ({} failed)", self.ready, self.setup_failed),
        )
        .row(
            "setup",
            format!("{:.1} s ({} JOIN retries)", self.setup_s, self.join_retries),
        )
        .row(
            "shape",
            format!(
                "{}{}, window freed by {}",
                match self.transport {
                    Transport::Line => "",
                    Transport::Ws => "WebSocket, ",
                },
                match self.shape {
                    Shape::PerLine => "one record and one write per line",
                    Shape::Coalesce => "lines coalesced per event",
                },
                match self.ack {
                    Ack::Next => "the next member's receipt",
                    Ack::Own => "the sender's own echo",
                }
            ),
        )
        .row(
            "in flight / writes",
            format!(
                "at most {} per sender; {} sender writes",
                self.max_in_flight,
                thousands(self.sender_writes as f64)
            ),
        )
        .row("measure window", format!("{:.2} s", self.measure_s))
        .row("deliveries/s", thousands(self.deliveries_per_s))
        .row("sends/s", thousands(self.sends_per_s))
        .row("latency", latency(&self.latency))
        .row(
            "sent / refused",
            format!("{} / {}", thousands(self.sent as f64), self.rejected),
        )
        .row("deliveries expected", thousands(self.expected as f64))
        .row("deliveries received", thousands(self.received as f64))
        .row(
            "lost",
            format!(
                "{} ({} to dropped members)",
                self.lost, self.lost_to_dropped
            ),
        )
        .row("duplicates", self.duplicates)
        .row("out of order", self.out_of_order)
        .row("members dropped", self.dropped)
        .row(
            "drain",
            format!(
                "{:.2} s ({})",
                self.drain_s,
                if self.drain_complete {
                    "complete"
                } else {
                    "timed out"
                }
            ),
        )
        .row("errors", self.errors);
        if let Some(s) = &self.server {
            t.row(
                "server RSS",
                format!("{} -> {} KiB", s.before.rss_kib, s.after.rss_kib),
            )
            .row("server threads", s.after.threads)
            .row(
                "server CPU",
                format!(
                    "{:.2} s in the window ({:.0} % of a core), {:.3} us per delivery",
                    s.cpu_s, s.cpu_percent, s.cpu_us_per_delivery
                ),
            );
        }
        t.write_with_samples(f, &self.error_samples)?;
        for m in self.members_with_loss.iter().take(20) {
            let mut line = format!(
                "    {}: expected {} received {} lost {} dup {} ooo {}",
                m.member, m.expected, m.received, m.lost, m.duplicates, m.out_of_order
            );
            if let Some(d) = &m.dropped {
                let _ = write!(line, " [{d}]");
            }
            for (sender, ranges) in m.gaps.iter().take(3) {
                let _ = write!(line, " {sender}:{ranges:?}");
            }
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl Display for CapacityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = Table::new();
        t.heading(&format!(
            "capacity: {} connections over {} rooms",
            self.connections, self.rooms
        ))
        .row_if("servers", servers(&self.addrs))
        .row(
            "logged in and joined",
            format!("{} ({} failed)", self.ready, self.setup_failed),
        )
        .row(
            "setup",
            format!("{:.1} s ({} JOIN retries)", self.setup_s, self.join_retries),
        )
        .row("held idle", format!("{:.1} s", self.hold_s))
        .row("dropped", self.dropped)
        .row(
            "alive at the end",
            format!("{} / {}", self.alive, self.ready),
        )
        .row("errors", self.errors);
        if let (Some(b), Some(h)) = (self.server_before, self.server_held) {
            t.row(
                "server RSS",
                format!(
                    "{} -> {} KiB",
                    thousands(b.rss_kib as f64),
                    thousands(h.rss_kib as f64)
                ),
            )
            .row("server threads", format!("{} -> {}", b.threads, h.threads));
        }
        t.row_if(
            "RSS per connection",
            self.rss_per_connection_kib
                .map(|kib| format!("{kib:.1} KiB")),
        )
        .row_if(
            "  of which thread stacks",
            self.stacks_per_connection_kib
                .map(|kib| format!("{kib:.1} KiB")),
        )
        .row_if(
            "threads per connection",
            self.threads_per_connection.map(|th| format!("{th:.2}")),
        );
        t.write_with_samples(f, &self.error_samples)
    }
}

impl Display for LoginsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = Table::new();
        t.heading(&format!(
            "logins: {} connectors, connect + TLS + REGISTER + LOGIN + QUIT",
            self.connectors
        ))
        .row_if("servers", servers(&self.addrs))
        .row("duration", format!("{:.1} s", self.duration_s))
        .row("cycles completed", thousands(self.completed as f64))
        .row("cycles/s", format!("{:.0}", self.per_s))
        .row("errors", self.errors)
        .row("cycle latency", latency(&self.latency))
        .row_if(
            "server CPU per cycle",
            self.server_cpu_ms_per_cycle.map(|ms| format!("{ms:.3} ms")),
        );
        t.write_with_samples(f, &self.error_samples)
    }
}

impl Display for RegisterFloodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut t = Table::new();
        let l = &self.login;
        t.heading(&format!(
            "register-flood: {} connections flooding REGISTER, one client logging in",
            self.attackers
        ))
        .row_if("servers", servers(&self.addrs))
        .row("duration", format!("{:.1} s", self.duration_s))
        .row(
            "REGISTER answered",
            format!(
                "{} ({:.1}/s), {} refused",
                thousands(self.registered as f64),
                self.registered_per_s,
                thousands(self.refused as f64)
            ),
        )
        .row(
            "legitimate LOGIN",
            format!(
                "p50 {:.0}  p95 {:.0}  max {:.0} ms  ({} logins)",
                l.p50_ms, l.p95_ms, l.max_ms, l.count
            ),
        )
        .row("errors", self.errors);
        let rss = |s: Option<ProcSample>| s.map(|s| format!("{} KiB", thousands(s.rss_kib as f64)));
        t.row_if("server RSS before", rss(self.server_before))
            .row_if("server RSS during", rss(self.server_during))
            .row_if(
                "server RSS peak",
                self.server_after
                    .and_then(|s| s.peak_rss_kib)
                    .map(|kib| format!("{} KiB", thousands(kib as f64))),
            )
            .row_if("server RSS after", rss(self.server_after));
        t.write_with_samples(f, &self.error_samples)
    }
}

impl Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sweep: 1 room, {} sender(s), {} s per size",
            self.senders, self.duration_s
        )?;
        writeln!(
            f,
            "{:>8}  {:>12}  {:>9}  {:>9}  {:>9}  {:>6}  {:>7}",
            "members", "deliveries/s", "p50 ms", "p99 ms", "p99.9 ms", "lost", "dropped"
        )?;
        for p in &self.points {
            writeln!(
                f,
                "{:>8}  {:>12}  {:>9.3}  {:>9.3}  {:>9.3}  {:>6}  {:>7}",
                p.members,
                thousands(p.deliveries_per_s),
                p.latency.p50_ms,
                p.latency.p99_ms,
                p.latency.p999_ms,
                p.lost,
                p.dropped
            )?;
        }
        Ok(())
    }
}

impl Display for RateSweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sweep-rate: {} room(s) x {} members, {} sender(s) per room, {} s per rate",
            self.rooms, self.members, self.senders, self.duration_s
        )?;
        writeln!(
            f,
            "{:>8}  {:>12}  {:>11}  {:>9}  {:>9}  {:>9}  {:>7}  {:>6}  {:>7}",
            "msg/s",
            "deliveries/s",
            "us/delivery",
            "CPU %",
            "p50 ms",
            "p99 ms",
            "refused",
            "lost",
            "dropped"
        )?;
        let or_dash = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
        };
        for p in &self.points {
            writeln!(
                f,
                "{:>8}  {:>12}  {:>11}  {:>9}  {:>9.3}  {:>9.3}  {:>7}  {:>6}  {:>7}",
                p.rate,
                thousands(p.deliveries_per_s),
                or_dash(p.cpu_us_per_delivery, 2),
                or_dash(p.cpu_percent, 1),
                p.latency.p50_ms,
                p.latency.p99_ms,
                p.rejected,
                p.lost,
                p.dropped
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Big numbers get thousands separators.
    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(2_234_567.6), "2,234,568");
    }

    /// Counts add up across workers; samples stop at the limit.
    #[test]
    fn error_logs_merge_and_cap() {
        let mut total = ErrorLog::default();
        for worker in 0..3 {
            let mut log = ErrorLog::default();
            for i in 0..7 {
                log.note(format!("w{worker} e{i}"));
            }
            total.absorb(log);
        }
        assert_eq!(total.count, 21);
        assert_eq!(total.samples.len(), ERROR_SAMPLES);
        assert_eq!(total.samples[0], "w0 e0");
        assert_eq!(total.samples[7], "w1 e0");
    }
}
