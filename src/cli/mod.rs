//! The binary's commands, one module per group; `dispatch` maps a parsed command line onto
//! them. Only this folder and `main.rs` know clap, anyhow, indicatif and the terminal.

pub(crate) mod args;
mod chain;
mod cluster;
mod market;
mod progress;
mod run;

use args::*;
use chain::*;
use market::*;
use run::*;

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<()> {
    // The main job: the built-in comparison, report under target/ipow-report.
    let command = cli.command.unwrap_or(Command::Compare(CompareArgs {
        scenario: None,
        out: std::path::PathBuf::from(DEFAULT_REPORT_DIR),
        cluster_case: None,
        cluster_rendezvous: None,
        process_index: None,
    }));
    match command {
        Command::Compare(args) => compare_command(&args)?,
        Command::Paper {
            json,
            market,
            store,
            secret,
        } => paper_command(json, market.as_deref(), store.as_deref(), secret.as_deref())?,
        Command::Audit(args) => audit_command(&args)?,
        Command::Prove {
            store,
            contract,
            party,
        } => prove_command(&store, &contract, party)?,
        Command::VerifyProof { proof, head, json } => verify_proof_command(&proof, &head, json)?,
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
