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
//! its whole worker thread, as in 08, though here the types show it. Unlike
//! 08, a connection is not the blocking driver in disguise: it `select!`s
//! over reading, writing and its next deadline, like 06 and 07, so it keeps
//! reading while a reply waits to be written.
//!
//! `--runtime current-thread` runs everything on one thread (like 07);
//! `multi-thread` (the default) spreads tasks over `--workers` threads.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 09-async -- --mode http --runtime current-thread
//! curl -s 127.0.0.1:9090/ & curl -s 127.0.0.1:9090/ & wait   # ~300 ms, not 600
//! curl -sv 127.0.0.1:9090/ 2>&1 | grep X-Worker              # thread and task
//! nc 127.0.0.1 9090                                         # in echo mode
//! ```

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::error::ErrorKind::ArgumentConflict;
use clap::{CommandFactory, Parser, ValueEnum};
use common::{AcceptErrors, GRACE_PERIOD, ServerArgs, Session, SessionConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

const MODEL: &str = "09-async";

/// Bytes read per `try_read`, into a buffer on the polling thread's stack
/// that lives across no `.await`, so an idle connection holds none.
const READ_CHUNK: usize = 8 * 1024;

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
    #[arg(long, value_enum, default_value = "multi-thread")]
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
    let (stop_sender, stop_receiver) = watch::channel(false); // "shutdown began"
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
                    connections.spawn(serve_connection(stream, peer, config, stop_receiver.clone()));
                }
                // Out of fds: the listener stays readable, so pause (this
                // task only) instead of spinning; logged once per burst.
                Err(error) => tokio::time::sleep(errors.failed(&error)).await,
            },
            // Reap finished connections so the set holds only live ones.
            Some(Err(error)) = connections.join_next(), if !connections.is_empty() => {
                log::error!("a connection's task failed: {error}");
            }
        }
    }
    // ANCHOR_END: accept_loop

    // ANCHOR: shutdown
    log::info!("signal received: finishing in-flight requests, then exiting");
    drop(listener); // stop accepting: new connects are refused
    let _ = stop_sender.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    let drained = tokio::select! {
        () = drain => true,
        () = tokio::time::sleep(GRACE_PERIOD) => false,
        _ = terminate.recv() => exit_at_once(),
        _ = interrupt.recv() => exit_at_once(),
    };
    if !drained {
        // Dropping the set aborts these tasks, closing their sockets.
        log::warn!(
            "{} connection(s) still busy after {GRACE_PERIOD:?}; exiting anyway",
            connections.len()
        );
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

/// One connection's task, from accept to close.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    config: SessionConfig,
    stop: watch::Receiver<bool>,
) {
    let mut session = Session::new(config, worker_label(), Instant::now());
    log::debug!("connect {peer}");
    // No Nagle: output is written as soon as it exists (see common's driver).
    if let Err(error) = stream.set_nodelay(true) {
        log::debug!("cannot set TCP_NODELAY for {peer}: {error}");
    }
    match drive(&stream, &mut session, stop).await {
        Ok(()) => log::debug!("close {peer}"),
        Err(error) => log::debug!("close {peer}: {error}"),
    }
}

// ANCHOR: drive
/// The session's event loop: wait for whichever comes first of "readable"
/// (only if the session takes input), "writable" (only if it has output),
/// its next deadline and shutdown; act on it without blocking; repeat.
/// `readable`/`writable` borrow the stream shared, so both can be waited
/// for at once without splitting it.
async fn drive(
    stream: &TcpStream,
    session: &mut Session,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let mut stopping = *stop.borrow_and_update();
    if stopping {
        session.begin_shutdown(Instant::now());
    }
    // No deadline once the session is finished: dropping the stream closes.
    while let Some(deadline) = session.next_deadline() {
        tokio::select! {
            ready = stream.readable(), if session.wants_read() => {
                ready?;
                let mut buffer = [0; READ_CHUNK];
                let capacity = session.read_capacity().min(READ_CHUNK);
                match stream.try_read(&mut buffer[..capacity]) {
                    Ok(0) => session.receive_eof(Instant::now()),
                    Ok(received) => {
                        log::debug!("recv {received} bytes");
                        session.receive(&buffer[..received], Instant::now());
                    }
                    // The readiness was stale; tokio cleared it, wait again.
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(error),
                }
            }
            ready = stream.writable(), if session.wants_write() => {
                ready?;
                match stream.try_write(session.pending_output()) {
                    Ok(sent) => {
                        log::debug!("send {sent} bytes");
                        session.consume_output(sent, Instant::now());
                    }
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(error),
                }
            }
            // The fake DB's answer or the idle timeout: a timer, not a thread.
            () = tokio::time::sleep_until(deadline.into()) => {
                session.handle_timers(Instant::now());
            }
            // Shutdown began (or the server is gone): answer what is in
            // flight, then close.
            _ = stop.changed(), if !stopping => {
                stopping = true;
                session.begin_shutdown(Instant::now());
            }
        }
    }
    Ok(())
}
// ANCHOR_END: drive

/// `pid=1234 thread=worker-2 task=17`: the thread that started the task
/// (work stealing may move it later) and tokio's id for it.
fn worker_label() -> String {
    format!("{} task={}", common::worker_label(), tokio::task::id())
}
