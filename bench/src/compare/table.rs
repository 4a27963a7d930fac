//! How numbers are written in the results' tables and CSV cells, and the
//! Markdown table every section writes.

use std::fmt::Write as _;

use loadgen::report::{Headline, format_bytes, format_microseconds};

use super::results::CellResult;

pub(super) fn milliseconds(microseconds: u64) -> String {
    format!("{:.2}", microseconds as f64 / 1000.0)
}

pub(super) fn optional<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

pub(super) fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

pub(super) fn latency(headline: &Headline, microseconds: u64) -> String {
    if headline.requests_per_second == 0.0 {
        "-".to_string()
    } else {
        format_microseconds(microseconds as f64)
    }
}

pub(super) fn resource(value: Option<u64>, format: impl Fn(u64) -> String) -> String {
    value.map_or_else(|| "-".to_string(), format)
}

pub(super) fn bytes(value: u64) -> String {
    format_bytes(value as f64)
}

pub(super) fn yes_no(result: &CellResult) -> String {
    match (result.saturated, &result.saturation_reason) {
        (Some(true), Some(reason)) => format!("yes: {reason}"),
        (Some(true), None) => "yes".to_string(),
        (Some(false), _) => "no".to_string(),
        (None, _) => "-".to_string(),
    }
}

/// A Markdown table over cells: the header row and its rule, then one row
/// per cell from `row`, or a `failed` row of the same width for a cell
/// without numbers (`row` returns `None`).
pub(super) fn write_table<'a>(
    text: &mut String,
    headers: &[&str],
    cells: impl IntoIterator<Item = &'a CellResult>,
    row: impl Fn(&CellResult) -> Option<Vec<String>>,
) {
    write_header(text, headers);
    for result in cells {
        let line = match row(result) {
            Some(fields) => format!("| {} |", fields.join(" | ")),
            None => failed_row(result, headers.len()),
        };
        let _ = writeln!(text, "{line}");
    }
    text.push('\n');
}

/// What one request cost the server: `12+30` CPU microseconds (user +
/// system) and `1.0+0.02` context switches (voluntary + involuntary).
pub(super) fn cost_cells(headline: &Headline) -> [String; 2] {
    match headline.cost {
        Some(cost) => [
            format!("{:.0}+{:.0}", cost.cpu_user_us, cost.cpu_system_us),
            format!(
                "{:.2}+{:.2}",
                cost.voluntary_switches, cost.involuntary_switches
            ),
        ],
        None => ["-".to_string(), "-".to_string()],
    }
}

/// A load table's headers: its own first columns, the six of
/// [`usage_cells`] with the unit the costs are per (`req`, `msg` or `call`),
/// then its last ones.
pub(super) fn columns(
    first: &[&'static str],
    unit: &str,
    last: &[&'static str],
) -> Vec<&'static str> {
    let mut headers = first.to_vec();
    headers.extend(usage_headers(unit));
    headers.extend(last);
    headers
}

pub(super) fn usage_headers(unit: &str) -> [&'static str; 6] {
    let (cpu, switches) = match unit {
        "msg" => ("CPU us/msg (user+sys)", "switches/msg (vol+invol)"),
        "call" => ("CPU us/call (user+sys)", "switches/call (vol+invol)"),
        _ => ("CPU us/req (user+sys)", "switches/req (vol+invol)"),
    };
    ["RSS", "threads", "CPU", cpu, switches, "loadgen CPU"]
}

/// What the server spent in a cell, the same six columns in every load
/// table: peak memory and threads, CPU share, cost per request, and the
/// client's CPU share (a client near 100 % per thread is the bottleneck,
/// not the server).
pub(super) fn usage_cells(result: &CellResult, headline: &Headline) -> [String; 6] {
    let [cpu, switches] = cost_cells(headline);
    [
        resource(headline.rss_peak_bytes, bytes),
        resource(headline.threads_peak, |threads| threads.to_string()),
        optional(headline.cpu_mean_percent.map(percent)),
        cpu,
        switches,
        optional(result.loadgen_cpu_mean_percent.map(percent)),
    ]
}

/// A CPU share, `42 %` (100 % = one core).
pub(super) fn percent(cpu: f64) -> String {
    format!("{cpu:.0} %")
}

pub(super) fn failed_row(result: &CellResult, columns: usize) -> String {
    let error = result
        .error
        .clone()
        .unwrap_or_else(|| "no result".to_string());
    let mut row = format!(
        "| {} | {} | **failed**: {} |",
        result.cell.model,
        result.cell.clients,
        error.replace('|', "/")
    );
    for _ in 3..columns {
        row.push_str(" |");
    }
    row
}

/// Wraps what `body` writes in mdBook's anchor comments, so that a book
/// page can `{{#include results/results.md:name}}` that part alone. The
/// comments render as nothing, in the book and on a forge alike.
pub(super) fn anchored(text: &mut String, name: &str, body: impl FnOnce(&mut String)) {
    let _ = writeln!(text, "<!-- ANCHOR: {name} -->\n");
    body(text);
    let _ = writeln!(text, "<!-- ANCHOR_END: {name} -->\n");
}

/// A Markdown table's header row and the rule under it.
pub(super) fn write_header<S: AsRef<str>>(text: &mut String, headers: &[S]) {
    let names: Vec<&str> = headers.iter().map(AsRef::as_ref).collect();
    let _ = writeln!(
        text,
        "| {} |\n|{}",
        names.join(" | "),
        "---|".repeat(names.len())
    );
}

/// A table of one row: a scenario's setup and the numbers that follow from
/// it, so that the book can quote them from the generated file.
pub(super) fn write_row(text: &mut String, fields: &[(&str, String)]) {
    let headers: Vec<&str> = fields.iter().map(|(header, _)| *header).collect();
    let values: Vec<&str> = fields.iter().map(|(_, value)| value.as_str()).collect();
    write_header(text, &headers);
    let _ = writeln!(text, "| {} |\n", values.join(" | "));
}
