//! # 03-thread-pool: a fixed pool of N threads
//!
//! `--workers N` threads (default 10, as in the lecture) start once and each
//! loops: accept a connection, serve it to the end, accept the next. The
//! thread count, and so the memory and the scheduler's load, stays fixed
//! whatever the traffic: no spawn per client, no thread limit to run into.
//! The price is the pool's lesson: a worker belongs to one connection for
//! that connection's whole life, idle or not. With N keep-alive clients
//! connected, client N+1 waits in the kernel's listen queue until one of them
//! leaves, even while all N sit idle. 16 requests to a 200 ms fake DB on
//! `--workers 4` take four rounds, 800 ms.
//!
//! Who accepts. Every worker waits in `accept` on the one shared listener,
//! and the kernel hands each connection to one of them. The other design:
//! one accept thread sends each accepted stream over a crossbeam channel
//! that the workers receive from. That thread accepts clients the pool
//! cannot serve yet, so they wait inside the process, each holding a file
//! descriptor, in a channel that is either unbounded or blocks the accept
//! thread in `send`, where shutdown cannot reach it. Here waiting clients
//! stay in the kernel's listen queue, bounded by `--backlog` and visible in
//! `ss -ltn` (Recv-Q). The cost: every idle worker wakes for each connect
//! and all but one find nothing to accept (a small thundering herd, cheap
//! at ten threads).
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 03-thread-pool -- --workers 2         # echo on 127.0.0.1:9090
//! nc 127.0.0.1 9090    # in three terminals: the third echoes only after
//!                      # one of the first two quits
//! cargo run --bin 03-thread-pool -- --mode http --workers 4 --log debug
//! curl -si 127.0.0.1:9090/ | grep X-Worker              # thread=worker-3
//! ```

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use anyhow::Context;
use clap::Parser;
use common::{GRACE_PERIOD, ServerArgs, SessionConfig, Shutdown, Threads, accept};

const MODEL: &str = "03-thread-pool";

/// A fixed pool of threads serves the connections, one each at a time.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// How many worker threads. Each serves one connection from connect to
    /// close, so at most N clients are served at once; the others wait.
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    workers: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    // First: the workers inherit the blocked SIGINT/SIGTERM, so only the
    // watcher thread ever sees them.
    let shutdown = Shutdown::watch_signals()?;
    let listener = Arc::new(common::start(MODEL, &args.server)?);
    let config = args.server.session_config(MODEL);

    // ANCHOR: pool
    // Detached threads sharing the listener through an Arc, not
    // `thread::scope` with a borrowed listener: a scope joins every worker
    // before it returns, and a worker stuck writing to a client that never
    // reads would then hold the process past the grace period.
    for number in 1..=args.workers {
        let listener = Arc::clone(&listener);
        let shutdown = shutdown.clone();
        thread::Builder::new()
            .name(format!("worker-{number}"))
            .spawn(move || worker(&listener, config, &shutdown))
            .with_context(|| format!("cannot start thread worker-{number}"))?;
    }
    // ANCHOR_END: pool

    // ANCHOR: shutdown
    // The main thread has nothing to do until SIGINT/SIGTERM. Then every
    // idle worker's `accept` returns None, busy ones see EOF on their
    // half-closed connection, answer what is in flight and return.
    shutdown.wait_until_requested();
    shutdown.wait_for_connections(GRACE_PERIOD);
    log::info!("stopped");
    Ok(())
    // ANCHOR_END: shutdown
}

// ANCHOR: worker
/// One worker's life: 01's whole server, run N times side by side. While
/// `serve_connection` runs, this thread accepts nobody.
fn worker(listener: &TcpListener, config: SessionConfig, shutdown: &Shutdown) {
    // `common::accept` polls the listener together with the shutdown
    // pipe; a thread blocked in plain `accept(2)` could not be woken to stop.
    while let Some(connection) = accept(listener, shutdown) {
        common::serve_connection::<Threads>(connection, config);
    }
    log::debug!("stopped accepting");
}
// ANCHOR_END: worker
