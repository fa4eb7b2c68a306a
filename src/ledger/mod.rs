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
//! A contract id settles at most once: a second settlement of the same id is refused (the
//! whole period is refused, and nothing of it applied). The settled ids are kept exactly, in
//! 1,024 partitions by their first bits: a period's ids are bucketed by partition by each
//! worker over its share (one pass that also copies them into the ledger), then each
//! partition's table (4-byte key -> index of the id) is filled by one worker while it is in
//! cache; an id whose key is already taken by another is kept in a second set, so a key
//! collision costs a lookup, never a wrong answer.
//!
//! Netting sums in i64, one dense vector per worker, when the period's whole flow is below
//! 2^63 (so no partial sum can wrap), and in i128 otherwise.
#![deny(clippy::arithmetic_side_effects)]
#![deny(clippy::float_arithmetic)]

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::base::amount::{AmountError, BASIS_POINTS, Energy, Money};
use crate::base::domain::Address;
use crate::contract::{Contract, ContractId};

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
    /// The ledger's record of settled ids is full (a partition of it would pass 2^32 ids,
    /// about 2^42 contracts in all).
    #[error("the record of settled contracts is full")]
    Full,
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
    /// Contracts in the period.
    pub count: usize,
    /// Contracts that failed for lack of funds, by position, ascending; nothing of them was
    /// applied. Every other contract was applied.
    pub failed: Vec<usize>,
    /// Net change per account (cents), by account index, over the applied contracts.
    pub net: Vec<i64>,
}

impl PeriodResult {
    /// Contracts applied, by position in the period's list, ascending.
    pub fn applied(&self) -> impl Iterator<Item = usize> + '_ {
        let mut failed = self.failed.iter().peekable();
        (0..self.count).filter(move |&k| {
            if failed.peek() == Some(&&k) {
                failed.next();
                false
            } else {
                true
            }
        })
    }

    /// How many contracts were applied.
    pub fn applied_count(&self) -> usize {
        self.count.saturating_sub(self.failed.len())
    }

    /// Whether contract `k` was applied.
    pub fn is_applied(&self, k: usize) -> bool {
        k < self.count && self.failed.binary_search(&k).is_err()
    }
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

/// Hashes a settled-id key (4 bytes of a SHA-256 output, uniform already) by one multiply,
/// which spreads it over the 64 bits the table's probing and tag bytes use.
#[derive(Clone, Copy, Debug, Default)]
struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type KeyMap = HashMap<u32, u32, std::hash::BuildHasherDefault<KeyHasher>>;

/// Partitions of the settled-id set, by an id's first 10 bits: a period's ids are bucketed by
/// partition first, so each partition's table is then filled by one worker while it sits in
/// cache.
const ID_PARTITIONS: usize = 1 << 10;

/// A bucket at least this long is moved into its partition as a segment of its own; a shorter
/// one is copied onto the end of the last segment (so a partition holds few segments however
/// many small periods it sees).
const SEGMENT_MOVE_MIN: usize = 1024;

fn partition_of(id: &ContractId) -> usize {
    (usize::from(id.0[0]) << 2) | usize::from(id.0[1] >> 6)
}

fn key_of(id: &ContractId) -> u32 {
    let mut k = [0u8; 4];
    k.copy_from_slice(&id.0[8..12]);
    u32::from_le_bytes(k)
}

/// Every contract id settled so far, exactly (no false positives, no false negatives).
///
/// Ids are bucketed by partition (their first 10 bits). A partition keeps its ids in order, in
/// segments, and a table from a 4-byte key (bytes 8..12) to an id's index there. An id is
/// recorded when its partition's table maps its key to the index of the id itself, or when it
/// is in `collided` (its key was already taken by another id: about one id in 2^32 / n of a
/// partition's n by chance, or a crafted collision; it costs a lookup in a second set, never a
/// wrong answer). Table entries are 8 bytes; the ids are written once, in bucket order.
#[derive(Clone, Debug)]
struct SettledIds {
    partitions: Vec<Partition>,
    /// Ids whose key another recorded id holds.
    collided: HashSet<ContractId>,
    /// Ids the last `record` put in `collided` (for `undo`).
    last_collided: Vec<ContractId>,
}

/// A partition's ids, in order, in segments: buckets moved in whole, small ones appended to the
/// last. An id recorded and then forgotten (its contract failed for lack of funds) stays,
/// unreferenced.
#[derive(Clone, Debug, Default)]
struct Segments {
    segments: Vec<Vec<ContractId>>,
    /// The index of each segment's first id.
    starts: Vec<usize>,
}

impl Segments {
    fn len(&self) -> usize {
        match (self.starts.last(), self.segments.last()) {
            (Some(&s), Some(seg)) => s.saturating_add(seg.len()),
            _ => 0,
        }
    }

    fn at(&self, index: u32) -> Option<&ContractId> {
        let i = index as usize;
        let seg = self.starts.partition_point(|&s| s <= i).checked_sub(1)?;
        self.segments
            .get(seg)?
            .get(i.checked_sub(self.starts[seg])?)
    }

    /// The ids from index `from` on, with their indices.
    fn from(&self, from: usize) -> impl Iterator<Item = (usize, &ContractId)> + '_ {
        self.segments
            .iter()
            .zip(&self.starts)
            .filter(move |(seg, start)| start.saturating_add(seg.len()) > from)
            .flat_map(move |(seg, &start)| {
                let skip = from.saturating_sub(start);
                seg.iter()
                    .enumerate()
                    .skip(skip)
                    .map(move |(o, id)| (start.saturating_add(o), id))
            })
    }

    /// Appends a period's buckets, in chunk order.
    fn append(&mut self, buckets: Vec<Vec<ContractId>>) {
        for bucket in buckets {
            let len = self.len();
            match self.segments.last_mut() {
                Some(last) if bucket.len() < SEGMENT_MOVE_MIN => last.extend_from_slice(&bucket),
                _ if bucket.is_empty() => {}
                _ => {
                    self.segments.push(bucket);
                    self.starts.push(len);
                }
            }
        }
    }

    /// Keeps the first `len` ids.
    fn truncate(&mut self, len: usize) {
        while self.starts.last().is_some_and(|&start| start >= len) {
            self.segments.pop();
            self.starts.pop();
        }
        if let (Some(&start), Some(last)) = (self.starts.last(), self.segments.last_mut()) {
            last.truncate(len.saturating_sub(start));
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Partition {
    ids: Segments,
    /// Key -> index of the id.
    table: KeyMap,
    /// How many ids the partition held before the last `record`.
    mark: usize,
}

impl Partition {
    /// Drops what the last `record` added, and the table entries pointing at it.
    fn undo(&mut self) {
        let Partition { ids, table, mark } = self;
        for (i, id) in ids.from(*mark) {
            let key = key_of(id);
            if table.get(&key) == Some(&u32::try_from(i).unwrap_or(u32::MAX)) {
                table.remove(&key);
            }
        }
        ids.truncate(*mark);
    }
}

impl Default for SettledIds {
    fn default() -> Self {
        Self {
            partitions: (0..ID_PARTITIONS).map(|_| Partition::default()).collect(),
            collided: HashSet::new(),
            last_collided: Vec::new(),
        }
    }
}

/// Why ids could not be recorded.
enum RecordError {
    /// This id is recorded already, or twice in the period.
    Duplicate(ContractId),
    /// A partition would hold more than 2^32 ids.
    Full,
}

impl SettledIds {
    /// True when `id` is recorded.
    fn holds(&self, id: &ContractId) -> bool {
        let part = &self.partitions[partition_of(id)];
        part.table
            .get(&key_of(id))
            .is_some_and(|&i| part.ids.at(i) == Some(id))
            || self.collided.contains(id)
    }

    /// Records `ids`; on an error records nothing.
    fn record(&mut self, ids: &[ContractId]) -> Result<(), RecordError> {
        // Each worker buckets a contiguous chunk by partition, in order.
        let chunk = ids
            .len()
            .div_ceil(rayon::current_num_threads().max(1))
            .max(1);
        let bucketed: Vec<Vec<Vec<ContractId>>> = ids
            .par_chunks(chunk)
            .map(|part| {
                let expect = (part.len() / ID_PARTITIONS)
                    .saturating_add(part.len() / ID_PARTITIONS / 4)
                    .saturating_add(4);
                let mut buckets: Vec<Vec<ContractId>> = (0..ID_PARTITIONS)
                    .map(|_| Vec::with_capacity(expect))
                    .collect();
                for id in part {
                    buckets[partition_of(id)].push(*id);
                }
                buckets
            })
            .collect();
        let mut per_partition: Vec<Vec<Vec<ContractId>>> = (0..ID_PARTITIONS)
            .map(|_| Vec::with_capacity(bucketed.len()))
            .collect();
        for buckets in bucketed {
            for (p, bucket) in buckets.into_iter().enumerate() {
                per_partition[p].push(bucket);
            }
        }
        // Each partition's table filled by one worker.
        let collided = &self.collided;
        let outcomes: Vec<(Option<RecordError>, Vec<ContractId>)> = self
            .partitions
            .par_iter_mut()
            .zip(per_partition)
            .with_min_len(16)
            .map(|(part, buckets)| {
                let incoming: usize = buckets.iter().map(Vec::len).sum();
                part.mark = part.ids.len();
                part.ids.append(buckets);
                if u32::try_from(part.ids.len()).is_err() {
                    return (Some(RecordError::Full), Vec::new());
                }
                part.table.reserve(incoming);
                let mut clashes = Vec::new();
                let Partition { ids, table, mark } = part;
                for (i, id) in ids.from(*mark) {
                    // The partition holds fewer than 2^32 ids (checked above).
                    let i = u32::try_from(i).unwrap_or(u32::MAX);
                    match table.entry(key_of(id)) {
                        std::collections::hash_map::Entry::Vacant(v) => {
                            if !collided.is_empty() && collided.contains(id) {
                                return (Some(RecordError::Duplicate(*id)), clashes);
                            }
                            v.insert(i);
                        }
                        std::collections::hash_map::Entry::Occupied(o) => {
                            if ids.at(*o.get()) == Some(id) {
                                return (Some(RecordError::Duplicate(*id)), clashes);
                            }
                            clashes.push(*id);
                        }
                    }
                }
                (None, clashes)
            })
            .collect();
        let mut failure = None;
        let mut clashes = Vec::new();
        for (error, c) in outcomes {
            if failure.is_none() {
                failure = error;
            }
            clashes.extend(c);
        }
        self.last_collided.clear();
        if failure.is_none() {
            for id in clashes {
                if !self.collided.insert(id) {
                    failure = Some(RecordError::Duplicate(id));
                    break;
                }
                self.last_collided.push(id);
            }
        }
        if let Some(e) = failure {
            self.undo();
            return Err(e);
        }
        Ok(())
    }

    /// Undoes the last [`SettledIds::record`].
    fn undo(&mut self) {
        self.partitions.par_iter_mut().for_each(Partition::undo);
        for id in self.last_collided.drain(..) {
            self.collided.remove(&id);
        }
    }

    /// Forgets `id` (its contract failed and was not settled).
    fn forget(&mut self, id: &ContractId) {
        let part = &mut self.partitions[partition_of(id)];
        let key = key_of(id);
        if part
            .table
            .get(&key)
            .is_some_and(|&i| part.ids.at(i) == Some(id))
        {
            part.table.remove(&key);
        } else {
            self.collided.remove(id);
        }
    }
}

/// Integer balances of every participant.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    index: HashMap<Address, usize>,
    addresses: Vec<Address>,
    balances: Vec<i64>,
    settled: SettledIds,
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
        // At most once: record every id, in parallel by partition; undo on any error below.
        self.settled.record(&batch.ids).map_err(|e| match e {
            RecordError::Duplicate(id) => LedgerError::AlreadySettled(id),
            RecordError::Full => LedgerError::Full,
        })?;
        match self.apply_batch(period, batch) {
            Ok(result) => {
                // Failed contracts were not settled: forget their ids.
                for &k in &result.failed {
                    self.settled.forget(&batch.ids[k]);
                }
                Ok(result)
            }
            Err(e) => {
                self.settled.undo();
                Err(e)
            }
        }
    }

    /// True when contract `id` has settled on this ledger.
    pub fn is_settled(&self, id: &ContractId) -> bool {
        self.settled.holds(id)
    }

    /// Netting, overdrafts, range and conservation checks, then the new balances.
    fn apply_batch(
        &mut self,
        period: u64,
        batch: &TransferBatch,
    ) -> Result<PeriodResult, LedgerError> {
        let accounts = self.balances.len();
        let count = batch.ids.len();
        // 1. Parallel netting.
        let mut net = net_of(&batch.transfers, accounts);
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
        let net = net
            .into_iter()
            .map(|n| i64::try_from(n).unwrap_or(0))
            .collect();
        Ok(PeriodResult { count, failed, net })
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

/// Every account's net change over `transfers`, exactly: one dense vector per worker over a
/// contiguous share of the transfers, added together. Sums are kept in i64 when the period's
/// whole flow (the sum of |amount|) is below 2^63, which bounds every partial sum; otherwise
/// the period is netted again in i128.
fn net_of(transfers: &[IndexedTransfer], accounts: usize) -> Vec<i128> {
    let chunk = transfers
        .len()
        .div_ceil(rayon::current_num_threads().max(1))
        .max(1);
    let parts: Vec<(Vec<i64>, u64)> = transfers
        .par_chunks(chunk)
        .map(|part| {
            let mut net = vec![0i64; accounts];
            let mut flow = 0u64;
            for t in part {
                flow = flow.saturating_add(t.amount.unsigned_abs());
                net[t.from as usize] = net[t.from as usize].wrapping_sub(t.amount);
                net[t.to as usize] = net[t.to as usize].wrapping_add(t.amount);
            }
            (net, flow)
        })
        .collect();
    let flow = parts.iter().fold(0u64, |f, p| f.saturating_add(p.1));
    if flow < 1 << 63 {
        // No partial sum can have wrapped: every one is at most the flow in magnitude.
        let mut total = vec![0i128; accounts];
        for (net, _) in &parts {
            for (t, &n) in total.iter_mut().zip(net) {
                *t = t.saturating_add(i128::from(n));
            }
        }
        return total;
    }
    transfers
        .par_chunks(chunk)
        .map(|part| {
            let mut net = vec![0i128; accounts];
            apply_net(&mut net, part, 1);
            net
        })
        .reduce(|| vec![0i128; accounts], add_vectors)
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

/// The statements as a table for a terminal, headed by `first_column` (what `role` holds), at
/// most `shown` lines and a note of how many more `--json` has.
pub fn render_statements(statements: &[Statement], first_column: &str, shown: usize) -> String {
    let line = |a: &str, b: &str, c: &str, d: &str, e: &str| {
        format!("{a:<22} {b:>10} {c:>16} {d:>16} {e:>19}\n")
    };
    let mut out = line(
        first_column,
        "address",
        "balance change",
        "penalties paid",
        "penalties received",
    );
    for st in statements.iter().take(shown) {
        out += &line(
            &st.role,
            &st.participant.to_string(),
            &st.balance_change.to_string(),
            &st.penalties_paid.to_string(),
            &st.penalties_received.to_string(),
        );
    }
    if statements.len() > shown {
        out += &format!(
            "... {} more in --json\n",
            statements.len().saturating_sub(shown)
        );
    }
    out
}

/// Statements from the applied contracts' transfers.
pub fn statements(
    contracts: &[ContractSettlement],
    applied: impl Iterator<Item = usize>,
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
    for k in applied {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// Uniform ids from a counter (splitmix64), cheap enough for millions.
    fn ids(from: u64, n: u64) -> Vec<ContractId> {
        (from..from + n)
            .map(|i| {
                let mut out = [0u8; 32];
                let mut x = i;
                for chunk in out.chunks_mut(8) {
                    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = x;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
                }
                ContractId(out)
            })
            .collect()
    }

    #[test]
    fn settled_ids_across_moved_and_extended_segments() {
        // On two workers, periods large enough that each worker's bucket for every partition is
        // moved in as a segment of its own, and small ones that extend the last segment.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let segments = |set: &SettledIds| -> Vec<usize> {
                set.partitions
                    .iter()
                    .map(|p| p.ids.segments.len())
                    .collect()
            };
            let mut set = SettledIds::default();
            let big = 3 * SEGMENT_MOVE_MIN as u64 * ID_PARTITIONS as u64;
            let p0 = ids(0, big);
            set.record(&p0).ok().unwrap();
            assert!(
                segments(&set).iter().all(|&n| n == 2),
                "two buckets moved in"
            );
            let p1 = ids(big, big);
            let mut with_dup = p1.clone();
            with_dup.push(p0[12_345]);
            assert!(
                matches!(set.record(&with_dup), Err(RecordError::Duplicate(d)) if d == p0[12_345])
            );
            assert!(p1.iter().all(|id| !set.holds(id)));
            assert!(p0.iter().all(|id| set.holds(id)));
            assert!(segments(&set).iter().all(|&n| n == 2), "undone");
            assert_eq!(
                set.partitions.iter().map(|p| p.ids.len()).sum::<usize>(),
                p0.len()
            );
            set.record(&p1).ok().unwrap();
            assert!(segments(&set).iter().all(|&n| n == 4));
            let gone = [0, 1, 77_777, p0.len() - 1];
            for k in gone {
                set.forget(&p0[k]);
                set.forget(&p1[k]);
            }
            for (k, id) in p0.iter().enumerate() {
                assert_eq!(set.holds(id), !gone.contains(&k));
            }
            let small = ids(2 * big, 10);
            set.record(&small).ok().unwrap();
            assert!(
                segments(&set).iter().all(|&n| n == 4),
                "extended, not added"
            );
            assert!(small.iter().all(|id| set.holds(id)));
            set.undo();
            assert!(small.iter().all(|id| !set.holds(id)));
            for (k, id) in p1.iter().enumerate() {
                assert_eq!(set.holds(id), !gone.contains(&k));
            }
            assert!(set.record(&p1[5..6]).is_err());
            set.record(&p1[..1]).ok().unwrap();
            assert!(set.holds(&p1[0]));
        });
    }
}
