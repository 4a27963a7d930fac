//! Signals as a readable descriptor, for the servers that wait in one place
//! (06 and 07's event loops, the prefork supervisor): SIGINT, SIGTERM (and
//! SIGCHLD for the supervisor) must wake the same `select`/`poll`/`epoll`/
//! `kqueue` call that waits for sockets. Two ways to get there, one per
//! system, both here:
//!
//! - **signalfd** (Linux): the signals are *blocked*, so the kernel keeps
//!   them pending instead of interrupting anybody, and a signalfd becomes
//!   readable while one is pending. No handler runs at all; a read says
//!   which signal it was. The price: Linux-only, and the signals must stay
//!   blocked in every thread, or the kernel delivers them the old way.
//! - **the self-pipe trick** (everywhere else, and the classic): a signal
//!   handler may do almost nothing safely (no allocation, no locks, no
//!   logging: it can interrupt the program in the middle of any of those),
//!   but `write(2)` is async-signal-safe. So the handler writes the signal's
//!   number into a non-blocking pipe, and the loop watches the pipe's
//!   reading end like any socket. Installing a handler is `unsafe`: that
//!   handler is the one place in the workspace that runs in signal context.
//!
//! (On macOS and the BSDs a kqueue can also watch signals itself, with
//! `EVFILT_SIGNAL`; the self-pipe works with `select` and `poll` too, so
//! one mechanism serves all three loops there.)
//!
//! Linux compiles and tests the self-pipe as well (`common/tests/
//! self_pipe.rs`), so no line here runs only on a system nobody has.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

/// The signals that ask a server to stop.
pub fn shutdown_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

/// A descriptor that becomes readable when one of the watched signals
/// arrives, and says which.
#[derive(Debug)]
pub struct SignalWatch {
    source: Source,
}

#[derive(Debug)]
enum Source {
    #[cfg(target_os = "linux")]
    SignalFd(nix::sys::signalfd::SignalFd),
    /// The reading end of the self-pipe; the writing end belongs to the
    /// handler for the rest of the process's life.
    SelfPipe(OwnedFd),
}

impl SignalWatch {
    /// This system's way: a signalfd on Linux, a self-pipe elsewhere. Call
    /// it before any thread exists and before the start-up line (tests
    /// signal as soon as they read it).
    #[cfg(target_os = "linux")]
    pub fn new(signals: &SigSet) -> io::Result<SignalWatch> {
        SignalWatch::signalfd(signals)
    }

    /// This system's way: a signalfd on Linux, a self-pipe elsewhere.
    #[cfg(not(target_os = "linux"))]
    pub fn new(signals: &SigSet) -> io::Result<SignalWatch> {
        SignalWatch::self_pipe(signals)
    }

    /// Blocks `signals` in this thread (threads started later inherit that)
    /// and opens a non-blocking signalfd for them.
    #[cfg(target_os = "linux")]
    pub fn signalfd(signals: &SigSet) -> io::Result<SignalWatch> {
        use nix::sys::signalfd::{SfdFlags, SignalFd};
        signals.thread_block()?;
        // Non-blocking: a spurious wake-up must not block the whole loop.
        let fd = SignalFd::with_flags(signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(SignalWatch {
            source: Source::SignalFd(fd),
        })
    }

    /// Installs a handler for each of `signals` that writes the signal's
    /// number into a pipe, and returns the pipe's reading end. One self-pipe
    /// per process: a second call is an error.
    pub fn self_pipe(signals: &SigSet) -> io::Result<SignalWatch> {
        if SELF_PIPE_WRITER.load(Ordering::SeqCst) != -1 {
            return Err(io::Error::other("a self-pipe is already installed"));
        }
        let (reader, writer) = nix::unistd::pipe()?;
        for end in [&reader, &writer] {
            // Non-blocking both ways: the handler must never block (a full
            // pipe already says "a signal came"), nor may the loop's drain.
            fcntl(end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
            fcntl(end, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        }
        // The handler reads the descriptor from a static: it cannot take
        // arguments. It is never closed (`into_raw_fd`): a handler writing
        // to a closed, reused descriptor number would corrupt another file.
        SELF_PIPE_WRITER.store(writer.into_raw_fd(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(write_signal_number),
            // SA_RESTART: a read or write elsewhere that the signal
            // interrupts is restarted instead of failing with EINTR.
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in signals.iter() {
            // SAFETY: the handler only loads an atomic and calls write(2),
            // both async-signal-safe, and restores errno; it touches no
            // lock, allocation or thread-local the interrupted code may hold.
            #[allow(unsafe_code)]
            unsafe {
                sigaction(signal, &action)?;
            }
        }
        // Handlers only run for signals that are not blocked.
        signals.thread_unblock()?;
        Ok(SignalWatch {
            source: Source::SelfPipe(reader),
        })
    }

    /// Every signal that arrived since the last call, oldest first; empty
    /// after a spurious wake-up. Several of one kind may arrive as one.
    pub fn drain(&self) -> io::Result<Vec<Signal>> {
        let mut received = Vec::new();
        match &self.source {
            #[cfg(target_os = "linux")]
            Source::SignalFd(fd) => {
                while let Some(info) = fd.read_signal()? {
                    received.extend(Signal::try_from(info.ssi_signo as i32).ok());
                }
            }
            Source::SelfPipe(reader) => {
                let mut numbers = [0; 64];
                loop {
                    match nix::unistd::read(reader, &mut numbers) {
                        Ok(0) | Err(Errno::EAGAIN) => break,
                        Ok(count) => received.extend(
                            numbers[..count]
                                .iter()
                                .filter_map(|&number| Signal::try_from(i32::from(number)).ok()),
                        ),
                        Err(Errno::EINTR) => {}
                        Err(error) => return Err(error.into()),
                    }
                }
            }
        }
        Ok(received)
    }

    /// In a freshly forked child that will wait for signals its own way:
    /// puts the default actions back, so that the parent's handlers stop
    /// writing into the parent's pipe. (A signalfd needs nothing: the
    /// child's copy is dropped with this value.)
    pub fn forget_in_child(self, signals: &SigSet) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Source::SignalFd(_) = self.source {
            return Ok(());
        }
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        for signal in signals.iter() {
            // SAFETY: restoring the default action installs no code.
            #[allow(unsafe_code)]
            unsafe {
                sigaction(signal, &default)?;
            }
        }
        Ok(())
    }
}

impl AsFd for SignalWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.source {
            #[cfg(target_os = "linux")]
            Source::SignalFd(fd) => fd.as_fd(),
            Source::SelfPipe(reader) => reader.as_fd(),
        }
    }
}

/// The self-pipe's writing end, for the handler; -1 while none is set up.
static SELF_PIPE_WRITER: AtomicI32 = AtomicI32::new(-1);

/// The signal handler: one byte, the signal's number, into the pipe.
extern "C" fn write_signal_number(signal: nix::libc::c_int) {
    // write(2) may change errno, and the interrupted code may be about to
    // read it: put it back.
    let saved = Errno::last_raw();
    let fd = SELF_PIPE_WRITER.load(Ordering::Relaxed);
    // Signal numbers are small (1..=31 for these); the byte is enough.
    let byte = signal as u8;
    // SAFETY: write(2) is async-signal-safe; `fd` is the pipe's writing
    // end, which is never closed, and the buffer is one live byte. A full
    // pipe (EAGAIN) loses nothing that matters: a wake-up is pending.
    #[allow(unsafe_code)]
    unsafe {
        nix::libc::write(fd, std::ptr::from_ref(&byte).cast(), 1);
    }
    Errno::set_raw(saved);
}
