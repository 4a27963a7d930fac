//! One complete line in, zero or one reply line out: parsing, requests,
//! notifications, batches, and the limits on what one line may ask for.

use serde_json::{Value, json};

use super::error::{ErrorCode, RpcError};
use super::registry::{Params, Registry};

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
pub(super) fn to_line(message: &Value) -> Vec<u8> {
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    line
}

pub(super) fn error_reply(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "error": error.to_json(), "id": id})
}
