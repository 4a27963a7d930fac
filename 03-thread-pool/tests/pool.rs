//! What 03-thread-pool's model promises: exactly `--workers` named threads,
//! and the pool's lesson: a worker belongs to one connection for its whole
//! life, so with N clients connected, client N+1 waits.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use conformance::{Client, Server, run_to_exit};

const BINARY: &str = env!("CARGO_BIN_EXE_03-thread-pool");
/// The server's threads besides the workers: main and the signal watcher.
const BASE_THREADS: usize = 2;

/// Threads of the server, from /proc: the tests that count them run on
/// Linux only (elsewhere they are ignored, saying why).
fn thread_count(pid: u32) -> usize {
    conformance::procinfo::thread_count(pid).unwrap_or(0)
}

/// Waits (at most 5 s) for the workers to start: the start-up line comes
/// before them, and then checks the count stays put.
fn assert_threads(server: &Server, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while thread_count(server.pid) != expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(thread_count(server.pid), expected, "threads of the server");
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    stream
}

fn assert_echo(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).expect("send");
    let mut answer = vec![0; message.len()];
    stream.read_exact(&mut answer).expect("the echo");
    assert_eq!(answer, message);
}

/// Two idle keep-alive clients hold both workers; a third client's echo
/// does not come back until one of the first two leaves.
#[test]
fn client_beyond_the_pool_waits_for_a_free_worker() {
    let server = Server::start(
        BINARY,
        &["--workers", "2", "--mode", "echo", "--idle-timeout", "60s"],
    );
    let mut first = connect(&server);
    let mut second = connect(&server);
    // Each echo proves a worker took that connection.
    assert_echo(&mut first, b"first");
    assert_echo(&mut second, b"second");

    let mut third = connect(&server);
    third
        .write_all(b"third")
        .expect("send: the kernel accepts it");
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("set a read timeout");
    let mut answer = [0; 5];
    match third.read(&mut answer) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third client was served while both workers were busy: {other:?}"),
    }
    // Both others are idle, yet nobody answers: the workers are theirs.
    assert_echo(&mut second, b"still mine");

    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("set a read timeout");
    let waited = Instant::now();
    third
        .read_exact(&mut answer)
        .expect("the echo once a worker is free");
    assert_eq!(&answer, b"third");
    assert!(waited.elapsed() < Duration::from_secs(5));
}

/// The pool is fixed: `--workers 3` means three threads, named worker-1 to
/// worker-3, and every response says which of them served it.
#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "counts threads in /proc")]
fn workers_are_fixed_in_number_and_named() {
    let server = Server::start(
        BINARY,
        &["--workers", "3", "--mode", "http", "--db-latency", "0ms"],
    );
    assert_threads(&server, 3 + BASE_THREADS);
    let expected_pid = format!("pid={} ", server.pid);
    let names = ["worker-1", "worker-2", "worker-3"];
    for _ in 0..12 {
        let response = Client::connect(server.addr).get("/");
        assert_eq!(response.status, 200);
        let worker = response.header("X-Worker").expect("an X-Worker header");
        assert!(worker.starts_with(&expected_pid), "X-Worker: {worker}");
        let thread = worker.split("thread=").nth(1).unwrap_or_default();
        assert!(names.contains(&thread), "X-Worker: {worker}");
    }
    // Twelve connections later: no thread more, no thread less.
    assert_threads(&server, 3 + BASE_THREADS);
}

/// Ten workers unless told otherwise, as in the lecture.
#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "counts threads in /proc")]
fn ten_workers_by_default() {
    let server = Server::start(BINARY, &["--mode", "echo"]);
    assert_threads(&server, 10 + BASE_THREADS);
}

#[test]
fn zero_workers_is_refused() {
    let (status, stderr) = run_to_exit(BINARY, &["--workers", "0"]);
    assert_eq!(status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--workers"), "{stderr}");
}
