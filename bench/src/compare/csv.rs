//! `results.csv`: one row per cell, long format.

use super::results::Results;
use super::table::{milliseconds, optional};

/// The CSV header: the columns first, then what helps reading them.
pub const CSV_HEADER: &str = "model,scenario,variant,clients,rps,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,\
errors,rss_bytes,threads,fds,cpu_percent,bound_rps,ratio,saturated,time_wait,\
rss_per_connection_bytes,held,status,reason,cpu_user_us_per_request,cpu_system_us_per_request,\
voluntary_switches_per_request,involuntary_switches_per_request";

pub fn to_csv(results: &Results) -> String {
    // Comment lines first (spreadsheets skip them), then a real CSV.
    let mut text = format!(
        "# {}\n# {}\n",
        results.provenance(),
        results.machine.sharing_note()
    );
    let mut csv = csv::Writer::from_writer(Vec::new());
    let _ = csv.write_record(CSV_HEADER.split(','));
    for result in &results.cells {
        let cell = &result.cell;
        let headline = result.headline.clone().unwrap_or_default();
        let has = result.headline.is_some();
        let number = |value: u64| {
            if has {
                milliseconds(value)
            } else {
                String::new()
            }
        };
        let reason = result
            .error
            .clone()
            .or_else(|| result.stopped_reason.clone())
            .or_else(|| result.saturation_reason.clone())
            .unwrap_or_default();
        let _ = csv.write_record([
            cell.model.clone(),
            cell.scenario.to_string(),
            cell.variant().to_string(),
            cell.clients.to_string(),
            if has {
                format!("{:.2}", headline.requests_per_second)
            } else {
                String::new()
            },
            number(headline.p50_us),
            number(headline.p90_us),
            number(headline.p99_us),
            number(headline.p999_us),
            number(headline.max_us),
            if has {
                headline.errors.to_string()
            } else {
                String::new()
            },
            optional(headline.rss_peak_bytes),
            optional(headline.threads_peak),
            optional(headline.fds_peak),
            optional(headline.cpu_mean_percent.map(|cpu| format!("{cpu:.1}"))),
            optional(result.bound_rps.map(|bound| format!("{bound:.2}"))),
            optional(result.ratio.map(|ratio| format!("{ratio:.3}"))),
            optional(result.saturated),
            optional(result.time_wait),
            optional(
                result
                    .rss_per_connection_bytes
                    .map(|bytes| format!("{bytes:.0}")),
            ),
            optional(result.hold.as_ref().map(|hold| hold.open_at_end)),
            result.status().to_string(),
            reason,
            optional(headline.cost.map(|cost| format!("{:.1}", cost.cpu_user_us))),
            optional(
                headline
                    .cost
                    .map(|cost| format!("{:.1}", cost.cpu_system_us)),
            ),
            optional(
                headline
                    .cost
                    .map(|cost| format!("{:.3}", cost.voluntary_switches)),
            ),
            optional(
                headline
                    .cost
                    .map(|cost| format!("{:.3}", cost.involuntary_switches)),
            ),
        ]);
    }
    // Writing into memory cannot fail, and every record is UTF-8.
    text.push_str(&String::from_utf8(csv.into_inner().unwrap_or_default()).unwrap_or_default());
    text
}
