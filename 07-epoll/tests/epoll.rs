//! What is particular to 07-epoll: thousands of connections held at once
//! by one thread, surviving an exhausted descriptor table without
//! spinning, and a graceful shutdown with a thousand clients connected.

const BINARY: &str = env!("CARGO_BIN_EXE_07-epoll");

/// 5,000 clients connected at the same time (no FD_SETSIZE here), every one
/// echoing its own bytes.
#[test]
fn five_thousand_concurrent_connections_all_echo() {
    conformance::scale::many_connections_all_echo(BINARY, 5000, &[]);
}

/// Out of descriptors: the listener leaves the interest list for a moment
/// instead of spinning, and the server accepts again once fds are free.
#[test]
fn out_of_descriptors_is_logged_once_survived_and_does_not_spin() {
    conformance::scale::out_of_file_descriptors_is_survived(BINARY, &[]);
}

/// SIGTERM with 1,000 idle clients and 10 requests waiting for the DB.
#[test]
fn shutdown_with_a_thousand_idle_connections_answers_those_in_flight() {
    conformance::scale::shutdown_with_idle_connections_answers_in_flight(BINARY, &[]);
}
