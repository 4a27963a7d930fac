//! `bench compare` end to end: one model, one cell, a real server binary,
//! a real results folder.
//!
//! It builds `07-epoll` first (a no-op when it is up to date), in the same
//! profile as this test.

use std::process::Command;

// The load generator's own test servers and model builds, shared rather
// than copied.
#[path = "../../loadgen/tests/support/mod.rs"]
mod support;

#[test]
fn one_model_one_cell_makes_a_results_folder() {
    let bin_dir = support::built_models(&["epoll"]);
    let out = std::env::temp_dir().join(format!("loadgen-compare-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);

    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            "--models",
            "07-epoll",
            "--scenario",
            "http-sweep",
            "--clients",
            "10",
            "--cell-duration",
            "2s",
            "--out",
        ])
        .arg(&out)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench compare failed: {stderr}");
    assert!(
        stderr.contains("[1/1] http-sweep 07-epoll clients=10"),
        "one progress line per cell: {stderr}"
    );

    for file in [
        "results.json",
        "results.csv",
        "results.md",
        "http-sweep-throughput.svg",
        "http-sweep-p99.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} is missing in {out:?}");
    }

    let csv = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
    let mut lines = csv.lines().filter(|line| !line.starts_with('#'));
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("one row").split(',').collect();
    let column = |name: &str| {
        let index = header
            .iter()
            .position(|column| *column == name)
            .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
        row[index]
    };
    assert_eq!(column("model"), "07-epoll");
    assert_eq!(column("scenario"), "http-sweep");
    assert_eq!(column("clients"), "10");
    let rps: f64 = column("rps").parse().expect("rps is a number");
    assert!(rps > 0.0, "rps {rps} in {csv}");
    let p50: f64 = column("p50_ms").parse().expect("p50 is a number");
    assert!(
        (290.0..1000.0).contains(&p50),
        "p50 {p50} ms: the fake DB takes 300 ms"
    );
    // Sampling the server needs /proc.
    if cfg!(target_os = "linux") {
        assert!(!column("rss_bytes").is_empty(), "the server was sampled");
    }

    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("results.json is JSON");
    assert_eq!(json["complete"], true);
    assert_eq!(
        json["cells"][0]["stopped"]["clean"], true,
        "07 stops on SIGTERM"
    );
    assert!(
        json["machine"]["cores"]
            .as_u64()
            .is_some_and(|cores| cores >= 1)
    );

    let markdown = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    assert!(markdown.contains("| 07-epoll | 10 |"), "{markdown}");
    assert!(markdown.contains("bench compare --models 07-epoll"));
    // The book includes the tables by these anchors; a scenario that did
    // not run has none.
    for name in ["run", "http-sweep-setup", "http-sweep", "http-sweep-most"] {
        assert!(
            markdown.contains(&format!("<!-- ANCHOR: {name} -->\n"))
                && markdown.contains(&format!("<!-- ANCHOR_END: {name} -->\n")),
            "anchor {name} in {markdown}"
        );
    }
    assert!(!markdown.contains("ANCHOR: lab"), "{markdown}");
    let svg = std::fs::read_to_string(out.join("http-sweep-throughput.svg")).expect("svg");
    assert!(svg.contains("07-epoll") && svg.contains("<svg"));

    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_missing_model_binary_is_a_clear_error() {
    let out = std::env::temp_dir().join(format!("loadgen-compare-none-{}", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "compare",
            "--models",
            "07",
            "--bin-dir",
            "/nonexistent",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("bench runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cargo build --release"), "{stderr}");
}

/// A server of one's own (the lab's Python example) is compared like a
/// model: its own row in the table and the plots, its own memory sampled,
/// stopped cleanly by SIGTERM.
#[test]
fn an_outside_server_gets_a_row_like_a_model() {
    let out = std::env::temp_dir().join(format!("loadgen-compare-outside-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/python/lab_server.py"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["compare", "--models", "07-epoll", "--exe"])
        .arg(format!("lab-python={example}"))
        .args([
            "--scenario",
            "http-sweep",
            "--clients",
            "10",
            "--cell-duration",
            "2s",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--bin-dir")
        .arg(support::built_models(&["epoll"]))
        .output()
        .expect("bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench compare failed: {stderr}");
    assert!(
        stderr.contains("http-sweep lab-python clients=10"),
        "{stderr}"
    );
    let markdown = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    assert!(markdown.contains("| lab-python | 10 |"), "{markdown}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("results.json is JSON");
    let cell = json["cells"]
        .as_array()
        .and_then(|cells| {
            cells
                .iter()
                .find(|cell| cell["cell"]["model"] == "lab-python")
        })
        .unwrap_or_else(|| panic!("no lab-python cell: {json}"));
    assert_eq!(cell["stopped"]["clean"], true, "{cell}");
    let _ = std::fs::remove_dir_all(&out);
}
