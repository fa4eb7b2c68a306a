//! The built-in workload: the paper's market scaled up (many sellers, purchasers and
//! transmission companies; prices, rates and delivery time as in Section 4), random contracts,
//! and planted invalid transactions whose ground truth is known.
//!
//! Every contract is a pure function of (seed, index), so generation runs in parallel and gives
//! the same contracts on any thread count. Distributions (all uniform, in exact units):
//! - seller, purchaser, transmission company: uniform over their lists;
//! - price: 17.00 to 24.00 per MWh in steps of 0.01 (Table 2 spans 17.09 to 23.71);
//! - energy: 0.100 to 40.000 MWh in steps of 0.001 (F's entries span 3.65 to 37.43);
//! - transmission rate 1.5 and damages rate 15 per MWh, delivery 18:00 (Section 4);
//! - category: 1 in 10 direct purchase, 1 in 10 auxiliary service (with a service whose quantity
//!   is 1% to 50% of the energy, priced 1.00 to 8.00), the rest common supply.
//!
//! Planted invalid transactions (rate `invalid_ppm`, kinds equally likely):
//! - forged signature: the purchaser's signature made with another participant's key;
//! - tampered amount: energy raised by 1 MWh after all three signed;
//! - energy over capacity: more than the seller declared (properly signed);
//! - malformed auxiliary service: an auxiliary-service contract without its service, or with a
//!   zero quantity (properly signed);
//! - replayed contract: an exact copy of a contract committed before the run (its sequence
//!   numbers are at or below the signers' watermarks).

use rayon::prelude::*;
use serde::Serialize;

use crate::amount::{Energy, Price};
use crate::contract::{AuxService, Contract, SignedContract};
use crate::crypto::{KeyPair, KeyRegistry};
use crate::domain::{Address, AuxServiceKind, BusinessCategory, DeliveryTime};
use crate::rng::Rng;

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
}

impl PlantedReason {
    /// All kinds, in the order they are drawn.
    pub const ALL: [PlantedReason; 5] = [
        PlantedReason::ForgedSignature,
        PlantedReason::TamperedAmount,
        PlantedReason::EnergyOverCapacity,
        PlantedReason::MalformedAuxService,
        PlantedReason::ReplayedContract,
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

/// Parameters of the built-in market.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadParams {
    /// Seed of everything: keys, contracts, planted faults.
    pub seed: u64,
    /// Contracts to generate.
    pub contracts: usize,
    /// Electricity sales companies.
    pub sellers: u32,
    /// Purchasers.
    pub purchasers: u32,
    /// Transmission companies.
    pub transmission_companies: u32,
    /// Planted invalid transactions per million.
    pub invalid_ppm: u32,
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
            invalid_ppm: 50_000,
        }
    }
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
    /// Sequence numbers at or below this were committed before the run (replay watermark).
    pub seq_watermark: u64,
}

/// First seller address; sellers are numbered up from here.
pub const SELLER_BASE: u32 = 0x1000;
/// First purchaser address.
pub const PURCHASER_BASE: u32 = 0x10_0000;
/// First transmission company address.
pub const TRANSMISSION_BASE: u32 = 0x100;

impl MarketRules {
    /// The capacity the seller at `address` declared, if it is a seller.
    pub fn seller_capacity(&self, address: Address) -> Option<Energy> {
        let i = address.0.checked_sub(SELLER_BASE)?;
        self.capacity.get(i as usize).copied()
    }

    /// The demand the purchaser at `address` declared, if it is a purchaser.
    pub fn purchaser_demand(&self, address: Address) -> Option<Energy> {
        let i = address.0.checked_sub(PURCHASER_BASE)?;
        self.demand.get(i as usize).copied()
    }
}

/// A generated workload: the market's rules, the transactions and their ground truth.
#[derive(Clone, Debug)]
pub struct Workload {
    /// How it was made.
    pub params: WorkloadParams,
    /// What validators check against.
    pub rules: MarketRules,
    /// Transactions in submission order.
    pub transactions: Vec<SignedContract>,
    /// Ground truth, one per transaction.
    pub truth: Vec<Truth>,
}

/// The most transactions a workload may hold: transaction indices are `u32` throughout.
pub const MAX_TRANSACTIONS: usize = u32::MAX as usize;

/// Stream purposes for `Rng::stream`.
const STREAM_CONTRACT: u64 = 1;
const STREAM_LIMITS: u64 = 2;
const STREAM_HISTORY: u64 = 3;

/// Contracts "committed before the run", which replays copy.
const HISTORY: u64 = 64;

impl Workload {
    /// Generates the workload, in parallel on the current rayon pool. At most
    /// [`MAX_TRANSACTIONS`] contracts are generated.
    pub fn generate(mut params: WorkloadParams) -> Self {
        params.contracts = params.contracts.min(MAX_TRANSACTIONS);
        let sellers: Vec<Address> = (0..params.sellers.max(1))
            .map(|i| Address(SELLER_BASE + i))
            .collect();
        let purchasers: Vec<Address> = (0..params.purchasers.max(1))
            .map(|i| Address(PURCHASER_BASE + i))
            .collect();
        let transmissions: Vec<Address> = (0..params.transmission_companies.max(1))
            .map(|i| Address(TRANSMISSION_BASE + i))
            .collect();
        let keys = Keys::derive(params.seed, &sellers, &purchasers, &transmissions);
        let mut limits = Rng::stream(params.seed, &[STREAM_LIMITS]);
        // Declared per-contract limits: 40 to 60 MWh, so honest energies (at most 40) fit.
        let capacity = sellers
            .iter()
            .map(|_| Energy::from_raw(limits.between(40_000, 60_000)))
            .collect();
        let demand = purchasers
            .iter()
            .map(|_| Energy::from_raw(limits.between(40_000, 60_000)))
            .collect();
        let mut registry = KeyRegistry::new();
        for (address, key) in keys.all() {
            // Derived keys are prime-order points; admission cannot fail for them.
            let _ = registry.register(address, *key.public_key().as_bytes());
        }
        let rules = MarketRules {
            registry,
            capacity,
            demand,
            price_min: Price::from_raw(10_0000),
            price_max: Price::from_raw(30_0000),
            aux_price_max: Price::from_raw(10_0000),
            window: (DeliveryTime(0), DeliveryTime(24 * 60)),
            seq_watermark: HISTORY,
        };
        let ctx = GenContext {
            params: &params,
            sellers: &sellers,
            purchasers: &purchasers,
            transmissions: &transmissions,
            keys: &keys,
            rules: &rules,
        };
        let (transactions, truth): (Vec<SignedContract>, Vec<Truth>) = (0..params.contracts as u64)
            .into_par_iter()
            .map(|i| ctx.contract(i))
            .unzip();
        Self {
            params,
            rules,
            transactions,
            truth,
        }
    }

    /// Planted invalid transactions.
    pub fn invalid_count(&self) -> usize {
        self.truth
            .iter()
            .filter(|t| matches!(t, Truth::Invalid(_)))
            .count()
    }
}

struct Keys {
    sellers: Vec<KeyPair>,
    purchasers: Vec<KeyPair>,
    transmissions: Vec<KeyPair>,
    addresses: (Vec<Address>, Vec<Address>, Vec<Address>),
}

impl Keys {
    fn derive(
        seed: u64,
        sellers: &[Address],
        purchasers: &[Address],
        transmissions: &[Address],
    ) -> Self {
        let derive =
            |list: &[Address]| list.par_iter().map(|&a| KeyPair::derive(seed, a)).collect();
        Self {
            sellers: derive(sellers),
            purchasers: derive(purchasers),
            transmissions: derive(transmissions),
            addresses: (
                sellers.to_vec(),
                purchasers.to_vec(),
                transmissions.to_vec(),
            ),
        }
    }

    fn all(&self) -> impl Iterator<Item = (Address, &KeyPair)> {
        self.addresses
            .0
            .iter()
            .copied()
            .zip(&self.sellers)
            .chain(self.addresses.1.iter().copied().zip(&self.purchasers))
            .chain(self.addresses.2.iter().copied().zip(&self.transmissions))
    }
}

struct GenContext<'a> {
    params: &'a WorkloadParams,
    sellers: &'a [Address],
    purchasers: &'a [Address],
    transmissions: &'a [Address],
    keys: &'a Keys,
    rules: &'a MarketRules,
}

impl GenContext<'_> {
    /// An honest contract drawn from `rng`, with sequence numbers `seq`.
    fn honest(&self, rng: &mut Rng, seq: u64) -> (Contract, usize, usize, usize) {
        let (s, p, t) = (
            rng.index(self.sellers.len()),
            rng.index(self.purchasers.len()),
            rng.index(self.transmissions.len()),
        );
        let energy = Energy::from_raw(rng.between(100, 40_000));
        let kind = rng.below(10);
        let (category, aux) = match kind {
            0 => (BusinessCategory::DirectPurchase, None),
            1 => {
                let quantity = Energy::from_raw((energy.raw() * rng.between(1, 50) / 100).max(1));
                let code = u8::try_from(1 + rng.below(4)).unwrap_or(1);
                let service = AuxServiceKind::from_code(code).unwrap_or(AuxServiceKind::Reserve);
                let price = Price::from_raw(rng.between(100, 800) * 100);
                (
                    BusinessCategory::AuxiliaryService,
                    Some(AuxService {
                        kind: service,
                        quantity,
                        price,
                    }),
                )
            }
            _ => (BusinessCategory::CommonSupply, None),
        };
        let contract = Contract {
            category,
            seller: self.sellers[s],
            purchaser: self.purchasers[p],
            transmission: self.transmissions[t],
            price: Price::from_raw(rng.between(1700, 2400) * 100),
            energy,
            transmission_rate: Price::from_raw(1_5000),
            damages_rate: Price::from_raw(15_0000),
            delivery_time: DeliveryTime(18 * 60),
            seller_seq: seq,
            purchaser_seq: seq,
            transmission_seq: seq,
            aux,
        };
        (contract, s, p, t)
    }

    fn sign(&self, c: Contract, (s, p, t): (usize, usize, usize)) -> SignedContract {
        c.sign(
            &self.keys.sellers[s],
            &self.keys.purchasers[p],
            &self.keys.transmissions[t],
        )
    }

    /// Transaction `i` and its ground truth: a pure function of (seed, i).
    fn contract(&self, i: u64) -> (SignedContract, Truth) {
        let mut rng = Rng::stream(self.params.seed, &[STREAM_CONTRACT, i]);
        let planted = rng.chance_ppm(self.params.invalid_ppm);
        let reason = PlantedReason::ALL[rng.index(PlantedReason::ALL.len())];
        let seq = HISTORY + 1 + i;
        let (mut c, s, p, t) = self.honest(&mut rng, seq);
        if !planted {
            return (self.sign(c, (s, p, t)), Truth::Valid);
        }
        let signed = match reason {
            PlantedReason::ForgedSignature => {
                let mut signed = self.sign(c, (s, p, t));
                let wrong = &self.keys.purchasers[(p + 1) % self.keys.purchasers.len()];
                let wrong = if self.keys.purchasers.len() > 1 {
                    wrong
                } else {
                    &self.keys.sellers[s]
                };
                signed.signatures[1] =
                    wrong.sign(&c.signing_message(crate::contract::Signer::Purchaser));
                signed
            }
            PlantedReason::TamperedAmount => {
                let mut signed = self.sign(c, (s, p, t));
                signed.contract.energy = Energy::from_raw(c.energy.raw() + 1_000);
                signed
            }
            PlantedReason::EnergyOverCapacity => {
                let cap = self.rules.capacity[s].raw();
                c.energy = Energy::from_raw(cap + rng.between(1, 20_000));
                self.sign(c, (s, p, t))
            }
            PlantedReason::MalformedAuxService => {
                c.category = BusinessCategory::AuxiliaryService;
                c.aux = if rng.below(2) == 0 {
                    None
                } else {
                    Some(AuxService {
                        kind: AuxServiceKind::Reserve,
                        quantity: Energy::ZERO,
                        price: Price::from_raw(5_0000),
                    })
                };
                self.sign(c, (s, p, t))
            }
            PlantedReason::ReplayedContract => {
                let h = rng.below(HISTORY);
                let mut hist = Rng::stream(self.params.seed, &[STREAM_HISTORY, h]);
                let (old, s, p, t) = self.honest(&mut hist, 1 + h);
                self.sign(old, (s, p, t))
            }
        };
        (signed, Truth::Invalid(reason))
    }
}
