//! RPC mode's engine: the glue between the connection's lines
//! ([`crate::rpc::RpcConnection`], which does the protocol) and what every
//! session shares: the output buffer and its bound, the idle timeout,
//! closing and shutdown.

use std::time::{Duration, Instant};

use super::engine::{Engine, OUTPUT_LIMIT, Shared};
use crate::rpc::RpcConnection;

/// JSON-RPC over lines: one connection's lines and replies.
#[derive(Debug)]
pub(super) struct Rpc {
    connection: RpcConnection,
}

impl Rpc {
    /// The standard functions, with the fake DB answering `query` after
    /// `db_latency`.
    pub(super) fn new(db_latency: Duration) -> Rpc {
        Rpc {
            connection: RpcConnection::new(crate::rpc::standard(), db_latency),
        }
    }

    /// Answers what the input, the clock and the output bound allow, and
    /// closes once the connection will answer nothing more.
    fn advance(&mut self, shared: &mut Shared, now: Instant) {
        let before = shared.output.len();
        self.connection
            .advance(now, &mut shared.output, OUTPUT_LIMIT);
        if shared.output.len() > before {
            // A reply the DB just delivered starts a new idle period: the
            // client had nothing to say while it waited.
            shared.last_activity = now;
        }
        if self.connection.is_done() {
            // Done before the client's EOF or our shutdown: a line too
            // long, whose rest may still be on its way.
            shared.unread_input |= !shared.peer_closed && !shared.stopping;
            shared.closing = true;
        }
    }
}

impl Engine for Rpc {
    fn read_capacity(&self, shared: &Shared) -> usize {
        self.connection
            .read_capacity(shared.output.len(), OUTPUT_LIMIT)
    }

    fn receive(&mut self, shared: &mut Shared, bytes: &[u8], now: Instant) {
        self.connection.receive(bytes);
        self.advance(shared, now);
    }

    fn receive_eof(&mut self, shared: &mut Shared, now: Instant) {
        self.connection.receive_eof();
        self.advance(shared, now);
    }

    fn sent(&mut self, shared: &mut Shared, _count: usize, now: Instant) {
        self.advance(shared, now);
    }

    /// While a `query` is in flight the fake DB's deadline comes first; the
    /// idle timeout counts only when nothing is owed to the client.
    fn next_deadline(&self, idle: Instant) -> Instant {
        self.connection.next_deadline().unwrap_or(idle)
    }

    /// Delivers replies that are due; `true` while some are still owed (the
    /// connection is then not idle, whatever the client does).
    fn handle_timers(&mut self, shared: &mut Shared, now: Instant) -> bool {
        self.advance(shared, now);
        self.connection.next_deadline().is_some()
    }

    /// Queued replies (a `query` in flight) still go out, then the
    /// connection closes.
    fn begin_shutdown(&mut self, shared: &mut Shared, now: Instant) {
        self.connection.stop();
        self.advance(shared, now);
    }
}
