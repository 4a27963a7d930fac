//! What is particular to 11-io-uring: thousands of connections, each with a
//! receive in flight but no buffer held for it; surviving an exhausted
//! descriptor table (for accepts, and for a file body's pipe); and a
//! shutdown that must cancel a thousand operations and reap their
//! completions before it may free their buffers and exit.

mod available;

use available::binary_or_skip;

/// 5,000 clients connected at once, every one echoing its own bytes:
/// more completions in one round than the submission queue has entries.
#[test]
fn five_thousand_concurrent_connections_all_echo() {
    conformance::scale::many_connections_all_echo(binary_or_skip!(), 5000, &[]);
}

/// Accepts complete with -EMFILE: a timeout re-arms the accept, no spin.
#[test]
fn out_of_descriptors_is_logged_once_survived_and_does_not_spin() {
    conformance::scale::out_of_file_descriptors_is_survived(binary_or_skip!(), &[]);
}

/// SIGTERM with 1,000 idle receives and 10 fake-DB timeouts in flight.
#[test]
fn shutdown_with_a_thousand_idle_connections_answers_those_in_flight() {
    conformance::scale::shutdown_with_idle_connections_answers_in_flight(binary_or_skip!(), &[]);
}

/// Idle connections cost little more than their sessions: a receive in
/// flight holds no buffer (the kernel picks a provided one only when bytes
/// come). With a 4 KiB buffer per receive this grew by 4.4 KiB each.
#[test]
fn idle_connections_hold_no_receive_buffer() {
    const IDLE: usize = 2000;
    const BOUND: u64 = 2048; // bytes of RSS per idle connection
    let binary = binary_or_skip!();
    conformance::scale::raise_own_open_file_limit();
    let server = conformance::Server::start(binary, &["--mode", "echo", "--idle-timeout", "60s"]);
    // Warm up: the first echo touches the code and one provided buffer.
    let first = conformance::scale::connect(server.addr);
    assert!(conformance::scale::echoes(&first, b'a'));
    let Some(before) = conformance::procinfo::resident_bytes(server.pid) else {
        return conformance::procinfo::report_skip("idle memory", "the server's RSS");
    };
    let idle: Vec<_> = (0..IDLE)
        .map(|index| {
            if index % 250 == 249 {
                std::thread::sleep(std::time::Duration::from_millis(10)); // a sane connect pace
            }
            conformance::scale::connect(server.addr)
        })
        .collect();
    // Accepts complete in order: once the last one echoes, every earlier
    // connection is open and has its receive in flight.
    assert!(conformance::scale::echoes(&idle[IDLE - 1], b'b'));
    let after = conformance::procinfo::resident_bytes(server.pid).expect("the server's RSS");
    let each = after.saturating_sub(before) / IDLE as u64;
    assert!(
        each <= BOUND,
        "{each} bytes of RSS per idle connection ({before} -> {after} for {IDLE})"
    );
    drop(idle);
}

/// A pipe takes two descriptors. Where none are left for one, a large file
/// body is read and sent like a small one: slower, but it still comes
/// whole, and the connection is not lost (it was, before this fallback).
#[test]
fn a_large_body_with_no_descriptors_for_a_pipe_is_copied_whole() {
    let binary = binary_or_skip!();
    let root = tempfile::tempdir().expect("a temp dir");
    let content: Vec<u8> = (0..300_000u32).map(|index| (index % 251) as u8).collect();
    std::fs::write(root.path().join("big.bin"), &content).expect("write big.bin");
    std::fs::write(root.path().join("small.txt"), b"small\n").expect("write small.txt");
    let root = root.path().to_str().expect("a UTF-8 temp path");
    let args = ["--mode", "files", "--root", root, "--log", "debug"];
    let server = conformance::Server::start(binary, &args);
    let mut client = conformance::Client::connect(server.addr);
    // Answered: the connection is accepted and holds its descriptor.
    assert_eq!(client.get("/small.txt").body, b"small\n");
    // A new descriptor takes the lowest free number, which must be below
    // the limit. The limit goes where the second free number is: room for
    // the file the request opens, none for a pipe's two ends. (Counting
    // the open ones is not enough: a server may have inherited a stray
    // descriptor with a high number from the process that started it.)
    let Some(open) = conformance::procinfo::descriptor_numbers(server.pid) else {
        return conformance::procinfo::report_skip("no pipe", "the server's descriptors");
    };
    let limit = (0..)
        .filter(|fd| !open.contains(fd))
        .nth(1)
        .expect("a free number");
    let lowered = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", server.pid))
        .arg(format!("--nofile={limit}:{limit}"))
        .status();
    if !lowered.is_ok_and(|status| status.success()) {
        return conformance::procinfo::report_skip_because(
            "no pipe",
            "prlimit (util-linux) could not lower the server's open-file limit",
        );
    }
    let response = client.get("/big.bin");
    assert_eq!(response.status, 200);
    assert!(response.body == content, "the body differs: {response:?}");
    server.wait_for_log("no pipe", 1, std::time::Duration::from_secs(5));
}
