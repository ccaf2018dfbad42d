//! The chart both sweeps draw (`sweep` and `sweep-rate`): one figure per
//! point on top, the p99 latency below (logarithmic), both against a
//! logarithmic x axis, into an SVG file with plotters.

use std::path::Path;

use plotters::prelude::*;

use chat::error::{Error, Result};

/// What to draw.
#[derive(Debug)]
pub struct TwoPanels<'a> {
    /// The chart's title.
    pub title: &'a str,
    /// What the x axis counts.
    pub x_desc: &'a str,
    /// How an x tick is written.
    pub x_label: fn(&f64) -> String,
    /// The top panel's caption.
    pub top_caption: &'a str,
    /// The top panel's y axis.
    pub top_desc: &'a str,
    /// The top panel's points, `(x, y)`; its y axis starts at 0.
    pub top: Vec<(f64, f64)>,
    /// The p99 latency in ms, `(x, ms)`, drawn below.
    pub p99: Vec<(f64, f64)>,
}

/// Draws `panels` into an SVG file at `path`.
///
/// # Errors
///
/// [`Error::Config`] if there are no points; [`Error::Io`] if the file
/// cannot be written.
pub fn write_svg(panels: &TwoPanels<'_>, path: &Path) -> Result<()> {
    if panels.p99.is_empty() {
        return Err(Error::Config("a sweep with no points has no chart".into()));
    }
    let draw_err = |e: &dyn std::fmt::Display| {
        Error::io(
            format!("draw {}", path.display()),
            std::io::Error::other(e.to_string()),
        )
    };
    let xs = || panels.p99.iter().map(|&(x, _)| x);
    let x_lo = xs().fold(f64::MAX, f64::min).max(f64::MIN_POSITIVE) * 0.8;
    let x_hi = xs().fold(0.0, f64::max) * 1.25;
    let top_max = panels.top.iter().map(|&(_, y)| y).fold(1e-9, f64::max);
    let ms = || panels.p99.iter().map(|&(_, ms)| ms);
    let l_max = ms().fold(0.001, f64::max);
    let l_min = ms().fold(f64::MAX, f64::min).max(0.001);

    let root = SVGBackend::new(path, (900, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(&e))?;
    let root = root
        .titled(panels.title, ("sans-serif", 22))
        .map_err(|e| draw_err(&e))?;
    let (top, bottom) = root.split_vertically(340);

    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .caption(panels.top_caption, ("sans-serif", 16))
        .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..top_max * 1.15)
        .map_err(|e| draw_err(&e))?;
    chart
        .configure_mesh()
        .x_desc(panels.x_desc)
        .y_desc(panels.top_desc)
        .x_label_formatter(&panels.x_label)
        .draw()
        .map_err(|e| draw_err(&e))?;
    draw_line(&mut chart, panels.top.clone(), BLUE).map_err(|e| draw_err(&e))?;

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
        .x_desc(panels.x_desc)
        .y_desc("p99 ms")
        .x_label_formatter(&panels.x_label)
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| draw_err(&e))?;
    draw_line(&mut chart, panels.p99.clone(), RED).map_err(|e| draw_err(&e))?;
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
