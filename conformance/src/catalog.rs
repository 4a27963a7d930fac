//! Every check of the suite with what a student needs to read its verdict:
//! the mode it runs in, the rule of the contract it checks in one line, and
//! the book section that explains the rule. The `check` binary runs checks
//! from here; the models' `cargo test` runs the same functions through
//! [`crate::suite!`] (a test below keeps the two lists equal).

use crate::Target;

/// One check of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub name: &'static str,
    /// The `--mode` it starts the server in (the first, if several).
    pub mode: &'static str,
    /// The rule, as the contract states it.
    pub rule: &'static str,
    /// Where the book explains it: a page of `docs/src` and a heading.
    pub book: &'static str,
    pub run: fn(&Target),
}

/// The concurrency-shape check, which also needs the shape the server
/// claims; the checker runs it with `--shape`.
pub const SHAPE: Check = Check {
    name: "concurrency_shape",
    mode: "http",
    rule: "16 concurrent fake-DB requests are served as the claimed shape: one at a time, \
           N at a time, or all at once",
    book: "contract.md#the-concurrency-shapes",
    // The checker runs it with the shape the user claims; without one
    // there is nothing to compare with.
    run: |_| crate::skip("needs --shape: which shape the server claims"),
};

macro_rules! catalog {
    ($($name:ident, $mode:literal, $book:literal, $rule:literal;)*) => {
        /// Every check but the shape, in the suite's order.
        pub const CHECKS: &[Check] = &[$(Check {
            name: stringify!($name),
            mode: $mode,
            rule: $rule,
            book: $book,
            run: crate::$name,
        }),*];
    };
}

catalog! {
    echo_round_trip, "echo", "contract.md#echo",
        "every byte received is sent back, in order, unchanged";
    echo_megabyte_full_duplex, "echo", "contract.md#echo",
        "1 MiB written while reading: the echo never waits for the whole input";
    echo_byte_by_byte, "echo", "contract.md#echo",
        "bytes arriving one at a time are echoed like any others";
    echo_half_close, "echo", "contract.md#echo",
        "after the client's half-close the server sends what is pending, then closes";
    echo_many_sequential_clients, "echo", "contract.md#echo",
        "50 clients one after another are each served";
    echo_backpressure_bounds_unread_output, "echo", "contract.md#echo",
        "a client that does not read stops being read (at most 64 KiB unsent), nothing is lost";
    non_reading_client_is_dropped, "echo", "contract.md#stopping-and-surviving",
        "a client that never reads is given up after the idle timeout; others are served";
    http_get, "http", "contract.md#http-the-labs-fake-database-page",
        "GET / waits for the fake DB, then 200 with the lab's page and the contract's headers";
    http_db_wait_costs_no_cpu, "http", "contract.md#http-the-labs-fake-database-page",
        "a request waiting 1 s for the fake DB costs the server at most 0.2 s of CPU";
    http_head, "http", "contract.md#http-the-labs-fake-database-page",
        "HEAD / has GET's headers and no body";
    http_keep_alive, "http", "contract.md#http-the-labs-fake-database-page",
        "HTTP/1.1 keeps the connection open for the next request";
    http_pipelined, "http", "contract.md#http-the-labs-fake-database-page",
        "requests sent together are answered in order";
    http_1_0_closes, "http", "contract.md#http-the-labs-fake-database-page",
        "HTTP/1.0 without keep-alive: the server closes after the response";
    http_connection_close_is_honoured, "http", "contract.md#http-the-labs-fake-database-page",
        "HTTP/1.1 with Connection: close: the response says close and the server closes";
    http_1_0_keep_alive, "http", "contract.md#http-the-labs-fake-database-page",
        "HTTP/1.0 with Connection: keep-alive stays open and says so";
    http_split_request, "http", "contract.md#http-the-labs-fake-database-page",
        "a request may arrive in any number of pieces (one byte per read)";
    http_body_is_discarded, "http", "contract.md#http-the-labs-fake-database-page",
        "a Content-Length body is read and discarded, so the connection stays in sync";
    http_bad_request, "http", "contract.md#errors",
        "a malformed request line is 400, then close";
    http_not_found_keeps_connection, "http", "contract.md#errors",
        "another path is 404 at once (no DB wait) and the connection stays open";
    http_method_not_allowed, "http", "contract.md#errors",
        "a method other than GET/HEAD is 405 with Allow: GET, HEAD; its body is discarded";
    http_head_too_large, "http", "contract.md#errors",
        "a request head over 8 KiB is 431, then close";
    http_too_many_headers, "http", "contract.md#errors",
        "more than 64 headers is 431, then close";
    http_chunked_body, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "a chunked body is decoded and discarded; the next request is answered";
    http_framing_errors, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "ambiguous or unknown Transfer-Encoding is 400 or 501, then close";
    http_body_too_large, "http", "contract.md#errors",
        "a Content-Length over 1 MiB is 413, then close";
    http_lingering_close_lets_a_whole_body_arrive, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "a client that writes a whole 3 MB body before reading still sees the 413 (lingering close)";
    http_request_timeout, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "a request not complete within the idle timeout of its first byte is 408, then close";
    http_trickled_request_is_cut, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "slowloris: a trickled request is cut at its deadline; others are served meanwhile";
    http_host_is_checked, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "HTTP/1.1 needs exactly one valid Host (else 400); HTTP/1.0 may omit it";
    http_head_error_has_no_body, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "an error answer to HEAD has no body";
    http_blank_lines_are_ignored, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "blank lines before a request are ignored; after a half-close both answers come";
    http_stray_blank_line_is_not_a_request, "http", "contract.md#hardened-the-rules-a-public-server-needs",
        "a stray blank line is not a request: no 408, a silent close at the idle timeout";
    idle_connection_is_closed, "echo", "contract.md#flags",
        "a connection silent for --idle-timeout is closed, not before, and waiting costs no CPU";
    reset_client_does_not_hurt_next, "echo", "contract.md#stopping-and-surviving",
        "a client that resets mid-response affects only its own connection";
    sigterm_finishes_in_flight_request, "http", "contract.md#stopping-and-surviving",
        "SIGTERM: the request in flight is answered (Connection: close), then exit 0";
    busy_port_exits_1, "echo", "contract.md#starting-and-failing-to-start",
        "a busy port: one line on stderr naming the address and the reason, exit 1";
    bad_flag_exits_2, "echo", "contract.md#starting-and-failing-to-start",
        "an unknown flag or a duration without a unit: exit 2";
    version_and_help, "echo", "contract.md#flags",
        "--help names the contract's flags; --version works";
    rpc_func1_returns_9, "rpc", "rpc.md#framing-one-json-value-per-line",
        "func1(1, 2, 3) over one line is 9; after the client's half-close the server closes";
    rpc_params_and_types, "rpc", "rpc.md#the-registry-types-instead-of-inspect",
        "positional and named params; ints, strings, lists, maps; the id comes back as sent";
    rpc_errors_have_codes_and_types, "rpc", "rpc.md#the-error-model",
        "a failure has its JSON-RPC code and data.type; the connection stays usable";
    rpc_introspection, "rpc", "rpc.md#the-registry-types-instead-of-inspect",
        "rpc.list_methods names the functions; rpc.describe their params";
    rpc_notifications_and_batches, "rpc", "rpc.md#framing-one-json-value-per-line",
        "a notification has no reply; a batch gets one array, in order; [] is -32600";
    rpc_pipelined_in_order, "rpc", "rpc.md#framing-one-json-value-per-line",
        "200 requests in one write: every reply, in order";
    rpc_query_waits_for_the_db, "rpc", "rpc.md#framing-one-json-value-per-line",
        "query answers after --db-latency; pipelined queries wait together";
    rpc_bad_input_is_answered, "rpc", "rpc.md#the-error-model",
        "garbage, binary and deep nesting each get an error reply; the connection goes on";
    rpc_line_over_one_mebibyte_closes, "rpc", "rpc.md#framing-one-json-value-per-line",
        "a line over 1 MiB is -32600, then close; an endless line is not buffered";
    rpc_client_that_never_reads_is_bounded, "rpc", "rpc.md#framing-one-json-value-per-line",
        "a client that never reads stops being read; every reply is there when it does";
    rpc_reset_mid_batch_does_not_hurt_others, "rpc", "contract.md#stopping-and-surviving",
        "a client that resets mid-batch affects only itself";
    rpc_sigterm_finishes_query_in_flight, "rpc", "contract.md#stopping-and-surviving",
        "SIGTERM: the query in flight is answered, then exit 0";
    files_serve_the_tree, "files", "files.md#the-rules",
        "files under the root, byte for byte, with Content-Type from the extension";
    files_head_has_lengths_and_no_body, "files", "files.md#the-rules",
        "HEAD announces GET's Content-Length and sends no body";
    files_refusals, "files", "files.md#path-security",
        "missing 404, directory without index 403, .. and symlinks out 403, bad escapes 400";
    files_pipelined_keep_alive, "files", "files.md#the-rules",
        "pipelined requests on one connection, answered in order";
    files_large_file_keeps_memory_flat, "files", "files.md#streaming-and-backpressure",
        "a 50 MB file is streamed: the server's memory stays flat";
    files_browser_burst, "files", "files.md#the-rules",
        "6 keep-alive connections fetching 40 files at once are all served";
    files_shrinking_file_ends_only_its_connection, "files", "files.md#streaming-and-backpressure",
        "a file that shrinks while sent ends only its connection, logged, cut but never padded";
    files_deleted_file_is_sent_or_cut, "files", "files.md#streaming-and-backpressure",
        "a file deleted while sent comes whole (the open descriptor keeps it) or cut; then 404";
    files_unreadable_is_403, "files", "files.md#the-rules",
        "a file or directory the server may not read (chmod 000) is 403; the rest is served";
    files_stalled_reader_does_not_hurt_others, "files", "contract.md#stopping-and-surviving",
        "a client that stops reading a 50 MB file delays none of 100 others past the idle timeout";
    files_root_must_be_a_directory, "files", "files.md#the-rules",
        "a --root that is not a readable directory: one line on stderr, exit 2";
    axum_quote, "axum", "apps.md#the-axum-app",
        "the axum app's GET /quote is JSON; HEAD, 405, 404 and pipelining as in http mode";
}

/// The check called `name`, the shape check included.
pub fn find(name: &str) -> Option<&'static Check> {
    CHECKS
        .iter()
        .chain(std::iter::once(&SHAPE))
        .find(|check| check.name == name)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The names `suite!` turns into tests, read from its source.
    fn suite_names() -> Vec<String> {
        let source = include_str!("lib.rs");
        let start = source.find("@tests $binary;").expect("the suite's list");
        let list = &source[start + "@tests $binary;".len()..];
        let list = &list[..list.find(')').expect("the list ends")];
        list.split(',')
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .collect()
    }

    #[test]
    fn the_catalog_lists_exactly_the_suites_checks() {
        let catalog: Vec<&str> = CHECKS.iter().map(|check| check.name).collect();
        assert_eq!(catalog, suite_names());
    }

    /// How mdBook turns a heading into an anchor.
    fn slug(heading: &str) -> String {
        heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|character| match character {
                ' ' => Some('-'),
                '-' | '_' => Some(character),
                _ if character.is_alphanumeric() => Some(character),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn every_book_reference_is_a_heading_of_the_book() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src");
        for check in CHECKS.iter().chain([&SHAPE]) {
            let (page, anchor) = check.book.split_once('#').expect("page#anchor");
            let text = std::fs::read_to_string(docs.join(page))
                .unwrap_or_else(|error| panic!("{}: {page}: {error}", check.name));
            let found = text
                .lines()
                .filter_map(|line| line.strip_prefix('#'))
                .any(|heading| slug(heading.trim_start_matches('#')) == anchor);
            assert!(found, "{}: no heading for #{anchor} in {page}", check.name);
        }
    }
}
