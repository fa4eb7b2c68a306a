//! Line charts as SVG text (plotters' SVG backend: text stays `<text>`, so no font files are
//! read and the output is the same on every machine). A figure is one or more panels side by
//! side; a panel has series of points, drawn as lines with markers, or as a dashed line without
//! markers for a theoretical curve.

use plotters::prelude::*;

/// One series of points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// A theoretical curve: dashed, no markers.
    pub theory: bool,
    /// Mark each point (off for dense series such as CDFs).
    pub markers: bool,
}

/// One chart.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// Series.
    pub series: Vec<Series>,
    /// Logarithmic x axis (positive x only; others are dropped).
    pub log_x: bool,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("plot {title:?}: {message}")]
pub struct PlotError {
    title: String,
    message: String,
}

/// Width of one panel in pixels.
pub const PANEL_WIDTH: u32 = 560;
/// Height of a figure in pixels.
pub const HEIGHT: u32 = 380;

/// Draws `panels` side by side into one SVG document.
pub fn svg(panels: &[Panel]) -> Result<String, PlotError> {
    let mut out = String::new();
    let width = PANEL_WIDTH * u32::try_from(panels.len().max(1)).unwrap_or(1);
    {
        let root = SVGBackend::with_string(&mut out, (width, HEIGHT)).into_drawing_area();
        let fail = |title: &str, e: &dyn std::fmt::Display| PlotError {
            title: title.to_owned(),
            message: e.to_string(),
        };
        root.fill(&WHITE).map_err(|e| fail("figure", &e))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            draw(panel, area).map_err(|e| fail(&panel.title, &e))?;
        }
        root.present().map_err(|e| fail("figure", &e))?;
    }
    Ok(out)
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

fn draw<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let tx = |x: f64| if panel.log_x { x.log10() } else { x };
    let series: Vec<(&Series, Vec<(f64, f64)>)> = panel
        .series
        .iter()
        .map(|s| {
            let pts = s
                .points
                .iter()
                .filter(|(x, y)| (!panel.log_x || *x > 0.0) && x.is_finite() && y.is_finite())
                .map(|&(x, y)| (tx(x), y))
                .collect();
            (s, pts)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter().copied());
    let (mut x0, mut x1) = bounds(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
    if x1 - x0 < 1e-12 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let pad = (x1 - x0) * 0.05;
    let (x0, x1) = (x0 - pad, x1 + pad);
    let (_, y1) = bounds(all().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let y1 = if y1 > 0.0 { y1 * 1.12 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..y1)?;
    let log_x = panel.log_x;
    let x_fmt = move |v: &f64| {
        if log_x {
            short(10f64.powf(*v))
        } else {
            short(*v)
        }
    };
    let y_fmt = |v: &f64| short(*v);
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .light_line_style(WHITE)
        .draw()?;
    let mut legend = false;
    for (k, (s, pts)) in series.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        if s.theory {
            let style = ShapeStyle::from(&BLACK.mix(0.7)).stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(pts.iter().copied(), 6, 4, style))?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        } else {
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    ShapeStyle::from(&color).stroke_width(2),
                ))?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            if s.markers {
                chart.draw_series(
                    pts.iter()
                        .map(|&p| Circle::new(p, 3, ShapeStyle::from(&color).filled())),
                )?;
            }
        }
        legend |= !s.name.is_empty();
    }
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

/// A compact number for axis labels: 1.2k, 3.4M, 0.012.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if x.abs() >= 100.0 || x == 0.0 {
        0
    } else if x.abs() >= 1.0 {
        2
    } else {
        4
    };
    let mut s = format!("{x:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    s + unit
}
