//! 02-thread-per-client passes the shared conformance suite and serves every
//! client at once: 16 concurrent fake-DB requests take one latency.

use conformance::Shape;

conformance::suite!(env!("CARGO_BIN_EXE_02-thread-per-client"), Shape::Unlimited);
