//! Consensus variants behind one trait, so that IPOW and plain PoW (and later others) run the
//! same workload through the same pipeline and report the same metrics.
//!
//! A variant receives one period's pending transactions and returns a decision for each
//! (accepted, rejected or undecided, with the instant it was decided) and the sealed block of
//! the accepted ones. Decisions and roots must depend only on the seed and the inputs, never on
//! the thread count (tested on 1, 2 and 7 threads).

pub mod ipow;
pub mod model;
pub mod pool;
pub mod pow;
pub mod proof;

use crate::market::priority::PriorityRule;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::contract::block::BlockHeader;
use crate::crypto::merkle::Hash;
use crate::crypto::verify::BatchStats;
use crate::market::rules::Workload;
use crate::validate::{Checks, Verdict};

/// What a variant decided about one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Valid by consensus; goes into the block.
    Accepted,
    /// Invalid by consensus.
    Rejected,
    /// No agreement this period; carried to the next.
    Undecided,
}

/// One transaction's decision in a period.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    /// Index into the workload's transactions.
    pub tx: u32,
    /// What was decided.
    pub outcome: Outcome,
    /// The agreed verdict (for decided transactions).
    pub verdict: Option<Verdict>,
    /// Validators asked for this transaction this period.
    pub validators_asked: u32,
    /// When it was decided (or given up on).
    pub at: Instant,
}

/// Time spent in each named stage of a period.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StageTimes {
    /// O2: handing transactions to applicants.
    pub assign: Duration,
    /// W2: validators checking transactions.
    pub validate: Duration,
    /// O3: collecting and counting proofs.
    pub tally: Duration,
    /// O4: Merkle root, certificate, and for PoW the nonce search.
    pub seal: Duration,
    /// O1: the period's congestion context (measured by the pipeline, not the variant).
    pub congestion: Duration,
    /// Recording the sealed period in the store (`ipow run --store`), syncs included.
    pub record: Duration,
    /// Settling the accepted contracts on the ledger, after commit.
    pub settle: Duration,
}

impl StageTimes {
    /// Adds another period's times.
    pub fn add(&mut self, other: &StageTimes) {
        self.assign += other.assign;
        self.validate += other.validate;
        self.tally += other.tally;
        self.seal += other.seal;
        self.congestion += other.congestion;
        self.record += other.record;
        self.settle += other.settle;
    }
}

/// Work done in a period.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Work {
    /// Validations actually performed (checks run), over all validators.
    pub validations: u64,
    /// Proofs requested but never answered (crashed validators), reassigned after the timeout.
    pub timeouts: u64,
    /// Nonces tried (PoW).
    pub hashes: u64,
    /// How the validators' signature checks were batched.
    pub signatures: BatchStats,
}

impl Work {
    /// Adds another period's work.
    pub fn add(&mut self, other: &Work) {
        self.validations += other.validations;
        self.timeouts += other.timeouts;
        self.hashes += other.hashes;
        self.signatures.add(&other.signatures);
    }
}

/// A block sealed at the end of a period.
#[derive(Clone, Debug)]
pub struct SealedBlock {
    /// Its header (nonce included).
    pub header: BlockHeader,
    /// Indices of its transactions, in block order.
    pub transactions: Vec<u32>,
}

/// One period's input.
pub struct PeriodInput<'a> {
    /// The period number.
    pub period: u64,
    /// Height of the block to seal.
    pub height: u64,
    /// Hash of the previous block.
    pub prev_hash: Hash,
    /// Pending transactions (workload indices), in arrival order.
    pub pending: &'a [u32],
    /// The workload (transactions and ground truth).
    pub workload: &'a Workload,
    /// What validators check against.
    pub checks: &'a Checks<'a>,
}

/// One period's output.
pub struct PeriodOutput {
    /// A decision for every pending transaction, in the order of `pending`.
    pub decisions: Vec<Decision>,
    /// The sealed block of the accepted transactions.
    pub block: SealedBlock,
    /// Stage times.
    pub stages: StageTimes,
    /// Work done.
    pub work: Work,
    /// IPOW: every proof counted this period (tags checked), in arrival order; empty for PoW.
    /// The engine drops them after the period; tests and audits read them.
    pub proofs: Vec<proof::Proof>,
}

/// A consensus variant.
pub trait Consensus {
    /// Short name: `ipow` or `pow`.
    fn name(&self) -> &'static str;
    /// Runs one period; fails only when the validator tier as a whole fails.
    fn run_period(&mut self, input: &PeriodInput<'_>) -> Result<PeriodOutput, pool::PoolError>;
    /// The priorities this variant publishes for the coming period (congestion curtailment
    /// and block order use them).
    fn priority_rule(&self) -> PriorityRule {
        PriorityRule::default()
    }
    /// Variant-specific figures for the report (validators' work and priority, hash rate...).
    fn extra_report(&self) -> serde_json::Value;
    /// CPU seconds spent in other processes for this variant (a validator tier across
    /// processes) since its first period; the run's own process is measured by the pipeline.
    fn remote_cpu_seconds(&self) -> f64 {
        0.0
    }
}
