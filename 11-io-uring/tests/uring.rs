//! What is particular to 11-io-uring: thousands of connections, each with a
//! receive (and its buffer) in flight; surviving an exhausted descriptor
//! table; and a shutdown that must cancel a thousand operations and reap
//! their completions before it may free their buffers and exit.

mod available;

use available::binary_or_skip;

/// 5,000 clients connected at once, every one echoing its own bytes:
/// more completions in one round than the submission queue has entries.
#[test]
fn five_thousand_concurrent_connections_all_echo() {
    conformance::scale::many_connections_all_echo(binary_or_skip!(), 5000, &[]);
}

/// Accepts complete with -EMFILE: a timeout re-arms the accept, no spin.
#[test]
fn out_of_descriptors_is_logged_once_survived_and_does_not_spin() {
    conformance::scale::out_of_file_descriptors_is_survived(binary_or_skip!(), &[]);
}

/// SIGTERM with 1,000 idle receives and 10 fake-DB timeouts in flight.
#[test]
fn shutdown_with_a_thousand_idle_connections_answers_those_in_flight() {
    conformance::scale::shutdown_with_idle_connections_answers_in_flight(binary_or_skip!(), &[]);
}
