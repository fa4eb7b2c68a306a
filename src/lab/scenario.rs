//! Scenario files: one JSON document naming the grid, the market (generated, or a dataset
//! file), the consensus variants with their parameters, the load and the repetitions;
//! `ipow run --scenario FILE` runs it. Paths inside are relative to the scenario file.
//!
//! ```json
//! { "format": "ipow-scenario/1",
//!   "name": "case118-100k",
//!   "grid": "../grids/pglib_opf_case118_ieee.m",
//!   "market": { "participants": 2000, "contracts": 100000, "seed": 118,
//!               "invalid": 0.05, "defaults": 0.02, "skew": 1.16 },
//!   "variants": [ { "consensus": "ipow", "validators": 64, "quorum": 3, "extra": 4,
//!                   "byzantine": 0.1, "behaviour": "liar" },
//!                 { "consensus": "pow", "difficulty": 16 } ],
//!   "load": { "kind": "closed_loop" },
//!   "period_txs": 10000,
//!   "repetitions": 3 }
//! ```
//! `market` may instead be `{ "dataset": "../markets/case57-2k.ipowm" }`. `load` is
//! `closed_loop`, `{ "kind": "open_loop", "rate": 5000 }` or `{ "kind": "curve", "steps":
//! [{ "from_s": 0, "rate": 1000 }, { "from_s": 5, "rate": 4000 }] }`. A scenario with a
//! `stress` block (`{ "sizes": [1000, 10000000], "batch": 1048576 }`) runs `ipow stress`'s
//! pipeline over those sizes instead of one in-memory run per repetition.
//!
//! Repetitions interleave the variants (A B A B ...), so drift of a shared machine falls on all
//! of them alike, and every variant runs on the same workload.
//!
//! **Sweeps.** A variant's `validators`, `quorum`, `extra`, `byzantine`, `behaviour` and
//! `difficulty`, the market's `contracts` and the scenario's `threads` may each be a list. With
//! `"sweep": "product"` (the default) the scenario runs every combination; with `"sweep":
//! "pairs"` every list must have the same length and the k-th case takes the k-th value of each
//! (a list of one, or a plain value, is held fixed). Each combination is one [`Case`].
//!
//! **Processes.** `"processes": [1, 2, 3]` (a sweep like `threads`) runs each IPOW case with its
//! validators over that many processes on this machine, validator v in process v mod N, as
//! `ipow run --processes N` does; `"ship": "index"` sends transaction numbers instead of the
//! signed contracts (`"bytes"`, the default). PoW has one miner: it runs in process only.
//!
//! Either variant may set `signature_batch` (one number, default 32): the most signatures a
//! validator or the miner verifies in one batch. Verdicts do not depend on it; speed does.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::input::InputError;
use crate::consensus::ipow::{Behaviour, IpowParams};
use crate::consensus::pow::PowParams;
use crate::market::rules::{Delivery, WorkloadParams, fraction_ppm, pareto_alpha_milli};
use crate::pipeline::{Load, RunConfig, VariantConfig};

/// The format tag a scenario must carry.
pub const FORMAT: &str = "ipow-scenario/1";
/// The largest scenario file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A value, or a list of values to sweep.
#[derive(Clone, Debug)]
pub enum OneOrMany<T> {
    /// One value.
    One(T),
    /// Values to sweep.
    Many(Vec<T>),
}

/// A list is a sweep, anything else one value; an error says what the value should have been
/// (serde's untagged enums said only "did not match any variant").
impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(k, v)| {
                    serde_json::from_value(v)
                        .map_err(|e| D::Error::custom(format!("list item {k}: {e}")))
                })
                .collect::<Result<_, _>>()
                .map(OneOrMany::Many),
            v => serde_json::from_value(v)
                .map(OneOrMany::One)
                .map_err(|e| D::Error::custom(format!("{e}, or a list of them"))),
        }
    }
}

impl<T: Clone> OneOrMany<T> {
    fn values(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// How swept lists combine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepMode {
    /// Every combination.
    #[default]
    Product,
    /// The k-th value of every list together.
    Pairs,
}

/// A generated market's parameters in a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    /// Participants of every role.
    pub participants: u32,
    /// Contracts (a list sweeps the market size).
    pub contracts: OneOrMany<usize>,
    /// Seed.
    pub seed: u64,
    /// Fraction planted invalid (default 0.05).
    #[serde(default = "default_invalid")]
    pub invalid: f64,
    /// Fraction of readings with a default (default 0.02).
    #[serde(default = "default_defaults")]
    pub defaults: f64,
    /// Pareto alpha of who trades (0: uniform).
    #[serde(default)]
    pub skew: f64,
    /// On a grid, each delivery slot's expected traded power as a share of the grid's load
    /// (default 0.15).
    #[serde(default = "default_congestion")]
    pub congestion: f64,
    /// Hours of delivery traded, from 00:00 (default 24).
    #[serde(default = "default_horizon")]
    pub horizon_hours: u32,
    /// Delivery slot length in minutes, a divisor of 60 (default 60).
    #[serde(default = "default_slot")]
    pub slot_minutes: u32,
}

fn default_congestion() -> f64 {
    f64::from(crate::market::rules::DEFAULT_CONGESTION_PPM) / 1e6
}

fn default_horizon() -> u32 {
    24
}

fn default_slot() -> u32 {
    crate::base::domain::HOUR_SLOT
}

fn default_invalid() -> f64 {
    0.05
}

fn default_defaults() -> f64 {
    0.02
}

/// Where the market comes from.
#[derive(Clone, Debug)]
pub enum MarketSource {
    /// A dataset file (binary or JSON).
    Dataset {
        /// Its path, relative to the scenario file.
        dataset: PathBuf,
    },
    /// Generated.
    Generated(MarketSpec),
}

/// `T` from a JSON value, an error prefixed with the path of the field inside it that failed
/// (serde's tagged and untagged enums buffer their content and lose it).
fn named<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: serde_json::Value,
) -> Result<T, E> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        E::custom(format!("{path}: {}", e.into_inner()))
    })
}

/// The scenario's variants: each object's `consensus` names the variant, the rest are its
/// fields; an error names the variant's place and the field (`variants[0].quorum`). Read as
/// serde's external tagging, which keeps the path (its internal tagging buffers and loses it).
fn variants_named<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<VariantSpec>, D::Error> {
    use serde::de::Error as _;
    let values = Vec::<serde_json::Value>::deserialize(d)?;
    let mut out = Vec::with_capacity(values.len());
    for (k, value) in values.into_iter().enumerate() {
        let serde_json::Value::Object(mut fields) = value else {
            return Err(D::Error::custom(format!("variants[{k}]: not an object")));
        };
        let Some(serde_json::Value::String(kind)) = fields.remove("consensus") else {
            return Err(D::Error::custom(format!(
                "variants[{k}].consensus: missing or not a string (\"ipow\" or \"pow\")"
            )));
        };
        let tagged = serde_json::json!({ kind.clone(): fields });
        let spec = serde_path_to_error::deserialize(tagged).map_err(|e| {
            let path = e.path().to_string();
            let field = path.strip_prefix(&kind).unwrap_or(&path);
            D::Error::custom(format!("variants[{k}]{field}: {}", e.into_inner()))
        })?;
        out.push(spec);
    }
    Ok(out)
}

/// An object with `dataset` names a dataset file, any other a generated market; an error names
/// the field inside it (serde's untagged enums said only "did not match any variant").
impl<'de> Deserialize<'de> for MarketSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct DatasetOnly {
            dataset: PathBuf,
        }
        let value = serde_json::Value::deserialize(d)?;
        if value.as_object().is_some_and(|m| m.contains_key("dataset")) {
            named(value).map(|d: DatasetOnly| MarketSource::Dataset { dataset: d.dataset })
        } else {
            named(value).map(MarketSource::Generated)
        }
    }
}

/// One consensus variant: an object whose `consensus` names it (read by [`variants_named`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VariantSpec {
    /// IPOW.
    Ipow {
        /// Validators.
        #[serde(default = "default_validators")]
        validators: OneOrMany<u32>,
        /// Quorum.
        #[serde(default = "default_quorum")]
        quorum: OneOrMany<u32>,
        /// Extra validators that may be asked.
        #[serde(default = "default_extra")]
        extra: OneOrMany<u32>,
        /// Byzantine fraction.
        #[serde(default = "default_byzantine")]
        byzantine: OneOrMany<f64>,
        /// Byzantine behaviour (default liar).
        #[serde(default = "default_behaviour")]
        behaviour: OneOrMany<Behaviour>,
        /// Most signatures a validator verifies in one batch (default 32).
        #[serde(default = "default_signature_batch")]
        signature_batch: usize,
    },
    /// Plain proof of work.
    Pow {
        /// Leading zero bits.
        difficulty: OneOrMany<u8>,
        /// Most signatures the miner verifies in one batch (default 32).
        #[serde(default = "default_signature_batch")]
        signature_batch: usize,
    },
}

fn default_signature_batch() -> usize {
    crate::crypto::verify::DEFAULT_BATCH
}

fn default_validators() -> OneOrMany<u32> {
    OneOrMany::One(64)
}

fn default_quorum() -> OneOrMany<u32> {
    OneOrMany::One(3)
}

fn default_extra() -> OneOrMany<u32> {
    OneOrMany::One(4)
}

fn default_byzantine() -> OneOrMany<f64> {
    OneOrMany::One(0.0)
}

fn default_behaviour() -> OneOrMany<Behaviour> {
    OneOrMany::One(Behaviour::Liar)
}

/// A stress block: sizes through the batched pipeline.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StressSpec {
    /// Sizes in contracts.
    pub sizes: Vec<u64>,
    /// Most contracts held at once.
    #[serde(default = "default_batch")]
    pub batch: u64,
}

fn default_batch() -> u64 {
    1 << 20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    format: String,
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    grid: Option<PathBuf>,
    market: MarketSource,
    #[serde(deserialize_with = "variants_named")]
    variants: Vec<VariantSpec>,
    #[serde(default = "default_load")]
    load: Load,
    #[serde(default = "default_period")]
    period_txs: usize,
    #[serde(default = "default_repetitions")]
    repetitions: u32,
    #[serde(default)]
    threads: Option<OneOrMany<usize>>,
    #[serde(default)]
    processes: Option<OneOrMany<usize>>,
    #[serde(default)]
    ship: Ship,
    #[serde(default)]
    sweep: SweepMode,
    #[serde(default)]
    stress: Option<StressSpec>,
}

fn default_load() -> Load {
    Load::ClosedLoop
}

fn default_period() -> usize {
    10_000
}

fn default_repetitions() -> u32 {
    1
}

/// How asks travel between the processes of a case with `processes` above 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ship {
    /// Each ask carries the signed contract.
    #[default]
    Bytes,
    /// Asks carry transaction numbers; every process derives the case's market itself.
    Index,
}

/// The most processes a case may spread its validators over.
pub const MAX_PROCESSES: usize = 64;

/// A checked scenario, paths resolved.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The grid file, resolved.
    pub grid: Option<PathBuf>,
    /// The market: a dataset path (resolved) or generator parameters (with the first of the
    /// swept market sizes).
    pub market: Market,
    /// Every combination to run, in the order one repetition runs them.
    pub cases: Vec<Case>,
    /// Repetitions of every case.
    pub repetitions: u32,
    /// How swept lists were combined.
    pub sweep: SweepMode,
    /// The names of the parameters that take more than one value.
    pub swept: Vec<String>,
    /// The stress block, if any.
    pub stress: Option<StressSpec>,
    /// How asks travel in cases over several processes.
    pub ship: Ship,
}

/// One combination of a scenario's parameters.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    /// A name unique within the scenario ("ipow q=3 n=64 f=0.1 liar").
    pub label: String,
    /// Index of the variant in the scenario's `variants` list.
    pub variant: usize,
    /// The run configuration.
    pub config: RunConfig,
    /// Worker threads (None: every core).
    pub threads: Option<usize>,
    /// Contracts in the generated market (None: a dataset's).
    pub contracts: Option<usize>,
    /// Processes its IPOW validators run in (validator v in process v mod N; 1: in process).
    #[serde(skip_serializing_if = "is_one")]
    pub processes: usize,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The most cases a sweep may expand to.
pub const MAX_CASES: usize = 1000;

/// The market of a checked scenario.
#[derive(Clone, Debug)]
pub enum Market {
    /// A dataset file.
    Dataset(PathBuf),
    /// Generator parameters.
    Generated(WorkloadParams),
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, InputError> {
    let file = path.display().to_string();
    let text = crate::base::input::read_document(path, MAX_FILE_BYTES)?;
    parse(&file, &text, path.parent().unwrap_or(Path::new(".")))
}

/// Parses scenario `text` (named `file`), resolving paths against `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<Scenario, InputError> {
    let err = |record: &str, field: &str, m: String| InputError::new(file, record, field, m);
    let raw: RawScenario = crate::base::input::json_document(file, text)?;
    crate::base::input::check_format(file, &raw.format, FORMAT)?;
    if raw.variants.is_empty() {
        return Err(err("document", "variants", "no variant to run".into()));
    }
    if raw.repetitions == 0 {
        return Err(err("document", "repetitions", "must be at least 1".into()));
    }
    if raw.period_txs == 0 {
        return Err(err("document", "period_txs", "must be at least 1".into()));
    }
    raw.load.check().map_err(|m| err("load", "kind", m))?;
    let (market, sizes) = read_market(file, &raw.market, base)?;
    let threads = read_threads(file, raw.threads.as_ref())?;
    let processes = read_processes(file, raw.processes.as_ref())?;
    let mut sweep = sweep_of(&raw.variants, sizes.len(), threads.len());
    sweep.list("processes", "document", processes.len());
    if let Some((record, field)) = sweep.empty.first() {
        return Err(err(record, field, "an empty list".into()));
    }
    let pairs = match raw.sweep {
        SweepMode::Product => None,
        SweepMode::Pairs => Some(pairs_len(file, &sweep)?),
    };
    let axes = Axes {
        sizes: &sizes,
        threads: &threads,
        processes: &processes,
        seed: match &market {
            Market::Generated(p) => p.seed,
            Market::Dataset(_) => 1,
        },
    };
    let mut cases = expand(file, &raw, &axes, pairs)?;
    label_cases(&mut cases, &sweep.swept());
    if let Some(s) = &raw.stress
        && (s.sizes.is_empty() || s.sizes.iter().any(|&n| n == 0 || n > u64::from(u32::MAX)))
    {
        return Err(err(
            "stress",
            "sizes",
            format!("sizes must be 1 to {}", u32::MAX),
        ));
    }
    Ok(Scenario {
        name: raw.name,
        description: raw.description,
        grid: raw.grid.map(|g| base.join(g)),
        market,
        cases,
        repetitions: raw.repetitions,
        sweep: raw.sweep,
        swept: sweep.swept(),
        stress: raw.stress,
        ship: raw.ship,
    })
}

/// The process counts to run (one, in process, when the scenario names none).
fn read_processes(
    file: &str,
    processes: Option<&OneOrMany<usize>>,
) -> Result<Vec<usize>, InputError> {
    let Some(p) = processes else {
        return Ok(vec![1]);
    };
    let p = p.values();
    let err = |m: String| InputError::new(file, "document", "processes", m);
    if p.is_empty() {
        return Err(err("an empty list".into()));
    }
    if let Some(n) = p.iter().find(|&&n| n == 0 || n > MAX_PROCESSES) {
        return Err(err(format!("{n} is outside 1..={MAX_PROCESSES}")));
    }
    Ok(p)
}

/// The market (a dataset, or generated with its parameters checked) and its sizes.
fn read_market(
    file: &str,
    source: &MarketSource,
    base: &Path,
) -> Result<(Market, Vec<Option<usize>>), InputError> {
    let err = |field: &str, m: String| InputError::new(file, "market", field, m);
    match source {
        MarketSource::Dataset { dataset } => Ok((Market::Dataset(base.join(dataset)), vec![None])),
        MarketSource::Generated(m) => {
            let sizes = m.contracts.values();
            let Some(&first) = sizes.first() else {
                return Err(err("contracts", "an empty list".into()));
            };
            let max = crate::market::rules::MAX_TRANSACTIONS;
            if let Some(&n) = sizes.iter().find(|&&n| n == 0 || n > max) {
                return Err(err("contracts", format!("{n} is outside 1..={max}")));
            }
            WorkloadParams::check_participants(m.participants)
                .map_err(|e| err("participants", e))?;
            let mut p = WorkloadParams::for_participants(m.seed, m.participants, first);
            p.invalid_ppm = fraction_ppm(m.invalid).map_err(|e| err("invalid", e))?;
            p.default_ppm = fraction_ppm(m.defaults).map_err(|e| err("defaults", e))?;
            p.pareto_alpha_milli = pareto_alpha_milli(m.skew).map_err(|e| err("skew", e))?;
            p.delivery = Delivery::new(m.slot_minutes, m.horizon_hours, m.congestion)
                .map_err(|(field, e)| err(field, e))?;
            Ok((Market::Generated(p), sizes.into_iter().map(Some).collect()))
        }
    }
}

/// The thread counts to run (one `None`, every core, when the scenario names none).
fn read_threads(
    file: &str,
    threads: Option<&OneOrMany<usize>>,
) -> Result<Vec<Option<usize>>, InputError> {
    match threads {
        None => Ok(vec![None]),
        Some(t) => {
            let t = t.values();
            if t.is_empty() {
                return Err(InputError::new(
                    file,
                    "document",
                    "threads",
                    "an empty list",
                ));
            }
            for &n in &t {
                crate::base::check_threads(n)
                    .map_err(|m| InputError::new(file, "document", "threads", m))?;
            }
            Ok(t.into_iter().map(Some).collect())
        }
    }
}

/// Every list the scenario holds, with its record and length.
fn sweep_of(variants: &[VariantSpec], sizes: usize, threads: usize) -> Sweep {
    let mut sweep = Sweep::default();
    sweep.list("contracts", "market", sizes);
    sweep.list("threads", "document", threads);
    for (k, v) in variants.iter().enumerate() {
        let record = format!("variants[{k}]");
        match v {
            VariantSpec::Ipow {
                validators,
                quorum,
                extra,
                byzantine,
                behaviour,
                ..
            } => {
                sweep.list("validators", &record, validators.values().len());
                sweep.list("quorum", &record, quorum.values().len());
                sweep.list("extra", &record, extra.values().len());
                sweep.list("byzantine", &record, byzantine.values().len());
                sweep.list("behaviour", &record, behaviour.values().len());
            }
            VariantSpec::Pow { difficulty, .. } => {
                sweep.list("difficulty", &record, difficulty.values().len());
            }
        }
    }
    sweep
}

/// `"sweep": "pairs"`: the one length every list shares.
fn pairs_len(file: &str, sweep: &Sweep) -> Result<usize, InputError> {
    let mut len = None;
    for (record, field, n) in &sweep.lists {
        match len {
            None => len = Some(*n),
            Some(l) if l == *n => {}
            Some(l) => {
                return Err(InputError::new(
                    file,
                    record,
                    field,
                    format!(
                        "{n} values; \"sweep\": \"pairs\" needs every list to have the same length ({l} before)"
                    ),
                ));
            }
        }
    }
    Ok(len.unwrap_or(1))
}

/// The scenario-wide lists each case takes one value of.
struct Axes<'a> {
    sizes: &'a [Option<usize>],
    threads: &'a [Option<usize>],
    processes: &'a [usize],
    seed: u64,
}

/// The indices a list of `n` values contributes at a sweep point: all of them in a product
/// (`point` None), the k-th in pairs (a single value stands for every k).
fn pick(point: Option<usize>, n: usize) -> Vec<usize> {
    match point {
        Some(k) if n > 1 => vec![k],
        Some(_) => vec![0],
        None => (0..n).collect(),
    }
}

/// The cases, unlabelled. Product: every size, every thread count, every process count, every
/// variant's own product. Pairs: the k-th of every list. PoW has one miner: its cases run in
/// process only (a process count above 1 gives it no case).
fn expand(
    file: &str,
    raw: &RawScenario,
    axes: &Axes<'_>,
    pairs: Option<usize>,
) -> Result<Vec<Case>, InputError> {
    let mut cases: Vec<Case> = Vec::new();
    let points: Vec<Option<usize>> = match pairs {
        Some(n) => (0..n).map(Some).collect(),
        None => vec![None],
    };
    for point in points {
        for &si in &pick(point, axes.sizes.len()) {
            for (ti, pi) in pick(point, axes.threads.len()).into_iter().flat_map(|t| {
                pick(point, axes.processes.len())
                    .into_iter()
                    .map(move |p| (t, p))
            }) {
                let processes = axes.processes[pi];
                for (k, v) in raw.variants.iter().enumerate() {
                    for variant in variant_configs(file, k, v, point, axes.seed)? {
                        if processes > 1 && !matches!(variant, VariantConfig::Ipow(_)) {
                            continue;
                        }
                        if cases.len() >= MAX_CASES {
                            return Err(InputError::new(
                                file,
                                "document",
                                "variants",
                                format!("the sweep expands to more than {MAX_CASES} cases"),
                            ));
                        }
                        cases.push(Case {
                            label: String::new(),
                            variant: k,
                            config: RunConfig {
                                variant,
                                period_txs: raw.period_txs,
                                load: raw.load.clone(),
                            },
                            threads: axes.threads[ti],
                            contracts: axes.sizes[si],
                            processes,
                        });
                    }
                }
            }
        }
    }
    Ok(cases)
}

/// The configurations variant `k` gives at a sweep point, each checked.
fn variant_configs(
    file: &str,
    k: usize,
    v: &VariantSpec,
    point: Option<usize>,
    seed: u64,
) -> Result<Vec<VariantConfig>, InputError> {
    let record = format!("variants[{k}]");
    let err = |field: &str, m: String| InputError::new(file, &record, field, m);
    let mut out = Vec::new();
    match v {
        VariantSpec::Ipow {
            validators,
            quorum,
            extra,
            byzantine,
            behaviour,
            signature_batch,
        } => {
            let (n, q, e, f, b) = (
                validators.values(),
                quorum.values(),
                extra.values(),
                byzantine.values(),
                behaviour.values(),
            );
            for &ni in &pick(point, n.len()) {
                for &qi in &pick(point, q.len()) {
                    for &ei in &pick(point, e.len()) {
                        for &fi in &pick(point, f.len()) {
                            for &bi in &pick(point, b.len()) {
                                let p = IpowParams::honest(n[ni], q[qi], e[ei], seed)
                                    .with_byzantine(f[fi], b[bi])
                                    .with_signature_batch(*signature_batch);
                                p.check().map_err(|m| err("parameters", m))?;
                                out.push(VariantConfig::Ipow(p));
                            }
                        }
                    }
                }
            }
        }
        VariantSpec::Pow {
            difficulty,
            signature_batch,
        } => {
            let d = difficulty.values();
            for &di in &pick(point, d.len()) {
                let p = PowParams::new(d[di])
                    .map_err(|m| err("difficulty", m))?
                    .with_signature_batch(*signature_batch)
                    .map_err(|m| err("signature_batch", m))?;
                out.push(VariantConfig::Pow(p));
            }
        }
    }
    Ok(out)
}

/// The lists a scenario holds: (record, field, length).
#[derive(Default)]
struct Sweep {
    lists: Vec<(String, &'static str, usize)>,
    empty: Vec<(String, &'static str)>,
}

impl Sweep {
    fn list(&mut self, field: &'static str, record: &str, n: usize) {
        if n == 0 {
            self.empty.push((record.to_owned(), field));
        } else if n > 1 {
            self.lists.push((record.to_owned(), field, n));
        }
    }

    /// Swept parameter names, each once, in first-seen order.
    fn swept(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, f, _) in &self.lists {
            if !out.iter().any(|o| o == f) {
                out.push((*f).to_owned());
            }
        }
        out
    }
}

/// Names every case by its variant and the parameters that tell it apart: the variant's main
/// parameters always, the Byzantine set when there is one, threads and market size when swept.
/// A name that would repeat gets `#k`.
fn label_cases(cases: &mut [Case], swept: &[String]) {
    let has = |f: &str| swept.iter().any(|s| s == f);
    for c in cases.iter_mut() {
        let mut label = match &c.config.variant {
            VariantConfig::Ipow(p) => {
                let mut l = format!("ipow q={} n={}", p.quorum, p.validators);
                if has("extra") {
                    l += &format!(" e={}", p.extra_max);
                }
                if p.byzantine_fraction > 0.0 {
                    l += &format!(" f={} {}", p.byzantine_fraction, p.behaviour.name());
                }
                l
            }
            VariantConfig::Pow(p) => format!("pow d={}", p.difficulty_bits),
        };
        if has("threads")
            && let Some(t) = c.threads
        {
            label += &format!(" t={t}");
        }
        if has("contracts")
            && let Some(m) = c.contracts
        {
            label += &format!(" m={m}");
        }
        if (has("processes") && matches!(c.config.variant, VariantConfig::Ipow(_)))
            || c.processes > 1
        {
            label += &format!(" p={}", c.processes);
        }
        c.label = label;
    }
    for k in 0..cases.len() {
        if cases[..k].iter().any(|c| c.label == cases[k].label) {
            cases[k].label = format!("{}#{k}", cases[k].label);
        }
    }
}
