//! What is particular to 07-epoll: thousands of connections held at once
//! by one thread, and surviving an exhausted descriptor table without
//! spinning.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use conformance::{Client, Server, process_exists};

const BINARY: &str = env!("CARGO_BIN_EXE_07-epoll");

/// 5,000 clients connected at the same time (no FD_SETSIZE here): all are
/// held open, each sends its own message before any is read back, and
/// every one gets exactly its own bytes back.
#[test]
fn five_thousand_concurrent_connections_all_echo() {
    const CLIENTS: usize = 5000;
    let started = Instant::now();
    common::raise_open_file_limit().expect("raise the test's own fd limit");
    let server = Server::start(BINARY, &["--mode", "echo", "--idle-timeout", "60s"]);
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|index| {
            if index % 250 == 249 {
                thread::sleep(Duration::from_millis(10)); // a sane pace
            }
            connect(server.addr)
        })
        .collect();
    let message = |index: usize| format!("client {index:04} says hello\n");
    for (index, mut stream) in clients.iter().enumerate() {
        stream.write_all(message(index).as_bytes()).expect("send");
    }
    for (index, mut stream) in clients.iter().enumerate() {
        let expected = message(index);
        let mut answer = vec![0; expected.len()];
        stream.read_exact(&mut answer).expect("read the echo");
        assert_eq!(answer, expected.as_bytes(), "connection {index}");
    }
    // Every one has answered and none has closed: all 5,000 are open in
    // the server at once (plus stdio, listener, signalfd, epoll).
    let open = std::fs::read_dir(format!("/proc/{}/fd", server.pid))
        .expect("read the server's fd table")
        .count();
    assert!(open >= CLIENTS, "the server holds {open} descriptors");
    assert!(process_exists(server.pid));
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "5,000 connections took {:?}",
        started.elapsed()
    );
}

/// Out of file descriptors: `accept` fails with EMFILE while clients'
/// connects still succeed. The server logs it once, stops watching the
/// listener for a moment instead of spinning, keeps serving its clients,
/// and accepts again once descriptors are free.
#[test]
fn out_of_descriptors_is_logged_once_survived_and_does_not_spin() {
    let server = Server::start_with_open_file_limit(
        BINARY,
        &["--mode", "echo", "--idle-timeout", "60s"],
        40,
    );
    let clients: Vec<TcpStream> = (0..60).map(|_| connect(server.addr)).collect();
    wait_until(|| server.stderr().contains("out of file descriptors"));
    assert!(echoes(&clients[0], 1), "accepted clients are still served");

    let cpu_before = cpu_ticks(server.pid);
    thread::sleep(Duration::from_secs(1));
    let cpu_used = cpu_ticks(server.pid) - cpu_before;
    // /proc counts in USER_HZ = 100 ticks per second: 100 is a whole core.
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
    assert!(process_exists(server.pid));
    // The log line was written before the accept; our reader may lag.
    wait_until(|| server.stderr().contains("accepting again"));
}

/// A client socket whose reads and writes give up rather than hang.
fn connect(addr: SocketAddr) -> TcpStream {
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
fn echoes(mut stream: &TcpStream, byte: u8) -> bool {
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

fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting");
        thread::sleep(Duration::from_millis(20));
    }
}

/// User plus system CPU time of a process, in clock ticks (/proc/PID/stat).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let (_, rest) = stat.rsplit_once(')').expect("a command name");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}
