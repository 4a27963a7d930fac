//! # 04-prefork: P processes, forked after `listen`, sharing one socket
//!
//! The Unix classic (Apache's prefork, the lecture's `worker_process`): the
//! parent creates the listening socket, then forks P children (default: one
//! per CPU). A forked child inherits every open descriptor, so all P hold
//! the *same* listening socket and each takes its next client from the one
//! kernel queue; the kernel hands each connection to exactly one of them.
//! Every child serves one client at a time, like 01-blocking, so P clients
//! are served at once and processes run on all cores with nothing shared:
//! a child that crashes takes down only its own client, and the parent
//! starts a new one. The price: a whole process (memory, a PID) per
//! concurrent client, so hundreds of clients need hundreds of processes.
//!
//! The parent is only a supervisor (`common::prefork`): it forwards
//! SIGINT/SIGTERM to its children, reaps them, replaces one that dies, and
//! exits after the last.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 04-prefork -- --log debug     # pid=... on every line
//! nc 127.0.0.1 9090                              # four nc's: four children
//! cargo run --bin 04-prefork -- --mode http --workers 4
//! curl -si 127.0.0.1:9090/ | grep X-Worker       # which child answered
//! kill -9 PID        # a pid from X-Worker: the parent logs it, forks anew
//! ```

use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use common::prefork::{self, Supervisor};
use common::{GRACE_PERIOD, ServerArgs, SessionConfig, Shutdown, Threads, accept};

const MODEL: &str = "04-prefork";

/// P processes forked after listen, each accepting on the shared socket.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Worker processes, each serving one client at a time [default: one
    /// per CPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    // First, before the start-up line: block the signals the supervisor
    // waits for, so a SIGTERM sent the moment a test reads the line is
    // queued for the supervisor instead of killing the parent. No thread
    // may start in this process: it is about to fork (see common::prefork).
    let supervisor = Supervisor::new()?;
    let listener = common::start(MODEL, &args.server)?;
    let config = args.server.session_config(MODEL);
    let workers = args
        .workers
        .map_or_else(prefork::default_workers, usize::from);

    // ANCHOR: fork
    // The socket listens already, so every child inherits it. `run` forks
    // the children and returns only when all of them are gone; each child
    // runs `serve_in_child` and exits, never coming back here.
    supervisor.run(workers, |shutdown| {
        serve_in_child(&listener, config, shutdown);
        Ok(())
    })?;
    // ANCHOR_END: fork
    Ok(())
}

// ANCHOR: child
/// The whole life of one worker process: 01-blocking's loop, on a socket
/// that P processes share.
fn serve_in_child(listener: &TcpListener, config: SessionConfig, shutdown: &Shutdown) {
    log::debug!("worker process ready");
    // All P children wait on the same socket. A plain blocking `accept`
    // would do for serving (the kernel wakes one of them per connection),
    // but a child blocked in `accept` cannot be told to stop. So
    // `common::accept` polls the listener together with the shutdown
    // pipe. `poll` wakes *every* waiting child for one connection (the
    // thundering herd); the listener is non-blocking, so the losers of the
    // race get WouldBlock and go back to waiting instead of hanging.
    while let Some(connection) = accept(listener, shutdown) {
        // While this child serves, the other P-1 take the next clients.
        common::serve_connection::<Threads>(connection, config);
    }
    // Stop requested: the loop only ends between connections, so nothing
    // is in flight and this returns at once; kept for symmetry with 05.
    shutdown.wait_for_connections(GRACE_PERIOD);
    log::debug!("worker process stopped");
}
// ANCHOR_END: child
