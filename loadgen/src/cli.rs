//! The command line: `loadgen echo|http|hold|rpc [flags]`. Parsing turns flags
//! into a [`Config`]; [`run`] runs it, prints the summary and writes the
//! files. Every flag's help says what it measures and why.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{
    Close, CommonConfig, Config, EchoConfig, HoldConfig, HttpConfig, HttpLoad, RpcCall, RpcConfig,
    THINK,
};
use crate::duration::{DurationRange, parse_duration};
use crate::limits;
use crate::observe::Observe;

const AFTER_HELP: &str = "\
Latency is in microseconds, from an HdrHistogram (3 significant digits):
p50, p90, p99, p99.9, max, mean. Errors are counted by kind: refused, reset,
closed, timeout, emfile, no_local_port, short_reply, wrong_reply, bad_status,
other.

--json FILE writes: config (the flags), environment (cores, kernel, fd
limits, local port range), summary (duration_seconds, requests,
planned_requests (--rate only), requests_per_second, bytes_sent,
bytes_received, errors by kind, errors_total, peak_active_clients),
latency and service_time (count, min_us, p50_us, p90_us, p99_us, p999_us,
max_us, mean_us), resources (server: peak and mean of processes, threads,
rss_bytes, fds, cpu_percent, cpu_user_percent, cpu_system_percent;
loadgen_cpu_percent; time_wait_sockets), hold (hold mode only: target,
opened, refused, connect_timeouts, connect_failures, dropped, open_at_end,
checks_sent, checks_answered), warnings, and series (the CSV rows).

--csv FILE writes one row per second with the columns
  t_seconds,active_clients,requests_per_second,errors_per_second,p50_us,
  p99_us,max_us,rss_bytes,threads,fds,cpu_percent,loadgen_cpu_percent,
  time_wait_sockets
(rss_bytes .. cpu_percent are the server's, empty without --pid; CPU is in %
of one core, so 200 means two cores busy).

Examples:
  loadgen http --addr 127.0.0.1:9090 --users 100 --think 5s..15s --spawn-rate 10
  loadgen http --connections 50 --duration 10s --pid 1234 --json run.json
  loadgen http --rate 200 --connections 20 --duration 30s
  loadgen echo --connections 10 --size 1024 --duration 5s
  loadgen rpc --connections 100 --call func1 --pipeline 8 --duration 10s
  loadgen rpc --users 100 --think 1s..2s --call query
  loadgen hold --connections 10000 --connect-rate 1000 --duration 30s --pid 1234";

/// Load generator for the eleven concurrency-model servers (loopback only).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Worker threads of loadgen's own runtime (default: one per core). The
    /// server runs on the same cores; fewer threads leave it more CPU, but
    /// watch "loadgen cpu" in the summary: near 100% per thread means the
    /// client, not the server, is the bottleneck.
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Echo load: each connection writes --size bytes, reads them back with
    /// read_exact, checks they are the same bytes, and repeats.
    #[command(after_help = AFTER_HELP)]
    Echo(EchoArgs),
    /// HTTP load on the fake-DB page: Locust-like users (--users), a closed
    /// loop over N connections (--connections), or an open loop (--rate).
    #[command(after_help = AFTER_HELP)]
    Http(HttpArgs),
    /// C10K: open many idle connections at a set rate, keep them, and check
    /// every second that a sample of them still echoes.
    #[command(after_help = AFTER_HELP)]
    Hold(HoldArgs),
    /// JSON-RPC load (a server in --mode rpc): func1 or query calls, one
    /// line each, every result checked; users, closed loop or open loop
    /// as for http, and --pipeline N calls in flight per connection.
    #[command(after_help = AFTER_HELP)]
    Rpc(RpcArgs),
}

/// Flags of every mode.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The server to load (host:port).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    pub addr: String,

    /// How long to run; the run stops by itself (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// A request (or connect) that takes longer counts as a timeout error
    /// and its connection is replaced.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// The server's pid: every second, sample RSS, threads, open fds and
    /// CPU (user and system) of it and all its descendants (a prefork
    /// server is a tree of processes), for peaks and means in the summary.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,

    /// Leave the first seconds out of throughput, latency and errors (the
    /// ramp-up while clients connect); whole seconds, shorter than --duration.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Write the whole report as JSON (fields listed below).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write one CSV row per second (columns listed below).
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Connections, each with one message in flight at a time.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub connections: usize,

    /// Bytes per message. Large messages test backpressure: the server may
    /// hold only 64 KiB unsent per connection.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,

    /// Open loop: messages per second over all connections, on a fixed plan;
    /// latency then counts from the planned send time. Without it, closed
    /// loop: each connection sends as soon as its previous echo is back.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub load: LoadArgs,

    /// Open a new connection for every request (and send Connection:
    /// close) instead of reusing one; each request then pays for a TCP
    /// handshake and the server for an accept.
    #[arg(long)]
    pub no_keepalive: bool,

    /// With --no-keepalive, how each connection ends. fin: the request
    /// says Connection: close and the client waits for the server to close
    /// first, so the TIME_WAIT stays on the server's side. reset: the
    /// request keeps the connection and the client resets it right after
    /// the reply (SO_LINGER 0), so the server sees ECONNRESET where it
    /// waits for the next request (a client that crashes or gives up) and
    /// no TIME_WAIT is left on either side.
    #[arg(long, value_enum, default_value = "fin", requires = "no_keepalive")]
    pub close: Close,

    /// Path to request.
    #[arg(long, default_value = "/")]
    pub path: String,

    /// Also write PREFIX_stats.csv and PREFIX_stats_history.csv with the
    /// columns `locust --csv PREFIX` writes (milliseconds, failures counted
    /// as requests), so lab tooling made for Locust reads this run.
    #[arg(long, value_name = "PREFIX")]
    pub locust_csv: Option<PathBuf>,
}

/// How requests (HTTP) or calls (RPC) are generated: users, a closed loop
/// or an open loop.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Locust-like users: each requests the page (RPC: makes its calls),
    /// thinks (--think), and requests again, on its own keep-alive connection. Throughput is then
    /// set by the users, like on a real site: users / (latency + think).
    #[arg(long, value_name = "N", conflicts_with = "rate")]
    pub users: Option<usize>,

    /// With --users: think time, drawn uniformly from the range each time
    /// (the lab's Locust file uses 5s..15s). Not part of the latency.
    #[arg(long, value_name = "MIN..MAX", requires = "users")]
    pub think: Option<DurationRange>,

    /// Start this many users (or connections) per second instead of all at
    /// once, so you can watch the server as the load grows.
    #[arg(long, value_name = "PER_SECOND", conflicts_with = "rate")]
    pub spawn_rate: Option<f64>,

    /// Closed loop without think time: N connections, each sends its next
    /// request as soon as the reply is in. This finds the most the server
    /// can do (saturation), but a server that stalls also stalls the
    /// clients, so the stall hides in fewer requests rather than in their
    /// latency. With --rate: the most requests in flight at once (default 100).
    #[arg(long, value_name = "N", conflicts_with = "users")]
    pub connections: Option<usize>,

    /// Open loop: R requests per second on a fixed plan, whatever the server
    /// does. Latency counts from the planned start, so time spent waiting
    /// for a stalled server is counted (no "coordinated omission"); the
    /// service time (send to full reply) is reported beside it.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
}

#[derive(Debug, Args)]
pub struct RpcArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub load: LoadArgs,

    /// Which function to call: func1 (no waiting: protocol and dispatch
    /// cost) or query (the fake DB: the server's --db-latency per call).
    #[arg(long, value_enum, default_value = "func1")]
    pub call: RpcCall,

    /// Calls written at once per connection before reading their replies
    /// (the server answers them in order). 1 = one call in flight.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub pipeline: usize,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub common: CommonArgs,

    /// Idle connections to open and keep. Each costs the server a file
    /// descriptor and, depending on the model, a thread or a stack.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub connections: usize,

    /// New connections per second. Bursts beyond the server's listen
    /// backlog are dropped by the kernel and retried seconds later.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 500.0)]
    pub connect_rate: f64,

    /// About how many held connections send an echo check each second
    /// (taking turns), to tell held-and-served from merely queued.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub sample: usize,
}

/// Resolves `host:port` (loopback names like `localhost` work too).
fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("cannot resolve --addr {addr} (expected host:port)"))?
        .next()
        .with_context(|| format!("--addr {addr} resolves to no address"))
}

fn common_config(args: &CommonArgs) -> anyhow::Result<CommonConfig> {
    Ok(CommonConfig {
        addr: resolve(&args.addr)?,
        duration: args.duration,
        timeout: args.timeout,
        pid: args.pid,
        warmup: args.warmup,
    })
}

/// The run the flags ask for.
pub fn config_from(command: &Command) -> anyhow::Result<Config> {
    Ok(match command {
        Command::Echo(args) => Config::Echo(EchoConfig {
            common: common_config(&args.common)?,
            connections: args.connections,
            size: args.size,
            rate: args.rate,
        }),
        Command::Http(args) => Config::Http(HttpConfig {
            common: common_config(&args.common)?,
            load: load_from(&args.load),
            path: args.path.clone(),
            keepalive: !args.no_keepalive,
            close: args.close,
        }),
        Command::Rpc(args) => Config::Rpc(RpcConfig {
            common: common_config(&args.common)?,
            load: load_from(&args.load),
            call: args.call,
            pipeline: args.pipeline,
        }),
        Command::Hold(args) => Config::Hold(HoldConfig {
            common: common_config(&args.common)?,
            connections: args.connections,
            connect_rate: args.connect_rate,
            sample: args.sample,
        }),
    })
}

/// The HTTP or RPC load the flags ask for.
fn load_from(args: &LoadArgs) -> HttpLoad {
    match (args.users, args.rate) {
        (Some(users), _) => HttpLoad::Users {
            users,
            think: args.think.unwrap_or(THINK),
            spawn_rate: args.spawn_rate,
        },
        (None, Some(rate)) => HttpLoad::Rate {
            rate,
            connections: args.connections.unwrap_or(100),
        },
        (None, None) => HttpLoad::Connections {
            connections: args.connections.unwrap_or(10),
            spawn_rate: args.spawn_rate,
        },
    }
}

fn common_args(command: &Command) -> &CommonArgs {
    match command {
        Command::Echo(args) => &args.common,
        Command::Http(args) => &args.common,
        Command::Hold(args) => &args.common,
        Command::Rpc(args) => &args.common,
    }
}

/// What the binary does: run, print the summary, write the files.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = config_from(&cli.command)?;
    let paths = common_args(&cli.command);
    let connections = match &config {
        Config::Echo(config) => config.connections,
        Config::Http(config) => config.load.connections(),
        Config::Hold(config) => config.connections,
        Config::Rpc(config) => config.load.connections(),
    };
    for warning in limits::preflight(connections as u64).warnings {
        eprintln!("loadgen: warning: {warning}");
    }
    if cli.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    let runtime = crate::client_runtime(cli.threads)?;
    eprintln!("loadgen: {config}");
    let observe = Observe {
        progress: true,
        live: None,
    };
    let report = runtime.block_on(crate::run_observed(config, observe))?;

    print!("{}", report.summary_table());
    if let Some(path) = &paths.json {
        report.write_json(path)?;
        eprintln!("loadgen: wrote {}", path.display());
    }
    if let Some(path) = &paths.csv {
        report.write_csv(path)?;
        eprintln!("loadgen: wrote {}", path.display());
    }
    if let Command::Http(args) = &cli.command
        && let Some(prefix) = &args.locust_csv
    {
        let measured = report.summary.measured_seconds;
        for path in crate::locust::write(&report.locust, measured, "GET", &args.path, prefix)? {
            eprintln!("loadgen: wrote {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(arguments: &[&str]) -> Result<Config, String> {
        let cli = Cli::try_parse_from(arguments).map_err(|error| error.to_string())?;
        config_from(&cli.command).map_err(|error| error.to_string())
    }

    #[test]
    fn picks_the_http_load_from_the_flags() {
        let users = parse(&["loadgen", "http", "--users", "20", "--think", "0s..0s"]);
        let Ok(Config::Http(config)) = users else {
            panic!("{users:?}")
        };
        assert!(matches!(config.load, HttpLoad::Users { users: 20, .. }));
        let rate = parse(&["loadgen", "http", "--rate", "100", "--connections", "4"]);
        let Ok(Config::Http(config)) = rate else {
            panic!("{rate:?}")
        };
        assert_eq!(
            config.load,
            HttpLoad::Rate {
                rate: 100.0,
                connections: 4
            }
        );
        assert!(config.keepalive);
        let reset = parse(&["loadgen", "http", "--no-keepalive", "--close", "reset"]);
        let Ok(Config::Http(config)) = reset else {
            panic!("{reset:?}")
        };
        assert_eq!((config.keepalive, config.close), (false, Close::Reset));
        assert!(parse(&["loadgen", "http", "--close", "reset"]).is_err());
    }

    #[test]
    fn refuses_contradictions_and_bad_durations() {
        assert!(parse(&["loadgen", "http", "--users", "2", "--rate", "5"]).is_err());
        assert!(parse(&["loadgen", "http", "--think", "1s..2s"]).is_err());
        let error = parse(&["loadgen", "echo", "--duration", "10"]).expect_err("no unit");
        assert!(error.contains("no unit"), "{error}");
    }
}
