//! JSON-RPC's error answers: the codes the server uses, and an error with
//! the `data: {"type", "message"}` that lets a Python client raise the
//! matching exception.

use serde_json::{Value, json};

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
