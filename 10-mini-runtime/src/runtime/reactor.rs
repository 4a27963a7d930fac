//! The reactor: `add_reader` and `add_writer` over epoll. Each watched fd
//! maps to what is known of it in each direction (may a call succeed? who
//! waits?); `epoll_wait` turns readiness into woken tasks.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Instant;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

// ANCHOR: reactor_table
/// The selector under `add_reader`/`add_writer`: epoll, and for each
/// watched fd what is known of it in each direction, in a table indexed
/// by the fd's number (the kernel hands out the lowest free one, so the
/// table stays as small as the fd table).
pub(super) struct Reactor {
    epoll: Epoll,
    fds: RefCell<Vec<Option<[Readiness; 2]>>>,
}

/// Index into an fd's `[Readiness; 2]`.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Read = 0,
    Write = 1,
}

/// One direction of one fd: may an I/O call succeed, and who waits.
struct Readiness {
    /// Cleared by `WouldBlock` (or a short read), set by epoll. While it
    /// is clear, a task waits without trying the call: tokio's trick to
    /// save the syscall that would only say `WouldBlock`.
    ready: bool,
    /// The peer hung up (or the socket failed): sticky, so a short read
    /// cannot clear it. Data and FIN often arrive together: the one edge
    /// epoll reports is used up by the read that takes the data, and a
    /// short read must not make the task wait for an EOF that was already
    /// announced (it would wait until its timeout). tokio keeps this as a
    /// separate READ_CLOSED bit for the same reason.
    closed: bool,
    waiter: Option<Waker>,
}

// ANCHOR_END: reactor_table

// ANCHOR: reactor_register
impl Reactor {
    pub(super) fn new() -> io::Result<Reactor> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let fds = RefCell::default();
        Ok(Reactor { epoll, fds })
    }

    /// Watches `fd` for good, edge-triggered (as tokio does): epoll then
    /// reports only *changes* to ready, so there is no `epoll_ctl` per
    /// wait. That is correct because a task waits only after the I/O call
    /// said `WouldBlock` (or drained the socket), and the next change
    /// then comes as an event.
    pub(super) fn register(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let index = usize::try_from(fd.as_raw_fd()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let data = u64::try_from(index).map_err(|_| io::ErrorKind::InvalidInput)?;
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP;
        self.epoll
            .add(fd, EpollEvent::new(flags | EpollFlags::EPOLLET, data))?;
        // Optimistic: the first call just tries.
        let ready = || Readiness {
            ready: true,
            closed: false,
            waiter: None,
        };
        let mut fds = self.fds.borrow_mut();
        if fds.len() <= index {
            fds.resize_with(index + 1, || None);
        }
        fds[index] = Some([ready(), ready()]);
        Ok(())
    }

    fn deregister(&self, fd: BorrowedFd<'_>) {
        // Before close: the number is reused by the next socket.
        if let Some(slot) = slot(&mut self.fds.borrow_mut(), fd.as_raw_fd()) {
            *slot = None;
        }
        let _ = self.epoll.delete(fd);
    }

    fn is_ready(&self, fd: RawFd, direction: Direction) -> bool {
        readiness(&mut self.fds.borrow_mut(), fd, direction)
            .is_some_and(|readiness| readiness.ready || readiness.closed)
    }

    fn clear_ready(&self, fd: RawFd, direction: Direction) {
        if let Some(readiness) = readiness(&mut self.fds.borrow_mut(), fd, direction) {
            readiness.ready = false;
        }
    }

    /// `add_reader` (`Direction::Read`) and `add_writer`: wake `waker`
    /// when `fd` becomes ready. A task polled again may bring a different
    /// waker (`join!`, `select!`): the newest replaces the old.
    fn add_waiter(&self, fd: RawFd, direction: Direction, waker: &Waker) {
        if let Some(readiness) = readiness(&mut self.fds.borrow_mut(), fd, direction) {
            match &mut readiness.waiter {
                Some(old) => old.clone_from(waker),
                slot => *slot = Some(waker.clone()),
            }
        }
    }

    // ANCHOR_END: reactor_register
    // ANCHOR: reactor_wait
    /// Waits for ready fds until `deadline` (`None`: for ever) and wakes
    /// their tasks.
    pub(super) fn wait(
        &self,
        events: &mut [EpollEvent],
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        // epoll counts whole milliseconds. Rounding down would wake just
        // before the timer is due and spin with zero timeouts until it is.
        let timeout = match deadline {
            None => EpollTimeout::NONE,
            Some(at) => {
                let wait = at.saturating_duration_since(Instant::now());
                EpollTimeout::try_from(wait.as_nanos().div_ceil(1_000_000))
                    .unwrap_or(EpollTimeout::MAX)
            }
        };
        let count = match self.epoll.wait(events, timeout) {
            Ok(count) => count,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(error) => return Err(error.into()),
        };
        let mut fds = self.fds.borrow_mut();
        for event in &events[..count] {
            let fd = RawFd::try_from(event.data()).unwrap_or(-1);
            let Some(Some(fd)) = slot(&mut fds, fd) else {
                continue; // closed since
            };
            let flags = event.events();
            let failed = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP;
            let peer_closed = EpollFlags::EPOLLRDHUP | failed;
            let readable = EpollFlags::EPOLLIN | peer_closed;
            let writable = EpollFlags::EPOLLOUT | failed;
            // Which flags make a direction ready, and which make it closed.
            for (direction, wanted, hung_up) in [
                (Direction::Read, readable, peer_closed),
                (Direction::Write, writable, failed),
            ] {
                let readiness = &mut fd[direction as usize];
                if flags.intersects(wanted) {
                    readiness.ready = true;
                    readiness.closed |= flags.intersects(hung_up);
                    readiness.waiter.take().into_iter().for_each(Waker::wake);
                }
            }
        }
        Ok(())
    }
}

/// The table entry of `fd`, if the table reaches that far.
fn slot(fds: &mut [Option<[Readiness; 2]>], fd: RawFd) -> Option<&mut Option<[Readiness; 2]>> {
    usize::try_from(fd)
        .ok()
        .and_then(|index| fds.get_mut(index))
}

/// One direction of `fd`, if it is watched.
fn readiness(
    fds: &mut [Option<[Readiness; 2]>],
    fd: RawFd,
    direction: Direction,
) -> Option<&mut Readiness> {
    let watched = slot(fds, fd)?.as_mut()?;
    Some(&mut watched[direction as usize])
}

thread_local! {
    /// The running loop's reactor (`asyncio.get_running_loop()`), installed
    /// by `block_on`: how a socket finds it without being handed it.
    static REACTOR: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

/// Makes `reactor` the thread's own (`None`: removes it).
pub(super) fn install(reactor: Option<Rc<Reactor>>) {
    REACTOR.set(reactor);
}

fn current() -> Rc<Reactor> {
    REACTOR
        .with_borrow(Clone::clone)
        .expect("async I/O works only inside block_on")
}

// ANCHOR_END: reactor_wait
// ANCHOR: async_fd
/// A non-blocking socket (or any fd) registered with the reactor, as
/// async-io's `Async<T>`: `Async<TcpStream>`, `Async<TcpListener>`.
pub struct Async<T: AsFd> {
    io: T,
}

impl<T: AsFd> Async<T> {
    pub fn new(io: T) -> io::Result<Async<T>> {
        // A blocking call would stall every task on this thread.
        let flags = OFlag::from_bits_truncate(fcntl(io.as_fd(), FcntlArg::F_GETFL)?);
        fcntl(io.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        current().register(io.as_fd())?;
        Ok(Async { io })
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Tries `op` (a non-blocking `accept`...); on `WouldBlock` waits for
    /// readable and tries again: linear code on top of `add_reader`.
    pub async fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.retry(Direction::Read, op, |_| false).await
    }

    /// Tries `op` (a `sendfile`...); on `WouldBlock` waits for writable
    /// and tries again.
    pub async fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.retry(Direction::Write, op, |_| false).await
    }

    /// The heart of it: one poll tries the call if the fd may be ready,
    /// and otherwise leaves the task's waker with the reactor.
    async fn retry<R>(
        &self,
        direction: Direction,
        mut op: impl FnMut(&T) -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        let fd = self.as_raw_fd();
        poll_fn(|context| {
            let reactor = current();
            if reactor.is_ready(fd, direction) {
                match op(&self.io) {
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    result => {
                        if result.as_ref().is_ok_and(&drained) {
                            reactor.clear_ready(fd, direction);
                        }
                        return Poll::Ready(result);
                    }
                }
                reactor.clear_ready(fd, direction);
            }
            reactor.add_waiter(fd, direction, context.waker());
            Poll::Pending
        })
        .await
    }
}

// ANCHOR_END: async_fd
// ANCHOR: async_retry
impl<T: AsFd> Async<T>
where
    for<'a> &'a T: Read + Write,
{
    /// Waits until a read may succeed (tokio's `readable()`): waiting
    /// needs no buffer, so a silent connection holds none.
    pub async fn readable(&self) {
        let fd = self.as_raw_fd();
        poll_fn(|context| {
            let reactor = current();
            if reactor.is_ready(fd, Direction::Read) {
                return Poll::Ready(());
            }
            reactor.add_waiter(fd, Direction::Read, context.waker());
            Poll::Pending
        })
        .await;
    }

    /// One `read`, without waiting. `WouldBlock`, or a read shorter than
    /// the buffer (but not EOF), emptied the socket: the next `readable`
    /// waits for epoll without a try.
    pub fn try_read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let size = buffer.len();
        let result = (&self.io).read(buffer);
        let drained = match &result {
            Ok(count) => *count > 0 && *count < size,
            Err(error) => error.kind() == io::ErrorKind::WouldBlock,
        };
        if drained {
            current().clear_ready(self.as_raw_fd(), Direction::Read);
        }
        result
    }

    /// `write`; a short write filled the socket's send buffer.
    pub async fn write(&self, bytes: &[u8]) -> io::Result<usize> {
        let write = |mut io: &T| io.write(bytes);
        let full = |&count: &usize| count > 0 && count < bytes.len();
        self.retry(Direction::Write, write, full).await
    }
}

impl<T: AsFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_fd().as_raw_fd()
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        // A task dropped after `block_on` returned finds no runtime; its
        // epoll instance is gone then anyway.
        if let Some(reactor) = REACTOR.with_borrow(Clone::clone) {
            reactor.deregister(self.io.as_fd());
        }
    }
}
// ANCHOR_END: async_retry
