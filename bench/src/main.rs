//! The `bench` binary: parse the flags, run the comparison or the race.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Bad flags: clap prints its message and exits with status 2.
    let cli = bench::cli::Cli::parse();
    match bench::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` puts the whole chain of causes on one line.
            eprintln!("bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
