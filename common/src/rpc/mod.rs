//! JSON-RPC 2.0, one message per line: the protocol of `--mode rpc` (the
//! course's RPC homework), without any I/O.
//!
//! - [`error`]: the error codes and error answers;
//! - [`line`]: one complete line in, zero or one reply line out
//!   ([`answer_line`]): parsing, requests, notifications, batches;
//! - [`registry`]: the functions, registered as typed Rust closures;
//! - [`connection`]: one connection's lines in order, with the fake DB's
//!   deadlines and the bounds on input and output.
//!
//! Try it by hand: `nc 127.0.0.1 9090`, then type
//! `{"jsonrpc":"2.0","method":"func1","params":[1,2,3],"id":1}` and Enter.

pub mod connection;
pub mod error;
pub mod line;
pub mod registry;

pub use connection::RpcConnection;
pub use error::{ErrorCode, RpcError};
pub use line::{MAX_BATCH, MAX_DEPTH, MAX_LINE, Reply, answer_line};
pub use registry::{Params, Registry, standard};

#[cfg(test)]
mod tests;
