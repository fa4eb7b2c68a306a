//! The period's published context as bytes: what a validator in another process needs to
//! recompute its own transactions' congestion verdicts, and nothing the supervision node keeps
//! for its reports. The supervision node encodes it once per period ([`PeriodCongestion`]'s
//! [`CongestionStage::publish`]); a validator process decodes it on its own copy of the grid
//! market ([`PeriodCongestion::published`]) with typed errors, every count bounded by the
//! bytes left.
//!
//! Layout, big-endian: the priority rule (u32 count, then each validator's priority u64);
//! the bus count u32; the slots (u32 count; each: slot u32, cut count u32, then per cut:
//! round u32, branch u32, sign i8, cut-off priority u64, cut-off order u32, and the row,
//! one f64 per bus as its IEEE bits). Rows travel as bits, not as branch numbers to
//! recompute: a validator on another machine (another CPU, another SIMD path in the sparse
//! solve) gets the very factors the supervision node cut with, so its verdict is the same.

// Counts below 2^32: validators, buses, slots and cuts are bounded far below it.
#![allow(clippy::cast_possible_truncation)]

use super::*;
use crate::base::cursor::{Cursor, FieldError};

/// The fixed bytes of one published cut before its row.
const CUT_HEAD: usize = 4 + 4 + 1 + 8 + 4;

impl PeriodCongestion<'_> {
    /// The context in its published layout (the module's doc).
    pub fn encode_published(&self, out: &mut Vec<u8>) {
        let owners = self.priority.owners();
        out.extend_from_slice(&(owners.len() as u32).to_be_bytes());
        for p in owners {
            out.extend_from_slice(&p.to_be_bytes());
        }
        let nbus = self.buses();
        out.extend_from_slice(&(nbus as u32).to_be_bytes());
        out.extend_from_slice(&(self.curtailment.slots.len() as u32).to_be_bytes());
        for s in &self.curtailment.slots {
            out.extend_from_slice(&s.slot.to_be_bytes());
            out.extend_from_slice(&(s.curtailment.cuts.len() as u32).to_be_bytes());
            for c in &s.curtailment.cuts {
                out.extend_from_slice(&c.round.to_be_bytes());
                out.extend_from_slice(&(c.branch as u32).to_be_bytes());
                out.extend_from_slice(&c.sign.to_be_bytes());
                out.extend_from_slice(&c.cutoff_priority.to_be_bytes());
                out.extend_from_slice(&c.cutoff_order.to_be_bytes());
                for v in &c.row {
                    out.extend_from_slice(&v.to_bits().to_be_bytes());
                }
            }
        }
    }

    /// The context `bytes` publish, on `market` (the same grid and placement the supervision
    /// node used) under the market's `terms`.
    pub fn published<'g>(
        market: &'g GridMarket,
        terms: TradeTerms,
        bytes: &[u8],
    ) -> Result<PeriodCongestion<'g>, FieldError> {
        let mut r = Cursor::new(bytes);
        let n = r.count(4, 8, "priorities")?;
        let owners = (0..n)
            .map(|_| r.uint(8, "priority"))
            .collect::<Result<Vec<u64>, _>>()?;
        let nbus = market.model().grid().buses.len();
        let at = r.at();
        let declared = r.uint(4, "buses")?;
        if declared != nbus as u64 {
            return Err(FieldError {
                field: "buses".into(),
                at,
                message: format!("{declared} buses, this process's grid has {nbus}"),
            });
        }
        let row_bytes = 8 * nbus;
        let slot_count = r.count(4, 8, "slots")?;
        let mut slots = Vec::with_capacity(slot_count);
        for _ in 0..slot_count {
            let at = r.at();
            let slot = r.uint(4, "slot")? as u32;
            if slots
                .last()
                .is_some_and(|s: &SlotCurtailment| s.slot >= slot)
            {
                return Err(FieldError {
                    field: "slot".into(),
                    at,
                    message: format!("slot {slot} is not above the one before"),
                });
            }
            let cut_count = r.count(4, CUT_HEAD + row_bytes, "cuts")?;
            let mut cuts = Vec::with_capacity(cut_count);
            for _ in 0..cut_count {
                cuts.push(published_cut(&mut r, nbus, market)?);
            }
            let index = VerdictIndex::new(&cuts, nbus);
            slots.push(SlotCurtailment {
                slot,
                curtailment: Curtailment {
                    cuts,
                    index,
                    ..Curtailment::default()
                },
            });
        }
        r.finish("context")?;
        Ok(PeriodCongestion {
            market,
            terms,
            curtailment: SlotCurtailments::new(slots),
            priority: PriorityRule::new(owners),
        })
    }
}

/// One cut as published: what the verdict reads (its row already times its sign).
fn published_cut(r: &mut Cursor<'_>, nbus: usize, market: &GridMarket) -> Result<Cut, FieldError> {
    let round = r.uint(4, "round")? as u32;
    let at = r.at();
    let branch = r.uint(4, "branch")? as usize;
    if branch >= market.model().grid().branches.len() {
        return Err(FieldError {
            field: "branch".into(),
            at,
            message: format!("branch row {branch} is not in this process's grid"),
        });
    }
    let at = r.at();
    let sign = match r.uint(1, "sign")? {
        0x01 => 1,
        0xff => -1,
        other => {
            return Err(FieldError {
                field: "sign".into(),
                at,
                message: format!("{other:#04x} is neither +1 nor -1"),
            });
        }
    };
    let cutoff_priority = r.uint(8, "cut-off priority")?;
    let cutoff_order = r.uint(4, "cut-off order")? as u32;
    let mut row = Vec::with_capacity(nbus);
    for _ in 0..nbus {
        let at = r.at();
        let v = f64::from_bits(r.uint(8, "row")?);
        if !v.is_finite() {
            return Err(FieldError {
                field: "row".into(),
                at,
                message: format!("{v} is not a finite factor"),
            });
        }
        row.push(v);
    }
    Ok(Cut {
        round,
        branch,
        sign,
        flow_mw: 0.0,
        rate_a: 0.0,
        excess_w: 0,
        cutoff_priority,
        cutoff_order,
        curtailed: 0,
        removed_w: 0,
        firm: false,
        row,
    })
}
