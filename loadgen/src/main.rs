//! The `loadgen` binary: parse the flags, run, print. All the work is in
//! the library (`loadgen::cli` and the modes), so other code can run the
//! same loads in-process.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Bad flags: clap prints its message and exits with status 2.
    let cli = loadgen::cli::Cli::parse();
    match loadgen::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` puts the whole chain of causes on one line.
            eprintln!("loadgen: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
