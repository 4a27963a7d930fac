//! # 11-io-uring: completion instead of readiness
//!
//! One thread, like 07-epoll, but the kernel is asked the other way round.
//! epoll says "this socket is *ready*, now call `read`"; io_uring takes the
//! whole operation ("receive into this buffer", "accept", "wake me in
//! 300 ms") and later reports it *done*, with the bytes already in place.
//! Requests go into a submission queue and results come back in a
//! completion queue, two rings of memory shared with the kernel
//! (`ring.rs`), so one `io_uring_enter` per round submits every request and
//! waits for the next results: no `epoll_ctl`, no `read`, no `write`.
//!
//! The price is ownership. A buffer handed to the kernel is the kernel's
//! until its completion arrives: each connection owns what it sends in a
//! box that never moves, and a finished connection first cancels what is
//! in flight and frees its memory only after the last completion
//! (`connection.rs`). A receive, though, may wait for seconds on an idle
//! socket, so it takes no buffer of its own: the kernel picks one from a
//! ring of buffers the server *provides* (`buffers.rs`) when bytes arrive,
//! and an idle connection costs little more than its session, as in
//! epoll. A large file body goes from the file into a pipe and from the
//! pipe into the socket (`splice.rs`), io_uring's `sendfile`, which the
//! kernel runs on worker threads of its own. What it buys: fewer syscalls
//! per request, and the same interface for sockets and files (epoll
//! cannot wait for a disk).
//!
//! The fake DB and idle deadlines wait in the same timer heap as 07's,
//! and `io_uring_enter` waits at most until the nearest one (a kernel
//! timeout per connection meant a cancellation per request, and the
//! kernel's search for it grows with the connections). Signals arrive as
//! a signalfd read submitted to the ring. Our thread never sleeps
//! elsewhere.
//!
//! Linux only: on macOS and the BSDs the binary says so and exits 1.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 11-io-uring -- --mode http
//! curl 127.0.0.1:9090/ & curl 127.0.0.1:9090/   # both after ~300 ms
//! strace -f -e trace=io_uring_enter -p PID       # one syscall per round
//! ```

#[cfg(target_os = "linux")]
mod buffers;
#[cfg(target_os = "linux")]
mod connection;
#[cfg(target_os = "linux")]
mod ring;
#[cfg(target_os = "linux")]
mod splice;

#[cfg(target_os = "linux")]
use {
    anyhow::Context,
    clap::Parser,
    common::shutdown::{ACCEPT_BACKOFF, AcceptErrors, GRACE_PERIOD},
    common::{Session, SessionConfig},
    connection::{Connection, Table},
    io_uring::opcode,
    io_uring::types::{Fd, Timespec},
    nix::sys::signal::Signal,
    nix::sys::signalfd::{SfdFlags, SignalFd, siginfo},
    ring::{Completion, Op, Ring},
    std::net::{TcpListener, TcpStream},
    std::os::fd::{AsRawFd, FromRawFd},
    std::process::ExitCode,
    std::time::Instant,
};

const MODEL: &str = "11-io-uring";

/// What one read of a signalfd returns: a `signalfd_siginfo`.
#[cfg(target_os = "linux")]
const SIGINFO_SIZE: usize = std::mem::size_of::<siginfo>();

/// Timespecs the kernel reads at submission: statics never move.
#[cfg(target_os = "linux")]
static BACKOFF: Timespec = timespec(ACCEPT_BACKOFF);
#[cfg(target_os = "linux")]
static GRACE: Timespec = timespec(GRACE_PERIOD);

#[cfg(target_os = "linux")]
const fn timespec(duration: std::time::Duration) -> Timespec {
    Timespec::new()
        .sec(duration.as_secs())
        .nsec(duration.subsec_nanos())
}

/// One thread, completion-based I/O with io_uring.
#[cfg(target_os = "linux")]
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
}

/// Elsewhere the binary exists, so the workspace builds, and says what
/// to run instead. (Every item above and below is Linux-only: `cfg`.)
#[cfg(not(target_os = "linux"))]
fn main() -> std::process::ExitCode {
    common::cannot_run_here(MODEL, "Linux's io_uring", "07-epoll")
}

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

#[cfg(target_os = "linux")]
fn run(args: &Args) -> anyhow::Result<()> {
    // Before the start-up line: a SIGTERM right after it must not kill us.
    // A blocking signalfd: the ring waits for it, we never read it directly.
    let mask = common::signals::shutdown_signals();
    let signals = mask
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC))
        .context("cannot set up a signalfd")?;
    let ring = Ring::new().context(
        "io_uring is unavailable (disabled by kernel.io_uring_disabled, \
         blocked by seccomp, or a kernel older than 5.19)",
    )?;
    let listener = common::start(MODEL, &args.server)?;
    let mut server = Server {
        ring,
        listener: Some(listener),
        accepting: false,
        multishot: true,
        accept_errors: AcceptErrors::default(),
        signals,
        signal_info: Box::new([0; SIGINFO_SIZE]),
        connections: Table::default(),
        accepted: 0,
        config: args.server.session_config(MODEL),
        worker: common::worker_label(),
        draining: false,
        grace_over: false,
    };
    server.arm_accept();
    server.watch_signals();
    // ANCHOR: loop
    let mut completions = Vec::new();
    while !server.is_done() {
        // One timer for the whole loop, as in 07: wait at most until the
        // nearest deadline of any connection.
        let timeout = (server.connections.next_deadline())
            .map(|deadline| deadline.saturating_duration_since(Instant::now()));
        server
            .ring
            .wait(&mut completions, timeout)
            .context("io_uring_enter failed")?;
        server.connections.next_round();
        let now = Instant::now();
        for completion in completions.drain(..) {
            server.complete(&completion, now);
        }
        (server.connections).fire_due_timers(&mut server.ring, now);
    }
    // ANCHOR_END: loop
    server.finish()
}

#[cfg(target_os = "linux")]
struct Server {
    ring: Ring,
    /// `None` once shutdown began and the accept was cancelled.
    listener: Option<TcpListener>,
    /// An accept is in flight (multishot: armed).
    accepting: bool,
    multishot: bool,
    accept_errors: AcceptErrors,
    signals: SignalFd,
    /// The kernel writes a `signalfd_siginfo` here.
    signal_info: Box<[u8; SIGINFO_SIZE]>,
    connections: Table,
    accepted: u64,
    config: SessionConfig,
    worker: String,
    draining: bool,
    grace_over: bool,
}

#[cfg(target_os = "linux")]
impl Server {
    fn is_done(&self) -> bool {
        self.grace_over
            || (self.draining && self.connections.open() == 0 && self.listener.is_none())
    }

    // ANCHOR: dispatch
    /// Acts on one completion, named by its `user_data`.
    fn complete(&mut self, completion: &Completion, now: Instant) {
        match completion.op {
            Op::Accept => self.accepted_one(completion, now),
            Op::Signal => self.read_signal(completion, now),
            Op::ResumeAccepting => self.arm_accept(),
            Op::GraceOver => self.grace_over = true,
            Op::Cancel => {} // the cancelled operation completes on its own
            Op::Connection(slot, io) => {
                (self.connections).complete(slot, io, completion, &mut self.ring, now);
            }
        }
    }
    // ANCHOR_END: dispatch

    // ANCHOR: accept
    /// One multishot accept stays armed and completes once per connection;
    /// kernels before 5.19 reject it and get one accept per connection.
    fn arm_accept(&mut self) {
        let Some(listener) = &self.listener else {
            return; // shut down during a back-off
        };
        let fd = Fd(listener.as_raw_fd());
        let accept = if self.multishot {
            opcode::AcceptMulti::new(fd).build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut()).build()
        };
        // SAFETY: no buffer (no peer address asked for); the listener is
        // closed only after this accept's last completion.
        #[allow(unsafe_code)]
        unsafe {
            self.ring.push(Op::Accept, accept)
        };
        self.accepting = true;
    }

    fn accepted_one(&mut self, completion: &Completion, now: Instant) {
        self.accepting &= completion.more;
        match completion.result() {
            Ok(fd) => {
                self.accept_errors.succeeded();
                // SAFETY: the kernel just opened this descriptor for us;
                // nothing else owns it.
                #[allow(unsafe_code)]
                let socket = unsafe { TcpStream::from_raw_fd(fd as i32) };
                self.open_connection(socket, now);
            }
            Err(_) if completion.is_cancelled() => {}
            Err(_) if self.multishot && completion.is_unsupported() => {
                log::info!("no multishot accept in this kernel: one accept per connection");
                self.multishot = false;
            }
            Err(error) => {
                let pause = self.accept_errors.failed(&error);
                if !pause.is_zero() && !self.accepting {
                    // Out of descriptors: re-arming at once would fail at
                    // once, forever. A timeout re-arms it instead.
                    self.ring.timeout(Op::ResumeAccepting, &BACKOFF);
                    return;
                }
            }
        }
        if !self.accepting {
            if self.draining {
                self.listener = None; // the kernel let go: close it
            } else {
                self.arm_accept();
            }
        }
    }

    fn open_connection(&mut self, socket: TcpStream, now: Instant) {
        // No Nagle, as in 07: responses go out whole and at once.
        if let Err(error) = socket.set_nodelay(true) {
            log::debug!("cannot set TCP_NODELAY: {error}");
        }
        let mut session = Session::new(self.config, self.worker.clone(), now);
        if self.draining {
            session.begin_shutdown(now);
        }
        let connection = Connection::new(socket, session);
        self.connections.insert(connection, &mut self.ring, now);
        self.accepted += 1;
    }
    // ANCHOR_END: accept

    // ANCHOR: shutdown
    /// A read of the signalfd waits in the ring like a receive, and
    /// completes with one `signalfd_siginfo` when SIGINT or SIGTERM comes.
    fn watch_signals(&mut self) {
        let buffer = self.signal_info.as_mut_ptr();
        let read = opcode::Read::new(Fd(self.signals.as_raw_fd()), buffer, SIGINFO_SIZE as u32);
        // SAFETY: `signal_info` is boxed in the server, which reaps every
        // completion (`finish`) before it is dropped.
        #[allow(unsafe_code)]
        unsafe {
            self.ring.push(Op::Signal, read.build())
        };
    }

    fn read_signal(&mut self, completion: &Completion, now: Instant) {
        match completion.result() {
            Ok(length) if length as usize == SIGINFO_SIZE => {}
            Err(_) if completion.is_cancelled() => return,
            result => {
                log::warn!("cannot read the signalfd: {result:?}");
                return self.watch_signals();
            }
        }
        // `ssi_signo`, the first field of the `signalfd_siginfo`.
        let [a, b, c, d, ..] = *self.signal_info;
        let number = i32::from_ne_bytes([a, b, c, d]);
        let signal = Signal::try_from(number).map_or("a signal", Signal::as_str);
        if self.draining {
            log::warn!("received {signal} again: exiting without waiting");
            std::process::exit(1);
        }
        log::info!("received {signal}: finishing in-flight requests, then exiting");
        self.watch_signals();
        self.draining = true;
        if self.accepting {
            self.ring.cancel(Op::Accept); // its completion closes the listener
        } else {
            self.listener = None;
        }
        self.ring.timeout(Op::GraceOver, &GRACE);
        self.connections.begin_shutdown(&mut self.ring, now);
    }

    /// Cancel whatever is still in flight (the signal read, the grace
    /// timeout, busy connections), reap every completion, and only then
    /// drop the buffers the kernel was using.
    fn finish(mut self) -> anyhow::Result<()> {
        self.ring.cancel_all();
        let mut completions = Vec::new();
        while self.ring.in_flight() > 0 {
            self.ring
                .wait(&mut completions, None)
                .context("io_uring_enter failed")?;
            // Before Linux 5.19 "any" is EINVAL. Then the process exit
            // cancels the rest, and the buffers must live until then.
            let unsupported = |done: Completion| done.op == Op::Cancel && done.is_unsupported();
            if completions.drain(..).any(unsupported) {
                std::mem::forget(std::mem::take(&mut self.connections));
                break;
            }
        }
        if self.connections.open() > 0 {
            common::shutdown::warn_grace_over(self.connections.open(), GRACE_PERIOD);
        }
        log::info!("stopped after serving {} connection(s)", self.accepted);
        Ok(())
    }
    // ANCHOR_END: shutdown
}
