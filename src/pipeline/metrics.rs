//! What a run measures: per-transaction records, HDR latency, stage times, work, blocks, CPU
//! time, and the report built from them beside the protocol's expectation.

// Transaction indices are u32: a workload holds at most `rules::MAX_TRANSACTIONS`.
#![allow(clippy::cast_possible_truncation)]

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{Load, RunConfig, VariantConfig};
use crate::consensus::ipow::Behaviour;
use crate::consensus::model::{dishonest_majority_probability, protocol_wrong_probability};
use crate::consensus::{Consensus, Outcome, PeriodOutput, StageTimes, Work};
use crate::contract::block::BlockHeader;
use crate::crypto::merkle::Hash;
use crate::market::rules::{Truth, Workload};
use crate::validate::{CongestionStage, NoCongestionStage, Verdict};

/// What happened to one transaction.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TxRecord {
    /// Workload index.
    pub tx: u32,
    /// Intended submission, nanoseconds from the start.
    pub submitted_ns: u64,
    /// Decided (accepted or rejected), nanoseconds from the start; absent if undecided.
    pub decided_ns: Option<u64>,
    /// Sealed in a block, nanoseconds from the start; accepted ones only.
    pub committed_ns: Option<u64>,
    /// Final outcome.
    pub outcome: Outcome,
    /// Agreed verdict.
    pub verdict: Option<Verdict>,
    /// Validators asked over all periods.
    pub validators_asked: u32,
    /// Ground truth.
    pub truth: Truth,
    /// What an honest validator answered in the period that decided it: valid when the contract
    /// is not planted invalid and the period's congestion rule allows it; absent if undecided.
    /// Wrong accepts and wrong rejects are measured against this, so a valid contract the rule
    /// curtails is a right rejection and its acceptance a wrong one.
    pub honest_valid: Option<bool>,
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }
}

/// A sealed block, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct BlockSummary {
    /// Height.
    pub height: u64,
    /// Period.
    pub period: u64,
    /// Contracts in it.
    pub transactions: u64,
    /// Merkle root, hex.
    pub merkle_root: String,
    /// Consensus commitment, hex.
    pub consensus_root: String,
    /// Block hash, hex.
    pub hash: String,
    /// Nonce (PoW).
    pub nonce: u64,
    /// How the period's signatures were verified (batches, bisection tests, single checks).
    pub signatures: crate::crypto::verify::BatchStats,
}

/// What theory expects from the Byzantine model, beside what was measured.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Expectation {
    /// Realized dishonest fraction (Byzantine validators / validators).
    pub dishonest_fraction: f64,
    /// Probability that a random quorum of q has a dishonest strict majority when each member
    /// is dishonest independently with that fraction (the binomial tail).
    pub dishonest_majority_probability: f64,
    /// The same for the protocol as it runs: validators drawn without replacement from the
    /// actual set, and a tie answered by asking one more, up to the bound
    /// ([`protocol_wrong_probability`]). Equal to the binomial tail for odd q and many validators.
    pub protocol_probability: f64,
    /// Expected wrong accepts under the protocol model, for behaviours that approve invalid
    /// transactions (liar, colluder, lazy).
    pub wrong_accepts: f64,
    /// Expected wrong rejects under the protocol model (liars only).
    pub wrong_rejects: f64,
}

/// How an open-loop run kept up with the load it was offered.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Pace {
    /// Offered transactions per second (the open loop's rate; a curve's mean rate up to its
    /// last arrival).
    pub offered_per_s: f64,
    /// Decided transactions per second, from the start to the last decision.
    pub decided_per_s: f64,
    /// When the last transaction was due, seconds after the start.
    pub last_due_s: f64,
    /// When the last decision came, seconds after the start.
    pub last_decided_s: f64,
    /// Decisions came at under 95% of the offered rate: the run fell behind its load.
    pub fell_behind: bool,
}

/// The pace of an open-loop or curve run; `None` for a closed loop (everything is due at once).
fn pace(load: &crate::pipeline::Load, records: &[TxRecord]) -> Option<Pace> {
    if matches!(load, crate::pipeline::Load::ClosedLoop) || records.is_empty() {
        return None;
    }
    let due = records.iter().map(|r| r.submitted_ns).max().unwrap_or(0) as f64 / 1e9;
    let decided: Vec<u64> = records.iter().filter_map(|r| r.decided_ns).collect();
    let last = decided.iter().copied().max().unwrap_or(0) as f64 / 1e9;
    let offered = match load {
        crate::pipeline::Load::OpenLoop { rate } => *rate,
        _ => per_second(records.len() as u64, due),
    };
    let decided_per_s = per_second(decided.len() as u64, last);
    Some(Pace {
        offered_per_s: offered,
        decided_per_s,
        last_due_s: due,
        last_decided_s: last,
        fell_behind: decided_per_s < 0.95 * offered,
    })
}

/// Everything `ipow run` reports.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Variant name.
    pub variant: String,
    /// The configuration.
    pub config: RunConfig,
    /// Worker threads.
    pub threads: usize,
    /// Workload seed.
    pub seed: u64,
    /// Transactions submitted.
    pub submitted: u64,
    /// Accepted (committed).
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Undecided at the end of the run.
    pub undecided: u64,
    /// Planted invalid transactions.
    pub planted_invalid: u64,
    /// Decided transactions an honest validator rejects in the deciding period (planted invalid,
    /// replayed in the run, or curtailed by the congestion rule): the denominator of the
    /// wrong-accept rate.
    pub honest_invalid: u64,
    /// Decided transactions an honest validator accepts: the denominator of the wrong-reject rate.
    pub honest_valid: u64,
    /// Accepted although an honest validator rejects them.
    pub wrong_accepts: u64,
    /// Rejected although an honest validator accepts them.
    pub wrong_rejects: u64,
    /// Theory beside the measurement.
    pub expected: Expectation,
    /// Wall time of the consensus run (workload generation excluded).
    pub wall_seconds: f64,
    /// An open-loop run's pace against its offered load (absent for a closed loop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<Pace>,
    /// Committed transactions per second of wall time.
    pub committed_per_s: f64,
    /// Validations per second of wall time.
    pub validations_per_s: f64,
    /// Submission to commit, accepted transactions.
    pub latency_commit: Latency,
    /// Submission to decision, decided transactions.
    pub latency_decide: Latency,
    /// Seconds per stage, summed over periods.
    pub stages_seconds: StageSeconds,
    /// Work.
    pub work: Work,
    /// The signature acceptance rule.
    pub signature_rule: &'static str,
    /// The curve backend the signature equations ran on (this machine's, not the run's).
    pub curve_backend: crate::crypto::verify::Backend,
    /// CPU seconds (user + system, all threads) of the consensus run.
    pub cpu_seconds: f64,
    /// CPU seconds per committed transaction.
    pub cpu_seconds_per_committed: f64,
    /// The congestion stage in use.
    pub congestion_stage: String,
    /// Valid contracts rejected by consensus for congestion (curtailed, or generated without
    /// the grid and overloading a line alone): right rejections, not wrong rejects.
    pub curtailed: u64,
    /// The supervision node's congestion contexts, summed over periods (with a grid).
    pub congestion: Option<CongestionSummary>,
    /// The settlement stage, when the run settles (`ipow run`: always).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settlement: Option<crate::pipeline::settle::SettlementSummary>,
    /// Sealed blocks.
    pub blocks: Vec<BlockSummary>,
    /// Variant-specific figures.
    pub variant_report: serde_json::Value,
    /// Per-transaction records (not in the JSON summary; for CSV and tests).
    #[serde(skip)]
    pub records: Vec<TxRecord>,
}

/// Seconds per stage.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StageSeconds {
    /// Assign.
    pub assign: f64,
    /// Validate.
    pub validate: f64,
    /// Tally.
    pub tally: f64,
    /// Seal.
    pub seal: f64,
    /// O1's congestion context (flows of the scheme and the curtailment cuts).
    pub congestion: f64,
    /// Recording sealed periods in the store, syncs included (0 without `--store`).
    pub record: f64,
    /// Settling accepted contracts on the ledger (0 when the run does not settle).
    pub settle: f64,
}

/// The congestion contexts of a run, summed over periods and delivery slots.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CongestionSummary {
    /// Periods whose scheme overloaded at least one branch.
    pub periods_overloaded: u64,
    /// Trades in all schemes.
    pub scheme_trades: u64,
    /// Trades the rule curtailed.
    pub curtailed_trades: u64,
    /// Curtailment rounds (published cuts).
    pub cuts: u64,
    /// Largest loading (|flow| / rateA) of any scheme on its base before curtailment.
    pub max_loading_before: f64,
    /// Distinct branches overloaded before curtailment, over the run.
    pub branches_overloaded: Vec<usize>,
    /// Branches left overloaded that no trade could relieve (by period and slot).
    pub residual_overloads: u64,
    /// Distinct branches the committed base alone overloaded, over the run.
    pub branches_overloaded_by_base: Vec<usize>,
    /// Delivery slot length (minutes).
    pub slot_minutes: u32,
    /// (period, slot) pairs with pending trades: slots touched, summed over periods.
    pub slots_touched: u64,
    /// Distinct delivery slots with pending trades, over the run.
    pub slots: Vec<SlotCongestion>,
    /// Over every overloaded branch of every period and slot, the committed base's share of
    /// its flow before curtailment: mean and largest (0 when nothing overloaded).
    pub base_share_mean: f64,
    /// The largest such share.
    pub base_share_max: f64,
    #[serde(skip)]
    base_share_sum: f64,
    #[serde(skip)]
    base_share_count: u64,
}

/// One delivery slot over a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SlotCongestion {
    /// The slot (delivery time / slot length).
    pub slot: u32,
    /// When it starts.
    pub starts: crate::base::domain::DeliveryTime,
    /// Scheme trades for it, over every period.
    pub scheme_trades: u64,
    /// Of them, curtailed.
    pub curtailed: u64,
}

impl CongestionSummary {
    pub(super) fn add(&mut self, all: &crate::validate::congestion::SlotCurtailments) {
        if all
            .slots
            .iter()
            .any(|s| !s.curtailment.overloaded_before.is_empty())
        {
            self.periods_overloaded += 1;
        }
        for s in &all.slots {
            let c = &s.curtailment;
            self.slots_touched += 1;
            self.scheme_trades += c.scheme as u64;
            self.curtailed_trades += c.curtailed as u64;
            self.cuts += c.cuts.len() as u64;
            let at = match self.slots.binary_search_by_key(&s.slot, |x| x.slot) {
                Ok(i) => i,
                Err(i) => {
                    self.slots.insert(
                        i,
                        SlotCongestion {
                            slot: s.slot,
                            starts: crate::base::domain::DeliveryTime(
                                s.slot.saturating_mul(self.slot_minutes),
                            ),
                            ..SlotCongestion::default()
                        },
                    );
                    i
                }
            };
            self.slots[at].scheme_trades += c.scheme as u64;
            self.slots[at].curtailed += c.curtailed as u64;
            for &(k, l) in &c.overloaded_before {
                self.max_loading_before = self.max_loading_before.max(l);
                insert_sorted(&mut self.branches_overloaded, k);
            }
            for &k in &c.overloaded_by_base {
                insert_sorted(&mut self.branches_overloaded_by_base, k);
            }
            for &share in &c.base_share {
                self.base_share_sum += share;
                self.base_share_count += 1;
                self.base_share_max = self.base_share_max.max(share);
            }
            self.residual_overloads += c.residual.len() as u64;
        }
        self.base_share_mean = if self.base_share_count == 0 {
            0.0
        } else {
            self.base_share_sum / self.base_share_count as f64
        };
    }

    /// The share of scheme trades curtailed (0 with none).
    pub fn curtailed_share(&self) -> f64 {
        if self.scheme_trades == 0 {
            0.0
        } else {
            self.curtailed_trades as f64 / self.scheme_trades as f64
        }
    }

    /// The `n` slots with the most curtailed trades ("18:00 890 of 991", most first, ties to the
    /// earlier slot), joined by "; " with "; ..." when more had some; "none" when none did.
    pub fn most_curtailed(&self, n: usize) -> String {
        let mut worst: Vec<&SlotCongestion> =
            self.slots.iter().filter(|s| s.curtailed > 0).collect();
        if worst.is_empty() {
            return "none".to_owned();
        }
        worst.sort_by(|a, b| b.curtailed.cmp(&a.curtailed).then(a.slot.cmp(&b.slot)));
        let most: Vec<String> = worst
            .iter()
            .take(n)
            .map(|s| format!("{} {} of {}", s.starts, s.curtailed, s.scheme_trades))
            .collect();
        most.join("; ") + if worst.len() > n { "; ..." } else { "" }
    }
}

fn insert_sorted(list: &mut Vec<usize>, k: usize) {
    if let Err(at) = list.binary_search(&k) {
        list.insert(at, k);
    }
}

impl From<StageTimes> for StageSeconds {
    fn from(s: StageTimes) -> Self {
        Self {
            assign: s.assign.as_secs_f64(),
            validate: s.validate.as_secs_f64(),
            tally: s.tally.as_secs_f64(),
            seal: s.seal.as_secs_f64(),
            congestion: s.congestion.as_secs_f64(),
            record: s.record.as_secs_f64(),
            settle: s.settle.as_secs_f64(),
        }
    }
}

pub use crate::base::process_cpu_seconds;

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What a run has counted so far, period by period.
pub(super) struct Tally {
    pub(super) records: Vec<TxRecord>,
    pub(super) commit_hist: Histogram<u64>,
    pub(super) decide_hist: Histogram<u64>,
    pub(super) stages: StageTimes,
    pub(super) work: Work,
    pub(super) blocks: Vec<BlockSummary>,
    pub(super) congestion: CongestionSummary,
    pub(super) decided_total: u64,
}

/// One period's decisions, as the queue and the settle stage need them.
pub(super) struct PeriodTally {
    /// Undecided transactions, in decision order: first in the queue next period.
    pub(super) carried: Vec<u32>,
    /// Accepted transactions, in decision order.
    pub(super) accepted: Vec<u32>,
    pub(super) decided_now: u64,
}

impl Tally {
    pub(super) fn new(workload: &Workload, load: &Load) -> Self {
        let records = (0..workload.transactions.len())
            .map(|i| TxRecord {
                tx: i as u32,
                submitted_ns: nanos(load.intended(i)),
                decided_ns: None,
                committed_ns: None,
                outcome: Outcome::Undecided,
                verdict: None,
                validators_asked: 0,
                truth: workload.truth[i],
                honest_valid: None,
            })
            .collect();
        Self {
            records,
            commit_hist: Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_histogram()),
            decide_hist: Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_histogram()),
            stages: StageTimes::default(),
            work: Work::default(),
            blocks: Vec::new(),
            congestion: CongestionSummary {
                slot_minutes: workload.rules.slot_minutes,
                ..CongestionSummary::default()
            },
            decided_total: 0,
        }
    }

    /// A copy of a contract id already submitted in this run, refused at admission.
    pub(super) fn refuse_replay(&mut self, tx: usize, decided_ns: u64) {
        let r = &mut self.records[tx];
        r.outcome = Outcome::Rejected;
        r.verdict = Some(Verdict::Invalid(crate::validate::Reason::Replay));
        r.honest_valid = Some(false);
        r.decided_ns = Some(decided_ns);
        let _ = self
            .decide_hist
            .record(decided_ns.saturating_sub(r.submitted_ns) / 1000);
        self.decided_total += 1;
    }

    /// Counts a recorded period's decisions: decided ones at their instant, accepted ones as
    /// committed at `committed` (after the record stage), each beside the honest verdict.
    pub(super) fn decisions(
        &mut self,
        out: &PeriodOutput,
        start: Instant,
        committed: Instant,
        workload: &Workload,
        congestion: &dyn CongestionStage,
    ) -> PeriodTally {
        let mut t = PeriodTally {
            carried: Vec::new(),
            accepted: Vec::new(),
            decided_now: 0,
        };
        for d in &out.decisions {
            let r = &mut self.records[d.tx as usize];
            r.validators_asked += d.validators_asked;
            if d.outcome == Outcome::Undecided {
                t.carried.push(d.tx);
                continue;
            }
            t.decided_now += 1;
            let decided_ns = nanos(d.at.duration_since(start));
            let tx = d.tx as usize;
            r.honest_valid = Some(
                workload.truth[tx] == Truth::Valid
                    && congestion.allows(d.tx, &workload.transactions[tx]),
            );
            r.outcome = d.outcome;
            r.verdict = d.verdict;
            r.decided_ns = Some(decided_ns);
            let _ = self
                .decide_hist
                .record(decided_ns.saturating_sub(r.submitted_ns) / 1000);
            if d.outcome == Outcome::Accepted {
                t.accepted.push(d.tx);
                let committed_ns = nanos(committed.duration_since(start));
                r.committed_ns = Some(committed_ns);
                let _ = self
                    .commit_hist
                    .record(committed_ns.saturating_sub(r.submitted_ns) / 1000);
            }
        }
        self.decided_total += t.decided_now;
        t
    }

    /// Links the sealed block after the previous one; returns its hash.
    pub(super) fn seal(
        &mut self,
        header: &BlockHeader,
        signatures: crate::crypto::verify::BatchStats,
    ) -> Hash {
        let hash = header.hash();
        self.blocks.push(BlockSummary {
            height: header.height,
            period: header.period,
            transactions: header.leaf_count,
            merkle_root: hex::encode(header.merkle_root),
            consensus_root: hex::encode(header.consensus_root),
            hash: hex::encode(hash),
            nonce: header.nonce,
            signatures,
        });
        hash
    }
}

/// The run's clocks at its end.
pub(super) struct Clocks {
    pub(super) wall: f64,
    pub(super) cpu: f64,
}

/// `Histogram::new(3)` only fails for a precision above 5.
fn unreachable_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new(1).expect("precision 1 is valid")
}

/// `n` per second of `wall` seconds; 0 for no time.
fn per_second(n: u64, wall: f64) -> f64 {
    if wall > 0.0 { n as f64 / wall } else { 0.0 }
}

pub(super) fn report(
    config: &RunConfig,
    workload: &Workload,
    variant: &dyn Consensus,
    with_grid: bool,
    t: Tally,
    clocks: Clocks,
) -> RunReport {
    let records = t.records;
    let congestion = with_grid.then_some(t.congestion);
    let count = |o: Outcome| records.iter().filter(|r| r.outcome == o).count() as u64;
    let (accepted, rejected, undecided) = (
        count(Outcome::Accepted),
        count(Outcome::Rejected),
        count(Outcome::Undecided),
    );
    let planted_invalid = workload.invalid_count() as u64;
    // Measured against the honest verdict of the deciding period: a valid contract curtailed by
    // the congestion rule is a right rejection, and accepting it is a wrong accept.
    let tally = |o: Outcome, honest: bool| {
        records
            .iter()
            .filter(|r| r.outcome == o && r.honest_valid == Some(honest))
            .count() as u64
    };
    let wrong_accepts = tally(Outcome::Accepted, false);
    let wrong_rejects = tally(Outcome::Rejected, true);
    let curtailed = records
        .iter()
        .filter(|r| {
            r.outcome == Outcome::Rejected
                && r.truth == Truth::Valid
                && r.honest_valid == Some(false)
        })
        .count() as u64;
    // Decided transactions an honest validator rejects (planted and curtailed) or accepts.
    let honest_invalid = records
        .iter()
        .filter(|r| r.honest_valid == Some(false))
        .count() as u64;
    let valid = records
        .iter()
        .filter(|r| r.honest_valid == Some(true))
        .count() as u64;
    let expected = match &config.variant {
        VariantConfig::Ipow(p) => {
            let f = f64::from(p.byzantine_count()) / f64::from(p.validators);
            let tail = dishonest_majority_probability(p.quorum, f);
            let exact = protocol_wrong_probability(
                p.validators,
                p.byzantine_count(),
                p.quorum,
                p.quorum + p.extra_max,
            );
            let planted_decided = records
                .iter()
                .filter(|r| r.honest_valid.is_some() && r.truth != Truth::Valid)
                .count() as u64;
            let (wa, wr) = match p.behaviour {
                Behaviour::Liar => (exact * honest_invalid as f64, exact * valid as f64),
                Behaviour::Colluder => (exact * planted_decided as f64, 0.0),
                Behaviour::Lazy => (exact * honest_invalid as f64, 0.0),
                Behaviour::Crash => (0.0, 0.0),
            };
            Expectation {
                dishonest_fraction: f,
                dishonest_majority_probability: tail,
                protocol_probability: exact,
                wrong_accepts: wa,
                wrong_rejects: wr,
            }
        }
        VariantConfig::Pow(_) => Expectation::default(),
    };
    RunReport {
        variant: variant.name().to_owned(),
        config: config.clone(),
        threads: rayon::current_num_threads(),
        seed: workload.params.seed,
        submitted: records.len() as u64,
        accepted,
        rejected,
        undecided,
        planted_invalid,
        honest_invalid,
        honest_valid: valid,
        wrong_accepts,
        wrong_rejects,
        expected,
        wall_seconds: clocks.wall,
        pace: pace(&config.load, &records),
        committed_per_s: per_second(accepted, clocks.wall),
        validations_per_s: per_second(t.work.validations, clocks.wall),
        latency_commit: Latency::from_histogram(&t.commit_hist),
        latency_decide: Latency::from_histogram(&t.decide_hist),
        stages_seconds: t.stages.into(),
        work: t.work,
        signature_rule: crate::crypto::verify::RULE,
        curve_backend: crate::crypto::verify::backend(),
        cpu_seconds: clocks.cpu,
        cpu_seconds_per_committed: if accepted > 0 {
            clocks.cpu / accepted as f64
        } else {
            0.0
        },
        congestion_stage: match &congestion {
            Some(_) => crate::validate::congestion::STAGE_NAME.to_owned(),
            None => NoCongestionStage.name().to_owned(),
        },
        curtailed,
        congestion,
        settlement: None,
        blocks: t.blocks,
        variant_report: variant.extra_report(),
        records,
    }
}
