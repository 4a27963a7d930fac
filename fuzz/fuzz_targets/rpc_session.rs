//! The JSON-RPC session (line splitter, parser, dispatcher, fake DB) fed
//! arbitrary bytes in arbitrary pieces. Besides the driver rules of
//! `play`: every line it writes is one valid JSON-RPC 2.0 reply (or a
//! batch of them), and deep nesting is refused without a stack overflow
//! (libFuzzer reports one as a crash).
#![no_main]

use std::time::{Duration, Instant};

use common::session::{Protocol, Session};
use concurrency_fuzz::{config, play};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check_reply(reply: &Value) {
    let object = reply.as_object().expect("a reply is an object");
    assert_eq!(object.get("jsonrpc"), Some(&Value::from("2.0")), "{reply}");
    let id = object
        .get("id")
        .expect("a reply has an id (null for a parse error)");
    assert!(id.is_null() || id.is_number() || id.is_string(), "{reply}");
    match (object.get("result"), object.get("error")) {
        (Some(_), None) => {}
        (None, Some(error)) => {
            assert!(error["code"].is_i64(), "{reply}");
            assert!(error["message"].is_string(), "{reply}");
        }
        _ => panic!("exactly one of result and error: {reply}"),
    }
}

fuzz_target!(|script: &[u8]| {
    let protocol = Protocol::Rpc {
        db_latency: Duration::from_millis(100),
    };
    let session = Session::new(
        config(protocol),
        "pid=1 thread=fuzz".to_owned(),
        Instant::now(),
    );
    let transcript = play(session, script);
    let output = String::from_utf8(transcript.output).expect("replies are UTF-8");
    let mut lines = output.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if lines.peek().is_none() && !line.ends_with('\n') {
            assert!(
                transcript.abandoned,
                "a reply without its newline: {line:?}"
            );
            break;
        }
        let reply: Value = serde_json::from_str(line).expect("each line is JSON");
        match &reply {
            Value::Array(batch) => {
                assert!(!batch.is_empty(), "an empty batch reply");
                batch.iter().for_each(check_reply);
            }
            single => check_reply(single),
        }
    }
});
