//! What a check runs against. Every model's `cargo test` and the `check`
//! binary's `--exe` hand the checks a program the check starts itself with
//! the flags it needs; `check --addr` hands them a server that is already
//! running, which a check can only connect to. The checks are the same
//! code for both: where a check needs what a running server cannot give
//! (a flag of its choosing, a signal, the server's log), it stops with
//! [`skip`] and the checker reports it as skipped rather than failed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Output};
use std::time::Duration;

use crate::server::{DEFAULT_DB_LATENCY, DEFAULT_IDLE_TIMEOUT, Server, flag, run_to_exit};
use crate::skip::skip;

/// A server to check.
#[derive(Debug, Clone)]
pub struct Target {
    kind: Kind,
    /// The `Server:` header every response must carry, where it is known
    /// (a model names itself after its binary); `None` accepts any.
    pub server_name: Option<String>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `program ARGS... --addr 127.0.0.1:0 FLAGS-OF-THE-CHECK`.
    Exe {
        program: String,
        args: Vec<String>,
        /// The modes the server offers; `None`: all of the contract's.
        modes: Option<Vec<String>>,
    },
    /// Already listening in one mode; never started or signalled here.
    Running {
        addr: SocketAddr,
        mode: String,
        settings: Settings,
    },
}

/// What the user says about a running server, so that timing checks still
/// apply and the files checks know where to put their files.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub db_latency: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    /// The (empty) directory a files-mode server serves.
    pub root: Option<PathBuf>,
}

/// A binary's path is that binary, as `suite!` is usually given it.
impl From<&str> for Target {
    fn from(binary: &str) -> Target {
        Target::exe(binary)
    }
}

impl Target {
    /// A model's binary, as its `tests/conformance.rs` names it.
    pub fn exe(binary: &str) -> Target {
        Target {
            kind: Kind::Exe {
                program: binary.to_string(),
                args: Vec::new(),
                modes: None,
            },
            server_name: Some(binary.rsplit('/').next().unwrap_or(binary).to_string()),
        }
    }

    /// A model's binary started with `args` before each check's flags,
    /// e.g. `06-select --syscall poll`.
    pub fn exe_with(binary: &str, args: &[&str]) -> Target {
        let mut target = Target::exe(binary);
        if let Kind::Exe { args: own, .. } = &mut target.kind {
            own.extend(args.iter().map(ToString::to_string));
        }
        target
    }

    /// Any program that keeps the contract's flags and start-up line,
    /// started as `program ARGS...` plus each check's flags; `modes` limits
    /// the checks to the modes it offers.
    pub fn command(program: &str, args: &[String], modes: Option<Vec<String>>) -> Target {
        Target {
            kind: Kind::Exe {
                program: program.to_string(),
                args: args.to_vec(),
                modes,
            },
            server_name: None,
        }
    }

    /// A server already listening on `addr` in `mode`.
    pub fn running(addr: SocketAddr, mode: &str, settings: Settings) -> Target {
        Target {
            kind: Kind::Running {
                addr,
                mode: mode.to_string(),
                settings,
            },
            server_name: None,
        }
    }

    /// The same program started through util-linux's `setpriv` without the
    /// two capabilities that let root read and search whatever the mode
    /// bits say (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): tests often run as
    /// root, where `chmod 000` would deny nothing. The server keeps its uid
    /// and every other capability. A running server is what it is.
    pub fn without_read_override(&self) -> Target {
        let mut target = self.clone();
        if let Kind::Exe { program, args, .. } = &mut target.kind {
            let mut wrapped: Vec<String> =
                ["--bounding-set", "-dac_override,-dac_read_search", "--"]
                    .map(String::from)
                    .into();
            wrapped.push(std::mem::replace(program, "setpriv".to_string()));
            wrapped.append(args);
            *args = wrapped;
        }
        target
    }

    /// Whether the checks start the server themselves.
    pub fn is_started_here(&self) -> bool {
        matches!(self.kind, Kind::Exe { .. })
    }

    /// The idle timeout the checks must allow for: what they ask for when
    /// they start the server, else what the user stated, else the default.
    pub fn idle_timeout(&self) -> Duration {
        match &self.kind {
            Kind::Exe { .. } => DEFAULT_IDLE_TIMEOUT,
            Kind::Running { settings, .. } => settings.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
        }
    }

    /// The server for a check, started with `flags` (`--mode M` and the
    /// settings the check needs). A running server is used as it is if it
    /// runs in mode M; its stated (or default) latency and timeout replace
    /// the check's, and the check's assertions read them from the
    /// [`Server`]. A check that needs the server's log cannot run on it.
    pub fn start(&self, flags: &[&str]) -> Server {
        let mode = flag(flags, "--mode").unwrap_or("echo");
        match &self.kind {
            Kind::Exe {
                program,
                args,
                modes,
            } => {
                if let Some(modes) = modes
                    && !modes.iter().any(|offered| offered == mode)
                {
                    skip(format!(
                        "needs --mode {mode}; the server offers only {}",
                        modes.join(", ")
                    ));
                }
                Server::start_program(program, args, flags)
            }
            Kind::Running {
                addr,
                mode: running_mode,
                settings,
            } => {
                if running_mode != mode {
                    skip(format!(
                        "needs a server in --mode {mode}; this one runs --mode {running_mode}"
                    ));
                }
                if flag(flags, "--log") == Some("debug") {
                    skip("needs --exe: reads the server's debug log");
                }
                Server::running(
                    *addr,
                    settings.db_latency.unwrap_or(DEFAULT_DB_LATENCY),
                    settings.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
                )
            }
        }
    }

    /// The document root a running files server serves, if stated.
    pub(crate) fn running_root(&self) -> Option<Option<PathBuf>> {
        match &self.kind {
            Kind::Exe { .. } => None,
            Kind::Running { settings, .. } => Some(settings.root.clone()),
        }
    }

    /// Runs the program with `flags` until it exits (bad flags, a busy
    /// port): only for a program the checks start.
    pub fn run_to_exit(&self, flags: &[&str]) -> (ExitStatus, String) {
        let (program, all) = self.command_line(flags, "starts it with wrong flags");
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_to_exit(&program, &all)
    }

    /// Runs the program with `flags` (`--help`, `--version`) and returns
    /// what it printed.
    pub fn output(&self, flags: &[&str]) -> Output {
        let (program, all) = self.command_line(flags, "runs it with --help");
        std::process::Command::new(&program)
            .args(&all)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {program}: {error}"))
    }

    fn command_line(&self, flags: &[&str], why: &str) -> (String, Vec<String>) {
        match &self.kind {
            Kind::Exe { program, args, .. } => {
                let mut all = args.clone();
                all.extend(flags.iter().map(|flag| flag.to_string()));
                (program.clone(), all)
            }
            Kind::Running { .. } => skip(format!("needs --exe: {why}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skip::Skip;

    #[test]
    fn a_running_server_in_another_mode_is_skipped_not_failed() {
        let target = Target::running(
            SocketAddr::from(([127, 0, 0, 1], 9)),
            "http",
            Settings::default(),
        );
        let outcome = std::panic::catch_unwind(|| target.start(&["--mode", "echo"]));
        let payload = outcome.expect_err("skipped");
        let reason = payload.downcast_ref::<Skip>().expect("a Skip payload");
        assert!(reason.0.contains("--mode echo"), "{reason:?}");
    }
}
