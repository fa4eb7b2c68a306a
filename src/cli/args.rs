//! The command line: clap's structs, and their turning into the library's configurations in
//! one place (variants, shares, pools, grids, bounded reads).

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use ipow::consensus::ipow::{Behaviour, IpowParams};
use ipow::consensus::pow::PowParams;
use ipow::market::paper::{EMBEDDED_MARKET_NAME, PaperMarket};
use ipow::market::rules::{WorkloadParams, fraction_ppm, pareto_alpha_milli};
use ipow::pipeline::VariantConfig;

/// Energy-market transactions validated by Improved Proof of Work (Liu et al. 2020).
#[derive(Parser)]
#[command(
    name = "ipow",
    version,
    about = "Energy-market transactions validated by Improved Proof of Work (Liu et al. 2020), \
             measured against plain proof of work.\n\nWith no command, ipow runs the main job: \
             the built-in comparison of IPOW and PoW on the IEEE 118-bus grid \
             (datasets/scenarios/default-compare.json), about 20 s on the recorded 2-core \
             machine (longer on a busy one), its report written to target/ipow-report/."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Reproduce the paper's Section 4: Table 3 contracts, the hash tree, the f15 tamper.
    Paper {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// A market file in the format of datasets/paper/market.json (default: the embedded one).
        #[arg(long)]
        market: Option<std::path::PathBuf>,
        /// Also seal the example's contracts as one IPOW period (16 honest validators, quorum
        /// 3) into a new store at this directory.
        #[arg(long)]
        store: Option<std::path::PathBuf>,
        /// With --store: the node secret file (see `ipow run --help`); without it a new one
        /// is written to DIR.secret beside the store.
        #[arg(long, value_name = "FILE")]
        secret: Option<std::path::PathBuf>,
    },
    /// Run a consensus variant over a generated workload and report throughput, latency, work
    /// and safety against ground truth.
    Run(RunArgs),
    /// Settle a market from a meter readings file: each participant's statement (the shape of
    /// Table 4), and for the paper's market the transfers of each contract.
    Settle {
        /// The readings file (see datasets/paper/readings-*.json). Required for the paper's
        /// market; for a dataset, default: the readings the dataset records.
        #[arg(long)]
        readings: Option<std::path::PathBuf>,
        /// The market: a file in the format of datasets/paper/market.json, or a dataset (binary,
        /// or JSON `ipow-market/2` or `/1`) whose contracts that pass the checks settle as one
        /// period (default: the paper's market, embedded).
        #[arg(long, alias = "market")]
        dataset: Option<std::path::PathBuf>,
        /// The purchaser's share of the transmission cost, as a decimal fraction such as "0.5".
        #[arg(long, default_value = "0.5")]
        share: String,
        /// Every account's opening balance.
        #[arg(long, default_value = DEFAULT_OPENING_BALANCE)]
        opening_balance: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A MATPOWER grid: its summary, or the DC flows of a set of bilateral trades.
    #[command(subcommand)]
    Grid(GridCommand),
    /// Generate a seeded market on a grid and write it as a dataset (binary, or JSON when the
    /// output ends in .json).
    Generate(GenerateArgs),
    /// Inspect, verify or convert a dataset file.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Grow a generated market over sizes through the whole pipeline (generate and sign,
    /// consensus, settle) and report throughput, latency, peak memory and CPU time per size.
    Stress(StressArgs),
    /// Re-verify a store (every link, Merkle root, signature and quorum certificate the viewer
    /// may see) and report what no longer matches; exits non-zero on any finding.
    Audit(AuditArgs),
    /// Print the proof that a contract is committed: its slave block, master block and
    /// consortium block, linked to the store's consortium head.
    Prove {
        /// The store directory.
        #[arg(long)]
        store: std::path::PathBuf,
        /// The contract id, hex.
        #[arg(long)]
        contract: String,
        /// Whose slave chain to prove it through (default: the seller's).
        #[arg(long)]
        party: Option<ipow::base::domain::Address>,
    },
    /// Check a proof printed by `ipow prove` against a consortium head hash alone.
    VerifyProof {
        /// The proof file (JSON).
        #[arg(long)]
        proof: std::path::PathBuf,
        /// The consortium head hash, hex.
        #[arg(long)]
        head: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run every variant of a scenario on the same workload, repetitions interleaved, and write a
    /// report (Markdown, HTML with SVG plots, summary JSON, per-transaction CSV). With no
    /// scenario: the built-in comparison on case118 (what `ipow` with no command runs).
    Compare(CompareArgs),
    /// The seeded fault simulator: each seed draws a market, validators with a mix of faults,
    /// a grid and damage to the store, runs several periods through validate, seal, settle and
    /// store, and checks every invariant; a failure prints its seed and the git revision, and
    /// exits non-zero.
    Simulate {
        /// How many seeds, from --first.
        #[arg(long, default_value_t = 200)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Replay this one seed, printing what it drew and did.
        #[arg(long, conflicts_with_all = ["seeds", "first"])]
        seed: Option<u64>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    /// The store directory.
    #[arg(long)]
    pub(crate) store: std::path::PathBuf,
    /// Who audits: `supervisor` (sees everything) or a participant's address such as 0x1003
    /// (sees its own slave chain's contents and every header).
    #[arg(long = "as", default_value = "supervisor")]
    pub(crate) viewer: String,
    /// Also time the same contracts' signature and Merkle root checks from memory, in the same
    /// process, and print the audit's rate as a ratio of that (supervisor only).
    #[arg(long)]
    pub(crate) baseline: bool,
    /// A consortium head (64 hex digits) kept outside the store, as `ipow run --store` or an
    /// earlier audit printed it: the store must pass through it, so a rollback past it or a
    /// rewritten history before it is a finding. Without it a rollback cannot be excluded.
    #[arg(long, value_name = "HASH")]
    pub(crate) head: Option<String>,
    /// The genesis hash (64 hex digits) kept outside the store: the store must start from it.
    #[arg(long, value_name = "HASH")]
    pub(crate) genesis: Option<String>,
    /// The store's node secret file, kept outside the store: with it the supervisor also checks
    /// every proof's tag (the validators' MAC keys come from it). Every other check, block
    /// signatures included, runs without it.
    #[arg(long, value_name = "FILE")]
    pub(crate) secret: Option<std::path::PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where the main job writes its report.
pub(crate) const DEFAULT_REPORT_DIR: &str = "target/ipow-report";

#[derive(clap::Args)]
pub(crate) struct CompareArgs {
    /// A scenario file (see datasets/scenarios/); default: the built-in comparison
    /// (datasets/scenarios/default-compare.json on case118, embedded).
    #[arg(long)]
    pub(crate) scenario: Option<std::path::PathBuf>,
    /// The report directory (replaced whole if it holds an earlier report).
    #[arg(long, default_value = DEFAULT_REPORT_DIR)]
    pub(crate) out: std::path::PathBuf,
    /// A validator process of case K of the scenario (set by the parent of a case with
    /// `processes` above 1).
    #[arg(long, hide = true, requires = "cluster_rendezvous")]
    pub(crate) cluster_case: Option<usize>,
    /// The parent's rendezvous (set by the parent).
    #[arg(long, hide = true, requires = "process_index")]
    pub(crate) cluster_rendezvous: Option<String>,
    /// This validator process's index (set by the parent).
    #[arg(long, hide = true)]
    pub(crate) process_index: Option<usize>,
}

#[derive(clap::Args)]
pub(crate) struct StressArgs {
    #[command(flatten)]
    pub(crate) variant: VariantArgs,
    /// Market sizes in contracts, comma-separated (default: 1000 to 10,000,000 tenfold).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 100_000, 1_000_000, 10_000_000])]
    pub(crate) sizes: Vec<u64>,
    /// Participants of every role.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) participants: u32,
    /// A MATPOWER case to place the market on and check congestion against.
    #[arg(long)]
    pub(crate) grid: Option<std::path::PathBuf>,
    /// Most contracts generated and held in memory at once.
    #[arg(long, default_value_t = 1 << 20)]
    pub(crate) batch: u64,
    /// Most transactions per consensus period (one block and one ledger period each).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) period_txs: usize,
    #[command(flatten)]
    pub(crate) rates: MarketRates,
    /// Every account's opening balance.
    #[arg(long, default_value = DEFAULT_OPENING_BALANCE)]
    pub(crate) opening_balance: String,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print one JSON object per size (JSON lines) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The generated market's rates, shared by `generate`, `stress` and `run`.
#[derive(clap::Args)]
pub(crate) struct MarketRates {
    /// Fraction of transactions planted invalid, with known reasons.
    #[arg(long, default_value_t = 0.05)]
    pub(crate) invalid: f64,
    /// Fraction of contracts whose meter readings show a default.
    #[arg(long, default_value_t = 0.02)]
    pub(crate) defaults: f64,
    /// Pareto alpha of who trades (e.g. 1.16: about 80% of contracts on 20% of participants;
    /// 0: uniform).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) skew: f64,
    /// On a grid, how tight it is: each delivery slot's expected traded power as a share of
    /// the grid's load at that hour (0.15: 15%; above 1 trades more than the grid's load). How
    /// much is curtailed depends on the grid: at 0.15, under 10% on every shipped one.
    #[arg(long, default_value_t = 0.15)]
    pub(crate) congestion: f64,
    /// Hours of delivery the market trades for, from 00:00 (1 to 168); contracts are spread
    /// over them by a weekday's load shape.
    #[arg(long, default_value_t = 24)]
    pub(crate) horizon_hours: u32,
    /// Length of a delivery slot in minutes, a divisor of 60 (the paper's hour by default):
    /// congestion is checked per slot.
    #[arg(long, default_value_t = 60)]
    pub(crate) slot_minutes: u32,
}

impl MarketRates {
    pub(crate) fn apply(&self, p: &mut WorkloadParams) -> anyhow::Result<()> {
        let flag = |name: &'static str| move |m: String| anyhow::anyhow!("--{name} {m}");
        p.invalid_ppm = fraction_ppm(self.invalid).map_err(flag("invalid"))?;
        p.default_ppm = fraction_ppm(self.defaults).map_err(flag("defaults"))?;
        p.pareto_alpha_milli = pareto_alpha_milli(self.skew).map_err(flag("skew"))?;
        p.delivery = ipow::market::rules::Delivery::new(
            self.slot_minutes,
            self.horizon_hours,
            self.congestion,
        )
        .map_err(|(field, m)| anyhow::anyhow!("--{} {m}", field.replace('_', "-")))?;
        Ok(())
    }
}

#[derive(clap::Args)]
pub(crate) struct GenerateArgs {
    /// A MATPOWER case to place the market on (sellers at generator buses, purchasers at load
    /// buses, transmission companies owning regions). Without it the market is not placed.
    #[arg(long)]
    pub(crate) grid: Option<std::path::PathBuf>,
    /// Participants of every role (10% sellers, 2% transmission companies, 2% grid operators,
    /// 2% sources, a supervisor, the rest purchasers).
    #[arg(long, default_value_t = 1000)]
    pub(crate) participants: u32,
    /// Contracts.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) contracts: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) rates: MarketRates,
    /// Worker threads (default: every core); the output does not depend on it.
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// The dataset to write (binary; JSON when it ends in .json).
    #[arg(long)]
    pub(crate) out: std::path::PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub(crate) enum DatasetCommand {
    /// The header: versions, seed, parameters, counts.
    Info {
        /// A dataset file (binary, or JSON by extension).
        #[arg(long = "dataset", value_name = "FILE")]
        path: std::path::PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read every byte, check every digest, decode every record; count what is inside.
    Verify {
        /// A dataset file.
        #[arg(long = "dataset", value_name = "FILE")]
        path: std::path::PathBuf,
        /// Worker threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Convert between the binary and JSON forms (by the output's extension).
    Convert {
        /// The dataset to read.
        #[arg(long = "dataset", value_name = "FILE")]
        input: std::path::PathBuf,
        /// The dataset to write (JSON for a `.json` name, else binary).
        #[arg(long = "out", value_name = "FILE")]
        output: std::path::PathBuf,
        /// The MATPOWER case the market was placed on, for JSON's bus numbers (default: the
        /// file the dataset names, looked up in datasets/grids/ and beside the dataset).
        #[arg(long, value_name = "FILE")]
        grid: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum GridCommand {
    /// Buses, branches, slack bus and limits of a case.
    Info {
        /// A MATPOWER case file (e.g. datasets/grids/pglib_opf_case118_ieee.m).
        #[arg(long)]
        grid: std::path::PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// DC flows of a trade set on every branch, and the overloaded branches.
    Flows {
        /// A MATPOWER case file.
        #[arg(long)]
        grid: std::path::PathBuf,
        /// A JSON object with a `trades` list of {"seller_bus", "buyer_bus", "mw"} (MATPOWER
        /// bus numbers); none when only a committed base is shown.
        #[arg(long, required_unless_present_any = ["base", "store"])]
        trades: Option<std::path::PathBuf>,
        /// Trades already committed for the same delivery slot, in the same form: the flows
        /// are theirs plus `--trades`, and each shown branch gives the committed base's part.
        #[arg(long, conflicts_with = "store")]
        base: Option<std::path::PathBuf>,
        /// Take the committed base from this store (recorded by `ipow run --grid ... --store`
        /// on the same grid): the trades committed for the slot of `--at`.
        #[arg(long, requires = "at")]
        store: Option<std::path::PathBuf>,
        /// The delivery time whose slot `--store` gives, `HH:MM` or `day N HH:MM`.
        #[arg(long, requires = "store")]
        at: Option<ipow::base::domain::DeliveryTime>,
        /// Print one JSON object ({"flows": [...], "overloaded": [...]}, and "base_flows" in MW
        /// per branch row with `--base`) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The full PTDF (every branch row by every bus), timed; optionally written out as raw
    /// little-endian f64, row-major (branch rows by buses in file order).
    Ptdf {
        /// A MATPOWER case file.
        #[arg(long)]
        grid: std::path::PathBuf,
        /// Write the matrix here (written to a temporary name, then renamed).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Compute it this many times in the process and report each time (the first call
        /// pays for page faults and thread start-up).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ConsensusArg {
    Ipow,
    Pow,
}

#[derive(clap::Args)]
pub(crate) struct VariantArgs {
    /// The consensus variant.
    #[arg(long, value_enum, default_value = "ipow")]
    pub(crate) consensus: ConsensusArg,
    /// IPOW: validators (4 to 10,000).
    #[arg(long, default_value_t = 64)]
    pub(crate) validators: u32,
    /// IPOW: proofs needed to decide a transaction (strict majority among them).
    #[arg(long, default_value_t = 3)]
    pub(crate) quorum: u32,
    /// IPOW: validators that may be asked beyond the quorum in one period.
    #[arg(long, default_value_t = 4)]
    pub(crate) extra: u32,
    /// IPOW: fraction of Byzantine validators.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) byzantine: f64,
    /// IPOW: how Byzantine validators behave: liar, colluder, lazy, crash.
    #[arg(long, default_value = "liar")]
    pub(crate) behaviour: Behaviour,
    /// IPOW: honest validators that are slow (chosen by the seed after the Byzantine ones):
    /// each of their answers misses its period with the --slow-miss chance, and the
    /// supervision node asks another validator.
    #[arg(long, default_value_t = 0)]
    pub(crate) slow: u32,
    /// IPOW: the chance that a slow validator's answer is late, a fraction in [0, 1].
    #[arg(long, default_value_t = 0.5)]
    pub(crate) slow_miss: f64,
    /// PoW: leading zero bits the block hash must have.
    #[arg(long, default_value_t = 20)]
    pub(crate) difficulty: u8,
    /// Most signatures a validator (or the miner) verifies in one batch, whole contracts, at
    /// least one (1 to 65536); verdicts are the same at every size.
    #[arg(long, default_value_t = ipow::crypto::verify::DEFAULT_BATCH)]
    pub(crate) signature_batch: usize,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) variant: VariantArgs,
    /// Contracts in the built-in workload (the paper's market scaled up).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) contracts: usize,
    #[command(flatten)]
    pub(crate) rates: MarketRates,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Most transactions per period (one block per period).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) period_txs: usize,
    /// Open-loop arrival rate in transactions per second (default: closed-loop saturation).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Check line congestion on this MATPOWER grid (sellers at generator buses, purchasers at
    /// load buses; a contract's MWh is that many MW over its one-hour slot).
    #[arg(long)]
    pub(crate) grid: Option<std::path::PathBuf>,
    /// Run a scenario file instead (see datasets/scenarios/): its grid, market, variants,
    /// load and repetitions; any flag but --json beside it is refused.
    #[arg(long)]
    pub(crate) scenario: Option<std::path::PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    /// Persist every sealed block of every chain (slave, master, consortium) in a new store at
    /// this directory; a period counts as committed once it is synced.
    #[arg(long)]
    pub(crate) store: Option<std::path::PathBuf>,
    /// With --store: the node secret file (one line of 64 hex digits, owner-readable only) the
    /// store's block signing keys and the validators' MAC keys come from. The same secret gives
    /// the same store bytes. Without it a new secret is generated and written to DIR.secret
    /// beside the store; keep it apart from the store (`ipow audit --secret` checks proof tags
    /// with it; whoever holds it can sign blocks).
    #[arg(long, value_name = "FILE")]
    pub(crate) secret: Option<std::path::PathBuf>,
    /// Also write each transaction's decision to FILE as CSV (tx, outcome, verdict, reason,
    /// validators asked; no timings): the same seed gives the same file on any number of
    /// threads or processes.
    #[arg(long, value_name = "FILE")]
    pub(crate) decisions: Option<std::path::PathBuf>,
    /// With --store: continue the store a stopped run left (a lost process, a crash) with the
    /// same flags and secret: its committed periods are recomputed and checked byte for byte,
    /// then the run goes on; the store ends as an uninterrupted run writes it.
    #[arg(long)]
    pub(crate) resume: bool,
    /// With --store: print `committed PERIOD HASH` on stdout as each period becomes durable
    /// (for crash tests that kill the process and check nothing committed was lost).
    #[arg(long, hide = true)]
    pub(crate) announce_commits: bool,
    /// Every account's opening balance on the run's ledger (accepted contracts settle on it
    /// from the workload's meter readings after each period commits).
    #[arg(long, default_value = DEFAULT_OPENING_BALANCE)]
    pub(crate) opening_balance: String,
    /// The purchaser's share of the transmission cost, as a decimal fraction such as "0.5".
    #[arg(long, default_value = "0.5")]
    pub(crate) share: String,
    /// IPOW's validators over N processes on this machine: this one (the supervision node,
    /// with validators v mod N = 0) and N - 1 started from this binary; validator v runs in
    /// process v mod N. The same seed gives the same decisions and store bytes as one process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) processes: u16,
    /// IPOW's validators over machines: one host:port per line, process i listening on line
    /// i (line 0: the supervision node). Start every process with the same flags and its own
    /// --process-index.
    #[arg(long, value_name = "FILE")]
    pub(crate) hosts: Option<std::path::PathBuf>,
    /// With --hosts: this process's line in the file, from 0.
    #[arg(long)]
    pub(crate) process_index: Option<usize>,
    /// With --processes or --hosts: how asks travel. `bytes`: each carries the signed
    /// contract (as the paper's supervision node sends it); `index`: transaction numbers,
    /// every process deriving the same market from the same flags.
    #[arg(long, value_enum, default_value = "bytes")]
    pub(crate) ship: ShipArg,
    /// With --processes or --hosts: seconds to wait for every process to connect, counted
    /// from when this process has built its market, before failing with the one missing.
    #[arg(long, default_value_t = 300.0, value_parser = positive_seconds)]
    pub(crate) cluster_timeout: f64,
    /// A child of --processes: its parent's rendezvous (set by the parent).
    #[arg(long, hide = true)]
    pub(crate) cluster_rendezvous: Option<String>,
}

/// How asks travel between processes.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ShipArg {
    /// Each ask carries the signed contract.
    Bytes,
    /// Asks carry transaction numbers.
    Index,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 86_400.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

/// Every account's opening balance unless `--opening-balance` says otherwise, in every command
/// that settles (one default: a run's accounts settle thousands of contracts each).
pub(crate) const DEFAULT_OPENING_BALANCE: &str = "100000000.00";

/// The opening balance and settlement parameters of `--opening-balance` and `--share`.
pub(crate) fn ledger_args(
    opening_balance: &str,
    share: &str,
) -> anyhow::Result<(ipow::base::amount::Money, ipow::ledger::SettlementParams)> {
    let opening = ipow::base::amount::Money::parse(opening_balance)
        .with_context(|| format!("--opening-balance {opening_balance:?}"))?;
    let params = ipow::ledger::SettlementParams {
        purchaser_share_bps: share_bps(share)?,
    };
    Ok((opening, params))
}

/// The purchaser's share of the transmission cost as basis points, parsed exactly: "0.5" is
/// 5000.
pub(crate) fn share_bps(share: &str) -> anyhow::Result<u32> {
    ipow::base::amount::Price::parse(share)
        .ok()
        .filter(|p| p.raw() <= 10_000)
        .and_then(|p| u32::try_from(p.raw()).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--share {share:?}: expected a fraction from 0 to 1 with at most 4 decimals"
            )
        })
}

/// Reads a file of at most `limit` bytes as text, naming it in errors.
pub(crate) fn read_bounded(path: &std::path::Path, limit: u64) -> anyhow::Result<String> {
    Ok(ipow::base::input::read_document(path, limit)?)
}

/// The market in `path`, or the embedded paper market.
pub(crate) fn load_market(path: Option<&std::path::Path>) -> anyhow::Result<PaperMarket> {
    Ok(match path {
        Some(path) => {
            let text = read_bounded(path, ipow::market::paper::MAX_FILE_BYTES)?;
            PaperMarket::from_json(&text, &path.display().to_string())?
        }
        None => {
            PaperMarket::embedded().with_context(|| format!("embedded {EMBEDDED_MARKET_NAME}"))?
        }
    })
}

pub(crate) fn variant_config(v: &VariantArgs, seed: u64) -> anyhow::Result<VariantConfig> {
    Ok(match v.consensus {
        ConsensusArg::Ipow => {
            if !(0.0..=1.0).contains(&v.slow_miss) {
                anyhow::bail!("--slow-miss {} is not a fraction in [0, 1]", v.slow_miss);
            }
            let mut p = IpowParams::honest(v.validators, v.quorum, v.extra, seed)
                .with_byzantine(v.byzantine, v.behaviour)
                .with_signature_batch(v.signature_batch);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let ppm = (v.slow_miss * 1e6).round() as u32;
            p.mix.slow = v.slow;
            p.mix.slow_miss_ppm = ppm;
            p.check().map_err(anyhow::Error::msg)?;
            VariantConfig::Ipow(p)
        }
        ConsensusArg::Pow => VariantConfig::Pow(
            PowParams::new(v.difficulty)
                .map_err(|m| anyhow::anyhow!("--difficulty {m}"))?
                .with_signature_batch(v.signature_batch)
                .map_err(anyhow::Error::msg)?,
        ),
    })
}

pub(crate) fn pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    ipow::base::check_threads(threads).map_err(|m| anyhow::anyhow!("--threads {m}"))?;
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ipow-worker-{i}"))
        .build()?)
}

/// Loads a grid and places a market of `params`' sellers and purchasers on it.
pub(crate) fn load_grid_market(
    params: &WorkloadParams,
) -> impl Fn(&std::path::Path) -> anyhow::Result<ipow::grid::placement::GridMarket> + '_ {
    move |path| {
        let model = ipow::grid::DcModel::new(ipow::grid::Grid::load(path)?)?;
        Ok(ipow::grid::placement::GridMarket::place(
            model,
            params.sellers,
            params.purchasers,
        )?)
    }
}

/// `--contracts` from 1 to the most a workload holds.
pub(crate) fn check_contracts(contracts: usize) -> anyhow::Result<()> {
    let max = ipow::market::rules::MAX_TRANSACTIONS;
    if !(1..=max).contains(&contracts) {
        anyhow::bail!("--contracts {contracts} is outside 1..={max}");
    }
    Ok(())
}
