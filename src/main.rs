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

/// `run --scenario FILE` takes everything from the file: another flag given beside it (but
/// `--json`) would go unused without a word, so it is refused, named.
fn unused_beside_scenario(command: &clap::Command, matches: &clap::ArgMatches) -> Option<String> {
    use clap::parser::ValueSource;
    let Some(("run", run)) = matches.subcommand() else {
        return None;
    };
    if run.value_source("scenario") != Some(ValueSource::CommandLine) {
        return None;
    }
    let given: Vec<String> = command
        .find_subcommand("run")?
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "scenario" | "json"))
        .filter(|a| run.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    (!given.is_empty()).then(|| {
        format!(
            "{}: not used with --scenario, whose file sets the market, variants and load; put \
             them in the scenario (only --json goes beside it)",
            given.join(", ")
        )
    })
}

/// A reader that stops reading (`ipow ... | head`) is not an error of ipow's: the print that
/// meets the closed pipe ends the process quietly with the shell's status for SIGPIPE (141),
/// where Rust's `println!` would panic. Any other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") && text.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let command = negative_numbers_as_values(cli::args::Cli::command());
    let matches = command.clone().get_matches();
    if let Some(message) = unused_beside_scenario(&command, &matches) {
        eprintln!("ipow: error: {message}");
        return ExitCode::FAILURE;
    }
    let parsed = cli::args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::dispatch(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ipow: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
