//! One Markdown section per scenario of `results.md`: a one-row table of
//! its setup and what follows from it, then its measurements, each in an
//! anchor the book includes (the names are listed in [`super::markdown`]).
//! Why the numbers are what they are is the book's to say, in
//! `docs/src/results.md`.

use std::fmt::Write as _;

use loadgen::report::{format_bytes, format_microseconds};

use super::results::{CellResult, Results, of_variant};
use super::scenarios::{DB_LATENCY, FileKind, IDLE_TIMEOUT, Scenario, THINK};
use super::table::*;

/// How a blocking worker spends the lab with keep-alive: it is held by one
/// user for a run of think times under the idle timeout, then the idle
/// timeout itself. With think uniform in 5..15 s and a 10 s idle timeout,
/// half the thinks end the hold: on average 2 requests per hold, which
/// lasts 2 x 0.3 s + 7.5 s (one short think) + 10 s (the idle timeout) =
/// 18.1 s.
pub struct KeepaliveHold {
    pub requests: f64,
    pub seconds: f64,
}

pub fn keepalive_hold() -> KeepaliveHold {
    let think_min = THINK.min.as_secs_f64();
    let think_max = THINK.max.as_secs_f64();
    let idle = IDLE_TIMEOUT.as_secs_f64();
    let ends_hold = (think_max - idle) / (think_max - think_min);
    let requests = 1.0 / ends_hold;
    let short_thinks = requests - 1.0;
    let seconds =
        requests * DB_LATENCY.as_secs_f64() + short_thinks * (think_min + idle) / 2.0 + idle;
    KeepaliveHold { requests, seconds }
}

/// The expected lab throughput of a pool of `workers` blocking workers
/// with keep-alive: [`keepalive_hold`]'s requests per hold over its length.
pub fn lab_keepalive_expectation(workers: usize) -> f64 {
    let hold = keepalive_hold();
    workers as f64 * hold.requests / hold.seconds
}

/// A cell's length and warm-up: the last columns of every setup table.
fn length_fields(result: &CellResult) -> [(&'static str, String); 2] {
    [
        (
            "cell",
            loadgen::duration::format_duration(result.cell.duration),
        ),
        (
            "warm-up",
            loadgen::duration::format_duration(result.cell.warmup),
        ),
    ]
}

/// [`length_fields`] and the request timeout, for the scenarios whose
/// requests can time out.
fn timing_fields(result: &CellResult) -> Vec<(&'static str, String)> {
    let mut fields = length_fields(result).to_vec();
    fields.push((
        "request timeout",
        format!("{} s", result.cell.timeout.as_secs()),
    ));
    fields
}

pub(super) fn lab_section(results: &Results, text: &mut String) {
    let lab: Vec<&CellResult> = results.cells_of(Scenario::Lab).collect();
    let Some(first) = lab.first() else {
        return;
    };
    let demand = lab
        .iter()
        .find_map(|result| result.cell.demand_rps())
        .unwrap_or(0.0);
    let think_mean = (THINK.min + THINK.max).as_secs_f64() / 2.0;
    let hold = keepalive_hold();
    text.push_str("## lab\n\n");
    let mut fields = vec![
        ("users", first.cell.clients.to_string()),
        (
            "users started",
            format!("{} per s", super::scenarios::LAB_SPAWN_RATE),
        ),
        ("think", THINK.to_string()),
        ("fake DB", format!("{} ms", DB_LATENCY.as_millis())),
        (
            "mean think + DB",
            format!("{} s", think_mean + DB_LATENCY.as_secs_f64()),
        ),
        ("asked for (Little's law)", format!("{demand:.1} req/s")),
        (
            "bound per worker",
            format!("{} req/s", rate(1.0 / DB_LATENCY.as_secs_f64())),
        ),
        ("idle timeout", format!("{} s", IDLE_TIMEOUT.as_secs())),
        (
            "keep-alive: requests per hold",
            format!("{:.1}", hold.requests),
        ),
        ("keep-alive: hold", format!("{:.1} s", hold.seconds)),
        (
            "keep-alive: req/s per worker",
            format!("{:.2}", lab_keepalive_expectation(1)),
        ),
    ];
    fields.extend(timing_fields(first));
    setup_row(text, "lab", &fields);
    for keepalive in [false, true] {
        let rows: Vec<&CellResult> = lab
            .iter()
            .copied()
            .filter(|result| result.cell.keepalive == keepalive)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let (heading, anchor) = if keepalive {
            ("with keep-alive", "lab-keepalive")
        } else {
            ("a new connection per request", "lab-close")
        };
        let _ = writeln!(text, "### {heading}\n");
        anchored(text, anchor, |text| {
            write_table(
                text,
                &[
                    "model",
                    "req/s",
                    "expected",
                    "off",
                    "bound",
                    "measured / bound",
                    "p50",
                    "p90",
                    "p99",
                    "max",
                    "errors",
                    "threads",
                    "TIME_WAIT",
                    "saturated",
                ],
                rows.iter().copied(),
                |result| {
                    let headline = result.headline.as_ref()?;
                    // Little's law for the models that serve every user at
                    // once; a held worker's rate for a blocking pool with
                    // keep-alive.
                    let expected = match result.capacity {
                        Some(workers) if keepalive => {
                            lab_keepalive_expectation(workers).min(demand)
                        }
                        _ => result.bound_rps.unwrap_or(demand),
                    };
                    let measured = headline.requests_per_second;
                    let off = (measured - expected) / expected.max(1e-9);
                    Some(vec![
                        result.cell.model.clone(),
                        rate(measured),
                        rate(expected),
                        // `+ 0.0` turns a rounded -0 into 0.
                        format!("{:+.0} %", (off * 100.0).round() + 0.0),
                        optional(result.bound_rps.map(rate)),
                        optional(result.ratio.map(|ratio| format!("{ratio:.2}"))),
                        latency(headline, headline.p50_us),
                        latency(headline, headline.p90_us),
                        latency(headline, headline.p99_us),
                        latency(headline, headline.max_us),
                        headline.errors.to_string(),
                        resource(headline.threads_peak, |threads| threads.to_string()),
                        optional(result.time_wait),
                        yes_no(result),
                    ])
                },
            );
        });
    }
}

/// A model's capacity as the cells recorded it: `10`, or `unlimited`.
fn capacity(result: &CellResult) -> String {
    result
        .capacity
        .map_or_else(|| "unlimited".to_string(), |workers| workers.to_string())
}

/// The plots whose names start with `scenario`, above its tables. They
/// stay outside the anchors: an image's path is relative to this file, so
/// a page elsewhere shows the plots by its own links.
/// A scenario's setup as a one-row table, in the anchor `SCENARIO-setup`
/// the book includes.
fn setup_row(text: &mut String, scenario: &str, fields: &[(&str, String)]) {
    anchored(text, &format!("{scenario}-setup"), |text| {
        write_row(text, fields)
    });
}

fn plots_of(plots: &[String], scenario: &str, text: &mut String) {
    for plot in plots.iter().filter(|plot| plot.starts_with(scenario)) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
}

pub(super) fn http_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::HttpSweep).collect();
    let Some(first) = cells.first() else {
        return;
    };
    text.push_str("## http-sweep\n\n");
    let mut fields = vec![
        ("connections", "keep-alive".to_string()),
        ("fake DB", format!("{} ms", DB_LATENCY.as_millis())),
        ("think", "none".to_string()),
        (
            "bound",
            format!("min(clients, capacity) / {} s", DB_LATENCY.as_secs_f64()),
        ),
    ];
    fields.extend(timing_fields(first));
    setup_row(text, "http-sweep", &fields);
    plots_of(plots, "http-sweep", text);
    anchored(text, "http-sweep", |text| {
        write_table(
            text,
            &columns(
                &[
                    "model",
                    "clients",
                    "req/s",
                    "bound",
                    "measured / bound",
                    "p50",
                    "p99",
                    "p99.9",
                    "errors",
                ],
                "req",
                &["TIME_WAIT", "saturated"],
            ),
            cells.iter().copied(),
            |result| {
                let headline = result.headline.as_ref()?;
                let mut row = vec![
                    result.cell.model.clone(),
                    result.cell.clients.to_string(),
                    rate(headline.requests_per_second),
                    optional(result.bound_rps.map(rate)),
                    optional(result.ratio.map(|ratio| format!("{ratio:.2}"))),
                    latency(headline, headline.p50_us),
                    latency(headline, headline.p99_us),
                    latency(headline, headline.p999_us),
                    headline.errors.to_string(),
                ];
                row.extend(usage_cells(result, headline));
                row.extend([optional(result.time_wait), yes_no(result)]);
                Some(row)
            },
        );
    });
    text.push_str("### each model at its most connections\n\n");
    anchored(text, "http-sweep-most", |text| {
        most_clients_table(&cells, results.machine.cores, text);
    });
}

/// For each model, its cell with the most clients: how close it got to
/// its bound, and where the cores went (server and load generator share
/// them, so together they cannot pass 100 % x cores).
pub(super) fn most_clients_table(cells: &[&CellResult], cores: usize, text: &mut String) {
    let most: Vec<&CellResult> = cells
        .iter()
        .copied()
        .filter(|result| {
            let most = cells
                .iter()
                .filter(|other| other.cell.model == result.cell.model)
                .map(|other| other.cell.clients)
                .max();
            most == Some(result.cell.clients)
        })
        .collect();
    let together = format!("together, % of {cores} cores");
    write_table(
        text,
        &[
            "model",
            "clients",
            "capacity",
            "req/s",
            "bound",
            "% of the bound",
            "p99",
            "CPU",
            "loadgen CPU",
            &together,
        ],
        most,
        |result| {
            let (headline, bound) = (result.headline.as_ref()?, result.bound_rps?);
            let server = headline.cpu_mean_percent.unwrap_or(0.0);
            let client = result.loadgen_cpu_mean_percent.unwrap_or(0.0);
            Some(vec![
                result.cell.model.clone(),
                result.cell.clients.to_string(),
                capacity(result),
                rate(headline.requests_per_second),
                rate(bound),
                percent(100.0 * headline.requests_per_second / bound.max(1e-9)),
                latency(headline, headline.p99_us),
                percent(server),
                percent(client),
                percent((server + client) / cores.max(1) as f64),
            ])
        },
    );
}

pub(super) fn files_section(results: &Results, text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::Files).collect();
    let Some(first) = cells.first() else {
        return;
    };
    text.push_str("## files\n\n");
    let mut fields = vec![
        ("connections", format!("{} keep-alive", first.cell.clients)),
        ("small", format_bytes(FileKind::Small.bytes() as f64)),
        ("large", format_bytes(FileKind::Large.bytes() as f64)),
    ];
    fields.extend(timing_fields(first));
    setup_row(text, "files", &fields);
    let nginx_rps = |file: Option<FileKind>| {
        cells
            .iter()
            .find(|result| result.cell.model == super::scenarios::NGINX && result.cell.file == file)
            .and_then(|result| result.headline.as_ref())
            .map(|headline| headline.requests_per_second)
            .filter(|rps| *rps > 0.0)
    };
    anchored(text, "files", |text| {
        write_table(
            text,
            &columns(
                &[
                    "model", "file", "req/s", "MiB/s", "vs nginx", "p50", "p99", "errors",
                ],
                "req",
                &["saturated"],
            ),
            cells.iter().copied(),
            |result| {
                let headline = result.headline.as_ref()?;
                let rps = headline.requests_per_second;
                let file_bytes = result.cell.file.map_or(0, FileKind::bytes) as f64;
                let mut row = vec![
                    result.cell.model.clone(),
                    result.cell.variant().to_string(),
                    rate(rps),
                    format!("{:.1}", rps * file_bytes / (1024.0 * 1024.0)),
                    optional(
                        nginx_rps(result.cell.file).map(|nginx| format!("{:.2}", rps / nginx)),
                    ),
                    latency(headline, headline.p50_us),
                    latency(headline, headline.p99_us),
                    headline.errors.to_string(),
                ];
                row.extend(usage_cells(result, headline));
                row.push(yes_no(result));
                Some(row)
            },
        )
    });
}

pub(super) fn http_open_section(results: &Results, text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::HttpOpen).collect();
    let Some(first) = cells.first() else {
        return;
    };
    text.push_str("## http-open\n\n");
    let mut fields = vec![
        ("connections", "a new one per request".to_string()),
        ("fake DB", format!("{} ms", DB_LATENCY.as_millis())),
    ];
    fields.extend(timing_fields(first));
    setup_row(text, "http-open", &fields);
    anchored(text, "http-open", |text| {
        write_table(
            text,
            &[
                "model",
                "target req/s",
                "achieved",
                "bound",
                "connections",
                "planned",
                "unanswered",
                "never sent",
                "late",
                "corrected p50",
                "corrected p99",
                "uncorrected p50",
                "uncorrected p99",
                "errors",
                "CPU us/req (user+sys)",
                "switches/req (vol+invol)",
            ],
            cells.iter().copied(),
            |result| {
                let headline = result.headline.as_ref()?;
                let report = result.report.as_ref()?;
                let summary = &report.summary;
                let uncorrected = report.service_time.clone().unwrap_or_default();
                let [cpu, switches] = cost_cells(headline);
                // Unlike `latency`, shown even when nothing was answered: the
                // corrected view then holds the unfinished requests' waits.
                let value = |percentiles: &loadgen::stats::Percentiles, microseconds: u64| {
                    if percentiles.count == 0 {
                        "-".to_string()
                    } else {
                        format_microseconds(microseconds as f64)
                    }
                };
                Some(vec![
                    result.cell.model.clone(),
                    optional(result.cell.rate.map(rate)),
                    rate(headline.requests_per_second),
                    optional(result.bound_rps.map(rate)),
                    result.cell.clients.to_string(),
                    optional(summary.planned_requests),
                    summary.unanswered.to_string(),
                    summary.never_sent.to_string(),
                    summary.late.to_string(),
                    value(&report.latency, headline.p50_us),
                    value(&report.latency, headline.p99_us),
                    value(&uncorrected, uncorrected.p50_us),
                    value(&uncorrected, uncorrected.p99_us),
                    headline.errors.to_string(),
                    cpu,
                    switches,
                ])
            },
        )
    });
}

pub(super) fn echo_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::EchoSweep).collect();
    if cells.is_empty() {
        return;
    }
    let first = cells[0];
    // The message size the cells really used, from the first one's config.
    let size = match first.report.as_ref().map(|report| &report.config) {
        Some(loadgen::config::Config::Echo(config)) => config.size,
        _ => super::scenarios::ECHO_MESSAGE_BYTES,
    };
    text.push_str("## echo-sweep\n\n");
    let mut fields = vec![
        ("message", format!("{size} B")),
        ("fake DB", "none".to_string()),
    ];
    fields.extend(length_fields(first));
    setup_row(text, "echo-sweep", &fields);
    plots_of(plots, "echo-sweep", text);
    anchored(text, "echo-sweep", |text| {
        write_table(
            text,
            &columns(
                &[
                    "model",
                    "connections",
                    "messages/s",
                    "p50",
                    "p99",
                    "max",
                    "errors",
                ],
                "msg",
                &["saturated"],
            ),
            cells.iter().copied(),
            |result| {
                let headline = result.headline.as_ref()?;
                let mut row = vec![
                    result.cell.model.clone(),
                    result.cell.clients.to_string(),
                    rate(headline.requests_per_second),
                    latency(headline, headline.p50_us),
                    latency(headline, headline.p99_us),
                    latency(headline, headline.max_us),
                    headline.errors.to_string(),
                ];
                row.extend(usage_cells(result, headline));
                row.push(yes_no(result));
                Some(row)
            },
        )
    });
}

pub(super) fn c10k_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::C10k).collect();
    if cells.is_empty() {
        return;
    }
    let rate = cells[0].cell.connect_rate.unwrap_or_default();
    let sample = match cells[0].report.as_ref().map(|report| &report.config) {
        Some(loadgen::config::Config::Hold(config)) => config.sample,
        _ => 0,
    };
    text.push_str("## c10k\n\n");
    setup_row(
        text,
        "c10k",
        &[
            ("connects", format!("{rate:.0} per s")),
            ("checks", format!("about {sample} per s")),
            ("check", format!("{} B echo", loadgen::hold::PROBE_LENGTH)),
            (
                "RSS per connection",
                "(peak RSS - RSS at start) / held".to_string(),
            ),
        ],
    );
    plots_of(plots, "c10k", text);
    anchored(text, "c10k", |text| {
        write_table(
            text,
            &[
                "model",
                "connections",
                "held",
                "checks answered",
                "RSS at start",
                "peak RSS",
                "RSS per connection",
                "threads",
                "fds",
                "reached",
                "why not",
            ],
            cells.iter().copied(),
            |result| {
                let (headline, hold) = (result.headline.as_ref()?, result.hold.as_ref()?);
                Some(vec![
                    result.cell.model.clone(),
                    result.cell.clients.to_string(),
                    hold.open_at_end.to_string(),
                    format!("{} of {}", hold.checks_answered, hold.checks_sent),
                    resource(
                        result.baseline.as_ref().map(|baseline| baseline.rss_bytes),
                        bytes,
                    ),
                    resource(headline.rss_peak_bytes, bytes),
                    optional(result.rss_per_connection_bytes.map(format_bytes)),
                    resource(headline.threads_peak, |threads| threads.to_string()),
                    resource(headline.fds_peak, |fds| fds.to_string()),
                    match result.reached {
                        Some(true) => "yes",
                        Some(false) => "**no**",
                        None => "-",
                    }
                    .to_string(),
                    optional(
                        result
                            .stopped_reason
                            .as_ref()
                            .map(|reason| reason.replace('|', "/")),
                    ),
                ])
            },
        )
    });
}

/// rpc-sweep: the homework's question, one table per function.
pub(super) fn rpc_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::RpcSweep).collect();
    if cells.is_empty() {
        return;
    }
    let first = cells[0];
    text.push_str("## rpc-sweep\n\n");
    let mut fields = vec![
        ("calls", "one at a time per connection".to_string()),
        ("query: fake DB", format!("{} ms", DB_LATENCY.as_millis())),
        ("func1: fake DB", "none".to_string()),
    ];
    fields.extend(length_fields(first));
    setup_row(text, "rpc-sweep", &fields);
    plots_of(plots, "rpc-sweep", text);
    for call in ["query", "func1"] {
        let of_call = of_variant(&cells, call);
        if of_call.is_empty() {
            continue;
        }
        let _ = writeln!(text, "### {call}\n");
        anchored(text, &format!("rpc-sweep-{call}"), |text| {
            write_table(
                text,
                &columns(
                    &[
                        "model", "clients", "calls/s", "bound", "p50", "p99", "errors",
                    ],
                    "call",
                    &["saturated"],
                ),
                of_call,
                |result| {
                    let headline = result.headline.as_ref()?;
                    let mut row = vec![
                        result.cell.model.clone(),
                        result.cell.clients.to_string(),
                        rate(headline.requests_per_second),
                        optional(result.bound_rps.map(rate)),
                        latency(headline, headline.p50_us),
                        latency(headline, headline.p99_us),
                        headline.errors.to_string(),
                    ];
                    row.extend(usage_cells(result, headline));
                    row.push(yes_no(result));
                    Some(row)
                },
            )
        });
    }
}
