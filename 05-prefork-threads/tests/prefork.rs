//! The model's own promises: clients spread over processes *and* over the
//! threads inside each, a killed child is replaced (threads and all), and
//! no process outlives the server.

use std::collections::BTreeSet;

use conformance::prefork;

const BINARY: &str = env!("CARGO_BIN_EXE_05-prefork-threads");

#[test]
fn requests_spread_over_processes_and_threads() {
    let args = ["--workers", "2", "--threads", "4"];
    let workers = prefork::requests_spread_over_processes(BINARY, &args);
    let pids: BTreeSet<_> = workers.iter().map(|(pid, _)| pid).collect();
    // 16 requests, 8 at a time: some process served several at once, on
    // different threads of its pool.
    let busiest = pids
        .iter()
        .map(|pid| {
            let threads: BTreeSet<_> = workers
                .iter()
                .filter(|(served_by, _)| served_by == *pid)
                .map(|(_, thread)| thread.as_str())
                .collect();
            threads.len()
        })
        .max();
    assert!(busiest >= Some(2), "one thread per process: {workers:?}");
    assert!(!workers.is_empty());
    assert!(
        workers
            .iter()
            .all(|(_, thread)| thread.starts_with("worker-")),
        "{workers:?}"
    );
}

#[test]
fn killed_child_is_replaced() {
    prefork::killed_child_is_replaced(BINARY, &["--workers", "2", "--threads", "2"], 2);
}

#[test]
fn killed_child_under_load_loses_only_its_own() {
    prefork::killed_child_under_load_loses_only_its_own(
        BINARY,
        &["--workers", "2", "--threads", "2"],
        2,
        2,
    );
}

#[test]
fn sigterm_leaves_no_process() {
    prefork::sigterm_leaves_no_process(BINARY, &["--workers", "3", "--threads", "3"], 3);
}

#[test]
fn ctrl_c_to_the_group_finishes_in_flight() {
    prefork::ctrl_c_to_the_group_finishes_in_flight(
        BINARY,
        &["--workers", "2", "--threads", "2"],
        2,
    );
}

#[test]
fn killed_supervisor_leaves_no_orphans() {
    prefork::killed_supervisor_leaves_no_orphans(BINARY, &["--workers", "2", "--threads", "2"], 2);
}
