//! The result of a run: one serde-serializable [`Report`] with the summary,
//! the percentiles, the resource peaks and means, and a row per second.
//! The same value becomes the summary table, `--json` and `--csv`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::duration::format_duration;
use crate::limits::Environment;
use crate::observe::SecondRow;
use crate::stats::{ErrorCounts, Percentiles};

/// Everything a run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub config: Config,
    pub environment: Environment,
    /// Things that may have distorted the run (limits, a server that died).
    pub warnings: Vec<String>,
    pub summary: Summary,
    /// Latency in microseconds. Closed loop: from sending a request to its
    /// full reply. Open loop (`--rate`): from the moment the plan said the
    /// request should start, so waiting for a stalled server is counted.
    pub latency: Percentiles,
    /// Open loop only: service time, from actually sending to the full
    /// reply. The gap between this and `latency` is time spent waiting for
    /// the chance to send.
    pub service_time: Option<Percentiles>,
    pub resources: Resources,
    /// Hold mode only: what happened to the held connections.
    pub hold: Option<HoldSummary>,
    /// One row per second of the run.
    pub series: Vec<SecondRow>,
    /// The same run in Locust's terms, for `--locust-csv`.
    #[serde(skip)]
    pub locust: crate::locust::LocustRecord,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Wall-clock length of the run.
    pub duration_seconds: f64,
    /// The part the totals cover: the run minus its warm-up (`--warmup`).
    #[serde(default)]
    pub measured_seconds: f64,
    /// Requests (echo: messages; hold: echo checks) answered completely and
    /// correctly.
    pub requests: u64,
    /// Open loop only: requests the plan had due before the deadline. Those
    /// neither answered nor failed were still waiting to be sent: the
    /// server fell behind the plan.
    pub planned_requests: Option<u64>,
    pub requests_per_second: f64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub errors: ErrorCounts,
    pub errors_total: u64,
    /// Most clients active at once (users, connections, held connections).
    pub peak_active_clients: u64,
    /// Open loop only: the planned rate, and the rate of answered requests
    /// (`requests_per_second`) is what the server achieved against it.
    #[serde(default)]
    pub target_rate: Option<f64>,
    /// Requests sent more than `stats::LATE_AFTER` after their planned start.
    #[serde(default)]
    pub late: u64,
    /// Requests sent and still unanswered when the run ended. Open loop:
    /// their wait so far is in the latency percentiles.
    #[serde(default)]
    pub unanswered: u64,
    /// Open loop: planned requests no client got to send before the end;
    /// their wait so far is in the (corrected) latency percentiles.
    #[serde(default)]
    pub never_sent: u64,
    /// The longest wait among the unanswered and never-sent requests, us.
    #[serde(default)]
    pub unfinished_max_us: u64,
}

/// The highest and the average of a per-second quantity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeakMean {
    pub peak: f64,
    pub mean: f64,
}

/// Collects per-second values into a [`PeakMean`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Accumulator {
    peak: f64,
    sum: f64,
    count: u64,
}

impl Accumulator {
    pub fn add(&mut self, value: f64) {
        self.peak = if self.count == 0 {
            value
        } else {
            self.peak.max(value)
        };
        self.sum += value;
        self.count += 1;
    }

    pub fn finish(&self) -> Option<PeakMean> {
        (self.count > 0).then(|| PeakMean {
            peak: self.peak,
            mean: self.sum / self.count as f64,
        })
    }
}

/// The server's process tree (`--pid`), sampled every second.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServerResources {
    pub pid: i32,
    /// How many samples the peaks and means are made of.
    pub samples: u64,
    pub processes: PeakMean,
    pub threads: PeakMean,
    pub rss_bytes: PeakMean,
    pub fds: PeakMean,
    /// User + system CPU, % of one core.
    pub cpu_percent: PeakMean,
    pub cpu_user_percent: PeakMean,
    pub cpu_system_percent: PeakMean,
    /// CPU time and context switches over the measured part of the run.
    #[serde(default)]
    pub spent: Option<crate::resources::Spent>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Present when a `--pid` was given.
    pub server: Option<ServerResources>,
    /// The load generator's own CPU, % of one core.
    pub loadgen_cpu_percent: Option<PeakMean>,
    /// Sockets in TIME_WAIT on the machine, from /proc/net/sockstat.
    pub time_wait_sockets: PeakMean,
}

/// What happened to the connections of `hold`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HoldSummary {
    /// Connections asked for.
    pub target: u64,
    /// Connects that succeeded. The kernel completes a connect as soon as
    /// the connection is in the listen queue, even if the server never
    /// accepts it; the echo checks tell those apart.
    pub opened: u64,
    pub refused: u64,
    pub connect_timeouts: u64,
    /// Connects that failed for any reason (including the two above).
    pub connect_failures: u64,
    /// Held connections the server closed or reset.
    pub dropped: u64,
    /// Connections still open when the run ended.
    pub open_at_end: u64,
    /// Echo checks sent on held connections, and those answered in time.
    pub checks_sent: u64,
    pub checks_answered: u64,
}

/// The CSV header: [`CsvSecond`]'s fields, which serde writes with the
/// first row (a test keeps the two the same).
pub const CSV_HEADER: &str = "t_seconds,active_clients,requests_per_second,errors_per_second,\
p50_us,p99_us,max_us,rss_bytes,threads,fds,cpu_percent,loadgen_cpu_percent,time_wait_sockets";

/// A [`SecondRow`] as the CSV writes it: rates to one decimal, empty cells
/// where nothing was measured. Its field names are the CSV's header.
#[derive(Serialize)]
struct CsvSecond {
    t_seconds: String,
    active_clients: u64,
    requests_per_second: String,
    errors_per_second: String,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    rss_bytes: Option<u64>,
    threads: Option<u64>,
    fds: Option<u64>,
    cpu_percent: Option<String>,
    loadgen_cpu_percent: Option<String>,
    time_wait_sockets: u64,
}

impl From<&SecondRow> for CsvSecond {
    fn from(row: &SecondRow) -> CsvSecond {
        let one_decimal = |value: f64| format!("{value:.1}");
        CsvSecond {
            t_seconds: format!("{:.3}", row.t_seconds),
            active_clients: row.active_clients,
            requests_per_second: one_decimal(row.requests_per_second),
            errors_per_second: one_decimal(row.errors_per_second),
            p50_us: row.p50_us,
            p99_us: row.p99_us,
            max_us: row.max_us,
            rss_bytes: row.rss_bytes,
            threads: row.threads,
            fds: row.fds,
            cpu_percent: row.cpu_percent.map(one_decimal),
            loadgen_cpu_percent: row.loadgen_cpu_percent.map(one_decimal),
            time_wait_sockets: row.time_wait_sockets,
        }
    }
}

/// The handful of numbers a comparison table needs per run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub requests_per_second: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub errors: u64,
    pub rss_peak_bytes: Option<u64>,
    pub threads_peak: Option<u64>,
    pub fds_peak: Option<u64>,
    pub cpu_mean_percent: Option<f64>,
    /// What one answered request cost the server over the measured part:
    /// CPU microseconds in user mode and in the kernel, and context
    /// switches (voluntary: it waited; involuntary: it was preempted).
    #[serde(default)]
    pub cost: Option<CostPerRequest>,
}

/// A server's spending divided by the requests it answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostPerRequest {
    pub cpu_user_us: f64,
    pub cpu_system_us: f64,
    pub voluntary_switches: f64,
    pub involuntary_switches: f64,
}

impl CostPerRequest {
    pub fn new(spent: &crate::resources::Spent, requests: u64) -> Option<Self> {
        let per = |value: u64| value as f64 / requests as f64;
        (requests > 0).then(|| CostPerRequest {
            cpu_user_us: per(spent.cpu_user_us),
            cpu_system_us: per(spent.cpu_system_us),
            voluntary_switches: per(spent.voluntary_switches),
            involuntary_switches: per(spent.involuntary_switches),
        })
    }
}

/// `850us`, `12.3ms`, `1.25s`.
pub fn format_microseconds(microseconds: f64) -> String {
    if microseconds < 1_000.0 {
        format!("{microseconds:.0}us")
    } else if microseconds < 1_000_000.0 {
        format!("{:.1}ms", microseconds / 1e3)
    } else {
        format!("{:.2}s", microseconds / 1e6)
    }
}

/// `512 B`, `3.4 KiB`, `12.0 MiB`.
pub fn format_bytes(bytes: f64) -> String {
    if bytes < 1024.0 {
        format!("{bytes:.0} B")
    } else if bytes < 1024.0 * 1024.0 {
        format!("{:.1} KiB", bytes / 1024.0)
    } else if bytes < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
    } else {
        format!("{:.2} GiB", bytes / (1024.0 * 1024.0 * 1024.0))
    }
}

fn percentile_line(percentiles: &Percentiles) -> String {
    if percentiles.count == 0 {
        return "no completed requests".to_string();
    }
    let value = |microseconds: u64| format_microseconds(microseconds as f64);
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
        value(percentiles.p50_us),
        value(percentiles.p90_us),
        value(percentiles.p99_us),
        value(percentiles.p999_us),
        value(percentiles.max_us),
        format_microseconds(percentiles.mean_us)
    )
}

fn peak_mean(values: &PeakMean, format: impl Fn(f64) -> String) -> String {
    format!("peak {}, mean {}", format(values.peak), format(values.mean))
}

impl Report {
    pub fn headline(&self) -> Headline {
        let server = self.resources.server.as_ref();
        Headline {
            requests_per_second: self.summary.requests_per_second,
            p50_us: self.latency.p50_us,
            p90_us: self.latency.p90_us,
            p99_us: self.latency.p99_us,
            p999_us: self.latency.p999_us,
            max_us: self.latency.max_us,
            errors: self.summary.errors_total,
            rss_peak_bytes: server.map(|server| server.rss_bytes.peak as u64),
            threads_peak: server.map(|server| server.threads.peak as u64),
            fds_peak: server.map(|server| server.fds.peak as u64),
            cpu_mean_percent: server.map(|server| server.cpu_percent.mean),
            cost: server
                .and_then(|server| server.spent.as_ref())
                .and_then(|spent| CostPerRequest::new(spent, self.summary.requests)),
        }
    }

    /// The human-readable summary printed at the end of a run.
    pub fn summary_table(&self) -> String {
        let summary = &self.summary;
        let mut table = String::new();
        let mut line = |label: &str, text: String| {
            let _ = writeln!(table, "{label:<14}{text}");
        };
        line("run", self.config.to_string());
        let what = match self.config.mode() {
            "echo" => "messages",
            "hold" => "echo checks",
            "rpc" => "calls",
            _ => "requests",
        };
        let warmup = self.config.common().warmup;
        let after_warmup = if warmup.is_zero() {
            String::new()
        } else {
            format!(" (after {} of warm-up)", format_duration(warmup))
        };
        line(
            what,
            format!(
                "{} in {:.2} s{after_warmup} = {:.1}/s, {} clients at most",
                summary.requests,
                summary.measured_seconds,
                summary.requests_per_second,
                summary.peak_active_clients
            ),
        );
        if let (Some(planned), Some(target)) = (summary.planned_requests, summary.target_rate) {
            line(
                "rate",
                format!(
                    "target {target:.1}/s, achieved {:.1}/s",
                    summary.requests_per_second
                ),
            );
            line(
                "planned",
                format!(
                    "{planned}: answered {}, failed {}, unanswered at the end {}, never sent {}; \
                     late (sent > {} after plan) {}",
                    summary.requests,
                    summary.errors_total,
                    summary.unanswered,
                    summary.never_sent,
                    format_duration(crate::stats::LATE_AFTER),
                    summary.late
                ),
            );
        } else if summary.unanswered > 0 {
            line(
                "unanswered",
                format!(
                    "{} requests at the end, waiting up to {} (not in the percentiles)",
                    summary.unanswered,
                    format_microseconds(summary.unfinished_max_us as f64)
                ),
            );
        }
        line(
            "bytes",
            format!(
                "sent {}, received {}",
                format_bytes(summary.bytes_sent as f64),
                format_bytes(summary.bytes_received as f64)
            ),
        );
        line(
            "errors",
            format!("{} ({})", summary.errors_total, summary.errors.describe()),
        );
        if let Some(service) = &self.service_time {
            // wrk2's terms: corrected for coordinated omission, or not.
            line(
                "corrected",
                format!(
                    "{} (from the planned start, unfinished ones with their wait so far)",
                    percentile_line(&self.latency)
                ),
            );
            line(
                "uncorrected",
                format!("{} (from the actual send)", percentile_line(service)),
            );
        } else {
            line("latency", percentile_line(&self.latency));
        }
        if let Some(hold) = &self.hold {
            line(
                "held",
                format!(
                    "opened {} of {}, refused {}, connect timeouts {}, other connect errors {}",
                    hold.opened,
                    hold.target,
                    hold.refused,
                    hold.connect_timeouts,
                    hold.connect_failures - hold.refused - hold.connect_timeouts
                ),
            );
            line(
                "",
                format!(
                    "dropped by the server {}, open at the end {}, echo checks answered {} of {}",
                    hold.dropped, hold.open_at_end, hold.checks_answered, hold.checks_sent
                ),
            );
        }
        if let Some(server) = &self.resources.server {
            let count = |value: f64| format!("{value:.0}");
            let percent = |value: f64| format!("{value:.0}%");
            line(
                "server",
                format!(
                    "pid {} and descendants, {} samples",
                    server.pid, server.samples
                ),
            );
            line("  rss", peak_mean(&server.rss_bytes, format_bytes));
            line("  threads", peak_mean(&server.threads, count));
            line("  processes", peak_mean(&server.processes, count));
            line("  open fds", peak_mean(&server.fds, count));
            if let Some(cost) = self.headline().cost {
                line(
                    "  per request",
                    format!(
                        "cpu {:.0}us user + {:.0}us system, context switches {:.2} voluntary + \
                         {:.2} involuntary",
                        cost.cpu_user_us,
                        cost.cpu_system_us,
                        cost.voluntary_switches,
                        cost.involuntary_switches
                    ),
                );
            }
            line(
                "  cpu",
                format!(
                    "{} (user mean {:.0}%, system mean {:.0}%; 100% = one core)",
                    peak_mean(&server.cpu_percent, percent),
                    server.cpu_user_percent.mean,
                    server.cpu_system_percent.mean
                ),
            );
        }
        if let Some(cpu) = &self.resources.loadgen_cpu_percent {
            line(
                "loadgen cpu",
                peak_mean(cpu, |value| format!("{value:.0}%")),
            );
        }
        line(
            "TIME_WAIT",
            format!(
                "{} sockets on this machine",
                peak_mean(&self.resources.time_wait_sockets, |value| format!(
                    "{value:.0}"
                ))
            ),
        );
        for warning in &self.warnings {
            line("warning", warning.clone());
        }
        table
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report is plain data and always serializes")
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.to_json() + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The per-second series as CSV, header first; empty cells where a value
    /// was not measured (no `--pid`, or the first second of CPU).
    pub fn to_csv(&self) -> String {
        let mut csv = csv::Writer::from_writer(Vec::new());
        if self.series.is_empty() {
            // serde writes the header with the first row; say it anyway.
            let _ = csv.write_record(CSV_HEADER.split(','));
        }
        for row in &self.series {
            let _ = csv.serialize(CsvSecond::from(row));
        }
        // Writing into memory cannot fail, and every record is UTF-8.
        String::from_utf8(csv.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    pub fn write_csv(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.to_csv())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_keeps_peak_and_mean() {
        let mut accumulator = Accumulator::default();
        assert_eq!(accumulator.finish(), None);
        for value in [2.0, 6.0, 4.0] {
            accumulator.add(value);
        }
        assert_eq!(
            accumulator.finish(),
            Some(PeakMean {
                peak: 6.0,
                mean: 4.0
            })
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(format_microseconds(850.0), "850us");
        assert_eq!(format_microseconds(12_345.0), "12.3ms");
        assert_eq!(format_microseconds(1_250_000.0), "1.25s");
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }

    #[test]
    fn csv_header_matches_row_fields() {
        let fields = serde_json::to_value(SecondRow::default()).expect("serializes");
        let names: Vec<&str> = CSV_HEADER.split(',').collect();
        let object = fields.as_object().expect("a struct is an object");
        assert_eq!(names.len(), object.len());
        for name in names {
            assert!(object.contains_key(name), "{name} is not a SecondRow field");
        }
    }

    #[test]
    fn the_csv_header_is_what_serde_writes() {
        let mut csv = csv::Writer::from_writer(Vec::new());
        csv.serialize(CsvSecond::from(&SecondRow::default()))
            .expect("a row serializes");
        let text = String::from_utf8(csv.into_inner().expect("flushed")).expect("UTF-8");
        assert_eq!(text.lines().next(), Some(CSV_HEADER));
    }
}
