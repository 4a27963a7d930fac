//! Echo mode: every byte back, backpressure, shutdown and the idle clock.

use super::*;

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
