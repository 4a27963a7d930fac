//! `loadgen`: the load generator of the concurrency-models workspace.
//!
//! It is a client only, meant for servers on the same machine (loopback).
//! [`run`] takes a [`Config`] (what to measure) and returns a [`Report`];
//! [`run_observed`] does the same while someone watches (a progress line,
//! a live feed of seconds: [`Observe`]). Four modes:
//!
//! - echo: connections that send messages and check the echo;
//! - http: `GET` requests as Locust-like users, as a closed loop over N
//!   connections, or as an open loop at a fixed rate;
//! - hold: many idle connections, opened at a set rate and kept;
//! - rpc: JSON-RPC calls (`func1` or `query`), every result checked, under
//!   the same loads as HTTP, optionally pipelined.
//!
//! The binary (`src/main.rs`) is a thin shell around [`cli`]. The model
//! comparison and the race are another crate (`bench`) built on this one.
//!
//! Module map: [`config`] says what to do, [`observe`] who watches,
//! [`stats`] counts (histograms, errors), [`resources`] reads the server's
//! process tree from `/proc`, [`limits`] checks the client's own fd and
//! port limits, [`report`] turns it all into a summary table, JSON and
//! CSV, and [`locust`] into Locust's CSV files. `run.rs` is the loop every
//! mode shares.

pub mod cli;
pub mod config;
pub mod duration;
pub mod echo;
pub mod hold;
pub mod http;
pub mod limits;
pub mod locust;
pub mod observe;
pub mod report;
pub mod resources;
pub mod rpc;
mod run;
pub mod stats;

pub use config::{
    Close, CommonConfig, Config, EchoConfig, HoldConfig, HttpConfig, HttpLoad, RpcCall, RpcConfig,
};
pub use observe::Observe;
pub use report::{Headline, Report};
pub use run::client_runtime;

/// Runs one load to its report, unwatched.
pub async fn run(config: Config) -> anyhow::Result<Report> {
    run_observed(config, Observe::default()).await
}

/// Runs one load to its report while `observe` watches.
pub async fn run_observed(config: Config, observe: Observe) -> anyhow::Result<Report> {
    match config {
        Config::Echo(config) => echo::run_echo(config, &observe).await,
        Config::Http(config) => http::run_http(config, &observe).await,
        Config::Hold(config) => hold::run_hold(config, &observe).await,
        Config::Rpc(config) => rpc::run_rpc(config, &observe).await,
    }
}
