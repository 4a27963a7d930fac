//! # 05-prefork-threads: P processes x T threads on one socket
//!
//! 04-prefork with a thread pool in every child: the parent listens, forks
//! P children (default: one per CPU), and each child starts T threads
//! (default 10) that all accept on the shared socket. P x T clients are
//! served at once. Processes give isolation (a crash costs one child's
//! clients, and the parent replaces it) and use every core; threads make
//! each process serve many clients cheaply, since threads share memory. It
//! is how Apache's "worker" MPM and gunicorn's `--workers --threads` run.
//!
//! The order matters: fork first, threads after. `fork(2)` copies only the
//! calling thread, so a child forked from a process with threads inherits
//! whatever locks those threads held (the allocator's, a logger's) still
//! locked, with no thread left to unlock them: it can hang on its first
//! `malloc`. So the parent never starts a thread (`common::prefork` only
//! polls a signalfd) and each child starts its own after the fork.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 05-prefork-threads -- --log debug --workers 2 --threads 3
//! nc 127.0.0.1 9090                      # pid=... worker-N: who serves you
//! cargo run --bin 05-prefork-threads -- --mode http
//! curl -si 127.0.0.1:9090/ | grep X-Worker   # pid=4243 thread=worker-7
//! ```

use std::io;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use clap::Parser;
use common::prefork::{self, Supervisor};
use common::{GRACE_PERIOD, ServerArgs, SessionConfig, Shutdown, Threads, accept};

const MODEL: &str = "05-prefork-threads";

/// P processes x T threads, all accepting on the shared socket.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Worker processes [default: one per CPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    /// Threads in each worker process, each serving one client at a time.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Before the start-up line, and before any thread: block the signals
    // the supervisor polls for, so an early SIGTERM waits for it.
    let supervisor = Supervisor::new()?;
    let listener = common::start(MODEL, &args.server)?;
    let config = args.server.session_config(MODEL);
    let workers = args
        .workers
        .map_or_else(prefork::default_workers, usize::from);

    // ANCHOR: fork
    // Fork P children that inherit the listening socket; each runs
    // `serve_in_child` and exits. Returns when every child is gone.
    supervisor.run(workers, |shutdown| {
        serve_in_child(&listener, config, args.threads, shutdown)
    })?;
    // ANCHOR_END: fork
    Ok(())
}

// ANCHOR: child
/// One worker process: `threads` threads, started now that we are in the
/// child, each taking clients from the shared socket.
///
/// Each thread accepts for itself rather than one accept thread handing
/// connections to a pool: the kernel's listen queue already is the work
/// queue, for threads exactly as for processes, so there is nothing to
/// hand over and no channel whose readers could get uneven shares.
fn serve_in_child(
    listener: &TcpListener,
    config: SessionConfig,
    threads: u16,
    shutdown: &Shutdown,
) -> io::Result<()> {
    log::debug!("worker process ready, starting {threads} threads");
    // Detached threads sharing a duplicate of the listener, as in 03, not
    // `thread::scope` with the borrowed one: a scope joins every thread
    // before it returns, and a thread stuck writing to a client that never
    // reads would then hold the child past the grace period.
    let listener = Arc::new(listener.try_clone()?);
    for index in 1..=threads {
        let listener = Arc::clone(&listener);
        let shutdown = shutdown.clone();
        thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                // P x T threads poll one socket; every one wakes for each
                // connection and the losers of the race get WouldBlock from
                // the non-blocking listener and wait again, instead of
                // blocking in `accept` where a shutdown could not reach them.
                while let Some(connection) = accept(&listener, &shutdown) {
                    common::serve_connection::<Threads>(connection, config);
                }
            })?;
    }

    // As 03's main thread: wait for the stop, then for the connections in
    // flight, at most the grace period. Returning ends the child, and with
    // it any thread still stuck. (If a thread could not be started, `?`
    // above already ended the child with the error; its supervisor starts
    // a replacement.)
    shutdown.wait_until_requested();
    shutdown.wait_for_connections(GRACE_PERIOD);
    log::debug!("worker process stopped");
    Ok(())
}
// ANCHOR_END: child
