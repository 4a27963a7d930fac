//! What `bench compare` is asked for: the plan (scenarios, models, client
//! counts) and where things are and go.

use std::path::PathBuf;

use super::scenarios::PlanRequest;

/// Everything `bench compare` was asked for.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub plan: PlanRequest,
    /// The results folder.
    pub out: PathBuf,
    /// Where the model binaries are (`target/release`).
    pub bin_dir: PathBuf,
    /// Servers the workspace did not build, by name: compared like models
    /// (their names are in the plan's models too).
    pub outsiders: Vec<(String, PathBuf)>,
    /// The command line, written into every results file.
    pub command: String,
    /// Worker threads of the load generator's runtime (default: one per
    /// core).
    pub threads: Option<usize>,
    /// Keep the cells of the results.json already in `out` that this run
    /// does not measure again.
    pub update: bool,
}
