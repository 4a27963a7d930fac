//! What the three modes share: the clock of a run, closed- and open-loop
//! pacing, starting clients at a spawn rate, and the once-a-second look at
//! the counters and the server's resources that becomes the per-second
//! rows, the live progress line and the totals.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinHandle;

use crate::config::CommonConfig;
use crate::locust::{LocustRecord, LocustSecond, LocustTotals};
use crate::observe::{LiveSecond, Observe, SecondRow};
use crate::report::{Accumulator, Resources, ServerResources};
use crate::resources::{OwnCpu, ProcessTreeSampler, Spent, time_wait_sockets};
use crate::stats::{Outstanding, Percentiles, Recorder, Window};

/// After a failed connect a client waits this long before trying again, so
/// a server that is down does not turn the load generator into a busy loop
/// that counts millions of errors.
pub(crate) const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// How long clients get to stop once told to. Stopping is cancelling, which
/// is immediate; this only guards against a bug.
const GRACE: Duration = Duration::from_secs(2);

/// The load generator's runtime: `threads` workers (default: one per core).
pub fn client_runtime(threads: Option<usize>) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        runtime.worker_threads(threads.max(1));
    }
    runtime
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// `tokio::time::sleep_until` for a `std::time::Instant`.
pub(crate) async fn sleep_until(when: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(when)).await;
}

/// When a run started and when it must stop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub start: Instant,
    pub deadline: Instant,
}

impl Clock {
    pub fn starting_now(duration: Duration) -> Self {
        let start = Instant::now();
        Clock {
            start,
            deadline: start + duration,
        }
    }
}

/// When a client sends its next request.
///
/// Closed loop: right after the previous reply. A slow server then slows
/// the clients down, and the requests it would have received while it was
/// stuck are never sent, so they never show up as slow ("coordinated
/// omission"). Open loop: on a fixed plan, request `i` is due at
/// `start + i / rate` whatever happens; a client that gets to it late
/// still measures latency from the planned time.
#[derive(Clone, Debug)]
pub(crate) enum Pacing {
    Closed,
    Open(Arc<OpenSchedule>),
}

/// The plan of an open loop, shared by all clients: each takes the next
/// planned request, so requests queue up behind busy clients exactly like
/// they would queue up for a stalled server.
#[derive(Debug)]
pub(crate) struct OpenSchedule {
    start: Instant,
    rate: f64,
    next: AtomicU64,
}

impl Pacing {
    pub fn open(start: Instant, rate: f64) -> Self {
        Pacing::Open(Arc::new(OpenSchedule {
            start,
            rate,
            next: AtomicU64::new(0),
        }))
    }

    /// Waits until the next request is due and returns when it was meant to
    /// start. Past the deadline it never returns: the client idles with its
    /// connection open until the run has taken its last measurement and
    /// stops it, so the end of the run does not show up in that
    /// measurement (as closed connections in TIME_WAIT, for example).
    pub async fn next_start(&self, deadline: Instant) -> Instant {
        let due = match self {
            Pacing::Closed => Instant::now(),
            Pacing::Open(schedule) => {
                let index = schedule.next.fetch_add(1, Ordering::Relaxed);
                schedule.start + Duration::from_secs_f64(index as f64 / schedule.rate)
            }
        };
        if due >= deadline {
            std::future::pending::<()>().await;
        }
        // Only sleep when there is time to wait: tokio's timer rounds up to
        // the next millisecond, so sleeping until "now" would add up to 1 ms
        // to every request of a closed loop.
        if due > Instant::now() {
            sleep_until(due).await;
        }
        due
    }

    /// Open loop: how long each planned request that no client took had
    /// been due at `deadline` (request `i` is due at `start + i / rate`).
    /// Closed loops plan nothing, so miss nothing.
    pub fn never_sent(&self, deadline: Instant) -> Vec<Duration> {
        let Pacing::Open(schedule) = self else {
            return Vec::new();
        };
        let due =
            |index: u64| schedule.start + Duration::from_secs_f64(index as f64 / schedule.rate);
        let taken = schedule.next.load(Ordering::Relaxed);
        (taken..)
            .map(due)
            .take_while(|due| *due < deadline)
            .map(|due| deadline.duration_since(due))
            .collect()
    }
}

/// How many clients to start, and how fast.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spawning {
    pub clients: usize,
    /// Clients started per second; `None` starts them all at once.
    pub per_second: Option<f64>,
}

/// The server's and the load generator's resources, sampled every second.
#[derive(Debug)]
pub(crate) struct ResourceWatch {
    tree: Option<ProcessTreeSampler>,
    own: OwnCpu,
    server: ServerAccumulators,
    loadgen_cpu: Accumulator,
    time_wait: Accumulator,
    warnings: Vec<String>,
    /// What the server had spent when the measurement started, and what
    /// it spent from then to the end.
    spent_at_start: Option<Spent>,
    spent: Option<Spent>,
}

#[derive(Debug, Default)]
struct ServerAccumulators {
    samples: u64,
    processes: Accumulator,
    threads: Accumulator,
    rss_bytes: Accumulator,
    fds: Accumulator,
    cpu: Accumulator,
    cpu_user: Accumulator,
    cpu_system: Accumulator,
}

impl ResourceWatch {
    /// Fails if `--pid` names no process. Takes the first CPU readings, so
    /// the first second already has CPU figures.
    ///
    /// Where the server cannot be sampled at all (no /proc: macOS, the
    /// BSDs), `--pid` is a warning in the report instead, and the load runs
    /// without the server's columns.
    pub fn new(common: &CommonConfig) -> anyhow::Result<Self> {
        let mut warnings = Vec::new();
        let mut tree = match common.pid.map(ProcessTreeSampler::new).transpose() {
            Ok(tree) => tree,
            Err(error) if !cfg!(target_os = "linux") => {
                warnings.push(format!("{error:#}"));
                None
            }
            Err(error) => return Err(error),
        };
        if let Some(tree) = &mut tree {
            tree.sample()?;
        }
        let mut own = OwnCpu::default();
        own.sample();
        let spent_at_start = tree.as_ref().and_then(|tree| tree.spent().ok());
        Ok(ResourceWatch {
            spent_at_start,
            spent: None,
            tree,
            own,
            server: ServerAccumulators::default(),
            loadgen_cpu: Accumulator::default(),
            time_wait: Accumulator::default(),
            warnings,
        })
    }

    /// Fills the resource columns of a per-second row.
    fn sample(&mut self, row: &mut SecondRow) {
        if let Some(tree) = &mut self.tree {
            match tree.sample() {
                Ok(sample) => {
                    let server = &mut self.server;
                    server.samples += 1;
                    server.processes.add(sample.processes as f64);
                    server.threads.add(sample.threads as f64);
                    server.rss_bytes.add(sample.rss_bytes as f64);
                    server.fds.add(sample.fds as f64);
                    if let (Some(user), Some(system)) =
                        (sample.cpu_user_percent, sample.cpu_system_percent)
                    {
                        server.cpu.add(user + system);
                        server.cpu_user.add(user);
                        server.cpu_system.add(system);
                        row.cpu_percent = Some(user + system);
                    }
                    row.rss_bytes = Some(sample.rss_bytes);
                    row.threads = Some(sample.threads);
                    row.fds = Some(sample.fds);
                }
                Err(error) => {
                    self.warnings.push(format!(
                        "stopped watching the server after {:.0} s: {error:#}",
                        row.t_seconds
                    ));
                    self.tree = None;
                }
            }
        }
        row.loadgen_cpu_percent = self.own.sample();
        if let Some(cpu) = row.loadgen_cpu_percent {
            self.loadgen_cpu.add(cpu);
        }
        row.time_wait_sockets = time_wait_sockets().unwrap_or(0);
        self.time_wait.add(row.time_wait_sockets as f64);
    }

    /// The measurement starts now (the warm-up is over).
    fn start_spending(&mut self) {
        self.spent_at_start = self.tree.as_ref().and_then(|tree| tree.spent().ok());
    }

    /// The measurement ends now.
    fn stop_spending(&mut self) {
        let now = self.tree.as_ref().and_then(|tree| tree.spent().ok());
        self.spent = now
            .zip(self.spent_at_start)
            .map(|(now, start)| now.since(&start));
    }

    fn finish(self, pid: Option<i32>) -> (Resources, Vec<String>) {
        let server = &self.server;
        let finish = |accumulator: &Accumulator| accumulator.finish().unwrap_or_default();
        let resources = Resources {
            server: pid
                .filter(|_| server.samples > 0)
                .map(|pid| ServerResources {
                    pid,
                    samples: server.samples,
                    processes: finish(&server.processes),
                    threads: finish(&server.threads),
                    rss_bytes: finish(&server.rss_bytes),
                    fds: finish(&server.fds),
                    cpu_percent: finish(&server.cpu),
                    cpu_user_percent: finish(&server.cpu_user),
                    cpu_system_percent: finish(&server.cpu_system),
                    spent: self.spent,
                }),
            loadgen_cpu_percent: self.loadgen_cpu.finish(),
            time_wait_sockets: self.time_wait.finish().unwrap_or_default(),
        };
        (resources, self.warnings)
    }
}

/// What [`drive`] measured, for the mode to turn into a report.
#[derive(Debug)]
pub(crate) struct Measured {
    pub elapsed_seconds: f64,
    /// The part of the run the totals cover: all of it minus the warm-up.
    pub measured_seconds: f64,
    pub totals: Window,
    pub series: Vec<SecondRow>,
    pub resources: Resources,
    pub warnings: Vec<String>,
    pub peak_active: u64,
    pub locust: LocustRecord,
    /// Requests sent and unanswered at the last look, and when that was.
    pub unanswered: Vec<Outstanding>,
    pub end: Instant,
    /// Open loop: how long each planned request nobody sent had been due
    /// at the end (the mode fills this in; [`drive`] does not know the plan).
    pub never_sent: Vec<Duration>,
}

/// The live progress line: only when asked for and stderr is a terminal,
/// so logs and pipes never get animation escape codes.
fn progress_bar(common: &CommonConfig, observe: &Observe) -> Option<ProgressBar> {
    if !observe.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(common.duration.as_secs().max(1));
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:24}] {msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    Some(bar)
}

/// Starts the clients (`make_client(index)` builds client number `index`),
/// looks at the counters once a second until the deadline, then stops the
/// clients and returns the measurements. Clients keep going until the last
/// look is taken; what they complete after it is not counted. An open
/// loop's `pacing` says which planned requests were never sent: they are
/// measured here, once, for every kind of load.
// Eight inputs, each a different concern every mode hands over as is;
// bundling them into one struct would only rename the list.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive<F, Fut>(
    common: &CommonConfig,
    observe: &Observe,
    clock: Clock,
    mut watch: ResourceWatch,
    recorder: &Arc<Recorder>,
    spawning: Spawning,
    pacing: &Pacing,
    make_client: F,
) -> anyhow::Result<Measured>
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let progress = progress_bar(common, observe);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let spawner = tokio::spawn(spawn_clients(clock, spawning, stopped, make_client));

    let mut series = Vec::new();
    let mut totals = Window::default();
    let mut previous_tick = clock.start;
    let mut peak_active = 0;
    let mut elapsed_seconds = 0.0;
    let mut locust = Vec::new();
    let mut unanswered = Vec::new();
    let mut end = clock.start;
    // Windows that end within the warm-up stay in the series but not in
    // the totals; the measurement starts at the last tick of the warm-up.
    let warmup_end = clock.start + common.warmup;
    let mut measuring_since = clock.start;
    for second in 1u64.. {
        let tick = (clock.start + Duration::from_secs(second)).min(clock.deadline);
        sleep_until(tick).await;
        let now = Instant::now();
        let window = recorder.take_window();
        if tick >= clock.deadline {
            // Taken before the clients are stopped, which drops them.
            unanswered = recorder.outstanding();
            end = now;
        }
        elapsed_seconds = now.duration_since(clock.start).as_secs_f64();
        let seconds = now.duration_since(previous_tick).as_secs_f64().max(1e-3);
        previous_tick = now;
        let active = recorder.active();
        peak_active = peak_active.max(active);
        let latency = Percentiles::from_histogram(&window.latency);
        let mut row = SecondRow {
            t_seconds: elapsed_seconds,
            active_clients: active,
            requests_per_second: window.requests as f64 / seconds,
            errors_per_second: window.errors.total() as f64 / seconds,
            p50_us: latency.p50_us,
            p99_us: latency.p99_us,
            max_us: latency.max_us,
            ..SecondRow::default()
        };
        watch.sample(&mut row);
        if tick >= clock.deadline {
            watch.stop_spending();
        }
        if tick <= warmup_end && tick < clock.deadline {
            measuring_since = now;
            watch.start_spending();
        } else {
            totals.merge(&window);
        }
        locust.push(LocustSecond {
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
            users: active,
            requests_per_second: row.requests_per_second + row.errors_per_second,
            failures_per_second: row.errors_per_second,
            totals: LocustTotals::from_window(&totals),
        });
        if let Some(bar) = &progress {
            bar.set_position(second);
            bar.set_message(format!(
                "{:.0} req/s now, {} errors, {} active",
                row.requests_per_second,
                totals.errors.total(),
                row.active_clients
            ));
        }
        if let Some(live) = &observe.live {
            // A live view that has gone away does not stop the run.
            let _ = live.send(LiveSecond {
                row: row.clone(),
                latency: window.latency.clone(),
            });
        }
        series.push(row);
        if tick >= clock.deadline {
            break;
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    // Requests in flight now were taken as unanswered at the last look;
    // stopping the clients drops them.
    let _ = stop.send(true);
    let handles = spawner
        .await
        .context("the task that starts clients failed")?;
    let grace_end = Instant::now() + GRACE;
    for handle in handles {
        let abort = handle.abort_handle();
        if tokio::time::timeout_at(tokio::time::Instant::from_std(grace_end), handle)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    let (resources, warnings) = watch.finish(common.pid);
    let measured_seconds = previous_tick.duration_since(measuring_since).as_secs_f64();
    let locust = LocustRecord {
        totals: LocustTotals::from_window(&totals),
        history: locust,
    };
    Ok(Measured {
        elapsed_seconds,
        measured_seconds,
        totals,
        series,
        resources,
        warnings,
        peak_active,
        locust,
        unanswered,
        end,
        never_sent: pacing.never_sent(clock.deadline),
    })
}

async fn spawn_clients<F, Fut>(
    clock: Clock,
    spawning: Spawning,
    stopped: tokio::sync::watch::Receiver<bool>,
    make_client: F,
) -> Vec<JoinHandle<()>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut handles = Vec::with_capacity(spawning.clients);
    for index in 0..spawning.clients {
        if let Some(per_second) = spawning.per_second {
            let due = clock.start + Duration::from_secs_f64(index as f64 / per_second);
            if due >= clock.deadline {
                break;
            }
            sleep_until(due).await;
        }
        if Instant::now() >= clock.deadline {
            break;
        }
        let client = make_client(index);
        let mut stopped = stopped.clone();
        handles.push(tokio::spawn(async move {
            tokio::select! {
                () = client => {}
                // Also ends the client if the run itself went away.
                _ = stopped.wait_for(|stop| *stop) => {}
            }
        }));
    }
    handles
}

/// Opens a connection with Nagle's algorithm off: requests are small and
/// written whole, and waiting to batch them would only add latency.
pub(crate) async fn connect(
    addr: std::net::SocketAddr,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, crate::stats::ErrorKind> {
    use crate::stats::ErrorKind;
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Only fails on a socket that is already broken; the next read
            // or write reports that properly.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(error)) => Err(ErrorKind::from_io(&error)),
        Err(_) => Err(ErrorKind::Timeout),
    }
}

/// The client's connection, opened if there is none. A failed connect is
/// recorded and followed by a short pause, and gives `None`: the caller
/// goes round its loop and tries again.
pub(crate) async fn connected<'a>(
    connection: &'a mut Option<tokio::net::TcpStream>,
    addr: std::net::SocketAddr,
    timeout: Duration,
    recorder: &crate::stats::Recorder,
) -> Option<&'a mut tokio::net::TcpStream> {
    if connection.is_none() {
        match connect(addr, timeout).await {
            Ok(stream) => *connection = Some(stream),
            Err(kind) => {
                recorder.record_error(kind);
                tokio::time::sleep(RECONNECT_PAUSE).await;
                return None;
            }
        }
    }
    connection.as_mut()
}

/// Puts the totals and the per-second series into a [`crate::report::Report`].
pub(crate) fn into_report(
    config: crate::config::Config,
    preflight: crate::limits::Preflight,
    measured: Measured,
    hold: Option<crate::report::HoldSummary>,
) -> crate::report::Report {
    let open_loop = config.is_open_loop();
    let mut measured = measured;
    measured
        .totals
        .add_unanswered(&measured.unanswered, measured.end, open_loop);
    measured.totals.add_never_sent(&measured.never_sent);
    let totals = &measured.totals;
    let planned_requests = config.open_loop_rate().map(|rate| {
        // Request i is due at i / rate; those due before the deadline.
        (rate * config.common().duration.as_secs_f64()).ceil() as u64
    });
    let mut warnings = preflight.warnings;
    warnings.extend(measured.warnings);
    crate::report::Report {
        summary: crate::report::Summary {
            duration_seconds: measured.elapsed_seconds,
            measured_seconds: measured.measured_seconds,
            requests: totals.requests,
            planned_requests,
            requests_per_second: totals.requests as f64 / measured.measured_seconds.max(1e-3),
            bytes_sent: totals.bytes_sent,
            bytes_received: totals.bytes_received,
            errors: totals.errors.clone(),
            errors_total: totals.errors.total(),
            peak_active_clients: measured.peak_active,
            target_rate: config.open_loop_rate(),
            late: totals.late,
            unanswered: totals.unanswered,
            never_sent: totals.never_sent,
            unfinished_max_us: totals.unfinished_max_us,
        },
        latency: Percentiles::from_histogram(&totals.latency),
        service_time: open_loop.then(|| Percentiles::from_histogram(&totals.service)),
        resources: measured.resources,
        hold,
        series: measured.series,
        locust: measured.locust,
        config,
        environment: preflight.environment,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_loop_counts_the_requests_nobody_took_with_their_wait() {
        let start = Instant::now();
        let pacing = Pacing::open(start, 10.0);
        let Pacing::Open(schedule) = &pacing else {
            panic!("an open schedule")
        };
        // Clients took requests 0..4 (due at 0, 100, 200 and 300 ms); the
        // run ended at 1 s with 5..9 never taken.
        schedule.next.store(5, Ordering::Relaxed);
        let waits = pacing.never_sent(start + Duration::from_secs(1));
        let milliseconds: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(milliseconds, [500, 400, 300, 200, 100]);
        assert!(Pacing::Closed.never_sent(start).is_empty());
    }
}
