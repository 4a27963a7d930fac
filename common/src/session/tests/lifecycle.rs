//! The idle timeout, shutdown and half-close: when a connection ends, and
//! what it still answers first.

use super::*;

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
    for mut driver in [Driver::http(), Driver::echo()] {
        assert_eq!(
            driver.session.next_deadline(),
            Some(driver.t0 + IDLE_TIMEOUT)
        );
        assert!(driver.sleep(IDLE_TIMEOUT).is_empty());
        assert!(driver.hung_up());
    }
}

#[test]
fn a_connection_waiting_for_its_first_byte_holds_no_engine() {
    let rpc = config(Protocol::Rpc {
        db_latency: DB_LATENCY,
    });
    for mut driver in [Driver::http(), Driver::echo(), Driver::new(rpc)] {
        // What every driver asks of an idle connection, again and again.
        let capacity = driver.session.read_capacity();
        assert!(capacity > 0);
        assert!(!driver.session.wants_write());
        assert!(!driver.session.is_finished());
        assert!(driver.session.next_deadline().is_some());
        assert!(
            driver.session.engine.is_none(),
            "an idle session built its engine"
        );
        // The fresh engine that answered is the one built at the first byte.
        driver.session.receive(b"G", driver.now);
        assert!(driver.session.engine.is_some());
        assert_eq!(driver.session.read_capacity(), capacity - 1);
    }
}

#[test]
fn shutdown_while_idle_finishes_at_once() {
    for mut driver in [Driver::http(), Driver::echo()] {
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
