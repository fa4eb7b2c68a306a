//! A validator's verdict ([`Curtailment::curtailing_cut`]): the cuts' rows bus-major in blocks
//! of 8, curtailment order keyed as one exact f64 per trade, a block evaluated without a branch
//! per cut.

use super::*;

/// Bit l set when the trade (power in watts, curtailment key) aggravates lane l's cut and the
/// cut reaches it; `s`, `b` are the lanes' factors at its seller's and buyer's buses.
#[inline(always)]
pub(super) fn block_mask(power: f64, key: f64, s: &[f64], b: &[f64], keys: &[f64]) -> u32 {
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
pub(super) const LANES: usize = 8;

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
pub(super) struct VerdictIndex {
    /// `width` values per bus.
    pub(super) by_bus: Vec<f64>,
    /// The cut count rounded up to a multiple of `LANES`.
    pub(super) width: usize,
    /// Each cut's key (padding: -1).
    pub(super) keys: Vec<f64>,
    /// The cut-offs' distinct priorities, ascending.
    pub(super) priorities: Vec<u64>,
    /// The first 16 of them, then u64::MAX.
    pub(super) padded: [u64; 16],
}

/// Distinct cut-off priorities up to which keys are exact in f64 (class below 2^21).
pub(super) const KEYED: usize = 1 << 20;

impl VerdictIndex {
    pub(super) fn new(cuts: &[Cut], nbus: usize) -> Self {
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
    pub(super) fn key_of(&self, t: &SchemeTrade) -> Option<f64> {
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
pub(super) fn rank_in<const N: usize>(padded: &[u64; 16], p: u64) -> (usize, bool) {
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
pub(super) fn key_f64(class: usize, order: u32) -> f64 {
    let key = (class as u64) << 32 | u64::from(u32::MAX - order);
    // Below 2^53, so the signed conversion (one instruction) is exact.
    i64::try_from(key).unwrap_or(i64::MAX) as f64
}

impl Curtailment {
    /// A validator's verdict for one trade: the index of the first cut that curtails it (its
    /// own contribution positive, and it at or before the cut-off).
    #[inline]
    pub fn curtailing_cut(&self, t: &SchemeTrade) -> Option<usize> {
        let ix = &self.index;
        let w = ix.width;
        if !(w == LANES || w == 2 * LANES) || ix.priorities.len() > 4 {
            return self.curtailing_cut_in_blocks(t);
        }
        // The usual case, kept small so that it inlines into the caller's loop: one or two
        // blocks of cuts (the block count is the index's, the same for every trade), at most 4
        // distinct cut-off priorities. No branch depends on the trade (a caller asking only
        // whether some cut curtails it reads `m != 0`).
        let (below, equal) = rank_in::<4>(&ix.padded, t.priority);
        let key = key_f64(2 * below + usize::from(equal), t.order);
        let power = power_w(t.milli_mw);
        // A bus outside the grid is out of bounds here, as in the cuts' own rows.
        let s = &ix.by_bus[t.seller as usize * w..][..w];
        let b = &ix.by_bus[t.buyer as usize * w..][..w];
        let mut m = block_mask(power, key, s, b, &ix.keys);
        if w == 2 * LANES {
            m |= block_mask(power, key, &s[LANES..], &b[LANES..], &ix.keys[LANES..]) << LANES;
        }
        (m != 0).then(|| m.trailing_zeros() as usize)
    }

    /// `curtailing_cut` for any number of cuts and cut-off priorities: block by block, the
    /// first block with a cut that curtails the trade.
    #[inline(never)]
    pub(super) fn curtailing_cut_in_blocks(&self, t: &SchemeTrade) -> Option<usize> {
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
    pub(super) fn curtailing_cut_plainly(&self, t: &SchemeTrade) -> Option<usize> {
        self.cuts
            .iter()
            .position(|c| c.reaches(t) & (c.contribution_w(t) > 0))
    }
}
