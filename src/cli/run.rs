//! The commands that run the pipeline: `run`, a scenario, `compare` (and the main job),
//! `stress` and `simulate`.

use super::args::*;
use super::chain::StoreSecret;
use super::cluster::{Cluster, Peer, Role, fingerprint};
use super::progress::{bar, steps};
use anyhow::Context as _;
use ipow::market::rules::WorkloadParams;
use ipow::pipeline::{Committed, Pipeline};
use ipow::pipeline::{Load, RunConfig, RunReport};
use ipow::report::duration_us;
use ipow::report::text::*;

pub(crate) fn run_command(args: &RunArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    if let Some(path) = &args.scenario {
        return scenario_command(path, args.json);
    }
    check_contracts(args.contracts)?;
    if args.period_txs == 0 {
        anyhow::bail!("--period-txs 0: a period takes at least 1 transaction");
    }
    let pool = pool(args.threads)?;
    // A validator process of a cluster (a child of --processes, or a --hosts line after the
    // first) has no store, ledger or output of its own: the supervision node keeps them.
    let validator = args.cluster_rendezvous.is_some() || args.process_index.is_some_and(|i| i > 0);
    let secret = match validator {
        true => None,
        false => {
            super::chain::store_secret(args.store.as_deref(), args.secret.as_deref(), args.resume)?
        }
    };
    let variant = StoreSecret::apply(secret.as_ref(), variant_config(&args.variant, args.seed)?);
    let (opening, settle_params) = ledger_args(&args.opening_balance, &args.share)?;
    let config = RunConfig {
        variant,
        period_txs: args.period_txs,
        load: match args.rate {
            Some(rate) => Load::OpenLoop { rate },
            None => Load::ClosedLoop,
        },
    };
    config.load.check().map_err(|m| anyhow::anyhow!("--{m}"))?;
    // Checked before the work: the decisions file opens now, is written after.
    let decisions = (!validator)
        .then_some(args.decisions.as_deref())
        .flatten()
        .map(|p| std::fs::File::create(p).with_context(|| format!("--decisions {}", p.display())))
        .transpose()?;
    let role = Role::of(args, &config.variant)?;
    if !matches!(role, Role::Validator(_)) {
        warn_if_long(&config, args.contracts, &mut nonce_rate_on(&pool))?;
    }
    let mut params = WorkloadParams::scaled_paper(args.seed, args.contracts);
    args.rates.apply(&mut params)?;
    if std::io::stderr().is_terminal() && !args.json && !matches!(role, Role::Validator(_)) {
        eprintln!("generating {} signed contracts...", args.contracts);
    }
    let market = args
        .grid
        .as_deref()
        .map(load_grid_market(&params))
        .transpose()?;
    let mut cluster = match role {
        Role::Validator(peer) => return serve_validators(peer, &pool, &params, market, &config),
        Role::Supervisor(c) => Some(c),
        Role::Alone => None,
    };
    let once = Once {
        args,
        config: &config,
        params: &params,
        market: market.as_ref(),
        secret: secret.as_ref(),
        ledger: (opening, settle_params),
    };
    let (report, pin) = pool.install(|| once.run(cluster.as_mut()))?;
    if let Some(c) = cluster {
        c.finish()?;
    }
    if let (Some(file), Some(path)) = (decisions, &args.decisions) {
        write_decisions(&report, file)
            .with_context(|| format!("--decisions {}", path.display()))?;
    }
    print_run(&report, pin, args)
}

/// One line per transaction: what was decided, by how many validators; no timings.
fn write_decisions(report: &RunReport, file: std::fs::File) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "tx,outcome,verdict,reason,validators_asked")?;
    for r in &report.records {
        let (outcome, verdict, reason) = ipow::report::decision_fields(r);
        writeln!(
            out,
            "{},{outcome},{verdict},{reason},{}",
            r.tx, r.validators_asked
        )?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// A validator process of a cluster: the same market as its supervision node, then its
/// validators' answers until the run ends.
fn serve_validators(
    peer: Peer,
    pool: &rayon::ThreadPool,
    params: &WorkloadParams,
    market: Option<ipow::grid::placement::GridMarket>,
    config: &RunConfig,
) -> anyhow::Result<()> {
    let ipow::pipeline::VariantConfig::Ipow(variant) = &config.variant else {
        anyhow::bail!("a validator process runs IPOW's validators");
    };
    let fingerprint = fingerprint(params, &config.variant, market.as_ref(), peer.ship());
    pool.install(|| {
        let (_, workload) = generate(params, market.as_ref());
        peer.serve(&fingerprint, workload, market, variant.clone())
    })
}

/// The market of `ipow run`'s flags and its workload: every process of a run derives the same.
fn generate<'g>(
    params: &WorkloadParams,
    grid: Option<&'g ipow::grid::placement::GridMarket>,
) -> (
    ipow::market::generator::Market<'g>,
    ipow::market::rules::Workload,
) {
    let generated = ipow::market::generator::Market::new(params.clone(), grid);
    let workload =
        generated.batch(0..params.contracts.min(ipow::market::rules::MAX_TRANSACTIONS) as u64);
    (generated, workload)
}

/// One `ipow run` in this process (alone, or as a cluster's supervision node).
struct Once<'a> {
    args: &'a RunArgs,
    config: &'a RunConfig,
    params: &'a WorkloadParams,
    market: Option<&'a ipow::grid::placement::GridMarket>,
    secret: Option<&'a StoreSecret>,
    ledger: (ipow::base::amount::Money, ipow::ledger::SettlementParams),
}

impl Once<'_> {
    fn run(&self, cluster: Option<&mut Cluster>) -> anyhow::Result<(RunReport, Option<Pin>)> {
        let (args, config, params, market) = (self.args, self.config, self.params, self.market);
        let (generated, workload) = generate(params, market);
        let (mut writer, genesis) = match (&args.store, self.secret) {
            (Some(dir), Some(secret)) => {
                open_store(dir, &generated, &config.variant, secret, args.resume)?
            }
            _ => (None, None),
        };
        let tier = match (cluster, &config.variant) {
            (Some(c), ipow::pipeline::VariantConfig::Ipow(p)) => {
                let fp = fingerprint(params, &config.variant, market, c.ship());
                Some(c.pool(&fp, p)?)
            }
            _ => None,
        };
        let mut last_head = None;
        let bar = bar(workload.transactions.len() as u64, "decided", args.json);
        let addresses: Vec<_> = generated.members.iter().map(|m| m.address).collect();
        let mut settler =
            ipow::pipeline::settle::PeriodSettler::new(&addresses, self.ledger.0, self.ledger.1);
        let announce = args.announce_commits;
        // --announce-commits: each period's consortium head once it is durable and settled.
        let mut announce_commit = |c: &Committed<'_>| {
            last_head = c.head.or(last_head);
            if let (true, Some(head)) = (announce, c.head) {
                use std::io::Write as _;
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "committed {} {}", c.period, hex::encode(head));
                let _ = stdout.flush();
            }
        };
        let mut pipeline = Pipeline::new(config, &workload)
            .grid(market)
            .settle(&mut settler)
            .on_period(&mut announce_commit);
        if let Some(writer) = writer.as_mut() {
            pipeline = pipeline.record(writer);
        }
        if let Some(tier) = tier {
            pipeline = pipeline.validators(Box::new(tier));
        }
        let report = pipeline.run(&mut |done, _total| bar.set_position(done))?;
        bar.finish_and_clear();
        if let Some(w) = writer.as_ref().filter(|w| w.replaying()) {
            anyhow::bail!(
                "--resume: the run ended after {} periods but the store holds more: it was \
                 written with other flags",
                w.periods()
            );
        }
        let pin = genesis.zip(self.secret).map(|(genesis, s)| Pin {
            genesis,
            head: last_head,
            secret: s.path.clone(),
        });
        Ok((report, pin))
    }
}

/// The run's report, and with a store what to keep to pin it (on stdout with the text report;
/// on stderr beside JSON, which stays one object).
fn print_run(report: &RunReport, pin: Option<Pin>, args: &RunArgs) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", render_run(report));
    }
    if let (Some(pin), Some(dir)) = (pin, &args.store) {
        let line = pin.line(dir);
        if args.json {
            eprint!("{line}")
        } else {
            print!("{line}")
        }
    }
    Ok(())
}

/// What a user keeps outside a store to pin it: its genesis hash and the last head written.
struct Pin {
    genesis: ipow::crypto::merkle::Hash,
    head: Option<ipow::crypto::merkle::Hash>,
    secret: std::path::PathBuf,
}

impl Pin {
    fn line(&self, dir: &std::path::Path) -> String {
        let head = self.head.map_or_else(|| "(none)".to_string(), hex::encode);
        let genesis = hex::encode(self.genesis);
        format!(
            "pin           keep these outside the store: `ipow audit --store {} --head {head} \
             --genesis {genesis} --secret {}` then catches a rollback, a rewritten history and \
             a forged proof\n",
            dir.display(),
            self.secret.display()
        )
    }
}

/// Creates the store with the run's genesis; returns the writer and the genesis hash.
fn open_store(
    dir: &std::path::Path,
    generated: &ipow::market::generator::Market,
    variant: &ipow::pipeline::VariantConfig,
    secret: &super::chain::StoreSecret,
    resume: bool,
) -> anyhow::Result<(
    Option<ipow::chain::store::StoreWriter>,
    Option<ipow::crypto::merkle::Hash>,
)> {
    let members = generated.members.iter().map(Into::into).collect();
    let market = ipow::chain::store::StoredMarket::new(
        generated.rules.slot_minutes,
        generated.grid().map(|g| g.model().grid()),
    )
    .map_err(|m| anyhow::anyhow!(m))?;
    let (genesis, signer) = ipow::pipeline::genesis(members, market, variant, &secret.secret)
        .map_err(|m| anyhow::anyhow!(m))?;
    let hash = ipow::chain::store::genesis_hash(&ipow::chain::store::encode_genesis(&genesis));
    if resume {
        let (writer, committed) = ipow::chain::store::StoreWriter::resume(dir, &genesis, signer)?;
        eprintln!(
            "resume        {committed} committed {} in {}: each is recomputed and checked byte \
             for byte, then the run continues",
            ipow::report::text::plural(committed, "period", "periods"),
            dir.display()
        );
        return Ok((Some(writer), Some(hash)));
    }
    let writer = secret.create_store(dir, &genesis, signer)?;
    Ok((Some(writer), Some(hash)))
}

/// "2 cases x 1 repetition", plurals right.
fn cases_times(cases: usize, repetitions: u32) -> String {
    use ipow::report::text::plural;
    format!(
        "{cases} {} x {repetitions} {}",
        plural(cases as u64, "case", "cases"),
        plural(u64::from(repetitions), "repetition", "repetitions")
    )
}

pub(crate) fn simulate_command(
    seeds: u64,
    first: u64,
    seed: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
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

pub(crate) fn stress_command(args: &StressArgs) -> anyhow::Result<()> {
    use ipow::lab::stress::{Step, StressConfig, stress_size};
    check_stress_args(args)?;
    let mut market = WorkloadParams::for_participants(args.seed, args.participants, 0);
    args.rates.apply(&mut market)?;
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
        print_stress_header(&config, args, pool.current_num_threads());
    }
    let total: u64 = config.sizes.iter().sum();
    if total > 1_000_000 && !args.json {
        eprintln!(
            "stress: {total} contracts over {} sizes; after each size, an estimate of the rest",
            config.sizes.len()
        );
    }
    for (k, &size) in config.sizes.iter().enumerate() {
        let multi = indicatif::MultiProgress::new();
        let bars: Vec<super::progress::Progress> = ["generate", "consensus", "settle"]
            .iter()
            .map(|w| bar(size, w, args.json).join(&multi))
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
            print_stress_row(&row);
        }
        if !row.conserved {
            anyhow::bail!("size {size}: the ledger's total changed");
        }
        estimate_rest(&config.sizes[k + 1..], row.wall_seconds / size as f64);
    }
    Ok(())
}

pub(crate) fn scenario_command(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    use ipow::lab::scenario::{self, Market};
    let sc = warn_if_long_cases(scenario::load(path)?)?;
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
    let cmp = execute_with_progress(&sc, Some(path), grid, json)?;
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
            "scenario {}: {} (interleaved), grid {}",
            sc.name,
            cases_times(sc.cases.len(), sc.repetitions),
            sc.grid
                .as_ref()
                .map_or("none".into(), |g| g.display().to_string())
        );
        print!("{}", render_rows(&cmp));
    }
    Ok(())
}

/// Runs a comparison with a progress bar over its runs when stderr is a terminal.
/// Runs a scenario (its file at `path`, or the built-in one) with a progress bar; a case over
/// several processes starts its validator processes before each of its runs.
pub(crate) fn execute_with_progress(
    sc: &ipow::lab::scenario::Scenario,
    path: Option<&std::path::Path>,
    grid: Option<(&str, &ipow::grid::Grid)>,
    quiet: bool,
) -> anyhow::Result<ipow::lab::compare::Comparison> {
    let total = sc.cases.len() as u64 * u64::from(sc.repetitions);
    let bar = steps(total, "runs", quiet);
    let source = path.map_or_else(
        || DEFAULT_SCENARIO_NAME.to_owned(),
        |p| p.display().to_string(),
    );
    let ship = ship_of(sc.ship);
    let mut last: Option<Cluster> = None;
    let mut tiers = |k: usize,
                     case: &ipow::lab::scenario::Case,
                     workload: &ipow::market::rules::Workload,
                     grid: Option<&ipow::grid::placement::GridMarket>|
     -> Result<Box<dyn ipow::consensus::pool::ValidatorPool>, String> {
        let text = |e: anyhow::Error| format!("{e:#}");
        // The previous case's processes end once its pool closed the dataflow.
        if let Some(c) = last.take() {
            c.finish().map_err(text)?;
        }
        let ipow::pipeline::VariantConfig::Ipow(params) = &case.config.variant else {
            return Err("PoW has one miner".into());
        };
        let mut args: Vec<String> = vec!["compare".into()];
        if let Some(p) = path {
            args.extend(["--scenario".into(), p.display().to_string()]);
        }
        args.extend(["--cluster-case".into(), k.to_string()]);
        let timeout = std::time::Duration::from_secs(600);
        let mut cluster = Cluster::spawn(case.processes, &args, ship, timeout).map_err(text)?;
        let fp = fingerprint(&workload.params, &case.config.variant, grid, ship);
        let pool = cluster.pool(&fp, params).map_err(text)?;
        last = Some(cluster);
        Ok(Box::new(pool))
    };
    let cmp = ipow::lab::compare::execute(
        sc,
        &source,
        grid,
        &mut |done, _, label| {
            bar.set_position(done as u64);
            bar.set_message(label.to_owned());
        },
        &mut tiers,
    )?;
    bar.finish_and_clear();
    Ok(cmp)
}

fn ship_of(ship: ipow::lab::scenario::Ship) -> ipow::cluster::Ship {
    match ship {
        ipow::lab::scenario::Ship::Bytes => ipow::cluster::Ship::Bytes,
        ipow::lab::scenario::Ship::Index => ipow::cluster::Ship::Index,
    }
}

/// A validator process of case `k` of a scenario: the case's market as its parent made it,
/// then its validators' answers until the run ends.
fn compare_child(
    args: &CompareArgs,
    sc: &ipow::lab::scenario::Scenario,
    grid: Option<&ipow::grid::Grid>,
    k: usize,
) -> anyhow::Result<()> {
    let (Some(parent), Some(index)) = (&args.cluster_rendezvous, args.process_index) else {
        anyhow::bail!("--cluster-case needs --cluster-rendezvous and --process-index");
    };
    let ship = ship_of(sc.ship);
    let peer = Peer::child(parent, index, ship, std::time::Duration::from_secs(600))?;
    let case = sc.cases.get(k).context("--cluster-case: no such case")?;
    let ipow::pipeline::VariantConfig::Ipow(params) = &case.config.variant else {
        anyhow::bail!("case {k} is not IPOW");
    };
    let pool = pool(case.threads)?;
    pool.install(|| {
        let (workload, market) = ipow::lab::compare::case_workload(sc, k, grid)?;
        let fp = fingerprint(
            &workload.params,
            &case.config.variant,
            market.as_ref(),
            ship,
        );
        peer.serve(&fp, workload, market, params.clone())
    })
}

/// The built-in comparison `cargo run --release` runs: datasets/scenarios/default-compare.json
/// on case118, both embedded in the binary.
pub(crate) const DEFAULT_SCENARIO: &str =
    include_str!("../../datasets/scenarios/default-compare.json");

pub(crate) const DEFAULT_SCENARIO_NAME: &str = "datasets/scenarios/default-compare.json (embedded)";

pub(crate) const DEFAULT_GRID: &str = include_str!("../../datasets/grids/pglib_opf_case118_ieee.m");

pub(crate) const DEFAULT_GRID_NAME: &str = "pglib_opf_case118_ieee.m (embedded)";

/// The scenario `compare` runs (the file's, or the built-in one), its name and its grid.
#[allow(clippy::type_complexity)]
fn compare_scenario(
    path: Option<&std::path::Path>,
) -> anyhow::Result<(
    ipow::lab::scenario::Scenario,
    String,
    Option<(String, ipow::grid::Grid)>,
)> {
    Ok(match path {
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
    })
}

pub(crate) fn compare_command(args: &CompareArgs) -> anyhow::Result<()> {
    if args.cluster_case.is_none() {
        ipow::report::check_out_dir(&args.out)?;
    }
    let (sc, source, grid) = compare_scenario(args.scenario.as_deref())?;
    if let Some(k) = args.cluster_case {
        return compare_child(args, &sc, grid.as_ref().map(|(_, g)| g), k);
    }
    eprintln!(
        "ipow compare: {} ({}): {}, interleaved",
        sc.name,
        source,
        cases_times(sc.cases.len(), sc.repetitions)
    );
    let sc = warn_if_long_cases(sc)?;
    let started = std::time::Instant::now();
    let cmp = execute_with_progress(
        &sc,
        args.scenario.as_deref(),
        grid.as_ref().map(|(n, g)| (n.as_str(), g)),
        false,
    )?;
    let m = &cmp.setup.machine;
    if m.busy {
        let one = |l: Option<[f64; 3]>| l.map_or("unknown".into(), |l| format!("{:.2}", l[0]));
        eprintln!(
            "warning: the machine was busy (1-minute load average {} before, {} after, {} \
             cores): the figures are slower and noisier than on a quiet machine",
            one(m.load_average_start),
            one(m.load_average_end),
            m.cores
        );
    }
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

/// The stress table's title and column heads.
/// One size's row of the stress table.
fn print_stress_row(row: &ipow::lab::stress::StressRow) {
    let st = &row.stages;
    #[allow(clippy::cast_precision_loss)]
    let rss = row.peak_rss_bytes as f64 / f64::from(1u32 << 30);
    println!(
        "{:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11.0} {:>10.0} {:>9} {:>9} {:>9} {:>7.2}Gi {:>9.1} {:>6} {:>10}",
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
        if row.conserved { "ok" } else { "LOST" },
        curtailed_share(row.curtailed, row.scheme_trades)
    );
}

/// "3.12%" of the scheme curtailed, "-" without a grid.
fn curtailed_share(curtailed: u64, scheme: u64) -> String {
    if scheme == 0 {
        return "-".into();
    }
    #[allow(clippy::cast_precision_loss)]
    let share = curtailed as f64 / scheme as f64 * 100.0;
    format!("{share:.2}%")
}

fn print_stress_header(
    config: &ipow::lab::stress::StressConfig,
    args: &StressArgs,
    threads: usize,
) {
    println!(
        "stress: {} on {} threads, {} participants, batches of {}, grid {}; throughput is \
         committed tx/s",
        config.run.variant_name(),
        threads,
        args.participants,
        args.batch,
        args.grid
            .as_ref()
            .map_or("none".into(), |g| g.display().to_string())
    );
    println!(
        "{:>10} {:>9} {:>9} {:>9} {:>9} {:>11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>10}",
        "contracts",
        "gen s",
        "cons s",
        "settle s",
        "wall s",
        "contracts/s",
        "throughput",
        "p50",
        "p99",
        "max",
        "peak RSS",
        "CPU s",
        "money",
        "curtailed"
    );
}

/// After a stress size: how long the sizes still to come take at the last size's time per
/// contract, when over a minute (a rough guide: small sizes pay more set-up per contract, and
/// large ones more memory traffic).
fn estimate_rest(rest: &[u64], seconds_per_contract: f64) {
    let contracts: u64 = rest.iter().sum();
    let seconds = contracts as f64 * seconds_per_contract;
    if seconds > 60.0 {
        eprintln!(
            "stress: the {} to come ({contracts} contracts) {} about {} at the last size's \
             time per contract",
            match rest.len() {
                1 => "size".to_owned(),
                n => format!("{n} sizes"),
            },
            if rest.len() == 1 { "takes" } else { "take" },
            seconds_text(seconds)
        );
    }
}

/// `seconds` as the terminal prints a duration (the longest one past what a `u64` of
/// microseconds holds).
fn seconds_text(seconds: f64) -> String {
    duration_us(
        std::time::Duration::try_from_secs_f64(seconds).map_or(u64::MAX, |d| {
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
        }),
    )
}

/// [`warn_if_long`] for each case of a scenario with a generated market (a dataset's size is
/// known only once it is opened), per repetition; the nonce rate is measured once per thread
/// count, and only for PoW cases.
fn warn_if_long_cases(
    sc: ipow::lab::scenario::Scenario,
) -> anyhow::Result<ipow::lab::scenario::Scenario> {
    if let ipow::lab::scenario::Market::Generated(market) = &sc.market {
        let mut rates: std::collections::HashMap<Option<usize>, f64> =
            std::collections::HashMap::new();
        for case in &sc.cases {
            let contracts = case.contracts.unwrap_or(market.contracts);
            warn_if_long(&case.config, contracts, &mut || {
                if let Some(&rate) = rates.get(&case.threads) {
                    return Ok(rate);
                }
                let rate = pool(case.threads)?.install(ipow::consensus::pow::nonce_rate);
                rates.insert(case.threads, rate);
                Ok(rate)
            })?;
        }
    }
    Ok(sc)
}

/// The PoW nonce rate on `pool`, measured when asked.
fn nonce_rate_on(pool: &rayon::ThreadPool) -> impl FnMut() -> anyhow::Result<f64> + '_ {
    || Ok(pool.install(ipow::consensus::pow::nonce_rate))
}

/// Warns up front when a run will take long: a PoW difficulty whose expected mining time at
/// `nonce_rate` (measured on this machine, asked for only for PoW) passes a minute, or an open
/// loop whose last arrival is due more than a minute after the start.
fn warn_if_long(
    config: &RunConfig,
    contracts: usize,
    nonce_rate: &mut dyn FnMut() -> anyhow::Result<f64>,
) -> anyhow::Result<()> {
    if let ipow::pipeline::VariantConfig::Pow(p) = &config.variant {
        let blocks = contracts.div_ceil(config.period_txs.max(1)) as u64;
        let rate = nonce_rate()?;
        let seconds = 2f64.powi(i32::from(p.difficulty_bits)) * blocks as f64 / rate;
        if seconds > 60.0 {
            eprintln!(
                "warning: --difficulty {}: about 2^{} nonces per block; at this machine's {:.1} M \
                 nonces/s the {blocks} blocks take about {}",
                p.difficulty_bits,
                p.difficulty_bits,
                rate / 1e6,
                seconds_text(seconds)
            );
        }
    }
    let load = &config.load;
    let last = load.intended(contracts.saturating_sub(1));
    if last > std::time::Duration::from_secs(60) {
        eprintln!(
            "warning: {} : the last of {contracts} transactions is due {} after the start, and \
             the run takes at least that long",
            load.describe(),
            duration_us(u64::try_from(last.as_micros()).unwrap_or(u64::MAX))
        );
    }
    Ok(())
}

/// `ipow stress`'s sizes, participants, periods and batches, before any work.
fn check_stress_args(args: &StressArgs) -> anyhow::Result<()> {
    WorkloadParams::check_participants(args.participants)
        .map_err(|m| anyhow::anyhow!("--participants {m}"))?;
    if args.period_txs == 0 || args.batch == 0 {
        anyhow::bail!("--period-txs and --batch take at least 1");
    }
    if let Some(&s) = args
        .sizes
        .iter()
        .find(|&&s| s == 0 || s > u64::from(u32::MAX))
    {
        anyhow::bail!("--sizes: {s} is outside 1..={}", u32::MAX);
    }
    Ok(())
}
