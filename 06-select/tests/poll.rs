//! `06-select --syscall poll`: the whole conformance suite again on poll(2),
//! and the lesson of poll: descriptors past select's FD_SETSIZE are fine.

use conformance::{Shape, Target};

const BINARY: &str = env!("CARGO_BIN_EXE_06-select");

conformance::suite!(
    Target::exe_with(BINARY, &["--syscall", "poll"]),
    Shape::Unlimited
);

/// It really is poll: the start-up line says so.
#[test]
fn the_start_up_line_names_poll() {
    let server = conformance::Server::start(BINARY, &["--syscall", "poll"]);
    assert!(
        server.startup_line().contains(" readiness=poll pid="),
        "{}",
        server.startup_line()
    );
    let server = conformance::Server::start(BINARY, &[]);
    assert!(
        server.startup_line().contains(" readiness=select pid="),
        "select is the default: {}",
        server.startup_line()
    );
    let (status, stderr) = conformance::run_to_exit(BINARY, &["--syscall", "epoll"]);
    assert_eq!(
        status.code(),
        Some(2),
        "an unknown syscall is a usage error"
    );
    assert!(
        stderr.contains("select") && stderr.contains("poll"),
        "{stderr}"
    );
}

/// 5,000 clients at once, every one echoing: descriptors far past 1024,
/// where select has to turn connections away (see `select.rs`).
#[test]
fn five_thousand_connections_all_echo_past_fd_setsize() {
    conformance::scale::many_connections_all_echo(BINARY, 5000, &["--syscall", "poll"]);
}

/// Out of descriptors: the listener leaves the array for a moment instead
/// of spinning, and the server accepts again once fds are free.
#[test]
fn out_of_descriptors_is_logged_once_and_survived() {
    conformance::scale::out_of_file_descriptors_is_survived(BINARY, &["--syscall", "poll"]);
}
