//! What a run shows while it goes, and who watches: each second's row (also
//! the report's series and CSV), the live feed a race draws from, and the
//! progress line. Watching changes nothing that is measured, so it is
//! passed beside a [`crate::config::Config`], not inside it: a config says
//! what to measure and is stored in every report.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::UnboundedSender;

/// One second of the run; the CSV has the same columns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondRow {
    /// Seconds since the start, at the end of this interval.
    pub t_seconds: f64,
    pub active_clients: u64,
    pub requests_per_second: f64,
    pub errors_per_second: f64,
    /// Latency percentiles of the requests completed in this second.
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    pub rss_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub fds: Option<u64>,
    /// Server CPU (user + system), % of one core.
    pub cpu_percent: Option<f64>,
    pub loadgen_cpu_percent: Option<f64>,
    pub time_wait_sockets: u64,
}

/// One second of a run as it happens: its row and its latencies, so a
/// live view can merge the last few seconds into percentiles.
#[derive(Clone, Debug)]
pub struct LiveSecond {
    pub row: SecondRow,
    pub latency: Histogram<u64>,
}

/// Who watches a run as it goes.
#[derive(Clone, Debug, Default)]
pub struct Observe {
    /// Draw a live progress line on stderr if it is a terminal.
    pub progress: bool,
    /// Where to send each second as it is measured (`bench race` draws
    /// them live).
    pub live: Option<UnboundedSender<LiveSecond>>,
}
