//! `ipow compare`: every case of a scenario on the same workload, in one process, repetitions
//! interleaved (A B A B ...) so drift of a shared machine falls on all cases alike; then the
//! figures the report is made of ([`Comparison::rows`], [`Comparison::summaries`]).
//!
//! Rendering is in [`crate::report`]; this module runs and computes, and every figure a report
//! prints comes from a [`RunReport`] of one run here.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::consensus::ipow::Behaviour;
use crate::consensus::model::protocol_wrong_probability;
use crate::consensus::pool::ValidatorPool;
use crate::grid::placement::GridMarket;
use crate::grid::{DcModel, Grid, GridError};
use crate::lab::scenario::{Case, Market, Scenario};
use crate::market::rules::{Workload, WorkloadParams};
use crate::pipeline::Pipeline;
use crate::pipeline::{RunReport, VariantConfig};

/// Why a comparison could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The grid.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// The dataset.
    #[error(transparent)]
    Dataset(#[from] crate::market::dataset::DatasetError),
    /// The market cannot be placed on the grid.
    #[error(transparent)]
    Placement(#[from] crate::grid::placement::PlacementError),
    /// A run stopped in a period.
    #[error(transparent)]
    Run(#[from] crate::pipeline::PeriodError),
    /// A case's validator processes could not start or connect.
    #[error("case {case}: its validator processes: {message}")]
    Tier {
        /// The case's label.
        case: String,
        /// Why.
        message: String,
    },
    /// A worker pool.
    #[error("cannot start {threads} worker threads: {message}")]
    Pool {
        /// Threads asked for.
        threads: usize,
        /// Why not.
        message: String,
    },
}

/// The machine and build a comparison ran on.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model (from /proc/cpuinfo).
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Physical memory in bytes (from /proc/meminfo; 0 where unknown).
    pub memory_bytes: u64,
    /// The operating system and architecture.
    pub os: String,
    /// The rustc that built this binary.
    pub rustc: String,
    /// The git revision this binary was built from ("-dirty" when the tree had changes).
    pub git_revision: String,
    /// ipow's version.
    pub ipow_version: String,
    /// The curve backend the signature equations run on.
    pub curve_backend: crate::crypto::verify::Backend,
    /// The 1, 5 and 15-minute load averages before the comparison started (`/proc/loadavg`).
    pub load_average_start: Option<[f64; 3]>,
    /// The same when it ended (its own runs count in it).
    pub load_average_end: Option<[f64; 3]>,
    /// Other work shared the machine: a 1-minute load over half the cores before the start, or
    /// over one and a half times the cores at the end. Figures are then slower and noisier.
    pub busy: bool,
}

/// The 1, 5 and 15-minute load averages, where the system gives them.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut v = text.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([v.next()??, v.next()??, v.next()??])
}

impl Machine {
    /// With the load averages before and after a comparison, and whether the machine was busy.
    pub fn with_load(self, start: Option<[f64; 3]>, end: Option<[f64; 3]>) -> Self {
        let cores = self.cores as f64;
        let busy =
            start.is_some_and(|l| l[0] > 0.5 * cores) || end.is_some_and(|l| l[0] > 1.5 * cores);
        Self {
            load_average_start: start,
            load_average_end: end,
            busy,
            ..self
        }
    }

    /// Reads this machine and build.
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| {
                let rest = l.strip_prefix("MemTotal:")?;
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kb| kb * 1024);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            rustc: env!("IPOW_RUSTC_VERSION").to_owned(),
            git_revision: env!("IPOW_GIT_REVISION").to_owned(),
            ipow_version: env!("CARGO_PKG_VERSION").to_owned(),
            curve_backend: crate::crypto::verify::backend(),
            load_average_start: None,
            load_average_end: None,
            busy: false,
        }
    }
}

/// What was compared, as the report's setup section states it.
#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    /// The scenario's name.
    pub scenario: String,
    /// What it is for.
    pub description: Option<String>,
    /// Where the scenario came from (a path, or "embedded").
    pub source: String,
    /// The grid (path or name), if any.
    pub grid: Option<String>,
    /// The market: generator parameters (of the first size) or a dataset path.
    pub market: serde_json::Value,
    /// The market seed.
    pub seed: u64,
    /// How transactions arrive.
    pub load: String,
    /// Most transactions per period.
    pub period_txs: usize,
    /// Repetitions of every case.
    pub repetitions: u32,
    /// How swept lists combined ("product" or "pairs").
    pub sweep: String,
    /// Parameters with more than one value.
    pub swept: Vec<String>,
    /// The case every ratio is taken to: the scenario's first.
    pub baseline: String,
    /// The machine.
    pub machine: Machine,
}

/// One run: a case in one repetition.
#[derive(Clone, Debug)]
pub struct Run {
    /// Index into [`Comparison::cases`].
    pub case: usize,
    /// Repetition, from 0.
    pub repetition: u32,
    /// Its report, with per-transaction records.
    pub report: RunReport,
}

/// A whole comparison.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// The setup.
    pub setup: Setup,
    /// The cases.
    pub cases: Vec<Case>,
    /// Every run, in the order they ran (repetition-major).
    pub runs: Vec<Run>,
    /// Contract ids of each market size's workload, by transaction index (for the CSV); a
    /// case's are `contract_ids[&case.contracts]`.
    pub contract_ids: BTreeMap<Option<usize>, Vec<crate::contract::ContractId>>,
}

/// One rayon pool per thread count the scenario's cases use.
fn pools_for(scenario: &Scenario) -> Result<BTreeMap<usize, rayon::ThreadPool>, CompareError> {
    let mut pools: BTreeMap<usize, rayon::ThreadPool> = BTreeMap::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for case in &scenario.cases {
        let threads = case.threads.unwrap_or(cores);
        if let std::collections::btree_map::Entry::Vacant(slot) = pools.entry(threads) {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("ipow-worker-{i}"))
                .build()
                .map_err(|e| CompareError::Pool {
                    threads,
                    message: e.to_string(),
                })?;
            slot.insert(pool);
        }
    }
    Ok(pools)
}

/// The validator tier of a case over several processes: called on the case's rayon pool before
/// each of its runs, with the case's index, the case, its workload and grid market; the pool it
/// returns answers for the case's validators (the CLI starts the processes).
pub type Tiers<'t> = dyn FnMut(usize, &Case, &Workload, Option<&GridMarket>) -> Result<Box<dyn ValidatorPool>, String>
    + Send
    + 't;

/// Case `k`'s workload and grid market, as [`execute`] makes them: what a validator process of
/// that case derives for itself.
pub fn case_workload(
    scenario: &Scenario,
    k: usize,
    grid: Option<&Grid>,
) -> Result<(Workload, Option<GridMarket>), CompareError> {
    let case = scenario.cases.get(k).ok_or_else(|| CompareError::Tier {
        case: format!("#{k}"),
        message: format!("the scenario has {} cases", scenario.cases.len()),
    })?;
    let (mut dataset, base_params) = market_of(scenario)?;
    let grid_market = grid_market_of(grid, &base_params)?;
    let workload = workload_of(scenario, case.contracts, &mut dataset, grid_market.as_ref())
        .ok_or_else(|| CompareError::Tier {
            case: case.label.clone(),
            message: "no workload".into(),
        })?;
    Ok((workload, grid_market))
}

/// The scenario's dataset (read once) and its market parameters.
fn market_of(
    scenario: &Scenario,
) -> Result<(Option<crate::market::dataset::Dataset>, WorkloadParams), CompareError> {
    Ok(match &scenario.market {
        Market::Dataset(d) => {
            let d = crate::market::dataset::read_any(d)?;
            let params = d.header.params.market.clone();
            (Some(d), params)
        }
        Market::Generated(p) => (None, p.clone()),
    })
}

fn grid_market_of(
    grid: Option<&Grid>,
    params: &WorkloadParams,
) -> Result<Option<GridMarket>, CompareError> {
    Ok(match grid {
        Some(g) => Some(GridMarket::place(
            DcModel::new(g.clone())?,
            params.sellers,
            params.purchasers,
        )?),
        None => None,
    })
}

/// The workload of a market size (`None`: the dataset's, taken once), on the current pool.
fn workload_of(
    scenario: &Scenario,
    contracts: Option<usize>,
    dataset: &mut Option<crate::market::dataset::Dataset>,
    grid_market: Option<&GridMarket>,
) -> Option<Workload> {
    Some(match (&scenario.market, contracts) {
        // A dataset's cases all have `contracts: None`: one workload, taken once.
        (Market::Dataset(_), _) => dataset.take()?.workload,
        (Market::Generated(p), Some(n)) => {
            let params = WorkloadParams {
                contracts: n,
                ..p.clone()
            };
            crate::market::generator::Market::new(params, grid_market).batch(0..n as u64)
        }
        (Market::Generated(p), None) => {
            crate::market::generator::Market::new(p.clone(), grid_market)
                .batch(0..p.contracts as u64)
        }
    })
}

/// Runs every case of `scenario`, repetitions interleaved, on `grid` when given (the
/// scenario's own, already read). `progress(done, total, label)` is called before each run;
/// `tiers` gives each run of a case over several processes its validator tier.
pub fn execute(
    scenario: &Scenario,
    source: &str,
    grid: Option<(&str, &Grid)>,
    progress: &mut dyn FnMut(usize, usize, &str),
    tiers: &mut Tiers<'_>,
) -> Result<Comparison, CompareError> {
    let load_start = load_average();
    // A dataset market is read once: its header gives the placement, its records the workload.
    let (mut dataset, base_params) = market_of(scenario)?;
    let grid_market = grid_market_of(grid.map(|(_, g)| g), &base_params)?;
    // One workload per market size, one pool per thread count.
    let mut workloads: BTreeMap<Option<usize>, Workload> = BTreeMap::new();
    let pools = pools_for(scenario)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gen_pool = pools
        .values()
        .next_back()
        .ok_or_else(|| CompareError::Pool {
            threads: 0,
            message: "the scenario has no case".into(),
        })?;
    for case in &scenario.cases {
        if workloads.contains_key(&case.contracts) {
            continue;
        }
        let made = gen_pool
            .install(|| workload_of(scenario, case.contracts, &mut dataset, grid_market.as_ref()));
        if let Some(workload) = made {
            workloads.insert(case.contracts, workload);
        }
    }
    let contract_ids = workloads
        .iter()
        .map(|(size, w)| (*size, w.transactions.iter().map(|t| t.id()).collect()))
        .collect();
    let total = scenario.cases.len() * scenario.repetitions as usize;
    let mut runs = Vec::with_capacity(total);
    for repetition in 0..scenario.repetitions {
        for (k, case) in scenario.cases.iter().enumerate() {
            progress(runs.len(), total, &case.label);
            let pool = &pools[&case.threads.unwrap_or(cores)];
            let workload = &workloads[&case.contracts];
            let report = pool.install(|| -> Result<RunReport, CompareError> {
                let mut pipeline = Pipeline::new(&case.config, workload).grid(grid_market.as_ref());
                if case.processes > 1 {
                    let tier =
                        tiers(k, case, workload, grid_market.as_ref()).map_err(|message| {
                            CompareError::Tier {
                                case: case.label.clone(),
                                message,
                            }
                        })?;
                    pipeline = pipeline.validators(tier);
                }
                Ok(pipeline.run(&mut |_, _| {})?)
            })?;
            runs.push(Run {
                case: k,
                repetition,
                report,
            });
        }
    }
    progress(total, total, "");
    let market = match &scenario.market {
        Market::Generated(p) => serde_json::to_value(p).unwrap_or_default(),
        Market::Dataset(d) => serde_json::json!({ "dataset": d.display().to_string() }),
    };
    let first = scenario.cases.first();
    Ok(Comparison {
        setup: Setup {
            scenario: scenario.name.clone(),
            description: scenario.description.clone(),
            source: source.to_owned(),
            grid: grid.map(|(name, _)| name.to_owned()),
            market,
            seed: base_params.seed,
            load: first.map(|c| c.config.load.describe()).unwrap_or_default(),
            period_txs: first.map_or(0, |c| c.config.period_txs),
            repetitions: scenario.repetitions,
            sweep: format!("{:?}", scenario.sweep).to_lowercase(),
            swept: scenario.swept.clone(),
            baseline: first.map(|c| c.label.clone()).unwrap_or_default(),
            machine: Machine::current().with_load(load_start, load_average()),
        },
        cases: scenario.cases.clone(),
        runs,
        contract_ids,
    })
}

/// A median with the smallest and largest value it was taken over.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Spread {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `values` (NaN-free); all zero when empty.
    pub fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Self {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// One run's row of the results table: every figure the Markdown, HTML and JSON print for it.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Case index.
    pub case: usize,
    /// Case label.
    pub label: String,
    /// Repetition.
    pub repetition: u32,
    /// Transactions submitted.
    pub submitted: u64,
    /// Accepted.
    pub accepted: u64,
    /// Rejected.
    pub rejected: u64,
    /// Undecided at the end.
    pub undecided: u64,
    /// Valid contracts rejected by the congestion rule (right rejections).
    pub curtailed: u64,
    /// Committed transactions per second of wall time.
    pub throughput_per_s: f64,
    /// Wall time of the run.
    pub wall_seconds: f64,
    /// Submission to commit, microseconds.
    pub latency_p50_us: u64,
    /// 95th percentile.
    pub latency_p95_us: u64,
    /// 99th percentile.
    pub latency_p99_us: u64,
    /// Largest.
    pub latency_max_us: u64,
    /// CPU seconds (all threads) per committed transaction.
    pub cpu_seconds_per_committed: f64,
    /// Validations performed (by IPOW validators, or by the PoW miner).
    pub validations: u64,
    /// Nonces tried by the PoW miner (0 for IPOW, which mines none).
    pub hashes: u64,
    /// Signature batches verified (each validator's own, or the miner's).
    pub signature_batches: u64,
    /// Batch equations run to bisect failed batches.
    pub bisection_tests: u64,
    /// Signatures checked one by one (pieces of failed batches).
    pub single_checks: u64,
    /// Decided transactions an honest validator rejects.
    pub honest_invalid: u64,
    /// Of those, accepted.
    pub wrong_accepts: u64,
    /// wrong_accepts / honest_invalid.
    pub wrong_accept_rate: f64,
    /// The protocol model's expected wrong-accept rate.
    pub expected_wrong_accept_rate: f64,
    /// Binomial standard deviation of the wrong-accept count around its expectation.
    pub wrong_accept_sd: f64,
    /// Decided transactions an honest validator accepts.
    pub honest_valid: u64,
    /// Of those, rejected.
    pub wrong_rejects: u64,
    /// wrong_rejects / honest_valid.
    pub wrong_reject_rate: f64,
    /// The protocol model's expected wrong-reject rate.
    pub expected_wrong_reject_rate: f64,
    /// Binomial standard deviation of the wrong-reject count around its expectation.
    pub wrong_reject_sd: f64,
    /// On a grid, what the congestion rule did: slots, curtailment per slot, residual
    /// branches, the committed base's share of overloaded branches' flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub congestion: Option<crate::pipeline::CongestionSummary>,
    /// Over several processes, what crossed the wire (`cluster::Traffic`: per channel, per
    /// period, each process's CPU time and peak memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<serde_json::Value>,
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// An expected count per trial (0 with no trials).
fn per(expected: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { expected / n as f64 }
}

/// Binomial standard deviation of a count of `n` trials with total expectation `expected`.
fn binomial_sd(n: u64, expected: f64) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let p = (expected / n as f64).clamp(0.0, 1.0);
    (n as f64 * p * (1.0 - p)).sqrt()
}

impl Row {
    fn of(run: &Run, label: &str) -> Self {
        let r = &run.report;
        let l = &r.latency_commit;
        Self {
            case: run.case,
            label: label.to_owned(),
            repetition: run.repetition,
            submitted: r.submitted,
            accepted: r.accepted,
            rejected: r.rejected,
            undecided: r.undecided,
            curtailed: r.curtailed,
            throughput_per_s: r.committed_per_s,
            wall_seconds: r.wall_seconds,
            latency_p50_us: l.p50_us,
            latency_p95_us: l.p95_us,
            latency_p99_us: l.p99_us,
            latency_max_us: l.max_us,
            cpu_seconds_per_committed: r.cpu_seconds_per_committed,
            validations: r.work.validations,
            hashes: r.work.hashes,
            signature_batches: r.work.signatures.batches,
            bisection_tests: r.work.signatures.bisection_tests,
            single_checks: r.work.signatures.single_checks,
            honest_invalid: r.honest_invalid,
            wrong_accepts: r.wrong_accepts,
            wrong_accept_rate: ratio(r.wrong_accepts, r.honest_invalid),
            expected_wrong_accept_rate: per(r.expected.wrong_accepts, r.honest_invalid),
            wrong_accept_sd: binomial_sd(r.honest_invalid, r.expected.wrong_accepts),
            honest_valid: r.honest_valid,
            wrong_rejects: r.wrong_rejects,
            wrong_reject_rate: ratio(r.wrong_rejects, r.honest_valid),
            expected_wrong_reject_rate: per(r.expected.wrong_rejects, r.honest_valid),
            wrong_reject_sd: binomial_sd(r.honest_valid, r.expected.wrong_rejects),
            congestion: r.congestion.clone(),
            tier: r.variant_report.get("tier").cloned(),
        }
    }
}

/// One case over its repetitions, and its ratios to the baseline taken repetition by repetition
/// (each case against the baseline run of the same repetition, which ran beside it).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Case index.
    pub case: usize,
    /// Case label.
    pub label: String,
    /// The case's parameters.
    pub parameters: serde_json::Value,
    /// Committed transactions per second.
    pub throughput_per_s: Spread,
    /// p99 latency, submission to commit, microseconds.
    pub latency_p99_us: Spread,
    /// CPU seconds per committed transaction.
    pub cpu_seconds_per_committed: Spread,
    /// Throughput / the baseline's.
    pub throughput_ratio: Spread,
    /// p99 latency / the baseline's.
    pub latency_p99_ratio: Spread,
    /// CPU per committed transaction / the baseline's.
    pub cpu_ratio: Spread,
    /// Wrong accepts over every repetition / the transactions an honest validator rejects.
    pub wrong_accept_rate: f64,
    /// The protocol model's rate over the same repetitions.
    pub expected_wrong_accept_rate: f64,
    /// Wrong rejects over every repetition / the transactions an honest validator accepts.
    pub wrong_reject_rate: f64,
    /// The protocol model's rate over the same repetitions.
    pub expected_wrong_reject_rate: f64,
}

impl Comparison {
    /// One row per run, in run order.
    pub fn rows(&self) -> Vec<Row> {
        self.runs
            .iter()
            .map(|r| Row::of(r, &self.cases[r.case].label))
            .collect()
    }

    /// One summary per case, in case order.
    pub fn summaries(&self) -> Vec<Summary> {
        let rows = self.rows();
        let of_case = |k: usize| rows.iter().filter(move |r| r.case == k);
        let baseline: BTreeMap<u32, &Row> = of_case(0).map(|r| (r.repetition, r)).collect();
        let ratios = |k: usize, f: &dyn Fn(&Row) -> f64| -> Spread {
            let v: Vec<f64> = of_case(k)
                .filter_map(|r| {
                    let b = f(baseline.get(&r.repetition)?);
                    (b > 0.0).then(|| f(r) / b)
                })
                .collect();
            Spread::of(&v)
        };
        (0..self.cases.len())
            .map(|k| {
                let spread =
                    |f: &dyn Fn(&Row) -> f64| Spread::of(&of_case(k).map(f).collect::<Vec<_>>());
                let sum = |f: &dyn Fn(&Row) -> u64| of_case(k).map(f).sum::<u64>();
                let expected_sum = |f: &dyn Fn(&Row) -> f64| of_case(k).map(f).sum::<f64>();
                let (hi, hv) = (sum(&|r| r.honest_invalid), sum(&|r| r.honest_valid));
                let exp_wa =
                    expected_sum(&|r| r.expected_wrong_accept_rate * r.honest_invalid as f64);
                let exp_wr =
                    expected_sum(&|r| r.expected_wrong_reject_rate * r.honest_valid as f64);
                Summary {
                    case: k,
                    label: self.cases[k].label.clone(),
                    parameters: self.parameters(k),
                    throughput_per_s: spread(&|r| r.throughput_per_s),
                    latency_p99_us: spread(&|r| r.latency_p99_us as f64),
                    cpu_seconds_per_committed: spread(&|r| r.cpu_seconds_per_committed),
                    throughput_ratio: ratios(k, &|r| r.throughput_per_s),
                    latency_p99_ratio: ratios(k, &|r| r.latency_p99_us as f64),
                    cpu_ratio: ratios(k, &|r| r.cpu_seconds_per_committed),
                    wrong_accept_rate: ratio(sum(&|r| r.wrong_accepts), hi),
                    expected_wrong_accept_rate: per(exp_wa, hi),
                    wrong_reject_rate: ratio(sum(&|r| r.wrong_rejects), hv),
                    expected_wrong_reject_rate: per(exp_wr, hv),
                }
            })
            .collect()
    }

    /// Case `k`'s parameters as one flat object.
    pub fn parameters(&self, k: usize) -> serde_json::Value {
        let c = &self.cases[k];
        let mut v = match &c.config.variant {
            VariantConfig::Ipow(p) => serde_json::json!({
                "consensus": "ipow", "validators": p.validators, "quorum": p.quorum,
                "extra": p.extra_max, "byzantine": p.byzantine_fraction,
                "behaviour": p.behaviour.name(),
            }),
            VariantConfig::Pow(p) => serde_json::json!({
                "consensus": "pow", "difficulty": p.difficulty_bits,
            }),
        };
        v["threads"] = serde_json::json!(c.threads);
        v["contracts"] = serde_json::json!(c.contracts);
        v
    }
}

/// The protocol model's wrong-decision probability for an IPOW case at Byzantine fraction `f`
/// (validators drawn without replacement, ties broken by asking more, up to q + extra): the
/// theoretical curve of the wrong-accept plot.
pub fn theoretical_wrong_rate(validators: u32, quorum: u32, extra: u32, f: f64) -> f64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bad = ((f * f64::from(validators)).round() as u32).min(validators);
    protocol_wrong_probability(validators, bad, quorum, quorum + extra)
}

/// True when Byzantine validators of this behaviour can make a wrong accept.
pub fn approves_invalid(b: Behaviour) -> bool {
    !matches!(b, Behaviour::Crash)
}
