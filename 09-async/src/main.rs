//! # 09-async: tokio tasks with async/await
//!
//! One task per connection on a tokio runtime: the compiler turns each
//! `async fn` into a state machine like 07-epoll's, and tokio's reactor (epoll
//! underneath) polls the ones whose socket or timer is ready. Waiting costs a
//! task, a few hundred bytes, so ten thousand idle clients are cheap, and the
//! fake DB is a timer (`tokio::time::sleep_until`), not a blocked thread.
//!
//! The trade-off is the colour of functions: every wait must be an `.await`,
//! and a blocking call (`std::thread::sleep`, a std socket) in a task stalls
//! its whole worker thread, as in 08, though here the types show it. What
//! a connection does is linear code, common's async driver: the blocking
//! driver of 01-05 and 08 with `.await` at each wait. This file is only
//! who runs it: accept, spawn a task, shut down.
//!
//! `--runtime current-thread` (the default) runs everything on one thread,
//! like 07 and like an nginx worker; `multi-thread` spreads tasks over
//! `--workers` threads. One thread is the default because it is the
//! faster on a small machine: on two cores shared with the load generator
//! a second worker mostly competes with the client and adds cross-thread
//! wake-ups (scripts/bench-nginx-page.sh measures both).
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 09-async -- --mode http
//! curl -s 127.0.0.1:9090/ & curl -s 127.0.0.1:9090/ & wait   # ~300 ms, not 600
//! curl -sv 127.0.0.1:9090/ 2>&1 | grep X-Worker              # thread and task
//! nc 127.0.0.1 9090                                         # in echo mode
//! ```

use std::io;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::error::ErrorKind::ArgumentConflict;
use clap::{CommandFactory, Parser, ValueEnum};
use common::async_driver::{AsyncIo, serve_connection};
use common::sendfile::{FileRange, send_file};
use common::{AcceptErrors, GRACE_PERIOD, ServerArgs, Shutdown};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio::time::timeout_at;

const MODEL: &str = "09-async";

/// Which tokio scheduler runs the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runtime {
    /// One thread runs every task (like 07-epoll, with async/await).
    CurrentThread,
    /// `--workers` threads share the tasks and steal from each other.
    MultiThread,
}

/// tokio tasks with async/await.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Which tokio scheduler runs the connections' tasks.
    #[arg(long, value_enum, default_value = "current-thread")]
    runtime: Runtime,

    /// multi-thread runtime: how many worker threads (default: one per CPU
    /// core). The current-thread runtime has exactly one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.workers.is_some() && args.runtime == Runtime::CurrentThread {
        let message = "--workers needs --runtime multi-thread";
        Args::command().error(ArgumentConflict, message).exit();
    }
    common::exit_status(MODEL, run(&args))
}

// ANCHOR: runtime
/// Builds the runtime from the flags (`#[tokio::main]` would hide this).
fn run(args: &Args) -> anyhow::Result<()> {
    let mut builder = match args.runtime {
        Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
        Runtime::MultiThread => tokio::runtime::Builder::new_multi_thread(),
    };
    if let Some(workers) = args.workers {
        builder.worker_threads(usize::from(workers));
    }
    let runtime = builder
        .enable_all()
        .thread_name_fn(|| {
            static NEXT: AtomicUsize = AtomicUsize::new(1);
            format!("worker-{}", NEXT.fetch_add(1, Ordering::Relaxed))
        })
        .build()?;
    runtime.block_on(serve(args))
}
// ANCHOR_END: runtime

async fn serve(args: &Args) -> anyhow::Result<()> {
    // Signal streams listen from the moment they are created, so create
    // them once, before the start-up line (tests signal as soon as they see
    // it); a `ctrl_c()` made inside the loop would miss signals between polls.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    // socket2 with --backlog, not `TcpListener::bind`, whose backlog is 128.
    let listener = TcpListener::from_std(common::start(MODEL, &args.server)?)?;
    let config = args.server.session_config(MODEL);
    // Registers every connection, so that one `request()` at shutdown
    // wakes each task waiting in `read` (common's shutdown.rs explains).
    let shutdown = Shutdown::new()?;
    // The live connections' tasks, to wait for at shutdown. A JoinSet is
    // plain tokio (no tokio-util for TaskTracker) and aborts what is left
    // when dropped; the price is reaping finished tasks in the loop.
    let mut connections = JoinSet::new();
    let mut errors = AcceptErrors::default();

    // ANCHOR: accept_loop
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    errors.succeeded();
                    let connection = shutdown.adopt(stream, peer);
                    connections.spawn(serve_connection::<Tokio>(connection, config));
                }
                // Out of fds: the listener stays readable, so pause (this
                // task only) instead of spinning; logged once per burst.
                Err(error) => tokio::time::sleep(errors.failed(&error)).await,
            },
            // Reap every finished connection, so the set holds only live
            // ones (`Some(Err(..))` here would skip tasks that ended well).
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished {
                    log::error!("a connection's task failed: {error}");
                }
            }
        }
    }
    // ANCHOR_END: accept_loop

    // ANCHOR: shutdown
    log::info!("signal received: finishing in-flight requests, then exiting");
    drop(listener); // stop accepting: new connects are refused
    shutdown.request(); // each connection answers what is in flight
    let drain = async { while connections.join_next().await.is_some() {} };
    let drained = tokio::select! {
        () = drain => true,
        () = tokio::time::sleep(GRACE_PERIOD) => false,
        _ = terminate.recv() => exit_at_once(),
        _ = interrupt.recv() => exit_at_once(),
    };
    if !drained {
        // Dropping the set aborts these tasks, closing their sockets.
        common::shutdown::warn_grace_over(connections.len(), GRACE_PERIOD);
    }
    // ANCHOR_END: shutdown
    log::info!("stopped");
    Ok(())
}

/// A second signal while draining: the user means it.
fn exit_at_once() -> ! {
    log::warn!("signal received again: exiting without waiting");
    std::process::exit(1);
}

// ANCHOR: tokio_io
/// tokio's sockets and timers behind the async driver's trait: each wait
/// is tokio's own future, and a timeout is a timer raced against it.
struct Tokio;

impl AsyncIo for Tokio {
    type Stream = TcpStream;

    async fn readable(stream: &mut TcpStream, deadline: Instant) -> io::Result<()> {
        // `Elapsed` converts into an `io::Error` of kind `TimedOut`.
        timeout_at(deadline.into(), stream.readable()).await?
    }

    fn try_read(stream: &mut TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
        // tokio's `try_read` forgets the readiness only on `WouldBlock`, so
        // after each request the next `readable()` returns at once and the
        // read after it only says EAGAIN: a wasted `recvfrom` per request.
        // A read shorter than the buffer emptied the socket too (tokio's
        // own `read` and nginx rule so); saying `WouldBlock` to `try_io`,
        // the count kept aside, makes tokio forget it here as well.
        let size = buffer.len();
        let mut drained = None;
        let result = stream.try_io(Interest::READABLE, || match stream.try_read(buffer)? {
            count if 0 < count && count < size => {
                drained = Some(count);
                Err(io::ErrorKind::WouldBlock.into())
            }
            count => Ok(count),
        });
        match drained {
            Some(count) => Ok(count),
            None => result,
        }
    }

    async fn write(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> io::Result<usize> {
        timeout_at(deadline.into(), stream.write(bytes)).await?
    }

    async fn send_file(
        stream: &mut TcpStream,
        range: &FileRange<'_>,
        deadline: Instant,
    ) -> io::Result<usize> {
        // tokio has no sendfile: `async_io` waits for writability and
        // retries our syscall while it says `WouldBlock`.
        let send = || send_file(stream.as_fd(), range);
        timeout_at(deadline.into(), stream.async_io(Interest::WRITABLE, send)).await?
    }

    fn set_nodelay(stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    async fn sleep_until(deadline: Instant) {
        tokio::time::sleep_until(deadline.into()).await;
    }

    fn worker_label() -> String {
        worker_label()
    }
}
// ANCHOR_END: tokio_io

/// `pid=1234 thread=worker-2 task=17`: the thread that started the task
/// (work stealing may move it later) and tokio's id for it.
fn worker_label() -> String {
    format!("{} task={}", common::worker_label(), tokio::task::id())
}
