//! `06-select --syscall poll`: the whole conformance suite again on poll(2),
//! and the lesson of poll: descriptors past select's FD_SETSIZE are fine.

use std::os::unix::fs::PermissionsExt;
use std::sync::OnceLock;

use conformance::Shape;

const BINARY: &str = env!("CARGO_BIN_EXE_06-select");

/// The suite starts a server by its path, with the check's own flags. This
/// path is a two-line shell script that `exec`s 06-select with `--syscall
/// poll` and those flags, so the pid, signals and exit status are the
/// server's own. It is named `06-select` too: checks compare the `Server`
/// header with the name of the binary they started.
fn on_poll() -> &'static str {
    static WRAPPER: OnceLock<String> = OnceLock::new();
    WRAPPER.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("06-on-poll");
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let path = dir.join("06-select");
        let script = format!("#!/bin/sh\nexec '{BINARY}' --syscall poll \"$@\"\n");
        std::fs::write(&path, script).expect("write the wrapper");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make the wrapper executable");
        path.to_str().expect("a UTF-8 path").to_owned()
    })
}

conformance::suite!(on_poll(), Shape::Unlimited);

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
