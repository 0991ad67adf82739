//! The PNG chart of a run: warm latency percentiles, throughput by
//! concurrency and cold starts, each as grouped bars, lambdabox against its
//! baselines. Text is drawn with `ab_glyph` from a font file on the host.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::report::Results;

/// Where Debian's `fonts-dejavu-core` puts the font (`make bench` installs it).
pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const OURS: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const RIE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const PREWARM: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("font {path}: {reason}")]
    Font { path: String, reason: String },
    #[error("drawing the chart: {0}")]
    Draw(String),
}

fn draw_err(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Load the font once per process and register it as `sans-serif`.
pub fn register_font(path: &str) -> Result<(), ChartError> {
    let bytes = std::fs::read(path).map_err(|e| ChartError::Font { path: path.into(), reason: e.to_string() })?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| ChartError::Font { path: path.into(), reason: "not a usable TrueType font".into() })
}

/// One coloured series of a grouped bar chart: a value per category, or none.
struct Series<'a> {
    name: &'a str,
    color: RGBColor,
    values: Vec<Option<f64>>,
}

/// Write the three panels to `path` (PNG). The font must be registered.
pub fn draw(results: &Results, path: &Path) -> Result<(), ChartError> {
    let root = BitMapBackend::new(path, (1500, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let panels = root.split_evenly((1, 3));

    let ours = results.lambdabox_latency.percentiles.as_ref();
    let rie = results.rie_latency.percentiles.as_ref();
    let pick =
        |p: Option<&crate::load::Percentiles>| vec![p.map(|p| p.p50_ms), p.map(|p| p.p90_ms), p.map(|p| p.p99_ms)];
    grouped_bars(
        &panels[0],
        "Warm invocation latency",
        "ms (lower is better)",
        &["p50", "p90", "p99"],
        &[
            Series { name: "lambdabox", color: OURS, values: pick(ours) },
            Series { name: "RIE", color: RIE, values: pick(rie) },
        ],
        &[],
    )?;

    let levels: Vec<usize> = results.lambdabox_throughput.iter().map(|t| t.concurrency).collect();
    let at = |list: &[crate::load::Throughput], c: usize| list.iter().find(|t| t.concurrency == c).map(|t| t.per_sec);
    let labels: Vec<String> = levels.iter().map(|c| format!("c{c}")).collect();
    let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    grouped_bars(
        &panels[1],
        "Throughput by concurrency",
        "successful invocations/s",
        &label_refs,
        &[
            Series {
                name: "lambdabox",
                color: OURS,
                values: levels.iter().map(|&c| at(&results.lambdabox_throughput, c)).collect(),
            },
            Series {
                name: "RIE",
                color: RIE,
                values: levels.iter().map(|&c| at(&results.rie_throughput, c)).collect(),
            },
        ],
        &[],
    )?;

    let median = |c: &crate::report::ColdStarts| c.stats.as_ref().map(|p| p.p50_ms);
    let prewarm = results.lambdabox_cold_prewarm.value().and_then(median);
    let prewarm_note = match &results.lambdabox_cold_prewarm {
        crate::report::Maybe::NotAvailable { reason } => {
            vec![(1, format!("n/a ({})", reason.trim_end_matches(" in this build")))]
        }
        crate::report::Maybe::Measured { .. } => Vec::new(),
    };
    grouped_bars(
        &panels[2],
        "Cold start (median)",
        "ms (lower is better)",
        &["cold", "cold, prewarm"],
        &[
            Series { name: "lambdabox", color: OURS, values: vec![median(&results.lambdabox_cold), None] },
            Series { name: "lambdabox --prewarm", color: PREWARM, values: vec![None, prewarm] },
            Series {
                name: "container per call (B)",
                color: RIE,
                values: vec![median(&results.per_container_cold), median(&results.per_container_cold)],
            },
        ],
        &prewarm_note,
    )?;
    root.present().map_err(draw_err)
}

/// Bars for each category, one per series side by side, values on top.
fn grouped_bars(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    y_desc: &str,
    categories: &[&str],
    series: &[Series<'_>],
    // Text shown low over a category, left of its middle (for missing bars).
    notes: &[(usize, String)],
) -> Result<(), ChartError> {
    let max = series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.0f64, |a, &b| a.max(b));
    // Headroom above the tallest bar for its value and the legend.
    let top = if max > 0.0 { max * 1.45 } else { 1.0 };
    let n = categories.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(34)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
        .map_err(draw_err)?;
    let names: Vec<String> = categories.iter().map(|c| (*c).to_owned()).collect();
    let formatter = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n.max(2))
        .x_label_formatter(&formatter)
        .y_label_formatter(&|y: &f64| if top >= 10.0 { format!("{y:.0}") } else { format!("{y:.1}") })
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(draw_err)?;
    let width = 0.8 / series.len() as f64;
    for (k, s) in series.iter().enumerate() {
        let bars: Vec<(f64, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as f64 - 0.4 + width * k as f64, v)))
            .collect();
        let color = s.color;
        chart
            .draw_series(
                bars.iter().map(|&(x0, v)| Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], color.filled())),
            )
            .map_err(draw_err)?
            .label(s.name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        chart
            .draw_series(bars.iter().map(|&(x0, v)| {
                let text = match v {
                    v if v >= 100.0 => format!("{v:.0}"),
                    v if v >= 10.0 => format!("{v:.1}"),
                    v => format!("{v:.2}"),
                };
                let style = ("sans-serif", 12).into_font().color(&BLACK).pos(Pos::new(HPos::Left, VPos::Bottom));
                Text::new(text, (x0, v + top * 0.01), style)
            }))
            .map_err(draw_err)?;
    }
    chart
        .draw_series(notes.iter().map(|(i, text)| {
            let style = ("sans-serif", 12).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Bottom));
            Text::new(text.clone(), (*i as f64 - 0.2, top * 0.04), style)
        }))
        .map_err(draw_err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(draw_err)
}
