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
//! Signals arrive through a signalfd watched like any socket (why not a
//! self-pipe: see `common::event_loop::watch_signals`).
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

use std::io;
use std::os::fd::BorrowedFd;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use common::event_loop::{EventLoop, Interest, InterestList, Readiness, Token};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

const MODEL: &str = "07-epoll";

/// How many ready descriptors one `epoll_wait` returns at most; more wait
/// for the next round (level-triggered: nothing is lost).
const EVENTS_PER_WAIT: usize = 1024;

/// One thread, non-blocking sockets and epoll(7).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    common::exit_status(MODEL, run(&args))
}

// ANCHOR: interest_list
/// The kernel's interest list, one `epoll_ctl` per change.
struct EpollInterests(Epoll);

/// Level-triggered (no `EPOLLET`). An empty set is allowed: the socket stays
/// registered, and errors and hang-ups are reported anyway.
fn event(token: Token, interest: Interest) -> EpollEvent {
    let mut flags = EpollFlags::empty();
    if interest.read {
        flags |= EpollFlags::EPOLLIN;
    }
    if interest.write {
        flags |= EpollFlags::EPOLLOUT;
    }
    EpollEvent::new(flags, token.to_u64())
}

impl InterestList for EpollInterests {
    fn add(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        Ok(self.0.add(fd, event(token, interest))?)
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        Ok(self.0.modify(fd, &mut event(token, interest))?)
    }

    fn remove(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(self.0.delete(fd)?)
    }
}
// ANCHOR_END: interest_list

fn run(args: &Args) -> anyhow::Result<()> {
    // Before the start-up line: a SIGTERM right after it must not kill us.
    let signals = common::event_loop::watch_signals().context("cannot set up a signalfd")?;
    let listener = common::start(MODEL, &args.server)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("cannot create an epoll")?;
    let mut interests = EpollInterests(epoll);
    let mut event_loop = EventLoop::new(
        listener,
        signals,
        args.server.session_config(MODEL),
        &mut interests,
    )?;
    let mut events = vec![EpollEvent::empty(); EVENTS_PER_WAIT];

    while event_loop.is_running() {
        // ANCHOR: wait
        // Nothing to rebuild: the kernel already knows what we watch. Wait
        // for ready descriptors, or until the nearest timer is due.
        let timeout = match event_loop.timeout(Instant::now()) {
            None => EpollTimeout::NONE,
            Some(wait) => EpollTimeout::try_from(wait).unwrap_or(EpollTimeout::MAX),
        };
        let count = match interests.0.wait(&mut events, timeout) {
            Ok(count) => count,
            Err(Errno::EINTR) => continue,
            Err(error) => return Err(error).context("epoll_wait failed"),
        };
        // ANCHOR_END: wait

        // ANCHOR: dispatch
        // Only the ready ones come back, each with its token: no scan.
        let now = Instant::now();
        for ready in &events[..count] {
            let flags = ready.events();
            let readiness = Readiness {
                readable: flags.contains(EpollFlags::EPOLLIN),
                writable: flags.contains(EpollFlags::EPOLLOUT),
                hung_up: flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP),
            };
            event_loop.dispatch(
                Token::from_u64(ready.data()),
                readiness,
                now,
                &mut interests,
            );
        }
        event_loop.fire_due_timers(now, &mut interests);
        // ANCHOR_END: dispatch
    }
    event_loop.finish();
    Ok(())
}
