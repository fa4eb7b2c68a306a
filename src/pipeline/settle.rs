//! Settling sealed contracts on a market's accounts: the settlement stage of `ipow run` and
//! `ipow stress` ([`PeriodSettler`], one ledger period per sealed period), and `ipow settle` over
//! the paper's market or a dataset ([`settle_once`], one period).
//!
//! Both go through the same two pieces of [`crate::ledger`]: [`contract_transfers`] (the rule,
//! rounding once) and [`Ledger::settle_period`] (netting, the overdraft policy, at most once,
//! conservation). [`PeriodSettler`] adds a check across periods: the sum of every balance after
//! a period equals the sum of the opening balances, or the run stops with the period and the
//! imbalance.
#![deny(clippy::float_arithmetic)]

use rayon::prelude::*;
use serde::Serialize;

use crate::base::amount::{AmountError, Money};
use crate::base::domain::{Address, Role};
use crate::contract::{Contract, ContractId};
use crate::ledger::{
    ContractSettlement, Ledger, LedgerError, PeriodResult, Reading, SettlementParams, Statement,
    TransferKind, contract_transfers, statements,
};
use crate::market::rules::Workload;

/// Why contracts could not be settled. Nothing of the period is applied after any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// An amount overflowed.
    #[error("contract {contract}: {source}")]
    Amount {
        /// The contract (its name, or its id in hex).
        contract: String,
        /// The error.
        source: AmountError,
    },
    /// The ledger refused the period.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The balances no longer sum to the opening total: money was created or lost.
    #[error("period {period}: balances sum to {imbalance} cents more than they opened with")]
    Imbalance {
        /// The period after which the sums differed.
        period: u64,
        /// Sum now minus the opening sum, in cents.
        imbalance: i128,
    },
}

/// Orders participants the way the paper's Table 4 lists them: the transmission company, the
/// sellers, the purchasers, then every other role; by `key` within a role.
pub fn table4_rank(role: Role) -> u8 {
    match role {
        Role::TransmissionCompany => 0,
        Role::Seller => 1,
        Role::Purchaser => 2,
        _ => 3,
    }
}

/// One period settled from scratch: every account opens at `opening`.
#[derive(Clone, Debug)]
pub struct Settled {
    /// Each contract's transfers, in the order given.
    pub settlements: Vec<ContractSettlement>,
    /// Which contracts applied and which failed for lack of funds.
    pub result: PeriodResult,
    /// One statement per participant, in the order given.
    pub statements: Vec<Statement>,
    /// True when the statements' balance changes sum to zero.
    pub conserved: bool,
}

/// Settles `contracts` (each with its reading) as one period on fresh accounts for
/// `participants` (address and the role shown in statements), each opening at `opening`.
/// `name(k)` names contract k in errors.
pub fn settle_once(
    participants: &[(Address, String)],
    opening: Money,
    contracts: &[(ContractId, &Contract, Reading)],
    params: &SettlementParams,
    name: &(dyn Fn(usize) -> String + Sync),
) -> Result<Settled, SettleError> {
    let settlements = contracts
        .par_iter()
        .enumerate()
        .map(|(k, (id, contract, reading))| {
            contract_transfers(contract, reading, params)
                .map(|transfers| ContractSettlement { id: *id, transfers })
                .map_err(|source| SettleError::Amount {
                    contract: name(k),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let accounts: Vec<(Address, Money)> = participants.iter().map(|p| (p.0, opening)).collect();
    let mut ledger = Ledger::new(&accounts);
    let result = ledger.settle_period(0, &settlements)?;
    let statements =
        statements(&settlements, result.applied(), participants).map_err(|source| {
            SettleError::Amount {
                contract: "statements".into(),
                source,
            }
        })?;
    let sum: i128 = statements
        .iter()
        .map(|s| i128::from(s.balance_change.raw()))
        .sum();
    Ok(Settled {
        settlements,
        result,
        statements,
        conserved: sum == 0,
    })
}

/// What the settlement stage of a run did, summed over its periods.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SettlementSummary {
    /// Accounts on the ledger.
    pub accounts: u64,
    /// Every account's opening balance.
    pub opening_balance: Money,
    /// The purchaser's share of the transmission cost, in basis points.
    pub purchaser_share_bps: u32,
    /// Ledger periods settled (one per sealed period with accepted contracts).
    pub periods: u64,
    /// Contracts settled.
    pub settled: u64,
    /// Contracts that failed for lack of funds (nothing of them applied).
    pub failed_funds: u64,
    /// Transfers applied.
    pub transfers: u64,
    /// Paid by purchasers to sellers for energy taken.
    pub purchase_paid: Money,
    /// Paid to transmission companies for energy carried.
    pub transmission_paid: Money,
    /// Liquidated damages paid (seller shortfall, purchaser shortfall, transmission failure).
    pub penalties_paid: Money,
    /// Paid by transmission companies to sellers for energy lost in transmission.
    pub loss_compensation_paid: Money,
    /// True when every balance summed to the opening total after every period (a run whose
    /// sums differ stops with an error instead, so a finished run reports true).
    pub conserved: bool,
}

/// The ledger of a run, settling each sealed period's accepted contracts from the workload's
/// meter readings.
#[derive(Clone, Debug)]
pub struct PeriodSettler {
    ledger: Ledger,
    params: SettlementParams,
    opening_total: i128,
    summary: SettlementSummary,
}

impl PeriodSettler {
    /// A ledger with an account for each of `members`, each opening at `opening`.
    pub fn new(members: &[Address], opening: Money, params: SettlementParams) -> Self {
        let accounts: Vec<(Address, Money)> = members.iter().map(|&a| (a, opening)).collect();
        let ledger = Ledger::new(&accounts);
        let opening_total = ledger.total();
        Self {
            summary: SettlementSummary {
                accounts: accounts.len() as u64,
                opening_balance: opening,
                purchaser_share_bps: params.purchaser_share_bps,
                conserved: true,
                ..SettlementSummary::default()
            },
            ledger,
            params,
            opening_total,
        }
    }

    /// Settles the contracts `accepted` (indices into `workload`) as ledger period `period`,
    /// then checks the balances still sum to the opening total.
    pub fn settle(
        &mut self,
        period: u64,
        workload: &Workload,
        accepted: &[u32],
    ) -> Result<PeriodResult, SettleError> {
        if accepted.is_empty() {
            return Ok(PeriodResult::default());
        }
        let settlements = accepted
            .par_iter()
            .map(|&i| {
                let tx = &workload.transactions[i as usize];
                contract_transfers(&tx.contract, &workload.readings[i as usize], &self.params)
                    .map(|transfers| ContractSettlement {
                        id: tx.id(),
                        transfers,
                    })
                    .map_err(|source| SettleError::Amount {
                        contract: tx.id().to_string(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let result = self.ledger.settle_period(period, &settlements)?;
        let total = self.ledger.total();
        if total != self.opening_total {
            self.summary.conserved = false;
            return Err(SettleError::Imbalance {
                period,
                imbalance: total.saturating_sub(self.opening_total),
            });
        }
        let mut sums = [0i128; 4];
        for k in result.applied() {
            for t in &settlements[k].transfers {
                let slot = match t.kind {
                    TransferKind::Purchase => 0,
                    TransferKind::TransmissionPurchaserShare
                    | TransferKind::TransmissionSellerShare => 1,
                    TransferKind::TransmissionLossCompensation => 3,
                    _ => 2,
                };
                sums[slot] = sums[slot].saturating_add(i128::from(t.amount.raw()));
            }
            self.summary.transfers += settlements[k].transfers.len() as u64;
        }
        let add = |m: Money, s: i128, what: &str| {
            i64::try_from(s)
                .ok()
                .and_then(|s| m.checked_add(Money::from_raw(s)).ok())
                .ok_or_else(|| SettleError::Amount {
                    contract: format!("period {period}: {what} total"),
                    source: AmountError::Overflow {
                        kind: "money",
                        operation: "summing a run's settlement",
                    },
                })
        };
        let s = &mut self.summary;
        s.purchase_paid = add(s.purchase_paid, sums[0], "purchase")?;
        s.transmission_paid = add(s.transmission_paid, sums[1], "transmission")?;
        s.penalties_paid = add(s.penalties_paid, sums[2], "penalty")?;
        s.loss_compensation_paid = add(s.loss_compensation_paid, sums[3], "loss compensation")?;
        s.periods += 1;
        s.settled += result.applied_count() as u64;
        s.failed_funds += result.failed.len() as u64;
        Ok(result)
    }

    /// What the stage did so far.
    pub fn summary(&self) -> &SettlementSummary {
        &self.summary
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }
}

/// Why a dataset could not be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetSettleError {
    /// The readings file is unusable.
    #[error(transparent)]
    Readings(#[from] crate::base::input::InputError),
    /// Settlement failed.
    #[error(transparent)]
    Settle(#[from] SettleError),
}

/// A contract of a dataset that was not settled, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Excluded {
    /// Its position in the file, from 0.
    pub position: u64,
    /// Its id, hex.
    pub id: String,
    /// Why: the check that rejects it (`signature`, `replay`, ...) or `insufficient_funds`.
    pub reason: String,
}

/// Everything `ipow settle --dataset` shows for a generated market.
#[derive(Clone, Debug, Serialize)]
pub struct DatasetSettlement {
    /// The dataset file.
    pub dataset: String,
    /// Where the readings came from: a readings file, or `dataset` for the readings the
    /// dataset records.
    pub readings: String,
    /// Contracts in the dataset.
    pub contracts: u64,
    /// Contracts the checks accept (the period).
    pub accepted: u64,
    /// Contracts settled.
    pub settled: u64,
    /// Contracts not settled: rejected by the checks, or failed for lack of funds (nothing of
    /// them applied).
    pub excluded: Vec<Excluded>,
    /// Per participant, in the order of Table 4: transmission companies, sellers, purchasers,
    /// then every other role; by address within a role.
    pub statements: Vec<Statement>,
    /// True when the balance changes sum to zero (checked by the ledger as well).
    pub conserved: bool,
    /// Opening balance of every account.
    pub opening_balance: Money,
    /// The purchaser's share of the transmission cost, in basis points.
    pub purchaser_share_bps: u32,
}

/// Settles a dataset as one period: the contracts an honest validator accepts on every check
/// it can make without a grid (signatures, energy, parties, price, time, auxiliary service,
/// replay: a contract id seen earlier in the file is a replay), each with its reading. `readings`
/// gives one per contract position (from a readings file named `readings_file`, `None` where the
/// file has none); without it the dataset's own readings are used. A contract the checks accept
/// with no reading is an error.
pub fn settle_dataset(
    d: &crate::market::dataset::Dataset,
    dataset_file: &str,
    readings: Option<(&str, &[Option<Reading>])>,
    params: &SettlementParams,
    opening: Money,
) -> Result<DatasetSettlement, DatasetSettleError> {
    use crate::validate::{Checks, NoCongestionStage, Reason, Verdict};
    let w = &d.workload;
    let checks = Checks {
        rules: &w.rules,
        congestion: &NoCongestionStage,
    };
    let (mut verdicts, _) = checks.validate_all(&w.indexed(), crate::crypto::verify::DEFAULT_BATCH);
    let ids: Vec<ContractId> = w.transactions.par_iter().map(|t| t.id()).collect();
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for (v, id) in verdicts.iter_mut().zip(&ids) {
        if !seen.insert(*id) && v.is_valid() {
            *v = Verdict::Invalid(Reason::Replay);
        }
    }
    let mut excluded = Vec::new();
    let mut period: Vec<(ContractId, &Contract, Reading)> = Vec::new();
    let mut positions: Vec<usize> = Vec::new();
    for (i, v) in verdicts.iter().enumerate() {
        if let Verdict::Invalid(reason) = v {
            excluded.push(Excluded {
                position: i as u64,
                id: ids[i].to_string(),
                reason: reason.name().to_owned(),
            });
            continue;
        }
        let reading = match readings {
            None => w.readings[i],
            Some((file, given)) => given.get(i).copied().flatten().ok_or_else(|| {
                crate::base::input::InputError::new(
                    file,
                    "readings",
                    "contract",
                    format!(
                        "no reading for contract {} (#{i} of {dataset_file}), which the checks \
                         accept",
                        ids[i]
                    ),
                )
            })?,
        };
        period.push((ids[i], &w.transactions[i].contract, reading));
        positions.push(i);
    }
    let mut members: Vec<&crate::market::generator::Member> = d.members.iter().collect();
    members.sort_by_key(|m| (table4_rank(m.role), m.address));
    let participants: Vec<(Address, String)> = members
        .iter()
        .map(|m| (m.address, m.role.label()))
        .collect();
    let settled = settle_once(&participants, opening, &period, params, &|k| {
        period[k].0.to_string()
    })?;
    for &k in &settled.result.failed {
        excluded.push(Excluded {
            position: positions[k] as u64,
            id: period[k].0.to_string(),
            reason: "insufficient_funds".into(),
        });
    }
    excluded.sort_by_key(|e| e.position);
    Ok(DatasetSettlement {
        dataset: dataset_file.to_owned(),
        readings: readings.map_or_else(|| "dataset".to_owned(), |r| r.0.to_owned()),
        contracts: w.transactions.len() as u64,
        accepted: period.len() as u64,
        settled: settled.result.applied_count() as u64,
        excluded,
        statements: settled.statements,
        conserved: settled.conserved,
        opening_balance: opening,
        purchaser_share_bps: params.purchaser_share_bps,
    })
}
