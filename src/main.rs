//! The `ipow` command: parses arguments, calls the library, renders, maps errors to exit codes.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ipow::paper::{EMBEDDED_MARKET_NAME, PaperMarket, PaperReport};

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
    },
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // Until the consensus engine lands, the main job is the paper's example.
    let command = cli.command.unwrap_or(Command::Paper {
        json: false,
        market: None,
    });
    match command {
        Command::Paper { json, market } => {
            let market = match market {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("{}: cannot read", path.display()))?;
                    PaperMarket::from_json(&text, &path.display().to_string())?
                }
                None => PaperMarket::embedded()
                    .with_context(|| format!("embedded {EMBEDDED_MARKET_NAME}"))?,
            };
            let report = PaperReport::build(&market)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
        }
    }
    Ok(())
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
