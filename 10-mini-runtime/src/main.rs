//! # 10-mini-runtime: the async driver on a runtime written here
//!
//! 09 without tokio. The connection is the very same linear code (common's
//! async driver); what polls it is `runtime.rs` (and its `runtime/`): a task
//! queue and wakers, an epoll reactor and a timer heap, on one thread, in
//! safe Rust. It exists to show what an `.await` turns into: a task that
//! returns `Pending` after leaving its waker with the reactor
//! (`add_reader`) or the timer heap (`call_later`), and is polled again
//! once that waker re-queues it. asyncio's event loop, in other words.
//!
//! The trade-off: one thread, like 07 and 09 `--runtime current-thread`,
//! and none of what tokio adds (work stealing over cores, a timer wheel,
//! cooperative budgets, a blocking pool). A task that blocks stalls all.
//!
//! Linux only: on macOS and the BSDs the binary says so and exits 1.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 10-mini-runtime -- --mode http
//! curl -s 127.0.0.1:9090/ & curl -s 127.0.0.1:9090/ & wait   # ~300 ms, not 600
//! strace -f -e trace=epoll_wait,epoll_ctl,accept4 -p PID     # the loop turning
//! nc 127.0.0.1 9090                                         # in echo mode
//! ```

#[cfg(target_os = "linux")]
mod runtime;

#[cfg(target_os = "linux")]
use {
    clap::Parser,
    common::async_driver::{AsyncIo, serve_connection},
    common::sendfile::{FileRange, send_file},
    common::{AcceptErrors, GRACE_PERIOD, SessionConfig, Shutdown},
    runtime::{Async, TaskGroup, race, sleep, sleep_until, timeout, timeout_at},
    std::io,
    std::net::{TcpListener, TcpStream},
    std::os::fd::{AsFd, BorrowedFd},
    std::process::ExitCode,
    std::time::Instant,
};

const MODEL: &str = "10-mini-runtime";

/// The async driver on a single-threaded runtime written by hand.
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
    common::cannot_run_here(MODEL, "Linux's epoll (its reactor)", "09-async")
}

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

#[cfg(target_os = "linux")]
fn run(args: &Args) -> anyhow::Result<()> {
    // Signals are blocked and a watcher thread waits for them; it must
    // exist before the start-up line (tests signal as soon as they see it).
    let shutdown = Shutdown::watch_signals()?;
    let listener = common::start(MODEL, &args.server)?;
    let config = args.server.session_config(MODEL);
    runtime::block_on(serve(listener, shutdown, config))?
}

// ANCHOR: mini_io
/// The runtime's sockets and timers behind the async driver's trait.
#[cfg(target_os = "linux")]
struct MiniRuntime;

#[cfg(target_os = "linux")]
impl AsyncIo for MiniRuntime {
    type Stream = Async<TcpStream>;

    fn now() -> Instant {
        runtime::now()
    }

    async fn readable(stream: &mut Self::Stream, deadline: Instant) -> io::Result<()> {
        // `None` (the timer won) becomes an `io::Error` of kind `TimedOut`.
        timeout_at(deadline, stream.readable())
            .await
            .ok_or(io::ErrorKind::TimedOut.into())
    }

    fn try_read(stream: &mut Self::Stream, buffer: &mut [u8]) -> io::Result<usize> {
        stream.try_read(buffer)
    }

    async fn write(
        stream: &mut Self::Stream,
        bytes: &[u8],
        deadline: Instant,
    ) -> io::Result<usize> {
        timeout_at(deadline, stream.write(bytes))
            .await
            .ok_or(io::ErrorKind::TimedOut)?
    }

    async fn send_file(
        stream: &mut Self::Stream,
        range: &FileRange<'_>,
        deadline: Instant,
    ) -> io::Result<usize> {
        let send = |socket: &TcpStream| send_file(socket.as_fd(), range);
        timeout_at(deadline, stream.write_with(send))
            .await
            .ok_or(io::ErrorKind::TimedOut)?
    }

    fn set_nodelay(stream: &Self::Stream) -> io::Result<()> {
        stream.get_ref().set_nodelay(true)
    }

    async fn sleep_until(deadline: Instant) {
        sleep_until(deadline).await;
    }
}
// ANCHOR_END: mini_io

/// The main task: accept, spawn a task per connection, shut down.
#[cfg(target_os = "linux")]
async fn serve(
    listener: TcpListener,
    shutdown: Shutdown,
    config: SessionConfig,
) -> anyhow::Result<()> {
    let listener = Async::new(listener)?;
    // The signal thread's self-pipe, watched like a socket: it turns
    // readable (for good) when SIGINT or SIGTERM arrives.
    let stop = Async::new(shutdown.wake_fd())?;
    let connections = TaskGroup::default();
    let mut errors = AcceptErrors::default();

    // ANCHOR: accept_loop
    loop {
        let accepted = race(
            async { Some(listener.read_with(TcpListener::accept).await) },
            async {
                requested(&stop, &shutdown).await;
                None
            },
        );
        match accepted.await {
            None => break,
            Some(Ok((stream, peer))) => {
                errors.succeeded();
                match Async::new(stream) {
                    Ok(stream) => {
                        let connection = shutdown.adopt(stream, peer);
                        connections.spawn(serve_connection::<MiniRuntime>(connection, config));
                    }
                    Err(error) => log::warn!("cannot watch the connection from {peer}: {error}"),
                }
            }
            // Out of fds: the listener stays readable, so pause (this
            // task only) instead of spinning; logged once per burst.
            Some(Err(error)) => sleep(errors.failed(&error)).await,
        }
    }
    // ANCHOR_END: accept_loop

    // ANCHOR: shutdown
    // The signal thread has already half-closed every registered
    // connection (common's Shutdown): each answers what is in flight.
    drop(listener); // stop accepting: new connects are refused
    if timeout(GRACE_PERIOD, connections.wait()).await.is_none() {
        // Returning drops the tasks left (block_on), closing their sockets.
        common::shutdown::warn_grace_over(connections.len(), GRACE_PERIOD);
    }
    // ANCHOR_END: shutdown
    log::info!("stopped");
    Ok(())
}

/// Waits until shutdown is requested. The pipe is never drained, so once
/// it is readable it stays so; the flag says whether it is.
#[cfg(target_os = "linux")]
async fn requested(stop: &Async<BorrowedFd<'_>>, shutdown: &Shutdown) {
    let check = |_: &BorrowedFd<'_>| match shutdown.is_requested() {
        true => Ok(()),
        false => Err(io::Error::from(io::ErrorKind::WouldBlock)),
    };
    // Only `WouldBlock` makes it wait, so this cannot fail.
    let _ = stop.read_with(check).await;
}
