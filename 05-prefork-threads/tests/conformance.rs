//! 05-prefork-threads passes the shared conformance suite and, with two
//! processes of two threads, serves four clients at a time: 16 concurrent
//! fake-DB requests take 4 latencies.

use conformance::Shape;

conformance::suite!(
    env!("CARGO_BIN_EXE_05-prefork-threads"),
    Shape::AtMost(4),
    ["--workers", "2", "--threads", "2"]
);
