//! The command line every server shares, and where a server's parts are
//! assembled from it. Each model's `Args` flattens [`ServerArgs`] and adds
//! only its own knobs (`--workers`, `--threads`, ...), so `--help` reads the
//! same on all eleven binaries. The protocol core knows nothing of flags:
//! [`ServerArgs::session_config`] turns them into the plain values a
//! [`crate::session::Session`] takes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use durations::parse_duration;

use log::LevelFilter;

use crate::app::{App, FileServer, LabPage, TowerApp};
use crate::files::Root;
use crate::session::{HttpSettings, Protocol, SessionConfig};

/// Which protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Send every received byte back, unchanged (try it with `nc`).
    Echo,
    /// The lab's "fake database" web page: every `GET /` waits --db-latency.
    Http,
    /// JSON-RPC 2.0, one message per line (the RPC homework): try
    /// `{"jsonrpc":"2.0","method":"func1","params":[1,2,3],"id":1}` in `nc`;
    /// `query` waits --db-latency.
    Rpc,
    /// The lab's static-file server: the files under --root.
    Files,
    /// A web framework hosted on this server: an axum app, `GET /quote`.
    Axum,
}

impl Mode {
    /// The name used on the start-up line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Echo => "echo",
            Mode::Http => "http",
            Mode::Rpc => "rpc",
            Mode::Files => "files",
            Mode::Axum => "axum",
        }
    }
}

/// Verbosity of the log on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    /// Start, stop and problems.
    Info,
    /// Also every connect, receive, send and close, with pid and thread.
    Debug,
}

/// Flags that every server accepts, with the same meaning everywhere.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Where to listen; port 0 lets the OS pick a free port (the start-up
    /// line tells which).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9090")]
    pub addr: SocketAddr,

    /// Which protocol to serve.
    #[arg(long, value_enum, default_value = "echo")]
    pub mode: Mode,

    /// Files mode: the document root. It must be a readable directory; it
    /// is resolved once (symlinks too) and nothing outside it is served.
    #[arg(long, value_name = "DIR", default_value = ".", value_parser = parse_root)]
    pub root: Arc<Root>,

    /// HTTP mode: how long the fake database takes to answer each `GET /`
    /// (RPC mode: each `query`), e.g. 300ms, 1s, 0ms.
    #[arg(long, value_name = "DURATION", default_value = "300ms", value_parser = parse_duration)]
    pub db_latency: Duration,

    /// Close a connection that sends nothing for this long. An HTTP request
    /// must also be complete this long after its first byte, however
    /// slowly it trickles in (else 408: the slowloris defence).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Log level; `debug` logs every connection event with pid and thread.
    #[arg(long, value_enum, default_value = "info")]
    pub log: LogLevel,

    /// Listen queue length. The usual default of 128 silently drops bursts
    /// of connects (clients then wait for SYN retries, 1 s and more).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub backlog: i32,
}

impl From<LogLevel> for LevelFilter {
    fn from(level: LogLevel) -> LevelFilter {
        match level {
            LogLevel::Error => LevelFilter::Error,
            LogLevel::Warn => LevelFilter::Warn,
            LogLevel::Info => LevelFilter::Info,
            LogLevel::Debug => LevelFilter::Debug,
        }
    }
}

impl ServerArgs {
    /// The protocol settings for sessions of the server called `model`.
    /// Call it once: it makes the server's app, which lives as long as the
    /// process.
    pub fn session_config(&self, model: &'static str) -> SessionConfig {
        SessionConfig {
            protocol: self.protocol(),
            idle_timeout: self.idle_timeout,
            server_name: model,
        }
    }

    /// The protocol `--mode` asks for; http, files and axum are three apps
    /// on one HTTP engine. The app is made once and never freed (it lives
    /// as long as the server; `'static` lets every connection, thread and
    /// forked child share it without reference counting).
    fn protocol(&self) -> Protocol {
        let http = |app: &'static dyn App, always_say_connection| {
            Protocol::Http(HttpSettings {
                app,
                always_say_connection,
            })
        };
        match self.mode {
            Mode::Echo => Protocol::Echo,
            Mode::Rpc => Protocol::Rpc {
                db_latency: self.db_latency,
            },
            Mode::Http => http(
                Box::leak(Box::new(LabPage {
                    db_latency: self.db_latency,
                })),
                false,
            ),
            Mode::Files => http(
                Box::leak(Box::new(FileServer {
                    root: Arc::clone(&self.root),
                })),
                true,
            ),
            Mode::Axum => http(
                Box::leak(Box::new(TowerApp::<_, axum::body::Body>::new(
                    crate::quote::router(),
                ))),
                true,
            ),
        }
    }
}

/// The document root, opened; not a readable directory is a usage error
/// (exit 2), found at start rather than at the first request.
fn parse_root(text: &str) -> Result<Arc<Root>, String> {
    Root::open(Path::new(text))
        .map(Arc::new)
        .map_err(|error| format!("not a readable directory: {error}"))
}
