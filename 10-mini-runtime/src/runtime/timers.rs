//! The timers: `call_later` as a heap of deadlines, `asyncio.sleep` and
//! `asyncio.wait_for` on top.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::{Future, poll_fn};
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A map keyed by the ids the loop hands out (timers here, tasks in the
/// executor). std's default hasher, SipHash, protects a map whose keys a
/// client can pick from being filled with collisions; these keys are our
/// own counters, so a multiplication spreads them well enough at a
/// fraction of the cost (SipHash was 2 % of 10's time on the 0 ms page:
/// `scripts/profile.sh`).
pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing: the id times 2^64 / φ, which moves every bit of a
/// small counter into the high bits that the map's probing looks at.
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, id: usize) {
        self.write_u64(id as u64);
    }

    /// Any other key, byte by byte (none is used here).
    fn write(&mut self, bytes: &[u8]) {
        bytes
            .iter()
            .for_each(|&byte| self.write_u64(u64::from(byte)));
    }
}

// ANCHOR: timers
/// `call_later`: a heap of deadlines, nearest first. A cancelled timer
/// (`TimerHandle.cancel()`: a `Sleep` dropped before it fired) only leaves
/// `wakers`; its heap entry is skipped when it comes up.
#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    wakers: IdMap<u64, Waker>,
    next_id: u64,
    /// The clock as the loop read it this turn, after its wait: [`now`].
    now: Option<Instant>,
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

    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.heap.peek() {
            if self.wakers.contains_key(id) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    pub(super) fn fire_due(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(&Reverse((at, id))) = self.heap.peek() {
            if at > now {
                break;
            }
            self.heap.pop();
            self.wakers.remove(&id).into_iter().for_each(Waker::wake);
        }
    }
}

// ANCHOR_END: timers
// ANCHOR: sleep
/// `asyncio.sleep`: ready at `deadline`; registers a timer only when it
/// actually has to wait, and cancels it when dropped early.
pub struct Sleep {
    deadline: Instant,
    timer: Option<u64>,
}

pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// `sleep` told when it ends instead of how long it lasts.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

thread_local! {
    /// The running loop's timers, installed by `block_on`: how a `sleep`
    /// finds them without being handed them.
    static TIMERS: RefCell<Option<Rc<RefCell<Timers>>>> = const { RefCell::new(None) };
}

/// Makes `timers` the thread's own (`None`: removes them).
pub(super) fn install(timers: Option<Rc<RefCell<Timers>>>) {
    TIMERS.set(timers);
}

fn current() -> Rc<RefCell<Timers>> {
    TIMERS
        .with_borrow(Clone::clone)
        .expect("timers work only inside block_on")
}

/// `loop.time()`, read once per turn: the time at which this turn of the
/// loop began (after its wait). Every task polled in the turn sees the
/// same instant, as every event of one `epoll_wait` does in 07, and the
/// timers fire by it, so a task woken by its timer sees its deadline
/// passed. Before the first turn, or outside the loop, the clock itself.
pub fn now() -> Instant {
    TIMERS
        .with_borrow(|timers| {
            let timers = timers.as_ref()?.try_borrow().ok()?;
            timers.now
        })
        .unwrap_or_else(Instant::now)
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        // The turn's clock, as the timers fire by it: no clock read per
        // poll, and a deadline the loop saw pass is passed here too.
        if now() >= self.deadline {
            return Poll::Ready(());
        }
        let timers = current();
        let mut timers = timers.borrow_mut();
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
        if let (Some(id), Some(timers)) = (self.timer, TIMERS.with_borrow(Clone::clone)) {
            timers.borrow_mut().cancel(id);
        }
    }
}

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

/// `asyncio.wait_for`: `future`'s output, or `None` after `duration`.
pub async fn timeout<T>(duration: Duration, future: impl Future<Output = T>) -> Option<T> {
    timeout_at(Instant::now() + duration, future).await
}

/// `asyncio.timeout_at`: `future`'s output, or `None` at `deadline`. The
/// timer is registered only if `future` has to wait: a read whose bytes
/// are already there costs no timer at all.
pub async fn timeout_at<T>(deadline: Instant, future: impl Future<Output = T>) -> Option<T> {
    race(async { Some(future.await) }, async {
        sleep_until(deadline).await;
        None
    })
    .await
}
// ANCHOR_END: sleep
