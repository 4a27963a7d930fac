//! Waiting for the shutdown request itself, for a thread that has nothing
//! else to do: the main thread of a fixed pool (03, and 05's children),
//! whose workers do the accepting. It cannot join them (a busy worker may
//! outlive the grace period) and must not spin on [`Shutdown::is_requested`].

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::shutdown::Shutdown;

impl Shutdown {
    /// Blocks the calling thread until shutdown is requested (SIGINT,
    /// SIGTERM or [`Shutdown::request`]). It sleeps in `poll(2)` on the
    /// shutdown pipe, which stays readable once written, so it costs no
    /// CPU and returns at once if shutdown already started.
    pub fn wait_until_requested(&self) {
        while !self.is_requested() {
            let mut fds = [PollFd::new(self.wake_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(error) => {
                    // Cannot happen with one valid fd; fall back to polling
                    // the flag rather than spinning or giving up.
                    log::error!("poll on the shutdown pipe failed: {error}");
                    std::thread::sleep(crate::shutdown::ACCEPT_BACKOFF);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn returns_once_requested_from_another_thread() {
        let shutdown = Shutdown::new().expect("a pipe");
        let requester = shutdown.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            requester.request();
        });
        shutdown.wait_until_requested();
        assert!(started.elapsed() >= Duration::from_millis(90));
        thread.join().expect("the requester finished");
        // And at once when already requested.
        shutdown.wait_until_requested();
    }
}
