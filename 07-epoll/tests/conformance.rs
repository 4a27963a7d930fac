//! 07-epoll passes the shared conformance suite and serves all clients at
//! once from one thread: 16 concurrent fake-DB requests take one latency.

use conformance::Shape;

conformance::suite!(env!("CARGO_BIN_EXE_07-epoll"), Shape::Unlimited);
