//! Files and axum modes through the engine: bodies larger than the output
//! bound come in pieces, in order with pipelined requests, and a file that
//! shrinks while it is sent ends only its connection.

use std::fs;

use super::*;
use crate::sendfile::FILE_CHUNK;

const BIG: usize = 300_000;

fn pattern(length: usize) -> Vec<u8> {
    (0..length).map(|index| (index % 251) as u8).collect()
}

/// A document root with `big.bin` (several times the output bound) and
/// `small.css`; the temp dir lives as long as the returned guard.
fn files_driver() -> (tempfile::TempDir, Driver) {
    let dir = tempfile::tempdir().expect("a temp dir");
    fs::write(dir.path().join("big.bin"), pattern(BIG)).expect("write");
    fs::write(dir.path().join("small.css"), "p {}").expect("write");
    let root = std::sync::Arc::new(crate::files::Root::open(dir.path()).expect("a root"));
    let app = crate::app::FileServer { root };
    (dir, Driver::new(http_app(app, true)))
}

/// Takes the output `chunk` bytes at a time, like a slow socket, checking
/// the bound after every step, until the session has nothing more to send.
fn drain_slowly(driver: &mut Driver, chunk: usize) -> Vec<u8> {
    let mut output = Vec::new();
    while driver.session.wants_write() {
        let pending = driver.session.pending_output().len();
        assert!(pending <= LIMIT_OUTPUT, "{pending} buffered");
        let file = driver
            .session
            .pending_file()
            .map_or(0, |range| range.length);
        assert!(file <= FILE_CHUNK, "{file} bytes of file in one send");
        let piece = driver.peek_output(chunk);
        driver.session.consume_output(piece.len(), driver.now);
        output.extend(piece);
    }
    output
}

#[test]
fn a_big_file_is_sent_in_pieces_within_the_bound_then_the_next_request() {
    let (_dir, mut driver) = files_driver();
    driver.session.receive(
        b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\nGET /small.css HTTP/1.1\r\nHost: t\r\n\r\n",
        driver.now,
    );
    let output = drain_slowly(&mut driver, 10_000);
    let responses = parse_responses(&output);
    assert_eq!(responses.len(), 2);
    let (big, css) = (&responses[0], &responses[1]);
    assert_eq!(big.status(), 200);
    assert_eq!(big.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(big.header("Content-Length"), Some("300000"));
    assert_eq!(big.header("Connection"), Some("keep-alive"));
    assert!(big.body == pattern(BIG), "the big body differs");
    assert_eq!(css.header("Content-Type"), Some("text/css"));
    assert_eq!(css.body, b"p {}");
    assert!(driver.session.wants_read(), "keep-alive: ready for more");
}

#[test]
fn a_big_file_before_a_close_is_sent_whole() {
    // HTTP/1.0: the connection closes after this response, but only once
    // its whole body, not just the first output's worth, has gone out.
    let (_dir, mut driver) = files_driver();
    driver
        .session
        .receive(b"GET /big.bin HTTP/1.0\r\n\r\n", driver.now);
    let output = drain_slowly(&mut driver, 10_000);
    let response = parse_one(&output);
    assert_eq!(response.header("Connection"), Some("close"));
    assert!(
        response.body == pattern(BIG),
        "{} bytes",
        response.body.len()
    );
    assert!(driver.session.is_finished());
}

#[test]
fn head_of_a_file_has_its_length_and_no_body() {
    let (_dir, mut driver) = files_driver();
    driver
        .session
        .receive(b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n", driver.now);
    let output = drain_slowly(&mut driver, 1000);
    let (head, rest) = parse_response(&output, true);
    assert_eq!(head.header("Content-Length"), Some("300000"));
    assert!(rest.is_empty(), "{} body bytes after HEAD", rest.len());
}

#[test]
fn refusals_keep_the_connection() {
    let (_dir, mut driver) = files_driver();
    let output = driver.exchange(
        b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /../x HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /small.css HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi\
          GET /small.css HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let statuses: Vec<u16> = parse_responses(&output)
        .iter()
        .map(Response::status)
        .collect();
    assert_eq!(statuses, [404, 403, 405, 200]);
    assert!(!driver.session.is_finished());
}

#[test]
fn a_file_body_is_offered_to_the_driver_not_copied_into_the_output() {
    let (_dir, mut driver) = files_driver();
    driver
        .session
        .receive(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n", driver.now);
    assert!(
        driver.session.pending_file().is_none(),
        "the head goes first"
    );
    let head = driver.session.pending_output().len();
    driver.session.consume_output(head, driver.now);
    assert!(driver.session.pending_output().is_empty(), "no byte copied");
    let range = driver.session.pending_file().expect("then the file");
    // All of it that fits one `sendfile` call: the socket takes what it can.
    assert_eq!((range.offset, range.length), (0, BIG.min(FILE_CHUNK)));
    driver.session.consume_output(1000, driver.now);
    let range = driver.session.pending_file().expect("the rest of it");
    assert_eq!(range.offset, 1000);
}

#[test]
fn a_file_that_shrinks_while_sent_is_an_error_for_its_driver() {
    let (dir, mut driver) = files_driver();
    driver
        .session
        .receive(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n", driver.now);
    let head = driver.peek_output(usize::MAX);
    driver.session.consume_output(head.len(), driver.now);
    // The socket took a first part of the file.
    let first = driver.peek_output(LIMIT_OUTPUT);
    driver.session.consume_output(first.len(), driver.now);
    fs::write(dir.path().join("big.bin"), b"short now").expect("truncate");
    let range = driver.session.pending_file().expect("more is due");
    let error = range
        .read(&mut vec![0; range.length])
        .expect_err("the file ended early");
    // `sendfile` says the same (see `crate::sendfile`): the driver closes.
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn the_axum_app_answers_through_the_engine() {
    let mut driver = Driver::new(http_app(
        crate::app::TowerApp::<_, axum::body::Body>::new(crate::quote::router()),
        true,
    ));
    let output = driver.exchange(
        b"GET /quote HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /quote HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /other HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let responses = parse_responses(&output);
    let statuses: Vec<u16> = responses.iter().map(Response::status).collect();
    assert_eq!(statuses, [200, 405, 404]);
    let quote = &responses[0];
    assert_eq!(quote.header("Content-Type"), Some("application/json"));
    assert_eq!(quote.header("Server"), Some(SERVER));
    assert_eq!(quote.header("X-Worker"), Some(WORKER));
    let json: serde_json::Value = serde_json::from_slice(&quote.body).expect("JSON");
    assert_eq!(json["author"], "Grace Hopper");
    assert!(responses[1].header("Allow").is_some(), "axum's own Allow");
}
