//! 03-thread-pool passes the shared conformance suite and serves at most
//! `--workers` clients at once: with 4 workers, 16 concurrent fake-DB
//! requests take four latencies.

use conformance::Shape;

conformance::suite!(
    env!("CARGO_BIN_EXE_03-thread-pool"),
    Shape::AtMost(4),
    ["--workers", "4"]
);
