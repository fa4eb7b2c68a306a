use std::collections::HashSet;

use ipow::validate::congestion::{Curtailment, SlotBase, SlotCurtailments};

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
            slot: 0,
        })
        .collect()
}

fn flows_of(model: &DcModel, trades: &[&SchemeTrade]) -> Vec<f64> {
    flows_on(model, None, trades)
}

/// Flows of `trades` on the committed injections `base` (0.001 MW per bus).
fn flows_on(model: &DcModel, base: Option<&[i64]>, trades: &[&SchemeTrade]) -> Vec<f64> {
    let mut inj = base.map_or_else(|| vec![0i64; model.grid().buses.len()], <[i64]>::to_vec);
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
        slot: 0,
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
    let seven = run_grid(7, &w, &market, 0.0);
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
    assert_eq!(key(&a), key(&seven));
    // The congestion contexts, slots and committed bases over every period included.
    let summary = |r: &RunReport| serde_json::to_string(&r.congestion).unwrap();
    assert!(c.slots.len() > 1 && c.base_share_max > 0.0, "{c:?}");
    assert_eq!(summary(&a), summary(&b));
    assert_eq!(summary(&a), summary(&seven));
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

/// One published cut as the plain rule gives it: (branch, sign, excess, cut-off priority,
/// cut-off order, curtailed, removed, firm).
type PlainCut = (usize, i8, i64, u64, u32, u32, i64, bool);

/// The rule as ARCHITECTURE.md states it, written plainly and independently of
/// `Curtailment::compute_on`'s chunked passes: every round recomputes every live trade's
/// contribution; the flows are `base` (committed injections, 0.001 MW per bus) plus the live
/// trades; a branch the base alone overloads loses every aggravating trade first. Returns the
/// cuts, the curtailed submission orders and the residual branches.
fn reference_rule(
    model: &DcModel,
    scheme: &[SchemeTrade],
    base: Option<&[i64]>,
) -> (Vec<PlainCut>, HashSet<u32>, Vec<usize>) {
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
    // Branches the base alone overloads, most loaded first (ties to the lower row).
    let mut firm: Vec<(usize, f64, i8)> = match base {
        Some(b) => {
            let f = flows_on(model, Some(b), &[]);
            grid.branches
                .iter()
                .enumerate()
                .filter(|(k, br)| br.is_limited() && f[*k].abs() > br.rate_a)
                .map(|(k, br)| (k, f[k].abs() / br.rate_a, if f[k] > 0.0 { 1 } else { -1 }))
                .collect()
        }
        None => Vec::new(),
    };
    firm.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut firm = firm.into_iter();
    loop {
        let live: Vec<&SchemeTrade> = trades
            .iter()
            .zip(&alive)
            .filter(|(_, a)| **a)
            .map(|(t, _)| t)
            .collect();
        let flows = flows_on(model, base, &live);
        let (l, sign, all) = match firm.next() {
            Some((l, _, sign)) => {
                given_up.push(l);
                (l, sign, true)
            }
            None => {
                let mut pick: Option<(usize, f64)> = None;
                for (k, (b, f)) in grid.branches.iter().zip(&flows).enumerate() {
                    if b.is_limited() && f.abs() > b.rate_a && !given_up.contains(&k) {
                        let l = f.abs() / b.rate_a;
                        if pick.is_none_or(|(_, best)| l > best) {
                            pick = Some((k, l));
                        }
                    }
                }
                let Some((l, _)) = pick else {
                    let over: Vec<usize> = grid
                        .branches
                        .iter()
                        .zip(&flows)
                        .enumerate()
                        .filter(|(_, (b, f))| b.is_limited() && f.abs() > b.rate_a)
                        .map(|(k, _)| k)
                        .collect();
                    given_up.retain(|k| over.contains(k));
                    break;
                };
                (l, if flows[l] > 0.0 { 1 } else { -1 }, false)
            }
        };
        let excess = (((flows[l].abs() - grid.branches[l].rate_a) * 1e6).ceil() as i64).max(1);
        let row = model.ptdf_row(l);
        // Curtailment order: lowest priority first, then latest submitted first.
        let mut candidates: Vec<(usize, i64)> = (0..trades.len())
            .filter(|&i| alive[i])
            .map(|i| (i, contribution(&row, sign, &trades[i])))
            .filter(|&(_, c)| c > 0)
            .collect();
        if candidates.is_empty() {
            if !all {
                given_up.push(l);
            }
            continue;
        }
        candidates.sort_by_key(|&(i, _)| (trades[i].priority, std::cmp::Reverse(trades[i].order)));
        let (mut removed, mut n) = (0i64, 0u32);
        let mut last = 0;
        for &(i, c) in &candidates {
            if removed >= excess && !all {
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
            all,
        ));
    }
    let curtailed = trades
        .iter()
        .zip(&alive)
        .filter(|(_, a)| !**a)
        .map(|(t, _)| t.order)
        .collect();
    (cuts, curtailed, given_up)
}

/// The cuts as the plain rule lists them.
fn plain_cuts(c: &Curtailment) -> Vec<PlainCut> {
    c.cuts
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
                k.firm,
            )
        })
        .collect()
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
                slot: 0,
            })
            .collect();
        if shuffle {
            r.shuffle(&mut trades);
        }
        let (want_cuts, want_set, _) = reference_rule(&model, &trades, None);
        let c = pool(2).install(|| Curtailment::compute(&model, &trades));
        let got = plain_cuts(&c);
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

#[test]
fn trades_of_different_slots_never_curtail_each_other_and_committed_ones_are_firm() {
    // case14: a 100 MW trade from bus 2 to bus 3 puts about 60 MW on branch row 2 (2-3, rateA
    // 145): two fit in one hour, three do not.
    let grid = load("pglib_opf_case14_ieee.m");
    let model = DcModel::new(grid.clone()).unwrap();
    let nbus = grid.buses.len();
    let (b2, b3) = (
        grid.bus_index(2).unwrap() as u32,
        grid.bus_index(3).unwrap() as u32,
    );
    let t = |order: u32, slot: u32| SchemeTrade {
        order,
        priority: 0,
        seller: b2,
        buyer: b3,
        milli_mw: 100_000,
        slot,
    };
    let empty = SlotBase::new();
    let apart = SlotCurtailments::compute(&model, &[t(0, 3), t(1, 3), t(2, 18), t(3, 18)], &empty);
    assert_eq!(apart.curtailed(), 0, "{apart:?}");
    assert_eq!(apart.slots.len(), 2);
    let together =
        SlotCurtailments::compute(&model, &[t(0, 18), t(1, 18), t(2, 18), t(3, 18)], &empty);
    assert!(together.curtailed() > 0, "{together:?}");
    // Committed in period k for 18:00; in period k + 1 a third trade for 18:00 is curtailed,
    // while it fits an empty line, and the same trade for 03:00 is accepted.
    let mut base = SlotBase::new();
    base.commit(&[t(0, 18), t(1, 18)], nbus);
    assert_eq!(
        SlotCurtailments::compute(&model, &[t(2, 18)], &empty).curtailed(),
        0
    );
    let next = SlotCurtailments::compute(&model, &[t(2, 18), t(3, 3)], &base);
    assert_eq!(next.curtailing_cut(&t(2, 18)), Some(0), "{next:?}");
    assert_eq!(next.curtailing_cut(&t(3, 3)), None);
    let c = next.of(18).unwrap();
    assert!(c.base_share[0] > 0.5, "{:?}", c.base_share);
    assert!(c.overloaded_by_base.is_empty());
    // Committed trades alone overload 2-3: every pending trade that aggravates it goes, however
    // small, and the branch is residual; a trade pulling against it stays.
    base.commit(&[t(4, 18), t(5, 18)], nbus);
    let small = SchemeTrade {
        milli_mw: 1_000,
        ..t(6, 18)
    };
    let back = SchemeTrade {
        seller: b3,
        buyer: b2,
        milli_mw: 1_000,
        ..t(7, 18)
    };
    let firm = SlotCurtailments::compute(&model, &[small, back], &base);
    let c = firm.of(18).unwrap();
    assert!(c.overloaded_by_base.contains(&2), "{c:?}");
    assert!(c.residual.contains(&2), "{c:?}");
    assert!(c.cuts[0].firm && c.cuts[0].branch == 2, "{:?}", c.cuts);
    assert!(firm.curtailing_cut(&small).is_some());
    assert!(firm.curtailing_cut(&back).is_none());
    // Pruned once the window has passed 18:00.
    base.prune_before(19);
    assert!(base.of(18).is_none() && base.slots().next().is_none());
}

#[test]
fn the_rule_per_slot_on_committed_flows_equals_the_rule_written_plainly() {
    let (mut firm_cuts, mut cuts) = (0, 0);
    // Slots in a narrow span (grouped by lists per stretch of the scheme; case118's scheme
    // spans two stretches of 65,536) and in a wide one (grouped by a sort).
    let narrow = [0, 1, 2, 3, 4];
    let wide = [7, 8, 5_000, 70_000, u32::MAX - 1];
    for (case, count, max_milli, slots) in [
        ("pglib_opf_case14_ieee.m", 600, 200_000, narrow),
        ("pglib_opf_case57_ieee.m", 1_500, 30_000, wide),
        ("pglib_opf_case118_ieee.m", 70_000, 8_000, narrow),
        ("pglib_opf_case2869_pegase.m", 3_000, 400_000, narrow),
    ] {
        let grid = load(case);
        let model = DcModel::new(grid.clone()).unwrap();
        let nbus = grid.buses.len();
        let mut r = Rng::stream(27, &[count as u64]);
        let trade = |order: u32, slot: u32, r: &mut Rng| SchemeTrade {
            order,
            priority: r.below(5) * 3,
            seller: r.index(nbus) as u32,
            buyer: r.index(nbus) as u32,
            milli_mw: r.between(1, max_milli),
            slot,
        };
        // Committed trades in slots 0 to 3 (heavy enough that some overload alone); slot 4 has
        // none.
        let committed: Vec<SchemeTrade> = (0..count as u32 / 2)
            .map(|k| trade(k, slots[k as usize % 4], &mut r))
            .collect();
        let mut base = SlotBase::new();
        base.commit(&committed, nbus);
        let mut trades: Vec<SchemeTrade> = (0..count as u32)
            .map(|k| {
                let slot = slots[r.index(5)];
                trade(k * 2 + 1, slot, &mut r)
            })
            .collect();
        r.shuffle(&mut trades);
        let cuts_before = cuts;
        let got = pool(2).install(|| SlotCurtailments::compute(&model, &trades, &base));
        assert_eq!(got.slots.len(), 5, "{case}");
        for slot in slots {
            let mine: Vec<SchemeTrade> =
                trades.iter().filter(|t| t.slot == slot).copied().collect();
            let (want, set, residual) = reference_rule(&model, &mine, base.of(slot));
            let c = got.of(slot).unwrap();
            assert_eq!(plain_cuts(c), want, "{case} slot {slot}");
            assert_eq!(c.residual, residual, "{case} slot {slot}");
            let verdicts: HashSet<u32> = mine
                .iter()
                .filter(|t| got.curtailing_cut(t).is_some())
                .map(|t| t.order)
                .collect();
            assert_eq!(verdicts, set, "{case} slot {slot}");
            firm_cuts += want.iter().filter(|c| c.7).count();
            cuts += want.len();
        }
        assert!(cuts > cuts_before, "{case}: the scheme must congest");
    }
    assert!(
        firm_cuts > 0 && cuts > firm_cuts,
        "{firm_cuts} firm of {cuts} cuts"
    );
}

/// The committed base after a run is the sum of its accepted trades, and it survives in the
/// store: read back on the run's grid it is the same, slot by slot; on another grid it is
/// refused.
#[test]
fn the_committed_base_after_a_run_is_the_sum_of_its_accepted_trades() {
    use ipow::chain::committed::read_base;
    use ipow::chain::store::{StoreWriter, StoredMarket};
    let grid = load("pglib_opf_case57_ieee.m");
    let mut params = WorkloadParams::for_participants(3, 300, 3_000);
    params.delivery.congestion_ppm = 2_000_000;
    let market = GridMarket::place(
        DcModel::new(grid.clone()).unwrap(),
        params.sellers,
        params.purchasers,
    )
    .unwrap();
    let generated = ipow::market::generator::Market::new(params, Some(&market));
    let w = generated.batch(0..3_000);
    let ipow = IpowParams::honest(32, 3, 4, 9);
    let secret = ipow.node_secret();
    let variant = VariantConfig::Ipow(ipow);
    let members = generated.members.iter().map(Into::into).collect();
    let stored = StoredMarket::new(w.rules.slot_minutes, Some(&grid)).unwrap();
    let (genesis, signer) = ipow::pipeline::genesis(members, stored, &variant, &secret).unwrap();
    let scratch = crate::util::scratch("congestion-store");
    let dir = scratch.join("store");
    let mut writer = StoreWriter::create(&dir, &genesis, signer).unwrap();
    let mut base = SlotBase::new();
    let config = RunConfig {
        variant,
        period_txs: 300,
        load: ipow::pipeline::Load::ClosedLoop,
    };
    let report = pool(2).install(|| {
        Pipeline::new(&config, &w)
            .grid(Some(&market))
            .committed_flows(&mut base)
            .record(&mut writer)
            .run(&mut |_, _| {})
            .unwrap()
    });
    let c = report.congestion.as_ref().unwrap();
    assert!(c.curtailed_trades > 0 && c.base_share_max > 0.0, "{c:?}");
    let accepted: Vec<SchemeTrade> = report
        .records
        .iter()
        .filter(|x| x.outcome == ipow::consensus::Outcome::Accepted)
        .filter_map(|x| market.trade(w.rules.terms(), x.tx, 0, &w.transactions[x.tx as usize]))
        .collect();
    let mut want = SlotBase::new();
    want.commit(&accepted, grid.buses.len());
    assert_eq!(base, want);
    assert!(base.slots().count() > 3, "{base:?}");
    // Honest validators accept only what the rule let through: no slot's committed flows
    // overload a line.
    let model = DcModel::new(grid.clone()).unwrap();
    for (slot, inj) in base.slots() {
        let over = overloaded(&model, &flows_on(&model, Some(inj), &[]));
        assert!(over.is_empty(), "slot {slot}: {over:?}");
    }
    // The base read back equals the run's, slot by slot, and one slot's trades come back alone.
    let (read, kept) = read_base(&dir, &grid, |slot, _| slot == 18).unwrap();
    assert_eq!(read.base, base);
    let periods = report.blocks.len() as u64;
    assert_eq!(
        (read.periods, read.trades),
        (periods, accepted.len() as u64)
    );
    assert!(!kept.is_empty() && kept.iter().all(|t| t.slot == 18));
    let mut one = SlotBase::new();
    one.commit(&kept, grid.buses.len());
    assert_eq!(one.of(18), base.of(18));
    // On another grid it is refused, naming the grid.
    let other = load("pglib_opf_case118_ieee.m");
    let e = read_base(&dir, &other, |_, _| false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("another grid") && e.contains("case118"), "{e}");
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn at_the_default_settings_a_generated_market_curtails_under_a_tenth() {
    for (case, contracts) in [
        ("pglib_opf_case14_ieee.m", 6_000),
        ("pglib_opf_case118_ieee.m", 6_000),
        ("pglib_opf_case2869_pegase.m", 20_000),
    ] {
        let grid = load(case);
        let params = WorkloadParams::for_participants(1, 1000, contracts);
        let market = GridMarket::place(
            DcModel::new(grid).unwrap(),
            params.sellers,
            params.purchasers,
        )
        .unwrap();
        let w =
            ipow::market::generator::Market::new(params, Some(&market)).batch(0..contracts as u64);
        let config = RunConfig {
            variant: VariantConfig::Ipow(IpowParams::honest(32, 3, 4, 9)),
            period_txs: 2_000,
            load: ipow::pipeline::Load::ClosedLoop,
        };
        let report = Pipeline::new(&config, &w)
            .grid(Some(&market))
            .run(&mut |_, _| {})
            .unwrap();
        let c = report.congestion.as_ref().unwrap();
        let share = c.curtailed_trades as f64 / c.scheme_trades as f64;
        assert!(
            share < 0.10,
            "{case}: {share:.4} of the scheme curtailed: {c:?}"
        );
        assert!(c.slots.len() == 24, "{case}: {} slots", c.slots.len());
    }
}
