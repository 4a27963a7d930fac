//! Locust-compatible CSV (`loadgen http --locust-csv PREFIX`): the same
//! `PREFIX_stats.csv` (totals) and `PREFIX_stats_history.csv` (a row per
//! second) that `locust --csv PREFIX` writes, so the lab's spreadsheets and
//! plotting scripts read loadgen's runs unchanged.
//!
//! Locust's conventions are kept: times in whole milliseconds, a request
//! count that includes failures, percentile columns `50%` .. `100%`, "N/A"
//! before the first request, and in the history the percentiles of
//! everything so far (not of the last second), next to the current rate.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hdrhistogram::Histogram;

use crate::stats::Window;

/// Locust's `PERCENTILES_TO_REPORT`.
const PERCENTILES: [f64; 11] = [
    0.50, 0.66, 0.75, 0.80, 0.90, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];
const PERCENTILE_NAMES: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];

/// The totals Locust keeps per endpoint, from the start of the measurement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocustTotals {
    /// Requests sent, answered or failed.
    pub requests: u64,
    pub failures: u64,
    /// In milliseconds; `None` before the first answer.
    pub percentiles_ms: Option<[u64; 11]>,
    pub average_ms: f64,
    pub min_ms: u64,
    pub max_ms: u64,
    /// Mean body bytes received per answered request.
    pub average_content_size: f64,
}

impl LocustTotals {
    pub fn from_window(window: &Window) -> Self {
        let latency: &Histogram<u64> = &window.latency;
        // Rounded: HdrHistogram gives the edges of a 3-digit bucket.
        let milliseconds = |microseconds: u64| (microseconds + 500) / 1000;
        let answered = !latency.is_empty();
        LocustTotals {
            requests: window.requests + window.errors.total(),
            failures: window.errors.total(),
            percentiles_ms: answered.then(|| {
                PERCENTILES.map(|quantile| milliseconds(latency.value_at_quantile(quantile)))
            }),
            average_ms: if answered {
                latency.mean() / 1000.0
            } else {
                0.0
            },
            min_ms: if answered {
                milliseconds(latency.min())
            } else {
                0
            },
            max_ms: if answered {
                milliseconds(latency.max())
            } else {
                0
            },
            average_content_size: window.content_bytes as f64 / window.requests.max(1) as f64,
        }
    }

    fn median_ms(&self) -> u64 {
        self.percentiles_ms.map_or(0, |values| values[0])
    }

    /// Count, failures, median, average, min, max, content size: the same
    /// seven columns in both files.
    fn total_fields(&self) -> [String; 7] {
        [
            self.requests.to_string(),
            self.failures.to_string(),
            self.median_ms().to_string(),
            self.average_ms.to_string(),
            self.min_ms.to_string(),
            self.max_ms.to_string(),
            self.average_content_size.to_string(),
        ]
    }

    fn percentile_fields(&self) -> Vec<String> {
        match self.percentiles_ms {
            Some(values) => values.iter().map(ToString::to_string).collect(),
            None => vec!["N/A".to_string(); PERCENTILES.len()],
        }
    }
}

/// One second of the run, as a row of `_stats_history.csv`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocustSecond {
    /// Unix time in seconds.
    pub timestamp: u64,
    pub users: u64,
    pub requests_per_second: f64,
    pub failures_per_second: f64,
    /// Everything measured so far (nothing during the warm-up).
    pub totals: LocustTotals,
}

/// The two file names for a prefix, as Locust forms them.
pub fn paths(prefix: &Path) -> (PathBuf, PathBuf) {
    let with = |suffix: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    (with("_stats.csv"), with("_stats_history.csv"))
}

fn writer(path: &Path) -> anyhow::Result<csv::Writer<std::fs::File>> {
    csv::Writer::from_path(path).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `PREFIX_stats.csv` and `PREFIX_stats_history.csv` of a run
/// whose measured part lasted `measured_seconds`; returns their paths.
pub fn write(
    record: &LocustRecord,
    measured_seconds: f64,
    method: &str,
    name: &str,
    prefix: &Path,
) -> anyhow::Result<[PathBuf; 2]> {
    let (stats_path, history_path) = paths(prefix);
    let totals = &record.totals;
    let mut stats = writer(&stats_path)?;
    let mut header = vec![
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Median Response Time",
        "Average Response Time",
        "Min Response Time",
        "Max Response Time",
        "Average Content Size",
        "Requests/s",
        "Failures/s",
    ];
    header.extend(PERCENTILE_NAMES);
    stats.write_record(&header)?;
    let seconds = measured_seconds.max(1e-3);
    // One endpoint, so its row and the "Aggregated" row are the same.
    for (method, name) in [(method, name), ("", "Aggregated")] {
        let mut row = vec![method.to_string(), name.to_string()];
        row.extend(totals.total_fields());
        row.extend([
            (totals.requests as f64 / seconds).to_string(),
            (totals.failures as f64 / seconds).to_string(),
        ]);
        row.extend(totals.percentile_fields());
        stats.write_record(&row)?;
    }
    stats.flush()?;

    let mut history = writer(&history_path)?;
    let mut header = vec![
        "Timestamp",
        "User Count",
        "Type",
        "Name",
        "Requests/s",
        "Failures/s",
    ];
    header.extend(PERCENTILE_NAMES);
    header.extend([
        "Total Request Count",
        "Total Failure Count",
        "Total Median Response Time",
        "Total Average Response Time",
        "Total Min Response Time",
        "Total Max Response Time",
        "Total Average Content Size",
    ]);
    history.write_record(&header)?;
    for second in &record.history {
        let totals = &second.totals;
        let mut row = vec![
            second.timestamp.to_string(),
            second.users.to_string(),
            String::new(),
            "Aggregated".to_string(),
            format!("{:.6}", second.requests_per_second),
            format!("{:.6}", second.failures_per_second),
        ];
        row.extend(totals.percentile_fields());
        row.extend(totals.total_fields());
        history.write_record(&row)?;
    }
    history.flush()?;
    Ok([stats_path, history_path])
}

/// What a run keeps for the Locust files; not part of the JSON report.
#[derive(Clone, Debug, Default)]
pub struct LocustRecord {
    pub totals: LocustTotals,
    pub history: Vec<LocustSecond>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{ErrorKind, Recorder, Timing};
    use std::time::{Duration, Instant};

    #[test]
    fn totals_count_failures_as_requests_and_use_milliseconds() {
        let recorder = Recorder::new();
        let now = Instant::now();
        for milliseconds in [100, 200, 300, 400] {
            let done = now + Duration::from_millis(milliseconds);
            let timing = Timing {
                intended: now,
                sent: now,
                done,
            };
            recorder.record_success(timing, 10, 1000);
        }
        recorder.record_error(ErrorKind::Timeout);
        let totals = LocustTotals::from_window(&recorder.take_window());
        assert_eq!(totals.requests, 5);
        assert_eq!(totals.failures, 1);
        let percentiles = totals.percentiles_ms.expect("answered");
        assert_eq!(percentiles[0], 200);
        assert_eq!(percentiles[10], 400);
        assert_eq!(totals.min_ms, 100);
        assert!((totals.average_ms - 250.0).abs() < 1.0);
        assert!((totals.average_content_size - 1000.0).abs() < 1e-9);
        assert_eq!(
            LocustTotals::from_window(&Window::default()).percentile_fields()[0],
            "N/A"
        );
    }

    #[test]
    fn paths_follow_locust() {
        let (stats, history) = paths(Path::new("/tmp/run"));
        assert_eq!(stats, Path::new("/tmp/run_stats.csv"));
        assert_eq!(history, Path::new("/tmp/run_stats_history.csv"));
    }
}
