//! `bench timelines` end to end on a small scale: three clients against
//! 01 and 07 with a 50 ms fake DB, measured from their debug logs. The
//! pictures in the book stand on exactly this: 01 serves the three one
//! after another, 07 all at once.

use std::time::Duration;

use bench::timelines::{CLIENTS, Row, measure};

#[path = "../../loadgen/tests/support/mod.rs"]
mod support;

const DB_LATENCY: Duration = Duration::from_millis(50);

fn timeline(model: &str, package: &str) -> Vec<Row> {
    let bin_dir = support::built_models(&[package]);
    let flags = ["--mode", "http", "--db-latency", "50ms", "--log", "debug"]
        .into_iter()
        .chain(["--addr", "127.0.0.1:0"])
        .map(String::from)
        .collect::<Vec<_>>();
    let (rows, log) = measure(&bin_dir.join(model), &flags, CLIENTS).expect("measured");
    assert_eq!(rows.len(), CLIENTS, "{log}");
    for row in &rows {
        // Each waited the fake DB's 50 ms, less at most the log's rounding.
        assert!(
            row.sent - row.read >= DB_LATENCY.as_secs_f64() * 1000.0 - 2.0,
            "{row:?}\n{log}"
        );
    }
    rows
}

#[test]
fn the_event_loop_waits_for_all_three_at_once() {
    let rows = timeline("07-epoll", "epoll");
    let last_read = rows.iter().map(|row| row.read).fold(0.0, f64::max);
    let first_sent = rows.iter().map(|row| row.sent).fold(f64::MAX, f64::min);
    assert!(last_read < first_sent, "{rows:#?}");
    assert!(
        rows.iter().all(|row| row.worker == rows[0].worker),
        "one thread: {rows:#?}"
    );
}

#[test]
fn the_blocking_server_serves_them_one_after_another() {
    let rows = timeline("01-blocking", "blocking");
    for pair in rows.windows(2) {
        // The next is read only once the previous answer is out (1 ms of
        // the log's rounding), and waited in the listen queue meanwhile.
        assert!(pair[1].read >= pair[0].sent - 1.0, "{rows:#?}");
        assert!(pair[1].accepted - pair[1].connected >= 40.0, "{rows:#?}");
    }
}
