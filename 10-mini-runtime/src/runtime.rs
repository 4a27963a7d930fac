//! The runtime under async: what tokio does for 09, written out for one
//! thread in safe Rust, each part named after asyncio's event loop. This
//! file is the executor: tasks, wakers, the ready queue and the loop that
//! turns. `reactor.rs` is `add_reader` over epoll, `timers.rs` is
//! `call_later`.
//!
//! One turn of the loop (`_run_once`): poll every ready task, then wait in
//! `epoll_wait` until a socket is ready or the nearest timer is due, then
//! turn those into woken tasks.

mod reactor;
mod timers;

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::io;
use std::mem;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::epoll::EpollEvent;

pub use reactor::Async;
use reactor::Reactor;
use timers::{IdMap, Timers};
pub use timers::{now, race, sleep, sleep_until, timeout, timeout_at};

/// A Task: a spawned future. Single-threaded, so it need not be `Send`.
type Task = Pin<Box<dyn Future<Output = ()>>>;
/// A task with its waker (kept to reset `queued`, and as a `Waker`).
type Entry = (Task, Arc<TaskWaker>, Waker);

// ANCHOR: runtime
/// The event loop. One per thread, installed by [`block_on`].
struct Runtime {
    /// Every live task, with the waker that re-queues it.
    tasks: RefCell<IdMap<usize, Entry>>,
    next_task: Cell<usize>,
    ready: Arc<ReadyQueue>,
    /// The tasks being run this turn (a buffer reused every turn).
    batch: RefCell<VecDeque<usize>>,
    /// Turns of the loop so far, to see it idle (or spin).
    turns: Cell<u64>,
    /// Shared with the sockets and timers of this thread, which find them
    /// through their own thread-locals (see [`block_on`]).
    reactor: Rc<Reactor>,
    timers: Rc<RefCell<Timers>>,
}

thread_local! {
    /// `asyncio.get_running_loop()`: how `spawn` finds the loop without
    /// being handed it (sockets and timers keep their own part of it).
    static CURRENT: RefCell<Option<Rc<Runtime>>> = const { RefCell::new(None) };
}

fn current() -> Rc<Runtime> {
    CURRENT
        .with_borrow(Clone::clone)
        .expect("spawn works only inside block_on")
}

/// Runs `main` and every task it spawns until `main` returns:
/// `loop.run_until_complete`. Tasks still running then are dropped.
pub fn block_on<T: 'static>(main: impl Future<Output = T> + 'static) -> io::Result<T> {
    let runtime = Rc::new(Runtime::new()?);
    CURRENT.set(Some(Rc::clone(&runtime)));
    reactor::install(Some(Rc::clone(&runtime.reactor)));
    timers::install(Some(Rc::clone(&runtime.timers)));
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
    reactor::install(None);
    timers::install(None);
    result.map(|()| output.take().expect("main finished"))
}

/// Starts `future` as a task of the running loop: `asyncio.create_task`.
pub fn spawn(future: impl Future<Output = ()> + 'static) {
    current().spawn(Box::pin(future));
}

// ANCHOR_END: runtime
// ANCHOR: run_loop
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
            reactor: Rc::new(reactor),
            timers: Rc::default(),
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
            // The turn's one clock reading: the timers fire by it, and
            // every task polled this turn sees it (`now`).
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
// ANCHOR_END: run_loop

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

/// Tasks to wait for at shutdown, as asyncio's `TaskGroup`: counts the
/// live ones and wakes the waiter when none is left.
#[derive(Default)]
pub struct TaskGroup(Rc<Group>);

#[derive(Default)]
struct Group {
    live: Cell<usize>,
    waiter: Cell<Option<Waker>>,
}

impl TaskGroup {
    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        let group = Rc::clone(&self.0);
        group.live.set(group.live.get() + 1);
        // Boxed first: an `async move` block that awaits a future it
        // captured keeps room for it twice (the capture, and the future
        // being awaited), which doubled every connection's task to 3 KiB.
        let future = Box::pin(future);
        spawn(async move {
            future.await;
            group.live.set(group.live.get() - 1);
            if group.live.get() == 0
                && let Some(waiter) = group.waiter.take()
            {
                waiter.wake();
            }
        });
    }

    pub fn len(&self) -> usize {
        self.0.live.get()
    }

    /// Waits until every task of the group has finished.
    pub async fn wait(&self) {
        poll_fn(|context| {
            if self.len() == 0 {
                return Poll::Ready(());
            }
            self.0.waiter.set(Some(context.waker().clone()));
            Poll::Pending
        })
        .await;
    }
}

#[cfg(test)]
mod tests;
