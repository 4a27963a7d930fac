//! The async model on both tokio runtimes: all clients wait at once, reads
//! go on while replies are pending, shutdown drains in-flight requests, and
//! thousands of connections are held and served. Plus the `EMFILE` back-off.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use conformance::{Client, Server, Shape};
use nix::sys::signal::Signal;

const BINARY: &str = env!("CARGO_BIN_EXE_09-async");
const PAGE: &str = "<html><head><title>Success</title></head><body>Index page</body></html>";

/// Each test below runs once per runtime flavour.
macro_rules! on_both_runtimes {
    ($($check:ident),* $(,)?) => {
        mod current_thread {
            $( #[test] fn $check() { super::$check(&["--runtime", "current-thread"]); } )*
        }
        mod multi_thread {
            $( #[test] fn $check() { super::$check(&["--runtime", "multi-thread", "--workers", "2"]); } )*
        }
    };
}

on_both_runtimes!(
    sixteen_concurrent_requests_take_one_latency,
    echo_full_duplex_keeps_reading_while_writing,
    pipelined_requests_while_the_db_is_busy,
    sigterm_drains_in_flight_requests,
    five_thousand_concurrent_connections_echo,
);

fn with<'a>(runtime: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
    runtime.iter().chain(args).copied().collect()
}

fn sixteen_concurrent_requests_take_one_latency(runtime: &[&str]) {
    conformance::concurrency_shape(BINARY, Shape::Unlimited, runtime);
}

/// 4 MiB echoed while the client writes and reads at once: a loop that
/// only reads after a write finished (or the reverse) deadlocks once both
/// sides' socket buffers are full.
fn echo_full_duplex_keeps_reading_while_writing(runtime: &[&str]) {
    let server = Server::start(BINARY, &with(runtime, &["--mode", "echo"]));
    let mut client = Client::connect(server.addr);
    let payload: Vec<u8> = (0..4 * 1024 * 1024)
        .map(|index| (index % 251) as u8)
        .collect();
    let mut writer = client.stream().try_clone().expect("clone");
    let sent = payload.clone();
    let sender = thread::spawn(move || writer.write_all(&sent).expect("send"));
    let mut echoed = vec![0; payload.len()];
    client.read_exact(&mut echoed);
    sender.join().expect("sender");
    assert!(echoed == payload, "the echo differs");
}

/// Three pipelined requests with a 300 ms DB, sent in one write: answered
/// in order, each `GET /` after its own DB wait, the 404 without one.
fn pipelined_requests_while_the_db_is_busy(runtime: &[&str]) {
    let server = Server::start(
        BINARY,
        &with(runtime, &["--mode", "http", "--db-latency", "300ms"]),
    );
    let mut client = Client::connect(server.addr);
    let started = Instant::now();
    client.send(b"GET / HTTP/1.1\r\n\r\nGET /missing HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_eq!(client.read_response(false).body_text(), PAGE);
    assert_eq!(client.read_response(false).status, 404);
    assert_eq!(client.read_response(false).body_text(), PAGE);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(570) && elapsed < Duration::from_secs(3),
        "two DB waits in sequence: {elapsed:?}"
    );
}

/// SIGTERM with one request waiting for the DB and idle connections open:
/// the request is answered, idle ones are closed, the server exits 0 well
/// within the 5 s grace period.
fn sigterm_drains_in_flight_requests(runtime: &[&str]) {
    let mut server = Server::start(
        BINARY,
        &with(runtime, &["--mode", "http", "--db-latency", "1s"]),
    );
    let idle: Vec<Client> = (0..10).map(|_| Client::connect(server.addr)).collect();
    let mut busy = Client::connect(server.addr);
    busy.send(b"GET / HTTP/1.1\r\n\r\n");
    thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGTERM);
    let response = busy.read_response(false);
    assert_eq!(response.body_text(), PAGE);
    assert_eq!(response.header("Connection"), Some("close"));
    for mut client in idle {
        assert!(
            client.is_closed_within(Duration::from_secs(3)),
            "idle closed"
        );
    }
    let status = server
        .wait_for_exit(Duration::from_secs(8))
        .expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
}

/// 5,000 connections open at once, then every one echoes its own message.
/// Connects come from 4 threads at loopback speed; the listen backlog
/// (4096) absorbs the burst. Bounded: 60 s overall, 15 s per read.
fn five_thousand_concurrent_connections_echo(runtime: &[&str]) {
    const CONNECTIONS: usize = 5000;
    const THREADS: usize = 4;
    raise_own_open_file_limit();
    let server = Server::start(BINARY, &with(runtime, &["--mode", "echo"]));
    let started = Instant::now();
    let addr = server.addr;
    let connect = |first: usize| {
        thread::spawn(move || -> Vec<(usize, TcpStream)> {
            (first..CONNECTIONS)
                .step_by(THREADS)
                .map(|index| (index, connect_with_retry(addr)))
                .collect()
        })
    };
    let groups: Vec<Vec<(usize, TcpStream)>> = (0..THREADS)
        .map(connect)
        .map(|handle| handle.join().expect("connector"))
        .collect();
    assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), CONNECTIONS);
    // All are accepted and held by the server at the same time.
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_descriptors(server.pid) < CONNECTIONS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        open_descriptors(server.pid) >= CONNECTIONS,
        "the server holds all {CONNECTIONS} connections"
    );
    let echoers: Vec<_> = groups
        .into_iter()
        .map(|group| {
            thread::spawn(move || {
                for (index, stream) in &group {
                    let message = format!("connection {index}\n");
                    (&*stream).write_all(message.as_bytes()).expect("send");
                }
                for (index, stream) in &group {
                    let message = format!("connection {index}\n");
                    let mut answer = vec![0; message.len()];
                    (&*stream).read_exact(&mut answer).expect("echo");
                    assert_eq!(answer, message.as_bytes(), "connection {index}");
                }
            })
        })
        .collect();
    for echoer in echoers {
        echoer.join().expect("every connection echoed correctly");
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "5,000 connections took {:?}",
        started.elapsed()
    );
}

/// Out of file descriptors: accept is paused and retried, logged once,
/// no core spinning, and the server serves again once descriptors free up.
#[test]
fn out_of_descriptors_is_logged_once_and_survived() {
    let server = Server::start_with_open_file_limit(BINARY, &["--mode", "echo"], 40);
    let clients: Vec<TcpStream> = (0..60).map(|_| connect_with_retry(server.addr)).collect();
    let cpu_before = cpu_ticks(server.pid);
    thread::sleep(Duration::from_secs(1));
    let cpu_used = cpu_ticks(server.pid) - cpu_before;
    // 100 ticks per second is a whole core; a back-off uses almost nothing.
    assert!(
        cpu_used < 30,
        "{cpu_used} ticks of CPU in 1 s while out of fds"
    );
    let stderr = server.stderr();
    assert_eq!(
        stderr.matches("accept failed").count(),
        1,
        "logged once: {stderr}"
    );
    drop(clients);
    let mut client = Client::connect(server.addr);
    client.send(b"back");
    let mut answer = [0; 4];
    client.read_exact(&mut answer);
    assert_eq!(&answer, b"back");
}

#[test]
fn x_worker_names_thread_and_task() {
    let server = Server::start(BINARY, &["--mode", "http", "--db-latency", "0ms"]);
    let response = Client::connect(server.addr).get("/");
    let worker = response.header("X-Worker").expect("X-Worker");
    let prefix = format!("pid={} thread=worker-", server.pid);
    assert!(
        worker.starts_with(&prefix) && worker.contains(" task="),
        "{worker}"
    );
}

#[test]
fn runtime_flags_are_checked() {
    let (status, stderr) =
        conformance::run_to_exit(BINARY, &["--runtime", "current-thread", "--workers", "4"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let (status, stderr) = conformance::run_to_exit(BINARY, &["--runtime", "fibers"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    let (status, stderr) = conformance::run_to_exit(BINARY, &["--workers", "0"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
}

/// The test process holds thousands of client sockets too.
fn raise_own_open_file_limit() {
    static RAISED: Once = Once::new();
    RAISED.call_once(|| {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raise the soft fd limit");
    });
}

/// Connects, retrying a few times: under a burst the kernel may refuse
/// briefly. Every stream gets timeouts so a hung server fails the test.
fn connect_with_retry(addr: SocketAddr) -> TcpStream {
    let mut attempt = 0;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(15)))
                    .expect("timeout");
                stream
                    .set_write_timeout(Some(Duration::from_secs(15)))
                    .expect("timeout");
                return stream;
            }
            Err(error) if attempt < 5 => {
                attempt += 1;
                eprintln!("connect {addr} failed ({error}); retrying");
                thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("connect {addr}: {error}"),
        }
    }
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |entries| entries.count())
}

/// User plus system CPU time of a process, in clock ticks (/proc/PID/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let (_, rest) = stat.rsplit_once(')').expect("a command name");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}
