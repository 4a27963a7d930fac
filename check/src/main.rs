//! `check`: the conformance suite as a tool for a server the workspace did
//! not build, in any language. The same check functions the models' `cargo
//! test` runs (the `conformance` crate), one at a time, each under a
//! deadline, with a report a student can learn from and JUnit/JSON for the
//! teacher who grades a hundred of them.

mod report;
mod run;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conformance::catalog::{self, Check};
use conformance::{Settings, Shape, Target};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::report::Outcome;

const ABOUT: &str = "Checks a server against the workspace's contract (the book's \
\"The contract\" chapter): echo, the fake-DB HTTP page, files, JSON-RPC, timeouts, signals \
and the concurrency shape. One line per check (pass, FAIL, skipped), a summary \
`N passed, M failed, K skipped`, exit 0 if nothing failed, 1 if something did, 2 for bad \
usage.";

const AFTER: &str = "\
Two ways to point it at a server:

  --exe PATH [ARGS...]   a program that keeps the contract's flags (--addr, --mode,
                         --db-latency, --idle-timeout, --root, --log) and prints
                         `listening on ADDR ... pid=PID` once it listens. Each check starts
                         it as `PATH ARGS... --addr 127.0.0.1:0 --mode M ...`, talks to it,
                         signals it and stops it. Every check applies. Put --exe last:
                         everything after PATH goes to the server.
  --addr HOST:PORT --mode M
                         a server that is already running. Checks that need their own
                         flags, a signal or the server's log are skipped (\"needs --exe\").
                         State its settings (--idle-timeout, --db-latency, --root) so the
                         timing and files checks know what to expect.

Examples:
  check --shape unlimited --exe target/release/07-epoll
  check --mode http --shape unlimited --exe examples/python/lab_server.py
  check --only http_ --exe python3 my_server.py
  check --addr 127.0.0.1:8080 --mode files --root /tmp/www
  check --junit report.xml --json report.json --exe ./server

A failure says what the check sent, what came back (first bytes and when), the rule
and the book section that explains it. Ctrl-C stops every server the checker started.";

#[derive(Debug, Parser)]
#[command(name = "check", version, about = ABOUT, after_help = AFTER)]
struct Cli {
    /// The server program and its own arguments (put this last).
    #[arg(
        long,
        value_name = "PATH [ARGS...]",
        num_args = 1..,
        allow_hyphen_values = true,
        conflicts_with = "addr",
        required_unless_present_any = ["addr", "list"]
    )]
    exe: Vec<String>,

    /// A server already running there (loopback or your own machine).
    #[arg(long, value_name = "HOST:PORT", requires = "mode")]
    addr: Option<SocketAddr>,

    /// With --addr: the mode the server runs. With --exe: the modes it
    /// offers, comma-separated (default: all); the others' checks are
    /// skipped.
    #[arg(long, value_name = "MODE[,MODE...]", value_delimiter = ',',
          value_parser = ["echo", "http", "files", "rpc", "axum"])]
    mode: Vec<String>,

    /// The concurrency shape the server claims: `one` (01), `at-most N`
    /// (a pool of N), `unlimited` (an event loop, a thread per client).
    /// Without it the shape check is skipped.
    #[arg(long, value_name = "SHAPE", num_args = 1..=2)]
    shape: Vec<String>,

    /// Only the checks whose name contains one of these (comma-separated
    /// or repeated); see --list.
    #[arg(long, value_name = "PATTERN", value_delimiter = ',')]
    only: Vec<String>,

    /// List the checks (with --only: those selected) with their mode and
    /// rule, and exit.
    #[arg(long)]
    list: bool,

    /// With --addr: the server's idle timeout (default: the contract's 10s).
    #[arg(long, value_name = "DURATION", requires = "addr", value_parser = durations::parse_duration)]
    idle_timeout: Option<Duration>,

    /// With --addr: the server's fake-DB latency (default: 300ms).
    #[arg(long, value_name = "DURATION", requires = "addr", value_parser = durations::parse_duration)]
    db_latency: Option<Duration>,

    /// With --addr --mode files: the directory the server serves. It must
    /// be empty: each files check writes its tree there (and `secret.txt`
    /// beside it) and removes it after.
    #[arg(long, value_name = "DIR", requires = "addr")]
    root: Option<PathBuf>,

    /// How long one check may take before it fails as hung (default: 60s
    /// plus 4 idle timeouts).
    #[arg(long, value_name = "DURATION", value_parser = durations::parse_duration)]
    deadline: Option<Duration>,

    /// Also write the results as JUnit XML (for autograders and CI).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Also write the results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// A usage error the parser cannot see: one line, exit 2.
fn usage(message: &str) -> ExitCode {
    eprintln!("error: {message} (see check --help)");
    ExitCode::from(2)
}

fn parse_shape(words: &[String]) -> Result<Option<Shape>, String> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        [] => Ok(None),
        ["one"] => Ok(Some(Shape::OneAtATime)),
        ["unlimited"] => Ok(Some(Shape::Unlimited)),
        ["at-most", count] => match count.parse() {
            Ok(count) if count > 0 => Ok(Some(Shape::AtMost(count))),
            _ => Err(format!(
                "--shape at-most {count}: N must be a number above 0"
            )),
        },
        _ => Err(format!(
            "--shape {}: expected one, unlimited or at-most N",
            words.join(" ")
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let shape = match parse_shape(&cli.shape) {
        Ok(shape) => shape,
        Err(message) => return usage(&message),
    };
    let selected: Vec<Check> = catalog::CHECKS
        .iter()
        .chain([&catalog::SHAPE])
        .filter(|check| cli.only.is_empty() || cli.only.iter().any(|p| check.name.contains(p)))
        .copied()
        .collect();
    if selected.is_empty() {
        return usage(&format!("--only {} matches no check", cli.only.join(",")));
    }
    if cli.list {
        for check in &selected {
            println!("{:<46} {:<6} {}", check.name, check.mode, check.rule);
        }
        return ExitCode::SUCCESS;
    }
    let (target, described) = match make_target(&cli) {
        Ok(made) => made,
        Err(message) => return usage(&message),
    };
    let deadline = cli
        .deadline
        .unwrap_or(Duration::from_secs(60) + target.idle_timeout() * 4);

    stop_servers_on_signals();
    run::install_panic_hook();
    conformance::QUIET.store(true, std::sync::atomic::Ordering::Relaxed);

    println!(
        "checking {described}: {} checks, at most {deadline:?} each",
        selected.len()
    );
    let mut outcomes = Vec::new();
    for check in selected {
        let (verdict, elapsed) = match shape {
            Some(shape) if check.name == catalog::SHAPE.name => run::run(
                check.name,
                move |target| conformance::concurrency_shape(target, shape, &[]),
                &target,
                deadline,
            ),
            _ => run::run(check.name, check.run, &target, deadline),
        };
        let outcome = Outcome {
            check,
            verdict,
            elapsed,
        };
        print!("{}", report::text(&outcome));
        let _ = std::io::stdout().flush();
        outcomes.push(outcome);
    }
    conformance::kill_every_started_server();
    println!("\n{}", report::summary(&outcomes));

    if let Some(path) = &cli.junit
        && let Err(error) = std::fs::write(path, report::junit(&described, &outcomes))
    {
        eprintln!("error: cannot write {}: {error}", path.display());
        return ExitCode::from(2);
    }
    if let Some(path) = &cli.json {
        let text = format!("{:#}\n", report::json(&described, &outcomes));
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    let (_, failed, _) = report::counts(&outcomes);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The target and how the report names it.
fn make_target(cli: &Cli) -> Result<(Target, String), String> {
    if let Some(addr) = cli.addr {
        let [mode] = cli.mode.as_slice() else {
            return Err("--addr needs exactly one --mode: the one the server runs".into());
        };
        if let Some(root) = &cli.root
            && !root.is_dir()
        {
            return Err(format!("--root {}: not a directory", root.display()));
        }
        let settings = Settings {
            db_latency: cli.db_latency,
            idle_timeout: cli.idle_timeout,
            root: cli.root.clone(),
        };
        let described = format!("the server at {addr} (--mode {mode})");
        return Ok((Target::running(addr, mode, settings), described));
    }
    let Some((program, args)) = cli.exe.split_first() else {
        return Err("give --exe PATH or --addr HOST:PORT".into());
    };
    if program.contains('/') && !std::path::Path::new(program).is_file() {
        return Err(format!("--exe {program}: no such file"));
    }
    // A bare name is looked up on PATH, as the shell would: better one
    // line now than every check failing with "cannot start".
    let on_path = || {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    if !program.contains('/') && !on_path() {
        return Err(format!("--exe {program}: not found on PATH"));
    }
    let modes = (!cli.mode.is_empty()).then(|| cli.mode.clone());
    let described = cli.exe.join(" ");
    Ok((Target::command(program, args, modes), described))
}

/// Ctrl-C (or a kill) must not leave a started server behind: the servers
/// run in process groups of their own, which the terminal's Ctrl-C does not
/// reach. So SIGINT, SIGTERM and SIGHUP go to one thread, which kills the
/// started servers and exits. (Not by blocking the signals: a blocked mask
/// is inherited by the servers, and a Python server would never see the
/// SIGTERM its check sends.)
fn stop_servers_on_signals() {
    let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("warning: cannot take Ctrl-C ({error}); a Ctrl-C may leave a server running");
            return;
        }
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            conformance::kill_every_started_server();
            eprintln!("\nsignal {signal}: stopped every server the checker started");
            std::process::exit(130);
        }
    });
}
