//! The checks of `--mode rpc` (JSON-RPC 2.0, one message per line), over
//! real sockets like the rest of the suite: the homework's call, params,
//! errors, notifications, batches, pipelining, the fake DB, and bad input
//! from garbage to clients that never read.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::client::{IO_TIMEOUT, Recorded, send_all};
use crate::server::Server;
use crate::skip::skip;
use crate::target::Target;

/// The longest line a server must take (newline excluded): 1 MiB.
const MAX_LINE: usize = 1024 * 1024;

/// A fast fake DB, for checks about the protocol rather than the waiting.
fn rpc_server(target: &Target) -> Server {
    target.start(&["--mode", "rpc", "--db-latency", "20ms"])
}

/// One connection that speaks lines.
struct Lines {
    reader: BufReader<Recorded>,
    writer: TcpStream,
}

impl Lines {
    fn connect(server: &Server) -> Lines {
        let stream = TcpStream::connect(server.addr).expect("connect");
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Lines {
            writer: stream.try_clone().expect("clone the stream"),
            reader: BufReader::new(Recorded(stream)),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        send_all(&self.writer, bytes).expect("send to the server");
    }

    /// Reads one reply line and parses it.
    fn reply(&mut self) -> Value {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).expect("read a reply");
        assert!(read > 0, "the server closed instead of replying");
        assert!(line.ends_with('\n'), "a reply is one line: {line:?}");
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line:?}"))
    }

    /// Sends `method(params)` with `id` and returns the reply.
    fn call(&mut self, method: &str, params: Value, id: u64) -> Value {
        self.send(&request(method, params, Some(id)));
        let reply = self.reply();
        assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }

    /// Reads until the server closes; panics if it does not.
    fn rest(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest,
            // A close with our bytes unread is a reset: closed as well.
            Err(error) if error.kind() == ErrorKind::ConnectionReset => rest,
            Err(error) => panic!("the server did not close the connection: {error}"),
        }
    }
}

fn request(method: &str, params: Value, id: Option<u64>) -> Vec<u8> {
    let mut request = json!({"jsonrpc": "2.0", "method": method, "params": params});
    if let Some(id) = id {
        request["id"] = id.into();
    }
    format!("{request}\n").into_bytes()
}

/// `(code, data.type)` of an error reply.
fn error_of(reply: &Value) -> (i64, &str) {
    assert!(
        reply.get("result").is_none(),
        "an error, not a result: {reply}"
    );
    let code = reply["error"]["code"].as_i64();
    let kind = reply["error"]["data"]["type"].as_str();
    (
        code.unwrap_or_else(|| panic!("no error code: {reply}")),
        kind.unwrap_or_else(|| panic!("no data.type: {reply}")),
    )
}

/// The README's `nc -N` session: one line, the write side shut, the reply
/// `9`, then the server closes.
pub fn rpc_func1_returns_9(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    client.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"func1\",\"params\":[1,2,3],\"id\":1}\n");
    client.writer.shutdown(Shutdown::Write).expect("half-close");
    let reply = client.reply();
    assert_eq!(reply, json!({"jsonrpc": "2.0", "result": 9, "id": 1}));
    assert_eq!(client.rest(), b"", "nothing after the reply, then close");
}

/// Positional and named params; ints, strings, lists and maps.
pub fn rpc_params_and_types(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    let named = json!({"z": 3, "x": 1, "y": 2});
    assert_eq!(client.call("func1", named, 1)["result"], 9);
    assert_eq!(client.call("upper", json!(["abc"]), 2)["result"], "ABC");
    assert_eq!(client.call("add", json!(["ab", "cd"]), 3)["result"], "abcd");
    assert_eq!(
        client.call("add", json!([[1], [2]]), 4)["result"],
        json!([1, 2])
    );
    assert_eq!(client.call("sum", json!([[1, 2, 3]]), 5)["result"], 6);
    let map = json!({"a": [1, {"b": null}], "c": "d"});
    assert_eq!(client.call("echo", json!([map]), 6)["result"], map);
    assert_eq!(client.call("divide", json!([-7, 2]), 7)["result"], -4);
    // The id comes back as it was sent, a string too.
    client.send(b"{\"jsonrpc\":\"2.0\",\"method\":\"upper\",\"params\":[\"x\"],\"id\":\"s-1\"}\n");
    assert_eq!(client.reply()["id"], "s-1");
}

/// Failures carry the code and `data.type`; the connection stays usable.
pub fn rpc_errors_have_codes_and_types(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    let reply = client.call("divide", json!([1, 0]), 1);
    assert_eq!(error_of(&reply), (-32000, "ZeroDivisionError"));
    let reply = client.call("func1", json!([1, 2, 64]), 2);
    assert_eq!(error_of(&reply), (-32000, "OverflowError"));
    let reply = client.call("func1", json!([1, 2]), 3);
    assert_eq!(error_of(&reply), (-32602, "TypeError"));
    let message = reply["error"]["data"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("x: int, y: int, z: int"),
        "names the params: {message}"
    );
    let reply = client.call("func1", json!([1, 2, "3"]), 4);
    assert_eq!(error_of(&reply).0, -32602);
    let reply = client.call("no_such_function", json!([]), 5);
    assert_eq!(error_of(&reply).0, -32601);
    assert_eq!(client.call("func1", json!([1, 2, 3]), 6)["result"], 9);
}

/// `rpc.list_methods` and `rpc.describe`, for `dir()` and `help()`.
pub fn rpc_introspection(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    let names = client.call("rpc.list_methods", json!([]), 1)["result"].clone();
    for name in ["func1", "echo", "add", "sum", "upper", "divide", "query"] {
        assert!(
            names
                .as_array()
                .is_some_and(|names| names.contains(&json!(name))),
            "{names}"
        );
    }
    let func1 = client.call("rpc.describe", json!(["func1"]), 2)["result"].clone();
    let params: Vec<&str> = func1["params"]
        .as_array()
        .map(|params| {
            params
                .iter()
                .filter_map(|param| param["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(params, ["x", "y", "z"], "{func1}");
}

/// A notification gets no reply; a batch gets one array, in order, without
/// the notifications; an empty batch is -32600.
pub fn rpc_notifications_and_batches(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    client.send(&request("divide", json!([1, 0]), None));
    assert_eq!(
        client.call("upper", json!(["a"]), 1)["result"],
        "A",
        "no reply to the notification"
    );
    let batch = json!([
        {"jsonrpc": "2.0", "method": "func1", "params": [1, 2, 3], "id": 10},
        {"jsonrpc": "2.0", "method": "echo", "params": ["quiet"]},
        {"jsonrpc": "2.0", "method": "query", "params": ["k"], "id": 11},
        {"jsonrpc": "2.0", "method": "divide", "params": [1, 0], "id": 12},
    ]);
    client.send(format!("{batch}\n").as_bytes());
    let replies = client.reply();
    let ids: Vec<i64> = replies
        .as_array()
        .map(|replies| {
            replies
                .iter()
                .filter_map(|reply| reply["id"].as_i64())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(ids, [10, 11, 12], "{replies}");
    assert_eq!(replies[1]["result"], "row for k");
    client.send(b"[]\n");
    assert_eq!(error_of(&client.reply()).0, -32600);
    // Only notifications: nothing comes back, the next reply is the next call.
    client.send(
        format!(
            "[{}]\n",
            json!({"jsonrpc": "2.0", "method": "echo", "params": [1]})
        )
        .as_bytes(),
    );
    assert_eq!(client.call("echo", json!([2]), 13)["result"], 2);
}

/// Many requests in one write, queries among them: every reply, in order.
pub fn rpc_pipelined_in_order(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    let mut lines = Vec::new();
    for id in 0..200u64 {
        let method = if id % 10 == 0 { "query" } else { "func1" };
        let params = if id % 10 == 0 {
            json!([id.to_string()])
        } else {
            json!([id, 1, 1])
        };
        lines.extend(request(method, params, Some(id)));
    }
    client.send(&lines);
    for id in 0..200u64 {
        let reply = client.reply();
        assert_eq!(reply["id"], id, "in order: {reply}");
        let expected = if id % 10 == 0 {
            json!(format!("row for {id}"))
        } else {
            json!(id + 1)
        };
        assert_eq!(reply["result"], expected);
    }
}

/// `query` answers after --db-latency; pipelined queries wait together (a
/// deadline each, not a sleep each): ten take one latency, not ten.
pub fn rpc_query_waits_for_the_db(target: &Target) {
    let server = target.start(&["--mode", "rpc", "--db-latency", "300ms"]);
    // A running server keeps its own latency, which must be measurable.
    let latency = server.db_latency;
    if latency < Duration::from_millis(100) {
        skip(format!(
            "needs a --db-latency of 100ms or more; the server's is {latency:?}"
        ));
    }
    let mut client = Lines::connect(&server);
    let started = Instant::now();
    assert_eq!(client.call("query", json!(["a"]), 1)["result"], "row for a");
    assert!(
        started.elapsed() >= latency,
        "answered after {:?}",
        started.elapsed()
    );
    let lines: Vec<u8> = (0..10)
        .flat_map(|id| request("query", json!(["k"]), Some(id)))
        .collect();
    let started = Instant::now();
    client.send(&lines);
    for id in 0..10 {
        assert_eq!(client.reply()["id"], id);
    }
    // One after another would take 3 s.
    assert!(
        started.elapsed() < latency * 5,
        "10 pipelined queries took {:?}",
        started.elapsed()
    );
}

/// Garbage, binary, JSON that is not a request, huge numbers, deep
/// nesting: each an error reply, and the connection goes on.
pub fn rpc_bad_input_is_answered(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    let deep = format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let cases: [(&[u8], i64); 9] = [
        (b"hello there\n", -32700),
        (b"\x00\xff\xfe\x80binary\x01\n", -32700),
        (b"{\"jsonrpc\":\"2.0\",\n", -32700),
        (deep.as_bytes(), -32700),
        (b"[1e99999]\n", -32700),
        (b"42\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"id\":1}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":7,\"id\":1}\n", -32600),
        (b"{\"jsonrpc\":\"2.0\",\"method\":\"func1\",\"params\":[1,2,123456789012345678901234567890],\"id\":1}\n", -32602),
    ];
    for (line, code) in cases {
        client.send(line);
        let reply = client.reply();
        assert_eq!(
            error_of(&reply).0,
            code,
            "{:?}: {reply}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        );
        if code == -32700 {
            assert_eq!(reply["id"], Value::Null);
        }
    }
    // The deepest value a request may carry (32 levels with the request's
    // own two) still goes through, on every model's stack.
    let nested: Value = serde_json::from_str(&format!("{}{}", "[".repeat(30), "]".repeat(30)))
        .expect("nested arrays");
    assert_eq!(client.call("echo", json!([nested]), 3)["result"], nested);
    assert_eq!(client.call("func1", json!([1, 2, 3]), 2)["result"], 9);
}

/// A line over 1 MiB: -32600, then the server closes; it never takes much
/// more than the line's first MiB from a client streaming one endless line.
pub fn rpc_line_over_one_mebibyte_closes(target: &Target) {
    let server = rpc_server(target);
    // Exactly one byte too many and no newline: all of it is read, so the
    // close is a clean FIN after the reply.
    let mut client = Lines::connect(&server);
    client.send(&vec![b'x'; MAX_LINE + 1]);
    let reply = client.reply();
    assert_eq!(error_of(&reply).0, -32600);
    assert_eq!(client.rest(), b"", "closed after the reply");

    let endless = TcpStream::connect(server.addr).expect("connect");
    endless
        .set_write_timeout(Some(Duration::from_secs(3)))
        .expect("write timeout");
    let chunk = vec![b'y'; 64 * 1024];
    let mut written = 0usize;
    while written < 64 * MAX_LINE {
        match (&endless).write(&chunk) {
            Ok(count) => written += count,
            Err(_) => break, // closed by the server, or no longer read
        }
    }
    // Kernel buffers hold a few MiB; a server that buffered the whole line
    // would have taken all 64 MiB.
    assert!(
        written < 24 * MAX_LINE,
        "the server took {written} bytes of one line"
    );
    let mut other = Lines::connect(&server);
    drop(endless);
    assert_eq!(other.call("func1", json!([1, 2, 3]), 1)["result"], 9);
}

/// A client that sends and never reads: the server stops reading from it
/// (bounded output), and once it reads, every reply is there.
pub fn rpc_client_that_never_reads_is_bounded(target: &Target) {
    let server = rpc_server(target);
    let mut client = Lines::connect(&server);
    let line = request("func1", json!([1, 2, 3]), Some(1));
    let chunk: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 1000)
        .collect();
    client.writer.set_nonblocking(true).expect("non-blocking");
    let mut written = 0usize;
    let mut stuck_since: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while written < 64 * MAX_LINE && Instant::now() < deadline {
        let offset = written % chunk.len();
        match (&client.writer).write(&chunk[offset..]) {
            Ok(count) => {
                written += count;
                stuck_since = None;
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                if stuck_since.get_or_insert_with(Instant::now).elapsed()
                    > Duration::from_millis(300)
                {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("write failed: {error}"),
        }
    }
    assert!(
        written < 32 * MAX_LINE,
        "the server took {written} bytes it could not answer"
    );
    // Writing the rest of a cut line now would block for good (neither
    // side reads): end here, the cut line is the last one and is garbage.
    client.writer.shutdown(Shutdown::Write).expect("half-close");
    client.writer.set_nonblocking(false).expect("blocking");
    let replies = client.rest();
    let replies: Vec<Value> = replies
        .split_inclusive(|&byte| byte == b'\n')
        .map(|reply| serde_json::from_slice(reply).expect("a JSON reply"))
        .collect();
    let (complete, cut) = (written / line.len(), !written.is_multiple_of(line.len()));
    assert_eq!(
        replies.len(),
        complete + usize::from(cut),
        "one reply per line"
    );
    assert!(
        replies[..complete].iter().all(|reply| reply["result"] == 9),
        "every complete line is answered 9"
    );
    if cut {
        assert_eq!(error_of(&replies[complete]).0, -32700);
    }
}

/// A client that resets in the middle of a big batch affects only itself.
pub fn rpc_reset_mid_batch_does_not_hurt_others(target: &Target) {
    let server = rpc_server(target);
    for _ in 0..3 {
        let rude = TcpStream::connect(server.addr).expect("connect");
        let call =
            json!({"jsonrpc": "2.0", "method": "echo", "params": ["z".repeat(900)], "id": 1});
        let batch = format!("[{}]\n", vec![call.to_string(); 1000].join(","));
        (&rude).write_all(batch.as_bytes()).expect("send");
        let mut some = [0; 1000];
        let _ = (&rude).read(&mut some);
        crate::lifecycle::reset(rude);
    }
    let mut client = Lines::connect(&server);
    assert_eq!(client.call("func1", json!([1, 2, 3]), 1)["result"], 9);
}

/// SIGTERM while a `query` waits: its reply still arrives, then exit 0.
pub fn rpc_sigterm_finishes_query_in_flight(target: &Target) {
    let mut server = target.start(&["--mode", "rpc", "--db-latency", "1s", "--log", "debug"]);
    let mut client = Lines::connect(&server);
    client.send(&request("query", json!(["k"]), Some(1)));
    // In flight once the server has read it (it logs every recv).
    server.wait_for_log("recv ", 1, Duration::from_secs(5));
    server.signal(Signal::SIGTERM);
    assert_eq!(
        client.reply()["result"],
        "row for k",
        "the query in flight is answered"
    );
    let status = server
        .wait_for_exit(Duration::from_secs(8))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
}
