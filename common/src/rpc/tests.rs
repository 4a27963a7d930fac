//! Unit tests of the RPC engine and of one connection, with made-up clocks:
//! no socket, no sleep.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::session::OUTPUT_LIMIT;

const DB_LATENCY: Duration = Duration::from_millis(300);

/// The reply to `line` from the standard registry, parsed back.
fn reply(line: &str) -> Option<Value> {
    answer_line(standard(), line.as_bytes()).map(|reply| parse(&reply.line))
}

fn parse(line: &[u8]) -> Value {
    assert_eq!(line.last(), Some(&b'\n'), "a reply is one line");
    assert!(
        !line[..line.len() - 1].contains(&b'\n'),
        "no newline inside a reply"
    );
    serde_json::from_slice(line).expect("replies are JSON")
}

fn call(method: &str, params: Value) -> Value {
    let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 7});
    reply(&request.to_string()).expect("a request with an id is answered")
}

fn result(method: &str, params: Value) -> Value {
    let answer = call(method, params);
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");
    answer["result"].clone()
}

/// The error of a reply: (code, data.type, data.message).
fn error_of(answer: &Value) -> (i64, String, String) {
    let error = &answer["error"];
    assert!(answer.get("result").is_none(), "{answer}");
    assert!(error["message"].is_string(), "{answer}");
    (
        error["code"].as_i64().expect("a code"),
        error["data"]["type"]
            .as_str()
            .expect("data.type")
            .to_owned(),
        error["data"]["message"]
            .as_str()
            .expect("data.message")
            .to_owned(),
    )
}

fn error(method: &str, params: Value) -> (i64, String, String) {
    error_of(&call(method, params))
}

#[test]
fn func1_is_the_homeworks_example() {
    assert_eq!(result("func1", json!([1, 2, 3])), 9);
    assert_eq!(result("func1", json!({"z": 3, "y": 2, "x": 1})), 9);
    assert_eq!(result("func1", json!([-5, -2, 3])), -13);
    assert_eq!(result("func1", json!([0, 7, 0])), 1);
}

#[test]
fn integer_overflow_is_an_error_not_a_wrap() {
    let (code, kind, message) = error("func1", json!([1, 2, 63]));
    assert_eq!(
        (code, kind.as_str()),
        (-32000, "OverflowError"),
        "{message}"
    );
    assert_eq!(result("func1", json!([0, 2, 62])), 1i64 << 62);
    assert_eq!(error("func1", json!([i64::MAX, 1, 1])).1, "OverflowError");
    assert_eq!(error("func1", json!([0, 2, 1u64 << 40])).1, "OverflowError");
    assert_eq!(error("func1", json!([0, 2, -1])).1, "ValueError");
    assert_eq!(error("sum", json!([[i64::MAX, 1]])).1, "OverflowError");
    assert_eq!(error("add", json!([i64::MIN, -1])).1, "OverflowError");
    assert_eq!(error("divide", json!([i64::MIN, -1])).1, "OverflowError");
}

#[test]
fn wrong_params_name_the_expected_ones() {
    for params in [
        json!([1, 2]),
        json!([1, 2, 3, 4]),
        json!([]),
        json!({"x": 1, "y": 2}),
    ] {
        let (code, kind, message) = error("func1", params);
        assert_eq!((code, kind.as_str()), (-32602, "TypeError"));
        assert!(
            message.contains("func1(x: int, y: int, z: int) -> int"),
            "{message}"
        );
    }
    let (_, _, message) = error("func1", json!({"x": 1, "y": 2, "z": 3, "w": 4}));
    assert!(message.contains("unknown `w`"), "{message}");
    let (code, _, message) = error("func1", json!([1, 2, "3"]));
    assert_eq!(code, -32602);
    assert!(message.contains("`z` must be int"), "{message}");
    // No coercion: a float or a number beyond 64 bits is not an int.
    assert!(
        error("func1", json!([1.0, 2, 3]))
            .2
            .contains("`x` must be int")
    );
    let huge = r#"{"jsonrpc":"2.0","method":"func1","params":[1,2,99999999999999999999],"id":1}"#;
    assert_eq!(error_of(&reply(huge).expect("answered")).0, -32602);
    assert!(error("sum", json!([[1, "2"]])).2.contains("list[int]"));
    assert!(error("upper", json!([5])).2.contains("`text` must be str"));
}

#[test]
fn each_function_answers() {
    assert_eq!(
        result("echo", json!([{"a": [1, "b", null]}])),
        json!({"a": [1, "b", null]})
    );
    assert_eq!(result("add", json!([2, 3])), 5);
    assert_eq!(result("add", json!(["ab", "cd"])), "abcd");
    assert_eq!(
        result("add", json!({"a": [1], "b": [2, 3]})),
        json!([1, 2, 3])
    );
    assert_eq!(error("add", json!([1, "a"])).0, -32602);
    assert_eq!(result("sum", json!([[1, 2, 3, 4]])), 10);
    assert_eq!(result("sum", json!([[]])), 0);
    assert_eq!(result("upper", json!(["straße"])), "STRASSE");
    assert_eq!(result("divide", json!([7, 2])), 3);
    // Rounded down, as Python's // does, not toward zero.
    assert_eq!(result("divide", json!([-7, 2])), -4);
    assert_eq!(result("divide", json!([7, -2])), -4);
    assert_eq!(result("divide", json!([-8, 2])), -4);
    assert_eq!(result("query", json!(["user:1"])), "row for user:1");
}

#[test]
fn division_by_zero_is_a_zero_division_error() {
    let (code, kind, message) = error("divide", json!([1, 0]));
    assert_eq!(
        (code, kind.as_str()),
        (-32000, "ZeroDivisionError"),
        "{message}"
    );
}

#[test]
fn only_query_waits_for_the_db() {
    let line = |method: &str, params: Value| {
        let request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        answer_line(standard(), request.to_string().as_bytes()).expect("answered")
    };
    assert!(line("query", json!(["k"])).waits_for_db);
    assert!(!line("func1", json!([1, 2, 3])).waits_for_db);
    let batch = r#"[{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},
        {"jsonrpc":"2.0","method":"query","params":["k"],"id":2}]"#
        .replace('\n', "");
    assert!(
        answer_line(standard(), batch.as_bytes())
            .expect("answered")
            .waits_for_db
    );
}

#[test]
fn introspection_lists_and_describes() {
    let names = result("rpc.list_methods", json!([]));
    let expected = [
        "add",
        "divide",
        "echo",
        "func1",
        "query",
        "sum",
        "upper",
        "rpc.list_methods",
        "rpc.describe",
    ];
    assert_eq!(names, json!(expected));
    let func1 = result("rpc.describe", json!(["func1"]));
    assert_eq!(
        func1["params"],
        json!([{"name": "x", "type": "int"},
        {"name": "y", "type": "int"}, {"name": "z", "type": "int"}])
    );
    assert_eq!(func1["returns"], "int");
    assert_eq!(func1["signature"], "func1(x: int, y: int, z: int) -> int");
    assert!(
        func1["doc"]
            .as_str()
            .is_some_and(|doc| doc.contains("func1(1, 2, 3) == 9"))
    );
    assert_eq!(
        result("rpc.describe", json!({"name": "sum"}))["params"][0]["type"],
        "list[int]"
    );
    for name in expected {
        assert_eq!(result("rpc.describe", json!([name]))["name"], name);
    }
    assert_eq!(error("rpc.describe", json!(["nope"])).1, "ValueError");
    assert_eq!(error("rpc.describe", json!([])).0, -32602);
    assert_eq!(error("rpc.list_methods", json!([1])).0, -32602);
}

#[test]
fn unknown_methods_are_32601() {
    let (code, kind, message) = error("func2", json!([]));
    assert_eq!((code, kind.as_str()), (-32601, "MethodNotFound"));
    assert!(message.contains("func2"), "{message}");
}

#[test]
fn notifications_get_no_reply_even_when_they_fail() {
    assert_eq!(
        reply(r#"{"jsonrpc":"2.0","method":"func1","params":[1,2,3]}"#),
        None
    );
    assert_eq!(
        reply(r#"{"jsonrpc":"2.0","method":"divide","params":[1,0]}"#),
        None
    );
    assert_eq!(reply(r#"{"jsonrpc":"2.0","method":"nope"}"#), None);
    // A null id is an id: the request is answered.
    let answer = reply(r#"{"jsonrpc":"2.0","method":"func1","params":[1,2,3],"id":null}"#);
    assert_eq!(
        answer,
        Some(json!({"jsonrpc": "2.0", "result": 9, "id": null}))
    );
    let answer = reply(r#"{"jsonrpc":"2.0","method":"echo","params":["x"],"id":"abc"}"#);
    assert_eq!(
        answer.map(|answer| answer["id"].clone()),
        Some(json!("abc"))
    );
}

#[test]
fn parse_errors_have_a_null_id() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let binary = [0xff, 0xfe, 0x00, 0x9c, b'{'];
    let binary_in_string = b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\",\"id\":1}";
    for line in [
        &b"hello"[..],
        b"{\"jsonrpc\":\"2.0\",",
        &binary,
        binary_in_string,
        deep.as_bytes(),
        b"[1e999999]",
        b"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1e400],\"id\":1}",
    ] {
        let answer = answer_line(standard(), line).map(|reply| parse(&reply.line));
        let answer = answer.expect("a parse error is answered");
        assert_eq!(answer["id"], Value::Null, "{answer}");
        assert_eq!(error_of(&answer).0, -32700, "{answer}");
    }
    let answer = reply(&deep).expect("answered");
    assert!(
        error_of(&answer).2.contains("nest deeper than 32"),
        "{answer}"
    );
}

#[test]
fn nesting_is_limited_before_parsing() {
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    // The request object and its params list are two of the levels.
    let deepest = json!([serde_json::from_str::<Value>(&nested(MAX_DEPTH - 2)).expect("JSON")]);
    assert_eq!(result("echo", deepest.clone()), deepest[0]);
    let too_deep = format!(
        r#"{{"jsonrpc":"2.0","method":"echo","params":[{}],"id":1}}"#,
        nested(MAX_DEPTH - 1)
    );
    let answer = reply(&too_deep).expect("answered");
    assert_eq!(error_of(&answer).0, -32700);
    // Brackets inside strings (escaped quotes too) do not count.
    let text = format!("\\\"{}", "[".repeat(100));
    assert_eq!(result("echo", json!([text])), json!(text));
    // serde_json's own limit would answer as well, with its message.
    let error = serde_json::from_str::<Value>(&nested(200)).expect_err("too deep");
    assert!(error.to_string().contains("recursion limit"), "{error}");
}

#[test]
fn json_that_is_not_a_request_is_32600() {
    for line in [
        "1",
        "\"func1\"",
        "null",
        "{}",
        r#"{"jsonrpc":"1.0","method":"func1","params":[1,2,3],"id":1}"#,
        r#"{"method":"func1","params":[1,2,3],"id":1}"#,
        r#"{"jsonrpc":"2.0","method":5,"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"func1","params":3,"id":1}"#,
        r#"{"jsonrpc":"2.0","method":"func1","params":[1,2,3],"id":{"a":1}}"#,
        r#"{"jsonrpc":"2.0","method":"func1","params":[1,2,3],"id":[1]}"#,
    ] {
        let answer = reply(line).expect("an invalid request is answered");
        assert_eq!(error_of(&answer).0, -32600, "{line}: {answer}");
    }
    // The id is echoed when it could be read.
    let answer = reply(r#"{"jsonrpc":"1.0","method":"func1","id":4}"#).expect("answered");
    assert_eq!(answer["id"], 4);
}

#[test]
fn batches_answer_in_order_without_notifications() {
    let batch = r#"[{"jsonrpc":"2.0","method":"func1","params":[1,2,3],"id":1},
        {"jsonrpc":"2.0","method":"upper","params":["a"]},
        {"jsonrpc":"2.0","method":"divide","params":[1,0],"id":2},
        5,
        {"jsonrpc":"2.0","method":"upper","params":["b"],"id":3}]"#
        .replace('\n', "");
    let answer = reply(&batch).expect("answered");
    let replies = answer.as_array().expect("a batch gets an array");
    assert_eq!(replies.len(), 4, "{answer}");
    assert_eq!(replies[0]["result"], 9);
    assert_eq!(error_of(&replies[1]).1, "ZeroDivisionError");
    assert_eq!(error_of(&replies[2]).0, -32600);
    assert_eq!(replies[3]["result"], "B");
    let notifications = r#"[{"jsonrpc":"2.0","method":"echo","params":[1]}]"#;
    assert_eq!(reply(notifications), None);
    for bad in ["[]".to_owned(), format!("[{}1]", "1,".repeat(MAX_BATCH))] {
        let answer = reply(&bad).expect("answered");
        assert!(answer.is_object(), "one error, not an array: {answer}");
        assert_eq!(error_of(&answer).0, -32600);
    }
    let largest = format!("[{}1]", "1,".repeat(MAX_BATCH - 1));
    let answer = reply(&largest).expect("answered");
    assert_eq!(answer.as_array().map(Vec::len), Some(MAX_BATCH));
}

/// One connection with a hand-moved clock and an always-writable socket
/// that records what was written.
struct Conn {
    rpc: RpcConnection,
    output: Vec<u8>,
    now: Instant,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            rpc: RpcConnection::new(standard(), DB_LATENCY),
            output: Vec::new(),
            now: Instant::now(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        assert!(bytes.len() <= self.rpc.read_capacity(self.output.len(), OUTPUT_LIMIT));
        self.rpc.receive(bytes);
        self.rpc.advance(self.now, &mut self.output, OUTPUT_LIMIT);
    }

    fn after(&mut self, duration: Duration) {
        self.now += duration;
        self.rpc.advance(self.now, &mut self.output, OUTPUT_LIMIT);
    }

    /// Reads everything the connection has to send now (as a client that
    /// keeps reading would), parsed into replies.
    fn replies(&mut self) -> Vec<Value> {
        let mut received = Vec::new();
        while !self.output.is_empty() {
            assert!(self.output.len() <= OUTPUT_LIMIT, "the output bound holds");
            received.append(&mut self.output);
            self.rpc.advance(self.now, &mut self.output, OUTPUT_LIMIT);
        }
        received
            .split_inclusive(|&byte| byte == b'\n')
            .map(parse)
            .collect()
    }
}

fn request(method: &str, params: Value, id: u64) -> String {
    format!(
        "{}\n",
        json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
    )
}

fn ids(replies: &[Value]) -> Vec<u64> {
    replies
        .iter()
        .filter_map(|reply| reply["id"].as_u64())
        .collect()
}

#[test]
fn a_line_is_answered_only_once_complete() {
    let mut conn = Conn::new();
    let line = request("func1", json!([1, 2, 3]), 1);
    let (head, tail) = line.as_bytes().split_at(20);
    conn.send(head);
    assert!(conn.replies().is_empty());
    for byte in tail {
        conn.send(&[*byte]);
    }
    let replies = conn.replies();
    assert_eq!(replies, [json!({"jsonrpc": "2.0", "result": 9, "id": 1})]);
}

#[test]
fn pipelined_lines_are_answered_in_order() {
    let mut conn = Conn::new();
    let lines: String = (1..=20)
        .map(|id| request("func1", json!([id, 1, 1]), id))
        .collect::<String>()
        + "\r\n\n";
    conn.send(lines.as_bytes());
    let replies = conn.replies();
    assert_eq!(ids(&replies), (1..=20).collect::<Vec<_>>());
    assert!(
        replies
            .iter()
            .all(|reply| reply["result"] == reply["id"].as_i64().unwrap_or(0) + 1)
    );
}

#[test]
fn a_query_answers_at_its_deadline_and_keeps_the_order() {
    let mut conn = Conn::new();
    let lines = request("query", json!(["a"]), 1) + &request("echo", json!(["b"]), 2);
    conn.send(lines.as_bytes());
    assert!(conn.replies().is_empty(), "nothing before the DB answers");
    assert_eq!(conn.rpc.next_deadline(), Some(conn.now + DB_LATENCY));
    conn.after(DB_LATENCY - Duration::from_millis(1));
    assert!(conn.replies().is_empty());
    conn.after(Duration::from_millis(1));
    let replies = conn.replies();
    assert_eq!(ids(&replies), [1, 2], "the echo waited behind the query");
    assert_eq!(replies[0]["result"], "row for a");
    assert_eq!(conn.rpc.next_deadline(), None);
}

#[test]
fn pipelined_queries_wait_once_not_once_each() {
    let mut conn = Conn::new();
    let lines: String = (1..=10)
        .map(|id| request("query", json!(["k"]), id))
        .collect();
    conn.send(lines.as_bytes());
    conn.after(DB_LATENCY);
    assert_eq!(ids(&conn.replies()), (1..=10).collect::<Vec<_>>());
    // A query sent later waits its own full latency.
    conn.after(Duration::from_millis(100));
    conn.send(request("query", json!(["k"]), 11).as_bytes());
    conn.after(DB_LATENCY - Duration::from_millis(1));
    assert!(conn.replies().is_empty());
    conn.after(Duration::from_millis(1));
    assert_eq!(ids(&conn.replies()), [11]);
}

#[test]
fn a_line_over_the_limit_is_answered_and_closes_without_being_buffered_whole() {
    let mut conn = Conn::new();
    conn.send(request("func1", json!([1, 2, 3]), 1).as_bytes());
    let mut sent = 0;
    let chunk = vec![b'x'; 64 * 1024];
    while !conn.rpc.is_done() {
        let room = conn.rpc.read_capacity(conn.output.len(), OUTPUT_LIMIT);
        assert!(room > 0, "the session keeps reading until it gives up");
        let piece = &chunk[..room.min(chunk.len())];
        conn.send(piece);
        sent += piece.len();
        assert!(sent <= MAX_LINE + 1, "buffered more than a line: {sent}");
    }
    assert_eq!(sent, MAX_LINE + 1);
    let replies = conn.replies();
    assert_eq!(ids(&replies), [1]);
    assert_eq!(error_of(&replies[1]).0, -32600);
    assert_eq!(conn.rpc.read_capacity(0, OUTPUT_LIMIT), 0);
}

#[test]
fn a_line_of_exactly_the_limit_is_answered() {
    let mut conn = Conn::new();
    let prefix = r#"{"jsonrpc":"2.0","method":"echo","id":1,"params":[""#;
    let suffix = "\"]}\n";
    let filler = "a".repeat(MAX_LINE - prefix.len() - suffix.len() + 1);
    let line = format!("{prefix}{filler}{suffix}");
    assert_eq!(line.len(), MAX_LINE + 1);
    for piece in line.as_bytes().chunks(64 * 1024) {
        conn.send(piece);
    }
    let replies = conn.replies();
    assert_eq!(
        replies[0]["result"].as_str().map(str::len),
        Some(filler.len())
    );
    assert!(!conn.rpc.is_done());
}

#[test]
fn the_last_line_may_end_at_eof() {
    let mut conn = Conn::new();
    conn.send(br#"{"jsonrpc":"2.0","method":"upper","params":["x"],"id":3}"#);
    assert!(conn.replies().is_empty());
    conn.rpc.receive_eof();
    conn.after(Duration::ZERO);
    assert_eq!(conn.replies()[0]["result"], "X");
    assert!(conn.rpc.is_done());
}

#[test]
fn a_full_output_stops_reading_and_answering() {
    let mut conn = Conn::new();
    let big = "y".repeat(3 * OUTPUT_LIMIT);
    let lines = request("echo", json!([big]), 1) + &request("echo", json!([big]), 2);
    conn.send(lines.as_bytes());
    // The first reply fills the output to its bound and waits, the second
    // line is not answered, and nothing more is read, until the client reads.
    assert_eq!(conn.output.len(), OUTPUT_LIMIT);
    assert_eq!(conn.rpc.read_capacity(0, OUTPUT_LIMIT), 0);
    conn.after(Duration::from_secs(1));
    assert_eq!(conn.output.len(), OUTPUT_LIMIT);
    let replies = conn.replies();
    assert_eq!(ids(&replies), [1, 2]);
    assert_eq!(replies[1]["result"].as_str().map(str::len), Some(big.len()));
    assert!(conn.rpc.read_capacity(0, OUTPUT_LIMIT) > 0);
}

#[test]
fn too_many_queued_replies_stop_reading() {
    let mut conn = Conn::new();
    let lines: String = (0..connection::MAX_QUEUED as u64)
        .map(|id| request("query", json!(["k"]), id))
        .collect();
    conn.send(lines.as_bytes());
    assert_eq!(conn.rpc.read_capacity(0, OUTPUT_LIMIT), 0);
    conn.after(DB_LATENCY);
    assert_eq!(conn.replies().len(), connection::MAX_QUEUED);
    assert!(conn.rpc.read_capacity(0, OUTPUT_LIMIT) > 0);
}

#[test]
fn stopping_sends_what_is_queued_and_answers_nothing_new() {
    let mut conn = Conn::new();
    conn.send((request("query", json!(["k"]), 1) + "{\"jsonrpc\"").as_bytes());
    conn.rpc.stop();
    assert!(!conn.rpc.is_done(), "the query is in flight");
    conn.after(DB_LATENCY);
    assert_eq!(ids(&conn.replies()), [1]);
    assert!(conn.rpc.is_done());
}

proptest! {
    /// However the bytes are cut into reads, the replies are the same.
    #[test]
    fn splitting_does_not_change_the_replies(cuts in prop::collection::vec(0usize..400, 0..8)) {
        let lines = request("func1", json!([1, 2, 3]), 1)
            + "garbage\n"
            + r#"[{"jsonrpc":"2.0","method":"add","params":["a","b"],"id":2},{"jsonrpc":"2.0","method":"echo","params":[1]}]"#
            + "\n"
            + &request("query", json!(["q"]), 3)
            + &request("divide", json!([1, 0]), 4);
        let mut whole = Conn::new();
        whole.send(lines.as_bytes());
        whole.after(DB_LATENCY);
        let expected = whole.replies();
        prop_assert_eq!(expected.len(), 5);

        let mut cuts: Vec<usize> = cuts.into_iter().map(|cut| cut.min(lines.len())).collect();
        cuts.push(0);
        cuts.push(lines.len());
        cuts.sort_unstable();
        let mut pieces = Conn::new();
        for window in cuts.windows(2) {
            pieces.send(&lines.as_bytes()[window[0]..window[1]]);
        }
        pieces.after(DB_LATENCY);
        prop_assert_eq!(pieces.replies(), expected);
    }
}
