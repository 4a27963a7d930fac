//! The `loadgen` binary as a user meets it: clear one-line errors, exit
//! codes, files written, and no animation when output is not a terminal.

use std::process::{Command, Output};

fn loadgen(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(arguments)
        .output()
        .expect("the loadgen binary runs")
}

fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .to_string()
}

#[test]
fn a_bad_flag_is_one_clear_line_and_exit_2() {
    let output = loadgen(&["echo", "--duration", "10"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no unit"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_value_after_parsing_is_one_line_and_exit_1() {
    let output = loadgen(&["echo", "--connections", "0", "--duration", "1s"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("error"))
        .collect();
    assert_eq!(
        error_lines,
        ["loadgen: error: --connections must be at least 1"]
    );
}

#[test]
fn a_refused_run_still_reports_and_writes_json_and_csv() {
    let directory = std::env::temp_dir().join(format!("loadgen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("a temporary directory");
    let json = directory.join("run.json");
    let csv = directory.join("run.csv");
    let addr = closed_port();
    let output = loadgen(&[
        "http",
        "--addr",
        &addr,
        "--connections",
        "2",
        "--duration",
        "1s",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--csv",
        csv.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("refused"), "{stdout}");
    // Not a terminal: no progress bar escape codes anywhere.
    assert!(
        !stderr.contains('\u{1b}') && !stdout.contains('\u{1b}'),
        "{stderr}"
    );

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written"))
            .expect("valid JSON");
    assert_eq!(report["config"]["mode"], "http");
    assert_eq!(report["config"]["duration"], "1s");
    assert!(report["summary"]["errors"]["refused"].as_u64() > Some(0));
    assert!(report["environment"]["cores"].as_u64() >= Some(1));
    assert!(report["latency"]["p99_us"].is_u64());

    let csv_text = std::fs::read_to_string(&csv).expect("csv written");
    let mut lines = csv_text.lines();
    assert_eq!(lines.next(), Some(loadgen::report::CSV_HEADER));
    assert!(lines.next().is_some(), "at least one row: {csv_text}");
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn help_explains_the_loads_and_the_output_fields() {
    let output = loadgen(&["http", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "coordinated omission",
        "Open loop",
        "requests_per_second",
        "p99_us",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
}
