//! Lingering close (RFC 9112, section 9.6): after an error, or with input
//! left unread, the session half-closes and discards input until the
//! client's EOF, 2 s or 16 MiB; a clean close and a 408 do not linger.

use super::*;

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
