//! The prefork supervisor that 04-prefork and 05-prefork-threads share: the
//! parent forks P children after the socket listens, then only supervises.
//! The children do the serving, each its own way (04: one connection at a
//! time; 05: a few threads); this file is the part that is the same.
//!
//! **Why the parent has no threads.** `fork(2)` copies only the thread that
//! calls it. A lock another thread holds at that moment (stdout's, a
//! logger's; glibc resets its own allocator locks) stays locked forever in
//! the child, whose first log line may then hang. So the supervisor stays single-threaded: it does
//! not use [`Shutdown::watch_signals`] (that starts a watcher thread) but
//! receives SIGINT, SIGTERM and SIGCHLD through a descriptor it polls in
//! its one loop (a signalfd on Linux, a self-pipe elsewhere: see
//! [`crate::signals`]). Threads start only in a child, after its fork.
//!
//! **Signals.** The parent watches the three signals before the start-up
//! line (tests send SIGTERM right after reading it) and blocks them around
//! each fork; children inherit that mask, so a signal sent to a child
//! before it is ready stays pending instead of killing it (or, with a
//! self-pipe, instead of running the parent's handler in the child). On SIGINT/SIGTERM the parent forwards the signal
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
//!
//! **Orphans.** A child must not outlive its parent, even one killed by
//! SIGKILL, which runs no cleanup. On Linux the child asks the kernel for
//! a signal when its parent dies (`PR_SET_PDEATHSIG`). Elsewhere it reads a
//! pipe whose only writing end the parent holds: when the parent dies, by
//! any means, the kernel closes that end and the read returns EOF. See
//! [`ParentDeath`].

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::shutdown::{RepeatedSignal, Shutdown};
use crate::signals::{SignalWatch, shutdown_signals};

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
    signals: Option<SignalWatch>,
    /// SIGINT, SIGTERM and SIGCHLD: what `signals` watches.
    watched: SigSet,
    parent_death: ParentDeath,
    /// Living (or not yet reaped) children and when each started.
    children: HashMap<Pid, Instant>,
    respawn: Respawn,
    stopping: bool,
    forced: bool,
}

impl Supervisor {
    /// Catches SIGINT, SIGTERM and SIGCHLD (their default actions would kill
    /// the parent or be lost) as a descriptor the supervisor polls.
    pub fn new() -> io::Result<Supervisor> {
        let mut watched = shutdown_signals();
        watched.add(Signal::SIGCHLD);
        Ok(Supervisor {
            signals: Some(SignalWatch::new(&watched)?),
            watched,
            parent_death: ParentDeath::new()?,
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
        // Blocked across the fork, so that the child starts with them
        // pending rather than handled by the parent's way of watching.
        let mut old_mask = SigSet::empty();
        if let Err(error) = nix::sys::signal::pthread_sigmask(
            SigmaskHow::SIG_BLOCK,
            Some(&self.watched),
            Some(&mut old_mask),
        ) {
            log::error!("cannot block signals to fork: {error}");
            self.respawn.child_died(Duration::ZERO, Instant::now());
            return;
        }
        // SAFETY: after fork the child has a copy of the whole memory but
        // only of the calling thread; that is unsound only if another thread
        // held a lock or was mid-update. The supervisor never starts a
        // thread (see the module docs; checked above in debug builds), so
        // the child is a consistent copy and may allocate, lock and spawn
        // threads like any process.
        #[allow(unsafe_code)]
        let forked = unsafe { fork() };
        if let Ok(ForkResult::Parent { .. }) | Err(_) = forked
            && let Err(error) = old_mask.thread_set_mask()
        {
            log::error!("cannot restore the signal mask after fork: {error}");
        }
        match forked {
            Ok(ForkResult::Parent { child }) => {
                log::debug!("started worker process {child}");
                self.children.insert(child, Instant::now());
            }
            Ok(ForkResult::Child) => {
                let code = match self.leave_to_child(parent) {
                    Ok(parent_death) => run_child(parent_death, child),
                    Err(error) => {
                        log::error!("cannot set up a worker process: {error}");
                        1
                    }
                };
                std::process::exit(code);
            }
            Err(error) => {
                log::error!("cannot fork a worker process: {error}");
                self.respawn.child_died(Duration::ZERO, Instant::now());
            }
        }
    }
    // ANCHOR_END: fork

    /// In a new child: drops the parent's ways of watching signals and keeps
    /// what the child needs to notice the parent's death.
    fn leave_to_child(&mut self, parent: Pid) -> io::Result<ChildOfParent> {
        if let Some(signals) = self.signals.take() {
            signals.forget_in_child(&self.watched)?;
        }
        Ok(self.parent_death.in_child(parent))
    }

    /// Waits (at most `timeout`) and returns the signals that arrived.
    fn wait_for_signals(&self, timeout: PollTimeout) -> Vec<Signal> {
        let Some(signals) = &self.signals else {
            return Vec::new();
        };
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Err(error) = poll(&mut fds, timeout)
            && error != Errno::EINTR
        {
            log::error!("poll on the signal descriptor failed: {error}");
            thread::sleep(RESPAWN_DELAY);
        }
        // Several pending signals of one kind arrive as one: one SIGCHLD
        // may stand for many dead children, which `reap` handles.
        signals.drain().unwrap_or_else(|error| {
            log::error!("cannot read the signal descriptor: {error}");
            Vec::new()
        })
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
fn run_child<F: Fn(&Shutdown) -> io::Result<()>>(parent: ChildOfParent, child: &F) -> i32 {
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
/// on the second). If the parent dies, even by SIGKILL, the child is told
/// ([`ParentDeath`]), so no child outlives it.
fn child_shutdown(parent: ChildOfParent) -> io::Result<Shutdown> {
    // The inherited mask also blocks SIGCHLD; a child has no children, so
    // set exactly the two it waits for. Threads it starts inherit this.
    shutdown_signals().thread_set_mask()?;
    let shutdown = Shutdown::watch_signals_with(RepeatedSignal::SameRequest)?;
    parent.watch(&shutdown)?;
    Ok(shutdown)
}

// ANCHOR: parent_death
/// How a child notices that its parent died: the parent's part, made once
/// before the first fork.
#[derive(Debug)]
struct ParentDeath {
    /// The pipe a child reads until EOF; the parent keeps the writing end
    /// and never writes. Not needed on Linux, which has PR_SET_PDEATHSIG.
    #[cfg(not(target_os = "linux"))]
    reader: Option<OwnedFd>,
    #[cfg(not(target_os = "linux"))]
    writer: Option<OwnedFd>,
}

/// The child's part, taken right after fork.
#[derive(Debug)]
struct ChildOfParent {
    #[cfg(target_os = "linux")]
    parent: Pid,
    #[cfg(not(target_os = "linux"))]
    reader: Option<OwnedFd>,
}

impl ParentDeath {
    #[cfg(target_os = "linux")]
    fn new() -> io::Result<ParentDeath> {
        Ok(ParentDeath {})
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> io::Result<ParentDeath> {
        let (reader, writer) = nix::unistd::pipe()?;
        Ok(ParentDeath {
            reader: Some(reader),
            writer: Some(writer),
        })
    }

    /// In the child, right after fork from `parent`.
    #[cfg(target_os = "linux")]
    fn in_child(&mut self, parent: Pid) -> ChildOfParent {
        ChildOfParent { parent }
    }

    /// In the child: closes its copy of the writing end at once, or the
    /// child itself would hold the pipe open and never see EOF.
    #[cfg(not(target_os = "linux"))]
    fn in_child(&mut self, _parent: Pid) -> ChildOfParent {
        drop(self.writer.take());
        ChildOfParent {
            reader: self.reader.take(),
        }
    }
}

impl ChildOfParent {
    /// Linux: the kernel sends this child SIGTERM when the parent dies,
    /// which the child's signal watcher takes as a request to stop.
    #[cfg(target_os = "linux")]
    fn watch(self, shutdown: &Shutdown) -> io::Result<()> {
        nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
        if nix::unistd::getppid() != self.parent {
            // The parent died before PR_SET_PDEATHSIG could take effect.
            shutdown.request();
        }
        Ok(())
    }

    /// Elsewhere: a thread waits for EOF on the pipe. (A parent that died
    /// before the fork returned closed the pipe too: the read ends at once.)
    #[cfg(not(target_os = "linux"))]
    fn watch(self, shutdown: &Shutdown) -> io::Result<()> {
        let reader = self
            .reader
            .ok_or_else(|| io::Error::other("the parent-death pipe is gone"))?;
        watch_parent_pipe(reader, shutdown)
    }
}

/// Starts a thread that blocks reading `reader` and requests `shutdown`
/// when the read ends: EOF, once every writing end is closed, which the
/// kernel does for a dead parent too. Portable; on Linux only its test
/// runs it.
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn watch_parent_pipe(reader: OwnedFd, shutdown: &Shutdown) -> io::Result<()> {
    let shutdown = shutdown.clone();
    thread::Builder::new()
        .name("parent-watch".into())
        .spawn(move || {
            let mut byte = [0; 1];
            // Blocks until EOF (or the parent wrote, which it never does,
            // or an error): either way the parent cannot be relied on.
            while let Err(Errno::EINTR) = nix::unistd::read(&reader, &mut byte) {}
            log::warn!("the supervisor died; stopping this worker process");
            shutdown.request();
        })?;
    Ok(())
}
// ANCHOR_END: parent_death

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

    /// The portable parent-death watch (Linux uses PR_SET_PDEATHSIG, so
    /// only this test runs it there): closing the last writing end, which
    /// the kernel does for a dead parent, requests the child's shutdown.
    #[test]
    fn closing_the_parent_death_pipe_stops_the_child() {
        let shutdown = Shutdown::new().expect("a shutdown");
        let (reader, writer) = nix::unistd::pipe().expect("a pipe");
        watch_parent_pipe(reader, &shutdown).expect("the watcher thread");
        let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
        let woken = poll(&mut fds, PollTimeout::from(200u16)).expect("poll");
        assert_eq!(woken, 0, "no request while the parent lives");
        drop(writer);
        let mut fds = [PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN)];
        let woken = poll(&mut fds, PollTimeout::from(5_000u16)).expect("poll");
        assert_eq!(woken, 1, "requested once the pipe closed");
        assert!(shutdown.is_requested());
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
