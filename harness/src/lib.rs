//! Starting a model server as a child process and stopping it for sure:
//! the one harness the conformance suite and `bench compare`/`race` use.
//!
//! The server runs in a process group of its own, so that killing the group
//! reaches a prefork server's children too, and a Ctrl-C in the terminal
//! reaches only the tool, which then stops the server itself. Its start-up
//! line (`listening on ADDR model=M mode=X pid=N`) says where it listens;
//! its stderr is collected for error messages. Dropping a [`Server`] kills
//! its group and reaps it: no server outlives the test or the comparison.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// How often to look whether a server has exited.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// `None` once the server has been killed and reaped.
    child: Option<Child>,
    /// The address from the start-up line (the real port, not 0).
    pub addr: SocketAddr,
    /// The pid from the start-up line.
    pub pid: u32,
    /// The start-up line itself.
    pub startup_line: String,
    /// Everything the server wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Runs `command` (whose arguments must make the server listen on a
    /// free port) in a process group of its own and waits up to `timeout`
    /// for its start-up line. On failure the server is killed and the error
    /// says why, with what it wrote to stderr.
    pub fn spawn(command: Command, timeout: Duration) -> Result<Server, String> {
        Server::spawn_announced(command, timeout, |_| {})
    }

    /// [`Server::spawn`], telling `started` the new process group's id the
    /// moment it exists, before the start-up line: a caller that must kill
    /// its servers on Ctrl-C cannot miss one that is still starting.
    pub fn spawn_announced(
        command: Command,
        timeout: Duration,
        started: impl FnOnce(u32),
    ) -> Result<Server, String> {
        let (program, mut server, stdout) = Server::start(command)?;
        started(server.group());
        let (sender, receiver) = mpsc::channel();
        if let Some(stdout) = stdout {
            thread::spawn(move || {
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                if reader.read_line(&mut line).is_ok_and(|read| read > 0) {
                    let _ = sender.send(line.trim_end().to_string());
                }
                // Keep draining so a chatty server never blocks on a full pipe.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            });
        }
        let line = match receiver.recv_timeout(timeout) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(server.failure(&format!(
                    "{program} printed no start-up line within {timeout:?}"
                )));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Give the stderr thread a moment to read the last words.
                thread::sleep(Duration::from_millis(100));
                return Err(server.failure(&format!(
                    "{program} exited before it printed its start-up line"
                )));
            }
        };
        let Some((addr, pid)) = parse_startup_line(&line) else {
            return Err(server.failure(&format!("unexpected start-up line {line:?}")));
        };
        server.addr = addr;
        server.pid = pid;
        server.startup_line = line;
        Ok(server)
    }

    /// A server that does not print the contract's start-up line (nginx,
    /// the reference in the files scenario): started like the models, in a
    /// group of its own, and ready once `addr` accepts a connection.
    pub fn spawn_listening(
        command: Command,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<Server, String> {
        let (program, mut server, stdout) = Server::start(command)?;
        if let Some(stdout) = stdout {
            thread::spawn(move || {
                let _ = std::io::copy(&mut BufReader::new(stdout), &mut std::io::sink());
            });
        }
        let deadline = Instant::now() + timeout;
        while TcpStream::connect_timeout(&addr, EXIT_POLL).is_err() {
            if !server.is_running() {
                thread::sleep(Duration::from_millis(100));
                return Err(server.failure(&format!("{program} exited before it listened")));
            }
            if Instant::now() >= deadline {
                return Err(server.failure(&format!(
                    "{program} did not listen on {addr} within {timeout:?}"
                )));
            }
            thread::sleep(EXIT_POLL);
        }
        server.addr = addr;
        server.pid = server.child.as_ref().map_or(0, Child::id);
        server.startup_line =
            format!("{program} listening on {addr} (no start-up line of its own)");
        Ok(server)
    }

    /// Spawns `command` in a process group of its own, its stderr collected
    /// by a thread; returns the program's name and its stdout to read.
    fn start(mut command: Command) -> Result<(String, Server, Option<ChildStdout>), String> {
        let program = command.get_program().to_string_lossy().into_owned();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start {program}: {error}"))?;
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(pipe) = child.stderr.take() {
            let collected = Arc::clone(&stderr);
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut text = collected.lock().unwrap_or_else(PoisonError::into_inner);
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        let stdout = child.stdout.take();
        let server = Server {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid: 0,
            startup_line: String::new(),
            stderr,
        };
        Ok((program, server, stdout))
    }

    /// An error naming what went wrong plus the server's stderr; kills
    /// what was started.
    fn failure(&mut self, what: &str) -> String {
        self.kill();
        let stderr = self.stderr();
        if stderr.trim().is_empty() {
            what.to_string()
        } else {
            format!("{what}; its stderr: {}", stderr.trim().replace('\n', " | "))
        }
    }

    /// Sends a signal to the server process itself (not its group).
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        kill(Pid::from_raw(self.pid as i32), signal)
    }

    /// Whether the server is still running (false if it crashed or was
    /// stopped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Waits up to `limit` for the server to exit and returns its status;
    /// `None` if it is still running (or was already reaped).
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(EXIT_POLL),
                _ => return None,
            }
        }
    }

    /// The server's process group: the id of the process started (0 once
    /// it has been reaped).
    pub fn group(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether processes of the server's group are still alive (e.g. a
    /// prefork parent that exited without reaping its children).
    pub fn group_alive(&self) -> bool {
        killpg(Pid::from_raw(self.pid as i32), None).is_ok()
    }

    /// Kills the whole process group and reaps the server; returns its
    /// status if it had to be reaped here.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        let _ = child.kill();
        child.wait().ok()
    }

    /// What the server logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `listening on 127.0.0.1:PORT model=M mode=X pid=N` -> (address, pid).
pub fn parse_startup_line(line: &str) -> Option<(SocketAddr, u32)> {
    let mut words = line.split_whitespace();
    if (words.next(), words.next()) != (Some("listening"), Some("on")) {
        return None;
    }
    let addr = words.next()?.parse().ok()?;
    let pid = words
        .find_map(|word| word.strip_prefix("pid="))?
        .parse()
        .ok()?;
    Some((addr, pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_line_is_parsed() {
        let line = "listening on 127.0.0.1:4242 model=06-select mode=http pid=77";
        assert_eq!(
            parse_startup_line(line),
            Some((SocketAddr::from(([127, 0, 0, 1], 4242)), 77))
        );
        assert_eq!(parse_startup_line("hello"), None);
        assert_eq!(parse_startup_line("listening on 127.0.0.1:1 model=x"), None);
    }

    #[test]
    fn a_server_that_never_says_where_it_listens_is_an_error_with_its_stderr() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo oops >&2; exit 3"]);
        let error = Server::spawn(command, Duration::from_secs(5)).expect_err("no start-up line");
        assert!(error.contains("exited before"), "{error}");
        assert!(error.contains("oops"), "{error}");
    }

    #[test]
    fn a_server_without_a_start_up_line_is_ready_once_it_accepts() {
        // Below the kernel's ephemeral range (32768 and up by default): no
        // other test's `bind(:0)` or outgoing connection can take this port
        // between the checks, so "nothing listens" stays true once our
        // listener is gone.
        let addr = (20_000 + std::process::id() as u16 % 10_000..32_768)
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .find(|addr| std::net::TcpListener::bind(addr).is_ok())
            .expect("a free port below the ephemeral range");
        let mut command = Command::new("python3");
        command.args([
            "-c",
            &format!(
                "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', {}))\n\
                 s.listen()\ntime.sleep(60)",
                addr.port()
            ),
        ]);
        let mut server =
            Server::spawn_listening(command, addr, Duration::from_secs(10)).expect("listens");
        assert!(TcpStream::connect(addr).is_ok());
        assert!(server.is_running());
        assert!(server.startup_line.contains("listening on"));

        drop(server);
        assert!(
            TcpStream::connect(addr).is_err(),
            "the listener died with its server"
        );

        let mut quitter = Command::new("sh");
        quitter.args(["-c", "echo bye >&2; exit 1"]);
        let error = Server::spawn_listening(quitter, addr, Duration::from_secs(10))
            .expect_err("never listens");
        assert!(error.contains("exited before it listened"), "{error}");
        assert!(error.contains("bye"), "{error}");
    }

    #[test]
    fn a_started_server_is_killed_with_its_group_on_drop() {
        let mut command = Command::new("sh");
        // A shell that announces itself and a child that would outlive it.
        command.args([
            "-c",
            "sleep 60 & echo \"listening on 127.0.0.1:9 model=t mode=t pid=$$\"; wait",
        ]);
        let server = Server::spawn(command, Duration::from_secs(5)).expect("starts");
        assert_eq!(server.addr.port(), 9);
        let pid = server.pid;
        assert!(server.group_alive());
        drop(server);
        // The orphaned `sleep` is reaped by init a moment after the kill.
        let deadline = Instant::now() + Duration::from_secs(5);
        while killpg(Pid::from_raw(pid as i32), None).is_ok() {
            assert!(Instant::now() < deadline, "the group outlived its server");
            thread::sleep(Duration::from_millis(10));
        }
    }
}
