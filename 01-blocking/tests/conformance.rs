//! 01-blocking passes the shared conformance suite and serves one client
//! at a time: 16 concurrent fake-DB requests take 16 latencies.

use conformance::Shape;

conformance::suite!(env!("CARGO_BIN_EXE_01-blocking"), Shape::OneAtATime);
