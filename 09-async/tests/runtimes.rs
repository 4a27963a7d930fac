//! The async model on both tokio runtimes: all clients wait at once, reads
//! go on while replies are pending, shutdown drains in-flight requests, and
//! thousands of connections are held and served. Plus the `EMFILE` back-off.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use conformance::{Client, PAGE, Server, Shape};

const BINARY: &str = env!("CARGO_BIN_EXE_09-async");

/// Each test below runs once per runtime flavour.
macro_rules! on_both_runtimes {
    ($($check:ident),* $(,)?) => {
        mod current_thread {
            $( #[test] fn $check() { super::$check(&["--runtime", "current-thread"]); } )*
        }
        mod multi_thread {
            $( #[test] fn $check() { super::$check(&["--runtime", "multi-thread", "--workers", "2"]); } )*
        }
    };
}

on_both_runtimes!(
    sixteen_concurrent_requests_take_one_latency,
    echo_full_duplex_keeps_reading_while_writing,
    pipelined_requests_while_the_db_is_busy,
    sigterm_drains_in_flight_requests,
    five_thousand_concurrent_connections_echo,
);

fn with<'a>(runtime: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    runtime.iter().chain(args).copied().collect()
}

fn sixteen_concurrent_requests_take_one_latency(runtime: &[&str]) {
    conformance::concurrency_shape(&conformance::Target::exe(BINARY), Shape::Unlimited, runtime);
}

/// 4 MiB echoed while the client writes and reads at once: a loop that
/// only reads after a write finished (or the reverse) deadlocks once both
/// sides' socket buffers are full.
fn echo_full_duplex_keeps_reading_while_writing(runtime: &[&str]) {
    let server = Server::start(BINARY, &with(runtime, &["--mode", "echo"]));
    let mut client = Client::connect(server.addr);
    let payload: Vec<u8> = (0..4 * 1024 * 1024)
        .map(|index| (index % 251) as u8)
        .collect();
    let mut writer = client.stream().try_clone().expect("clone");
    let sent = payload.clone();
    let sender = thread::spawn(move || writer.write_all(&sent).expect("send"));
    let mut echoed = vec![0; payload.len()];
    client.read_exact(&mut echoed);
    sender.join().expect("sender");
    assert!(echoed == payload, "the echo differs");
}

/// Three pipelined requests with a 300 ms DB, sent in one write: answered
/// in order, each `GET /` after its own DB wait, the 404 without one.
fn pipelined_requests_while_the_db_is_busy(runtime: &[&str]) {
    let server = Server::start(
        BINARY,
        &with(runtime, &["--mode", "http", "--db-latency", "300ms"]),
    );
    let mut client = Client::connect(server.addr);
    let started = Instant::now();
    client.send(
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n\
          GET / HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(client.read_response(false).body_text(), PAGE);
    assert_eq!(client.read_response(false).status, 404);
    assert_eq!(client.read_response(false).body_text(), PAGE);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(570) && elapsed < Duration::from_secs(3),
        "two DB waits in sequence: {elapsed:?}"
    );
}

/// SIGTERM with one request waiting for the DB and idle connections open:
/// the request is answered, idle ones are closed, the server exits 0.
fn sigterm_drains_in_flight_requests(runtime: &[&str]) {
    conformance::scale::sigterm_closes_idle_and_finishes_busy(BINARY, runtime);
}

#[test]
fn x_worker_names_thread_and_task() {
    let args = [
        "--runtime",
        "multi-thread",
        "--mode",
        "http",
        "--db-latency",
        "0ms",
    ];
    let server = Server::start(BINARY, &args);
    let response = Client::connect(server.addr).get("/");
    let worker = response.header("X-Worker").expect("X-Worker");
    let prefix = format!("pid={} thread=worker-", server.pid);
    assert!(
        worker.starts_with(&prefix) && worker.contains(" task="),
        "{worker}"
    );
}

#[test]
fn runtime_flags_are_checked() {
    let (status, stderr) =
        conformance::run_to_exit(BINARY, &["--runtime", "current-thread", "--workers", "4"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let (status, stderr) = conformance::run_to_exit(BINARY, &["--runtime", "fibers"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let (status, stderr) = conformance::run_to_exit(BINARY, &["--workers", "4"]);
    assert_eq!(
        status.code(),
        Some(2),
        "current-thread is the default: {stderr}"
    );
    let (status, stderr) =
        conformance::run_to_exit(BINARY, &["--runtime", "multi-thread", "--workers", "0"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
}

/// 5,000 connections open at once, every one echoing its own bytes.
fn five_thousand_concurrent_connections_echo(runtime: &[&str]) {
    conformance::scale::many_connections_all_echo(BINARY, 5000, runtime);
}

/// Out of file descriptors: accept is paused and retried, logged once,
/// no core spinning, and the server serves again once descriptors free up.
#[test]
fn out_of_descriptors_is_logged_once_and_survived() {
    conformance::scale::out_of_file_descriptors_is_survived(BINARY, &[]);
}
