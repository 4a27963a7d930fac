//! The self-pipe trick, run on every system (Linux serves its loops with a
//! signalfd, so without this test the self-pipe would only ever run on
//! macOS and the BSDs). Its own test binary, hence its own process: the
//! handler it installs stays for the life of the process.

use std::os::fd::AsFd;

use common::signals::{SignalWatch, shutdown_signals};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, raise};

/// Waits (at most 5 s) until the watch's descriptor is readable.
fn readable_soon(watch: &SignalWatch) -> bool {
    let mut fds = [PollFd::new(watch.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(5_000u16)).expect("poll") == 1
}

#[test]
fn signals_become_bytes_in_a_pipe_and_say_which_signal_came() {
    let watch = SignalWatch::self_pipe(&shutdown_signals()).expect("a self-pipe");
    assert_eq!(watch.drain().expect("drain"), [], "nothing yet");

    // Without the handler, SIGTERM's default action would end this test.
    raise(Signal::SIGTERM).expect("raise");
    assert!(readable_soon(&watch), "the pipe became readable");
    assert_eq!(watch.drain().expect("drain"), [Signal::SIGTERM]);

    raise(Signal::SIGINT).expect("raise");
    raise(Signal::SIGTERM).expect("raise");
    assert!(readable_soon(&watch));
    assert_eq!(
        watch.drain().expect("drain"),
        [Signal::SIGINT, Signal::SIGTERM],
        "in the order they came"
    );
    assert_eq!(watch.drain().expect("drain"), [], "drained");

    assert!(
        SignalWatch::self_pipe(&shutdown_signals()).is_err(),
        "one self-pipe per process: its handler has one place to write"
    );
}
