//! RPC mode through the session: replies in order, a `query` that waits
//! for the fake DB without counting as idleness, the output bound, and
//! closing after shutdown, EOF or a line over the limit.

use serde_json::Value;

use super::*;
use crate::rpc::MAX_LINE;

const DB_LATENCY: Duration = Duration::from_millis(300);
const IDLE_TIMEOUT: Duration = Duration::from_millis(100);
const FUNC1: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"func1\",\"params\":[1,2,3],\"id\":1}\n";
const QUERY: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"query\",\"params\":[\"k\"],\"id\":2}\n";

fn session(now: Instant) -> Session {
    let config = SessionConfig {
        protocol: Protocol::Rpc {
            db_latency: DB_LATENCY,
        },
        // Shorter than the DB latency: a query must not count as idle.
        idle_timeout: IDLE_TIMEOUT,
        server_name: "00-test",
    };
    Session::new(config, "pid=1 thread=t".to_owned(), now)
}

/// Takes everything the session has to send (a client that reads).
fn read_all(session: &mut Session, now: Instant) -> Vec<Value> {
    let mut received = Vec::new();
    while session.wants_write() {
        let output = session.pending_output();
        assert!(output.len() <= OUTPUT_LIMIT);
        received.extend_from_slice(output);
        session.consume_output(output.len(), now);
    }
    received
        .split_inclusive(|&byte| byte == b'\n')
        .map(|line| serde_json::from_slice(line).expect("a JSON reply"))
        .collect()
}

#[test]
fn func1_answers_9() {
    let now = Instant::now();
    let mut session = session(now);
    assert!(session.read_capacity() > MAX_LINE);
    session.receive(FUNC1, now);
    let replies = read_all(&mut session, now);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["result"], 9);
    assert!(!session.is_finished());
}

#[test]
fn a_query_is_a_deadline_and_not_idleness() {
    let t0 = Instant::now();
    let mut session = session(t0);
    session.receive(QUERY, t0);
    assert_eq!(session.next_deadline(), Some(t0 + DB_LATENCY));
    // Past the idle timeout, but the DB has not answered: keep waiting.
    session.handle_timers(t0 + IDLE_TIMEOUT * 2);
    assert!(!session.is_finished());
    assert!(!session.wants_write());
    session.handle_timers(t0 + DB_LATENCY);
    let replies = read_all(&mut session, t0 + DB_LATENCY);
    assert_eq!(replies[0]["result"], "row for k");
    // The idle period starts again from the reply.
    assert_eq!(
        session.next_deadline(),
        Some(t0 + DB_LATENCY + IDLE_TIMEOUT)
    );
    session.handle_timers(t0 + DB_LATENCY + IDLE_TIMEOUT);
    assert!(session.is_finished());
}

#[test]
fn a_client_that_never_reads_is_bounded() {
    let now = Instant::now();
    let mut session = session(now);
    let mut sent = 0;
    while session.read_capacity() > 0 {
        session.receive(FUNC1, now);
        sent += 1;
        assert!(sent < 100_000, "the session never stopped reading");
    }
    assert!(session.pending_output().len() <= OUTPUT_LIMIT);
    let answered = read_all(&mut session, now).len();
    assert_eq!(
        answered, sent,
        "every line is answered once the client reads"
    );
    assert!(session.read_capacity() > 0);
}

#[test]
fn shutdown_delivers_the_query_in_flight_then_closes() {
    let t0 = Instant::now();
    let mut session = session(t0);
    session.receive(QUERY, t0);
    session.begin_shutdown(t0);
    assert!(!session.is_finished());
    assert_eq!(session.read_capacity(), 0);
    session.handle_timers(t0 + DB_LATENCY);
    assert_eq!(read_all(&mut session, t0 + DB_LATENCY).len(), 1);
    assert!(session.is_finished());
}

#[test]
fn a_line_over_the_limit_is_answered_then_closed() {
    let now = Instant::now();
    let mut session = session(now);
    let junk = vec![b'x'; 64 * 1024];
    while session.read_capacity() > 0 {
        let count = session.read_capacity().min(junk.len());
        session.receive(&junk[..count], now);
    }
    let replies = read_all(&mut session, now);
    assert_eq!(replies[0]["error"]["code"], -32600);
    // Answered, then closed: lingering, for the rest of the line.
    assert!(session.is_lingering());
    assert!(session.take_half_close());
    session.receive_eof(now);
    assert!(session.is_finished());
}

#[test]
fn eof_answers_the_last_line_then_closes() {
    let now = Instant::now();
    let mut session = session(now);
    session.receive(&FUNC1[..FUNC1.len() - 1], now);
    session.receive_eof(now);
    assert_eq!(read_all(&mut session, now)[0]["result"], 9);
    assert!(session.is_finished());
}
