//! `results.csv`: one row per cell, long format.

use serde::Serialize;

use super::results::{CellResult, Results};
use super::table::milliseconds;

/// The CSV header: [`CsvCell`]'s fields, the columns first, then
/// what helps reading them (a test keeps the two the same).
pub const CSV_HEADER: &str = "model,scenario,variant,clients,rps,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,\
errors,rss_bytes,threads,fds,cpu_percent,bound_rps,ratio,saturated,time_wait,\
rss_per_connection_bytes,held,status,reason,cpu_user_us_per_request,cpu_system_us_per_request,\
voluntary_switches_per_request,involuntary_switches_per_request";

/// One cell as a CSV row: numbers as the tables round them, empty cells
/// where nothing was measured. Its field names are the CSV's header.
#[derive(Serialize)]
struct CsvCell {
    model: String,
    scenario: String,
    variant: String,
    clients: usize,
    rps: String,
    p50_ms: String,
    p90_ms: String,
    p99_ms: String,
    p999_ms: String,
    max_ms: String,
    errors: String,
    rss_bytes: Option<u64>,
    threads: Option<u64>,
    fds: Option<u64>,
    cpu_percent: Option<String>,
    bound_rps: Option<String>,
    ratio: Option<String>,
    saturated: Option<bool>,
    time_wait: Option<u64>,
    rss_per_connection_bytes: Option<String>,
    held: Option<u64>,
    status: &'static str,
    reason: String,
    cpu_user_us_per_request: Option<String>,
    cpu_system_us_per_request: Option<String>,
    voluntary_switches_per_request: Option<String>,
    involuntary_switches_per_request: Option<String>,
}

impl From<&CellResult> for CsvCell {
    fn from(result: &CellResult) -> CsvCell {
        let cell = &result.cell;
        let headline = result.headline.clone().unwrap_or_default();
        let has = result.headline.is_some();
        let measured = |text: String| if has { text } else { String::new() };
        let number = |value: u64| measured(milliseconds(value));
        let cost = headline.cost;
        CsvCell {
            model: cell.model.clone(),
            scenario: cell.scenario.to_string(),
            variant: cell.variant().to_string(),
            clients: cell.clients,
            rps: measured(format!("{:.2}", headline.requests_per_second)),
            p50_ms: number(headline.p50_us),
            p90_ms: number(headline.p90_us),
            p99_ms: number(headline.p99_us),
            p999_ms: number(headline.p999_us),
            max_ms: number(headline.max_us),
            errors: measured(headline.errors.to_string()),
            rss_bytes: headline.rss_peak_bytes,
            threads: headline.threads_peak,
            fds: headline.fds_peak,
            cpu_percent: headline.cpu_mean_percent.map(|cpu| format!("{cpu:.1}")),
            bound_rps: result.bound_rps.map(|bound| format!("{bound:.2}")),
            ratio: result.ratio.map(|ratio| format!("{ratio:.3}")),
            saturated: result.saturated,
            time_wait: result.time_wait,
            rss_per_connection_bytes: result
                .rss_per_connection_bytes
                .map(|bytes| format!("{bytes:.0}")),
            held: result.hold.as_ref().map(|hold| hold.open_at_end),
            status: result.status(),
            reason: result
                .error
                .clone()
                .or_else(|| result.stopped_reason.clone())
                .or_else(|| result.saturation_reason.clone())
                .unwrap_or_default(),
            cpu_user_us_per_request: cost.map(|cost| format!("{:.1}", cost.cpu_user_us)),
            cpu_system_us_per_request: cost.map(|cost| format!("{:.1}", cost.cpu_system_us)),
            voluntary_switches_per_request: cost
                .map(|cost| format!("{:.3}", cost.voluntary_switches)),
            involuntary_switches_per_request: cost
                .map(|cost| format!("{:.3}", cost.involuntary_switches)),
        }
    }
}

pub fn to_csv(results: &Results) -> String {
    // Comment lines first (spreadsheets skip them), then a real CSV.
    let mut text = format!(
        "# {}\n# {}\n",
        results.provenance(),
        results.machine.sharing_note()
    );
    let mut csv = csv::Writer::from_writer(Vec::new());
    if results.cells.is_empty() {
        // serde writes the header with the first row; say it anyway.
        let _ = csv.write_record(CSV_HEADER.split(','));
    }
    for result in &results.cells {
        let _ = csv.serialize(CsvCell::from(result));
    }
    // Writing into memory cannot fail, and every record is UTF-8.
    text.push_str(&String::from_utf8(csv.into_inner().unwrap_or_default()).unwrap_or_default());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_header_is_what_serde_writes() {
        let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs/src/results/results.json");
        let text = std::fs::read_to_string(committed).expect("the committed results");
        let results: Results = serde_json::from_str(&text).expect("they parse");
        let csv = to_csv(&results);
        let header = csv.lines().find(|line| !line.starts_with('#'));
        assert_eq!(header, Some(CSV_HEADER));
    }
}
