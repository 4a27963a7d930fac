//! The conformance suite: the same checks for all eleven models, over real
//! sockets against the real binary in a real child process.
//!
//! Each model's `tests/conformance.rs` is one macro call naming its binary
//! and the concurrency shape the contract (the book's Contract chapter)
//! expects of it:
//!
//! ```ignore
//! conformance::suite!(env!("CARGO_BIN_EXE_01-blocking"), Shape::OneAtATime);
//! conformance::suite!(env!("CARGO_BIN_EXE_03-thread-pool"), Shape::AtMost(4), ["--workers", "4"]);
//! ```
//!
//! The `check` binary runs the same checks (listed with their rules in
//! [`catalog`]) against any server, started from any executable or
//! already running: see [`Target`].
//!
//! Every server a test starts is a [`Server`] guard that kills the whole
//! process group when dropped, also when the test panics, so a failing test
//! never leaves a server (or a forked child of one) behind.

pub mod catalog;
mod checks;
mod client;
mod files;
mod lifecycle;
pub mod prefork;
pub mod procinfo;
mod rpc;
pub mod scale;
mod server;
mod skip;
mod target;
pub mod transcript;

pub use checks::*;
pub use client::{Client, Response};
pub use files::*;
pub use lifecycle::*;
pub use procinfo::process_exists;
pub use rpc::*;
pub use server::{QUIET, Server, kill_every_started_server, run_to_exit, says_it_cannot_run_here};
pub use skip::{Skip, skip};
pub use target::{Settings, Target};

/// Expands to one `#[test]` per check, each starting its own server: the
/// binary's path, or a [`Target`] (e.g. one with arguments of its own).
/// Optional extra arguments are passed to the server in the shape test
/// (e.g. `["--workers", "4"]`).
#[macro_export]
macro_rules! suite {
    ($binary:expr, $shape:expr) => {
        $crate::suite!($binary, $shape, []);
    };
    ($binary:expr, $shape:expr, [$($shape_arg:expr),* $(,)?]) => {
        $crate::suite!(@tests $binary;
            echo_round_trip, echo_megabyte_full_duplex, echo_byte_by_byte, echo_half_close,
            echo_many_sequential_clients, echo_backpressure_bounds_unread_output,
            non_reading_client_is_dropped,
            http_get, http_db_wait_costs_no_cpu, http_head, http_keep_alive, http_pipelined, http_1_0_closes,
            http_connection_close_is_honoured,
            http_1_0_keep_alive, http_split_request, http_body_is_discarded,
            http_bad_request, http_not_found_keeps_connection, http_method_not_allowed,
            http_head_too_large, http_too_many_headers, http_chunked_body, http_framing_errors,
            http_body_too_large, http_lingering_close_lets_a_whole_body_arrive, http_request_timeout, http_trickled_request_is_cut,
            http_host_is_checked, http_head_error_has_no_body, http_blank_lines_are_ignored,
            http_stray_blank_line_is_not_a_request, idle_connection_is_closed,
            reset_client_does_not_hurt_next, sigterm_finishes_in_flight_request,
            busy_port_exits_1, bad_flag_exits_2, version_and_help,
            rpc_func1_returns_9, rpc_params_and_types, rpc_errors_have_codes_and_types,
            rpc_introspection, rpc_notifications_and_batches, rpc_pipelined_in_order,
            rpc_query_waits_for_the_db, rpc_bad_input_is_answered,
            rpc_line_over_one_mebibyte_closes, rpc_client_that_never_reads_is_bounded,
            rpc_reset_mid_batch_does_not_hurt_others, rpc_sigterm_finishes_query_in_flight,
            files_serve_the_tree, files_head_has_lengths_and_no_body, files_refusals,
            files_pipelined_keep_alive, files_large_file_keeps_memory_flat,
            files_browser_burst, files_shrinking_file_ends_only_its_connection,
            files_root_must_be_a_directory, axum_quote
        );
        #[test]
        fn concurrency_shape() {
            $crate::concurrency_shape(&$crate::Target::from($binary), $shape, &[$($shape_arg),*]);
        }
    };
    (@tests $binary:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                $crate::$check(&$crate::Target::from($binary));
            }
        )*
    };
}
