//! Graceful shutdown for the blocking models (01-05, 08).
//!
//! A blocked `accept` or `read` does not notice a flag being set, and a
//! signal handler may do almost nothing safely. So SIGINT and SIGTERM are
//! blocked in every thread and one watcher thread waits for them with
//! `sigwait`. When one arrives it
//! 1. sets the shutdown flag,
//! 2. writes to a pipe that [`crate::driver::accept`] polls next to the listener
//!    (the classic self-pipe: `poll` wakes for either), and
//! 3. shuts down the reading side of every tracked connection, so a thread
//!    blocked in `read` gets EOF at once and closes after answering what is
//!    in flight.
//!
//! The event loops (06, 07) and tokio (09) wait on signals their own way.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{Shutdown as HalfClose, shutdown};

use crate::signals::shutdown_signals;

/// How long in-flight requests may take to finish after SIGINT/SIGTERM.
pub const GRACE_PERIOD: Duration = Duration::from_secs(5);

/// The grace period ran out with `busy` connections still open: the server
/// exits anyway, closing them (said the same way by every model).
pub fn warn_grace_over(busy: usize, limit: Duration) {
    log::warn!("{busy} connection(s) still busy after {limit:?}; exiting anyway");
}

/// How long accepting pauses after running out of file descriptors. Long
/// enough not to spin a core, short enough to recover quickly.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a second SIGINT/SIGTERM means while the first is being honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepeatedSignal {
    /// The user means it: exit now, in-flight requests are lost.
    ExitAtOnce,
    /// Nothing new. A prefork child gets Ctrl-C from the terminal *and*
    /// forwarded by its parent; forcing an exit is the parent's call.
    SameRequest,
}

/// A cheap, cloneable handle on the process's shutdown state.
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: AtomicBool,
    /// Becomes readable (and stays readable) once shutdown is requested.
    wake_reader: OwnedFd,
    wake_writer: OwnedFd,
    /// File descriptors of open connections that a blocked `read` may hold.
    connections: Mutex<HashSet<RawFd>>,
    all_closed: Condvar,
}

impl Shutdown {
    /// A shutdown that only [`Shutdown::request`] triggers (no signals).
    pub fn new() -> io::Result<Shutdown> {
        let (wake_reader, wake_writer) = nix::unistd::pipe()?;
        Ok(Shutdown {
            inner: Arc::new(Inner {
                requested: AtomicBool::new(false),
                wake_reader,
                wake_writer,
                connections: Mutex::new(HashSet::new()),
                all_closed: Condvar::new(),
            }),
        })
    }

    /// Blocks SIGINT and SIGTERM and starts the thread that waits for them.
    ///
    /// Call it before starting any other thread: threads inherit the signal
    /// mask of the thread that creates them, and a thread that does not
    /// block the signals would be killed by them (their default action).
    /// A second signal exits at once, for when a drain takes too long.
    pub fn watch_signals() -> io::Result<Shutdown> {
        Shutdown::watch_signals_with(RepeatedSignal::ExitAtOnce)
    }

    /// [`Shutdown::watch_signals`], with a choice of what a second signal
    /// means (a prefork child hears Ctrl-C twice: see [`RepeatedSignal`]).
    pub fn watch_signals_with(repeated: RepeatedSignal) -> io::Result<Shutdown> {
        let shutdown = Shutdown::new()?;
        let signals = shutdown_signals();
        signals.thread_block()?;
        let watcher = shutdown.clone();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let Ok(first) = signals.wait() else { return };
                log::info!("received {first}: finishing in-flight requests, then exiting");
                watcher.request();
                while let Ok(again) = signals.wait() {
                    if repeated == RepeatedSignal::ExitAtOnce {
                        log::warn!("received {again} again: exiting without waiting");
                        std::process::exit(1);
                    }
                    log::debug!("received {again} again: already stopping");
                }
            })?;
        Ok(shutdown)
    }

    /// Starts the shutdown: stop accepting, wake blocked readers.
    pub fn request(&self) {
        if self.inner.requested.swap(true, Ordering::SeqCst) {
            return;
        }
        // The pipe is never drained, so it stays readable: every thread and
        // every later poll sees it.
        let _ = nix::unistd::write(&self.inner.wake_writer, b"x");
        for &fd in self.inner.lock_connections().iter() {
            half_close_reading(fd);
        }
    }

    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Blocks the calling thread until shutdown is requested, for a thread
    /// with nothing else to do (the main thread of a pool, whose workers do
    /// the accepting): it cannot join them, since a busy one may outlive the
    /// grace period, and must not spin on [`Shutdown::is_requested`]. It
    /// sleeps in `poll(2)` on the shutdown pipe.
    pub fn wait_until_requested(&self) {
        while !self.is_requested() {
            let mut fds = [PollFd::new(self.wake_fd(), PollFlags::POLLIN)];
            if let Err(error) = poll(&mut fds, PollTimeout::NONE)
                && error != nix::errno::Errno::EINTR
            {
                // Cannot happen with one valid fd; recheck the flag slowly
                // rather than spin or give up.
                log::error!("poll on the shutdown pipe failed: {error}");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }

    /// A descriptor that becomes readable when shutdown is requested, for
    /// models that wait in `poll`/`select`/`epoll` themselves.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.inner.wake_reader.as_fd()
    }

    /// Registers a stream accepted elsewhere (08 accepts with may) as a
    /// [`Connection`] of this server.
    pub fn adopt<S: AsRawFd>(&self, stream: S, peer: SocketAddr) -> Connection<S> {
        Connection {
            tracked: self.track(stream.as_raw_fd()),
            stream,
            peer,
        }
    }

    /// Registers an open connection so that shutdown can wake a thread
    /// blocked reading it. Keep the guard until just before the socket is
    /// closed: the fd number is reused once it is closed.
    fn track(&self, fd: RawFd) -> TrackedConnection {
        self.inner.lock_connections().insert(fd);
        if self.is_requested() {
            half_close_reading(fd);
        }
        TrackedConnection {
            shutdown: self.clone(),
            fd,
        }
    }

    /// Waits until every tracked connection has closed, at most `limit`.
    /// Returns how many were still open.
    pub fn wait_for_connections(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        let mut connections = self.inner.lock_connections();
        while !connections.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                warn_grace_over(connections.len(), limit);
                break;
            }
            connections = self
                .inner
                .all_closed
                .wait_timeout(connections, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        connections.len()
    }
}

impl Inner {
    fn lock_connections(&self) -> MutexGuard<'_, HashSet<RawFd>> {
        // A panic elsewhere must not stop the server from shutting down.
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An accepted connection of a blocking model, registered with its
/// [`Shutdown`] for as long as it lives: shutdown half-closes its reading
/// side and waits for it to be dropped.
#[derive(Debug)]
pub struct Connection<S> {
    // Declared first, so dropped first: the registration ends before the
    // stream's descriptor is closed and its number reused by a new client.
    pub(crate) tracked: TrackedConnection,
    pub stream: S,
    pub peer: SocketAddr,
}

/// Keeps a connection registered with [`Shutdown`] while it lives.
#[derive(Debug)]
pub(crate) struct TrackedConnection {
    pub(crate) shutdown: Shutdown,
    fd: RawFd,
}

impl Drop for TrackedConnection {
    fn drop(&mut self) {
        let inner = &self.shutdown.inner;
        let mut connections = inner.lock_connections();
        connections.remove(&self.fd);
        if connections.is_empty() {
            inner.all_closed.notify_all();
        }
    }
}

/// `shutdown(fd, SHUT_RD)`: a blocked `read` returns 0 (EOF) at once while
/// the writing side stays open for the last response.
fn half_close_reading(fd: RawFd) {
    // Errors only mean the peer is already gone.
    let _ = shutdown(fd, HalfClose::Read);
}

/// `shutdown(fd, SHUT_WR)`: the peer reads our last bytes, then EOF, while
/// we can still read what it sends (the start of a lingering close, see
/// `Session::take_half_close`). A peer already gone (`ENOTCONN`) needs no
/// more.
pub fn half_close_writing(fd: RawFd) -> io::Result<()> {
    match shutdown(fd, HalfClose::Write) {
        Ok(()) | Err(nix::errno::Errno::ENOTCONN) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Counts a run of failed `accept` calls so that it is logged once, not once
/// per attempt, and says how long to pause.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    failures: u64,
}

impl AcceptErrors {
    /// Records a failed `accept` and returns how long to stop accepting.
    /// `WouldBlock` and a connection aborted before we took it are normal and
    /// need no pause. Out of file descriptors (`EMFILE`/`ENFILE`) is not: the
    /// pending connection stays in the queue and the listener stays readable,
    /// so retrying at once would spin a core at 100 %.
    pub fn failed(&mut self, error: &io::Error) -> Duration {
        use io::ErrorKind::{ConnectionAborted, Interrupted, WouldBlock};
        if matches!(error.kind(), WouldBlock | Interrupted | ConnectionAborted) {
            return Duration::ZERO;
        }
        if self.failures == 0 {
            let hint = if is_out_of_fds(error) {
                " (out of file descriptors; pausing accept until connections close)"
            } else {
                ""
            };
            log::warn!("accept failed: {error}{hint}");
        }
        self.failures += 1;
        ACCEPT_BACKOFF
    }

    /// Records a successful `accept`, ending a run of failures.
    pub fn succeeded(&mut self) {
        if self.failures > 0 {
            log::info!("accepting again after {} failed attempts", self.failures);
            self.failures = 0;
        }
    }
}

/// Whether an error means the process or system ran out of descriptors.
pub fn is_out_of_fds(error: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(error.raw_os_error(), Some(code) if code == Errno::EMFILE as i32 || code == Errno::ENFILE as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_requested_returns_once_another_thread_requests() {
        let shutdown = Shutdown::new().expect("a pipe");
        let requester = shutdown.clone();
        let started = Instant::now();
        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            requester.request();
        });
        shutdown.wait_until_requested();
        assert!(started.elapsed() >= Duration::from_millis(90));
        thread.join().expect("the requester finished");
        // And at once when already requested.
        shutdown.wait_until_requested();
    }

    #[test]
    fn adopted_connections_are_waited_for_and_woken() {
        use std::io::Read;
        let shutdown = Shutdown::new().expect("a pipe");
        let (server_side, _client_side) = std::os::unix::net::UnixStream::pair().expect("a pair");
        let mut connection = shutdown.adopt(server_side, "127.0.0.1:1".parse().expect("addr"));
        assert_eq!(shutdown.wait_for_connections(Duration::from_millis(50)), 1);
        shutdown.request();
        // The reading side is shut down: a read returns EOF at once.
        let mut byte = [0; 1];
        assert_eq!(connection.stream.read(&mut byte).expect("read"), 0);
        drop(connection);
        assert_eq!(shutdown.wait_for_connections(Duration::from_millis(50)), 0);
    }
}
