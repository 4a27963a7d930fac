//! What is particular to 06-select: the FD_SETSIZE wall, and surviving an
//! exhausted descriptor table without spinning.

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use conformance::scale::{connect, echoes};
use conformance::{Client, Server, process_exists};

const BINARY: &str = env!("CARGO_BIN_EXE_06-select");

/// 1100 clients: the server's descriptors run past 1023, where an `fd_set`
/// ends. Those connections are closed at once with a warning; the first
/// thousand keep echoing and the server lives on.
#[test]
fn connections_past_fd_setsize_are_closed_and_the_rest_still_echo() {
    const CLIENTS: usize = 1100;
    let started = Instant::now();
    common::raise_open_file_limit().expect("raise the test's own fd limit");
    let server = Server::start(BINARY, &["--mode", "echo", "--idle-timeout", "60s"]);
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|index| {
            if index % 100 == 99 {
                thread::sleep(Duration::from_millis(10)); // a sane pace
            }
            connect(server.addr)
        })
        .collect();

    let echoed: Vec<bool> = clients
        .iter()
        .enumerate()
        .map(|(index, stream)| echoes(stream, index as u8))
        .collect();
    let answered = echoed.iter().filter(|&&echoed| echoed).count();
    // Descriptors 0-2 (stdio), the listener and the signalfd leave about
    // 1019 for connections, handed out in accept order.
    assert!(
        (1000..1024).contains(&answered),
        "{answered} of {CLIENTS} connections echoed"
    );
    assert!(
        echoed[..answered].iter().all(|&echoed| echoed),
        "the echoing connections are the first ones: {echoed:?}"
    );
    assert!(process_exists(server.pid), "the server is alive");
    let stderr = server.stderr();
    assert!(
        stderr.matches("FD_SETSIZE").count() >= CLIENTS - 1023,
        "each refused connection is logged: {stderr}"
    );

    // Once clients leave, low descriptors are free and new clients echo.
    // Wait until the server has seen them go: a connect that came before
    // the closes were handled would still get a descriptor past 1023.
    drop(clients);
    match conformance::procinfo::open_descriptors(server.pid) {
        Some(_) => conformance::scale::wait_until(|| {
            conformance::procinfo::open_descriptors(server.pid).is_some_and(|open| open < 100)
        }),
        None => conformance::procinfo::report_skip("fds closed first", "the server's descriptors"),
    }
    let mut client = Client::connect(server.addr);
    client.send(b"again");
    let mut answer = [0; 5];
    client.read_exact(&mut answer);
    assert_eq!(&answer, b"again");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// Out of descriptors: the listener leaves the select set for a moment
/// instead of spinning, and the server accepts again once fds are free.
#[test]
fn out_of_descriptors_is_logged_once_survived_and_does_not_spin() {
    conformance::scale::out_of_file_descriptors_is_survived(BINARY, &[]);
}
