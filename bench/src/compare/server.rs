//! One model binary, started for one cell of the comparison and stopped
//! after it.
//!
//! The server is started in a process group of its own, so that the
//! prefork models (a parent and its children) can be killed as one if they
//! do not stop when asked. Stopping is polite first (SIGTERM: the contract
//! says a server drains and exits 0 within about 5 s) and forceful after a
//! deadline (SIGKILL to the whole group). A [`ModelServer`] that is dropped
//! without being stopped, for example because the comparison failed half
//! way, kills its group: no server outlives the comparison.

use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

/// How many of the server's last stderr lines are kept for the report.
/// How long a model may take to print its start-up line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a model may take to exit after SIGTERM: the contract's 5 s of
/// draining plus a margin, then the whole process group is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(8);
const STDERR_LINES_KEPT: usize = 20;

/// A running model server, started by the workspace's harness (the same
/// one the conformance suite uses).
#[derive(Debug)]
pub struct ModelServer {
    server: harness::Server,
    /// The harness's pid as the `i32` that /proc and kill(2) take, checked
    /// once at start.
    pub pid: i32,
}

/// How a server ended.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stopped {
    /// `exit 0`, `exit 1`, `signal 9`, ...
    pub status: String,
    /// True if it exited 0 on its own after SIGTERM, as the contract asks.
    pub clean: bool,
    /// From SIGTERM to exit.
    pub seconds: f64,
    /// Why it was not clean: killed after the deadline, died before being
    /// asked to stop, left processes behind.
    pub note: Option<String>,
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "unknown exit".to_string(),
    }
}

impl ModelServer {
    /// Starts `binary` with `args` and waits up to `timeout` for its
    /// start-up line. On failure the error carries the server's stderr.
    pub fn start(binary: &Path, args: &[String], timeout: Duration) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command.args(args);
        let server = harness::Server::spawn(command, timeout).map_err(|error| anyhow!(error))?;
        ModelServer::from_harness(server)
    }

    /// Wraps a server the harness started another way (nginx).
    pub fn from_harness(server: harness::Server) -> anyhow::Result<Self> {
        Ok(ModelServer {
            pid: i32::try_from(server.pid).map_err(|_| anyhow!("pid {} too large", server.pid))?,
            server,
        })
    }

    /// Where the server listens (the real port, not 0).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The server's start-up line, `listening on ... pid=N`.
    pub fn startup_line(&self) -> &str {
        &self.server.startup_line
    }

    /// Everything the server wrote to stderr so far (its log).
    pub fn stderr(&self) -> String {
        self.server.stderr()
    }

    /// The last lines the server wrote to stderr (its warnings).
    pub fn stderr_tail(&self) -> Vec<String> {
        let stderr = self.stderr();
        let lines: Vec<&str> = stderr.lines().collect();
        let skip = lines.len().saturating_sub(STDERR_LINES_KEPT);
        lines[skip..].iter().map(ToString::to_string).collect()
    }

    /// Whether the server is still running (false if it crashed).
    pub fn is_running(&mut self) -> bool {
        self.server.is_running()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL the whole group.
    pub fn stop(&mut self, grace: Duration) -> Stopped {
        if !self.server.is_running() {
            return match self.server.kill() {
                Some(status) => Stopped {
                    status: describe_status(status),
                    clean: false,
                    seconds: 0.0,
                    note: Some("the server had exited before it was asked to stop".to_string()),
                },
                None => Stopped {
                    status: "already stopped".to_string(),
                    ..Stopped::default()
                },
            };
        }
        let asked = Instant::now();
        let _ = self.server.signal(Signal::SIGTERM);
        let exited = self.server.wait_for_exit(grace);
        let seconds = asked.elapsed().as_secs_f64();
        match exited {
            Some(status) => {
                // The leader is gone; anyone left in its group is an
                // orphaned worker the parent should have reaped.
                let note = self.server.group_alive().then(|| {
                    "processes of its group were still running after it exited; killed them"
                        .to_string()
                });
                self.server.kill();
                Stopped {
                    status: describe_status(status),
                    clean: status.success() && note.is_none(),
                    seconds,
                    note,
                }
            }
            None => {
                let status = self
                    .server
                    .kill()
                    .map_or_else(|| "cannot wait".to_string(), describe_status);
                Stopped {
                    status,
                    clean: false,
                    seconds,
                    note: Some(format!(
                        "did not exit within {:.0} s of SIGTERM; killed its process group",
                        grace.as_secs_f64()
                    )),
                }
            }
        }
    }
}
