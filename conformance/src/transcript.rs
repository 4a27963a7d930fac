//! What the checks' clients sent and received, so that a failed check can
//! show the student the conversation (first bytes of each send and read,
//! and when) and not only the assertion. Kept small: the first and the last
//! few exchanges of a check, however many megabytes went by.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Exchanges kept from the start of a check, and from its end.
const HEAD: usize = 6;
const TAIL: usize = 10;
/// Bytes shown of each exchange.
const SHOWN: usize = 60;

struct Transcript {
    started: Instant,
    head: Vec<String>,
    tail: Vec<String>,
    dropped: usize,
}

static TRANSCRIPT: Mutex<Option<Transcript>> = Mutex::new(None);

/// Starts a new transcript (the checker calls this before each check).
pub fn start() {
    *TRANSCRIPT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Transcript {
        started: Instant::now(),
        head: Vec::new(),
        tail: Vec::new(),
        dropped: 0,
    });
}

/// Ends the transcript and returns its lines.
pub fn take() -> Vec<String> {
    let Some(transcript) = TRANSCRIPT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        return Vec::new();
    };
    let mut lines = transcript.head;
    if transcript.dropped > 0 {
        lines.push(format!("... {} more exchanges ...", transcript.dropped));
    }
    lines.extend(transcript.tail);
    lines
}

/// Notes an event: `what` ("sent", "received", ...) and its bytes. Does
/// nothing unless a transcript was started (`cargo test` never does).
pub fn record(what: &str, bytes: &[u8]) {
    let mut guard = TRANSCRIPT.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(transcript) = guard.as_mut() else {
        return;
    };
    let line = format!(
        "+{:.3}s {what} {} bytes: {}",
        transcript.started.elapsed().as_secs_f64(),
        bytes.len(),
        show(bytes)
    );
    if transcript.head.len() < HEAD {
        transcript.head.push(line);
    } else {
        if transcript.tail.len() == TAIL {
            transcript.tail.remove(0);
            transcript.dropped += 1;
        }
        transcript.tail.push(line);
    }
}

/// The first bytes, quoted and escaped (`\r\n` and binary readable).
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN)];
    let mut text = format!("\"{}\"", shown.escape_ascii());
    if bytes.len() > SHOWN {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transcript_keeps_the_start_and_the_end() {
        start();
        for index in 0..30 {
            record("sent", format!("line {index}\r\n").as_bytes());
        }
        let lines = take();
        assert_eq!(lines.len(), HEAD + 1 + TAIL, "{lines:#?}");
        assert!(lines[0].contains(r#""line 0\r\n""#), "{}", lines[0]);
        assert!(lines[HEAD].contains("14 more"), "{}", lines[HEAD]);
        assert!(lines[HEAD + TAIL].contains("line 29"));
        assert!(take().is_empty(), "taken once");
    }
}
