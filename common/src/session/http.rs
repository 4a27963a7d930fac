//! The HTTP/1.x engine of the session: request framing, deadlines,
//! persistence, and the lab's fake-DB page.
//!
//! A request goes through three steps, strictly one after another, which is
//! what keeps pipelined responses in order:
//!
//! 1. *receive*: the head is parsed (`head.rs`), then its body is read and
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

use std::fmt::Write as _;
use std::time::{Instant, SystemTime};

use ::http::header::{self, HeaderName};

use super::chunked::{ChunkError, ChunkedBody};
use super::head::{Framing, Head, Parsed, Persistence, parse_head};
use super::{MAX_BODY_BYTES, MAX_HEAD_BYTES, OUTPUT_LIMIT, Session, Status};
use crate::app::{self, Reply};
use crate::cli::Mode;

/// Unparsed HTTP input kept at most: a full head plus room for pipelining.
const INPUT_LIMIT: usize = 2 * MAX_HEAD_BYTES;

/// Output room a request needs before it is started. Every response head
/// is smaller (bodies follow as room allows), so the output stays within
/// [`OUTPUT_LIMIT`].
pub(super) const RESPONSE_ROOM: usize = 1024;

const CLOSE_LINE: &[u8] = b"Connection: close\r\n";

/// The HTTP state of a connection.
#[derive(Debug, Default)]
pub(super) struct Http {
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
    /// Whether a response body is still being moved to the output.
    pub(super) fn is_streaming(&self) -> bool {
        self.body.is_some()
    }

    /// `count` bytes left the front of the output.
    pub(super) fn sent(&mut self, count: usize) {
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

impl Session {
    /// Input is taken while no DB query is under way and the output has
    /// room for one more response.
    pub(super) fn http_read_capacity(&self) -> usize {
        if self.http.due.is_some() || self.output.len() + RESPONSE_ROOM > OUTPUT_LIMIT {
            return 0;
        }
        INPUT_LIMIT.saturating_sub(self.http.input.len())
    }

    pub(super) fn http_receive(&mut self, bytes: &[u8], now: Instant) {
        self.http.input.extend_from_slice(bytes);
        self.advance(now);
    }

    /// The DB's answer while it works (no timeout runs meanwhile: the wait
    /// is the server's, not the client's), else the request deadline or
    /// the idle timeout, whichever is first.
    pub(super) fn http_next_deadline(&self, idle: Instant) -> Instant {
        match (self.http.due.as_ref(), self.http.deadline) {
            (Some(due), _) => due.ready_at,
            (None, Some(deadline)) => deadline.min(idle),
            (None, None) => idle,
        }
    }

    // ANCHOR: request_deadline
    /// Delivers a due DB answer and enforces the request deadline. Returns
    /// whether the timers were dealt with (the idle timeout is not due).
    pub(super) fn http_timers(&mut self, now: Instant) -> bool {
        self.advance(now);
        if self.http.due.is_some() {
            return true;
        }
        match self.http.deadline {
            Some(deadline) if now >= deadline && !self.closing => self.http.deadline = None,
            _ => return false,
        }
        if !self.http.has_partial_request() {
            // Only blank lines came: there is nothing to answer.
            self.close_after_last_response();
        } else if self.output.len() + RESPONSE_ROOM > OUTPUT_LIMIT {
            // It does not read either: nobody to tell.
            self.abandoned = true;
        } else {
            // Too slow (or a slowloris): say why, then hang up. The 408
            // gets one more idle period to be read.
            let head_only = self.http.answering_head();
            self.error_response(Status::REQUEST_TIMEOUT, head_only);
            self.no_linger = true;
            self.last_activity = now;
        }
        true
    }
    // ANCHOR_END: request_deadline

    /// Moves the HTTP state machine as far as the input, the output's room
    /// and the clock allow: send on a response body, deliver an answer that
    /// is due, skip request body bytes, parse the next request.
    pub(super) fn advance(&mut self, now: Instant) {
        loop {
            if self.http.body.is_some() && !self.send_body() {
                return; // the rest once the client has read some
            }
            if self.closing {
                // Input we will never read: the client may be sending more.
                self.unread_input |= !self.http.input.is_empty() || self.http.request.is_some();
                self.http.input.clear();
                self.http.request = None;
                self.http.deadline = None;
                return;
            }
            if let Some(due) = self.http.due.take() {
                if now < due.ready_at {
                    self.http.due = Some(due);
                    return;
                }
                self.app_response(due.response, due.head_only, due.persistence);
                self.last_activity = now;
                continue;
            }
            if self.stopping {
                // Nothing in flight any more; a request still arriving is
                // not answered.
                self.close_after_last_response();
                continue;
            }
            if let Some(request) = &mut self.http.request {
                let skipped = request.body.skip(&self.http.input);
                let head_only = request.head_only;
                match skipped {
                    Err(status) => self.error_response(status, head_only),
                    Ok((used, false)) => {
                        self.http.input.drain(..used);
                        if self.peer_closed {
                            // The body can never be completed.
                            self.close_after_last_response();
                            continue;
                        }
                        return;
                    }
                    Ok((used, true)) => {
                        self.http.input.drain(..used);
                        self.http.deadline = None;
                        if let Some(request) = self.http.request.take() {
                            self.dispatch(request, now);
                        }
                    }
                }
                continue;
            }
            self.next_request(now);
            if !self.closing && self.http.request.is_none() {
                return; // waiting for more input or for output room
            }
        }
    }

    /// Between requests: ignore blank lines, start the deadline at the
    /// first byte, and parse the head once it is complete.
    fn next_request(&mut self, now: Instant) {
        if !self.http.input.is_empty() {
            self.http
                .deadline
                .get_or_insert(now + self.config.idle_timeout);
        }
        let blank = self
            .http
            .input
            .iter()
            .take_while(|&&byte| byte == b'\r' || byte == b'\n')
            .count();
        // A request line never starts with CR or LF, so any leading CR or
        // LF is a blank line (or half of one) to ignore.
        self.http.input.drain(..blank);
        if self.http.input.is_empty() {
            if self.peer_closed {
                self.close_after_last_response();
            }
            return;
        }
        if self.output.len() + RESPONSE_ROOM > OUTPUT_LIMIT {
            return; // answer more once the client has read some
        }
        match parse_head(&self.http.input) {
            Parsed::Partial if self.http.input.len() > MAX_HEAD_BYTES => {
                let head_only = self.http.answering_head();
                self.error_response(Status::HEADERS_TOO_LARGE, head_only);
            }
            Parsed::Partial if self.peer_closed => {
                // An unfinished request from a peer that hung up can never
                // complete: drop it.
                self.close_after_last_response();
            }
            Parsed::Partial => {}
            Parsed::Error(status) => {
                let head_only = self.http.answering_head();
                self.error_response(status, head_only);
            }
            Parsed::Complete(head) => self.start_request(*head),
        }
    }

    /// Checks a complete head and starts receiving its body.
    fn start_request(&mut self, head: Head) {
        let head_only = head.head_only;
        if head.length > MAX_HEAD_BYTES {
            return self.error_response(Status::HEADERS_TOO_LARGE, head_only);
        }
        let body = match head.framing {
            Err(status) => return self.error_response(status, head_only),
            Ok(Framing::Length(length)) if length > MAX_BODY_BYTES => {
                return self.error_response(Status::CONTENT_TOO_LARGE, head_only);
            }
            Ok(Framing::Length(length)) => Body::Length(length),
            Ok(Framing::Chunked) => Body::Chunked(ChunkedBody::default()),
        };
        self.http.input.drain(..head.length);
        self.http.request = Some(Request {
            head_only,
            persistence: head.persistence,
            body,
            for_app: head.request,
        });
    }

    // ANCHOR: dispatch
    /// A complete request goes to the app, which answers now or later.
    fn dispatch(&mut self, request: Request, now: Instant) {
        // HEAD gets no body, or on a persistent connection the client
        // would read it as the start of the next response.
        let head_only = request.head_only;
        let persistence = request.persistence;
        match self.config.app.call(request.for_app, now) {
            Reply::Now(response) => self.app_response(response, head_only, persistence),
            Reply::At(ready_at, response) => {
                self.http.due = Some(Due {
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
    pub(super) fn close_after_last_response(&mut self) {
        self.closing = true;
        if let Some(unsent) = self.http.last_response.take() {
            let line = unsent.at..unsent.at + unsent.length;
            self.output.splice(line, CLOSE_LINE.iter().copied());
        }
    }

    /// A protocol error: answer, then close (after a broken request we can
    /// no longer tell where the next one starts).
    fn error_response(&mut self, status: Status, head_only: bool) {
        // The rest of a broken request may still be on its way.
        self.unread_input = true;
        self.text_response(status, "", head_only, Persistence::Close);
    }

    // ANCHOR: app_response
    /// Writes an app's response: its status and headers, then the ones the
    /// engine owns. The body is only queued; [`Session::send_body`] moves
    /// it to the output as there is room.
    fn app_response(
        &mut self,
        response: app::Response,
        head_only: bool,
        mut persistence: Persistence,
    ) {
        let (parts, body) = response.into_parts();
        let mut headers = String::new();
        for (name, value) in &parts.headers {
            if ENGINE_HEADERS.contains(name) {
                continue;
            }
            // `to_str` fails on non-ASCII bytes, which no app here sends.
            if let Ok(value) = value.to_str() {
                let _ = write!(headers, "{}: {value}\r\n", title_case(name.as_str()));
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
        self.write_head(status, &headers, body.len(), persistence);
        if !head_only && !body.is_empty() {
            self.http.body = Some(body);
        }
    }

    /// Moves as much of the response body as fits to the output; returns
    /// whether it is all out. A file that ends early (it shrank or was
    /// replaced while being sent) breaks the promise of `Content-Length`:
    /// the client cannot tell where this response ends, so only closing
    /// this connection is left.
    fn send_body(&mut self) -> bool {
        let Some(body) = &mut self.http.body else {
            return true;
        };
        let room = OUTPUT_LIMIT.saturating_sub(self.output.len());
        if let Err(error) = body.read_into(&mut self.output, room) {
            log::warn!("closing a connection: its file could not be sent: {error}");
            self.http.body = None;
            self.abandoned = true;
            self.closing = true;
            return false;
        }
        if !body.is_empty() {
            return false;
        }
        self.http.body = None;
        true
    }
    // ANCHOR_END: app_response

    fn text_response(
        &mut self,
        status: Status,
        extra_headers: &str,
        head_only: bool,
        persistence: Persistence,
    ) {
        let body = format!("{} {}\n", status.0, status.1);
        let headers = format!("Content-Type: text/plain; charset=utf-8\r\n{extra_headers}");
        self.write_head(status, &headers, body.len() as u64, persistence);
        if !head_only {
            self.output.extend_from_slice(body.as_bytes());
        }
    }

    /// Appends a response head: the status line, the headers every
    /// response has, then `headers` (each line ending in CRLF).
    fn write_head(&mut self, status: Status, headers: &str, length: u64, persistence: Persistence) {
        let mut head = String::with_capacity(256);
        // Writing to a String cannot fail.
        let _ = write!(
            head,
            "HTTP/1.1 {} {}\r\nServer: {}\r\nDate: {}\r\n{}\
             Content-Length: {}\r\nX-Worker: {}\r\n",
            status.0,
            status.1,
            self.config.server_name,
            http_date(),
            headers,
            length,
            self.worker,
        );
        let at = self.output.len() + head.len();
        let connection = match persistence {
            // The lab's fake-DB page keeps the lecture's short answer; the
            // lab's file-server tests want `Connection` on every response.
            Persistence::KeepAlive if self.config.mode == Mode::Http => "",
            Persistence::KeepAlive | Persistence::KeepAliveDeclared => "Connection: keep-alive\r\n",
            Persistence::Close => "Connection: close\r\n",
        };
        head.push_str(connection);
        head.push_str("\r\n");
        self.output.extend_from_slice(head.as_bytes());
        self.http.last_response = if persistence == Persistence::Close {
            self.closing = true;
            None
        } else {
            Some(Unsent {
                at,
                length: connection.len(),
            })
        };
    }
}

/// `content-type` as `Content-Type`. The `http` crate keeps names in lower
/// case; they are case-insensitive, but the rest of our head is written
/// the customary way and reads better alike.
fn title_case(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|letter| {
            let letter = if upper {
                letter.to_ascii_uppercase()
            } else {
                letter
            };
            upper = letter == '-';
            letter
        })
        .collect()
}

/// Headers the engine writes itself; an app's own are dropped.
const ENGINE_HEADERS: [HeaderName; 5] = [
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::DATE,
    header::SERVER,
    header::TRANSFER_ENCODING,
];

/// The `Date` header value, formatted anew for every response: servers
/// often cache it per second, an optimisation this teaching code skips.
fn http_date() -> String {
    // The wall clock is the one impure input of a session; tests check the
    // header's presence and shape, not its value.
    httpdate::fmt_http_date(SystemTime::now())
}
