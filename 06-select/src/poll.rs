//! `poll(2)`, the middle step between select and epoll (the lecture's
//! `select.poll`), for `06-select --syscall poll`.
//!
//! What it fixes: no FD_SETSIZE. The caller passes an *array* of
//! `struct pollfd` (descriptor, events wanted, events returned) of any
//! length, so descriptor 5000 is as watchable as descriptor 5, and the
//! kernel writes its answer into a separate field (`revents`), so nothing
//! has to be rebuilt because the call overwrote it.
//!
//! What it keeps: the whole list still crosses into the kernel on every
//! call, the kernel still checks every entry, and the loop still scans
//! every entry afterwards to find the ready few. O(connections) per
//! wake-up, like select; only epoll and kqueue keep the list in the kernel.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use common::event_loop::{EventLoop, Interest, InterestList, Readiness, Token};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

// ANCHOR: interest_list
/// poll keeps no interest list in the kernel (every call passes the whole
/// array, built from the connection table) and has no size limit: there
/// is nothing to do here at all.
pub struct PollInterests;

impl InterestList for PollInterests {
    fn add(&mut self, _: BorrowedFd<'_>, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }

    fn modify(&mut self, _: BorrowedFd<'_>, _: Token, _: Interest) -> io::Result<()> {
        Ok(())
    }

    fn remove(&mut self, _: BorrowedFd<'_>) -> io::Result<()> {
        Ok(())
    }
}
// ANCHOR_END: interest_list

// ANCHOR: wait
/// Waits for readiness or the timeout, and fills `ready` with what the
/// kernel reported.
pub fn wait(
    event_loop: &EventLoop,
    timeout: Option<Duration>,
    ready: &mut Vec<(Token, Readiness)>,
) -> io::Result<()> {
    ready.clear();
    // One `pollfd` per watched descriptor, built afresh every round from
    // the connection table (a model could keep the array between rounds
    // and patch it; the kernel would still read all of it every call).
    let (tokens, mut fds): (Vec<Token>, Vec<PollFd<'_>>) = event_loop
        .watched()
        .map(|(token, fd, interest)| {
            let mut events = PollFlags::empty();
            if interest.read {
                events |= PollFlags::POLLIN;
            }
            if interest.write {
                events |= PollFlags::POLLOUT;
            }
            // An entry with no events still reports errors and hang-ups.
            (token, PollFd::new(fd, events))
        })
        .unzip();
    // Milliseconds, like epoll; `EventLoop::timeout` already rounded up.
    let timeout = timeout.map_or(PollTimeout::NONE, |wait| {
        PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)
    });
    match poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok(()), // a signal: go round again
        Err(error) => return Err(error.into()),
    }
    // The O(n) scan: poll says how many are ready, not which.
    for (&token, fd) in tokens.iter().zip(&fds) {
        let revents = fd.revents().unwrap_or(PollFlags::empty());
        let readiness = Readiness {
            // POLLHUP: the peer closed; a read returns what is left, then
            // EOF, which the session handles like any end of input.
            readable: revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP),
            writable: revents.contains(PollFlags::POLLOUT),
            // POLLERR (a reset) and POLLNVAL (not an open descriptor):
            // nothing more to do with this connection.
            hung_up: revents.intersects(PollFlags::POLLERR | PollFlags::POLLNVAL),
        };
        if readiness.readable || readiness.writable || readiness.hung_up {
            ready.push((token, readiness));
        }
    }
    Ok(())
}
// ANCHOR_END: wait
