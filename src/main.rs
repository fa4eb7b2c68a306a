//! The `ipow` command: parses arguments, calls the library through `cli`'s commands, and maps
//! errors to a message on stderr and exit code 1.

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::dispatch(cli::args::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ipow: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
