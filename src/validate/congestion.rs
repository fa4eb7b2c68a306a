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
//!
//! **How the rounds are computed.** [`Curtailment::compute`]: the scheme is copied once into
//! chunks of 65,536 trades in submission order, each chunk's trades grouped by priority rank
//! (stably; a chunk's priorities get ids from a small hash table as the trades pass, sorted into
//! ranks once per chunk); a round sums contributions rank by rank from the lowest and marks which
//! trades aggravate (pass A), stops at the rank whose sum reaches the excess, finds the cut-off
//! from the end of that rank with per-chunk sums, and removes the marked trades from their chunks
//! (pass B, which only compacts: the removed watts are pass A's run sums), so a round reads only
//! the ranks at or below its cut-off and never a trade curtailed before. Both passes are branch-
//! free per trade (whether a trade aggravates is random per trade; `positive_w` and `aggravates`
//! are unit-tested against the rounding rule). Chunk boundaries depend only on the scheme's length
//! and every sum is an exact integer, so the cuts are the same on any thread count; they equal
//! those of the rule written plainly in the test
//! (`the_chunked_rule_equals_the_rule_written_plainly`, up to 520 rounds, more than one chunk,
//! more than 1024 distinct priorities in one chunk). The verdict (`curtailing_cut`) reads the
//! cuts' rows bus-major, padded to blocks of 8 cuts, and evaluates a block at once without a
//! branch per cut: curtailment order is one number per trade, key = class x 2^32 + (2^32 - 1 -
//! submission order), where with P the cut-offs' distinct priorities a trade's class is 2 x #{P
//! below its priority} + [its priority in P] and a cut's is 2i + 1 for P_i; a cut reaches a trade
//! exactly when the trade's key is at most the cut's. Keys are integers below 2^53 (fewer than
//! 2^20 distinct cut-off priorities; past that the verdict goes cut by cut), so they compare
//! exactly as f64 beside the factors; the unit test `the_keyed_verdict_is_the_verdict_cut_by_cut`
//! checks it at the ends of the u64 and u32 ranges. The verdict uses the same rounding expression
//! as the rounds, so both agree to the bit. Before the scheme is formed, a trade that would
//! overload a branch even as the only trade of the period (power above its pair's transfer limit
//! floor(1000 / max_k |PTDF_k[s] - PTDF_k[b]| / rateA_k) in 0.001 MW) is left out and rejected for
//! congestion: each validator computes that limit for its own trade from the bus-major
//! sensitivities (a maximum of exact per-branch values, so the same on every node).
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

use crate::grid::placement::{GridMarket, SchemeTrade};
use std::hint::select_unpredictable;

use rayon::prelude::*;
use serde::Serialize;

use crate::base::domain::AddressBases;
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
    /// Branches overloaded by the whole scheme, with their loading |flow| / rateA.
    pub overloaded_before: Vec<(usize, f64)>,
    /// The published cuts, in round order.
    pub cuts: Vec<Cut>,
    /// Trades curtailed in all.
    pub curtailed: usize,
    /// Branches still overloaded that no remaining trade aggravates.
    pub residual: Vec<usize>,
    /// What the verdict reads, built from the cuts.
    #[serde(skip)]
    index: VerdictIndex,
}

/// Trades per chunk of the rounds' working copy: chunks are the unit of parallel work, and
/// their boundaries depend only on the scheme's length, so sums are the same on any thread
/// count.
const CHUNK: usize = 1 << 16;
/// A pass over the ranks takes at least this many live trades at once (fewer, larger passes
/// when priorities take many values).
const BATCH: u64 = 1 << 16;

/// A trade as the rounds keep it.
#[derive(Clone, Copy, Debug, Default)]
struct Slim {
    seller: u32,
    buyer: u32,
    milli_mw: i64,
}

impl Slim {
    fn of(t: &SchemeTrade) -> Self {
        Slim {
            seller: t.seller,
            buyer: t.buyer,
            milli_mw: t.milli_mw,
        }
    }

    /// Its contribution to the branch whose sign-adjusted row is `row`, before rounding.
    fn raw_w(&self, row: &[f64]) -> f64 {
        raw_w(
            self.milli_mw,
            row[self.seller as usize],
            row[self.buyer as usize],
        )
    }
}

/// The trades of one rank inside a chunk: `slim[start..start + len]`, in submission order.
#[derive(Clone, Copy, Debug)]
struct Run {
    rank: u32,
    start: u32,
    len: u32,
}

/// A stretch of the scheme in submission order, its trades grouped by rank (stably). Curtailed
/// trades are removed from their run (the rest keep their order), so later rounds never read
/// them again.
#[derive(Debug)]
struct Chunk {
    slim: Vec<Slim>,
    order: Vec<u32>,
    /// Ascending rank; only ranks present.
    runs: Vec<Run>,
    /// Positive contributions of each run's live trades to this round's branch (pass A).
    sums: Vec<i128>,
    /// Whether each trade aggravates this round's branch (pass A, for the ranks it read).
    aggravating: Vec<bool>,
    /// While the chunk is built: its own distinct priorities (runs' ranks index them).
    local: Vec<u64>,
    /// Submission order of its first and last trade as given.
    first_order: u32,
    last_order: u32,
}

impl Chunk {
    /// Index range of the runs whose rank is in `ranks`.
    fn runs_in(&self, ranks: std::ops::Range<u32>) -> std::ops::Range<usize> {
        let a = self.runs.partition_point(|r| r.rank < ranks.start);
        let b = self.runs.partition_point(|r| r.rank < ranks.end);
        a..b
    }

    /// Sum of the positive rounded contributions of run `i`'s live trades to the branch whose
    /// sign-adjusted row is `row`; marks which of them aggravate it.
    fn run_sum(&mut self, i: usize, row: &[f64]) -> i128 {
        let r = self.runs[i];
        let at = r.start as usize..(r.start + r.len) as usize;
        // Each contribution is an i64 (saturated for absurd powers); their sum could overflow
        // an i64, so it is kept in i128 (one extra add per trade).
        let mut sum = 0i128;
        for (t, a) in self.slim[at.clone()].iter().zip(&mut self.aggravating[at]) {
            let q = positive_w(t.raw_w(row));
            *a = q > 0;
            sum += i128::from(q);
        }
        sum
    }

    /// Removes, from run `i`, the trades at position `from` (within the run) or later that
    /// aggravate (as marked by `run_sum` this round); adds their power back out of `delta`
    /// (per bus, 0.001 MW). Returns (count, lowest submission order removed).
    fn curtail(&mut self, i: usize, from: u32, delta: &mut [i64]) -> (u32, u32) {
        let r = self.runs[i];
        let (start, end) = (r.start as usize, (r.start + r.len) as usize);
        let begin = start + from as usize;
        let mut keep = begin;
        let mut first = u32::MAX;
        // Branch-free: whether a trade aggravates is random per trade, so every trade is
        // written at `keep` (which only advances past a kept one) and counted under a select.
        for at in begin..end {
            let t = self.slim[at];
            let o = self.order[at];
            let cut = self.aggravating[at];
            let gone = select_unpredictable(cut, t.milli_mw, 0);
            first = first.min(select_unpredictable(cut, o, u32::MAX));
            delta[t.seller as usize] -= gone;
            delta[t.buyer as usize] += gone;
            self.slim[keep] = t;
            self.order[keep] = o;
            keep += usize::from(!cut);
        }
        self.runs[i].len = upto(keep - start);
        (upto(end - keep), first)
    }
}

/// What one pass over the scheme gives: its chunks grouped by rank, its injections per bus
/// (0.001 MW), its distinct priorities ascending, and whether it was in submission order.
struct Chunked {
    chunks: Vec<Chunk>,
    injections: Vec<i64>,
    priorities: Vec<u64>,
    in_order: bool,
}

/// Splits `trades` into chunks of CHUNK in the given order, each grouped by rank, in one pass
/// (each chunk finds its own distinct priorities; ranks are relabelled to the scheme's after).
/// The chunks are the rounds' working copy only when `in_order` comes back true.
fn chunks_of(trades: &[SchemeTrade], nbus: usize) -> Chunked {
    let mut out = trades
        .par_chunks(CHUNK)
        .fold(
            || Chunked {
                chunks: Vec::new(),
                injections: vec![0i64; nbus],
                priorities: Vec::new(),
                in_order: true,
            },
            |mut acc, part| {
                let inj = &mut acc.injections;
                // Each trade's priority gets an id (its value's first appearance in the chunk)
                // from a small hash table; ids become ranks once the chunk's values are sorted.
                let mut distinct = Distinct::new();
                let mut ids: Vec<u32> = Vec::with_capacity(part.len());
                let mut in_order = true;
                let mut prev: Option<u32> = None;
                for t in part {
                    inj[t.seller as usize] += t.milli_mw;
                    inj[t.buyer as usize] -= t.milli_mw;
                    in_order &= prev.is_none_or(|p| p < t.order);
                    prev = Some(t.order);
                    ids.push(distinct.id(t.priority));
                }
                acc.in_order &= in_order;
                let chunk = group_by_rank(part, &ids, distinct.values);
                acc.priorities.extend_from_slice(&chunk.local);
                acc.chunks.push(chunk);
                acc
            },
        )
        .reduce(
            || Chunked {
                chunks: Vec::new(),
                injections: vec![0i64; nbus],
                priorities: Vec::new(),
                in_order: true,
            },
            |mut a, b| {
                // Folds cover contiguous stretches in order, so appending keeps the order.
                a.in_order &= b.in_order;
                a.chunks.extend(b.chunks);
                a.injections = add_into(a.injections, b.injections);
                a.priorities.extend(b.priorities);
                a
            },
        );
    out.priorities.sort_unstable();
    out.priorities.dedup();
    // Order across chunks: each chunk's last order below the next one's first.
    out.in_order &= out
        .chunks
        .windows(2)
        .all(|w| w[0].last_order < w[1].first_order);
    let global = &out.priorities;
    out.chunks.par_iter_mut().for_each(|c| {
        for r in &mut c.runs {
            r.rank = upto(global.partition_point(|&p| p < c.local[r.rank as usize]));
        }
        c.local = Vec::new();
    });
    out
}

/// The distinct values among a chunk's priorities, each with an id in order of first
/// appearance: an open-addressing hash table (kept at most half full), so a trade costs one
/// multiply and, almost always, one probe that finds its value. (A binary search in a sorted
/// list, or a count over it, cost a data-dependent chain per trade: ~12% of the rounds' time.)
struct Distinct {
    /// Id in each slot, u32::MAX when empty.
    slots: Vec<u32>,
    /// The values, by id.
    values: Vec<u64>,
}

impl Distinct {
    fn new() -> Self {
        Distinct {
            slots: vec![u32::MAX; 64],
            values: Vec::new(),
        }
    }

    /// The slot where the search for `p` starts: Fibonacci hashing, the product's top bits.
    fn home(p: u64, slots: usize) -> usize {
        let bits = slots.trailing_zeros();
        usize::try_from(p.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)).unwrap_or(0)
    }

    #[inline]
    fn id(&mut self, p: u64) -> u32 {
        let mask = self.slots.len() - 1;
        let mut h = Self::home(p, self.slots.len());
        loop {
            let id = self.slots[h];
            if id == u32::MAX {
                return self.insert(h, p);
            }
            if self.values[id as usize] == p {
                return id;
            }
            h = (h + 1) & mask;
        }
    }

    #[cold]
    fn insert(&mut self, h: usize, p: u64) -> u32 {
        let id = upto(self.values.len());
        self.values.push(p);
        self.slots[h] = id;
        if self.values.len() * 2 > self.slots.len() {
            let n = self.slots.len() * 2;
            self.slots = vec![u32::MAX; n];
            for (i, &v) in self.values.iter().enumerate() {
                let mut h = Self::home(v, n);
                while self.slots[h] != u32::MAX {
                    h = (h + 1) & (n - 1);
                }
                self.slots[h] = upto(i);
            }
        }
        id
    }
}

/// One chunk's trades grouped by rank, stably, by a counting sort: `ids[i]` is trade i's
/// priority as an index into `values` (the chunk's distinct priorities, any order).
fn group_by_rank(part: &[SchemeTrade], ids: &[u32], values: Vec<u64>) -> Chunk {
    // Sort the distinct values; an id's rank is its value's place among them.
    let mut by_value: Vec<u32> = (0..upto(values.len())).collect();
    by_value.sort_unstable_by_key(|&id| values[id as usize]);
    let local: Vec<u64> = by_value.iter().map(|&id| values[id as usize]).collect();
    let mut c = Chunk {
        slim: vec![Slim::default(); part.len()],
        order: vec![0; part.len()],
        runs: Vec::new(),
        sums: Vec::new(),
        aggravating: vec![false; part.len()],
        local,
        first_order: part.first().map_or(0, |t| t.order),
        last_order: part.last().map_or(0, |t| t.order),
    };
    // Counted and placed by id (no rank per trade): each id's next slot starts where its rank's
    // run does.
    let mut next = vec![0u32; values.len()];
    for &id in ids {
        next[id as usize] += 1;
    }
    let mut start = 0u32;
    for (rank, &id) in by_value.iter().enumerate() {
        let len = next[id as usize];
        c.runs.push(Run {
            rank: upto(rank),
            start,
            len,
        });
        next[id as usize] = start;
        start += len;
    }
    for (t, &id) in part.iter().zip(ids) {
        let at = next[id as usize] as usize;
        next[id as usize] += 1;
        c.slim[at] = Slim::of(t);
        c.order[at] = t.order;
    }
    c.sums = vec![0; c.runs.len()];
    c
}

/// Live trades per rank.
fn live_by_rank(chunks: &[Chunk], ranks: usize) -> Vec<u64> {
    let mut live = vec![0u64; ranks];
    for r in chunks.iter().flat_map(|c| &c.runs) {
        live[r.rank as usize] += u64::from(r.len);
    }
    live
}

/// `i` as u32: positions inside a chunk (below 2^16) and ranks (at most one per trade, and a
/// scheme's submission orders are u32).
fn upto(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Curtailment {
    /// Runs the rule on `scheme` (any order; `order` values unique).
    ///
    /// How: the trades are copied once into chunks (fixed stretches of submission order) with
    /// each chunk's trades grouped by rank; a round sums contributions rank by rank from the
    /// lowest (pass A) and stops at the rank where the sum reaches the excess, then removes the
    /// curtailed trades from their runs (pass B). A round reads only the ranks at or below its
    /// cut-off, and never a trade curtailed before.
    pub fn compute(model: &DcModel, scheme: &[SchemeTrade]) -> Curtailment {
        let grid = model.grid();
        let nbus = grid.buses.len();
        // One pass finds the order, the injections, the priorities and the chunks; a scheme not
        // in submission order is sorted and passed over again.
        let mut chunked = chunks_of(scheme, nbus);
        if !chunked.in_order {
            let mut v = scheme.to_vec();
            v.par_sort_unstable_by_key(|t| t.order);
            chunked = chunks_of(&v, nbus);
        }
        let Chunked {
            mut chunks,
            injections: mut inj,
            priorities: prios,
            ..
        } = chunked;
        // Distinct priorities, ascending; a trade's rank is its place among them.
        let mut live = live_by_rank(&chunks, prios.len());
        let mut out = Curtailment {
            scheme: scheme.len(),
            ..Curtailment::default()
        };
        let mut given_up: Vec<usize> = Vec::new();
        let mut round = 0u32;
        loop {
            let flows = model.flows(&to_mw(&inj));
            let overloaded = overloaded(grid, &flows);
            if round == 0 {
                out.overloaded_before.clone_from(&overloaded);
            }
            let Some(l) = most_loaded(&overloaded, &given_up) else {
                out.residual = given_up;
                break;
            };
            let br = &grid.branches[l];
            let flow = flows[l];
            let sign: i8 = if flow > 0.0 { 1 } else { -1 };
            #[allow(clippy::cast_possible_truncation)]
            let excess_w = (((flow.abs() - br.rate_a) * 1e6).ceil() as i64).max(1);
            let row: Vec<f64> = model
                .ptdf_row(l)
                .into_iter()
                .map(|x| f64::from(sign) * x)
                .collect();
            let Some((cut_rank, need)) = cut_rank(&mut chunks, &live, &row, excess_w) else {
                given_up.push(l);
                continue;
            };
            round += 1;
            let (cut_at, cutoff_order) = cut_off(&chunks, cut_rank, need, &row);
            let b = pass_b(&mut chunks, cut_rank, cut_at, nbus);
            live = live_by_rank(&chunks, prios.len());
            inj.iter_mut().zip(b.delta).for_each(|(x, y)| *x += y);
            out.cuts.push(Cut {
                round,
                branch: l,
                sign,
                flow_mw: flow.abs(),
                rate_a: br.rate_a,
                excess_w,
                cutoff_priority: prios[cut_rank as usize],
                // With no limit, the cut-off is the earliest aggravating trade of the cut rank.
                cutoff_order: if cut_at.is_none() {
                    b.first
                } else {
                    cutoff_order
                },
                curtailed: b.curtailed,
                removed_w: i64::try_from(b.removed).unwrap_or(i64::MAX),
                row,
            });
            out.curtailed += b.curtailed as usize;
        }
        out.index = VerdictIndex::new(&out.cuts, nbus);
        out
    }

    /// A validator's verdict for one trade: the index of the first cut that curtails it (its
    /// own contribution positive, and it at or before the cut-off).
    #[inline]
    pub fn curtailing_cut(&self, t: &SchemeTrade) -> Option<usize> {
        let ix = &self.index;
        if ix.width != LANES || ix.priorities.len() > 4 {
            return self.curtailing_cut_in_blocks(t);
        }
        // The usual case, kept small so that it inlines into the caller's loop: one block of
        // cuts, at most 4 distinct cut-off priorities. No branch depends on the trade (a
        // caller asking only whether some cut curtails it reads `m != 0`).
        let (below, equal) = rank_in::<4>(&ix.padded, t.priority);
        let key = key_f64(2 * below + usize::from(equal), t.order);
        // A bus outside the grid is out of bounds here, as in the cuts' own rows.
        let s = &ix.by_bus[t.seller as usize * LANES..][..LANES];
        let b = &ix.by_bus[t.buyer as usize * LANES..][..LANES];
        let m = block_mask(power_w(t.milli_mw), key, s, b, &ix.keys);
        (m != 0).then(|| m.trailing_zeros() as usize)
    }

    /// `curtailing_cut` for any number of cuts and cut-off priorities: block by block, the
    /// first block with a cut that curtails the trade.
    #[inline(never)]
    fn curtailing_cut_in_blocks(&self, t: &SchemeTrade) -> Option<usize> {
        let ix = &self.index;
        let Some(key) = ix.key_of(t) else {
            return self.curtailing_cut_plainly(t);
        };
        let w = ix.width;
        let s = &ix.by_bus[t.seller as usize * w..][..w];
        let b = &ix.by_bus[t.buyer as usize * w..][..w];
        let power = power_w(t.milli_mw);
        (0..w / LANES).find_map(|blk| {
            let at = blk * LANES..(blk + 1) * LANES;
            let m = block_mask(power, key, &s[at.clone()], &b[at.clone()], &ix.keys[at]);
            (m != 0).then(|| blk * LANES + m.trailing_zeros() as usize)
        })
    }

    /// The verdict as the rule states it, cut by cut (what `curtailing_cut` computes when
    /// the cut-offs cannot be keyed exactly in f64).
    fn curtailing_cut_plainly(&self, t: &SchemeTrade) -> Option<usize> {
        self.cuts
            .iter()
            .position(|c| c.reaches(t) & (c.contribution_w(t) > 0))
    }
}

/// Limited branches whose |flow| exceeds rateA, with their loading |flow| / rateA.
fn overloaded(grid: &Grid, flows: &[f64]) -> Vec<(usize, f64)> {
    grid.branches
        .iter()
        .zip(flows)
        .enumerate()
        .filter(|(_, (b, f))| b.is_limited() && f.abs() > b.rate_a)
        .map(|(k, (b, f))| (k, f.abs() / b.rate_a))
        .collect()
}

/// The most loaded branch not given up (ties to the lower row).
fn most_loaded(overloaded: &[(usize, f64)], given_up: &[usize]) -> Option<usize> {
    overloaded
        .iter()
        .filter(|(k, _)| !given_up.contains(k))
        .fold(None::<(usize, f64)>, |best, &(k, l)| match best {
            Some((_, bl)) if bl >= l => best,
            _ => Some((k, l)),
        })
        .map(|(k, _)| k)
}

/// Pass A: rank by rank from the lowest, in batches of at least `BATCH` live trades, each run's
/// contribution summed (and kept in `sums`) until the cumulative sum reaches the excess. Returns
/// the cut rank and what is still needed from it (`i128::MAX`: every aggravating trade goes, the
/// highest rank with one being the last), or `None` when no trade aggravates the branch.
fn cut_rank(chunks: &mut [Chunk], live: &[u64], row: &[f64], excess_w: i64) -> Option<(u32, i128)> {
    let nranks = upto(live.len());
    let mut cum = 0i128;
    let mut chosen: Option<(u32, i128)> = None;
    let mut last_nonzero: Option<u32> = None;
    let mut k0 = 0u32;
    while k0 < nranks && chosen.is_none() {
        let mut k1 = k0;
        let mut batch = 0u64;
        while k1 < nranks && (batch < BATCH || k1 == k0) {
            batch += live[k1 as usize];
            k1 += 1;
        }
        let row_ref = row;
        let by_rank = chunks
            .par_iter_mut()
            .map(|c| {
                let mut s = vec![0i128; (k1 - k0) as usize];
                for i in c.runs_in(k0..k1) {
                    let v = c.run_sum(i, row_ref);
                    c.sums[i] = v;
                    s[(c.runs[i].rank - k0) as usize] += v;
                }
                s
            })
            .reduce(|| vec![0i128; (k1 - k0) as usize], add_into);
        for (k, &s) in (k0..k1).zip(&by_rank) {
            if s == 0 {
                continue;
            }
            if cum + s >= i128::from(excess_w) {
                chosen = Some((k, i128::from(excess_w) - cum));
                break;
            }
            cum += s;
            last_nonzero = Some(k);
        }
        k0 = k1;
    }
    match (chosen, last_nonzero) {
        (Some(c), _) => Some(c),
        (None, Some(k)) => Some((k, i128::MAX)),
        (None, None) => None,
    }
}

/// In the cut rank, latest submitted first: the chunk, then the trade, where the sum from the
/// end reaches `need` (chunk, place in its run, what its run gives from there) and the cut-off's
/// submission index. Chunks after it lose every aggravating trade of the rank; the cut chunk
/// those from the cut-off on. `None` when everything of the rank goes.
fn cut_off(
    chunks: &[Chunk],
    cut_rank: u32,
    need: i128,
    row: &[f64],
) -> (Option<(usize, u32, i128)>, u32) {
    let mut from_end = 0i128;
    let mut cut_at: Option<(usize, u32, i128)> = None;
    let mut cutoff_order = 0u32;
    for (ci, c) in chunks.iter().enumerate().rev() {
        let Some(i) = c.runs_in(cut_rank..cut_rank + 1).next() else {
            continue;
        };
        if need == i128::MAX || from_end + c.sums[i] < need {
            from_end += c.sums[i];
            continue;
        }
        let r = c.runs[i];
        let mut acc = from_end;
        for at in (r.start..r.start + r.len).rev() {
            let q = rounded_w(c.slim[at as usize].raw_w(row));
            if q > 0 {
                acc += i128::from(q);
                if acc >= need {
                    cut_at = Some((ci, at - r.start, acc - from_end));
                    cutoff_order = c.order[at as usize];
                    break;
                }
            }
        }
        break;
    }
    (cut_at, cutoff_order)
}

/// What pass B took from the scheme.
struct Removed {
    /// Injections to add back per bus.
    delta: Vec<i64>,
    curtailed: u32,
    removed: i128,
    /// The earliest submission index curtailed in the cut rank.
    first: u32,
}

/// Pass B: every chunk compacts away its curtailed trades and adds their power back per bus.
fn pass_b(
    chunks: &mut [Chunk],
    cut_rank: u32,
    cut_at: Option<(usize, u32, i128)>,
    nbus: usize,
) -> Removed {
    let (delta, curtailed, removed, first) = chunks
        .par_iter_mut()
        .enumerate()
        .fold(
            || (vec![0i64; nbus], 0u32, 0i128, u32::MAX),
            |(mut d, mut n, mut w, mut first), (ci, c)| {
                for i in c.runs_in(0..cut_rank + 1) {
                    // Where the run's curtailment starts, and the contribution it removes.
                    let (from, w1) = match (c.runs[i].rank == cut_rank, cut_at) {
                        (false, _) | (true, None) => (0, c.sums[i]),
                        (true, Some((at, _, _))) if ci > at => (0, c.sums[i]),
                        (true, Some((at, from, part))) if ci == at => (from, part),
                        (true, Some(_)) => continue,
                    };
                    let before = c.runs[i].len;
                    let (n1, f1) = c.curtail(i, from, &mut d);
                    debug_assert!(c.runs[i].len + n1 == before);
                    n += n1;
                    w += w1;
                    if c.runs[i].rank == cut_rank {
                        first = first.min(f1);
                    }
                }
                (d, n, w, first)
            },
        )
        .reduce(
            || (vec![0i64; nbus], 0u32, 0i128, u32::MAX),
            |(d, n, w, f), (d2, n2, w2, f2)| (add_into(d, d2), n + n2, w + w2, f.min(f2)),
        );
    Removed {
        delta,
        curtailed,
        removed,
        first,
    }
}

/// Bit l set when the trade (power in watts, curtailment key) aggravates lane l's cut and the
/// cut reaches it; `s`, `b` are the lanes' factors at its seller's and buyer's buses.
#[inline(always)]
fn block_mask(power: f64, key: f64, s: &[f64], b: &[f64], keys: &[f64]) -> u32 {
    let (s, b, keys) = (&s[..LANES], &b[..LANES], &keys[..LANES]);
    let mut hit = [false; LANES];
    for l in 0..LANES {
        hit[l] = aggravates(power * (s[l] - b[l])) & (key <= keys[l]);
    }
    hit.iter()
        .enumerate()
        .fold(0u32, |m, (l, &h)| m | (u32::from(h) << l))
}

/// Cuts evaluated together in a verdict (the index pads the cut count to a multiple).
const LANES: usize = 8;

/// What a validator's verdict reads, built once from the published cuts.
///
/// - The cuts' rows bus-major, padded to a multiple of `LANES` with zeros: a trade reads two
///   adjacent runs of values instead of two scattered values per cut.
/// - Curtailment order as one number. With P the cut-offs' distinct priorities ascending, a
///   trade of priority p has class T = 2 x #{P below p} + [p in P], and a cut with cut-off
///   priority P_i has class 2i + 1; then p comes before the cut-off priority exactly when
///   T < 2i + 1, and equals it exactly when T = 2i + 1. So with key = class x 2^32 +
///   (2^32 - 1 - submission order), a cut reaches a trade exactly when the trade's key is at
///   most the cut's. Keys are integers below 2^53 while there are fewer than 2^20 distinct
///   cut-off priorities, so they compare exactly as f64 in the same lanes as the factors.
#[derive(Clone, Debug, Default)]
struct VerdictIndex {
    /// `width` values per bus.
    by_bus: Vec<f64>,
    /// The cut count rounded up to a multiple of `LANES`.
    width: usize,
    /// Each cut's key (padding: -1).
    keys: Vec<f64>,
    /// The cut-offs' distinct priorities, ascending.
    priorities: Vec<u64>,
    /// The first 16 of them, then u64::MAX.
    padded: [u64; 16],
}

/// Distinct cut-off priorities up to which keys are exact in f64 (class below 2^21).
const KEYED: usize = 1 << 20;

impl VerdictIndex {
    fn new(cuts: &[Cut], nbus: usize) -> Self {
        let width = cuts.len().div_ceil(LANES) * LANES;
        let mut by_bus = vec![0.0; nbus * width];
        for (j, c) in cuts.iter().enumerate() {
            for (bus, &v) in c.row.iter().enumerate() {
                by_bus[bus * width + j] = v;
            }
        }
        let mut priorities: Vec<u64> = cuts.iter().map(|c| c.cutoff_priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let mut keys = vec![-1.0; width];
        for (key, c) in keys.iter_mut().zip(cuts) {
            let class = 2 * priorities.partition_point(|&p| p < c.cutoff_priority) + 1;
            *key = key_f64(class, c.cutoff_order);
        }
        let mut padded = [u64::MAX; 16];
        for (x, &p) in padded.iter_mut().zip(&priorities) {
            *x = p;
        }
        VerdictIndex {
            by_bus,
            width,
            keys,
            priorities,
            padded,
        }
    }

    /// The trade's key (None when the cut-offs are too many to key exactly).
    #[inline]
    fn key_of(&self, t: &SchemeTrade) -> Option<f64> {
        // Few values in practice: a branch-free count over a fixed-size list (its size picked
        // once per index, so the branch is the same for every trade) beats a binary search.
        let (below, equal) = match self.priorities.len() {
            0..=4 => rank_in::<4>(&self.padded, t.priority),
            5..=16 => rank_in::<16>(&self.padded, t.priority),
            n if n < KEYED => {
                let below = self.priorities.partition_point(|&x| x < t.priority);
                (below, self.priorities.get(below) == Some(&t.priority))
            }
            _ => return None,
        };
        Some(key_f64(2 * below + usize::from(equal), t.order))
    }
}

/// (how many of the cut-off priorities are below `p`, whether `p` is one of them), from the
/// first N values of `padded` (the priorities, at most N of them, then u64::MAX), without a
/// branch per value. Padding is never below `p`; it equals `p` only for p = u64::MAX above
/// every cut-off, whose class (2m or 2m + 1 with m priorities) is then above every cut's
/// (at most 2m - 1) either way.
#[inline]
fn rank_in<const N: usize>(padded: &[u64; 16], p: u64) -> (usize, bool) {
    let mut below = 0;
    let mut equal = false;
    for &x in &padded[..N] {
        below += usize::from(x < p);
        equal |= x == p;
    }
    (below, equal)
}

/// class x 2^32 + (2^32 - 1 - order), exact in f64 for class below 2^21.
#[allow(clippy::cast_precision_loss)]
fn key_f64(class: usize, order: u32) -> f64 {
    let key = (class as u64) << 32 | u64::from(u32::MAX - order);
    // Below 2^53, so the signed conversion (one instruction) is exact.
    i64::try_from(key).unwrap_or(i64::MAX) as f64
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

/// One period's published congestion context; a validator's congestion stage.
#[derive(Debug)]
pub struct PeriodCongestion<'a> {
    market: &'a GridMarket,
    bases: AddressBases,
    /// The rule's outcome.
    pub curtailment: Curtailment,
    priority: PriorityRule,
}

impl CongestionStage for PeriodCongestion<'_> {
    fn allows(&self, tx: u32, contract: &SignedContract) -> bool {
        let priority = self.priority.of(&contract.contract);
        match self.market.trade(self.bases, tx, priority, contract) {
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

/// O1: the period's congestion context. The scheme is `pending` (workload indices, whose
/// order is submission order) less those failing a local check.
pub fn period<'g>(
    grid: &'g GridMarket,
    workload: &Workload,
    pending: &[u32],
    checks: &Checks<'_>,
    priority: PriorityRule,
) -> PeriodCongestion<'g> {
    let bases = workload.rules.bases();
    let scheme: Vec<SchemeTrade> = pending
        .par_iter()
        .filter_map(|&tx| {
            let signed = &workload.transactions[tx as usize];
            if checks.local_failure(signed).is_some() {
                return None;
            }
            grid.trade(bases, tx, priority.of(&signed.contract), signed)
                .filter(|t| !grid.overloads_alone(t))
        })
        .collect();
    PeriodCongestion {
        market: grid,
        bases,
        curtailment: Curtailment::compute(grid.model(), &scheme),
        priority,
    }
}

#[cfg(test)]
mod tests {
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
                #[allow(clippy::cast_precision_loss)]
                row: (0..nbus)
                    .map(|_| (r.below(2001) as f64 - 1000.0) / 997.0)
                    .collect(),
            })
            .collect()
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
