//! What makes 08 a coroutine server rather than a thread server: one worker
//! thread still serves many waiting clients at once, `X-Worker` names the
//! coroutine, and shutdown reaches coroutines parked in `accept` and `read`.
#![cfg(not(target_os = "freebsd"))] // may does not build there: see tests/elsewhere.rs

use std::net::TcpStream;
use std::time::{Duration, Instant};

use conformance::{Client, Server, Shape};
use nix::sys::signal::Signal;

const BINARY: &str = env!("CARGO_BIN_EXE_08-coroutines");

/// With a single may worker, 16 clients waiting 200 ms each for the fake DB
/// are still answered in about 200 ms: the coroutines wait, not the thread.
#[test]
fn one_worker_serves_16_concurrent_requests_in_one_latency() {
    conformance::concurrency_shape(
        &conformance::Target::exe(BINARY),
        Shape::Unlimited,
        &["--workers", "1"],
    );
}

/// `--db-sleep thread` sleeps with `std::thread::sleep`, which blocks the
/// worker thread itself: with two workers, two requests at a time, the
/// shape of 03's pool of two (gevent without `monkey.patch_all()`).
#[test]
fn a_thread_sleep_stalls_every_coroutine_on_its_worker() {
    conformance::concurrency_shape(
        &conformance::Target::exe(BINARY),
        Shape::AtMost(2),
        &["--workers", "2", "--db-sleep", "thread"],
    );
}

#[test]
fn x_worker_names_the_coroutine() {
    let server = Server::start(BINARY, &["--mode", "http", "--db-latency", "0ms"]);
    let mut first = Client::connect(server.addr);
    let mut second = Client::connect(server.addr);
    let label = |client: &mut Client| {
        client
            .get("/")
            .header("X-Worker")
            .expect("an X-Worker header")
            .to_owned()
    };
    let (one, two) = (label(&mut first), label(&mut second));
    assert!(
        one.starts_with(&format!("pid={} thread=coroutine-", server.pid)),
        "{one}"
    );
    assert_ne!(one, two, "each connection has its own coroutine");
}

/// Idle clients hold parked coroutines, and the acceptor is parked in
/// `accept`: SIGTERM must still end the process promptly, with status 0.
#[test]
fn sigterm_with_idle_connections_exits_promptly() {
    let mut server = Server::start(
        BINARY,
        &["--mode", "echo", "--workers", "1", "--log", "debug"],
    );
    let idle: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(server.addr).expect("connect"))
        .collect();
    // Every one accepted and parked in its coroutine's read.
    server.wait_for_log("connect ", 20, Duration::from_secs(5));
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM);
    let status = server
        .wait_for_exit(Duration::from_secs(8))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(2),
        "idle connections do not hold up shutdown: {:?}",
        signalled.elapsed()
    );
    // The idle connections were still open while the server stopped.
    drop(idle);
}

#[test]
fn stack_size_flag_states_its_unit_and_refuses_nonsense() {
    let output = std::process::Command::new(BINARY)
        .arg("--help")
        .output()
        .expect("run --help");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--stack-size <KiB>"), "{help}");
    assert!(help.contains("--workers <N>"), "{help}");
    for bad in [["--stack-size", "1"], ["--workers", "0"]] {
        let (status, stderr) = conformance::run_to_exit(BINARY, &bad);
        assert_eq!(status.code(), Some(2), "{bad:?}: {stderr}");
    }
}

/// Out of file descriptors: the acceptor coroutine backs off (one log line,
/// no busy loop), and serves again once descriptors are free.
#[test]
fn out_of_descriptors_is_survived() {
    conformance::scale::out_of_file_descriptors_is_survived(BINARY, &[]);
}
