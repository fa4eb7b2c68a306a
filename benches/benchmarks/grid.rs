//! Grids: the full PTDF of case2869pegase, and flows and congestion verdicts of 1,000,000
//! trades on it (the validators' verdicts from the published cuts, and the whole period with
//! the rounds that publish them), each against a bare pass that reads the trades and sums their injections per
//! bus (the least any flow computation must do). pandapower's `makePTDF` is measured beside
//! ipow's by `perf/run-grid.sh` (Python, so not a criterion peer here).
//!
//! Under `cargo bench` the trade count is the issue's; in test mode it is small.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion, Throughput};
use ipow::base::rng::Rng;
use ipow::grid::placement::SchemeTrade;
use ipow::grid::{DcModel, Grid};
use ipow::validate::congestion::{Curtailment, SlotBase, SlotCurtailments, scheme_flows};
use rayon::prelude::*;

use super::{all_cores, pool};

fn full_size() -> bool {
    std::env::args().any(|a| a == "--bench")
}

pub fn case2869() -> DcModel {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("datasets/grids/pglib_opf_case2869_pegase.m");
    DcModel::new(Grid::load(&path).unwrap()).unwrap()
}

/// `count` trades from generator buses to load buses whose total is `load_factor` x the case's
/// load; priorities from 8 values. A pure function of (seed, index).
pub fn market_trades(model: &DcModel, count: usize, load_factor: f64) -> Vec<SchemeTrade> {
    let g = model.grid();
    let gens: Vec<u32> = g
        .generators
        .iter()
        .filter(|x| x.in_service)
        .map(|x| g.bus_index(x.bus).unwrap() as u32)
        .collect();
    let loads: Vec<u32> = (0..g.buses.len())
        .filter(|&i| g.buses[i].pd > 0.0)
        .map(|i| i as u32)
        .collect();
    let total_load: f64 = g.buses.iter().map(|b| b.pd).sum();
    let mean_milli = (total_load * load_factor / count as f64 * 1000.0) as i64;
    (0..count)
        .into_par_iter()
        .map(|k| {
            let mut r = Rng::stream(17, &[k as u64]);
            SchemeTrade {
                order: k as u32,
                priority: r.below(8),
                seller: gens[r.index(gens.len())],
                buyer: loads[r.index(loads.len())],
                milli_mw: r.between(1, 2 * mean_milli.max(1)),
                slot: 0,
            }
        })
        .collect()
}

/// The bare pass: read every trade, add its power at the seller's bus, take it at the buyer's.
pub fn bare_pass(trades: &[SchemeTrade], buses: usize) -> Vec<i64> {
    let mut inj = vec![0i64; buses];
    for t in trades {
        inj[t.seller as usize] += t.milli_mw;
        inj[t.buyer as usize] -= t.milli_mw;
    }
    inj
}

/// Every trade's verdict recomputed alone from the published cuts (its own contribution on
/// each cut branch): the validators' work. Returns the curtailed count, summed rather than
/// filtered: rayon's `filter` branches on each verdict, and about half the heavy set is
/// curtailed, so counting that way cost a mispredicted branch every other trade (measured by
/// hand with today's verdict: 1M heavy trades in 5.9 ms filtered, 2.7 ms summed).
pub fn verdicts(c: &Curtailment, trades: &[SchemeTrade]) -> usize {
    trades
        .par_iter()
        .with_min_len(1 << 12)
        .map(|t| usize::from(c.curtailing_cut(t).is_some()))
        .sum()
}

/// The same number of trades over 24 delivery slots, each slot as loaded as `load_factor` x
/// the case's load (trade k in slot k mod 24).
pub fn slotted_trades(model: &DcModel, count: usize, load_factor: f64) -> Vec<SchemeTrade> {
    let mut v = market_trades(model, count, load_factor * 24.0);
    for (k, t) in v.iter_mut().enumerate() {
        t.slot = (k % 24) as u32;
    }
    v
}

/// The whole period over slots: each slot's rounds (on an empty base), then every verdict.
pub fn slotted_rule_and_verdicts(
    model: &DcModel,
    trades: &[SchemeTrade],
) -> (SlotCurtailments, usize) {
    let c = SlotCurtailments::compute(model, trades, &SlotBase::new());
    let curtailed = trades
        .par_iter()
        .with_min_len(1 << 12)
        .map(|t| usize::from(c.curtailing_cut(t).is_some()))
        .sum();
    (c, curtailed)
}

/// The whole period: the supervision node's rounds on the whole set, then every verdict.
pub fn rule_and_verdicts(model: &DcModel, trades: &[SchemeTrade]) -> (Curtailment, usize) {
    let c = Curtailment::compute(model, trades);
    let curtailed = verdicts(&c, trades);
    (c, curtailed)
}

pub fn bench(c: &mut Criterion) {
    let model = case2869();
    let g = model.grid();
    let (nb, nl) = (g.buses.len(), g.branches.len());
    let threads = all_cores();
    let p = pool(threads);

    let mut group = c.benchmark_group("grid_ptdf_case2869");
    group.sample_size(10);
    group.throughput(Throughput::Elements((nb * nl) as u64));
    group.bench_function(
        BenchmarkId::new("ipow_ptdf_full", format!("{threads}t")),
        |b| b.iter(|| p.install(|| black_box(model.ptdf_full()))),
    );
    group.finish();
    let full = p.install(|| model.ptdf_full());
    for k in [0, nl / 2, nl - 1] {
        let row = model.ptdf_row(k);
        let d = row
            .iter()
            .zip(&full[k * nb..(k + 1) * nb])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(d < 1e-9, "PTDF row {k} differs by {d}");
    }
    drop(full);

    let count = if full_size() { 1_000_000 } else { 20_000 };
    // Heavy: 1.1 x the case's load, hundreds of branches overloaded. Moderate: 0.5 x.
    let trades = p.install(|| market_trades(&model, count, 1.1));
    let moderate = p.install(|| market_trades(&model, count, 0.5));
    let mut group = c.benchmark_group(if full_size() {
        "grid_trades_1M"
    } else {
        "grid_trades_small"
    });
    group.sample_size(20);
    group.throughput(Throughput::Elements(count as u64));
    group.bench_function(BenchmarkId::new("bare_pass", "1t"), |b| {
        b.iter(|| black_box(bare_pass(black_box(&trades), nb)))
    });
    group.bench_function(BenchmarkId::new("ipow_flows", format!("{threads}t")), |b| {
        b.iter(|| p.install(|| black_box(scheme_flows(&model, &trades))))
    });
    // One pass of the rule's shape: every trade's rounded contribution to one cut branch,
    // summed. The rule costs a few of these per round.
    let heavy = p.install(|| Curtailment::compute(&model, &trades));
    let first_cut = &heavy.cuts[0];
    group.bench_function(
        BenchmarkId::new("contribution_pass", format!("{threads}t")),
        |b| {
            b.iter(|| {
                p.install(|| {
                    trades
                        .par_iter()
                        .with_min_len(1 << 14)
                        .map(|t| first_cut.contribution_w(t))
                        .sum::<i64>()
                })
            })
        },
    );
    // The validators' verdicts from the published cuts (the target), and the whole
    // period: the rounds that publish the cuts, then the verdicts.
    let moderate_cuts = p.install(|| Curtailment::compute(&model, &moderate));
    for (name, set, cuts) in [
        ("", &trades, &heavy),
        ("_moderate", &moderate, &moderate_cuts),
    ] {
        group.bench_function(
            BenchmarkId::new(format!("validator_verdicts{name}"), format!("{threads}t")),
            |b| b.iter(|| p.install(|| black_box(verdicts(cuts, set)))),
        );
        group.bench_function(
            BenchmarkId::new(
                format!("period_rule_and_verdicts{name}"),
                format!("{threads}t"),
            ),
            |b| b.iter(|| p.install(|| black_box(rule_and_verdicts(&model, set)))),
        );
    }
    // The same period over 24 delivery slots, each slot as loaded as the one-slot set.
    let slotted = p.install(|| slotted_trades(&model, count, 1.1));
    let slotted_moderate = p.install(|| slotted_trades(&model, count, 0.5));
    for (name, set) in [("", &slotted), ("_moderate", &slotted_moderate)] {
        group.bench_function(
            BenchmarkId::new(
                format!("period_rule_and_verdicts_24_slots{name}"),
                format!("{threads}t"),
            ),
            |b| b.iter(|| p.install(|| black_box(slotted_rule_and_verdicts(&model, set)))),
        );
    }
    group.finish();
    for (name, set) in [("heavy", &slotted), ("moderate", &slotted_moderate)] {
        let (cur, curtailed) = p.install(|| slotted_rule_and_verdicts(&model, set));
        assert_eq!(curtailed, cur.curtailed());
        let cuts: usize = cur.slots.iter().map(|s| s.curtailment.cuts.len()).sum();
        eprintln!(
            "grid: {count} trades over 24 slots on case2869pegase, {name}: {cuts} cuts, {curtailed} curtailed"
        );
    }
    // Answer checks: the flows are those of the bare pass's injections; the verdicts recomputed
    // per trade are the rounds' curtailments.
    let inj: Vec<f64> = bare_pass(&trades, nb)
        .iter()
        .map(|&m| m as f64 / 1000.0)
        .collect();
    let want = model.flows(&inj);
    let got = p.install(|| scheme_flows(&model, &trades));
    assert!(want.iter().zip(&got).all(|(a, b)| (a - b).abs() < 1e-9));
    for (name, set) in [
        ("heavy (1.1 x load)", &trades),
        ("moderate (0.5 x load)", &moderate),
    ] {
        let (cur, curtailed) = p.install(|| rule_and_verdicts(&model, set));
        assert_eq!(curtailed, cur.curtailed);
        assert!(!cur.cuts.is_empty(), "{name}: the scheme must congest");
        eprintln!(
            "grid: {count} trades on case2869pegase, {name}: {} branches overloaded before, {} cuts, {} curtailed, residual {:?}",
            cur.overloaded_before.len(),
            cur.cuts.len(),
            cur.curtailed,
            cur.residual
        );
    }
}
