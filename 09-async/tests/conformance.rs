//! 09-async passes the shared conformance suite (on its default
//! current-thread runtime) and serves all 16 concurrent fake-DB requests at
//! once: each waits in its own task on a timer. tests/runtimes.rs repeats
//! the model's key checks on both runtimes.

use conformance::Shape;

conformance::suite!(env!("CARGO_BIN_EXE_09-async"), Shape::Unlimited);
