//! The sans-IO protocol core: one [`Session`] per connection.
//!
//! A session owns the protocol state of one connection and does no I/O at
//! all. Whoever drives it (a blocking thread, a select loop, a tokio task)
//! follows the same few rules:
//!
//! 1. read at most [`Session::read_capacity`] bytes and hand them to
//!    [`Session::receive`], or call [`Session::receive_eof`] when the peer
//!    closed its side;
//! 2. write [`Session::pending_output`], or once that is empty send
//!    [`Session::pending_file`] (`sendfile(2)`, see [`crate::sendfile`]),
//!    and report how much went out with [`Session::consume_output`];
//! 3. wake up at [`Session::next_deadline`] (the fake DB's answer, a
//!    request's deadline, the idle timeout) and call
//!    [`Session::handle_timers`];
//! 4. shut down the socket's writing side (`shutdown(SHUT_WR)`) when
//!    [`Session::take_half_close`] says so, and keep reading: the session
//!    is lingering (see [`LINGER_TIME`]);
//! 5. close the socket once [`Session::is_finished`].
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
pub(crate) mod http;
mod rpc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sendfile::{FILE_CHUNK, FileRange};
use echo::Echo;
pub use engine::OUTPUT_LIMIT;
use engine::{Engine, Shared};
use http::Http;
pub use http::{HttpSettings, MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADERS, Status};
use rpc::Rpc;

// ANCHOR: linger
/// Lingering close (RFC 9112, section 9.6): a server that closes while the
/// client may still be sending must not just `close(2)`. Unread input in a
/// closed socket makes the kernel answer with a reset, and a reset can
/// destroy the response before the client read it: a client that writes
/// its whole 3 MB upload before reading would never see the 413. So the
/// session first asks the driver to shut down the writing side (the
/// client sees the response, then EOF), then reads and discards input
/// until the client's EOF, for at most this long...
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// ...and at most this many bytes (nginx's `lingering_close` has the same
/// two bounds), after which it closes anyway.
pub const LINGER_BYTES: u64 = 16 * 1024 * 1024;
/// How much input to take per read while lingering (it is thrown away).
const LINGER_CHUNK: usize = 64 * 1024;

/// The state of a lingering close.
#[derive(Debug, Clone, Copy)]
struct Linger {
    until: Instant,
    discarded: u64,
    /// The driver has been told to shut down the writing side.
    half_closed: bool,
}
// ANCHOR_END: linger

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
    protocol: Protocol,
    // ANCHOR: lazy_engine
    /// Built at the first event that changes it (usually the first byte),
    /// not at accept: a connection waiting for its first byte holds no
    /// heap memory at all (an HTTP engine is some 500 bytes, and a server
    /// may hold 10,000 idle connections). Until then a fresh engine, made
    /// on the stack, answers the questions that change nothing
    /// ([`Session::fresh`]).
    engine: Option<Box<dyn Engine>>,
    // ANCHOR_END: lazy_engine
    /// Everything was sent and we will answer nothing more, but the peer
    /// may still be sending: discard its input for a while (see
    /// [`LINGER_TIME`]).
    linger: Option<Linger>,
}

impl Session {
    /// A new connection, accepted at `now`, served by `worker` (see
    /// [`crate::logging::worker_label`]). An event loop serving every
    /// connection from one thread passes one shared label (an `Arc`), so
    /// that creating a session allocates nothing.
    pub fn new(config: SessionConfig, worker: impl Into<Arc<str>>, now: Instant) -> Session {
        Session {
            shared: Shared {
                idle_timeout: config.idle_timeout,
                server_name: config.server_name,
                worker: worker.into(),
                output: Vec::new(),
                file: None,
                last_activity: now,
                peer_closed: false,
                closing: false,
                stopping: false,
                abandoned: false,
                unread_input: false,
                no_linger: false,
            },
            protocol: config.protocol,
            engine: None,
            linger: None,
        }
    }

    // ANCHOR: fresh
    /// The engine, built now if this is the first event that needs it,
    /// and the shared state it works on.
    fn engine(&mut self) -> (&mut dyn Engine, &mut Shared) {
        let protocol = self.protocol;
        let engine = self.engine.get_or_insert_with(|| match protocol {
            Protocol::Echo => Box::new(Echo),
            Protocol::Http(settings) => Box::new(Http::new(settings)),
            Protocol::Rpc { db_latency } => Box::new(Rpc::new(db_latency)),
        });
        (engine.as_mut(), &mut self.shared)
    }

    /// Asks the engine a question that changes nothing. Before the engine
    /// is built, a fresh one answers: made on the stack (none of them
    /// allocates when new) and gone after the call. These are the only two
    /// places that know which protocols there are.
    fn fresh<R>(&self, question: impl FnOnce(&dyn Engine) -> R) -> R {
        match (&self.engine, self.protocol) {
            (Some(engine), _) => question(engine.as_ref()),
            (None, Protocol::Echo) => question(&Echo),
            (None, Protocol::Http(settings)) => question(&Http::new(settings)),
            (None, Protocol::Rpc { db_latency }) => question(&Rpc::new(db_latency)),
        }
    }
    // ANCHOR_END: fresh

    // ANCHOR: read_capacity
    /// How many bytes the session takes now; 0 means "do not read this
    /// socket at the moment" (output full, waiting for the DB, or closing).
    /// This is the backpressure: drivers never read more than this.
    pub fn read_capacity(&self) -> usize {
        let shared = &self.shared;
        if shared.peer_closed || shared.abandoned {
            return 0;
        }
        if self.linger.is_some() {
            return LINGER_CHUNK; // read to discard, until EOF
        }
        if shared.closing {
            return 0;
        }
        self.fresh(|engine| engine.read_capacity(shared))
    }
    // ANCHOR_END: read_capacity

    /// Whether the driver should read from (or watch the readability of)
    /// this connection.
    pub fn wants_read(&self) -> bool {
        self.read_capacity() > 0
    }

    /// Whether there are bytes to write.
    pub fn wants_write(&self) -> bool {
        (!self.shared.output.is_empty() || self.shared.file.is_some()) && !self.shared.abandoned
    }

    /// Bytes received from the peer, at most [`Session::read_capacity`].
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if let Some(linger) = &mut self.linger {
            linger.discarded += bytes.len() as u64;
            if linger.discarded > LINGER_BYTES {
                self.shared.abandoned = true; // enough: close even if more comes
            }
            return;
        }
        if bytes.is_empty() || self.shared.closing {
            return;
        }
        self.shared.last_activity = now;
        let (engine, shared) = self.engine();
        engine.receive(shared, bytes, now);
        self.maybe_linger(now);
    }

    /// The peer shut down its sending side: answer what was fully received,
    /// then close (a half-closing client still gets its responses).
    pub fn receive_eof(&mut self, now: Instant) {
        self.shared.peer_closed = true;
        let (engine, shared) = self.engine();
        engine.receive_eof(shared, now);
        self.maybe_linger(now);
    }

    /// The bytes to send next. Write as many as the socket takes and report
    /// the count with [`Session::consume_output`].
    pub fn pending_output(&self) -> &[u8] {
        &self.shared.output
    }

    // ANCHOR: pending_file
    /// Once [`Session::pending_output`] is all sent: the piece of a file to
    /// send next (a response body), at most [`FILE_CHUNK`] bytes. The
    /// driver hands it to the kernel (`sendfile(2)`), so the file's bytes
    /// never pass through the session, and reports the count with
    /// [`Session::consume_output`].
    pub fn pending_file(&self) -> Option<FileRange<'_>> {
        let shared = &self.shared;
        if !shared.output.is_empty() {
            return None;
        }
        Some(shared.file.as_ref()?.next(FILE_CHUNK))
    }
    // ANCHOR_END: pending_file

    /// `count` bytes of [`Session::pending_output`] (or, when that is
    /// empty, of [`Session::pending_file`]) were sent.
    pub fn consume_output(&mut self, count: usize, now: Instant) {
        if count == 0 {
            return;
        }
        let shared = &mut self.shared;
        let count = match &mut shared.file {
            Some(file) if shared.output.is_empty() => {
                file.advance(count);
                if file.is_done() {
                    shared.file = None;
                }
                count
            }
            _ => {
                let count = count.min(shared.output.len());
                shared.output.drain(..count);
                count
            }
        };
        // A client that reads is not idle, even if it sends nothing (a big
        // echo coming back).
        self.shared.last_activity = now;
        // Room in the output may unblock pipelined requests.
        let (engine, shared) = self.engine();
        engine.sent(shared, count, now);
        self.maybe_linger(now);
    }

    /// When the driver must call [`Session::handle_timers`] at the latest:
    /// the fake DB's answer, the request's deadline, or the idle timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        if let Some(linger) = &self.linger {
            return Some(linger.until);
        }
        let idle = self.shared.last_activity + self.shared.idle_timeout;
        Some(self.fresh(|engine| engine.next_deadline(idle)))
    }

    /// Time passed: deliver fake-DB answers that are due and enforce the
    /// request deadline and the idle timeout. Calling it early is harmless.
    pub fn handle_timers(&mut self, now: Instant) {
        if let Some(linger) = &self.linger {
            if now >= linger.until {
                self.shared.abandoned = true; // lingered long enough
            }
            return;
        }
        let (engine, shared) = self.engine();
        if engine.handle_timers(shared, now) {
            self.maybe_linger(now);
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
        let (engine, shared) = self.engine();
        engine.begin_shutdown(shared, now);
        self.maybe_linger(now);
    }

    /// Close the connection now: everything was sent and nothing more will
    /// be answered (or the peer is gone for good), and lingering, if any,
    /// is over.
    pub fn is_finished(&self) -> bool {
        self.shared.abandoned
            || (self.is_done_sending() && (self.shared.peer_closed || self.linger.is_none()))
    }

    /// True once, when the session starts lingering: the driver then shuts
    /// down the socket's writing side (`shutdown(SHUT_WR)`, the client sees
    /// EOF after the last response) and keeps reading until
    /// [`Session::is_finished`].
    pub fn take_half_close(&mut self) -> bool {
        match &mut self.linger {
            Some(linger) if !linger.half_closed && !self.shared.abandoned => {
                linger.half_closed = true;
                true
            }
            _ => false,
        }
    }

    /// Whether the session lingers: everything is sent, input is discarded.
    pub fn is_lingering(&self) -> bool {
        self.linger.is_some() && !self.is_finished()
    }

    /// Everything that will ever be sent has been.
    fn is_done_sending(&self) -> bool {
        let shared = &self.shared;
        shared.closing
            && shared.output.is_empty()
            && shared.file.is_none()
            && !self.fresh(|engine| engine.has_more_output())
    }

    /// Starts lingering when the last response is out while the peer may
    /// still be sending: after an error (a body too large, a broken
    /// request, a timeout) or with input left unread. A connection closed
    /// after a complete exchange (HTTP/1.0, `Connection: close`, shutdown
    /// between requests) closes at once: its client has nothing more to
    /// say. Called after every step that can get there.
    fn maybe_linger(&mut self, now: Instant) {
        let shared = &self.shared;
        if self.linger.is_none()
            && shared.unread_input
            && !shared.no_linger
            && self.is_done_sending()
            && !shared.peer_closed
            && !shared.abandoned
        {
            self.linger = Some(Linger {
                until: now + LINGER_TIME,
                discarded: 0,
                half_closed: false,
            });
        }
    }
}

#[cfg(test)]
mod tests;
