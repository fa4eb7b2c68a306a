//! The `ipow` command: parses arguments, calls the library through `cli`'s commands, and maps
//! errors to a message on stderr and exit code 1.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `command` and every subcommand below it taking a negative number as a flag's value, so that
/// `--contracts -1` gets the same message as any other bad value (clap's setting is per command).
fn negative_numbers_as_values(command: clap::Command) -> clap::Command {
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    let mut command = command.allow_negative_numbers(true);
    for name in names {
        command = command.mut_subcommand(name, negative_numbers_as_values);
    }
    command
}

fn main() -> ExitCode {
    let matches = negative_numbers_as_values(cli::args::Cli::command()).get_matches();
    let parsed = cli::args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::dispatch(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ipow: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
