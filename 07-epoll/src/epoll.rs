//! epoll(7), Linux's readiness API: the interest list lives in the kernel.
//!
//! A connection is added once (`epoll_ctl(ADD)`), changed only when what
//! the loop waits for changes (`MOD`: "tell me when writable" while output
//! is pending), and `epoll_wait` returns just the ready ones, each with the
//! token we gave it (the connection's slot in the table): no list handed
//! over per call, no scan afterwards.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use common::event_loop::{Interest, InterestList, Readiness, Token};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// What the start-up line and `--help` call this API.
pub const NAME: &str = "epoll";

/// How many ready descriptors one `epoll_wait` returns at most; more wait
/// for the next round (level-triggered: nothing is lost).
const EVENTS_PER_WAIT: usize = 1024;

// ANCHOR: interest_list
/// The kernel's interest list, one `epoll_ctl` per change.
pub struct EpollInterests {
    epoll: Epoll,
    events: Vec<EpollEvent>,
}

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
        Ok(self.epoll.add(fd, event(token, interest))?)
    }

    fn modify(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        Ok(self.epoll.modify(fd, &mut event(token, interest))?)
    }

    fn remove(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        Ok(self.epoll.delete(fd)?)
    }
}
// ANCHOR_END: interest_list

impl EpollInterests {
    pub fn new() -> io::Result<EpollInterests> {
        Ok(EpollInterests {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            events: vec![EpollEvent::empty(); EVENTS_PER_WAIT],
        })
    }

    // ANCHOR: wait
    /// Waits for ready descriptors, or until the timeout, and fills `ready`.
    /// Nothing to rebuild first: the kernel already knows what we watch.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(Token, Readiness)>,
    ) -> io::Result<()> {
        ready.clear();
        let timeout = match timeout {
            None => EpollTimeout::NONE,
            Some(wait) => EpollTimeout::try_from(wait).unwrap_or(EpollTimeout::MAX),
        };
        let count = match self.epoll.wait(&mut self.events, timeout) {
            Ok(count) => count,
            Err(Errno::EINTR) => return Ok(()), // a signal: go round again
            Err(error) => return Err(error.into()),
        };
        // Only the ready ones come back, each with its token: no scan.
        ready.extend(self.events[..count].iter().map(|event| {
            let flags = event.events();
            let readiness = Readiness {
                readable: flags.contains(EpollFlags::EPOLLIN),
                writable: flags.contains(EpollFlags::EPOLLOUT),
                hung_up: flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP),
            };
            (Token::from_u64(event.data()), readiness)
        }));
        Ok(())
    }
    // ANCHOR_END: wait
}
