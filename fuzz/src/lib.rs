//! What the fuzz targets share: a fake driver that plays a script of
//! operations, decoded from the fuzzer's bytes, against a [`Session`] on a
//! made-up clock, and checks the rules every driver relies on after each
//! step.
//!
//! The script is the fuzzer's input: its first byte K says how many
//! (op, argument) pairs follow; the bytes after them are what the client
//! sends. An op receives a piece of that input, lets time pass, lets the
//! client read some output, or brings the client's EOF or the server's
//! shutdown. So one input explores both what arrives and how it is split
//! and timed, and a seed is easy to write: `[1, 0, 255]` then a request.

use std::time::{Duration, Instant};

use common::session::{OUTPUT_LIMIT, Session, SessionConfig};

/// Everything the session wrote, as the client read it, and how it ended.
#[derive(Debug, Default)]
pub struct Transcript {
    pub output: Vec<u8>,
    /// The session dropped output it could not send (an idle client that
    /// stopped reading): the last response may be cut short.
    pub abandoned: bool,
}

/// Plays `script` against `session`, checking after every step:
/// - pending output never exceeds [`OUTPUT_LIMIT`] (the backpressure);
/// - the session never asks for more than it said it would take;
/// - once it asked to shut down writing, it never writes again;
/// - a session that is not finished always has a deadline (or a driver
///   would sleep for ever).
pub fn play(mut session: Session, script: &[u8]) -> Transcript {
    let start = Instant::now();
    let mut now = start;
    let mut transcript = Transcript::default();
    let mut half_closed = false;
    let (&count, rest) = script.split_first().unwrap_or((&0, &[]));
    let (ops, payload) = rest.split_at((usize::from(count) * 2).min(rest.len()));
    let mut payload = payload.to_vec();
    // After the scripted ops, the client sends the rest in one go.
    let flush = [0u8, 255];
    let ops = ops
        .chunks(2)
        .chain(std::iter::repeat_n(&flush[..], payload.len() / 256 + 1));
    for op in ops {
        if session.is_finished() {
            break;
        }
        let (kind, argument) = (op[0], op.get(1).copied().unwrap_or(0));
        match kind {
            0..=159 => {
                let capacity = session.read_capacity();
                let count = capacity.min(usize::from(argument) + 1).min(payload.len());
                if count > 0 {
                    let piece: Vec<u8> = payload.drain(..count).collect();
                    session.receive(&piece, now);
                }
            }
            160..=199 => {
                now += Duration::from_millis(u64::from(argument) * 40);
                if session.next_deadline().is_some_and(|due| due <= now) {
                    session.handle_timers(now);
                }
            }
            200..=239 => {
                let pending = session.pending_output().len();
                let count = pending * (usize::from(argument) + 1) / 256;
                let taken = session.pending_output()[..count].to_vec();
                transcript.output.extend_from_slice(&taken);
                session.consume_output(count, now);
            }
            240..=247 => session.receive_eof(now),
            248..=251 => session.begin_shutdown(now),
            _ => drain(&mut session, &mut transcript, now),
        }
        if session.take_half_close() {
            half_closed = true;
        }
        check(&session, half_closed);
    }
    // The client reads to the end; time runs until the session is done.
    for _ in 0..10_000 {
        drain(&mut session, &mut transcript, now);
        if session.take_half_close() {
            half_closed = true;
        }
        check(&session, half_closed);
        if session.is_finished() {
            break;
        }
        if session.wants_read() {
            session.receive_eof(now);
            continue;
        }
        let due = session
            .next_deadline()
            .expect("checked: an unfinished session has a deadline");
        now = now.max(due);
        session.handle_timers(now);
    }
    assert!(session.is_finished(), "the session never finished");
    transcript.abandoned = !session.pending_output().is_empty();
    transcript
}

fn drain(session: &mut Session, transcript: &mut Transcript, now: Instant) {
    while session.wants_write() {
        let pending = session.pending_output().to_vec();
        transcript.output.extend_from_slice(&pending);
        session.consume_output(pending.len(), now);
    }
}

fn check(session: &Session, half_closed: bool) {
    assert!(
        session.pending_output().len() <= OUTPUT_LIMIT,
        "{} bytes pending, over the bound",
        session.pending_output().len()
    );
    if half_closed {
        assert!(
            session.pending_output().is_empty(),
            "wrote after shutting down its writing side"
        );
    }
    if !session.is_finished() {
        assert!(
            session.next_deadline().is_some(),
            "an unfinished session without a deadline"
        );
    }
}

/// A config for `protocol` with a 1 s idle timeout (short, so the fake
/// clock reaches it).
pub fn config(protocol: common::session::Protocol) -> SessionConfig {
    SessionConfig {
        protocol,
        idle_timeout: Duration::from_secs(1),
        server_name: "00-fuzz",
    }
}
