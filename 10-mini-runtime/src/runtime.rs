//! The runtime under async: what tokio does for 09, written out for one
//! thread in safe Rust. Each part is named after asyncio's event loop:
//!
//! | asyncio | here |
//! |---|---|
//! | `loop.run_until_complete(main())` | [`block_on`] |
//! | `asyncio.create_task(coro)`, a Task | [`spawn`]: a boxed future in `tasks` |
//! | `loop.call_soon(task.__step)` | a waker pushes the task onto `ready` |
//! | `loop.add_reader(fd, cb)`, `add_writer` | [`Reactor::add_reader`], over epoll |
//! | `loop.call_later(delay, cb)`, `TimerHandle.cancel()` | [`Timers`], [`sleep`] |
//! | `loop.call_soon_threadsafe`, the self-pipe | `ReadyQueue::wake_from` |
//!
//! One turn of the loop (`_run_once`): poll every ready task, then wait in
//! `epoll_wait` until a socket is ready or the nearest timer is due, then
//! turn those into woken tasks.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

/// A Task: a spawned future. Single-threaded, so it need not be `Send`.
type Task = Pin<Box<dyn Future<Output = ()>>>;
/// A task with its waker (kept to reset `queued`, and as a `Waker`).
type Entry = (Task, Arc<TaskWaker>, Waker);

// ANCHOR: runtime
/// The event loop. One per thread, installed by [`block_on`].
struct Runtime {
    /// Every live task, with the waker that re-queues it.
    tasks: RefCell<HashMap<usize, Entry>>,
    next_task: Cell<usize>,
    ready: Arc<ReadyQueue>,
    /// The tasks being run this turn (a buffer reused every turn).
    batch: RefCell<VecDeque<usize>>,
    /// Turns of the loop so far, to see it idle (or spin).
    turns: Cell<u64>,
    reactor: Reactor,
    timers: RefCell<Timers>,
}

thread_local! {
    /// `asyncio.get_running_loop()`: how `spawn`, `sleep` and sockets find
    /// the loop without being handed it.
    static CURRENT: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
}

fn current() -> Rc<Runtime> {
    CURRENT
        .with_borrow(Clone::clone)
        .expect("async I/O and timers work only inside block_on")
}

/// Runs `main` and every task it spawns until `main` returns:
/// `loop.run_until_complete`. Tasks still running then are dropped.
pub fn block_on<T: 'static>(main: impl Future<Output = T> + 'static) -> io::Result<T> {
    let runtime = Rc::new(Runtime::new()?);
    CURRENT.set(Some(Rc::clone(&runtime)));
    let output = Rc::new(Cell::new(None));
    let slot = Rc::clone(&output);
    runtime.spawn(Box::pin(async move { slot.set(Some(main.await)) }));
    let result = runtime.run_until_main_returns();
    // Shutdown with tasks still running: dropping a task runs its
    // destructors (sockets deregister, timers cancel), which reach for the
    // runtime. So drop them while it is still installed and unborrowed.
    let leftover = mem::take(&mut *runtime.tasks.borrow_mut());
    drop(leftover);
    CURRENT.set(None);
    result.map(|()| output.take().expect("main finished"))
}

/// Starts `future` as a task of the running loop: `asyncio.create_task`.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    current().spawn(Box::pin(future));
}

impl Runtime {
    fn new() -> io::Result<Runtime> {
        let reactor = Reactor::new()?;
        let ready = ReadyQueue::new(&reactor)?;
        Ok(Runtime {
            tasks: RefCell::default(),
            next_task: Cell::new(0),
            ready: Arc::new(ready),
            batch: RefCell::default(),
            turns: Cell::new(0),
            reactor,
            timers: RefCell::default(),
        })
    }

    fn spawn(&self, task: Task) {
        let id = self.next_task.replace(self.next_task.get() + 1);
        let task_waker = Arc::new(TaskWaker {
            id,
            queued: AtomicBool::new(false),
            ready: Arc::clone(&self.ready),
        });
        let waker = Waker::from(Arc::clone(&task_waker));
        waker.wake_by_ref(); // a new task runs on the next turn: call_soon
        self.tasks
            .borrow_mut()
            .insert(id, (task, task_waker, waker));
    }

    /// The loop: run what is ready, then wait for sockets and timers.
    fn run_until_main_returns(&self) -> io::Result<()> {
        let mut events = vec![EpollEvent::empty(); 256];
        loop {
            self.turns.set(self.turns.get() + 1);
            self.run_ready();
            if !self.tasks.borrow().contains_key(&0) {
                return Ok(()); // main (task 0) returned
            }
            let timeout = if self.ready.is_empty() {
                self.timers.borrow_mut().next_deadline()
            } else {
                Some(Instant::now()) // more work: only look, do not wait
            };
            self.reactor.wait(&mut events, timeout)?;
            self.timers.borrow_mut().fire_due(Instant::now());
        }
    }

    /// Polls every task that was woken. Tasks woken meanwhile run on the
    /// next turn, after a look at the sockets, so I/O is not starved.
    fn run_ready(&self) {
        let mut batch = self.batch.take();
        self.ready.take(&mut batch);
        for id in batch.drain(..) {
            // Taken out while it runs, so it can spawn (borrow `tasks`).
            let Some((mut task, task_waker, waker)) = self.tasks.borrow_mut().remove(&id) else {
                continue; // finished since it was woken
            };
            task_waker.queued.store(false, Ordering::SeqCst);
            if task
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
            {
                self.tasks
                    .borrow_mut()
                    .insert(id, (task, task_waker, waker));
            }
        }
        self.batch.replace(batch);
    }
}
// ANCHOR_END: runtime

// ANCHOR: waker
/// What a task's `Waker` does: put the task back on the ready queue.
struct TaskWaker {
    id: usize,
    /// Already on the queue: a task woken twice before it runs runs once.
    queued: AtomicBool,
    ready: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.ready.push(self.id);
        }
    }
}

/// The queue of tasks to poll next turn (asyncio's `_ready`). std makes
/// every waker `Send + Sync`, so another thread may wake a task: then the
/// loop may be asleep in `epoll_wait`, and a byte on the self-pipe
/// (registered with epoll like a socket) wakes it up.
struct ReadyQueue {
    queue: Mutex<VecDeque<usize>>,
    owner: ThreadId,
    self_pipe: (OwnedFd, OwnedFd),
    /// Bytes were written to the self-pipe: drain it on the next turn.
    piped: AtomicBool,
}

impl ReadyQueue {
    fn new(reactor: &Reactor) -> io::Result<ReadyQueue> {
        let self_pipe = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        reactor.register(self_pipe.0.as_fd())?;
        let owner = thread::current().id();
        let queue = Mutex::default();
        let piped = AtomicBool::new(false);
        Ok(ReadyQueue {
            queue,
            owner,
            self_pipe,
            piped,
        })
    }

    fn push(&self, id: usize) {
        self.lock().push_back(id);
        if thread::current().id() != self.owner {
            // call_soon_threadsafe: a full pipe already means "wake up".
            self.piped.store(true, Ordering::SeqCst);
            let _ = nix::unistd::write(&self.self_pipe.1, b"!");
        }
    }

    /// Swaps the queue with `batch` (empty, kept to reuse its memory).
    fn take(&self, batch: &mut VecDeque<usize>) {
        // Drain the self-pipe: its bytes only meant "look at the queue".
        if self.piped.swap(false, Ordering::SeqCst) {
            let _ = nix::unistd::read(&self.self_pipe.0, &mut [0; 64]);
        }
        mem::swap(&mut *self.lock(), batch);
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<usize>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
// ANCHOR_END: waker

// ANCHOR: reactor
/// The selector under `add_reader`/`add_writer`: epoll, and for each
/// watched fd what is known of it in each direction.
struct Reactor {
    epoll: Epoll,
    fds: RefCell<HashMap<RawFd, [Readiness; 2]>>,
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
    waiter: Option<Waker>,
}

impl Reactor {
    fn new() -> io::Result<Reactor> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let fds = RefCell::default();
        Ok(Reactor { epoll, fds })
    }

    /// Watches `fd` for good, edge-triggered (as tokio does): epoll then
    /// reports only *changes* to ready, so there is no `epoll_ctl` per
    /// wait. That is correct because a task waits only after the I/O call
    /// said `WouldBlock` (or drained the socket), and the next change
    /// then comes as an event.
    fn register(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        let data = u64::try_from(raw).map_err(|_| io::ErrorKind::InvalidInput)?;
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP;
        self.epoll
            .add(fd, EpollEvent::new(flags | EpollFlags::EPOLLET, data))?;
        // Optimistic: the first call just tries.
        let ready = || Readiness {
            ready: true,
            waiter: None,
        };
        self.fds.borrow_mut().insert(raw, [ready(), ready()]);
        Ok(())
    }

    fn deregister(&self, fd: BorrowedFd<'_>) {
        // Before close: the number is reused by the next socket.
        self.fds.borrow_mut().remove(&fd.as_raw_fd());
        let _ = self.epoll.delete(fd);
    }

    fn is_ready(&self, fd: RawFd, direction: Direction) -> bool {
        self.fds
            .borrow()
            .get(&fd)
            .is_some_and(|fd| fd[direction as usize].ready)
    }

    fn clear_ready(&self, fd: RawFd, direction: Direction) {
        if let Some(fd) = self.fds.borrow_mut().get_mut(&fd) {
            fd[direction as usize].ready = false;
        }
    }

    /// `add_reader` (`Direction::Read`) and `add_writer`: wake `waker`
    /// when `fd` becomes ready. A task polled again may bring a different
    /// waker (`join!`, `select!`): the newest replaces the old.
    fn add_waiter(&self, fd: RawFd, direction: Direction, waker: &Waker) {
        if let Some(fd) = self.fds.borrow_mut().get_mut(&fd) {
            match &mut fd[direction as usize].waiter {
                Some(old) => old.clone_from(waker),
                slot => *slot = Some(waker.clone()),
            }
        }
    }

    /// Waits for ready fds until `deadline` (`None`: for ever) and wakes
    /// their tasks.
    fn wait(&self, events: &mut [EpollEvent], deadline: Option<Instant>) -> io::Result<()> {
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
            let Some(fd) = fds.get_mut(&fd) else {
                continue; // closed since
            };
            let flags = event.events();
            let failed = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP;
            let readable = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | failed;
            for (direction, wanted) in [(0, readable), (1, EpollFlags::EPOLLOUT | failed)] {
                if flags.intersects(wanted) {
                    fd[direction].ready = true;
                    fd[direction]
                        .waiter
                        .take()
                        .into_iter()
                        .for_each(Waker::wake);
                }
            }
        }
        Ok(())
    }
}

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
        current().reactor.register(io.as_fd())?;
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
            let runtime = current();
            if runtime.reactor.is_ready(fd, direction) {
                match op(&self.io) {
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    result => {
                        if result.as_ref().is_ok_and(&drained) {
                            runtime.reactor.clear_ready(fd, direction);
                        }
                        return Poll::Ready(result);
                    }
                }
                runtime.reactor.clear_ready(fd, direction);
            }
            runtime.reactor.add_waiter(fd, direction, context.waker());
            Poll::Pending
        })
        .await
    }
}

impl<T: AsFd> Async<T>
where
    for<'a> &'a T: Read + Write,
{
    /// `read`, knowing that a read shorter than the buffer (but not EOF)
    /// emptied the socket: the next one waits for epoll without a try.
    pub async fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let size = buffer.len();
        let read = |mut io: &T| io.read(buffer);
        self.retry(Direction::Read, read, |&count| count > 0 && count < size)
            .await
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
        if let Some(runtime) = CURRENT.with_borrow(Clone::clone) {
            runtime.reactor.deregister(self.io.as_fd());
        }
    }
}
// ANCHOR_END: reactor

// ANCHOR: timers
/// `call_later`: a heap of deadlines, nearest first. A cancelled timer
/// (`TimerHandle.cancel()`: a `Sleep` dropped before it fired) only leaves
/// `wakers`; its heap entry is skipped when it comes up.
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: HashMap<u64, Waker>,
    next_id: u64,
}

impl Timers {
    fn call_later(&mut self, at: Instant, waker: Waker) -> u64 {
        self.next_id += 1;
        self.heap.push(Reverse((at, self.next_id)));
        self.wakers.insert(self.next_id, waker);
        self.next_id
    }

    fn cancel(&mut self, id: u64) {
        self.wakers.remove(&id);
        // Every read with a timeout that finished in time cancels one:
        // sweep when the dead outnumber the live, as asyncio does.
        if self.heap.len() > 64 + 2 * self.wakers.len() {
            self.heap
                .retain(|Reverse((_, id))| self.wakers.contains_key(id));
        }
    }

    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.heap.peek() {
            if self.wakers.contains_key(id) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    fn fire_due(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            self.wakers.remove(&id).into_iter().for_each(Waker::wake);
        }
    }
}

/// `asyncio.sleep`: ready at `deadline`; registers a timer only when it
/// actually has to wait, and cancels it when dropped early.
pub struct Sleep {
    deadline: Instant,
    timer: Option<u64>,
}

pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: Instant::now() + duration,
        timer: None,
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let runtime = current();
        let mut timers = runtime.timers.borrow_mut();
        match self.timer.and_then(|id| timers.wakers.get_mut(&id)) {
            // Polled again, maybe by another waker: keep the newest.
            Some(waker) => waker.clone_from(context.waker()),
            None => self.timer = Some(timers.call_later(self.deadline, context.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(id), Some(runtime)) = (self.timer, CURRENT.with_borrow(Clone::clone)) {
            runtime.timers.borrow_mut().cancel(id);
        }
    }
}

/// `asyncio.wait_for`: `future`'s output, or `None` after `duration`.
pub async fn timeout<T>(duration: Duration, future: impl Future<Output = T>) -> Option<T> {
    race(async { Some(future.await) }, async {
        sleep(duration).await;
        None
    })
    .await
}
// ANCHOR_END: timers

/// Whichever future finishes first (`asyncio.wait(..., FIRST_COMPLETED)`,
/// tokio's `select!`); the other is dropped, which cancels it.
pub async fn race<T>(first: impl Future<Output = T>, second: impl Future<Output = T>) -> T {
    let (mut first, mut second) = (pin!(first), pin!(second));
    poll_fn(|context| match first.as_mut().poll(context) {
        Poll::Ready(output) => Poll::Ready(output),
        Poll::Pending => second.as_mut().poll(context),
    })
    .await
}

/// Tasks to wait for at shutdown, as asyncio's `TaskGroup`: counts the
/// live ones and wakes the waiter when none is left.
#[derive(Default)]
pub struct TaskGroup(Rc<(Cell<usize>, Cell<Option<Waker>>)>);

impl TaskGroup {
    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        let group = Rc::clone(&self.0);
        group.0.set(group.0.get() + 1);
        spawn(async move {
            future.await;
            group.0.set(group.0.get() - 1);
            if group.0.get() == 0
                && let Some(waiter) = group.1.take()
            {
                waiter.wake();
            }
        });
    }

    pub fn len(&self) -> usize {
        self.0.0.get()
    }

    /// Waits until every task of the group has finished.
    pub async fn wait(&self) {
        poll_fn(|context| {
            if self.len() == 0 {
                return Poll::Ready(());
            }
            self.0.1.set(Some(context.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests;
