//! The prefork supervisor that 04-prefork and 05-prefork-threads share: the
//! parent forks P children after the socket listens, then only supervises.
//! The children do the serving, each its own way (04: one connection at a
//! time; 05: a few threads); this file is the part that is the same.
//!
//! **Why the parent has no threads.** `fork(2)` copies only the thread that
//! calls it. A lock another thread holds at that moment (the allocator's,
//! stdout's, a logger's) stays locked forever in the child, whose first
//! `malloc` may then hang. So the supervisor stays single-threaded: it does
//! not use [`Shutdown::watch_signals`] (that starts a watcher thread) but
//! receives SIGINT, SIGTERM and SIGCHLD through a `signalfd` it polls in
//! its one loop. Threads start only in a child, after its fork.
//!
//! **Signals.** The parent blocks the three signals before the start-up line
//! (tests send SIGTERM right after reading it) and children inherit that
//! mask, so a signal sent to a child before it is ready stays pending
//! instead of killing it. On SIGINT/SIGTERM the parent forwards the signal
//! to every child, stops replacing them, reaps them all and returns. Ctrl-C
//! in a terminal reaches the whole process group, so a child then gets
//! SIGINT from the terminal *and* the forwarded one; that is why a child
//! watches with [`RepeatedSignal::SameRequest`]: any number of signals is
//! one request to stop, not "exit now" on the second. Forcing is the
//! parent's call: a second signal to it SIGKILLs the children.
//!
//! **Replacement.** A child that dies while no stop was asked for is logged
//! (`child 4242 exited with signal SIGKILL; starting a replacement`) and
//! replaced after a pause that doubles while children keep dying young, so
//! a child that crashes at start cannot make the parent fork in a hot loop.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getppid};

use crate::shutdown::{RepeatedSignal, Shutdown, shutdown_signals};

/// The pause before replacing a child that died.
pub const RESPAWN_DELAY: Duration = Duration::from_millis(100);
/// The longest pause, reached when children keep dying right after start.
pub const RESPAWN_DELAY_MAX: Duration = Duration::from_secs(5);
/// A child that dies younger than this doubles the next pause.
const SHORT_LIFE: Duration = Duration::from_secs(1);

/// One worker process per CPU: they serve in parallel, and more processes
/// than cores would only take turns.
pub fn default_workers() -> usize {
    thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The parent process of a prefork server. Create it first thing in `main`,
/// before [`crate::start`] and before any thread exists.
#[derive(Debug)]
pub struct Supervisor {
    /// `None` in a child, which closes the parent's descriptor at once.
    signals: Option<SignalFd>,
    /// Living (or not yet reaped) children and when each started.
    children: HashMap<Pid, Instant>,
    respawn: Respawn,
    stopping: bool,
    forced: bool,
}

impl Supervisor {
    /// Blocks SIGINT, SIGTERM and SIGCHLD (their default actions would kill
    /// the parent or be lost) and opens the signalfd that delivers them.
    pub fn new() -> io::Result<Supervisor> {
        let mut signals = shutdown_signals();
        signals.add(Signal::SIGCHLD);
        signals.thread_block()?;
        Ok(Supervisor {
            signals: Some(SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK)?),
            children: HashMap::new(),
            respawn: Respawn::new(Instant::now()),
            stopping: false,
            forced: false,
        })
    }

    // ANCHOR: supervise
    /// Keeps `workers` children running `child` until SIGINT or SIGTERM,
    /// then stops them and returns once every one is reaped: no zombies,
    /// no orphans. An error means a second signal cut the stop short.
    ///
    /// `child` runs in the child process with that child's [`Shutdown`];
    /// when it returns, the child exits (status 0, or 1 if it failed). It
    /// never returns into the caller's code, which belongs to the parent.
    pub fn run<F>(mut self, workers: usize, child: F) -> io::Result<()>
    where
        F: Fn(&Shutdown) -> io::Result<()>,
    {
        log::info!("supervising {workers} worker processes");
        while !(self.stopping && self.children.is_empty()) {
            let mut timeout = PollTimeout::NONE;
            if !self.stopping {
                while self.children.len() < workers && self.respawn.wait(Instant::now()).is_zero() {
                    self.spawn(&child);
                }
                if self.children.len() < workers {
                    // Round up, or we would wake a little early and spin.
                    let wait = self.respawn.wait(Instant::now()).as_millis() + 1;
                    timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
                }
            }
            for signal in self.wait_for_signals(timeout) {
                match signal {
                    Signal::SIGCHLD => self.reap(),
                    _ if !self.stopping => {
                        log::info!("received {signal}: stopping the worker processes");
                        self.stopping = true;
                        self.signal_children(signal);
                    }
                    _ => {
                        log::warn!("received {signal} again: killing the worker processes");
                        self.forced = true;
                        self.signal_children(Signal::SIGKILL);
                    }
                }
            }
        }
        log::info!("all worker processes exited; stopped");
        if self.forced {
            return Err(io::Error::other(
                "stopped by a second signal, in-flight requests lost",
            ));
        }
        Ok(())
    }
    // ANCHOR_END: supervise

    // ANCHOR: fork
    fn spawn<F: Fn(&Shutdown) -> io::Result<()>>(&mut self, child: &F) {
        let parent = nix::unistd::getpid();
        debug_assert!(is_single_threaded(), "fork from a process with threads");
        // SAFETY: after fork the child has a copy of the whole memory but
        // only of the calling thread; that is unsound only if another thread
        // held a lock or was mid-update. The supervisor never starts a
        // thread (see the module docs; checked above in debug builds), so
        // the child is a consistent copy and may allocate, lock and spawn
        // threads like any process.
        #[allow(unsafe_code)]
        let forked = unsafe { fork() };
        match forked {
            Ok(ForkResult::Parent { child }) => {
                log::debug!("started worker process {child}");
                self.children.insert(child, Instant::now());
            }
            Ok(ForkResult::Child) => {
                self.signals = None;
                std::process::exit(run_child(parent, child));
            }
            Err(error) => {
                log::error!("cannot fork a worker process: {error}");
                self.respawn.child_died(Duration::ZERO, Instant::now());
            }
        }
    }
    // ANCHOR_END: fork

    /// Waits (at most `timeout`) and returns the signals that arrived.
    fn wait_for_signals(&self, timeout: PollTimeout) -> Vec<Signal> {
        let Some(signals) = &self.signals else {
            return Vec::new();
        };
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Err(error) = poll(&mut fds, timeout)
            && error != Errno::EINTR
        {
            log::error!("poll on the signalfd failed: {error}");
            thread::sleep(RESPAWN_DELAY);
        }
        // Several pending signals of one kind arrive as one: one SIGCHLD
        // may stand for many dead children, which `reap` handles.
        let mut received = Vec::new();
        while let Ok(Some(info)) = signals.read_signal() {
            received.extend(Signal::try_from(info.ssi_signo as i32).ok());
        }
        received
    }

    /// Collects every child that has exited, without blocking.
    fn reap(&mut self) {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(error) => return log::error!("waitpid failed: {error}"),
                Ok(status) => status,
            };
            // Only our children exist to reap; `pid()` is None only for
            // StillAlive, handled above.
            let Some(pid) = status.pid() else { continue };
            let Some(started) = self.children.remove(&pid) else {
                continue;
            };
            let how = describe(status);
            if self.stopping {
                log::debug!("worker process {pid} exited with {how}");
            } else {
                log::warn!("child {pid} exited with {how}; starting a replacement");
                let delay = self.respawn.child_died(started.elapsed(), Instant::now());
                if delay > RESPAWN_DELAY {
                    log::warn!("worker processes keep dying young; next one in {delay:?}");
                }
            }
        }
    }

    /// A pid in `children` is ours until we reap it (a dead child stays a
    /// zombie until then), so the kernel cannot have reused it: the signal
    /// cannot hit a stranger.
    fn signal_children(&self, signal: Signal) {
        for &pid in self.children.keys() {
            if let Err(error) = kill(pid, signal) {
                log::warn!("cannot send {signal} to worker process {pid}: {error}");
            }
        }
    }
}

/// The life of a child process, from just after fork to its exit status.
fn run_child<F: Fn(&Shutdown) -> io::Result<()>>(parent: Pid, child: &F) -> i32 {
    // A panic must not unwind into the parent's frames copied by fork
    // (the supervisor loop would then run in the child): catch it here.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let shutdown = child_shutdown(parent)?;
        child(&shutdown)
    }));
    match outcome {
        Ok(Ok(())) => 0,
        Ok(Err(error)) => {
            log::error!("worker process failed: {error}");
            1
        }
        Err(_) => 101,
    }
}

/// The child's shutdown: its watcher thread treats every SIGINT/SIGTERM as
/// the same request to stop (see the module docs for why not "exit at once"
/// on the second). If the parent dies, even by SIGKILL, the kernel sends the
/// child SIGTERM (`PR_SET_PDEATHSIG`), so no child outlives it.
fn child_shutdown(parent: Pid) -> io::Result<Shutdown> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
    // The inherited mask also blocks SIGCHLD; a child has no children, so
    // set exactly the two it waits for. Threads it starts inherit this.
    shutdown_signals().thread_set_mask()?;
    let shutdown = Shutdown::watch_signals_with(RepeatedSignal::SameRequest)?;
    if getppid() != parent {
        // The parent died before PR_SET_PDEATHSIG could take effect.
        shutdown.request();
    }
    Ok(shutdown)
}

/// `exit code 1`, `signal SIGKILL`: how a child ended, for the log.
fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit code {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("signal {signal}"),
        other => format!("{other:?}"),
    }
}

/// Whether this process has exactly one thread (read from /proc).
fn is_single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").map_or(true, |tasks| tasks.count() == 1)
}

/// When the next replacement child may be forked.
#[derive(Debug)]
struct Respawn {
    delay: Duration,
    not_before: Instant,
}

impl Respawn {
    fn new(now: Instant) -> Respawn {
        Respawn {
            delay: RESPAWN_DELAY,
            not_before: now,
        }
    }

    /// A child died after living `lifetime` (or could not be forked):
    /// returns the pause before its replacement.
    fn child_died(&mut self, lifetime: Duration, now: Instant) -> Duration {
        if lifetime >= SHORT_LIFE {
            self.delay = RESPAWN_DELAY;
        }
        let delay = self.delay;
        self.not_before = self.not_before.max(now + delay);
        if lifetime < SHORT_LIFE {
            self.delay = (self.delay * 2).min(RESPAWN_DELAY_MAX);
        }
        delay
    }

    /// How long until a child may be forked (zero: now).
    fn wait(&self, now: Instant) -> Duration {
        self.not_before.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_dying_young_back_off_exponentially_up_to_a_cap() {
        let start = Instant::now();
        let mut respawn = Respawn::new(start);
        assert_eq!(
            respawn.wait(start),
            Duration::ZERO,
            "the first children start at once"
        );
        let mut delays = Vec::new();
        for _ in 0..8 {
            delays.push(respawn.child_died(Duration::from_millis(5), start));
        }
        let millis: Vec<_> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(millis, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn a_child_that_lived_resets_the_pause() {
        let start = Instant::now();
        let mut respawn = Respawn::new(start);
        respawn.child_died(Duration::ZERO, start);
        respawn.child_died(Duration::ZERO, start);
        let later = start + Duration::from_secs(60);
        assert_eq!(
            respawn.child_died(Duration::from_secs(30), later),
            RESPAWN_DELAY
        );
        assert_eq!(respawn.wait(later), RESPAWN_DELAY);
        assert_eq!(respawn.wait(later + RESPAWN_DELAY), Duration::ZERO);
    }

    #[test]
    fn deaths_at_once_share_one_pause() {
        let start = Instant::now();
        let mut respawn = Respawn::new(start);
        respawn.child_died(Duration::from_secs(10), start);
        respawn.child_died(Duration::from_secs(10), start);
        assert_eq!(respawn.wait(start), RESPAWN_DELAY);
    }
}
