//! `results.md`: the headline table, the cost per request, and every
//! scenario's section, in the order of the book.

use std::fmt::Write as _;

use loadgen::report::format_bytes;

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
    let _ = writeln!(
        text,
        "## Cost per request\n\nWhat one answered request (message, call) cost the server at \
         {COST_CLIENTS} clients, from the cells above: CPU microseconds in user mode + in the \
         kernel, then context switches, voluntary (it waited) + involuntary (it was \
         preempted), summed over all its processes and threads.\n"
    );
    let mut headers = vec!["model".to_string()];
    for (_, _, name) in columns {
        headers.push(format!("{name}: CPU us"));
        headers.push(format!("{name}: switches"));
    }
    let _ = writeln!(
        text,
        "| {} |\n|{}",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
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
}

/// The sentences a reader wants before the tables.
pub(super) fn headlines(results: &Results, text: &mut String) {
    let mut lines = Vec::new();
    for result in &results.cells {
        let Some(headline) = &result.headline else {
            continue;
        };
        let cell = &result.cell;
        match cell.scenario {
            Scenario::Lab => lines.push(format!(
                "{} lab {}: {} req/s (bound {}), median {}",
                cell.model,
                if cell.keepalive {
                    "with keep-alive"
                } else {
                    "without keep-alive"
                },
                rate(headline.requests_per_second),
                optional(result.bound_rps.map(rate)),
                latency(headline, headline.p50_us)
            )),
            Scenario::C10k if results.is_largest(cell) => {
                lines.push(format!(
                    "{} c10k at {} connections: held {}, RSS {} ({} per connection), {} threads{}",
                    cell.model,
                    cell.clients,
                    result.hold.as_ref().map_or(0, |hold| hold.open_at_end),
                    resource(headline.rss_peak_bytes, bytes),
                    optional(result.rss_per_connection_bytes.map(format_bytes)),
                    resource(headline.threads_peak, |threads| threads.to_string()),
                    if result.reached == Some(false) {
                        "; did not get there"
                    } else {
                        ""
                    }
                ));
            }
            Scenario::HttpSweep if results.is_largest(cell) => {
                lines.push(format!(
                    "{} http-sweep at {} connections: {} req/s of the bound {}, p99 {}, \
                     server CPU {}",
                    cell.model,
                    cell.clients,
                    rate(headline.requests_per_second),
                    optional(result.bound_rps.map(rate)),
                    latency(headline, headline.p99_us),
                    optional(headline.cpu_mean_percent.map(percent)),
                ));
            }
            Scenario::Files => {
                lines.push(format!(
                    "{} files {}: {} req/s, p99 {}",
                    cell.model,
                    cell.variant(),
                    rate(headline.requests_per_second),
                    latency(headline, headline.p99_us),
                ));
            }
            Scenario::RpcSweep if results.is_largest(cell) => {
                lines.push(format!(
                    "{} rpc-sweep {} at {} clients: {} calls/s, p99 {}, RSS {}, {} threads",
                    cell.model,
                    cell.variant(),
                    cell.clients,
                    rate(headline.requests_per_second),
                    latency(headline, headline.p99_us),
                    resource(headline.rss_peak_bytes, bytes),
                    resource(headline.threads_peak, |threads| threads.to_string()),
                ));
            }
            _ => {}
        }
    }
    if lines.is_empty() {
        return;
    }
    text.push_str("## Headlines\n\n");
    for line in lines {
        let _ = writeln!(text, "- {line}.");
    }
    text.push('\n');
}

/// `results.md`.
pub fn markdown(results: &Results, plots: &[String]) -> String {
    let mut text = String::from("# Results: the models compared\n\n");
    if results.quick {
        text.push_str(
            "> **This is a quick run** (`--quick`): every cell is a few seconds long, so the \
             numbers are rough, the lab users never reach their steady state, and nothing \
             here should be quoted.\n\n",
        );
    }
    if !results.complete {
        let _ = writeln!(
            text,
            "> **Incomplete**: {} of {} cells so far.\n",
            results.finished_cells, results.planned_cells
        );
    }
    let _ = writeln!(
        text,
        "- Machine: {}\n- Command: {}\n- Note: {}.\n- Time: {:.0} s for {} cells.\n",
        results.machine.describe(),
        results.commands(),
        results.machine.sharing_note(),
        results.elapsed_seconds,
        results.finished_cells
    );
    text.push_str(
        "How to read the tables (bound, saturated, warm-up, cost per request): see the \
         book's chapter *How to measure*.\n\n",
    );
    headlines(results, &mut text);
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
        text.push_str("## Cells that failed\n\n");
        for result in failed {
            let _ = writeln!(
                text,
                "- {} {} {} clients={}: {}",
                result.cell.scenario,
                result.cell.variant(),
                result.cell.model,
                result.cell.clients,
                result.error.clone().unwrap_or_default()
            );
        }
        text.push('\n');
    }
    let unclean: Vec<&CellResult> = results
        .cells
        .iter()
        .filter(|result| {
            result
                .stopped
                .as_ref()
                .is_some_and(|stopped| !stopped.clean)
        })
        .collect();
    if !unclean.is_empty() {
        text.push_str("## Servers that did not stop cleanly on SIGTERM\n\n");
        for result in unclean {
            if let Some(stopped) = &result.stopped {
                let _ = writeln!(
                    text,
                    "- {} {} clients={}: {} after {:.1} s{}",
                    result.cell.scenario,
                    result.cell.model,
                    result.cell.clients,
                    stopped.status,
                    stopped.seconds,
                    stopped
                        .note
                        .as_ref()
                        .map(|note| format!(" ({note})"))
                        .unwrap_or_default()
                );
            }
        }
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "Files: `results.json` (everything, with each cell's full loadgen report and \
         per-second series), `results.csv` (one row per cell), the SVG plots. {}.",
        results.provenance()
    );
    text
}
