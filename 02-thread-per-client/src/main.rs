//! # 02-thread-per-client: a new OS thread for every connection
//!
//! The accept loop of 01, except that each connection gets its own thread
//! (`conn-1`, `conn-2`, ...) running the very same blocking driver. A thread
//! that waits in `read` or sleeps for the fake DB now blocks only its own
//! client, so 16 requests to a 300 ms DB take 300 ms, not 4.8 s. The code
//! stays as simple as 01's; the price is paid by the operating system. It
//! mirrors the lecture's `tcp_multithread.py`.
//!
//! What a thread costs: a kernel task (scheduled like a process, with its
//! own kernel stack) and a user stack. Rust reserves 2 MiB of address space
//! per thread, but only the pages a thread touches become memory: 2,000
//! connections measured ~21 MB resident yet ~5 GB virtual. Every wake-up is
//! a context switch, and thousands of runnable threads spend their time being
//! switched. At thousands of clients the limits arrive before the memory
//! does: `ulimit -u` (threads count as processes), `kernel.threads-max`,
//! `kernel.pid_max` (often 32768), a container's `pids.max`, and two
//! memory mappings per stack against `vm.max_map_count`. Past a limit,
//! starting a thread fails with `EAGAIN`; this server then closes that one
//! connection and keeps serving the others. 06-09 serve the same clients
//! with a handful of threads.
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 02-thread-per-client                  # echo on 127.0.0.1:9090
//! nc 127.0.0.1 9090                                      # two nc's both echo
//! cargo run --bin 02-thread-per-client -- --mode http --log debug
//! curl -si 127.0.0.1:9090/ | grep X-Worker              # thread=conn-1, conn-2, ...
//! ls /proc/PID/task | wc -l   # PID from the start-up line: 2 + one per client
//! ```

use std::process::ExitCode;
use std::thread;

use clap::Parser;
use common::shutdown::ACCEPT_BACKOFF;
use common::{GRACE_PERIOD, ServerArgs, Shutdown, Threads, accept};

const MODEL: &str = "02-thread-per-client";

/// A new OS thread for every connection.
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

fn run(args: &Args) -> anyhow::Result<()> {
    // First: the threads started below inherit the blocked SIGINT/SIGTERM,
    // so only the watcher thread ever sees them.
    let shutdown = Shutdown::watch_signals()?;
    let listener = common::start(MODEL, &args.server)?;
    let config = args.server.session_config(MODEL);

    // ANCHOR: accept_loop
    // The main thread only accepts; it is back in `accept` microseconds
    // after each connect, however long the connection will live.
    let mut connection_number: u64 = 0;
    while let Some(connection) = accept(&listener, &shutdown) {
        connection_number += 1;
        let peer = connection.peer;
        // ANCHOR: dispatch
        // Builder, not `thread::spawn`: spawn panics when the OS refuses a
        // thread, Builder returns the error. The name is what `--log debug`
        // and the X-Worker header show.
        let started = thread::Builder::new()
            .name(format!("conn-{connection_number}"))
            .spawn(move || common::serve_connection::<Threads>(connection, config));
        // ANCHOR_END: dispatch
        // The JoinHandle is dropped: the thread is detached and cleans up
        // after itself when its client leaves. Nobody joins it; shutdown
        // waits for its connection instead (below).
        if let Err(error) = started {
            // The closure, and the connection in it, was dropped: this client
            // sees its connection close. Pausing lets threads finish before
            // the next try, instead of accepting and closing in a tight loop.
            log::warn!("cannot start a thread for {peer}: {error}; closing that connection");
            thread::sleep(ACCEPT_BACKOFF);
        }
    }
    // ANCHOR_END: accept_loop

    // ANCHOR: shutdown
    // `accept` returned None: SIGINT/SIGTERM. The watcher has half-closed
    // every tracked connection, so threads blocked in `read` see EOF, answer
    // what is in flight and close. Returning from main ends the process and
    // every thread still running, so wait for them, but not forever.
    shutdown.wait_for_connections(GRACE_PERIOD);
    log::info!("stopped");
    Ok(())
    // ANCHOR_END: shutdown
}
