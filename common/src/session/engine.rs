//! What a protocol engine is given and what it must do: the [`Engine`]
//! trait, and [`Shared`], the part of a session every protocol has (the
//! output buffer and its bound, the idle clock, closing and shutdown).
//!
//! This file sits apart from `session.rs` so that the engines (echo, HTTP,
//! RPC) and the session that holds one both depend on it, and neither
//! depends on the other: a protocol module never reaches back into the
//! session that owns it.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::FileBody;

/// At most this much unsent data per connection. Past it the session stops
/// asking for input, so a client that writes and never reads cannot make the
/// server's memory grow: the kernel's socket buffers fill up and the client's
/// writes block instead.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The state every protocol shares. Engines read and change it; only the
/// session creates it.
#[derive(Debug)]
pub(super) struct Shared {
    /// A connection that sends nothing for this long is closed, and a
    /// request must be complete this long after its first byte.
    pub(super) idle_timeout: Duration,
    /// Sent in the `Server` header: the binary's name, e.g. `07-epoll`.
    pub(super) server_name: &'static str,
    /// `pid=1234 thread=conn-7`, sent as `X-Worker` so clients can see who
    /// served them. Shared, not copied, where one label serves many
    /// connections (an event loop).
    pub(super) worker: Arc<str>,
    /// Bytes waiting to be written to the socket, never more than
    /// [`OUTPUT_LIMIT`].
    pub(super) output: Vec<u8>,
    /// A file to send after `output` (a response body), which the driver
    /// sends from the file to the socket. Nothing is added to `output`
    /// while it is there: it would overtake the file.
    pub(super) file: Option<FileBody>,
    /// Last time the client sent bytes or took some of our output.
    pub(super) last_activity: Instant,
    /// The peer shut down its sending side (we read EOF).
    pub(super) peer_closed: bool,
    /// No more requests will be answered: close once the output is sent.
    pub(super) closing: bool,
    /// The server is shutting down: finish what is in flight, then close.
    pub(super) stopping: bool,
    /// Close now, even with output left (an idle peer that stopped reading).
    pub(super) abandoned: bool,
    /// The connection is closed after an error or with input left unread:
    /// the client may still be sending, so closing must linger.
    pub(super) unread_input: bool,
    /// Close without lingering even so: a client too slow to send its
    /// request in time (408) is not waited for a second time, or a
    /// slowloris would hold its connection (and all of 01-blocking) for
    /// the linger as well.
    pub(super) no_linger: bool,
}

// ANCHOR: engine
/// One protocol's half of a session. The session calls these only while
/// the connection is open and has already applied the rules every protocol
/// shares (no reading once closing, the idle timeout), so an engine says
/// only what is particular to its protocol.
///
/// A trait rather than an `enum Engine { Echo, Http, Rpc }`: each protocol
/// keeps its state private in its own module, the list of what a protocol
/// must do is written once (here), and adding a protocol is one new module
/// plus one line where the session builds its engine, instead of one more
/// arm in each of eight `match`es. The price, one allocation per connection
/// and a virtual call per event, is small beside the syscalls around them.
pub(super) trait Engine: Debug + Send {
    /// How many bytes to take now; 0 stops reading (output full, waiting
    /// for the DB).
    fn read_capacity(&self, shared: &Shared) -> usize;

    /// Bytes from the peer, at most [`Engine::read_capacity`].
    fn receive(&mut self, shared: &mut Shared, bytes: &[u8], now: Instant);

    /// The peer shut down its sending side ([`Shared::peer_closed`] is set).
    fn receive_eof(&mut self, shared: &mut Shared, now: Instant);

    /// `count` bytes left the front of the output: room for more answers.
    fn sent(&mut self, shared: &mut Shared, count: usize, now: Instant);

    /// The engine's next deadline, given `idle`, the idle timeout's.
    fn next_deadline(&self, idle: Instant) -> Instant;

    /// Time passed. Returns whether the timers were dealt with; `false`
    /// lets the session apply the idle timeout.
    fn handle_timers(&mut self, shared: &mut Shared, now: Instant) -> bool;

    /// The server is shutting down ([`Shared::stopping`] is set): finish
    /// what is in flight, then close.
    fn begin_shutdown(&mut self, shared: &mut Shared, now: Instant);

    /// Whether the engine still holds output that is not in the buffer yet
    /// (a response body being streamed), which keeps the connection open.
    fn has_more_output(&self) -> bool {
        false
    }
}
// ANCHOR_END: engine
