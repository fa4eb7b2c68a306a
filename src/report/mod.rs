//! The files of an `ipow compare` report: `report.md`, `report.html` (self-contained, plots
//! inline), `summary.json`, `transactions.csv` and `plots/*.svg`. Every table is rendered from
//! [`Comparison::rows`] and [`Comparison::summaries`], so the Markdown, the HTML and the JSON
//! print the same figures; the CSV is the runs' per-transaction records.
//!
//! A report directory is written whole or not at all: the files go to a sibling temporary
//! directory, which then replaces `DIR` (an existing `DIR` must be empty or hold an earlier
//! report, recognised by its `summary.json`).

pub mod paper;
pub mod plot;
pub mod text;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::consensus::Outcome;
use crate::lab::compare::{Comparison, Row, Summary, approves_invalid, theoretical_wrong_rate};
use crate::pipeline::VariantConfig;
use crate::report::plot::{Panel, Series};
use crate::validate::Verdict;

/// The format tag of `summary.json`.
pub const FORMAT: &str = "ipow-compare/1";

/// A duration in microseconds, scaled to fit: "840 us", "12.50 ms", "1.204 s".
pub fn duration_us(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} us"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.3} s", us as f64 / 1e6),
    }
}

/// A rate as a percentage with three significant figures ("2.39%", "0.0120%", "0%").
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if p == 0.0 {
        return "0%".into();
    }
    let digits = if p >= 10.0 {
        1
    } else if p >= 1.0 {
        2
    } else {
        // p in (0, 1): -log10 is positive and small; clamped to 8 decimals.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let d = (2.0 - p.log10().floor()).clamp(2.0, 8.0) as usize;
        d
    };
    format!("{p:.digits$}%")
}

/// One figure of the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Plot {
    /// File name under `plots/`.
    pub file: String,
    /// What it shows.
    pub title: String,
    /// Why it is not drawn, when it is not (the scenario does not vary what it is against).
    pub absent: Option<String>,
    /// The SVG document, when drawn (its panels side by side).
    #[serde(skip)]
    pub svg: String,
    /// Each panel as its own SVG document, for the HTML page to wrap to its width.
    #[serde(skip)]
    pub panels: Vec<String>,
}

impl Plot {
    /// A figure of `panels`, drawn whole and panel by panel.
    fn drawn(file: &str, title: &str, panels: &[Panel]) -> Result<Plot, ReportError> {
        Ok(Plot {
            file: file.into(),
            title: title.into(),
            absent: None,
            svg: crate::report::plot::svg(panels)?,
            panels: panels
                .iter()
                .map(|p| crate::report::plot::svg(std::slice::from_ref(p)))
                .collect::<Result<_, _>>()?,
        })
    }

    /// A figure not drawn, and why.
    fn absent(file: &str, title: &str, why: String) -> Plot {
        Plot {
            file: file.into(),
            title: title.into(),
            absent: Some(why),
            svg: String::new(),
            panels: Vec::new(),
        }
    }
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or directory.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A chart.
    #[error(transparent)]
    Plot(#[from] crate::report::plot::PlotError),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |e| ReportError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The parameter a plot is drawn against: its name, the token that names it in case labels,
/// and its value in a case's parameters.
struct Axis {
    key: &'static str,
    token: &'static str,
    label: &'static str,
    file: &'static str,
    log: bool,
}

const AXES: [Axis; 5] = [
    Axis {
        key: "quorum",
        token: "q=",
        label: "quorum q",
        file: "vs-quorum.svg",
        log: false,
    },
    Axis {
        key: "validators",
        token: "n=",
        label: "validators",
        file: "vs-validators.svg",
        log: false,
    },
    Axis {
        key: "difficulty",
        token: "d=",
        label: "PoW difficulty (bits)",
        file: "vs-difficulty.svg",
        log: false,
    },
    Axis {
        key: "threads",
        token: "t=",
        label: "threads",
        file: "vs-threads.svg",
        log: false,
    },
    Axis {
        key: "contracts",
        token: "m=",
        label: "contracts in the market",
        file: "vs-contracts.svg",
        log: true,
    },
];

/// The case label without the token of `axis`: the name of the series a case belongs to.
fn series_name(label: &str, token: &str) -> String {
    label
        .split(' ')
        .filter(|t| !t.starts_with(token))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every plot of the report, drawn or with the reason it is not.
pub fn plots(c: &Comparison) -> Result<Vec<Plot>, ReportError> {
    let summaries = c.summaries();
    let mut out = vec![cases_plot(&summaries)?];
    for axis in &AXES {
        out.push(sweep_plot(axis, &summaries)?);
    }
    out.push(byzantine_plot(c, &summaries)?);
    out.push(cdf_plot(c)?);
    Ok(out)
}

/// Throughput and p99 latency against one swept parameter: the cases that have it, grouped by
/// everything else in their label.
fn sweep_plot(axis: &Axis, summaries: &[Summary]) -> Result<Plot, ReportError> {
    // Series: cases that have this parameter, grouped by everything else in their label.
    let mut groups: Vec<(String, Vec<(f64, &Summary)>)> = Vec::new();
    for s in summaries {
        let Some(x) = s.parameters[axis.key].as_f64() else {
            continue;
        };
        let name = series_name(&s.label, axis.token);
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, pts)) => pts.push((x, s)),
            None => groups.push((name, vec![(x, s)])),
        }
    }
    let title = format!(
        "Throughput and p99 latency against {} (each point in its case's colour)",
        axis.label
    );
    if !groups.iter().any(|(_, pts)| {
        pts.iter()
            .any(|(x, _)| pts.iter().any(|(y, _)| (x - y).abs() > 0.0))
    }) {
        return Ok(Plot::absent(
            axis.file,
            &title,
            format!("the scenario does not vary {}", axis.key),
        ));
    }
    let series = |f: &dyn Fn(&Summary) -> f64| -> Vec<Series> {
        groups
            .iter()
            .map(|(name, pts)| {
                let mut p: Vec<(f64, f64, usize)> =
                    pts.iter().map(|(x, s)| (*x, f(s), s.case)).collect();
                p.sort_by(|a, b| a.0.total_cmp(&b.0));
                // Each point is a case: in its colour, as in every other plot.
                Series {
                    point_colours: p.iter().map(|q| q.2).collect(),
                    ..Series::measured(name.clone(), p.iter().map(|q| (q.0, q.1)).collect())
                }
            })
            .collect()
    };
    Plot::drawn(
        axis.file,
        &title,
        &[
            Panel {
                title: "committed tx/s (median)".into(),
                x_label: axis.label.into(),
                y_label: "tx/s".into(),
                series: series(&|s| s.throughput_per_s.median),
                log_x: axis.log,
                integer_x: true,
            },
            Panel {
                title: "p99 latency, submission to commit (median)".into(),
                x_label: axis.label.into(),
                y_label: "s".into(),
                series: series(&|s| s.latency_p99_us.median / 1e6),
                log_x: axis.log,
                integer_x: true,
            },
        ],
    )
}

/// Every case side by side: throughput, p99 latency and CPU per committed transaction, each
/// case's median with its range over repetitions, one colour per case in all three panels.
fn cases_plot(summaries: &[Summary]) -> Result<Plot, ReportError> {
    let panel = |title: &str, y_label: &str, f: &dyn Fn(&Summary) -> (f64, f64, f64)| Panel {
        title: title.into(),
        x_label: "case (named below)".into(),
        y_label: y_label.into(),
        series: summaries
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let (median, lo, hi) = f(s);
                #[allow(clippy::cast_precision_loss)]
                let x = (k + 1) as f64;
                Series {
                    intervals: vec![(x, lo, hi)],
                    colour: Some(s.case),
                    ..Series::measured(format!("{} {}", k + 1, s.label), vec![(x, median)])
                }
            })
            .collect(),
        log_x: false,
        integer_x: true,
    };
    let spread = |v: &crate::lab::compare::Spread, scale: f64| {
        (v.median * scale, v.min * scale, v.max * scale)
    };
    Plot::drawn(
        "cases.svg",
        "Every case side by side: median and range over repetitions",
        &[
            panel("committed tx/s", "tx/s", &|s| {
                spread(&s.throughput_per_s, 1.0)
            }),
            panel("p99 latency, submission to commit", "s", &|s| {
                spread(&s.latency_p99_us, 1e-6)
            }),
            panel("CPU per committed transaction", "CPU-us", &|s| {
                spread(&s.cpu_seconds_per_committed, 1e6)
            }),
        ],
    )
}

/// The 95% Wilson score interval of `k` successes in `n` trials ((0, 1) for none).
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    #[allow(clippy::cast_precision_loss)]
    let (k, n) = (k as f64, n as f64);
    let z2 = 1.96f64 * 1.96;
    let p = k / n;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = (z2 * (p * (1.0 - p) / n + z2 / (4.0 * n * n))).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// A measured wrong-accept point: (Byzantine fraction, rate, interval low, interval high, case).
type Measured = (f64, f64, f64, f64, usize);

/// What the wrong-accept plot draws: measured series by name, the model curves' (validators,
/// quorum, extra), the largest Byzantine fraction of any case and of a measured one.
struct WrongAccepts {
    groups: Vec<(String, Vec<Measured>)>,
    curves: Vec<(u32, u32, u32)>,
    f_max: f64,
    measured_max: f64,
}

impl WrongAccepts {
    /// The IPOW cases whose Byzantine validators can approve an invalid transaction.
    fn of(c: &Comparison, summaries: &[Summary]) -> Self {
        let rows = c.rows();
        let mut w = WrongAccepts {
            groups: Vec::new(),
            curves: Vec::new(),
            f_max: 0.5,
            measured_max: 0.0,
        };
        for s in summaries {
            let VariantConfig::Ipow(p) = &c.cases[s.case].config.variant else {
                continue;
            };
            if !approves_invalid(p.behaviour) {
                continue;
            }
            let name = format!(
                "{} {} (measured, 95% interval)",
                series_name(&series_name(&s.label, "f="), p.behaviour.name()),
                p.behaviour.name()
            );
            let (k, n) = rows
                .iter()
                .filter(|r| r.case == s.case)
                .fold((0, 0), |(k, n), r| {
                    (k + r.wrong_accepts, n + r.honest_invalid)
                });
            let (lo, hi) = wilson(k, n);
            let point = (p.byzantine_fraction, s.wrong_accept_rate, lo, hi, s.case);
            match w.groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, pts)) => pts.push(point),
                None => w.groups.push((name, vec![point])),
            }
            let key = (p.validators, p.quorum, p.extra_max);
            if !w.curves.contains(&key) {
                w.curves.push(key);
            }
            w.f_max = w.f_max.max(p.byzantine_fraction);
            w.measured_max = w.measured_max.max(p.byzantine_fraction);
        }
        w
    }

    /// The measured series (side by side where they share a fraction: dodged by 1% of the
    /// axis, so their intervals do not hide each other) and the model curves up to `x_max`.
    #[allow(clippy::cast_precision_loss)]
    fn series(&self, x_max: f64) -> Vec<Series> {
        let middle = (self.groups.len() as f64 - 1.0) / 2.0;
        let mut series: Vec<Series> = self
            .groups
            .iter()
            .enumerate()
            .map(|(k, (name, points))| {
                let dx = (k as f64 - middle) * 0.01 * x_max;
                let mut points = points.clone();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    intervals: points.iter().map(|p| (p.0 + dx, p.2, p.3)).collect(),
                    point_colours: points.iter().map(|p| p.4).collect(),
                    ..Series::measured(
                        name.clone(),
                        points.iter().map(|p| (p.0 + dx, p.1)).collect(),
                    )
                }
            })
            .collect();
        for &(n, q, e) in &self.curves {
            let points = (0..=100)
                .map(|i| {
                    let f = x_max * f64::from(i) / 100.0;
                    (f, theoretical_wrong_rate(n, q, e, f))
                })
                .collect();
            series.push(Series {
                theory: true,
                markers: false,
                ..Series::measured(format!("protocol model q={q} n={n} extra={e}"), points)
            });
        }
        series
    }
}

/// Measured wrong-accept rate against the Byzantine fraction, with its 95% interval, beside the
/// protocol model's curve for each (validators, quorum, extra): over the whole range, and near
/// the measured fractions, where rates of a few tenths of a percent are visible.
fn byzantine_plot(c: &Comparison, summaries: &[Summary]) -> Result<Plot, ReportError> {
    let title = "Wrong-accept rate against the Byzantine fraction, with the theoretical curve \
                 (each point in its case's colour)";
    let file = "wrong-accepts-vs-byzantine.svg";
    let w = WrongAccepts::of(c, summaries);
    if w.groups.is_empty() {
        return Ok(Plot::absent(
            file,
            title,
            "the scenario has no IPOW case whose Byzantine validators can approve an invalid transaction".into(),
        ));
    }
    let panel = |title: &str, x_max: f64| Panel {
        title: title.into(),
        x_label: "Byzantine fraction".into(),
        y_label: "wrong-accept rate".into(),
        series: w.series(x_max),
        log_x: false,
        integer_x: false,
    };
    let near = (w.measured_max * 1.5).clamp(0.05, w.f_max);
    Plot::drawn(
        file,
        title,
        &[
            panel(
                "wrong accepts / transactions an honest validator rejects",
                w.f_max,
            ),
            panel("the same, near the measured fractions", near),
        ],
    )
}

/// Latency CDF (submission to commit) per case, over the committed transactions of its first
/// repetition.
fn cdf_plot(c: &Comparison) -> Result<Plot, ReportError> {
    let mut series = Vec::new();
    for run in c.runs.iter().filter(|r| r.repetition == 0) {
        let mut lat: Vec<u64> = run
            .report
            .records
            .iter()
            .filter_map(|r| Some(r.committed_ns?.saturating_sub(r.submitted_ns) / 1000))
            .collect();
        if lat.is_empty() {
            continue;
        }
        lat.sort_unstable();
        let n = lat.len();
        let steps = n.min(200);
        let points = (1..=steps)
            .map(|i| {
                let k = (i * n).div_ceil(steps) - 1;
                (lat[k].max(1) as f64 / 1e6, (k + 1) as f64 / n as f64)
            })
            .collect();
        series.push(Series {
            markers: false,
            colour: Some(run.case),
            ..Series::measured(c.cases[run.case].label.clone(), points)
        });
    }
    let title = "Latency CDF per case, submission to commit (first repetition)";
    if series.is_empty() {
        return Ok(Plot::absent(
            "latency-cdf.svg",
            title,
            "no transaction was committed".into(),
        ));
    }
    Plot::drawn(
        "latency-cdf.svg",
        title,
        &[Panel {
            title: "fraction committed within".into(),
            x_label: "latency (s, log scale)".into(),
            y_label: "fraction of committed".into(),
            series,
            log_x: true,
            integer_x: false,
        }],
    )
}

/// The congestion table's header (runs on a grid), shared by Markdown and HTML.
pub const CONGESTION_COLUMNS: [&str; 8] = [
    "case",
    "rep",
    "scheme trades",
    "curtailed (share)",
    "slots (period-slot schemes)",
    "most curtailed slots",
    "residual (by committed trades alone)",
    "committed base's share of an overloaded branch's flow (mean, max)",
];

/// One run's congestion cells, in [`CONGESTION_COLUMNS`]' order (None without a grid).
pub fn congestion_cells(r: &Row) -> Option<Vec<String>> {
    let c = r.congestion.as_ref()?;
    Some(vec![
        r.label.clone(),
        r.repetition.to_string(),
        c.scheme_trades.to_string(),
        format!("{} ({})", c.curtailed_trades, percent(c.curtailed_share())),
        format!("{} ({})", c.slots.len(), c.slots_touched),
        c.most_curtailed(3),
        format!(
            "{} ({})",
            c.residual_overloads,
            c.branches_overloaded_by_base.len()
        ),
        format!(
            "{:.0}%, {:.0}%",
            c.base_share_mean * 100.0,
            c.base_share_max * 100.0
        ),
    ])
}

/// The table of runs whose validators ran over several processes.
pub const TIER_COLUMNS: [&str; 9] = [
    "case",
    "rep",
    "processes (asks as)",
    "rounds",
    "send to frontier, s (longest round)",
    "asks sent: messages, MB",
    "answers received: messages, MB",
    "CPU s per process (0 first)",
    "peak memory MiB per process",
];

/// One run's cells in [`TIER_COLUMNS`]' order (None for a run in one process).
pub fn tier_cells(r: &Row) -> Option<Vec<String>> {
    let t = r.tier.as_ref()?;
    let f = |k: &str| t.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    let channel = |name: &str| {
        let c = t
            .get("channels")?
            .as_array()?
            .iter()
            .find(|c| c["name"] == name)?;
        Some((c["messages"].as_u64()?, c["bytes"].as_u64()?))
    };
    let traffic = |name: &str| {
        channel(name).map_or("0, 0".into(), |(m, b)| {
            format!("{m}, {:.2}", b as f64 / 1e6)
        })
    };
    let list = |k: &str, scale: f64, digits: usize| -> Vec<String> {
        t.get(k)
            .and_then(serde_json::Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(serde_json::Value::as_f64)
                    .map(|x| format!("{:.digits$}", x / scale))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut cpu = vec![format!("{:.2}", f("cpu_s_process0"))];
    cpu.extend(list("cpu_s", 1.0, 2));
    Some(vec![
        r.label.clone(),
        r.repetition.to_string(),
        format!(
            "{} ({})",
            f("processes"),
            t.get("ship")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
        ),
        format!("{}", f("rounds")),
        format!(
            "{:.3} ({:.3})",
            f("send_to_frontier_s"),
            f("send_to_frontier_max_s")
        ),
        traffic("asks"),
        traffic("answers"),
        cpu.join(", "),
        list("peak_rss_bytes", 1048576.0, 0).join(", "),
    ])
}

/// The HTML table of runs over several processes, when there is one.
fn html_tier(h: &mut String, c: &Comparison) {
    let rows: Vec<Vec<String>> = c.rows().iter().filter_map(tier_cells).collect();
    if !rows.is_empty() {
        let _ = writeln!(h, "<h2>{TIER_HEADING}</h2>");
        html_table(h, "tier", &TIER_COLUMNS, rows.into_iter());
    }
}

const TIER_HEADING: &str = "Validators across processes (per run; per period in summary.json)";

/// The HTML congestion table, when some run was on a grid.
fn html_congestion(h: &mut String, c: &Comparison) {
    let congestion: Vec<Vec<String>> = c.rows().iter().filter_map(congestion_cells).collect();
    if !congestion.is_empty() {
        let _ = writeln!(
            h,
            "<h2>Congestion per run (per delivery slot, on committed trades)</h2>"
        );
        html_table(h, "congestion", &CONGESTION_COLUMNS, congestion.into_iter());
    }
}

/// The results table's header, shared by Markdown and HTML.
pub const RUN_COLUMNS: [&str; 18] = [
    "case",
    "rep",
    "submitted",
    "accepted",
    "rejected",
    "undecided",
    "curtailed",
    "throughput (tx/s)",
    "p50",
    "p95",
    "p99",
    "max",
    "CPU-us / committed",
    "validations",
    "signature batches (bisections, singles)",
    "PoW nonces",
    "wrong accepts (rate; expected ± sd)",
    "wrong rejects (rate; expected ± sd)",
];

fn wrong(n: u64, of: u64, rate: f64, expected: f64, sd: f64) -> String {
    let sd_rate = if of == 0 { 0.0 } else { sd / of as f64 };
    format!(
        "{n} / {of} ({}; {} ± {})",
        percent(rate),
        percent(expected),
        percent(sd_rate)
    )
}

/// One run's cells, in [`RUN_COLUMNS`]' order: the one cell renderer of every run table.
pub fn run_cells(r: &Row) -> Vec<String> {
    vec![
        r.label.clone(),
        r.repetition.to_string(),
        r.submitted.to_string(),
        r.accepted.to_string(),
        r.rejected.to_string(),
        r.undecided.to_string(),
        r.curtailed.to_string(),
        format!("{:.0}", r.throughput_per_s),
        duration_us(r.latency_p50_us),
        duration_us(r.latency_p95_us),
        duration_us(r.latency_p99_us),
        duration_us(r.latency_max_us),
        format!("{:.1}", r.cpu_seconds_per_committed * 1e6),
        r.validations.to_string(),
        format!(
            "{} ({}, {})",
            r.signature_batches, r.bisection_tests, r.single_checks
        ),
        r.hashes.to_string(),
        wrong(
            r.wrong_accepts,
            r.honest_invalid,
            r.wrong_accept_rate,
            r.expected_wrong_accept_rate,
            r.wrong_accept_sd,
        ),
        wrong(
            r.wrong_rejects,
            r.honest_valid,
            r.wrong_reject_rate,
            r.expected_wrong_reject_rate,
            r.wrong_reject_sd,
        ),
    ]
}

/// The ratio table's header.
pub const SUMMARY_COLUMNS: [&str; 9] = [
    "case",
    "throughput (tx/s)",
    "throughput ratio",
    "p99",
    "p99 ratio",
    "CPU-us / committed",
    "CPU ratio",
    "wrong-accept rate (expected)",
    "wrong-reject rate (expected)",
];

fn spread_ratio(s: &crate::lab::compare::Spread) -> String {
    format!("{:.3} [{:.3}, {:.3}]", s.median, s.min, s.max)
}

fn summary_cells(s: &Summary) -> Vec<String> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let us = |v: f64| duration_us(v.round() as u64);
    vec![
        s.label.clone(),
        format!(
            "{:.0} [{:.0}, {:.0}]",
            s.throughput_per_s.median, s.throughput_per_s.min, s.throughput_per_s.max
        ),
        spread_ratio(&s.throughput_ratio),
        format!(
            "{} [{}, {}]",
            us(s.latency_p99_us.median),
            us(s.latency_p99_us.min),
            us(s.latency_p99_us.max)
        ),
        spread_ratio(&s.latency_p99_ratio),
        format!("{:.1}", s.cpu_seconds_per_committed.median * 1e6),
        spread_ratio(&s.cpu_ratio),
        format!(
            "{} ({})",
            percent(s.wrong_accept_rate),
            percent(s.expected_wrong_accept_rate)
        ),
        format!(
            "{} ({})",
            percent(s.wrong_reject_rate),
            percent(s.expected_wrong_reject_rate)
        ),
    ]
}

fn setup_pairs(c: &Comparison) -> Vec<(&'static str, String)> {
    let s = &c.setup;
    let m = &s.machine;
    vec![
        (
            "machine",
            format!(
                "{}, {} cores, {:.1} GiB, {}",
                m.cpu,
                m.cores,
                m.memory_bytes as f64 / f64::from(1u32 << 30),
                m.os
            ),
        ),
        (
            "build",
            format!(
                "ipow {} at git {}, {}",
                m.ipow_version, m.git_revision, m.rustc
            ),
        ),
        (
            "signatures",
            format!(
                "{}; curve backend {}",
                crate::crypto::verify::RULE,
                m.curve_backend
            ),
        ),
        ("load average", load_average_cell(m)),
        ("scenario", format!("{} ({})", s.scenario, s.source)),
        ("grid", s.grid.clone().unwrap_or_else(|| "none".into())),
        (
            "market",
            format!(
                "seed {}; {}",
                s.seed,
                serde_json::to_string(&s.market).unwrap_or_default()
            ),
        ),
        (
            "load",
            format!(
                "{}, at most {} transactions per period",
                s.load, s.period_txs
            ),
        ),
        (
            "repetitions",
            format!(
                "{}, interleaved (every case once per repetition, in case order)",
                s.repetitions
            ),
        ),
        (
            "sweep",
            if s.swept.is_empty() {
                "none".into()
            } else {
                format!("{} over {}", s.sweep, s.swept.join(", "))
            },
        ),
        ("baseline", s.baseline.clone()),
    ]
}

/// The report's glossary; README.md's Glossary lists the same terms (a test checks it).
pub const DEFINITIONS: [&str; 15] = [
    "**throughput**: committed transactions / wall time of the run (workload generation excluded).",
    "**latency**: from a transaction's intended submission to the commit of its block (closed loop: every transaction is submitted at the start), percentiles from an HDR histogram at 3 significant digits.",
    "**CPU-us / committed**: user + system CPU time of the process over the run, all threads, per committed transaction.",
    "**O1-O4, W1-W2**: the steps of the paper's Table 1. The supervision node publishes the period's context (O1), assigns each open transaction to an idle validator that never saw it (O2), tallies the proofs (O3) and seals the accepted (O4); a validator checks its transaction (W1) and returns its proof Z(Tk, e) (W2).",
    "**scheme**: a period's pending transactions that pass the local checks (everything before signatures), as trades of their energy over their delivery slot (MWh per hour as MW), grouped by slot for the congestion check.",
    "**delivery slot, committed base**: a contract's delivery time falls in a slot (an hour unless the market says otherwise); trades of different slots never share a line. A slot's committed base is the flows of every trade committed for it in earlier periods: firm, never curtailed, and the starting point of the slot's flows in every later period.",
    "**cut**: one curtailment round at O1: the most loaded branch, its direction and the cut-off in curtailment order (lowest priority, then latest submitted, first). The O1 context is the cuts and the priorities; its time is the supervision node's.",
    "**curtailed**: valid contracts rejected because the period's congestion rule curtails them (right rejections). A scheme trade the rounds curtail whose contract also fails another check (a forged signature) is counted under that check, so scheme trades curtailed can exceed contracts rejected for congestion.",
    "**residual**: a branch still overloaded after the rounds because no remaining trade aggravates it, or because the committed base alone overloads it (then every pending trade aggravating it was curtailed); curtailment cannot relieve it.",
    "**wrong accepts**: accepted transactions that an honest validator rejects in the period that decided them (planted invalid, replayed, or curtailed by the congestion rule), over all such transactions; **wrong rejects** the converse. *Expected* is the protocol model (validators drawn without replacement from the actual set, ties answered by asking one more, up to q + extra), ± one binomial standard deviation.",
    "**P(dishonest majority in a quorum)**: the simpler model, a binomial tail: q validators drawn with replacement at the Byzantine fraction, more than half dishonest. It is not the expectation printed beside wrong accepts (the protocol model above); for PoW, which has no quorum, it is 0.",
    "**ratios**: each case against the baseline run of the same repetition (they ran side by side); median [min, max] over repetitions.",
    "**loss compensation**: at settlement, when the transmission company did not carry a contract's energy, it pays the seller price x sent for the energy it took into the network and lost (and the purchaser damages x sent).",
    "**node secret**: 32 bytes kept outside a store; the validators' MAC keys and the block-signing keys of the supervision and master nodes are derived from it.",
    "**pace**: an open-loop run's decided rate against its offered rate; a run under 95% of it fell behind.",
];

/// `report.md`.
pub fn markdown(c: &Comparison, plots: &[Plot]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# ipow compare: {}\n", c.setup.scenario);
    if let Some(d) = &c.setup.description {
        let _ = writeln!(md, "{d}\n");
    }
    let _ = writeln!(md, "## Setup\n\n| | |\n|---|---|");
    for (k, v) in setup_pairs(c) {
        let _ = writeln!(md, "| {k} | {} |", v.replace('|', "\\|"));
    }
    let _ = writeln!(md, "\n## Results per run\n");
    md_table(&mut md, &RUN_COLUMNS, c.rows().iter().map(run_cells));
    let congestion: Vec<Vec<String>> = c.rows().iter().filter_map(congestion_cells).collect();
    if !congestion.is_empty() {
        let _ = writeln!(
            md,
            "\n## Congestion per run (per delivery slot, on committed trades)\n"
        );
        md_table(&mut md, &CONGESTION_COLUMNS, congestion.into_iter());
    }
    let tier: Vec<Vec<String>> = c.rows().iter().filter_map(tier_cells).collect();
    if !tier.is_empty() {
        let _ = writeln!(md, "\n## {TIER_HEADING}\n");
        md_table(&mut md, &TIER_COLUMNS, tier.into_iter());
    }
    let _ = writeln!(
        md,
        "\n## Against the baseline ({}): median [min, max] over repetitions\n",
        c.setup.baseline
    );
    md_table(
        &mut md,
        &SUMMARY_COLUMNS,
        c.summaries().iter().map(summary_cells),
    );
    let _ = writeln!(md, "\n## Plots\n");
    for p in plots {
        match &p.absent {
            None => {
                let _ = writeln!(md, "### {}\n\n![{}](plots/{})\n", p.title, p.title, p.file);
            }
            Some(why) => {
                let _ = writeln!(md, "- *{}*: not drawn, {why}.", p.title);
            }
        }
    }
    let _ = writeln!(md, "\n## Definitions\n");
    for d in DEFINITIONS {
        let _ = writeln!(md, "- {d}");
    }
    let _ = writeln!(
        md,
        "\nEvery figure above is in `summary.json`; every transaction of every run is a row of `transactions.csv`."
    );
    md
}

fn md_table(out: &mut String, columns: &[&str], rows: impl Iterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", columns.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(columns.len()));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
}

/// Escapes text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `report.html`: the same as the Markdown, self-contained, the plots inline.
pub fn html(c: &Comparison, plots: &[Plot]) -> String {
    let mut h = String::new();
    let title = escape(&format!("ipow compare: {}", c.setup.scenario));
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\n\
         body{{font-family:sans-serif;margin:2em;color:#111}}\
         table{{border-collapse:collapse;margin:1em 0;font-size:13px;display:block;overflow-x:auto;max-width:100%}}\
         td,th{{border:1px solid #bbb;padding:3px 7px;text-align:right;white-space:nowrap}}\
         td:first-child,th:first-child{{text-align:left}}\
         th{{background:#eef}} #setup td,#setup th{{text-align:left;white-space:normal;overflow-wrap:anywhere}} figure{{margin:1em 0}} .panels{{display:flex;flex-wrap:wrap;gap:.5em;align-items:flex-start}} svg{{max-width:100%;height:auto}}\n\
         </style></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(d) = &c.setup.description {
        let _ = writeln!(h, "<p>{}</p>", escape(d));
    }
    let _ = writeln!(h, "<h2>Setup</h2>\n<table id=\"setup\">");
    for (k, v) in setup_pairs(c) {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    let _ = writeln!(h, "</table>\n<h2>Results per run</h2>");
    html_table(&mut h, "runs", &RUN_COLUMNS, c.rows().iter().map(run_cells));
    html_congestion(&mut h, c);
    html_tier(&mut h, c);
    let _ = writeln!(
        h,
        "<h2>Against the baseline ({}): median [min, max] over repetitions</h2>",
        escape(&c.setup.baseline)
    );
    html_table(
        &mut h,
        "ratios",
        &SUMMARY_COLUMNS,
        c.summaries().iter().map(summary_cells),
    );
    let _ = writeln!(h, "<h2>Plots</h2>");
    for p in plots {
        match &p.absent {
            None => {
                // Each panel inline (an SVG root without an XML declaration embeds as is), at
                // its own width: a narrow window wraps panels instead of shrinking them.
                let _ = writeln!(
                    h,
                    "<figure><figcaption>{}</figcaption>\n<div class=\"panels\">\n{}\n</div></figure>",
                    escape(&p.title),
                    p.panels.join("\n")
                );
            }
            Some(why) => {
                let _ = writeln!(
                    h,
                    "<p><em>{}</em>: not drawn, {}.</p>",
                    escape(&p.title),
                    escape(why)
                );
            }
        }
    }
    let _ = writeln!(h, "<h2>Definitions</h2>\n<ul>");
    for d in DEFINITIONS {
        let _ = writeln!(h, "<li>{}</li>", emphasis(&escape(d)));
    }
    let _ = writeln!(h, "</ul>\n</body></html>");
    h
}

/// Markdown's `**bold**` and `*italic*` as HTML: the pieces between markers alternate.
fn emphasis(text: &str) -> String {
    let mut out = String::new();
    for (k, part) in text.split("**").enumerate() {
        if k > 0 {
            out += if k % 2 == 1 { "<b>" } else { "</b>" };
        }
        for (j, piece) in part.split('*').enumerate() {
            if j > 0 {
                out += if j % 2 == 1 { "<i>" } else { "</i>" };
            }
            out += piece;
        }
    }
    out
}

fn html_table(
    out: &mut String,
    id: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let _ = write!(out, "<table id=\"{id}\"><tr>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    let _ = writeln!(out, "</tr>");
    for r in rows {
        let _ = write!(out, "<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", escape(&c));
        }
        let _ = writeln!(out, "</tr>");
    }
    let _ = writeln!(out, "</table>");
}

/// `summary.json`: one object with every figure in the tables.
pub fn summary_json(c: &Comparison, plots: &[Plot]) -> serde_json::Value {
    let cases: Vec<serde_json::Value> = (0..c.cases.len())
        .map(|k| serde_json::json!({ "label": c.cases[k].label, "parameters": c.parameters(k) }))
        .collect();
    serde_json::json!({
        "format": FORMAT,
        "setup": c.setup,
        "cases": cases,
        "runs": c.rows(),
        "summaries": c.summaries(),
        "plots": plots,
    })
}

/// The CSV header of `transactions.csv`.
pub const CSV_HEADER: &str = "case,variant,repetition,tx,contract,submitted_ns,decided_ns,committed_ns,outcome,verdict,reason,truth,honest_verdict,validators_asked";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// A transaction's decision as `transactions.csv` writes it: outcome, verdict, reason (empty
/// where there is none).
pub fn decision_fields(
    r: &crate::pipeline::TxRecord,
) -> (&'static str, &'static str, &'static str) {
    let outcome = match r.outcome {
        Outcome::Accepted => "accepted",
        Outcome::Rejected => "rejected",
        Outcome::Undecided => "undecided",
    };
    let (verdict, reason) = match r.verdict {
        None => ("", ""),
        Some(Verdict::Valid) => ("valid", ""),
        Some(Verdict::Invalid(why)) => ("invalid", why.name()),
    };
    (outcome, verdict, reason)
}

/// Writes `transactions.csv`: one row per transaction per run.
pub fn write_csv(c: &Comparison, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(out, "{CSV_HEADER}")?;
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for run in &c.runs {
        let label = csv_field(&c.cases[run.case].label);
        let ids = c.contract_ids.get(&c.cases[run.case].contracts);
        for r in &run.report.records {
            let (outcome, verdict, reason) = decision_fields(r);
            let honest = match r.honest_valid {
                None => "",
                Some(true) => "valid",
                Some(false) => "invalid",
            };
            writeln!(
                out,
                "{},{label},{},{},{},{},{},{},{outcome},{verdict},{reason},{},{honest},{}",
                run.case,
                run.repetition,
                r.tx,
                ids.and_then(|ids| ids.get(r.tx as usize))
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                r.submitted_ns,
                opt(r.decided_ns),
                opt(r.committed_ns),
                crate::market::dataset::truth_name(r.truth),
                r.validators_asked
            )?;
        }
    }
    Ok(())
}

/// Checks, before any work, that a report can be written to `dir`: it is absent, an empty
/// directory or an earlier ipow report, and the directory it goes in accepts a new entry (a
/// probe directory is made and removed in the nearest existing ancestor). Errors name `dir`.
pub fn check_out_dir(dir: &Path) -> Result<(), ReportError> {
    let refuse = |message: String| ReportError::Io {
        path: dir.display().to_string(),
        message,
    };
    if let Ok(meta) = std::fs::symlink_metadata(dir) {
        if !meta.is_dir() {
            return Err(refuse(
                "exists and is not a directory; choose another --out".into(),
            ));
        }
        let mut entries = std::fs::read_dir(dir).map_err(|e| refuse(e.to_string()))?;
        if entries.next().is_some() && !dir.join("summary.json").is_file() {
            return Err(refuse(
                "exists and holds something other than an ipow report; choose another --out".into(),
            ));
        }
    }
    let mut ancestor = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    while !ancestor.exists() {
        match ancestor.parent() {
            Some(p) if !p.as_os_str().is_empty() => ancestor = p.to_path_buf(),
            _ => ancestor = PathBuf::from("."),
        }
    }
    if !ancestor.is_dir() {
        return Err(refuse(format!(
            "{} is not a directory, so nothing can be written below it",
            ancestor.display()
        )));
    }
    let probe = ancestor.join(format!(".ipow-probe-{}", std::process::id()));
    std::fs::create_dir(&probe).map_err(|e| {
        refuse(format!(
            "cannot be written: creating an entry in {} fails ({e})",
            ancestor.display()
        ))
    })?;
    let _ = std::fs::remove_dir(&probe);
    Ok(())
}

/// The setup's load-average row: before and after, and a warning when the machine was busy.
fn load_average_cell(m: &crate::lab::compare::Machine) -> String {
    let show = |l: Option<[f64; 3]>| {
        l.map_or_else(
            || "unknown".to_owned(),
            |l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]),
        )
    };
    format!(
        "1, 5 and 15 minutes: {} before, {} after{}",
        show(m.load_average_start),
        show(m.load_average_end),
        if m.busy {
            "; BUSY: other work shared the machine, so figures are slower and noisier"
        } else {
            ""
        }
    )
}

/// Writes the whole report into `dir`, replacing an earlier report there; returns the files
/// written, relative to `dir`.
pub fn write(c: &Comparison, dir: &Path) -> Result<Vec<String>, ReportError> {
    check_out_dir(dir)?;
    let plots = plots(c)?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    // An error on the temporary directory names the report's directory, not the temporary one.
    let named = |e: ReportError| match e {
        ReportError::Io { message, .. } => ReportError::Io {
            path: dir.display().to_string(),
            message: format!("cannot write the report: {message}"),
        },
        other => other,
    };
    let result = (|| -> Result<Vec<String>, ReportError> {
        std::fs::create_dir_all(tmp.join("plots")).map_err(io_err(&tmp))?;
        let mut files = Vec::new();
        let mut put = |rel: &str, bytes: &[u8]| -> Result<(), ReportError> {
            let path = tmp.join(rel);
            std::fs::write(&path, bytes).map_err(io_err(&path))?;
            files.push(rel.to_owned());
            Ok(())
        };
        put("report.md", markdown(c, &plots).as_bytes())?;
        put("report.html", html(c, &plots).as_bytes())?;
        let json = serde_json::to_string_pretty(&summary_json(c, &plots)).map_err(|e| {
            ReportError::Io {
                path: "summary.json".into(),
                message: e.to_string(),
            }
        })?;
        put("summary.json", json.as_bytes())?;
        for p in plots.iter().filter(|p| p.absent.is_none()) {
            put(&format!("plots/{}", p.file), p.svg.as_bytes())?;
        }
        let csv_path = tmp.join("transactions.csv");
        let file = std::fs::File::create(&csv_path).map_err(io_err(&csv_path))?;
        let mut w = std::io::BufWriter::new(file);
        write_csv(c, &mut w).map_err(io_err(&csv_path))?;
        let file = w
            .into_inner()
            .map_err(|e| io_err(&csv_path)(e.into_error()))?;
        file.sync_all().map_err(io_err(&csv_path))?;
        files.push("transactions.csv".into());
        Ok(files)
    })();
    let files = match result {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(named(e));
        }
    };
    // Swap: the old report moves aside, the new one takes its name, the old one goes.
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io_err(dir))?;
    }
    if let Err(e) = std::fs::rename(&tmp, dir) {
        if old.exists() {
            let _ = std::fs::rename(&old, dir);
        }
        return Err(io_err(dir)(e));
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(files)
}
