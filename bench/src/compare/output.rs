//! The files a comparison writes into its folder: `results.json`
//! (everything, including each cell's full report), `results.csv`
//! ([`super::csv`]), `results.md` ([`super::markdown`]) and the SVG plots
//! ([`super::plot`]); and reading `results.json` back for `--update` and
//! `--redraw`.

use std::path::Path;

use anyhow::Context;

use super::csv::to_csv;
use super::markdown::markdown;
use super::results::Results;

/// Reads the `results.json` of an earlier run in `folder`, for `--update`.
pub fn read_results(folder: &Path) -> anyhow::Result<Results> {
    let path = folder.join("results.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--update needs an earlier run's {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes `results.json`, `results.csv`, `results.md` and the plots.
pub fn write_all(results: &Results, folder: &Path) -> anyhow::Result<()> {
    let write = |name: &str, text: String| {
        let path = folder.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    let json = serde_json::to_string_pretty(results).context("cannot serialize the results")?;
    write("results.json", json + "\n")?;
    write("results.csv", to_csv(results))?;
    let plots = super::plot::draw_all(results, folder)?;
    write("results.md", markdown(results, &plots))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use loadgen::report::Headline;

    use super::*;
    use crate::compare::markdown::{COST_CLIENTS, cost_section};
    use crate::compare::options::CompareOptions;
    use crate::compare::results::{CellResult, Machine};
    use crate::compare::scenarios::Scenario;
    use crate::compare::sections::lab_keepalive_expectation;

    /// The book includes these by name (see [`super::super::markdown`]).
    const ANCHORS: [&str; 18] = [
        "run",
        "lab-setup",
        "lab-close",
        "lab-keepalive",
        "http-sweep-setup",
        "http-sweep",
        "http-sweep-most",
        "http-open-setup",
        "http-open",
        "echo-sweep-setup",
        "echo-sweep",
        "c10k-setup",
        "c10k",
        "rpc-sweep-setup",
        "rpc-sweep-query",
        "rpc-sweep-func1",
        "files-setup",
        "files",
    ];

    /// The committed run renders every anchor the book includes, each
    /// opened and closed once, with only tables inside (no plots: their
    /// paths are relative to the generated file, not to the page that
    /// includes it), and what the prose used to say as columns.
    #[test]
    fn the_committed_run_has_each_anchor_once_around_tables() {
        let committed =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/results");
        let results = read_results(&committed).expect("the committed results.json parses");
        let plots = ["http-sweep-throughput.svg".to_string()];
        let text = markdown(&results, &plots);
        for name in ANCHORS.iter().chain(&["cost"]) {
            for marker in ["ANCHOR", "ANCHOR_END"] {
                let line = format!("<!-- {marker}: {name} -->");
                assert_eq!(text.matches(&line).count(), 1, "{line} in\n{text}");
            }
        }
        assert_eq!(text.matches("<!-- ANCHOR: ").count(), ANCHORS.len() + 1);
        let mut inside = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("<!-- ANCHOR: ") {
                assert_eq!(inside, None, "{name} opens inside another anchor");
                inside = Some(name);
            } else if line.starts_with("<!-- ANCHOR_END: ") {
                assert!(inside.is_some(), "{line} closes nothing");
                inside = None;
            } else if let Some(name) = inside {
                assert!(
                    line.is_empty() || line.starts_with('|'),
                    "{name} holds more than tables: {line}"
                );
            }
        }
        assert!(text.contains("![http-sweep-throughput.svg](http-sweep-throughput.svg)"));
        // The keep-alive expectation of a ten-worker pool, as a column.
        // (The measured rate and its distance from the expectation are the
        // run's; the expected 1.1, the asked 9.7 and 0.11 per worker are not.)
        assert!(
            text.lines().any(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                cells.len() > 6
                    && cells[1] == "03-thread-pool"
                    && cells[3] == "1.1"
                    && cells[5] == "9.7"
                    && cells[6] == "0.11"
            }),
            "{text}"
        );
        // The bound is arithmetic; the measured rate beside it is whatever
        // the committed run measured, so only its place is checked.
        assert!(
            text.lines()
                .any(|line| line.starts_with("| 07-epoll | 10000 | unlimited | ")
                    && line.contains(" | 33333 | ")),
            "no c10k-style row for 07-epoll at 10000 with its bound"
        );
    }

    #[test]
    fn a_held_worker_serves_about_a_ninth_of_a_request_per_second() {
        let per_worker = lab_keepalive_expectation(1);
        assert!((per_worker - 2.0 / 18.1).abs() < 0.001, "{per_worker}");
    }

    /// The committed results must stay readable by `--update` and
    /// `--redraw`; updating one scenario keeps every other cell, puts each
    /// cell measured again where its earlier measurement was (the tables
    /// keep their order), and records the command.
    #[test]
    fn update_keeps_the_cells_it_does_not_measure_again_in_their_places() {
        let committed =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/results");
        let previous = read_results(&committed).expect("the committed results.json parses");
        let total = previous.cells.len();
        let original_command = previous.command.clone();
        let plan = super::super::scenarios::plan(&super::super::scenarios::PlanRequest {
            scenarios: vec![Scenario::C10k],
            models: vec!["07-epoll".to_string()],
            clients: None,
            quick: false,
            cell_duration: None,
            nginx: None,
        });
        assert_eq!(plan.len(), 3, "c10k has three client counts");
        let is_planned = |result: &CellResult| plan.iter().any(|cell| cell.same_as(&result.cell));
        let places: Vec<usize> = (0..total)
            .filter(|&at| is_planned(&previous.cells[at]))
            .collect();
        assert_eq!(places.len(), 3, "the committed run has 07's c10k cells");
        let mut results = previous.clone();
        results.command = "bench compare --scenario c10k --models 07 --update".to_string();
        results.cells.clear();
        results.planned_cells = plan.len();
        results.keep_unplanned(previous.clone(), &plan);
        assert_eq!(
            results.finished_cells,
            total - 3,
            "three are to be measured again"
        );
        assert_eq!(results.planned_cells, total);
        assert_eq!(results.command, original_command);
        assert_eq!(
            results.updated_by.last().map(String::as_str),
            Some("bench compare --scenario c10k --models 07 --update")
        );
        for &at in places.iter().rev() {
            let mut again = previous.cells[at].clone();
            again.elapsed_seconds = -1.0; // marks the new measurement
            results.add(again);
        }
        assert_eq!(results.cells.len(), total, "replaced, not appended");
        assert_eq!(results.finished_cells, total);
        for (at, result) in results.cells.iter().enumerate() {
            assert!(
                result.cell.same_as(&previous.cells[at].cell),
                "cell {at} moved"
            );
            assert_eq!(
                result.elapsed_seconds < 0.0,
                places.contains(&at),
                "cell {at}"
            );
        }
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        let options = CompareOptions {
            plan: super::super::scenarios::PlanRequest {
                scenarios: vec![Scenario::Lab],
                models: vec!["07-epoll".to_string()],
                clients: None,
                quick: true,
                cell_duration: None,
                nginx: None,
            },
            out: std::path::PathBuf::from("out"),
            bin_dir: std::path::PathBuf::from("bin"),
            outsiders: Vec::new(),
            command: "test".to_string(),
            threads: None,
            update: false,
        };
        let mut results = Results::new(&options, Machine::current(), 1);
        let cell = super::super::scenarios::plan(&options.plan).remove(0);
        let setup = super::super::scenarios::model_setup("07-epoll", 2);
        let mut result = CellResult::new(cell, &setup, Vec::new());
        result.error = Some("refused, reset".to_string());
        results.cells.push(result);
        let csv = to_csv(&results);
        assert!(csv.contains(",\"refused, reset\","), "{csv}");
    }

    #[test]
    fn the_cost_table_takes_each_model_at_100_clients_and_nginx_only_where_it_ran() {
        let options = CompareOptions {
            plan: super::super::scenarios::PlanRequest {
                scenarios: vec![Scenario::HttpSweep, Scenario::Files],
                models: vec!["07-epoll".to_string()],
                clients: Some(vec![10, COST_CLIENTS]),
                quick: true,
                cell_duration: None,
                nginx: Some(std::path::PathBuf::from("nginx")),
            },
            out: std::path::PathBuf::from("out"),
            bin_dir: std::path::PathBuf::from("bin"),
            outsiders: Vec::new(),
            command: "test".to_string(),
            threads: None,
            update: false,
        };
        let mut results = Results::new(&options, Machine::current(), 1);
        for cell in super::super::scenarios::plan(&options.plan) {
            let setup = super::super::scenarios::model_setup(&cell.model, 2);
            // Each cell's CPU per request says which cell it is.
            let user = cell.clients as f64
                + if cell.scenario == Scenario::Files {
                    1.0
                } else {
                    0.0
                };
            let mut result = CellResult::new(cell, &setup, Vec::new());
            result.headline = Some(Headline {
                requests_per_second: 1.0,
                cost: Some(loadgen::report::CostPerRequest {
                    cpu_user_us: user,
                    cpu_system_us: 7.0,
                    voluntary_switches: 0.5,
                    involuntary_switches: 0.25,
                }),
                ..Headline::default()
            });
            results.cells.push(result);
        }
        let mut text = String::new();
        cost_section(&results, &mut text);
        // http-sweep at 100 (not 10), echo and rpc not run, files small.
        assert!(
            text.contains("| 07-epoll | 100+7 | 0.50+0.25 | - | - | - | - | 101+7 | 0.50+0.25 |"),
            "{text}"
        );
        assert!(
            text.contains("| nginx | - | - | - | - | - | - | 101+7 | 0.50+0.25 |"),
            "{text}"
        );
    }
}
