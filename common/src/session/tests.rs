//! Unit tests of the sans-IO core. Every test drives a [`Session`] with a
//! made-up clock through [`Driver`], a fake driver that follows the rules of
//! the module docs exactly, so no test sleeps and none touches a socket.

use std::time::{Duration, Instant};

use proptest::prelude::*;

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

fn config(mode: Mode) -> SessionConfig {
    config_with_latency(mode, DB_LATENCY)
}

/// The app is leaked, as servers do once; tests make a few dozen.
fn config_with_latency(mode: Mode, db_latency: Duration) -> SessionConfig {
    SessionConfig {
        mode,
        db_latency,
        app: crate::app::for_mode(mode, db_latency, &current_dir()),
        idle_timeout: IDLE_TIMEOUT,
        server_name: SERVER,
    }
}

/// The document root of files mode's tests: the current directory.
fn current_dir() -> std::sync::Arc<crate::files::Root> {
    let root = crate::files::Root::open(std::path::Path::new(".")).expect("the current directory");
    std::sync::Arc::new(root)
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
        Driver::new(config(Mode::Http))
    }

    fn echo() -> Driver {
        Driver::new(config(Mode::Echo))
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
            let pending = self.session.pending_output();
            output.extend_from_slice(pending);
            self.session.consume_output(pending.len(), self.now);
        }
        output
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

// HTTP errors, one test per row of the design's table.

#[test]
fn malformed_request_line_is_400() {
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x01\x02\x03\r\n\r\n",
        b"GET / HTTP/1.1\rX\n\r\n",
    ] {
        assert_closes_with(request, Status::BAD_REQUEST);
    }
}

#[test]
fn malformed_header_is_400() {
    for request in [
        &b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: ten\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy",
    ] {
        assert_closes_with(request, Status::BAD_REQUEST);
    }
}

#[test]
fn other_path_is_404_at_once_and_the_connection_stays_open() {
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n", driver.now);
    // No DB wait: the answer is there before the clock moved.
    assert_error(&parse_one(&driver.take_output()), Status::NOT_FOUND, false);
    assert!(!driver.session.is_finished());
    assert!(driver.session.wants_read());
    assert_page(&parse_one(&driver.exchange(GET)), false);
}

#[test]
fn other_method_is_405_with_allow_its_body_is_discarded_and_the_connection_stays_open() {
    let mut driver = Driver::http();
    let mut request =
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello=world".to_vec();
    request.extend_from_slice(GET);
    let output = driver.exchange(&request);
    let responses = parse_responses(&output);
    assert_eq!(responses.len(), 2);
    assert_error(&responses[0], Status::METHOD_NOT_ALLOWED, false);
    assert_eq!(responses[0].header("Allow"), Some("GET, HEAD"));
    // The body did not turn into a (bad) request: the GET is next.
    assert_page(&responses[1], false);
    assert!(!driver.session.is_finished());
}

#[test]
fn head_over_8_kib_is_431() {
    let long = "a".repeat(LIMIT_HEAD_BYTES);
    let request = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Long: {long}\r\n\r\n");
    assert_closes_with(request.as_bytes(), Status::HEADERS_TOO_LARGE);
    // A head that keeps coming is refused before it ends.
    let endless = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Long: {long}");
    assert_closes_with(endless.as_bytes(), Status::HEADERS_TOO_LARGE);
    // Same when it arrives in small pieces.
    let mut driver = Driver::http();
    let output = driver.send(request.as_bytes(), 100);
    assert_error(&parse_one(&output), Status::HEADERS_TOO_LARGE, true);
    assert!(driver.hung_up());
}

#[test]
fn head_of_exactly_8_kib_is_served() {
    let prefix = "GET / HTTP/1.1\r\nHost: t\r\nX-Long: ";
    let long = "a".repeat(LIMIT_HEAD_BYTES - prefix.len() - 4);
    let request = format!("{prefix}{long}\r\n\r\n");
    assert_eq!(request.len(), LIMIT_HEAD_BYTES);
    assert_page(
        &parse_one(&Driver::http().exchange(request.as_bytes())),
        false,
    );
}

#[test]
fn more_than_64_headers_is_431_and_64_are_fine() {
    let request = |count: usize| {
        // Host is one of the `count`.
        let headers: String = (1..count).map(|n| format!("X-{n}: {n}\r\n")).collect();
        format!("GET / HTTP/1.1\r\nHost: t\r\n{headers}\r\n")
    };
    assert_closes_with(
        request(LIMIT_HEADERS + 1).as_bytes(),
        Status::HEADERS_TOO_LARGE,
    );
    assert_page(
        &parse_one(&Driver::http().exchange(request(LIMIT_HEADERS).as_bytes())),
        false,
    );
}

#[test]
fn content_length_over_1_mib_is_413() {
    let request = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        LIMIT_BODY_BYTES + 1
    );
    assert_closes_with(request.as_bytes(), Status::CONTENT_TOO_LARGE);
}

#[test]
fn content_length_of_1_mib_is_read_and_discarded() {
    let mut request =
        format!("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: {LIMIT_BODY_BYTES}\r\n\r\n")
            .into_bytes();
    request.resize(request.len() + LIMIT_BODY_BYTES as usize, b'x');
    request.extend_from_slice(HEAD);
    let mut driver = Driver::http();
    let output = driver.exchange(&request);
    let (get, rest) = parse_response(&output, false);
    let (head, rest) = parse_response(rest, true);
    assert_page(&get, false);
    assert_page(&head, true);
    assert!(rest.is_empty());
    assert!(!driver.session.is_finished());
}

#[test]
fn request_not_complete_within_the_idle_timeout_is_408() {
    let mut driver = Driver::http();
    assert!(driver.exchange(b"GET / HTTP/1.1\r\nHost: loc").is_empty());
    assert_eq!(
        driver.session.next_deadline(),
        Some(driver.t0 + IDLE_TIMEOUT)
    );
    assert!(driver.sleep(IDLE_TIMEOUT - ms(1)).is_empty());
    assert!(!driver.session.is_finished());
    let output = driver.sleep(ms(1));
    assert_error(&parse_one(&output), Status::REQUEST_TIMEOUT, true);
    assert!(driver.hung_up());
}

#[test]
fn body_not_complete_within_the_idle_timeout_is_408() {
    let mut driver = Driver::http();
    let output = driver.exchange(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf");
    assert_eq!(
        output, b"",
        "a request is answered once its body is complete"
    );
    let output = driver.sleep(IDLE_TIMEOUT);
    assert_error(&parse_one(&output), Status::REQUEST_TIMEOUT, true);
    assert!(driver.hung_up());
}

#[test]
fn a_408_that_is_never_read_is_dropped_after_another_idle_period() {
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET / HTTP/1.1\r\nHost: t\r\n", driver.now);
    driver.now += IDLE_TIMEOUT;
    driver.session.handle_timers(driver.now);
    assert!(driver.session.wants_write());
    assert!(!driver.session.is_finished());
    driver.now += IDLE_TIMEOUT;
    driver.session.handle_timers(driver.now);
    assert!(driver.hung_up());
    assert!(!driver.session.wants_write());
    assert_eq!(driver.session.next_deadline(), None);
}

// GET and HEAD, and the fake DB's wait.

#[test]
fn get_is_answered_when_the_db_latency_has_passed_and_not_before() {
    let mut driver = Driver::http();
    let t0 = driver.t0;
    driver.session.receive(GET, t0);
    // While the DB works the session neither reads nor writes.
    assert!(driver.session.pending_output().is_empty());
    assert_eq!(driver.session.read_capacity(), 0);
    assert!(!driver.session.wants_read());
    assert!(!driver.session.wants_write());
    assert_eq!(driver.session.next_deadline(), Some(t0 + DB_LATENCY));
    // Waking early is harmless and answers nothing.
    driver.session.handle_timers(t0 + DB_LATENCY - ms(1));
    assert!(driver.session.pending_output().is_empty());
    assert_eq!(driver.session.next_deadline(), Some(t0 + DB_LATENCY));
    driver.now = t0 + DB_LATENCY;
    driver.session.handle_timers(driver.now);
    let response = parse_one(&driver.take_output());
    assert_page(&response, false);
    assert_eq!(response.header("Connection"), None);
    let mut names: Vec<&str> = response
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Content-Length",
            "Content-Type",
            "Date",
            "Server",
            "X-Worker"
        ]
    );
    // Persistent, and idle from the moment of the answer.
    assert!(!driver.session.is_finished());
    assert!(driver.session.wants_read());
    assert_eq!(
        driver.session.next_deadline(),
        Some(t0 + DB_LATENCY + IDLE_TIMEOUT)
    );
}

#[test]
fn head_has_the_same_headers_and_no_body() {
    let mut driver = Driver::http();
    let output = driver.exchange(HEAD);
    assert_eq!(driver.elapsed(), DB_LATENCY);
    let (response, rest) = parse_response(&output, true);
    assert!(
        rest.is_empty(),
        "HEAD got a body: {:?}",
        String::from_utf8_lossy(rest)
    );
    assert_page(&response, true);
    assert!(!driver.session.is_finished());
}

#[test]
fn a_query_string_on_the_root_is_the_root() {
    let mut driver = Driver::http();
    assert_page(
        &parse_one(&driver.exchange(b"GET /?page=1 HTTP/1.1\r\nHost: t\r\n\r\n")),
        false,
    );
}

#[test]
fn zero_db_latency_answers_at_once() {
    let mut driver = Driver::new(config_with_latency(Mode::Http, Duration::ZERO));
    driver.session.receive(GET, driver.now);
    assert_page(&parse_one(&driver.take_output()), false);
}

#[test]
fn head_of_a_missing_page_has_no_body_either() {
    // A body after a HEAD response would be read as the start of the next
    // response: on a persistent connection the client loses track.
    let mut driver = Driver::http();
    let mut requests = b"HEAD /missing HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    requests.extend_from_slice(GET);
    let output = driver.exchange(&requests);
    let (not_found, rest) = parse_response(&output, true);
    assert_eq!(not_found.status(), 404);
    assert!(not_found.body.is_empty());
    assert_page(&parse_one(rest), false);
}

// Keep-alive.

#[test]
fn http_1_0_closes_by_default() {
    let mut driver = Driver::http();
    let output = driver.exchange(b"GET / HTTP/1.0\r\n\r\n");
    let response = parse_one(&output);
    assert_page(&response, false);
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(driver.hung_up());
}

#[test]
fn http_1_0_with_keep_alive_stays_open_and_says_so() {
    let mut driver = Driver::http();
    for _ in 0..2 {
        let output = driver.exchange(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        let response = parse_one(&output);
        assert_page(&response, false);
        assert_eq!(response.header("Connection"), Some("keep-alive"));
        assert!(!driver.session.is_finished());
    }
    // The errors that keep the connection say it too.
    let output = driver.exchange(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let response = parse_one(&output);
    assert_eq!(response.status(), 404);
    assert_eq!(response.header("Connection"), Some("keep-alive"));
    assert!(!driver.session.is_finished());
}

#[test]
fn http_1_1_stays_open_unless_connection_close() {
    let mut driver = Driver::http();
    for _ in 0..3 {
        let response = parse_one(&driver.exchange(GET));
        assert_page(&response, false);
        assert_eq!(response.header("Connection"), None);
        assert!(!driver.session.is_finished());
    }
    let output = driver.exchange(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let response = parse_one(&output);
    assert_page(&response, false);
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(driver.hung_up());
}

#[test]
fn connection_close_wins_and_what_follows_it_is_ignored() {
    let mut driver = Driver::http();
    let mut requests =
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, close\r\n\r\n".to_vec();
    requests.extend_from_slice(GET);
    let response = parse_one(&driver.exchange(&requests));
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(driver.hung_up());
}

// Pipelining, splitting, bodies.

#[test]
fn pipelined_requests_are_answered_in_order_one_db_wait_after_the_other() {
    let mut driver = Driver::http();
    let t0 = driver.t0;
    let mut requests = GET.to_vec();
    requests.extend_from_slice(HEAD);
    requests.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    driver.session.receive(&requests, t0);
    for n in 1..=3 {
        let ready = t0 + DB_LATENCY * n;
        assert_eq!(driver.session.next_deadline(), Some(ready));
        driver.session.handle_timers(ready - ms(1));
        assert!(
            driver.session.pending_output().is_empty(),
            "answer {n} came early"
        );
        driver.now = ready;
        driver.session.handle_timers(ready);
        let output = driver.take_output();
        let (response, rest) = parse_response(&output, n == 2);
        assert!(rest.is_empty(), "more than one answer after DB wait {n}");
        assert_page(&response, n == 2);
        assert_eq!(driver.session.is_finished(), n == 3);
    }
}

#[test]
fn a_404_behind_a_get_waits_for_its_turn() {
    let mut driver = Driver::http();
    let mut requests = GET.to_vec();
    requests.extend_from_slice(b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n");
    driver.session.receive(&requests, driver.now);
    assert!(driver.session.pending_output().is_empty());
    let output = driver.settle();
    let responses = parse_responses(&output);
    assert_eq!(
        responses.iter().map(Response::status).collect::<Vec<_>>(),
        [200, 404]
    );
}

#[test]
fn requests_split_byte_by_byte_are_answered() {
    let mut requests = b"GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".to_vec();
    requests.extend_from_slice(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    requests.extend_from_slice(HEAD);
    let mut driver = Driver::http();
    let mut output = driver.send(&requests, 1);
    output.extend(driver.settle());
    let (get, rest) = parse_response(&output, false);
    let (post, rest) = parse_response(rest, false);
    let (head, rest) = parse_response(rest, true);
    assert_page(&get, false);
    assert_error(&post, Status::METHOD_NOT_ALLOWED, false);
    assert_page(&head, true);
    assert!(rest.is_empty());
    assert_eq!(driver.elapsed(), DB_LATENCY * 2);
}

#[test]
fn a_body_announced_by_content_length_is_discarded() {
    let mut driver = Driver::http();
    let mut requests =
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\nGET /x HTTP/1.1\r".to_vec();
    requests.extend_from_slice(GET);
    // The body arrives in pieces, the first one together with the head.
    let output = driver.send(&requests, 7);
    let mut all = output;
    all.extend(driver.settle());
    let responses = parse_responses(&all);
    assert_eq!(responses.len(), 2);
    assert_page(&responses[0], false);
    assert_page(&responses[1], false);
    // The 404 the body looks like was never answered.
    assert!(!driver.session.is_finished());
}

#[test]
fn http_stops_answering_while_the_client_does_not_read() {
    // Pipelined 404s need no DB, so a client that sends them and never
    // reads could make the output grow without end.
    const MISSING: &[u8] = b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut driver = Driver::http();
    let mut sent = 0;
    while driver.session.wants_read() {
        let capacity = driver.session.read_capacity();
        let count = capacity / MISSING.len();
        if count == 0 {
            break;
        }
        driver.session.receive(&MISSING.repeat(count), driver.now);
        sent += count;
    }
    let pending = driver.session.pending_output().len();
    assert!(
        pending > LIMIT_OUTPUT - 2 * http::RESPONSE_ROOM,
        "stopped reading at {pending} bytes of output"
    );
    assert!(
        pending <= LIMIT_OUTPUT,
        "the output bound holds, got {pending}"
    );
    assert_eq!(driver.session.read_capacity(), 0);
    // Once the client reads, the rest is answered, in order.
    let output = driver.settle();
    let responses = parse_responses(&output);
    assert_eq!(responses.len(), sent);
    assert!(responses.iter().all(|response| response.status() == 404));
    assert!(driver.session.wants_read());
}

// Idle timeout, shutdown, half-close.

#[test]
fn idle_between_requests_closes_silently() {
    let mut driver = Driver::http();
    assert_page(&parse_one(&driver.exchange(GET)), false);
    assert!(driver.sleep(IDLE_TIMEOUT - ms(1)).is_empty());
    assert!(!driver.session.is_finished());
    assert!(driver.sleep(ms(1)).is_empty());
    assert!(driver.hung_up());
    assert_eq!(driver.session.next_deadline(), None);
}

#[test]
fn a_connection_that_never_sends_closes_silently() {
    for mode in [Mode::Http, Mode::Echo] {
        let mut driver = Driver::new(config(mode));
        assert_eq!(
            driver.session.next_deadline(),
            Some(driver.t0 + IDLE_TIMEOUT)
        );
        assert!(driver.sleep(IDLE_TIMEOUT).is_empty());
        assert!(driver.hung_up());
    }
}

#[test]
fn shutdown_while_idle_finishes_at_once() {
    for mode in [Mode::Http, Mode::Echo] {
        let mut driver = Driver::new(config(mode));
        driver.session.begin_shutdown(driver.now);
        assert!(driver.hung_up());
        assert!(driver.session.pending_output().is_empty());
    }
    // Also between two requests of a persistent connection.
    let mut driver = Driver::http();
    assert_page(&parse_one(&driver.exchange(GET)), false);
    driver.session.begin_shutdown(driver.now);
    assert!(driver.hung_up());
}

#[test]
fn shutdown_during_a_db_query_still_answers_with_connection_close() {
    let mut driver = Driver::http();
    let mut requests = GET.to_vec();
    requests.extend_from_slice(GET); // in flight behind it: not answered
    driver.session.receive(&requests, driver.now);
    driver.now += ms(100);
    driver.session.begin_shutdown(driver.now);
    assert!(!driver.session.is_finished());
    assert!(driver.session.pending_output().is_empty());
    let output = driver.settle();
    assert_eq!(driver.elapsed(), DB_LATENCY);
    let response = parse_one(&output);
    assert_page(&response, false);
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(driver.hung_up());
}

#[test]
fn shutdown_sends_what_is_pending_first() {
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n", driver.now);
    driver.session.begin_shutdown(driver.now);
    assert!(!driver.session.is_finished());
    // Queued as keep-alive, it now says the connection closes after it.
    assert_error(&parse_one(&driver.take_output()), Status::NOT_FOUND, true);
    assert!(driver.hung_up());
}

#[test]
fn eof_after_a_complete_request_still_gets_the_answer() {
    let mut driver = Driver::http();
    let mut requests = GET.to_vec();
    requests.extend_from_slice(HEAD);
    driver.session.receive(&requests, driver.now);
    driver.eof();
    assert!(!driver.session.is_finished());
    let output = driver.settle();
    let (get, rest) = parse_response(&output, false);
    let (head, rest) = parse_response(rest, true);
    assert_page(&get, false);
    assert_page(&head, true);
    assert_eq!(get.header("Connection"), None, "more was asked after it");
    assert_eq!(head.header("Connection"), Some("close"), "the last one");
    assert!(rest.is_empty());
    assert!(driver.hung_up());
}

#[test]
fn eof_in_the_middle_of_a_request_closes_without_answer() {
    for partial in [
        &b""[..],
        b"GET / HTTP/1.1\r\nHost:",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nabc",
    ] {
        let mut driver = Driver::http();
        let output = driver.send(partial, usize::MAX);
        driver.eof();
        let mut all = output;
        all.extend(driver.settle());
        // Not even the POST's 405: it is answered once its body is complete.
        assert_eq!(all, b"", "{:?}", String::from_utf8_lossy(partial));
        assert!(driver.hung_up());
    }
}

// HTTP, hardened: the request deadline (slowloris), Host, chunked bodies,
// framing, HEAD errors, `Connection: close` on the last response, blank
// lines, and the output bound.

/// One byte per second, as a slowloris client sends.
fn trickle(driver: &mut Driver, bytes: &[u8]) -> Vec<u8> {
    let mut output = Vec::new();
    for byte in bytes {
        if driver.hung_up() || !driver.session.wants_read() {
            break;
        }
        driver.session.receive(&[*byte], driver.now);
        output.extend(driver.sleep(Duration::from_secs(1)));
    }
    output
}

#[test]
fn a_trickled_request_gets_408_at_exactly_the_deadline_of_its_first_byte() {
    let mut driver = Driver::http();
    // Silence before the first byte does not count against the request.
    driver.sleep(ms(4000));
    let first_byte = driver.now;
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_vec();
    request.resize(100, b'a');
    let output = trickle(&mut driver, &request[..9]);
    assert_eq!(output, b"", "nothing yet after 9 s of a 10 s deadline");
    // The byte at 9 s does not move the deadline: due at 10 s, not 19 s.
    driver.session.receive(&request[9..10], driver.now);
    assert_eq!(
        driver.session.next_deadline(),
        Some(first_byte + IDLE_TIMEOUT)
    );
    driver.now = first_byte + IDLE_TIMEOUT - ms(1);
    driver.session.handle_timers(driver.now);
    assert_eq!(driver.take_output(), b"", "not a millisecond early");
    driver.now = first_byte + IDLE_TIMEOUT;
    driver.session.handle_timers(driver.now);
    assert_error(
        &parse_one(&driver.take_output()),
        Status::REQUEST_TIMEOUT,
        true,
    );
    assert!(driver.hung_up());
}

#[test]
fn a_trickled_body_gets_408_too() {
    let mut driver = Driver::http();
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    driver.session.receive(head, driver.now);
    let started = driver.now;
    let output = trickle(&mut driver, &[b'a'; 100]);
    assert_error(&parse_one(&output), Status::REQUEST_TIMEOUT, true);
    assert_eq!(driver.elapsed(), IDLE_TIMEOUT, "{:?}", driver.now - started);
}

#[test]
fn the_deadline_starts_anew_for_each_request() {
    let mut driver = Driver::http();
    for _ in 0..3 {
        // Each request takes 9 s to arrive: fine, as each has its own 10 s
        // (18 s of one deadline would not be).
        driver.session.receive(&GET[..10], driver.now);
        assert_eq!(driver.sleep(ms(9000)), b"");
        driver.session.receive(&GET[10..], driver.now);
        assert_page(&parse_one(&driver.settle()), false);
    }
}

#[test]
fn a_head_trickled_into_an_error_has_no_body() {
    let mut driver = Driver::http();
    let output = trickle(
        &mut driver,
        b"HEAD / HTTP/1.1\r\nHost: x\r\nX: aaaaaaaaaaaaaaaa",
    );
    let (response, rest) = parse_response(&output, true);
    assert_eq!(response.status(), 408);
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(rest.is_empty(), "no body after a 408 to HEAD");
}

#[test]
fn error_answers_to_head_have_no_body() {
    let long = "a".repeat(LIMIT_HEAD_BYTES);
    for (request, status) in [
        (format!("HEAD / HTTP/1.1\r\nX: {long}\r\n\r\n"), 431),
        (
            format!(
                "HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                LIMIT_BODY_BYTES + 1
            ),
            413,
        ),
        (
            "HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_owned(),
            501,
        ),
        ("HEAD / HTTP/1.1\r\n\r\n".to_owned(), 400),
        (
            "HEAD / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_owned(),
            400,
        ),
        (
            "HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_owned(),
            400,
        ),
    ] {
        let mut driver = Driver::http();
        let output = driver.exchange(request.as_bytes());
        let (response, rest) = parse_response(&output, true);
        assert_eq!(response.status(), status, "{request:?}");
        assert_ne!(
            response.header("Content-Length"),
            Some("0"),
            "says the GET length"
        );
        assert_eq!(response.header("Connection"), Some("close"));
        assert!(rest.is_empty(), "a body after {status} to HEAD");
        assert!(driver.hung_up());
    }
}

#[test]
fn http_1_1_needs_exactly_one_valid_host() {
    for request in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: a:b\r\n\r\n",
    ] {
        assert_closes_with(request, Status::BAD_REQUEST);
    }
    for request in [
        &b"GET / HTTP/1.1\r\nHost: localhost:9090\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nhost: [::1]:9090\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ] {
        assert_page(&parse_one(&Driver::http().exchange(request)), false);
    }
}

#[test]
fn a_chunked_body_is_decoded_and_discarded_and_the_connection_stays_in_sync() {
    let mut requests = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-Field: yes\r\n\r\n"
        .to_vec();
    requests.extend_from_slice(
        b"GET /y HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
    );
    requests.extend_from_slice(GET);
    for chunk in [1, 3, usize::MAX] {
        let mut driver = Driver::http();
        let mut output = driver.send(&requests, chunk);
        output.extend(driver.settle());
        let statuses: Vec<u16> = parse_responses(&output)
            .iter()
            .map(Response::status)
            .collect();
        assert_eq!(statuses, [404, 404, 200], "in pieces of {chunk}");
        assert!(driver.session.wants_read(), "still open");
    }
}

#[test]
fn a_chunked_body_of_exactly_1_mib_is_taken_and_one_byte_more_is_413() {
    let body = |size: usize| {
        let mut bytes =
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        bytes.extend(format!("{size:x}\r\n").bytes());
        bytes.resize(bytes.len() + size, b'z');
        bytes.extend_from_slice(b"\r\n0\r\n\r\n");
        bytes
    };
    let mut driver = Driver::http();
    let mut output = driver.send(&body(LIMIT_BODY_BYTES as usize), 8192);
    output.extend(driver.settle());
    assert_error(&parse_one(&output), Status::NOT_FOUND, false);
    assert!(driver.session.wants_read());
    let mut driver = Driver::http();
    let output = driver.send(&body(LIMIT_BODY_BYTES as usize + 1), 8192);
    assert_error(&parse_one(&output), Status::CONTENT_TOO_LARGE, true);
}

#[test]
fn ambiguous_or_unknown_framing_is_refused() {
    const TE: &str = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:";
    for (request, status) in [
        // Both ways of framing a body: request smuggling, 400.
        (
            format!("{TE} chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
            Status::BAD_REQUEST,
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_owned(),
            Status::BAD_REQUEST,
        ),
        // Chunked in HTTP/1.0, which has no chunked coding.
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_owned(),
            Status::BAD_REQUEST,
        ),
        // Chunked not last, or twice: the body's end cannot be known.
        (format!("{TE} chunked, gzip\r\n\r\n"), Status::BAD_REQUEST),
        (format!("{TE} gzip\r\n\r\n"), Status::BAD_REQUEST),
        (
            format!("{TE} chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Status::BAD_REQUEST,
        ),
        (format!("{TE}\r\n\r\n"), Status::BAD_REQUEST),
        // Framed fine, but a coding we do not decode.
        (
            format!("{TE} gzip, chunked\r\n\r\n"),
            Status::NOT_IMPLEMENTED,
        ),
        (
            format!("{TE} x-custom\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Status::NOT_IMPLEMENTED,
        ),
        // Bad chunk sizes and terminators.
        (format!("{TE} chunked\r\n\r\nzz\r\n"), Status::BAD_REQUEST),
        (
            format!("{TE} chunked\r\n\r\n5\r\nhelloXX"),
            Status::BAD_REQUEST,
        ),
        (
            format!("{TE} chunked\r\n\r\n5\nhello\r\n"),
            Status::BAD_REQUEST,
        ),
        // Content-Length that is not one plain number.
        (
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello".to_owned(),
            Status::BAD_REQUEST,
        ),
        (
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello".to_owned(),
            Status::BAD_REQUEST,
        ),
    ] {
        let mut driver = Driver::http();
        let output = driver.exchange(request.as_bytes());
        assert_error(&parse_one(&output), status, true);
        assert!(driver.hung_up(), "{request:?}");
    }
    // A list of one repeated value is one value (RFC 9110 §8.6).
    let output =
        Driver::http().exchange(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nhi");
    assert_error(&parse_one(&output), Status::NOT_FOUND, false);
}

#[test]
fn blank_lines_before_a_request_are_ignored() {
    let mut requests = b"\r\n\r\n\n".to_vec();
    requests.extend_from_slice(GET);
    requests.extend_from_slice(b"\r\n");
    requests.extend_from_slice(GET);
    let mut driver = Driver::http();
    let responses = parse_responses(&driver.exchange(&requests));
    assert_eq!(responses.len(), 2);
    // A stray CRLF after a request and then silence is not a started
    // request: the connection closes silently, without a 408.
    let mut driver = Driver::http();
    let mut request = GET.to_vec();
    request.extend_from_slice(b"\r\n");
    assert_page(&parse_one(&driver.exchange(&request)), false);
    assert_eq!(driver.sleep(IDLE_TIMEOUT * 2), b"");
    assert!(driver.hung_up());
}

#[test]
fn endless_blank_lines_do_not_hold_the_connection() {
    let mut driver = Driver::http();
    for _ in 0..20 {
        if driver.session.is_finished() {
            break;
        }
        driver.session.receive(b"\r\n", driver.now);
        driver.sleep(Duration::from_secs(1));
    }
    assert!(
        driver.session.is_finished(),
        "still open after {:?}",
        driver.elapsed()
    );
    assert_eq!(driver.elapsed(), IDLE_TIMEOUT);
}

#[test]
fn a_queued_response_says_close_when_eof_or_shutdown_follows() {
    // EOF after the request: the queued 404 is the last response.
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", driver.now);
    driver.eof();
    let response = parse_one(&driver.take_output());
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(driver.hung_up());
    // HTTP/1.0 keep-alive: the `keep-alive` line becomes `close`.
    let mut driver = Driver::http();
    driver.session.receive(
        b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        driver.now,
    );
    driver.session.begin_shutdown(driver.now);
    let response = parse_one(&driver.take_output());
    assert_eq!(response.header("Connection"), Some("close"));
    // Once the line has gone out it cannot change: the next part of the
    // response is sent as it was, and the connection just closes.
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", driver.now);
    let length = driver.session.pending_output().len();
    let mut sent = driver.session.pending_output()[..length - 10].to_vec();
    driver.session.consume_output(length - 10, driver.now);
    driver.eof();
    sent.extend(driver.take_output());
    assert_eq!(parse_one(&sent).header("Connection"), None);
    assert!(driver.hung_up());
    // Part of the head went out, but not the place of the Connection
    // line: it is still added, where it belongs.
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", driver.now);
    let mut sent = driver.session.pending_output()[..10].to_vec();
    driver.session.consume_output(10, driver.now);
    driver.eof();
    sent.extend(driver.take_output());
    assert_eq!(parse_one(&sent).header("Connection"), Some("close"));
}

#[test]
fn http_reads_again_at_exactly_one_response_of_room() {
    let mut driver = Driver::http();
    let request = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n";
    while driver.session.wants_read() {
        driver.session.receive(request, driver.now);
    }
    // The client reads until exactly RESPONSE_ROOM bytes are free...
    let room = |driver: &Driver| LIMIT_OUTPUT - driver.session.pending_output().len();
    let short = http::RESPONSE_ROOM - room(&driver);
    driver.session.consume_output(short - 1, driver.now);
    assert_eq!(room(&driver), http::RESPONSE_ROOM - 1);
    assert_eq!(driver.session.read_capacity(), 0, "one byte short");
    driver.session.consume_output(1, driver.now);
    assert_eq!(room(&driver), http::RESPONSE_ROOM);
    assert!(driver.session.read_capacity() > 0, "room for one response");
    // ...and a request that comes now is answered at once.
    let before = driver.session.pending_output().len();
    driver.session.receive(request, driver.now);
    assert!(driver.session.pending_output().len() > before, "answered");
}

/// Fills the output with pipelined 404s until the session stops reading.
fn fill_output(driver: &mut Driver) {
    while driver.session.wants_read() {
        driver
            .session
            .receive(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", driver.now);
    }
}

#[test]
fn a_request_deadline_with_the_output_full_drops_a_client_that_does_not_read() {
    let mut driver = Driver::http();
    // Complete requests and a partial one in one read: the session answers
    // until its output is full and leaves the rest unparsed.
    let mut requests = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    requests.extend_from_slice(b"GET /x HTTP/1.1\r\nHo");
    let capacity = driver.session.read_capacity();
    driver.session.receive(&requests[..capacity], driver.now);
    assert_eq!(driver.session.read_capacity(), 0);
    let pending = driver.session.pending_output().len();
    driver.now += IDLE_TIMEOUT;
    driver.session.handle_timers(driver.now);
    assert!(driver.hung_up(), "dropped, not kept");
    assert!(
        !driver.session.wants_write(),
        "and no 408 queued for nobody"
    );
    assert!(pending + http::RESPONSE_ROOM > LIMIT_OUTPUT);
}

#[test]
fn a_request_deadline_with_exactly_one_response_of_room_still_answers_408() {
    let mut driver = Driver::http();
    fill_output(&mut driver);
    let room = LIMIT_OUTPUT - driver.session.pending_output().len();
    driver
        .session
        .consume_output(http::RESPONSE_ROOM - room, driver.now);
    driver.session.receive(b"GET /x HTTP/1.1\r\nHo", driver.now);
    let before = driver.session.pending_output().len();
    assert_eq!(before + http::RESPONSE_ROOM, LIMIT_OUTPUT);
    driver.now += IDLE_TIMEOUT;
    driver.session.handle_timers(driver.now);
    assert!(!driver.session.is_finished());
    // The output starts in the middle of a response (some was consumed);
    // the last one is the 408.
    let output = driver.take_output();
    let start = output
        .windows(9)
        .rposition(|window| window == b"HTTP/1.1 ")
        .expect("a response");
    assert_error(&parse_one(&output[start..]), Status::REQUEST_TIMEOUT, true);
}

#[test]
fn an_unfinished_head_of_exactly_8_kib_waits_and_one_byte_more_is_431() {
    let mut head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Long: ".to_vec();
    head.resize(LIMIT_HEAD_BYTES, b'a');
    let mut driver = Driver::http();
    driver.session.receive(&head, driver.now);
    assert_eq!(driver.take_output(), b"", "8 KiB, not complete yet: wait");
    driver.session.receive(b"a", driver.now);
    assert_error(
        &parse_one(&driver.take_output()),
        Status::HEADERS_TOO_LARGE,
        true,
    );
}

#[test]
fn the_output_bound_holds_while_pipelined_responses_wait() {
    // Every response this engine writes fits in the room it keeps.
    let mut driver = Driver::http();
    driver.session.receive(
        b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        driver.now,
    );
    let response = driver.session.pending_output().len();
    assert!(response < http::RESPONSE_ROOM / 2, "{response}");
    // At the edge: with exactly RESPONSE_ROOM free a request is taken,
    // with one byte less it is not.
    let mut driver = Driver::echo();
    driver
        .session
        .receive(&vec![b'x'; LIMIT_OUTPUT - 1], driver.now);
    assert_eq!(driver.session.read_capacity(), 1);
    let mut driver = Driver::http();
    while driver.session.pending_output().len() + 2 * http::RESPONSE_ROOM <= LIMIT_OUTPUT {
        driver
            .session
            .receive(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", driver.now);
    }
    let pending = driver.session.pending_output().len();
    assert_eq!(
        driver.session.wants_read(),
        pending + http::RESPONSE_ROOM <= LIMIT_OUTPUT,
        "{pending}"
    );
}

// Limits at their exact edge: the last value accepted, the first refused.

#[test]
fn echo_takes_exactly_the_output_limit() {
    let mut driver = Driver::echo();
    assert_eq!(driver.session.read_capacity(), LIMIT_OUTPUT);
    driver
        .session
        .receive(&vec![b'x'; LIMIT_OUTPUT], driver.now);
    assert_eq!(driver.session.read_capacity(), 0);
    assert!(!driver.session.wants_read());
    driver.session.consume_output(1, driver.now);
    assert_eq!(driver.session.read_capacity(), 1);
}

#[test]
fn http_takes_input_up_to_two_heads() {
    let driver = Driver::http();
    assert_eq!(driver.session.read_capacity(), 2 * LIMIT_HEAD_BYTES);
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET / HTTP/1.1\r\nHost:", driver.now);
    assert_eq!(driver.session.read_capacity(), 2 * LIMIT_HEAD_BYTES - 21);
}

#[test]
fn a_head_of_one_byte_over_8_kib_is_431_even_when_complete() {
    let prefix = "GET / HTTP/1.1\r\nHost: t\r\nX-Long: ";
    let fill = LIMIT_HEAD_BYTES + 1 - prefix.len() - 4;
    let request = format!("{prefix}{}\r\n\r\n", "a".repeat(fill));
    assert_eq!(request.len(), LIMIT_HEAD_BYTES + 1);
    assert_closes_with(request.as_bytes(), Status::HEADERS_TOO_LARGE);
}

#[test]
fn shutdown_while_a_body_arrives_closes_without_answer() {
    let mut driver = Driver::http();
    driver.session.receive(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
        driver.now,
    );
    driver.session.begin_shutdown(driver.now);
    assert_eq!(driver.take_output(), b"");
    assert!(driver.hung_up());
}

#[test]
fn nothing_more_is_read_once_the_peer_closed_or_the_session_closes() {
    // EOF: the peer sends nothing more, so nothing more is read.
    let mut driver = Driver::echo();
    driver.session.receive(b"abc", driver.now);
    driver.eof();
    assert_eq!(driver.session.read_capacity(), 0);
    let mut driver = Driver::http();
    driver.eof();
    assert_eq!(driver.session.read_capacity(), 0);
    // Closing after an error, with the answer still unsent.
    let mut driver = Driver::http();
    driver.session.receive(b"GARBAGE\r\n\r\n", driver.now);
    assert!(driver.session.wants_write() && !driver.session.is_finished());
    assert_eq!(driver.session.read_capacity(), 0);
    // Abandoned at the idle timeout while output was still unsent.
    let mut driver = Driver::echo();
    driver.session.receive(b"abc", driver.now);
    driver.now += IDLE_TIMEOUT;
    driver.session.handle_timers(driver.now);
    assert!(driver.hung_up());
    assert!(!driver.session.wants_write());
    assert_eq!(driver.session.read_capacity(), 0);
}

#[test]
fn input_after_closing_and_empty_reads_change_nothing() {
    // A driver that reads anyway after shutdown began gets no echo.
    let mut driver = Driver::echo();
    driver.session.begin_shutdown(driver.now);
    driver.session.receive(b"late", driver.now);
    assert_eq!(driver.session.pending_output(), b"");
    assert!(driver.hung_up());
    // An empty read is not activity: the idle deadline stays.
    let mut driver = Driver::echo();
    let deadline = driver.session.next_deadline();
    driver.now += ms(5000);
    driver.session.receive(b"", driver.now);
    assert_eq!(driver.session.next_deadline(), deadline);
}

// Echo mode.

#[test]
fn echo_sends_back_every_byte_in_order() {
    let mut driver = Driver::echo();
    let mut echoed = Vec::new();
    for piece in [
        &b"hello"[..],
        b" ",
        b"world\r\n",
        b"\x00\xff",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        driver.session.receive(piece, driver.now);
        echoed.extend(driver.take_output());
    }
    assert_eq!(echoed, b"hello world\r\n\x00\xffGET / HTTP/1.1\r\n\r\n");
    assert!(!driver.session.is_finished());
    assert_eq!(driver.session.read_capacity(), LIMIT_OUTPUT);
}

#[test]
fn echo_half_close_flushes_then_finishes() {
    let mut driver = Driver::echo();
    driver.session.receive(b"last words", driver.now);
    driver.eof();
    assert_eq!(driver.session.read_capacity(), 0);
    assert!(
        !driver.session.is_finished(),
        "finished with output pending"
    );
    assert!(driver.session.wants_write());
    driver.session.consume_output(5, driver.now);
    assert!(!driver.session.is_finished());
    assert_eq!(driver.take_output(), b"words");
    assert!(driver.hung_up());
}

#[test]
fn echo_shutdown_flushes_then_finishes() {
    let mut driver = Driver::echo();
    driver.session.receive(b"pending", driver.now);
    driver.session.begin_shutdown(driver.now);
    assert!(!driver.session.wants_read());
    assert!(!driver.session.is_finished());
    assert_eq!(driver.take_output(), b"pending");
    assert!(driver.hung_up());
}

#[test]
fn echo_backpressure_stops_reading_at_the_output_limit() {
    let mut driver = Driver::echo();
    // A client that writes 1 MiB and reads nothing.
    let mut taken = 0;
    while driver.session.wants_read() {
        let count = driver.session.read_capacity().min(3000);
        driver.session.receive(&vec![b'x'; count], driver.now);
        taken += count;
        assert!(driver.session.pending_output().len() <= LIMIT_OUTPUT);
    }
    assert_eq!(taken, LIMIT_OUTPUT);
    assert_eq!(driver.session.read_capacity(), 0);
    assert_eq!(driver.session.pending_output().len(), LIMIT_OUTPUT);
    // The client reads a little: there is room for exactly that much.
    driver.session.consume_output(1000, driver.now);
    assert_eq!(driver.session.read_capacity(), 1000);
    driver.session.consume_output(LIMIT_OUTPUT, driver.now);
    assert_eq!(driver.session.read_capacity(), LIMIT_OUTPUT);
}

#[test]
fn echo_idle_timeout_counts_reading_as_activity() {
    let mut driver = Driver::echo();
    driver.session.receive(&[b'x'; 100], driver.now);
    // The client reads slowly but steadily: not idle.
    for _ in 0..5 {
        driver.now += IDLE_TIMEOUT - ms(1);
        driver.session.handle_timers(driver.now);
        assert!(!driver.session.is_finished());
        driver.session.consume_output(10, driver.now);
    }
    // Then it stops reading: dropped after one idle period.
    driver.now += IDLE_TIMEOUT;
    driver.session.handle_timers(driver.now);
    assert!(driver.hung_up());
    assert!(!driver.session.wants_write());
}

// Properties over arbitrary input.

/// Pieces of request that make random input hit the interesting paths
/// (pipelines, bodies, errors) far more often than random bytes would.
fn http_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(GET.to_vec()),
        Just(HEAD.to_vec()),
        Just(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec()),
        Just(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        Just(b"HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        Just(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".to_vec()),
        Just(b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec()),
        Just(b"Content-Length: 20\r\n".to_vec()),
        Just(b"Content-Length: 2000000\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
        Just(b"5;x=y\r\nhello\r\n".to_vec()),
        Just(b"0\r\nTrailer: t\r\n\r\n".to_vec()),
        Just(b"0\r\n\r\n".to_vec()),
        Just(b"Connection: close\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(vec![b'a'; 9000]),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Proptest's regression files would land outside this module's folder;
/// a failing case is printed (shrunk) in the test output anyway.
fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Cycles through `sizes` (never empty, every entry at least 1).
struct Sizes<'a> {
    sizes: &'a [usize],
    next: usize,
}

impl Sizes<'_> {
    fn pick(&mut self) -> usize {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        size
    }
}

/// Pseudo-random bytes from a seed (xorshift), for inputs too large for
/// proptest to generate byte by byte.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Whatever arrives, however split, whatever pauses the client makes and
    /// however slowly it reads: no panic, pending output stays bounded, and
    /// after EOF the session finishes in a bounded number of steps.
    #[test]
    fn http_never_panics_and_always_finishes(
        fragments in prop::collection::vec(http_fragment(), 0..24),
        reads in prop::collection::vec(1..2000usize, 1..8),
        writes in prop::collection::vec(1..5000usize, 1..8),
        pauses in prop::collection::vec(prop_oneof![4 => Just(0u64), 1 => 0..25_000u64], 1..8),
    ) {
        let input = fragments.concat();
        let mut driver = Driver::http();
        let (mut reads, mut writes) = (Sizes { sizes: &reads, next: 0 }, Sizes { sizes: &writes, next: 0 });
        let mut pauses = pauses.iter().cycle();
        let mut rest = &input[..];
        let mut output = Vec::new();
        let mut eof_sent = false;
        // Every read or write moves at least a byte; the other steps (EOF,
        // timers) come at most a few per request, and a request takes more
        // than 8 bytes. So the loop ends if the wake-ups and the output stay
        // within these bounds.
        let max_wakes = input.len() / 8 + 4;
        let max_output = 512 * max_wakes;
        let mut wakes = 0;
        while !driver.session.is_finished() {
            prop_assert!(wakes <= max_wakes, "{} wake-ups for {} bytes", wakes, input.len());
            prop_assert!(output.len() <= max_output, "{} bytes of output", output.len());
            prop_assert!(driver.session.pending_output().len() <= LIMIT_OUTPUT);
            if driver.session.wants_write() {
                let count = writes.pick().min(driver.session.pending_output().len());
                output.extend_from_slice(&driver.session.pending_output()[..count]);
                driver.session.consume_output(count, driver.now);
                continue;
            }
            let capacity = driver.session.read_capacity();
            if capacity > 0 && !rest.is_empty() {
                let count = reads.pick().min(capacity).min(rest.len());
                driver.session.receive(&rest[..count], driver.now);
                rest = &rest[count..];
                output.extend(driver.sleep(ms(*pauses.next().unwrap_or(&0))));
            } else if capacity > 0 && !eof_sent {
                driver.eof();
                eof_sent = true;
            } else {
                driver.wake();
                wakes += 1;
            }
        }
        prop_assert!(output.is_empty() || output.starts_with(b"HTTP/1.1 "));
        prop_assert_eq!(driver.session.next_deadline(), None);
    }

    /// Echo sends back exactly what came in, however it is split on the way
    /// in and out, and never holds more than LIMIT_OUTPUT.
    #[test]
    fn echo_output_equals_input(
        head in prop::collection::vec(any::<u8>(), 0..512),
        seed in any::<u64>(),
        noise_len in prop_oneof![Just(0usize), 0..200_000usize],
        reads in prop::collection::vec(1..100_000usize, 1..8),
        writes in prop::collection::vec(1..100_000usize, 1..8),
        write_first in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let mut input = head;
        input.extend(noise(seed, noise_len));
        let mut driver = Driver::echo();
        let (mut reads, mut writes) = (Sizes { sizes: &reads, next: 0 }, Sizes { sizes: &writes, next: 0 });
        let mut write_first = write_first.iter().cycle();
        let mut rest = &input[..];
        let mut output = Vec::new();
        let mut eof_sent = false;
        let mut steps = 0;
        while !driver.session.is_finished() {
            // Each step but the EOF moves at least one byte in or out.
            steps += 1;
            prop_assert!(steps <= 2 * input.len() + 1, "not finished after {} steps", steps);
            let capacity = driver.session.read_capacity();
            let can_read = capacity > 0 && !rest.is_empty();
            if driver.session.wants_write() && (!can_read || *write_first.next().unwrap_or(&true)) {
                let count = writes.pick().min(driver.session.pending_output().len());
                output.extend_from_slice(&driver.session.pending_output()[..count]);
                driver.session.consume_output(count, driver.now);
            } else if can_read {
                let count = reads.pick().min(capacity).min(rest.len());
                driver.session.receive(&rest[..count], driver.now);
                rest = &rest[count..];
            } else if !eof_sent {
                prop_assert!(rest.is_empty(), "read_capacity 0 with nothing to write");
                driver.eof();
                eof_sent = true;
            } else {
                prop_assert!(false, "stuck: nothing to read or write, not finished");
            }
            prop_assert!(driver.session.pending_output().len() <= LIMIT_OUTPUT);
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(output.len(), input.len());
        prop_assert!(output == input, "the echo differs from the input");
    }
}

/// Files and axum modes through the engine.
mod apps;

// Lingering close (RFC 9112, section 9.6).

/// A POST of `body_length` bytes, head only.
fn post_head(body_length: u64) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: {body_length}\r\n\r\n").into_bytes()
}

#[test]
fn a_413_lingers_discards_the_rest_of_the_body_and_closes_at_the_clients_eof() {
    let mut driver = Driver::http();
    let output = driver.exchange(&post_head(3_000_000));
    assert_error(&parse_one(&output), Status::CONTENT_TOO_LARGE, true);
    assert!(driver.session.is_lingering(), "not closed: lingering");
    assert!(driver.session.take_half_close(), "shut down writing now");
    assert!(!driver.session.take_half_close(), "and only once");
    // The whole 3 MB body comes in and is thrown away, answering nothing.
    let echoed = driver.send(&vec![b'x'; 3_000_000], 65_536);
    assert!(echoed.is_empty(), "{} bytes of output", echoed.len());
    assert!(
        !driver.session.is_finished(),
        "waiting for the client's EOF"
    );
    driver.eof();
    assert!(driver.session.is_finished());
    assert_eq!(driver.elapsed(), Duration::ZERO, "no wait at all");
}

#[test]
fn lingering_ends_after_two_seconds_of_the_fake_clock() {
    let mut driver = Driver::http();
    driver.exchange(b"GARBAGE\r\n\r\n");
    assert!(driver.session.take_half_close());
    let until = driver.now + ms(2000);
    assert_eq!(driver.session.next_deadline(), Some(until));
    driver.now = until - ms(1);
    driver.session.handle_timers(driver.now);
    assert!(!driver.session.is_finished(), "not a millisecond early");
    driver
        .session
        .receive(b"more of the broken request", driver.now);
    assert_eq!(
        driver.session.next_deadline(),
        Some(until),
        "input does not extend it"
    );
    driver.now = until;
    driver.session.handle_timers(driver.now);
    assert!(driver.session.is_finished());
    assert_eq!(driver.session.next_deadline(), None);
}

#[test]
fn lingering_ends_after_16_mib_of_input() {
    let mut driver = Driver::http();
    driver.exchange(&post_head(LIMIT_BODY_BYTES + 1));
    assert!(driver.session.is_lingering());
    let chunk = vec![b'x'; 65_536];
    for _ in 0..256 {
        driver.session.receive(&chunk, driver.now);
    }
    assert!(!driver.session.is_finished(), "16 MiB exactly are allowed");
    driver.session.receive(b"x", driver.now);
    assert!(driver.session.is_finished(), "one byte more is not");
}

#[test]
fn a_clean_close_does_not_linger() {
    // The client said it is done: nothing more can be on its way.
    for request in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let mut driver = Driver::http();
        driver.exchange(request);
        assert!(driver.session.is_finished(), "{request:?}");
        assert!(!driver.session.take_half_close());
    }
    // Nor does a shutdown between requests.
    let mut driver = Driver::http();
    driver.exchange(GET);
    driver.session.begin_shutdown(driver.now);
    assert!(driver.session.is_finished());
}

#[test]
fn a_408_does_not_linger() {
    let mut driver = Driver::http();
    driver
        .session
        .receive(b"GET / HTTP/1.1\r\nHost: slo", driver.now);
    let output = driver.sleep(IDLE_TIMEOUT);
    assert_error(&parse_one(&output), Status::REQUEST_TIMEOUT, true);
    assert!(
        driver.session.is_finished(),
        "the trickler gets no more time"
    );
    assert!(!driver.session.take_half_close());
}

#[test]
fn a_request_cut_short_by_connection_close_lingers_for_what_follows() {
    let mut driver = Driver::http();
    let mut input = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec();
    input.extend_from_slice(GET); // pipelined after the close: never read
    driver.exchange(&input);
    assert!(driver.session.is_lingering());
}
