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

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// How many of the server's last stderr lines are kept for the report.
const STDERR_LINES_KEPT: usize = 20;

/// How often to look whether a stopping server has exited.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// A running model server.
#[derive(Debug)]
pub struct ModelServer {
    /// `None` once the server has been stopped and reaped.
    child: Option<Child>,
    pub pid: i32,
    pub addr: SocketAddr,
    /// The server's start-up line, `listening on ... pid=N`.
    pub startup_line: String,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
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

/// Keeps the last lines of a stream, for error messages and the report.
fn keep_tail(stream: impl Read + Send + 'static, tail: Arc<Mutex<VecDeque<String>>>) {
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == STDERR_LINES_KEPT {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
}

/// Reads `listening on 127.0.0.1:PORT model=... pid=N` into (address, pid).
fn parse_startup_line(line: &str) -> anyhow::Result<(SocketAddr, i32)> {
    let mut words = line.split_whitespace();
    let addr = match (words.next(), words.next(), words.next()) {
        (Some("listening"), Some("on"), Some(addr)) => addr
            .parse()
            .with_context(|| format!("bad address in start-up line {line:?}"))?,
        _ => bail!("unexpected start-up line {line:?}"),
    };
    let pid = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("pid="))
        .with_context(|| format!("no pid= in start-up line {line:?}"))?
        .parse()
        .with_context(|| format!("bad pid in start-up line {line:?}"))?;
    Ok((addr, pid))
}

impl ModelServer {
    /// Starts `binary` with `args` and waits up to `timeout` for its
    /// start-up line. On failure the error carries the server's stderr.
    pub fn start(binary: &Path, args: &[String], timeout: Duration) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own: SIGKILL to the group reaches a prefork
            // server's children too, and Ctrl-C in the terminal reaches
            // only the comparison, which then stops the server itself.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(stderr) = child.stderr.take() {
            keep_tail(stderr, Arc::clone(&stderr_tail));
        }
        let stdout = child
            .stdout
            .take()
            .context("the server's stdout was not captured")?;
        // The reader thread hands over the first line, then keeps reading
        // so that the server never blocks on a full stdout pipe.
        let (line_sender, line_receiver) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = line_sender.send(line);
            }
            for _ in lines.by_ref() {}
        });
        let mut server = ModelServer {
            pid: i32::try_from(child.id()).context("a pid that does not fit an i32")?,
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            startup_line: String::new(),
            stderr_tail,
        };
        let line = match line_receiver.recv_timeout(timeout) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(server.failure(&format!(
                    "no start-up line within {} s",
                    timeout.as_secs_f64()
                )));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Give the stderr thread a moment to read the last words.
                thread::sleep(Duration::from_millis(100));
                return Err(server.failure("exited before it printed its start-up line"));
            }
        };
        let (addr, pid) = match parse_startup_line(&line) {
            Ok(parsed) => parsed,
            Err(error) => return Err(server.failure(&format!("{error:#}"))),
        };
        if pid != server.pid {
            return Err(server.failure(&format!(
                "start-up line says pid={pid}, but the process is {}",
                server.pid
            )));
        }
        server.addr = addr;
        server.startup_line = line;
        Ok(server)
    }

    /// An error naming what went wrong at start-up plus the server's
    /// stderr; kills what was started.
    fn failure(&mut self, what: &str) -> anyhow::Error {
        self.kill_group();
        let stderr = self.stderr_tail().join(" | ");
        if stderr.is_empty() {
            anyhow!("the server {what}")
        } else {
            anyhow!("the server {what}; its stderr: {stderr}")
        }
    }

    /// The last lines the server wrote to stderr (its warnings).
    pub fn stderr_tail(&self) -> Vec<String> {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect()
    }

    /// Whether the server is still running (false if it crashed).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL the whole group.
    pub fn stop(&mut self, grace: Duration) -> Stopped {
        let Some(mut child) = self.child.take() else {
            return Stopped {
                status: "already stopped".to_string(),
                ..Stopped::default()
            };
        };
        let asked = Instant::now();
        if let Ok(Some(status)) = child.try_wait() {
            return Stopped {
                status: describe_status(status),
                clean: false,
                seconds: 0.0,
                note: Some("the server had exited before it was asked to stop".to_string()),
            };
        }
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
        let deadline = asked + grace;
        let mut exited = None;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => {
                    exited = Some(status);
                    break;
                }
                Ok(None) => thread::sleep(EXIT_POLL),
                Err(_) => break,
            }
        }
        let seconds = asked.elapsed().as_secs_f64();
        match exited {
            Some(status) => {
                // The leader is gone; anyone left in its group is an
                // orphaned worker the parent should have reaped.
                let leftovers = killpg(Pid::from_raw(self.pid), None).is_ok();
                let note = leftovers.then(|| {
                    let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
                    "processes of its group were still running after it exited; killed them"
                        .to_string()
                });
                Stopped {
                    status: describe_status(status),
                    clean: status.success() && note.is_none(),
                    seconds,
                    note,
                }
            }
            None => {
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
                let status = child
                    .wait()
                    .map_or_else(|error| format!("cannot wait: {error}"), describe_status);
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

    fn kill_group(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.kill_group();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_startup_line() {
        let (addr, pid) =
            parse_startup_line("listening on 127.0.0.1:4242 model=07-epoll mode=http pid=77")
                .expect("a good line");
        assert_eq!(addr, "127.0.0.1:4242".parse().expect("an address"));
        assert_eq!(pid, 77);
        assert!(parse_startup_line("hello").is_err());
        assert!(parse_startup_line("listening on 127.0.0.1:1 model=x").is_err());
    }
}
