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

use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::accounting::Percentiles;
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
    if points.is_empty() {
        return Err(Error::Config("a sweep with no points has no chart".into()));
    }
    let draw_err = |e: &dyn std::fmt::Display| {
        Error::io(
            format!("draw {}", path.display()),
            std::io::Error::other(e.to_string()),
        )
    };
    let x_min = points.iter().map(|p| p.rate).fold(f64::MAX, f64::min);
    let x_max = points.iter().map(|p| p.rate).fold(0.0, f64::max);
    let (x_lo, x_hi) = (x_min * 0.8, x_max * 1.25);
    let cpu: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.rate, p.cpu_us_per_delivery?)))
        .collect();
    let c_max = cpu.iter().map(|&(_, c)| c).fold(1.0, f64::max);
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
        .caption("server CPU per delivery (µs)", ("sans-serif", 16))
        .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..c_max * 1.15)
        .map_err(|e| draw_err(&e))?;
    chart
        .configure_mesh()
        .x_desc("messages per second per member")
        .y_desc("µs per delivery")
        .x_label_formatter(&|x| format!("{x}"))
        .draw()
        .map_err(|e| draw_err(&e))?;
    draw_line(&mut chart, cpu, BLUE).map_err(|e| draw_err(&e))?;

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
        .x_desc("messages per second per member")
        .y_desc("p99 ms")
        .x_label_formatter(&|x| format!("{x}"))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| draw_err(&e))?;
    let series: Vec<(f64, f64)> = points.iter().map(|p| (p.rate, p.latency.p99_ms)).collect();
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
