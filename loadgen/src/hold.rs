//! `loadgen hold`: the C10K test. Opens `--connections` idle connections at
//! `--connect-rate` per second, keeps them open, and each second sends a
//! short echo on a few of them to see whether the server still answers.
//!
//! A successful connect does not mean the server took the connection: the
//! kernel completes the handshake as soon as the connection is in the
//! listen queue. A server that never calls `accept` again (or serves one
//! connection at a time) shows up as connections that are "opened" but
//! whose echo checks time out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::config::{Config, HoldConfig};
use crate::limits;
use crate::observe::Observe;
use crate::report::{HoldSummary, Report};
use crate::run::{
    Clock, Pacing, ResourceWatch, Spawning, connect, drive, into_report, sleep_until,
};
use crate::stats::{ErrorKind, Recorder, Timing};

/// Bytes in one echo check.
pub const PROBE_LENGTH: usize = 16;

/// Runs a hold test and reports what happened to the connections.
pub(crate) async fn run_hold(config: HoldConfig, observe: &Observe) -> anyhow::Result<Report> {
    ensure!(config.connections > 0, "--connections must be at least 1");
    ensure!(
        config.connect_rate.is_finite() && config.connect_rate > 0.0,
        "--connect-rate must be a positive number of connections per second"
    );
    let preflight = limits::preflight(config.connections as u64);
    let watch = ResourceWatch::new(&config.common)?;
    let recorder = Recorder::new();
    let counters = Arc::new(Counters::default());
    let clock = Clock::starting_now(config.common.duration);

    // Each second a new check round; the connections whose turn it is send
    // an echo. Round r checks connections with index % stride == r % stride,
    // so over the run every connection gets checked, about `sample` a second.
    let (rounds, round_receiver) = watch::channel(0u64);
    tokio::spawn(async move {
        for round in 1u64.. {
            let due = clock.start + Duration::from_secs(round);
            if due >= clock.deadline {
                break;
            }
            sleep_until(due).await;
            let _ = rounds.send(round);
        }
    });
    let stride = (config.sample > 0).then(|| (config.connections / config.sample).max(1) as u64);

    let held = Held {
        addr: config.common.addr,
        timeout: config.common.timeout,
        stride,
        recorder: Arc::clone(&recorder),
        counters: Arc::clone(&counters),
    };
    let measured = drive(
        &config.common,
        observe,
        clock,
        watch,
        &recorder,
        Spawning {
            clients: config.connections,
            per_second: Some(config.connect_rate),
        },
        &Pacing::Closed,
        move |index| hold_connection(index as u64, held.clone(), round_receiver.clone()),
    )
    .await?;

    let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let opened = count(&counters.opened);
    let dropped = count(&counters.dropped);
    let hold = HoldSummary {
        target: config.connections as u64,
        opened,
        refused: count(&counters.refused),
        connect_timeouts: count(&counters.connect_timeouts),
        connect_failures: count(&counters.connect_failures),
        dropped,
        open_at_end: opened - dropped,
        checks_sent: count(&counters.checks_sent),
        checks_answered: count(&counters.checks_answered),
    };
    let seconds_to_open = config.connections as f64 / config.connect_rate;
    let run_seconds = config.common.duration.as_secs_f64();
    let mut report = into_report(Config::Hold(config), preflight, measured, Some(hold));
    if seconds_to_open > run_seconds {
        report.warnings.push(format!(
            "opening all connections at --connect-rate takes {seconds_to_open:.1} s, longer \
             than --duration ({run_seconds:.1} s)"
        ));
    }
    Ok(report)
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    refused: AtomicU64,
    connect_timeouts: AtomicU64,
    connect_failures: AtomicU64,
    dropped: AtomicU64,
    checks_sent: AtomicU64,
    checks_answered: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What every held connection needs to know.
#[derive(Clone, Debug)]
struct Held {
    addr: SocketAddr,
    timeout: Duration,
    stride: Option<u64>,
    recorder: Arc<Recorder>,
    counters: Arc<Counters>,
}

/// Opens one connection and holds it: waits for the server to close it (it
/// should not), and sends an echo check when it is this connection's turn.
async fn hold_connection(index: u64, held: Held, mut rounds: watch::Receiver<u64>) {
    let (recorder, counters) = (&held.recorder, &held.counters);
    let mut stream = match connect(held.addr, held.timeout).await {
        Ok(stream) => stream,
        Err(kind) => {
            bump(&counters.connect_failures);
            match kind {
                ErrorKind::Refused => bump(&counters.refused),
                ErrorKind::Timeout => bump(&counters.connect_timeouts),
                _ => {}
            }
            recorder.record_error(kind);
            return;
        }
    };
    bump(&counters.opened);
    let _active = recorder.active_guard();

    let mut probe = [0u8; PROBE_LENGTH];
    let mut buffer = [0u8; PROBE_LENGTH];
    // The check in flight: when it was sent and how much of it came back.
    let mut pending: Option<Instant> = None;
    let mut received = 0;
    let mut counted_late = false;
    let mut rounds_open = true;
    loop {
        let check_deadline = pending.map_or(far_future(), |sent| sent + held.timeout);
        tokio::select! {
            read = stream.read(&mut buffer) => {
                let count = match read {
                    Ok(0) => {
                        bump(&counters.dropped);
                        recorder.record_error(ErrorKind::Closed);
                        return;
                    }
                    Ok(count) => count,
                    Err(error) => {
                        bump(&counters.dropped);
                        recorder.record_error(ErrorKind::from_io(&error));
                        return;
                    }
                };
                let expected = probe.get(received..received + count);
                let (Some(sent), Some(expected)) = (pending, expected) else {
                    // Bytes nobody asked for: the connection is out of step.
                    recorder.record_error(ErrorKind::WrongReply);
                    return;
                };
                if expected != &buffer[..count] {
                    recorder.record_error(ErrorKind::WrongReply);
                    return;
                }
                received += count;
                if received == PROBE_LENGTH {
                    // A late answer still goes into the histogram: how late
                    // it was is exactly what the test is about.
                    let timing = Timing { intended: sent, sent, done: Instant::now() };
                    recorder.record_success(timing, PROBE_LENGTH as u64, PROBE_LENGTH as u64);
                    if !counted_late {
                        bump(&counters.checks_answered);
                    }
                    (pending, received, counted_late) = (None, 0, false);
                }
            }
            changed = rounds.changed(), if rounds_open => {
                if changed.is_err() {
                    rounds_open = false;
                    continue;
                }
                let round = *rounds.borrow_and_update();
                let my_turn = held.stride.is_some_and(|stride| index % stride == round % stride);
                if pending.is_none() && my_turn {
                    probe[..8].copy_from_slice(&index.to_le_bytes());
                    probe[8..].copy_from_slice(&round.to_le_bytes());
                    if let Err(error) = stream.write_all(&probe).await {
                        bump(&counters.dropped);
                        recorder.record_error(ErrorKind::from_io(&error));
                        return;
                    }
                    bump(&counters.checks_sent);
                    pending = Some(Instant::now());
                }
            }
            _ = sleep_until(check_deadline), if pending.is_some() && !counted_late => {
                // Count the timeout once, but keep waiting: a server that is
                // merely slow will answer, and then this connection can be
                // checked again.
                recorder.record_error(ErrorKind::Timeout);
                counted_late = true;
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(24 * 3600)
}
