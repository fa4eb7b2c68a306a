use std::collections::HashSet;

use ipow::validate::congestion::Curtailment;

use ipow::base::rng::Rng;
use ipow::consensus::ipow::{Behaviour, IpowParams};
use ipow::grid::placement::{GridMarket, SchemeTrade};
use ipow::grid::{DcModel, Grid};
use ipow::market::rules::{Workload, WorkloadParams};
use ipow::pipeline::{Pipeline, RunConfig, RunReport, VariantConfig};
use ipow::validate::{Reason, Verdict};

use crate::grids::{CASES, load};

use crate::util::pool;

/// A random scheme heavy enough to overload some branches: trades between random buses,
/// priorities from a handful of values.
fn scheme(grid: &Grid, seed: u64, count: usize, max_milli_mw: i64) -> Vec<SchemeTrade> {
    let mut r = Rng::stream(seed, &[3]);
    (0..count)
        .map(|k| SchemeTrade {
            order: k as u32,
            priority: r.below(4) * 10,
            seller: r.index(grid.buses.len()) as u32,
            buyer: r.index(grid.buses.len()) as u32,
            milli_mw: r.between(1, max_milli_mw),
        })
        .collect()
}

fn flows_of(model: &DcModel, trades: &[&SchemeTrade]) -> Vec<f64> {
    let mut inj = vec![0i64; model.grid().buses.len()];
    for t in trades {
        inj[t.seller as usize] += t.milli_mw;
        inj[t.buyer as usize] -= t.milli_mw;
    }
    let inj: Vec<f64> = inj.iter().map(|&m| m as f64 / 1000.0).collect();
    model.flows(&inj)
}

fn overloaded(model: &DcModel, flows: &[f64]) -> Vec<usize> {
    model
        .grid()
        .branches
        .iter()
        .zip(flows)
        .enumerate()
        .filter(|(_, (b, f))| b.is_limited() && f.abs() > b.rate_a)
        .map(|(k, _)| k)
        .collect()
}

#[test]
fn verdicts_recomputed_per_trade_leave_no_overload_and_match_the_rounds() {
    for (i, name) in CASES[..5].iter().enumerate() {
        let grid = load(name);
        let model = DcModel::new(grid.clone()).unwrap();
        let trades = scheme(&grid, i as u64, 400, 60_000);
        let c = Curtailment::compute(&model, &trades);
        assert!(
            !c.overloaded_before.is_empty(),
            "{name}: the scheme must overload something"
        );
        assert!(
            c.curtailed > 0 && c.curtailed < trades.len(),
            "{name}: {}",
            c.curtailed
        );
        // Each trade's verdict, recomputed alone from the published cuts.
        let kept: Vec<&SchemeTrade> = trades
            .iter()
            .filter(|t| c.curtailing_cut(t).is_none())
            .collect();
        assert_eq!(trades.len() - kept.len(), c.curtailed, "{name}");
        let left = overloaded(&model, &flows_of(&model, &kept));
        assert!(
            left.iter().all(|k| c.residual.contains(k)),
            "{name}: still overloaded {left:?}, residual {:?}",
            c.residual
        );
        for cut in &c.cuts {
            // Enough was removed, and the cut is a minimal prefix: without its last trade the
            // removed contribution would fall short (unless every aggravating trade went).
            assert!(cut.curtailed > 0, "{name}: a round that curtails nothing");
            let last = trades.iter().find(|t| t.order == cut.cutoff_order).unwrap();
            assert_eq!(last.priority, cut.cutoff_priority);
            let q_last = cut.contribution_w(last);
            assert!(q_last > 0);
            if cut.removed_w >= cut.excess_w {
                assert!(
                    cut.removed_w - q_last < cut.excess_w,
                    "{name}: cut not minimal"
                );
            }
        }
    }
}

#[test]
fn lowest_priority_goes_first_then_the_latest_submitted() {
    // case14: trades from bus 2 to bus 3 load branch row 2 (2-3, rateA 145) heavily.
    let grid = load("pglib_opf_case14_ieee.m");
    let model = DcModel::new(grid.clone()).unwrap();
    let (b2, b3) = (
        grid.bus_index(2).unwrap() as u32,
        grid.bus_index(3).unwrap() as u32,
    );
    let t = |order, priority| SchemeTrade {
        order,
        priority,
        seller: b2,
        buyer: b3,
        milli_mw: 60_000,
    };
    // Six 60 MW trades: about 2.6 of them fit on 2-3 (it carries ~0.88 of each).
    let trades = vec![t(0, 5), t(1, 0), t(2, 5), t(3, 0), t(4, 9), t(5, 5)];
    let c = Curtailment::compute(&model, &trades);
    let cut: HashSet<u32> = trades
        .iter()
        .filter(|x| c.curtailing_cut(x).is_some())
        .map(|x| x.order)
        .collect();
    assert_eq!(c.cuts[0].branch, 2, "{:?}", c.cuts);
    // Priority 0 ones first (1 and 3), then priority 5 from the latest (5, then 2); 4 (priority
    // 9) and 0 (the earliest of priority 5) stay.
    assert!(cut.contains(&1) && cut.contains(&3), "{cut:?}");
    assert!(!cut.contains(&4) && !cut.contains(&0), "{cut:?}");
    if cut.contains(&2) {
        assert!(cut.contains(&5));
    }
    let kept: Vec<&SchemeTrade> = trades.iter().filter(|x| !cut.contains(&x.order)).collect();
    assert!(overloaded(&model, &flows_of(&model, &kept)).is_empty());
}

#[test]
fn the_rule_depends_on_the_data_not_on_order_or_threads() {
    let grid = load("pglib_opf_case118_ieee.m");
    let model = DcModel::new(grid.clone()).unwrap();
    let trades = scheme(&grid, 42, 3000, 40_000);
    let mut shuffled = trades.clone();
    Rng::stream(1, &[1]).shuffle(&mut shuffled);
    let a = pool(1).install(|| Curtailment::compute(&model, &trades));
    let b = pool(7).install(|| Curtailment::compute(&model, &shuffled));
    assert!(!a.cuts.is_empty());
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
}

fn run_grid(threads: usize, w: &Workload, market: &GridMarket, byzantine: f64) -> RunReport {
    let params = IpowParams::honest(32, 3, 4, 9).with_byzantine(byzantine, Behaviour::Liar);
    pool(threads).install(|| {
        let config = RunConfig {
            variant: VariantConfig::Ipow(params),
            period_txs: 150,
            load: ipow::pipeline::Load::ClosedLoop,
        };
        Pipeline::new(&config, w)
            .grid(Some(market))
            .run(&mut |_, _| {})
            .unwrap()
    })
}

#[test]
fn ipow_on_a_grid_curtails_congesting_trades_the_same_on_any_thread_count() {
    let grid = load("pglib_opf_case118_ieee.m");
    let mut params = WorkloadParams::scaled_paper(5, 1200);
    params.invalid_ppm = 50_000;
    let market = GridMarket::place(
        DcModel::new(grid).unwrap(),
        params.sellers,
        params.purchasers,
    )
    .unwrap();
    let w = Workload::generate(params);
    let a = run_grid(1, &w, &market, 0.0);
    let b = run_grid(2, &w, &market, 0.0);
    let c = a.congestion.as_ref().unwrap();
    assert!(c.curtailed_trades > 0 && a.curtailed > 0, "{c:?}");
    // Honest validators: every rejection is a planted fault or a curtailment; nothing wrong.
    assert_eq!(a.wrong_rejects, 0);
    assert_eq!(a.wrong_accepts, 0);
    assert_eq!(a.rejected, a.planted_invalid + a.curtailed);
    for r in &a.records {
        if r.verdict == Some(Verdict::Invalid(Reason::Congestion)) {
            assert_eq!(r.truth, ipow::market::rules::Truth::Valid);
        }
    }
    let key = |r: &RunReport| {
        (
            r.records
                .iter()
                .map(|x| (x.outcome, x.verdict))
                .collect::<Vec<_>>(),
            r.blocks.iter().map(|b| b.hash.clone()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(key(&a), key(&b));
    // Without the grid nothing is curtailed and more is accepted.
    let free = pool(2).install(|| {
        let config = RunConfig {
            variant: a.config.variant.clone(),
            period_txs: 150,
            load: ipow::pipeline::Load::ClosedLoop,
        };
        Pipeline::new(&config, &w).run(&mut |_, _| {}).unwrap()
    });
    assert_eq!(free.curtailed, 0);
    assert_eq!(free.accepted, a.accepted + a.curtailed);
}

/// The rule as ARCHITECTURE.md states it, written plainly and independently of
/// `Curtailment::compute`'s chunked passes: every round recomputes every live trade's
/// contribution; returns (branch, sign, excess, cut-off priority, cut-off order, curtailed,
/// removed) per cut and the curtailed submission orders.
#[allow(clippy::type_complexity)]
fn reference_rule(
    model: &DcModel,
    scheme: &[SchemeTrade],
) -> (Vec<(usize, i8, i64, u64, u32, u32, i64)>, HashSet<u32>) {
    let grid = model.grid();
    let mut trades = scheme.to_vec();
    trades.sort_by_key(|t| t.order);
    let mut alive = vec![true; trades.len()];
    let mut given_up = Vec::new();
    let mut cuts = Vec::new();
    let contribution = |row: &[f64], sign: i8, t: &SchemeTrade| -> i64 {
        let x = f64::from(sign)
            * (t.milli_mw as f64 * 1000.0)
            * (row[t.seller as usize] - row[t.buyer as usize]);
        let r = (x.abs() + 0.5).trunc() as i64;
        if x < 0.0 { -r } else { r }
    };
    loop {
        let live: Vec<&SchemeTrade> = trades
            .iter()
            .zip(&alive)
            .filter(|(_, a)| **a)
            .map(|(t, _)| t)
            .collect();
        let flows = flows_of(model, &live);
        let mut pick: Option<(usize, f64)> = None;
        for (k, (b, f)) in grid.branches.iter().zip(&flows).enumerate() {
            if b.is_limited() && f.abs() > b.rate_a && !given_up.contains(&k) {
                let l = f.abs() / b.rate_a;
                if pick.is_none_or(|(_, best)| l > best) {
                    pick = Some((k, l));
                }
            }
        }
        let Some((l, _)) = pick else { break };
        let sign: i8 = if flows[l] > 0.0 { 1 } else { -1 };
        let excess = (((flows[l].abs() - grid.branches[l].rate_a) * 1e6).ceil() as i64).max(1);
        let row = model.ptdf_row(l);
        // Curtailment order: lowest priority first, then latest submitted first.
        let mut candidates: Vec<(usize, i64)> = (0..trades.len())
            .filter(|&i| alive[i])
            .map(|i| (i, contribution(&row, sign, &trades[i])))
            .filter(|&(_, c)| c > 0)
            .collect();
        if candidates.is_empty() {
            given_up.push(l);
            continue;
        }
        candidates.sort_by_key(|&(i, _)| (trades[i].priority, std::cmp::Reverse(trades[i].order)));
        let (mut removed, mut n) = (0i64, 0u32);
        let mut last = 0;
        for &(i, c) in &candidates {
            if removed >= excess {
                break;
            }
            alive[i] = false;
            removed += c;
            n += 1;
            last = i;
        }
        cuts.push((
            l,
            sign,
            excess,
            trades[last].priority,
            trades[last].order,
            n,
            removed,
        ));
    }
    let curtailed = trades
        .iter()
        .zip(&alive)
        .filter(|(_, a)| !**a)
        .map(|(t, _)| t.order)
        .collect();
    (cuts, curtailed)
}

#[test]
fn the_chunked_rule_equals_the_rule_written_plainly() {
    // Few priorities (the branch-free rank), many (binary-searched ranks; more than 1024 in one
    // chunk: the distinct values found by sorting), more than one chunk of 65,536 trades, and
    // shuffled submission.
    for (case, count, priorities, max_milli, shuffle) in [
        ("pglib_opf_case14_ieee.m", 500, 4, 60_000, false),
        ("pglib_opf_case30_ieee.m", 3_000, 2_000, 20_000, true),
        ("pglib_opf_case57_ieee.m", 2_000, 3, 30_000, false),
        ("pglib_opf_case118_ieee.m", 140_000, 8, 8_000, true),
        ("pglib_opf_case300_ieee.m", 20_000, 600, 20_000, false),
    ] {
        let grid = load(case);
        let model = DcModel::new(grid.clone()).unwrap();
        let mut r = Rng::stream(7, &[count as u64]);
        let mut trades: Vec<SchemeTrade> = (0..count)
            .map(|k| SchemeTrade {
                order: k as u32 * 3,
                priority: r.below(priorities) * 7,
                seller: r.index(grid.buses.len()) as u32,
                buyer: r.index(grid.buses.len()) as u32,
                milli_mw: r.between(1, max_milli),
            })
            .collect();
        if shuffle {
            r.shuffle(&mut trades);
        }
        let (want_cuts, want_set) = reference_rule(&model, &trades);
        let c = pool(2).install(|| Curtailment::compute(&model, &trades));
        let got: Vec<_> = c
            .cuts
            .iter()
            .map(|k| {
                (
                    k.branch,
                    k.sign,
                    k.excess_w,
                    k.cutoff_priority,
                    k.cutoff_order,
                    k.curtailed,
                    k.removed_w,
                )
            })
            .collect();
        assert!(!want_cuts.is_empty(), "{case}: the scheme must congest");
        assert_eq!(got, want_cuts, "{case}");
        let verdicts: HashSet<u32> = trades
            .iter()
            .filter(|t| c.curtailing_cut(t).is_some())
            .map(|t| t.order)
            .collect();
        assert_eq!(verdicts, want_set, "{case}");
        assert_eq!(c.curtailed, want_set.len(), "{case}");
    }
}
