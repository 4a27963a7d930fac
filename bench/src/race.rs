//! `bench race`: several models at once, each on its own port under the
//! same load, drawn as one live table for a lecture: requests per second,
//! p50 and p99 of the last seconds, errors, threads, memory and CPU, with a
//! bar per second. It ends by itself after `--duration` and prints the
//! final table; on a pipe it prints one line per second instead.
//!
//! The models share the machine's cores with each other and with the load
//! generator, so a race shows how they behave side by side, not what each
//! does alone (`bench compare` measures that, one model at a time).
//!
//! A server the workspace did not build races too (a student's, in any
//! language): started from a command (`--cmd`), or already running
//! (`--addr`).

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use loadgen::config::{Close, CommonConfig, Config, HttpConfig, HttpLoad};
use loadgen::observe::{LiveSecond, Observe, SecondRow};
use loadgen::report::{Report, format_bytes, format_microseconds};
use loadgen::stats::{Percentiles, new_histogram};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::layout::Constraint;
use ratatui::style::Style;
use ratatui::widgets::{Block, Row, Table};
use tokio::sync::mpsc;

use crate::compare::scenarios::{self, IDLE_TIMEOUT};
use crate::compare::server::{ModelServer, STARTUP_TIMEOUT, STOP_GRACE};

/// Percentiles in the live table cover this many of the last seconds: one
/// second of a slow model holds too few requests to say much.
const RECENT_SECONDS: usize = 5;
/// Seconds of history in the bars.
const BAR_SECONDS: usize = 30;
/// Eight heights of a bar, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// What `bench race` was asked for.
#[derive(Clone, Debug)]
pub struct RaceOptions {
    pub models: Vec<String>,
    pub bin_dir: PathBuf,
    pub load: HttpLoad,
    pub keepalive: bool,
    pub duration: Duration,
    pub timeout: Duration,
    pub threads: Option<usize>,
    /// Servers that are not models, raced after them.
    pub outsiders: Vec<Outsider>,
}

/// A server the workspace did not build.
#[derive(Clone, Debug)]
pub enum Outsider {
    /// A shell command that starts it: `{port}` becomes a free port, and
    /// the server is ready once that port accepts; without `{port}` the
    /// command must print the contract's start-up line.
    Command(String),
    /// A server already running: raced without its threads, memory or CPU.
    Running(SocketAddr),
}

/// One lane's server: its name in the table, where it listens, and its pid
/// if the race started it (for threads, memory and CPU).
#[derive(Debug)]
struct Entrant {
    name: String,
    addr: SocketAddr,
    pid: Option<i32>,
}

/// A short name for an outside command's lane: the first word that looks
/// like a program's path or file (`python3 my_server.py` -> `my_server.py`).
fn command_name(command: &str) -> String {
    let words: Vec<&str> = command.split_whitespace().collect();
    let program = words
        .iter()
        .find(|word| !word.starts_with('-') && (word.contains('/') || word.contains('.')))
        .or(words.first())
        .copied()
        .unwrap_or("command");
    program.rsplit('/').next().unwrap_or(program).to_string()
}

/// Starts an outside server in a process group of its own (as the models
/// are), so that stopping it reaches whatever the command started.
fn start_command(command: &str) -> anyhow::Result<ModelServer> {
    let mut shell = Command::new("sh");
    // `exec`: the pid is the server's own, not a shell's, for its memory.
    if command.contains("{port}") {
        // A port that was free a moment ago; the server binds it next.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let command = command.replace("{port}", &port.to_string());
        shell.arg("-c").arg(format!("exec {command}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let server = harness::Server::spawn_listening(shell, addr, STARTUP_TIMEOUT)
            .map_err(anyhow::Error::msg)?;
        ModelServer::from_harness(server)
    } else {
        shell.arg("-c").arg(format!("exec {command}"));
        let server = harness::Server::spawn(shell, STARTUP_TIMEOUT).map_err(anyhow::Error::msg)?;
        ModelServer::from_harness(server)
    }
}

/// One model's lane: what the table shows about it.
#[derive(Debug)]
struct Lane {
    model: String,
    recent: VecDeque<Histogram<u64>>,
    rates: VecDeque<f64>,
    errors: f64,
    last: Option<SecondRow>,
}

impl Lane {
    fn new(model: &str) -> Self {
        Lane {
            model: model.to_string(),
            recent: VecDeque::new(),
            rates: VecDeque::new(),
            errors: 0.0,
            last: None,
        }
    }

    fn add(&mut self, second: LiveSecond) {
        if self.recent.len() == RECENT_SECONDS {
            self.recent.pop_front();
        }
        self.recent.push_back(second.latency);
        if self.rates.len() == BAR_SECONDS {
            self.rates.pop_front();
        }
        self.rates.push_back(second.row.requests_per_second);
        self.errors += second.row.errors_per_second;
        self.last = Some(second.row);
    }

    fn recent_percentiles(&self) -> Percentiles {
        let mut merged = new_histogram();
        for histogram in &self.recent {
            let _ = merged.add(histogram);
        }
        Percentiles::from_histogram(&merged)
    }

    /// The table's cells: model, req/s, p50, p99, errors, threads, RSS,
    /// CPU, bars (scaled to `top`, the highest rate of any lane).
    fn cells(&self, top: f64) -> Vec<String> {
        let recent = self.recent_percentiles();
        let last = self.last.clone().unwrap_or_default();
        let [threads, rss, cpu] = resource_cells(last.threads, last.rss_bytes, last.cpu_percent);
        vec![
            self.model.clone(),
            format!("{:.1}", last.requests_per_second),
            latency_cell(recent.count, recent.p50_us),
            latency_cell(recent.count, recent.p99_us),
            format!("{:.0}", self.errors),
            threads,
            rss,
            cpu,
            bars(&self.rates, top),
        ]
    }
}

/// A latency for the tables; `-` when there are no requests to measure.
fn latency_cell(count: u64, microseconds: u64) -> String {
    if count == 0 {
        "-".to_string()
    } else {
        format_microseconds(microseconds as f64)
    }
}

/// Threads, RSS and CPU for the tables; `-` where the server was not sampled.
fn resource_cells(threads: Option<u64>, rss_bytes: Option<u64>, cpu: Option<f64>) -> [String; 3] {
    [
        threads.map_or("-".to_string(), |threads| threads.to_string()),
        rss_bytes.map_or("-".to_string(), |rss| format_bytes(rss as f64)),
        cpu.map_or("-".to_string(), |cpu| format!("{cpu:.0}%")),
    ]
}

/// One character per second, its height the rate against `top`.
fn bars(rates: &VecDeque<f64>, top: f64) -> String {
    rates
        .iter()
        .map(|rate| {
            let share = if top > 0.0 { rate / top } else { 0.0 };
            let index = (share * (BARS.len() - 1) as f64).round() as usize;
            BARS[index.min(BARS.len() - 1)]
        })
        .collect()
}

const HEADER: [&str; 9] = [
    "model",
    "req/s",
    "p50 (5 s)",
    "p99 (5 s)",
    "errors",
    "threads",
    "RSS",
    "CPU",
    "req/s, one bar per second",
];

fn top_rate(lanes: &[Lane]) -> f64 {
    lanes
        .iter()
        .flat_map(|lane| lane.rates.iter().copied())
        .fold(0.0, f64::max)
}

fn draw(frame: &mut ratatui::Frame<'_>, lanes: &[Lane], title: &str) {
    let top = top_rate(lanes);
    let rows = lanes.iter().map(|lane| Row::new(lane.cells(top)));
    let widths = [
        Constraint::Length(22),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(BAR_SECONDS as u16 + 2),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(HEADER).style(Style::new().bold()))
        .block(Block::bordered().title(title.to_string()));
    frame.render_widget(table, frame.area());
}

/// `t=5s | 01-blocking 3.0/s p50 2.10s p99 4.0s err 0 | ...`
fn plain_line(elapsed: u64, lanes: &[Lane]) -> String {
    let mut line = format!("t={elapsed}s");
    for lane in lanes {
        let cells = lane.cells(0.0);
        line.push_str(&format!(
            " | {} {}/s p50 {} p99 {} errors {} threads {} rss {} cpu {}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
        ));
    }
    line
}

/// The final table, plain text: whole-run numbers from each model's report.
fn final_table(models: &[String], reports: &[Option<Report>]) -> String {
    let mut text = format!(
        "{:<22} {:>8} {:>9} {:>9} {:>7} {:>8} {:>10} {:>6}\n",
        "model", "req/s", "p50", "p99", "errors", "threads", "peak RSS", "CPU"
    );
    for (model, report) in models.iter().zip(reports) {
        let Some(report) = report else {
            text.push_str(&format!("{model:<22} (no report)\n"));
            continue;
        };
        let headline = report.headline();
        let count = report.latency.count;
        let [threads, rss, cpu] = resource_cells(
            headline.threads_peak,
            headline.rss_peak_bytes,
            headline.cpu_mean_percent,
        );
        text.push_str(&format!(
            "{model:<22} {:>8.1} {:>9} {:>9} {:>7} {threads:>8} {rss:>10} {cpu:>6}\n",
            headline.requests_per_second,
            latency_cell(count, headline.p50_us),
            latency_cell(count, headline.p99_us),
            headline.errors,
        ));
    }
    text
}

/// Whether the viewer asked to stop (q, Esc or Ctrl-C: in the raw mode of
/// the live table Ctrl-C is a key, not a signal).
fn quit_pressed() -> bool {
    while let Ok(true) = event::poll(Duration::ZERO) {
        if let Ok(Event::Key(key)) = event::read()
            && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
                || (key.code == KeyCode::Char('c')
                    && key.modifiers.contains(KeyModifiers::CONTROL)))
        {
            return true;
        }
    }
    false
}

/// Starts the models, races them, prints the final table, stops them.
pub fn run_race(options: &RaceOptions) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let idle_timeout = format!("{}s", IDLE_TIMEOUT.as_secs());
    let mut servers = Vec::new();
    let mut entrants = Vec::new();
    for model in &options.models {
        let setup = scenarios::model_setup(model, cores);
        let args = scenarios::server_args("http", &idle_timeout, &setup);
        let server = ModelServer::start(&options.bin_dir.join(model), &args, STARTUP_TIMEOUT)
            .with_context(|| format!("{model} did not start"))?;
        eprintln!("race: {}", server.startup_line());
        entrants.push(Entrant {
            name: model.clone(),
            addr: server.addr(),
            pid: Some(server.pid),
        });
        servers.push(server);
    }
    for outsider in &options.outsiders {
        let entrant = match outsider {
            Outsider::Command(command) => {
                let server =
                    start_command(command).with_context(|| format!("`{command}` did not start"))?;
                let name = command_name(command);
                eprintln!("race: {name} listens on {} ({command})", server.addr());
                let entrant = Entrant {
                    name,
                    addr: server.addr(),
                    pid: Some(server.pid),
                };
                servers.push(server);
                entrant
            }
            Outsider::Running(addr) => Entrant {
                name: addr.to_string(),
                addr: *addr,
                pid: None,
            },
        };
        entrants.push(entrant);
    }
    loadgen::limits::raise_open_file_limit();
    let runtime = loadgen::client_runtime(options.threads)?;
    let reports = runtime.block_on(race(options, &entrants));
    for server in &mut servers {
        server.stop(STOP_GRACE);
    }
    let reports = reports?;
    let names: Vec<String> = entrants.into_iter().map(|entrant| entrant.name).collect();
    print!("{}", final_table(&names, &reports));
    Ok(())
}

async fn race(options: &RaceOptions, entrants: &[Entrant]) -> anyhow::Result<Vec<Option<Report>>> {
    let mut feeds = Vec::new();
    let mut loads = Vec::new();
    for entrant in entrants {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut common = CommonConfig::new(entrant.addr, options.duration);
        common.pid = entrant.pid;
        common.timeout = options.timeout;
        let config = HttpConfig {
            common,
            load: options.load.clone(),
            path: "/".to_string(),
            keepalive: options.keepalive,
            close: Close::Fin,
        };
        let observe = Observe {
            progress: false,
            live: Some(sender),
        };
        loads.push(tokio::spawn(loadgen::run_observed(
            Config::Http(config),
            observe,
        )));
        feeds.push(receiver);
    }
    let mut lanes: Vec<Lane> = entrants
        .iter()
        .map(|entrant| Lane::new(&entrant.name))
        .collect();
    let live = std::io::stdout().is_terminal();
    let mut terminal = live.then(ratatui::init);
    let title = format!(
        " bench race: {} on each, {} (q quits) ",
        describe(&options.load),
        if options.keepalive {
            "keep-alive"
        } else {
            "a connection per request"
        }
    );
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // An interval's first tick is immediate; the first second is not.
    tick.tick().await;
    let mut quit = false;
    while !loads.iter().all(tokio::task::JoinHandle::is_finished) && !quit {
        tick.tick().await;
        for (lane, feed) in lanes.iter_mut().zip(feeds.iter_mut()) {
            while let Ok(second) = feed.try_recv() {
                lane.add(second);
            }
        }
        let elapsed = started.elapsed().as_secs();
        match &mut terminal {
            Some(terminal) => {
                let title = format!("{title}{elapsed} s of {} s ", options.duration.as_secs());
                let _ = terminal.draw(|frame| draw(frame, &lanes, &title));
                quit = quit_pressed();
            }
            None => println!("{}", plain_line(elapsed, &lanes)),
        }
    }
    if terminal.is_some() {
        ratatui::restore();
    }
    let mut reports = Vec::new();
    for load in loads {
        if quit {
            load.abort();
            reports.push(None);
            continue;
        }
        let report = load
            .await
            .map_err(|error| anyhow::anyhow!("a load task failed: {error}"))??;
        reports.push(Some(report));
    }
    Ok(reports)
}

fn describe(load: &HttpLoad) -> String {
    match load {
        HttpLoad::Users { users, think, .. } => format!("{users} users thinking {think}"),
        HttpLoad::Connections { connections, .. } => {
            format!("{connections} connections, closed loop")
        }
        HttpLoad::Rate { rate, .. } => format!("{rate} req/s open loop"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outside_commands_lane_is_named_after_its_program() {
        assert_eq!(
            command_name("python3 my_server.py --port {port}"),
            "my_server.py"
        );
        assert_eq!(
            command_name("examples/python/lab_server.py --mode http"),
            "lab_server.py"
        );
        assert_eq!(command_name("./server"), "server");
        assert_eq!(command_name("myserver --fast"), "myserver");
    }

    #[test]
    fn bars_scale_to_the_highest_rate() {
        let rates: VecDeque<f64> = [0.0, 5.0, 10.0].into_iter().collect();
        assert_eq!(bars(&rates, 10.0), "▁▅█");
        assert_eq!(bars(&rates, 0.0), "▁▁▁");
    }

    #[test]
    fn a_lane_keeps_the_last_seconds() {
        let mut lane = Lane::new("07-epoll");
        for second in 0..(RECENT_SECONDS as u64 + 3) {
            let mut latency = new_histogram();
            latency.saturating_record(1000 * (second + 1));
            let row = SecondRow {
                requests_per_second: 1.0,
                errors_per_second: 1.0,
                ..Default::default()
            };
            lane.add(LiveSecond { row, latency });
        }
        let recent = lane.recent_percentiles();
        assert_eq!(recent.count, RECENT_SECONDS as u64);
        // The oldest three seconds (1, 2, 3 ms) have left the window.
        assert!(recent.min_us >= 3_990, "{recent:?}");
        assert_eq!(lane.cells(1.0)[4], format!("{}", RECENT_SECONDS + 3));
    }
}
