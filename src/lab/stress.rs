//! `ipow stress`: a generated market grown over sizes, each size through the whole pipeline
//! (generate and sign, validate by consensus and seal, settle on the ledger), with its
//! throughput, latency percentiles, peak memory and CPU time.
//!
//! A size is processed in *batches* of at most `batch` contracts, so memory stays bounded by
//! the batch and the ledger, not by the market: each batch is generated (in parallel, a pure
//! function of the seed and the contract index), submitted at once to the consensus variant
//! (closed loop, periods of `period_txs`), and its accepted contracts are settled from their
//! meter readings, one ledger period per consensus period's worth. Latency is measured from the
//! batch's submission. Peak memory is the process's peak resident set (VmHWM), reset before
//! each size where the kernel allows it (`/proc/self/clear_refs`).

use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::base::amount::Money;
use crate::consensus::Outcome;
use crate::grid::placement::GridMarket;
use crate::ledger::SettlementParams;
use crate::market::generator::Market;
use crate::market::rules::WorkloadParams;
use crate::pipeline::settle::{PeriodSettler, SettleError};
use crate::pipeline::{Latency, Pipeline, RunConfig, process_cpu_seconds};

/// What to stress.
#[derive(Clone, Debug, Serialize)]
pub struct StressConfig {
    /// Market sizes in contracts, run in this order.
    pub sizes: Vec<u64>,
    /// The market's parameters (`contracts` is replaced by each size).
    pub market: WorkloadParams,
    /// The consensus run of each batch.
    pub run: RunConfig,
    /// Most contracts generated and held at once.
    pub batch: u64,
    /// Every account's opening balance.
    pub opening_balance: Money,
}

/// Seconds per pipeline stage.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StressStages {
    /// Key derivation, limits and placement.
    pub setup: f64,
    /// Generating and signing contracts.
    pub generate: f64,
    /// Consensus: validation, tally, sealing (and the congestion context on a grid).
    pub consensus: f64,
    /// Settlement of accepted contracts.
    pub settle: f64,
}

/// One size's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StressRow {
    /// Contracts.
    pub contracts: u64,
    /// Accepted (committed) by consensus.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Undecided.
    pub undecided: u64,
    /// Planted invalid.
    pub planted_invalid: u64,
    /// Accepted though planted invalid.
    pub wrong_accepts: u64,
    /// Settled on the ledger.
    pub settled: u64,
    /// Failed settlement for lack of funds (nothing of them applied).
    pub settle_failed: u64,
    /// The ledger's total was the same before and after every period.
    pub conserved: bool,
    /// Wall seconds per stage.
    pub stages: StressStages,
    /// Wall seconds, all stages.
    pub wall_seconds: f64,
    /// Contracts through the whole pipeline per second of wall time.
    pub contracts_per_s: f64,
    /// Committed contracts per second of wall time.
    pub committed_per_s: f64,
    /// Submission (batch start) to commit, accepted contracts.
    pub latency_commit: Latency,
    /// CPU seconds (user + system, all threads).
    pub cpu_seconds: f64,
    /// Peak resident memory during this size, bytes (VmHWM).
    pub peak_rss_bytes: u64,
    /// Whether the peak was reset before this size (else it is the process's peak so far).
    pub peak_rss_reset: bool,
    /// Signature verifications performed (validations x 3).
    pub validations: u64,
    /// On a grid: trades in every period's scheme, and of them those the congestion rule
    /// curtailed (each slot on the trades committed for it in earlier periods and batches).
    pub scheme_trades: u64,
    /// Of `scheme_trades`, curtailed.
    pub curtailed: u64,
}

/// Which stage a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Generating and signing.
    Generate,
    /// Consensus.
    Consensus,
    /// Settlement.
    Settle,
}

/// Why a stress run stopped.
#[derive(Debug, thiserror::Error)]
pub enum StressError {
    /// Settlement stopped: an amount overflowed, the ledger refused a period (an invariant
    /// broke, or an id settled twice), or money was created or lost.
    #[error("size {size}: settlement: {source}")]
    Settle {
        /// The size.
        size: u64,
        /// What went wrong.
        source: SettleError,
    },
    /// A run stopped in a period.
    #[error("size {size}: {source}")]
    Run {
        /// The size.
        size: u64,
        /// What went wrong.
        source: crate::pipeline::PeriodError,
    },
}

/// Resets the peak resident set (Linux: `echo 5 > /proc/self/clear_refs`); false if refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub use crate::base::peak_rss_bytes;

/// Runs one size on the current rayon pool. `progress(step, done, total)` after each step.
pub fn stress_size(
    config: &StressConfig,
    size: u64,
    grid: Option<&GridMarket>,
    progress: &mut dyn FnMut(Step, u64, u64),
) -> Result<StressRow, StressError> {
    let peak_rss_reset = reset_peak_rss();
    let cpu0 = process_cpu_seconds();
    let start = Instant::now();
    let mut params = config.market.clone();
    params.contracts = usize::try_from(size).unwrap_or(usize::MAX);
    let market = Market::new(params, grid);
    let addresses: Vec<_> = market.members.iter().map(|m| m.address).collect();
    let mut settler = PeriodSettler::new(
        &addresses,
        config.opening_balance,
        SettlementParams::default(),
    );
    let mut stages = StressStages {
        setup: start.elapsed().as_secs_f64(),
        ..StressStages::default()
    };
    let mut latency = Histogram::<u64>::new(3).ok();
    let mut row = StressRow {
        contracts: size,
        conserved: true,
        stages,
        peak_rss_reset,
        ..StressRow::default()
    };
    // The committed trades' flows per slot, carried from batch to batch.
    let mut base = crate::validate::congestion::SlotBase::new();
    let mut period = 0u64;
    let mut at = 0u64;
    while at < size {
        let end = (at + config.batch.max(1)).min(size);
        let t = Instant::now();
        let workload = market.batch(at..end);
        stages.generate += t.elapsed().as_secs_f64();
        progress(Step::Generate, end, size);

        let t = Instant::now();
        let report = Pipeline::new(&config.run, &workload)
            .grid(grid)
            .committed_flows(&mut base)
            .run(&mut |_, _| {})
            .map_err(|source| StressError::Run { size, source })?;
        stages.consensus += t.elapsed().as_secs_f64();
        progress(Step::Consensus, end, size);
        row.accepted += report.accepted;
        row.rejected += report.rejected;
        row.undecided += report.undecided;
        row.planted_invalid += report.planted_invalid;
        row.wrong_accepts += report.wrong_accepts;
        row.validations += report.work.validations;
        if let Some(c) = &report.congestion {
            row.scheme_trades += c.scheme_trades;
            row.curtailed += c.curtailed_trades;
        }

        let t = Instant::now();
        let mut accepted: Vec<u32> = Vec::new();
        for r in &report.records {
            if r.outcome == Outcome::Accepted {
                if let (Some(h), Some(c)) = (latency.as_mut(), r.committed_ns) {
                    let _ = h.record(c.saturating_sub(r.submitted_ns) / 1000);
                }
                accepted.push(r.tx);
            }
        }
        drop(report);
        // One ledger period per consensus period's worth of accepted contracts.
        for part in accepted.chunks(config.run.period_txs.max(1)) {
            let result = settler
                .settle(period, &workload, part)
                .map_err(|source| StressError::Settle { size, source })?;
            row.settled += result.applied_count() as u64;
            row.settle_failed += result.failed.len() as u64;
            period += 1;
        }
        stages.settle += t.elapsed().as_secs_f64();
        progress(Step::Settle, end, size);
        at = end;
    }
    row.conserved = settler.summary().conserved;
    let wall = start.elapsed().as_secs_f64();
    row.stages = stages;
    row.wall_seconds = wall;
    row.contracts_per_s = rate(size, wall);
    row.committed_per_s = rate(row.accepted, wall);
    row.latency_commit = latency
        .as_ref()
        .map(Latency::from_histogram)
        .unwrap_or_default();
    row.cpu_seconds = process_cpu_seconds() - cpu0;
    row.peak_rss_bytes = peak_rss_bytes();
    Ok(row)
}

#[allow(clippy::cast_precision_loss)]
fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Sizes from `from` to `to`, growing tenfold, `to` included.
pub fn sizes(from: u64, to: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut s = from.max(1);
    while s <= to {
        out.push(s);
        s = s.saturating_mul(10);
    }
    if out.last() != Some(&to) && to >= from {
        out.push(to);
    }
    out
}
