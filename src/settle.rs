//! Settlement by smart contract (the paper's Section 3.4 and Table 4): meter readings decide what
//! each party pays when a contract's delivery time comes.
//!
//! # The rule (one function: [`contract_transfers`])
//! For a contract of energy E, a reading of D delivered by the seller's meter, R received by the
//! purchaser's meter, and whether the transmission company carried it:
//! - sent = min(D, E): what the seller delivered against this contract;
//! - arrived = sent if carried, else 0; taken = min(R, arrived);
//! - **purchase**: the purchaser pays the seller price x taken;
//! - **transmission**: if carried, rate x sent goes to the transmission company, the purchaser
//!   paying `purchaser_share_bps` / 10,000 of it and the seller the rest (the paper: "both parties
//!   of the transaction also need to bear the corresponding electricity transmission costs");
//! - **seller shortfall**: the seller pays the purchaser damages x (E - sent);
//! - **purchaser shortfall**: the purchaser pays the seller damages x (arrived - taken);
//! - **transmission failure** (not carried, sent > 0): the transmission company pays the
//!   purchaser damages x sent (its supply failed), and pays the seller price x sent for the energy
//!   it took into the network and lost (the seller delivered and is not otherwise paid).
//!
//! Every amount is one `Price::mul_energy_round_half_even` (rounded once, half to even, to the
//! cent), and the transmission split is one `Money::split_round_half_even` whose parts add up to
//! the cost. Each transfer debits exactly what it credits. Zero amounts are not emitted.
//!
//! # The ledger
//! Accounts are a dense `Vec<i64>` of cents, indexed by participant. A period settles in three
//! steps, none of which takes a lock:
//! 1. every account's net change is summed by a parallel fold over the contracts (each worker
//!    its own dense vector, added together at the end);
//! 2. **overdraft policy**: an account whose balance plus net change would be negative is short;
//!    while any account is short, its contracts that debit it fail, from the last in the period's
//!    order backward, until it is covered, and a failed contract's transfers are taken out of every
//!    account's net. This depends only on the period's data, never on threads or scheduling, and
//!    a failed contract is reported with nothing of it applied;
//! 3. the nets are added to the balances, and the sum of all balances is checked to be what it
//!    was: a mismatch is an error naming the period and the imbalance.
//!
//! A contract id settles at most once: a second settlement of the same id is refused.
#![deny(clippy::arithmetic_side_effects)]
#![deny(clippy::float_arithmetic)]

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::amount::{AmountError, BASIS_POINTS, Energy, Money};
use crate::contract::{Contract, ContractId};
use crate::domain::Address;

/// What the meters read for one contract at its delivery time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Energy the seller's meter says it delivered for this contract.
    pub delivered: Energy,
    /// Energy the purchaser's meter says it received.
    pub received: Energy,
    /// Whether the transmission company carried the energy.
    pub carried: bool,
}

impl Reading {
    /// Everything contracted was delivered, carried and taken.
    pub fn full(contract: &Contract) -> Self {
        Self {
            delivered: contract.energy,
            received: contract.energy,
            carried: true,
        }
    }
}

/// Why money moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Price x energy taken, purchaser to seller.
    Purchase,
    /// The purchaser's share of the transmission cost.
    TransmissionPurchaserShare,
    /// The seller's share of the transmission cost.
    TransmissionSellerShare,
    /// Seller shortfall damages, seller to purchaser.
    SellerShortfallDamages,
    /// Purchaser shortfall damages, purchaser to seller.
    PurchaserShortfallDamages,
    /// Transmission failure damages, transmission company to purchaser.
    TransmissionFailureDamages,
    /// Energy lost in transmission, paid by the transmission company to the seller.
    TransmissionLossCompensation,
}

impl TransferKind {
    /// True for liquidated damages (penalties).
    pub fn is_penalty(self) -> bool {
        matches!(
            self,
            TransferKind::SellerShortfallDamages
                | TransferKind::PurchaserShortfallDamages
                | TransferKind::TransmissionFailureDamages
        )
    }
}

/// One movement of money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// Debited.
    pub from: Address,
    /// Credited.
    pub to: Address,
    /// Amount, positive.
    pub amount: Money,
    /// Why.
    pub kind: TransferKind,
}

/// Market parameters of settlement.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SettlementParams {
    /// The purchaser's share of the transmission cost, in basis points (5,000 = half).
    pub purchaser_share_bps: u32,
}

impl Default for SettlementParams {
    fn default() -> Self {
        Self {
            purchaser_share_bps: BASIS_POINTS / 2,
        }
    }
}

/// The transfers a contract's readings call for, by the rule in the module documentation.
pub fn contract_transfers(
    contract: &Contract,
    reading: &Reading,
    params: &SettlementParams,
) -> Result<Vec<Transfer>, AmountError> {
    let e = contract.energy;
    let sent = reading.delivered.min(e);
    let arrived = if reading.carried { sent } else { Energy::ZERO };
    let taken = reading.received.min(arrived);
    let (seller, purchaser, tc) = (contract.seller, contract.purchaser, contract.transmission);
    let mut out = Vec::with_capacity(4);
    let mut push = |from: Address, to: Address, amount: Money, kind: TransferKind| {
        if amount > Money::ZERO {
            out.push(Transfer {
                from,
                to,
                amount,
                kind,
            });
        }
    };
    push(
        purchaser,
        seller,
        contract.price.mul_energy_round_half_even(taken)?,
        TransferKind::Purchase,
    );
    if reading.carried {
        let cost = contract
            .transmission_rate
            .mul_energy_round_half_even(sent)?;
        let (purchaser_part, seller_part) =
            cost.split_round_half_even(params.purchaser_share_bps)?;
        push(
            purchaser,
            tc,
            purchaser_part,
            TransferKind::TransmissionPurchaserShare,
        );
        push(
            seller,
            tc,
            seller_part,
            TransferKind::TransmissionSellerShare,
        );
    }
    let seller_short = e.checked_sub(sent)?;
    push(
        seller,
        purchaser,
        contract
            .damages_rate
            .mul_energy_round_half_even(seller_short)?,
        TransferKind::SellerShortfallDamages,
    );
    let purchaser_short = arrived.checked_sub(taken)?;
    push(
        purchaser,
        seller,
        contract
            .damages_rate
            .mul_energy_round_half_even(purchaser_short)?,
        TransferKind::PurchaserShortfallDamages,
    );
    if !reading.carried {
        push(
            tc,
            purchaser,
            contract.damages_rate.mul_energy_round_half_even(sent)?,
            TransferKind::TransmissionFailureDamages,
        );
        push(
            tc,
            seller,
            contract.price.mul_energy_round_half_even(sent)?,
            TransferKind::TransmissionLossCompensation,
        );
    }
    Ok(out)
}

/// Why a period could not be settled. The ledger is unchanged after any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A transfer names an address with no account.
    #[error("contract {contract}: no account for address {address}")]
    UnknownAccount {
        /// The contract.
        contract: ContractId,
        /// The address.
        address: Address,
    },
    /// A flat batch names an account index the ledger does not have.
    #[error("contract {contract}: no account with index {index}")]
    UnknownAccountIndex {
        /// The contract.
        contract: ContractId,
        /// The index.
        index: u32,
    },
    /// A flat batch whose offsets do not match its ids and transfers.
    #[error("malformed transfer batch: offsets do not match ids and transfers")]
    MalformedBatch,
    /// The contract was already settled, or appears twice in the period.
    #[error("contract {0} is settled already")]
    AlreadySettled(ContractId),
    /// A balance would leave the i64 range.
    #[error("period {period}: account {address} would overflow")]
    Overflow {
        /// The period.
        period: u64,
        /// The account.
        address: Address,
    },
    /// Money would be created or destroyed: a broken invariant, reported, never applied.
    #[error("period {period}: balances would change in sum by {imbalance} cents")]
    Imbalance {
        /// The period.
        period: u64,
        /// Sum after minus sum before, in cents.
        imbalance: i128,
    },
}

/// A contract's transfers, ready for the ledger.
#[derive(Clone, Debug)]
pub struct ContractSettlement {
    /// The contract.
    pub id: ContractId,
    /// Its transfers.
    pub transfers: Vec<Transfer>,
}

/// What a settled period did.
#[derive(Clone, Debug, Default)]
pub struct PeriodResult {
    /// Contracts applied, by position in the period's list.
    pub applied: Vec<usize>,
    /// Contracts that failed for lack of funds, by position; nothing of them was applied.
    pub failed: Vec<usize>,
    /// Net change per account (cents), by account index, over the applied contracts.
    pub net: Vec<i64>,
}

/// A transfer between account indices (see [`Ledger::account_index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexedTransfer {
    /// Debited account.
    pub from: u32,
    /// Credited account.
    pub to: u32,
    /// Cents, positive.
    pub amount: i64,
}

/// A period's contracts in flat form: contract k's transfers are
/// `transfers[offsets[k]..offsets[k + 1]]`.
#[derive(Clone, Debug, Default)]
pub struct TransferBatch {
    /// Contract ids, one per contract.
    pub ids: Vec<ContractId>,
    /// `ids.len() + 1` offsets into `transfers`.
    pub offsets: Vec<usize>,
    /// All transfers, contract after contract.
    pub transfers: Vec<IndexedTransfer>,
}

impl TransferBatch {
    fn contract(&self, k: usize) -> &[IndexedTransfer] {
        &self.transfers[self.offsets[k]..self.offsets[k.saturating_add(1)]]
    }
}

/// Hashes a contract id by its first 8 bytes: ids are SHA-256 outputs, already uniform, so a
/// second hash would only cost time.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        if let Some(first) = bytes.first_chunk::<8>() {
            self.0 ^= u64::from_le_bytes(*first);
        }
    }
    // The array's length prefix carries no information.
    fn write_usize(&mut self, _: usize) {}
}

type IdSet = HashSet<ContractId, std::hash::BuildHasherDefault<IdHasher>>;

/// Shards of the settled-id set; shard = the id's byte 8, so shards fill in parallel, each
/// mutated by one worker, without locks.
const ID_SHARDS: usize = 64;

/// Integer balances of every participant.
#[derive(Clone, Debug)]
pub struct Ledger {
    index: HashMap<Address, usize>,
    addresses: Vec<Address>,
    balances: Vec<i64>,
    settled: Vec<IdSet>,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            addresses: Vec::new(),
            balances: Vec::new(),
            settled: (0..ID_SHARDS).map(|_| IdSet::default()).collect(),
        }
    }
}

/// Contracts per parallel netting task: each task keeps a dense vector as long as the ledger,
/// so tasks are made large enough that allocating it is small beside the work.
const NET_CHUNK: usize = 1 << 16;

fn shard_of(id: &ContractId) -> usize {
    usize::from(id.0[8]) % ID_SHARDS
}

impl Ledger {
    /// A ledger with these accounts and opening balances.
    pub fn new(accounts: &[(Address, Money)]) -> Self {
        let mut ledger = Self::default();
        for &(address, balance) in accounts {
            if let Some(&i) = ledger.index.get(&address) {
                ledger.balances[i] = balance.raw();
            } else {
                ledger.index.insert(address, ledger.addresses.len());
                ledger.addresses.push(address);
                ledger.balances.push(balance.raw());
            }
        }
        ledger
    }

    /// The balance of `address`.
    pub fn balance(&self, address: Address) -> Option<Money> {
        self.index
            .get(&address)
            .map(|&i| Money::from_raw(self.balances[i]))
    }

    /// Every account, in creation order.
    pub fn accounts(&self) -> impl Iterator<Item = (Address, Money)> + '_ {
        self.addresses
            .iter()
            .zip(&self.balances)
            .map(|(&a, &b)| (a, Money::from_raw(b)))
    }

    /// The sum of all balances, in cents.
    pub fn total(&self) -> i128 {
        self.balances.par_iter().map(|&b| i128::from(b)).sum()
    }

    /// The index of `address`'s account.
    pub fn account_index(&self, address: Address) -> Option<usize> {
        self.index.get(&address).copied()
    }

    /// Settles one period's contracts on the current rayon pool, by the policy in the module
    /// documentation. On error nothing is applied.
    pub fn settle_period(
        &mut self,
        period: u64,
        contracts: &[ContractSettlement],
    ) -> Result<PeriodResult, LedgerError> {
        let batch = self.index_batch(contracts)?;
        self.settle_batch(period, &batch)
    }

    /// Resolves every transfer's addresses to account indices, in parallel.
    pub fn index_batch(
        &self,
        contracts: &[ContractSettlement],
    ) -> Result<TransferBatch, LedgerError> {
        let account = |contract: ContractId, address: Address| {
            self.index
                .get(&address)
                .and_then(|&i| u32::try_from(i).ok())
                .ok_or(LedgerError::UnknownAccount { contract, address })
        };
        let per_contract: Vec<Vec<IndexedTransfer>> = contracts
            .par_iter()
            .map(|c| {
                c.transfers
                    .iter()
                    .map(|t| {
                        Ok(IndexedTransfer {
                            from: account(c.id, t.from)?,
                            to: account(c.id, t.to)?,
                            amount: t.amount.raw(),
                        })
                    })
                    .collect::<Result<Vec<_>, LedgerError>>()
            })
            .collect::<Result<_, _>>()?;
        let mut batch = TransferBatch {
            ids: contracts.iter().map(|c| c.id).collect(),
            ..Default::default()
        };
        batch.offsets.push(0);
        for t in per_contract {
            batch.transfers.extend(t);
            batch.offsets.push(batch.transfers.len());
        }
        Ok(batch)
    }

    /// Settles a period given in flat form. On error nothing is applied and no id is recorded.
    pub fn settle_batch(
        &mut self,
        period: u64,
        batch: &TransferBatch,
    ) -> Result<PeriodResult, LedgerError> {
        let count = batch.ids.len();
        let accounts = self.balances.len();
        if let Some(pos) = batch
            .transfers
            .iter()
            .position(|t| t.from.max(t.to) as usize >= accounts)
        {
            // The contract whose range holds transfer `pos`.
            let k = batch
                .offsets
                .partition_point(|&o| o <= pos)
                .saturating_sub(1);
            let t = batch.transfers[pos];
            return Err(LedgerError::UnknownAccountIndex {
                contract: batch.ids.get(k).copied().unwrap_or(ContractId([0; 32])),
                index: t.from.max(t.to),
            });
        }
        if batch.offsets.len() != count.saturating_add(1)
            || batch.offsets.last() != Some(&batch.transfers.len())
        {
            return Err(LedgerError::MalformedBatch);
        }
        // At most once: record every id, in parallel by shard; undo on any error below.
        let inserted = self.record_ids(&batch.ids)?;
        match self.apply_batch(period, batch) {
            Ok(result) => {
                // Failed contracts were not settled: forget their ids.
                for &k in &result.failed {
                    let id = &batch.ids[k];
                    self.settled[shard_of(id)].remove(id);
                }
                Ok(result)
            }
            Err(e) => {
                self.forget_ids(&batch.ids, &inserted);
                Err(e)
            }
        }
    }

    /// Inserts `ids` into the settled set; on a duplicate (already settled, or twice in `ids`)
    /// removes what it inserted and fails. Returns the positions inserted, by shard.
    fn record_ids(&mut self, ids: &[ContractId]) -> Result<Vec<Vec<u32>>, LedgerError> {
        let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); ID_SHARDS];
        for (k, id) in ids.iter().enumerate() {
            buckets[shard_of(id)].push(u32::try_from(k).unwrap_or(u32::MAX));
        }
        let outcomes: Vec<(Vec<u32>, Option<ContractId>)> = self
            .settled
            .par_iter_mut()
            .zip(buckets)
            .map(|(shard, bucket)| {
                let mut inserted = Vec::with_capacity(bucket.len());
                // Grow once, not by doubling while inserting.
                shard.reserve(bucket.len());
                for k in bucket {
                    let id = ids[k as usize];
                    if !shard.insert(id) {
                        return (inserted, Some(id));
                    }
                    inserted.push(k);
                }
                (inserted, None)
            })
            .collect();
        let duplicate = outcomes.iter().find_map(|o| o.1);
        let inserted: Vec<Vec<u32>> = outcomes.into_iter().map(|o| o.0).collect();
        if let Some(id) = duplicate {
            self.forget_ids(ids, &inserted);
            return Err(LedgerError::AlreadySettled(id));
        }
        Ok(inserted)
    }

    fn forget_ids(&mut self, ids: &[ContractId], inserted: &[Vec<u32>]) {
        self.settled
            .par_iter_mut()
            .zip(inserted)
            .for_each(|(shard, positions)| {
                for &k in positions {
                    shard.remove(&ids[k as usize]);
                }
            });
    }

    /// Netting, overdrafts, range and conservation checks, then the new balances.
    fn apply_batch(
        &mut self,
        period: u64,
        batch: &TransferBatch,
    ) -> Result<PeriodResult, LedgerError> {
        let accounts = self.balances.len();
        let count = batch.ids.len();
        // 1. Parallel netting in i128 (cannot overflow for fewer than 2^64 transfers).
        let mut net: Vec<i128> = (0..count)
            .into_par_iter()
            .with_min_len(NET_CHUNK)
            .fold(
                || vec![0i128; accounts],
                |mut acc, k| {
                    apply_net(&mut acc, batch.contract(k), 1);
                    acc
                },
            )
            .reduce(|| vec![0i128; accounts], add_vectors);
        // 2. Overdrafts, resolved in a fixed order.
        let failed = self.resolve_shortfalls(batch, &mut net);
        // 3. Range and conservation, then apply.
        let mut next = Vec::with_capacity(accounts);
        for (i, (&b, &n)) in self.balances.iter().zip(&net).enumerate() {
            match i128::from(b)
                .checked_add(n)
                .and_then(|v| i64::try_from(v).ok())
            {
                Some(v) => next.push(v),
                None => {
                    return Err(LedgerError::Overflow {
                        period,
                        address: self.addresses[i],
                    });
                }
            }
        }
        let before = self.total();
        let after: i128 = next.par_iter().map(|&b| i128::from(b)).sum();
        if before != after {
            return Err(LedgerError::Imbalance {
                period,
                imbalance: after.saturating_sub(before),
            });
        }
        self.balances = next;
        let mut is_failed = vec![false; count];
        for &k in &failed {
            is_failed[k] = true;
        }
        let applied = (0..count).filter(|&k| !is_failed[k]).collect();
        let net = net
            .into_iter()
            .map(|n| i64::try_from(n).unwrap_or(0))
            .collect();
        Ok(PeriodResult {
            applied,
            failed,
            net,
        })
    }

    /// While an account is short, fails its debiting contracts from the last backward.
    fn resolve_shortfalls(&self, batch: &TransferBatch, net: &mut [i128]) -> Vec<usize> {
        let short =
            |net: &[i128], a: usize| i128::from(self.balances[a]).saturating_add(net[a]) < 0;
        let mut failed: Vec<usize> = Vec::new();
        let mut is_failed = vec![false; batch.ids.len()];
        // Debiting contracts of each account, built only when some account is short.
        let mut debits: Option<HashMap<usize, Vec<usize>>> = None;
        loop {
            let short_accounts: Vec<usize> = (0..net.len()).filter(|&a| short(net, a)).collect();
            if short_accounts.is_empty() {
                break;
            }
            let map = debits.get_or_insert_with(|| {
                let mut m: HashMap<usize, Vec<usize>> = HashMap::new();
                for k in 0..batch.ids.len() {
                    for t in batch.contract(k) {
                        let list = m.entry(t.from as usize).or_default();
                        if list.last() != Some(&k) {
                            list.push(k);
                        }
                    }
                }
                m
            });
            let failed_before = failed.len();
            for a in short_accounts {
                let Some(list) = map.get_mut(&a) else {
                    continue;
                };
                while short(net, a) {
                    let Some(k) = list.pop() else { break };
                    if !is_failed[k] {
                        is_failed[k] = true;
                        failed.push(k);
                        apply_net(net, batch.contract(k), -1);
                    }
                }
            }
            // An account short with nothing left to fail was short before the period (a negative
            // opening balance): nothing this period can cover it, so stop.
            if failed.len() == failed_before {
                break;
            }
        }
        failed.sort_unstable();
        failed
    }
}

/// Adds (`sign` = 1) or removes (`sign` = -1) a contract's transfers from the nets.
fn apply_net(net: &mut [i128], transfers: &[IndexedTransfer], sign: i128) {
    for t in transfers {
        let amount = i128::from(t.amount).saturating_mul(sign);
        net[t.from as usize] = net[t.from as usize].saturating_sub(amount);
        net[t.to as usize] = net[t.to as usize].saturating_add(amount);
    }
}

fn add_vectors(mut a: Vec<i128>, b: Vec<i128>) -> Vec<i128> {
    for (x, y) in a.iter_mut().zip(b) {
        *x = x.saturating_add(y);
    }
    a
}

/// One participant's line of the period statement, in the shape of the paper's Table 4.
#[derive(Clone, Debug, Serialize)]
pub struct Statement {
    /// The participant's address.
    pub participant: Address,
    /// Its role, as the caller names it.
    pub role: String,
    /// Change in balance over the period.
    pub balance_change: Money,
    /// Liquidated damages it paid.
    pub penalties_paid: Money,
    /// Liquidated damages it received.
    pub penalties_received: Money,
}

/// Statements from the applied contracts' transfers.
pub fn statements(
    contracts: &[ContractSettlement],
    applied: &[usize],
    participants: &[(Address, String)],
) -> Result<Vec<Statement>, AmountError> {
    let mut lines: Vec<Statement> = participants
        .iter()
        .map(|(a, role)| Statement {
            participant: *a,
            role: role.clone(),
            balance_change: Money::ZERO,
            penalties_paid: Money::ZERO,
            penalties_received: Money::ZERO,
        })
        .collect();
    let position: HashMap<Address, usize> = participants
        .iter()
        .enumerate()
        .map(|(i, (a, _))| (*a, i))
        .collect();
    for &k in applied {
        for t in &contracts[k].transfers {
            if let Some(&i) = position.get(&t.from) {
                lines[i].balance_change = lines[i].balance_change.checked_sub(t.amount)?;
                if t.kind.is_penalty() {
                    lines[i].penalties_paid = lines[i].penalties_paid.checked_add(t.amount)?;
                }
            }
            if let Some(&i) = position.get(&t.to) {
                lines[i].balance_change = lines[i].balance_change.checked_add(t.amount)?;
                if t.kind.is_penalty() {
                    lines[i].penalties_received =
                        lines[i].penalties_received.checked_add(t.amount)?;
                }
            }
        }
    }
    Ok(lines)
}
