//! The commands on markets and grids: `paper`, `settle`, `generate`, `dataset`, `grid`.

use super::args::*;
use super::progress::bar;
use anyhow::Context as _;
use ipow::consensus::ipow::IpowParams;
use ipow::market::paper::{EMBEDDED_MARKET_NAME, PaperMarket};
use ipow::market::rules::WorkloadParams;
use ipow::pipeline::{Committed, Pipeline};
use ipow::pipeline::{Load, RunConfig, VariantConfig};
use ipow::report::paper::PaperReport;
use ipow::report::text::*;

/// True when a JSON text carries the paper's market format tag (any `ipow-paper-market/`
/// version, so a wrong version is reported by the paper market's reader).
pub(crate) fn is_paper_market(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Tag {
        format: Option<String>,
    }
    serde_json::from_str::<Tag>(ipow::base::input::strip_bom(text))
        .ok()
        .and_then(|t| t.format)
        .is_some_and(|f| f.starts_with("ipow-paper-market/"))
}

/// A readings file for a dataset: its name and a reading per contract that has one (by id, or
/// by position as a decimal number).
fn dataset_readings(
    r: &std::path::Path,
    d: &ipow::market::dataset::Dataset,
) -> anyhow::Result<(String, Vec<Option<ipow::ledger::Reading>>)> {
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
    let contracted = |i: usize| d.workload.transactions[i].contract.energy;
    let readings =
        ipow::market::readings::parse_partial(&text, &file, count, &lookup, &contracted)?;
    Ok((file, readings))
}

pub(crate) fn settle_command(
    dataset: Option<&std::path::Path>,
    readings: Option<&std::path::Path>,
    share: &str,
    opening_balance: &str,
    json: bool,
) -> anyhow::Result<()> {
    let (opening, params) = ledger_args(opening_balance, share)?;
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
        let contracted = |i: usize| market.contracts[i].signed.contract.energy;
        let count = market.contracts.len();
        let readings = ipow::market::readings::parse(&text, &path, count, &lookup, &contracted)?;
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
        Some(r) => Some(dataset_readings(r, &d)?),
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

/// The store's genesis for a market's members and a run's variant.
/// Seals the paper's contracts as one IPOW period into a new store; returns the consortium head.
pub(crate) fn paper_store(
    market: &PaperMarket,
    dir: &std::path::Path,
    secret: &super::chain::StoreSecret,
) -> anyhow::Result<[u8; 32]> {
    let workload = market.workload();
    let variant = VariantConfig::Ipow(IpowParams::honest(16, 3, 4, market.key_seed))
        .with_secret(&secret.secret);
    let members = market
        .participants
        .values()
        .map(|p| ipow::chain::StoredMember {
            address: p.address,
            role: p.role,
            bus: None,
            public_key: *ipow::crypto::keys::KeyPair::derive(market.key_seed, p.address)
                .public_key()
                .as_bytes(),
        })
        .collect();
    let stored = ipow::chain::store::StoredMarket::new(workload.rules.slot_minutes, None)
        .map_err(|m| anyhow::anyhow!(m))?;
    let (genesis, signer) = ipow::pipeline::genesis(members, stored, &variant, &secret.secret)
        .map_err(|m| anyhow::anyhow!(m))?;
    let mut writer = secret.create_store(dir, &genesis, signer)?;
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

/// A path's file name, as the dataset header records the grid.
fn file_name(path: Option<&std::path::Path>) -> Option<String> {
    Some(path?.file_name()?.to_string_lossy().into_owned())
}

pub(crate) fn generate_command(args: &GenerateArgs) -> anyhow::Result<()> {
    use ipow::market::dataset;
    check_contracts(args.contracts)?;
    WorkloadParams::check_participants(args.participants)
        .map_err(|m| anyhow::anyhow!("--participants {m}"))?;
    let mut params = WorkloadParams::for_participants(args.seed, args.participants, args.contracts);
    args.rates.apply(&mut params)?;
    let grid = args
        .grid
        .as_deref()
        .map(load_grid_market(&params))
        .transpose()?;
    let numbers = grid.as_ref().map(|g| g.model().grid().bus_numbers());
    let started = std::time::Instant::now();
    let digest = pool(args.threads)?.install(|| -> anyhow::Result<Option<[u8; 32]>> {
        let market = ipow::market::generator::Market::new(params.clone(), grid.as_ref());
        let header = dataset::header_for(
            &params,
            file_name(args.grid.as_deref()).as_deref(),
            &market.rules,
            market.members.len() as u64,
        );
        let total = params.contracts as u64;
        if dataset::is_json(&args.out) {
            let d = dataset::Dataset {
                header,
                members: market.members.clone(),
                workload: market.batch(0..total),
                bus_numbers: numbers.unwrap_or_default(),
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

pub(crate) fn dataset_command(cmd: &DatasetCommand) -> anyhow::Result<()> {
    use ipow::market::dataset;
    match cmd {
        DatasetCommand::Info { path, json } => {
            let bytes = std::fs::metadata(path)
                .with_context(|| format!("{}: cannot read", path.display()))?
                .len();
            let (header, form) = header_and_form(path)?;
            if *json {
                println!(
                    "{}",
                    serde_json::json!({"path": path.display().to_string(), "bytes": bytes, "form": form, "header": header})
                );
            } else {
                let p = &header.params;
                println!("dataset       {} ({bytes} bytes)", path.display());
                println!("format        {form} (generator {})", header.generator);
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
        DatasetCommand::Convert {
            input,
            output,
            grid,
        } => convert(input, output, grid.as_deref())?,
    }
    Ok(())
}

/// A dataset's header, and its form as `dataset info` names it: "binary format 2", or the
/// JSON document's own format ("JSON ipow-market/2").
fn header_and_form(
    path: &std::path::Path,
) -> anyhow::Result<(ipow::market::dataset::Header, String)> {
    use ipow::market::dataset;
    if !dataset::is_json(path) {
        let header = dataset::Reader::open(path)?.header().clone();
        let form = format!("binary format {}", header.format);
        return Ok((header, form));
    }
    let name = path.display().to_string();
    let text = ipow::base::input::read_text(path, dataset::MAX_JSON_BYTES)
        .map_err(|m| anyhow::anyhow!("{name}: {m}"))?;
    let header = dataset::from_json(&name, &text)?.header;
    Ok((header, format!("JSON {}", dataset::json_format(&text))))
}

/// `ipow dataset convert`: JSON written from the binary form takes its bus numbers from the
/// grid the market was placed on.
fn convert(
    input: &std::path::Path,
    output: &std::path::Path,
    grid: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use ipow::market::dataset;
    let mut d = dataset::read_any(input)?;
    let placed = d.members.iter().any(|m| m.bus.is_some());
    if dataset::is_json(output) && placed && d.bus_numbers.is_empty() {
        let path = placed_grid(input, &d, grid)?;
        let g = ipow::grid::Grid::load(&path)?;
        d.number_buses(&g)
            .map_err(|m| anyhow::anyhow!("{}: {m}", input.display()))?;
    }
    dataset::write_any(output, &d)?;
    println!(
        "converted {} contracts: {} -> {}",
        d.header.contracts,
        input.display(),
        output.display()
    );
    Ok(())
}

/// The case file a dataset's market was placed on: `given`, or the file its header names, in
/// datasets/grids/ or beside the dataset (or in ../grids/ from it). A given file must carry
/// that name.
fn placed_grid(
    input: &std::path::Path,
    d: &ipow::market::dataset::Dataset,
    given: Option<&std::path::Path>,
) -> anyhow::Result<std::path::PathBuf> {
    let Some(name) = d.header.params.grid.as_deref() else {
        anyhow::bail!(
            "{}: its participants have buses but the header names no grid",
            input.display()
        );
    };
    if let Some(path) = given {
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        anyhow::ensure!(
            file.as_deref() == Some(name),
            "--grid {}: the dataset {} was placed on {name}",
            path.display(),
            input.display()
        );
        return Ok(path.to_owned());
    }
    let beside = input.parent().unwrap_or(std::path::Path::new("."));
    [
        std::path::Path::new("datasets/grids").join(name),
        beside.join(name),
        beside.join("../grids").join(name),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .with_context(|| {
        format!(
            "{}: JSON writes each participant's bus as its MATPOWER number, from {name}, which \
             is not in datasets/grids/ or beside the dataset; pass --grid FILE",
            input.display()
        )
    })
}

/// Where `ipow grid flows` takes its committed base from.
enum BaseFrom<'a> {
    /// No base.
    None,
    /// A trades file.
    File(&'a std::path::Path),
    /// A store's trades committed for the slot of a delivery time.
    Store(&'a std::path::Path, ipow::base::domain::DeliveryTime),
}

/// A store's committed trades for the slot of `at`, as a trades list, and a line saying so.
fn store_base(
    model: &ipow::grid::DcModel,
    dir: &std::path::Path,
    at: ipow::base::domain::DeliveryTime,
) -> anyhow::Result<(Vec<ipow::grid::Trade>, String)> {
    use ipow::base::domain::DeliveryTime;
    let grid = model.grid();
    let (read, kept) =
        ipow::chain::committed::read_base(dir, grid, |slot, minutes| slot == at.slot(minutes))?;
    let minutes = u32::from(read.genesis.market.slot_minutes);
    let start = at.slot(minutes) * minutes;
    let trades = kept
        .iter()
        .map(|t| ipow::grid::Trade {
            seller_bus: grid.buses[t.seller as usize].number,
            buyer_bus: grid.buses[t.buyer as usize].number,
            mw: t.milli_mw as f64 / 1000.0,
        })
        .collect();
    let line = format!(
        "committed base: the slot {} to {} of {} ({} committed {}, {} trades in all slots)\n",
        DeliveryTime(start),
        DeliveryTime(start + minutes),
        dir.display(),
        read.periods,
        if read.periods == 1 {
            "period"
        } else {
            "periods"
        },
        read.trades
    );
    Ok((trades, line))
}

/// `ipow grid flows`: the flows of a trades file, on a committed base when given.
fn flows_command(cmd: &GridCommand) -> anyhow::Result<()> {
    let GridCommand::Flows {
        grid,
        trades,
        base,
        store,
        at,
        json,
    } = cmd
    else {
        anyhow::bail!("not `grid flows`");
    };
    let base = match (base, store, at) {
        (Some(path), _, _) => BaseFrom::File(path),
        (None, Some(dir), Some(at)) => BaseFrom::Store(dir, *at),
        _ => BaseFrom::None,
    };
    let json = *json;
    let model = ipow::grid::DcModel::new(ipow::grid::Grid::load(grid)?)?;
    // Each file's trades checked on their own first, so an error names its file.
    let read = |path: &std::path::Path| -> anyhow::Result<_> {
        let list = ipow::grid::read_trades(path)?;
        let report = model.flow_report(&list).map_err(|mut e| {
            e.file = path.display().to_string();
            e
        })?;
        Ok((list, report))
    };
    let (trades_list, alone) = match trades {
        Some(path) => read(path)?,
        None => (Vec::new(), model.flow_report(&[])?),
    };
    let (base_list, heading) = match base {
        BaseFrom::None => {
            if json {
                println!("{}", serde_json::to_string(&alone)?);
            } else {
                print!("{}", render_flows(&alone, trades_list.len(), None));
            }
            return Ok(());
        }
        BaseFrom::File(path) => (read(path)?.0, String::new()),
        BaseFrom::Store(dir, at) => store_base(&model, dir, at)?,
    };
    let base_report = model.flow_report(&base_list)?;
    let all: Vec<_> = base_list.iter().chain(&trades_list).cloned().collect();
    let report = model.flow_report(&all)?;
    let base_flows: Vec<f64> = base_report.flows.iter().map(|f| f.mw).collect();
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["base_flows"] = serde_json::to_value(&base_flows)?;
        v["base_trades"] = serde_json::to_value(base_list.len())?;
        println!("{}", serde_json::to_string(&v)?);
    } else {
        let committed = Some((base_list.len(), base_flows.as_slice()));
        print!(
            "{heading}{}",
            render_flows(&report, trades_list.len(), committed)
        );
    }
    Ok(())
}

pub(crate) fn grid_command(cmd: &GridCommand) -> anyhow::Result<()> {
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
        GridCommand::Flows { .. } => flows_command(cmd)?,
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

/// `ipow paper`: Section 4 reproduced, and with `store` the example sealed into a new store.
pub(crate) fn paper_command(
    json: bool,
    market: Option<&std::path::Path>,
    store: Option<&std::path::Path>,
    secret: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let market = load_market(market)?;
    let secret = super::chain::store_secret(store, secret, false)?;
    let report = PaperReport::build(&market)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render_text());
    }
    if let (Some(dir), Some(secret)) = (store, &secret) {
        let head = paper_store(&market, dir, secret)?;
        eprintln!(
            "stored the example's {} contracts as period 0 in {}; consortium head {}",
            market.contracts.len(),
            dir.display(),
            hex::encode(head)
        );
    }
    Ok(())
}
