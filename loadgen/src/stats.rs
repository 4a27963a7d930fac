//! Counting what happened: latency histograms, errors by kind, and the
//! per-second window that every client task records into.
//!
//! Latencies go into an HdrHistogram in microseconds. It keeps every value
//! to 3 significant digits in fixed memory, so p99.9 and max are real
//! values, not averages of averages. Client tasks all record into one
//! [`Recorder`]; once a second the run swaps its window out, which gives
//! the per-second rows, and merges the window into the totals.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// The largest latency a histogram can hold: one minute. Longer values are
/// recorded as one minute (nothing in these labs should take that long).
pub const HISTOGRAM_MAX_MICROSECONDS: u64 = 60_000_000;

/// An empty latency histogram: microseconds from 1 us to one minute, 3
/// significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROSECONDS, 3)
        .expect("constant bounds 1..60s with 3 digits are valid")
}

/// Whole microseconds, saturating instead of wrapping.
pub fn microseconds(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The numbers people quote about a latency distribution, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// How many latencies were recorded.
    pub count: u64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Percentiles {
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: histogram.len(),
            min_us: histogram.min(),
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        }
    }
}

/// Why a request (or a connection) failed. Each kind points at a different
/// limit: refused = nobody listens or the backlog is full; reset = the
/// server aborted the connection; emfile = someone ran out of file
/// descriptors; no local port = the client side ran out of ephemeral ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// `connect` answered ECONNREFUSED.
    Refused,
    /// ECONNRESET, EPIPE or ECONNABORTED: the server aborted the connection.
    Reset,
    /// The server closed the connection (FIN) before any reply byte, or
    /// while it was held idle.
    Closed,
    /// No complete reply within `--timeout` (or no connect within it).
    Timeout,
    /// EMFILE/ENFILE in the load generator: out of file descriptors.
    Emfile,
    /// EADDRNOTAVAIL: no free local port left to connect from.
    NoLocalPort,
    /// The connection ended in the middle of a reply.
    ShortReply,
    /// A reply that is not what was asked for: other bytes than were echoed,
    /// an unparsable HTTP response, bytes after the announced body, or an
    /// RPC result that is not what the call must return.
    WrongReply,
    /// An HTTP status other than 200, or a JSON-RPC error reply.
    BadStatus,
    /// Any other I/O error.
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Refused,
        ErrorKind::Reset,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::Emfile,
        ErrorKind::NoLocalPort,
        ErrorKind::ShortReply,
        ErrorKind::WrongReply,
        ErrorKind::BadStatus,
        ErrorKind::Other,
    ];

    /// The name used in reports (the same as in JSON).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Refused => "refused",
            ErrorKind::Reset => "reset",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Emfile => "emfile",
            ErrorKind::NoLocalPort => "no_local_port",
            ErrorKind::ShortReply => "short_reply",
            ErrorKind::WrongReply => "wrong_reply",
            ErrorKind::BadStatus => "bad_status",
            ErrorKind::Other => "other",
        }
    }

    /// Sorts an I/O error into a kind. The OS error number decides first,
    /// because std folds EMFILE and EADDRNOTAVAIL into vague kinds.
    pub fn from_io(error: &io::Error) -> Self {
        match error.raw_os_error().map(Errno::from_raw) {
            Some(Errno::EMFILE | Errno::ENFILE) => return ErrorKind::Emfile,
            Some(Errno::EADDRNOTAVAIL) => return ErrorKind::NoLocalPort,
            _ => {}
        }
        match error.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
            io::ErrorKind::TimedOut => ErrorKind::Timeout,
            io::ErrorKind::UnexpectedEof => ErrorKind::ShortReply,
            _ => ErrorKind::Other,
        }
    }
}

/// Errors counted by kind; the field names are the kinds' names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts {
    pub refused: u64,
    pub reset: u64,
    pub closed: u64,
    pub timeout: u64,
    pub emfile: u64,
    pub no_local_port: u64,
    pub short_reply: u64,
    pub wrong_reply: u64,
    pub bad_status: u64,
    pub other: u64,
}

impl ErrorCounts {
    fn slot(&mut self, kind: ErrorKind) -> &mut u64 {
        match kind {
            ErrorKind::Refused => &mut self.refused,
            ErrorKind::Reset => &mut self.reset,
            ErrorKind::Closed => &mut self.closed,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Emfile => &mut self.emfile,
            ErrorKind::NoLocalPort => &mut self.no_local_port,
            ErrorKind::ShortReply => &mut self.short_reply,
            ErrorKind::WrongReply => &mut self.wrong_reply,
            ErrorKind::BadStatus => &mut self.bad_status,
            ErrorKind::Other => &mut self.other,
        }
    }

    pub fn add(&mut self, kind: ErrorKind, count: u64) {
        *self.slot(kind) += count;
    }

    pub fn get(&self, kind: ErrorKind) -> u64 {
        match kind {
            ErrorKind::Refused => self.refused,
            ErrorKind::Reset => self.reset,
            ErrorKind::Closed => self.closed,
            ErrorKind::Timeout => self.timeout,
            ErrorKind::Emfile => self.emfile,
            ErrorKind::NoLocalPort => self.no_local_port,
            ErrorKind::ShortReply => self.short_reply,
            ErrorKind::WrongReply => self.wrong_reply,
            ErrorKind::BadStatus => self.bad_status,
            ErrorKind::Other => self.other,
        }
    }

    pub fn total(&self) -> u64 {
        ErrorKind::ALL.iter().map(|kind| self.get(*kind)).sum()
    }

    pub fn merge(&mut self, other: &ErrorCounts) {
        for kind in ErrorKind::ALL {
            self.add(kind, other.get(kind));
        }
    }

    /// `refused 3, timeout 1`, or `none`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = ErrorKind::ALL
            .iter()
            .filter(|kind| self.get(**kind) > 0)
            .map(|kind| format!("{} {}", kind.name(), self.get(*kind)))
            .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// Everything recorded during one interval (normally one second).
#[derive(Clone, Debug)]
pub struct Window {
    /// Latency from the intended start to the full reply. In a closed loop
    /// the intended start is the moment of sending, so it equals `service`.
    pub latency: Histogram<u64>,
    /// Service time: from sending the request to the full reply.
    pub service: Histogram<u64>,
    /// Completed requests (replies that arrived whole and right).
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub errors: ErrorCounts,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            latency: new_histogram(),
            service: new_histogram(),
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            errors: ErrorCounts::default(),
        }
    }
}

impl Window {
    pub fn merge(&mut self, other: &Window) {
        self.latency
            .add(&other.latency)
            .expect("histograms made by new_histogram have the same bounds");
        self.service
            .add(&other.service)
            .expect("histograms made by new_histogram have the same bounds");
        self.requests += other.requests;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.errors.merge(&other.errors);
    }
}

/// When one request was meant to start, was sent, and was fully answered.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub intended: Instant,
    pub sent: Instant,
    pub done: Instant,
}

/// Where all client tasks record. One mutex-protected window is simple and
/// fast enough here: a lock costs tens of nanoseconds, a loopback request
/// tens of microseconds.
#[derive(Debug, Default)]
pub struct Recorder {
    current: Mutex<Window>,
    active: AtomicU64,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Recorder::default())
    }

    pub fn record_success(&self, timing: Timing, bytes_sent: u64, bytes_received: u64) {
        let latency = microseconds(timing.done.saturating_duration_since(timing.intended));
        let service = microseconds(timing.done.saturating_duration_since(timing.sent));
        let mut window = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        window.latency.saturating_record(latency);
        window.service.saturating_record(service);
        window.requests += 1;
        window.bytes_sent += bytes_sent;
        window.bytes_received += bytes_received;
    }

    pub fn record_error(&self, kind: ErrorKind) {
        let mut window = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        window.errors.add(kind, 1);
    }

    /// Hands out what was recorded since the last call and starts afresh.
    pub fn take_window(&self) -> Window {
        // Allocate the fresh histograms before taking the lock, so client
        // tasks never wait for an allocation.
        let fresh = Window::default();
        let mut window = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *window, fresh)
    }

    /// How many clients are active now (users, connections or held
    /// connections, depending on the mode).
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts one active client until the guard is dropped, also when its
    /// task is cancelled at the end of the run.
    pub fn active_guard(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard {
            recorder: Arc::clone(self),
        }
    }
}

#[derive(Debug)]
pub struct ActiveGuard {
    recorder: Arc<Recorder>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.recorder.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_sorted_by_os_number_first() {
        let emfile = io::Error::from_raw_os_error(Errno::EMFILE as i32);
        assert_eq!(ErrorKind::from_io(&emfile), ErrorKind::Emfile);
        let no_port = io::Error::from_raw_os_error(Errno::EADDRNOTAVAIL as i32);
        assert_eq!(ErrorKind::from_io(&no_port), ErrorKind::NoLocalPort);
        let refused = io::Error::from_raw_os_error(Errno::ECONNREFUSED as i32);
        assert_eq!(ErrorKind::from_io(&refused), ErrorKind::Refused);
        let reset = io::Error::from_raw_os_error(Errno::ECONNRESET as i32);
        assert_eq!(ErrorKind::from_io(&reset), ErrorKind::Reset);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(ErrorKind::from_io(&eof), ErrorKind::ShortReply);
    }

    #[test]
    fn error_counts_add_up() {
        let mut counts = ErrorCounts::default();
        counts.add(ErrorKind::Refused, 2);
        counts.add(ErrorKind::WrongReply, 1);
        let mut more = ErrorCounts::default();
        more.add(ErrorKind::Refused, 1);
        counts.merge(&more);
        assert_eq!(counts.refused, 3);
        assert_eq!(counts.total(), 4);
        assert_eq!(counts.describe(), "refused 3, wrong_reply 1");
    }

    #[test]
    fn windows_merge_and_reset() {
        let recorder = Recorder::new();
        let now = Instant::now();
        let timing = Timing {
            intended: now,
            sent: now + Duration::from_millis(10),
            done: now + Duration::from_millis(12),
        };
        recorder.record_success(timing, 5, 7);
        recorder.record_error(ErrorKind::Timeout);
        let window = recorder.take_window();
        assert_eq!(window.requests, 1);
        assert_eq!(window.errors.timeout, 1);
        let latency = Percentiles::from_histogram(&window.latency);
        let service = Percentiles::from_histogram(&window.service);
        assert!((11_900..=12_100).contains(&latency.max_us));
        assert!((1_990..=2_010).contains(&service.max_us));
        assert_eq!(recorder.take_window().requests, 0);
    }
}
