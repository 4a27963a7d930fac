//! The results of a comparison: the machine, every cell's numbers, and
//! the judgement of a cell (its Little's-law bound, whether it saturated,
//! whether c10k got there and if not why), made here, once, so the tables,
//! the CSV and the plots all say the same.

use loadgen::report::{Headline, HoldSummary, Report, format_bytes};
use loadgen::resources::TreeSample;
use serde::{Deserialize, Serialize};

use super::options::CompareOptions;
use super::scenarios::{Cell, ModelSetup, Scenario};
use super::server::Stopped;

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
        let kernel = loadgen::limits::kernel_version();
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

    /// `--update`: start from an earlier run's results. Every earlier cell
    /// stays where it was, so the tables keep their order; those planned
    /// now are replaced by [`Results::add`] as they are measured again (if
    /// the run is interrupted, the rest keep their earlier numbers). The
    /// earlier command stays first; this one is recorded as an update.
    pub fn keep_unplanned(&mut self, previous: Results, planned: &[Cell]) {
        let measured_again =
            |kept: &CellResult| planned.iter().any(|cell| cell.same_as(&kept.cell));
        let new_command = std::mem::replace(&mut self.command, previous.command);
        self.updated_by = previous.updated_by;
        self.updated_by.push(new_command);
        self.quick |= previous.quick;
        self.cells = previous.cells;
        let kept: Vec<&CellResult> = self
            .cells
            .iter()
            .filter(|kept| !measured_again(kept))
            .collect();
        self.previous_seconds = kept.iter().map(|kept| kept.elapsed_seconds).sum();
        self.planned_cells += kept.len();
        self.finished_cells = kept.len();
    }

    /// A cell just measured: in the place of its earlier measurement (an
    /// `--update`), or after the others.
    pub fn add(&mut self, result: CellResult) {
        match self
            .cells
            .iter()
            .position(|earlier| earlier.cell.same_as(&result.cell))
        {
            Some(index) => self.cells[index] = result,
            None => self.cells.push(result),
        }
        self.finished_cells += 1;
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

    pub fn cells_of(&self, scenario: Scenario) -> impl Iterator<Item = &CellResult> {
        self.cells
            .iter()
            .filter(move |result| result.cell.scenario == scenario)
    }

    /// Whether `cell` has the most clients of its scenario (the headline).
    pub fn is_largest(&self, cell: &Cell) -> bool {
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

/// The cells of one variant (`query`, `keep-alive`...), in order.
pub fn of_variant<'a>(cells: &[&'a CellResult], variant: &str) -> Vec<&'a CellResult> {
    cells
        .iter()
        .copied()
        .filter(|result| result.cell.variant() == variant)
        .collect()
}
