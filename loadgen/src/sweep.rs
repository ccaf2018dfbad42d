//! The `sweep`: one room grown step by step (e.g. 10 → 1,000 members), a
//! fanout run at each size, and an SVG chart of deliveries per second and
//! p99 latency against the room size.
//!
//! The chart is drawn by the project itself with `plotters` (SVG backend
//! only), so `docs/BENCHMARKS.md` can be regenerated with one command.

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::accounting::Percentiles;
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
    if points.is_empty() {
        return Err(Error::Config("a sweep with no points has no chart".into()));
    }
    let draw_err = |e: &dyn std::fmt::Display| {
        Error::io(
            format!("draw {}", path.display()),
            std::io::Error::other(e.to_string()),
        )
    };
    let x_min = points.iter().map(|p| p.members).min().unwrap_or(1).max(1) as f64;
    let x_max = points.iter().map(|p| p.members).max().unwrap_or(1) as f64;
    let (x_lo, x_hi) = (x_min * 0.8, x_max * 1.25);
    let d_max = points
        .iter()
        .map(|p| p.deliveries_per_s)
        .fold(1.0, f64::max)
        / 1e6;
    let l_max = points
        .iter()
        .map(|p| p.latency.p99_ms)
        .fold(0.001, f64::max);
    let l_min = points
        .iter()
        .map(|p| p.latency.p99_ms)
        .fold(f64::MAX, f64::min)
        .max(0.001);

    let root = SVGBackend::new(path, (900, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(&e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| draw_err(&e))?;
    let (top, bottom) = root.split_vertically(340);

    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .caption("deliveries per second (millions)", ("sans-serif", 16))
        .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..d_max * 1.15)
        .map_err(|e| draw_err(&e))?;
    chart
        .configure_mesh()
        .x_desc("members in the room")
        .y_desc("M deliveries/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| draw_err(&e))?;
    let series: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.members as f64, p.deliveries_per_s / 1e6))
        .collect();
    draw_line(&mut chart, series, BLUE).map_err(|e| draw_err(&e))?;

    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .caption("p99 latency (ms, logarithmic)", ("sans-serif", 16))
        .build_cartesian_2d(
            (x_lo..x_hi).log_scale(),
            (l_min / 2.0..l_max * 2.0).log_scale(),
        )
        .map_err(|e| draw_err(&e))?;
    chart
        .configure_mesh()
        .x_desc("members in the room")
        .y_desc("p99 ms")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| draw_err(&e))?;
    let series: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.members as f64, p.latency.p99_ms))
        .collect();
    draw_line(&mut chart, series, RED).map_err(|e| draw_err(&e))?;
    root.present().map_err(|e| draw_err(&e))?;
    Ok(())
}

/// Draws `series` into `chart` as a line with a dot on each point.
fn draw_line<Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<LogCoord<f64>, Y>>,
    series: Vec<(f64, f64)>,
    color: RGBColor,
) -> std::result::Result<(), DrawingAreaErrorKind<std::io::Error>> {
    chart.draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?;
    chart.draw_series(
        series
            .into_iter()
            .map(|(x, y)| Circle::new((x, y), 4, color.filled())),
    )?;
    Ok(())
}
