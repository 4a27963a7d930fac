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
//! This file holds what every protocol shares (the output buffer and its
//! bound, timeouts, closing) and echo; the HTTP engine is in `http.rs`, its
//! head parsing in `head.rs`, chunked bodies in `chunked.rs`; `rpc.rs` plugs
//! in JSON-RPC (whose engine, shared with the clients' tests, is
//! [`crate::rpc`]).

mod chunked;
mod head;
mod http;
mod rpc;

use std::time::{Duration, Instant};

use crate::app::App;
use crate::cli::Mode;
use crate::rpc::RpcConnection;

/// At most this much unsent data per connection. Past it the session stops
/// asking for input, so a client that writes and never reads cannot make the
/// server's memory grow: the kernel's socket buffers fill up and the client's
/// writes block instead.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// A request head (request line and headers) may be at most this long (431).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A request may have at most this many headers (431).
pub const MAX_HEADERS: usize = 64;
/// A request body may have at most this many bytes (413).
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

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
    pub mode: Mode,
    /// RPC mode: how long the fake database takes to answer a `query`
    /// (HTTP's lab page has its own copy, in its app).
    pub db_latency: Duration,
    /// A connection that sends nothing for this long is closed, and a
    /// request must be complete this long after its first byte.
    pub idle_timeout: Duration,
    /// Sent in the `Server` header: the binary's name, e.g. `07-epoll`.
    pub server_name: &'static str,
    /// What answers complete HTTP requests (see [`crate::app`]): the lab
    /// page, the file server or the axum app. One per server, shared by
    /// every connection for the life of the process, hence `'static`.
    pub app: &'static dyn App,
}

/// The protocol state of one connection. See the module docs for how to
/// drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    /// `pid=1234 thread=conn-7`, sent as `X-Worker` so clients can see who
    /// served them.
    worker: String,
    /// Bytes waiting to be written to the socket, never more than
    /// [`OUTPUT_LIMIT`].
    output: Vec<u8>,
    /// The HTTP engine's state (unused in echo mode).
    http: http::Http,
    /// RPC mode: the lines and replies of this connection.
    rpc: Option<RpcConnection>,
    /// Last time the client sent bytes or took some of our output.
    last_activity: Instant,
    /// The peer shut down its sending side (we read EOF).
    peer_closed: bool,
    /// No more requests will be answered: close once the output is sent.
    closing: bool,
    /// The server is shutting down: finish what is in flight, then close.
    stopping: bool,
    /// Close now, even with output left (an idle peer that stopped reading).
    abandoned: bool,
    /// The connection is closed after an error or with input left unread:
    /// the client may still be sending, so closing must linger.
    unread_input: bool,
    /// Close without lingering even so: a client too slow to send its
    /// request in time (408) is not waited for a second time, or a
    /// slowloris would hold its connection (and all of 01-blocking) for
    /// the linger as well.
    no_linger: bool,
    /// Everything was sent and we will answer nothing more, but the peer
    /// may still be sending: discard its input for a while (see
    /// [`LINGER_TIME`]).
    linger: Option<Linger>,
}

/// An HTTP status with its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    pub const OK: Status = Status(200, "OK");
    pub const BAD_REQUEST: Status = Status(400, "Bad Request");
    pub const NOT_FOUND: Status = Status(404, "Not Found");
    pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    pub const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
    pub const CONTENT_TOO_LARGE: Status = Status(413, "Content Too Large");
    pub const HEADERS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    pub const NOT_IMPLEMENTED: Status = Status(501, "Not Implemented");
}

/// The engine a mode runs on: files and axum are apps on the HTTP engine,
/// so five modes need three protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Echo,
    Http,
    Rpc,
}

impl Session {
    fn protocol(&self) -> Protocol {
        match self.config.mode {
            Mode::Echo => Protocol::Echo,
            Mode::Http | Mode::Files | Mode::Axum => Protocol::Http,
            Mode::Rpc => Protocol::Rpc,
        }
    }

    /// A new connection, accepted at `now`, served by `worker` (see
    /// [`crate::worker_label`]).
    pub fn new(config: SessionConfig, worker: String, now: Instant) -> Session {
        Session {
            config,
            worker,
            output: Vec::new(),
            http: http::Http::default(),
            rpc: (config.mode == Mode::Rpc)
                .then(|| RpcConnection::new(crate::rpc::standard(), config.db_latency)),
            last_activity: now,
            peer_closed: false,
            closing: false,
            stopping: false,
            abandoned: false,
            unread_input: false,
            no_linger: false,
            linger: None,
        }
    }

    // ANCHOR: read_capacity
    /// How many bytes the session takes now; 0 means "do not read this
    /// socket at the moment" (output full, waiting for the DB, or closing).
    /// This is the backpressure: drivers never read more than this.
    pub fn read_capacity(&self) -> usize {
        if self.peer_closed || self.abandoned {
            return 0;
        }
        if self.linger.is_some() {
            return LINGER_CHUNK; // read to discard, until EOF
        }
        if self.closing {
            return 0;
        }
        match self.protocol() {
            Protocol::Echo => OUTPUT_LIMIT.saturating_sub(self.output.len()),
            Protocol::Http => self.http_read_capacity(),
            Protocol::Rpc => self.rpc_read_capacity(),
        }
    }
    // ANCHOR_END: read_capacity

    /// Whether the driver should read from (or watch the readability of)
    /// this connection.
    pub fn wants_read(&self) -> bool {
        self.read_capacity() > 0
    }

    /// Whether there are bytes to write.
    pub fn wants_write(&self) -> bool {
        !self.output.is_empty() && !self.abandoned
    }

    /// Bytes received from the peer, at most [`Session::read_capacity`].
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        if let Some(linger) = &mut self.linger {
            linger.discarded += bytes.len() as u64;
            if linger.discarded > LINGER_BYTES {
                self.abandoned = true; // enough: close even if more comes
            }
            return;
        }
        if bytes.is_empty() || self.closing {
            return;
        }
        self.last_activity = now;
        match self.protocol() {
            Protocol::Echo => self.output.extend_from_slice(bytes),
            Protocol::Http => self.http_receive(bytes, now),
            Protocol::Rpc => self.rpc_receive(bytes, now),
        }
        self.maybe_linger(now);
    }

    /// The peer shut down its sending side: answer what was fully received,
    /// then close (a half-closing client still gets its responses).
    pub fn receive_eof(&mut self, now: Instant) {
        self.peer_closed = true;
        match self.protocol() {
            Protocol::Echo => self.closing = true,
            Protocol::Http => self.advance(now),
            Protocol::Rpc => self.rpc_receive_eof(now),
        }
        self.maybe_linger(now);
    }

    /// The bytes to send next. Write as many as the socket takes and report
    /// the count with [`Session::consume_output`].
    pub fn pending_output(&self) -> &[u8] {
        &self.output
    }

    /// `count` bytes of [`Session::pending_output`] were written.
    pub fn consume_output(&mut self, count: usize, now: Instant) {
        if count == 0 {
            return;
        }
        let count = count.min(self.output.len());
        self.output.drain(..count);
        // A client that reads is not idle, even if it sends nothing (a big
        // echo coming back).
        self.last_activity = now;
        // Room in the output may unblock pipelined requests.
        match self.protocol() {
            Protocol::Echo => {}
            Protocol::Http => {
                self.http.sent(count);
                self.advance(now);
            }
            Protocol::Rpc => self.rpc_advance(now),
        }
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
        let idle = self.last_activity + self.config.idle_timeout;
        match self.protocol() {
            Protocol::Echo => Some(idle),
            Protocol::Http => Some(self.http_next_deadline(idle)),
            Protocol::Rpc => Some(self.rpc_next_deadline(idle)),
        }
    }

    /// Time passed: deliver fake-DB answers that are due and enforce the
    /// request deadline and the idle timeout. Calling it early is harmless.
    pub fn handle_timers(&mut self, now: Instant) {
        if let Some(linger) = &self.linger {
            if now >= linger.until {
                self.abandoned = true; // lingered long enough
            }
            return;
        }
        let dealt_with = match self.protocol() {
            Protocol::Echo => false,
            Protocol::Http => self.http_timers(now),
            Protocol::Rpc => self.rpc_timers(now),
        };
        if dealt_with {
            self.maybe_linger(now);
            return;
        }
        if now >= self.last_activity + self.config.idle_timeout {
            // Idle between requests, or a peer that stopped reading: there
            // is nobody to tell, close at once and drop what is unsent.
            self.abandoned = true;
        }
    }

    /// The server is shutting down: a request in flight is still answered
    /// (with `Connection: close`), then the connection closes. An idle
    /// connection is finished at once.
    pub fn begin_shutdown(&mut self, now: Instant) {
        self.stopping = true;
        match self.protocol() {
            Protocol::Echo => self.closing = true,
            Protocol::Http => self.advance(now),
            Protocol::Rpc => self.rpc_stop(now),
        }
        self.maybe_linger(now);
    }

    /// Close the connection now: everything was sent and nothing more will
    /// be answered (or the peer is gone for good), and lingering, if any,
    /// is over.
    pub fn is_finished(&self) -> bool {
        self.abandoned || (self.is_done_sending() && (self.peer_closed || self.linger.is_none()))
    }

    /// True once, when the session starts lingering: the driver then shuts
    /// down the socket's writing side (`shutdown(SHUT_WR)`, the client sees
    /// EOF after the last response) and keeps reading until
    /// [`Session::is_finished`].
    pub fn take_half_close(&mut self) -> bool {
        match &mut self.linger {
            Some(linger) if !linger.half_closed && !self.abandoned => {
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
        self.closing && self.output.is_empty() && !self.http.is_streaming()
    }

    /// Starts lingering when the last response is out while the peer may
    /// still be sending: after an error (a body too large, a broken
    /// request, a timeout) or with input left unread. A connection closed
    /// after a complete exchange (HTTP/1.0, `Connection: close`, shutdown
    /// between requests) closes at once: its client has nothing more to
    /// say. Called after every step that can get there.
    fn maybe_linger(&mut self, now: Instant) {
        if self.linger.is_none()
            && self.unread_input
            && !self.no_linger
            && self.is_done_sending()
            && !self.peer_closed
            && !self.abandoned
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
