//! JSON-RPC 2.0, one message per line: the protocol of `--mode rpc` (the
//! course's RPC homework), without any I/O.
//!
//! - this file: one complete line in, zero or one reply line out
//!   ([`answer_line`]): parsing, requests, notifications, batches, errors;
//! - [`registry`]: the functions, registered as typed Rust closures;
//! - [`connection`]: one connection's lines in order, with the fake DB's
//!   deadlines and the bounds on input and output.
//!
//! Try it by hand: `nc 127.0.0.1 9090`, then type
//! `{"jsonrpc":"2.0","method":"func1","params":[1,2,3],"id":1}` and Enter.

pub mod connection;
pub mod registry;

use serde_json::{Value, json};

pub use connection::RpcConnection;
pub use registry::{Params, Registry, standard};

/// A line (one message) may be at most this long, newline excluded. A
/// longer one is answered with -32600 and the connection is closed: the
/// server never holds more than this of one client's input.
pub const MAX_LINE: usize = 1024 * 1024;
/// Arrays and objects may nest at most this deep. serde_json itself stops
/// at 128 levels with an error, but it recurses once per level, and 128
/// levels overflowed a 64 KiB coroutine stack (08, debug build): this
/// limit is checked first, by a scan that does not recurse.
pub const MAX_DEPTH: usize = 32;
/// A batch may hold at most this many calls, so that one line cannot make
/// an unbounded reply (a million `1,` would be a million error objects).
pub const MAX_BATCH: usize = 1000;

/// The error codes of JSON-RPC 2.0 that the server answers.
// ANCHOR: codes
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The line is not JSON (garbage, binary, too deep): `id` is null and
    /// the connection stays usable.
    ParseError,
    /// JSON, but not a request (or an empty batch, or a line over 1 MiB).
    InvalidRequest,
    /// No function of that name.
    MethodNotFound,
    /// Wrong number or types of params.
    InvalidParams,
    /// The function ran and failed; `data.type` says how.
    Failed,
}
// ANCHOR_END: codes

impl ErrorCode {
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::Failed => -32000,
        }
    }

    /// The `message` the specification gives this code; the details go in
    /// `data.message`.
    fn message(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "Parse error",
            ErrorCode::InvalidRequest => "Invalid Request",
            ErrorCode::MethodNotFound => "Method not found",
            ErrorCode::InvalidParams => "Invalid params",
            ErrorCode::Failed => "Server error",
        }
    }

    /// The `data.type` of an error with this code, unless the function
    /// names its own. Python's names, so a Python client can raise the
    /// matching built-in exception (`TypeError` for bad params).
    fn default_type(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "ParseError",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::MethodNotFound => "MethodNotFound",
            ErrorCode::InvalidParams => "TypeError",
            ErrorCode::Failed => "Exception",
        }
    }
}

/// An error answer: the code, a message, and `data: {"type", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: ErrorCode,
    pub message: String,
    /// `data.type`: `ZeroDivisionError`, `OverflowError`, `TypeError`, ...
    pub kind: String,
}

impl RpcError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            kind: code.default_type().to_owned(),
        }
    }

    /// -32602, `TypeError`: the params do not fit the function.
    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(ErrorCode::InvalidParams, message)
    }

    /// -32000: the function failed, as an exception of type `kind`.
    pub fn failed(kind: &str, message: impl Into<String>) -> RpcError {
        RpcError {
            code: ErrorCode::Failed,
            message: message.into(),
            kind: kind.to_owned(),
        }
    }

    /// -32000, `OverflowError`: an integer result does not fit in 64 bits.
    pub fn overflow(function: &str) -> RpcError {
        RpcError::failed("OverflowError", format!("{function}: integer overflow"))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "code": self.code.code(),
            "message": self.code.message(),
            "data": {"type": self.kind, "message": self.message},
        })
    }
}

/// The reply to one line, ready to send (newline included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub line: Vec<u8>,
    /// A call in it is a fake-DB query: send it only after `--db-latency`.
    pub waits_for_db: bool,
}

/// Answers one complete line (without its newline): a request, a
/// notification (no reply) or a batch (one array of replies, or none if it
/// held only notifications).
// ANCHOR: answer_line
pub fn answer_line(registry: &Registry, line: &[u8]) -> Option<Reply> {
    let parsed = if nests_deeper_than(line, MAX_DEPTH) {
        Err(format!(
            "arrays and objects nest deeper than {MAX_DEPTH} levels"
        ))
    } else {
        serde_json::from_slice::<Value>(line).map_err(|error| error.to_string())
    };
    let (reply, waits_for_db) = match parsed {
        Err(error) => {
            let error = RpcError::new(ErrorCode::ParseError, error);
            (Some(error_reply(Value::Null, &error)), false)
        }
        Ok(Value::Array(calls)) if calls.is_empty() || calls.len() > MAX_BATCH => {
            let error = RpcError::new(
                ErrorCode::InvalidRequest,
                format!("a batch holds 1 to {MAX_BATCH} calls, not {}", calls.len()),
            );
            (Some(error_reply(Value::Null, &error)), false)
        }
        Ok(Value::Array(calls)) => {
            let mut waits_for_db = false;
            let mut replies = Vec::new();
            for call in calls {
                let (reply, waits) = answer_request(registry, call);
                replies.extend(reply);
                waits_for_db |= waits;
            }
            let reply = (!replies.is_empty()).then_some(Value::Array(replies));
            (reply, waits_for_db)
        }
        Ok(request) => answer_request(registry, request),
    };
    reply.map(|reply| Reply {
        line: to_line(&reply),
        waits_for_db,
    })
}
// ANCHOR_END: answer_line

/// Checks and runs one request; `None` for a notification (valid and
/// without `id`: the client asked for no reply, even if the call failed).
fn answer_request(registry: &Registry, request: Value) -> (Option<Value>, bool) {
    let invalid = |id: Value, message: &str| {
        let error = RpcError::new(ErrorCode::InvalidRequest, message);
        (Some(error_reply(id, &error)), false)
    };
    let Value::Object(mut request) = request else {
        return invalid(Value::Null, "a request is a JSON object");
    };
    let id = match request.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id),
        Some(_) => return invalid(Value::Null, "`id` must be a string, a number or null"),
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(reply_id, "`jsonrpc` must be \"2.0\"");
    }
    let Some(Value::String(method)) = request.remove("method") else {
        return invalid(reply_id, "`method` must be a string");
    };
    let params = match request.remove("params") {
        None => Params::List(Vec::new()),
        Some(Value::Array(values)) => Params::List(values),
        Some(Value::Object(named)) => Params::Named(named),
        Some(_) => return invalid(reply_id, "`params` must be a list or an object"),
    };
    let outcome = registry.call(&method, params);
    let Some(id) = id else {
        return (None, false);
    };
    let reply = match outcome.result {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(error) => error_reply(id, &error),
    };
    (Some(reply), outcome.waits_for_db)
}

/// Whether `[` and `{` (outside strings) nest deeper than `limit`, found
/// without parsing, so without recursion. Broken JSON is left to the
/// parser to report.
fn nests_deeper_than(line: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in line {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            (false, _, _) => {}
        }
    }
    false
}

/// One message as one line, newline included. Value's Display writes
/// compact JSON, which never contains a raw newline (one inside a string is
/// escaped): the framing holds.
fn to_line(message: &Value) -> Vec<u8> {
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    line
}

fn error_reply(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "error": error.to_json(), "id": id})
}

#[cfg(test)]
mod tests;
