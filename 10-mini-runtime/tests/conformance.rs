//! 10-mini-runtime passes the shared conformance suite and serves all 16
//! concurrent fake-DB requests at once on its one thread: each waits in its
//! own task on the runtime's timer heap.
#![cfg(target_os = "linux")] // 10 needs epoll: see tests/elsewhere.rs

use conformance::Shape;

conformance::suite!(env!("CARGO_BIN_EXE_10-mini-runtime"), Shape::Unlimited);
