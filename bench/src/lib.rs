//! `bench`: the model comparison and the race, built on the load generator
//! (`loadgen`).
//!
//! - [`compare`]: starts every model, runs the same scenarios against each
//!   with [`loadgen::run`], and writes the results (JSON, CSV, Markdown
//!   tables, SVG plots) that the book includes;
//! - [`race`]: several models at once under the same load, drawn live;
//! - [`timelines`]: who waits where, drawn from the servers' debug logs;
//! - [`cli`]: `bench compare`, `bench race` and `bench timelines`.

pub mod cli;
pub mod compare;
pub mod race;
pub mod timelines;
