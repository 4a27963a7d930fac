//! What a run is asked to do, one struct per mode. The command line builds
//! these; the comparison (or a test) can build them directly and call
//! [`crate::run`].
//! They are stored in every report, so a result always says how it was made.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{DurationRange, as_text, format_duration};

/// The lab's Locust users think 5 to 15 s between requests: the default
/// think time.
pub const THINK: DurationRange = DurationRange {
    min: Duration::from_secs(5),
    max: Duration::from_secs(15),
};

/// Settings every mode shares.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommonConfig {
    /// The server to load.
    pub addr: SocketAddr,
    /// How long to load it; the run stops by itself after this.
    #[serde(with = "as_text")]
    pub duration: Duration,
    /// A request (or connect) not done within this counts as a timeout.
    #[serde(with = "as_text")]
    pub timeout: Duration,
    /// The server's pid: sample its process tree every second.
    pub pid: Option<i32>,
    /// Leave the first seconds out of the totals (throughput, percentiles,
    /// errors): while clients connect and queues fill, the numbers describe
    /// the start, not the steady state. Counted in whole seconds, because
    /// the run looks at its counters once a second; the per-second series
    /// and the resource peaks still cover the whole run.
    #[serde(with = "as_text", default)]
    pub warmup: Duration,
}

impl CommonConfig {
    /// Defaults as on the command line.
    pub fn new(addr: SocketAddr, duration: Duration) -> Self {
        CommonConfig {
            addr,
            duration,
            timeout: Duration::from_secs(5),
            pid: None,
            warmup: Duration::ZERO,
        }
    }
}

/// `loadgen echo`: connections that send `size` bytes and read them back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EchoConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub connections: usize,
    /// Bytes per message.
    pub size: usize,
    /// Open loop: messages per second over all connections; `None` = closed
    /// loop, each connection sends its next message as soon as it has the
    /// previous one back.
    pub rate: Option<f64>,
}

/// How the HTTP load is generated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "load", rename_all = "snake_case")]
pub enum HttpLoad {
    /// The lab's Locust users: each user requests, thinks for a time drawn
    /// from `think`, and requests again. Users start at `spawn_rate` per
    /// second (`None`: all at once).
    Users {
        users: usize,
        think: DurationRange,
        spawn_rate: Option<f64>,
    },
    /// Closed loop without think time: each connection sends its next
    /// request as soon as the previous reply is in. Finds the saturation
    /// throughput.
    Connections {
        connections: usize,
        spawn_rate: Option<f64>,
    },
    /// Open loop: `rate` requests per second on a fixed plan, whatever the
    /// server does, over at most `connections` connections at once.
    Rate { rate: f64, connections: usize },
}

impl HttpLoad {
    /// The most connections open at once.
    pub fn connections(&self) -> usize {
        match self {
            HttpLoad::Users { users, .. } => *users,
            HttpLoad::Connections { connections, .. } | HttpLoad::Rate { connections, .. } => {
                *connections
            }
        }
    }
}

/// `loadgen http`: `GET` requests with a small HTTP/1.1 client.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HttpConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    #[serde(flatten)]
    pub load: HttpLoad,
    /// Request path, `/` for the fake-DB page.
    pub path: String,
    /// Reuse connections (HTTP/1.1 keep-alive); `false` opens one per request.
    pub keepalive: bool,
    /// Without keep-alive: how each connection ends.
    #[serde(default)]
    pub close: Close,
}

/// How a connection-per-request client ends its connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Close {
    /// The request says `Connection: close` and the client waits for the
    /// server's close (FIN): the server's side keeps the TIME_WAIT.
    #[default]
    Fin,
    /// The request leaves the connection open and the client resets it
    /// right after the reply (`SO_LINGER` 0): the server meets
    /// `ECONNRESET` on a connection it was keeping, and neither side keeps
    /// a TIME_WAIT.
    Reset,
}

/// Which function `loadgen rpc` calls: the homework's two extremes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RpcCall {
    /// `func1(x, y, z)`: no waiting, pure protocol and dispatch cost.
    Func1,
    /// `query(key)`: the fake DB, `--db-latency` per call.
    Query,
}

/// `loadgen rpc`: JSON-RPC calls, one line each, every result checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RpcConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Users, connections or a rate, as for HTTP (a rate counts calls).
    #[serde(flatten)]
    pub load: HttpLoad,
    pub call: RpcCall,
    /// Calls written at once per connection before reading their replies.
    pub pipeline: usize,
}

/// `loadgen hold`: many idle connections, opened at a set rate and kept.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HoldConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    pub connections: usize,
    /// New connections per second.
    pub connect_rate: f64,
    /// About how many held connections to check with an echo each second.
    pub sample: usize,
}

/// The config of any mode, tagged with the mode's name in JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Config {
    Echo(EchoConfig),
    Http(HttpConfig),
    Hold(HoldConfig),
    Rpc(RpcConfig),
}

impl Config {
    pub fn common(&self) -> &CommonConfig {
        match self {
            Config::Echo(config) => &config.common,
            Config::Http(config) => &config.common,
            Config::Hold(config) => &config.common,
            Config::Rpc(config) => &config.common,
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            Config::Echo(_) => "echo",
            Config::Http(_) => "http",
            Config::Hold(_) => "hold",
            Config::Rpc(_) => "rpc",
        }
    }

    /// The planned rate of an open loop (`--rate`); `None` for closed loops.
    pub fn open_loop_rate(&self) -> Option<f64> {
        match self {
            Config::Echo(config) => config.rate,
            Config::Http(HttpConfig {
                load: HttpLoad::Rate { rate, .. },
                ..
            })
            | Config::Rpc(RpcConfig {
                load: HttpLoad::Rate { rate, .. },
                ..
            }) => Some(*rate),
            _ => None,
        }
    }

    /// Whether latency is measured from an intended start (open loop).
    pub fn is_open_loop(&self) -> bool {
        self.open_loop_rate().is_some()
    }
}

fn spawning(spawn_rate: Option<f64>) -> String {
    match spawn_rate {
        Some(rate) => format!(", started at {rate}/s"),
        None => String::new(),
    }
}

/// How an HTTP or RPC load is generated, in words.
fn write_load(formatter: &mut fmt::Formatter<'_>, load: &HttpLoad) -> fmt::Result {
    match load {
        HttpLoad::Users {
            users,
            think,
            spawn_rate,
        } => write!(
            formatter,
            "{users} users thinking {think}{}",
            spawning(*spawn_rate)
        ),
        HttpLoad::Connections {
            connections,
            spawn_rate,
        } => write!(
            formatter,
            "{connections} connections, closed loop{}",
            spawning(*spawn_rate)
        ),
        HttpLoad::Rate { rate, connections } => write!(
            formatter,
            "open loop at {rate}/s over up to {connections} connections"
        ),
    }
}

impl fmt::Display for Config {
    /// One line saying what the run did, for the summary.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let common = self.common();
        write!(
            formatter,
            "{} {} for {}: ",
            self.mode(),
            common.addr,
            format_duration(common.duration)
        )?;
        match self {
            Config::Echo(config) => {
                write!(
                    formatter,
                    "{} connections, {} B messages, ",
                    config.connections, config.size
                )?;
                match config.rate {
                    Some(rate) => write!(formatter, "open loop at {rate} msg/s"),
                    None => write!(formatter, "closed loop"),
                }
            }
            Config::Http(config) => {
                write_load(formatter, &config.load)?;
                let keepalive = match (config.keepalive, config.close) {
                    (true, _) => "keep-alive",
                    (false, Close::Fin) => "a connection per request",
                    (false, Close::Reset) => "a connection per request, reset after the reply",
                };
                write!(formatter, ", GET {}, {keepalive}", config.path)
            }
            Config::Rpc(config) => {
                write_load(formatter, &config.load)?;
                let call = match config.call {
                    RpcCall::Func1 => "func1",
                    RpcCall::Query => "query",
                };
                write!(formatter, ", {call} calls, pipeline {}", config.pipeline)
            }
            Config::Hold(config) => write!(
                formatter,
                "{} idle connections opened at {}/s, ~{} checked per second",
                config.connections, config.connect_rate, config.sample
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_read_back_from_json() {
        let mut common = CommonConfig::new(
            "127.0.0.1:9090".parse().expect("an address"),
            Duration::from_secs(10),
        );
        common.pid = Some(42);
        let config = Config::Http(HttpConfig {
            common,
            load: HttpLoad::Users {
                users: 100,
                think: "5s..15s".parse().expect("a range"),
                spawn_rate: Some(10.0),
            },
            path: "/".to_string(),
            keepalive: true,
            close: Close::Fin,
        });
        let json = serde_json::to_value(&config).expect("serializes");
        assert_eq!(json["mode"], "http");
        assert_eq!(json["load"], "users");
        assert_eq!(json["think"], "5s..15s");
        assert_eq!(json["duration"], "10s");
        let back: Config = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back.to_string(), config.to_string());
    }
}
