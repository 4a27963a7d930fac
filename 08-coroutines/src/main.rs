//! # 08-coroutines: stackful coroutines with `may`
//!
//! One coroutine per connection, running the very same blocking driver as
//! 01-05 (`common::serve_connection`). Only *who* runs it changes: a `may`
//! coroutine instead of an OS thread. So this file reads like
//! 02-thread-per-client, yet it runs like 07-epoll: may's sockets are
//! non-blocking underneath, and a coroutine that would block on `read`,
//! `write` or `may::coroutine::sleep` (the fake DB) is parked while a few
//! worker threads run the others; an epoll loop inside may wakes it when its
//! socket is ready. Thousands of waiting clients cost a small stack each
//! (`--stack-size`), not an OS thread each. This is gevent's trick, and the
//! lesson: the concurrency model can change without the code changing shape.
//!
//! The trade-off is that the illusion leaks. Anything that blocks the *OS
//! thread* rather than the coroutine, such as `std::thread::sleep`, a std
//! socket or a contended std `Mutex` held for long, stalls every coroutine on
//! that worker. Thread-locals lie too: a coroutine may resume on another
//! worker after any yield, which is why `X-Worker` names the coroutine, not
//! the thread. And each stack is fixed in size: deep recursion overflows it.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 08-coroutines -- --mode http --workers 1
//! curl -s 127.0.0.1:9090/ & curl -s 127.0.0.1:9090/ & wait   # ~300 ms, not 600
//! curl -sv 127.0.0.1:9090/ 2>&1 | grep X-Worker              # thread=coroutine-N
//! nc 127.0.0.1 9090                                         # in echo mode
//! ```

#[cfg(not(target_os = "freebsd"))]
use {
    anyhow::Context,
    clap::Parser,
    common::shutdown::ACCEPT_BACKOFF,
    common::{AcceptErrors, BlockingIo, GRACE_PERIOD, ServerArgs, SessionConfig, Shutdown},
    may::coroutine::{self, JoinHandle},
    std::io::{self, Read},
    std::net::TcpListener,
    std::os::fd::{AsRawFd, IntoRawFd, RawFd},
    std::process::ExitCode,
    std::sync::Arc,
    std::sync::atomic::{AtomicBool, Ordering},
    std::time::Duration,
};

const MODEL: &str = "08-coroutines";

/// Stackful coroutines (may): code like thread-per-client, runs like epoll.
#[cfg(not(target_os = "freebsd"))]
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// may worker threads: the OS threads that take turns running the
    /// coroutines (default: one per CPU core).
    #[arg(long, value_name = "N", default_value_t = default_workers(),
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: u16,

    /// Stack size of each coroutine, in KiB (may itself counts machine
    /// words). A connection's coroutine was measured using under 8 KiB in a
    /// debug build with `--log debug` (may prints the usage when a stack has
    /// an odd number of words), so 64 leaves a wide margin.
    #[arg(long, value_name = "KiB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(16..=65536))]
    stack_size: u32,

    /// How the fake DB waits. `coroutine`: `may::coroutine::sleep` parks
    /// only this coroutine. `thread`: `std::thread::sleep`, the mistake
    /// gevent's `monkey.patch_all()` exists to prevent: it blocks the
    /// worker thread, and every coroutine on it waits too (a lesson to
    /// watch under load, not a mode to run).
    #[arg(long, value_enum, default_value_t = DbSleep::Coroutine)]
    db_sleep: DbSleep,
}

#[cfg(not(target_os = "freebsd"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum DbSleep {
    Coroutine,
    Thread,
}

/// `--db-sleep thread`, for `BlockingIo::sleep`, which has no `self` to
/// carry it.
#[cfg(not(target_os = "freebsd"))]
static SLEEP_BLOCKS_THE_THREAD: AtomicBool = AtomicBool::new(false);

#[cfg(not(target_os = "freebsd"))]
fn default_workers() -> u16 {
    std::thread::available_parallelism().map_or(1, |cores| cores.get().min(1024) as u16)
}

// ANCHOR: blocking_io
/// The blocking driver's view of the world, implemented with may: the
/// socket type, its read timeout and the sleep all park the *coroutine*.
#[cfg(not(target_os = "freebsd"))]
#[derive(Debug)]
struct Coroutines;

#[cfg(not(target_os = "freebsd"))]
impl BlockingIo for Coroutines {
    type Stream = may::net::TcpStream;

    fn read_within(
        stream: &mut Self::Stream,
        buffer: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<usize>> {
        // may's read timeout parks only this coroutine, on may's own timer.
        // std and may refuse a zero timeout, so wait at least a millisecond.
        stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match stream.read(buffer) {
            Ok(received) => Ok(Some(received)),
            // A read timeout shows up as WouldBlock (or TimedOut elsewhere).
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    fn set_write_timeout(stream: &Self::Stream, timeout: Option<Duration>) -> io::Result<()> {
        stream.set_write_timeout(timeout)
    }

    fn set_nodelay(stream: &Self::Stream) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    fn sleep(duration: Duration) {
        // Not `std::thread::sleep`: that would stall the whole worker,
        // unless `--db-sleep thread` asks to see exactly that.
        if SLEEP_BLOCKS_THE_THREAD.load(Ordering::Relaxed) {
            std::thread::sleep(duration);
        } else {
            coroutine::sleep(duration);
        }
    }

    /// `pid=1234 thread=coroutine-7`: the coroutine, because the OS thread
    /// running it may change at every yield.
    fn worker_label() -> String {
        if !coroutine::is_coroutine() {
            return common::worker_label();
        }
        let current = coroutine::current();
        let name = current.name().unwrap_or("coroutine");
        format!("pid={} thread={name}", std::process::id())
    }
}
// ANCHOR_END: blocking_io

/// may does not build on FreeBSD (its kqueue code predates the `ext`
/// field FreeBSD 12 added to `struct kevent`), so there the binary only
/// says so. (Every other item here is `cfg`'d out on FreeBSD.)
#[cfg(target_os = "freebsd")]
fn main() -> std::process::ExitCode {
    common::cannot_run_here(
        MODEL,
        "the may crate, which does not build on FreeBSD",
        "09-async",
    )
}

#[cfg(not(target_os = "freebsd"))]
fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

#[cfg(not(target_os = "freebsd"))]
fn run(args: &Args) -> anyhow::Result<()> {
    // may reads its configuration when it starts its scheduler, i.e. at the
    // first socket or coroutine below; may counts stacks in machine words.
    let stack_words = args.stack_size as usize * 1024 / size_of::<usize>();
    may::config()
        .set_workers(usize::from(args.workers))
        .set_stack_size(stack_words);
    SLEEP_BLOCKS_THE_THREAD.store(args.db_sleep == DbSleep::Thread, Ordering::Relaxed);
    // Before may starts its worker threads: they inherit this thread's
    // blocked SIGINT/SIGTERM, so only the watcher thread receives them.
    let shutdown = Shutdown::watch_signals()?;
    // Bound with socket2 by `common`, not by may's own `bind`, which sets
    // SO_REUSEPORT and so would "succeed" on a port that is already in use.
    let listener = Arc::new(into_may_listener(common::start(MODEL, &args.server)?));
    let config = args.server.session_config(MODEL);

    let acceptor = {
        let (listener, shutdown) = (Arc::clone(&listener), shutdown.clone());
        spawn_coroutine("acceptor".into(), move || {
            accept_loop(&listener, config, &shutdown);
        })
        .context("cannot start the accept coroutine")?
    };

    // ANCHOR: shutdown
    // This OS thread is not a may worker, so blocking here costs nothing.
    shutdown.wait_until_requested();
    // The acceptor is parked inside may's `accept` and sees no flag. Shutting
    // down the listening socket stops it in the kernel: queued and new
    // connects are refused, and epoll reports a hang-up, so may resumes the
    // acceptor, whose `accept` now fails (EINVAL) and which sees the flag.
    // (Our `Arc` keeps the descriptor open, so it cannot be closed and its
    // number reused under us.)
    stop_listening(listener.as_raw_fd());
    if acceptor.join().is_err() {
        log::error!("the accept coroutine panicked");
    }
    // Connections were half-closed by `Shutdown::request`: idle ones end at
    // once, busy ones after their answer.
    shutdown.wait_for_connections(GRACE_PERIOD);
    // ANCHOR_END: shutdown
    log::info!("stopped");
    Ok(())
}

// ANCHOR: accept_loop
/// Accepts until shutdown, one coroutine per connection: 02-thread-per-
/// client's loop with "thread" read as "coroutine". While the listen queue
/// is empty, may's `accept` parks this coroutine, not its worker thread.
#[cfg(not(target_os = "freebsd"))]
fn accept_loop(listener: &may::net::TcpListener, config: SessionConfig, shutdown: &Shutdown) {
    let mut errors = AcceptErrors::default();
    let mut connection_number: u64 = 0;
    while !shutdown.is_requested() {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) if shutdown.is_requested() => break,
            // Out of file descriptors: pause this coroutine (not the worker)
            // instead of spinning on a listener that stays readable.
            Err(error) => {
                coroutine::sleep(errors.failed(&error));
                continue;
            }
        };
        errors.succeeded();
        connection_number += 1;
        // Registered now, before the hand-over, so that a shutdown starting
        // meanwhile still waits for this client.
        let connection = shutdown.adopt(stream, peer);
        // ANCHOR: dispatch
        let started = spawn_coroutine(format!("coroutine-{connection_number}"), move || {
            common::serve_connection::<Coroutines>(connection, config);
        });
        // ANCHOR_END: dispatch
        if let Err(error) = started {
            // No memory for a stack: this client's connection is closed.
            log::warn!("cannot start a coroutine for {peer}: {error}; closing that connection");
            coroutine::sleep(ACCEPT_BACKOFF);
        }
    }
}
// ANCHOR_END: accept_loop

// ANCHOR: spawn
/// Starts a named coroutine. This is what `go!` does, with its hidden
/// `unsafe` in plain sight.
#[cfg(not(target_os = "freebsd"))]
#[allow(unsafe_code)]
fn spawn_coroutine<F>(name: String, body: F) -> io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let builder = coroutine::Builder::new().name(name);
    // SAFETY: may's spawn is unsafe for two reasons, and neither applies.
    // 1. Thread-locals: a coroutine can move to another worker at any yield
    //    (a socket wait or `coroutine::sleep`). The accept loop and the
    //    driver hold no thread-local across a yield: the `log` calls, std's
    //    stderr lock and `Shutdown`'s mutex are taken and released between
    //    yields, and the session lives on the coroutine's own stack and heap.
    // 2. Stack overflow: the stack is fixed (`--stack-size`, at least 16
    //    KiB). Nothing recurses; the deepest path (httparse with 64 header
    //    slots on the stack, then formatting the response) was measured at
    //    under 8 KiB, and the driver keeps its 8 KiB read buffer on the heap.
    //    An overflow would hit the guard page below the stack and be
    //    reported, never silently corrupt memory.
    unsafe { builder.spawn(body) }
}
// ANCHOR_END: spawn

/// Hands the socket2-made listener to may, which registers it with its
/// epoll loop (and so starts may's scheduler and workers).
#[cfg(not(target_os = "freebsd"))]
#[allow(unsafe_code)]
fn into_may_listener(listener: TcpListener) -> may::net::TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: `into_raw_fd` gives up ownership of an open listening TCP
    // socket, and may takes it over exactly once; nothing else closes it.
    // (may offers no safe conversion; it panics only if epoll cannot
    // register one more descriptor, at start-up.)
    unsafe { may::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

/// `shutdown(2)` on the listening socket: the kernel stops listening and
/// wakes whoever waits on it. Errors can only mean it already stopped.
#[cfg(not(target_os = "freebsd"))]
fn stop_listening(listener_fd: RawFd) {
    let _ = nix::sys::socket::shutdown(listener_fd, nix::sys::socket::Shutdown::Both);
}
