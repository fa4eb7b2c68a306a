//! The market's ground types: what validators check against ([`MarketRules`]), a batch of
//! transactions with their ground truth and readings ([`Workload`]), and the generator's
//! parameters. The generator itself is [`crate::market::generator`].

use crate::base::amount::{Energy, Price};
use crate::base::domain::{Address, DeliveryTime, HOUR_SLOT};
use crate::base::domain::{AddressBases, PURCHASER_BASE, SELLER_BASE, TRANSMISSION_MAX};
use crate::contract::SignedContract;
use crate::crypto::keys::KeyRegistry;
use crate::ledger::Reading;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a planted transaction is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlantedReason {
    /// A signature made with the wrong key.
    ForgedSignature,
    /// An amount changed after signing.
    TamperedAmount,
    /// Energy above the seller's declared capacity.
    EnergyOverCapacity,
    /// An auxiliary-service contract with missing or empty service content.
    MalformedAuxService,
    /// A copy of an already committed contract.
    ReplayedContract,
    /// A trade that overloads a line on its own (planted only on a grid).
    CongestingTrade,
}

impl PlantedReason {
    /// All kinds, in the order they are drawn.
    pub const ALL: [PlantedReason; 6] = [
        PlantedReason::ForgedSignature,
        PlantedReason::TamperedAmount,
        PlantedReason::EnergyOverCapacity,
        PlantedReason::MalformedAuxService,
        PlantedReason::ReplayedContract,
        PlantedReason::CongestingTrade,
    ];
}

/// Ground truth for one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Truth {
    /// A valid contract.
    Valid,
    /// Planted invalid, for this reason.
    Invalid(PlantedReason),
}

/// Parameters of a generated market. Serialized into dataset headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadParams {
    /// Seed of everything: keys, contracts, planted faults, readings.
    pub seed: u64,
    /// Contracts to generate.
    pub contracts: usize,
    /// Electricity sales companies.
    pub sellers: u32,
    /// Purchasers.
    pub purchasers: u32,
    /// Transmission companies (each owns a region of the grid).
    pub transmission_companies: u32,
    /// Grid operators (one per region; accounts, no contracts).
    #[serde(default)]
    pub grid_operators: u32,
    /// Generators at the source end (accounts, no contracts).
    #[serde(default)]
    pub sources: u32,
    /// Planted invalid transactions per million.
    pub invalid_ppm: u32,
    /// Contracts whose meter readings show a default, per million.
    #[serde(default)]
    pub default_ppm: u32,
    /// Pareto skew of who trades, as alpha x 1000 (0: uniform). See [`Market`].
    #[serde(default)]
    pub pareto_alpha_milli: u32,
    /// When contracts deliver and how much they trade. See [`Market`].
    #[serde(default)]
    pub delivery: Delivery,
}

/// When a generated market's contracts deliver and how much they trade (see [`Market`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// Delivery slot length in minutes, a divisor of 60 (the paper's hour by default).
    pub slot_minutes: u32,
    /// Hours of delivery traded, from 00:00 of day 0: 1 to [`MAX_HORIZON_HOURS`].
    pub horizon_hours: u32,
    /// How tight the grid is: each slot's expected traded power as a share of the grid's load
    /// at that hour, per million ([`DEFAULT_CONGESTION_PPM`] by default).
    pub congestion_ppm: u32,
}

/// The longest horizon a generated market trades over: a week of delivery.
pub const MAX_HORIZON_HOURS: u32 = 7 * 24;

/// The default share of each hour's load a generated market trades, per million: on every
/// shipped grid, a market at the default settings curtails a few percent of its trades.
pub const DEFAULT_CONGESTION_PPM: u32 = 150_000;

impl Default for Delivery {
    fn default() -> Self {
        Self {
            slot_minutes: HOUR_SLOT,
            horizon_hours: 24,
            congestion_ppm: DEFAULT_CONGESTION_PPM,
        }
    }
}

impl Delivery {
    /// Delivery parameters as a user gives them (the congestion share as a fraction), checked;
    /// an error names the parameter.
    pub fn new(
        slot_minutes: u32,
        horizon_hours: u32,
        congestion: f64,
    ) -> Result<Self, (&'static str, String)> {
        let d = Self {
            slot_minutes,
            horizon_hours,
            congestion_ppm: congestion_ppm(congestion).map_err(|e| ("congestion", e))?,
        };
        d.check()?;
        Ok(d)
    }

    /// Refuses a slot length that does not divide an hour, or a horizon of no hour or more
    /// than a week; names the parameter.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        crate::base::domain::check_slot_minutes(self.slot_minutes)
            .map_err(|e| ("slot_minutes", e))?;
        if !(1..=MAX_HORIZON_HOURS).contains(&self.horizon_hours) {
            return Err((
                "horizon_hours",
                format!(
                    "{} is outside 1..={MAX_HORIZON_HOURS} hours",
                    self.horizon_hours
                ),
            ));
        }
        Ok(())
    }

    /// Delivery slots in the horizon.
    pub fn slots(&self) -> u32 {
        self.horizon_hours * 60 / self.slot_minutes.max(1)
    }
}

impl WorkloadParams {
    /// The paper's market scaled up: 40 sellers, 400 purchasers, 4 transmission companies,
    /// 5% of transactions planted invalid.
    pub fn scaled_paper(seed: u64, contracts: usize) -> Self {
        Self {
            seed,
            contracts,
            sellers: 40,
            purchasers: 400,
            transmission_companies: 4,
            grid_operators: 0,
            sources: 0,
            invalid_ppm: 50_000,
            default_ppm: 0,
            pareto_alpha_milli: 0,
            delivery: Delivery::default(),
        }
    }

    /// `participants` split by role: 10% sellers, 2% transmission companies (at most 3,840),
    /// as many grid operators, 2% sources, one government supervisor, the rest purchasers
    /// (at least one of each role that signs).
    pub fn for_participants(seed: u64, participants: u32, contracts: usize) -> Self {
        let tenth = (participants / 10).max(1);
        let fiftieth = (participants / 50).clamp(1, TRANSMISSION_MAX);
        let others = tenth + 2 * fiftieth + (participants / 50).max(1) + 1;
        Self {
            seed,
            contracts,
            sellers: tenth,
            purchasers: participants.saturating_sub(others).max(1),
            transmission_companies: fiftieth,
            grid_operators: fiftieth,
            sources: (participants / 50).max(1),
            invalid_ppm: 50_000,
            default_ppm: 20_000,
            pareto_alpha_milli: 0,
            delivery: Delivery::default(),
        }
    }

    /// Refuses fewer participants than a market of every role needs ([`MIN_PARTICIPANTS`]):
    /// below it the roles' minimums would silently make the market larger than asked.
    pub fn check_participants(participants: u32) -> Result<(), String> {
        if participants < MIN_PARTICIPANTS {
            return Err(format!(
                "{participants} is below {MIN_PARTICIPANTS}: a market needs a seller, a purchaser, a \
                 transmission company, a grid operator, a source and the supervisor"
            ));
        }
        Ok(())
    }

    /// Every participant counted, the supervisor included.
    pub fn participant_count(&self) -> u64 {
        [
            self.sellers,
            self.purchasers,
            self.transmission_companies,
            self.grid_operators,
            self.sources,
            1,
        ]
        .iter()
        .map(|&n| u64::from(n))
        .sum()
    }
}

/// A fraction from 0 to 1 as parts per million; the error says what is wrong with `x`.
pub fn fraction_ppm(x: f64) -> Result<u32, String> {
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("{x} is outside 0..=1"));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((x * 1e6).round() as u32)
}

/// A congestion share (above 0, at most 100: a hundred times the grid's load) as parts per
/// million; the error says what is wrong with `x`.
pub fn congestion_ppm(x: f64) -> Result<u32, String> {
    if !(x.is_finite() && x > 0.0 && x <= 100.0) {
        return Err(format!(
            "{x} is outside (0, 100]: a share of the grid's load"
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(((x * 1e6).round() as u32).max(1))
}

/// A Pareto alpha (0 for uniform, else 0.1 to 100) as alpha x 1000.
pub fn pareto_alpha_milli(alpha: f64) -> Result<u32, String> {
    if !(alpha == 0.0 || (alpha.is_finite() && (0.1..=100.0).contains(&alpha))) {
        return Err(format!(
            "{alpha} must be 0 (uniform) or a Pareto alpha from 0.1 to 100"
        ));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((alpha * 1000.0).round() as u32)
}

/// What every validator knows about the market: keys, declared limits, bounds, watermarks.
#[derive(Clone, Debug)]
pub struct MarketRules {
    /// Admitted keys.
    pub registry: KeyRegistry,
    /// Seller capacities (MWh per contract), indexed by `Address.0 - SELLER_BASE`.
    pub capacity: Vec<Energy>,
    /// Purchaser demands (MWh per contract), indexed by `Address.0 - PURCHASER_BASE`.
    pub demand: Vec<Energy>,
    /// Lowest acceptable unit price.
    pub price_min: Price,
    /// Highest acceptable unit price.
    pub price_max: Price,
    /// Highest acceptable auxiliary-service price.
    pub aux_price_max: Price,
    /// Delivery window of the trading period, inclusive start, exclusive end.
    pub window: (DeliveryTime, DeliveryTime),
    /// Length of a delivery slot in minutes (a divisor of 60; the paper's hour by default):
    /// congestion is checked per slot, and a contract's power is its energy over its slot.
    pub slot_minutes: u32,
    /// Sequence numbers at or below this were committed before the run (replay watermark).
    pub seq_watermark: u64,
    /// The address of `capacity[0]` ([`SELLER_BASE`] in generated markets).
    pub seller_base: u32,
    /// The address of `demand[0]` ([`PURCHASER_BASE`] in generated markets).
    pub purchaser_base: u32,
}

impl MarketRules {
    /// Where this market's sellers and purchasers start.
    pub fn bases(&self) -> AddressBases {
        AddressBases {
            seller: self.seller_base,
            purchaser: self.purchaser_base,
        }
    }

    /// How this market's contracts become trades on a grid.
    pub fn terms(&self) -> crate::grid::placement::TradeTerms {
        crate::grid::placement::TradeTerms {
            bases: self.bases(),
            slot_minutes: self.slot_minutes,
        }
    }

    /// No participants, zero bounds.
    pub fn empty() -> Self {
        Self {
            registry: KeyRegistry::new(),
            capacity: Vec::new(),
            demand: Vec::new(),
            price_min: Price::ZERO,
            price_max: Price::ZERO,
            aux_price_max: Price::ZERO,
            window: (DeliveryTime(0), DeliveryTime(0)),
            slot_minutes: HOUR_SLOT,
            seq_watermark: 0,
            seller_base: SELLER_BASE,
            purchaser_base: PURCHASER_BASE,
        }
    }

    /// The capacity the seller at `address` declared, if it is a seller.
    pub fn seller_capacity(&self, address: Address) -> Option<Energy> {
        let i = address.0.checked_sub(self.seller_base)?;
        self.capacity.get(i as usize).copied()
    }

    /// The demand the purchaser at `address` declared, if it is a purchaser.
    pub fn purchaser_demand(&self, address: Address) -> Option<Energy> {
        let i = address.0.checked_sub(self.purchaser_base)?;
        self.demand.get(i as usize).copied()
    }
}

/// The fewest participants a generated market has: one of each role and the supervisor.
pub const MIN_PARTICIPANTS: u32 = 6;

/// The most transactions a workload may hold: transaction indices are `u32` throughout.
pub const MAX_TRANSACTIONS: usize = u32::MAX as usize;

/// A generated workload (or one batch of a market): the market's rules, the transactions,
/// their ground truth and their meter readings.
#[derive(Clone, Debug)]
pub struct Workload {
    /// How it was made.
    pub params: WorkloadParams,
    /// What validators check against (shared by every batch of a market).
    pub rules: Arc<MarketRules>,
    /// Transactions in submission order.
    pub transactions: Vec<SignedContract>,
    /// Ground truth, one per transaction.
    pub truth: Vec<Truth>,
    /// What the meters read at delivery, one per transaction.
    pub readings: Vec<Reading>,
}
