//! HTTP errors, one test per row of the design's table: the status, and
//! whether the connection stays open.

use super::*;

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
