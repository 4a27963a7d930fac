//! `rpc-call ADDR METHOD [ARG...]`: one JSON-RPC call from the shell.
//!
//!     rpc-call 127.0.0.1:9090 func1 1 2 3       # prints 9
//!     rpc-call 127.0.0.1:9090 upper hello       # prints "HELLO"
//!     rpc-call 127.0.0.1:9090 divide 1 0        # error, exit status 1
//!     rpc-call 127.0.0.1:9090 func1 x=1 y=2 z=3 # named params
//!
//! Each ARG is JSON if it parses as JSON, else a string; `name=value`
//! makes named params. The result is printed as JSON.

use std::process::ExitCode;

use serde_json::{Map, Value};

const USAGE: &str = "usage: rpc-call HOST:PORT METHOD [ARG...]   (ARG: JSON, text, or name=value)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "-h" || arg == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let [addr, method, params @ ..] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let params = if !params.is_empty() && params.iter().all(|param| is_named(param)) {
        let named: Map<String, Value> = params
            .iter()
            .filter_map(|param| param.split_once('='))
            .map(|(name, value)| (name.to_owned(), rpc_client::parse_argument(value)))
            .collect();
        Value::Object(named)
    } else {
        params
            .iter()
            .map(|param| rpc_client::parse_argument(param))
            .collect()
    };
    let result = rpc_client::Client::connect(addr.as_str())
        .map_err(|error| format!("cannot connect to {addr}: {error}"))
        .and_then(|mut client| {
            client
                .call::<Value>(method, params)
                .map_err(|error| error.to_string())
        });
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rpc-call: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `x=1` names a param; `a=b` inside JSON (`"a=b"`) does not.
fn is_named(arg: &str) -> bool {
    arg.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}
