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
//! 3. wake up at [`Session::next_deadline`] (the fake DB's answer, the idle
//!    timeout) and call [`Session::handle_timers`];
//! 4. close the socket once [`Session::is_finished`].
//!
//! Every method takes the current time as an argument, so a session is
//! deterministic: the unit tests below drive it with made-up clocks, and the
//! nine models drive it with real sockets. The session never blocks, which is
//! what lets one thread (06, 07) juggle thousands of them.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use crate::cli::Mode;

/// At most this much unsent data per connection. Past it the session stops
/// asking for input, so a client that writes and never reads cannot make the
/// server's memory grow: the kernel's socket buffers fill up and the client's
/// writes block instead.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// A request head (request line and headers) may be at most this long (431).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A request may have at most this many headers (431).
pub const MAX_HEADERS: usize = 64;
/// A request body may announce at most this many bytes (413).
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Unparsed HTTP input kept at most: a full head plus room for pipelining.
const INPUT_LIMIT: usize = 2 * MAX_HEAD_BYTES;

/// The lab's page, served for `GET /` after the fake DB answered.
pub const INDEX_PAGE: &str =
    "<html><head><title>Success</title></head><body>Index page</body></html>";

/// What a session needs to know about its server; the same for every
/// connection, cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct SessionConfig {
    pub mode: Mode,
    /// How long the fake database takes to answer a `GET /` or `HEAD /`.
    pub db_latency: Duration,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Sent in the `Server` header: the binary's name, e.g. `07-epoll`.
    pub server_name: &'static str,
}

/// The protocol state of one connection. See the module docs for how to
/// drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    /// `pid=1234 thread=conn-7`, sent as `X-Worker` so clients can see who
    /// served them.
    worker: String,
    /// Bytes waiting to be written to the socket.
    output: Vec<u8>,
    /// HTTP: received bytes not yet parsed into a request.
    input: Vec<u8>,
    /// HTTP: bytes of a request body still to be read and thrown away.
    body_to_discard: u64,
    /// HTTP: a `GET /` or `HEAD /` whose fake DB query is under way.
    db_query: Option<DbQuery>,
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
}

/// A request that waits for the fake database.
#[derive(Debug, Clone, Copy)]
struct DbQuery {
    ready_at: Instant,
    head_only: bool,
    persistence: Persistence,
}

/// What a response says about the connection, and what happens to it after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persistence {
    /// HTTP/1.1 default: stays open, no header needed.
    KeepAlive,
    /// HTTP/1.0 asked for `Connection: keep-alive`: stays open and the
    /// response must say so, or 1.0 clients (`ab -k`) wait for a close.
    KeepAliveDeclared,
    /// `Connection: close` is sent and the connection closes after it.
    Close,
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

impl Session {
    /// A new connection, accepted at `now`, served by `worker` (see
    /// [`crate::worker_label`]).
    pub fn new(config: SessionConfig, worker: String, now: Instant) -> Session {
        Session {
            config,
            worker,
            output: Vec::new(),
            input: Vec::new(),
            body_to_discard: 0,
            db_query: None,
            last_activity: now,
            peer_closed: false,
            closing: false,
            stopping: false,
            abandoned: false,
        }
    }

    /// How many bytes the session takes now; 0 means "do not read this
    /// socket at the moment" (output full, waiting for the DB, or closing).
    /// This is the backpressure: drivers never read more than this.
    pub fn read_capacity(&self) -> usize {
        if self.closing || self.peer_closed || self.abandoned {
            return 0;
        }
        match self.config.mode {
            Mode::Echo => OUTPUT_LIMIT.saturating_sub(self.output.len()),
            Mode::Http if self.db_query.is_some() || self.output.len() >= OUTPUT_LIMIT => 0,
            Mode::Http => INPUT_LIMIT.saturating_sub(self.input.len()),
        }
    }

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
        if bytes.is_empty() || self.closing {
            return;
        }
        self.last_activity = now;
        match self.config.mode {
            Mode::Echo => self.output.extend_from_slice(bytes),
            Mode::Http => {
                self.input.extend_from_slice(bytes);
                self.advance(now);
            }
        }
    }

    /// The peer shut down its sending side: answer what was fully received,
    /// then close (a half-closing client still gets its responses).
    pub fn receive_eof(&mut self, now: Instant) {
        self.peer_closed = true;
        match self.config.mode {
            Mode::Echo => self.closing = true,
            Mode::Http => self.advance(now),
        }
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
        self.output.drain(..count.min(self.output.len()));
        // A client that reads is not idle, even if it sends nothing (a big
        // echo coming back).
        self.last_activity = now;
        if self.config.mode == Mode::Http {
            // Room in the output may unblock pipelined requests.
            self.advance(now);
        }
    }

    /// When the driver must call [`Session::handle_timers`] at the latest:
    /// the fake DB's answer, or the idle timeout.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        match self.db_query {
            Some(query) => Some(query.ready_at),
            None => Some(self.last_activity + self.config.idle_timeout),
        }
    }

    /// Time passed: deliver fake-DB answers that are due and enforce the
    /// idle timeout. Calling it early is harmless.
    pub fn handle_timers(&mut self, now: Instant) {
        if self.config.mode == Mode::Http {
            self.advance(now);
        }
        if self.db_query.is_some() || now < self.last_activity + self.config.idle_timeout {
            return;
        }
        let request_started = !self.input.is_empty() || self.body_to_discard > 0;
        if self.config.mode == Mode::Http && request_started && !self.closing {
            // The client began a request and stalled: tell it why we hang up,
            // and give the 408 one more idle period to get out.
            self.error_response(Status::REQUEST_TIMEOUT);
            self.last_activity = now;
        } else {
            // Idle between requests, or a peer that stopped reading: there is
            // nobody to tell, close at once and drop what is unsent.
            self.abandoned = true;
        }
    }

    /// The server is shutting down: a request in flight is still answered
    /// (with `Connection: close`), then the connection closes. An idle
    /// connection is finished at once.
    pub fn begin_shutdown(&mut self, now: Instant) {
        self.stopping = true;
        match self.config.mode {
            Mode::Echo => self.closing = true,
            Mode::Http => self.advance(now),
        }
    }

    /// Close the connection now: everything was sent and nothing more will
    /// be answered (or the peer is gone for good).
    pub fn is_finished(&self) -> bool {
        self.abandoned || (self.closing && self.output.is_empty())
    }

    /// Moves the HTTP state machine as far as the input and the clock allow:
    /// deliver a DB answer that is due, discard body bytes, parse the next
    /// request. Requests are answered strictly one after another, which is
    /// what keeps pipelined responses in order.
    fn advance(&mut self, now: Instant) {
        loop {
            if self.closing {
                self.input.clear();
                return;
            }
            if let Some(query) = self.db_query {
                if now < query.ready_at {
                    return;
                }
                self.db_query = None;
                let persistence = if self.stopping {
                    Persistence::Close
                } else {
                    query.persistence
                };
                self.page_response(query.head_only, persistence);
                self.last_activity = now;
                continue;
            }
            if self.body_to_discard > 0 {
                let discard = self.input.len().min(self.body_to_discard as usize);
                self.input.drain(..discard);
                self.body_to_discard -= discard as u64;
                if self.body_to_discard > 0 {
                    self.closing |= self.peer_closed || self.stopping;
                    return;
                }
            }
            if self.stopping {
                self.closing = true;
                continue;
            }
            if self.output.len() >= OUTPUT_LIMIT {
                return; // answer more once the client has read some
            }
            match parse_head(&self.input) {
                Parsed::Partial if self.input.len() > MAX_HEAD_BYTES => {
                    self.error_response(Status::HEADERS_TOO_LARGE)
                }
                Parsed::Partial => {
                    // An unfinished request from a peer that hung up can
                    // never complete: drop it.
                    self.closing |= self.peer_closed;
                    return;
                }
                Parsed::Error(status) => self.error_response(status),
                Parsed::Complete(head) => self.start_request(head, now),
            }
        }
    }

    /// Acts on a complete request head.
    fn start_request(&mut self, head: Head, now: Instant) {
        if head.length > MAX_HEAD_BYTES {
            return self.error_response(Status::HEADERS_TOO_LARGE);
        }
        if head.has_transfer_encoding {
            // Chunked bodies are not supported; without knowing where the
            // body ends we cannot stay in sync, so this also closes.
            return self.error_response(Status::NOT_IMPLEMENTED);
        }
        let Ok(content_length) = head.content_length else {
            return self.error_response(Status::BAD_REQUEST);
        };
        if content_length > MAX_BODY_BYTES {
            return self.error_response(Status::CONTENT_TOO_LARGE);
        }
        self.input.drain(..head.length);
        self.body_to_discard = content_length;
        let persistence = head.persistence;
        match (head.method, head.path_is_root) {
            (method, false) => {
                // HEAD gets no body, or on a persistent connection the
                // client would read it as the start of the next response.
                let head_only = method == Method::Head;
                self.text_response(Status::NOT_FOUND, "", head_only, persistence)
            }
            (Method::Get | Method::Head, true) => {
                self.db_query = Some(DbQuery {
                    ready_at: now + self.config.db_latency,
                    head_only: head.method == Method::Head,
                    persistence,
                });
            }
            (Method::Other, true) => self.text_response(
                Status::METHOD_NOT_ALLOWED,
                "Allow: GET, HEAD\r\n",
                false,
                persistence,
            ),
        }
    }

    /// A protocol error: answer, then close (after a broken request we can
    /// no longer tell where the next one starts).
    fn error_response(&mut self, status: Status) {
        self.text_response(status, "", false, Persistence::Close);
    }

    fn text_response(
        &mut self,
        status: Status,
        extra_headers: &str,
        head_only: bool,
        persistence: Persistence,
    ) {
        let body = format!("{} {}\n", status.0, status.1);
        self.write_response(
            status,
            "text/plain; charset=utf-8",
            extra_headers,
            body.as_bytes(),
            head_only,
            persistence,
        );
    }

    fn page_response(&mut self, head_only: bool, persistence: Persistence) {
        self.write_response(
            Status::OK,
            "text/html; charset=utf-8",
            "",
            INDEX_PAGE.as_bytes(),
            head_only,
            persistence,
        );
    }

    fn write_response(
        &mut self,
        status: Status,
        content_type: &str,
        extra_headers: &str,
        body: &[u8],
        head_only: bool,
        persistence: Persistence,
    ) {
        let mut head = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nServer: {}\r\nDate: {}\r\nContent-Type: {}\r\n\
             Content-Length: {}\r\nX-Worker: {}\r\n{}",
            status.0,
            status.1,
            self.config.server_name,
            http_date(),
            content_type,
            body.len(),
            self.worker,
            extra_headers,
        );
        match persistence {
            Persistence::KeepAlive => {}
            Persistence::KeepAliveDeclared => head.push_str("Connection: keep-alive\r\n"),
            Persistence::Close => {
                head.push_str("Connection: close\r\n");
                self.closing = true;
            }
        }
        head.push_str("\r\n");
        self.output.extend_from_slice(head.as_bytes());
        if !head_only {
            self.output.extend_from_slice(body);
        }
    }
}

/// The `Date` header value, formatted anew for every response: servers
/// often cache it per second, an optimisation this teaching code skips.
fn http_date() -> String {
    // The wall clock is the one impure input of a session; tests check the
    // header's presence and shape, not its value.
    httpdate::fmt_http_date(SystemTime::now())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Head,
    Other,
}

/// What the session needs from a parsed request head, copied out of
/// httparse's borrowed view so the input buffer can be changed afterwards.
#[derive(Debug)]
struct Head {
    length: usize,
    method: Method,
    path_is_root: bool,
    persistence: Persistence,
    has_transfer_encoding: bool,
    /// `Err` when Content-Length is malformed or given twice differently.
    content_length: Result<u64, ()>,
}

enum Parsed {
    Partial,
    Complete(Head),
    Error(Status),
}

fn parse_head(input: &[u8]) -> Parsed {
    // httparse borrows the header slots, so they are made anew on every
    // attempt; a partial head is simply parsed again when more bytes come.
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let length = match request.parse(input) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(Status::HEADERS_TOO_LARGE),
        Err(_) => return Parsed::Error(Status::BAD_REQUEST),
    };
    let method = match request.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        _ => Method::Other,
    };
    let path = request.path.unwrap_or("");
    let path_is_root = path.split('?').next() == Some("/");
    let mut has_transfer_encoding = false;
    let mut content_length: Result<Option<u64>, ()> = Ok(None);
    let mut wants_close = false;
    let mut wants_keep_alive = false;
    for header in request.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            has_transfer_encoding = true;
        } else if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = value.trim().parse::<u64>().map_err(|_| ());
            content_length = match (content_length, parsed) {
                (Ok(None), Ok(length)) => Ok(Some(length)),
                (Ok(Some(earlier)), Ok(length)) if earlier == length => Ok(Some(length)),
                _ => Err(()),
            };
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                wants_close |= token.trim().eq_ignore_ascii_case("close");
                wants_keep_alive |= token.trim().eq_ignore_ascii_case("keep-alive");
            }
        }
    }
    let persistence = match request.version {
        Some(1) if wants_close => Persistence::Close,
        Some(1) => Persistence::KeepAlive,
        _ if wants_keep_alive && !wants_close => Persistence::KeepAliveDeclared,
        _ => Persistence::Close,
    };
    Parsed::Complete(Head {
        length,
        method,
        path_is_root,
        persistence,
        has_transfer_encoding,
        content_length: content_length.map(|length| length.unwrap_or(0)),
    })
}

#[cfg(test)]
mod tests;
