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

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::consensus::ipow::{Behaviour, IpowParams};
use crate::consensus::pow::PowParams;
use crate::input::InputError;
use crate::run::{Load, RunConfig, VariantConfig};
use crate::workload::{WorkloadParams, fraction_ppm, pareto_alpha_milli};

/// The format tag a scenario must carry.
pub const FORMAT: &str = "ipow-scenario/1";
/// The largest scenario file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// A generated market's parameters in a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSpec {
    /// Participants of every role.
    pub participants: u32,
    /// Contracts.
    pub contracts: usize,
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
}

fn default_invalid() -> f64 {
    0.05
}

fn default_defaults() -> f64 {
    0.02
}

/// Where the market comes from.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum MarketSource {
    /// A dataset file (binary or JSON).
    Dataset {
        /// Its path, relative to the scenario file.
        dataset: PathBuf,
    },
    /// Generated.
    Generated(MarketSpec),
}

/// One consensus variant.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "consensus", rename_all = "snake_case", deny_unknown_fields)]
pub enum VariantSpec {
    /// IPOW.
    Ipow {
        /// Validators.
        #[serde(default = "default_validators")]
        validators: u32,
        /// Quorum.
        #[serde(default = "default_quorum")]
        quorum: u32,
        /// Extra validators that may be asked.
        #[serde(default = "default_extra")]
        extra: u32,
        /// Byzantine fraction.
        #[serde(default)]
        byzantine: f64,
        /// Byzantine behaviour.
        #[serde(default)]
        behaviour: Option<Behaviour>,
    },
    /// Plain proof of work.
    Pow {
        /// Leading zero bits.
        difficulty: u8,
    },
}

fn default_validators() -> u32 {
    64
}

fn default_quorum() -> u32 {
    3
}

fn default_extra() -> u32 {
    4
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
    variants: Vec<VariantSpec>,
    #[serde(default = "default_load")]
    load: Load,
    #[serde(default = "default_period")]
    period_txs: usize,
    #[serde(default = "default_repetitions")]
    repetitions: u32,
    #[serde(default)]
    threads: Option<usize>,
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

/// A checked scenario, paths resolved.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The grid file, resolved.
    pub grid: Option<PathBuf>,
    /// The market: a dataset path (resolved) or generator parameters.
    pub market: Market,
    /// One run configuration per variant.
    pub variants: Vec<RunConfig>,
    /// Repetitions of every variant.
    pub repetitions: u32,
    /// Worker threads (None: every core).
    pub threads: Option<usize>,
    /// The stress block, if any.
    pub stress: Option<StressSpec>,
}

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
    let io = |e: std::io::Error| InputError::new(&file, "document", "-", e.to_string());
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_FILE_BYTES {
        return Err(InputError::new(
            &file,
            "document",
            "-",
            format!("{size} bytes; scenarios are read up to {MAX_FILE_BYTES}"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse(&file, &text, path.parent().unwrap_or(Path::new(".")))
}

/// Parses scenario `text` (named `file`), resolving paths against `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<Scenario, InputError> {
    let err = |record: &str, field: &str, m: String| InputError::new(file, record, field, m);
    let raw: RawScenario = crate::input::json_document(file, text)?;
    crate::input::check_format(file, &raw.format, FORMAT)?;
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
    let market = match raw.market {
        MarketSource::Dataset { dataset } => Market::Dataset(base.join(dataset)),
        MarketSource::Generated(m) => {
            let mut p = WorkloadParams::for_participants(m.seed, m.participants, m.contracts);
            p.invalid_ppm = fraction_ppm(m.invalid).map_err(|e| err("market", "invalid", e))?;
            p.default_ppm = fraction_ppm(m.defaults).map_err(|e| err("market", "defaults", e))?;
            p.pareto_alpha_milli =
                pareto_alpha_milli(m.skew).map_err(|e| err("market", "skew", e))?;
            Market::Generated(p)
        }
    };
    let seed = match &market {
        Market::Generated(p) => p.seed,
        Market::Dataset(_) => 1,
    };
    let mut variants = Vec::new();
    for (k, v) in raw.variants.iter().enumerate() {
        let record = format!("variants[{k}]");
        let variant = match v {
            VariantSpec::Ipow {
                validators,
                quorum,
                extra,
                byzantine,
                behaviour,
            } => {
                let p = IpowParams {
                    validators: *validators,
                    quorum: *quorum,
                    extra_max: *extra,
                    byzantine_fraction: *byzantine,
                    behaviour: behaviour.unwrap_or(Behaviour::Liar),
                    seed,
                };
                p.check().map_err(|m| err(&record, "parameters", m))?;
                VariantConfig::Ipow(p)
            }
            VariantSpec::Pow { difficulty } => {
                if *difficulty > 64 {
                    return Err(err(
                        &record,
                        "difficulty",
                        format!("{difficulty} is above 64 bits"),
                    ));
                }
                VariantConfig::Pow(PowParams {
                    difficulty_bits: *difficulty,
                })
            }
        };
        variants.push(RunConfig {
            variant,
            period_txs: raw.period_txs,
            load: raw.load.clone(),
        });
    }
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
        variants,
        repetitions: raw.repetitions,
        threads: raw.threads,
        stress: raw.stress,
    })
}
