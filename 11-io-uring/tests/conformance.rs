//! 11-io-uring passes the shared conformance suite and serves all clients at
//! once from one thread: 16 concurrent fake-DB requests take one latency.
//! Where io_uring is unavailable, each check prints why and is skipped.

use conformance::Shape;

mod available;

conformance::suite!(available::binary_or_skip!(), Shape::Unlimited);
