//! `bench race` end to end on a pipe: two real models at once, one line
//! per second, then the final table, and it ends by itself.
//!
//! Like `tests/compare.rs`, it builds the two model binaries first.

use std::process::Command;
use std::time::{Duration, Instant};

// The load generator's own test servers and model builds, shared rather
// than copied.
#[path = "../../loadgen/tests/support/mod.rs"]
mod support;

#[test]
fn a_race_on_a_pipe_prints_a_line_per_second_and_ends_with_the_table() {
    let bin_dir = support::built_models(&["blocking", "epoll"]);
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["race", "--models", "01,07", "--connections", "5"])
        .args(["--duration", "3s", "--bin-dir"])
        .arg(&bin_dir)
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "race failed: {stderr}");
    // It stops by itself: 3 s of load, plus starting and stopping.
    assert!(started.elapsed() < Duration::from_secs(20));
    let seconds: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("t="))
        .collect();
    assert!(seconds.len() >= 3, "a line per second:\n{stdout}");
    assert!(
        seconds[0].contains("01-blocking") && seconds[0].contains("07-epoll"),
        "{stdout}"
    );
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("model"))
        .collect();
    assert_eq!(table.len(), 3, "a header and a row per model:\n{stdout}");
    // Five connections on a 300 ms page: 01 serves one at a time (about
    // 3/s), 07 all five at once (about 16/s).
    let rate = |row: &str| -> f64 {
        row.split_whitespace()
            .nth(1)
            .and_then(|rate| rate.parse().ok())
            .unwrap_or_else(|| panic!("no rate in {row:?}"))
    };
    let (blocking, epoll) = (rate(table[1]), rate(table[2]));
    assert!(
        (2.0..=4.0).contains(&blocking),
        "01: {blocking}/s\n{stdout}"
    );
    assert!(
        epoll > 3.0 * blocking,
        "07: {epoll}/s vs 01: {blocking}/s\n{stdout}"
    );
}
