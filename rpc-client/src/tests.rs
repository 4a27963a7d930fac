//! The client against the real RPC session of `common`, served from a
//! thread over a real loopback socket. The models themselves are checked by the
//! conformance suite, which speaks the protocol without this client.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use common::session::Protocol;
use common::{SessionConfig, Shutdown, Threads};
use serde_json::{Value, json};

use super::*;

/// Serves one connection on a thread, as the servers do: a session in RPC
/// mode run by the blocking driver, until the client closes.
fn serve_one() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let thread = std::thread::spawn(move || {
        let (stream, peer) = listener.accept().expect("accept");
        let shutdown = Shutdown::new().expect("a pipe");
        let config = SessionConfig {
            protocol: Protocol::Rpc {
                db_latency: Duration::ZERO,
            },
            idle_timeout: Duration::from_secs(10),
            server_name: "rpc-client-test",
        };
        common::serve_connection::<Threads>(shutdown.adopt(stream, peer), config);
    });
    (addr, thread)
}

#[test]
fn func1_returns_9() {
    let (addr, server) = serve_one();
    let mut client = Client::connect(addr).expect("connect");
    assert_eq!(client.call::<i64>("func1", [1, 2, 3]).expect("9"), 9);
    assert_eq!(
        client
            .call::<i64>("func1", json!({"x": 1, "y": 2, "z": 3}))
            .expect("9"),
        9
    );
    assert_eq!(client.call::<String>("upper", ["hi"]).expect("HI"), "HI");
    assert_eq!(
        client.call::<Vec<i64>>("add", ([1], [2, 3])).expect("list"),
        [1, 2, 3]
    );
    client.notify("echo", [1]).expect("notify");
    let names: Vec<String> = client.call("rpc.list_methods", ()).expect("names");
    assert!(names.iter().any(|name| name == "func1"), "{names:?}");
    drop(client);
    server.join().expect("server thread");
}

#[test]
fn remote_failures_carry_code_and_type() {
    let (addr, server) = serve_one();
    let mut client = Client::connect(addr).expect("connect");
    let error = client.call::<i64>("divide", [1, 0]).expect_err("fails");
    assert!(
        matches!(error, Error::Remote { code: -32000, .. }),
        "{error}"
    );
    assert_eq!(error.kind(), Some("ZeroDivisionError"));
    assert!(error.to_string().contains("ZeroDivisionError"), "{error}");
    let error = client.call::<i64>("func1", [1, 2]).expect_err("fails");
    assert!(
        matches!(error, Error::Remote { code: -32602, .. }),
        "{error}"
    );
    let error = client.call::<i64>("nope", ()).expect_err("fails");
    assert!(
        matches!(error, Error::Remote { code: -32601, .. }),
        "{error}"
    );
    // The result is there but is not the type asked for.
    let error = client.call::<i64>("upper", ["x"]).expect_err("fails");
    assert!(matches!(error, Error::BadReply(_)), "{error}");
    drop(client);
    server.join().expect("server thread");
}

#[test]
fn a_closed_connection_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        // Read the request, then hang up without answering.
        let (mut stream, _) = listener.accept().expect("accept");
        let mut buffer = [0; 1024];
        let _ = stream.read(&mut buffer);
    });
    let mut client = Client::connect(addr).expect("connect");
    let error = client
        .call::<Value>("func1", [1, 2, 3])
        .expect_err("closed");
    assert!(matches!(error, Error::Closed), "{error}");
    assert_eq!(error.to_string(), "the server closed the connection");
    server.join().expect("server thread");
}

#[test]
fn command_line_arguments_are_json_or_text() {
    assert_eq!(parse_argument("1"), json!(1));
    assert_eq!(parse_argument("[1,2]"), json!([1, 2]));
    assert_eq!(parse_argument("hello"), json!("hello"));
    assert_eq!(parse_argument("\"1\""), json!("1"));
}
