//! The async driver: the blocking driver's twin, the same loop line for
//! line with `.await` at every wait. 09 runs it on tokio, 10 on the runtime
//! it writes by hand; the model files only decide *who* polls it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::driver::READ_CHUNK;
use crate::session::{Session, SessionConfig};
use crate::shutdown::half_close_writing;
use crate::shutdown::{Connection, Shutdown};

/// How an async world waits. tokio (09) and the hand-written runtime (10)
/// each implement it over their own socket and timer; every method that
/// may wait is an `async fn`, and that is the whole difference from
/// `BlockingIo`.
// ANCHOR: async_io
// Public `async fn`s in a trait cannot promise that their futures are
// `Send`; both runtimes call it with a concrete type, where they can.
#[allow(async_fn_in_trait)]
pub trait AsyncIo {
    /// The connection type: tokio's `TcpStream` or the runtime's own.
    type Stream: AsRawFd;

    /// Reads into `buffer`; gives up after `timeout` with `TimedOut`.
    /// Async sockets have no timeout option, so the timeout is a timer
    /// raced against the read.
    async fn read(
        stream: &mut Self::Stream,
        buffer: &mut [u8],
        timeout: Duration,
    ) -> io::Result<usize>;

    /// Writes some of `bytes`; `TimedOut` if none go out within `timeout`.
    async fn write(stream: &mut Self::Stream, bytes: &[u8], timeout: Duration)
    -> io::Result<usize>;

    /// Turns Nagle's algorithm off (TCP_NODELAY), see the blocking driver.
    fn set_nodelay(stream: &Self::Stream) -> io::Result<()>;

    /// Waits for the fake database: `await asyncio.sleep(0.3)`. Only this
    /// task waits; the thread goes on polling the others.
    async fn sleep(duration: Duration);

    /// Who is serving, for the `X-Worker` header and the logs.
    fn worker_label() -> String {
        crate::logging::worker_label()
    }
}
// ANCHOR_END: async_io

/// Serves one connection until it closes: the whole life of a client,
/// as one task. Errors (a reset, a broken pipe) end only this connection
/// and are logged at debug level.
pub async fn serve_connection<Io: AsyncIo>(
    mut connection: Connection<Io::Stream>,
    config: SessionConfig,
) {
    let peer = connection.peer;
    let shutdown = &connection.tracked.shutdown;
    let stream = &mut connection.stream;
    let mut session = Session::new(config, Io::worker_label(), Instant::now());
    log::debug!("connect {peer}");
    let result = match Io::set_nodelay(stream) {
        Ok(()) => drive::<Io>(stream, peer, &mut session, shutdown, config.idle_timeout).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => log::debug!("close {peer}"),
        Err(error) => log::debug!("close {peer}: {error}"),
    }
    // Dropping `connection` ends its registration, then closes the socket.
}

// ANCHOR: drive
/// The loop of an async connection: send what is pending, then either
/// sleep for the fake DB or read (with the idle timeout as read timeout).
///
/// Shutdown is checked between steps, as in the blocking driver, and not
/// raced against every wait: `Shutdown::request` half-closes the reading
/// side of every registered connection, so a task waiting in `read` wakes
/// with EOF, answers what is in flight and closes.
async fn drive<Io: AsyncIo>(
    stream: &mut Io::Stream,
    // Only for the debug lines: a thread may serve several connections at
    // once (08-10), and `bench timelines` tells them apart by the peer.
    peer: SocketAddr,
    session: &mut Session,
    shutdown: &Shutdown,
    write_timeout: Duration,
) -> io::Result<()> {
    let mut buffer = vec![0; READ_CHUNK];
    loop {
        if shutdown.is_requested() {
            session.begin_shutdown(Instant::now());
        }
        // An awaited write returns once the kernel took some bytes; a client
        // that does not read makes us wait here, which is the backpressure.
        while session.wants_write() {
            let sent = Io::write(stream, session.pending_output(), write_timeout).await?;
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            log::debug!("send {sent} bytes to {peer}");
            session.consume_output(sent, Instant::now());
        }
        if session.take_half_close() {
            // The last response is out: FIN, then read until the client's
            // EOF (lingering close, see `Session`). Never blocks.
            half_close_writing(stream.as_raw_fd())?;
        }
        if session.is_finished() {
            return Ok(());
        }
        let Some(deadline) = session.next_deadline() else {
            return Ok(());
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        if !session.wants_read() {
            // Nothing to read and nothing to send: the fake DB is working.
            // Only this task waits, on a timer; that is the model.
            Io::sleep(wait).await;
            // If shutdown began meanwhile, the top of the loop tells the
            // session before this answer is written out, and the session
            // marks it `Connection: close` then.
            session.handle_timers(Instant::now());
            continue;
        }
        // The read waits at most until the session's deadline, which moves
        // (a response sent restarts the idle timeout; a new request starts
        // its own deadline).
        let capacity = session.read_capacity().min(buffer.len());
        match Io::read(stream, &mut buffer[..capacity], wait).await {
            Ok(0) => session.receive_eof(Instant::now()),
            Ok(received) => {
                log::debug!("recv {received} bytes from {peer}");
                session.receive(&buffer[..received], Instant::now());
            }
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                session.handle_timers(Instant::now());
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: drive
