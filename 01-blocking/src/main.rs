//! # 01-blocking: one client at a time
//!
//! The simplest server there is: `accept` a connection, serve it until it
//! closes, `accept` the next. Every call blocks, so while one client is
//! connected, even an idle one, everyone else waits in the kernel's listen
//! queue. The fake database (`--mode http`) makes it plain: each request
//! holds the only thread for 300 ms, so the server answers at most ~3.3
//! requests per second however many clients come. It is the baseline the
//! other ten models improve on, and it mirrors the lecture's
//! `tcp_singlethread.py`.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 01-blocking                  # echo on 127.0.0.1:9090
//! nc 127.0.0.1 9090                             # type; a second nc waits
//! cargo run --bin 01-blocking -- --mode http
//! curl -v 127.0.0.1:9090/                       # the page, after ~300 ms
//! ```

use std::process::ExitCode;

use clap::Parser;
use common::{GRACE_PERIOD, ServerArgs, Shutdown, Threads, accept};

const MODEL: &str = "01-blocking";

/// One client at a time: blocking accept, read, write.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

// ANCHOR: run
fn run(args: &Args) -> anyhow::Result<()> {
    // Before anything else: signals are then handled by a watcher thread,
    // never by surprise in the middle of this loop.
    let shutdown = Shutdown::watch_signals()?;
    let listener = common::start(MODEL, &args.server)?;
    let config = args.server.session_config(MODEL);

    // ANCHOR: accept_loop
    // The whole model: take one connection, serve it to the end, repeat.
    // While `serve_connection` runs, new clients queue up in the kernel
    // (up to --backlog of them) and nobody answers them.
    while let Some(connection) = accept(&listener, &shutdown) {
        common::serve_connection::<Threads>(connection, config);
    }
    // ANCHOR_END: accept_loop

    // SIGINT/SIGTERM ended the loop; the connection being served (if any)
    // already finished inside the loop, so this returns at once.
    shutdown.wait_for_connections(GRACE_PERIOD);
    log::info!("stopped");
    Ok(())
}
// ANCHOR_END: run
