//! kqueue(2), the readiness API of macOS and the BSDs: like epoll, the
//! interest list lives in the kernel, but it is shaped differently.
//!
//! - **One call does both jobs.** `kevent(kq, changes, events, timeout)`
//!   takes a list of *changes* to the interest list and returns ready
//!   *events*. epoll needs one `epoll_ctl` per change and then an
//!   `epoll_wait`; here the changes of a whole round ride along with the
//!   next wait: one system call per round.
//! - **A filter per direction.** epoll registers a descriptor once with a
//!   mask (`EPOLLIN | EPOLLOUT`); kqueue registers each (descriptor,
//!   filter) pair on its own: `EVFILT_READ` and `EVFILT_WRITE` are two
//!   entries, enabled and disabled separately, and reported separately (a
//!   socket both readable and writable comes back as two events).
//! - **Level or edge.** Like epoll, a filter is level-triggered by default:
//!   reported for as long as the socket is readable, so this loop may read
//!   once per report. `EV_CLEAR` is kqueue's edge trigger (epoll's
//!   `EPOLLET`): report a change once, then reset; the loop would then have
//!   to read until `WouldBlock`. Not used here, for the same reason as 07.
//! - **Errors come back as events.** A change that fails is reported in the
//!   event list with `EV_ERROR` and the errno in `data`. `EV_RECEIPT` asks
//!   for a receipt for *every* change, failed or not, so a caller that must
//!   know at once (adding a new connection) can check each one.
//!
//! Which changes are batched: only enabling and disabling a filter of a
//! live connection (its slot, the token, cannot change meanwhile). Adding
//! and removing are applied at once: a failed add must close that
//! connection now (the contract of [`InterestList::add`]), and a removal
//! comes just before the descriptor is closed, after which its number may
//! be reused by the next connection.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use common::event_loop::{Interest, InterestList, Readiness, Token};
use nix::errno::Errno;
use nix::sys::event::{EvFlags, EventFilter, FilterFlag, KEvent, Kqueue};
use nix::sys::time::TimeSpec;

/// What the start-up line and `--help` call this API.
pub const NAME: &str = "kqueue";

/// How many events one `kevent` returns at most; more wait for the next
/// round (level-triggered: nothing is lost).
const EVENTS_PER_WAIT: usize = 1024;

// ANCHOR: interest_list
/// The kernel's interest list, and the changes that will ride along with
/// the next wait.
pub struct KqueueInterests {
    kqueue: Kqueue,
    changes: Vec<KEvent>,
    events: Vec<KEvent>,
}

/// One change for one (descriptor, filter) pair. `udata` is the token: the
/// kernel hands it back with every event of that pair.
fn change(fd: RawFd, filter: EventFilter, flags: EvFlags, token: Token) -> KEvent {
    let ident = usize::try_from(fd).unwrap_or_default();
    // The token's bits, as the pointer-sized `udata` (u64::MAX becomes -1
    // and comes back as u64::MAX).
    let udata = token.to_u64() as isize;
    KEvent::new(ident, filter, flags, FilterFlag::empty(), 0, udata)
}

/// A slot of the event list for the kernel to fill in.
fn blank() -> KEvent {
    change(
        0,
        EventFilter::EVFILT_READ,
        EvFlags::empty(),
        Token::Listener,
    )
}

/// `EV_ENABLE` to report a filter, `EV_DISABLE` to keep it registered but
/// silent (epoll's empty mask).
fn enabled(on: bool) -> EvFlags {
    if on {
        EvFlags::EV_ENABLE
    } else {
        EvFlags::EV_DISABLE
    }
}

impl InterestList for KqueueInterests {
    /// Registers the read filter and, for a connection, the write filter
    /// (disabled until output waits): later changes only enable or
    /// disable, which cannot fail for lack of an entry.
    fn add(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        let fd = fd.as_raw_fd();
        let mut changes = vec![change(
            fd,
            EventFilter::EVFILT_READ,
            EvFlags::EV_ADD | EvFlags::EV_RECEIPT | enabled(interest.read),
            token,
        )];
        if let Token::Connection(_) = token {
            changes.push(change(
                fd,
                EventFilter::EVFILT_WRITE,
                EvFlags::EV_ADD | EvFlags::EV_RECEIPT | enabled(interest.write),
                token,
            ));
        }
        self.apply_now(&changes, &[])
    }

    /// Queued: sent with the next wait.
    fn modify(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()> {
        let fd = fd.as_raw_fd();
        self.changes.push(change(
            fd,
            EventFilter::EVFILT_READ,
            enabled(interest.read),
            token,
        ));
        self.changes.push(change(
            fd,
            EventFilter::EVFILT_WRITE,
            enabled(interest.write),
            token,
        ));
        Ok(())
    }

    /// At once, and without any change still queued for it: once the
    /// descriptor is closed, its number can be another connection's.
    fn remove(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let fd = fd.as_raw_fd();
        let ident = usize::try_from(fd).unwrap_or_default();
        self.changes.retain(|queued| queued.ident() != ident);
        let delete = EvFlags::EV_DELETE | EvFlags::EV_RECEIPT;
        let changes = [EventFilter::EVFILT_READ, EventFilter::EVFILT_WRITE]
            // The token (udata) only comes back with events; a deletion
            // produces none but its receipt, so any token will do.
            .map(|filter| change(fd, filter, delete, Token::Listener));
        // ENOENT: that filter was never registered (a listener has no
        // write filter). The goal, "not registered", holds either way.
        self.apply_now(&changes, &[Errno::ENOENT])
    }
}
// ANCHOR_END: interest_list

impl KqueueInterests {
    pub fn new() -> io::Result<KqueueInterests> {
        Ok(KqueueInterests {
            kqueue: Kqueue::new()?,
            changes: Vec::new(),
            events: vec![blank(); EVENTS_PER_WAIT],
        })
    }

    /// Applies `changes` now and returns the first error not in `ignored`.
    /// Each change carries `EV_RECEIPT`, so each comes back in the event
    /// list with its own result, and the call returns at once (a zero
    /// timeout makes sure of it).
    fn apply_now(&self, changes: &[KEvent], ignored: &[Errno]) -> io::Result<()> {
        let mut receipts = changes.to_vec();
        let no_wait = Some(*TimeSpec::from(Duration::ZERO).as_ref());
        match self.kqueue.kevent(changes, &mut receipts, no_wait) {
            Ok(count) => receipts.truncate(count),
            // kevent(2): interrupted, all changes were applied anyway.
            Err(Errno::EINTR) => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        match receipts
            .iter()
            .filter_map(failed)
            .find(|errno| !ignored.contains(errno))
        {
            Some(errno) => Err(errno.into()),
            None => Ok(()),
        }
    }

    // ANCHOR: wait
    /// Sends the queued changes, waits for events or the timeout, and fills
    /// `ready`. One system call for both.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(Token, Readiness)>,
    ) -> io::Result<()> {
        ready.clear();
        // A failed change takes a slot of the event list; with too few
        // slots kevent would fail as a whole instead.
        let slots = EVENTS_PER_WAIT.max(self.changes.len());
        self.events.resize(slots, blank());
        // None waits for ever; kevent wants a timespec, not milliseconds.
        let timeout = timeout.map(|wait| *TimeSpec::from(wait).as_ref());
        let result = self.kqueue.kevent(&self.changes, &mut self.events, timeout);
        // Applied, whatever the result (kevent(2): even when interrupted).
        self.changes.clear();
        let count = match result {
            Ok(count) => count,
            Err(Errno::EINTR) => return Ok(()), // a signal: go round again
            Err(error) => return Err(error.into()),
        };
        for event in &self.events[..count] {
            let token = Token::from_u64(event.udata() as u64);
            let readiness = if failed(event).is_some() {
                // A queued change failed: this connection cannot be
                // watched as it must be, so it is closed.
                Readiness {
                    hung_up: true,
                    ..Readiness::default()
                }
            } else {
                // One filter per event. EV_EOF (the peer closed) comes
                // with the read filter: the read returns what is left,
                // then 0, which the session handles as any end of input.
                match event.filter() {
                    Ok(EventFilter::EVFILT_READ) => Readiness {
                        readable: true,
                        ..Readiness::default()
                    },
                    Ok(EventFilter::EVFILT_WRITE) => Readiness {
                        writable: true,
                        ..Readiness::default()
                    },
                    _ => continue,
                }
            };
            ready.push((token, readiness));
        }
        Ok(())
    }
    // ANCHOR_END: wait
}

/// The errno of a change that failed (`EV_ERROR` with a non-zero `data`);
/// `None` for an event or a receipt of success (`EV_ERROR` with 0).
fn failed(event: &KEvent) -> Option<Errno> {
    let code = i32::try_from(event.data()).unwrap_or(i32::MAX);
    (event.flags().contains(EvFlags::EV_ERROR) && code != 0).then(|| Errno::from_raw(code))
}
