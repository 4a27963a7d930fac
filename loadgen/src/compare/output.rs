//! The results of a comparison and the files they are written to:
//! `results.json` (everything, including each cell's full report),
//! `results.csv` (one row per cell, long format), `results.md` (a table per
//! scenario with the sentences that say what the numbers mean) and the
//! SVG plots from [`super::plot`].
//!
//! The judgement of a cell (its Little's-law bound, whether it saturated,
//! whether c10k got there and if not why) is made here, once, so the
//! tables, the CSV and the plots all say the same.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::CompareOptions;
use super::scenarios::{Cell, DB_LATENCY, FileKind, IDLE_TIMEOUT, ModelSetup, Scenario, THINK};
use super::server::Stopped;
use crate::report::{Headline, HoldSummary, Report, format_bytes, format_microseconds};
use crate::resources::TreeSample;

/// A cell counts as saturated when it served less than this share of what
/// its clients asked for.
pub const SATURATION_SHARE: f64 = 0.8;

/// The machine the numbers come from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub kernel: String,
    pub cpu_model: String,
    pub memory_bytes: Option<u64>,
}

impl Machine {
    pub fn current() -> Self {
        // The CPU model and memory come from /proc; elsewhere they are
        // left unknown rather than guessed.
        #[cfg(target_os = "linux")]
        let (cpu_model, memory_bytes) = {
            use procfs::Current;
            let cpu_model = procfs::CpuInfo::current()
                .ok()
                .and_then(|info| info.model_name(0).map(ToString::to_string));
            let memory_bytes = procfs::Meminfo::current()
                .ok()
                .map(|meminfo| meminfo.mem_total);
            (cpu_model, memory_bytes)
        };
        #[cfg(not(target_os = "linux"))]
        let (cpu_model, memory_bytes) = (None::<String>, None);
        let cpu_model = cpu_model.unwrap_or_else(|| "unknown CPU".to_string());
        let kernel = crate::limits::kernel_version();
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            kernel,
            cpu_model,
            memory_bytes,
        }
    }

    /// `2 cores (AMD EPYC ...), Linux 6.1.0, 4.0 GiB`.
    pub fn describe(&self) -> String {
        let memory = self
            .memory_bytes
            .map(|bytes| format!(", {} RAM", format_bytes(bytes as f64)))
            .unwrap_or_default();
        format!(
            "{} cores ({}), Linux {}{memory}",
            self.cores, self.cpu_model, self.kernel
        )
    }

    /// The caveat that goes next to every number.
    pub fn sharing_note(&self) -> String {
        format!(
            "the load generator and the server share these {} cores, so CPU-bound numbers are \
             lower bounds and ratios between models mean more than absolute values",
            self.cores
        )
    }
}

/// The whole comparison: how it was made and every cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub command: String,
    /// Later `--update` runs that re-measured some cells, in order.
    #[serde(default)]
    pub updated_by: Vec<String>,
    /// Load time of the cells kept from earlier runs.
    #[serde(default)]
    pub previous_seconds: f64,
    pub quick: bool,
    pub machine: Machine,
    pub planned_cells: usize,
    pub finished_cells: usize,
    /// False while running or if interrupted.
    pub complete: bool,
    pub elapsed_seconds: f64,
    pub cells: Vec<CellResult>,
}

impl Results {
    pub fn new(options: &CompareOptions, machine: Machine, planned_cells: usize) -> Self {
        Results {
            command: options.command.clone(),
            updated_by: Vec::new(),
            previous_seconds: 0.0,
            quick: options.plan.quick,
            machine,
            planned_cells,
            finished_cells: 0,
            complete: false,
            elapsed_seconds: 0.0,
            cells: Vec::new(),
        }
    }

    /// `--update`: start from an earlier run's results, keeping its cells
    /// except those planned now (they are measured again and appended).
    /// The earlier command stays first; this one is recorded as an update.
    pub fn keep_unplanned(&mut self, previous: Results, planned: &[Cell]) {
        let measured_again = |kept: &CellResult| {
            planned.iter().any(|cell| {
                cell.scenario == kept.cell.scenario
                    && cell.model == kept.cell.model
                    && cell.clients == kept.cell.clients
                    && cell.keepalive == kept.cell.keepalive
                    && cell.call == kept.cell.call
                    && cell.file == kept.cell.file
            })
        };
        let new_command = std::mem::replace(&mut self.command, previous.command);
        self.updated_by = previous.updated_by;
        self.updated_by.push(new_command);
        self.quick |= previous.quick;
        self.cells = previous
            .cells
            .into_iter()
            .filter(|kept| !measured_again(kept))
            .collect();
        self.previous_seconds = self.cells.iter().map(|kept| kept.elapsed_seconds).sum();
        self.planned_cells += self.cells.len();
        self.finished_cells = self.cells.len();
    }

    /// Every command that made these results: the run, then its updates.
    pub fn commands(&self) -> String {
        let mut text = format!("`{}`", self.command);
        for update in &self.updated_by {
            text.push_str(&format!(", updated by `{update}`"));
        }
        text
    }

    /// One line for the top of every file and the caption of every plot.
    pub fn provenance(&self) -> String {
        format!(
            "{}{}; {}",
            if self.quick {
                "QUICK RUN (short cells, rough numbers); "
            } else {
                ""
            },
            self.machine.describe(),
            self.commands()
        )
    }

    fn cells_of(&self, scenario: Scenario) -> impl Iterator<Item = &CellResult> {
        self.cells
            .iter()
            .filter(move |result| result.cell.scenario == scenario)
    }

    /// Whether `cell` has the most clients of its scenario (the headline).
    fn is_largest(&self, cell: &Cell) -> bool {
        Some(cell.clients)
            == self
                .cells_of(cell.scenario)
                .map(|other| other.cell.clients)
                .max()
    }
}

/// One model under one load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellResult {
    pub cell: Cell,
    /// The server's flags (after the binary's name).
    pub server_args: Vec<String>,
    /// Requests the model serves at once (`None`: no worker limit).
    pub capacity: Option<usize>,
    pub startup_line: Option<String>,
    /// The server right after start, before any client.
    pub baseline: Option<TreeSample>,
    pub headline: Option<Headline>,
    /// Errors by kind, e.g. `timeout 12, refused 3`.
    pub errors_by_kind: String,
    pub measured_seconds: f64,
    /// Most sockets in TIME_WAIT on the whole machine during the cell.
    pub time_wait_peak: Option<u64>,
    /// Sockets in TIME_WAIT to or from the server's port at the end of the
    /// load: what this cell's connections left behind.
    pub time_wait: Option<u64>,
    pub loadgen_cpu_mean_percent: Option<f64>,
    /// HTTP: clients / (300 ms + mean think), what the clients ask for.
    pub demand_rps: Option<f64>,
    /// HTTP: min(clients, capacity) / 300 ms, no more than the demand.
    pub bound_rps: Option<f64>,
    /// Measured / bound.
    pub ratio: Option<f64>,
    pub saturated: Option<bool>,
    pub saturation_reason: Option<String>,
    /// c10k: what happened to the held connections.
    pub hold: Option<HoldSummary>,
    /// c10k: (peak RSS - baseline RSS) / connections held.
    pub rss_per_connection_bytes: Option<f64>,
    /// c10k: all connections held and answering at the end.
    pub reached: Option<bool>,
    /// c10k: why not.
    pub stopped_reason: Option<String>,
    pub stopped: Option<Stopped>,
    /// The server's last stderr lines (it runs with `--log warn`).
    pub server_stderr: Vec<String>,
    /// Why the cell has no numbers (start failure, load error, cap).
    pub error: Option<String>,
    /// Wall time of the cell, start to stop.
    pub elapsed_seconds: f64,
    /// The load generator's full report, with the per-second series.
    pub report: Option<Report>,
}

impl CellResult {
    pub fn new(cell: Cell, setup: &ModelSetup, server_args: Vec<String>) -> Self {
        CellResult {
            cell,
            server_args,
            capacity: setup.capacity,
            startup_line: None,
            baseline: None,
            headline: None,
            errors_by_kind: String::new(),
            measured_seconds: 0.0,
            time_wait_peak: None,
            time_wait: None,
            loadgen_cpu_mean_percent: None,
            demand_rps: None,
            bound_rps: None,
            ratio: None,
            saturated: None,
            saturation_reason: None,
            hold: None,
            rss_per_connection_bytes: None,
            reached: None,
            stopped_reason: None,
            stopped: None,
            server_stderr: Vec::new(),
            error: None,
            elapsed_seconds: 0.0,
            report: None,
        }
    }

    /// Takes the numbers out of a finished load run.
    pub fn record(&mut self, report: Report) {
        self.headline = Some(report.headline());
        self.errors_by_kind = report.summary.errors.describe();
        self.measured_seconds = report.summary.measured_seconds;
        self.time_wait_peak = Some(report.resources.time_wait_sockets.peak as u64);
        self.loadgen_cpu_mean_percent = report.resources.loadgen_cpu_percent.map(|cpu| cpu.mean);
        self.hold = report.hold.clone();
        self.report = Some(report);
    }

    /// Bound, ratio, saturation, and for c10k how far it got and why.
    pub fn assess(&mut self) {
        self.demand_rps = self.cell.demand_rps();
        self.bound_rps = self.cell.bound_rps(self.capacity);
        let Some(headline) = self.headline.clone() else {
            return;
        };
        let errors = self
            .report
            .as_ref()
            .map(|report| report.summary.errors.clone())
            .unwrap_or_default();
        let rps = headline.requests_per_second;
        self.ratio = self.bound_rps.map(|bound| rps / bound.max(1e-9));
        let mut reasons = Vec::new();
        match self.cell.scenario {
            Scenario::Lab
            | Scenario::HttpSweep
            | Scenario::HttpOpen
            | Scenario::EchoSweep
            | Scenario::RpcSweep
            | Scenario::Files => {
                if let Some(demand) = self.demand_rps
                    && rps < SATURATION_SHARE * demand
                {
                    reasons.push(format!(
                        "served {rps:.1} of the {demand:.1} req/s its clients asked for"
                    ));
                }
                if rps == 0.0 {
                    reasons.push("completed nothing".to_string());
                }
                if errors.timeout > 0 {
                    reasons.push(format!(
                        "{} requests waited longer than {} s",
                        errors.timeout,
                        self.cell.timeout.as_secs()
                    ));
                }
                if errors.refused + errors.reset + errors.closed > 0 {
                    reasons.push(format!(
                        "connections refused, reset or closed: {}",
                        self.errors_by_kind
                    ));
                }
                self.saturated = Some(!reasons.is_empty());
                self.saturation_reason = (!reasons.is_empty()).then(|| reasons.join("; "));
            }
            Scenario::C10k => self.assess_hold(&headline),
        }
    }

    fn assess_hold(&mut self, headline: &Headline) {
        let Some(hold) = self.hold.clone() else {
            return;
        };
        let held = hold.open_at_end;
        if let (Some(peak), Some(baseline)) = (headline.rss_peak_bytes, &self.baseline)
            && held > 0
        {
            self.rss_per_connection_bytes =
                Some(peak.saturating_sub(baseline.rss_bytes) as f64 / held as f64);
        }
        let mut reasons = Vec::new();
        if hold.connect_failures > 0 {
            reasons.push(format!(
                "{} connects failed ({} refused, {} timed out): the listen queue was full, \
                 the server had stopped accepting",
                hold.connect_failures, hold.refused, hold.connect_timeouts
            ));
        }
        if hold.dropped > 0 {
            reasons.push(format!(
                "the server closed {} held connections",
                hold.dropped
            ));
        }
        // A check sent just before the end may still be on its way back;
        // beyond 1 % unanswered, connections are queued, not served.
        let in_flight_allowance = hold.checks_sent / 100;
        let unanswered = hold.checks_sent.saturating_sub(hold.checks_answered);
        if unanswered > in_flight_allowance {
            reasons.push(format!(
                "{unanswered} of {} echo checks went unanswered: connected but never served",
                hold.checks_sent
            ));
        }
        if let Some(line) = self
            .server_stderr
            .iter()
            .find(|line| !line.trim().is_empty())
        {
            reasons.push(format!("server said: {}", line.trim()));
        }
        let reached = held == hold.target && hold.dropped == 0 && unanswered <= in_flight_allowance;
        self.reached = Some(reached);
        self.saturated = Some(!reached);
        if !reached {
            self.stopped_reason = Some(if reasons.is_empty() {
                format!("held {held} of {}", hold.target)
            } else {
                reasons.join("; ")
            });
        }
    }

    /// `ok`, `saturated` or `failed`.
    pub fn status(&self) -> &'static str {
        match (&self.headline, self.saturated) {
            (None, _) => "failed",
            (Some(_), Some(true)) => "saturated",
            (Some(_), _) => "ok",
        }
    }
}

fn milliseconds(microseconds: u64) -> String {
    format!("{:.2}", microseconds as f64 / 1000.0)
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// The CSV header: the columns first, then what helps reading them.
pub const CSV_HEADER: &str = "model,scenario,variant,clients,rps,p50_ms,p90_ms,p99_ms,p999_ms,max_ms,\
errors,rss_bytes,threads,fds,cpu_percent,bound_rps,ratio,saturated,time_wait,\
rss_per_connection_bytes,held,status,reason,cpu_user_us_per_request,cpu_system_us_per_request,\
voluntary_switches_per_request,involuntary_switches_per_request";

pub fn to_csv(results: &Results) -> String {
    // Comment lines first (spreadsheets skip them), then a real CSV.
    let mut text = format!(
        "# {}\n# {}\n",
        results.provenance(),
        results.machine.sharing_note()
    );
    let mut csv = csv::Writer::from_writer(Vec::new());
    let _ = csv.write_record(CSV_HEADER.split(','));
    for result in &results.cells {
        let cell = &result.cell;
        let headline = result.headline.clone().unwrap_or_default();
        let has = result.headline.is_some();
        let number = |value: u64| {
            if has {
                milliseconds(value)
            } else {
                String::new()
            }
        };
        let reason = result
            .error
            .clone()
            .or_else(|| result.stopped_reason.clone())
            .or_else(|| result.saturation_reason.clone())
            .unwrap_or_default();
        let _ = csv.write_record([
            cell.model.clone(),
            cell.scenario.to_string(),
            cell.variant().to_string(),
            cell.clients.to_string(),
            if has {
                format!("{:.2}", headline.requests_per_second)
            } else {
                String::new()
            },
            number(headline.p50_us),
            number(headline.p90_us),
            number(headline.p99_us),
            number(headline.p999_us),
            number(headline.max_us),
            if has {
                headline.errors.to_string()
            } else {
                String::new()
            },
            optional(headline.rss_peak_bytes),
            optional(headline.threads_peak),
            optional(headline.fds_peak),
            optional(headline.cpu_mean_percent.map(|cpu| format!("{cpu:.1}"))),
            optional(result.bound_rps.map(|bound| format!("{bound:.2}"))),
            optional(result.ratio.map(|ratio| format!("{ratio:.3}"))),
            optional(result.saturated),
            optional(result.time_wait),
            optional(
                result
                    .rss_per_connection_bytes
                    .map(|bytes| format!("{bytes:.0}")),
            ),
            optional(result.hold.as_ref().map(|hold| hold.open_at_end)),
            result.status().to_string(),
            reason,
            optional(headline.cost.map(|cost| format!("{:.1}", cost.cpu_user_us))),
            optional(
                headline
                    .cost
                    .map(|cost| format!("{:.1}", cost.cpu_system_us)),
            ),
            optional(
                headline
                    .cost
                    .map(|cost| format!("{:.3}", cost.voluntary_switches)),
            ),
            optional(
                headline
                    .cost
                    .map(|cost| format!("{:.3}", cost.involuntary_switches)),
            ),
        ]);
    }
    // Writing into memory cannot fail, and every record is UTF-8.
    text.push_str(&String::from_utf8(csv.into_inner().unwrap_or_default()).unwrap_or_default());
    text
}

/// Reads the `results.json` of an earlier run in `folder`, for `--update`.
pub fn read_results(folder: &Path) -> anyhow::Result<Results> {
    let path = folder.join("results.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--update needs an earlier run's {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("cannot read {}", path.display()))
}

/// Writes `results.json`, `results.csv`, `results.md` and the plots.
pub fn write_all(results: &Results, folder: &Path) -> anyhow::Result<()> {
    let write = |name: &str, text: String| {
        let path = folder.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    let json = serde_json::to_string_pretty(results).context("cannot serialize the results")?;
    write("results.json", json + "\n")?;
    write("results.csv", to_csv(results))?;
    let plots = super::plot::draw_all(results, folder)?;
    write("results.md", super::output::markdown(results, &plots))?;
    Ok(())
}

fn rate(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn latency(headline: &Headline, microseconds: u64) -> String {
    if headline.requests_per_second == 0.0 {
        "-".to_string()
    } else {
        format_microseconds(microseconds as f64)
    }
}

fn resource(value: Option<u64>, format: impl Fn(u64) -> String) -> String {
    value.map_or_else(|| "-".to_string(), format)
}

fn bytes(value: u64) -> String {
    format_bytes(value as f64)
}

fn yes_no(result: &CellResult) -> String {
    match (result.saturated, &result.saturation_reason) {
        (Some(true), Some(reason)) => format!("yes: {reason}"),
        (Some(true), None) => "yes".to_string(),
        (Some(false), _) => "no".to_string(),
        (None, _) => "-".to_string(),
    }
}

/// A Markdown table over cells: the header row and its rule, then one row
/// per cell from `row`, or a `failed` row of the same width for a cell
/// without numbers (`row` returns `None`).
fn write_table<'a>(
    text: &mut String,
    headers: &[&str],
    cells: impl IntoIterator<Item = &'a CellResult>,
    row: impl Fn(&CellResult) -> Option<Vec<String>>,
) {
    let _ = writeln!(
        text,
        "| {} |\n|{}",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for result in cells {
        let line = match row(result) {
            Some(fields) => format!("| {} |", fields.join(" | ")),
            None => failed_row(result, headers.len()),
        };
        let _ = writeln!(text, "{line}");
    }
    text.push('\n');
}

/// What one request cost the server: `12+30` CPU microseconds (user +
/// system) and `1.0+0.02` context switches (voluntary + involuntary).
fn cost_cells(headline: &Headline) -> [String; 2] {
    match headline.cost {
        Some(cost) => [
            format!("{:.0}+{:.0}", cost.cpu_user_us, cost.cpu_system_us),
            format!(
                "{:.2}+{:.2}",
                cost.voluntary_switches, cost.involuntary_switches
            ),
        ],
        None => ["-".to_string(), "-".to_string()],
    }
}

/// A load table's headers: its own first columns, the six of
/// [`usage_cells`] with the unit the costs are per (`req`, `msg` or `call`),
/// then its last ones.
fn columns(first: &[&'static str], unit: &str, last: &[&'static str]) -> Vec<&'static str> {
    let mut headers = first.to_vec();
    headers.extend(usage_headers(unit));
    headers.extend(last);
    headers
}

fn usage_headers(unit: &str) -> [&'static str; 6] {
    let (cpu, switches) = match unit {
        "msg" => ("CPU us/msg (user+sys)", "switches/msg (vol+invol)"),
        "call" => ("CPU us/call (user+sys)", "switches/call (vol+invol)"),
        _ => ("CPU us/req (user+sys)", "switches/req (vol+invol)"),
    };
    ["RSS", "threads", "CPU", cpu, switches, "loadgen CPU"]
}

/// What the server spent in a cell, the same six columns in every load
/// table: peak memory and threads, CPU share, cost per request, and the
/// client's CPU share (a client near 100 % per thread is the bottleneck,
/// not the server).
fn usage_cells(result: &CellResult, headline: &Headline) -> [String; 6] {
    let [cpu, switches] = cost_cells(headline);
    [
        resource(headline.rss_peak_bytes, bytes),
        resource(headline.threads_peak, |threads| threads.to_string()),
        optional(headline.cpu_mean_percent.map(percent)),
        cpu,
        switches,
        optional(result.loadgen_cpu_mean_percent.map(percent)),
    ]
}

/// A CPU share, `42 %` (100 % = one core).
fn percent(cpu: f64) -> String {
    format!("{cpu:.0} %")
}

fn failed_row(result: &CellResult, columns: usize) -> String {
    let error = result
        .error
        .clone()
        .unwrap_or_else(|| "no result".to_string());
    let mut row = format!(
        "| {} | {} | **failed**: {} |",
        result.cell.model,
        result.cell.clients,
        error.replace('|', "/")
    );
    for _ in 3..columns {
        row.push_str(" |");
    }
    row
}

/// The expected lab throughput of a pool of `workers` blocking workers
/// with keep-alive: each worker is held by one user for a run of think
/// times under the idle timeout, then the idle timeout itself. With think
/// uniform in 5..15 s and a 10 s idle timeout, half the thinks end the hold:
/// on average 2 requests per hold, which lasts 2 x 0.3 s + 7.5 s (one short
/// think) + 10 s (the idle timeout) = 18.1 s.
pub fn lab_keepalive_expectation(workers: usize) -> f64 {
    let think_min = THINK.min.as_secs_f64();
    let think_max = THINK.max.as_secs_f64();
    let idle = IDLE_TIMEOUT.as_secs_f64();
    let ends_hold = (think_max - idle) / (think_max - think_min);
    let requests_per_hold = 1.0 / ends_hold;
    let short_thinks = requests_per_hold - 1.0;
    let hold_seconds = requests_per_hold * DB_LATENCY.as_secs_f64()
        + short_thinks * (think_min + idle) / 2.0
        + idle;
    workers as f64 * requests_per_hold / hold_seconds
}

fn lab_section(results: &Results, text: &mut String) {
    let lab: Vec<&CellResult> = results.cells_of(Scenario::Lab).collect();
    if lab.is_empty() {
        return;
    }
    let demand = lab
        .iter()
        .find_map(|result| result.cell.demand_rps())
        .unwrap_or(0.0);
    let users = lab.first().map_or(100, |result| result.cell.clients);
    let _ = writeln!(
        text,
        "## lab: the lecture's Locust run\n\n{users} users, each requests `GET /` (fake DB {} ms), \
         thinks {THINK} and requests again; users start at {} per second. Little's law: \
         {users} users / ({} s think + {} s) = **{demand:.1} req/s** asked for; the bound of \
         a model with W workers is W / {} s, no more than that.\n",
        DB_LATENCY.as_millis(),
        super::scenarios::LAB_SPAWN_RATE,
        (THINK.min + THINK.max).as_secs_f64() / 2.0,
        DB_LATENCY.as_secs_f64(),
        DB_LATENCY.as_secs_f64(),
    );
    for keepalive in [false, true] {
        let rows: Vec<&&CellResult> = lab
            .iter()
            .filter(|result| result.cell.keepalive == keepalive)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let first = rows[0];
        let _ = writeln!(
            text,
            "### {}\n\ncell {} of which {} warm-up; request timeout {} s.\n",
            if keepalive {
                "with keep-alive (as Locust's client does)"
            } else {
                "a new connection per request (as the lecture's servers close after each reply)"
            },
            crate::duration::format_duration(first.cell.duration),
            crate::duration::format_duration(first.cell.warmup),
            first.cell.timeout.as_secs()
        );
        write_table(
            text,
            &[
                "model",
                "req/s",
                "bound",
                "measured / bound",
                "p50",
                "p90",
                "p99",
                "max",
                "errors",
                "threads",
                "TIME_WAIT",
                "saturated",
            ],
            rows.iter().map(|result| **result),
            |result| {
                let headline = result.headline.as_ref()?;
                Some(vec![
                    result.cell.model.clone(),
                    rate(headline.requests_per_second),
                    optional(result.bound_rps.map(rate)),
                    optional(result.ratio.map(|ratio| format!("{ratio:.2}"))),
                    latency(headline, headline.p50_us),
                    latency(headline, headline.p90_us),
                    latency(headline, headline.p99_us),
                    latency(headline, headline.max_us),
                    headline.errors.to_string(),
                    resource(headline.threads_peak, |threads| threads.to_string()),
                    optional(result.time_wait),
                    yes_no(result),
                ])
            },
        );
        // What Little's law said, what happened, and where they part.
        for result in &rows {
            let Some(headline) = &result.headline else {
                continue;
            };
            let expected = if keepalive && result.capacity.is_some() {
                lab_keepalive_expectation(result.capacity.unwrap_or(1)).min(demand)
            } else {
                result.bound_rps.unwrap_or(demand)
            };
            let measured = headline.requests_per_second;
            let off = (measured - expected) / expected.max(1e-9);
            let _ = write!(
                text,
                "- {} lab {}: {} req/s (expected {}), median {}",
                result.cell.model,
                if keepalive {
                    "with keep-alive"
                } else {
                    "without keep-alive"
                },
                rate(measured),
                rate(expected),
                latency(headline, headline.p50_us)
            );
            if off.abs() > 0.2 {
                let _ = write!(text, "; {:+.0} % off", off * 100.0);
                if results.quick {
                    text.push_str(
                        " (a quick cell is shorter than one think cycle: the users had not \
                         reached their steady state)",
                    );
                }
            }
            text.push_str(".\n");
        }
        text.push('\n');
    }
}

/// `01-blocking 1, 03-thread-pool 10, 07-epoll unlimited`: each model's
/// capacity as the cells recorded it.
fn capacities(cells: &[&CellResult]) -> String {
    let mut seen: Vec<(&str, Option<usize>)> = Vec::new();
    for result in cells {
        if !seen.iter().any(|(model, _)| *model == result.cell.model) {
            seen.push((&result.cell.model, result.capacity));
        }
    }
    seen.iter()
        .map(|(model, capacity)| match capacity {
            Some(workers) => format!("{model} {workers}"),
            None => format!("{model} unlimited"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn http_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::HttpSweep).collect();
    if cells.is_empty() {
        return;
    }
    let first = cells[0];
    let _ = writeln!(
        text,
        "## http-sweep: throughput against Little's law\n\nN keep-alive connections, each \
         sends `GET /` (fake DB 300 ms) as soon as the previous reply is in, no think time; \
         cell {} of which {} warm-up, request timeout {} s. The bound is min(clients, \
         capacity) / {} s; capacity (requests served at once) in this run: {}.\n",
        crate::duration::format_duration(first.cell.duration),
        crate::duration::format_duration(first.cell.warmup),
        first.cell.timeout.as_secs(),
        DB_LATENCY.as_secs_f64(),
        capacities(&cells)
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("http-sweep")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
    write_table(
        text,
        &columns(
            &[
                "model",
                "clients",
                "req/s",
                "bound",
                "measured / bound",
                "p50",
                "p99",
                "p99.9",
                "errors",
            ],
            "req",
            &["TIME_WAIT", "saturated"],
        ),
        cells.iter().copied(),
        |result| {
            let headline = result.headline.as_ref()?;
            let mut row = vec![
                result.cell.model.clone(),
                result.cell.clients.to_string(),
                rate(headline.requests_per_second),
                optional(result.bound_rps.map(rate)),
                optional(result.ratio.map(|ratio| format!("{ratio:.2}"))),
                latency(headline, headline.p50_us),
                latency(headline, headline.p99_us),
                latency(headline, headline.p999_us),
                headline.errors.to_string(),
            ];
            row.extend(usage_cells(result, headline));
            row.extend([optional(result.time_wait), yes_no(result)]);
            Some(row)
        },
    );
    most_clients_lines(&cells, results.machine.cores, text);
}

/// For each model, its cell with the most clients: how close it got to
/// its bound, and where the two cores went (server and load generator
/// share them, so together they cannot pass 100 % x cores).
fn most_clients_lines(cells: &[&CellResult], cores: usize, text: &mut String) {
    let mut lines = Vec::new();
    for result in cells {
        let most = cells
            .iter()
            .filter(|other| other.cell.model == result.cell.model)
            .map(|other| other.cell.clients)
            .max();
        let (Some(headline), Some(bound)) = (&result.headline, result.bound_rps) else {
            continue;
        };
        if most != Some(result.cell.clients) {
            continue;
        }
        let server = headline.cpu_mean_percent.unwrap_or(0.0);
        let client = result.loadgen_cpu_mean_percent.unwrap_or(0.0);
        lines.push(format!(
            "- {} at {} connections: {} of {} req/s ({:.0} % of the bound); server CPU {}, \
             loadgen CPU {}, together {:.0} % of the {} cores.",
            result.cell.model,
            result.cell.clients,
            rate(headline.requests_per_second),
            rate(bound),
            100.0 * headline.requests_per_second / bound.max(1e-9),
            percent(server),
            percent(client),
            (server + client) / cores.max(1) as f64,
            cores
        ));
    }
    if !lines.is_empty() {
        text.push_str("Each model at its most connections:\n\n");
        for line in lines {
            let _ = writeln!(text, "{line}");
        }
        text.push('\n');
    }
}

fn files_section(results: &Results, text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::Files).collect();
    let Some(first) = cells.first() else {
        return;
    };
    let _ = writeln!(
        text,
        "## files: the lab's static-file server\n\n`--mode files` over one document root; \
         {} keep-alive connections in a closed loop, each asking for the same file: `small` is \
         a {} page, `large` a {} file. Cell {} of which {} warm-up, request timeout {} s. \
         `vs nginx` is req/s over nginx's req/s for the same file (nginx: one worker, \
         sendfile on), where nginx ran.\n",
        first.cell.clients,
        format_bytes(FileKind::Small.bytes() as f64),
        format_bytes(FileKind::Large.bytes() as f64),
        crate::duration::format_duration(first.cell.duration),
        crate::duration::format_duration(first.cell.warmup),
        first.cell.timeout.as_secs(),
    );
    let nginx_rps = |file: Option<FileKind>| {
        cells
            .iter()
            .find(|result| result.cell.model == super::scenarios::NGINX && result.cell.file == file)
            .and_then(|result| result.headline.as_ref())
            .map(|headline| headline.requests_per_second)
            .filter(|rps| *rps > 0.0)
    };
    write_table(
        text,
        &columns(
            &[
                "model", "file", "req/s", "MiB/s", "vs nginx", "p50", "p99", "errors",
            ],
            "req",
            &["saturated"],
        ),
        cells.iter().copied(),
        |result| {
            let headline = result.headline.as_ref()?;
            let rps = headline.requests_per_second;
            let file_bytes = result.cell.file.map_or(0, FileKind::bytes) as f64;
            let mut row = vec![
                result.cell.model.clone(),
                result.cell.variant().to_string(),
                rate(rps),
                format!("{:.1}", rps * file_bytes / (1024.0 * 1024.0)),
                optional(nginx_rps(result.cell.file).map(|nginx| format!("{:.2}", rps / nginx))),
                latency(headline, headline.p50_us),
                latency(headline, headline.p99_us),
                headline.errors.to_string(),
            ];
            row.extend(usage_cells(result, headline));
            row.push(yes_no(result));
            Some(row)
        },
    );
}

fn http_open_section(results: &Results, text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::HttpOpen).collect();
    let Some(first) = cells.first() else {
        return;
    };
    let _ = writeln!(
        text,
        "## http-open: the open loop, corrected and uncorrected\n\n`GET /` (fake DB {} ms) on \
         a plan of R requests per second, a new connection each, at most the listed \
         connections at once; cell {} of which {} warm-up, request timeout {} s. \
         Corrected latency counts from the planned start, with the requests unanswered \
         or never sent at the end at their wait so far; uncorrected counts from the \
         actual send (wrk2's two views).\n",
        DB_LATENCY.as_millis(),
        crate::duration::format_duration(first.cell.duration),
        crate::duration::format_duration(first.cell.warmup),
        first.cell.timeout.as_secs(),
    );
    write_table(
        text,
        &[
            "model",
            "target req/s",
            "achieved",
            "bound",
            "connections",
            "planned",
            "unanswered",
            "never sent",
            "late",
            "corrected p50",
            "corrected p99",
            "uncorrected p50",
            "uncorrected p99",
            "errors",
            "CPU us/req (user+sys)",
            "switches/req (vol+invol)",
        ],
        cells.iter().copied(),
        |result| {
            let headline = result.headline.as_ref()?;
            let report = result.report.as_ref()?;
            let summary = &report.summary;
            let uncorrected = report.service_time.clone().unwrap_or_default();
            let [cpu, switches] = cost_cells(headline);
            // Unlike `latency`, shown even when nothing was answered: the
            // corrected view then holds the unfinished requests' waits.
            let value = |percentiles: &crate::stats::Percentiles, microseconds: u64| {
                if percentiles.count == 0 {
                    "-".to_string()
                } else {
                    format_microseconds(microseconds as f64)
                }
            };
            Some(vec![
                result.cell.model.clone(),
                optional(result.cell.rate.map(rate)),
                rate(headline.requests_per_second),
                optional(result.bound_rps.map(rate)),
                result.cell.clients.to_string(),
                optional(summary.planned_requests),
                summary.unanswered.to_string(),
                summary.never_sent.to_string(),
                summary.late.to_string(),
                value(&report.latency, headline.p50_us),
                value(&report.latency, headline.p99_us),
                value(&uncorrected, uncorrected.p50_us),
                value(&uncorrected, uncorrected.p99_us),
                headline.errors.to_string(),
                cpu,
                switches,
            ])
        },
    );
}

fn echo_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::EchoSweep).collect();
    if cells.is_empty() {
        return;
    }
    let first = cells[0];
    // The message size the cells really used, from the first one's config.
    let size = match first.report.as_ref().map(|report| &report.config) {
        Some(crate::config::Config::Echo(config)) => config.size,
        _ => super::scenarios::ECHO_MESSAGE_BYTES,
    };
    let _ = writeln!(
        text,
        "## echo-sweep: {size}-byte messages\n\nN connections, each sends {size} bytes and \
         waits for the echo, closed loop; cell {} of which {} warm-up. No fake DB: this is CPU \
         and system calls, so the client's CPU is part of the story (the server's CPU is in \
         the table, 100 % = one core).\n",
        crate::duration::format_duration(first.cell.duration),
        crate::duration::format_duration(first.cell.warmup),
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("echo-sweep")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
    write_table(
        text,
        &columns(
            &[
                "model",
                "connections",
                "messages/s",
                "p50",
                "p99",
                "max",
                "errors",
            ],
            "msg",
            &["saturated"],
        ),
        cells.iter().copied(),
        |result| {
            let headline = result.headline.as_ref()?;
            let mut row = vec![
                result.cell.model.clone(),
                result.cell.clients.to_string(),
                rate(headline.requests_per_second),
                latency(headline, headline.p50_us),
                latency(headline, headline.p99_us),
                latency(headline, headline.max_us),
                headline.errors.to_string(),
            ];
            row.extend(usage_cells(result, headline));
            row.push(yes_no(result));
            Some(row)
        },
    );
}

fn c10k_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::C10k).collect();
    if cells.is_empty() {
        return;
    }
    let rate = cells[0].cell.connect_rate.unwrap_or_default();
    let sample = match cells[0].report.as_ref().map(|report| &report.config) {
        Some(crate::config::Config::Hold(config)) => config.sample,
        _ => 0,
    };
    let _ = writeln!(
        text,
        "## c10k: idle connections\n\nOpen N connections at {rate:.0} per second and hold them; \
         every second about {sample} of them send a {}-byte echo to check they are served, not \
         just queued. RSS per connection = (peak RSS - RSS right after start) / connections held. A \
         model that does not get there says why.\n",
        crate::hold::PROBE_LENGTH
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("c10k")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
    write_table(
        text,
        &[
            "model",
            "connections",
            "held",
            "checks answered",
            "RSS at start",
            "peak RSS",
            "RSS per connection",
            "threads",
            "fds",
            "reached",
            "why not",
        ],
        cells.iter().copied(),
        |result| {
            let (headline, hold) = (result.headline.as_ref()?, result.hold.as_ref()?);
            Some(vec![
                result.cell.model.clone(),
                result.cell.clients.to_string(),
                hold.open_at_end.to_string(),
                format!("{} of {}", hold.checks_answered, hold.checks_sent),
                resource(
                    result.baseline.as_ref().map(|baseline| baseline.rss_bytes),
                    bytes,
                ),
                resource(headline.rss_peak_bytes, bytes),
                optional(result.rss_per_connection_bytes.map(format_bytes)),
                resource(headline.threads_peak, |threads| threads.to_string()),
                resource(headline.fds_peak, |fds| fds.to_string()),
                match result.reached {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "-",
                }
                .to_string(),
                optional(
                    result
                        .stopped_reason
                        .as_ref()
                        .map(|reason| reason.replace('|', "/")),
                ),
            ])
        },
    );
}

/// The cells of one variant (`query`, `keep-alive`...), in order.
pub(super) fn of_variant<'a>(cells: &[&'a CellResult], variant: &str) -> Vec<&'a CellResult> {
    cells
        .iter()
        .copied()
        .filter(|result| result.cell.variant() == variant)
        .collect()
}

/// rpc-sweep: the homework's question, one table per function.
fn rpc_sweep_section(results: &Results, plots: &[String], text: &mut String) {
    let cells: Vec<&CellResult> = results.cells_of(Scenario::RpcSweep).collect();
    if cells.is_empty() {
        return;
    }
    let first = cells[0];
    let _ = writeln!(
        text,
        "## rpc-sweep: the RPC homework's comparison\n\nN connections, each makes one JSON-RPC \
         call and sends the next as soon as the reply is in (closed loop, no pipelining), \
         every result checked; cell {} of which {} warm-up. `query` waits for the fake DB \
         (300 ms, bound as in http-sweep); `func1` does not wait, so it measures the protocol, \
         the dispatch and the scheduling. RSS, threads and CPU answer the homework's \"resources \
         by number of clients\". Run it alone with `loadgen compare --scenario rpc-sweep`.\n",
        crate::duration::format_duration(first.cell.duration),
        crate::duration::format_duration(first.cell.warmup),
    );
    for plot in plots.iter().filter(|plot| plot.starts_with("rpc-sweep")) {
        let _ = writeln!(text, "![{plot}]({plot})\n");
    }
    for call in ["query", "func1"] {
        let of_call = of_variant(&cells, call);
        if of_call.is_empty() {
            continue;
        }
        let _ = writeln!(text, "### {call}\n");
        write_table(
            text,
            &columns(
                &[
                    "model", "clients", "calls/s", "bound", "p50", "p99", "errors",
                ],
                "call",
                &["saturated"],
            ),
            of_call,
            |result| {
                let headline = result.headline.as_ref()?;
                let mut row = vec![
                    result.cell.model.clone(),
                    result.cell.clients.to_string(),
                    rate(headline.requests_per_second),
                    optional(result.bound_rps.map(rate)),
                    latency(headline, headline.p50_us),
                    latency(headline, headline.p99_us),
                    headline.errors.to_string(),
                ];
                row.extend(usage_cells(result, headline));
                row.push(yes_no(result));
                Some(row)
            },
        );
    }
}

/// Clients of the cells the cost table compares: every model has them in
/// every sweep, and even the pool models serve that many at once or queue
/// them.
const COST_CLIENTS: usize = 100;

/// One row per model: what a request cost the server in each scenario at
/// [`COST_CLIENTS`] clients, gathered from the tables above.
fn cost_section(results: &Results, text: &mut String) {
    let columns: [(Scenario, &str, &str); 4] = [
        (Scenario::HttpSweep, "", "http-sweep (fake DB)"),
        (Scenario::EchoSweep, "", "echo-sweep"),
        (Scenario::RpcSweep, "func1", "rpc-sweep func1"),
        (Scenario::Files, "small", "files small"),
    ];
    let find = |model: &str, (scenario, variant, _): (Scenario, &str, &str)| {
        results.cells_of(scenario).find(|result| {
            result.cell.model == model
                && result.cell.clients == COST_CLIENTS
                && result.cell.variant() == variant
        })
    };
    let mut models: Vec<&str> = Vec::new();
    for result in &results.cells {
        let model = result.cell.model.as_str();
        if !models.contains(&model) && columns.iter().any(|&column| find(model, column).is_some()) {
            models.push(model);
        }
    }
    if models.is_empty() {
        return;
    }
    let _ = writeln!(
        text,
        "## Cost per request\n\nWhat one answered request (message, call) cost the server at \
         {COST_CLIENTS} clients, from the cells above: CPU microseconds in user mode + in the \
         kernel, then context switches, voluntary (it waited) + involuntary (it was \
         preempted), summed over all its processes and threads.\n"
    );
    let mut headers = vec!["model".to_string()];
    for (_, _, name) in columns {
        headers.push(format!("{name}: CPU us"));
        headers.push(format!("{name}: switches"));
    }
    let _ = writeln!(
        text,
        "| {} |\n|{}",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for model in models {
        let mut row = vec![model.to_string()];
        for column in columns {
            let [cpu, switches] = find(model, column)
                .and_then(|result| result.headline.as_ref())
                .map_or_else(|| ["-".to_string(), "-".to_string()], cost_cells);
            row.extend([cpu, switches]);
        }
        let _ = writeln!(text, "| {} |", row.join(" | "));
    }
    text.push('\n');
}

/// The sentences a reader wants before the tables.
fn headlines(results: &Results, text: &mut String) {
    let mut lines = Vec::new();
    for result in &results.cells {
        let Some(headline) = &result.headline else {
            continue;
        };
        let cell = &result.cell;
        match cell.scenario {
            Scenario::Lab => lines.push(format!(
                "{} lab {}: {} req/s (bound {}), median {}",
                cell.model,
                if cell.keepalive {
                    "with keep-alive"
                } else {
                    "without keep-alive"
                },
                rate(headline.requests_per_second),
                optional(result.bound_rps.map(rate)),
                latency(headline, headline.p50_us)
            )),
            Scenario::C10k if results.is_largest(cell) => {
                lines.push(format!(
                    "{} c10k at {} connections: held {}, RSS {} ({} per connection), {} threads{}",
                    cell.model,
                    cell.clients,
                    result.hold.as_ref().map_or(0, |hold| hold.open_at_end),
                    resource(headline.rss_peak_bytes, bytes),
                    optional(result.rss_per_connection_bytes.map(format_bytes)),
                    resource(headline.threads_peak, |threads| threads.to_string()),
                    if result.reached == Some(false) {
                        "; did not get there"
                    } else {
                        ""
                    }
                ));
            }
            Scenario::HttpSweep if results.is_largest(cell) => {
                lines.push(format!(
                    "{} http-sweep at {} connections: {} req/s of the bound {}, p99 {}, \
                     server CPU {}",
                    cell.model,
                    cell.clients,
                    rate(headline.requests_per_second),
                    optional(result.bound_rps.map(rate)),
                    latency(headline, headline.p99_us),
                    optional(headline.cpu_mean_percent.map(percent)),
                ));
            }
            Scenario::Files => {
                lines.push(format!(
                    "{} files {}: {} req/s, p99 {}",
                    cell.model,
                    cell.variant(),
                    rate(headline.requests_per_second),
                    latency(headline, headline.p99_us),
                ));
            }
            Scenario::RpcSweep if results.is_largest(cell) => {
                lines.push(format!(
                    "{} rpc-sweep {} at {} clients: {} calls/s, p99 {}, RSS {}, {} threads",
                    cell.model,
                    cell.variant(),
                    cell.clients,
                    rate(headline.requests_per_second),
                    latency(headline, headline.p99_us),
                    resource(headline.rss_peak_bytes, bytes),
                    resource(headline.threads_peak, |threads| threads.to_string()),
                ));
            }
            _ => {}
        }
    }
    if lines.is_empty() {
        return;
    }
    text.push_str("## Headlines\n\n");
    for line in lines {
        let _ = writeln!(text, "- {line}.");
    }
    text.push('\n');
}

/// `results.md`.
pub fn markdown(results: &Results, plots: &[String]) -> String {
    let mut text = String::from("# Results: the models compared\n\n");
    if results.quick {
        text.push_str(
            "> **This is a quick run** (`--quick`): every cell is a few seconds long, so the \
             numbers are rough, the lab users never reach their steady state, and nothing \
             here should be quoted.\n\n",
        );
    }
    if !results.complete {
        let _ = writeln!(
            text,
            "> **Incomplete**: {} of {} cells so far.\n",
            results.finished_cells, results.planned_cells
        );
    }
    let _ = writeln!(
        text,
        "- Machine: {}\n- Command: {}\n- Note: {}.\n- Time: {:.0} s for {} cells.\n",
        results.machine.describe(),
        results.commands(),
        results.machine.sharing_note(),
        results.elapsed_seconds,
        results.finished_cells
    );
    text.push_str(
        "How to read the tables (bound, saturated, warm-up, cost per request): see the \
         book's chapter *How to measure*.\n\n",
    );
    headlines(results, &mut text);
    lab_section(results, &mut text);
    http_sweep_section(results, plots, &mut text);
    http_open_section(results, &mut text);
    echo_sweep_section(results, plots, &mut text);
    c10k_section(results, plots, &mut text);
    rpc_sweep_section(results, plots, &mut text);
    files_section(results, &mut text);
    cost_section(results, &mut text);
    let failed: Vec<&CellResult> = results
        .cells
        .iter()
        .filter(|result| result.error.is_some())
        .collect();
    if !failed.is_empty() {
        text.push_str("## Cells that failed\n\n");
        for result in failed {
            let _ = writeln!(
                text,
                "- {} {} {} clients={}: {}",
                result.cell.scenario,
                result.cell.variant(),
                result.cell.model,
                result.cell.clients,
                result.error.clone().unwrap_or_default()
            );
        }
        text.push('\n');
    }
    let unclean: Vec<&CellResult> = results
        .cells
        .iter()
        .filter(|result| {
            result
                .stopped
                .as_ref()
                .is_some_and(|stopped| !stopped.clean)
        })
        .collect();
    if !unclean.is_empty() {
        text.push_str("## Servers that did not stop cleanly on SIGTERM\n\n");
        for result in unclean {
            if let Some(stopped) = &result.stopped {
                let _ = writeln!(
                    text,
                    "- {} {} clients={}: {} after {:.1} s{}",
                    result.cell.scenario,
                    result.cell.model,
                    result.cell.clients,
                    stopped.status,
                    stopped.seconds,
                    stopped
                        .note
                        .as_ref()
                        .map(|note| format!(" ({note})"))
                        .unwrap_or_default()
                );
            }
        }
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "Files: `results.json` (everything, with each cell's full loadgen report and \
         per-second series), `results.csv` (one row per cell), the SVG plots. {}.",
        results.provenance()
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_worker_serves_about_a_ninth_of_a_request_per_second() {
        let per_worker = lab_keepalive_expectation(1);
        assert!((per_worker - 2.0 / 18.1).abs() < 0.001, "{per_worker}");
    }

    /// The committed results must stay readable by `--update` and
    /// `--redraw`; updating one scenario keeps every other cell and records
    /// the command.
    #[test]
    fn update_keeps_the_cells_it_does_not_measure_again() {
        let committed =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/results");
        let previous = read_results(&committed).expect("the committed results.json parses");
        let total = previous.cells.len();
        let original_command = previous.command.clone();
        let plan = super::super::scenarios::plan(&super::super::PlanRequest {
            scenarios: vec![Scenario::C10k],
            models: vec!["07-epoll".to_string()],
            clients: None,
            quick: false,
            cell_duration: None,
            nginx: None,
        });
        assert_eq!(plan.len(), 3, "c10k has three client counts");
        let mut results = previous.clone();
        results.command = "loadgen compare --scenario c10k --models 07 --update".to_string();
        results.cells.clear();
        results.planned_cells = plan.len();
        results.keep_unplanned(previous, &plan);
        assert_eq!(results.cells.len(), total - 3);
        assert!(
            results.cells.iter().all(
                |kept| !(kept.cell.scenario == Scenario::C10k && kept.cell.model == "07-epoll")
            )
        );
        assert_eq!(results.command, original_command);
        assert_eq!(
            results.updated_by.last().map(String::as_str),
            Some("loadgen compare --scenario c10k --models 07 --update")
        );
        assert_eq!(results.planned_cells, total);
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        let options = CompareOptions {
            plan: super::super::PlanRequest {
                scenarios: vec![Scenario::Lab],
                models: vec!["07-epoll".to_string()],
                clients: None,
                quick: true,
                cell_duration: None,
                nginx: None,
            },
            out: std::path::PathBuf::from("out"),
            bin_dir: std::path::PathBuf::from("bin"),
            outsiders: Vec::new(),
            command: "test".to_string(),
            threads: None,
            update: false,
        };
        let mut results = Results::new(&options, Machine::current(), 1);
        let cell = super::super::scenarios::plan(&options.plan).remove(0);
        let setup = super::super::scenarios::model_setup("07-epoll", 2);
        let mut result = CellResult::new(cell, &setup, Vec::new());
        result.error = Some("refused, reset".to_string());
        results.cells.push(result);
        let csv = to_csv(&results);
        assert!(csv.contains(",\"refused, reset\","), "{csv}");
    }

    #[test]
    fn the_cost_table_takes_each_model_at_100_clients_and_nginx_only_where_it_ran() {
        let options = CompareOptions {
            plan: super::super::PlanRequest {
                scenarios: vec![Scenario::HttpSweep, Scenario::Files],
                models: vec!["07-epoll".to_string()],
                clients: Some(vec![10, COST_CLIENTS]),
                quick: true,
                cell_duration: None,
                nginx: Some(std::path::PathBuf::from("nginx")),
            },
            out: std::path::PathBuf::from("out"),
            bin_dir: std::path::PathBuf::from("bin"),
            outsiders: Vec::new(),
            command: "test".to_string(),
            threads: None,
            update: false,
        };
        let mut results = Results::new(&options, Machine::current(), 1);
        for cell in super::super::scenarios::plan(&options.plan) {
            let setup = super::super::scenarios::model_setup(&cell.model, 2);
            // Each cell's CPU per request says which cell it is.
            let user = cell.clients as f64
                + if cell.scenario == Scenario::Files {
                    1.0
                } else {
                    0.0
                };
            let mut result = CellResult::new(cell, &setup, Vec::new());
            result.headline = Some(Headline {
                requests_per_second: 1.0,
                cost: Some(crate::report::CostPerRequest {
                    cpu_user_us: user,
                    cpu_system_us: 7.0,
                    voluntary_switches: 0.5,
                    involuntary_switches: 0.25,
                }),
                ..Headline::default()
            });
            results.cells.push(result);
        }
        let mut text = String::new();
        cost_section(&results, &mut text);
        // http-sweep at 100 (not 10), echo and rpc not run, files small.
        assert!(
            text.contains("| 07-epoll | 100+7 | 0.50+0.25 | - | - | - | - | 101+7 | 0.50+0.25 |"),
            "{text}"
        );
        assert!(
            text.contains("| nginx | - | - | - | - | - | - | 101+7 | 0.50+0.25 |"),
            "{text}"
        );
    }
}
