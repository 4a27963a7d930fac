//! What 02-thread-per-client's model promises: one named thread per
//! connection, all connections served at once, threads gone when their
//! clients leave, and a refused thread costs one connection, not the server.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use conformance::{Client, Server, process_exists};

const BINARY: &str = env!("CARGO_BIN_EXE_02-thread-per-client");
/// The server's threads besides the connections: main (accepting) and the
/// signal watcher.
const BASE_THREADS: usize = 2;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Threads of the server, from /proc: the tests that count them run on
/// Linux only (elsewhere they are ignored, saying why).
fn thread_count(pid: u32) -> usize {
    conformance::procinfo::thread_count(pid).unwrap_or(0)
}

/// Polls until `condition` holds, for at most `limit`.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    condition()
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("set a read timeout");
    stream
}

/// Sends `message` and reads its echo; `None` if the server closed the
/// connection (or reset it) instead.
fn echo(stream: &mut TcpStream, message: &[u8]) -> Option<Vec<u8>> {
    stream.write_all(message).ok()?;
    let mut answer = vec![0; message.len()];
    match stream.read_exact(&mut answer) {
        Ok(()) => Some(answer),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no echo and no close within {READ_TIMEOUT:?}")
        }
        Err(_) => None,
    }
}

/// 200 clients connect and stay connected; then each one's echo comes
/// back while all the others are still open. A pool of N threads would
/// stall at client N+1 here. Afterwards the threads are gone.
#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "counts threads in /proc")]
fn two_hundred_open_connections_are_served_at_once() {
    const CLIENTS: usize = 200;
    let server = Server::start(BINARY, &["--mode", "echo", "--idle-timeout", "60s"]);
    let mut clients: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(&server)).collect();
    let started = Instant::now();
    for (index, client) in clients.iter_mut().enumerate() {
        let message = format!("client {index}\n");
        let answer = echo(client, message.as_bytes()).expect("an echo, not a close");
        assert_eq!(answer, message.as_bytes());
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "200 echoes took {:?}",
        started.elapsed()
    );
    let threads = thread_count(server.pid);
    assert!(
        threads >= CLIENTS + BASE_THREADS,
        "one thread per connection: {threads} threads for {CLIENTS} connections"
    );
    drop(clients);
    assert!(
        eventually(Duration::from_secs(10), || thread_count(server.pid)
            == BASE_THREADS),
        "threads end with their connections; still {}",
        thread_count(server.pid)
    );
}

/// Concurrent requests are served by distinct threads, named after their
/// connection, as the X-Worker header shows.
#[test]
fn concurrent_requests_show_distinct_connection_threads() {
    const CLIENTS: usize = 8;
    let server = Server::start(BINARY, &["--mode", "http", "--db-latency", "300ms"]);
    let together = Arc::new(Barrier::new(CLIENTS));
    let requests: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let addr = server.addr;
            let together = Arc::clone(&together);
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                together.wait();
                let response = client.get("/");
                assert_eq!(response.status, 200);
                response
                    .header("X-Worker")
                    .expect("an X-Worker header")
                    .to_string()
            })
        })
        .collect();
    let mut workers: Vec<String> = requests
        .into_iter()
        .map(|request| request.join().expect("the client finished"))
        .collect();
    let expected_pid = format!("pid={} ", server.pid);
    for worker in &workers {
        assert!(worker.starts_with(&expected_pid), "X-Worker: {worker}");
        assert!(worker.contains(" thread=conn-"), "X-Worker: {worker}");
    }
    workers.sort();
    workers.dedup();
    assert_eq!(workers.len(), CLIENTS, "one thread each: {workers:?}");
}

/// When the OS refuses a thread (here: little address space left for
/// stacks, so `pthread_create` fails with EAGAIN), that connection is
/// closed and logged; the server keeps serving and recovers once threads
/// end.
#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "counts threads in /proc; limits a running process with prlimit(1)"
)]
fn refused_thread_closes_one_connection_and_the_server_goes_on() {
    let server = Server::start(BINARY, &["--mode", "echo", "--idle-timeout", "60s"]);
    assert!(eventually(Duration::from_secs(5), || thread_count(
        server.pid
    ) == BASE_THREADS));
    // Room for some 2 MiB thread stacks (about 15, less what malloc
    // reserves for new threads' arenas), not for 40. The limit counts from
    // the address space at the moment it is set: a 64 MiB malloc arena that
    // a thread of the server maps between our reading and `prlimit` would
    // eat the whole headroom (under load that happened in 2 of 7 runs), so
    // the size is read again after, and the limit set anew until nothing
    // was mapped in between.
    let vsize =
        || conformance::procinfo::virtual_bytes(server.pid).expect("the address space size");
    for _ in 0..50 {
        let before = vsize();
        let limit = before + 40 * 1024 * 1024;
        let prlimit = Command::new("prlimit")
            .arg(format!("--pid={}", server.pid))
            // The soft limit only: it may be raised again next round.
            .arg(format!("--as={limit}:"))
            .status();
        match prlimit {
            Ok(status) => assert!(status.success(), "prlimit failed: {status}"),
            Err(error) => {
                eprintln!("skipped: cannot run prlimit (util-linux): {error}");
                return;
            }
        }
        if vsize() == before {
            break;
        }
    }
    let mut clients: Vec<TcpStream> = (0..40).map(|_| connect(&server)).collect();
    let served = clients
        .iter_mut()
        .filter_map(|client| echo(client, b"ping"))
        .count();
    assert!(served > 0, "some connections got a thread");
    assert!(served < 40, "the limit refused some threads");
    assert!(process_exists(server.pid), "the server survived");
    assert!(
        server.stderr().contains("cannot start a thread for"),
        "the refusal is logged: {}",
        server.stderr()
    );
    drop(clients);
    assert!(eventually(Duration::from_secs(10), || thread_count(
        server.pid
    ) == BASE_THREADS));
    let mut client = connect(&server);
    assert_eq!(echo(&mut client, b"again").as_deref(), Some(&b"again"[..]));
}

/// Out of file descriptors in the accept loop: logged once, backed off
/// (no spinning core), and accepting again once clients leave.
#[test]
fn out_of_descriptors_is_survived() {
    conformance::scale::out_of_file_descriptors_is_survived(BINARY, &[]);
}
