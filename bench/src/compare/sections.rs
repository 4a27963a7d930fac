//! One Markdown section per scenario of `results.md`: its table and the
//! numbers derived from it.

use std::fmt::Write as _;

use loadgen::report::{format_bytes, format_microseconds};

use super::results::{CellResult, Results, of_variant};
use super::scenarios::{DB_LATENCY, FileKind, IDLE_TIMEOUT, Scenario, THINK};
use super::table::*;

/// The expected lab throughput of a pool of `workers` blocking workers
/// with keep-alive: each worker is held by one user for a run of think
/// times under the idle timeout, then the idle timeout itself. With think
/// uniform in 5..15 s and a 10 s idle timeout, half the thinks end the hold:
/// on average 2 requests per hold, which lasts 2 x 0.3 s + 7.5 s (one short
/// think) + 10 s (the idle timeout) = 18.1 s.
pub fn lab_keepalive_expectation(workers: usize) -> f64 {
    let think_min = THINK.min.as_secs_f64();
    let think_max = THINK.max.as_secs_f64();
    let idle = IDLE_TIMEOUT.as_secs_f64();
    let ends_hold = (think_max - idle) / (think_max - think_min);
    let requests_per_hold = 1.0 / ends_hold;
    let short_thinks = requests_per_hold - 1.0;
    let hold_seconds = requests_per_hold * DB_LATENCY.as_secs_f64()
        + short_thinks * (think_min + idle) / 2.0
        + idle;
    workers as f64 * requests_per_hold / hold_seconds
}

pub(super) fn lab_section(results: &Results, text: &mut String) {
    let lab: Vec<&CellResult> = results.cells_of(Scenario::Lab).collect();
    if lab.is_empty() {
        return;
    }
    let demand = lab
        .iter()
        .find_map(|result| result.cell.demand_rps())
        .unwrap_or(0.0);
    let users = lab.first().map_or(100, |result| result.cell.clients);
    let _ = writeln!(
        text,
        "## lab: the lecture's Locust run\n\n{users} users, each requests `GET /` (fake DB {} ms), \
         thinks {THINK} and requests again; users start at {} per second. Little's law: \
         {users} users / ({} s think + {} s) = **{demand:.1} req/s** asked for; the bound of \
         a model with W workers is W / {} s, no more than that.\n",
        DB_LATENCY.as_millis(),
        super::scenarios::LAB_SPAWN_RATE,
        (THINK.min + THINK.max).as_secs_f64() / 2.0,
        DB_LATENCY.as_secs_f64(),
        DB_LATENCY.as_secs_f64(),
    );
    for keepalive in [false, true] {
        let rows: Vec<&&CellResult> = lab
            .iter()
            .filter(|result| result.cell.keepalive == keepalive)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let first = rows[0];
        let _ = writeln!(
            text,
            "### {}\n\ncell {} of which {} warm-up; request timeout {} s.\n",
            if keepalive {
                "with keep-alive (as Locust's client does)"
            } else {
                "a new connection per request (as the lecture's servers close after each reply)"
            },
            loadgen::duration::format_duration(first.cell.duration),
            loadgen::duration::format_duration(first.cell.warmup),
            first.cell.timeout.as_secs()
        );
        write_table(
            text,
            &[
                "model",
                "req/s",
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
            rows.iter().map(|result| **result),
            |result| {
                let headline = result.headline.as_ref()?;
                Some(vec![
                    result.cell.model.clone(),
                    rate(headline.requests_per_second),
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
        // What Little's law said, what happened, and where they part.
        for result in &rows {
            let Some(headline) = &result.headline else {
                continue;
            };
            let expected = if keepalive && result.capacity.is_some() {
                lab_keepalive_expectation(result.capacity.unwrap_or(1)).min(demand)
            } else {
                result.bound_rps.unwrap_or(demand)
            };
            let measured = headline.requests_per_second;
            let off = (measured - expected) / expected.max(1e-9);
            let _ = write!(
                text,
                "- {} lab {}: {} req/s (expected {}), median {}",
                result.cell.model,
                if keepalive {
                    "with keep-alive"
                } else {
                    "without keep-alive"
                },
                rate(measured),
                rate(expected),
                latency(headline, headline.p50_us)
            );
            if off.abs() > 0.2 {
                let _ = write!(text, "; {:+.0} % off", off * 100.0);
                if results.quick {
                    text.push_str(
                        " (a quick cell is shorter than one think cycle: the users had not \
                         reached their steady state)",
                    );
                }
            }
            text.push_str(".\n");
        }
        text.push('\n');
    }
}

/// `01-blocking 1, 03-thread-pool 10, 07-epoll unlimited`: each model's
/// capacity as the cells recorded it.
pub(super) fn capacities(cells: &[&CellResult]) -> String {
    let mut seen: Vec<(&str, Option<usize>)> = Vec::new();
    for result in cells {
        if !seen.iter().any(|(model, _)| *model == result.cell.model) {
            seen.push((&result.cell.model, result.capacity));
        }
    }
    seen.iter()
        .map(|(model, capacity)| match capacity {
            Some(workers) => format!("{model} {workers}"),
            None => format!("{model} unlimited"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn http_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::HttpSweep).collect();
    if cells.is_empty() {
        return;
    }
    let first = cells[0];
    let _ = writeln!(
        text,
        "## http-sweep: throughput against Little's law\n\nN keep-alive connections, each \
         sends `GET /` (fake DB 300 ms) as soon as the previous reply is in, no think time; \
         cell {} of which {} warm-up, request timeout {} s. The bound is min(clients, \
         capacity) / {} s; capacity (requests served at once) in this run: {}.\n",
        loadgen::duration::format_duration(first.cell.duration),
        loadgen::duration::format_duration(first.cell.warmup),
        first.cell.timeout.as_secs(),
        DB_LATENCY.as_secs_f64(),
        capacities(&cells)
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("http-sweep")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
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
    most_clients_lines(&cells, results.machine.cores, text);
}

/// For each model, its cell with the most clients: how close it got to
/// its bound, and where the two cores went (server and load generator
/// share them, so together they cannot pass 100 % x cores).
pub(super) fn most_clients_lines(cells: &[&CellResult], cores: usize, text: &mut String) {
    let mut lines = Vec::new();
    for result in cells {
        let most = cells
            .iter()
            .filter(|other| other.cell.model == result.cell.model)
            .map(|other| other.cell.clients)
            .max();
        let (Some(headline), Some(bound)) = (&result.headline, result.bound_rps) else {
            continue;
        };
        if most != Some(result.cell.clients) {
            continue;
        }
        let server = headline.cpu_mean_percent.unwrap_or(0.0);
        let client = result.loadgen_cpu_mean_percent.unwrap_or(0.0);
        lines.push(format!(
            "- {} at {} connections: {} of {} req/s ({:.0} % of the bound); server CPU {}, \
             loadgen CPU {}, together {:.0} % of the {} cores.",
            result.cell.model,
            result.cell.clients,
            rate(headline.requests_per_second),
            rate(bound),
            100.0 * headline.requests_per_second / bound.max(1e-9),
            percent(server),
            percent(client),
            (server + client) / cores.max(1) as f64,
            cores
        ));
    }
    if !lines.is_empty() {
        text.push_str("Each model at its most connections:\n\n");
        for line in lines {
            let _ = writeln!(text, "{line}");
        }
        text.push('\n');
    }
}

pub(super) fn files_section(results: &Results, text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::Files).collect();
    let Some(first) = cells.first() else {
        return;
    };
    let _ = writeln!(
        text,
        "## files: the lab's static-file server\n\n`--mode files` over one document root; \
         {} keep-alive connections in a closed loop, each asking for the same file: `small` is \
         a {} page, `large` a {} file. Cell {} of which {} warm-up, request timeout {} s. \
         `vs nginx` is req/s over nginx's req/s for the same file (nginx: one worker, \
         sendfile on), where nginx ran.\n",
        first.cell.clients,
        format_bytes(FileKind::Small.bytes() as f64),
        format_bytes(FileKind::Large.bytes() as f64),
        loadgen::duration::format_duration(first.cell.duration),
        loadgen::duration::format_duration(first.cell.warmup),
        first.cell.timeout.as_secs(),
    );
    let nginx_rps = |file: Option<FileKind>| {
        cells
            .iter()
            .find(|result| result.cell.model == super::scenarios::NGINX && result.cell.file == file)
            .and_then(|result| result.headline.as_ref())
            .map(|headline| headline.requests_per_second)
            .filter(|rps| *rps > 0.0)
    };
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
                optional(nginx_rps(result.cell.file).map(|nginx| format!("{:.2}", rps / nginx))),
                latency(headline, headline.p50_us),
                latency(headline, headline.p99_us),
                headline.errors.to_string(),
            ];
            row.extend(usage_cells(result, headline));
            row.push(yes_no(result));
            Some(row)
        },
    );
}

pub(super) fn http_open_section(results: &Results, text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::HttpOpen).collect();
    let Some(first) = cells.first() else {
        return;
    };
    let _ = writeln!(
        text,
        "## http-open: the open loop, corrected and uncorrected\n\n`GET /` (fake DB {} ms) on \
         a plan of R requests per second, a new connection each, at most the listed \
         connections at once; cell {} of which {} warm-up, request timeout {} s. \
         Corrected latency counts from the planned start, with the requests unanswered \
         or never sent at the end at their wait so far; uncorrected counts from the \
         actual send (wrk2's two views).\n",
        DB_LATENCY.as_millis(),
        loadgen::duration::format_duration(first.cell.duration),
        loadgen::duration::format_duration(first.cell.warmup),
        first.cell.timeout.as_secs(),
    );
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
    );
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
    let _ = writeln!(
        text,
        "## echo-sweep: {size}-byte messages\n\nN connections, each sends {size} bytes and \
         waits for the echo, closed loop; cell {} of which {} warm-up. No fake DB: this is CPU \
         and system calls, so the client's CPU is part of the story (the server's CPU is in \
         the table, 100 % = one core).\n",
        loadgen::duration::format_duration(first.cell.duration),
        loadgen::duration::format_duration(first.cell.warmup),
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("echo-sweep")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
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
    );
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
    let _ = writeln!(
        text,
        "## c10k: idle connections\n\nOpen N connections at {rate:.0} per second and hold them; \
         every second about {sample} of them send a {}-byte echo to check they are served, not \
         just queued. RSS per connection = (peak RSS - RSS right after start) / connections held. A \
         model that does not get there says why.\n",
        loadgen::hold::PROBE_LENGTH
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("c10k")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
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
    );
}

/// rpc-sweep: the homework's question, one table per function.
pub(super) fn rpc_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::RpcSweep).collect();
    if cells.is_empty() {
        return;
    }
    let first = cells[0];
    let _ = writeln!(
        text,
        "## rpc-sweep: the RPC homework's comparison\n\nN connections, each makes one JSON-RPC \
         call and sends the next as soon as the reply is in (closed loop, no pipelining), \
         every result checked; cell {} of which {} warm-up. `query` waits for the fake DB \
         (300 ms, bound as in http-sweep); `func1` does not wait, so it measures the protocol, \
         the dispatch and the scheduling. RSS, threads and CPU answer the homework's \"resources \
         by number of clients\". Run it alone with `bench compare --scenario rpc-sweep`.\n",
        loadgen::duration::format_duration(first.cell.duration),
        loadgen::duration::format_duration(first.cell.warmup),
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("rpc-sweep")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
    for call in ["query", "func1"] {
        let of_call = of_variant(&cells, call);
        if of_call.is_empty() {
            continue;
        }
        let _ = writeln!(text, "### {call}\n");
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
        );
    }
}
