//! Improved Proof of Work as the paper's Table 1 and Figure 4 describe it.
//!
//! One period, as the supervision node runs it:
//! - **O1** opens the period over the pending set T (Count = |T|).
//! - **W1/O2** (stage `assign`): idle validators apply in a seeded, shuffled cycle; each
//!   applicant is handed an open slot of a transaction chosen at random, never one it has
//!   validated before (each validator keeps its own record). Round 1 opens `quorum` slots per
//!   transaction.
//! - **W2** (stage `validate`): the validators (a [`ValidatorPool`]; in one process the
//!   [`RayonPool`]) check their transactions in parallel and return a proof Z(Tk, e) = (transaction, verdict, validator) authenticated by
//!   an HMAC-SHA256 tag under the key the validator shares with the supervisor. (A MAC, not a
//!   signature: an Ed25519 signature per proof would cost as much as the validation itself; the
//!   proofs are for the supervisor, and the block commits them.)
//! - **O3** (stage `tally`): the supervisor checks each tag and counts. A transaction with at
//!   least `quorum` proofs of which strictly more than half agree (valid or invalid) is decided
//!   and leaves T. Otherwise more validators are asked in the next round (the missing ones after
//!   a crash's timeout, or one more after a split), up to `quorum + extra_max` this period,
//!   after which it is undecided and carried to the next period.
//! - **O4** (stage `seal`): the accepted transactions, ordered by priority, are sealed into a
//!   block whose header commits their Merkle root and the root of the quorum certificate.
//!
//! Incentives: each validator's workload (validations performed) in a period becomes the
//! priority it earns for the next period. Validator v "owns" the participants whose address is
//! congruent to v modulo the validator count; a transaction's priority is the sum of its seller's
//! and purchaser's owners' priorities, and it orders inclusion in the block (highest first, then
//! by submission order) and congestion curtailment (lowest priority curtailed first; see
//! `congestion`).
//!
//! Byzantine validators (a seeded choice of round(fraction x N) of them) behave as `liar` (check,
//! then flip the verdict), `colluder` (approve every planted invalid transaction, check the
//! rest honestly), `lazy` (answer valid without checking) or `crash` (never answer).

// Transaction indices and per-transaction proof counts are u32: a workload holds at most
// `rules::MAX_TRANSACTIONS` (u32::MAX) transactions, checked where workloads are made.
#![allow(clippy::cast_possible_truncation)]

use super::pool::{Answer, Ask, LIE_REASON, PoolError, RayonPool, Roster, ValidatorPool};
use super::proof::{Proof, certificate_leaf, proof_message};
use crate::crypto::secret::NodeSecret;
use crate::market::priority::PriorityRule;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use ring::hmac;
use serde::Serialize;

use super::{
    Consensus, Decision, Outcome, PeriodInput, PeriodOutput, SealedBlock, StageTimes, Work,
};
use crate::base::rng::Rng;
use crate::contract::block::{BlockHeader, contract_root};
use crate::crypto::merkle::root_32;
use crate::crypto::verify::{BatchStats, DEFAULT_BATCH, check_batch};
use crate::validate::Verdict;

/// How a Byzantine validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Checks, then reports the opposite verdict.
    Liar,
    /// Approves every planted invalid transaction; honest otherwise.
    Colluder,
    /// Reports valid without checking.
    Lazy,
    /// Never answers.
    Crash,
}

impl Behaviour {
    /// Its name as in scenarios and flags.
    pub fn name(self) -> &'static str {
        match self {
            Self::Liar => "liar",
            Self::Colluder => "colluder",
            Self::Lazy => "lazy",
            Self::Crash => "crash",
        }
    }
}

impl std::str::FromStr for Behaviour {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "liar" => Ok(Self::Liar),
            "colluder" => Ok(Self::Colluder),
            "lazy" => Ok(Self::Lazy),
            "crash" => Ok(Self::Crash),
            other => Err(format!(
                "unknown behaviour {other:?}: expected liar, colluder, lazy or crash"
            )),
        }
    }
}

/// IPOW parameters.
#[derive(Clone, Debug, Serialize)]
pub struct IpowParams {
    /// Validators (4 to 10,000).
    pub validators: u32,
    /// Proofs needed before a transaction can be decided.
    pub quorum: u32,
    /// Validators that may be asked beyond the quorum in one period before a transaction is
    /// declared undecided.
    pub extra_max: u32,
    /// Fraction of validators that are Byzantine.
    pub byzantine_fraction: f64,
    /// How they misbehave.
    pub behaviour: Behaviour,
    /// Seed of the assignment draws and the Byzantine choice.
    pub seed: u64,
    /// The secret the validators' MAC keys come from (`None`: the public stand-in of a run
    /// that records nothing, [`NodeSecret::unrecorded`] of the seed). Never serialized.
    #[serde(skip)]
    pub secret: Option<NodeSecret>,
    /// Faults beside `byzantine_fraction`'s validators (the simulator draws a mix).
    #[serde(skip_serializing_if = "FaultMix::is_empty")]
    pub mix: FaultMix,
    /// Most signatures a validator verifies in one batch (whole contracts; at least one).
    pub signature_batch: usize,
}

/// Validators with faults beside the `byzantine_fraction` ones: further Byzantine validators of
/// other behaviours, and slow validators. All are chosen by the same seeded shuffle, after the
/// fraction's: no validator holds two faults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultMix {
    /// Further Byzantine validators: (behaviour, count).
    pub byzantine: Vec<(Behaviour, u32)>,
    /// Honest validators that are slow: each of their answers misses its period (a timeout
    /// the supervision node re-requests) with probability `slow_miss_ppm` / 1e6, drawn from
    /// the seed, the period, the transaction and the validator.
    pub slow: u32,
    /// The chance, per answer of a slow validator, that it is late, per million.
    pub slow_miss_ppm: u32,
}

impl FaultMix {
    /// No further faults.
    pub fn is_empty(&self) -> bool {
        self.byzantine.iter().all(|b| b.1 == 0) && self.slow == 0
    }

    /// Validators the mix takes.
    pub fn count(&self) -> u64 {
        self.byzantine.iter().map(|b| u64::from(b.1)).sum::<u64>() + u64::from(self.slow)
    }
}

impl IpowParams {
    /// Honest validators only (no Byzantine fraction, no fault mix).
    pub fn honest(validators: u32, quorum: u32, extra_max: u32, seed: u64) -> Self {
        Self {
            validators,
            quorum,
            extra_max,
            byzantine_fraction: 0.0,
            behaviour: Behaviour::Liar,
            seed,
            secret: None,
            mix: FaultMix::default(),
            signature_batch: DEFAULT_BATCH,
        }
    }

    /// The same validators with their MAC keys from `secret` (a run that records a store).
    pub fn with_secret(self, secret: NodeSecret) -> Self {
        Self {
            secret: Some(secret),
            ..self
        }
    }

    /// The secret the validators' MAC keys come from.
    pub fn node_secret(&self) -> NodeSecret {
        self.secret
            .clone()
            .unwrap_or_else(|| NodeSecret::unrecorded(self.seed))
    }

    /// The same validators verifying at most `signatures` signatures per batch.
    pub fn with_signature_batch(self, signatures: usize) -> Self {
        Self {
            signature_batch: signatures,
            ..self
        }
    }

    /// The same validators with a fraction of them Byzantine, behaving as `behaviour`.
    pub fn with_byzantine(self, byzantine_fraction: f64, behaviour: Behaviour) -> Self {
        Self {
            byzantine_fraction,
            behaviour,
            ..self
        }
    }

    /// Checks the ranges the engine relies on.
    pub fn check(&self) -> Result<(), String> {
        if !(4..=10_000).contains(&self.validators) {
            return Err(format!(
                "--validators {} is outside 4..=10000",
                self.validators
            ));
        }
        if self.quorum == 0 || self.quorum > self.validators {
            return Err(format!(
                "--quorum {} must be between 1 and the validator count {}",
                self.quorum, self.validators
            ));
        }
        if !(0.0..=1.0).contains(&self.byzantine_fraction) {
            return Err(format!(
                "--byzantine {} is outside 0..=1",
                self.byzantine_fraction
            ));
        }
        if u64::from(self.byzantine_count()) + self.mix.count() > u64::from(self.validators) {
            return Err(format!(
                "{} Byzantine and {} further faulty validators are more than the {} validators",
                self.byzantine_count(),
                self.mix.count(),
                self.validators
            ));
        }
        check_batch(self.signature_batch)?;
        if self.mix.slow_miss_ppm > 1_000_000 {
            return Err(format!(
                "slow_miss_ppm {} is above 1,000,000",
                self.mix.slow_miss_ppm
            ));
        }
        Ok(())
    }

    /// Number of Byzantine validators: the fraction of the count, rounded to nearest.
    pub fn byzantine_count(&self) -> u32 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let n = (self.byzantine_fraction * f64::from(self.validators)).round() as u32;
        n.min(self.validators)
    }
}

/// What the supervision node keeps about one validator.
#[derive(Default)]
struct Record {
    /// Every transaction this validator has validated (workload indices): never again.
    validated: HashSet<u32>,
    /// Validations performed this period.
    work_period: u64,
    /// Validations performed in all.
    work_total: u64,
    /// Priority earned in the previous period (its workload then).
    priority: u64,
}

const STREAM_ASSIGN: u64 = 12;

/// The IPOW variant: the supervision node and its validators.
pub struct Ipow<P: ValidatorPool = RayonPool> {
    params: IpowParams,
    /// The validators' keys (to check their tags) and faults (for the report).
    roster: Arc<Roster>,
    records: Vec<Record>,
    /// W2.
    pool: P,
    rounds_total: u64,
}

impl Ipow {
    /// The supervision node with its validators on the in-process pool.
    pub fn new(params: IpowParams) -> Self {
        let roster = Arc::new(Roster::new(&params));
        let pool = RayonPool::with_roster(params.clone(), Arc::clone(&roster));
        Self::on(params, roster, pool)
    }
}

impl<P: ValidatorPool> Ipow<P> {
    /// The supervision node with the validator tier `pool`, which must answer for the
    /// validators `params` describe.
    pub fn with_pool(params: IpowParams, pool: P) -> Self {
        let roster = Arc::new(Roster::new(&params));
        Self::on(params, roster, pool)
    }

    /// The supervision node knowing the validators by `roster`, with the tier `pool`.
    fn on(params: IpowParams, roster: Arc<Roster>, pool: P) -> Self {
        Self {
            roster,
            records: (0..params.validators).map(|_| Record::default()).collect(),
            pool,
            params,
            rounds_total: 0,
        }
    }

    /// Transactions the validators' records hold, in all (what they must never be asked
    /// again): at most q + extra per transaction carried to the next period.
    pub fn remembered(&self) -> usize {
        self.records.iter().map(|r| r.validated.len()).sum()
    }

    /// O2: hands each open slot (a position in `pending`) to the next idle applicant that has
    /// never validated that transaction. Returns (slot position, validator) pairs.
    fn assign(
        &mut self,
        input: &PeriodInput<'_>,
        round: u32,
        slots: &mut [u32],
    ) -> Vec<(u32, u32)> {
        let mut rng = Rng::stream(
            self.params.seed,
            &[STREAM_ASSIGN, input.period, u64::from(round)],
        );
        rng.shuffle(slots);
        let mut applicants: Vec<u32> = (0..self.params.validators).collect();
        rng.shuffle(&mut applicants);
        let mut cursor = 0usize;
        let mut out = Vec::with_capacity(slots.len());
        for &pos in slots.iter() {
            let tx = input.pending[pos as usize];
            let n = applicants.len();
            for step in 0..n {
                let v = applicants[(cursor + step) % n];
                if self.records[v as usize].validated.insert(tx) {
                    out.push((pos, v));
                    cursor = (cursor + step + 1) % n;
                    break;
                }
            }
        }
        out
    }
}

/// Per-transaction tally state within a period.
#[derive(Clone, Default)]
struct Tally {
    asked: u32,
    proofs: Vec<Proof>,
    decided: Option<(Outcome, Verdict)>,
}

/// A period's state across its rounds.
struct PeriodTally {
    tallies: Vec<Tally>,
    decided_at: Vec<Option<Instant>>,
    /// Proofs still to ask for, per pending transaction.
    need: Vec<u32>,
    stages: StageTimes,
    work: Work,
}

impl<P: ValidatorPool> Ipow<P> {
    /// One round: W1/O2 assign the open slots, W2 validate in parallel, O3 check tags and
    /// decide. `None` when no slot was open; else whether any slot was assigned.
    fn round(
        &mut self,
        input: &PeriodInput<'_>,
        round: u32,
        p: &mut PeriodTally,
    ) -> Result<Option<bool>, PoolError> {
        let mut slots: Vec<u32> = Vec::new();
        for (pos, &k) in p.need.iter().enumerate() {
            slots.extend(std::iter::repeat_n(pos as u32, k as usize));
        }
        if slots.is_empty() {
            return Ok(None);
        }
        // W1/O2.
        let t = Instant::now();
        let assignments = self.assign(input, round, &mut slots);
        for &(pos, _) in &assignments {
            p.tallies[pos as usize].asked += 1;
        }
        p.stages.assign += t.elapsed();
        // W2: the pool answers each ask, in ask order.
        let t = Instant::now();
        let asks: Vec<Ask> = assignments
            .iter()
            .map(|&(pos, validator)| Ask {
                tx: input.pending[pos as usize],
                validator,
            })
            .collect();
        let mut stats = BatchStats::default();
        let answers = self.pool.validate(input, &asks, &mut stats)?;
        p.work.signatures.add(&stats);
        p.stages.validate += t.elapsed();
        // O3: check tags, count, decide.
        let t = Instant::now();
        self.collect(input, &assignments, &answers, p);
        self.decide(p);
        p.stages.tally += t.elapsed();
        Ok(Some(!assignments.is_empty()))
    }

    /// O3: counts each answer's work and keeps each proof whose tag verifies.
    fn collect(
        &mut self,
        input: &PeriodInput<'_>,
        assignments: &[(u32, u32)],
        answers: &[Answer],
        p: &mut PeriodTally,
    ) {
        let none = Answer {
            proof: None,
            worked: false,
        };
        for (k, &(pos, v)) in assignments.iter().enumerate() {
            // A pool that answers fewer asks than it was given left the rest without a proof.
            let answer = answers.get(k).unwrap_or(&none);
            if answer.worked {
                let record = &mut self.records[v as usize];
                record.work_period += 1;
                record.work_total += 1;
                p.work.validations += 1;
            }
            // An answer for another validator or transaction than asked is no proof.
            let proof = answer
                .proof
                .filter(|p| p.validator == v && p.tx == input.pending[pos as usize]);
            match proof {
                Some(proof) => {
                    let id = input.workload.transactions[proof.tx as usize].id().0;
                    let msg = proof_message(
                        input.period,
                        proof.tx,
                        &id,
                        proof.verdict.code(),
                        proof.validator,
                    );
                    let key = &self.roster.members[proof.validator as usize].key;
                    if hmac::verify(key, &msg, &proof.tag).is_ok() {
                        p.tallies[pos as usize].proofs.push(proof);
                    }
                }
                None => p.work.timeouts += 1,
            }
        }
    }

    /// O3: decides each transaction with at least q proofs and a strict majority; asks again
    /// for missing proofs (one more on a split) up to q + extra, then gives up for the period.
    fn decide(&self, p: &mut PeriodTally) {
        let q = self.params.quorum;
        let bound = q.saturating_add(self.params.extra_max);
        let now = Instant::now();
        for (pos, tally) in p.tallies.iter_mut().enumerate() {
            p.need[pos] = 0;
            if tally.decided.is_some() || p.decided_at[pos].is_some() {
                continue;
            }
            let received = tally.proofs.len() as u32;
            let valid = tally.proofs.iter().filter(|p| p.verdict.is_valid()).count() as u32;
            let invalid = received - valid;
            if received >= q && 2 * valid.max(invalid) > received {
                let verdict = if valid > invalid {
                    Verdict::Valid
                } else {
                    majority_reason(&tally.proofs)
                };
                let outcome = if verdict.is_valid() {
                    Outcome::Accepted
                } else {
                    Outcome::Rejected
                };
                tally.decided = Some((outcome, verdict));
                p.decided_at[pos] = Some(now);
            } else if tally.asked < bound {
                // Missing proofs (timeouts) are re-requested; a split asks one more.
                let missing = q.saturating_sub(received);
                p.need[pos] = missing.max(1).min(bound - tally.asked);
            } else {
                p.decided_at[pos] = Some(now); // given up: undecided this period
            }
        }
    }

    /// Drops decided transactions from every validator's record: they are never assigned
    /// again, so only the period's undecided ones (carried to the next) need remembering. The
    /// records stay as large as the carried work, not q x every contract ever seen.
    fn forget_decided(&mut self, input: &PeriodInput<'_>, tallies: &[Tally]) {
        let carried: HashSet<u32> = tallies
            .iter()
            .zip(input.pending)
            .filter(|(t, _)| t.decided.is_none())
            .map(|(_, &tx)| tx)
            .collect();
        for record in &mut self.records {
            record.validated.retain(|tx| carried.contains(tx));
        }
    }

    /// O4: seals the accepted transactions, by priority then submission order; the header
    /// commits their ids and the quorum certificate.
    fn seal(&self, input: &PeriodInput<'_>, tallies: &[Tally]) -> (BlockHeader, Vec<u32>) {
        let rule = self.priority_rule();
        let mut accepted: Vec<(u64, u32, usize)> = Vec::new();
        for (pos, tally) in tallies.iter().enumerate() {
            if let Some((Outcome::Accepted, _)) = tally.decided {
                let tx = input.pending[pos];
                let c = &input.workload.transactions[tx as usize].contract;
                accepted.push((rule.of(c), tx, pos));
            }
        }
        accepted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let block_txs: Vec<u32> = accepted.iter().map(|a| a.1).collect();
        let contracts: Vec<_> = block_txs
            .iter()
            .map(|&i| input.workload.transactions[i as usize].clone())
            .collect();
        let certificate_leaves: Vec<[u8; 32]> = accepted
            .iter()
            .map(|&(_, tx, pos)| {
                certificate_leaf(
                    &input.workload.transactions[tx as usize].id().0,
                    &tallies[pos].proofs,
                )
            })
            .collect();
        let mut header = BlockHeader::seal(input.height, input.period, input.prev_hash, &contracts);
        debug_assert_eq!(header.merkle_root, contract_root(&contracts));
        header.consensus_root = root_32(&certificate_leaves);
        (header, block_txs)
    }
}

impl<P: ValidatorPool> Consensus for Ipow<P> {
    fn name(&self) -> &'static str {
        "ipow"
    }

    fn run_period(&mut self, input: &PeriodInput<'_>) -> Result<PeriodOutput, PoolError> {
        let count = input.pending.len();
        let mut p = PeriodTally {
            tallies: vec![Tally::default(); count],
            decided_at: vec![None; count],
            // O1: every pending transaction needs a quorum.
            need: vec![self.params.quorum; count],
            stages: StageTimes::default(),
            work: Work::default(),
        };
        for record in &mut self.records {
            record.work_period = 0;
        }
        let mut round = 0u32;
        // A round with open slots counts even when no idle validator could take one (then the
        // transactions stay as they are).
        while let Some(assigned_any) = self.round(input, round + 1, &mut p)? {
            round += 1;
            if !assigned_any {
                break;
            }
        }
        self.rounds_total += u64::from(round);
        let t = Instant::now();
        let (header, block_txs) = self.seal(input, &p.tallies);
        p.stages.seal += t.elapsed();
        // Incentives: this period's workload is next period's priority.
        for record in &mut self.records {
            record.priority = record.work_period;
        }
        self.forget_decided(input, &p.tallies);
        let decisions = p
            .tallies
            .iter()
            .enumerate()
            .map(|(pos, tally)| {
                let (outcome, verdict) = match tally.decided {
                    Some((o, v)) => (o, Some(v)),
                    None => (Outcome::Undecided, None),
                };
                Decision {
                    tx: input.pending[pos],
                    outcome,
                    verdict,
                    validators_asked: tally.asked,
                    at: p.decided_at[pos].unwrap_or_else(Instant::now),
                }
            })
            .collect();
        Ok(PeriodOutput {
            decisions,
            block: SealedBlock {
                header,
                transactions: block_txs,
            },
            stages: p.stages,
            work: p.work,
            proofs: p.tallies.into_iter().flat_map(|t| t.proofs).collect(),
        })
    }

    fn priority_rule(&self) -> PriorityRule {
        PriorityRule::new(self.records.iter().map(|n| n.priority).collect())
    }

    fn remote_cpu_seconds(&self) -> f64 {
        self.pool.remote_cpu_seconds()
    }

    fn extra_report(&self) -> serde_json::Value {
        let mut works: Vec<u64> = self.records.iter().map(|n| n.work_total).collect();
        works.sort_unstable();
        // Every validator, however many: the priority each earned is part of the report.
        let validators: Vec<serde_json::Value> = self
            .records
            .iter()
            .zip(&self.roster.members)
            .enumerate()
            .map(|(v, (n, m))| {
                serde_json::json!({
                    "validator": v,
                    "behaviour": m.fault.map_or(if m.slow { "slow" } else { "honest" }.to_owned(), |b| b.name().to_owned()),
                    "validations": n.work_total,
                    "priority_earned_last_period": n.priority,
                })
            })
            .collect();
        let mut report = serde_json::json!({
            "byzantine_validators": self.params.byzantine_count(),
            "rounds": self.rounds_total,
            "validations_per_validator": {
                "min": works.first(), "median": works.get(works.len() / 2), "max": works.last(),
            },
            "validators": validators,
        });
        // A tier across processes adds what crossed the wire; the in-process pool adds nothing.
        let tier = self.pool.report();
        if let (false, Some(map)) = (tier.is_null(), report.as_object_mut()) {
            map.insert("tier".into(), tier);
        }
        report
    }
}

/// The most common reason among the invalid proofs (ties to the lowest code).
fn majority_reason(proofs: &[Proof]) -> Verdict {
    let mut counts: Vec<(u8, u32, Verdict)> = Vec::new();
    for p in proofs.iter().filter(|p| !p.verdict.is_valid()) {
        match counts.iter_mut().find(|c| c.0 == p.verdict.code()) {
            Some(c) => c.1 += 1,
            None => counts.push((p.verdict.code(), 1, p.verdict)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts.first().map_or(Verdict::Invalid(LIE_REASON), |c| c.2)
}
