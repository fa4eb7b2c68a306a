//! The congestion check: which trades of a period's scheme are curtailed so that no line is
//! overloaded, by a rule any validator can recompute for the one transaction it holds.
//!
//! **The rule** (also in ARCHITECTURE.md). The period's *scheme* is its pending transactions
//! that pass the local checks (everything before signatures). Each is a trade of `energy` over
//! its delivery slot (delivery time / the market's `slot_minutes`, the paper's hour by default),
//! so energy x 60 / slot minutes MW from the seller's bus to the purchaser's. The scheme is
//! grouped by slot, and each slot is one scheme on its own (trades for 03:00 and for 18:00 never
//! share a line). A slot's flows start from its *base*: the net injections of every trade
//! committed for that slot in earlier periods ([`SlotBase`]), which are firm (never curtailed).
//! Injections are summed per bus in integers (0.001 MW), so the flows do not depend on the
//! order or the thread count. First, each branch the base alone overloads (most loaded first,
//! ties to the lower row; its direction s the base flow's sign) loses every pending trade that
//! aggravates it (c > 0 below), whatever the excess, and is reported as residual while it stays
//! overloaded. Then, in rounds:
//! 1. compute the flows of the base plus the trades still in the scheme (one solve);
//! 2. if no branch not given up has |flow| > rateA, stop; otherwise take the most loaded branch l
//!    (largest |flow| / rateA; ties to the lower row), its direction s (the sign of its flow) and
//!    its excess E = ceil((|flow| - rateA) x 10^6) watts;
//! 3. each remaining trade's contribution to l is its PTDF factor times its power,
//!    c = s x mw x (PTDF_l[seller bus] - PTDF_l[buyer bus]), **rounded half away from zero to the
//!    watt** (the one rounding, computed as sign x trunc(|x| + 0.5) in f64; sums are then exact
//!    integers); a trade with c > 0 aggravates l;
//! 4. aggravating trades are curtailed in *curtailment order*, lowest transaction priority
//!    first (the incentive mechanism's priority), and among equal priority the latest submitted
//!    first, until the curtailed contributions reach E. The last one curtailed is the cut-off;
//!    the round publishes (l, s, cut-off priority, cut-off submission index).
//!
//! **A validator's verdict** for transaction Tk: with the published cuts of its slot, Tk is rejected for
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
//! would overload some branch even if it were the only trade on an empty grid, so no curtailment of
//! others can make it feasible. A validator computes w for its own trade (one pass over the
//! limited branches, the maximum of exact per-branch values, so the same on every node); such a
//! trade is left out of the scheme and rejected for congestion.
//!
//! The supervision node computes the cuts at O1 from the period's data alone (the scheme, the
//! published priorities, the grid); they do not depend on thread count or scheduling.
//!
//! **How the rounds are computed.** [`Curtailment::compute`]: the scheme is copied once into chunks
//! of 65,536 trades in submission order (over a period's slots, [`SlotCurtailments::compute`], each
//! stretch of 65,536 trades is read once and gives every slot it holds one chunk, so a slot's
//! chunks follow submission order and no slot's trades are gathered first; pass A's batches shrink
//! with a slot's size), each chunk's trades grouped by priority rank (stably; a chunk's priorities
//! get ids from a small hash table as the trades pass, sorted into ranks once per chunk); a round
//! sums contributions rank by rank from the lowest and marks which trades aggravate (pass A), stops
//! at the rank whose sum reaches the excess, finds the cut-off from the end of that rank with
//! per-chunk sums, and removes the marked trades from their chunks (pass B, which only compacts:
//! the removed watts are pass A's run sums), so a round reads only the ranks at or below its
//! cut-off and never a trade curtailed before. Both passes are branch- free per trade (whether a
//! trade aggravates is random per trade; `positive_w` and `aggravates` are unit-tested against the
//! rounding rule). Chunk boundaries depend only on the scheme (never on the thread count) and every
//! sum is an exact integer, so the cuts are the same on any thread count; they equal those of the
//! rule written plainly in the test (`the_chunked_rule_equals_the_rule_written_plainly`, up to 520
//! rounds, more than one chunk, more than 1024 distinct priorities in one chunk). The verdict
//! (`curtailing_cut`) reads the cuts' rows bus-major, padded to blocks of 8 cuts, and evaluates a
//! block at once without a branch per cut: curtailment order is one number per trade, key = class x
//! 2^32 + (2^32 - 1 - submission order), where with P the cut-offs' distinct priorities a trade's
//! class is 2 x #{P below its priority} + [its priority in P] and a cut's is 2i + 1 for P_i; a cut
//! reaches a trade exactly when the trade's key is at most the cut's. Keys are integers below 2^53
//! (fewer than 2^20 distinct cut-off priorities; past that the verdict goes cut by cut), so they
//! compare exactly as f64 beside the factors; the unit test
//! `the_keyed_verdict_is_the_verdict_cut_by_cut` checks it at the ends of the u64 and u32 ranges.
//! The verdict uses the same rounding expression as the rounds, so both agree to the bit. Before
//! the scheme is formed, a trade that would overload a branch even as the only trade of the period
//! (power above its pair's transfer limit floor(1000 / max_k |PTDF_k[s] - PTDF_k[b]| / rateA_k) in
//! 0.001 MW) is left out and rejected for congestion: each validator computes that limit for its
//! own trade from the bus-major sensitivities (a maximum of exact per-branch values, so the same on
//! every node).
//!
//! **Known consequence.** A transaction that passes the local checks but carries a forged
//! signature still counts in the scheme (checking every signature at O1 would duplicate the
//! validators' work), so a forger can cause honest low-priority trades on the same line to be
//! curtailed; the forged one itself is rejected for its signature.
//!
//! **Priority.** IPOW publishes, for each period, each validator's priority (its previous period's
//! workload); a transaction's priority is the sum of its seller's and purchaser's owners'
//! priorities (`market::priority::PriorityRule`). The same rule orders the block and drives
//! curtailment; plain PoW publishes none (all 0, so submission order decides).

mod publish;
mod rounds;

pub use rounds::RowCache;
mod verdict;

use verdict::*;

use crate::grid::placement::{GridMarket, SchemeTrade, TradeTerms};
use std::hint::select_unpredictable;

use rayon::prelude::*;
use serde::Serialize;

use crate::contract::SignedContract;
use crate::grid::{DcModel, Grid};
use crate::market::priority::PriorityRule;
use crate::market::rules::Workload;
use crate::validate::{Checks, CongestionStage};

/// The congestion stage's name in reports.
pub const STAGE_NAME: &str = "dc power flow, priority curtailment";

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
    /// True when the committed trades alone overload the branch: every aggravating trade of
    /// the scheme went, whatever the excess.
    pub firm: bool,
    /// The branch's PTDF row times `sign`, per bus.
    #[serde(skip)]
    row: Vec<f64>,
}

/// A trade's contribution in watts before rounding: its power in watts times the difference
/// of the sign-adjusted PTDF factors at its two buses. Every path of the rule computes it as
/// this product (the verdict's blocks take `power_w` once per trade and the same product per
/// lane), so they agree to the bit.
fn raw_w(milli_mw: i64, at_seller: f64, at_buyer: f64) -> f64 {
    power_w(milli_mw) * (at_seller - at_buyer)
}

/// A trade's power in watts (exact below 2^53 W).
#[allow(clippy::cast_precision_loss)]
fn power_w(milli_mw: i64) -> f64 {
    milli_mw as f64 * 1000.0
}

/// The rule's one rounding: half away from zero to the watt, as trunc(x + copysign(0.5, x)),
/// which is sign x trunc(|x| + 0.5) to the bit (IEEE addition is symmetric in sign).
/// Branch-free: the sign is random per trade, and `f64::round` is a library call without
/// SSE4.1. `as` saturates, so a huge contribution stays positive.
#[allow(clippy::cast_possible_truncation)]
fn rounded_w(x: f64) -> i64 {
    (x + 0.5f64.copysign(x)) as i64
}

/// The rounded contribution's positive part, `max(rounded_w(x), 0)`, without a branch: for
/// x > 0 it is the same sum x + 0.5 truncated, and for x <= 0 or NaN the maximum with 0 makes
/// it 0. (Written as `positive_part(rounded_w(x))` the compiler turned both into branches on
/// the sign, random per trade: a round's pass ran ~5x slower per trade.)
#[allow(clippy::cast_possible_truncation)]
fn positive_w(x: f64) -> i64 {
    (x + 0.5).max(0.0) as i64
}

/// True when the rounded contribution is positive (the trade aggravates): for x > 0 that is
/// x + 0.5 >= 1 as computed (not x >= 0.5: x + 0.5 can round up to 1), and for x <= 0 or NaN
/// the sum is below 1. One comparison, no conversion.
fn aggravates(x: f64) -> bool {
    x + 0.5 >= 1.0
}

impl Cut {
    /// A trade's contribution to this cut's branch in its overload direction, in watts,
    /// rounded half away from zero: the one rounding of the rule.
    pub fn contribution_w(&self, t: &SchemeTrade) -> i64 {
        rounded_w(raw_w(
            t.milli_mw,
            self.row[t.seller as usize],
            self.row[t.buyer as usize],
        ))
    }

    /// True when `t` comes at or before this cut's cut-off in curtailment order
    /// (lower priority first, then later submission first).
    pub fn reaches(&self, t: &SchemeTrade) -> bool {
        // `|` and `&` on bools, not `||` and `&&`: no branch to mispredict on random data.
        (t.priority < self.cutoff_priority)
            | ((t.priority == self.cutoff_priority) & (t.order >= self.cutoff_order))
    }
}

/// The outcome of the rule on one scheme.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Curtailment {
    /// Trades in the scheme.
    pub scheme: usize,
    /// Branches overloaded by the whole scheme on its base, with their loading |flow| / rateA.
    pub overloaded_before: Vec<(usize, f64)>,
    /// For each of `overloaded_before`, the committed base's share of its flow (0 without a
    /// base).
    pub base_share: Vec<f64>,
    /// Branches the committed base alone overloads.
    pub overloaded_by_base: Vec<usize>,
    /// The published cuts, in round order.
    pub cuts: Vec<Cut>,
    /// Trades curtailed in all.
    pub curtailed: usize,
    /// Branches still overloaded that no remaining trade aggravates (or that the committed base
    /// alone overloads).
    pub residual: Vec<usize>,
    /// What the verdict reads, built from the cuts.
    #[serde(skip)]
    index: VerdictIndex,
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

/// The committed trades' net injections per bus (0.001 MW), per delivery slot: the base flows
/// every later period's scheme of that slot is checked on. Exact integer sums, so the same in
/// any order and on any thread count. A slot is dropped once the market's delivery window has
/// moved past it ([`SlotBase::prune_before`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotBase {
    slots: std::collections::BTreeMap<u32, Vec<i64>>,
}

impl SlotBase {
    /// No committed trade in any slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The base of `slot`, if a trade was committed for it.
    pub fn of(&self, slot: u32) -> Option<&[i64]> {
        self.slots.get(&slot).map(Vec::as_slice)
    }

    /// Adds committed trades (on a grid of `nbus` buses) to their slots' bases. Sums saturate
    /// (a base past 9.2 x 10^12 MW is not a grid).
    pub fn commit<'t>(&mut self, trades: impl IntoIterator<Item = &'t SchemeTrade>, nbus: usize) {
        for t in trades {
            let inj = self.slots.entry(t.slot).or_insert_with(|| vec![0; nbus]);
            let (s, b) = (t.seller as usize, t.buyer as usize);
            inj[s] = inj[s].saturating_add(t.milli_mw);
            inj[b] = inj[b].saturating_sub(t.milli_mw);
        }
    }

    /// Drops every slot before `slot` (their delivery time has passed).
    pub fn prune_before(&mut self, slot: u32) {
        self.slots = self.slots.split_off(&slot);
    }

    /// Slots with a committed trade, ascending, with their bases.
    pub fn slots(&self) -> impl Iterator<Item = (u32, &[i64])> {
        self.slots.iter().map(|(&k, v)| (k, v.as_slice()))
    }
}

/// The rule on one delivery slot of a period's scheme.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SlotCurtailment {
    /// The slot (delivery time / slot length).
    pub slot: u32,
    /// The rule's outcome on the slot's pending trades over its committed base.
    #[serde(flatten)]
    pub curtailment: Curtailment,
}

/// The rule on a whole scheme: its trades grouped by delivery slot, each slot's rule run on its
/// own committed base. Trades of different slots never curtail each other.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SlotCurtailments {
    /// One per slot with a pending trade, ascending.
    pub slots: Vec<SlotCurtailment>,
    /// The first slot, and each slot's place in `slots` from it (u32::MAX: none), when the
    /// slots span fewer than 2^16: a verdict's slot found without a search.
    #[serde(skip)]
    lookup: (u32, Vec<u32>),
}

impl SlotCurtailments {
    /// Groups `scheme` by slot (keeping submission order within a slot) and runs the rule on
    /// each slot over its base in `base`, slots in parallel.
    pub fn compute(model: &DcModel, scheme: &[SchemeTrade], base: &SlotBase) -> Self {
        let rows = rounds::RowCache::default();
        let slots = rounds::chunked_by_slot(scheme, model.grid().buses.len())
            .into_par_iter()
            .map(|(slot, chunks)| SlotCurtailment {
                slot,
                curtailment: Curtailment::rounds(model, chunks, base.of(slot), &rows),
            })
            .collect();
        Self::new(slots)
    }

    /// The outcomes of `slots` (ascending, distinct) with their lookup table.
    fn new(slots: Vec<SlotCurtailment>) -> Self {
        let lookup = match (slots.first(), slots.last()) {
            (Some(a), Some(z)) if z.slot - a.slot < 1 << 16 => {
                let mut at = vec![u32::MAX; (z.slot - a.slot) as usize + 1];
                for (i, s) in slots.iter().enumerate() {
                    at[(s.slot - a.slot) as usize] = rounds::upto(i);
                }
                (a.slot, at)
            }
            _ => (0, Vec::new()),
        };
        Self { slots, lookup }
    }

    /// The rule's outcome for `slot`, if the scheme had a trade in it.
    #[inline]
    pub fn of(&self, slot: u32) -> Option<&Curtailment> {
        self.place(slot).map(|i| &self.slots[i].curtailment)
    }

    /// Where `slot` is in `slots`.
    #[inline]
    fn place(&self, slot: u32) -> Option<usize> {
        let (lo, at) = (&self.lookup.0, &self.lookup.1);
        let i = if at.is_empty() {
            self.slots.binary_search_by_key(&slot, |s| s.slot).ok()?
        } else {
            *at.get(slot.wrapping_sub(*lo) as usize)? as usize
        };
        (i < self.slots.len()).then_some(i)
    }

    /// A validator's verdict for one trade: the first cut of its slot that curtails it.
    #[inline]
    pub fn curtailing_cut(&self, t: &SchemeTrade) -> Option<usize> {
        let i = self.place(t.slot)?;
        self.slots[i].curtailment.curtailing_cut(t)
    }

    /// Trades curtailed in all slots.
    pub fn curtailed(&self) -> usize {
        self.slots.iter().map(|s| s.curtailment.curtailed).sum()
    }
}

/// One period's published congestion context; a validator's congestion stage.
#[derive(Debug)]
pub struct PeriodCongestion<'a> {
    market: &'a GridMarket,
    terms: TradeTerms,
    /// The rule's outcome, per delivery slot.
    pub curtailment: SlotCurtailments,
    priority: PriorityRule,
}

impl PeriodCongestion<'_> {
    /// Buses of the grid.
    pub fn buses(&self) -> usize {
        self.market.model().grid().buses.len()
    }

    /// The scheme trade of a transaction in this period (None when a party is not placed).
    pub fn trade(&self, tx: u32, contract: &SignedContract) -> Option<SchemeTrade> {
        let priority = self.priority.of(&contract.contract);
        self.market.trade(self.terms, tx, priority, contract)
    }
}

impl CongestionStage for PeriodCongestion<'_> {
    fn allows(&self, tx: u32, contract: &SignedContract) -> bool {
        match self.trade(tx, contract) {
            Some(t) => {
                !self.market.overloads_alone(&t) && self.curtailment.curtailing_cut(&t).is_none()
            }
            None => true,
        }
    }
    fn name(&self) -> &'static str {
        STAGE_NAME
    }
    fn publish(&self, out: &mut Vec<u8>) {
        self.encode_published(out);
    }
}

/// O1: the period's congestion context. The scheme is `pending` (workload indices, whose
/// order is submission order) less those failing a local check; each slot's flows start from
/// `base`, the trades committed for it in earlier periods.
pub fn period<'g>(
    grid: &'g GridMarket,
    workload: &Workload,
    pending: &[u32],
    checks: &Checks<'_>,
    priority: PriorityRule,
    base: &SlotBase,
) -> PeriodCongestion<'g> {
    let terms = workload.rules.terms();
    let scheme: Vec<SchemeTrade> = pending
        .par_iter()
        .filter_map(|&tx| {
            let signed = &workload.transactions[tx as usize];
            if checks.local_failure(signed).is_some() {
                return None;
            }
            grid.trade(terms, tx, priority.of(&signed.contract), signed)
                .filter(|t| !grid.overloads_alone(t))
        })
        .collect();
    PeriodCongestion {
        market: grid,
        terms,
        curtailment: SlotCurtailments::compute(grid.model(), &scheme, base),
        priority,
    }
}

#[cfg(test)]
mod tests {
    use super::rounds::*;
    use super::*;

    /// Values where rounding half away from zero, the sign and saturation all turn.
    fn edges() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            0.49999999999999994,
            -0.49999999999999994,
            0.5000000000000001,
            1.0,
            1.5,
            -1.5,
            2.5,
            4503599627370495.5,
            4503599627370496.0,
            9.3e18,
            -9.3e18,
            1e300,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
        ];
        let mut r = crate::base::rng::Rng::stream(3, &[]);
        for _ in 0..20_000 {
            let scale = [1.0, 10.0, 1e3, 1e6, 1e12][r.index(5)];
            #[allow(clippy::cast_precision_loss)]
            let x = (r.below(1 << 40) as f64 / (1u64 << 40) as f64 - 0.5) * 2.0 * scale;
            v.push(x);
        }
        v
    }

    /// Published cuts over `nbus` buses with random rows, cut-off priorities drawn from
    /// `priorities` and cut-off orders near the ends of the u32 range and in between.
    fn cuts(
        r: &mut crate::base::rng::Rng,
        count: usize,
        nbus: usize,
        priorities: &[u64],
    ) -> Vec<Cut> {
        (0..count)
            .map(|j| Cut {
                round: u32::try_from(j + 1).unwrap_or(u32::MAX),
                branch: j,
                sign: 1,
                flow_mw: 0.0,
                rate_a: 0.0,
                excess_w: 1,
                cutoff_priority: priorities[r.index(priorities.len())],
                cutoff_order: [0, 1, 500, 1000, u32::MAX - 1, u32::MAX][r.index(6)],
                curtailed: 1,
                removed_w: 1,
                firm: false,
                #[allow(clippy::cast_precision_loss)]
                row: (0..nbus)
                    .map(|_| (r.below(2001) as f64 - 1000.0) / 997.0)
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn a_slot_is_found_by_table_or_by_search_and_a_missing_one_is_none() {
        for slots in [vec![3, 4, 9], vec![0, 65_535], vec![5, 70_000, u32::MAX]] {
            let outcome = SlotCurtailments::new(
                slots
                    .iter()
                    .map(|&slot| SlotCurtailment {
                        slot,
                        curtailment: Curtailment {
                            scheme: slot as usize,
                            ..Curtailment::default()
                        },
                    })
                    .collect(),
            );
            assert_eq!(
                outcome.lookup.1.is_empty(),
                slots[slots.len() - 1] >= 1 << 16
            );
            for probe in [0, 1, 2, 3, 4, 5, 8, 9, 10, 65_535, 69_999, 70_000, u32::MAX] {
                let found = outcome.of(probe).map(|c| u32::try_from(c.scheme).unwrap());
                assert_eq!(
                    found,
                    slots.contains(&probe).then_some(probe),
                    "{slots:?} {probe}"
                );
            }
        }
    }

    #[test]
    fn the_keyed_verdict_is_the_verdict_cut_by_cut() {
        let mut r = crate::base::rng::Rng::stream(11, &[]);
        let nbus = 7;
        // 1 to 4 distinct cut-off priorities (the inlined path), more (blocks and ranks), at
        // the ends of the u64 range, with one block of cuts or several.
        let lists: [&[u64]; 6] = [
            &[5],
            &[0, u64::MAX],
            &[3, 4, 9, 1 << 40],
            &[1, 2, 3, 4, 5],
            &[
                0, 7, 8, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113,
            ],
            &[u64::MAX - 2, u64::MAX - 1, u64::MAX],
        ];
        for list in lists {
            for count in [0, 1, 3, 8, 9, 17, 40] {
                let cs = cuts(&mut r, count, nbus, list);
                let c = Curtailment {
                    index: VerdictIndex::new(&cs, nbus),
                    cuts: cs,
                    ..Curtailment::default()
                };
                for _ in 0..3000 {
                    // Priorities at, just below and just above the cut-offs, and anywhere.
                    let near = list[r.index(list.len())];
                    let priority = match r.below(5) {
                        0 => near,
                        1 => near.saturating_sub(1),
                        2 => near.saturating_add(1),
                        3 => u64::MAX,
                        _ => r.below(u64::MAX),
                    };
                    let t = SchemeTrade {
                        order: [0, 1, 499, 500, 501, 1000, u32::MAX - 1, u32::MAX][r.index(8)],
                        priority,
                        seller: u32::try_from(r.index(nbus)).unwrap_or(0),
                        buyer: u32::try_from(r.index(nbus)).unwrap_or(0),
                        milli_mw: r.between(1, 3000),
                        slot: 0,
                    };
                    assert_eq!(
                        c.curtailing_cut(&t),
                        c.curtailing_cut_plainly(&t),
                        "{count} cuts, priorities {list:?}, trade {t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn distinct_values_get_one_id_each_through_every_growth() {
        let mut r = crate::base::rng::Rng::stream(5, &[]);
        let mut d = Distinct::new();
        let mut seen = std::collections::HashMap::new();
        // Values colliding in the table's home slots (multiples of large powers of two), the
        // ends of the range, and enough of them to grow the table several times.
        let pool: Vec<u64> = (0..3000u64)
            .map(|i| match i % 3 {
                0 => i << 40,
                1 => u64::MAX - i,
                _ => r.below(u64::MAX),
            })
            .collect();
        for _ in 0..20_000 {
            let v = pool[r.index(pool.len())];
            let id = d.id(v);
            let want = *seen.entry(v).or_insert(id);
            assert_eq!(id, want, "value {v}");
            assert_eq!(d.values[id as usize], v);
        }
        assert_eq!(d.values.len(), seen.len());
        assert!(d.values.len() * 2 <= d.slots.len());
    }

    #[test]
    fn the_branch_free_forms_agree_with_the_rounding_rule() {
        for x in edges() {
            let q = rounded_w(x);
            assert_eq!(positive_w(x), q.max(0), "positive part of {x:e}");
            assert_eq!(aggravates(x), q > 0, "aggravates at {x:e}");
        }
    }
}
