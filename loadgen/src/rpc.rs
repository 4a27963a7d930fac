//! `loadgen rpc`: JSON-RPC 2.0 calls, one line each, under the same three
//! kinds of load as HTTP (users with think time, a closed loop over N
//! connections, an open loop at a rate), with `--pipeline N` calls written
//! at once per connection before their replies are read.
//!
//! Every reply is checked: its id must be the next one sent on that
//! connection (the server answers in order) and its result what the call
//! must return (`func1(x, 2, z)` is `x + 2^z`, `query(key)` is
//! `"row for key"`). A wrong result counts as `wrong_reply`, an error reply
//! as `bad_status`; both leave the connection in step, as lines do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{Config, HttpLoad, RpcCall, RpcConfig};
use crate::duration::DurationRange;
use crate::limits;
use crate::observe::Observe;
use crate::report::Report;
use crate::run::{
    Clock, Pacing, RECONNECT_PAUSE, ResourceWatch, Spawning, connected, drive, into_report,
};
use crate::stats::{ErrorKind, Recorder, Timing};

/// A reply line longer than this is not from one of our servers.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Runs an RPC load and reports what it measured.
pub(crate) async fn run_rpc(config: RpcConfig, observe: &Observe) -> anyhow::Result<Report> {
    ensure!(config.pipeline > 0, "--pipeline must be at least 1");
    let (clients, spawn_rate) = match &config.load {
        HttpLoad::Users {
            users, spawn_rate, ..
        } => (*users, *spawn_rate),
        HttpLoad::Connections {
            connections,
            spawn_rate,
        } => (*connections, *spawn_rate),
        HttpLoad::Rate { rate, connections } => {
            ensure!(
                rate.is_finite() && *rate > 0.0,
                "--rate must be a positive number of calls per second"
            );
            (*connections, None)
        }
    };
    ensure!(clients > 0, "--users or --connections must be at least 1");
    ensure!(
        spawn_rate.is_none_or(|rate| rate.is_finite() && rate > 0.0),
        "--spawn-rate must be a positive number per second"
    );
    let preflight = limits::preflight(clients as u64);
    let watch = ResourceWatch::new(&config.common)?;
    let recorder = Recorder::new();
    let clock = Clock::starting_now(config.common.duration);
    let (pacing, think) = match &config.load {
        HttpLoad::Users { think, .. } => (Pacing::Closed, Some(*think)),
        HttpLoad::Connections { .. } => (Pacing::Closed, None),
        // One round is `pipeline` calls; the rate counts calls.
        HttpLoad::Rate { rate, .. } => (
            Pacing::open(clock.start, rate / config.pipeline as f64),
            None,
        ),
    };
    let target = Target {
        addr: config.common.addr,
        timeout: config.common.timeout,
        call: config.call,
        pipeline: config.pipeline,
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
            clients,
            per_second: spawn_rate,
        },
        &schedule,
        move |index| {
            caller(
                target,
                index as u64,
                pacing.clone(),
                think,
                Arc::clone(&client_recorder),
                clock.deadline,
            )
        },
    )
    .await?;
    Ok(into_report(Config::Rpc(config), preflight, measured, None))
}

#[derive(Clone, Copy, Debug)]
struct Target {
    addr: SocketAddr,
    timeout: Duration,
    call: RpcCall,
    pipeline: usize,
}

/// Call number `id`: its request line and the result it must return.
/// The arguments change with the id, so a server that answers a stale or
/// another client's call is caught.
fn call(kind: RpcCall, id: u64) -> (Vec<u8>, Value) {
    let (request, expected) = match kind {
        RpcCall::Func1 => {
            let (x, z) = (id % 1000, id % 16);
            let request =
                json!({"jsonrpc": "2.0", "method": "func1", "params": [x, 2, z], "id": id});
            (request, json!(x + (1 << z)))
        }
        RpcCall::Query => {
            let key = format!("k{id}");
            let expected = json!(format!("row for {key}"));
            let request = json!({"jsonrpc": "2.0", "method": "query", "params": [key], "id": id});
            (request, expected)
        }
    };
    let mut line = request.to_string().into_bytes();
    line.push(b'\n');
    (line, expected)
}

/// What a reply line must be: a response with our id and a result.
#[derive(Debug, Deserialize)]
struct Response {
    id: Option<u64>,
    result: Option<Value>,
    error: Option<Value>,
}

/// Checks one reply line against the call it answers.
fn check(line: &[u8], id: u64, expected: &Value) -> Result<(), ErrorKind> {
    let response: Response = serde_json::from_slice(line).map_err(|_| ErrorKind::WrongReply)?;
    if response.error.is_some() {
        return Err(ErrorKind::BadStatus);
    }
    if response.id != Some(id) || response.result.as_ref() != Some(expected) {
        return Err(ErrorKind::WrongReply);
    }
    Ok(())
}

/// One connection's life: connect, then rounds of `pipeline` calls, each
/// reply checked and timed as it arrives, with think time between rounds
/// for users.
async fn caller(
    target: Target,
    index: u64,
    pacing: Pacing,
    think: Option<DurationRange>,
    recorder: Arc<Recorder>,
    deadline: Instant,
) {
    let _active = recorder.active_guard();
    let mut connection: Option<TcpStream> = None;
    let mut buffer = Vec::with_capacity(4096);
    // Ids are unique across connections (in the high bits: the client).
    let mut next_id = index << 32;
    loop {
        let Some(stream) = connected(&mut connection, target.addr, target.timeout, &recorder).await
        else {
            continue;
        };
        let intended = pacing.next_start(deadline).await;
        let calls: Vec<(u64, Vec<u8>, Value)> = (0..target.pipeline as u64)
            .map(|offset| {
                let id = next_id + offset;
                let (line, expected) = call(target.call, id);
                (id, line, expected)
            })
            .collect();
        next_id += target.pipeline as u64;
        let sent = Instant::now();
        let round = round(stream, &calls, &mut buffer, &recorder, intended, sent);
        match tokio::time::timeout(target.timeout, round).await {
            Ok(Ok(())) => {}
            Ok(Err(kind)) => {
                recorder.record_error(kind);
                (connection, buffer) = (None, Vec::new());
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            Err(_elapsed) => {
                recorder.record_error(ErrorKind::Timeout);
                (connection, buffer) = (None, Vec::new());
            }
        }
        if let Some(think) = think {
            tokio::time::sleep(think.pick()).await;
        }
    }
}

/// Writes the calls in one go, then reads one reply line per call and
/// records each as it comes. `Err` only when the connection is no longer
/// usable.
async fn round(
    stream: &mut TcpStream,
    calls: &[(u64, Vec<u8>, Value)],
    buffer: &mut Vec<u8>,
    recorder: &Recorder,
    intended: Instant,
    sent: Instant,
) -> Result<(), ErrorKind> {
    let requests: Vec<u8> = calls
        .iter()
        .flat_map(|(_, line, _)| line.iter().copied())
        .collect();
    stream
        .write_all(&requests)
        .await
        .map_err(|error| ErrorKind::from_io(&error))?;
    for (answered, (id, line, expected)) in calls.iter().enumerate() {
        let reply = read_line(stream, buffer, answered == 0).await?;
        let done = Instant::now();
        match check(&buffer[..reply], *id, expected) {
            Ok(()) => {
                let timing = Timing {
                    intended,
                    sent,
                    done,
                };
                recorder.record_success(timing, line.len() as u64, reply as u64);
            }
            Err(kind) => recorder.record_error(kind),
        }
        buffer.drain(..reply);
    }
    Ok(())
}

/// Reads until `buffer` holds a whole line; returns its length (newline
/// included). `first`: nothing of this round's replies came yet, so an EOF
/// is a close rather than a cut reply.
async fn read_line(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    first: bool,
) -> Result<usize, ErrorKind> {
    let mut scanned = 0;
    loop {
        if let Some(end) = buffer[scanned..].iter().position(|&byte| byte == b'\n') {
            return Ok(scanned + end + 1);
        }
        scanned = buffer.len();
        if scanned > MAX_REPLY_BYTES {
            return Err(ErrorKind::WrongReply);
        }
        buffer.reserve(4096);
        match stream.read_buf(buffer).await {
            Ok(0) if first && buffer.is_empty() => return Err(ErrorKind::Closed),
            Ok(0) => return Err(ErrorKind::ShortReply),
            Ok(_) => {}
            Err(error) => return Err(ErrorKind::from_io(&error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_carry_their_expected_result() {
        let (line, expected) = call(RpcCall::Func1, 1003);
        let request: Value = serde_json::from_slice(&line).expect("JSON");
        assert_eq!(request["params"], json!([3, 2, 11]));
        assert_eq!(expected, json!(3 + 2048));
        assert_eq!(line.last(), Some(&b'\n'));
        let (line, expected) = call(RpcCall::Query, 7);
        assert!(String::from_utf8_lossy(&line).contains("\"k7\""));
        assert_eq!(expected, json!("row for k7"));
    }

    #[test]
    fn checks_id_result_and_errors() {
        let expected = json!(9);
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","result":9,"id":4}"#, 4, &expected),
            Ok(())
        );
        let wrong_result = br#"{"jsonrpc":"2.0","result":8,"id":4}"#;
        assert_eq!(
            check(wrong_result, 4, &expected),
            Err(ErrorKind::WrongReply)
        );
        let wrong_id = br#"{"jsonrpc":"2.0","result":9,"id":5}"#;
        assert_eq!(check(wrong_id, 4, &expected), Err(ErrorKind::WrongReply));
        let error = br#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"x"},"id":4}"#;
        assert_eq!(check(error, 4, &expected), Err(ErrorKind::BadStatus));
        assert_eq!(
            check(b"HTTP/1.1 200 OK", 4, &expected),
            Err(ErrorKind::WrongReply)
        );
    }
}
