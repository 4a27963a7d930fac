//! The timers: `call_later` as a heap of deadlines, `asyncio.sleep` and
//! `asyncio.wait_for` on top.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{CURRENT, current, race};

// ANCHOR: timers
/// `call_later`: a heap of deadlines, nearest first. A cancelled timer
/// (`TimerHandle.cancel()`: a `Sleep` dropped before it fired) only leaves
/// `wakers`; its heap entry is skipped when it comes up.
#[derive(Default)]
pub(super) struct Timers {
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
