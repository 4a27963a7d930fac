//! `loadgen echo`: each connection writes a message of `--size` bytes,
//! reads the same number of bytes back with `read_exact`, checks they are
//! the very bytes it sent, and repeats.
//!
//! Writing and reading run at the same time: a server that echoes while it
//! receives (and stops reading when its client does not read, see the
//! backpressure rule) would otherwise deadlock with a client that writes a
//! big message completely before reading anything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{Config, EchoConfig};
use crate::limits;
use crate::observe::Observe;
use crate::report::Report;
use crate::run::{
    Clock, Pacing, RECONNECT_PAUSE, ResourceWatch, Spawning, connected, drive, into_report,
};
use crate::stats::{ErrorKind, Recorder, Timing};

/// Runs an echo load and reports what it measured.
pub(crate) async fn run_echo(config: EchoConfig, observe: &Observe) -> anyhow::Result<Report> {
    ensure!(config.connections > 0, "--connections must be at least 1");
    ensure!(config.size > 0, "--size must be at least 1 byte");
    if let Some(rate) = config.rate {
        ensure!(
            rate.is_finite() && rate > 0.0,
            "--rate must be a positive number of messages per second"
        );
    }
    let preflight = limits::preflight(config.connections as u64);
    let watch = ResourceWatch::new(&config.common)?;
    let recorder = Recorder::new();
    let clock = Clock::starting_now(config.common.duration);
    let pacing = match config.rate {
        Some(rate) => Pacing::open(clock.start, rate),
        None => Pacing::Closed,
    };
    let target = Target {
        addr: config.common.addr,
        size: config.size,
        timeout: config.common.timeout,
    };
    let client_recorder = Arc::clone(&recorder);
    let schedule = pacing.clone();
    let measured = drive(
        &config.common,
        observe,
        clock,
        watch,
        &recorder,
        Spawning {
            clients: config.connections,
            per_second: None,
        },
        &schedule,
        move |_index| {
            echo_client(
                target,
                pacing.clone(),
                Arc::clone(&client_recorder),
                clock.deadline,
            )
        },
    )
    .await?;
    Ok(into_report(Config::Echo(config), preflight, measured, None))
}

#[derive(Clone, Copy, Debug)]
struct Target {
    addr: SocketAddr,
    size: usize,
    timeout: Duration,
}

/// One connection's loop: connect, then send, read back, compare, repeat.
async fn echo_client(target: Target, pacing: Pacing, recorder: Arc<Recorder>, deadline: Instant) {
    let _active = recorder.active_guard();
    // Random content, so a server that sends back zeros or a stale buffer
    // is caught; a sequence number at the front makes each message differ.
    let mut message = vec![0u8; target.size];
    rand::fill(&mut message[..]);
    let mut reply = vec![0u8; target.size];
    let mut connection: Option<TcpStream> = None;
    let mut sequence: u64 = 0;
    loop {
        let Some(stream) = connected(&mut connection, target.addr, target.timeout, &recorder).await
        else {
            continue;
        };
        let intended = pacing.next_start(deadline).await;
        sequence += 1;
        let stamp = sequence.to_le_bytes();
        let stamp_length = stamp.len().min(message.len());
        message[..stamp_length].copy_from_slice(&stamp[..stamp_length]);

        let sent = Instant::now();
        let ticket = recorder.begin(intended, sent);
        let outcome =
            tokio::time::timeout(target.timeout, exchange(stream, &message, &mut reply)).await;
        let done = Instant::now();
        drop(ticket);
        let bytes = target.size as u64;
        match outcome {
            Ok(Ok(())) => recorder.record_success(
                Timing {
                    intended,
                    sent,
                    done,
                },
                bytes,
                bytes,
            ),
            // Exactly `size` bytes came back, so the stream is still in step
            // and the connection can go on.
            Ok(Err(ErrorKind::WrongReply)) => recorder.record_error(ErrorKind::WrongReply),
            Ok(Err(kind)) => {
                recorder.record_error(kind);
                connection = None;
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            Err(_elapsed) => {
                recorder.record_error(ErrorKind::Timeout);
                connection = None;
            }
        }
    }
}

/// Writes `message` and reads `reply.len()` bytes back, concurrently.
async fn exchange(
    stream: &mut TcpStream,
    message: &[u8],
    reply: &mut [u8],
) -> Result<(), ErrorKind> {
    let (mut reader, mut writer) = stream.split();
    let write = writer.write_all(message);
    let read = reader.read_exact(reply);
    tokio::try_join!(write, read).map_err(|error| ErrorKind::from_io(&error))?;
    if reply == message {
        Ok(())
    } else {
        Err(ErrorKind::WrongReply)
    }
}
