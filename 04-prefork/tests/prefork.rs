//! The prefork model's own promises: clients spread over processes, a
//! killed child is replaced, and no process outlives the server.

use conformance::prefork;

const BINARY: &str = env!("CARGO_BIN_EXE_04-prefork");

#[test]
fn requests_spread_over_processes() {
    let workers = prefork::requests_spread_over_processes(BINARY, &["--workers", "4"]);
    // One client at a time per process: each child has only its main thread.
    assert!(!workers.is_empty());
    assert!(
        workers.iter().all(|(_, thread)| thread == "main"),
        "{workers:?}"
    );
}

#[test]
fn killed_child_is_replaced() {
    prefork::killed_child_is_replaced(BINARY, &["--workers", "2"], 2);
}

#[test]
fn killed_child_under_load_loses_only_its_own() {
    prefork::killed_child_under_load_loses_only_its_own(BINARY, &["--workers", "2"], 2, 1);
}

#[test]
fn sigterm_leaves_no_process() {
    prefork::sigterm_leaves_no_process(BINARY, &["--workers", "3"], 3);
}

#[test]
fn ctrl_c_to_the_group_finishes_in_flight() {
    prefork::ctrl_c_to_the_group_finishes_in_flight(BINARY, &["--workers", "2"], 2);
}

#[test]
fn killed_supervisor_leaves_no_orphans() {
    prefork::killed_supervisor_leaves_no_orphans(BINARY, &["--workers", "2"], 2);
}
