//! `results.md`: the run, then every scenario's tables, in the order of
//! the book, and the cost per request. Only tables and the numbers derived
//! from them: what they mean is written in the book, `docs/src/results.md`,
//! around `{{#include results/results.md:NAME}}`.
//!
//! Each table sits between `<!-- ANCHOR: NAME -->` and
//! `<!-- ANCHOR_END: NAME -->`. The book includes them by these names, so
//! they stay as they are (`cargo test -p conformance --test book` fails on
//! one that is gone):
//!
//! - `run`: machine, commands, time, cells, quick or not.
//! - `lab-setup`, `lab-close`, `lab-keepalive`: the lab's users and what
//!   Little's law expects of them, then one table per connection variant.
//! - `http-sweep-setup`, `http-sweep` (every cell), `http-sweep-most` (each
//!   model at its most connections, with its share of the bound and cores).
//! - `http-open-setup`, `http-open`.
//! - `echo-sweep-setup`, `echo-sweep`.
//! - `c10k-setup`, `c10k`.
//! - `rpc-sweep-setup`, `rpc-sweep-query`, `rpc-sweep-func1`.
//! - `files-setup`, `files`.
//! - `cost`: one row per model, at [`COST_CLIENTS`] clients.
//! - `failed`, `unclean`: only when a cell failed, or a server did not stop
//!   cleanly on SIGTERM; the book includes neither.
//!
//! A scenario that did not run has no section and no anchors. The plots
//! are shown next to their tables, outside the anchors: their paths are
//! relative to this file.

use std::fmt::Write as _;

use super::results::{CellResult, Results};
use super::scenarios::Scenario;
use super::sections::*;
use super::table::*;

/// Clients of the cells the cost table compares: every model has them in
/// every sweep, and even the pool models serve that many at once or queue
/// them.
pub(super) const COST_CLIENTS: usize = 100;

/// One row per model: what a request cost the server in each scenario at
/// [`COST_CLIENTS`] clients, gathered from the tables above.
pub(super) fn cost_section(results: &Results, text: &mut String) {
    let columns: [(Scenario, &str, &str); 4] = [
        (Scenario::HttpSweep, "", "http-sweep (fake DB)"),
        (Scenario::EchoSweep, "", "echo-sweep"),
        (Scenario::RpcSweep, "func1", "rpc-sweep func1"),
        (Scenario::Files, "small", "files small"),
    ];
    let find = |model: &str, (scenario, variant, _): (Scenario, &str, &str)| {
        results.cells_of(scenario).find(|result| {
            result.cell.model == model
                && result.cell.clients == COST_CLIENTS
                && result.cell.variant() == variant
        })
    };
    let mut models: Vec<&str> = Vec::new();
    for result in &results.cells {
        let model = result.cell.model.as_str();
        if !models.contains(&model) && columns.iter().any(|&column| find(model, column).is_some()) {
            models.push(model);
        }
    }
    if models.is_empty() {
        return;
    }
    text.push_str("## cost per request\n\n");
    let mut headers = vec![format!("model, at {COST_CLIENTS} clients")];
    for (_, _, name) in columns {
        headers.push(format!("{name}: CPU us"));
        headers.push(format!("{name}: switches"));
    }
    anchored(text, "cost", |text| {
        write_header(text, &headers);
        for model in models {
            let mut row = vec![model.to_string()];
            for column in columns {
                let [cpu, switches] = find(model, column)
                    .and_then(|result| result.headline.as_ref())
                    .map_or_else(|| ["-".to_string(), "-".to_string()], cost_cells);
                row.extend([cpu, switches]);
            }
            let _ = writeln!(text, "| {} |", row.join(" | "));
        }
        text.push('\n');
    });
}

/// The run itself: where, by which commands, how long, and whether its
/// numbers may be quoted at all.
fn run_table(results: &Results, text: &mut String) {
    let rows = [
        ("machine", results.machine.describe()),
        (
            "cores shared by server and loadgen",
            results.machine.cores.to_string(),
        ),
        ("command", results.commands()),
        ("time", format!("{:.0} s", results.elapsed_seconds)),
        (
            "cells",
            format!("{} of {}", results.finished_cells, results.planned_cells),
        ),
        (
            "quick run",
            if results.quick {
                "**yes**: rough numbers, not to be quoted"
            } else {
                "no"
            }
            .to_string(),
        ),
    ];
    text.push_str("| run | |\n|---|---|\n");
    for (name, value) in rows {
        let _ = writeln!(text, "| {name} | {} |", value.replace('|', "/"));
    }
    text.push('\n');
}

/// `results.md`.
pub fn markdown(results: &Results, plots: &[String]) -> String {
    let mut text = String::from("# Results: the models compared\n\n");
    anchored(&mut text, "run", |text| run_table(results, text));
    lab_section(results, &mut text);
    http_sweep_section(results, plots, &mut text);
    http_open_section(results, &mut text);
    echo_sweep_section(results, plots, &mut text);
    c10k_section(results, plots, &mut text);
    rpc_sweep_section(results, plots, &mut text);
    files_section(results, &mut text);
    cost_section(results, &mut text);
    let failed: Vec<&CellResult> = results
        .cells
        .iter()
        .filter(|result| result.error.is_some())
        .collect();
    if !failed.is_empty() {
        text.push_str("## cells that failed\n\n");
        anchored(&mut text, "failed", |text| {
            text.push_str(
                "| scenario | variant | model | clients | error |\n|---|---|---|---|---|\n",
            );
            for result in failed {
                let _ = writeln!(
                    text,
                    "| {} | {} | {} | {} | {} |",
                    result.cell.scenario,
                    result.cell.variant(),
                    result.cell.model,
                    result.cell.clients,
                    result.error.clone().unwrap_or_default().replace('|', "/")
                );
            }
            text.push('\n');
        });
    }
    let unclean: Vec<_> = results
        .cells
        .iter()
        .filter_map(|result| Some((result, result.stopped.as_ref()?)))
        .filter(|(_, stopped)| !stopped.clean)
        .collect();
    if !unclean.is_empty() {
        text.push_str("## servers that did not stop cleanly on SIGTERM\n\n");
        anchored(&mut text, "unclean", |text| {
            text.push_str("| scenario | model | clients | status | after | note |\n|---|---|---|---|---|---|\n");
            for (result, stopped) in unclean {
                let _ = writeln!(
                    text,
                    "| {} | {} | {} | {} | {:.1} s | {} |",
                    result.cell.scenario,
                    result.cell.model,
                    result.cell.clients,
                    stopped.status,
                    stopped.seconds,
                    stopped.note.clone().unwrap_or_default().replace('|', "/")
                );
            }
            text.push('\n');
        });
    }
    text
}
