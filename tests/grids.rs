use std::path::PathBuf;

use ipow::base::rng::Rng;
use ipow::grid::{DcModel, Grid, GridError, Trade};

pub const CASES: [&str; 6] = [
    "pglib_opf_case14_ieee.m",
    "pglib_opf_case30_ieee.m",
    "pglib_opf_case57_ieee.m",
    "pglib_opf_case118_ieee.m",
    "pglib_opf_case300_ieee.m",
    "pglib_opf_case2869_pegase.m",
];

pub fn case_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("datasets/grids")
        .join(name)
}

pub fn load(name: &str) -> Grid {
    Grid::load(&case_path(name)).unwrap()
}

/// A balanced random trade set: `count` trades between random buses, 0.001 to 50 MW.
pub fn random_trades(grid: &Grid, seed: u64, count: usize) -> Vec<Trade> {
    let mut r = Rng::stream(seed, &[7]);
    (0..count)
        .map(|_| {
            let s = grid.buses[r.index(grid.buses.len())].number;
            let b = grid.buses[r.index(grid.buses.len())].number;
            Trade {
                seller_bus: s,
                buyer_bus: b,
                mw: r.between(1, 50_000) as f64 / 1000.0,
            }
        })
        .collect()
}

/// The reference: dense B of the whole network built from the branch table here (not from the
/// library's model), slack row and column removed, Gaussian elimination with partial pivoting,
/// several right-hand sides at once. Returns flows per right-hand side.
fn dense_reference_flows(grid: &Grid, trade_sets: &[Vec<Trade>]) -> Vec<Vec<f64>> {
    let n = grid.buses.len();
    let idx = |number: u32| grid.buses.iter().position(|b| b.number == number).unwrap();
    let slack = grid.slack;
    let keep: Vec<usize> = (0..n).filter(|&i| i != slack).collect();
    let mut pos = vec![usize::MAX; n];
    for (k, &i) in keep.iter().enumerate() {
        pos[i] = k;
    }
    let m = keep.len();
    let r = trade_sets.len();
    let w = m + r;
    // Augmented matrix [B | P], row-major.
    let mut a = vec![0.0f64; m * w];
    let mut susceptance = Vec::new();
    for br in &grid.branches {
        let b = if br.in_service {
            let tap = if br.ratio == 0.0 { 1.0 } else { br.ratio };
            1.0 / (br.x * tap)
        } else {
            0.0
        };
        susceptance.push(b);
        let (f, t) = (idx(br.from_bus), idx(br.to_bus));
        for (i, j, v) in [(f, f, b), (t, t, b), (f, t, -b), (t, f, -b)] {
            if pos[i] != usize::MAX && pos[j] != usize::MAX {
                a[pos[i] * w + pos[j]] += v;
            }
        }
    }
    for (c, trades) in trade_sets.iter().enumerate() {
        for t in trades {
            let (s, b) = (idx(t.seller_bus), idx(t.buyer_bus));
            if pos[s] != usize::MAX {
                a[pos[s] * w + m + c] += t.mw;
            }
            if pos[b] != usize::MAX {
                a[pos[b] * w + m + c] -= t.mw;
            }
        }
    }
    for k in 0..m {
        let p = (k..m)
            .max_by(|&i, &j| a[i * w + k].abs().total_cmp(&a[j * w + k].abs()))
            .unwrap();
        if p != k {
            for j in 0..w {
                a.swap(k * w + j, p * w + j);
            }
        }
        let d = a[k * w + k];
        assert!(d.abs() > 1e-12, "reference: singular at {k}");
        let (top, rest) = a.split_at_mut((k + 1) * w);
        let pivot_row = &top[k * w..];
        for row in rest.chunks_mut(w) {
            let f = row[k] / d;
            if f != 0.0 {
                for j in k..w {
                    row[j] -= f * pivot_row[j];
                }
            }
        }
    }
    let mut theta = vec![vec![0.0; n]; r];
    for c in 0..r {
        let mut x = vec![0.0; m];
        for k in (0..m).rev() {
            let mut s = a[k * w + m + c];
            for j in k + 1..m {
                s -= a[k * w + j] * x[j];
            }
            x[k] = s / a[k * w + k];
        }
        for (k, &i) in keep.iter().enumerate() {
            theta[c][i] = x[k];
        }
    }
    theta
        .iter()
        .map(|th| {
            grid.branches
                .iter()
                .zip(&susceptance)
                .map(|(br, &b)| b * (th[idx(br.from_bus)] - th[idx(br.to_bus)]))
                .collect()
        })
        .collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn flows_equal_a_dense_reference_on_every_case() {
    for name in CASES {
        let grid = load(name);
        let model = DcModel::new(grid.clone()).unwrap();
        let sets: Vec<Vec<Trade>> = (0..3)
            .map(|s| random_trades(&grid, s, 5 + 40 * s as usize))
            .collect();
        let reference = dense_reference_flows(&grid, &sets);
        for (set, want) in sets.iter().zip(&reference) {
            let got = model.flows(&model.injections(set).unwrap());
            let d = max_diff(&got, want);
            assert!(d <= 1e-6, "{name}: max |flow - reference| = {d} MW");
            // Not a vacuous comparison: something flows.
            assert!(got.iter().any(|f| f.abs() > 1.0), "{name}: no flow at all");
        }
    }
}

#[test]
fn flows_do_not_depend_on_the_slack_bus() {
    for name in CASES {
        let grid = load(name);
        let trades = random_trades(&grid, 11, 60);
        let base = DcModel::new(grid.clone()).unwrap();
        let want = base.flows(&base.injections(&trades).unwrap());
        for pick in [1, grid.buses.len() / 2, grid.buses.len() - 1] {
            let other = grid.with_slack(grid.buses[pick].number).unwrap();
            let model = DcModel::new(other).unwrap();
            let got = model.flows(&model.injections(&trades).unwrap());
            let d = max_diff(&got, &want);
            assert!(
                d <= 1e-6,
                "{name}, slack bus index {pick}: differs by {d} MW"
            );
        }
    }
}

#[test]
fn ptdf_rows_match_the_full_ptdf_and_give_the_flows() {
    let grid = load("pglib_opf_case118_ieee.m");
    let model = DcModel::new(grid.clone()).unwrap();
    let full = model.ptdf_full();
    let n = grid.buses.len();
    for k in [0, 7, 100, grid.branches.len() - 1] {
        let row = model.ptdf_row(k);
        assert!(max_diff(&row, &full[k * n..(k + 1) * n]) < 1e-9);
    }
    let trades = random_trades(&grid, 5, 30);
    let flows = model.flows(&model.injections(&trades).unwrap());
    for k in [3, 50, 150] {
        let row = &full[k * n..(k + 1) * n];
        let by_ptdf: f64 = trades
            .iter()
            .map(|t| {
                let s = grid.bus_index(t.seller_bus).unwrap();
                let b = grid.bus_index(t.buyer_bus).unwrap();
                t.mw * (row[s] - row[b])
            })
            .sum();
        assert!((by_ptdf - flows[k]).abs() < 1e-6, "branch {k}");
    }
}

#[test]
fn parallel_branches_of_case118_split_flow_by_susceptance() {
    let grid = load("pglib_opf_case118_ieee.m");
    let info = grid.info();
    assert_eq!(info.parallel_branch_rows, 14, "7 parallel pairs");
    let model = DcModel::new(grid.clone()).unwrap();
    let trades = random_trades(&grid, 3, 80);
    let flows = model.flows(&model.injections(&trades).unwrap());
    let mut pairs = 0;
    for i in 0..grid.branches.len() {
        for j in i + 1..grid.branches.len() {
            let (a, b) = (&grid.branches[i], &grid.branches[j]);
            if (a.from, a.to) == (b.from, b.to) {
                pairs += 1;
                // Same angle difference: flows in proportion to susceptance, each row its own.
                assert!((flows[i] / a.b - flows[j] / b.b).abs() < 1e-9);
                assert!(flows[i] != 0.0);
            }
        }
    }
    assert_eq!(pairs, 7);
}

#[test]
fn negative_reactance_of_case300_is_a_negative_susceptance() {
    let grid = load("pglib_opf_case300_ieee.m");
    assert_eq!(grid.info().negative_reactance_rows, vec![178]);
    let br = &grid.branches[178];
    assert!(br.x < 0.0 && br.b < 0.0);
    let model = DcModel::new(grid.clone()).unwrap();
    let inj = model
        .injections(&[Trade {
            seller_bus: br.from_bus,
            buyer_bus: br.to_bus,
            mw: 100.0,
        }])
        .unwrap();
    let theta = model.angles(&inj);
    let flows = model.flows(&inj);
    let (f, t) = (br.from, br.to);
    // The flow is b (theta_f - theta_t) with b < 0: opposite in sign to the angle difference.
    assert!((flows[178] - br.b * (theta[f] - theta[t])).abs() < 1e-9);
    assert!(flows[178].signum() != (theta[f] - theta[t]).signum());
}

#[test]
fn out_of_service_branches_carry_nothing_and_unlimited_ones_never_overload() {
    let text = std::fs::read_to_string(case_path("pglib_opf_case14_ieee.m")).unwrap();
    let grid = Grid::parse("case14", &text).unwrap();
    // Branch row 0 (1-2) out of service, row 1 (1-5) unlimited: the case stays connected.
    let mut g = grid.clone();
    g.branches[0].in_service = false;
    g.branches[0].b = 0.0;
    g.branches[1].rate_a = 0.0;
    let model = DcModel::new(g).unwrap();
    let trades = [Trade {
        seller_bus: 1,
        buyer_bus: 2,
        mw: 5000.0,
    }];
    let report = model.flow_report(&trades).unwrap();
    assert_eq!(report.flows[0].mw, 0.0);
    assert!(report.flows[1].mw.abs() > 1000.0);
    assert!(report.overloaded.iter().all(|o| o.branch_index != 1));
    assert!(!report.overloaded.is_empty());
    for o in &report.overloaded {
        assert!((o.loading.unwrap() - o.mw.abs() / o.rate_a).abs() < 1e-12);
    }
}

fn case14_text() -> String {
    std::fs::read_to_string(case_path("pglib_opf_case14_ieee.m")).unwrap()
}

fn parse_err(text: &str) -> GridError {
    Grid::parse("bad.m", text).unwrap_err()
}

/// The 1-based line number of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_truncated_block_names_the_file_and_where_it_ends() {
    let text = case14_text();
    let cut = text.find("mpc.branch = [").unwrap() + 200;
    let e = parse_err(&text[..cut]);
    assert_eq!(e.file, "bad.m");
    assert!(e.message.contains("mpc.branch"), "{e}");
    assert!(e.message.contains("ends before"), "{e}");
    assert!(e.line > 0);
}

#[test]
fn a_missing_column_names_the_row_line_and_column() {
    let text = case14_text();
    let start = text.find("mpc.branch = [").unwrap();
    let row_start = start + text[start..].find('\n').unwrap() + 1;
    let row_end = row_start + text[row_start..].find(';').unwrap();
    let row = &text[row_start..row_end];
    let shorter = row.trim_end().rsplit_once(char::is_whitespace).unwrap().0;
    let bad = format!("{}{}{}", &text[..row_start], shorter, &text[row_end..]);
    let e = parse_err(&bad);
    assert!(e.message.contains("mpc.branch row 0 has 12 columns"), "{e}");
    assert_eq!(e.line, line_of(&text, "mpc.branch = [") + 1);
    assert!(e.column > 1);
    assert!(e.to_string().starts_with(&format!("bad.m:{}:", e.line)));
}

#[test]
fn a_non_numeric_value_names_its_exact_column() {
    let text = case14_text();
    let bus_line = line_of(&text, "mpc.bus = [") + 2; // the second bus row
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let original = lines[bus_line - 1].clone();
    let at = original.find("21.7").unwrap();
    lines[bus_line - 1] = original.replacen("21.7", "2x.7", 1);
    let e = parse_err(&lines.join("\n"));
    assert_eq!((e.line, e.column), (bus_line, at + 1), "{e}");
    assert!(e.message.contains("\"2x.7\" is not a number"), "{e}");
    // NaN and infinities are refused too.
    lines[bus_line - 1] = original.replacen("21.7", "NaN", 1);
    assert!(
        parse_err(&lines.join("\n"))
            .message
            .contains("not a finite number")
    );
}

#[test]
fn an_unknown_bus_in_a_branch_row_is_an_error() {
    let text = case14_text();
    let line = line_of(&text, "mpc.branch = [") + 1;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[line - 1] = lines[line - 1].replacen("\t1\t", "\t99\t", 1);
    let e = parse_err(&lines.join("\n"));
    assert_eq!(e.line, line);
    assert!(e.message.contains("bus 99 is not in mpc.bus"), "{e}");
    assert!(e.message.contains("fbus"), "{e}");
}

#[test]
fn a_zero_reactance_is_an_error() {
    let text = case14_text();
    let line = line_of(&text, "mpc.branch = [") + 1;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let fields: Vec<&str> = lines[line - 1].split_whitespace().collect();
    let x = fields[3].to_owned();
    lines[line - 1] = lines[line - 1].replacen(&x, "0.0", 1);
    let e = parse_err(&lines.join("\n"));
    assert_eq!(e.line, line);
    assert!(e.message.contains("zero reactance"), "{e}");
}

#[test]
fn a_disconnected_grid_and_unknown_trade_buses_are_errors() {
    let grid = load("pglib_opf_case14_ieee.m");
    // Bus 8 hangs on one branch (7-8); take it out of service.
    let mut g = grid.clone();
    for br in &mut g.branches {
        if br.from_bus == 8 || br.to_bus == 8 {
            br.in_service = false;
            br.b = 0.0;
        }
    }
    let e = DcModel::new(g).unwrap_err();
    assert!(e.message.contains("not connected"), "{e}");
    assert!(e.message.contains('8'), "{e}");
    let model = DcModel::new(grid).unwrap();
    let e = model
        .injections(&[
            Trade {
                seller_bus: 1,
                buyer_bus: 2,
                mw: 1.0,
            },
            Trade {
                seller_bus: 3,
                buyer_bus: 77,
                mw: 1.0,
            },
        ])
        .unwrap_err();
    assert_eq!(e.message, "trades[1]: buyer_bus: bus 77 is not in the case");
}

#[test]
fn case300_bus_numbers_keep_their_gaps_and_comments_are_ignored() {
    let grid = load("pglib_opf_case300_ieee.m");
    assert_eq!(grid.buses.len(), 300);
    assert_eq!(grid.branches.len(), 411);
    assert_eq!(grid.buses[grid.slack].number, 7049);
    assert!(grid.bus_index(9533).is_some());
    let pegase = load("pglib_opf_case2869_pegase.m");
    assert_eq!((pegase.buses.len(), pegase.branches.len()), (2869, 4582));
    assert_eq!(pegase.buses[pegase.slack].number, 4231);
    assert_eq!(pegase.generators.len(), 510);
}

#[test]
fn a_grid_without_generators_or_loads_cannot_place_a_market_and_says_which() {
    use ipow::grid::placement::GridMarket;
    let mut no_gens = load("pglib_opf_case14_ieee.m");
    no_gens
        .generators
        .iter_mut()
        .for_each(|g| g.in_service = false);
    let e = GridMarket::place(DcModel::new(no_gens).unwrap(), 4, 4).unwrap_err();
    assert!(e.file.ends_with("pglib_opf_case14_ieee.m"), "{e}");
    assert!(e.to_string().contains("no in-service generator"), "{e}");
    let mut no_loads = load("pglib_opf_case14_ieee.m");
    no_loads.buses.iter_mut().for_each(|b| b.pd = 0.0);
    let e = GridMarket::place(DcModel::new(no_loads).unwrap(), 4, 4).unwrap_err();
    assert!(e.to_string().contains("no bus with a positive load"), "{e}");
}

#[test]
fn a_second_reference_bus_is_an_error_naming_both() {
    let text = case14_text();
    // Bus 2 (a PV bus, type 2) made a reference bus beside bus 1.
    let line = line_of(&text, "\t2\t 2\t");
    let edited: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                l.replacen("\t2\t 2\t", "\t2\t 3\t", 1)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let e = parse_err(&edited);
    assert_eq!(e.line, line, "{e}");
    assert!(e.message.contains("bus 2 is a second reference bus"), "{e}");
    assert!(e.message.contains("after bus 1"), "{e}");
}
