//! Limits at their exact edge: the last value accepted, the first refused.

use super::*;

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
