//! The lifecycle checks: a connection's end (idle, a client's reset), the
//! process's (SIGTERM, a busy port, bad flags, `--version` and `--help`),
//! and the concurrency shape each model must show under 16 fake-DB
//! requests.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use socket2::SockRef;

use crate::checks::*;
use crate::client::Client;
use crate::skip::skip;
use crate::target::Target;

/// How many of 16 concurrent fake-DB requests a model serves at once (the
/// checker's `--shape` is the same for any server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One after another: 16 requests take 16 latencies (01).
    OneAtATime,
    /// A fixed number at a time: 16 requests take 16 / n latencies (03-05).
    AtMost(u32),
    /// All at once: 16 requests take about one latency (02, 06-09).
    Unlimited,
}

pub fn idle_connection_is_closed(target: &Target) {
    let server = target.start(&["--mode", "echo", "--idle-timeout", "1s"]);
    let mut client = Client::connect(server.addr);
    client.send(b"ping");
    let mut answer = [0; 4];
    client.read_exact(&mut answer);
    let idle_since = Instant::now();
    let cpu_before = crate::procinfo::cpu_ticks(server.pid);
    let wakeups_before = crate::procinfo::wakeups(server.pid);
    // And one that never sends a byte: its wait may differ (nothing read
    // yet), and must be as cheap.
    let mut silent = Client::connect(server.addr);
    assert!(
        client.is_closed_within(server.idle_timeout + Duration::from_secs(7)),
        "the idle connection was closed"
    );
    assert!(
        idle_since.elapsed() >= server.idle_timeout * 9 / 10,
        "not before the idle timeout"
    );
    assert!(
        silent.is_closed_within(server.idle_timeout * 2 + Duration::from_secs(7)),
        "the silent connection was closed"
    );
    if let Some(before) = cpu_before {
        assert_waiting_cost_no_cpu(&server, before, idle_since, "two clients were silent");
    }
    // A wait that became a poll (a deadline in the past turned into tokio's
    // 1 ms timer: 526 wakeups in 1.04 s) costs little CPU but wakes the
    // server hundreds of times a second. The models sleep until something
    // happens (0 to 20 wakeups here), except that may's workers (08) at
    // times wait in epoll_wait 10 ms at a time (100 a second): the bound
    // lies between.
    if let (Some(before), Some(after)) = (wakeups_before, crate::procinfo::wakeups(server.pid)) {
        let waited = idle_since.elapsed();
        let woken = after.saturating_sub(before);
        assert!(
            woken as f64 <= 250.0 * waited.as_secs_f64().max(1.0),
            "the server was woken {woken} times in {waited:?} while two clients were silent: \
             an idle wait should sleep, not poll"
        );
    }
    // And the server still serves others.
    let mut next = Client::connect(server.addr);
    next.send(b"pong");
    next.read_exact(&mut answer);
    assert_eq!(&answer, b"pong");
}

/// Closes with RST instead of FIN (SO_LINGER 0), unread data and all: a
/// client that vanishes rudely.
pub(crate) fn reset(stream: TcpStream) {
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("set linger");
    drop(stream);
}

/// A client that resets its connection in the middle of a response must
/// not hurt the next client.
pub fn reset_client_does_not_hurt_next(target: &Target) {
    let server = echo_server(target);
    for _ in 0..3 {
        let rude = TcpStream::connect(server.addr).expect("connect");
        (&rude).write_all(&pattern(512 * 1024)).expect("send");
        let mut some = [0; 1000];
        let _ = (&rude).read(&mut some);
        reset(rude);
    }
    let http = http_server(target);
    let rude = TcpStream::connect(http.addr).expect("connect");
    (&rude)
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .expect("send");
    reset(rude);

    let mut client = Client::connect(server.addr);
    client.send(b"still here");
    let mut answer = [0; 10];
    client.read_exact(&mut answer);
    assert_eq!(&answer, b"still here");
    assert_eq!(Client::connect(http.addr).get("/").body_text(), PAGE);
}

/// SIGTERM while a request waits for the DB: the response still arrives,
/// then the server exits 0.
pub fn sigterm_finishes_in_flight_request(target: &Target) {
    let mut server = target.start(&["--mode", "http", "--db-latency", "1s", "--log", "debug"]);
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    // In flight once the server has read it (it logs every recv).
    server.wait_for_log("recv ", 1, Duration::from_secs(5));
    let signalled = Instant::now();
    server.signal(Signal::SIGTERM);
    let response = client.read_response(false);
    assert_eq!(
        response.body_text(),
        PAGE,
        "the in-flight request is answered"
    );
    assert_eq!(
        response.header("Connection"),
        Some("close"),
        "the last response says the server closes"
    );
    assert!(
        signalled.elapsed() >= Duration::from_millis(500),
        "the request was in flight when the signal came"
    );
    let status = server
        .wait_for_exit(Duration::from_secs(8))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
    assert!(
        TcpStream::connect_timeout(&server.addr, Duration::from_secs(1)).is_err(),
        "nothing listens any more"
    );
}

pub fn busy_port_exits_1(target: &Target) {
    let blocker = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = blocker.local_addr().expect("its address").to_string();
    let (status, stderr) = target.run_to_exit(&["--addr", &addr]);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line on stderr: {stderr:?}"
    );
    assert!(stderr.contains(&addr), "names the address: {stderr:?}");
    assert!(
        stderr.to_lowercase().contains("in use"),
        "says why: {stderr:?}"
    );
}

pub fn bad_flag_exits_2(target: &Target) {
    let (status, stderr) = target.run_to_exit(&["--no-such-flag"]);
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    let (status, stderr) = target.run_to_exit(&["--db-latency", "300"]);
    assert_eq!(
        status.code(),
        Some(2),
        "a duration without unit is refused: {stderr}"
    );
}

pub fn version_and_help(target: &Target) {
    let output = target.output(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--addr",
        "--mode",
        "--db-latency",
        "--idle-timeout",
        "--log",
        "--backlog",
    ] {
        assert!(help.contains(flag), "--help mentions {flag}");
    }
    let output = target.output(&["--version"]);
    assert!(output.status.success());
}

/// 16 concurrent `GET /` on separate connections with a 200 ms fake DB.
/// How many are answered in the first round (together with the first) is how
/// many the model serves at once: exactly 1, exactly the pool's size, or
/// all 16, so a pool one larger or smaller, or a bounded pool where
/// "unlimited" is expected, fails. The total time must fit the rounds too.
pub fn concurrency_shape(target: &Target, shape: Shape, extra_args: &[&str]) {
    const CLIENTS: u32 = 16;
    let mut args = vec!["--mode", "http", "--db-latency", "200ms"];
    args.extend_from_slice(extra_args);
    let server = target.start(&args);
    // A running server keeps its own latency: long enough to tell the
    // rounds apart from a loaded machine's lag is all the check needs.
    let latency = server.db_latency;
    if latency < Duration::from_millis(100) {
        skip(format!(
            "needs a --db-latency of 100ms or more to see the shape; the server's is {latency:?}"
        ));
    }
    let start_together = Arc::new(Barrier::new(CLIENTS as usize + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = server.addr;
            let barrier = Arc::clone(&start_together);
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                barrier.wait();
                client.send(b"GET / HTTP/1.0\r\n\r\n");
                (client.read_response(false), Instant::now())
            })
        })
        .collect();
    start_together.wait();
    let started = Instant::now();
    let mut answered_after = Vec::new();
    for client in clients {
        let (response, done) = client.join().expect("the client thread finished");
        assert_eq!(response.status, 200);
        answered_after.push(done - started);
    }
    answered_after.sort();
    let elapsed = answered_after.last().copied().unwrap_or_default();
    let at_once = match shape {
        Shape::OneAtATime => 1,
        Shape::AtMost(at_once) => at_once,
        Shape::Unlimited => CLIENTS,
    };
    // The first round is what comes within 3/4 of a latency of the first
    // answer: a worker freed by a first-round answer needs a whole latency
    // for its next one, and on a loaded machine every answer may be late by
    // the same start-up lag, which a fixed cut-off would count against it.
    let first = answered_after.first().copied().unwrap_or_default();
    let first_round = answered_after
        .iter()
        .filter(|&&after| after < first + latency * 3 / 4)
        .count();
    assert_eq!(
        first_round, at_once as usize,
        "shape {shape:?}: {first_round} of {CLIENTS} answered in the first round; \
         answered after {answered_after:?}"
    );
    let ideal = latency * CLIENTS.div_ceil(at_once);
    // Never faster than the ideal (that would mean it does not really wait);
    // slower by a margin for two shared cores.
    let slowest = (ideal * 7 / 4).max(ideal + latency * 3 / 2);
    assert!(
        elapsed >= ideal * 95 / 100 && elapsed <= slowest,
        "{CLIENTS} requests took {elapsed:?}; shape {shape:?} expects about {ideal:?} \
         (between {:?} and {slowest:?})",
        ideal * 95 / 100
    );
}
