//! The sans-IO protocol core: one [`Session`] per connection.
//!
//! A session owns the protocol state of one connection and does no I/O at
//! all. Whoever drives it (a blocking thread, a select loop, a tokio task)
//! follows the same few rules:
//!
//! 1. read at most [`Session::read_capacity`] bytes and hand them to
//!    [`Session::receive`], or call [`Session::receive_eof`] when the peer
//!    closed its side;
//! 2. write [`Session::pending_output`] and report how much went out with
//!    [`Session::consume_output`];
//! 3. wake up at [`Session::next_deadline`] (the fake DB's answer, a
//!    request's deadline, the idle timeout) and call
//!    [`Session::handle_timers`];
//! 4. close the socket once [`Session::is_finished`].
//!
//! Every method takes the current time as an argument, so a session is
//! deterministic: the unit tests drive it with made-up clocks, and the
//! models drive it with real sockets. The session never blocks, which is
//! what lets one thread (06, 07) juggle thousands of them.
//!
//! A session is the parts every protocol shares (the output buffer and its
//! bound, timeouts, closing; `engine.rs`) around one protocol engine, built
//! once when the connection starts: `echo.rs`; `http.rs`, with its head
//! parsing in `http/head.rs` and chunked bodies in `http/chunked.rs`; and
//! `rpc.rs`, which plugs in JSON-RPC (whose protocol, shared with the
//! clients' tests, is [`crate::rpc`]). This file drives the engine and
//! knows none of the protocols beyond building it.

mod echo;
mod engine;
mod http;
mod rpc;

use std::time::{Duration, Instant};

use echo::Echo;
pub use engine::OUTPUT_LIMIT;
use engine::{Engine, Shared};
use http::Http;
pub use http::{HttpSettings, MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADERS, Status};
use rpc::Rpc;

/// What a session needs to know about its server; the same for every
/// connection, cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    /// Which protocol the connection speaks, with its settings.
    pub protocol: Protocol,
    /// A connection that sends nothing for this long is closed, and a
    /// request must be complete this long after its first byte.
    pub idle_timeout: Duration,
    /// Sent in the `Server` header: the binary's name, e.g. `07-epoll`.
    pub server_name: &'static str,
}

/// The protocols a session speaks, with what each needs. Files and axum
/// modes are apps on the HTTP engine, so five modes need three protocols.
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    Echo,
    Http(HttpSettings),
    /// JSON-RPC; `db_latency` is how long the fake database takes to answer
    /// a `query`.
    Rpc {
        db_latency: Duration,
    },
}

/// The protocol state of one connection. See the module docs for how to
/// drive it.
#[derive(Debug)]
pub struct Session {
    shared: Shared,
    engine: Box<dyn Engine>,
}

impl Session {
    /// A new connection, accepted at `now`, served by `worker` (see
    /// [`crate::logging::worker_label`]).
    pub fn new(config: SessionConfig, worker: String, now: Instant) -> Session {
        // The one place that looks at the protocol: from here on the
        // session only talks to its engine.
        let engine: Box<dyn Engine> = match config.protocol {
            Protocol::Echo => Box::new(Echo),
            Protocol::Http(settings) => Box::new(Http::new(settings)),
            Protocol::Rpc { db_latency } => Box::new(Rpc::new(db_latency)),
        };
        Session {
            shared: Shared {
                idle_timeout: config.idle_timeout,
                server_name: config.server_name,
                worker,
                output: Vec::new(),
                last_activity: now,
                peer_closed: false,
                closing: false,
                stopping: false,
                abandoned: false,
            },
            engine,
        }
    }

    // ANCHOR: read_capacity
    /// How many bytes the session takes now; 0 means "do not read this
    /// socket at the moment" (output full, waiting for the DB, or closing).
    /// This is the backpressure: drivers never read more than this.
    pub fn read_capacity(&self) -> usize {
        let shared = &self.shared;
        if shared.closing || shared.peer_closed || shared.abandoned {
            return 0;
        }
        self.engine.read_capacity(shared)
    }
    // ANCHOR_END: read_capacity

    /// Whether the driver should read from (or watch the readability of)
    /// this connection.
    pub fn wants_read(&self) -> bool {
        self.read_capacity() > 0
    }

    /// Whether there are bytes to write.
    pub fn wants_write(&self) -> bool {
        !self.shared.output.is_empty() && !self.shared.abandoned
    }

    /// Bytes received from the peer, at most [`Session::read_capacity`].
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if bytes.is_empty() || self.shared.closing {
            return;
        }
        self.shared.last_activity = now;
        self.engine.receive(&mut self.shared, bytes, now);
    }

    /// The peer shut down its sending side: answer what was fully received,
    /// then close (a half-closing client still gets its responses).
    pub fn receive_eof(&mut self, now: Instant) {
        self.shared.peer_closed = true;
        self.engine.receive_eof(&mut self.shared, now);
    }

    /// The bytes to send next. Write as many as the socket takes and report
    /// the count with [`Session::consume_output`].
    pub fn pending_output(&self) -> &[u8] {
        &self.shared.output
    }

    /// `count` bytes of [`Session::pending_output`] were written.
    pub fn consume_output(&mut self, count: usize, now: Instant) {
        if count == 0 {
            return;
        }
        let count = count.min(self.shared.output.len());
        self.shared.output.drain(..count);
        // A client that reads is not idle, even if it sends nothing (a big
        // echo coming back).
        self.shared.last_activity = now;
        // Room in the output may unblock pipelined requests.
        self.engine.sent(&mut self.shared, count, now);
    }

    /// When the driver must call [`Session::handle_timers`] at the latest:
    /// the fake DB's answer, the request's deadline, or the idle timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        let idle = self.shared.last_activity + self.shared.idle_timeout;
        Some(self.engine.next_deadline(idle))
    }

    /// Time passed: deliver fake-DB answers that are due and enforce the
    /// request deadline and the idle timeout. Calling it early is harmless.
    pub fn handle_timers(&mut self, now: Instant) {
        if self.engine.handle_timers(&mut self.shared, now) {
            return;
        }
        if now >= self.shared.last_activity + self.shared.idle_timeout {
            // Idle between requests, or a peer that stopped reading: there
            // is nobody to tell, close at once and drop what is unsent.
            self.shared.abandoned = true;
        }
    }

    /// The server is shutting down: a request in flight is still answered
    /// (with `Connection: close`), then the connection closes. An idle
    /// connection is finished at once.
    pub fn begin_shutdown(&mut self, now: Instant) {
        self.shared.stopping = true;
        self.engine.begin_shutdown(&mut self.shared, now);
    }

    /// Close the connection now: everything was sent and nothing more will
    /// be answered (or the peer is gone for good).
    pub fn is_finished(&self) -> bool {
        let shared = &self.shared;
        shared.abandoned
            || (shared.closing && shared.output.is_empty() && !self.engine.has_more_output())
    }
}

#[cfg(test)]
mod tests;
