//! The load generator against tiny servers written here: does it measure
//! what it claims? Margins are generous: two shared cores.

mod support;

use std::process::{Child, Command};
use std::time::Duration;

use loadgen::duration::DurationRange;
use loadgen::resources::ProcessTreeSampler;
use loadgen::{Close, Config, EchoConfig, HoldConfig, HttpConfig, HttpLoad, run};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use support::{Stall, closed_port, common, run_alone, show, start_echo_server, start_http_server};

const MS: u64 = 1_000;

fn http(addr: std::net::SocketAddr, duration: Duration, load: HttpLoad) -> HttpConfig {
    HttpConfig {
        common: common(addr, duration),
        load,
        path: "/".to_string(),
        keepalive: true,
        close: Close::Fin,
    }
}

#[test]
fn a_50ms_server_gives_a_p50_between_50_and_60ms() {
    let addr = start_http_server(Duration::from_millis(50), None);
    let load = HttpLoad::Connections {
        connections: 4,
        spawn_rate: None,
    };
    let report =
        run_alone(run(Config::Http(http(addr, Duration::from_secs(2), load)))).expect("runs");
    show(&report);
    assert_eq!(report.summary.errors_total, 0);
    assert!(report.summary.requests >= 80, "{}", report.summary.requests);
    let p50 = report.latency.p50_us;
    assert!((50 * MS..=60 * MS).contains(&p50), "p50 {p50} us");
    assert!(
        report.service_time.is_none(),
        "closed loop has no separate service time"
    );
    assert!(report.series.len() >= 2);
}

#[test]
fn users_without_think_time_follow_littles_law() {
    let addr = start_http_server(Duration::from_millis(50), None);
    let load = HttpLoad::Users {
        users: 20,
        think: DurationRange {
            min: Duration::ZERO,
            max: Duration::ZERO,
        },
        spawn_rate: None,
    };
    let report =
        run_alone(run(Config::Http(http(addr, Duration::from_secs(3), load)))).expect("runs");
    show(&report);
    // Little's law: throughput = clients in the system / time each spends.
    let expected = 20.0 / 0.050;
    let measured = report.summary.requests_per_second;
    assert!(
        (measured - expected).abs() <= 0.15 * expected,
        "{measured:.1} req/s, expected {expected} +- 15 %"
    );
    assert_eq!(report.summary.peak_active_clients, 20);
}

#[test]
fn open_loop_latency_shows_a_stall_that_service_time_hides() {
    let stall = Stall::new(Duration::from_secs(1), Duration::from_secs(1));
    let addr = start_http_server(Duration::ZERO, Some(stall));
    let load = HttpLoad::Rate {
        rate: 200.0,
        connections: 2,
    };
    let report = run_alone(run(Config::Http(http(
        addr,
        Duration::from_millis(3500),
        load,
    ))))
    .expect("runs");
    show(&report);
    let service = report
        .service_time
        .as_ref()
        .expect("open loop reports service time");
    // About 200 of ~700 planned requests were due during the stall and
    // waited for it: from the intended start, the stall is in the p99.
    assert!(
        report.latency.p99_us >= 700 * MS,
        "latency p99 {}",
        report.latency.p99_us
    );
    assert!(
        report.latency.max_us >= 900 * MS,
        "latency max {}",
        report.latency.max_us
    );
    // Only the two requests in flight when it began saw it while sent.
    assert!(service.p99_us < 200 * MS, "service p99 {}", service.p99_us);
    assert!(service.max_us >= 500 * MS, "service max {}", service.max_us);
    assert_eq!(report.summary.errors_total, 0);
}

#[test]
fn wrong_echo_bytes_are_counted_as_errors() {
    let corrupting = start_echo_server(true);
    let echo = |addr| EchoConfig {
        common: common(addr, Duration::from_secs(1)),
        connections: 2,
        size: 100,
        rate: None,
    };
    let report = run_alone(run(Config::Echo(echo(corrupting)))).expect("runs");
    show(&report);
    assert!(
        report.summary.errors.wrong_reply > 10,
        "{:?}",
        report.summary.errors
    );
    assert_eq!(report.summary.requests, 0);

    let honest = start_echo_server(false);
    let report = run_alone(run(Config::Echo(echo(honest)))).expect("runs");
    assert_eq!(
        report.summary.errors_total, 0,
        "{:?}",
        report.summary.errors
    );
    assert!(report.summary.requests > 10);
    assert_eq!(report.summary.bytes_received, report.summary.requests * 100);
}

#[test]
fn large_echo_messages_do_not_deadlock() {
    let addr = start_echo_server(false);
    let config = EchoConfig {
        common: common(addr, Duration::from_secs(1)),
        connections: 2,
        size: 1024 * 1024,
        rate: None,
    };
    let report = run_alone(run(Config::Echo(config))).expect("runs");
    assert_eq!(
        report.summary.errors_total, 0,
        "{:?}",
        report.summary.errors
    );
    assert!(report.summary.requests >= 2);
}

#[test]
fn a_refused_connection_is_counted_not_a_panic() {
    let addr = closed_port();
    let load = HttpLoad::Connections {
        connections: 2,
        spawn_rate: None,
    };
    let report =
        run_alone(run(Config::Http(http(addr, Duration::from_secs(1), load)))).expect("runs");
    assert!(
        report.summary.errors.refused >= 2,
        "{:?}",
        report.summary.errors
    );
    assert_eq!(report.summary.requests, 0);
    // The pause between attempts keeps the count to about 20 per client.
    assert!(
        report.summary.errors.refused <= 100,
        "{:?}",
        report.summary.errors
    );
}

#[test]
fn hold_keeps_connections_and_checks_a_sample() {
    let addr = start_echo_server(false);
    let config = HoldConfig {
        common: common(addr, Duration::from_millis(2500)),
        connections: 50,
        connect_rate: 200.0,
        sample: 10,
    };
    let report = run_alone(run(Config::Hold(config))).expect("runs");
    show(&report);
    let hold = report
        .hold
        .as_ref()
        .expect("hold mode reports held connections");
    assert_eq!(hold.opened, 50);
    assert_eq!(hold.dropped, 0);
    assert_eq!(hold.open_at_end, 50);
    assert!(hold.checks_sent >= 10, "{hold:?}");
    assert_eq!(hold.checks_answered, hold.checks_sent, "{hold:?}");
    assert_eq!(report.summary.peak_active_clients, 50);
}

#[test]
fn hold_counts_refused_connects() {
    let config = HoldConfig {
        common: common(closed_port(), Duration::from_secs(1)),
        connections: 5,
        connect_rate: 100.0,
        sample: 5,
    };
    let report = run_alone(run(Config::Hold(config))).expect("runs");
    let hold = report
        .hold
        .as_ref()
        .expect("hold mode reports held connections");
    assert_eq!((hold.opened, hold.refused), (0, 5), "{hold:?}");
}

/// `sh` with two background children, killed as a whole process group
/// when the test ends (also when it fails).
struct ProcessTree(Child);

impl ProcessTree {
    fn start() -> Self {
        use std::os::unix::process::CommandExt;
        let child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .expect("sh runs");
        ProcessTree(child)
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.0.id()).expect("pids fit in i32")
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "samples the server through /proc")]
fn pid_sums_the_children_of_a_forking_process() {
    let tree = ProcessTree::start();
    let mut sampler = ProcessTreeSampler::new(tree.pid()).expect("sh is running");
    // The shell needs a moment to fork its two children.
    let mut sample = sampler.sample().expect("sample");
    for _ in 0..50 {
        if sample.processes == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        sample = sampler.sample().expect("sample");
    }
    assert_eq!(sample.processes, 3, "{sample:?}");
    assert_eq!(sample.threads, 3, "one thread each: {sample:?}");
    assert!(
        sample.fds >= 3 * 3,
        "stdin, stdout, stderr each: {sample:?}"
    );
    assert!(sample.rss_bytes > 0);

    // The same through a run with --pid.
    let addr = start_echo_server(false);
    let mut config = EchoConfig {
        common: common(addr, Duration::from_millis(1500)),
        connections: 1,
        size: 10,
        rate: None,
    };
    config.common.pid = Some(tree.pid());
    let report = run_alone(run(Config::Echo(config))).expect("runs");
    let server = report.resources.server.as_ref().expect("--pid was given");
    assert_eq!(server.processes.peak, 3.0, "{server:?}");
    assert_eq!(server.threads.peak, 3.0, "{server:?}");
    let first_row = report.series.first().expect("a row per second");
    assert_eq!(first_row.threads, Some(3));
    assert!(first_row.cpu_percent.is_some());
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "without /proc, --pid is a warning, not an error"
)]
fn a_missing_pid_is_an_error_before_the_run() {
    let addr = start_echo_server(false);
    let mut config = EchoConfig {
        common: common(addr, Duration::from_secs(1)),
        connections: 1,
        size: 10,
        rate: None,
    };
    // Above the kernel's pid_max, so certainly nobody.
    config.common.pid = Some(i32::MAX);
    let error = run_alone(run(Config::Echo(config))).expect_err("no such process");
    assert!(error.to_string().contains("no process"), "{error:#}");
}
