//! The `sweep`: one room grown step by step (e.g. 10 → 1,000 members), a
//! fanout run at each size, and an SVG chart of deliveries per second and
//! p99 latency against the room size.
//!
//! The chart is drawn by the project itself with `plotters` (SVG backend
//! only), so `docs/BENCHMARKS.md` can be regenerated with one command.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::accounting::Percentiles;
use super::chart::{self, TwoPanels};
use super::conn::Target;
use super::fanout::{self, FanoutConfig, FanoutReport};
use chat::error::{Error, Result};

/// One room size's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Members in the room.
    pub members: usize,
    /// Senders in the room.
    pub senders: usize,
    /// Deliveries per second in the measure window.
    pub deliveries_per_s: f64,
    /// Latency percentiles.
    pub latency: Percentiles,
    /// Deliveries lost.
    pub lost: u64,
    /// Members dropped by the server.
    pub dropped: usize,
}

/// The whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// Always `"sweep"`.
    pub scenario: &'static str,
    /// The servers' addresses (`--addr`); client `i` of the run connected
    /// to address `i % n` of these `n`.
    pub addrs: Vec<SocketAddr>,
    /// Senders per room (at most the room's size).
    pub senders: usize,
    /// Seconds measured per size.
    pub duration_s: f64,
    /// One point per size, in the order run.
    pub points: Vec<SweepPoint>,
    /// The full report of each run.
    pub runs: Vec<FanoutReport>,
}

/// Runs `base` with one room of each size in `sizes`.
///
/// # Errors
///
/// As [`fanout::run`].
pub fn run(target: &Target, base: &FanoutConfig, sizes: &[usize]) -> Result<SweepReport> {
    let mut report = SweepReport {
        scenario: "sweep",
        addrs: target.addrs().to_vec(),
        senders: base.senders,
        duration_s: base.duration.as_secs_f64(),
        points: Vec::new(),
        runs: Vec::new(),
    };
    for &members in sizes {
        let cfg = FanoutConfig {
            rooms: 1,
            members,
            senders: base.senders.min(members),
            stalled: 0,
            ..base.clone()
        };
        let run = fanout::run(target, &cfg)?;
        if base.engine.progress {
            eprintln!("{run}");
        }
        report.points.push(SweepPoint {
            members,
            senders: cfg.senders,
            deliveries_per_s: run.deliveries_per_s,
            latency: run.latency,
            lost: run.lost,
            dropped: run.dropped,
        });
        report.runs.push(run);
    }
    Ok(report)
}

/// The points of a sweep saved with `--out`, to redraw its chart without
/// running it again (`loadgen chart`).
///
/// # Errors
///
/// [`Error::Config`] if `json` is not a sweep report.
pub fn points_from_json(json: &str) -> Result<Vec<SweepPoint>> {
    /// The part of a saved [`SweepReport`] the chart needs.
    #[derive(Deserialize)]
    struct Saved {
        /// The points.
        points: Vec<SweepPoint>,
    }
    serde_json::from_str::<Saved>(json)
        .map(|saved| saved.points)
        .map_err(|e| Error::Config(format!("not a sweep report: {e}")))
}

/// Draws deliveries/s (top) and p99 latency (bottom, logarithmic) against
/// members (logarithmic), into an SVG file.
///
/// # Errors
///
/// [`Error::Config`] if there are no points; [`Error::Io`] if the file
/// cannot be written.
pub fn write_svg(points: &[SweepPoint], path: &Path, title: &str) -> Result<()> {
    let panels = TwoPanels {
        title,
        x_desc: "members in the room",
        x_label: |x| format!("{x:.0}"),
        top_caption: "deliveries per second (millions)",
        top_desc: "M deliveries/s",
        top: points
            .iter()
            .map(|p| (p.members as f64, p.deliveries_per_s / 1e6))
            .collect(),
        p99: points
            .iter()
            .map(|p| (p.members as f64, p.latency.p99_ms))
            .collect(),
    };
    chart::write_svg(&panels, path)
}
