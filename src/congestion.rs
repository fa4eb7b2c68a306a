//! The congestion check: which trades of a period's scheme are curtailed so that no line is
//! overloaded, by a rule any validator can recompute for the one transaction it holds.
//!
//! **The rule** (also in ARCHITECTURE.md). The period's *scheme* is its pending transactions
//! that pass the local checks (everything before signatures); each is a trade of `energy` MWh
//! over its one-hour delivery slot, so `energy` MW from the seller's bus to the purchaser's.
//! Injections are summed per bus in integers (0.001 MW), so the flows do not depend on the
//! order or the thread count. Then, in rounds:
//! 1. compute the flows of the trades still in the scheme (one solve);
//! 2. if no branch has |flow| > rateA, stop; otherwise take the most loaded branch l (largest
//!    |flow| / rateA; ties to the lower row), its direction s (the sign of its flow) and its
//!    excess E = ceil((|flow| - rateA) x 10^6) watts;
//! 3. each remaining trade's contribution to l is its PTDF factor times its power,
//!    c = s x mw x (PTDF_l[seller bus] - PTDF_l[buyer bus]), **rounded half away from zero to the
//!    watt** (the one rounding, computed as sign x trunc(|x| + 0.5) in f64; sums are then exact
//!    integers); a trade with c > 0 aggravates l;
//! 4. aggravating trades are curtailed in *curtailment order*, lowest transaction priority
//!    first (the incentive mechanism's priority), and among equal priority the latest submitted
//!    first, until the curtailed contributions reach E. The last one curtailed is the cut-off;
//!    the round publishes (l, s, cut-off priority, cut-off submission index).
//!
//! **A validator's verdict** for transaction Tk: with the published cuts, Tk is rejected for
//! congestion iff for some cut its own rounded contribution c > 0 and Tk comes at or before the
//! cut-off in curtailment order. This is exactly the set the rounds curtailed (a trade that
//! matches a later cut but was curtailed earlier, or that is not in the scheme, is rejected
//! anyway), and it costs the validator one PTDF difference per cut. Every round curtails at
//! least one trade, so the rounds end; a branch that no remaining trade aggravates cannot be
//! relieved by curtailment and is reported as residual.
//!
//! **A trade that overloads a line alone** is rejected before the scheme is formed: with
//! w = max over limited in-service branches k of |PTDF_k[seller bus] - PTDF_k[buyer bus]| / rateA_k,
//! a trade whose power in 0.001 MW exceeds floor(1000 / w) ([`GridMarket::transfer_limit_milli`])
//! would overload some branch even if it were the only trade of the period, so no curtailment of
//! others can make it feasible. A validator computes w for its own trade (one pass over the
//! limited branches, the maximum of exact per-branch values, so the same on every node); such a
//! trade is left out of the scheme and rejected for congestion.
//!
//! The supervision node computes the cuts at O1 from the period's data alone (the scheme, the
//! published priorities, the grid); they do not depend on thread count or scheduling.

use std::borrow::Cow;

use rayon::prelude::*;
use serde::Serialize;

use crate::consensus::PriorityRule;
use crate::contract::SignedContract;
use crate::grid::{DcModel, GridError};
use crate::validate::{Checks, CongestionStage};
use crate::workload::{PURCHASER_BASE, SELLER_BASE, Workload};

/// The congestion stage's name in reports.
pub const STAGE_NAME: &str = "dc power flow, priority curtailment";

/// One trade of a period's scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeTrade {
    /// Submission order (later submissions have larger values); unique in the scheme.
    pub order: u32,
    /// Transaction priority from the incentive mechanism.
    pub priority: u64,
    /// Seller's bus index.
    pub seller: u32,
    /// Buyer's bus index.
    pub buyer: u32,
    /// Power in 0.001 MW (= energy in 0.001 MWh over one hour).
    pub milli_mw: i64,
}

/// One curtailment round's published cut.
#[derive(Clone, Debug, Serialize)]
pub struct Cut {
    /// Round number, from 1.
    pub round: u32,
    /// Branch row relieved.
    pub branch: usize,
    /// +1 when the overload is in the from-to direction, -1 otherwise.
    pub sign: i8,
    /// |flow| before the round (MW).
    pub flow_mw: f64,
    /// rateA (MVA).
    pub rate_a: f64,
    /// Excess to remove (W).
    pub excess_w: i64,
    /// Priority of the last trade curtailed.
    pub cutoff_priority: u64,
    /// Submission order of the last trade curtailed.
    pub cutoff_order: u32,
    /// Trades curtailed this round.
    pub curtailed: u32,
    /// Contribution removed (W), at least `excess_w` unless every aggravating trade went.
    pub removed_w: i64,
    #[serde(skip)]
    row: Vec<f64>,
}

impl Cut {
    /// A trade's contribution to this cut's branch in its overload direction, in watts,
    /// rounded half away from zero: the one rounding of the rule.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    pub fn contribution_w(&self, t: &SchemeTrade) -> i64 {
        let diff = self.row[t.seller as usize] - self.row[t.buyer as usize];
        // milli-MW x 1000 = W; half away from zero as trunc(x + copysign(0.5, x)), which is
        // sign x trunc(|x| + 0.5) to the bit (IEEE addition is symmetric in sign). Branch-free:
        // the sign is random per trade, and a branch on it mispredicts half the time; and
        // `f64::round` is a library call without SSE4.1.
        let x = f64::from(self.sign) * t.milli_mw as f64 * 1000.0 * diff;
        (x + 0.5f64.copysign(x)) as i64
    }

    /// True when `t` comes at or before this cut's cut-off in curtailment order
    /// (lower priority first, then later submission first).
    pub fn reaches(&self, t: &SchemeTrade) -> bool {
        // `|` and `&` on bools, not `||` and `&&`: no branch to mispredict on random data.
        (t.priority < self.cutoff_priority)
            | ((t.priority == self.cutoff_priority) & (t.order >= self.cutoff_order))
    }
}

/// `q` if positive, else 0, without a branch (`i64::max` compiles to one here, and the sign of a
/// contribution is random per trade: measured 6x slower on a pass over a million trades).
fn positive_part(q: i64) -> i64 {
    q & !(q >> 63)
}

/// The outcome of the rule on one scheme.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Curtailment {
    /// Trades in the scheme.
    pub scheme: usize,
    /// Branches overloaded by the whole scheme, with their loading |flow| / rateA.
    pub overloaded_before: Vec<(usize, f64)>,
    /// The published cuts, in round order.
    pub cuts: Vec<Cut>,
    /// Trades curtailed in all.
    pub curtailed: usize,
    /// Branches still overloaded that no remaining trade aggravates.
    pub residual: Vec<usize>,
}

impl Curtailment {
    /// Runs the rule on `scheme` (any order; `order` values unique).
    pub fn compute(model: &DcModel, scheme: &[SchemeTrade]) -> Curtailment {
        let grid = model.grid();
        let nbus = grid.buses.len();
        let sorted: Cow<'_, [SchemeTrade]> = if scheme.windows(2).all(|w| w[0].order < w[1].order) {
            Cow::Borrowed(scheme)
        } else {
            let mut v = scheme.to_vec();
            v.par_sort_unstable_by_key(|t| t.order);
            Cow::Owned(v)
        };
        let sorted = &*sorted;
        let mut alive = vec![true; sorted.len()];
        let mut inj = injections(sorted, nbus);
        // Distinct priorities, ascending; a trade's rank is its place among them. Nothing per
        // trade is stored beyond `alive`: contributions are recomputed where needed, which is
        // cheaper than writing and reading them back.
        let prios = distinct_priorities(sorted);
        // Priorities are drawn per trade, so a binary search would mispredict on every trade;
        // a branch-free count is faster for the few values priorities take.
        let small = prios.len() <= 16;
        let rank_of = |p: u64| -> usize {
            if small {
                prios.iter().map(|&x| usize::from(x < p)).sum()
            } else {
                prios.partition_point(|&x| x < p)
            }
        };
        let mut out = Curtailment {
            scheme: sorted.len(),
            ..Curtailment::default()
        };
        let mut given_up: Vec<usize> = Vec::new();
        let mut round = 0u32;
        loop {
            let flows = model.flows(&to_mw(&inj));
            let overloaded: Vec<(usize, f64)> = grid
                .branches
                .iter()
                .zip(&flows)
                .enumerate()
                .filter(|(_, (b, f))| b.is_limited() && f.abs() > b.rate_a)
                .map(|(k, (b, f))| (k, f.abs() / b.rate_a))
                .collect();
            if round == 0 {
                out.overloaded_before.clone_from(&overloaded);
            }
            let pick = overloaded
                .iter()
                .filter(|(k, _)| !given_up.contains(k))
                .fold(None::<(usize, f64)>, |best, &(k, l)| match best {
                    Some((_, bl)) if bl >= l => best,
                    _ => Some((k, l)),
                });
            let Some((l, _)) = pick else {
                out.residual = given_up;
                break;
            };
            round += 1;
            let br = &grid.branches[l];
            let flow = flows[l];
            let sign: i8 = if flow > 0.0 { 1 } else { -1 };
            #[allow(clippy::cast_possible_truncation)]
            let excess_w = (((flow.abs() - br.rate_a) * 1e6).ceil() as i64).max(1);
            let mut cut = Cut {
                round,
                branch: l,
                sign,
                flow_mw: flow.abs(),
                rate_a: br.rate_a,
                excess_w,
                cutoff_priority: 0,
                cutoff_order: 0,
                curtailed: 0,
                removed_w: 0,
                row: model.ptdf_row(l),
            };
            // Contributions of the remaining trades, and their sums per priority rank, in one pass.
            let by_rank = sorted
                .par_iter()
                .zip(alive.par_iter())
                .with_min_len(1 << 14)
                .fold(
                    || vec![0i128; prios.len()],
                    |mut acc, (t, &a)| {
                        // Branch-free: about half the trades aggravate, unpredictably.
                        let q = positive_part(cut.contribution_w(t)) * i64::from(a);
                        acc[rank_of(t.priority)] += i128::from(q);
                        acc
                    },
                )
                .reduce(|| vec![0i128; prios.len()], add_into);
            if by_rank.iter().all(|&s| s == 0) {
                given_up.push(l);
                continue;
            }
            // The lowest rank whose cumulative sum reaches the excess; if none does, every
            // aggravating trade goes (the highest non-empty rank, with no limit).
            let mut cum = 0i128;
            let mut chosen = None;
            let mut last = 0usize;
            for (r, &s) in by_rank.iter().enumerate() {
                if s == 0 {
                    continue;
                }
                if cum + s >= i128::from(excess_w) {
                    chosen = Some((r, i128::from(excess_w) - cum));
                    break;
                }
                cum += s;
                last = r;
            }
            let (cut_rank, need) = chosen.unwrap_or((last, i128::MAX));
            // Within that rank, latest submitted first.
            let mut acc = 0i128;
            let mut cutoff_order = 0u32;
            let cut_priority = prios[cut_rank];
            for (t, &a) in sorted.iter().zip(&alive).rev() {
                if a && t.priority == cut_priority {
                    let q = cut.contribution_w(t);
                    if q > 0 {
                        acc += i128::from(q);
                        cutoff_order = t.order;
                        if acc >= need {
                            break;
                        }
                    }
                }
            }
            cut.cutoff_priority = cut_priority;
            cut.cutoff_order = cutoff_order;
            let cut_ref = &cut;
            let (delta, curtailed, removed) = alive
                .par_iter_mut()
                .zip(sorted.par_iter())
                .with_min_len(1 << 14)
                .fold(
                    || (vec![0i64; nbus], 0u32, 0i128),
                    |(mut d, mut n, mut w), (a, t)| {
                        // Branch-free, as above.
                        let q = cut_ref.contribution_w(t);
                        let hit = *a & cut_ref.reaches(t) & (q > 0);
                        let h = i64::from(hit);
                        *a &= !hit;
                        n += u32::from(hit);
                        w += i128::from(q * h);
                        d[t.seller as usize] -= t.milli_mw * h;
                        d[t.buyer as usize] += t.milli_mw * h;
                        (d, n, w)
                    },
                )
                .reduce(
                    || (vec![0i64; nbus], 0u32, 0i128),
                    |(d, n, w), (d2, n2, w2)| (add_into(d, d2), n + n2, w + w2),
                );
            inj.iter_mut().zip(delta).for_each(|(x, y)| *x += y);
            cut.curtailed = curtailed;
            cut.removed_w = i64::try_from(removed).unwrap_or(i64::MAX);
            out.curtailed += curtailed as usize;
            out.cuts.push(cut);
        }
        out
    }

    /// A validator's verdict for one trade: the index of the first cut that curtails it.
    pub fn curtailing_cut(&self, t: &SchemeTrade) -> Option<usize> {
        self.cuts
            .iter()
            .position(|c| c.reaches(t) & (c.contribution_w(t) > 0))
    }
}

/// The distinct priorities of a scheme, ascending. Priorities take few values (sums of two
/// validators' workloads), so each worker keeps a small sorted list; past 1024 values it falls
/// back to sorting them all.
fn distinct_priorities(trades: &[SchemeTrade]) -> Vec<u64> {
    const SMALL: usize = 1024;
    let merged: Option<Vec<u64>> = trades
        .par_iter()
        .with_min_len(1 << 14)
        .try_fold(Vec::new, |mut v: Vec<u64>, t| {
            if let Err(at) = v.binary_search(&t.priority) {
                if v.len() == SMALL {
                    return None;
                }
                v.insert(at, t.priority);
            }
            Some(v)
        })
        .try_reduce(Vec::new, |a, b| {
            let mut m: Vec<u64> = a.into_iter().chain(b).collect();
            m.sort_unstable();
            m.dedup();
            (m.len() <= SMALL).then_some(m)
        });
    merged.unwrap_or_else(|| {
        let mut all: Vec<u64> = trades.par_iter().map(|t| t.priority).collect();
        all.par_sort_unstable();
        all.dedup();
        all
    })
}

/// Net injection per bus of a scheme, in 0.001 MW: exact integer sums, so the same on any
/// thread count.
pub fn injections(trades: &[SchemeTrade], nbus: usize) -> Vec<i64> {
    trades
        .par_iter()
        .with_min_len(1 << 14)
        .fold(
            || vec![0i64; nbus],
            |mut acc, t| {
                acc[t.seller as usize] += t.milli_mw;
                acc[t.buyer as usize] -= t.milli_mw;
                acc
            },
        )
        .reduce(|| vec![0i64; nbus], add_into)
}

/// Flows of a whole scheme (MW at each branch row's from end): exact per-bus sums, one solve.
pub fn scheme_flows(model: &DcModel, trades: &[SchemeTrade]) -> Vec<f64> {
    model.flows(&to_mw(&injections(trades, model.grid().buses.len())))
}

/// Element-wise sum of two per-bus (or per-rank) vectors of equal length.
fn add_into<T: std::ops::AddAssign + Copy>(mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
    a
}

#[allow(clippy::cast_precision_loss)]
fn to_mw(inj: &[i64]) -> Vec<f64> {
    inj.iter().map(|&m| m as f64 / 1000.0).collect()
}

/// Where the market's participants sit on a grid: seller i at the i-th in-service generator's
/// bus (cycling in file order), purchaser j at the j-th bus with a positive load (cycling).
#[derive(Debug)]
pub struct GridMarket {
    model: DcModel,
    seller_bus: Vec<u32>,
    purchaser_bus: Vec<u32>,
    /// Limited in-service branch rows.
    limited: usize,
    /// PTDF factor / rateA of each limited branch, bus-major (`limited` entries per bus).
    sensitivity: Vec<f64>,
    /// Bus index of each in-service generator, in file order.
    generator_buses: Vec<u32>,
}

impl GridMarket {
    /// Places `sellers` and `purchasers` on the model's grid.
    pub fn place(model: DcModel, sellers: u32, purchasers: u32) -> Result<GridMarket, GridError> {
        let grid = model.grid();
        let err = |m: &str| GridError {
            file: grid.source.clone(),
            line: 0,
            column: 0,
            message: m.to_owned(),
        };
        let gens: Vec<u32> = grid
            .generators
            .iter()
            .filter(|g| g.in_service)
            .filter_map(|g| model.bus(g.bus).ok())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let loads: Vec<u32> = (0..grid.buses.len())
            .filter(|&i| grid.buses[i].pd > 0.0 && grid.buses[i].kind != 4)
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        if gens.is_empty() {
            return Err(err("no in-service generator to place sellers at"));
        }
        if loads.is_empty() {
            return Err(err("no bus with a positive load to place purchasers at"));
        }
        let generator_buses = gens.clone();
        let seller_bus = (0..sellers as usize)
            .map(|i| gens[i % gens.len()])
            .collect();
        let purchaser_bus = (0..purchasers as usize)
            .map(|j| loads[j % loads.len()])
            .collect();
        let limited: Vec<usize> = (0..grid.branches.len())
            .filter(|&k| grid.branches[k].is_limited())
            .collect();
        let scale: Vec<f64> = limited
            .iter()
            .map(|&k| 1.0 / grid.branches[k].rate_a)
            .collect();
        let sensitivity = model.ptdf_by_bus(&limited, &scale);
        Ok(GridMarket {
            model,
            seller_bus,
            purchaser_bus,
            limited: limited.len(),
            sensitivity,
            generator_buses,
        })
    }

    /// Bus index of each in-service generator, in file order (where sources sit).
    pub fn generator_buses(&self) -> Vec<u32> {
        self.generator_buses.clone()
    }

    /// The bus index seller `i` (its address less `SELLER_BASE`) sits at.
    pub fn seller_bus(&self, i: usize) -> Option<u32> {
        self.seller_bus.get(i).copied()
    }

    /// The bus index purchaser `j` sits at.
    pub fn purchaser_bus(&self, j: usize) -> Option<u32> {
        self.purchaser_bus.get(j).copied()
    }

    /// The largest trade from `seller_bus` to `buyer_bus` (bus indices), in 0.001 MW, that
    /// overloads no branch on its own: floor(1000 / w), w = max_k |PTDF_k[s] - PTDF_k[b]| /
    /// rateA_k over the limited branches; `i64::MAX` when no limited branch sees the trade.
    #[allow(clippy::cast_possible_truncation)]
    pub fn transfer_limit_milli(&self, seller_bus: u32, buyer_bus: u32) -> i64 {
        let w = self.limited;
        let col = |bus: u32| {
            let at = bus as usize * w;
            self.sensitivity.get(at..at + w).unwrap_or(&[])
        };
        let (a, b) = (col(seller_bus), col(buyer_bus));
        // Four running maxima so the loop vectorizes; max is exact and order-free.
        let mut worst = [0.0f64; 4];
        let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for l in 0..4 {
                worst[l] = worst[l].max((x[l] - y[l]).abs());
            }
        }
        for (x, y) in ra.iter().zip(rb) {
            worst[0] = worst[0].max((x - y).abs());
        }
        let worst = worst[0].max(worst[1]).max(worst[2].max(worst[3]));
        if worst <= 0.0 {
            return i64::MAX;
        }
        // `as` saturates: a tiny factor gives i64::MAX.
        (1000.0 / worst).floor() as i64
    }

    /// True when `t` would overload a branch even as the period's only trade.
    pub fn overloads_alone(&self, t: &SchemeTrade) -> bool {
        t.milli_mw > self.transfer_limit_milli(t.seller, t.buyer)
    }

    /// The DC model.
    pub fn model(&self) -> &DcModel {
        &self.model
    }

    /// The scheme trade of a transaction (None when a party is not placed).
    pub fn trade(&self, order: u32, priority: u64, tx: &SignedContract) -> Option<SchemeTrade> {
        let c = &tx.contract;
        let s = c.seller.0.checked_sub(SELLER_BASE)?;
        let b = c.purchaser.0.checked_sub(PURCHASER_BASE)?;
        Some(SchemeTrade {
            order,
            priority,
            seller: *self.seller_bus.get(s as usize)?,
            buyer: *self.purchaser_bus.get(b as usize)?,
            milli_mw: c.energy.raw(),
        })
    }

    /// O1: the period's congestion context. The scheme is `pending` (workload indices, whose
    /// order is submission order) less those failing a local check.
    pub fn period(
        &self,
        workload: &Workload,
        pending: &[u32],
        checks: &Checks<'_>,
        priority: PriorityRule,
    ) -> PeriodCongestion<'_> {
        let scheme: Vec<SchemeTrade> = pending
            .par_iter()
            .filter_map(|&tx| {
                let signed = &workload.transactions[tx as usize];
                if checks.local_failure(signed).is_some() {
                    return None;
                }
                self.trade(tx, priority.of(&signed.contract), signed)
                    .filter(|t| !self.overloads_alone(t))
            })
            .collect();
        PeriodCongestion {
            market: self,
            curtailment: Curtailment::compute(&self.model, &scheme),
            priority,
        }
    }
}

/// One period's published congestion context; a validator's congestion stage.
#[derive(Debug)]
pub struct PeriodCongestion<'a> {
    market: &'a GridMarket,
    /// The rule's outcome.
    pub curtailment: Curtailment,
    priority: PriorityRule,
}

impl CongestionStage for PeriodCongestion<'_> {
    fn allows(&self, tx: u32, contract: &SignedContract) -> bool {
        match self
            .market
            .trade(tx, self.priority.of(&contract.contract), contract)
        {
            Some(t) => {
                !self.market.overloads_alone(&t) && self.curtailment.curtailing_cut(&t).is_none()
            }
            None => true,
        }
    }
    fn name(&self) -> &'static str {
        STAGE_NAME
    }
}
