//! Echo mode's engine: every byte received goes back, in order. It has no
//! state of its own; the output buffer's bound in [`Shared`] is all the
//! backpressure it needs.

use std::time::Instant;

use super::engine::{Engine, OUTPUT_LIMIT, Shared};

/// Echo: what comes in goes out.
#[derive(Debug)]
pub(super) struct Echo;

impl Engine for Echo {
    // ANCHOR: read_capacity
    fn read_capacity(&self, shared: &Shared) -> usize {
        OUTPUT_LIMIT.saturating_sub(shared.output.len())
    }
    // ANCHOR_END: read_capacity

    fn receive(&mut self, shared: &mut Shared, bytes: &[u8], _now: Instant) {
        shared.output.extend_from_slice(bytes);
    }

    /// Half-close: what is pending still goes out, then the connection
    /// closes.
    fn receive_eof(&mut self, shared: &mut Shared, _now: Instant) {
        shared.closing = true;
    }

    fn sent(&mut self, _shared: &mut Shared, _count: usize, _now: Instant) {}

    fn next_deadline(&self, idle: Instant) -> Instant {
        idle
    }

    fn handle_timers(&mut self, _shared: &mut Shared, _now: Instant) -> bool {
        false
    }

    /// Nothing is ever in flight: flush what is pending and close.
    fn begin_shutdown(&mut self, shared: &mut Shared, _now: Instant) {
        shared.closing = true;
    }
}
