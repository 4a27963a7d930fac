//! # 06-select: one thread, non-blocking sockets, `select(2)`
//!
//! One thread serves every client. No socket ever blocks: each connection is
//! a small state machine (the shared `Session` plus its socket), and the
//! thread waits in exactly one place, `select`, for whichever comes first:
//! a socket ready to read or write, the nearest timer (a fake-DB answer, an
//! idle timeout), or a signal. A request waiting 300 ms for the fake DB is
//! just an entry in a timer heap (the event loop's `call_later`), so it
//! holds up nobody. This is the lecture's `select.select(read_waiters,
//! write_waiters, [])` loop, written out with the syscall in plain view.
//!
//! The trade-off is select itself. Every call copies two bitmaps of all
//! watched descriptors into the kernel, the kernel checks each of them, and
//! afterwards this loop scans every connection again to find the few that
//! are ready: O(n) work per wake-up for n connections, even when one is
//! active. And an `fd_set` is a fixed bitmap of FD_SETSIZE = 1024 bits: a
//! descriptor numbered 1024 or more cannot be watched at all (in C, `FD_SET`
//! silently writes past the end; nix panics). This server closes such a
//! connection at once with a warning and keeps serving the others.
//! `--syscall poll` swaps select for `poll(2)` (`poll.rs`), which lifts the
//! 1024 limit but keeps the O(n) cost; 07-epoll lifts both.
//!
//! SIGINT/SIGTERM arrive as one more readable descriptor: a signalfd on
//! Linux, the self-pipe trick elsewhere (`common::signals` says why each).
//!
//! Run and poke it:
//!
//! ```text
//! cargo run --bin 06-select                    # echo on 127.0.0.1:9090
//! nc 127.0.0.1 9090                             # two nc at once both echo
//! cargo run --bin 06-select -- --mode http --log debug
//! curl -v 127.0.0.1:9090/                       # the page after ~300 ms
//! strace -e trace=pselect6,accept4,recvfrom,sendto -p PID  # watch the loop
//!                     # (glibc's select is pselect6; std reads with recvfrom)
//! cargo run --bin 06-select -- --syscall poll  # the same loop on poll(2)
//! ```

mod poll;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use common::event_loop::{EventLoop, Interest, InterestList, Readiness, Token};
use nix::errno::Errno;
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::{TimeVal, TimeValLike};

const MODEL: &str = "06-select";

/// One thread, non-blocking sockets and select(2) (or poll(2)).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
    /// Which readiness syscall waits: the same loop either way.
    #[arg(long, value_enum, default_value_t = Syscall::Select)]
    syscall: Syscall,
}

/// The two calls that hand the kernel the whole list on every wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Syscall {
    /// select(2): two bitmaps of FD_SETSIZE (1024) bits; a higher
    /// descriptor cannot be watched.
    Select,
    /// poll(2): an array of any length; no descriptor limit, same O(n) scan.
    Poll,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

// ANCHOR: interest_list
/// select keeps no interest list in the kernel: every call passes the whole
/// list again (see `watched` below). What is left to do here is refusing a
/// descriptor that does not fit into an `fd_set`.
struct SelectInterests;

impl InterestList for SelectInterests {
    fn add(&mut self, fd: BorrowedFd<'_>, _: Token, _: Interest) -> io::Result<()> {
        let fd = fd.as_raw_fd();
        if usize::try_from(fd).is_ok_and(|fd| fd < FD_SETSIZE) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "descriptor {fd} is beyond select's FD_SETSIZE ({FD_SETSIZE})"
            )))
        }
    }

    fn modify(&mut self, _: BorrowedFd<'_>, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }

    fn remove(&mut self, _: BorrowedFd<'_>) -> io::Result<()> {
        Ok(())
    }
}
// ANCHOR_END: interest_list

fn run(args: &Args) -> anyhow::Result<()> {
    match args.syscall {
        Syscall::Select => serve(args, "select", SelectInterests, select_wait),
        Syscall::Poll => serve(args, "poll", poll::PollInterests, poll::wait),
    }
}

/// How one readiness syscall waits: fills the list of ready descriptors.
type Wait = fn(&EventLoop, Option<Duration>, &mut Vec<(Token, Readiness)>) -> io::Result<()>;

/// The event loop, the same for select and poll: wait, dispatch what is
/// ready, fire due timers.
fn serve(
    args: &Args,
    syscall: &str,
    mut interests: impl InterestList,
    wait: Wait,
) -> anyhow::Result<()> {
    // Before the start-up line: a SIGTERM right after it must not kill us.
    let signals = common::event_loop::watch_signals().context("cannot watch for signals")?;
    let listener = common::start_using(MODEL, Some(syscall), &args.server)?;
    let mut event_loop = EventLoop::new(
        listener,
        signals,
        args.server.session_config(MODEL),
        &mut interests,
    )?;
    let mut ready = Vec::new();

    while event_loop.is_running() {
        let timeout = event_loop.timeout(Instant::now());
        wait(&event_loop, timeout, &mut ready).with_context(|| format!("{syscall} failed"))?;

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

// ANCHOR: wait
/// select(2): waits for readiness or the timeout, and fills `ready`.
fn select_wait(
    event_loop: &EventLoop,
    timeout: Option<Duration>,
    ready: &mut Vec<(Token, Readiness)>,
) -> io::Result<()> {
    ready.clear();
    // Build both sets from scratch, every round: select overwrites them
    // with its answer.
    let mut readable = FdSet::new();
    let mut writable = FdSet::new();
    for (_, fd, interest) in event_loop.watched() {
        if interest.read {
            readable.insert(fd);
        }
        if interest.write {
            writable.insert(fd);
        }
    }
    // Wait for a descriptor, or until the nearest timer is due.
    let mut timeout = timeout
        .map(|wait| TimeVal::microseconds(i64::try_from(wait.as_micros()).unwrap_or(i64::MAX)));
    match select(None, &mut readable, &mut writable, None, timeout.as_mut()) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok(()), // a signal: go round again
        Err(error) => return Err(error.into()),
    }
    // ANCHOR_END: wait

    // ANCHOR: scan
    // The O(n) part: select says how many are ready, not which, so every
    // watched descriptor is tested. The sets borrow the descriptors, so
    // the answers are copied out before the connection table changes.
    ready.extend(event_loop.watched().filter_map(|(token, fd, _)| {
        let readiness = Readiness {
            readable: readable.contains(fd),
            writable: writable.contains(fd),
            hung_up: false,
        };
        (readiness.readable || readiness.writable).then_some((token, readiness))
    }));
    Ok(())
    // ANCHOR_END: scan
}
