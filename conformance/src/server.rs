//! Starting a server binary as a child process and stopping it for sure.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::skip::skip;

/// The contract's defaults, assumed of a running server whose settings the
/// user did not state.
pub const DEFAULT_DB_LATENCY: Duration = Duration::from_millis(300);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The value after `name` in a flag list.
pub(crate) fn flag<'a>(flags: &[&'a str], name: &str) -> Option<&'a str> {
    flags
        .iter()
        .position(|flag| *flag == name)
        .and_then(|index| flags.get(index + 1).copied())
}

/// The duration a flag list sets with `name`, or `default`.
pub(crate) fn duration_flag(flags: &[&str], name: &str, default: Duration) -> Duration {
    flag(flags, name)
        .and_then(|text| durations::parse_duration(text).ok())
        .unwrap_or(default)
}

/// How long a server may take to print its start-up line.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The process groups of every server started and not yet stopped, so that
/// the checker can kill them when a check overruns its deadline (its guard
/// is stuck in the hung check's thread) or the user presses Ctrl-C.
static STARTED: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn started() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    STARTED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Kills every server (and forked child of one) a check started that is
/// still running. Their guards then find them gone.
pub fn kill_every_started_server() {
    for group in std::mem::take(&mut *started()) {
        let _ = killpg(Pid::from_raw(group as i32), Signal::SIGKILL);
    }
}

/// A server under test: started by the workspace's harness (the same one
/// `bench compare` uses), or, for `check --addr`, one already running.
/// Dropping a started one kills its whole process group (the server and any
/// children it forked) and reaps it.
#[derive(Debug)]
pub struct Server {
    /// `None` for a server the checks did not start.
    inner: Option<harness::Server>,
    /// The address from the start-up line (the real port, not 0).
    pub addr: SocketAddr,
    /// The pid from the start-up line (0 if not started here).
    pub pid: u32,
    /// The fake DB's latency and the idle timeout the server runs with:
    /// what timing assertions must allow for.
    pub db_latency: Duration,
    pub idle_timeout: Duration,
}

impl Server {
    /// Starts `binary --addr 127.0.0.1:0 ARGS...` and waits for its
    /// start-up line `listening on ADDR model=... mode=... pid=PID`.
    pub fn start(binary: &str, args: &[&str]) -> Server {
        Server::start_program(binary, &[], args)
    }

    /// Starts `program OWN_ARGS... --addr 127.0.0.1:0 ARGS...`: a program
    /// that needs its own arguments first (`python3 my_server.py`).
    pub(crate) fn start_program(program: &str, own_args: &[String], args: &[&str]) -> Server {
        let mut command = Command::new(program);
        command
            .args(own_args)
            .args(["--addr", "127.0.0.1:0"])
            .args(args);
        Server::spawn(program, command)
    }

    /// Like [`Server::start`], but the server runs with at most
    /// `open_files` descriptors (soft and hard limit, so it cannot raise
    /// them), to test how it survives running out.
    pub fn start_with_open_file_limit(binary: &str, args: &[&str], open_files: u32) -> Server {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "ulimit -n {open_files} && exec \"$0\" --addr 127.0.0.1:0 \"$@\""
            ))
            .arg(binary)
            .args(args);
        Server::spawn(binary, command)
    }

    fn spawn(binary: &str, command: Command) -> Server {
        let flags: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        // Registered as soon as it exists: a Ctrl-C while the server is
        // still starting must not leave it behind.
        let mut group = 0;
        let announce = |id| {
            group = id;
            started().insert(id);
        };
        let inner = harness::Server::spawn_announced(command, START_TIMEOUT, announce)
            .unwrap_or_else(|error| {
                started().remove(&group);
                panic!("{binary}: {error}")
            });
        Server {
            addr: inner.addr,
            pid: inner.pid,
            db_latency: duration_flag(&flags, "--db-latency", DEFAULT_DB_LATENCY),
            idle_timeout: duration_flag(&flags, "--idle-timeout", DEFAULT_IDLE_TIMEOUT),
            inner: Some(inner),
        }
    }

    /// A server that is already listening on `addr`, with these settings.
    pub(crate) fn running(
        addr: SocketAddr,
        db_latency: Duration,
        idle_timeout: Duration,
    ) -> Server {
        Server {
            inner: None,
            addr,
            pid: 0,
            db_latency,
            idle_timeout,
        }
    }

    /// The started server, or a skip naming what the check needed it for.
    fn started(&self, why: &str) -> &harness::Server {
        self.inner
            .as_ref()
            .unwrap_or_else(|| skip(format!("needs --exe: {why}")))
    }

    /// The server's pid, for checks that read its memory or children: a
    /// skip for a server the checks did not start.
    pub fn process(&self, why: &str) -> u32 {
        self.started(why).pid
    }

    /// Sends a signal to the server process itself (not its group).
    pub fn signal(&self, signal: Signal) {
        self.started("sends it a signal")
            .signal(signal)
            .expect("the server process exists");
    }

    /// Waits up to `limit` for the server to exit and returns its status.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.started("waits for it to exit");
        self.inner.as_mut()?.wait_for_exit(limit)
    }

    /// Waits up to `limit` until the server's stderr holds `needle` at
    /// least `count` times (start it with `--log debug` to see every
    /// connect and recv): the observable state a test waits for instead of
    /// sleeping and hoping. Panics with the log if it never comes.
    pub fn wait_for_log(&self, needle: &str, count: usize, limit: Duration) {
        self.started("reads the server's log");
        let deadline = Instant::now() + limit;
        while self.stderr().matches(needle).count() < count {
            if Instant::now() > deadline {
                panic!(
                    "the server did not log {needle:?} {count} time(s) within {limit:?}:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The start-up line the server printed (empty for a server the
    /// checks did not start).
    pub fn startup_line(&self) -> &str {
        self.inner
            .as_ref()
            .map_or("", |inner| inner.startup_line.as_str())
    }

    /// What the server logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.inner
            .as_ref()
            .map(harness::Server::stderr)
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The harness kills the group when `inner` drops, right after this.
        if let Some(inner) = &self.inner {
            started().remove(&inner.group());
            if thread::panicking() && !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
                eprintln!("--- server stderr ---\n{}---", inner.stderr());
            }
        }
    }
}

/// Set by the checker, which reports a failure itself: a failing check then
/// does not also dump the server's log on the terminal.
pub static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `binary ARGS...` to completion (at most 20 s) and returns its exit
/// status and stderr, for the tests of bad flags and busy ports.
pub fn run_to_exit(binary: &str, args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
    // Its own group (process_group(0) above): registered so that the
    // checker's Ctrl-C reaches it.
    started().insert(child.id());
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait works on our child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
            started().remove(&child.id());
            panic!("{binary} {args:?} did not exit within 20 s");
        }
        thread::sleep(Duration::from_millis(20));
    };
    started().remove(&child.id());
    (status, reader.join().unwrap_or_default())
}

/// On a system where a model cannot run (10 and 11 off Linux, 08 on
/// FreeBSD), its binary is one line on stderr, `MODEL needs WHAT; on this
/// system try OTHER`, and exit status 1.
pub fn says_it_cannot_run_here(binary: &str, needs: &str, instead: &str) {
    let (status, stderr) = run_to_exit(binary, &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let model = binary.rsplit('/').next().unwrap_or(binary);
    assert!(
        stderr.starts_with(&format!("{model} needs {needs}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("on this system try {instead}")),
        "{stderr}"
    );
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// The check the non-Linux models run, run here on a stand-in that
    /// behaves like them, so it is not code only other systems execute.
    #[test]
    fn a_model_that_cannot_run_here_is_recognised() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("11-io-uring");
        let script = "#!/bin/sh\necho \"11-io-uring needs Linux's io_uring; on this system try \
                      07-epoll\" >&2\nexit 1\n";
        std::fs::write(&path, script).expect("write the stand-in");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
        let path = path.to_str().expect("a UTF-8 path");
        says_it_cannot_run_here(path, "Linux's io_uring", "07-epoll");
        let wrong = std::panic::catch_unwind(|| says_it_cannot_run_here(path, "epoll", "07-epoll"));
        assert!(wrong.is_err(), "a different need is noticed");
    }
}
