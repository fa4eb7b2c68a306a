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

/// Integer balances of every participant.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    index: HashMap<Address, usize>,
    addresses: Vec<Address>,
    balances: Vec<i64>,
    settled: HashSet<ContractId>,
}

/// Contracts per parallel netting task: each task keeps a dense vector as long as the ledger,
/// so tasks are made large enough that allocating it is small beside the work.
const NET_CHUNK: usize = 1 << 16;

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
        // Every contract at most once, and every address known, before anything moves.
        let mut ids = HashSet::with_capacity(contracts.len());
        for c in contracts {
            if self.settled.contains(&c.id) || !ids.insert(c.id) {
                return Err(LedgerError::AlreadySettled(c.id));
            }
        }
        let indexed: Vec<Vec<(usize, usize, i64)>> = contracts
            .par_iter()
            .map(|c| {
                c.transfers
                    .iter()
                    .map(|t| {
                        let from = self.account(c.id, t.from)?;
                        let to = self.account(c.id, t.to)?;
                        Ok((from, to, t.amount.raw()))
                    })
                    .collect::<Result<Vec<_>, LedgerError>>()
            })
            .collect::<Result<_, _>>()?;
        let accounts = self.balances.len();
        // 1. Parallel netting in i128 (cannot overflow for fewer than 2^64 transfers).
        let mut net: Vec<i128> = indexed
            .par_chunks(NET_CHUNK)
            .fold(
                || vec![0i128; accounts],
                |mut acc, chunk| {
                    for transfers in chunk {
                        apply_net(&mut acc, transfers, 1);
                    }
                    acc
                },
            )
            .reduce(|| vec![0i128; accounts], add_vectors);
        // 2. Overdrafts, resolved in a fixed order.
        let failed = self.resolve_shortfalls(&indexed, &mut net);
        // 3. Apply, checking range and conservation first.
        let mut next = Vec::with_capacity(accounts);
        for (i, (&b, &n)) in self.balances.iter().zip(&net).enumerate() {
            let v = i128::from(b)
                .checked_add(n)
                .and_then(|v| i64::try_from(v).ok());
            match v {
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
        let failed_set: HashSet<usize> = failed.iter().copied().collect();
        let applied: Vec<usize> = (0..contracts.len())
            .filter(|i| !failed_set.contains(i))
            .collect();
        for &i in &applied {
            self.settled.insert(contracts[i].id);
        }
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

    fn account(&self, contract: ContractId, address: Address) -> Result<usize, LedgerError> {
        self.index
            .get(&address)
            .copied()
            .ok_or(LedgerError::UnknownAccount { contract, address })
    }

    /// While an account is short, fails its debiting contracts from the last backward.
    fn resolve_shortfalls(
        &self,
        indexed: &[Vec<(usize, usize, i64)>],
        net: &mut [i128],
    ) -> Vec<usize> {
        let short =
            |net: &[i128], a: usize| i128::from(self.balances[a]).saturating_add(net[a]) < 0;
        let mut failed: Vec<usize> = Vec::new();
        let mut is_failed = vec![false; indexed.len()];
        // Debiting contracts of each account, built only when some account is short.
        let mut debits: Option<HashMap<usize, Vec<usize>>> = None;
        loop {
            let short_accounts: Vec<usize> = (0..net.len()).filter(|&a| short(net, a)).collect();
            if short_accounts.is_empty() {
                break;
            }
            let map = debits.get_or_insert_with(|| {
                let mut m: HashMap<usize, Vec<usize>> = HashMap::new();
                for (k, transfers) in indexed.iter().enumerate() {
                    for &(from, _, _) in transfers {
                        let list = m.entry(from).or_default();
                        if list.last() != Some(&k) {
                            list.push(k);
                        }
                    }
                }
                m
            });
            let failed_before = failed.len();
            for a in short_accounts {
                let list = map.get_mut(&a);
                let Some(list) = list else { continue };
                while short(net, a) {
                    let Some(k) = list.pop() else { break };
                    if !is_failed[k] {
                        is_failed[k] = true;
                        failed.push(k);
                        apply_net(net, &indexed[k], -1);
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
fn apply_net(net: &mut [i128], transfers: &[(usize, usize, i64)], sign: i128) {
    for &(from, to, amount) in transfers {
        let amount = i128::from(amount).saturating_mul(sign);
        net[from] = net[from].saturating_sub(amount);
        net[to] = net[to].saturating_add(amount);
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
