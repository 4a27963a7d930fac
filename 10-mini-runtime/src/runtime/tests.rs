//! The runtime alone, without sockets: timers fire in order, a task woken
//! twice runs once, a dropped sleep leaves no timer behind, and sleeping
//! tasks cost no CPU. Each test runs its own `block_on` on its own thread.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{TaskGroup, block_on, current, race, sleep, spawn, timeout};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// A future that counts its polls and never finishes.
async fn pending_forever(polls: Rc<Cell<u32>>) {
    poll_fn(|_| {
        polls.set(polls.get() + 1);
        Poll::<()>::Pending
    })
    .await;
}

#[test]
fn timers_fire_in_deadline_order_not_spawn_order() {
    let order = block_on(async {
        let order = Rc::new(RefCell::new(Vec::new()));
        let group = TaskGroup::default();
        for delay in [30, 10, 20, 0, 25] {
            let order = Rc::clone(&order);
            group.spawn(async move {
                sleep(ms(delay)).await;
                order.borrow_mut().push(delay);
            });
        }
        group.wait().await;
        order.take()
    })
    .expect("the runtime starts");
    assert_eq!(order, [0, 10, 20, 25, 30]);
}

#[test]
fn a_sleep_neither_ends_early_nor_spins_at_the_end() {
    let started = Instant::now();
    let turns = block_on(async {
        let before = current().turns.get();
        sleep(Duration::from_micros(20_500)).await;
        current().turns.get() - before
    })
    .expect("the runtime starts");
    assert!(started.elapsed() >= Duration::from_micros(20_500));
    // epoll counts milliseconds: a timeout rounded down (20 ms) wakes
    // before the deadline, and then spins with 0 ms timeouts until it.
    assert!(turns <= 3, "{turns} turns of the loop for one sleep");
}

#[test]
fn a_task_woken_twice_before_it_runs_runs_once() {
    let polls = block_on(async {
        let polls = Rc::new(Cell::new(0));
        let counted = Rc::clone(&polls);
        spawn(poll_fn(move |context| {
            counted.set(counted.get() + 1);
            if counted.get() == 1 {
                context.waker().wake_by_ref();
                context.waker().wake_by_ref();
            }
            Poll::<()>::Pending
        }));
        sleep(ms(20)).await;
        polls.get()
    })
    .expect("the runtime starts");
    // Once at spawn, once for the two wakes; a third would be a duplicate.
    assert_eq!(polls, 2);
}

#[test]
fn a_dropped_sleep_leaves_no_timer_that_fires() {
    let (polls, timers_left) = block_on(async {
        let polls = Rc::new(Cell::new(0));
        let counted = Rc::clone(&polls);
        spawn(async move {
            // The 50 ms sleep loses the race and is dropped at 10 ms.
            let outcome = timeout(ms(10), sleep(ms(50))).await;
            assert!(outcome.is_none());
            pending_forever(counted).await;
        });
        sleep(ms(100)).await;
        (polls.get(), current().timers.borrow_mut().next_deadline())
    })
    .expect("the runtime starts");
    // Polled once when it started waiting; a timer still armed for the
    // dropped sleep would have woken it at 50 ms for a second poll.
    assert_eq!(polls, 1);
    assert_eq!(timers_left, None, "no timer is left in the heap");
}

#[test]
fn race_returns_the_first_and_drops_the_other() {
    let winner = block_on(race(
        async {
            sleep(ms(40)).await;
            "slow"
        },
        async {
            sleep(ms(5)).await;
            "fast"
        },
    ))
    .expect("the runtime starts");
    assert_eq!(winner, "fast");
}

#[test]
fn ten_thousand_sleeping_tasks_cost_no_cpu() {
    use nix::sys::resource::{UsageWho, getrusage};
    use nix::sys::time::TimeValLike;
    // This thread's CPU time: other tests run on other threads.
    let cpu = || {
        let usage = getrusage(UsageWho::RUSAGE_THREAD).expect("getrusage");
        let micros = usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    };
    let (woken, cpu_used, wall) = block_on(async move {
        let (cpu_before, started) = (cpu(), Instant::now());
        let woken = Rc::new(Cell::new(0));
        let group = TaskGroup::default();
        for _ in 0..10_000 {
            let woken = Rc::clone(&woken);
            group.spawn(async move {
                sleep(ms(400)).await;
                woken.set(woken.get() + 1);
            });
        }
        group.wait().await;
        (woken.get(), cpu() - cpu_before, started.elapsed())
    })
    .expect("the runtime starts");
    assert_eq!(woken, 10_000);
    // A loop that polled the sleepers, or spun on epoll_wait(0), would
    // burn most of the wall time; spawning, polling and waking 10,000
    // tasks takes some tens of milliseconds.
    assert!(
        cpu_used < wall / 4,
        "{cpu_used:?} of CPU in {wall:?} of 10,000 sleeping tasks"
    );
}
