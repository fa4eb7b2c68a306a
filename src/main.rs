//! The `ipow` command: parses arguments, calls the library, renders, maps errors to exit codes.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use ipow::consensus::ipow::{Behaviour, IpowParams};
use ipow::consensus::pow::PowParams;
use ipow::market::paper::{EMBEDDED_MARKET_NAME, PaperMarket};
use ipow::market::rules::{WorkloadParams, fraction_ppm, pareto_alpha_milli};
use ipow::pipeline::{Committed, Pipeline};
use ipow::pipeline::{Load, RunConfig, RunReport, VariantConfig};
use ipow::report::duration_us;
use ipow::report::paper::PaperReport;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Energy-market transactions validated by Improved Proof of Work (Liu et al. 2020).
#[derive(Parser)]
#[command(name = "ipow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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
        /// or JSON `ipow-market/1`) whose contracts that pass the checks settle as one period
        /// (default: the paper's market, embedded).
        #[arg(long, alias = "market")]
        dataset: Option<std::path::PathBuf>,
        /// The purchaser's share of the transmission cost, as a decimal fraction such as "0.5".
        #[arg(long, default_value = "0.5")]
        share: String,
        /// Every account's opening balance.
        #[arg(long, default_value = "10000.00")]
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
struct AuditArgs {
    /// The store directory.
    #[arg(long)]
    store: std::path::PathBuf,
    /// Who audits: `supervisor` (sees everything) or a participant's address such as 0x1003
    /// (sees its own slave chain's contents and every header).
    #[arg(long = "as", default_value = "supervisor")]
    viewer: String,
    /// Also time the same contracts' signature and Merkle root checks from memory, in the same
    /// process, and print the audit's rate as a ratio of that (supervisor only).
    #[arg(long)]
    baseline: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Where the main job writes its report.
const DEFAULT_REPORT_DIR: &str = "target/ipow-report";

#[derive(clap::Args)]
struct CompareArgs {
    /// A scenario file (see datasets/scenarios/); default: the built-in comparison
    /// (datasets/scenarios/default-compare.json on case118, embedded).
    #[arg(long)]
    scenario: Option<std::path::PathBuf>,
    /// The report directory (replaced whole if it holds an earlier report).
    #[arg(long, default_value = DEFAULT_REPORT_DIR)]
    out: std::path::PathBuf,
}

#[derive(clap::Args)]
struct StressArgs {
    #[command(flatten)]
    variant: VariantArgs,
    /// Market sizes in contracts, comma-separated (default: 1000 to 10,000,000 tenfold).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000u64, 10_000, 100_000, 1_000_000, 10_000_000])]
    sizes: Vec<u64>,
    /// Participants of every role.
    #[arg(long, default_value_t = 10_000)]
    participants: u32,
    /// A MATPOWER case to place the market on and check congestion against.
    #[arg(long)]
    grid: Option<std::path::PathBuf>,
    /// Most contracts generated and held in memory at once.
    #[arg(long, default_value_t = 1 << 20)]
    batch: u64,
    /// Most transactions per consensus period (one block and one ledger period each).
    #[arg(long, default_value_t = 10_000)]
    period_txs: usize,
    #[command(flatten)]
    rates: MarketRates,
    /// Every account's opening balance.
    #[arg(long, default_value = "100000000.00")]
    opening_balance: String,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object per size (JSON lines) instead of a table.
    #[arg(long)]
    json: bool,
}

/// The generated market's rates, shared by `generate`, `stress` and `run`.
#[derive(clap::Args)]
struct MarketRates {
    /// Fraction of transactions planted invalid, with known reasons.
    #[arg(long, default_value_t = 0.05)]
    invalid: f64,
    /// Fraction of contracts whose meter readings show a default.
    #[arg(long, default_value_t = 0.02)]
    defaults: f64,
    /// Pareto alpha of who trades (e.g. 1.16: about 80% of contracts on 20% of participants;
    /// 0: uniform).
    #[arg(long, default_value_t = 0.0)]
    skew: f64,
}

impl MarketRates {
    fn apply(&self, p: &mut WorkloadParams) -> anyhow::Result<()> {
        let flag = |name: &'static str| move |m: String| anyhow::anyhow!("--{name} {m}");
        p.invalid_ppm = fraction_ppm(self.invalid).map_err(flag("invalid"))?;
        p.default_ppm = fraction_ppm(self.defaults).map_err(flag("defaults"))?;
        p.pareto_alpha_milli = pareto_alpha_milli(self.skew).map_err(flag("skew"))?;
        Ok(())
    }
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// A MATPOWER case to place the market on (sellers at generator buses, purchasers at load
    /// buses, transmission companies owning regions). Without it the market is not placed.
    #[arg(long)]
    grid: Option<std::path::PathBuf>,
    /// Participants of every role (10% sellers, 2% transmission companies, 2% grid operators,
    /// 2% sources, a supervisor, the rest purchasers).
    #[arg(long, default_value_t = 1000)]
    participants: u32,
    /// Contracts.
    #[arg(long, default_value_t = 10_000)]
    contracts: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    rates: MarketRates,
    /// Worker threads (default: every core); the output does not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// The dataset to write (binary; JSON when it ends in .json).
    #[arg(long)]
    out: std::path::PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// The header: versions, seed, parameters, counts.
    Info {
        /// A dataset file (binary, or JSON by extension).
        path: std::path::PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Read every byte, check every digest, decode every record; count what is inside.
    Verify {
        /// A dataset file.
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
        input: std::path::PathBuf,
        /// The dataset to write.
        output: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum GridCommand {
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
        /// A JSON object with a `trades` list of {"seller_bus", "buyer_bus", "mw"}.
        #[arg(long)]
        trades: std::path::PathBuf,
        /// Print one JSON object ({"flows": [...], "overloaded": [...]}) instead of text.
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
enum ConsensusArg {
    Ipow,
    Pow,
}

#[derive(clap::Args)]
struct VariantArgs {
    /// The consensus variant.
    #[arg(long, value_enum, default_value = "ipow")]
    consensus: ConsensusArg,
    /// IPOW: validators (4 to 10,000).
    #[arg(long, default_value_t = 64)]
    validators: u32,
    /// IPOW: proofs needed to decide a transaction (strict majority among them).
    #[arg(long, default_value_t = 3)]
    quorum: u32,
    /// IPOW: validators that may be asked beyond the quorum in one period.
    #[arg(long, default_value_t = 4)]
    extra: u32,
    /// IPOW: fraction of Byzantine validators.
    #[arg(long, default_value_t = 0.0)]
    byzantine: f64,
    /// IPOW: how Byzantine validators behave: liar, colluder, lazy, crash.
    #[arg(long, default_value = "liar")]
    behaviour: Behaviour,
    /// PoW: leading zero bits the block hash must have.
    #[arg(long, default_value_t = 20)]
    difficulty: u8,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    variant: VariantArgs,
    /// Contracts in the built-in workload (the paper's market scaled up).
    #[arg(long, default_value_t = 20_000)]
    contracts: usize,
    #[command(flatten)]
    rates: MarketRates,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Most transactions per period (one block per period).
    #[arg(long, default_value_t = 10_000)]
    period_txs: usize,
    /// Open-loop arrival rate in transactions per second (default: closed-loop saturation).
    #[arg(long)]
    rate: Option<f64>,
    /// Check line congestion on this MATPOWER grid (sellers at generator buses, purchasers at
    /// load buses; a contract's MWh is that many MW over its one-hour slot).
    #[arg(long)]
    grid: Option<std::path::PathBuf>,
    /// Run a scenario file instead (see datasets/scenarios/): its grid, market, variants,
    /// load and repetitions; the flags above are then ignored.
    #[arg(long)]
    scenario: Option<std::path::PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Persist every sealed block of every chain (slave, master, consortium) in a new store at
    /// this directory; a period counts as committed once it is synced.
    #[arg(long)]
    store: Option<std::path::PathBuf>,
    /// With --store: print `committed PERIOD HASH` on stdout as each period becomes durable
    /// (for crash tests that kill the process and check nothing committed was lost).
    #[arg(long, hide = true)]
    announce_commits: bool,
    /// Every account's opening balance on the run's ledger (accepted contracts settle on it
    /// from the workload's meter readings after each period commits).
    #[arg(long, default_value = "100000000.00")]
    opening_balance: String,
    /// The purchaser's share of the transmission cost, as a decimal fraction such as "0.5".
    #[arg(long, default_value = "0.5")]
    share: String,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The main job: the built-in comparison, report under target/ipow-report.
    let command = cli.command.unwrap_or(Command::Compare(CompareArgs {
        scenario: None,
        out: std::path::PathBuf::from(DEFAULT_REPORT_DIR),
    }));
    match command {
        Command::Compare(args) => compare_command(&args)?,
        Command::Paper {
            json,
            market,
            store,
        } => {
            let market = load_market(market.as_deref())?;
            let report = PaperReport::build(&market)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            if let Some(dir) = store {
                let head = paper_store(&market, &dir)?;
                eprintln!(
                    "stored the example's {} contracts as period 0 in {}; consortium head {}",
                    market.contracts.len(),
                    dir.display(),
                    hex::encode(head)
                );
            }
        }
        Command::Audit(args) => audit_command(&args)?,
        Command::Prove {
            store,
            contract,
            party,
        } => {
            let id: [u8; 32] = hex::decode(&contract)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("--contract {contract:?}: expected 64 hex digits")
                })?;
            let proof = ipow::chain::audit::prove(&store, &id, party)?;
            println!("{}", serde_json::to_string_pretty(&proof)?);
        }
        Command::VerifyProof { proof, head, json } => {
            let name = proof.display().to_string();
            let text = read_bounded(&proof, 64 << 20)?;
            let parsed: ipow::chain::ContractProof =
                serde_json::from_str(ipow::base::input::strip_bom(&text))
                    .with_context(|| format!("{name}: not a contract proof"))?;
            let head_hash: [u8; 32] = hex::decode(&head)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| anyhow::anyhow!("--head {head:?}: expected 64 hex digits"))?;
            let proven = ipow::chain::verify_proof(&parsed, &head_hash)
                .map_err(|e| anyhow::anyhow!("{name}: proof does not verify: {e}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&proven)?);
            } else {
                println!(
                    "valid: contract {} is on {} in period {}, consortium block {} ({} blocks \
                     below the head)",
                    proven.contract,
                    proven.slave,
                    proven.period,
                    proven.consortium_height,
                    proven.depth
                );
            }
        }
        Command::Run(args) => run_command(&args)?,
        Command::Grid(cmd) => grid_command(&cmd)?,
        Command::Generate(args) => generate_command(&args)?,
        Command::Dataset(cmd) => dataset_command(&cmd)?,
        Command::Stress(args) => stress_command(&args)?,
        Command::Simulate {
            seeds,
            first,
            seed,
            json,
        } => simulate_command(seeds, first, seed, json)?,
        Command::Settle {
            readings,
            dataset,
            share,
            opening_balance,
            json,
        } => settle_command(
            dataset.as_deref(),
            readings.as_deref(),
            &share,
            &opening_balance,
            json,
        )?,
    }
    Ok(())
}

/// True when a JSON text carries the paper's market format tag (any `ipow-paper-market/`
/// version, so a wrong version is reported by the paper market's reader).
fn is_paper_market(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Tag {
        format: Option<String>,
    }
    serde_json::from_str::<Tag>(ipow::base::input::strip_bom(text))
        .ok()
        .and_then(|t| t.format)
        .is_some_and(|f| f.starts_with("ipow-paper-market/"))
}

fn settle_command(
    dataset: Option<&std::path::Path>,
    readings: Option<&std::path::Path>,
    share: &str,
    opening_balance: &str,
    json: bool,
) -> anyhow::Result<()> {
    let params = ipow::ledger::SettlementParams {
        purchaser_share_bps: share_bps(share)?,
    };
    let opening = ipow::base::amount::Money::parse(opening_balance)
        .with_context(|| format!("--opening-balance {opening_balance:?}"))?;
    // A JSON file is read once, then taken as the paper's market or a dataset by its tag.
    let text = match dataset {
        Some(path) if ipow::market::dataset::is_json(path) => {
            Some(read_bounded(path, ipow::market::dataset::MAX_JSON_BYTES)?)
        }
        _ => None,
    };
    if dataset.is_none() || text.as_deref().is_some_and(is_paper_market) {
        let market = match (dataset, text) {
            (Some(path), Some(text)) => PaperMarket::from_json(&text, &path.display().to_string())?,
            _ => PaperMarket::embedded()
                .with_context(|| format!("embedded {EMBEDDED_MARKET_NAME}"))?,
        };
        let Some(readings) = readings else {
            anyhow::bail!("--readings: required for the paper's market (see datasets/paper/)");
        };
        let path = readings.display().to_string();
        let text = read_bounded(readings, ipow::market::readings::MAX_FILE_BYTES)?;
        let lookup = |name: &str| {
            market
                .contracts
                .iter()
                .position(|c| c.name == name || c.signed.id().to_string() == name)
        };
        let readings =
            ipow::market::readings::parse(&text, &path, market.contracts.len(), &lookup)?;
        let report =
            ipow::report::paper::SettlementReport::build(&market, &readings, &params, opening)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.render_text());
        }
        return Ok(());
    }
    let Some(path) = dataset else {
        anyhow::bail!("--dataset: no market given");
    };
    let name = path.display().to_string();
    let d = match text {
        Some(text) => ipow::market::dataset::from_json(&name, &text)?,
        None => ipow::market::dataset::read_binary(path)?,
    };
    let given = match readings {
        None => None,
        Some(r) => {
            let file = r.display().to_string();
            let text = read_bounded(r, ipow::market::readings::MAX_FILE_BYTES)?;
            let count = d.workload.transactions.len();
            let mut by_id: std::collections::HashMap<String, usize> =
                std::collections::HashMap::with_capacity(count);
            for (i, tx) in d.workload.transactions.iter().enumerate().rev() {
                by_id.insert(tx.id().to_string(), i);
            }
            let lookup = |reference: &str| {
                by_id.get(reference).copied().or_else(|| {
                    reference
                        .parse::<usize>()
                        .ok()
                        .filter(|&i| i < count && !reference.starts_with('+'))
                })
            };
            Some((
                file.clone(),
                ipow::market::readings::parse_partial(&text, &file, count, &lookup)?,
            ))
        }
    };
    let report = ipow::pipeline::settle::settle_dataset(
        &d,
        &name,
        given.as_ref().map(|(f, r)| (f.as_str(), r.as_slice())),
        &params,
        opening,
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_dataset_settlement(&report));
    }
    Ok(())
}

fn render_dataset_settlement(r: &ipow::pipeline::settle::DatasetSettlement) -> String {
    const SHOWN: usize = 40;
    let mut out = format!(
        "settlement of {} (readings: {}), every account opening at {}, purchaser's share of \
         transmission {} bps\n",
        r.dataset, r.readings, r.opening_balance, r.purchaser_share_bps
    );
    let funds = r
        .excluded
        .iter()
        .filter(|e| e.reason == "insufficient_funds")
        .count();
    out += &format!(
        "contracts     {} in the file, {} pass the checks, {} settled, {} failed for lack of \
         funds, {} rejected by the checks\n\n",
        r.contracts,
        r.accepted,
        r.settled,
        funds,
        r.excluded.len() - funds
    );
    out += &ipow::ledger::render_statements(&r.statements, "role", SHOWN);
    out += &format!(
        "\nbalance changes sum to zero: {}\n",
        if r.conserved { "yes" } else { "NO" }
    );
    out
}

/// The purchaser's share of the transmission cost as basis points, parsed exactly: "0.5" is
/// 5000.
fn share_bps(share: &str) -> anyhow::Result<u32> {
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
fn read_bounded(path: &std::path::Path, limit: u64) -> anyhow::Result<String> {
    let name = path.display().to_string();
    let size = std::fs::metadata(path)
        .with_context(|| format!("{name}: cannot read"))?
        .len();
    if size > limit {
        anyhow::bail!("{name}: {size} bytes is over the {limit} byte limit");
    }
    std::fs::read_to_string(path).with_context(|| format!("{name}: cannot read"))
}

/// The store's genesis for a market's members and a run's variant.
/// Seals the paper's contracts as one IPOW period into a new store; returns the consortium head.
fn paper_store(market: &PaperMarket, dir: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let workload = market.workload();
    let variant = VariantConfig::Ipow(IpowParams::honest(16, 3, 4, market.key_seed));
    let members = market
        .participants
        .values()
        .map(|p| ipow::chain::StoredMember {
            address: p.address,
            role: p.role,
            public_key: *ipow::crypto::keys::KeyPair::derive(market.key_seed, p.address)
                .public_key()
                .as_bytes(),
        })
        .collect();
    let mut writer =
        ipow::chain::store::StoreWriter::create(dir, &ipow::pipeline::genesis(members, &variant))?;
    let config = RunConfig {
        variant,
        period_txs: workload.transactions.len(),
        load: Load::ClosedLoop,
    };
    let mut head = None;
    let mut keep_head = |c: &Committed<'_>| head = c.head;
    let report = Pipeline::new(&config, &workload)
        .record(&mut writer)
        .on_period(&mut keep_head)
        .run(&mut |_, _| {})?;
    if report.accepted != workload.transactions.len() as u64 {
        anyhow::bail!(
            "{} of the example's {} contracts were accepted; expected all",
            report.accepted,
            workload.transactions.len()
        );
    }
    head.context("the example sealed no period")
}

fn audit_command(args: &AuditArgs) -> anyhow::Result<()> {
    use ipow::chain::audit::{AuditOptions, Viewer};
    let viewer = if args.viewer == "supervisor" {
        Viewer::Supervisor
    } else {
        Viewer::Participant(args.viewer.parse().map_err(|e| {
            anyhow::anyhow!(
                "--as {:?}: expected supervisor or an address ({e})",
                args.viewer
            )
        })?)
    };
    if !args.store.join(ipow::chain::store::LOG_FILE).exists() {
        anyhow::bail!(
            "{}: no store here (no {})",
            args.store.display(),
            ipow::chain::store::LOG_FILE
        );
    }
    let report = ipow::chain::audit::audit(
        &args.store,
        AuditOptions {
            viewer,
            baseline: args.baseline,
        },
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_audit(&report));
    }
    if !report.clean {
        anyhow::bail!(
            "{}: {} finding(s); the store does not verify",
            args.store.display(),
            report.findings.len()
        );
    }
    Ok(())
}

fn render_audit(r: &ipow::chain::audit::AuditReport) -> String {
    let mut out = format!(
        "audit of {} as {}: {} complete periods; head {}\n",
        r.store,
        r.viewer,
        r.periods,
        r.head.as_deref().unwrap_or("(none)")
    );
    out += &format!(
        "read          {} slave blocks ({} opened), {} master blocks, {} consortium blocks\n",
        r.slave_blocks, r.slave_blocks_opened, r.master_blocks, r.consortium_blocks
    );
    out += &format!(
        "checked       {} committed contracts, {} copies, {} signature sets, {} certificate \
         entries, {} proof tags\n",
        r.contracts_committed,
        r.contract_copies_checked,
        r.contracts_signature_checked,
        r.certificate_entries_checked,
        r.tags_checked
    );
    out += &format!(
        "rate          {:.0} contracts/s over {:.3} s\n",
        r.contracts_per_s, r.seconds
    );
    if let Some(b) = &r.baseline {
        out += &format!(
            "baseline      in memory {:.0} contracts/s over {:.3} s: the audit runs at {:.2}x\n",
            b.contracts_per_s, b.seconds, b.audit_ratio
        );
    }
    if r.torn_tail_bytes > 0 {
        out += &format!(
            "torn tail     {} bytes after the last complete period (a crash during a write), \
             ignored\n",
            r.torn_tail_bytes
        );
    }
    if r.clean {
        out += "clean: every link, root, signature and certificate verifies\n";
    }
    for f in &r.findings {
        out += &format!("FINDING {}", f.chain);
        if let Some(p) = f.period {
            out += &format!(" period {p}");
        }
        if let Some(h) = f.height {
            out += &format!(" height {h}");
        }
        if let Some(o) = f.offset {
            out += &format!(" (log byte {o})");
        }
        if let Some(c) = &f.contract {
            out += &format!(" contract {c}");
        }
        if let Some(p) = f.position {
            out += &format!(" at position {p}");
        }
        if let Some(field) = &f.field {
            out += &format!(" field {field}");
        }
        out += &format!(": {}\n", f.message);
        for n in &f.path {
            out += &format!(
                "    node level {} index {} leaves [{}, {}): expected {} stored {}\n",
                n.level,
                n.index,
                n.leaves.0,
                n.leaves.1,
                &n.expected[..16],
                &n.stored[..16]
            );
        }
    }
    out
}

/// The market in `path`, or the embedded paper market.
fn load_market(path: Option<&std::path::Path>) -> anyhow::Result<PaperMarket> {
    Ok(match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            PaperMarket::from_json(&text, &path.display().to_string())?
        }
        None => {
            PaperMarket::embedded().with_context(|| format!("embedded {EMBEDDED_MARKET_NAME}"))?
        }
    })
}

fn variant_config(v: &VariantArgs, seed: u64) -> anyhow::Result<VariantConfig> {
    Ok(match v.consensus {
        ConsensusArg::Ipow => {
            let p = IpowParams::honest(v.validators, v.quorum, v.extra, seed)
                .with_byzantine(v.byzantine, v.behaviour);
            p.check().map_err(anyhow::Error::msg)?;
            VariantConfig::Ipow(p)
        }
        ConsensusArg::Pow => {
            if v.difficulty > 64 {
                anyhow::bail!("--difficulty {} is above 64 bits", v.difficulty);
            }
            VariantConfig::Pow(PowParams {
                difficulty_bits: v.difficulty,
            })
        }
    })
}

fn run_command(args: &RunArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if let Some(path) = &args.scenario {
        return scenario_command(path, args.json);
    }
    if args.contracts > ipow::market::rules::MAX_TRANSACTIONS {
        anyhow::bail!(
            "--contracts {} is above the limit of {}",
            args.contracts,
            ipow::market::rules::MAX_TRANSACTIONS
        );
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        anyhow::bail!("--rate {rate} must be a positive number of transactions per second");
    }
    let variant = variant_config(&args.variant, args.seed)?;
    let pool = pool(args.threads)?;
    let opening = ipow::base::amount::Money::parse(&args.opening_balance)
        .with_context(|| format!("--opening-balance {:?}", args.opening_balance))?;
    let settle_params = ipow::ledger::SettlementParams {
        purchaser_share_bps: share_bps(&args.share)?,
    };
    let config = RunConfig {
        variant,
        period_txs: args.period_txs,
        load: match args.rate {
            Some(rate) => Load::OpenLoop { rate },
            None => Load::ClosedLoop,
        },
    };
    let mut params = WorkloadParams::scaled_paper(args.seed, args.contracts);
    args.rates.apply(&mut params)?;
    let terminal = std::io::stderr().is_terminal() && !args.json;
    if terminal {
        eprintln!("generating {} signed contracts...", args.contracts);
    }
    let market = args
        .grid
        .as_deref()
        .map(load_grid_market(&params))
        .transpose()?;
    let announce = args.announce_commits;
    let report = pool.install(|| -> anyhow::Result<RunReport> {
        let generated = ipow::market::generator::Market::new(params.clone(), None);
        let workload =
            generated.batch(0..params.contracts.min(ipow::market::rules::MAX_TRANSACTIONS) as u64);
        let mut writer = match &args.store {
            Some(dir) => {
                let members = generated.members.iter().map(Into::into).collect();
                Some(ipow::chain::store::StoreWriter::create(
                    dir,
                    &ipow::pipeline::genesis(members, &config.variant),
                )?)
            }
            None => None,
        };
        let bar = indicatif::ProgressBar::hidden();
        bar.set_length(workload.transactions.len() as u64);
        let started = std::time::Instant::now();
        let addresses: Vec<_> = generated.members.iter().map(|m| m.address).collect();
        let mut settler =
            ipow::pipeline::settle::PeriodSettler::new(&addresses, opening, settle_params);
        // --announce-commits: each period's consortium head once it is durable and settled.
        let mut announce_commit = |c: &Committed<'_>| {
            if let (true, Some(head)) = (announce, c.head) {
                use std::io::Write as _;
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "committed {} {}", c.period, hex::encode(head));
                let _ = stdout.flush();
            }
        };
        let mut pipeline = Pipeline::new(&config, &workload)
            .grid(market.as_ref())
            .settle(&mut settler)
            .on_period(&mut announce_commit);
        if let Some(writer) = writer.as_mut() {
            pipeline = pipeline.record(writer);
        }
        let report = pipeline.run(&mut |done, _total| {
            if terminal && bar.is_hidden() && started.elapsed().as_secs() >= 1 {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_position(done);
        })?;
        bar.finish_and_clear();
        Ok(report)
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_run(&report));
    }
    Ok(())
}

fn simulate_command(seeds: u64, first: u64, seed: Option<u64>, json: bool) -> anyhow::Result<()> {
    use ipow::lab::simulate;
    let work = simulate::work_dir();
    if let Some(seed) = seed {
        let result = simulate::run_seed(seed, &work);
        let _ = std::fs::remove_dir_all(&work);
        let report = result?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "seed {seed}: every invariant holds (git {})",
                simulate::REVISION
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        return Ok(());
    }
    let bar = bar(seeds, "seeds", json);
    let summary = simulate::run_seeds(first, seeds, &work, &mut |r| {
        if let Err(v) = r {
            bar.suspend(|| eprintln!("FAILED {v}"));
        }
        bar.inc(1);
    });
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&work);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render_simulation(&summary));
    }
    if !summary.failures.is_empty() {
        anyhow::bail!(
            "{} of {} seeds broke an invariant (git {}); the first: {}",
            summary.failures.len(),
            summary.seeds,
            summary.revision,
            summary.failures[0]
        );
    }
    Ok(())
}

fn render_simulation(s: &ipow::lab::simulate::Summary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "seeds {}..{} (git {}): {} passed, {} failed, in {:.1} s",
        s.first_seed,
        s.first_seed + s.seeds,
        s.revision,
        s.passed,
        s.failures.len(),
        s.seconds
    );
    let _ = writeln!(
        out,
        "{} periods, {} transactions through validate, seal, settle and store",
        s.periods, s.transactions
    );
    let _ = writeln!(
        out,
        "within the safety bound: {} seeds, {} wrong decisions",
        s.seeds_within_bound, s.wrong_within_bound
    );
    let t = &s.tail_above_bound;
    let _ = writeln!(
        out,
        "above it: {} wrong of {} decided in their first period, {:.1} expected (z = {:.2})",
        t.wrong, t.decided, t.expected, s.tail_z
    );
    let _ = writeln!(out, "faults injected:");
    for (k, v) in &s.faults {
        let _ = writeln!(out, "  {k:<28} {v}");
    }
    for f in &s.failures {
        let _ = writeln!(out, "FAILED {f}");
    }
    out
}

fn pool(threads: Option<usize>) -> anyhow::Result<rayon::ThreadPool> {
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ipow-worker-{i}"))
        .build()?)
}

/// A progress bar on stderr when it is a terminal, hidden otherwise.
fn bar(len: u64, what: &str, quiet: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
    ) {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(what.to_owned());
    b
}

fn generate_command(args: &GenerateArgs) -> anyhow::Result<()> {
    use ipow::market::dataset;
    if args.contracts > ipow::market::rules::MAX_TRANSACTIONS {
        anyhow::bail!("--contracts {} is above the limit", args.contracts);
    }
    let mut params = WorkloadParams::for_participants(args.seed, args.participants, args.contracts);
    args.rates.apply(&mut params)?;
    let grid = args
        .grid
        .as_deref()
        .map(load_grid_market(&params))
        .transpose()?;
    let grid_name = args
        .grid
        .as_deref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let started = std::time::Instant::now();
    let digest = pool(args.threads)?.install(|| -> anyhow::Result<Option<[u8; 32]>> {
        let market = ipow::market::generator::Market::new(params.clone(), grid.as_ref());
        let header = dataset::header_for(
            &params,
            grid_name.as_deref(),
            &market.rules,
            market.members.len() as u64,
        );
        let total = params.contracts as u64;
        if dataset::is_json(&args.out) {
            let d = dataset::Dataset {
                header,
                members: market.members.clone(),
                workload: market.batch(0..total),
            };
            dataset::write_any(&args.out, &d)?;
            return Ok(None);
        }
        let mut writer = dataset::Writer::create(&args.out, header, &market.members)?;
        let progress = bar(total, "generate", args.json);
        let step = 64 * u64::from(dataset::CHUNK_RECORDS);
        let mut at = 0;
        while at < total {
            let end = (at + step).min(total);
            writer.write(&market.batch(at..end))?;
            progress.set_position(end);
            at = end;
        }
        progress.finish_and_clear();
        Ok(Some(writer.finish()?))
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    let summary = serde_json::json!({
        "out": args.out.display().to_string(),
        "contracts": args.contracts,
        "bytes": bytes,
        "sha256": digest.map(hex::encode),
        "seconds": seconds,
        "contracts_per_s": if seconds > 0.0 { args.contracts as f64 / seconds } else { 0.0 },
        "threads": rayon::current_num_threads(),
    });
    if args.json {
        println!("{summary}");
    } else {
        println!(
            "wrote {} contracts to {} ({bytes} bytes) in {seconds:.2} s ({:.0} contracts/s){}",
            args.contracts,
            args.out.display(),
            summary["contracts_per_s"].as_f64().unwrap_or(0.0),
            digest
                .map(|d| format!("; SHA-256 {}", hex::encode(d)))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn stress_command(args: &StressArgs) -> anyhow::Result<()> {
    use ipow::lab::stress::{Step, StressConfig, stress_size};
    let mut market = WorkloadParams::for_participants(args.seed, args.participants, 0);
    args.rates.apply(&mut market)?;
    if let Some(&s) = args
        .sizes
        .iter()
        .find(|&&s| s == 0 || s > u64::from(u32::MAX))
    {
        anyhow::bail!("--sizes: {s} is outside 1..={}", u32::MAX);
    }
    let config = StressConfig {
        sizes: args.sizes.clone(),
        market: market.clone(),
        run: RunConfig {
            variant: variant_config(&args.variant, args.seed)?,
            period_txs: args.period_txs,
            load: Load::ClosedLoop,
        },
        batch: args.batch,
        opening_balance: ipow::base::amount::Money::parse(&args.opening_balance)
            .with_context(|| format!("--opening-balance {:?}", args.opening_balance))?,
    };
    let grid = args
        .grid
        .as_deref()
        .map(load_grid_market(&market))
        .transpose()?;
    let pool = pool(args.threads)?;
    if !args.json {
        println!(
            "stress: {} on {} threads, {} participants, batches of {}, grid {}",
            config.run.variant_name(),
            pool.current_num_threads(),
            args.participants,
            args.batch,
            args.grid
                .as_ref()
                .map_or("none".into(), |g| g.display().to_string())
        );
        println!(
            "{:>10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
            "contracts",
            "gen s",
            "cons s",
            "settle s",
            "wall s",
            "tx/s",
            "commit/s",
            "p50",
            "p99",
            "max",
            "peak RSS",
            "CPU s",
            "money"
        );
    }
    for &size in &config.sizes {
        let multi = indicatif::MultiProgress::new();
        let bars: Vec<indicatif::ProgressBar> = ["generate", "consensus", "settle"]
            .iter()
            .map(|w| multi.add(bar(size, w, args.json)))
            .collect();
        let row = pool.install(|| {
            stress_size(&config, size, grid.as_ref(), &mut |step, done, _| {
                let i = match step {
                    Step::Generate => 0,
                    Step::Consensus => 1,
                    Step::Settle => 2,
                };
                bars[i].set_position(done);
            })
        })?;
        for b in &bars {
            b.finish_and_clear();
        }
        if args.json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            let st = &row.stages;
            #[allow(clippy::cast_precision_loss)]
            let rss = row.peak_rss_bytes as f64 / f64::from(1u32 << 30);
            println!(
                "{:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10.0} {:>10.0} {:>9} {:>9} {:>9} {:>7.2}Gi {:>9.1} {:>6}",
                row.contracts,
                st.setup + st.generate,
                st.consensus,
                st.settle,
                row.wall_seconds,
                row.contracts_per_s,
                row.committed_per_s,
                duration_us(row.latency_commit.p50_us),
                duration_us(row.latency_commit.p99_us),
                duration_us(row.latency_commit.max_us),
                rss,
                row.cpu_seconds,
                if row.conserved { "ok" } else { "LOST" }
            );
        }
        if !row.conserved {
            anyhow::bail!("size {size}: the ledger's total changed");
        }
    }
    Ok(())
}

fn scenario_command(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    use ipow::lab::scenario::{self, Market};
    let sc = scenario::load(path)?;
    if let Some(stress) = &sc.stress {
        let Market::Generated(market) = &sc.market else {
            anyhow::bail!(
                "{}: stress: needs a generated market, not a dataset",
                path.display()
            );
        };
        let grid = sc
            .grid
            .as_deref()
            .map(load_grid_market(market))
            .transpose()?;
        for (k, case) in sc.cases.iter().enumerate() {
            let pool = pool(case.threads)?;
            let config = ipow::lab::stress::StressConfig {
                sizes: stress.sizes.clone(),
                market: market.clone(),
                run: case.config.clone(),
                batch: stress.batch,
                opening_balance: ipow::base::amount::Money::parse("100000000.00")?,
            };
            for &size in &stress.sizes {
                let row = pool.install(|| {
                    ipow::lab::stress::stress_size(&config, size, grid.as_ref(), &mut |_, _, _| {})
                })?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"case": k, "name": case.label, "row": row})
                    );
                } else {
                    println!(
                        "{} {}: {size} contracts in {:.2} s ({:.0}/s), committed {}, peak RSS {:.2} GiB, money {}",
                        sc.name,
                        case.label,
                        row.wall_seconds,
                        row.contracts_per_s,
                        row.accepted,
                        f64::from(u32::try_from(row.peak_rss_bytes >> 20).unwrap_or(u32::MAX))
                            / 1024.0,
                        if row.conserved {
                            "conserved"
                        } else {
                            "NOT CONSERVED"
                        }
                    );
                }
            }
        }
        return Ok(());
    }
    let grid = sc.grid.as_deref().map(ipow::grid::Grid::load).transpose()?;
    let name = sc.grid.as_ref().map(|g| g.display().to_string());
    let grid = grid.as_ref().zip(name.as_deref()).map(|(g, n)| (n, g));
    let cmp = execute_with_progress(&sc, &path.display().to_string(), grid, json)?;
    if json {
        let runs: Vec<serde_json::Value> = cmp
            .runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "repetition": r.repetition,
                    "case": r.case,
                    "label": cmp.cases[r.case].label,
                    "report": r.report,
                })
            })
            .collect();
        println!("{}", serde_json::json!({"scenario": sc.name, "runs": runs}));
    } else {
        println!(
            "scenario {}: {} cases x {} repetitions (interleaved), grid {}",
            sc.name,
            sc.cases.len(),
            sc.repetitions,
            sc.grid
                .as_ref()
                .map_or("none".into(), |g| g.display().to_string())
        );
        print!("{}", render_rows(&cmp));
    }
    Ok(())
}

/// Runs a comparison with a progress bar over its runs when stderr is a terminal.
fn execute_with_progress(
    sc: &ipow::lab::scenario::Scenario,
    source: &str,
    grid: Option<(&str, &ipow::grid::Grid)>,
    quiet: bool,
) -> anyhow::Result<ipow::lab::compare::Comparison> {
    let total = sc.cases.len() as u64 * u64::from(sc.repetitions);
    let bar = bar(total, "runs", quiet);
    let cmp = ipow::lab::compare::execute(sc, source, grid, &mut |done, _, label| {
        bar.set_position(done as u64);
        bar.set_message(label.to_owned());
    })?;
    bar.finish_and_clear();
    Ok(cmp)
}

/// The per-run results table for a terminal.
fn render_rows(cmp: &ipow::lab::compare::Comparison) -> String {
    use ipow::report::{duration_us, percent};
    let mut out = format!(
        "{:<26} {:>3} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>24}\n",
        "case",
        "rep",
        "submitted",
        "accepted",
        "rejected",
        "undecided",
        "curtailed",
        "commit/s",
        "p50",
        "p99",
        "CPU-us/tx",
        "wrong accepts (expected)"
    );
    for r in cmp.rows() {
        out += &format!(
            "{:<26} {:>3} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10.0} {:>9} {:>9} {:>9.1} {:>24}\n",
            r.label,
            r.repetition,
            r.submitted,
            r.accepted,
            r.rejected,
            r.undecided,
            r.curtailed,
            r.throughput_per_s,
            duration_us(r.latency_p50_us),
            duration_us(r.latency_p99_us),
            r.cpu_seconds_per_committed * 1e6,
            format!(
                "{} ({})",
                percent(r.wrong_accept_rate),
                percent(r.expected_wrong_accept_rate)
            )
        );
    }
    out
}

/// The ratio table for a terminal.
fn render_ratios(cmp: &ipow::lab::compare::Comparison) -> String {
    let mut out = format!(
        "against {} (median [min, max] over repetitions):\n{:<26} {:>26} {:>26} {:>26}\n",
        cmp.setup.baseline, "case", "throughput ratio", "p99 ratio", "CPU/tx ratio"
    );
    let s =
        |x: &ipow::lab::compare::Spread| format!("{:.3} [{:.3}, {:.3}]", x.median, x.min, x.max);
    for c in cmp.summaries() {
        out += &format!(
            "{:<26} {:>26} {:>26} {:>26}\n",
            c.label,
            s(&c.throughput_ratio),
            s(&c.latency_p99_ratio),
            s(&c.cpu_ratio)
        );
    }
    out
}

/// The built-in comparison `cargo run --release` runs: datasets/scenarios/default-compare.json
/// on case118, both embedded in the binary.
const DEFAULT_SCENARIO: &str = include_str!("../datasets/scenarios/default-compare.json");
const DEFAULT_SCENARIO_NAME: &str = "datasets/scenarios/default-compare.json (embedded)";
const DEFAULT_GRID: &str = include_str!("../datasets/grids/pglib_opf_case118_ieee.m");
const DEFAULT_GRID_NAME: &str = "pglib_opf_case118_ieee.m (embedded)";

fn compare_command(args: &CompareArgs) -> anyhow::Result<()> {
    let (sc, source, grid) = match &args.scenario {
        Some(path) => {
            let sc = ipow::lab::scenario::load(path)?;
            if sc.stress.is_some() {
                anyhow::bail!(
                    "{}: stress: a stress scenario runs with `ipow run --scenario`, not compare",
                    path.display()
                );
            }
            let grid = sc.grid.as_deref().map(ipow::grid::Grid::load).transpose()?;
            let grid = sc.grid.as_ref().map(|g| g.display().to_string()).zip(grid);
            (sc, path.display().to_string(), grid)
        }
        None => {
            let sc = ipow::lab::scenario::parse(
                DEFAULT_SCENARIO_NAME,
                DEFAULT_SCENARIO,
                std::path::Path::new("datasets/scenarios"),
            )?;
            let grid = ipow::grid::Grid::parse(DEFAULT_GRID_NAME, DEFAULT_GRID)?;
            (
                sc,
                DEFAULT_SCENARIO_NAME.to_owned(),
                Some((DEFAULT_GRID_NAME.to_owned(), grid)),
            )
        }
    };
    eprintln!(
        "ipow compare: {} ({}): {} cases x {} repetitions, interleaved",
        sc.name,
        source,
        sc.cases.len(),
        sc.repetitions
    );
    let started = std::time::Instant::now();
    let cmp = execute_with_progress(
        &sc,
        &source,
        grid.as_ref().map(|(n, g)| (n.as_str(), g)),
        false,
    )?;
    let files = ipow::report::write(&cmp, &args.out)?;
    print!("{}", render_rows(&cmp));
    println!();
    print!("{}", render_ratios(&cmp));
    let shown = std::fs::canonicalize(&args.out).unwrap_or_else(|_| args.out.clone());
    println!(
        "\nreport written to {} in {:.1} s: {}",
        shown.display(),
        started.elapsed().as_secs_f64(),
        files.join(", ")
    );
    Ok(())
}

/// Loads a grid and places a market of `params`' sellers and purchasers on it.
fn load_grid_market(
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

fn dataset_command(cmd: &DatasetCommand) -> anyhow::Result<()> {
    use ipow::market::dataset;
    match cmd {
        DatasetCommand::Info { path, json } => {
            let bytes = std::fs::metadata(path)
                .with_context(|| format!("{}: cannot read", path.display()))?
                .len();
            let header = if dataset::is_json(path) {
                dataset::read_any(path)?.header
            } else {
                dataset::Reader::open(path)?.header().clone()
            };
            if *json {
                println!(
                    "{}",
                    serde_json::json!({"path": path.display().to_string(), "bytes": bytes, "header": header})
                );
            } else {
                let p = &header.params;
                println!("dataset       {} ({bytes} bytes)", path.display());
                println!(
                    "format        {} (generator {})",
                    header.format, header.generator
                );
                println!("seed          {}", header.seed);
                println!("grid          {}", p.grid.as_deref().unwrap_or("none"));
                println!("participants  {}", header.members);
                println!("contracts     {}", header.contracts);
                println!("parameters    {}", serde_json::to_string(&p.market)?);
            }
        }
        DatasetCommand::Verify {
            path,
            threads,
            json,
        } => {
            let started = std::time::Instant::now();
            let (header, counts) = pool(*threads)?.install(|| -> anyhow::Result<_> {
                // Counted by truth code (the binary reader counts while it decodes), named at
                // the end.
                let (header, by_truth) = if dataset::is_json(path) {
                    let d = dataset::read_any(path)?;
                    let mut by_truth = [0u64; dataset::TRUTHS];
                    dataset::tally(&d.workload.truth, &mut by_truth);
                    (d.header, by_truth)
                } else {
                    let mut r = dataset::Reader::open(path)?;
                    let progress = bar(r.header().contracts, "verify", *json);
                    let mut batch = r.empty_batch();
                    let mut done = 0;
                    while r.next_batch_into(1 << 14, &mut batch)? {
                        done += batch.transactions.len() as u64;
                        progress.set_position(done);
                    }
                    progress.finish_and_clear();
                    (r.header().clone(), *r.truths_read())
                };
                let counts: std::collections::BTreeMap<String, u64> = by_truth
                    .iter()
                    .enumerate()
                    .filter(|&(_, &n)| n > 0)
                    .filter_map(|(i, &n)| Some((dataset::truth_name(dataset::truth_at(i)?), n)))
                    .collect();
                Ok((header, counts))
            })?;
            let seconds = started.elapsed().as_secs_f64();
            let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if *json {
                println!(
                    "{}",
                    serde_json::json!({
                        "path": path.display().to_string(),
                        "ok": true,
                        "contracts": header.contracts,
                        "members": header.members,
                        "truth": counts,
                        "bytes": bytes,
                        "seconds": seconds,
                    })
                );
            } else {
                let checked = if dataset::is_json(path) {
                    "every record decodes"
                } else {
                    "every checksum matches"
                };
                println!(
                    "ok: {} contracts, {} participants, {checked} ({bytes} bytes in {seconds:.3} s)",
                    header.contracts, header.members
                );
                for (k, v) in &counts {
                    println!("  {k:<24} {v}");
                }
            }
        }
        DatasetCommand::Convert { input, output } => {
            let d = dataset::read_any(input)?;
            dataset::write_any(output, &d)?;
            println!(
                "converted {} contracts: {} -> {}",
                d.header.contracts,
                input.display(),
                output.display()
            );
        }
    }
    Ok(())
}

fn grid_command(cmd: &GridCommand) -> anyhow::Result<()> {
    match cmd {
        GridCommand::Info { grid, json } => {
            let grid = ipow::grid::Grid::load(grid)?;
            let info = grid.info();
            if *json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", render_grid_info(&info));
            }
        }
        GridCommand::Flows { grid, trades, json } => {
            let grid = ipow::grid::Grid::load(grid)?;
            let trades_list = ipow::grid::read_trades(trades)?;
            let model = ipow::grid::DcModel::new(grid)?;
            let report = model.flow_report(&trades_list).map_err(|mut e| {
                e.file = trades.display().to_string();
                e
            })?;
            if *json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", render_flows(&report, trades_list.len()));
            }
        }
        GridCommand::Ptdf {
            grid,
            out,
            repeat,
            json,
        } => {
            let model = ipow::grid::DcModel::new(ipow::grid::Grid::load(grid)?)?;
            let mut times = Vec::new();
            let mut ptdf = Vec::new();
            for _ in 0..(*repeat).max(1) {
                drop(std::mem::take(&mut ptdf));
                let started = std::time::Instant::now();
                ptdf = model.ptdf_full();
                times.push(started.elapsed().as_secs_f64());
            }
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            let seconds = sorted[sorted.len() / 2];
            let (buses, branches) = (model.grid().buses.len(), model.grid().branches.len());
            if let Some(path) = out {
                let tmp = path.with_extension("partial");
                let bytes: Vec<u8> = ptdf.iter().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(&tmp, bytes)
                    .with_context(|| format!("{}: cannot write", tmp.display()))?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("{}: cannot rename into place", path.display()))?;
            }
            let max_abs = ptdf.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            if *json {
                println!(
                    "{}",
                    serde_json::json!({
                        "grid": grid.display().to_string(),
                        "buses": buses,
                        "branches": branches,
                        "threads": rayon::current_num_threads(),
                        "seconds": seconds,
                        "seconds_each": times,
                        "max_abs_factor": max_abs,
                    })
                );
            } else {
                println!(
                    "PTDF {branches} x {buses} in {:.1} ms (median of {}) on {} threads; largest |factor| {max_abs:.4}",
                    seconds * 1e3,
                    times.len(),
                    rayon::current_num_threads()
                );
            }
        }
    }
    Ok(())
}

fn render_grid_info(i: &ipow::grid::GridInfo) -> String {
    let mut out = format!("grid          {}\n", i.source);
    out += &format!(
        "buses         {} ({} with load, {:.1} MW in all); slack bus {}\n",
        i.buses, i.load_buses, i.total_load_mw, i.slack_bus
    );
    out += &format!(
        "branches      {} rows, {} in service, {} rows in parallel groups, negative reactance on rows {:?}\n",
        i.branches, i.in_service_branches, i.parallel_branch_rows, i.negative_reactance_rows
    );
    out += &format!(
        "limits        rateA on {} branches, {:.1} to {:.1} MVA; {} unlimited (rateA 0) or out of service\n",
        i.limited_branches, i.rate_a_min, i.rate_a_max, i.unlimited_branches
    );
    out += &format!("generators    {}; baseMVA {}\n", i.generators, i.base_mva);
    out
}

fn render_flows(r: &ipow::grid::FlowReport, trades: usize) -> String {
    let mut out = format!(
        "{} trades; {} branches; {} overloaded\n",
        trades,
        r.flows.len(),
        r.overloaded.len()
    );
    out += "branch   from     to        flow MW     rateA  loading\n";
    let mut shown: Vec<&ipow::grid::BranchFlow> = r.overloaded.iter().collect();
    if shown.is_empty() {
        // Nothing overloaded: the ten most loaded.
        let mut all: Vec<&ipow::grid::BranchFlow> = r.flows.iter().collect();
        all.sort_by(|a, b| b.mw.abs().total_cmp(&a.mw.abs()));
        shown = all.into_iter().take(10).collect();
        out += "(no branch overloaded; the ten largest flows)\n";
    }
    for f in shown {
        let loading = if f.rate_a > 0.0 {
            format!("{:.3}", f.mw.abs() / f.rate_a)
        } else {
            "-".to_owned()
        };
        out += &format!(
            "{:>6} {:>6} {:>6} {:>14.6} {:>9.1}  {}\n",
            f.branch_index, f.from_bus, f.to_bus, f.mw, f.rate_a, loading
        );
    }
    out
}

/// Microseconds with a unit that fits.
fn render_run(r: &RunReport) -> String {
    let mut out = String::new();
    let params = match &r.config.variant {
        VariantConfig::Ipow(p) => format!(
            "validators {} quorum {} extra {} byzantine {:.3} ({} {:?})",
            p.validators,
            p.quorum,
            p.extra_max,
            p.byzantine_fraction,
            p.byzantine_count(),
            p.behaviour
        ),
        VariantConfig::Pow(p) => format!("difficulty {} bits", p.difficulty_bits),
    };
    let load = r.config.load.describe();
    out += &format!(
        "ipow run: {} ({params}), {load}, seed {}, {} threads\n",
        r.variant, r.seed, r.threads
    );
    out += &format!(
        "transactions  submitted {}  accepted {}  rejected {}  undecided {}\n",
        r.submitted, r.accepted, r.rejected, r.undecided
    );
    out += &format!(
        "safety        planted invalid {}  wrong accepts {} (expected {:.2})  wrong rejects {} (expected {:.2}); P(dishonest majority in a quorum) = {:.3e}\n",
        r.planted_invalid,
        r.wrong_accepts,
        r.expected.wrong_accepts,
        r.wrong_rejects,
        r.expected.wrong_rejects,
        r.expected.dishonest_majority_probability
    );
    out += &format!(
        "throughput    {:.0} committed tx/s, {:.0} validations/s over {:.3} s\n",
        r.committed_per_s, r.validations_per_s, r.wall_seconds
    );
    let l = &r.latency_commit;
    out += &format!(
        "latency       submission to commit: p50 {}  p95 {}  p99 {}  max {}\n",
        duration_us(l.p50_us),
        duration_us(l.p95_us),
        duration_us(l.p99_us),
        duration_us(l.max_us)
    );
    let s = &r.stages_seconds;
    out += &format!(
        "stages        assign {:.3} s  validate {:.3} s  tally {:.3} s  seal {:.3} s\n",
        s.assign, s.validate, s.tally, s.seal
    );
    out += &format!(
        "work          {} validations, {} timeouts, {} hashes; {:.2} CPU-s in all, {:.1} CPU-us per committed tx\n",
        r.work.validations,
        r.work.timeouts,
        r.work.hashes,
        r.cpu_seconds,
        r.cpu_seconds_per_committed * 1e6
    );
    out += &format!("congestion    {}\n", r.congestion_stage);
    if let Some(c) = &r.congestion {
        out += &format!(
            "              {} of {} periods overloaded (max loading {:.2}, {} branches); {} of {} scheme trades curtailed in {} cuts; {} rejected by consensus for congestion; O1 context {:.3} s\n",
            c.periods_overloaded,
            r.blocks.len(),
            c.max_loading_before,
            c.branches_overloaded.len(),
            c.curtailed_trades,
            c.scheme_trades,
            c.cuts,
            r.curtailed,
            s.congestion
        );
    }
    if let Some(st) = &r.settlement {
        out += &format!(
            "settlement    {} contracts settled in {} periods ({} failed for lack of funds), {} transfers, {:.3} s; {} accounts opening at {}\n",
            st.settled,
            st.periods,
            st.failed_funds,
            st.transfers,
            s.settle,
            st.accounts,
            st.opening_balance
        );
        out += &format!(
            "              purchases {}  transmission {}  damages {}  loss compensation {}; money conserved after every period: {}\n",
            st.purchase_paid,
            st.transmission_paid,
            st.penalties_paid,
            st.loss_compensation_paid,
            if st.conserved { "yes" } else { "NO" }
        );
    }
    out += &format!("blocks        {} sealed\n", r.blocks.len());
    for b in r.blocks.iter().take(8) {
        out += &format!(
            "  height {:>3}  {:>6} tx  root {}  hash {}{}\n",
            b.height,
            b.transactions,
            &b.merkle_root[..16],
            &b.hash[..16],
            if r.variant == "pow" {
                format!("  nonce {}", b.nonce)
            } else {
                String::new()
            }
        );
    }
    if r.blocks.len() > 8 {
        out += &format!("  ... {} more in --json\n", r.blocks.len() - 8);
    }
    if r.variant == "pow" {
        let v = &r.variant_report;
        out += &format!(
            "mining        {:.2} M hashes/s; per block expected {:.3} s, measured {:.3} s\n",
            v["hash_rate_per_s"].as_f64().unwrap_or(0.0) / 1e6,
            v["expected_seconds_per_block"].as_f64().unwrap_or(0.0),
            v["measured_seconds_per_block"].as_f64().unwrap_or(0.0)
        );
    } else {
        let v = &r.variant_report["validations_per_validator"];
        out += &format!(
            "incentives    validations per validator: min {} median {} max {}; each validator's priority is in --json\n",
            v["min"], v["median"], v["max"]
        );
    }
    out
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ipow: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
