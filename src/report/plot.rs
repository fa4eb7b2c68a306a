//! Line charts as SVG text (plotters' SVG backend: text stays `<text>`, so no font files are
//! read and the output is the same on every machine). A figure is one or more panels side by
//! side; a panel has series of points, drawn as lines with markers, or as a dashed line without
//! markers for a theoretical curve (each curve its own dash and shade). The legend sits below
//! the data, one entry per line, so it never covers a point; the figure has a `viewBox`, so it
//! scales with the page.

use plotters::coord::types::RangedCoordf64;
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
    /// Error bars: (x, low, high), drawn as vertical bars with caps.
    pub intervals: Vec<(f64, f64, f64)>,
    /// The series' palette colour (its case's, so a case looks the same in every plot); None:
    /// the k-th measured series of the panel gets the k-th colour.
    pub colour: Option<usize>,
    /// Each point's palette colour (its case's), for a series that joins several cases: the
    /// line is then grey and each marker and error bar takes its point's colour.
    pub point_colours: Vec<usize>,
}

impl Series {
    /// A measured series with markers and no error bars.
    pub fn measured(name: String, points: Vec<(f64, f64)>) -> Self {
        Series {
            name,
            points,
            theory: false,
            markers: true,
            intervals: Vec::new(),
            colour: None,
            point_colours: Vec::new(),
        }
    }

    /// The line's colour, for the k-th measured series of its panel.
    fn line_colour(&self, k: usize) -> RGBAColor {
        if self.point_colours.is_empty() {
            colour(self.colour.unwrap_or(k))
        } else {
            JOINING
        }
    }

    /// Point `i`'s colour, for the k-th measured series of its panel.
    fn point_colour(&self, i: usize, k: usize) -> RGBAColor {
        self.point_colours
            .get(i)
            .map_or_else(|| self.line_colour(k), |&c| colour(c))
    }
}

/// A drawable point on the axis, with its place in its series.
type Placed = (usize, (f64, f64));

/// The line of a series that joins several cases' points (each in its case's colour).
const JOINING: RGBAColor = RGBAColor(110, 110, 110, 1.0);

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
    /// The x values are integers (a quorum, a difficulty): ticks only at integers.
    pub integer_x: bool,
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
/// Height of a figure's plotting part in pixels (the legend adds its lines below).
pub const HEIGHT: u32 = 380;
/// Height of one legend line in pixels.
const LEGEND_LINE: u32 = 20;

/// The legend's height under a panel with these series.
fn legend_height(p: &Panel) -> u32 {
    let named = p.series.iter().filter(|s| !s.name.is_empty()).count();
    if named == 0 {
        0
    } else {
        8 + LEGEND_LINE * u32::try_from(named).unwrap_or(u32::MAX / LEGEND_LINE)
    }
}

/// Draws `panels` side by side into one SVG document.
pub fn svg(panels: &[Panel]) -> Result<String, PlotError> {
    let mut out = String::new();
    let width = PANEL_WIDTH * u32::try_from(panels.len().max(1)).unwrap_or(1);
    let legend = panels.iter().map(legend_height).max().unwrap_or(0);
    let height = HEIGHT + legend;
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        let fail = |title: &str, e: &dyn std::fmt::Display| PlotError {
            title: title.to_owned(),
            message: e.to_string(),
        };
        root.fill(&WHITE).map_err(|e| fail("figure", &e))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            let (chart, below) = area.split_vertically(HEIGHT);
            draw(panel, &chart).map_err(|e| fail(&panel.title, &e))?;
            draw_legend(panel, &below).map_err(|e| fail(&panel.title, &e))?;
        }
        root.present().map_err(|e| fail("figure", &e))?;
    }
    // A viewBox, so the figure scales with the page that holds it.
    let open = format!("<svg width=\"{width}\" height=\"{height}\"");
    if out.contains(&open) && !out.contains("viewBox") {
        out = out.replacen(
            &open,
            &format!("{open} viewBox=\"0 0 {width} {height}\""),
            1,
        );
    }
    Ok(out)
}

/// Series `k`'s colour (the k-th measured series of a panel): Tableau's ten, dark enough on
/// white to read as thin lines.
fn colour(k: usize) -> RGBAColor {
    const TEN: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (214, 39, 40),
        (44, 160, 44),
        (255, 127, 14),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = TEN[k % TEN.len()];
    RGBColor(r, g, b).to_rgba()
}

/// A log axis's tick label: decades only when the axis spans three or more (0.01, 0.1, 1),
/// else the value to two significant digits (0.016, 0.025, 0.04).
fn log_tick(v: f64, span_decades: f64) -> String {
    if span_decades >= 3.0 {
        return if (v - v.round()).abs() < 1e-6 {
            short(10f64.powf(v.round()))
        } else {
            String::new()
        };
    }
    let x = 10f64.powf(v);
    #[allow(clippy::cast_possible_truncation)]
    let digits = usize::try_from(1 - x.log10().floor() as i32).unwrap_or(0);
    let mut t = format!("{x:.digits$}");
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    if x >= 1e4 { short(x) } else { t }
}

/// Theoretical curve `k`'s line: its own dash pattern and shade, so two curves never look alike.
fn theory_style(k: usize) -> (u32, u32, ShapeStyle) {
    const DASHES: [(u32, u32); 4] = [(8, 4), (3, 3), (12, 4), (6, 2)];
    let (dash, gap) = DASHES[k % DASHES.len()];
    let shade = [0.85, 0.6, 0.45, 0.7][k % 4];
    (
        dash,
        gap,
        ShapeStyle::from(&BLACK.mix(shade)).stroke_width(2),
    )
}

/// The legend under a panel: one line per named series, its swatch drawn as the series is.
fn draw_legend<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (mut measured, mut theory) = (0usize, 0usize);
    let mut line = 0i32;
    for s in &panel.series {
        let k = if s.theory { &mut theory } else { &mut measured };
        let index = *k;
        *k += 1;
        if s.name.is_empty() {
            continue;
        }
        let y = 8 + LEGEND_LINE as i32 / 2 + line * LEGEND_LINE as i32;
        line += 1;
        let (x0, x1) = (70, 100);
        if s.theory {
            let (dash, gap, style) = theory_style(index);
            let mut x = x0;
            while x < x1 {
                let end = (x + dash as i32).min(x1);
                area.draw(&PathElement::new(vec![(x, y), (end, y)], style))?;
                x = end + gap as i32;
            }
        } else {
            let c = s.line_colour(index);
            area.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                ShapeStyle::from(&c).stroke_width(2),
            ))?;
            if s.markers {
                // A series joining cases shows an open ring: its points take their cases'
                // colours.
                let (style, r) = if s.point_colours.is_empty() {
                    (ShapeStyle::from(&c).filled(), 4)
                } else {
                    (ShapeStyle::from(&BLACK).stroke_width(1), 5)
                };
                area.draw(&Circle::new(((x0 + x1) / 2, y), r, style))?;
            }
        }
        area.draw(&Text::new(
            s.name.clone(),
            (x1 + 8, y - 7),
            ("sans-serif", 14).into_font(),
        ))?;
    }
    Ok(())
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
    // Each series' drawable points on the axis, with their places in the series.
    let series: Vec<(&Series, Vec<Placed>)> = panel
        .series
        .iter()
        .map(|s| {
            let pts = s
                .points
                .iter()
                .enumerate()
                .filter(|(_, (x, y))| (!panel.log_x || *x > 0.0) && x.is_finite() && y.is_finite())
                .map(|(i, &(x, y))| (i, (tx(x), y)))
                .collect();
            (s, pts)
        })
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let (mut x0, mut x1) = bounds(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
    if x1 - x0 < 1e-12 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    let pad = (x1 - x0) * 0.05;
    let (x0, x1) = (x0 - pad, x1 + pad);
    let highs = series
        .iter()
        .flat_map(|(s, _)| s.intervals.iter().map(|i| i.2));
    let (_, y1) = bounds(all().map(|p| p.1).chain(highs)).unwrap_or((0.0, 1.0));
    let y1 = if y1 > 0.0 { y1 * 1.12 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 19))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0..y1)?;
    let (x_fmt, x_ticks) = x_axis(panel, x0, x1);
    let y_fmt = |v: &f64| short(*v);
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(x_ticks)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE)
        .draw()?;
    let (mut measured, mut theory) = (0usize, 0usize);
    for (s, pts) in &series {
        if s.theory {
            let (dash, gap, style) = theory_style(theory);
            theory += 1;
            chart.draw_series(DashedLineSeries::new(
                pts.iter().map(|q| q.1),
                dash,
                gap,
                style,
            ))?;
        } else {
            draw_measured(
                &mut chart,
                s,
                pts,
                measured,
                (panel.log_x, (x1 - x0) * 0.01),
            )?;
            measured += 1;
        }
    }
    Ok(())
}

/// The k-th measured series of a panel: its line, its error bars (caps `cap` wide) and its
/// markers, each point in its colour; `pts` are its drawable points with their places.
fn draw_measured<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    s: &Series,
    pts: &[Placed],
    k: usize,
    (log_x, cap): (bool, f64),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart.draw_series(LineSeries::new(
        pts.iter().map(|q| q.1),
        ShapeStyle::from(&s.line_colour(k)).stroke_width(2),
    ))?;
    for (i, &(x, lo, hi)) in s.intervals.iter().enumerate() {
        if !log_x || x > 0.0 {
            let bar = ShapeStyle::from(&s.point_colour(i, k)).stroke_width(2);
            let x = if log_x { x.log10() } else { x };
            chart.draw_series(error_bar(x, lo, hi, cap, bar))?;
        }
    }
    if s.markers {
        for &(i, p) in pts {
            let fill = ShapeStyle::from(&s.point_colour(i, k)).filled();
            chart.draw_series(std::iter::once(Circle::new(p, 5, fill)))?;
            if !s.point_colours.is_empty() {
                let ring = ShapeStyle::from(&BLACK).stroke_width(1);
                chart.draw_series(std::iter::once(Circle::new(p, 5, ring)))?;
            }
        }
    }
    Ok(())
}

/// An error bar at `x` from `lo` to `hi`, with caps `cap` wide on each side.
fn error_bar(
    x: f64,
    lo: f64,
    hi: f64,
    cap: f64,
    style: ShapeStyle,
) -> Vec<PathElement<(f64, f64)>> {
    [
        vec![(x, lo), (x, hi)],
        vec![(x - cap, lo), (x + cap, lo)],
        vec![(x - cap, hi), (x + cap, hi)],
    ]
    .into_iter()
    .map(|segment| PathElement::new(segment, style))
    .collect()
}

/// An axis tick's label.
type TickLabel = Box<dyn Fn(&f64) -> String>;

/// The x axis's tick labels and tick count over `x0..x1`: decades or two significant digits on
/// a log axis, labels only at integers on an integer axis (a tick at each, up to 12).
fn x_axis(panel: &Panel, x0: f64, x1: f64) -> (TickLabel, usize) {
    let (log_x, integer_x) = (panel.log_x, panel.integer_x && !panel.log_x);
    let span = x1 - x0;
    let format = move |v: &f64| {
        if log_x {
            log_tick(*v, span)
        } else if integer_x && (v - v.round()).abs() > 1e-9 {
            String::new() // no tick label between integers
        } else {
            short(*v)
        }
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ticks = if integer_x {
        ((x1.floor() - x0.ceil()) as usize + 1).clamp(2, 12)
    } else {
        10
    };
    (Box::new(format), ticks)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The number in attribute `name="..."` of the tag `tag`.
    fn attribute(tag: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        tag.split(key.as_str())
            .nth(1)
            .and_then(|v| v.split('"').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }

    #[test]
    fn the_legend_sits_below_every_plotted_point_and_the_figure_scales() {
        let panel = Panel {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series::measured(
                    "corner series".into(),
                    vec![(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0)],
                ),
                Series {
                    name: "model curve".into(),
                    points: vec![(0.0, 1.0), (1.0, 1.0)],
                    theory: true,
                    markers: false,
                    ..Series::measured(String::new(), Vec::new())
                },
            ],
            log_x: false,
            integer_x: false,
        };
        let out = svg(&[panel]).unwrap();
        assert!(
            out.contains(&format!("viewBox=\"0 0 {PANEL_WIDTH} ")),
            "{out}"
        );
        let bottom = f64::from(HEIGHT);
        for name in ["corner series", "model curve"] {
            let at = out.find(name).unwrap();
            let tag = &out[out[..at].rfind("<text").unwrap()..at];
            let y = attribute(tag, "y");
            assert!(y >= bottom, "{name} at y {y}");
        }
        let mut markers = 0;
        for (at, _) in out.match_indices("<circle") {
            let tag = &out[at..at + out[at..].find('>').unwrap()];
            let cy = attribute(tag, "cy");
            // The four data markers above the legend, the legend's swatch below.
            if cy < bottom {
                markers += 1;
            }
        }
        assert_eq!(markers, 4, "{out}");
    }
}
