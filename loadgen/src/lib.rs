//! `loadgen`: the load generator of the concurrency-models workspace.
//!
//! It is a client only, meant for servers on the same machine (loopback),
//! and has four modes, each a public async function that takes a config
//! and returns a [`Report`]:
//!
//! - [`run_echo`]: connections that send messages and check the echo;
//! - [`run_http`]: `GET` requests as Locust-like users, as a closed loop
//!   over N connections, or as an open loop at a fixed rate;
//! - [`run_hold`]: many idle connections, opened at a set rate and kept;
//! - [`run_rpc`]: JSON-RPC calls (`func1` or `query`), every result checked,
//!   under the same loads as HTTP, optionally pipelined.
//!
//! The binary (`src/main.rs`) is a thin shell around [`cli`]; other code
//! calls the run functions directly, as [`compare`] does: it starts every
//! model, runs the same scenarios against each, and writes the results.
//!
//! Module map: [`config`] says what to do, [`stats`] counts (histograms,
//! errors), [`resources`] reads the server's process tree from `/proc`,
//! [`limits`] checks the client's own fd and port limits, [`report`] turns
//! it all into a summary table, JSON and CSV.

pub mod cli;
pub mod compare;
pub mod config;
pub mod duration;
pub mod echo;
pub mod hold;
pub mod http;
pub mod limits;
pub mod report;
pub mod resources;
pub mod rpc;
mod run;
pub mod stats;

pub use config::{
    CommonConfig, Config, EchoConfig, HoldConfig, HttpConfig, HttpLoad, RpcCall, RpcConfig,
};
pub use echo::run_echo;
pub use hold::run_hold;
pub use http::run_http;
pub use report::{Headline, Report};
pub use rpc::run_rpc;
