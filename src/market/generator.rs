//! Generated markets: participants by role (placed on a grid when one is given), their keys
//! and declared limits, seeded contracts of all three business categories, meter readings, and
//! planted invalid transactions whose ground truth is known. [`Market`] documents every
//! distribution; [`Workload`] is a batch of its transactions, what `run` consumes.
//!
//! Every contract is a pure function of (seed, index), so generation runs in parallel and gives
//! the same contracts on any thread count.

use super::rules::{MAX_TRANSACTIONS, MarketRules, PlantedReason, Truth, Workload, WorkloadParams};
use crate::base::domain::{
    OPERATOR_BASE, PURCHASER_BASE, SELLER_BASE, SOURCE_BASE, SUPERVISOR, TRANSMISSION_BASE,
    TRANSMISSION_MAX,
};
use std::sync::Arc;

use rayon::prelude::*;

use crate::base::amount::{Energy, Price};
use crate::base::domain::{
    Address, AuxServiceKind, BusinessCategory, DeliveryTime, Role, power_per_energy,
};
use crate::base::rng::Rng;
use crate::contract::{AuxService, Contract, SignedContract};
use crate::crypto::keys::{KeyPair, KeyRegistry};
use crate::grid::placement::GridMarket;
use crate::ledger::Reading;

/// Stream purposes for `Rng::stream`.
const STREAM_CONTRACT: u64 = 1;
const STREAM_LIMITS: u64 = 2;
const STREAM_HISTORY: u64 = 3;
const STREAM_READING: u64 = 4;

/// Contracts "committed before the run", which replays copy.
const HISTORY: u64 = 64;

/// Pairs tried when looking for a pair whose transfer limit admits an honest trade.
const PAIR_TRIES: u32 = 64;
/// Pairs tried when planting a congesting trade (few pairs qualify on most grids).
const CONGESTING_TRIES: u32 = 1024;

impl Workload {
    /// Generates the workload without a grid, in parallel on the current rayon pool. At most
    /// [`MAX_TRANSACTIONS`] contracts are generated.
    pub fn generate(params: WorkloadParams) -> Self {
        let n = params.contracts.min(MAX_TRANSACTIONS) as u64;
        Market::new(params, None).batch(0..n)
    }

    /// Each of `indices` with its transaction, for the validators' batched checks.
    pub fn at(&self, indices: &[u32]) -> Vec<(u32, &SignedContract)> {
        indices
            .iter()
            .map(|&tx| (tx, &self.transactions[tx as usize]))
            .collect()
    }

    /// Every transaction with its index (a workload holds at most `u32::MAX`).
    pub fn indexed(&self) -> Vec<(u32, &SignedContract)> {
        (0..self.transactions.len())
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .zip(&self.transactions)
            .collect()
    }

    /// Planted invalid transactions.
    pub fn invalid_count(&self) -> usize {
        self.truth
            .iter()
            .filter(|t| matches!(t, Truth::Invalid(_)))
            .count()
    }
}

/// One participant of a generated market, as a dataset records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its address.
    pub address: Address,
    /// Its role.
    pub role: Role,
    /// The bus index it sits at on the grid (sellers, purchasers, sources), if placed.
    pub bus: Option<u32>,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Declared capacity per contract (sellers) or demand per contract (purchasers); zero
    /// for other roles.
    pub limit: Energy,
}

/// A market: who is in it, the rules validators check, and (when generated here) the keys to
/// sign its contracts. Contract `i` is a pure function of (seed, i): [`Market::contract`].
///
/// Distributions (exact units; uniform unless said):
/// - seller, purchaser: uniform over their lists, or with `pareto_alpha_milli` = 1000 alpha > 0
///   the participant of rank r (its index) is drawn with probability proportional to
///   (r + 1)^(-1/alpha), the rank-size law of Pareto(alpha) activity: a few participants are in
///   most contracts (hot accounts);
/// - transmission company: uniform; on a grid, the owner of the purchaser's region (buses are
///   split into as many contiguous ranges of file order as there are companies);
/// - delivery: a slot of `delivery.slot_minutes` (an hour by default) in the horizon of
///   `delivery.horizon_hours` from 00:00 of day 0 (a day by default), drawn with probability
///   proportional to [`LOAD_SHAPE`] at the slot's hour of day (a weekday's load, lowest at
///   03:00, peak at 18:00, the paper's delivery time); the contract delivers at the slot's start;
/// - energy without a grid: 0.100 to 40.000 MWh in steps of 0.001. On a grid, trades are sized
///   so that each slot's expected traded power is `delivery.congestion_ppm` / 10^6 of the
///   grid's load at that hour (the case's total positive load times [`LOAD_SHAPE`] / 1000): with
///   N contracts over slots of weights w (Σw = W), the mean power is m = congestion x load x W /
///   (1000 N), the same in every slot (busier hours get more trades, not larger ones), and a
///   trade's power is uniform from m/2 to 3m/2 (its energy is power x slot / 60 min, at least
///   0.001 MWh), capped at 40 MWh of energy and at the pair's single-trade transfer limit (so
///   an honest trade never overloads a line alone; a pair whose limit is under 0.100 MW is
///   redrawn). How much of that is curtailed depends on where the trades meet the lines: at the
///   default `congestion` of 0.15, between 0 and 10% of the scheme on every shipped grid
///   (case14, case30, case57 and case118 carry it all; case300 about 7%, case2869pegase about
///   3%: `tests/congestion.rs` pins the band on small markets, `perf/` records it at 10^7);
/// - price 17.00 to 24.00 per MWh in steps of 0.01; transmission rate 1.5 and damages rate 15
///   per MWh (Section 4);
/// - category: 1 in 10 direct purchase, 1 in 10 auxiliary service (a service whose quantity is
///   1% to 50% of the energy, priced 1.00 to 8.00), the rest common supply;
/// - declared limits: 40 to 60 MWh per contract; on a grid a seller adds the Pmax of the
///   generators at its bus and a purchaser the case's load at its bus;
/// - readings: with probability `default_ppm`, one default, each kind equally likely: seller
///   short (delivers 0% to 99% of the energy), purchaser short (takes 0% to 99% of it), or
///   transmission failure (not carried); otherwise full delivery.
///
/// Planted invalid transactions (rate `invalid_ppm`, kinds equally likely; the congesting trade
/// only on a grid):
/// - forged signature: the purchaser's signature made with another participant's key;
/// - tampered amount: energy lowered by a quarter after all three signed;
/// - energy over capacity: more than the seller declared (properly signed);
/// - malformed auxiliary service: an auxiliary-service contract without its service, or with a
///   zero quantity (properly signed);
/// - replayed contract: an exact copy of a contract committed before the run (its sequence
///   numbers are at or below the signers' watermarks);
/// - congesting trade: a properly signed trade, within every declared limit, whose power
///   exceeds its pair's transfer limit, so it overloads a line alone. If none of 1,024 drawn
///   pairs has a limit below the parties' declared limits, the contract is planted as a forged
///   signature instead (its truth says so). In a 300-participant market no pair of case14 or
///   case118 qualifies (their lines carry any single trade the parties can declare) and some
///   pairs of case57 do (tested).
pub struct Market<'g> {
    /// Delivery slots drawn by load.
    schedule: Picker,
    /// Mean energy of an honest trade on a grid (0.001 MWh), from the grid's load.
    mean_energy: Option<i64>,
    /// How it was made.
    pub params: WorkloadParams,
    /// What validators check against.
    pub rules: Arc<MarketRules>,
    /// Every participant, in address order within each role.
    pub members: Vec<Member>,
    keys: Keys,
    grid: Option<&'g GridMarket>,
    seller_pick: Picker,
    purchaser_pick: Picker,
}

impl std::fmt::Debug for Market<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Market")
            .field("params", &self.params)
            .field("members", &self.members.len())
            .field("grid", &self.grid.is_some())
            .finish_non_exhaustive()
    }
}

/// One generated transaction.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The signed contract.
    pub signed: SignedContract,
    /// Its ground truth.
    pub truth: Truth,
    /// What the meters read.
    pub reading: Reading,
}

impl<'g> Market<'g> {
    /// The grid the market was placed on, if any.
    pub fn grid(&self) -> Option<&'g GridMarket> {
        self.grid
    }

    /// Derives keys and declared limits, on the current rayon pool; places participants on
    /// `grid` when given (which must have been placed with these seller and purchaser counts).
    pub fn new(params: WorkloadParams, grid: Option<&'g GridMarket>) -> Self {
        let list = |base: u32, n: u32| -> Vec<Address> {
            (0..n.max(1)).map(|i| Address(base + i)).collect()
        };
        let sellers = list(SELLER_BASE, params.sellers);
        let purchasers = list(PURCHASER_BASE, params.purchasers);
        let transmissions = list(
            TRANSMISSION_BASE,
            params.transmission_companies.min(TRANSMISSION_MAX),
        );
        let operators: Vec<Address> = (0..params.grid_operators)
            .map(|i| Address(OPERATOR_BASE + i))
            .collect();
        let sources: Vec<Address> = (0..params.sources)
            .map(|i| Address(SOURCE_BASE + i))
            .collect();
        let keys = Keys::derive(params.seed, &sellers, &purchasers, &transmissions);
        let mut limits = Rng::stream(params.seed, &[STREAM_LIMITS]);
        // Declared per-contract limits: 40 to 60 MWh, so honest energies (at most 40) fit.
        let mut capacity: Vec<Energy> = sellers
            .iter()
            .map(|_| Energy::from_raw(limits.between(40_000, 60_000)))
            .collect();
        let mut demand: Vec<Energy> = purchasers
            .iter()
            .map(|_| Energy::from_raw(limits.between(40_000, 60_000)))
            .collect();
        if let Some(g) = grid {
            let model_grid = g.model().grid();
            let mut pmax = vec![0.0f64; model_grid.buses.len()];
            for generator in model_grid.generators.iter().filter(|x| x.in_service) {
                if let Some(i) = model_grid.bus_index(generator.bus) {
                    pmax[i] += generator.pmax.max(0.0);
                }
            }
            let milli = |mw: f64| Energy::from_raw(to_milli(mw));
            for (i, c) in capacity.iter_mut().enumerate() {
                if let Some(b) = g.seller_bus(i) {
                    *c = Energy::from_raw(c.raw() + milli(pmax[b as usize]).raw());
                }
            }
            for (j, d) in demand.iter_mut().enumerate() {
                if let Some(b) = g.purchaser_bus(j) {
                    let pd = model_grid.buses[b as usize].pd.max(0.0);
                    *d = Energy::from_raw(d.raw() + milli(pd).raw());
                }
            }
        }
        let mut members = Vec::new();
        let mut registry = KeyRegistry::new();
        let mut add = |address: Address, key: Option<&KeyPair>, role, bus, limit| {
            let public = match key {
                Some(k) => k.public_key(),
                None => KeyPair::derive(params.seed, address).public_key(),
            };
            // Derived keys are prime-order points; admission cannot fail for them.
            let _ = registry.register(address, *public.as_bytes());
            members.push(Member {
                address,
                role,
                bus,
                public_key: *public.as_bytes(),
                limit,
            });
        };
        let gen_buses: Vec<u32> = grid.map(|g| g.generator_buses()).unwrap_or_default();
        for (i, &a) in sellers.iter().enumerate() {
            let bus = grid.and_then(|g| g.seller_bus(i));
            add(a, Some(&keys.sellers[i]), Role::Seller, bus, capacity[i]);
        }
        for (j, &a) in purchasers.iter().enumerate() {
            let bus = grid.and_then(|g| g.purchaser_bus(j));
            add(
                a,
                Some(&keys.purchasers[j]),
                Role::Purchaser,
                bus,
                demand[j],
            );
        }
        for (t, &a) in transmissions.iter().enumerate() {
            let key = Some(&keys.transmissions[t]);
            add(a, key, Role::TransmissionCompany, None, Energy::ZERO);
        }
        for &a in &operators {
            add(a, None, Role::GridOperator, None, Energy::ZERO);
        }
        for (i, &a) in sources.iter().enumerate() {
            let bus = (!gen_buses.is_empty()).then(|| gen_buses[i % gen_buses.len()]);
            add(a, None, Role::Source, bus, Energy::ZERO);
        }
        add(
            SUPERVISOR,
            None,
            Role::GovernmentSupervisor,
            None,
            Energy::ZERO,
        );
        let rules = generated_rules(&params, registry, capacity, demand);
        let alpha = params.pareto_alpha_milli;
        let (schedule, mean_energy) = schedule(&params, grid);
        Self {
            schedule,
            mean_energy,
            seller_pick: Picker::new(sellers.len(), alpha),
            purchaser_pick: Picker::new(purchasers.len(), alpha),
            params,
            rules: Arc::new(rules),
            members,
            keys,
            grid,
        }
    }

    /// Transactions `range` (indices into the market), generated in parallel on the current
    /// pool: the same bytes on any thread count.
    pub fn batch(&self, range: std::ops::Range<u64>) -> Workload {
        let generated: Vec<Generated> = range.into_par_iter().map(|i| self.contract(i)).collect();
        let mut w = Workload {
            params: self.params.clone(),
            rules: Arc::clone(&self.rules),
            transactions: Vec::with_capacity(generated.len()),
            truth: Vec::with_capacity(generated.len()),
            readings: Vec::with_capacity(generated.len()),
        };
        for g in generated {
            w.transactions.push(g.signed);
            w.truth.push(g.truth);
            w.readings.push(g.reading);
        }
        w
    }

    /// Transaction `i`, its ground truth and its readings: a pure function of (seed, i).
    pub fn contract(&self, i: u64) -> Generated {
        let mut rng = Rng::stream(self.params.seed, &[STREAM_CONTRACT, i]);
        let planted = rng.chance_ppm(self.params.invalid_ppm);
        let kinds = if self.grid.is_some() {
            PlantedReason::ALL.len()
        } else {
            PlantedReason::ALL.len() - 1
        };
        let reason = PlantedReason::ALL[rng.index(kinds)];
        let seq = HISTORY + 1 + i;
        let (signed, truth) = if planted {
            self.planted(&mut rng, reason, seq)
        } else {
            let (c, parties) = self.honest(&mut rng, seq);
            (self.sign(c, parties), Truth::Valid)
        };
        let reading = self.reading(i, &signed.contract);
        Generated {
            signed,
            truth,
            reading,
        }
    }

    fn reading(&self, i: u64, c: &Contract) -> Reading {
        let mut rng = Rng::stream(self.params.seed, &[STREAM_READING, i]);
        let mut r = Reading::full(c);
        if !rng.chance_ppm(self.params.default_ppm) {
            return r;
        }
        let part = |rng: &mut Rng| Energy::from_raw(c.energy.raw() * rng.between(0, 99) / 100);
        match rng.below(3) {
            0 => {
                r.delivered = part(&mut rng);
                r.received = r.delivered;
            }
            1 => r.received = part(&mut rng),
            _ => {
                r.carried = false;
                r.received = Energy::ZERO;
            }
        }
        r
    }

    /// The pair's single-trade transfer limit (0.001 MW), `i64::MAX` without a grid.
    fn transfer_limit(&self, s: usize, p: usize) -> i64 {
        let Some(g) = self.grid else {
            return i64::MAX;
        };
        match (g.seller_bus(s), g.purchaser_bus(p)) {
            (Some(a), Some(b)) => g.transfer_limit_milli(a, b),
            _ => i64::MAX,
        }
    }

    /// An honest contract drawn from `rng`, with sequence numbers `seq`.
    fn honest(&self, rng: &mut Rng, seq: u64) -> (Contract, (usize, usize, usize)) {
        let (mut s, mut p, mut t) = (
            self.seller_pick.pick(rng),
            self.purchaser_pick.pick(rng),
            rng.index(self.keys.transmissions.len()),
        );
        let slot = u32::try_from(self.schedule.pick(rng)).unwrap_or(0);
        let minutes = self.params.delivery.slot_minutes;
        let per_hour = power_per_energy(minutes);
        let mut energy = match self.mean_energy {
            Some(m) => Energy::from_raw(rng.between((m + 1) / 2, m + m / 2).max(1)),
            None => Energy::from_raw(rng.between(100, 40_000)),
        };
        if self.grid.is_some() {
            let mut limit = self.transfer_limit(s, p);
            let mut tries = 1;
            while limit < 100 && tries < PAIR_TRIES {
                (s, p) = (self.seller_pick.pick(rng), self.purchaser_pick.pick(rng));
                limit = self.transfer_limit(s, p);
                tries += 1;
            }
            energy = Energy::from_raw(energy.raw().min(40_000).min(limit / per_hour).max(1));
            t = self.region_owner(p).unwrap_or(t);
        }
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
            seller: self.keys.sellers_at(s),
            purchaser: self.keys.purchasers_at(p),
            transmission: self.keys.transmissions_at(t),
            price: Price::from_raw(rng.between(1700, 2400) * 100),
            energy,
            transmission_rate: Price::from_raw(1_5000),
            damages_rate: Price::from_raw(15_0000),
            delivery_time: DeliveryTime(slot * minutes),
            seller_seq: seq,
            purchaser_seq: seq,
            transmission_seq: seq,
            aux,
        };
        (contract, (s, p, t))
    }

    /// The transmission company owning purchaser `p`'s region, on a grid.
    fn region_owner(&self, p: usize) -> Option<usize> {
        let g = self.grid?;
        let bus = g.purchaser_bus(p)? as usize;
        let buses = g.model().grid().buses.len().max(1);
        Some(bus * self.keys.transmissions.len() / buses)
    }

    fn sign(&self, c: Contract, (s, p, t): (usize, usize, usize)) -> SignedContract {
        c.sign(
            &self.keys.sellers[s],
            &self.keys.purchasers[p],
            &self.keys.transmissions[t],
        )
    }

    fn planted(&self, rng: &mut Rng, reason: PlantedReason, seq: u64) -> (SignedContract, Truth) {
        let (mut c, (s, p, t)) = self.honest(rng, seq);
        let signed = match reason {
            PlantedReason::ForgedSignature => self.forged(c, (s, p, t)),
            PlantedReason::TamperedAmount => {
                let mut signed = self.sign(c, (s, p, t));
                // Lowered, so no earlier check (capacity, demand, a line) can catch it first:
                // only the signatures can.
                signed.contract.energy = Energy::from_raw(c.energy.raw() - c.energy.raw() / 4);
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
                let (old, parties) = self.honest(&mut hist, 1 + h);
                self.sign(old, parties)
            }
            PlantedReason::CongestingTrade => {
                return match self.congesting(rng, c) {
                    Some((c, parties)) => (
                        self.sign(c, parties),
                        Truth::Invalid(PlantedReason::CongestingTrade),
                    ),
                    None => (
                        self.forged(c, (s, p, t)),
                        Truth::Invalid(PlantedReason::ForgedSignature),
                    ),
                };
            }
        };
        (signed, Truth::Invalid(reason))
    }

    fn forged(&self, c: Contract, (s, p, t): (usize, usize, usize)) -> SignedContract {
        let mut signed = self.sign(c, (s, p, t));
        let wrong = if self.keys.purchasers.len() > 1 {
            &self.keys.purchasers[(p + 1) % self.keys.purchasers.len()]
        } else {
            &self.keys.sellers[s]
        };
        signed.signatures[1] = wrong.sign(&c.signing_message(crate::contract::Signer::Purchaser));
        signed
    }

    /// `c` moved to a pair whose transfer limit is below both parties' declared limits, with
    /// energy above the transfer limit and within the declared ones.
    fn congesting(
        &self,
        rng: &mut Rng,
        mut c: Contract,
    ) -> Option<(Contract, (usize, usize, usize))> {
        for _ in 0..CONGESTING_TRIES {
            let (s, p) = (self.seller_pick.pick(rng), self.purchaser_pick.pick(rng));
            // In energy over the slot: a power above the limit is an energy above limit / k.
            let limit =
                self.transfer_limit(s, p) / power_per_energy(self.params.delivery.slot_minutes);
            let room = self.rules.capacity[s].min(self.rules.demand[p]).raw();
            if limit >= room || limit < 0 {
                continue;
            }
            let t = self.region_owner(p)?;
            let high = room.min(limit.saturating_mul(2).max(limit + 1));
            c.energy = Energy::from_raw(rng.between(limit + 1, high));
            if let Some(aux) = &mut c.aux {
                aux.quantity = aux.quantity.min(c.energy);
            }
            c.seller = self.keys.sellers_at(s);
            c.purchaser = self.keys.purchasers_at(p);
            c.transmission = self.keys.transmissions_at(t);
            return Some((c, (s, p, t)));
        }
        None
    }
}

/// The rules of a generated market: its keys and declared limits, fixed price bounds, the
/// horizon as the delivery window.
fn generated_rules(
    params: &WorkloadParams,
    registry: KeyRegistry,
    capacity: Vec<Energy>,
    demand: Vec<Energy>,
) -> MarketRules {
    MarketRules {
        registry,
        capacity,
        demand,
        price_min: Price::from_raw(10_0000),
        price_max: Price::from_raw(30_0000),
        aux_price_max: Price::from_raw(10_0000),
        window: (
            DeliveryTime(0),
            DeliveryTime(params.delivery.horizon_hours * 60),
        ),
        slot_minutes: params.delivery.slot_minutes,
        seq_watermark: HISTORY,
        seller_base: SELLER_BASE,
        purchaser_base: PURCHASER_BASE,
    }
}

/// The slot picker (slots weighted by [`LOAD_SHAPE`]) and, on a grid, the mean energy of an
/// honest trade.
fn schedule(params: &WorkloadParams, grid: Option<&GridMarket>) -> (Picker, Option<i64>) {
    let d = params.delivery;
    let weights: Vec<u64> = (0..d.slots())
        .map(|j| u64::from(LOAD_SHAPE[((j * d.slot_minutes / 60) % 24) as usize]))
        .collect();
    let mean = grid.map(|g| mean_energy_milli(g, params, weights.iter().sum()));
    (Picker::weighted(&weights), mean)
}

/// A weekday's load by hour of day, per mille of the peak (18:00): lowest at 03:00 (0.56), a
/// morning rise, a plateau near 0.9 through the day, the evening peak. Generated contracts
/// deliver in each slot with probability proportional to its hour's value.
pub const LOAD_SHAPE: [u32; 24] = [
    620, 590, 570, 560, 570, 610, 700, 800, 870, 900, 910, 910, 900, 890, 880, 880, 900, 960, 1000,
    990, 950, 880, 790, 700,
];

/// The mean energy of an honest trade on `grid` (0.001 MWh): with slot weights summing to
/// `weight` (per mille of peak), congestion x load x weight / (1000 x contracts), over the
/// slot's length. Integer arithmetic; at least 1.
fn mean_energy_milli(grid: &GridMarket, params: &WorkloadParams, weight: u64) -> i64 {
    let load: f64 = grid
        .model()
        .grid()
        .buses
        .iter()
        .map(|b| b.pd.max(0.0))
        .sum();
    let load_milli = u128::from(u64::try_from(to_milli(load)).unwrap_or(0));
    let d = params.delivery;
    let per_hour = u128::from(power_per_energy(d.slot_minutes).unsigned_abs());
    let contracts = (params.contracts.max(1) as u128) * 1_000_000 * 1000 * per_hour;
    let m = u128::from(d.congestion_ppm) * load_milli * u128::from(weight) / contracts;
    i64::try_from(m).unwrap_or(i64::MAX).max(1)
}

/// Milli-units of a non-negative MW figure, truncated (declared limits only; never money).
#[allow(clippy::cast_possible_truncation)]
fn to_milli(mw: f64) -> i64 {
    (mw * 1000.0) as i64
}

/// Draws a participant index: uniform, or Pareto-skewed by rank.
#[derive(Clone, Debug)]
struct Picker {
    len: usize,
    /// Cumulative thresholds over u64 (empty: uniform). Index r is drawn when the 64 random
    /// bits are below `cumulative[r]` and not below `cumulative[r - 1]`.
    cumulative: Vec<u64>,
}

impl Picker {
    /// Weights (r + 1)^(-1/alpha), alpha = `alpha_milli` / 1000, turned into integer
    /// thresholds once (with the platform's `powf`; every draw after is integer-only).
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    fn new(len: usize, alpha_milli: u32) -> Self {
        if alpha_milli == 0 || len <= 1 {
            return Self {
                len,
                cumulative: Vec::new(),
            };
        }
        let exponent = -1000.0 / f64::from(alpha_milli);
        let weights: Vec<f64> = (0..len).map(|r| ((r + 1) as f64).powf(exponent)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cumulative: Vec<u64> = weights
            .iter()
            .map(|w| {
                acc += w;
                ((acc / total) * 18_446_744_073_709_551_615.0) as u64
            })
            .collect();
        if let Some(last) = cumulative.last_mut() {
            *last = u64::MAX;
        }
        Self { len, cumulative }
    }

    /// Index r drawn with probability proportional to `weights[r]` (integers; all zero or
    /// none: always 0).
    fn weighted(weights: &[u64]) -> Self {
        let total: u64 = weights.iter().sum();
        if total == 0 {
            return Self {
                len: 1,
                cumulative: Vec::new(),
            };
        }
        let mut acc = 0u128;
        let mut cumulative: Vec<u64> = weights
            .iter()
            .map(|&w| {
                acc += u128::from(w);
                u64::try_from(acc * u128::from(u64::MAX) / u128::from(total)).unwrap_or(u64::MAX)
            })
            .collect();
        if let Some(last) = cumulative.last_mut() {
            *last = u64::MAX;
        }
        Self {
            len: weights.len(),
            cumulative,
        }
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        if self.cumulative.is_empty() {
            return rng.index(self.len.max(1));
        }
        let x = rng.next_u64();
        self.cumulative
            .partition_point(|&c| c <= x)
            .min(self.len - 1)
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

    fn sellers_at(&self, i: usize) -> Address {
        self.addresses.0[i]
    }

    fn purchasers_at(&self, i: usize) -> Address {
        self.addresses.1[i]
    }

    fn transmissions_at(&self, i: usize) -> Address {
        self.addresses.2[i]
    }
}
