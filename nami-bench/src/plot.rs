//! The latency-versus-terminals plot (PNG): one panel per transaction type, p50 (solid, dots)
//! and p99 (thin, crosses) of each mode, both axes logarithmic.
//!
//! Text needs a TrueType font; it is read at run time (`--font`, else the usual system paths),
//! so nothing depends on fontconfig. Without one, the plot is drawn without text and says so.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

/// One point: a mode's latency at a number of terminals.
#[derive(Debug, Clone)]
pub struct Point {
    pub terminals: usize,
    pub mode: &'static str,
    pub txn: &'static str,
    pub p50_us: f64,
    pub p99_us: f64,
}

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a font for plotters' `sans-serif`; whether text can be drawn.
fn register_font(explicit: Option<&Path>) -> bool {
    let candidates: Vec<PathBuf> =
        explicit.map(Path::to_path_buf).into_iter().chain(FONT_PATHS.iter().map(PathBuf::from)).collect();
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            // plotters keeps the font for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

fn color(mode: &str) -> RGBColor {
    match mode {
        "raw" => RGBColor(90, 90, 90),
        "sdk" => RGBColor(31, 119, 180),
        _ => RGBColor(214, 39, 40),
    }
}

pub fn draw(points: &[Point], out: &Path, font: Option<&Path>) -> Result<(), String> {
    let text = register_font(font);
    if !text {
        eprintln!("nami-bench: no TrueType font found (give one with --font); the plot has no text");
    }
    let mut txns: Vec<&str> = points.iter().map(|p| p.txn).collect();
    txns.dedup();
    txns.sort_unstable();
    txns.dedup();
    let root = BitMapBackend::new(out, (640 * txns.len().max(1) as u32, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let panels = root.split_evenly((1, txns.len().max(1)));
    let max_terminals = points.iter().map(|p| p.terminals).max().unwrap_or(1).max(2) as f64;
    let (mut lo, mut hi) = (f64::MAX, 0.0f64);
    for p in points {
        lo = lo.min(p.p50_us.min(p.p99_us));
        hi = hi.max(p.p50_us.max(p.p99_us));
    }
    let (lo_ms, hi_ms) = ((lo / 1000.0 * 0.7).max(0.001), (hi / 1000.0 * 1.5).max(0.01));
    for (panel, txn) in panels.iter().zip(&txns) {
        let mut builder = ChartBuilder::on(panel);
        builder.margin(12);
        if text {
            builder
                .caption(format!("{txn}: latency vs terminals"), ("sans-serif", 20))
                .x_label_area_size(40)
                .y_label_area_size(60);
        }
        let mut chart = builder
            .build_cartesian_2d((0.8f64..max_terminals * 1.25).log_scale(), (lo_ms..hi_ms).log_scale())
            .map_err(|e| e.to_string())?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("terminals").y_desc("latency (ms)").x_label_formatter(&|x| format!("{x:.0}"));
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        for mode in ["raw", "sdk", "daemon"] {
            let mut series: Vec<&Point> = points.iter().filter(|p| p.txn == *txn && p.mode == mode).collect();
            if series.is_empty() {
                continue;
            }
            series.sort_by_key(|p| p.terminals);
            let c = color(mode);
            let p50: Vec<(f64, f64)> = series.iter().map(|p| (p.terminals as f64, p.p50_us / 1000.0)).collect();
            let p99: Vec<(f64, f64)> = series.iter().map(|p| (p.terminals as f64, p.p99_us / 1000.0)).collect();
            let drawn =
                chart.draw_series(LineSeries::new(p50.clone(), c.stroke_width(2))).map_err(|e| e.to_string())?;
            if text {
                drawn
                    .label(format!("{mode} p50"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
            }
            chart
                .draw_series(p50.iter().map(|(x, y)| Circle::new((*x, *y), 3, c.filled())))
                .map_err(|e| e.to_string())?;
            let drawn =
                chart.draw_series(LineSeries::new(p99.clone(), c.stroke_width(1))).map_err(|e| e.to_string())?;
            if text {
                drawn
                    .label(format!("{mode} p99"))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(1)));
            }
            chart.draw_series(p99.iter().map(|(x, y)| Cross::new((*x, *y), 4, c))).map_err(|e| e.to_string())?;
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(|e| e.to_string())?;
        }
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
