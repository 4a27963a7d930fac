//! Unit tests of the sans-IO core. Every test drives a [`Session`] with a
//! made-up clock through [`Driver`], a fake driver that follows the rules of
//! the module docs exactly, so no test sleeps and none touches a socket.

use std::time::{Duration, Instant};

use super::*;

/// The contract's limits, written out instead of taken from the session's
/// constants: a test that used `OUTPUT_LIMIT` itself would pass whatever
/// value it had (`64 + 1024` survived mutation testing that way).
const LIMIT_OUTPUT: usize = 65_536;
const LIMIT_HEAD_BYTES: usize = 8_192;
const LIMIT_HEADERS: usize = 64;
const LIMIT_BODY_BYTES: u64 = 1_048_576;
const DB_LATENCY: Duration = Duration::from_millis(300);
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const SERVER: &str = "00-test";
const WORKER: &str = "pid=4242 thread=test-1";
/// No test needs anywhere near this many steps; reaching it means the
/// session stopped making progress (a driver would spin or hang).
const MAX_STEPS: usize = 1_000_000;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn config(protocol: Protocol) -> SessionConfig {
    SessionConfig {
        protocol,
        idle_timeout: IDLE_TIMEOUT,
        server_name: SERVER,
    }
}

/// HTTP mode as `--mode http` sets it up: the lab page behind the fake DB,
/// and the lecture's short answers (no `Connection` line when HTTP/1.1
/// keeps the connection open anyway).
fn lab_page(db_latency: Duration) -> SessionConfig {
    http_app(crate::app::LabPage { db_latency }, false)
}

/// An app on the HTTP engine. The app is leaked, as servers do once; tests
/// make a few dozen.
fn http_app(app: impl crate::app::App + 'static, always_say_connection: bool) -> SessionConfig {
    config(Protocol::Http(HttpSettings {
        app: Box::leak(Box::new(app)),
        always_say_connection,
    }))
}

/// A fake driver: a client whose socket always takes everything we write,
/// and a clock that moves only when a test (or a deadline) says so.
struct Driver {
    session: Session,
    t0: Instant,
    now: Instant,
}

impl Driver {
    fn new(config: SessionConfig) -> Driver {
        let t0 = Instant::now();
        Driver {
            session: Session::new(config, WORKER.to_owned(), t0),
            t0,
            now: t0,
        }
    }

    fn http() -> Driver {
        Driver::new(lab_page(DB_LATENCY))
    }

    fn echo() -> Driver {
        Driver::new(config(Protocol::Echo))
    }

    /// Time since the connection was accepted.
    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// Writes everything pending to the (always writable) socket, including
    /// what the room made by writing lets the session answer next.
    fn take_output(&mut self) -> Vec<u8> {
        let mut output = Vec::new();
        while self.session.wants_write() {
            let piece = self.peek_output(usize::MAX);
            self.session.consume_output(piece.len(), self.now);
            output.extend(piece);
        }
        output
    }

    /// Up to `limit` bytes of what the session offers next: its output, or
    /// a piece of its file, read as the fallback of `sendfile` reads it.
    fn peek_output(&self, limit: usize) -> Vec<u8> {
        match self.session.pending_file() {
            Some(range) => {
                let mut piece = vec![0; range.length.min(limit)];
                let read = range.read(&mut piece).expect("the file is all there");
                piece.truncate(read);
                piece
            }
            None => {
                let pending = self.session.pending_output();
                pending[..limit.min(pending.len())].to_vec()
            }
        }
    }

    /// The session reads nothing and has nothing to send: sleep until its
    /// next deadline and let it handle the timers, as the blocking driver does.
    fn wake(&mut self) {
        let deadline = self
            .session
            .next_deadline()
            .expect("a session that is not finished always has a deadline");
        self.now = self.now.max(deadline);
        self.session.handle_timers(self.now);
    }

    /// The client sends `bytes`, at most `chunk` per read and never more than
    /// `read_capacity`; while the session takes nothing (the fake DB is
    /// working) the clock jumps to its deadline. Stops early if the session
    /// finishes. Returns what was sent back meanwhile.
    fn send(&mut self, bytes: &[u8], chunk: usize) -> Vec<u8> {
        let mut output = Vec::new();
        let mut rest = bytes;
        for _ in 0..MAX_STEPS {
            output.extend(self.take_output());
            if rest.is_empty() || self.session.is_finished() {
                return output;
            }
            match self.session.read_capacity() {
                0 => self.wake(),
                capacity => {
                    let count = capacity.min(chunk).min(rest.len());
                    self.session.receive(&rest[..count], self.now);
                    rest = &rest[count..];
                }
            }
        }
        panic!("the session stopped taking input");
    }

    /// Runs until the session waits for the client (or is finished): sends
    /// its output and jumps the clock over every deadline in between.
    fn settle(&mut self) -> Vec<u8> {
        let mut output = Vec::new();
        for _ in 0..MAX_STEPS {
            output.extend(self.take_output());
            if self.session.is_finished() || self.session.wants_read() {
                return output;
            }
            self.wake();
        }
        panic!("the session never settled");
    }

    /// The client sends `bytes` in one piece, then waits for the answers.
    fn exchange(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut output = self.send(bytes, usize::MAX);
        output.extend(self.settle());
        output
    }

    /// The client does nothing for `duration`; the session still wakes up at
    /// each of its deadlines on the way.
    fn sleep(&mut self, duration: Duration) -> Vec<u8> {
        let until = self.now + duration;
        let mut output = Vec::new();
        for _ in 0..MAX_STEPS {
            output.extend(self.take_output());
            match self.session.next_deadline() {
                Some(deadline) if deadline <= until => {
                    self.now = self.now.max(deadline);
                    self.session.handle_timers(self.now);
                }
                _ => {
                    self.now = until;
                    return output;
                }
            }
        }
        panic!("handle_timers does not move the deadline");
    }

    fn eof(&mut self) {
        self.session.receive_eof(self.now);
    }

    /// The server ended the exchange, as a client sees it: the session is
    /// finished, or it lingers (its writing side is shut down, so the
    /// client reads EOF, and it only discards input until the client's).
    fn hung_up(&self) -> bool {
        self.session.is_finished() || self.session.is_lingering()
    }
}

/// One HTTP response, as a client reads it.
#[derive(Debug)]
struct Response {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn status(&self) -> u16 {
        let code = self.status_line.split(' ').nth(1).expect("a status code");
        code.parse().expect("a numeric status code")
    }

    /// The value of a header that must appear at most once.
    fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let value = values.next().map(|(_, value)| value.as_str());
        assert!(values.next().is_none(), "{name} appears twice in {self:?}");
        value
    }
}

/// Splits the first response off `bytes`: the head up to the empty line,
/// then `Content-Length` bytes of body (none when answering a HEAD).
fn parse_response(bytes: &[u8], head_only: bool) -> (Response, &[u8]) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&bytes[..end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("`Name: value` header lines");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let mut response = Response {
        status_line,
        headers,
        body: Vec::new(),
    };
    let length: usize = response
        .header("Content-Length")
        .expect("every response has a Content-Length")
        .parse()
        .expect("a numeric Content-Length");
    let rest = &bytes[end + 4..];
    let length = if head_only { 0 } else { length };
    assert!(rest.len() >= length, "body cut short in {response:?}");
    response.body = rest[..length].to_vec();
    (response, &rest[length..])
}

/// All responses in `bytes`, none of them to a HEAD request.
fn parse_responses(mut bytes: &[u8]) -> Vec<Response> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let (response, rest) = parse_response(bytes, false);
        responses.push(response);
        bytes = rest;
    }
    responses
}

/// Exactly one response, not to a HEAD request.
fn parse_one(bytes: &[u8]) -> Response {
    let mut responses = parse_responses(bytes);
    assert_eq!(
        responses.len(),
        1,
        "expected one response in {:?}",
        String::from_utf8_lossy(bytes)
    );
    responses.remove(0)
}

/// What every response carries, whatever its status.
fn assert_common_headers(response: &Response) {
    assert_eq!(response.header("Server"), Some(SERVER));
    assert_eq!(response.header("X-Worker"), Some(WORKER));
    let date = response.header("Date").expect("a Date header");
    httpdate::parse_http_date(date).expect("an HTTP date");
}

/// The lab's page, with a body unless it answers a HEAD.
fn assert_page(response: &Response, head_only: bool) {
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_common_headers(response);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.header("Content-Length"), Some("71"));
    let body: &[u8] = if head_only {
        b""
    } else {
        crate::app::INDEX_PAGE.as_bytes()
    };
    assert_eq!(response.body, body);
}

/// An error with a short text body; `closes` says whether it ends the
/// connection (`Connection: close`).
fn assert_error(response: &Response, status: Status, closes: bool) {
    assert_eq!(
        response.status_line,
        format!("HTTP/1.1 {} {}", status.0, status.1)
    );
    assert_common_headers(response);
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    let body = String::from_utf8(response.body.clone()).expect("a text body");
    assert!(
        body.starts_with(&status.0.to_string()) && body.len() < 100,
        "body {body:?}"
    );
    let connection = if closes { Some("close") } else { None };
    assert_eq!(response.header("Connection"), connection);
}

/// Sends `request` to a fresh HTTP session and checks that it is answered
/// with `status` and closed.
fn assert_closes_with(request: &[u8], status: Status) {
    let mut driver = Driver::http();
    let output = driver.exchange(request);
    assert_error(&parse_one(&output), status, true);
    assert!(driver.hung_up(), "still open after {status:?}");
    assert_eq!(
        driver.elapsed(),
        Duration::ZERO,
        "an error must not wait for the DB"
    );
}

// The tests, by topic.
mod echo;
mod errors;
mod hardened;
mod lifecycle;
mod limits;
mod lingering;
mod properties;
mod requests;

/// Files and axum modes through the engine.
mod apps;

/// RPC mode through the session.
mod rpc;
