//! The command line of `bench`: `bench compare`, `bench race` and
//! `bench timelines`. Each turns its flags into options and hands them to
//! [`crate::compare`], [`crate::race`] or [`crate::timelines`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use durations::parse_duration;
use loadgen::HttpLoad;
use loadgen::duration::DurationRange;

use crate::compare::{self, CompareOptions, PlanRequest, Scenario, scenarios};
use crate::race::{Outsider, RaceOptions};
use crate::timelines::TimelineOptions;

/// Measures the eleven concurrency models with loadgen: one at a time
/// (compare), or several at once for a room to watch (race).
#[derive(Debug, Parser)]
#[command(name = "bench", version)]
pub struct Cli {
    /// Worker threads of the load generator's runtime (default: one per
    /// core). The servers run on the same cores.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start every model, put it under the same scenarios, stop it, and
    /// write tables and plots (JSON, CSV, Markdown, SVG) into a folder.
    #[command(after_help = COMPARE_HELP)]
    Compare(CompareArgs),
    /// Start several models at once, each on its own port, put the same
    /// HTTP load on each, and draw a live table (one line per second on a
    /// pipe); ends by itself after --duration with the final table.
    #[command(after_help = RACE_HELP)]
    Race(RaceArgs),
    /// Draw who waits where: per model, three clients at once against
    /// `--log debug`, one SVG per model from the server's own log lines.
    Timelines(TimelinesArgs),
}

/// Flags of `bench timelines`.
#[derive(Debug, Args)]
pub struct TimelinesArgs {
    /// Models to draw, comma-separated, by name or number, or all.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub models: Vec<String>,

    /// The fake DB's wait per request.
    #[arg(long, value_name = "DURATION", default_value = "300ms", value_parser = parse_duration)]
    pub db_latency: Duration,

    /// Where the SVGs and the table go (created if missing).
    #[arg(long, value_name = "DIR", default_value = "timelines")]
    pub out: PathBuf,

    /// Where the model binaries are.
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,
}

const RACE_HELP: &str = "\
The models run at the same time on the same cores (with the load generator),
so a race shows them side by side for a room to watch; `bench compare`
measures each alone. Default load: the lab's 100 users (think 5..15 s,
started 10 per second), a new connection per request. Keys: q quits.

Examples:
  bench race --models 01,03,07 --duration 60s
  bench race --models 01,07 --keep-alive
  bench race --models 03,07,09 --connections 200 --duration 20s
  bench race --models 07 --cmd 'python3 my_server.py --port {port}'
  bench race --models 01 --addr 127.0.0.1:8080";

/// Flags of `bench race`.
#[derive(Debug, Args)]
pub struct RaceArgs {
    /// Models to race, comma-separated, by name or number (07 = 07-epoll).
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          required_unless_present_any = ["cmd", "addr"])]
    pub models: Vec<String>,

    /// A server of your own to race too (repeatable): a shell command where
    /// `{port}` becomes a free port (without it, the command must print the
    /// contract's start-up line).
    #[arg(long, value_name = "COMMAND")]
    pub cmd: Vec<String>,

    /// A server already running to race too (repeatable); without its pid
    /// the table has no threads, memory or CPU for it.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Vec<std::net::SocketAddr>,

    /// How long the race runs.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Locust-like users per model (the default load: 100).
    #[arg(long, value_name = "N", conflicts_with_all = ["connections", "rate"])]
    pub users: Option<usize>,

    /// With users: think time (default 5s..15s, the lab's).
    #[arg(long, value_name = "MIN..MAX")]
    pub think: Option<DurationRange>,

    /// Closed loop without think time: N connections per model.
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    pub connections: Option<usize>,

    /// Open loop: R requests per second per model.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,

    /// Reuse connections (as Locust's users do) instead of one per request.
    #[arg(long)]
    pub keep_alive: bool,

    /// A request slower than this counts as a timeout error.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Where the model binaries are.
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,
}

const COMPARE_HELP: &str = "\
Scenarios (each cell starts the model fresh, loads it, stops it):

  lab         The lecture's Locust run: 100 users, think 5..15 s, fake DB
              300 ms, started at 10 per second; once with a new connection
              per request, once with keep-alive. Shows Little's law: about
              9.7 req/s at a 300 ms median for a concurrent model, 3.3 req/s
              and a median of many seconds for 01-blocking; and with
              keep-alive, how a thinking user holds a blocking worker until
              the server's 10 s idle timeout frees it (01, 03, 04, 05).
  http-sweep  Fake DB 300 ms, no think time, 1, 10, 100, 1000, 5000
              keep-alive connections, and 10000 for the models without a
              worker limit (bound 33,333 req/s). Throughput against the
              bound min(clients, workers) / 0.3 s: where each model stops
              scaling, and what stops it (server and loadgen CPU).
  http-open   Open loop: GET / on a plan of R requests per second, a new
              connection each; pools at their bound and twice it, the
              others at 1000 and 2000/s. Latency from the planned start
              (corrected) and from the send (uncorrected), late, unanswered
              and never-sent requests: coordinated omission in numbers.
  echo-sweep  64-byte echoes over 1, 10, 100, 1000 connections: no waiting,
              just system calls and scheduling; who spends the CPU.
  c10k        Hold 1000, 5000, 10000 idle connections (2000 connects/s):
              RSS, threads and fds per connection. A model that cannot get
              there (01 serves one client, 06 stops at FD_SETSIZE, thread
              limits) is reported with the reason.
  rpc-sweep   The RPC homework's question: JSON-RPC calls over 1, 10, 100,
              1000 connections, closed loop, once with query (fake DB
              300 ms, bound as in http-sweep) and once with func1 (no
              waiting): calls/s, latency, RSS, threads and CPU by clients.
  files       The lab assignment: --mode files, 100 keep-alive connections
              asking for a 4 KiB page, then for a 1 MiB file; nginx (one
              worker, sendfile) as a reference row where it is installed.

Every cell also gives the server's cost per request: CPU microseconds (user
+ system) and context switches (voluntary + involuntary), from /proc.

Full run: about 90 minutes on 2 cores.
--quick: the same matrix with cells of 1-8 s, about 13 minutes, rough numbers.

Output in --out: results.json (everything), results.csv (one row per cell),
results.md (a table per scenario, with what the numbers mean), and SVG
plots. Each says the machine and this command. Files are rewritten after
every cell, so an interrupted run keeps what it measured.

Examples:
  bench compare --quick --out /tmp/quick
  bench compare --scenario lab --models 01,07 --out /tmp/lab
  bench compare --scenario http-sweep --models 07-epoll --clients 10 --cell-duration 2s
  bench compare --scenario c10k --update --out docs/src/results
  bench compare --scenario lab --models 01,07 --exe mine=./my_server --out /tmp/mine";

/// Flags of `bench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Scenarios to run, comma-separated: lab, http-sweep, http-open,
    /// echo-sweep, c10k, rpc-sweep, files, or all.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub scenario: Vec<String>,

    /// Models to compare, comma-separated, by name or number (07 =
    /// 07-epoll), or all.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub models: Vec<String>,

    /// A server of your own compared like a model (repeatable): NAME=PATH,
    /// or PATH (named after its file). It must keep the contract's flags
    /// and print its start-up line, as `check --exe` verifies.
    #[arg(long, value_name = "[NAME=]PATH")]
    pub exe: Vec<String>,

    /// Client counts for every selected scenario instead of its own
    /// (lab: users; sweeps: connections; c10k: held connections).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub clients: Option<Vec<usize>>,

    /// Short cells (1-8 s): the whole matrix in about 13 minutes.
    #[arg(long)]
    pub quick: bool,

    /// The results folder (created if missing).
    #[arg(long, value_name = "DIR", default_value = "compare-results")]
    pub out: PathBuf,

    /// Where the model binaries are.
    #[arg(long, value_name = "DIR", default_value = "target/release")]
    pub bin_dir: PathBuf,

    /// Every cell's length (c10k: the hold after the last connect),
    /// instead of the scenario's.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub cell_duration: Option<Duration>,

    /// Re-measure only the selected cells and keep every other cell of the
    /// results.json already in --out (e.g. after fixing one scenario,
    /// without re-running the hour-long rest). The files then list every
    /// command that made them.
    #[arg(long)]
    pub update: bool,

    /// Measure nothing: rewrite results.md, results.csv and the plots from
    /// the results.json in --out (after changing how they are drawn).
    #[arg(long, conflicts_with = "update")]
    pub redraw: bool,
}

/// The comparison the flags ask for.
pub fn compare_options(
    args: &CompareArgs,
    threads: Option<usize>,
    command: String,
) -> anyhow::Result<CompareOptions> {
    let scenarios = if args.scenario.iter().any(|name| name == "all") {
        Scenario::ALL.to_vec()
    } else {
        args.scenario
            .iter()
            .map(|name| name.parse::<Scenario>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let mut models = scenarios::resolve_models(&args.models).map_err(anyhow::Error::msg)?;
    let outsiders = compare::outsiders(&args.exe).map_err(anyhow::Error::msg)?;
    models.extend(outsiders.iter().map(|(name, _)| name.clone()));
    if let Some(clients) = &args.clients
        && clients.contains(&0)
    {
        bail!("--clients must all be at least 1");
    }
    // nginx is the files scenario's reference row where it is installed;
    // without it the table simply has no such row.
    let nginx = if scenarios.contains(&Scenario::Files) {
        compare::reference::find_nginx()
    } else {
        None
    };
    Ok(CompareOptions {
        plan: PlanRequest {
            scenarios,
            models,
            clients: args.clients.clone(),
            quick: args.quick,
            cell_duration: args.cell_duration,
            nginx,
        },
        out: args.out.clone(),
        bin_dir: args.bin_dir.clone(),
        outsiders,
        command,
        threads,
        update: args.update,
    })
}

/// The race the flags ask for: the lab's users unless told otherwise.
pub fn race_options(args: &RaceArgs, threads: Option<usize>) -> anyhow::Result<RaceOptions> {
    // No models is none (not all of them) when outside servers race alone.
    let models = if args.models.is_empty() {
        Vec::new()
    } else {
        scenarios::resolve_models(&args.models).map_err(anyhow::Error::msg)?
    };
    let outsiders = args
        .cmd
        .iter()
        .map(|command| Outsider::Command(command.clone()))
        .chain(args.addr.iter().copied().map(Outsider::Running))
        .collect();
    let load = match (args.connections, args.rate) {
        (Some(connections), _) => HttpLoad::Connections {
            connections,
            spawn_rate: None,
        },
        (None, Some(rate)) => HttpLoad::Rate {
            rate,
            connections: 1000,
        },
        (None, None) => HttpLoad::Users {
            users: args.users.unwrap_or(100),
            think: args.think.unwrap_or(scenarios::THINK),
            spawn_rate: Some(scenarios::LAB_SPAWN_RATE),
        },
    };
    Ok(RaceOptions {
        models,
        bin_dir: args.bin_dir.clone(),
        load,
        keepalive: args.keep_alive,
        duration: args.duration,
        timeout: args.timeout,
        threads,
        outsiders,
    })
}

/// The command line as typed, quoted where a shell would need it.
fn command_line() -> String {
    std::env::args()
        .map(|argument| {
            if argument.is_empty()
                || argument.contains(|c: char| c.is_whitespace() || "'\"$`\\".contains(c))
            {
                format!("'{}'", argument.replace('\'', "'\\''"))
            } else {
                argument
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the binary does.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    match &cli.command {
        Command::Race(args) => crate::race::run_race(&race_options(args, cli.threads)?),
        Command::Timelines(args) => crate::timelines::run_timelines(&TimelineOptions {
            models: scenarios::resolve_models(&args.models).map_err(anyhow::Error::msg)?,
            bin_dir: args.bin_dir.clone(),
            out: args.out.clone(),
            db_latency: args.db_latency,
            command: command_line(),
        }),
        Command::Compare(args) if args.redraw => {
            let results = compare::output::read_results(&args.out)?;
            compare::output::write_all(&results, &args.out)?;
            println!("redrew {} from its results.json", args.out.display());
            Ok(())
        }
        Command::Compare(args) => {
            let options = compare_options(args, cli.threads, command_line())?;
            let results = compare::run_compare(&options)?;
            let failed = results
                .cells
                .iter()
                .filter(|result| result.headline.is_none())
                .count();
            println!(
                "{} cells, {failed} without numbers; results in {}",
                results.cells.len(),
                options.out.display()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
