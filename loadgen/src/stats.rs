//! Counting what happened: latency histograms, errors by kind, and the
//! per-second window that every client task records into.
//!
//! Latencies go into an HdrHistogram in microseconds. It keeps every value
//! to 3 significant digits in fixed memory, so p99.9 and max are real
//! values, not averages of averages. Client tasks all record into one
//! [`Recorder`]; once a second the run swaps its window out, which gives
//! the per-second rows, and merges the window into the totals.

use std::collections::HashMap;
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
    /// HTTP: body bytes received (Locust's "content size"); other modes:
    /// the same as `bytes_received`.
    pub content_bytes: u64,
    pub errors: ErrorCounts,
    /// Requests sent more than [`LATE_AFTER`] after their planned start
    /// (open loop: the clients could not keep up with the plan).
    pub late: u64,
    /// Requests sent but not answered when the run ended.
    pub unanswered: u64,
    /// Open loop: requests the plan had due before the end that no client
    /// got to send.
    pub never_sent: u64,
    /// The longest wait among the unanswered and never-sent requests, us.
    pub unfinished_max_us: u64,
}

/// A request sent this long after its planned start counts as late. The
/// timer wakes up to a millisecond late, and a busy client a little more;
/// beyond this the client (or the connections it had) could not keep up.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

impl Default for Window {
    fn default() -> Self {
        Window {
            latency: new_histogram(),
            service: new_histogram(),
            requests: 0,
            bytes_sent: 0,
            bytes_received: 0,
            content_bytes: 0,
            errors: ErrorCounts::default(),
            late: 0,
            unanswered: 0,
            never_sent: 0,
            unfinished_max_us: 0,
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
        self.content_bytes += other.content_bytes;
        self.errors.merge(&other.errors);
        self.late += other.late;
        self.unanswered += other.unanswered;
        self.never_sent += other.never_sent;
        self.unfinished_max_us = self.unfinished_max_us.max(other.unfinished_max_us);
    }

    /// Counts requests still unanswered at `end`. In an open loop their wait
    /// so far also goes into the latencies (a lower bound of what they
    /// would have measured), so a server that stopped answering shows in
    /// the percentiles instead of vanishing from them. A closed loop keeps
    /// them out of its percentiles, as Locust does, and reports them beside.
    pub fn add_unanswered(&mut self, outstanding: &[Outstanding], end: Instant, open_loop: bool) {
        for request in outstanding {
            let waited = microseconds(end.saturating_duration_since(request.intended));
            self.unanswered += 1;
            self.unfinished_max_us = self.unfinished_max_us.max(waited);
            if open_loop {
                self.latency.saturating_record(waited);
                self.service
                    .saturating_record(microseconds(end.saturating_duration_since(request.sent)));
            }
        }
    }

    /// Counts planned requests that were never sent, with how long each had
    /// been due at the end: their corrected latency is at least that. They
    /// have no service time (uncorrected latency): they were never served.
    pub fn add_never_sent(&mut self, waits: &[Duration]) {
        for wait in waits {
            let waited = microseconds(*wait);
            self.never_sent += 1;
            self.unfinished_max_us = self.unfinished_max_us.max(waited);
            self.latency.saturating_record(waited);
        }
    }
}

/// When one request was meant to start, was sent, and was fully answered.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub intended: Instant,
    pub sent: Instant,
    pub done: Instant,
}

/// A request on its way: when it was meant to start and when it was sent.
#[derive(Clone, Copy, Debug)]
pub struct Outstanding {
    pub intended: Instant,
    pub sent: Instant,
}

/// Where all client tasks record. One mutex-protected window is simple and
/// fast enough here: a lock costs tens of nanoseconds, a loopback request
/// tens of microseconds.
#[derive(Debug, Default)]
pub struct Recorder {
    current: Mutex<Window>,
    active: AtomicU64,
    /// Requests sent and not yet answered, by ticket number, so the end of
    /// the run can count them instead of dropping them.
    outstanding: Mutex<HashMap<u64, Outstanding>>,
    next_ticket: AtomicU64,
}

/// A request registered with [`Recorder::begin`]; dropping it (answered,
/// failed, or its task cancelled) takes it off the outstanding list.
#[derive(Debug)]
pub struct Ticket {
    recorder: Arc<Recorder>,
    number: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut outstanding = self
            .recorder
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        outstanding.remove(&self.number);
    }
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Recorder::default())
    }

    pub fn record_success(&self, timing: Timing, bytes_sent: u64, bytes_received: u64) {
        self.record_reply(timing, bytes_sent, bytes_received, bytes_received);
    }

    /// A success whose content (an HTTP body) is only part of the bytes.
    pub fn record_reply(&self, timing: Timing, bytes_sent: u64, bytes_received: u64, content: u64) {
        let latency = microseconds(timing.done.saturating_duration_since(timing.intended));
        let service = microseconds(timing.done.saturating_duration_since(timing.sent));
        let mut window = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        window.latency.saturating_record(latency);
        window.service.saturating_record(service);
        window.requests += 1;
        window.bytes_sent += bytes_sent;
        window.bytes_received += bytes_received;
        window.content_bytes += content;
    }

    /// Registers a request about to be sent, and counts it late if it is
    /// sent more than [`LATE_AFTER`] after its planned start.
    pub fn begin(self: &Arc<Self>, intended: Instant, sent: Instant) -> Ticket {
        if sent.saturating_duration_since(intended) > LATE_AFTER {
            let mut window = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            window.late += 1;
        }
        let number = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let mut outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        outstanding.insert(number, Outstanding { intended, sent });
        Ticket {
            recorder: Arc::clone(self),
            number,
        }
    }

    /// The requests sent and not answered yet.
    pub fn outstanding(&self) -> Vec<Outstanding> {
        let outstanding = self
            .outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        outstanding.values().copied().collect()
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
    fn unfinished_requests_count_with_their_wait_in_an_open_loop_only() {
        let recorder = Recorder::new();
        let start = Instant::now();
        let sent = start + Duration::from_millis(100);
        let ticket = recorder.begin(start, sent);
        let outstanding = recorder.outstanding();
        assert_eq!(outstanding.len(), 1);
        let end = start + Duration::from_secs(2);
        let mut closed = Window::default();
        closed.add_unanswered(&outstanding, end, false);
        assert_eq!((closed.unanswered, closed.latency.len()), (1, 0));
        let mut open = Window::default();
        open.add_unanswered(&outstanding, end, true);
        open.add_never_sent(&[Duration::from_secs(1)]);
        assert_eq!((open.unanswered, open.never_sent), (1, 1));
        let corrected = Percentiles::from_histogram(&open.latency);
        let uncorrected = Percentiles::from_histogram(&open.service);
        assert!((1_999_000..=2_001_000).contains(&corrected.max_us));
        assert!((999_000..=1_001_000).contains(&corrected.min_us));
        assert_eq!(uncorrected.count, 1);
        assert!((1_899_000..=1_901_000).contains(&uncorrected.max_us));
        // Sent 100 ms after its plan: late.
        assert_eq!(recorder.take_window().late, 1);
        drop(ticket);
        assert!(recorder.outstanding().is_empty());
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
