//! GET and HEAD and the fake DB's wait, keep-alive, pipelining, requests
//! split in pieces, and bodies that are read and discarded.

use super::*;

#[test]
fn get_is_answered_when_the_db_latency_has_passed_and_not_before() {
    // ANCHOR: one_request
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
    // ANCHOR_END: one_request
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
    let mut driver = Driver::new(lab_page(Duration::ZERO));
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
