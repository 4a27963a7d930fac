//! The HTTP/1.x engine of the session: request framing, deadlines,
//! persistence, and the lab's fake-DB page.
//!
//! A request goes through three steps, strictly one after another, which is
//! what keeps pipelined responses in order:
//!
//! 1. *receive*: the head is parsed (`http/head.rs`), then its body is read and
//!    thrown away (by `Content-Length`, or chunked). The whole request must
//!    arrive within the idle timeout of its **first byte**; later bytes do
//!    not move that deadline, so a client trickling one byte a second (the
//!    slowloris attack) gets 408 instead of holding a worker for ever.
//! 2. *dispatch*: the complete request goes to the server's app
//!    ([`crate::app`]), which answers now or at a later instant (the lab
//!    page's fake DB: a deadline, not a sleep; the session never blocks);
//! 3. *respond*: the response head is appended to the output, and its body
//!    follows in pieces as the output has room. The output never holds more
//!    than [`OUTPUT_LIMIT`], whatever the body's size (a 2 GiB file too),
//!    and the next request is not even parsed until the body is out.

use std::cell::RefCell;
use std::io::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ::http::header::{self, HeaderName};

pub(crate) mod chunked;
mod head;

use chunked::{ChunkError, ChunkedBody};
use head::{Framing, Head, Parsed, Persistence, parse_head};
pub use head::{MAX_BODY_BYTES, MAX_HEAD_BYTES, MAX_HEADERS, Status};

use super::engine::{Engine, OUTPUT_LIMIT, Shared};
use crate::app::{self, App, Reply};

/// Unparsed HTTP input kept at most: a full head plus room for pipelining.
const INPUT_LIMIT: usize = 2 * MAX_HEAD_BYTES;

/// Output room a request needs before it is started. Every response head
/// is smaller (bodies follow as room allows), so the output stays within
/// [`OUTPUT_LIMIT`].
pub(super) const RESPONSE_ROOM: usize = 1024;

const CLOSE_LINE: &[u8] = b"Connection: close\r\n";

/// What the HTTP engine needs from its server; the same for every
/// connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// What answers complete requests (see [`crate::app`]): the lab page,
    /// the file server or the axum app. One per server, shared by every
    /// connection for the life of the process, hence `'static`.
    pub app: &'static dyn App,
    /// Whether a persistent HTTP/1.1 response says `Connection: keep-alive`
    /// although HTTP/1.1 needs no such line. The lab's fake-DB page keeps
    /// the lecture's short answer; the lab's file-server tests want
    /// `Connection` on every response.
    pub always_say_connection: bool,
}

/// The HTTP state of a connection.
#[derive(Debug)]
pub(super) struct Http {
    settings: HttpSettings,
    /// Received bytes not yet parsed, or body bytes not yet skipped.
    input: Vec<u8>,
    /// A request whose head was parsed and whose body is still arriving.
    request: Option<Request>,
    /// When the request being received must be complete: the time of its
    /// first byte plus the idle timeout. `None` between requests.
    deadline: Option<Instant>,
    /// An app's answer that is due later (the fake DB's).
    due: Option<Due>,
    /// The body of the response being sent, moved to the output as it has
    /// room; no request is started meanwhile.
    body: Option<app::Body>,
    /// Where the last queued response's `Connection` line is, while it is
    /// still unsent: if the connection closes after all, it must say so.
    last_response: Option<Unsent>,
}

#[derive(Debug)]
struct Request {
    head_only: bool,
    persistence: Persistence,
    body: Body,
    /// What the app gets once the body has been read.
    for_app: ::http::Request<()>,
}

/// What is left of a request body.
#[derive(Debug)]
enum Body {
    /// `Content-Length`: this many bytes still to come.
    Length(u64),
    Chunked(ChunkedBody),
}

/// A response the app will have ready at `ready_at`.
#[derive(Debug)]
struct Due {
    ready_at: Instant,
    response: app::Response,
    head_only: bool,
    persistence: Persistence,
}

/// The unsent `Connection` line of the last response: its offset in the
/// output and its length (0 when HTTP/1.1 keep-alive needs no line).
#[derive(Debug, Clone, Copy)]
struct Unsent {
    at: usize,
    length: usize,
}

impl Http {
    pub(super) fn new(settings: HttpSettings) -> Http {
        Http {
            settings,
            input: Vec::new(),
            request: None,
            deadline: None,
            due: None,
            body: None,
            last_response: None,
        }
    }

    /// `count` bytes left the front of the output: the unsent
    /// `Connection` line, if any, moved with them.
    fn shift_last_response(&mut self, count: usize) {
        self.last_response = self.last_response.and_then(|unsent| {
            // Once the line itself started to go out it can no longer change.
            let at = unsent.at.checked_sub(count)?;
            Some(Unsent { at, ..unsent })
        });
    }

    /// Whether part of a request has arrived (blank lines between requests
    /// do not count: RFC 9112 §2.2 says to ignore them, and
    /// `next_request` drops them).
    fn has_partial_request(&self) -> bool {
        self.request.is_some() || !self.input.is_empty()
    }

    /// Whether the request being received is a HEAD, whose answer, even an
    /// error, must have no body.
    fn answering_head(&self) -> bool {
        match &self.request {
            Some(request) => request.head_only,
            None => self.input.starts_with(b"HEAD "),
        }
    }
}

impl Body {
    /// Skips body bytes at the front of `input`: how many were used, and
    /// whether the body is complete.
    fn skip(&mut self, input: &[u8]) -> Result<(usize, bool), Status> {
        match self {
            Body::Length(left) => {
                let used = (*left).min(input.len() as u64);
                *left -= used;
                Ok((used as usize, *left == 0))
            }
            Body::Chunked(chunked) => match chunked.decode(input) {
                Ok(used) => Ok((used, chunked.is_done())),
                Err(ChunkError::Malformed) => Err(Status::BAD_REQUEST),
                Err(ChunkError::TooLarge) => Err(Status::CONTENT_TOO_LARGE),
                Err(ChunkError::TrailersTooLarge) => Err(Status::HEADERS_TOO_LARGE),
            },
        }
    }
}

impl Engine for Http {
    /// Input is taken while no DB query is under way and the output has
    /// room for one more response.
    fn read_capacity(&self, shared: &Shared) -> usize {
        if self.due.is_some() || shared.output.len() + RESPONSE_ROOM > OUTPUT_LIMIT {
            return 0;
        }
        INPUT_LIMIT.saturating_sub(self.input.len())
    }

    fn receive(&mut self, shared: &mut Shared, bytes: &[u8], now: Instant) {
        self.input.extend_from_slice(bytes);
        self.advance(shared, now);
    }

    /// Answers what was fully received (see `advance`), then closes.
    fn receive_eof(&mut self, shared: &mut Shared, now: Instant) {
        self.advance(shared, now);
    }

    fn sent(&mut self, shared: &mut Shared, count: usize, now: Instant) {
        self.shift_last_response(count);
        self.advance(shared, now);
    }

    /// The DB's answer while it works (no timeout runs meanwhile: the wait
    /// is the server's, not the client's), else the request deadline or
    /// the idle timeout, whichever is first.
    fn next_deadline(&self, idle: Instant) -> Instant {
        match (self.due.as_ref(), self.deadline) {
            (Some(due), _) => due.ready_at,
            (None, Some(deadline)) => deadline.min(idle),
            (None, None) => idle,
        }
    }

    // ANCHOR: request_deadline
    /// Delivers a due DB answer and enforces the request deadline. Returns
    /// whether the timers were dealt with (the idle timeout is not due).
    fn handle_timers(&mut self, shared: &mut Shared, now: Instant) -> bool {
        self.advance(shared, now);
        if self.due.is_some() {
            return true;
        }
        match self.deadline {
            Some(deadline) if now >= deadline && !shared.closing => self.deadline = None,
            _ => return false,
        }
        if !self.has_partial_request() {
            // Only blank lines came: there is nothing to answer.
            self.close_after_last_response(shared);
        } else if shared.output.len() + RESPONSE_ROOM > OUTPUT_LIMIT {
            // It does not read either: nobody to tell.
            shared.abandoned = true;
        } else {
            // Too slow (or a slowloris): say why, then hang up. The 408
            // gets one more idle period to be read.
            let head_only = self.answering_head();
            self.error_response(shared, Status::REQUEST_TIMEOUT, head_only);
            shared.no_linger = true;
            shared.last_activity = now;
        }
        true
    }
    // ANCHOR_END: request_deadline

    /// A response under way is finished (see `advance`), then the
    /// connection closes.
    fn begin_shutdown(&mut self, shared: &mut Shared, now: Instant) {
        self.advance(shared, now);
    }

    /// A response body is still being moved to the output.
    fn has_more_output(&self) -> bool {
        self.body.is_some()
    }
}

impl Http {
    /// Moves the HTTP state machine as far as the input, the output's room
    /// and the clock allow: send on a response body, deliver an answer that
    /// is due, skip request body bytes, parse the next request.
    fn advance(&mut self, shared: &mut Shared, now: Instant) {
        loop {
            if shared.file.is_some() {
                return; // the driver sends the file first; `sent` calls again
            }
            if self.body.is_some() && !self.send_body(shared) {
                return; // the rest once the client has read some
            }
            if shared.closing {
                // Input we will never read: the client may be sending more.
                shared.unread_input |= !self.input.is_empty() || self.request.is_some();
                self.input.clear();
                self.request = None;
                self.deadline = None;
                return;
            }
            if let Some(due) = self.due.take() {
                if now < due.ready_at {
                    self.due = Some(due);
                    return;
                }
                self.app_response(shared, due.response, due.head_only, due.persistence);
                shared.last_activity = now;
                continue;
            }
            if shared.stopping {
                // Nothing in flight any more; a request still arriving is
                // not answered.
                self.close_after_last_response(shared);
                continue;
            }
            if let Some(request) = &mut self.request {
                let skipped = request.body.skip(&self.input);
                let head_only = request.head_only;
                match skipped {
                    Err(status) => self.error_response(shared, status, head_only),
                    Ok((used, false)) => {
                        self.input.drain(..used);
                        if shared.peer_closed {
                            // The body can never be completed.
                            self.close_after_last_response(shared);
                            continue;
                        }
                        return;
                    }
                    Ok((used, true)) => {
                        self.input.drain(..used);
                        self.deadline = None;
                        if let Some(request) = self.request.take() {
                            self.dispatch(shared, request, now);
                        }
                    }
                }
                continue;
            }
            self.next_request(shared, now);
            if !shared.closing && self.request.is_none() {
                return; // waiting for more input or for output room
            }
        }
    }

    /// Between requests: ignore blank lines, start the deadline at the
    /// first byte, and parse the head once it is complete.
    fn next_request(&mut self, shared: &mut Shared, now: Instant) {
        if !self.input.is_empty() {
            self.deadline.get_or_insert(now + shared.idle_timeout);
        }
        let blank = self
            .input
            .iter()
            .take_while(|&&byte| byte == b'\r' || byte == b'\n')
            .count();
        // A request line never starts with CR or LF, so any leading CR or
        // LF is a blank line (or half of one) to ignore.
        self.input.drain(..blank);
        if self.input.is_empty() {
            if shared.peer_closed {
                self.close_after_last_response(shared);
            }
            return;
        }
        if shared.output.len() + RESPONSE_ROOM > OUTPUT_LIMIT {
            return; // answer more once the client has read some
        }
        match parse_head(&self.input) {
            Parsed::Partial if self.input.len() > MAX_HEAD_BYTES => {
                let head_only = self.answering_head();
                self.error_response(shared, Status::HEADERS_TOO_LARGE, head_only);
            }
            Parsed::Partial if shared.peer_closed => {
                // An unfinished request from a peer that hung up can never
                // complete: drop it.
                self.close_after_last_response(shared);
            }
            Parsed::Partial => {}
            Parsed::Error(status) => {
                let head_only = self.answering_head();
                self.error_response(shared, status, head_only);
            }
            Parsed::Complete(head) => self.start_request(shared, *head),
        }
    }

    /// Checks a complete head and starts receiving its body.
    fn start_request(&mut self, shared: &mut Shared, head: Head) {
        let head_only = head.head_only;
        if head.length > MAX_HEAD_BYTES {
            return self.error_response(shared, Status::HEADERS_TOO_LARGE, head_only);
        }
        let body = match head.framing {
            Err(status) => return self.error_response(shared, status, head_only),
            Ok(Framing::Length(length)) if length > MAX_BODY_BYTES => {
                return self.error_response(shared, Status::CONTENT_TOO_LARGE, head_only);
            }
            Ok(Framing::Length(length)) => Body::Length(length),
            Ok(Framing::Chunked) => Body::Chunked(ChunkedBody::default()),
        };
        self.input.drain(..head.length);
        self.request = Some(Request {
            head_only,
            persistence: head.persistence,
            body,
            for_app: head.request,
        });
    }

    // ANCHOR: dispatch
    /// A complete request goes to the app, which answers now or later.
    fn dispatch(&mut self, shared: &mut Shared, request: Request, now: Instant) {
        // HEAD gets no body, or on a persistent connection the client
        // would read it as the start of the next response.
        let head_only = request.head_only;
        let persistence = request.persistence;
        match self.settings.app.call(request.for_app, now) {
            Reply::Now(response) => self.app_response(shared, response, head_only, persistence),
            Reply::At(ready_at, response) => {
                self.due = Some(Due {
                    ready_at,
                    response,
                    head_only,
                    persistence,
                });
            }
        }
    }
    // ANCHOR_END: dispatch

    /// No more requests will be answered. A response still queued says so
    /// with `Connection: close`, which it did not when it was written (the
    /// peer's EOF or the server's shutdown came after it).
    fn close_after_last_response(&mut self, shared: &mut Shared) {
        shared.closing = true;
        if let Some(unsent) = self.last_response.take() {
            let line = unsent.at..unsent.at + unsent.length;
            shared.output.splice(line, CLOSE_LINE.iter().copied());
        }
    }

    /// A protocol error: answer, then close (after a broken request we can
    /// no longer tell where the next one starts).
    fn error_response(&mut self, shared: &mut Shared, status: Status, head_only: bool) {
        // The rest of a broken request may still be on its way.
        shared.unread_input = true;
        self.text_response(shared, status, "", head_only, Persistence::Close);
    }

    // ANCHOR: app_response
    /// Writes an app's response: its status and headers, then the ones the
    /// engine owns. The body is only queued; `send_body` moves
    /// it to the output as there is room.
    fn app_response(
        &mut self,
        shared: &mut Shared,
        response: app::Response,
        head_only: bool,
        mut persistence: Persistence,
    ) {
        let (parts, body) = response.into_parts();
        let mut headers = String::with_capacity(128);
        for (name, value) in &parts.headers {
            if ENGINE_HEADERS.contains(name) {
                continue;
            }
            // `to_str` fails on non-ASCII bytes, which no app here sends.
            if let Ok(value) = value.to_str() {
                push_title_case(&mut headers, name.as_str());
                headers.push_str(": ");
                headers.push_str(value);
                headers.push_str("\r\n");
            }
        }
        let asks_close = parts
            .headers
            .get(header::CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        if asks_close {
            persistence = Persistence::Close;
        }
        let status = Status(
            parts.status.as_u16(),
            parts.status.canonical_reason().unwrap_or(""),
        );
        self.write_head(shared, status, &headers, body.len(), persistence);
        if !head_only && !body.is_empty() {
            self.body = Some(body);
        }
    }

    /// Moves as much of the response body as fits to the output; returns
    /// whether it is all out. A file is not read here: it is handed to the
    /// driver whole, behind the head, and sent from the file to the socket.
    fn send_body(&mut self, shared: &mut Shared) -> bool {
        match self.body.take() {
            None => true,
            Some(app::Body::File(file)) => {
                shared.file = Some(file);
                true
            }
            Some(app::Body::Bytes(mut bytes)) => {
                let room = OUTPUT_LIMIT.saturating_sub(shared.output.len());
                shared.output.extend(bytes.drain(..room.min(bytes.len())));
                if bytes.is_empty() {
                    return true;
                }
                self.body = Some(app::Body::Bytes(bytes));
                false
            }
        }
    }
    // ANCHOR_END: app_response

    fn text_response(
        &mut self,
        shared: &mut Shared,
        status: Status,
        extra_headers: &str,
        head_only: bool,
        persistence: Persistence,
    ) {
        let body = format!("{} {}\n", status.0, status.1);
        let headers = format!("Content-Type: text/plain; charset=utf-8\r\n{extra_headers}");
        self.write_head(shared, status, &headers, body.len() as u64, persistence);
        if !head_only {
            shared.output.extend_from_slice(body.as_bytes());
        }
    }

    /// Appends a response head: the status line, the headers every
    /// response has, then `headers` (each line ending in CRLF).
    fn write_head(
        &mut self,
        shared: &mut Shared,
        status: Status,
        headers: &str,
        length: u64,
        persistence: Persistence,
    ) {
        let connection = match persistence {
            // See `HttpSettings::always_say_connection`.
            Persistence::KeepAlive if !self.settings.always_say_connection => "",
            Persistence::KeepAlive | Persistence::KeepAliveDeclared => "Connection: keep-alive\r\n",
            Persistence::Close => "Connection: close\r\n",
        };
        // Straight into the output, and piece by piece: no head built
        // aside to be copied, and no formatting for what is mostly fixed
        // text. Writing to a `Vec` cannot fail.
        let output = &mut shared.output;
        let _ = write!(output, "HTTP/1.1 {} {}\r\nServer: ", status.0, status.1);
        output.extend_from_slice(shared.server_name.as_bytes());
        output.extend_from_slice(b"\r\nDate: ");
        push_http_date(output);
        output.extend_from_slice(b"\r\n");
        output.extend_from_slice(headers.as_bytes());
        let _ = write!(output, "Content-Length: {length}\r\nX-Worker: ");
        output.extend_from_slice(shared.worker.as_bytes());
        output.extend_from_slice(b"\r\n");
        let at = output.len();
        output.extend_from_slice(connection.as_bytes());
        output.extend_from_slice(b"\r\n");
        self.last_response = if persistence == Persistence::Close {
            shared.closing = true;
            None
        } else {
            Some(Unsent {
                at,
                length: connection.len(),
            })
        };
    }
}

/// Appends `content-type` as `Content-Type`. The `http` crate keeps names
/// in lower case; they are case-insensitive, but the rest of our head is
/// written the customary way and reads better alike.
fn push_title_case(head: &mut String, name: &str) {
    let mut upper = true;
    for letter in name.chars() {
        head.push(if upper {
            letter.to_ascii_uppercase()
        } else {
            letter
        });
        upper = letter == '-';
    }
}

/// Headers the engine writes itself; an app's own are dropped.
const ENGINE_HEADERS: [HeaderName; 5] = [
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::DATE,
    header::SERVER,
    header::TRANSFER_ENCODING,
];

/// Appends the `Date` header's value (RFC 9110 §6.6.1), which changes
/// once a second: formatted once a second per thread, as nginx does, not
/// once per response.
fn push_http_date(output: &mut Vec<u8>) {
    thread_local! {
        /// The last value formatted, and the second since the epoch it is for.
        static DATE: RefCell<(Option<u64>, String)> = const { RefCell::new((None, String::new())) };
    }
    // The wall clock is the one impure input of a session; tests check the
    // header's presence and shape, not its value.
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|since| since.as_secs());
    DATE.with_borrow_mut(|(formatted_for, date)| {
        if *formatted_for != second || date.is_empty() {
            *date = httpdate::fmt_http_date(now);
            *formatted_for = second;
        }
        output.extend_from_slice(date.as_bytes());
    });
}
