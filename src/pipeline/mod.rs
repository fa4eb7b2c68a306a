//! The pipeline that runs a consensus variant over a workload, period after period, and
//! measures it: `ipow run`.
//!
//! Load: closed-loop saturation (every transaction submitted at the start, periods of at most
//! `period_txs` taken in arrival order) or open-loop (`rate`): transaction i is due at i / rate
//! seconds, a period takes what has arrived, and latency is measured from the *intended* send
//! time, so a backlog shows up as latency instead of hiding behind a slow sender (coordinated
//! omission). Undecided transactions go back to the head of the queue.
//!
//! One period, one call per stage: admit ([`admit`]), O1's congestion context
//! ([`crate::validate::congestion`]), assign, validate, tally and seal (the variant,
//! [`crate::consensus`]), record (the store, [`crate::chain::store`]), count ([`metrics`]),
//! settle ([`settle`]). [`Pipeline`] is the one way to run it: every command, the simulator,
//! stress and the benches build one.
//!
//! Every figure in [`RunReport`] is computed from per-transaction records and the variants'
//! stage timers; nothing is estimated.

// Transaction indices are u32: a workload holds at most `rules::MAX_TRANSACTIONS`.
#![allow(clippy::cast_possible_truncation)]

pub mod admit;
pub mod metrics;
pub mod settle;

pub use admit::{Load, RateStep};
pub use metrics::{
    BlockSummary, CongestionSummary, Expectation, Latency, Pace, RunReport, SlotCongestion,
    StageSeconds, TxRecord, process_cpu_seconds,
};

use std::time::Instant;

use serde::Serialize;

use crate::chain::sign::BlockSigner;
use crate::chain::store::{StoreError, StoreWriter};
use crate::consensus::ipow::{Ipow, IpowParams};
use crate::consensus::pool::ValidatorPool;
use crate::consensus::pow::{Pow, PowParams};
use crate::consensus::{Consensus, PeriodInput, PeriodOutput};
use crate::crypto::merkle::Hash;
use crate::crypto::secret::NodeSecret;
use crate::grid::placement::GridMarket;
use crate::market::rules::Workload;
use crate::validate::congestion::{self, SlotBase};
use crate::validate::{Checks, CongestionStage, NoCongestionStage};
use admit::Arrivals;
use metrics::{Clocks, Tally};
use settle::{PeriodSettler, SettleError};

/// Which variant, with its parameters.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "consensus", rename_all = "snake_case")]
pub enum VariantConfig {
    /// Improved Proof of Work.
    Ipow(IpowParams),
    /// Plain proof of work.
    Pow(PowParams),
}

/// How to run.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// The variant.
    pub variant: VariantConfig,
    /// Most transactions in one period.
    pub period_txs: usize,
    /// How transactions arrive.
    pub load: Load,
}

impl RunConfig {
    /// The variant with its main parameters, for tables ("ipow q=3 n=64", "pow 20 bits").
    pub fn variant_name(&self) -> String {
        match &self.variant {
            VariantConfig::Ipow(p) => format!("ipow q={} n={}", p.quorum, p.validators),
            VariantConfig::Pow(p) => format!("pow {} bits", p.difficulty_bits),
        }
    }
}

impl VariantConfig {
    /// The same variant with its node keys from `secret` (IPOW's validators' MAC keys; PoW has
    /// none): a run that records a store.
    pub fn with_secret(self, secret: &NodeSecret) -> Self {
        match self {
            VariantConfig::Ipow(p) => VariantConfig::Ipow(p.with_secret(secret.clone())),
            pow @ VariantConfig::Pow(_) => pow,
        }
    }
}

/// The store's genesis record for a run of `variant` among `members`, with the node keys
/// `secret` derives, and the signer of its blocks. An IPOW variant must take its validators'
/// MAC keys from the same secret ([`VariantConfig::with_secret`]), or its proofs could not be
/// checked against the genesis's commitment.
pub fn genesis(
    members: Vec<crate::chain::StoredMember>,
    market: crate::chain::store::StoredMarket,
    variant: &VariantConfig,
    secret: &NodeSecret,
) -> Result<(crate::chain::store::Genesis, BlockSigner), String> {
    use crate::chain::store::StoredConsensus;
    if let VariantConfig::Ipow(p) = variant
        && p.node_secret() != *secret
    {
        return Err(
            "the IPOW validators' MAC keys come from another node secret than the \
                    store's"
                .into(),
        );
    }
    let signer = BlockSigner::new(secret);
    let genesis = crate::chain::store::Genesis {
        slaves_per_master: crate::chain::SLAVES_PER_MASTER,
        consensus: match variant {
            VariantConfig::Ipow(p) => StoredConsensus::Ipow {
                seed: p.seed,
                validators: p.validators,
                quorum: p.quorum,
                extra: p.extra_max,
            },
            VariantConfig::Pow(p) => StoredConsensus::Pow {
                difficulty: p.difficulty_bits,
            },
        },
        nodes: signer.keys(),
        market,
        members,
    };
    Ok((genesis, signer))
}

/// A committed period, as an observer sees it (after record and settle).
pub struct Committed<'p> {
    /// The period.
    pub period: u64,
    /// The consortium head after it, when the run records to a store.
    pub head: Option<Hash>,
    /// The workload it came from.
    pub workload: &'p Workload,
    /// Its accepted transactions (workload indices), in decision order.
    pub accepted: &'p [u32],
    /// The transactions it took up (workload indices, submission order).
    pub pending: &'p [u32],
    /// On a grid, the period's published congestion context (a validator's congestion check).
    pub congestion: Option<&'p congestion::PeriodCongestion<'p>>,
}

/// A stage failed in a period; the run stopped there (a store keeps every earlier period).
#[derive(Debug, thiserror::Error)]
#[error("period {period}")]
pub struct PeriodError {
    /// The period.
    pub period: u64,
    /// What failed.
    #[source]
    pub source: StageError,
}

/// The stage that failed, with its own error.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The validator tier failed (a lost validator process): no round could end.
    #[error("the validate stage")]
    Validate(#[source] crate::consensus::pool::PoolError),
    /// The record stage could not write the period to the store.
    #[error("the record stage")]
    Record(#[source] StoreError),
    /// The settle stage refused the period.
    #[error("the settle stage")]
    Settle(#[source] SettleError),
}

/// One run of a variant over a workload: the builder every caller uses. `run` drives the
/// periods on the current rayon pool.
pub struct Pipeline<'a> {
    config: &'a RunConfig,
    workload: &'a Workload,
    grid: Option<&'a GridMarket>,
    store: Option<&'a mut StoreWriter>,
    settler: Option<&'a mut PeriodSettler>,
    observer: Option<&'a mut dyn FnMut(&Committed<'_>)>,
    base: Option<&'a mut SlotBase>,
    validators: Option<Box<dyn ValidatorPool + 'a>>,
}

impl<'a> Pipeline<'a> {
    /// `config` over `workload`, without a grid, a store or a ledger.
    pub fn new(config: &'a RunConfig, workload: &'a Workload) -> Self {
        Self {
            config,
            workload,
            grid: None,
            store: None,
            settler: None,
            observer: None,
            base: None,
            validators: None,
        }
    }

    /// Runs IPOW's validators on `pool` (another process's, a cluster's) instead of the
    /// in-process rayon pool; PoW ignores it. The pool must answer for the validators the
    /// variant's parameters describe.
    pub fn validators(mut self, pool: Box<dyn ValidatorPool + 'a>) -> Self {
        self.validators = Some(pool);
        self
    }

    /// Checks line congestion on `grid` when given: each period the supervision node computes
    /// the congestion context (O1) and every validator checks its transaction against it.
    pub fn grid(mut self, grid: Option<&'a GridMarket>) -> Self {
        self.grid = grid;
        self
    }

    /// Records every sealed period in `store` before its transactions count as committed
    /// (their commit instants are taken after; its time is the `record` stage).
    pub fn record(mut self, store: &'a mut StoreWriter) -> Self {
        self.store = Some(store);
        self
    }

    /// Settles each period's accepted transactions on `settler`'s ledger after they commit
    /// (its time is the `settle` stage); the report carries its summary.
    pub fn settle(mut self, settler: &'a mut PeriodSettler) -> Self {
        self.settler = Some(settler);
        self
    }

    /// Keeps the committed trades' base flows per delivery slot in `base` (which may hold those
    /// of an earlier run over the same market: `stress` carries it from batch to batch). Without
    /// it, a run starts from an empty grid.
    pub fn committed_flows(mut self, base: &'a mut SlotBase) -> Self {
        self.base = Some(base);
        self
    }

    /// Calls `observer` after each period is committed and settled.
    pub fn on_period(mut self, observer: &'a mut dyn FnMut(&Committed<'_>)) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Runs every period until everything is decided or nothing more can move;
    /// `progress(decided, total)` is called after each period.
    pub fn run(mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<RunReport, PeriodError> {
        let mut variant: Box<dyn Consensus + 'a> =
            match (&self.config.variant, self.validators.take()) {
                (VariantConfig::Ipow(p), Some(pool)) => Box::new(Ipow::with_pool(p.clone(), pool)),
                (VariantConfig::Ipow(p), None) => Box::new(Ipow::new(p.clone())),
                (VariantConfig::Pow(p), _) => Box::new(Pow::new(p.clone())),
            };
        let workload = self.workload;
        let total = workload.transactions.len() as u64;
        let mut tally = Tally::new(workload, &self.config.load);
        let mut arrivals = Arrivals::new(workload, &self.config.load);
        let mut prev_hash = [0u8; 32];
        let cpu_start = process_cpu_seconds();
        let start = Instant::now();
        let mut period = 0u64;
        let period_txs = self.config.period_txs.max(1);
        let mut own_base = SlotBase::new();
        let base = self.base.take().unwrap_or(&mut own_base);
        while let Some(pending) = arrivals.next_period(start, period_txs, &mut tally) {
            let at = Period {
                period,
                prev_hash,
                start,
            };
            let step = self
                .period(variant.as_mut(), &mut tally, &at, &pending, base)
                .map_err(|source| PeriodError { period, source })?;
            prev_hash = step.hash;
            period += 1;
            progress(tally.decided_total, total);
            // Carried transactions go first next period; stop when nothing can move any more.
            if step.decided_now == 0 && arrivals.all_arrived() {
                break;
            }
            arrivals.carry(&step.carried);
        }
        let clocks = Clocks {
            wall: start.elapsed().as_secs_f64(),
            // Every process's CPU: a validator tier across processes reports its own.
            cpu: process_cpu_seconds() - cpu_start + variant.remote_cpu_seconds(),
        };
        let mut report = metrics::report(
            self.config,
            workload,
            variant.as_ref(),
            self.grid.is_some(),
            tally,
            clocks,
        );
        report.settlement = self.settler.map(|s| s.summary().clone());
        Ok(report)
    }

    /// One period after admission, one call per stage: O1's congestion context; the variant's
    /// assign, validate, tally and seal; record; count; settle; observe.
    fn period(
        &mut self,
        variant: &mut dyn Consensus,
        tally: &mut Tally,
        at: &Period,
        pending: &[u32],
        base: &mut SlotBase,
    ) -> Result<PeriodStep, StageError> {
        let workload = self.workload;
        let t = Instant::now();
        let context = self.grid.map(|g| {
            let local = Checks {
                rules: &workload.rules,
                congestion: &NoCongestionStage,
            };
            congestion::period(g, workload, pending, &local, variant.priority_rule(), base)
        });
        let context_time = t.elapsed();
        if let Some(pc) = &context {
            tally.congestion.add(&pc.curtailment);
        }
        let checks = Checks {
            rules: &workload.rules,
            congestion: match &context {
                Some(pc) => pc as &dyn CongestionStage,
                None => &NoCongestionStage,
            },
        };
        let input = PeriodInput {
            period: at.period,
            height: tally.blocks.len() as u64,
            prev_hash: at.prev_hash,
            pending,
            workload,
            checks: &checks,
        };
        let out = variant.run_period(&input).map_err(StageError::Validate)?;
        let t = Instant::now();
        let head = self.record_period(&out)?;
        tally.stages.record += t.elapsed();
        let committed = Instant::now();
        tally.stages.add(&out.stages);
        tally.stages.congestion += context_time;
        tally.work.add(&out.work);
        let decided = tally.decisions(&out, at.start, committed, workload, checks.congestion);
        commit_flows(context.as_ref(), workload, &decided.accepted, base);
        let t = Instant::now();
        if let Some(settler) = self.settler.as_deref_mut() {
            settler
                .settle(at.period, workload, &decided.accepted)
                .map_err(StageError::Settle)?;
        }
        tally.stages.settle += t.elapsed();
        let hash = tally.seal(&out.block.header, out.work.signatures);
        if let Some(observe) = self.observer.as_deref_mut() {
            observe(&Committed {
                period: at.period,
                head,
                workload,
                accepted: &decided.accepted,
                pending,
                congestion: context.as_ref(),
            });
        }
        Ok(PeriodStep {
            decided_now: decided.decided_now,
            hash,
            carried: decided.carried,
        })
    }

    /// The record stage: the period's blocks on every chain, durable before it returns.
    fn record_period(&mut self, out: &PeriodOutput) -> Result<Option<Hash>, StageError> {
        match self.store.as_deref_mut() {
            Some(store) => store
                .append_period(self.workload, out)
                .map(Some)
                .map_err(StageError::Record),
            None => Ok(None),
        }
    }
}

/// The committed trades become firm flows of their delivery slots (on a grid); slots whose
/// delivery time the market's window has passed, which can take no more trades, are dropped.
fn commit_flows(
    pc: Option<&congestion::PeriodCongestion<'_>>,
    workload: &Workload,
    accepted: &[u32],
    base: &mut SlotBase,
) {
    let Some(pc) = pc else {
        return;
    };
    base.prune_before(workload.rules.window.0.slot(workload.rules.slot_minutes));
    let trades: Vec<_> = accepted
        .iter()
        .filter_map(|&tx| pc.trade(tx, &workload.transactions[tx as usize]))
        .collect();
    base.commit(&trades, pc.buses());
}

/// Where a period stands in its run.
struct Period {
    period: u64,
    prev_hash: Hash,
    start: Instant,
}

/// What a period leaves for the next.
struct PeriodStep {
    decided_now: u64,
    hash: Hash,
    carried: Vec<u32>,
}
