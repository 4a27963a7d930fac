//! 08-coroutines passes the shared conformance suite and serves all 16
//! concurrent fake-DB requests at once: each waits in its own coroutine.
#![cfg(not(target_os = "freebsd"))] // may does not build there: see tests/elsewhere.rs

use conformance::Shape;

conformance::suite!(env!("CARGO_BIN_EXE_08-coroutines"), Shape::Unlimited);
