//! The `sweep-rate`: the same rooms (by default 10 rooms of 20 members,
//! every member sending) at a rising send rate per member (e.g. 1, 2, 5, 10,
//! 50 messages a second), a fanout run at each rate, and an SVG chart of the
//! server's CPU per delivery and the p99 latency against the rate.
//!
//! It answers the question the size sweep cannot: what a delivery costs the
//! server at the rates a real class produces, where the fixed costs of
//! waking a thread for each line are not spread over many lines. The
//! server's CPU needs its pid (`--server-pid`); without it the chart has
//! only the latency.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::accounting::Percentiles;
use super::chart::{self, TwoPanels};
use super::conn::Target;
use super::fanout::{self, FanoutConfig, FanoutReport};
use chat::error::{Error, Result};

/// One rate's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RatePoint {
    /// Messages per second per sender.
    pub rate: f64,
    /// Deliveries per second in the measure window.
    pub deliveries_per_s: f64,
    /// Server CPU microseconds per delivery in the window, with the pid.
    pub cpu_us_per_delivery: Option<f64>,
    /// Server CPU in percent of one core over the window, with the pid.
    pub cpu_percent: Option<f64>,
    /// Latency percentiles.
    pub latency: Percentiles,
    /// `SAY`s refused by the server (its rate limits were too low).
    pub rejected: u64,
    /// Deliveries lost.
    pub lost: u64,
    /// Members dropped by the server.
    pub dropped: usize,
}

/// The whole rate sweep.
#[derive(Debug, Clone, Serialize)]
pub struct RateSweepReport {
    /// Always `"sweep-rate"`.
    pub scenario: &'static str,
    /// The servers' addresses (`--addr`); client `i` of the run connected
    /// to address `i % n` of these `n`.
    pub addrs: Vec<SocketAddr>,
    /// Rooms.
    pub rooms: usize,
    /// Members per room.
    pub members: usize,
    /// Senders per room.
    pub senders: usize,
    /// Seconds measured per rate.
    pub duration_s: f64,
    /// One point per rate, in the order run.
    pub points: Vec<RatePoint>,
    /// The full report of each run.
    pub runs: Vec<FanoutReport>,
}

/// Runs `base` at each rate in `rates` (messages per second per sender,
/// each above 0).
///
/// # Errors
///
/// [`Error::Config`] for a rate that is not above 0; otherwise as
/// [`fanout::run`].
pub fn run(target: &Target, base: &FanoutConfig, rates: &[f64]) -> Result<RateSweepReport> {
    if rates.is_empty() || rates.iter().any(|r| !(*r > 0.0 && r.is_finite())) {
        return Err(Error::Config(
            "--rates needs one or more rates above 0 (messages per second per sender)".into(),
        ));
    }
    let mut report = RateSweepReport {
        scenario: "sweep-rate",
        addrs: target.addrs().to_vec(),
        rooms: base.rooms,
        members: base.members,
        senders: base.senders,
        duration_s: base.duration.as_secs_f64(),
        points: Vec::new(),
        runs: Vec::new(),
    };
    for &rate in rates {
        let cfg = FanoutConfig {
            rate,
            ..base.clone()
        };
        let run = fanout::run(target, &cfg)?;
        if base.engine.progress {
            eprintln!("{run}");
        }
        report.points.push(RatePoint {
            rate,
            deliveries_per_s: run.deliveries_per_s,
            cpu_us_per_delivery: run.server.map(|s| s.cpu_us_per_delivery),
            cpu_percent: run.server.map(|s| s.cpu_percent),
            latency: run.latency,
            rejected: run.rejected,
            lost: run.lost,
            dropped: run.dropped,
        });
        report.runs.push(run);
    }
    Ok(report)
}

/// The points of a rate sweep saved with `--out`, to redraw its chart
/// without running it again (`loadgen chart --rate`).
///
/// # Errors
///
/// [`Error::Config`] if `json` is not a rate sweep's report.
pub fn points_from_json(json: &str) -> Result<Vec<RatePoint>> {
    /// The part of a saved [`RateSweepReport`] the chart needs.
    #[derive(Deserialize)]
    struct Saved {
        /// The points.
        points: Vec<RatePoint>,
    }
    serde_json::from_str::<Saved>(json)
        .map(|saved| saved.points)
        .map_err(|e| Error::Config(format!("not a rate sweep's report: {e}")))
}

/// Draws the server's CPU per delivery (top, µs) and the p99 latency
/// (bottom, ms, logarithmic) against the rate per member (logarithmic),
/// into an SVG file.
///
/// # Errors
///
/// [`Error::Config`] if there are no points; [`Error::Io`] if the file
/// cannot be written.
pub fn write_svg(points: &[RatePoint], path: &Path, title: &str) -> Result<()> {
    let panels = TwoPanels {
        title,
        x_desc: "messages per second per member",
        x_label: |x| format!("{x}"),
        top_caption: "server CPU per delivery (µs)",
        top_desc: "µs per delivery",
        top: points
            .iter()
            .filter_map(|p| Some((p.rate, p.cpu_us_per_delivery?)))
            .collect(),
        p99: points.iter().map(|p| (p.rate, p.latency.p99_ms)).collect(),
    };
    chart::write_svg(&panels, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point written by `--out` reads back, and a chart is drawn from it.
    #[test]
    fn saved_points_read_back_and_draw() {
        let json = r#"{"scenario":"sweep-rate","points":[
            {"rate":1.0,"deliveries_per_s":3800.0,"cpu_us_per_delivery":20.5,"cpu_percent":7.8,
             "latency":{"count":10,"p50_ms":0.5,"p99_ms":1.5,"p999_ms":2.0,"max_ms":3.0},
             "rejected":0,"lost":0,"dropped":0},
            {"rate":50.0,"deliveries_per_s":190000.0,"cpu_us_per_delivery":null,"cpu_percent":null,
             "latency":{"count":10,"p50_ms":0.7,"p99_ms":4.0,"p999_ms":5.0,"max_ms":6.0},
             "rejected":0,"lost":0,"dropped":0}]}"#;
        let points = points_from_json(json).unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].cpu_us_per_delivery, Some(20.5));
        assert_eq!(points[1].cpu_us_per_delivery, None);
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("rate.svg");
        write_svg(&points, &svg, "test").unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
        assert!(points_from_json("{}").is_err());
    }
}
