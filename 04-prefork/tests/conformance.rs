//! 04-prefork passes the shared conformance suite and, with four worker
//! processes, serves four clients at a time: 16 concurrent fake-DB requests
//! take 4 latencies.

use conformance::Shape;

conformance::suite!(
    env!("CARGO_BIN_EXE_04-prefork"),
    Shape::AtMost(4),
    ["--workers", "4"]
);
