//! `bench compare`: every model through the same scenarios, one cell at a
//! time, into a results folder a student can read.
//!
//! A cell is one model under one load: start the model's release binary
//! fresh (so its memory and threads belong to this cell alone), read its
//! start-up line, note its memory right away (the baseline), run the load
//! in-process with the server's pid so its process tree is sampled, stop
//! it with SIGTERM, and record everything, including how it stopped.
//!
//! Nothing is lost to a failing cell: a model that does not start, a load
//! that errors, a server that dies are all recorded with their reason and
//! the run goes on. After every cell the JSON, CSV, Markdown and plots are
//! written again, so an interrupted run keeps what it has measured.
//!
//! Module map: [`options`] and [`scenarios`] say what to run, [`server`]
//! (and [`reference`] for nginx) starts and stops a model, [`results`]
//! holds the numbers and judges each cell; [`output`] writes the files:
//! [`csv`], [`markdown`] (with [`sections`] per scenario, over [`table`])
//! and [`plot`] for the SVGs.

pub mod csv;
pub mod markdown;
pub mod options;
pub mod output;
pub mod plot;
pub mod reference;
pub mod results;
pub mod scenarios;
pub mod sections;
pub mod server;
pub mod table;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use loadgen::config::Config;
use loadgen::limits;
use loadgen::report::{Report, format_bytes, format_microseconds};
use loadgen::resources::ProcessTreeSampler;
use tokio::signal::unix::{Signal, SignalKind, signal};

pub use options::CompareOptions;
pub use results::{CellResult, Machine, Results};
pub use scenarios::{Cell, ModelSetup, PlanRequest, Scenario};
use server::{ModelServer, STARTUP_TIMEOUT, STOP_GRACE};

/// A load run stops by itself after its duration; if it has not returned
/// this long after that, the cell is recorded as stuck and the run goes on.
const CELL_CAP_MARGIN: Duration = Duration::from_secs(20);

/// Runs the comparison, writing the results folder after every cell.
pub fn run_compare(options: &CompareOptions) -> anyhow::Result<Results> {
    let cells = scenarios::plan(&options.plan);
    if cells.is_empty() {
        bail!("nothing to run: no scenario, model or client count selected");
    }
    let missing: Vec<&String> = options
        .plan
        .models
        .iter()
        .filter(|model| !binary(&options.bin_dir, &options.outsiders, model).is_file())
        .collect();
    if missing.len() == options.plan.models.len() {
        bail!(
            "no model binaries in {} (looked for {}); build them with `cargo build --release \
             --workspace` or point --bin-dir at them",
            options.bin_dir.display(),
            missing
                .iter()
                .map(|model| model.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("cannot create {}", options.out.display()))?;
    // The client holds up to 10,000 connections at once.
    limits::raise_open_file_limit();
    let runtime = loadgen::client_runtime(options.threads)?;

    // From here on Ctrl-C and SIGTERM do not kill the comparison: they end
    // the current cell, which stops its server (it runs in a process group
    // of its own and would not hear the terminal's Ctrl-C), and the results
    // so far are written before exiting.
    let mut interrupts = runtime.block_on(Interrupts::new())?;

    let machine = Machine::current();
    let mut results = Results::new(options, machine.clone(), cells.len());
    if options.update {
        let previous = output::read_results(&options.out)?;
        results.keep_unplanned(previous, &cells);
    }
    // The files scenario's document root, for the models and nginx alike.
    let docs = if cells.iter().any(|cell| cell.scenario == Scenario::Files) {
        Some(reference::DocumentRoot::create()?)
    } else {
        None
    };
    let place = Place {
        bin_dir: &options.bin_dir,
        outsiders: &options.outsiders,
        docs: docs
            .as_ref()
            .map_or(Path::new(""), |docs| docs.path.as_path()),
        nginx: options.plan.nginx.as_deref(),
    };
    let planned_seconds: f64 = cells.iter().map(cell_budget_seconds).sum();
    let started = Instant::now();
    let mut done_seconds = 0.0;
    eprintln!(
        "compare: {} cells, about {} of load plus start/stop; results in {}",
        cells.len(),
        format_minutes(planned_seconds),
        options.out.display()
    );
    for (index, cell) in cells.iter().enumerate() {
        let setup = scenarios::model_setup(&cell.model, machine.cores);
        let result = run_cell(&runtime, cell, &setup, &place, &mut interrupts);
        done_seconds += cell_budget_seconds(cell);
        // The ETA scales the remaining planned load time by how much longer
        // than planned the cells so far really took (start, stop, drain).
        let elapsed = started.elapsed().as_secs_f64();
        let remaining = (planned_seconds - done_seconds) * elapsed / done_seconds.max(1e-3);
        eprintln!(
            "[{}/{}] {}",
            index + 1,
            cells.len(),
            progress_line(&result, remaining)
        );
        results.add(result);
        results.elapsed_seconds = results.previous_seconds + elapsed;
        if let Err(error) = output::write_all(&results, &options.out) {
            eprintln!("compare: warning: {error:#}");
        }
        if interrupts.seen || runtime.block_on(interrupts.arrived_already()) {
            bail!(
                "interrupted after {} of {} cells; what was measured is in {}",
                index + 1,
                cells.len(),
                options.out.display()
            );
        }
    }
    results.complete = true;
    output::write_all(&results, &options.out)?;
    eprintln!(
        "compare: done in {}; wrote {}",
        format_minutes(started.elapsed().as_secs_f64()),
        options.out.display()
    );
    Ok(results)
}

/// The load time a cell is planned to take, for the ETA.
fn cell_budget_seconds(cell: &Cell) -> f64 {
    cell.duration.as_secs_f64() + 0.5
}

fn format_minutes(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else {
        format!(
            "{:.0} min {:02.0} s",
            (seconds / 60.0).floor(),
            seconds % 60.0
        )
    }
}

/// One line per cell on stderr: what ran, what it measured, how long.
fn progress_line(result: &CellResult, remaining_seconds: f64) -> String {
    let cell = &result.cell;
    let variant = if cell.variant().is_empty() {
        String::new()
    } else {
        format!(" {}", cell.variant())
    };
    let numbers = match (&result.headline, &result.error) {
        (Some(headline), _) if cell.scenario == Scenario::C10k => format!(
            "held {} of {}, echo checks answered {} of {}, RSS {}, {} threads{}",
            result.hold.as_ref().map_or(0, |hold| hold.open_at_end),
            cell.clients,
            result.hold.as_ref().map_or(0, |hold| hold.checks_answered),
            result.hold.as_ref().map_or(0, |hold| hold.checks_sent),
            headline
                .rss_peak_bytes
                .map_or_else(|| "-".to_string(), |rss| format_bytes(rss as f64)),
            headline.threads_peak.unwrap_or_default(),
            if result.reached == Some(false) {
                ", did not get there"
            } else {
                ""
            }
        ),
        (Some(headline), _) => format!(
            "{:.1}/s, p99 {}, {} errors{}",
            headline.requests_per_second,
            format_microseconds(headline.p99_us as f64),
            headline.errors,
            if result.saturated == Some(true) {
                ", saturated"
            } else {
                ""
            }
        ),
        (None, Some(error)) => format!("failed: {error}"),
        (None, None) => "no result".to_string(),
    };
    format!(
        "{}{} {} clients={}: {numbers}; {:.1} s, ETA {}",
        cell.scenario,
        variant,
        cell.model,
        cell.clients,
        result.elapsed_seconds,
        format_minutes(remaining_seconds)
    )
}

/// Where a cell's server comes from and what it serves.
struct Place<'a> {
    /// The model binaries.
    bin_dir: &'a Path,
    /// Servers of other origins, by name.
    outsiders: &'a [(String, PathBuf)],
    /// The files scenario's document root.
    docs: &'a Path,
    /// nginx, found once when the plan was made.
    nginx: Option<&'a Path>,
}

/// Starts the cell's server: a model binary, or nginx for the files
/// scenario's reference row (its command line then replaces the model's
/// flags in the result).
fn start_server(
    cell: &Cell,
    place: &Place,
    result: &mut CellResult,
) -> anyhow::Result<ModelServer> {
    if cell.model == scenarios::NGINX {
        let binary = place
            .nginx
            .context("the plan has nginx cells but no nginx")?;
        let (server, args) = reference::start_nginx(binary, place.docs, STARTUP_TIMEOUT)?;
        result.server_args = args;
        return Ok(server);
    }
    let binary = binary(place.bin_dir, place.outsiders, &cell.model);
    ModelServer::start(&binary, &result.server_args, STARTUP_TIMEOUT)
}

/// A model's binary in `bin_dir`, or an outside server's own path.
fn binary(bin_dir: &Path, outsiders: &[(String, PathBuf)], model: &str) -> PathBuf {
    outsiders
        .iter()
        .find(|(name, _)| name == model)
        .map_or_else(|| bin_dir.join(model), |(_, path)| path.clone())
}

/// `--exe [NAME=]PATH` values -> (name, path); the name defaults to the
/// file's, and must not be a model's.
pub fn outsiders(values: &[String]) -> Result<Vec<(String, PathBuf)>, String> {
    values
        .iter()
        .map(|value| {
            let (name, path) = match value.split_once('=') {
                Some((name, path)) => (name.to_string(), PathBuf::from(path)),
                None => {
                    let path = PathBuf::from(value);
                    let name = path
                        .file_name()
                        .map_or_else(|| value.clone(), |name| name.to_string_lossy().into_owned());
                    (name, path)
                }
            };
            if scenarios::MODELS.contains(&name.as_str()) || name == scenarios::NGINX {
                return Err(format!("--exe {value}: {name} is already a model's name"));
            }
            if !path.is_file() {
                return Err(format!("--exe {value}: {} is not a file", path.display()));
            }
            Ok((name, path))
        })
        .collect()
}

/// Runs one cell; never fails: what went wrong is in the result.
fn run_cell(
    runtime: &tokio::runtime::Runtime,
    cell: &Cell,
    setup: &ModelSetup,
    place: &Place,
    interrupts: &mut Interrupts,
) -> CellResult {
    let started = Instant::now();
    let mut result = CellResult::new(cell.clone(), setup, cell.server_args(setup, place.docs));
    let mut server = match start_server(cell, place, &mut result) {
        Ok(server) => server,
        Err(error) => {
            result.error = Some(format!("did not start: {error:#}"));
            result.elapsed_seconds = started.elapsed().as_secs_f64();
            return result;
        }
    };
    result.startup_line = Some(server.startup_line().to_string());
    // The baseline: what the server costs before any client connects.
    result.baseline = ProcessTreeSampler::new(server.pid)
        .and_then(|mut sampler| sampler.sample())
        .ok();

    let config = cell.load(server.addr(), server.pid);
    let cap = cell.duration + CELL_CAP_MARGIN;
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = tokio::time::timeout(cap, run_load(config)) => Some(outcome),
            () = interrupts.wait() => None,
        }
    });
    match outcome {
        None => result.error = Some("interrupted (Ctrl-C or SIGTERM)".to_string()),
        Some(Ok(Ok(report))) => result.record(report),
        Some(Ok(Err(error))) => result.error = Some(format!("{error:#}")),
        Some(Err(_)) => {
            result.error = Some(format!(
                "the load did not finish within its cap of {:.0} s; the model is recorded as \
                 stuck",
                cap.as_secs_f64()
            ));
            result.saturated = Some(true);
        }
    }
    // The clients have closed their connections; every socket this cell
    // left in TIME_WAIT is still there (they last a minute).
    result.time_wait = time_wait_on_port(server.addr().port());
    if !server.is_running() && result.error.is_none() {
        result.error = Some("the server died during the cell".to_string());
    }
    result.stopped = Some(server.stop(STOP_GRACE));
    result.server_stderr = server.stderr_tail();
    result.assess();
    result.elapsed_seconds = started.elapsed().as_secs_f64();
    result
}

/// Sockets in TIME_WAIT to or from `port`, from /proc/net/tcp: the ones
/// this cell's connections left behind, whichever side closed first. The
/// machine-wide count in the report also sees other programs' sockets.
/// `None` where there is no /proc.
#[cfg(not(target_os = "linux"))]
fn time_wait_on_port(_port: u16) -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn time_wait_on_port(port: u16) -> Option<u64> {
    let sockets = procfs::net::tcp().ok()?;
    let count = sockets
        .iter()
        .filter(|socket| {
            socket.state == procfs::net::TcpState::TimeWait
                && (socket.local_address.port() == port || socket.remote_address.port() == port)
        })
        .count();
    Some(count as u64)
}

/// SIGINT and SIGTERM, caught for the whole comparison.
struct Interrupts {
    interrupt: Signal,
    terminate: Signal,
    seen: bool,
}

impl Interrupts {
    /// Must run inside the runtime.
    async fn new() -> anyhow::Result<Self> {
        Ok(Interrupts {
            interrupt: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
            seen: false,
        })
    }

    /// Returns when either signal arrives.
    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        self.seen = true;
    }

    /// Whether a signal arrived between cells (while no one was waiting).
    async fn arrived_already(&mut self) -> bool {
        tokio::time::timeout(Duration::ZERO, self.wait())
            .await
            .is_ok()
    }
}

async fn run_load(config: Config) -> anyhow::Result<Report> {
    loadgen::run(config).await
}
