//! The supervision node's rounds ([`Curtailment::compute`]): the scheme in chunks grouped by
//! priority rank, pass A's sums rank by rank to the cut rank, the cut-off from the end of that
//! rank, pass B's compaction. How and why: the module doc of `congestion`.

use super::*;

/// Trades per stretch of the scheme, each giving the rounds' working copy one chunk (per slot it
/// holds): chunks are the unit of parallel work, and their boundaries depend only on the
/// scheme, so sums are the same on any thread count.
pub(super) const CHUNK: usize = 1 << 16;

/// A pass over the ranks takes at least this many live trades at once (fewer, larger passes
/// when priorities take many values), or a sixteenth of the live trades when that is fewer:
/// a delivery slot's scheme of 40,000 trades then reads its low ranks first, as a scheme of
/// 1,000,000 does, instead of every rank in one batch.
pub(super) const BATCH: u64 = 1 << 16;

/// The smallest batch of pass A: a batch costs a parallel call and a reduction.
pub(super) const MIN_BATCH: u64 = 1 << 10;

/// A trade as the rounds keep it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Slim {
    pub(super) seller: u32,
    pub(super) buyer: u32,
    pub(super) milli_mw: i64,
}

impl Slim {
    pub(super) fn of(t: &SchemeTrade) -> Self {
        Slim {
            seller: t.seller,
            buyer: t.buyer,
            milli_mw: t.milli_mw,
        }
    }

    /// Its contribution to the branch whose sign-adjusted row is `row`, before rounding.
    pub(super) fn raw_w(&self, row: &[f64]) -> f64 {
        raw_w(
            self.milli_mw,
            row[self.seller as usize],
            row[self.buyer as usize],
        )
    }
}

/// The trades of one rank inside a chunk: `slim[start..start + len]`, in submission order.
#[derive(Clone, Copy, Debug)]
pub(super) struct Run {
    pub(super) rank: u32,
    pub(super) start: u32,
    pub(super) len: u32,
}

/// A stretch of the scheme in submission order, its trades grouped by rank (stably). Curtailed
/// trades are removed from their run (the rest keep their order), so later rounds never read
/// them again.
#[derive(Debug)]
pub(super) struct Chunk {
    pub(super) slim: Vec<Slim>,
    pub(super) order: Vec<u32>,
    /// Ascending rank; only ranks present.
    pub(super) runs: Vec<Run>,
    /// Positive contributions of each run's live trades to this round's branch (pass A).
    pub(super) sums: Vec<i128>,
    /// Whether each trade aggravates this round's branch (pass A, for the ranks it read).
    pub(super) aggravating: Vec<bool>,
    /// While the chunk is built: its own distinct priorities (runs' ranks index them).
    pub(super) local: Vec<u64>,
    /// Submission order of its first and last trade as given.
    pub(super) first_order: u32,
    pub(super) last_order: u32,
}

impl Chunk {
    /// Index range of the runs whose rank is in `ranks`.
    pub(super) fn runs_in(&self, ranks: std::ops::Range<u32>) -> std::ops::Range<usize> {
        let a = self.runs.partition_point(|r| r.rank < ranks.start);
        let b = self.runs.partition_point(|r| r.rank < ranks.end);
        a..b
    }

    /// Sum of the positive rounded contributions of run `i`'s live trades to the branch whose
    /// sign-adjusted row is `row`; marks which of them aggravate it.
    pub(super) fn run_sum(&mut self, i: usize, row: &[f64]) -> i128 {
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
    pub(super) fn curtail(&mut self, i: usize, from: u32, delta: &mut [i64]) -> (u32, u32) {
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
pub(super) struct Chunked {
    pub(super) chunks: Vec<Chunk>,
    pub(super) injections: Vec<i64>,
    pub(super) priorities: Vec<u64>,
    pub(super) in_order: bool,
}

/// The scheme in chunks of CHUNK trades in the given order (built in parallel); a scheme not
/// in submission order is sorted and chunked again.
pub(super) fn chunked(scheme: &[SchemeTrade], nbus: usize) -> Chunked {
    let chunk_all = |scheme: &[SchemeTrade]| {
        let built: Vec<(Chunk, bool)> = scheme
            .par_chunks(CHUNK)
            .map(|part| chunk_of(part, |t| *t))
            .collect();
        let in_order = built.iter().all(|b| b.1);
        assemble(built.into_iter().map(|b| b.0).collect(), in_order, nbus)
    };
    in_submission_order(scheme, chunk_all, |c| c.in_order)
}

/// `build` on the scheme as given, or, when what it built is not in submission order, on a
/// copy sorted by submission order.
fn in_submission_order<T>(
    scheme: &[SchemeTrade],
    build: impl Fn(&[SchemeTrade]) -> T,
    in_order: impl Fn(&T) -> bool,
) -> T {
    let built = build(scheme);
    if in_order(&built) {
        return built;
    }
    let mut v = scheme.to_vec();
    v.par_sort_unstable_by_key(|t| t.order);
    build(&v)
}

/// The scheme's trades per delivery slot, ascending, each slot's in chunks: every stretch of
/// CHUNK trades of the scheme (in parallel, read once) gives one chunk to each slot it holds,
/// so a slot's chunks follow the scheme's order. A scheme not in submission order is sorted
/// and chunked again.
pub(super) fn chunked_by_slot(scheme: &[SchemeTrade], nbus: usize) -> Vec<(u32, Chunked)> {
    let chunk_all = |scheme: &[SchemeTrade]| {
        let stretches: Vec<Vec<(u32, Chunk, bool)>> =
            scheme.par_chunks(CHUNK).map(slot_chunks).collect();
        let mut slots: std::collections::BTreeMap<u32, (Vec<Chunk>, bool)> =
            std::collections::BTreeMap::new();
        for (slot, chunk, in_order) in stretches.into_iter().flatten() {
            let entry = slots.entry(slot).or_insert_with(|| (Vec::new(), true));
            entry.0.push(chunk);
            entry.1 &= in_order;
        }
        slots
            .into_iter()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(slot, (chunks, in_order))| (slot, assemble(chunks, in_order, nbus)))
            .collect::<Vec<_>>()
    };
    in_submission_order(scheme, chunk_all, |slots| {
        slots.iter().all(|(_, c)| c.in_order)
    })
}

/// One stretch's chunk per slot it holds, slots ascending, each with whether its trades were in
/// submission order: the stretch's places grouped by slot (a counting sort over the slots'
/// ids from a small hash table), then each slot's trades read where they lie.
fn slot_chunks(part: &[SchemeTrade]) -> Vec<(u32, Chunk, bool)> {
    let first = part.first().map_or(0, |t| t.slot);
    if part.iter().all(|t| t.slot == first) {
        let (chunk, in_order) = chunk_of(part, |t| *t);
        return vec![(first, chunk, in_order)];
    }
    let mut slots = Distinct::new();
    let ids: Vec<u32> = part.iter().map(|t| slots.id(u64::from(t.slot))).collect();
    let n = slots.values.len();
    let mut start = vec![0u32; n + 1];
    for &id in &ids {
        start[id as usize + 1] += 1;
    }
    for k in 0..n {
        start[k + 1] += start[k];
    }
    let mut next = start.clone();
    let mut at = vec![0u32; part.len()];
    for (i, &id) in ids.iter().enumerate() {
        at[next[id as usize] as usize] = upto(i);
        next[id as usize] += 1;
    }
    let mut by_value: Vec<usize> = (0..n).collect();
    by_value.sort_unstable_by_key(|&id| slots.values[id]);
    by_value
        .into_iter()
        .map(|id| {
            let mine = &at[start[id] as usize..start[id + 1] as usize];
            let (chunk, in_order) = chunk_of(mine, |&i| part[i as usize]);
            let slot = u32::try_from(slots.values[id]).unwrap_or(u32::MAX);
            (slot, chunk, in_order)
        })
        .collect()
}

/// One chunk of the trades `get` reads from `items`, in the given order, grouped by rank, and
/// whether they were in submission order. Each trade's priority gets an id (its value's first
/// appearance in the chunk) from a small hash table; ids become ranks once the chunk's values
/// are sorted.
fn chunk_of<I>(items: &[I], get: impl Fn(&I) -> SchemeTrade + Copy) -> (Chunk, bool) {
    let mut distinct = Distinct::new();
    let mut ids: Vec<u32> = Vec::with_capacity(items.len());
    let mut in_order = true;
    let mut prev: Option<u32> = None;
    for t in items.iter().map(get) {
        in_order &= prev.is_none_or(|p| p < t.order);
        prev = Some(t.order);
        ids.push(distinct.id(t.priority));
    }
    (group_by_rank(items, get, &ids, distinct.values), in_order)
}

/// A scheme's chunks (in the scheme's order; each in submission order when `in_order`) put
/// together: the scheme's distinct priorities, each chunk's ranks relabelled to them, its
/// injections per bus (exact integer sums), and whether the whole is in submission order.
fn assemble(mut chunks: Vec<Chunk>, in_order: bool, nbus: usize) -> Chunked {
    let mut priorities: Vec<u64> = chunks
        .iter()
        .flat_map(|c| c.local.iter().copied())
        .collect();
    priorities.sort_unstable();
    priorities.dedup();
    // Order across chunks: each chunk's last order below the next one's first.
    let in_order = in_order
        && chunks
            .windows(2)
            .all(|w| w[0].last_order < w[1].first_order);
    let global = &priorities;
    chunks.par_iter_mut().for_each(|c| {
        for r in &mut c.runs {
            r.rank = upto(global.partition_point(|&p| p < c.local[r.rank as usize]));
        }
        c.local = Vec::new();
    });
    let injections = chunks
        .par_iter()
        .fold(
            || vec![0i64; nbus],
            |mut inj, c| {
                for t in &c.slim {
                    inj[t.seller as usize] += t.milli_mw;
                    inj[t.buyer as usize] -= t.milli_mw;
                }
                inj
            },
        )
        .reduce(|| vec![0i64; nbus], add_into);
    Chunked {
        chunks,
        injections,
        priorities,
        in_order,
    }
}

/// The distinct values among a chunk's priorities, each with an id in order of first
/// appearance: an open-addressing hash table (kept at most half full), so a trade costs one
/// multiply and, almost always, one probe that finds its value. (A binary search in a sorted
/// list, or a count over it, cost a data-dependent chain per trade: ~12% of the rounds' time.)
pub(super) struct Distinct {
    /// Id in each slot, u32::MAX when empty.
    pub(super) slots: Vec<u32>,
    /// The values, by id.
    pub(super) values: Vec<u64>,
}

impl Distinct {
    pub(super) fn new() -> Self {
        Distinct {
            slots: vec![u32::MAX; 64],
            values: Vec::new(),
        }
    }

    /// The slot where the search for `p` starts: Fibonacci hashing, the product's top bits.
    pub(super) fn home(p: u64, slots: usize) -> usize {
        let bits = slots.trailing_zeros();
        usize::try_from(p.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)).unwrap_or(0)
    }

    #[inline]
    pub(super) fn id(&mut self, p: u64) -> u32 {
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
    pub(super) fn insert(&mut self, h: usize, p: u64) -> u32 {
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
pub(super) fn group_by_rank<I>(
    part: &[I],
    get: impl Fn(&I) -> SchemeTrade,
    ids: &[u32],
    values: Vec<u64>,
) -> Chunk {
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
        first_order: part.first().map_or(0, |t| get(t).order),
        last_order: part.last().map_or(0, |t| get(t).order),
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
    for (t, &id) in part.iter().map(get).zip(ids) {
        let at = next[id as usize] as usize;
        next[id as usize] += 1;
        c.slim[at] = Slim::of(&t);
        c.order[at] = t.order;
    }
    c.sums = vec![0; c.runs.len()];
    c
}

/// Live trades per rank.
pub(super) fn live_by_rank(chunks: &[Chunk], ranks: usize) -> Vec<u64> {
    let mut live = vec![0u64; ranks];
    for r in chunks.iter().flat_map(|c| &c.runs) {
        live[r.rank as usize] += u64::from(r.len);
    }
    live
}

/// `i` as u32: positions inside a chunk (below 2^16) and ranks (at most one per trade, and a
/// scheme's submission orders are u32).
pub(super) fn upto(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// Limited branches whose |flow| exceeds rateA, with their loading |flow| / rateA.
pub(super) fn overloaded(grid: &Grid, flows: &[f64]) -> Vec<(usize, f64)> {
    grid.branches
        .iter()
        .zip(flows)
        .enumerate()
        .filter(|(_, (b, f))| b.is_limited() && f.abs() > b.rate_a)
        .map(|(k, (b, f))| (k, f.abs() / b.rate_a))
        .collect()
}

/// The most loaded branch not given up (ties to the lower row).
pub(super) fn most_loaded(overloaded: &[(usize, f64)], given_up: &[usize]) -> Option<usize> {
    overloaded
        .iter()
        .filter(|(k, _)| !given_up.contains(k))
        .fold(None::<(usize, f64)>, |best, &(k, l)| match best {
            Some((_, bl)) if bl >= l => best,
            _ => Some((k, l)),
        })
        .map(|(k, _)| k)
}

/// Pass A: rank by rank from the lowest, in batches of live trades (`BATCH`), each run's
/// contribution summed (and kept in `sums`) until the cumulative sum reaches the excess. Returns
/// the cut rank and what is still needed from it (`i128::MAX`: every aggravating trade goes, the
/// highest rank with one being the last), or `None` when no trade aggravates the branch.
pub(super) fn cut_rank(
    chunks: &mut [Chunk],
    live: &[u64],
    row: &[f64],
    excess_w: i64,
) -> Option<(u32, i128)> {
    let nranks = upto(live.len());
    let least = (live.iter().sum::<u64>() / 16).clamp(MIN_BATCH, BATCH);
    let mut cum = 0i128;
    let mut chosen: Option<(u32, i128)> = None;
    let mut last_nonzero: Option<u32> = None;
    let mut k0 = 0u32;
    while k0 < nranks && chosen.is_none() {
        let mut k1 = k0;
        let mut batch = 0u64;
        while k1 < nranks && (batch < least || k1 == k0) {
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
pub(super) fn cut_off(
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
pub(super) struct Removed {
    /// Injections to add back per bus.
    pub(super) delta: Vec<i64>,
    pub(super) curtailed: u32,
    pub(super) removed: i128,
    /// The earliest submission index curtailed in the cut rank.
    pub(super) first: u32,
}

/// Pass B: every chunk compacts away its curtailed trades and adds their power back per bus.
pub(super) fn pass_b(
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

impl Curtailment {
    /// Runs the rule on `scheme` (any order; `order` values unique) over an empty grid.
    pub fn compute(model: &DcModel, scheme: &[SchemeTrade]) -> Curtailment {
        Self::compute_on(model, scheme, None, &RowCache::default())
    }

    /// Runs the rule on `scheme` over `base`, the committed trades' net injections per bus
    /// (0.001 MW) of the same delivery slot: the flows are base plus scheme, and only the
    /// scheme's trades are curtailed. A branch the base alone overloads is relieved first (most
    /// loaded first, ties to the lower row): every trade that aggravates it goes, and it is
    /// reported as residual while it stays overloaded.
    ///
    /// How: the trades are copied once into chunks (fixed stretches of submission order) with
    /// each chunk's trades grouped by rank; a round sums contributions rank by rank from the
    /// lowest (pass A) and stops at the rank where the sum reaches the excess, then removes the
    /// curtailed trades from their runs (pass B). A round reads only the ranks at or below its
    /// cut-off, and never a trade curtailed before.
    /// `rows` keeps the PTDF rows of branches cut before (the same few branches are cut in
    /// many slots); a row is the same solve's bits whether cached or not.
    pub fn compute_on(
        model: &DcModel,
        scheme: &[SchemeTrade],
        base: Option<&[i64]>,
        rows: &RowCache,
    ) -> Curtailment {
        let chunks = chunked(scheme, model.grid().buses.len());
        Self::rounds(model, chunks, base, rows)
    }

    /// The rounds on a scheme in chunks.
    pub(super) fn rounds(
        model: &DcModel,
        chunked: Chunked,
        base: Option<&[i64]>,
        rows: &RowCache,
    ) -> Curtailment {
        let grid = model.grid();
        let nbus = grid.buses.len();
        let Chunked {
            mut chunks,
            injections: mut inj,
            priorities: prios,
            ..
        } = chunked;
        let base_flows = base.map(|b| on_base(model, &mut inj, b));
        let base_flows = base_flows.as_deref();
        let mut firm = firm_order(grid, base_flows).into_iter();
        // Distinct priorities, ascending; a trade's rank is its place among them.
        let mut live = live_by_rank(&chunks, prios.len());
        let mut out = Curtailment {
            scheme: chunks.iter().map(|c| c.slim.len()).sum(),
            ..Curtailment::default()
        };
        let mut given_up: Vec<usize> = Vec::new();
        let mut round = 0u32;
        loop {
            let flows = model.flows(&to_mw(&inj));
            let overloaded = overloaded(grid, &flows);
            if round == 0 {
                out.note_before(grid, &overloaded, &flows, base_flows);
            }
            // A firm overload's direction is the base flow's; every aggravating trade goes.
            let Some((l, all, sign)) =
                next_branch(&mut firm, &overloaded, &given_up, &flows, base_flows)
            else {
                given_up.retain(|k| overloaded.iter().any(|(o, _)| o == k));
                out.residual = given_up;
                break;
            };
            if all {
                given_up.push(l);
            }
            let (br, flow) = (&grid.branches[l], flows[l]);
            #[allow(clippy::cast_possible_truncation)]
            let excess_w = (((flow.abs() - br.rate_a) * 1e6).ceil() as i64).max(1);
            let row = rows.signed_row(model, l, sign);
            let target = if all { i64::MAX } else { excess_w };
            let Some((cut_rank, need)) = cut_rank(&mut chunks, &live, &row, target) else {
                if !all {
                    given_up.push(l);
                }
                continue;
            };
            round += 1;
            let (cut_at, cutoff_order) = cut_off(&chunks, cut_rank, need, &row);
            let b = pass_b(&mut chunks, cut_rank, cut_at, nbus);
            live = live_by_rank(&chunks, prios.len());
            inj.iter_mut().zip(b.delta).for_each(|(x, y)| *x += y);
            let mut cut = Cut::on(round, (l, sign, all), (flow, br.rate_a, excess_w), row);
            cut.cutoff_priority = prios[cut_rank as usize];
            // With no limit, the cut-off is the earliest aggravating trade of the cut rank.
            cut.cutoff_order = cut_at.map_or(b.first, |_| cutoff_order);
            (cut.curtailed, cut.removed_w) =
                (b.curtailed, i64::try_from(b.removed).unwrap_or(i64::MAX));
            out.cuts.push(cut);
            out.curtailed += b.curtailed as usize;
        }
        out.index = VerdictIndex::new(&out.cuts, nbus);
        out
    }

    /// What the first round sees: the overloaded branches, the base's share of each, the
    /// branches the base alone overloads.
    fn note_before(
        &mut self,
        grid: &Grid,
        overloaded: &[(usize, f64)],
        flows: &[f64],
        base: Option<&[f64]>,
    ) {
        self.overloaded_before = overloaded.to_vec();
        self.base_share = base_shares(overloaded, flows, base);
        self.overloaded_by_base = base.map(|f| overloaded_rows(grid, f)).unwrap_or_default();
    }
}

/// Adds the committed base to the scheme's injections; the base's own flows.
fn on_base(model: &DcModel, inj: &mut [i64], base: &[i64]) -> Vec<f64> {
    inj.iter_mut()
        .zip(base)
        .for_each(|(x, y)| *x = x.saturating_add(*y));
    model.flows(&to_mw(base))
}

impl Cut {
    /// Round `round`'s cut of branch `l` in direction `sign` (`firm`: the base alone overloads
    /// it), with its flow, rateA and excess; the cut-off and what went are set after.
    fn on(
        round: u32,
        (branch, sign, firm): (usize, i8, bool),
        (flow, rate_a, excess_w): (f64, f64, i64),
        row: Vec<f64>,
    ) -> Self {
        Cut {
            round,
            branch,
            sign,
            flow_mw: flow.abs(),
            rate_a,
            excess_w,
            cutoff_priority: 0,
            cutoff_order: 0,
            curtailed: 0,
            removed_w: 0,
            firm,
            row,
        }
    }
}

/// The branches the committed base alone overloads, most loaded first (ties to the lower row).
fn firm_order(grid: &Grid, base: Option<&[f64]>) -> Vec<usize> {
    let mut firm: Vec<(usize, f64)> = base.map(|f| overloaded(grid, f)).unwrap_or_default();
    firm.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    firm.into_iter().map(|(k, _)| k).collect()
}

/// The next branch a round relieves, whether every aggravating trade goes (a firm overload),
/// and its direction: firm overloads first, then the most loaded branch not given up.
fn next_branch(
    firm: &mut impl Iterator<Item = usize>,
    overloaded: &[(usize, f64)],
    given_up: &[usize],
    flows: &[f64],
    base: Option<&[f64]>,
) -> Option<(usize, bool, i8)> {
    if let Some(l) = firm.next() {
        return Some((l, true, base.map_or(1, |f| sign_of(f[l]))));
    }
    most_loaded(overloaded, given_up).map(|l| (l, false, sign_of(flows[l])))
}

/// PTDF rows already solved for, by branch row, shared by the slots of a period.
#[derive(Debug, Default)]
pub struct RowCache(std::sync::Mutex<std::collections::HashMap<usize, std::sync::Arc<[f64]>>>);

impl RowCache {
    /// Branch `l`'s PTDF row times `sign`: solved once, then read from the cache.
    fn signed_row(&self, model: &DcModel, l: usize, sign: i8) -> Vec<f64> {
        let cached = self.0.lock().ok().and_then(|m| m.get(&l).cloned());
        let row = cached.unwrap_or_else(|| {
            let row: std::sync::Arc<[f64]> = model.ptdf_row(l).into();
            if let Ok(mut m) = self.0.lock() {
                m.insert(l, std::sync::Arc::clone(&row));
            }
            row
        });
        row.iter().map(|x| f64::from(sign) * x).collect()
    }
}

/// +1 for a flow in the from-to direction, -1 otherwise.
fn sign_of(flow: f64) -> i8 {
    if flow > 0.0 { 1 } else { -1 }
}

/// Rows of the limited branches `flows` overload.
fn overloaded_rows(grid: &Grid, flows: &[f64]) -> Vec<usize> {
    overloaded(grid, flows)
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// For each overloaded branch, the base flow's share of its loading: the base flow in the
/// direction of the whole flow over the whole flow's magnitude (0 without a base; negative
/// when the committed trades pull against the overload).
fn base_shares(overloaded: &[(usize, f64)], flows: &[f64], base: Option<&[f64]>) -> Vec<f64> {
    overloaded
        .iter()
        .map(|&(k, _)| base.map_or(0.0, |b| b[k] * flows[k].signum() / flows[k].abs()))
        .collect()
}
