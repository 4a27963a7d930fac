//! The checker catches what students get wrong: each small, deliberately
//! broken Python server in `tests/servers` (the lab's example server with one
//! bug) fails the check that names its bug, and the example server itself
//! passes all of those checks. Plus the checker's own promises: a hung
//! server fails at the deadline, Ctrl-C leaves no server behind, `--addr`
//! skips what needs `--exe`, bad usage exits 2, JUnit and JSON are written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const CHECK: &str = env!("CARGO_BIN_EXE_check");

fn servers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers")
}

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/python/lab_server.py")
        .to_string_lossy()
        .into_owned()
}

fn broken(name: &str) -> String {
    servers().join(name).to_string_lossy().into_owned()
}

/// Runs the checker to its end (each of its checks has a deadline, so it
/// ends) and returns its exit code and report.
fn check(args: &[&str]) -> (Option<i32>, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(CHECK)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the checker");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code(), report)
}

/// `server` fails `check_name` and nothing else was run.
fn fails_its_check(server: &str, check_name: &str) {
    let path = broken(server);
    let (code, report) = check(&["--shape", "unlimited", "--only", check_name, "--exe", &path]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains(&format!("FAIL     {check_name} ")),
        "{report}"
    );
    assert!(report.contains("0 passed, 1 failed, 0 skipped"), "{report}");
}

/// Each broken server and the check that names its bug.
const BROKEN: [(&str, &str); 10] = [
    ("reads_once.py", "http_split_request"),
    ("writes_once.py", "echo_backpressure_bounds_unread_output"),
    ("one_at_a_time.py", "concurrency_shape"),
    ("blocks_the_loop.py", "concurrency_shape"),
    ("no_keep_alive.py", "http_keep_alive"),
    (
        "ignores_connection_close.py",
        "http_connection_close_is_honoured",
    ),
    ("never_closes_idle.py", "idle_connection_is_closed"),
    ("dies_on_reset.py", "reset_client_does_not_hurt_next"),
    ("escapes_the_root.py", "files_refusals"),
    ("wrong_content_length.py", "http_get"),
];

#[test]
fn reading_once_fails_the_split_request() {
    fails_its_check(BROKEN[0].0, BROKEN[0].1);
}

#[test]
fn writing_once_fails_backpressure() {
    fails_its_check(BROKEN[1].0, BROKEN[1].1);
}

#[test]
fn one_client_at_a_time_fails_the_unlimited_shape() {
    fails_its_check(BROKEN[2].0, BROKEN[2].1);
}

#[test]
fn blocking_the_event_loop_fails_the_unlimited_shape() {
    fails_its_check(BROKEN[3].0, BROKEN[3].1);
}

#[test]
fn no_keep_alive_fails_keep_alive() {
    fails_its_check(BROKEN[4].0, BROKEN[4].1);
}

#[test]
fn ignoring_connection_close_fails_it() {
    fails_its_check(BROKEN[5].0, BROKEN[5].1);
}

#[test]
fn never_closing_idle_connections_fails_the_idle_check() {
    fails_its_check(BROKEN[6].0, BROKEN[6].1);
}

#[test]
fn dying_on_a_reset_fails_the_reset_check() {
    fails_its_check(BROKEN[7].0, BROKEN[7].1);
}

#[test]
fn leaving_the_root_fails_the_refusals() {
    fails_its_check(BROKEN[8].0, BROKEN[8].1);
}

#[test]
fn a_wrong_content_length_fails_the_page() {
    fails_its_check(BROKEN[9].0, BROKEN[9].1);
}

#[test]
fn the_example_server_passes_every_check_a_broken_one_fails() {
    let only: Vec<&str> = BROKEN.iter().map(|(_, name)| *name).collect();
    let only = only.join(",");
    let example = example();
    let (code, report) = check(&["--shape", "unlimited", "--only", &only, "--exe", &example]);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("9 passed, 0 failed, 0 skipped"), "{report}");
}

/// Waits until `path` holds a pid (the hanging server writes it).
fn wait_for_pid_file(path: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "the server never started");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the process is gone (or a zombie: its parent, the checker,
/// has exited and nobody reaped it yet).
fn wait_until_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while conformance::process_exists(pid as u32) {
        assert!(Instant::now() < deadline, "server {pid} was left behind");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hung_server_fails_at_the_deadline_and_is_stopped() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pid_file = dir.path().join("pid");
    let started = Instant::now();
    let output = Command::new(CHECK)
        .args(["--deadline", "3s", "--only", "http_get", "--exe"])
        .arg(broken("hangs.py"))
        .env("HANGS_PID_FILE", &pid_file)
        .output()
        .expect("run the checker");
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL     http_get"), "{report}");
    assert!(
        report.contains("no verdict within the deadline of 3s"),
        "{report}"
    );
    // The client's own read timeout (15 s) would have been the end otherwise.
    assert!(started.elapsed() < Duration::from_secs(12), "{report}");
    wait_until_gone(wait_for_pid_file(&pid_file));
}

#[test]
fn ctrl_c_stops_the_servers_the_checker_started() {
    ctrl_c_leaves_no_server_behind("0");
}

/// The Ctrl-C comes while the server has not printed its start-up line yet:
/// the checker does not know its address, but must know its process.
#[test]
fn ctrl_c_stops_a_server_that_is_still_starting() {
    ctrl_c_leaves_no_server_behind("30");
}

fn ctrl_c_leaves_no_server_behind(start_delay_seconds: &str) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let dir = tempfile::tempdir().expect("a temp dir");
    let pid_file = dir.path().join("pid");
    let mut checker = Command::new(CHECK)
        .args(["--only", "http_get", "--exe"])
        .arg(broken("hangs.py"))
        .env("HANGS_PID_FILE", &pid_file)
        .env("HANGS_START_DELAY", start_delay_seconds)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the checker");
    let server = wait_for_pid_file(&pid_file);
    // If the checker does leave it behind, the test must not.
    struct KillIfFailed(i32);
    impl Drop for KillIfFailed {
        fn drop(&mut self) {
            if thread::panicking() {
                let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
            }
        }
    }
    let _guard = KillIfFailed(server);
    kill(Pid::from_raw(checker.id() as i32), Signal::SIGINT).expect("Ctrl-C the checker");
    let status = checker.wait().expect("the checker exits");
    assert_eq!(status.code(), Some(130));
    wait_until_gone(server);
}

#[test]
fn a_running_server_is_checked_and_what_needs_exe_is_skipped() {
    // The server runs with these, and the checker is told so.
    let settings = ["--idle-timeout", "2s", "--db-latency", "100ms"];
    let mut flags = vec!["--mode", "http"];
    flags.extend(settings);
    let server = conformance::Server::start(&example(), &flags);
    let addr = server.addr.to_string();
    let mut args = vec!["--addr", &addr, "--mode", "http"];
    args.extend(settings);
    args.extend([
        "--only",
        "http_get,http_request_timeout,sigterm_finishes_in_flight,echo_round_trip,bad_flag",
    ]);
    let (code, report) = check(&args);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("pass     http_get"), "{report}");
    assert!(report.contains("pass     http_request_timeout"), "{report}");
    assert!(
        report.contains("skipped  sigterm_finishes_in_flight_request")
            && report.contains("needs --exe"),
        "{report}"
    );
    assert!(
        report.contains("needs a server in --mode echo; this one runs --mode http"),
        "{report}"
    );
    assert!(report.contains("2 passed, 0 failed, 3 skipped"), "{report}");
}

#[test]
fn junit_and_json_are_written_for_graders() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let junit = dir.path().join("report.xml");
    let json = dir.path().join("report.json");
    let example = example();
    let (code, report) = check(&[
        "--only",
        "http_get,axum",
        "--mode",
        "http",
        "--junit",
        junit.to_str().expect("UTF-8"),
        "--json",
        json.to_str().expect("UTF-8"),
        // An interpreter and its script: the script comes before the
        // flags each check adds.
        "--exe",
        "python3",
        &example,
    ]);
    assert_eq!(code, Some(0), "{report}");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(xml.contains("tests=\"2\" failures=\"0\""), "{xml}");
    assert!(xml.contains("<testcase classname=\"conformance.http\" name=\"http_get\""));
    assert!(
        xml.contains("<skipped message=\"needs --mode axum"),
        "{xml}"
    );
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON file"))
            .expect("valid JSON");
    assert_eq!(value["passed"], 1);
    assert_eq!(value["skipped"], 1);
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for args in [
        &["--only", "no_such_check", "--exe", "/bin/true"][..],
        &["--shape", "sometimes", "--exe", "/bin/true"],
        &["--exe", "/no/such/server"],
        &["--exe", "no-such-server-on-path"],
        &["--addr", "127.0.0.1:1", "--mode", "http,echo"],
        &["--addr", "not-an-address", "--mode", "http"],
    ] {
        let (code, report) = check(args);
        assert_eq!(code, Some(2), "{args:?}: {report}");
        assert!(report.starts_with("error:"), "{args:?}: {report}");
    }
}
