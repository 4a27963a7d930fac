//! What the comparison runs: the named scenarios, the flags each model is
//! started with, and the list of cells (scenario x model x clients) they
//! make.
//!
//! Everything a reader needs to re-run one cell by hand is in here: the
//! server's flags (`scripts/load.sh` takes the same) and the load, which
//! is an ordinary [`Config`] of `loadgen echo|http|hold|rpc`.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use loadgen::config::{
    Close, CommonConfig, Config, EchoConfig, HoldConfig, HttpConfig, HttpLoad, RpcCall, RpcConfig,
};
use loadgen::duration::as_text;
use serde::{Deserialize, Serialize};

/// The models, in the order of the book.
pub const MODELS: &[&str] = &[
    "01-blocking",
    "02-thread-per-client",
    "03-thread-pool",
    "04-prefork",
    "05-prefork-threads",
    "06-select",
    "07-epoll",
    "08-coroutines",
    "09-async",
    "10-mini-runtime",
    "11-io-uring",
];

/// The fake database's reply time, as in the lab.
pub const DB_LATENCY: Duration = Duration::from_millis(300);
/// The servers' idle timeout (their default): it is what frees a blocking
/// worker from a keep-alive user who thinks for longer.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The lab's Locust users think 5 to 15 s between requests (loadgen's
/// default think time too).
pub use loadgen::config::THINK;
/// Bytes per echo message in `echo-sweep`.
pub const ECHO_MESSAGE_BYTES: usize = 64;
/// Threads per process of 05-prefork-threads (its default).
pub const PREFORK_THREADS: usize = 10;
/// Threads of 03-thread-pool (its default).
pub const POOL_THREADS: usize = 10;
/// http-sweep's extra point for the models without a worker limit: at
/// 10,000 connections the bound is 10,000 / 300 ms = 33,333 req/s, more
/// than two shared cores can parse and answer, so the cell shows what
/// limits a concurrent model once waiting is free.
pub const SWEEP_MOST_CLIENTS: usize = 10_000;
/// The reference server in the `files` scenario, where it is installed.
pub const NGINX: &str = "nginx";

/// The two files of the `files` scenario: a page (what the lab's server
/// mostly sends) and a large file (where copying, or not, shows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    Small,
    Large,
}

impl FileKind {
    pub const ALL: [FileKind; 2] = [FileKind::Small, FileKind::Large];

    pub fn name(self) -> &'static str {
        match self {
            FileKind::Small => "small",
            FileKind::Large => "large",
        }
    }

    /// Its name in the document root, and so in the request's path.
    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Small => "small.html",
            FileKind::Large => "large.bin",
        }
    }

    pub fn bytes(self) -> usize {
        match self {
            FileKind::Small => 4 * 1024,
            FileKind::Large => 1024 * 1024,
        }
    }
}

/// A named scenario; `--help` of `bench compare` explains each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Lab,
    HttpSweep,
    HttpOpen,
    EchoSweep,
    C10k,
    RpcSweep,
    Files,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Lab,
        Scenario::HttpSweep,
        Scenario::HttpOpen,
        Scenario::EchoSweep,
        Scenario::C10k,
        Scenario::RpcSweep,
        Scenario::Files,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Lab => "lab",
            Scenario::HttpSweep => "http-sweep",
            Scenario::HttpOpen => "http-open",
            Scenario::EchoSweep => "echo-sweep",
            Scenario::C10k => "c10k",
            Scenario::RpcSweep => "rpc-sweep",
            Scenario::Files => "files",
        }
    }

    /// Client counts when `--clients` does not say otherwise.
    pub fn default_clients(self) -> Vec<usize> {
        match self {
            Scenario::Lab => vec![100],
            Scenario::HttpSweep => vec![1, 10, 100, 1000, 5000],
            // Open loop: the connection cap follows from each cell's rate.
            Scenario::HttpOpen => Vec::new(),
            Scenario::EchoSweep => vec![1, 10, 100, 1000],
            Scenario::C10k => vec![1000, 5000, 10_000],
            Scenario::RpcSweep => vec![1, 10, 100, 1000],
            Scenario::Files => vec![100],
        }
    }

    /// The server's `--mode`.
    pub fn server_mode(self) -> &'static str {
        match self {
            Scenario::Lab | Scenario::HttpSweep | Scenario::HttpOpen => "http",
            Scenario::EchoSweep | Scenario::C10k => "echo",
            Scenario::RpcSweep => "rpc",
            Scenario::Files => "files",
        }
    }

    /// The RPC functions a scenario calls, one variant each: rpc-sweep asks
    /// the homework's question twice, with `query` (waiting on the fake DB,
    /// like the lab) and `func1` (no waiting: protocol and dispatch cost).
    pub fn rpc_calls(self) -> &'static [Option<RpcCall>] {
        match self {
            Scenario::RpcSweep => &[Some(RpcCall::Query), Some(RpcCall::Func1)],
            _ => &[None],
        }
    }

    /// The files a scenario asks for, one variant each: the page and the
    /// large file in `files`, none elsewhere.
    pub fn files(self) -> &'static [Option<FileKind>] {
        match self {
            Scenario::Files => &[Some(FileKind::Small), Some(FileKind::Large)],
            _ => &[None],
        }
    }

    /// Every variant a scenario runs: keep-alive or not, x the RPC
    /// function, x the file.
    pub fn variants(self) -> Vec<(bool, Option<RpcCall>, Option<FileKind>)> {
        let mut variants = Vec::new();
        for &keepalive in self.keepalive_variants() {
            for &call in self.rpc_calls() {
                for &file in self.files() {
                    variants.push((keepalive, call, file));
                }
            }
        }
        variants
    }

    /// The connection variants a scenario runs: the lab once with a new
    /// connection per request and once with keep-alive; the sweeps with
    /// keep-alive only, so TIME_WAIT stays low. The open loop sends each
    /// request on a new connection: with keep-alive, a pool's worker stays
    /// with a connection the plan has no request for, and the lesson would
    /// be keep-alive's again, not the plan's.
    pub fn keepalive_variants(self) -> &'static [bool] {
        match self {
            Scenario::Lab => &[false, true],
            Scenario::HttpOpen => &[false],
            _ => &[true],
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|scenario| scenario.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown scenario `{text}`: use lab, http-sweep, http-open, echo-sweep, c10k, \
                     rpc-sweep, files or all"
                )
            })
    }
}

/// How long cells run. A full run is for the book; a quick one checks that
/// everything works and gives rough numbers in about 13 minutes.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Length of one load run (c10k: time to hold after the last connect).
    pub cell: Duration,
    /// Left out of the totals at the start of each cell, whole seconds.
    pub warmup: Duration,
}

/// Connects per second in c10k: fast enough to get to 10,000 in seconds,
/// slow enough that the 4096-long listen queue never overflows on a model
/// that accepts.
pub fn c10k_connect_rate(quick: bool) -> f64 {
    if quick { 4000.0 } else { 2000.0 }
}

/// The lab's users start at this many per second, as a Locust run with
/// spawn rate 10 does. It is also about users / (think + 300 ms), so the
/// requests arrive at close to their steady rate from the first second;
/// starting all 100 at once would send a burst of 100 requests and then
/// nothing for 5 s.
pub const LAB_SPAWN_RATE: f64 = 10.0;

pub fn timing(scenario: Scenario, quick: bool, cell_override: Option<Duration>) -> Timing {
    let seconds = Duration::from_secs;
    let default = match (scenario, quick) {
        // 100 users with 5..15 s think need about two think cycles to
        // settle; 60 s measured then gives ~580 requests per model.
        (Scenario::Lab, false) => (seconds(80), seconds(20)),
        (Scenario::Lab, true) => (seconds(8), seconds(1)),
        (Scenario::HttpSweep, false) => (seconds(15), seconds(3)),
        (Scenario::HttpSweep, true) => (seconds(2), seconds(1)),
        (Scenario::HttpOpen, false) => (seconds(15), seconds(3)),
        (Scenario::HttpOpen, true) => (seconds(3), seconds(1)),
        (Scenario::EchoSweep, false) => (seconds(10), seconds(2)),
        // Echo connections are ready at once: no warm-up needed.
        (Scenario::EchoSweep, true) => (seconds(1), Duration::ZERO),
        (Scenario::C10k, false) => (seconds(5), Duration::ZERO),
        (Scenario::C10k, true) => (seconds(1), Duration::ZERO),
        (Scenario::RpcSweep, false) => (seconds(15), seconds(3)),
        (Scenario::RpcSweep, true) => (seconds(2), seconds(1)),
        (Scenario::Files, false) => (seconds(10), seconds(2)),
        (Scenario::Files, true) => (seconds(2), seconds(1)),
    };
    match cell_override {
        None => Timing {
            cell: default.0,
            warmup: default.1,
        },
        // A short cell keeps at most a quarter of itself as warm-up.
        Some(cell) => Timing {
            cell,
            warmup: default.1.min(seconds(cell.as_secs() / 4)),
        },
    }
}

/// How a model is started and how many requests it can serve at once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelSetup {
    /// The model's own flags (`--workers`, `--threads`).
    pub flags: Vec<String>,
    /// Requests it can serve at once: the workers that block on the fake
    /// DB. `None` = no such limit (a thread, coroutine or state per
    /// connection).
    pub capacity: Option<usize>,
}

/// The flags the comparison passes to a model, written out even where they
/// are the model's defaults, so that the capacity used for the bounds is
/// the one the server really had.
pub fn model_setup(model: &str, cores: usize) -> ModelSetup {
    let workers = |count: usize| vec!["--workers".to_string(), count.to_string()];
    match model {
        "01-blocking" => ModelSetup {
            flags: Vec::new(),
            capacity: Some(1),
        },
        "03-thread-pool" => ModelSetup {
            flags: workers(POOL_THREADS),
            capacity: Some(POOL_THREADS),
        },
        "04-prefork" => ModelSetup {
            flags: workers(cores),
            capacity: Some(cores),
        },
        "05-prefork-threads" => {
            let mut flags = workers(cores);
            flags.extend(["--threads".to_string(), PREFORK_THREADS.to_string()]);
            ModelSetup {
                flags,
                capacity: Some(cores * PREFORK_THREADS),
            }
        }
        "08-coroutines" => ModelSetup {
            flags: workers(cores),
            capacity: None,
        },
        "09-async" => {
            let mut flags = vec!["--runtime".to_string(), "multi-thread".to_string()];
            flags.extend(workers(cores));
            ModelSetup {
                flags,
                capacity: None,
            }
        }
        _ => ModelSetup {
            flags: Vec::new(),
            capacity: None,
        },
    }
}

/// One run: a model under one load, started fresh for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub scenario: Scenario,
    pub model: String,
    /// HTTP: reuse connections; `false` = a new connection per request.
    pub keepalive: bool,
    /// Users, connections, or held connections.
    pub clients: usize,
    /// How long the load runs (c10k: connecting plus holding).
    #[serde(with = "as_text")]
    pub duration: Duration,
    #[serde(with = "as_text")]
    pub warmup: Duration,
    /// A request (or connect) slower than this is a timeout error.
    #[serde(with = "as_text")]
    pub timeout: Duration,
    /// c10k: new connections per second.
    pub connect_rate: Option<f64>,
    /// http-open: requests per second on the plan (`clients` is then the
    /// most connections open at once).
    #[serde(default)]
    pub rate: Option<f64>,
    /// rpc-sweep: the function called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<RpcCall>,
    /// files: the file asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileKind>,
}

impl Cell {
    /// The same cell of the matrix (an `--update` measures it again),
    /// whatever its durations were.
    pub fn same_as(&self, other: &Cell) -> bool {
        self.scenario == other.scenario
            && self.model == other.model
            && self.clients == other.clients
            && self.keepalive == other.keepalive
            && self.call == other.call
            && self.file == other.file
    }

    /// `keep-alive` or `close` for the lab, the function for rpc-sweep,
    /// empty for the others.
    pub fn variant(&self) -> &'static str {
        if let Some(file) = self.file {
            return file.name();
        }
        match (self.scenario, self.keepalive, self.call) {
            (Scenario::Lab, true, _) => "keep-alive",
            (Scenario::Lab, false, _) => "close",
            (_, _, Some(RpcCall::Func1)) => "func1",
            (_, _, Some(RpcCall::Query)) => "query",
            _ => "",
        }
    }

    /// The servers' default idle timeout, except in c10k: there the
    /// connections are meant to sit idle longer than the 10 s default
    /// (5 s of connecting at 2000/s plus the hold), and a server closing
    /// them would measure its timeout, not what holding them costs.
    fn server_idle_timeout(&self) -> String {
        match self.scenario {
            Scenario::C10k => "120s".to_string(),
            _ => format!("{}s", IDLE_TIMEOUT.as_secs()),
        }
    }

    /// The server's command line, minus the binary; `docs` is the `files`
    /// scenario's document root.
    pub fn server_args(&self, setup: &ModelSetup, docs: &std::path::Path) -> Vec<String> {
        let mut args = server_args(
            self.scenario.server_mode(),
            &self.server_idle_timeout(),
            setup,
        );
        if self.scenario == Scenario::Files {
            args.extend(["--root".to_string(), docs.display().to_string()]);
        }
        args
    }

    /// The load, as `loadgen echo|http|hold` would run it.
    pub fn load(&self, addr: SocketAddr, pid: i32) -> Config {
        let mut common = CommonConfig::new(addr, self.duration);
        common.pid = Some(pid);
        common.warmup = self.warmup;
        common.timeout = self.timeout;
        match self.scenario {
            Scenario::Lab => Config::Http(HttpConfig {
                common,
                load: HttpLoad::Users {
                    users: self.clients,
                    think: THINK,
                    spawn_rate: Some(LAB_SPAWN_RATE),
                },
                path: "/".to_string(),
                keepalive: self.keepalive,
                close: Close::Fin,
            }),
            Scenario::HttpOpen => Config::Http(HttpConfig {
                common,
                load: HttpLoad::Rate {
                    rate: self.rate.unwrap_or(1.0),
                    connections: self.clients,
                },
                path: "/".to_string(),
                keepalive: false,
                close: Close::Fin,
            }),
            Scenario::HttpSweep => Config::Http(HttpConfig {
                common,
                load: self.sweep_load(),
                path: "/".to_string(),
                keepalive: true,
                close: Close::Fin,
            }),
            Scenario::Files => Config::Http(HttpConfig {
                common,
                load: self.sweep_load(),
                path: format!("/{}", self.file.unwrap_or(FileKind::Small).file_name()),
                keepalive: true,
                close: Close::Fin,
            }),
            Scenario::RpcSweep => Config::Rpc(RpcConfig {
                common,
                load: self.sweep_load(),
                call: self.call.unwrap_or(RpcCall::Func1),
                pipeline: 1,
            }),
            Scenario::EchoSweep => Config::Echo(EchoConfig {
                common,
                connections: self.clients,
                size: ECHO_MESSAGE_BYTES,
                rate: None,
            }),
            Scenario::C10k => Config::Hold(HoldConfig {
                common,
                connections: self.clients,
                connect_rate: self
                    .connect_rate
                    .unwrap_or_else(|| c10k_connect_rate(false)),
                sample: 10,
            }),
        }
    }

    /// A sweep's closed loop over `clients` connections, started at least
    /// 1000 per second: a few clients start at once, 5000 spread over the
    /// first second (which the warm-up leaves out) instead of one burst of
    /// SYNs.
    fn sweep_load(&self) -> HttpLoad {
        HttpLoad::Connections {
            connections: self.clients,
            spawn_rate: Some((self.clients as f64).max(1000.0)),
        }
    }

    /// HTTP and RPC `query`: the requests per second the clients ask for if
    /// every request took exactly the fake DB's 300 ms: clients / (300 ms +
    /// mean think).
    pub fn demand_rps(&self) -> Option<f64> {
        if self.scenario == Scenario::HttpOpen {
            return self.rate;
        }
        let think = match (self.scenario, self.call) {
            (Scenario::Lab, _) => (THINK.min + THINK.max).as_secs_f64() / 2.0,
            (Scenario::HttpSweep, _) | (Scenario::RpcSweep, Some(RpcCall::Query)) => 0.0,
            _ => return None,
        };
        Some(self.clients as f64 / (DB_LATENCY.as_secs_f64() + think))
    }

    /// HTTP: the most this model can serve by Little's law,
    /// min(clients, capacity) / 300 ms, and never more than the demand.
    pub fn bound_rps(&self, capacity: Option<usize>) -> Option<f64> {
        let demand = self.demand_rps()?;
        let capacity_bound = capacity.map_or(f64::INFINITY, |workers| {
            workers as f64 / DB_LATENCY.as_secs_f64()
        });
        Some(demand.min(capacity_bound))
    }
}

/// A model's command line (minus the binary) in `mode`: a free port, the
/// lab's fake DB, warnings only, a long listen queue, and its setup flags.
pub fn server_args(mode: &str, idle_timeout: &str, setup: &ModelSetup) -> Vec<String> {
    let db_latency = format!("{}ms", DB_LATENCY.as_millis());
    let mut args: Vec<String> = [
        "--addr",
        "127.0.0.1:0",
        "--mode",
        mode,
        "--db-latency",
        &db_latency,
        "--log",
        "warn",
        "--backlog",
        "4096",
        "--idle-timeout",
        idle_timeout,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.extend(setup.flags.iter().cloned());
    args
}

/// What to run: scenarios x models x client counts x variants.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    pub scenarios: Vec<Scenario>,
    pub models: Vec<String>,
    pub clients: Option<Vec<usize>>,
    pub quick: bool,
    pub cell_duration: Option<Duration>,
    /// Where nginx is, for the `files` scenario's reference row; `None`:
    /// no such row (not installed, or no files scenario).
    pub nginx: Option<std::path::PathBuf>,
}

/// All cells in the order they run: scenario by scenario, so a scenario's
/// table fills up before the next one starts.
pub fn plan(request: &PlanRequest) -> Vec<Cell> {
    let mut cells = Vec::new();
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    for &scenario in &request.scenarios {
        if scenario == Scenario::HttpOpen {
            cells.extend(open_loop_cells(request, cores));
            continue;
        }
        let timing = timing(scenario, request.quick, request.cell_duration);
        // The reference row first, so each model's row can be read
        // against it.
        let reference =
            (scenario == Scenario::Files && request.nginx.is_some()).then(|| NGINX.to_string());
        let models: Vec<String> = reference
            .into_iter()
            .chain(request.models.iter().cloned())
            .collect();
        for (keepalive, call, file) in scenario.variants() {
            for model in &models {
                let capacity = model_setup(model, cores).capacity;
                for count in client_counts(scenario, request.clients.as_deref(), capacity) {
                    let (duration, timeout) = cell_length(scenario, count, timing, request.quick);
                    cells.push(Cell {
                        scenario,
                        model: model.clone(),
                        keepalive,
                        clients: count,
                        duration,
                        warmup: timing.warmup,
                        timeout,
                        connect_rate: (scenario == Scenario::C10k)
                            .then(|| c10k_connect_rate(request.quick)),
                        rate: None,
                        call,
                        file,
                    });
                }
            }
        }
    }
    cells
}

/// A scenario's client counts for a model: `--clients`, or the scenario's
/// own, plus 10,000 in http-sweep where no worker limit caps the
/// throughput long before.
fn client_counts(
    scenario: Scenario,
    chosen: Option<&[usize]>,
    capacity: Option<usize>,
) -> Vec<usize> {
    if let Some(counts) = chosen {
        return counts.to_vec();
    }
    let mut counts = scenario.default_clients();
    if scenario == Scenario::HttpSweep && capacity.is_none() {
        counts.push(SWEEP_MOST_CLIENTS);
    }
    counts
}

/// A cell's load duration and request timeout.
fn cell_length(
    scenario: Scenario,
    clients: usize,
    timing: Timing,
    quick: bool,
) -> (Duration, Duration) {
    match scenario {
        // Without keep-alive 01-blocking's users queue for about 20 s: a
        // timeout that short would hide that.
        Scenario::Lab => (timing.cell, Duration::from_secs(60)),
        // Connecting at the c10k rate, then holding.
        Scenario::C10k => (
            Duration::from_secs_f64(clients as f64 / c10k_connect_rate(quick)) + timing.cell,
            Duration::from_secs(5),
        ),
        _ => (timing.cell, Duration::from_secs(5)),
    }
}

/// Open-loop rates for models without a worker limit: far beyond any
/// pool's bound, still within what the concurrent models serve on 2 cores.
pub const OPEN_LOOP_RATES: [f64; 2] = [1000.0, 2000.0];

/// The open loop's requests per second for a model: a pool model at its
/// bound, capacity / 300 ms, and at twice that; the others at
/// [`OPEN_LOOP_RATES`] (`--clients` gives rates instead).
pub fn open_loop_rates(capacity: Option<usize>, clients: Option<&[usize]>) -> Vec<f64> {
    if let Some(rates) = clients {
        return rates.iter().map(|rate| *rate as f64).collect();
    }
    match capacity {
        Some(workers) => {
            let bound = workers as f64 / DB_LATENCY.as_secs_f64();
            vec![bound, 2.0 * bound]
        }
        None => OPEN_LOOP_RATES.to_vec(),
    }
}

/// The http-open cells: every model at its rates, a new connection per
/// request, at most twice the connections the rate keeps busy for 300 ms
/// (plus a few), and a timeout long enough that waiting shows as latency.
fn open_loop_cells(request: &PlanRequest, cores: usize) -> Vec<Cell> {
    let timing = timing(Scenario::HttpOpen, request.quick, request.cell_duration);
    let mut cells = Vec::new();
    for model in &request.models {
        let setup = model_setup(model, cores);
        for rate in open_loop_rates(setup.capacity, request.clients.as_deref()) {
            let in_flight = rate * DB_LATENCY.as_secs_f64();
            cells.push(Cell {
                scenario: Scenario::HttpOpen,
                model: model.clone(),
                keepalive: false,
                clients: (2.0 * in_flight).ceil() as usize + 10,
                duration: timing.cell,
                warmup: timing.warmup,
                timeout: Duration::from_secs(60),
                connect_rate: None,
                rate: Some(rate),
                call: None,
                file: None,
            });
        }
    }
    cells
}

/// Models named on the command line: full names or their number
/// (`07` = `07-epoll`).
pub fn resolve_models(names: &[String]) -> Result<Vec<String>, String> {
    if names.is_empty() || names.iter().any(|name| name == "all") {
        return Ok(MODELS.iter().map(ToString::to_string).collect());
    }
    names
        .iter()
        .map(|name| {
            MODELS
                .iter()
                .find(|model| {
                    **model == name
                        || model
                            .strip_prefix(name.as_str())
                            .is_some_and(|rest| rest.starts_with('-'))
                })
                .map(ToString::to_string)
                .ok_or_else(|| {
                    format!(
                        "unknown model `{name}`: use 01-blocking ... 11-io-uring (or 01 ... 11)"
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests;
