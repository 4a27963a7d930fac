//! Checks that only the prefork models (04, 05) must pass: the supervisor
//! spreads clients over processes, replaces a killed child, and leaves no
//! process behind when it stops. Whether a process is gone is read from
//! /proc, never guessed from a pause.
//!
//! Each check takes the model's extra flags (e.g. `["--workers", "3"]`).

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::checks::PAGE;
use crate::client::Client;
pub use crate::procinfo::children_of;
use crate::procinfo::process_exists;
use crate::server::Server;

/// How long the supervisor may take to fork, replace or reap children.
const SETTLE: Duration = Duration::from_secs(10);

/// Waits until `parent` has exactly `count` living children and returns them.
pub fn wait_for_children(parent: u32, count: usize) -> BTreeSet<u32> {
    wait_until(|| Some(children_of(parent)).filter(|children| children.len() == count))
        .unwrap_or_else(|| {
            panic!(
                "{parent} has {:?} as children, expected {count}",
                children_of(parent)
            )
        })
}

/// Polls `check` every 20 ms until it gives a value or [`SETTLE`] passes.
fn wait_until<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + SETTLE;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `pid=1234 thread=worker-3` -> (1234, "worker-3").
fn parse_worker(label: &str) -> (u32, String) {
    let mut words = label.split_whitespace();
    let pid = words
        .next()
        .and_then(|word| word.strip_prefix("pid="))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("X-Worker without pid: {label:?}"));
    let thread = words
        .next()
        .and_then(|word| word.strip_prefix("thread="))
        .unwrap_or_else(|| panic!("X-Worker without thread: {label:?}"));
    (pid, thread.to_string())
}

/// 16 concurrent `GET /`: at least two different child processes answer,
/// and only children of the server do. Returns who served each request,
/// as (pid, thread name), for the model's own further checks.
pub fn requests_spread_over_processes(binary: &str, args: &[&str]) -> Vec<(u32, String)> {
    const CLIENTS: usize = 16;
    let mut all_args = vec!["--mode", "http", "--db-latency", "100ms"];
    all_args.extend_from_slice(args);
    let server = Server::start(binary, &all_args);
    let start_together = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (addr, barrier) = (server.addr, Arc::clone(&start_together));
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                barrier.wait();
                client.send(b"GET / HTTP/1.0\r\n\r\n");
                let response = client.read_response(false);
                assert_eq!(response.status, 200);
                parse_worker(response.header("X-Worker").expect("an X-Worker header"))
            })
        })
        .collect();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|client| client.join().expect("the client thread finished"))
        .collect();
    let pids: BTreeSet<u32> = workers.iter().map(|(pid, _)| *pid).collect();
    assert!(pids.len() >= 2, "16 requests served by processes {pids:?}");
    let children = children_of(server.pid);
    assert!(
        pids.is_subset(&children),
        "served by {pids:?}, but the server's children are {children:?}"
    );
    workers
}

/// `kill -9` of one child: the supervisor logs it, forks a replacement,
/// and the server keeps answering.
pub fn killed_child_is_replaced(binary: &str, args: &[&str], workers: usize) {
    let mut all_args = vec!["--mode", "http", "--db-latency", "0ms"];
    all_args.extend_from_slice(args);
    let server = Server::start(binary, &all_args);
    let before = wait_for_children(server.pid, workers);
    let victim = *before.first().expect("at least one child");
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill a child");
    let after = wait_until(|| {
        let children = children_of(server.pid);
        (children.len() == workers && !children.contains(&victim)).then_some(children)
    })
    .unwrap_or_else(|| panic!("no replacement for {victim}: {:?}", children_of(server.pid)));
    let newcomers: Vec<_> = after.difference(&before).collect();
    assert_eq!(
        newcomers.len(),
        1,
        "one new child: before {before:?}, after {after:?}"
    );
    let logged = format!("child {victim} exited with signal SIGKILL; starting a replacement");
    assert!(
        wait_until(|| server.stderr().contains(&logged).then_some(())).is_some(),
        "logs {logged:?}"
    );
    for _ in 0..4 {
        let response = Client::connect(server.addr).get("/");
        assert_eq!(
            response.body_text(),
            PAGE,
            "still serving after a child died"
        );
    }
}

/// What the load of [`killed_child_under_load_loses_only_its_own`] saw.
#[derive(Debug, Default)]
struct Tally {
    answered_before: u64,
    answered_after: u64,
    failed: Vec<String>,
    refused: Vec<String>,
}

/// One request on a new connection (`Connection: close`, so each request
/// is one accept): `Err` with what went wrong.
fn one_request(addr: std::net::SocketAddr) -> Result<(), (bool, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| (true, e.to_string()))?;
    let limit = Some(Duration::from_secs(5));
    let request = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let mut answer = Vec::new();
    stream
        .set_read_timeout(limit)
        .and_then(|()| stream.write_all(request))
        .and_then(|()| stream.read_to_end(&mut answer))
        .map_err(|e| (false, e.to_string()))?;
    let text = String::from_utf8_lossy(&answer);
    if text.starts_with("HTTP/1.1 200 ") && text.ends_with(PAGE) {
        Ok(())
    } else {
        Err((false, format!("{:?}", &text[..text.len().min(80)])))
    }
}

/// `kill -9` of one worker under steady load (8 clients, a new connection
/// per request, each held 100 ms by the fake DB, so every worker is busy
/// when the kill comes): only the connections that worker held are lost,
/// at most `per_worker` requests (its threads), every other request is answered,
/// the listening socket never refuses a connect, and the supervisor forks
/// a replacement. Connections waiting in the listen queue belong to no
/// worker yet, so they survive the kill.
pub fn killed_child_under_load_loses_only_its_own(
    binary: &str,
    args: &[&str],
    workers: usize,
    per_worker: usize,
) {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    const CLIENTS: usize = 8;
    const ANSWERS: u64 = 20;
    let mut all_args = vec!["--mode", "http", "--db-latency", "100ms"];
    all_args.extend_from_slice(args);
    let server = Server::start(binary, &all_args);
    let before = wait_for_children(server.pid, workers);
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let lock = |tally: &Mutex<Tally>| {
        let mut guard = tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *guard)
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (killed, stop, tally) = (killed.clone(), stop.clone(), tally.clone());
            let addr = server.addr;
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let outcome = one_request(addr);
                    let after = killed.load(Ordering::SeqCst);
                    let mut tally = tally
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match outcome {
                        Ok(()) if after => tally.answered_after += 1,
                        Ok(()) => tally.answered_before += 1,
                        Err((true, error)) => tally.refused.push(error),
                        Err((false, error)) => tally.failed.push(error),
                    }
                }
            })
        })
        .collect();
    let answered = |tally: &Mutex<Tally>, after: bool| {
        let guard = tally
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if after {
            guard.answered_after
        } else {
            guard.answered_before
        }
    };
    // Steady load first, observed rather than slept for.
    let steady = wait_until(|| (answered(&tally, false) >= ANSWERS).then_some(()));
    let victim = *before.first().expect("at least one child");
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).expect("kill a child");
    killed.store(true, Ordering::SeqCst);
    let replaced = wait_until(|| {
        let children = children_of(server.pid);
        (children.len() == workers && !children.contains(&victim)).then_some(())
    });
    let served_on = wait_until(|| (answered(&tally, true) >= ANSWERS).then_some(()));
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("a client thread");
    }
    let tally = lock(&tally);
    eprintln!("kill -9 of worker {victim} under load: {tally:?}");
    assert!(
        steady.is_some(),
        "no steady load before the kill: {tally:?}"
    );
    assert!(replaced.is_some(), "no replacement for {victim}");
    assert!(served_on.is_some(), "the load did not go on: {tally:?}");
    assert!(
        tally.refused.is_empty(),
        "the listening socket refused connects: {:?}",
        tally.refused
    );
    assert!(
        tally.failed.len() <= per_worker,
        "{} requests failed, but the killed worker held at most {per_worker}: {:?}",
        tally.failed.len(),
        tally.failed
    );
}

/// SIGTERM to the supervisor: it exits 0 and every child it ever had is
/// gone (reaped, not a zombie, not an orphan) by the time it has exited.
pub fn sigterm_leaves_no_process(binary: &str, args: &[&str], workers: usize) {
    let mut server = Server::start(binary, args);
    let children = wait_for_children(server.pid, workers);
    let mut client = Client::connect(server.addr);
    client.send(b"hello");
    server.signal(Signal::SIGTERM);
    let status = server.wait_for_exit(SETTLE).expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
    assert!(!process_exists(server.pid), "the supervisor is gone");
    for child in children {
        assert!(
            !process_exists(child),
            "child {child} outlived its supervisor"
        );
    }
}

/// Ctrl-C in a terminal signals the whole process group: each child gets
/// SIGINT from the terminal and again from the supervisor. That must still
/// be one graceful stop: the request in flight is answered, exit 0.
pub fn ctrl_c_to_the_group_finishes_in_flight(binary: &str, args: &[&str], workers: usize) {
    let mut all_args = vec!["--mode", "http", "--db-latency", "800ms", "--log", "debug"];
    all_args.extend_from_slice(args);
    let mut server = Server::start(binary, &all_args);
    let children = wait_for_children(server.pid, workers);
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    // In flight once a child has read it (children log to the same stderr).
    server.wait_for_log("recv ", 1, SETTLE);
    killpg(Pid::from_raw(server.pid as i32), Signal::SIGINT).expect("signal the group");
    let response = client.read_response(false);
    assert_eq!(
        response.body_text(),
        PAGE,
        "the in-flight request is answered"
    );
    let status = server.wait_for_exit(SETTLE).expect("exits after Ctrl-C");
    assert_eq!(
        status.code(),
        Some(0),
        "one Ctrl-C is a graceful stop: {}",
        server.stderr()
    );
    for child in children {
        assert!(
            !process_exists(child),
            "child {child} outlived its supervisor"
        );
    }
}

/// Even `kill -9` of the supervisor leaves no orphan: the children learn
/// of it (PR_SET_PDEATHSIG) and exit.
pub fn killed_supervisor_leaves_no_orphans(binary: &str, args: &[&str], workers: usize) {
    let mut server = Server::start(binary, args);
    let children = wait_for_children(server.pid, workers);
    server.signal(Signal::SIGKILL);
    server.wait_for_exit(SETTLE).expect("the supervisor dies");
    let survivors = wait_until(|| {
        let alive: Vec<_> = children
            .iter()
            .filter(|&&pid| process_exists(pid))
            .collect();
        alive.is_empty().then_some(())
    });
    assert!(survivors.is_some(), "children of a killed supervisor exit");
}
