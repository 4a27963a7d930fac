//! The HTTP session fed arbitrary bytes in arbitrary pieces, with time
//! passing, a client that reads slowly, EOF and shutdown. Besides the
//! driver rules of `play`: everything it writes is a sequence of complete
//! HTTP/1.1 responses whose `Content-Length` frames them (a HEAD answer has
//! none of the body it announces), except a last one cut short when the
//! session gave up on a client that stopped reading.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use common::app::LabPage;
use common::session::{HttpSettings, Protocol, Session, SessionConfig};
use concurrency_fuzz::{config, play};
use libfuzzer_sys::fuzz_target;

fn lab_page() -> SessionConfig {
    static APP: OnceLock<&'static LabPage> = OnceLock::new();
    let app = *APP.get_or_init(|| {
        Box::leak(Box::new(LabPage {
            db_latency: Duration::from_millis(300),
        }))
    });
    config(Protocol::Http(HttpSettings {
        app,
        always_say_connection: false,
    }))
}

fuzz_target!(|script: &[u8]| {
    let session = Session::new(
        lab_page(),
        "pid=1 thread=fuzz".to_owned(),
        std::time::Instant::now(),
    );
    let transcript = play(session, script);
    let mut rest = &transcript.output[..];
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(rest) {
            Ok(httparse::Status::Complete(length)) => length,
            Ok(httparse::Status::Partial) if transcript.abandoned => return,
            other => panic!(
                "not an HTTP response: {other:?} in {:?}",
                String::from_utf8_lossy(rest)
            ),
        };
        assert_eq!(response.version, Some(1), "HTTP/1.1 answers");
        let length: usize = response
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case("Content-Length"))
            .and_then(|header| std::str::from_utf8(header.value).ok()?.parse().ok())
            .expect("every response has a Content-Length");
        rest = &rest[head..];
        // A HEAD answer announces a body it does not send: the next
        // response (or nothing) follows the head at once. No body here
        // starts like a status line.
        if rest.is_empty() || rest.starts_with(b"HTTP/1.1 ") {
            continue;
        }
        if rest.len() < length {
            assert!(
                transcript.abandoned,
                "a body cut short: {length} announced, {} sent",
                rest.len()
            );
            return;
        }
        rest = &rest[length..];
    }
});
