//! `loadgen rpc` against a real RPC session (served from threads here)
//! and against a server that answers wrongly: every result is checked.

// The load generator's own test servers and model builds, shared rather
// than copied.
#[path = "../../loadgen/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use common::session::Protocol;
use common::{SessionConfig, Shutdown, Threads};
use loadgen::{Config, HttpLoad, RpcCall, RpcConfig, run};
use support::{common, run_alone, show, start_echo_server};

const DB_LATENCY: Duration = Duration::from_millis(50);

/// A server in RPC mode with a 50 ms fake DB, as the models run it (a
/// session per connection, the blocking driver, a thread each), in this
/// process; it lives until the test process ends.
fn start_rpc_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let config = SessionConfig {
        protocol: Protocol::Rpc {
            db_latency: DB_LATENCY,
        },
        idle_timeout: Duration::from_secs(10),
        server_name: "loadgen-test",
    };
    let shutdown = Shutdown::new().expect("a pipe");
    std::thread::spawn(move || {
        for (stream, peer) in std::iter::from_fn(|| listener.accept().ok()) {
            let connection = shutdown.adopt(stream, peer);
            std::thread::spawn(move || common::serve_connection::<Threads>(connection, config));
        }
    });
    addr
}

fn rpc(addr: std::net::SocketAddr, call: RpcCall, pipeline: usize) -> RpcConfig {
    RpcConfig {
        common: common(addr, Duration::from_secs(1)),
        load: HttpLoad::Connections {
            connections: 4,
            spawn_rate: None,
        },
        call,
        pipeline,
    }
}

#[test]
fn every_result_is_checked() {
    let addr = start_rpc_server();
    let report = run_alone(run(Config::Rpc(rpc(addr, RpcCall::Func1, 4)))).expect("runs");
    show(&report);
    assert_eq!(
        report.summary.errors_total, 0,
        "{:?}",
        report.summary.errors
    );
    assert!(report.summary.requests > 100, "{}", report.summary.requests);

    // An echo server sends each request back: an id, but no result.
    let echo = start_echo_server(false);
    let report = run_alone(run(Config::Rpc(rpc(echo, RpcCall::Func1, 1)))).expect("runs");
    assert!(
        report.summary.errors.wrong_reply > 10,
        "{:?}",
        report.summary.errors
    );
    assert_eq!(report.summary.requests, 0);
}

#[test]
fn pipelined_queries_overlap_their_waits() {
    let addr = start_rpc_server();
    // 4 connections x 8 calls in flight, 50 ms each: about 640 calls/s if
    // the 8 wait together, 80/s if one after another.
    let report = run_alone(run(Config::Rpc(rpc(addr, RpcCall::Query, 8)))).expect("runs");
    show(&report);
    assert_eq!(
        report.summary.errors_total, 0,
        "{:?}",
        report.summary.errors
    );
    let rate = report.summary.requests_per_second;
    assert!((300.0..700.0).contains(&rate), "{rate} calls/s");
    assert!(report.latency.p50_us >= 50_000, "{}", report.latency.p50_us);
}

#[test]
fn an_open_loop_counts_the_calls_it_never_sent() {
    let addr = start_rpc_server();
    // One connection, one call at a time, 50 ms each: at most 20 calls/s
    // against a plan of 100/s. The other ~80 planned calls wait for the
    // connection and are never sent; they belong in the summary.
    let config = RpcConfig {
        load: HttpLoad::Rate {
            rate: 100.0,
            connections: 1,
        },
        ..rpc(addr, RpcCall::Query, 1)
    };
    let report = run_alone(run(Config::Rpc(config))).expect("runs");
    show(&report);
    let summary = &report.summary;
    assert_eq!(summary.planned_requests, Some(100));
    assert!(summary.requests <= 25, "{} answered", summary.requests);
    assert!(
        summary.never_sent >= 60,
        "{} never sent",
        summary.never_sent
    );
    let accounted =
        summary.requests + summary.errors_total + summary.unanswered + summary.never_sent;
    assert!(
        (95..=100).contains(&accounted),
        "answered {} + failed {} + unanswered {} + never sent {} of 100 planned",
        summary.requests,
        summary.errors_total,
        summary.unanswered,
        summary.never_sent
    );
}
