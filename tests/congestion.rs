use std::collections::HashSet;

use ipow::congestion::{Curtailment, GridMarket, SchemeTrade};
use ipow::consensus::ipow::{Behaviour, IpowParams};
use ipow::grid::{DcModel, Grid};
use ipow::rng::Rng;
use ipow::run::{RunConfig, RunReport, VariantConfig, run_with};
use ipow::validate::{Reason, Verdict};
use ipow::workload::{Workload, WorkloadParams};

use crate::grids::{CASES, load};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

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
    let params = IpowParams {
        mix: Default::default(),
        validators: 32,
        quorum: 3,
        extra_max: 4,
        byzantine_fraction: byzantine,
        behaviour: Behaviour::Liar,
        seed: 9,
    };
    pool(threads).install(|| {
        run_with(
            &RunConfig {
                variant: VariantConfig::Ipow(params),
                period_txs: 150,
                load: ipow::run::Load::ClosedLoop,
            },
            w,
            Some(market),
            &mut |_, _| {},
        )
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
            assert_eq!(r.truth, ipow::workload::Truth::Valid);
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
        ipow::run::run(
            &RunConfig {
                variant: a.config.variant.clone(),
                period_txs: 150,
                load: ipow::run::Load::ClosedLoop,
            },
            &w,
            &mut |_, _| {},
        )
    });
    assert_eq!(free.curtailed, 0);
    assert_eq!(free.accepted, a.accepted + a.curtailed);
}
