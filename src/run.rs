//! The pipeline that runs a consensus variant over a workload, period after period, and
//! measures it: `ipow run`.
//!
//! Load: closed-loop saturation (every transaction submitted at the start, periods of at most
//! `period_txs` taken in arrival order) or open-loop (`rate`): transaction i is due at i / rate
//! seconds, a period takes what has arrived, and latency is measured from the *intended* send
//! time, so a backlog shows up as latency instead of hiding behind a slow sender (coordinated
//! omission). Undecided transactions go back to the head of the queue.
//!
//! Every figure in [`RunReport`] is computed here from per-transaction records and the
//! variants' stage timers; nothing is estimated.

// Transaction indices are u32: a workload holds at most `workload::MAX_TRANSACTIONS`.
#![allow(clippy::cast_possible_truncation)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::congestion::GridMarket;
use crate::consensus::ipow::{Behaviour, Ipow, IpowParams};
use crate::consensus::pow::{Pow, PowParams};
use crate::consensus::{Consensus, Outcome, PeriodInput, StageTimes, Work};
use crate::validate::{Checks, CongestionStage, NoCongestionStage, Verdict};
use crate::workload::{Truth, Workload};

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

/// How transactions arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Load {
    /// Every transaction submitted at the start (saturation).
    ClosedLoop,
    /// Transaction i is due at i / rate seconds.
    OpenLoop {
        /// Transactions per second, positive.
        rate: f64,
    },
    /// A rate curve over time: each step's rate holds from its `from_s` until the next step's
    /// (the last holds to the end). Steps in increasing `from_s`, the first at 0; a rate of 0
    /// pauses arrivals; the last rate is positive.
    Curve {
        /// The steps.
        steps: Vec<RateStep>,
    },
}

/// One step of a rate curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStep {
    /// When the step starts, seconds from the start of the run.
    pub from_s: f64,
    /// Transactions per second from then on.
    pub rate: f64,
}

impl Load {
    /// Checks the parameters; the message names what is wrong.
    pub fn check(&self) -> Result<(), String> {
        let ok = |r: f64| r.is_finite() && r >= 0.0;
        match self {
            Load::ClosedLoop => Ok(()),
            Load::OpenLoop { rate } if ok(*rate) && *rate > 0.0 => Ok(()),
            Load::OpenLoop { rate } => Err(format!("rate {rate} must be a positive number")),
            Load::Curve { steps } => {
                let Some(last) = steps.last() else {
                    return Err("a curve needs at least one step".into());
                };
                if steps[0].from_s != 0.0 {
                    return Err("the first step must start at from_s 0".into());
                }
                if let Some(k) = (0..steps.len()).find(|&k| {
                    !ok(steps[k].rate)
                        || !steps[k].from_s.is_finite()
                        || (k > 0 && steps[k].from_s <= steps[k - 1].from_s)
                }) {
                    return Err(format!(
                        "steps[{k}]: rates must be finite and non-negative, from_s increasing"
                    ));
                }
                if last.rate <= 0.0 {
                    return Err("the last step's rate must be positive".into());
                }
                Ok(())
            }
        }
    }

    /// When transaction `i` is due, from the start of the run.
    #[allow(clippy::cast_precision_loss)]
    pub fn intended(&self, i: usize) -> Duration {
        let i = i as f64;
        match self {
            Load::ClosedLoop => Duration::ZERO,
            Load::OpenLoop { rate } if *rate > 0.0 => Duration::from_secs_f64(i / rate),
            Load::OpenLoop { .. } => Duration::ZERO,
            Load::Curve { steps } => {
                let mut before = 0.0;
                for (k, st) in steps.iter().enumerate() {
                    let end = steps.get(k + 1).map_or(f64::INFINITY, |n| n.from_s);
                    let here = st.rate * (end - st.from_s);
                    if i < before + here {
                        return Duration::from_secs_f64(st.from_s + (i - before) / st.rate);
                    }
                    before += here;
                }
                Duration::ZERO
            }
        }
    }

    /// A short description for tables.
    pub fn describe(&self) -> String {
        match self {
            Load::ClosedLoop => "closed loop (saturation)".into(),
            Load::OpenLoop { rate } => format!("open loop at {rate} tx/s"),
            Load::Curve { steps } => format!("rate curve of {} steps", steps.len()),
        }
    }
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

/// The store's genesis record for a run of `variant` among `members`.
pub fn genesis(
    members: Vec<crate::chain::StoredMember>,
    variant: &VariantConfig,
) -> crate::store::Genesis {
    use crate::store::StoredConsensus;
    crate::store::Genesis {
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
        members,
    }
}

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
    pub settlement: Option<crate::settlement::SettlementSummary>,
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

/// The congestion contexts of a run, summed over periods.
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
    /// Largest loading (|flow| / rateA) of any scheme before curtailment.
    pub max_loading_before: f64,
    /// Distinct branches overloaded before curtailment, over the run.
    pub branches_overloaded: Vec<usize>,
    /// Branches left overloaded that no trade could relieve (by period count).
    pub residual_overloads: u64,
}

impl CongestionSummary {
    fn add(&mut self, c: &crate::congestion::Curtailment) {
        if !c.overloaded_before.is_empty() {
            self.periods_overloaded += 1;
        }
        self.scheme_trades += c.scheme as u64;
        self.curtailed_trades += c.curtailed as u64;
        self.cuts += c.cuts.len() as u64;
        for &(k, l) in &c.overloaded_before {
            self.max_loading_before = self.max_loading_before.max(l);
            if let Err(at) = self.branches_overloaded.binary_search(&k) {
                self.branches_overloaded.insert(at, k);
            }
        }
        self.residual_overloads += c.residual.len() as u64;
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

/// Probability that more than half of `q` independent draws are dishonest when each is with
/// probability `f`.
pub fn dishonest_majority_probability(q: u32, f: f64) -> f64 {
    let mut total = 0.0;
    for k in (q / 2 + 1)..=q {
        total += binomial(q, k) * f.powi(k as i32) * (1.0 - f).powi((q - k) as i32);
    }
    total
}

/// Probability that IPOW decides a transaction the dishonest way: `n` validators of which `bad`
/// are dishonest (and all answer), drawn without replacement; decided once at least `q` have
/// answered with a strict majority; otherwise one more is asked, up to `bound` in all.
pub fn protocol_wrong_probability(n: u32, bad: u32, q: u32, bound: u32) -> f64 {
    // p[b] = probability of having drawn `b` dishonest among the first k, still undecided.
    let bound = bound.min(n);
    let mut p = vec![0.0f64; bound as usize + 1];
    p[0] = 1.0;
    let mut wrong = 0.0;
    for k in 0..bound {
        let mut next = vec![0.0f64; bound as usize + 1];
        for b in 0..=k {
            let mass = p[b as usize];
            if mass == 0.0 {
                continue;
            }
            let bad_left = f64::from(bad.saturating_sub(b));
            let p_bad = bad_left / f64::from(n - k);
            next[b as usize + 1] += mass * p_bad;
            next[b as usize] += mass * (1.0 - p_bad);
        }
        let k1 = k + 1;
        if k1 >= q {
            for b in 0..=k1 {
                let good = k1 - b;
                if 2 * b.max(good) > k1 {
                    if b > good {
                        wrong += next[b as usize];
                    }
                    next[b as usize] = 0.0;
                }
            }
        }
        p = next;
    }
    wrong
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// CPU seconds (user + system) of this process so far, from /proc/self/stat (clock ticks of
/// 1/100 s, Linux's USER_HZ); 0 where that file does not exist.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `config` over `workload` on the current rayon pool. `progress(done, total)` is called
/// after each period.
pub fn run(
    config: &RunConfig,
    workload: &Workload,
    progress: &mut dyn FnMut(u64, u64),
) -> RunReport {
    run_with(config, workload, None, progress)
}

/// As [`run`], with line congestion checked on a grid when `grid` is given: each period the
/// supervision node computes the congestion context (O1) and every validator checks its
/// transaction against it.
pub fn run_with(
    config: &RunConfig,
    workload: &Workload,
    grid: Option<&GridMarket>,
    progress: &mut dyn FnMut(u64, u64),
) -> RunReport {
    let Ok(report) = run_recorded(
        config,
        workload,
        grid,
        Hooks {
            record: &mut |_, _| Ok::<(), std::convert::Infallible>(()),
            settle: &mut |_, _, _| Ok(()),
        },
        progress,
    );
    report
}

/// Persists a sealed period.
pub type RecordHook<'h, E> =
    &'h mut dyn FnMut(&Workload, &crate::consensus::PeriodOutput) -> Result<(), E>;
/// Settles a period's accepted transactions.
pub type SettleHook<'h, E> = &'h mut dyn FnMut(u64, &Workload, &[u32]) -> Result<(), E>;

/// What a run does with each sealed period besides counting it.
pub struct Hooks<'h, E> {
    /// Persists the sealed period (the durable store) before its transactions count as
    /// committed: their commit instants are taken after it returns, and its time is the
    /// `record` stage.
    pub record: RecordHook<'h, E>,
    /// Settles the period's accepted transactions (indices into the workload, in decision
    /// order) after they are committed; its time is the `settle` stage.
    pub settle: SettleHook<'h, E>,
}

/// As [`run_with`], with each sealed period handed to `hooks`. An error from a hook stops the
/// run.
pub fn run_recorded<E>(
    config: &RunConfig,
    workload: &Workload,
    grid: Option<&GridMarket>,
    hooks: Hooks<'_, E>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RunReport, E> {
    let Hooks { record, settle } = hooks;
    let mut variant: Box<dyn Consensus> = match &config.variant {
        VariantConfig::Ipow(p) => Box::new(Ipow::new(p.clone())),
        VariantConfig::Pow(p) => Box::new(Pow::new(p.clone())),
    };
    let local = Checks {
        rules: &workload.rules,
        congestion: &NoCongestionStage,
    };
    let mut congestion = CongestionSummary::default();
    let total = workload.transactions.len();
    let period_txs = config.period_txs.max(1);
    let intended = |i: usize| -> Duration { config.load.intended(i) };
    let mut records: Vec<TxRecord> = (0..total)
        .map(|i| TxRecord {
            tx: i as u32,
            submitted_ns: nanos(intended(i)),
            decided_ns: None,
            committed_ns: None,
            outcome: Outcome::Undecided,
            verdict: None,
            validators_asked: 0,
            truth: workload.truth[i],
            honest_valid: None,
        })
        .collect();
    let mut commit_hist = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_histogram());
    let mut decide_hist = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable_histogram());
    let mut stages = StageTimes::default();
    let mut work = Work::default();
    let mut blocks = Vec::new();
    let mut queue: VecDeque<u32> = VecDeque::new();
    let mut arrived = 0usize;
    let mut prev_hash = [0u8; 32];
    let mut decided_total = 0u64;
    let mut seen: std::collections::HashSet<crate::contract::ContractId> =
        std::collections::HashSet::with_capacity(total);
    let cpu_start = process_cpu_seconds();
    let start = Instant::now();
    let mut period = 0u64;
    loop {
        // Admit arrivals (O1 updates T). A transaction whose contract id was already submitted in
        // this run is refused here as a replay: validators check sequence numbers against the
        // watermark of what was committed before the run, which cannot see a copy submitted
        // during it.
        let now = start.elapsed();
        while arrived < total && intended(arrived) <= now {
            let tx = arrived as u32;
            if seen.insert(workload.transactions[arrived].id()) {
                queue.push_back(tx);
            } else {
                let r = &mut records[arrived];
                let decided_ns = nanos(start.elapsed());
                r.outcome = Outcome::Rejected;
                r.verdict = Some(Verdict::Invalid(crate::validate::Reason::Replay));
                r.honest_valid = Some(false);
                r.decided_ns = Some(decided_ns);
                let _ = decide_hist.record(decided_ns.saturating_sub(r.submitted_ns) / 1000);
                decided_total += 1;
            }
            arrived += 1;
        }
        if queue.is_empty() {
            if arrived == total {
                break;
            }
            std::thread::sleep(intended(arrived).saturating_sub(start.elapsed()));
            continue;
        }
        let take = queue.len().min(period_txs);
        let pending: Vec<u32> = queue.drain(..take).collect();
        let t = Instant::now();
        let period_congestion =
            grid.map(|g| g.period(workload, &pending, &local, variant.priority_rule()));
        let context_time = t.elapsed();
        if let Some(pc) = &period_congestion {
            congestion.add(&pc.curtailment);
        }
        let checks = Checks {
            rules: &workload.rules,
            congestion: match &period_congestion {
                Some(pc) => pc,
                None => &NoCongestionStage,
            },
        };
        let input = PeriodInput {
            period,
            height: blocks.len() as u64,
            prev_hash,
            pending: &pending,
            workload,
            checks: &checks,
        };
        let out = variant.run_period(&input);
        let t = Instant::now();
        record(workload, &out)?;
        stages.record += t.elapsed();
        let committed = Instant::now();
        stages.add(&out.stages);
        stages.congestion += context_time;
        work.add(&out.work);
        let mut carried = Vec::new();
        let mut accepted = Vec::new();
        let mut decided_now = 0u64;
        for d in &out.decisions {
            let r = &mut records[d.tx as usize];
            r.validators_asked += d.validators_asked;
            match d.outcome {
                Outcome::Undecided => carried.push(d.tx),
                outcome => {
                    decided_now += 1;
                    let decided_ns = nanos(d.at.duration_since(start));
                    let tx = d.tx as usize;
                    r.honest_valid = Some(
                        workload.truth[tx] == Truth::Valid
                            && checks.congestion.allows(d.tx, &workload.transactions[tx]),
                    );
                    r.outcome = outcome;
                    r.verdict = d.verdict;
                    r.decided_ns = Some(decided_ns);
                    let _ = decide_hist.record(decided_ns.saturating_sub(r.submitted_ns) / 1000);
                    if outcome == Outcome::Accepted {
                        accepted.push(d.tx);
                        let committed_ns = nanos(committed.duration_since(start));
                        r.committed_ns = Some(committed_ns);
                        let _ =
                            commit_hist.record(committed_ns.saturating_sub(r.submitted_ns) / 1000);
                    }
                }
            }
        }
        decided_total += decided_now;
        let t = Instant::now();
        settle(period, workload, &accepted)?;
        stages.settle += t.elapsed();
        let header = out.block.header;
        prev_hash = header.hash();
        blocks.push(BlockSummary {
            height: header.height,
            period: header.period,
            transactions: header.leaf_count,
            merkle_root: hex::encode(header.merkle_root),
            consensus_root: hex::encode(header.consensus_root),
            hash: hex::encode(prev_hash),
            nonce: header.nonce,
        });
        period += 1;
        progress(decided_total, total as u64);
        // Carried transactions go first next period; stop when nothing can move any more.
        let stalled = decided_now == 0 && arrived == total;
        for &tx in carried.iter().rev() {
            queue.push_front(tx);
        }
        if stalled {
            break;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_start;
    Ok(report(
        config,
        workload,
        variant.as_ref(),
        grid.map(|_| congestion),
        records,
        RunTotals {
            wall,
            cpu,
            stages,
            work,
            commit_hist,
            decide_hist,
            blocks,
        },
    ))
}

struct RunTotals {
    wall: f64,
    cpu: f64,
    stages: StageTimes,
    work: Work,
    commit_hist: Histogram<u64>,
    decide_hist: Histogram<u64>,
    blocks: Vec<BlockSummary>,
}

/// `Histogram::new(3)` only fails for a precision above 5.
fn unreachable_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new(1).expect("precision 1 is valid")
}

fn report(
    config: &RunConfig,
    workload: &Workload,
    variant: &dyn Consensus,
    congestion: Option<CongestionSummary>,
    records: Vec<TxRecord>,
    t: RunTotals,
) -> RunReport {
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
    let seed = workload.params.seed;
    RunReport {
        variant: variant.name().to_owned(),
        config: config.clone(),
        threads: rayon::current_num_threads(),
        seed,
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
        wall_seconds: t.wall,
        committed_per_s: if t.wall > 0.0 {
            accepted as f64 / t.wall
        } else {
            0.0
        },
        validations_per_s: if t.wall > 0.0 {
            t.work.validations as f64 / t.wall
        } else {
            0.0
        },
        latency_commit: Latency::from_histogram(&t.commit_hist),
        latency_decide: Latency::from_histogram(&t.decide_hist),
        stages_seconds: t.stages.into(),
        work: t.work,
        cpu_seconds: t.cpu,
        cpu_seconds_per_committed: if accepted > 0 {
            t.cpu / accepted as f64
        } else {
            0.0
        },
        congestion_stage: match &congestion {
            Some(_) => crate::congestion::STAGE_NAME.to_owned(),
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
