//! HTTP, hardened: the request deadline (slowloris), Host, chunked bodies,
//! framing, HEAD errors, `Connection: close` on the last response, blank
//! lines, and the output bound.

use super::*;

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
