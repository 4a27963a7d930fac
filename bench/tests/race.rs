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

/// A server the workspace did not build races beside a model: the lab's
/// Python example, started from a command with `{port}`, gets a lane and a
/// row, and is stopped with the race.
#[test]
fn a_python_server_races_beside_07() {
    let bin_dir = support::built_models(&["epoll"]);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python/lab_server.py"
    );
    let command =
        format!("python3 {example} --mode http --db-latency 300ms --addr 127.0.0.1:{{port}}");
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["race", "--models", "07", "--cmd", &command])
        .args(["--connections", "5", "--duration", "3s", "--bin-dir"])
        .arg(&bin_dir)
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "race failed: {stderr}");
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("model"))
        .collect();
    assert_eq!(table.len(), 3, "a header and two rows:\n{stdout}");
    assert!(table[2].starts_with("lab_server.py"), "{stdout}");
    // Five connections on a 300 ms page, all served at once: about 16/s.
    let rate: f64 = table[2]
        .split_whitespace()
        .nth(1)
        .and_then(|rate| rate.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {:?}", table[2]));
    assert!((12.0..=18.0).contains(&rate), "{rate}/s\n{stdout}");
    // The race says where it started the server; nothing listens there now.
    let addr = stderr
        .lines()
        .find_map(|line| line.strip_prefix("race: lab_server.py listens on "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse::<std::net::SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no start line for the Python server: {stderr}"));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the Python server outlived the race"
    );
}
