//! # 07-epoll: one thread, non-blocking sockets, `epoll(7)`
//!
//! The same one-thread event loop as 06-select, on Linux's scalable
//! readiness API. Connections, sessions, timers and shutdown are the very
//! same code (`common::event_loop`); only the syscalls differ, and that
//! difference is the lesson. select hands the kernel the whole list of
//! descriptors on every call and scans all of them afterwards. epoll keeps
//! the interest list *in the kernel*: a connection is added once
//! (`epoll_ctl(ADD)`), changed only when what we wait for changes (`MOD`:
//! "tell me when writable" while output is pending), and `epoll_wait`
//! returns just the ready ones, each with the token we gave it (the
//! connection's slot in the table). The cost per wake-up follows the number
//! of *active* connections, not the number of open ones, and there is no
//! FD_SETSIZE: 10,000 idle clients cost memory, not CPU.
//!
//! The interest list is level-triggered (the default): `epoll_wait` reports
//! a socket for as long as it is readable, exactly like select. So the loop
//! may read once per report and leave the rest for the next round, which
//! also keeps one fast sender from starving the others. Edge-triggered mode
//! (`EPOLLET`) reports only *changes*: the loop would have to read (and
//! write, and accept) until `WouldBlock` every time, or data left in the
//! buffer would never be reported again and the connection would hang. It
//! saves wake-ups and `epoll_ctl` calls in exchange for that subtlety;
//! tokio (09) uses it behind mio. This loop does not need it: it changes
//! interest only when the session's wishes change, which is rare.
//!
//! epoll is Linux's. macOS and the BSDs have **kqueue** instead, the same
//! idea in another shape (`kqueue.rs`): this binary uses whichever its
//! system has, and its start-up line and `--help` say which. The loop below
//! is the same for both. Signals arrive as one more readable descriptor (a
//! signalfd on Linux, a self-pipe elsewhere: see `common::signals`).
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 07-epoll                     # echo on 127.0.0.1:9090
//! nc 127.0.0.1 9090                             # as many nc as you like
//! cargo run --bin 07-epoll -- --mode http --log debug
//! curl -v 127.0.0.1:9090/                       # the page after ~300 ms
//! strace -e trace=epoll_wait,epoll_ctl,accept4 -p PID   # watch the loop
//! ```

#[cfg(target_os = "linux")]
mod epoll;
#[cfg(not(target_os = "linux"))]
mod kqueue;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use common::event_loop::EventLoop;

/// The kernel's interest list of this system.
#[cfg(target_os = "linux")]
use epoll::{EpollInterests as KernelInterests, NAME as API};
#[cfg(not(target_os = "linux"))]
use kqueue::{KqueueInterests as KernelInterests, NAME as API};

const MODEL: &str = "07-epoll";

/// `--help`'s first line names this build's API.
#[cfg(target_os = "linux")]
const ABOUT: &str = "One thread, non-blocking sockets and epoll(7)";
#[cfg(not(target_os = "linux"))]
const ABOUT: &str = "One thread, non-blocking sockets and kqueue(2), this system's epoll";

#[derive(Debug, Parser)]
#[command(version, about = ABOUT, long_about = None)]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Before the start-up line: a SIGTERM right after it must not kill us.
    let signals = common::event_loop::watch_signals().context("cannot watch for signals")?;
    let listener = common::start_using(MODEL, Some(API), &args.server)?;
    let mut interests =
        KernelInterests::new().with_context(|| format!("cannot create the {API} instance"))?;
    let mut event_loop = EventLoop::new(
        listener,
        signals,
        args.server.session_config(MODEL),
        &mut interests,
    )?;
    let mut ready = Vec::new();

    while event_loop.is_running() {
        // Wait for ready descriptors, or until the nearest timer is due
        // (`epoll.rs` or `kqueue.rs`).
        let timeout = event_loop.timeout(Instant::now());
        interests
            .wait(timeout, &mut ready)
            .with_context(|| format!("waiting in {API} failed"))?;

        // ANCHOR: dispatch
        let now = Instant::now();
        for &(token, readiness) in &ready {
            event_loop.dispatch(token, readiness, now, &mut interests);
        }
        event_loop.fire_due_timers(now, &mut interests);
        // ANCHOR_END: dispatch
    }
    event_loop.finish();
    Ok(())
}
