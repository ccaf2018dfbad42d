//! The load generator's bookkeeping, as pure code: no sockets, no clock.
//!
//! Every `SAY` a sender makes carries a sequence number (1, 2, 3, …) and
//! the time it was sent:
//!
//! ```text
//! SAY <seq> <send_time_ns> <padding>
//! ```
//!
//! Every member of the room (the sender included) keeps one [`SeqTracker`]
//! per sender. The server promises one total order per room, so a member
//! should see each sender's numbers exactly once and in increasing order.
//! Whatever else happens is counted, never hidden:
//!
//! - a number that jumps ahead opens a **gap**: the skipped numbers are
//!   remembered as missing (lost unless they turn up later);
//! - a missing number that turns up later is **out of order** (and no
//!   longer lost);
//! - a number seen before is a **duplicate**.
//!
//! At the end, what a member lost from a sender is what the sender had
//! accepted by the server minus what the member received
//! ([`SeqTracker::lost`]): a line the server dropped is counted as lost even
//! when it was the last one, which no gap can reveal.
//!
//! Latency is kept in an HDR histogram ([`Latency`]): fixed memory, three
//! significant digits at any scale, and histograms of different threads
//! merge exactly, which a sorted vector of samples cannot do in bounded
//! memory at millions of samples per second.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// One `MSG` line, borrowed from the receive buffer.
///
/// The load generator's hot path reads millions of these per second, so it
/// does not allocate: [`ServerLine::parse`](chat::protocol::ServerLine::parse)
/// (which owns its strings) is used for every other line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgLine<'a> {
    /// The room.
    pub room: &'a str,
    /// The server's time stamp, unparsed (latency uses the send time in the
    /// text instead, from the load generator's own clock).
    pub time: &'a str,
    /// The sender's name, as registered.
    pub user: &'a str,
    /// The message text.
    pub text: &'a str,
}

impl<'a> MsgLine<'a> {
    /// Splits `MSG <room> <time> <user> <text>`; `None` for any other line.
    ///
    /// # Wire format
    ///
    /// ```text
    /// MSG <room> <time> <user> <text>
    /// ```
    pub fn parse(line: &'a str) -> Option<MsgLine<'a>> {
        let rest = line.strip_prefix("MSG ")?;
        let mut words = rest.splitn(4, ' ');
        let room = words.next().filter(|w| !w.is_empty())?;
        let time = words.next().filter(|w| !w.is_empty())?;
        let user = words.next().filter(|w| !w.is_empty())?;
        let text = words.next().unwrap_or("");
        Some(MsgLine {
            room,
            time,
            user,
            text,
        })
    }
}

/// The numbers a load-generator message carries in its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sender's sequence number, from 1.
    pub seq: u64,
    /// When it was sent, in nanoseconds on the load generator's clock.
    pub sent_ns: u64,
}

impl Stamp {
    /// Writes the text of a `SAY`: `<seq> <sent_ns> <padding>`, where the
    /// padding makes the text at least `size` bytes long (at least one
    /// `x`, so the text always has three words).
    ///
    /// # Wire format
    ///
    /// ```text
    /// <seq> <send_time_ns> xxxx…
    /// ```
    pub fn write_text(&self, size: usize, out: &mut String) {
        use std::fmt::Write;
        let start = out.len();
        let _ = write!(out, "{} {} ", self.seq, self.sent_ns);
        let pad = size.saturating_sub(out.len() - start).max(1);
        out.extend(std::iter::repeat_n('x', pad));
    }

    /// Reads the numbers back from a message text; `None` if it is not one
    /// of ours.
    pub fn parse(text: &str) -> Option<Stamp> {
        let mut words = text.splitn(3, ' ');
        let seq = words.next()?.parse().ok()?;
        let sent_ns = words.next()?.parse().ok()?;
        Some(Stamp { seq, sent_ns })
    }
}

/// How one member saw one sender's sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqTracker {
    /// The next number expected (1 before anything arrives).
    next: u64,
    /// Distinct numbers received.
    pub received: u64,
    /// Numbers received a second time (or more).
    pub duplicates: u64,
    /// Numbers that arrived after a later one: late, but not lost.
    pub out_of_order: u64,
    /// How many times the sequence jumped ahead.
    pub gaps: u64,
    /// Numbers skipped by a jump and not (yet) received, as `[from, to)`
    /// ranges in increasing order. Empty in a healthy run, so it costs
    /// nothing on the hot path.
    missing: Vec<(u64, u64)>,
}

/// What [`SeqTracker::record`] made of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The next number, as expected.
    InOrder,
    /// A number past the next one: the ones in between are missing.
    Gap {
        /// How many numbers were skipped.
        skipped: u64,
    },
    /// A number that had been skipped, arriving late.
    OutOfOrder,
    /// A number already received.
    Duplicate,
}

impl SeqTracker {
    /// A tracker that expects 1 first.
    pub fn new() -> Self {
        SeqTracker {
            next: 1,
            ..SeqTracker::default()
        }
    }

    /// Records that `seq` arrived.
    pub fn record(&mut self, seq: u64) -> Seen {
        if seq == self.next {
            self.next += 1;
            self.received += 1;
            Seen::InOrder
        } else if seq > self.next {
            let skipped = seq - self.next;
            self.missing.push((self.next, seq));
            self.next = seq + 1;
            self.received += 1;
            self.gaps += 1;
            Seen::Gap { skipped }
        } else if self.take_missing(seq) {
            self.received += 1;
            self.out_of_order += 1;
            Seen::OutOfOrder
        } else {
            self.duplicates += 1;
            Seen::Duplicate
        }
    }

    /// Removes `seq` from the missing ranges; false if it was not missing.
    fn take_missing(&mut self, seq: u64) -> bool {
        let Some(i) = self.missing.iter().position(|&(a, b)| a <= seq && seq < b) else {
            return false;
        };
        let (a, b) = self.missing[i];
        match (seq == a, seq + 1 == b) {
            (true, true) => {
                self.missing.remove(i);
            }
            (true, false) => self.missing[i].0 = seq + 1,
            (false, true) => self.missing[i].1 = seq,
            (false, false) => {
                self.missing[i].1 = seq;
                self.missing.insert(i + 1, (seq + 1, b));
            }
        }
        true
    }

    /// The highest number received so far (0 before any).
    pub fn last(&self) -> u64 {
        self.next - 1
    }

    /// What was lost, given how many messages the sender had accepted by
    /// the server (numbers 1 to `accepted`): everything not received,
    /// whether inside a gap or after the last number that arrived.
    pub fn lost(&self, accepted: u64) -> u64 {
        accepted.saturating_sub(self.received)
    }

    /// The missing numbers up to `accepted`, as inclusive ranges, for the
    /// report: the gaps still open, and the tail the member never got.
    pub fn missing_ranges(&self, accepted: u64) -> Vec<(u64, u64)> {
        let mut ranges: Vec<(u64, u64)> = self
            .missing
            .iter()
            .filter(|&&(a, _)| a <= accepted)
            .map(|&(a, b)| (a, (b - 1).min(accepted)))
            .collect();
        if self.next <= accepted {
            ranges.push((self.next, accepted));
        }
        ranges
    }
}

/// Latency samples in nanoseconds, with the percentiles the report shows.
#[derive(Debug, Clone)]
pub struct Latency {
    /// From 1 ns to 100 s at three significant digits (about 30 KiB).
    hist: Histogram<u64>,
}

/// Percentiles of a [`Latency`], in milliseconds, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest sample, ms.
    pub max_ms: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// Longest latency kept exactly; longer ones are recorded as this.
    const MAX_NS: u64 = 100_000_000_000;

    /// An empty histogram.
    pub fn new() -> Self {
        Latency {
            hist: Histogram::new_with_bounds(1, Self::MAX_NS, 3)
                .expect("constant bounds are valid"),
        }
    }

    /// Adds one sample (0 is recorded as 1 ns; anything over 100 s as 100 s).
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, Self::MAX_NS));
    }

    /// Adds every sample of `other` (another thread's histogram).
    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so this cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The value below which `q` (0–100) percent of the samples fall, ns.
    pub fn percentile_ns(&self, q: f64) -> u64 {
        self.hist.value_at_percentile(q)
    }

    /// p50, p99, p99.9 and max, in milliseconds.
    pub fn percentiles(&self) -> Percentiles {
        let ms = |ns: u64| ns as f64 / 1e6;
        Percentiles {
            count: self.count(),
            p50_ms: ms(self.percentile_ns(50.0)),
            p99_ms: ms(self.percentile_ns(99.0)),
            p999_ms: ms(self.percentile_ns(99.9)),
            max_ms: ms(self.hist.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat::protocol::ServerLine;

    /// Feeds `seqs` to a fresh tracker.
    fn track(seqs: &[u64]) -> SeqTracker {
        let mut t = SeqTracker::new();
        for &s in seqs {
            t.record(s);
        }
        t
    }

    /// A clean stream: everything received, nothing lost.
    #[test]
    fn in_order_stream_loses_nothing() {
        let t = track(&[1, 2, 3, 4, 5]);
        assert_eq!(
            (t.received, t.gaps, t.duplicates, t.out_of_order),
            (5, 0, 0, 0)
        );
        assert_eq!(t.lost(5), 0);
        assert!(t.missing_ranges(5).is_empty());
    }

    /// One line removed from the middle is one gap and one lost message.
    #[test]
    fn a_gap_is_counted_as_lost() {
        let mut t = SeqTracker::new();
        assert_eq!(t.record(1), Seen::InOrder);
        assert_eq!(t.record(2), Seen::InOrder);
        assert_eq!(t.record(4), Seen::Gap { skipped: 1 });
        assert_eq!(t.record(5), Seen::InOrder);
        assert_eq!((t.received, t.gaps), (4, 1));
        assert_eq!(t.lost(5), 1);
        assert_eq!(t.missing_ranges(5), vec![(3, 3)]);
    }

    /// The last lines never arriving is loss too, though no gap shows it.
    #[test]
    fn a_missing_tail_is_counted_as_lost() {
        let t = track(&[1, 2, 3]);
        assert_eq!(t.gaps, 0);
        assert_eq!(t.lost(6), 3);
        assert_eq!(t.missing_ranges(6), vec![(4, 6)]);
    }

    /// A number seen twice is a duplicate, not an extra delivery.
    #[test]
    fn a_duplicate_is_counted_as_duplicate() {
        let mut t = track(&[1, 2]);
        assert_eq!(t.record(2), Seen::Duplicate);
        assert_eq!(t.record(1), Seen::Duplicate);
        assert_eq!((t.received, t.duplicates), (2, 2));
        assert_eq!(t.lost(2), 0);
    }

    /// A skipped number that arrives late is out of order, and not lost.
    #[test]
    fn late_arrival_is_out_of_order_not_lost() {
        let mut t = track(&[1, 5]);
        assert_eq!(t.missing_ranges(5), vec![(2, 4)]);
        assert_eq!(t.record(3), Seen::OutOfOrder);
        assert_eq!(t.missing_ranges(5), vec![(2, 2), (4, 4)]);
        assert_eq!(t.record(2), Seen::OutOfOrder);
        assert_eq!(t.record(4), Seen::OutOfOrder);
        assert_eq!(t.record(4), Seen::Duplicate);
        assert_eq!((t.received, t.out_of_order, t.duplicates), (5, 3, 1));
        assert_eq!(t.lost(5), 0);
        assert!(t.missing_ranges(5).is_empty());
    }

    /// A stamp survives the trip through a SAY text and a MSG line, and
    /// the borrowed MSG parser agrees with the protocol's own.
    #[test]
    fn stamp_round_trip_through_msg() {
        let mut text = String::new();
        Stamp {
            seq: 42,
            sent_ns: 123_456_789,
        }
        .write_text(64, &mut text);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("42 123456789 x"));
        let line = format!("MSG sala 2026-11-30T07:50:09.123Z lgab_3 {text}");
        let msg = MsgLine::parse(&line).unwrap();
        let Some(ServerLine::Msg {
            room,
            user,
            text: t,
            ..
        }) = ServerLine::parse(&line)
        else {
            panic!("not a MSG")
        };
        assert_eq!((msg.room, msg.user, msg.text), (&*room, &*user, &*t));
        assert_eq!(msg.time, "2026-11-30T07:50:09.123Z");
        assert_eq!(
            Stamp::parse(msg.text),
            Some(Stamp {
                seq: 42,
                sent_ns: 123_456_789
            })
        );
        assert_eq!(MsgLine::parse("JOINED sala bob"), None);
        assert_eq!(Stamp::parse("hello there"), None);
    }

    /// Percentiles of known samples: 1..=1000 µs.
    #[test]
    fn histogram_percentiles_of_known_samples() {
        let mut a = Latency::new();
        let mut b = Latency::new();
        for us in 1..=1000u64 {
            // Split across two "threads" and merge, as the workers do.
            if us % 2 == 0 { &mut a } else { &mut b }.record(us * 1000);
        }
        a.merge(&b);
        let p = a.percentiles();
        assert_eq!(p.count, 1000);
        // Three significant digits: within 0.1 % of the exact value.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 1e-9;
        assert!(close(p.p50_ms, 0.5), "{p:?}");
        assert!(close(p.p99_ms, 0.99), "{p:?}");
        // 99.9 % of 1000 samples sits on the boundary between the 999th
        // and the 1000th sample; either is a right answer.
        assert!(close(p.p999_ms, 0.999) || close(p.p999_ms, 1.0), "{p:?}");
        assert!(close(p.max_ms, 1.0), "{p:?}");
    }
}
