//! Checks of scale, for the models that serve many clients from few threads
//! (02, 06-11): thousands of connections held at once, surviving an
//! exhausted descriptor table, a graceful shutdown with a thousand clients
//! connected, and one with idle and busy connections. Each takes the
//! model's extra flags.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::checks::PAGE;
use crate::client::Client;
use crate::procinfo::{self, cpu_ticks, open_descriptors, process_exists};
use crate::server::Server;

/// `clients` connections open at the same time: each sends its own message
/// before any is read back, and each gets exactly its own bytes back. The
/// server's /proc fd table shows them all open at once.
pub fn many_connections_all_echo(binary: &str, clients: usize, extra_args: &[&str]) {
    let started = Instant::now();
    raise_own_open_file_limit();
    let mut args = vec!["--mode", "echo", "--idle-timeout", "60s"];
    args.extend_from_slice(extra_args);
    let server = Server::start(binary, &args);
    let streams: Vec<TcpStream> = (0..clients)
        .map(|index| {
            if index % 250 == 249 {
                thread::sleep(Duration::from_millis(10)); // a sane connect pace
            }
            connect(server.addr)
        })
        .collect();
    let message = |index: usize| format!("client {index:05} says hello\n");
    for (index, mut stream) in streams.iter().enumerate() {
        stream.write_all(message(index).as_bytes()).expect("send");
    }
    for (index, mut stream) in streams.iter().enumerate() {
        let expected = message(index);
        let mut answer = vec![0; expected.len()];
        stream.read_exact(&mut answer).expect("read the echo");
        assert_eq!(answer, expected.as_bytes(), "connection {index}");
    }
    match open_descriptors(server.pid) {
        Some(open) => assert!(
            open >= clients,
            "the server holds {open} descriptors for {clients} clients"
        ),
        None => procinfo::report_skip("many connections", "the server's open descriptors"),
    }
    assert!(process_exists(server.pid));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{clients} connections took {:?}",
        started.elapsed()
    );
}

/// SIGTERM with one request waiting for the DB and idle connections open
/// (the async models wake a task waiting in `read` by half-closing its
/// socket): the request is answered with `Connection: close`, the idle
/// ones are closed, and the server exits 0 well within the grace period.
pub fn sigterm_closes_idle_and_finishes_busy(binary: &str, extra_args: &[&str]) {
    let mut args = vec!["--mode", "http", "--db-latency", "1s", "--log", "debug"];
    args.extend_from_slice(extra_args);
    let mut server = Server::start(binary, &args);
    let idle: Vec<Client> = (0..10).map(|_| Client::connect(server.addr)).collect();
    let mut busy = Client::connect(server.addr);
    busy.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    server.wait_for_log("recv ", 1, Duration::from_secs(5));
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

/// Out of file descriptors: `accept` fails with EMFILE while clients'
/// connects still succeed (they wait in the kernel's queue). The server
/// logs it once, backs off instead of spinning a core, keeps serving the
/// clients it has, and accepts again once descriptors are free.
pub fn out_of_file_descriptors_is_survived(binary: &str, extra_args: &[&str]) {
    let mut args = vec!["--mode", "echo", "--idle-timeout", "60s"];
    args.extend_from_slice(extra_args);
    let server = Server::start_with_open_file_limit(binary, &args, 40);
    let clients: Vec<TcpStream> = (0..60).map(|_| connect(server.addr)).collect();
    wait_until(|| server.stderr().contains("out of file descriptors"));
    assert!(echoes(&clients[0], 1), "accepted clients are still served");

    match cpu_ticks(server.pid) {
        Some(cpu_before) => {
            thread::sleep(Duration::from_secs(1));
            let cpu_used = cpu_ticks(server.pid).unwrap_or(u64::MAX) - cpu_before;
            // A whole core is `ticks_per_second` ticks (100 on Linux).
            assert!(
                cpu_used < procinfo::ticks_per_second() * 3 / 10,
                "{cpu_used} ticks of CPU in 1 s while out of fds"
            );
        }
        None => procinfo::report_skip("out of descriptors", "the server's CPU time"),
    }
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
    assert!(process_exists(server.pid));
    // The line is logged when accepting resumes; our stderr reader may lag.
    wait_until(|| server.stderr().contains("accepting again"));
}

/// SIGTERM while 1,000 clients sit idle and 10 wait for the fake DB: the
/// 10 get their page, and the server exits 0 well within the grace period
/// (it does not wait the grace out for the idle ones).
pub fn shutdown_with_idle_connections_answers_in_flight(binary: &str, extra_args: &[&str]) {
    const DB_LATENCY: Duration = Duration::from_secs(3);
    raise_own_open_file_limit();
    // Debug logging: the server says when it has read a request.
    let mut args = vec![
        "--mode",
        "http",
        "--db-latency",
        "3s",
        "--idle-timeout",
        "60s",
        "--log",
        "debug",
    ];
    args.extend_from_slice(extra_args);
    let mut server = Server::start(binary, &args);
    let idle: Vec<TcpStream> = (0..1000)
        .map(|index| {
            if index % 250 == 249 {
                thread::sleep(Duration::from_millis(10)); // a sane connect pace
            }
            connect(server.addr)
        })
        .collect();
    let sent = Instant::now();
    let busy: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut stream = connect(server.addr);
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("send a request");
            stream
        })
        .collect();
    // In flight means read by the server (it logs `recv N bytes`; the idle
    // clients send nothing) while the DB still works.
    server.wait_for_log(" recv ", busy.len(), Duration::from_secs(10));
    // Half a second left for the signal to arrive while the DB still works.
    assert!(
        sent.elapsed() < DB_LATENCY - Duration::from_millis(500),
        "too slow to signal while the DB works: {:?}",
        sent.elapsed()
    );

    let signalled = Instant::now();
    server.signal(Signal::SIGTERM);
    for (index, mut stream) in busy.iter().enumerate() {
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(
            response.starts_with("HTTP/1.1 200 OK") && response.contains("Index page"),
            "request {index} in flight was not answered: {response:?}"
        );
    }
    let status = server.wait_for_exit(Duration::from_secs(10));
    let took = signalled.elapsed();
    assert!(
        status.is_some_and(|status| status.success()),
        "exit status {status:?}"
    );
    // The grace period is 5 s; the DB answers 3 s after the requests.
    assert!(
        took < Duration::from_secs(4),
        "exited {took:?} after SIGTERM"
    );
    drop(idle);
}

/// A client socket whose reads and writes give up rather than hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|error| panic!("connect {addr}: {error}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("set a write timeout");
    stream
}

/// Sends one byte: true if it comes back, false if the server closed the
/// connection (EOF or reset). No answer at all fails the test.
pub fn echoes(mut stream: &TcpStream, byte: u8) -> bool {
    if stream.write_all(&[byte]).is_err() {
        return false; // already reset by the server
    }
    let mut answer = [0; 1];
    match stream.read(&mut answer) {
        Ok(1) => {
            assert_eq!(answer[0], byte, "echoed unchanged");
            true
        }
        Ok(_) => false,
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("no echo and no close within the timeout")
        }
        Err(_) => false,
    }
}

/// Polls `condition` for up to 10 s instead of sleeping and hoping.
pub fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The test process holds thousands of client sockets too: raise its soft
/// open-file limit to the hard one, once.
pub fn raise_own_open_file_limit() {
    static RAISED: Once = Once::new();
    RAISED.call_once(|| {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raise the soft fd limit");
    });
}
