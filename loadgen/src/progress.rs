//! The progress line on stderr: rewritten in place once a second on a
//! terminal, one plain line every 5 seconds otherwise (a log file should
//! not fill with carriage returns).

use std::fmt;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A rate-limited status line.
pub struct Progress {
    /// Off entirely (`--quiet`, tests).
    enabled: bool,
    /// Rewrite in place (stderr is a terminal).
    in_place: bool,
    /// The scenario's name, first on the line.
    label: &'static str,
    /// When the run started.
    started: Instant,
    /// When the line was last written.
    last: Option<Instant>,
}

impl Progress {
    /// A progress line for `label`; silent unless `enabled`.
    pub fn new(label: &'static str, enabled: bool) -> Progress {
        Progress {
            enabled,
            in_place: std::io::stderr().is_terminal(),
            label,
            started: Instant::now(),
            last: None,
        }
    }

    /// Writes `status` if the line is due.
    pub fn show(&mut self, status: fmt::Arguments<'_>) {
        if !self.enabled {
            return;
        }
        let every = if self.in_place {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let t = self.started.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        if self.in_place {
            // CR, then "erase to end of line": the new text replaces the old.
            let _ = write!(err, "\r\x1b[K[{} {t:5.1}s] {status}", self.label);
        } else {
            let _ = writeln!(err, "[{} {t:5.1}s] {status}", self.label);
        }
        let _ = err.flush();
    }

    /// Ends an in-place line, so that the summary starts on a fresh line.
    pub fn finish(&mut self) {
        if self.enabled && self.in_place && self.last.is_some() {
            eprintln!();
        }
    }
}
