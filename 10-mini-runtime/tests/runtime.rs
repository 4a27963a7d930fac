//! What is particular to 10-mini-runtime: thousands of connections held at
//! once by one thread on a hand-written reactor, surviving an exhausted
//! descriptor table without spinning, and a shutdown that reaches tasks
//! waiting in `read`.
#![cfg(target_os = "linux")] // 10 needs epoll: see tests/elsewhere.rs

const BINARY: &str = env!("CARGO_BIN_EXE_10-mini-runtime");

/// 5,000 clients connected at the same time, every one echoing its own
/// bytes: 5,000 sockets in one epoll, 5,000 tasks in the queue's table.
#[test]
fn five_thousand_concurrent_connections_all_echo() {
    conformance::scale::many_connections_all_echo(BINARY, 5000, &[]);
}

/// Out of descriptors: the accept task pauses on a timer instead of
/// spinning, and accepts again once fds are free.
#[test]
fn out_of_descriptors_is_logged_once_and_survived() {
    conformance::scale::out_of_file_descriptors_is_survived(BINARY, &[]);
}

/// SIGTERM: the signal thread's pipe wakes the accept task through the
/// reactor, and the half-closed sockets wake the connections' tasks.
#[test]
fn sigterm_closes_idle_connections_and_finishes_the_busy_one() {
    conformance::scale::sigterm_closes_idle_and_finishes_busy(BINARY, &[]);
}
