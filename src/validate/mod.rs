//! What a validator checks: its "work" in the paper's IPOW.
//!
//! Checks run in this order and stop at the first failure (cheap before expensive):
//! 1. replay: every signer's sequence number is above the market's watermark;
//! 2. energy is reasonable: positive, within the seller's declared capacity and the
//!    purchaser's declared demand, price within the market's bounds, delivery inside the
//!    period's window;
//! 3. auxiliary-service content: an auxiliary-service contract carries a service with a positive
//!    quantity no larger than the energy and a price within bounds; other categories carry none;
//! 4. the three signatures (seller, purchaser, transmission company), under the rule of
//!    `crypto::verify`; [`Checks::validate_batched`] verifies many transactions' signatures in
//!    batches, with exactly the verdicts [`Checks::validate`] gives one by one;
//! 5. line congestion, through a [`CongestionStage`]: the period's published curtailment
//!    (`congestion::PeriodCongestion`, on a grid), or [`NoCongestionStage`] when no grid is
//!    configured, which passes every contract and says so in its name.
//!
//! Checks 1 to 3 are the *local* checks ([`Checks::local_failure`]): the period's congestion
//! scheme is the pending transactions that pass them.
//!
//! A validator really performs every check it reports; nothing is cached between validators.

pub mod congestion;

use serde::Serialize;

use crate::base::amount::Energy;
use crate::base::domain::BusinessCategory;
use crate::contract::{SignatureError, SignedContract, Signer, verify_signatures_batched};
use crate::crypto::verify::BatchStats;
use rayon::prelude::*;

/// Fewest transactions per piece [`Checks::validate_all`] hands a thread.
pub const PIECE: usize = 256;
use crate::market::rules::MarketRules;

/// Why a validator found a transaction invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A sequence number at or below the watermark: a replayed contract.
    Replay,
    /// Energy zero.
    EnergyNotPositive,
    /// Energy above the seller's declared capacity.
    OverCapacity,
    /// Energy above the purchaser's declared demand.
    OverDemand,
    /// Unit price outside the market's bounds.
    PriceOutOfBounds,
    /// Delivery time outside the period's window.
    OutsidePeriod,
    /// A party has no registered key, or a seller/purchaser is not one.
    UnknownParty,
    /// Auxiliary-service content missing, present where it must not be, or inconsistent.
    AuxMalformed,
    /// The named signer's signature does not verify.
    Signature(Signer),
    /// The trade overloads a line under the period's congestion rule.
    Congestion,
}

impl Reason {
    /// Its name in reports and CSV ("signature_seller", "congestion", ...).
    pub fn name(self) -> &'static str {
        match self {
            Reason::Replay => "replay",
            Reason::EnergyNotPositive => "energy_not_positive",
            Reason::OverCapacity => "over_capacity",
            Reason::OverDemand => "over_demand",
            Reason::PriceOutOfBounds => "price_out_of_bounds",
            Reason::OutsidePeriod => "outside_period",
            Reason::UnknownParty => "unknown_party",
            Reason::AuxMalformed => "aux_malformed",
            Reason::Signature(Signer::Seller) => "signature_seller",
            Reason::Signature(Signer::Purchaser) => "signature_purchaser",
            Reason::Signature(Signer::Transmission) => "signature_transmission",
            Reason::Congestion => "congestion",
        }
    }

    /// A compact code for proofs and CSV.
    pub fn code(self) -> u8 {
        match self {
            Reason::Replay => 1,
            Reason::EnergyNotPositive => 2,
            Reason::OverCapacity => 3,
            Reason::OverDemand => 4,
            Reason::PriceOutOfBounds => 5,
            Reason::OutsidePeriod => 6,
            Reason::UnknownParty => 7,
            Reason::AuxMalformed => 8,
            Reason::Signature(Signer::Seller) => 9,
            Reason::Signature(Signer::Purchaser) => 10,
            Reason::Signature(Signer::Transmission) => 11,
            Reason::Congestion => 12,
        }
    }
}

/// A validator's verdict on one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check passed.
    Valid,
    /// The first check that failed.
    Invalid(Reason),
}

impl Verdict {
    /// The verdict of `code` (as [`Verdict::code`] writes it), if any.
    pub fn from_code(code: u8) -> Option<Verdict> {
        if code == 0 {
            return Some(Verdict::Valid);
        }
        const REASONS: [Reason; 12] = [
            Reason::Replay,
            Reason::EnergyNotPositive,
            Reason::OverCapacity,
            Reason::OverDemand,
            Reason::PriceOutOfBounds,
            Reason::OutsidePeriod,
            Reason::UnknownParty,
            Reason::AuxMalformed,
            Reason::Signature(Signer::Seller),
            Reason::Signature(Signer::Purchaser),
            Reason::Signature(Signer::Transmission),
            Reason::Congestion,
        ];
        REASONS
            .iter()
            .find(|r| r.code() == code)
            .map(|&r| Verdict::Invalid(r))
    }

    /// True for `Valid`.
    pub fn is_valid(self) -> bool {
        matches!(self, Verdict::Valid)
    }

    /// One byte: 0 for valid, the reason's code otherwise.
    pub fn code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid(r) => r.code(),
        }
    }
}

/// The congestion check a validator runs on the transaction it holds.
pub trait CongestionStage: Sync {
    /// True when transaction `tx` (its workload index, which is its submission order) may go
    /// ahead.
    fn allows(&self, tx: u32, contract: &SignedContract) -> bool;
    /// What this stage is, for reports.
    fn name(&self) -> &'static str;
    /// Appends the period's published context as bytes, for validators in other processes
    /// (nothing when the stage needs none: no grid).
    fn publish(&self, _out: &mut Vec<u8>) {}
}

/// The stage when no grid is configured: every contract passes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCongestionStage;

impl CongestionStage for NoCongestionStage {
    fn allows(&self, _tx: u32, _contract: &SignedContract) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "none (no grid configured)"
    }
}

/// Everything a validator checks against.
pub struct Checks<'a> {
    /// Keys, declared limits, bounds, watermark.
    pub rules: &'a MarketRules,
    /// The congestion stage.
    pub congestion: &'a dyn CongestionStage,
}

impl Checks<'_> {
    /// Runs every check in order on transaction `index`; the first failure is the verdict.
    pub fn validate(&self, index: u32, tx: &SignedContract) -> Verdict {
        match self.first_failure(index, tx) {
            None => Verdict::Valid,
            Some(reason) => Verdict::Invalid(reason),
        }
    }

    fn first_failure(&self, index: u32, tx: &SignedContract) -> Option<Reason> {
        self.local_failure(tx).or_else(|| {
            let signatures = tx.verify_signatures(&self.rules.registry);
            self.after_local_checks(index, tx, signatures)
        })
    }

    /// The verdict's reason once the local checks passed: the signatures' result, then
    /// congestion (the one order both the single and the batched path follow).
    fn after_local_checks(
        &self,
        index: u32,
        tx: &SignedContract,
        signatures: Result<(), SignatureError>,
    ) -> Option<Reason> {
        match signatures {
            Ok(()) if self.congestion.allows(index, tx) => None,
            Ok(()) => Some(Reason::Congestion),
            Err(SignatureError::Invalid(signer)) => Some(Reason::Signature(signer)),
            Err(SignatureError::Key(_)) => Some(Reason::UnknownParty),
        }
    }

    /// Runs every check on many transactions, as [`Checks::validate`] would on each, with the
    /// signatures of those that pass the local checks verified in batches of at most `batch`
    /// signatures (whole contracts, in the order given; see
    /// [`verify_signatures_batched`]). The verdicts are exactly the one-by-one verdicts.
    pub fn validate_batched(
        &self,
        txs: &[(u32, &SignedContract)],
        batch: usize,
        stats: &mut BatchStats,
    ) -> Vec<Verdict> {
        let local: Vec<Option<Reason>> = txs.iter().map(|(_, tx)| self.local_failure(tx)).collect();
        let to_sign: Vec<&SignedContract> = txs
            .iter()
            .zip(&local)
            .filter(|(_, l)| l.is_none())
            .map(|((_, tx), _)| *tx)
            .collect();
        // One result per contract that passed the local checks, in order (were one missing,
        // the contract would fail closed, never pass).
        let mut signed =
            verify_signatures_batched(&to_sign, &self.rules.registry, batch, stats).into_iter();
        txs.iter()
            .zip(local)
            .map(|(&(index, tx), local)| {
                let reason = local.or_else(|| {
                    let missing = Err(SignatureError::Invalid(Signer::Seller));
                    let signatures = signed.next().unwrap_or(missing);
                    self.after_local_checks(index, tx, signatures)
                });
                reason.map_or(Verdict::Valid, Verdict::Invalid)
            })
            .collect()
    }

    /// [`Checks::validate_batched`] over many transactions spread over the current pool's
    /// threads in fixed pieces of [`PIECE`] transactions (or a batch's worth when larger), so
    /// batches depend on the order and `batch`, never on the thread count. Returns the verdicts
    /// in order and what the batches did.
    pub fn validate_all(
        &self,
        txs: &[(u32, &SignedContract)],
        batch: usize,
    ) -> (Vec<Verdict>, BatchStats) {
        let pieces: Vec<(Vec<Verdict>, BatchStats)> = txs
            .par_chunks(batch.div_ceil(3).max(PIECE))
            .map(|piece| {
                let mut stats = BatchStats::default();
                (self.validate_batched(piece, batch, &mut stats), stats)
            })
            .collect();
        let mut signatures = BatchStats::default();
        let mut verdicts = Vec::with_capacity(txs.len());
        for (piece, stats) in pieces {
            verdicts.extend(piece);
            signatures.add(&stats);
        }
        (verdicts, signatures)
    }

    /// The first failing local check (replay, energy, parties, price, time, auxiliary
    /// service): everything but signatures and congestion.
    pub fn local_failure(&self, tx: &SignedContract) -> Option<Reason> {
        let c = &tx.contract;
        let r = self.rules;
        if [c.seller_seq, c.purchaser_seq, c.transmission_seq]
            .iter()
            .any(|&s| s <= r.seq_watermark)
        {
            return Some(Reason::Replay);
        }
        if c.energy <= Energy::ZERO {
            return Some(Reason::EnergyNotPositive);
        }
        let (Some(capacity), Some(demand)) =
            (r.seller_capacity(c.seller), r.purchaser_demand(c.purchaser))
        else {
            return Some(Reason::UnknownParty);
        };
        if c.energy > capacity {
            return Some(Reason::OverCapacity);
        }
        if c.energy > demand {
            return Some(Reason::OverDemand);
        }
        if c.price < r.price_min || c.price > r.price_max {
            return Some(Reason::PriceOutOfBounds);
        }
        if c.delivery_time < r.window.0 || c.delivery_time >= r.window.1 {
            return Some(Reason::OutsidePeriod);
        }
        let aux_ok = match (c.category, c.aux) {
            (BusinessCategory::AuxiliaryService, Some(aux)) => {
                aux.quantity > Energy::ZERO
                    && aux.quantity <= c.energy
                    && aux.price <= r.aux_price_max
            }
            (BusinessCategory::AuxiliaryService, None) => false,
            (_, aux) => aux.is_none(),
        };
        if !aux_ok {
            return Some(Reason::AuxMalformed);
        }
        None
    }
}
