//! W2 behind a boundary: the validator tier as the supervision node sees it. The supervisor
//! hands a round's asks (a transaction to a validator) to a [`ValidatorPool`] and gets one
//! [`Answer`] per ask, in ask order; it keeps O1 to O4 (assignment, tag checks, tally, seal)
//! and every validator's record (what it validated, its work, its priority).
//!
//! An answer is a pure function of (seed, period, transaction, validator, the period's
//! published context): the validator's MAC key and fault come from the parameters
//! ([`Roster`]), a slow validator's lateness from a seeded draw, and a crashed or late one
//! answers an explicit "no proof". So a round ends the same way in every implementation, and
//! the in-process [`RayonPool`] is the reference the others are tested against.

use std::sync::Arc;

use rayon::prelude::*;
use ring::hmac;

use super::PeriodInput;
use super::ipow::{Behaviour, IpowParams};
use super::proof::{Proof, proof_message};
use crate::base::rng::Rng;
use crate::contract::SignedContract;
use crate::contract::Signer;
use crate::crypto::verify::BatchStats;
use crate::market::rules::{Truth, Workload};
use crate::validate::Checks;
use crate::validate::{Reason, Verdict};

/// One ask: transaction `tx` (a workload index) to validator `validator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    /// The transaction.
    pub tx: u32,
    /// The validator.
    pub validator: u32,
}

/// A validator's answer to one ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Its proof; `None` when none arrives this period (crashed, or late).
    pub proof: Option<Proof>,
    /// Whether it performed the checks (its work, which earns priority).
    pub worked: bool,
}

/// The validator tier failed as a whole (a lost process, a broken link): no round can end.
/// A validator that fails alone answers "no proof" instead.
#[derive(Debug, thiserror::Error)]
#[error("the validator tier failed")]
pub struct PoolError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The validator tier (W2).
pub trait ValidatorPool {
    /// Answers `asks` of a round of `input`'s period, one answer per ask in ask order; adds
    /// the signature batches the validators ran to `stats`.
    fn validate(
        &mut self,
        input: &PeriodInput<'_>,
        asks: &[Ask],
        stats: &mut BatchStats,
    ) -> Result<Vec<Answer>, PoolError>;

    /// What the tier reports beside the supervision node's figures (messages, bytes, waits);
    /// nothing in process.
    fn report(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// CPU seconds its validators spent in other processes since the first ask.
    fn remote_cpu_seconds(&self) -> f64 {
        0.0
    }
}

impl<P: ValidatorPool + ?Sized> ValidatorPool for Box<P> {
    fn validate(
        &mut self,
        input: &PeriodInput<'_>,
        asks: &[Ask],
        stats: &mut BatchStats,
    ) -> Result<Vec<Answer>, PoolError> {
        (**self).validate(input, asks, stats)
    }
    fn report(&self) -> serde_json::Value {
        (**self).report()
    }
    fn remote_cpu_seconds(&self) -> f64 {
        (**self).remote_cpu_seconds()
    }
}

/// What a liar reports for a transaction it found valid.
pub(super) const LIE_REASON: Reason = Reason::Signature(Signer::Seller);

const STREAM_BYZANTINE: u64 = 11;
const STREAM_SLOW: u64 = 13;

/// One validator as the parameters make it.
pub struct Member {
    /// The MAC key it shares with the supervision node.
    pub key: hmac::Key,
    /// Its fault, if Byzantine.
    pub fault: Option<Behaviour>,
    /// Each answer is late with the mix's `slow_miss_ppm` chance.
    pub slow: bool,
}

/// Every validator: keys from the node secret, Byzantine and slow ones chosen by the seed.
pub struct Roster {
    /// By validator number.
    pub members: Vec<Member>,
}

impl Roster {
    /// The validators `params` describe, with their MAC keys from its node secret.
    pub fn new(params: &IpowParams) -> Self {
        let secret = params.node_secret();
        Self::assemble(params, |v| secret.validator_mac(v))
    }

    /// The validators `params` describe (faults and lateness by its seed), validator `v`
    /// holding `key(v)`: a validator process knows only its own validators' keys.
    pub fn assemble(params: &IpowParams, key: impl Fn(u32) -> hmac::Key) -> Self {
        let n = params.validators;
        let mut order: Vec<u32> = (0..n).collect();
        Rng::stream(params.seed, &[STREAM_BYZANTINE]).shuffle(&mut order);
        // The shuffled order hands out faults: the fraction's behaviour first, then the mix's.
        let mut faults: Vec<Option<Behaviour>> = vec![None; n as usize];
        let mut slow = vec![false; n as usize];
        let mut next = order.iter().map(|&v| v as usize);
        let wanted = std::iter::repeat_n(params.behaviour, params.byzantine_count() as usize)
            .chain(
                params
                    .mix
                    .byzantine
                    .iter()
                    .flat_map(|&(b, k)| std::iter::repeat_n(b, k as usize)),
            );
        for b in wanted {
            if let Some(v) = next.next() {
                faults[v] = Some(b);
            }
        }
        for v in next.take(params.mix.slow as usize) {
            slow[v] = true;
        }
        let members = (0..n)
            .map(|v| Member {
                key: key(v),
                fault: faults[v as usize],
                slow: slow[v as usize],
            })
            .collect();
        Self { members }
    }
}

/// Where validators read the transactions they are asked about.
pub trait Transactions: Sync {
    /// Transaction `tx` (a workload index) as signed.
    fn contract(&self, tx: u32) -> &SignedContract;
    /// Whether it is a planted invalid one: the simulation's ground truth, read only by a
    /// colluder (who knows its accomplices' transactions).
    fn planted(&self, tx: u32) -> bool;
}

impl Transactions for Workload {
    fn contract(&self, tx: u32) -> &SignedContract {
        &self.transactions[tx as usize]
    }
    fn planted(&self, tx: u32) -> bool {
        self.truth[tx as usize] != Truth::Valid
    }
}

/// What every validator of a round works from: the period, the checks with the period's
/// published context, and the transactions.
#[derive(Clone, Copy)]
pub struct Round<'a> {
    /// The period.
    pub period: u64,
    /// What validators check against.
    pub checks: &'a Checks<'a>,
    /// The transactions asked about.
    pub txs: &'a dyn Transactions,
}

impl<'a> Round<'a> {
    /// The round of `input`'s period, reading its workload.
    pub fn of(input: &'a PeriodInput<'a>) -> Self {
        Self {
            period: input.period,
            checks: input.checks,
            txs: input.workload,
        }
    }
}

/// The in-process validator tier: every validator a task on the rayon pool, each working
/// through its own asks in ask order.
pub struct RayonPool {
    params: IpowParams,
    roster: Arc<Roster>,
}

impl RayonPool {
    /// The validators `params` describe.
    pub fn new(params: IpowParams) -> Self {
        let roster = Arc::new(Roster::new(&params));
        Self::with_roster(params, roster)
    }

    /// The validators `params` describe, whose roster (`Roster::new(&params)`) the caller
    /// already made: the supervision node of the same process shares it.
    pub fn with_roster(params: IpowParams, roster: Arc<Roster>) -> Self {
        Self { params, roster }
    }

    /// Whether validator `v` checks transaction `tx` before answering (honest validators,
    /// liars and colluders on a valid transaction do; lazy, crashed and colluders on a planted
    /// invalid one do not).
    fn checks_before_answering(&self, round: &Round<'_>, v: u32, tx: u32) -> bool {
        match self.roster.members[v as usize].fault {
            None | Some(Behaviour::Liar) => true,
            Some(Behaviour::Colluder) => !round.txs.planted(tx),
            Some(Behaviour::Lazy) | Some(Behaviour::Crash) => false,
        }
    }

    /// One validator's asks of a round, in ask order: it checks the transactions its
    /// behaviour checks, their signatures in batches of its own (never pooled with another
    /// validator's), and answers each.
    fn answer_all(
        &self,
        round: &Round<'_>,
        v: u32,
        txs: &[u32],
        stats: &mut BatchStats,
    ) -> Vec<Answer> {
        let checks: Vec<bool> = txs
            .iter()
            .map(|&tx| self.checks_before_answering(round, v, tx))
            .collect();
        let checked: Vec<(u32, &SignedContract)> = txs
            .iter()
            .zip(&checks)
            .filter(|&(_, &c)| c)
            .map(|(&tx, _)| (tx, round.txs.contract(tx)))
            .collect();
        let verdicts = round
            .checks
            .validate_batched(&checked, self.params.signature_batch, stats);
        let mut honest = verdicts.into_iter();
        txs.iter()
            .zip(checks)
            .map(|(&tx, checks)| {
                let verdict = if checks { honest.next() } else { None };
                self.answer(round, v, tx, verdict)
            })
            .collect()
    }

    /// What validator `v` answers about transaction `tx` given its own check's verdict
    /// (`None` when it did not check).
    fn answer(&self, round: &Round<'_>, v: u32, tx: u32, honest: Option<Verdict>) -> Answer {
        let node = &self.roster.members[v as usize];
        let (verdict, worked) = match (node.fault, honest) {
            (Some(Behaviour::Crash), _) => {
                return Answer {
                    proof: None,
                    worked: false,
                };
            }
            (Some(Behaviour::Liar), Some(Verdict::Valid)) => (Verdict::Invalid(LIE_REASON), true),
            (Some(Behaviour::Liar), Some(Verdict::Invalid(_))) => (Verdict::Valid, true),
            (_, Some(verdict)) => (verdict, true),
            (_, None) => (Verdict::Valid, false), // lazy, or a colluder on a planted invalid
        };
        if node.slow
            && Rng::stream(
                self.params.seed,
                &[STREAM_SLOW, round.period, u64::from(tx), u64::from(v)],
            )
            .chance_ppm(self.params.mix.slow_miss_ppm)
        {
            // Checked, but the proof arrives after the period.
            return Answer {
                proof: None,
                worked,
            };
        }
        let id = round.txs.contract(tx).id().0;
        let tag = hmac::sign(
            &node.key,
            &proof_message(round.period, tx, &id, verdict.code(), v),
        );
        let mut t = [0u8; 32];
        t.copy_from_slice(tag.as_ref());
        Answer {
            proof: Some(Proof {
                tx,
                validator: v,
                verdict,
                tag: t,
            }),
            worked,
        }
    }
}

impl ValidatorPool for RayonPool {
    fn validate(
        &mut self,
        input: &PeriodInput<'_>,
        asks: &[Ask],
        stats: &mut BatchStats,
    ) -> Result<Vec<Answer>, PoolError> {
        Ok(self.answer_round(&Round::of(input), asks, stats))
    }
}

impl RayonPool {
    /// Every ask of `round` answered on the current rayon pool, in ask order.
    pub fn answer_round(
        &self,
        round: &Round<'_>,
        asks: &[Ask],
        stats: &mut BatchStats,
    ) -> Vec<Answer> {
        // Validators work in parallel, each on its own asks in ask order; no shared state but
        // read-only inputs. Answers go back in ask order.
        let mut order: Vec<usize> = (0..asks.len()).collect();
        order.sort_by_key(|&i| asks[i].validator); // stable: ask order per validator
        let groups: Vec<&[usize]> = order
            .chunk_by(|&a, &b| asks[a].validator == asks[b].validator)
            .collect();
        let this = self;
        let answered: Vec<(Vec<Answer>, BatchStats)> = groups
            .par_iter()
            .map(|group| {
                let v = asks[group[0]].validator;
                let txs: Vec<u32> = group.iter().map(|&i| asks[i].tx).collect();
                let mut stats = BatchStats::default();
                (this.answer_all(round, v, &txs, &mut stats), stats)
            })
            .collect();
        let none = Answer {
            proof: None,
            worked: false,
        };
        let mut answers = vec![none; asks.len()];
        for (group, (group_answers, group_stats)) in groups.iter().zip(answered) {
            stats.add(&group_stats);
            for (&i, answer) in group.iter().zip(group_answers) {
                answers[i] = answer;
            }
        }
        answers
    }
}
