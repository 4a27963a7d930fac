//! The async driver: the blocking driver's twin, the same loop line for
//! line with `.await` at every wait. 09 runs it on tokio, 10 on the runtime
//! it writes by hand; the model files only decide *who* polls it.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::ops::Deref;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::driver::READ_CHUNK;
use crate::sendfile::FileRange;
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

    /// Waits until `stream` is readable (bytes or EOF are there), at most
    /// until `deadline`, then `TimedOut`. Waiting needs no buffer: tokio's
    /// `readable()`, the readiness half of a read. Every wait takes a
    /// deadline, not a duration: the session already keeps its deadlines
    /// as instants, and a duration would cost a clock read to make one.
    async fn readable(stream: &mut Self::Stream, deadline: Instant) -> io::Result<()>;

    /// The time by the runtime's clock. The default reads the system's, as
    /// tokio's own `Instant::now` does; 10's loop reads it once per turn,
    /// after its wait, and its tasks use that reading, as 07 uses one per
    /// batch of events: a request then costs no clock read of its own.
    fn now() -> Instant {
        Instant::now()
    }

    /// Reads what is there, without waiting: `WouldBlock` if the readiness
    /// was stale (the runtime then forgets it, and the next
    /// [`AsyncIo::readable`] waits for the kernel).
    fn try_read(stream: &mut Self::Stream, buffer: &mut [u8]) -> io::Result<usize>;

    // ANCHOR: read
    /// Waits until `stream` is readable, and only then borrows a buffer to
    /// read at most `capacity` bytes into; `TimedOut` at `deadline`.
    /// A task waiting inside `read(&mut buffer)` would hold its buffer
    /// for as long as its client is silent, as a blocked thread does: 8 KiB
    /// for each of 10,000 idle connections. Waiting first and then reading
    /// at once into a buffer of the thread's ([`Received`]) makes an idle
    /// connection hold none, as 07's loop, which reads into one buffer
    /// for the whole server.
    async fn read(
        stream: &mut Self::Stream,
        capacity: usize,
        deadline: Instant,
    ) -> io::Result<Received> {
        loop {
            Self::readable(stream, deadline).await?;
            let mut received = Received::lend(capacity);
            match Self::try_read(stream, received.space()) {
                Ok(count) => return Ok(received.filled(count)),
                // Readiness was stale: the buffer goes back, and we wait.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
    }
    // ANCHOR_END: read

    /// Writes some of `bytes`; `TimedOut` if none went out by `deadline`.
    async fn write(stream: &mut Self::Stream, bytes: &[u8], deadline: Instant)
    -> io::Result<usize>;

    /// Sends some of a file (a response body) once the socket is writable,
    /// with [`crate::sendfile::send_file`]; `TimedOut` as for `write`.
    async fn send_file(
        stream: &mut Self::Stream,
        range: &FileRange<'_>,
        deadline: Instant,
    ) -> io::Result<usize>;

    /// Turns Nagle's algorithm off (TCP_NODELAY), see the blocking driver.
    fn set_nodelay(stream: &Self::Stream) -> io::Result<()>;

    /// Waits for the fake database: `await asyncio.sleep(0.3)`, told as
    /// the instant it is over. Only this task waits; the thread goes on
    /// polling the others.
    async fn sleep_until(deadline: Instant);

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
    let mut session = Session::new(config, Io::worker_label(), Io::now());
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
    // The clock is read once after each wait, and that reading serves
    // every step until the next wait: this loop turns once per request,
    // and reading the clock at each step cost 2-3% of 10's CPU time.
    let mut now = Io::now();
    loop {
        if shutdown.is_requested() {
            session.begin_shutdown(now);
        }
        // An awaited write returns once the kernel took some bytes; a client
        // that does not read makes us wait here, which is the backpressure.
        while session.wants_write() {
            let deadline = now + write_timeout;
            let sent = match session.pending_file() {
                Some(range) => Io::send_file(stream, &range, deadline).await?,
                None => Io::write(stream, session.pending_output(), deadline).await?,
            };
            now = Io::now();
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            log::debug!("send {sent} bytes to {peer}");
            session.consume_output(sent, now);
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
        if !session.wants_read() {
            // Nothing to read and nothing to send: the fake DB is working.
            // Only this task waits, on a timer; that is the model.
            Io::sleep_until(deadline).await;
            now = Io::now();
            // If shutdown began meanwhile, the top of the loop tells the
            // session before this answer is written out, and the session
            // marks it `Connection: close` then.
            session.handle_timers(now);
            continue;
        }
        // The read waits at most until the session's deadline, which moves
        // (a response sent restarts the idle timeout; a new request starts
        // its own deadline).
        let read = Io::read(stream, session.read_capacity(), deadline).await;
        now = Io::now();
        match read {
            Ok(received) if received.is_empty() => session.receive_eof(now),
            Ok(received) => {
                log::debug!("recv {} bytes from {peer}", received.len());
                session.receive(&received, now);
            }
            Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                session.handle_timers(now);
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: drive

// ANCHOR: received
/// Bytes just read, in a buffer lent by the thread for this one read. Each
/// thread keeps one spare buffer: a read takes it (or allocates one when a
/// read on this thread already holds it), and dropping the bytes gives it
/// back. The driver hands the bytes to the session before its next
/// `.await`, so a thread lends out one buffer at a time, however many
/// connections it serves: 07's one buffer per server, per thread.
#[derive(Debug)]
pub struct Received {
    buffer: Box<[u8]>,
    capacity: usize,
    length: usize,
}

thread_local! {
    /// The thread's spare read buffer, while no read holds it.
    static SPARE: Cell<Option<Box<[u8]>>> = const { Cell::new(None) };
}

impl Received {
    /// Borrows the thread's buffer for a read of at most `capacity` bytes.
    pub fn lend(capacity: usize) -> Received {
        let buffer = SPARE
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0; READ_CHUNK].into_boxed_slice());
        Received {
            capacity: capacity.min(buffer.len()),
            buffer,
            length: 0,
        }
    }

    /// Where the read puts its bytes.
    pub fn space(&mut self) -> &mut [u8] {
        &mut self.buffer[..self.capacity]
    }

    /// The read put `count` bytes into [`Received::space`].
    pub fn filled(mut self, count: usize) -> Received {
        self.length = count.min(self.capacity);
        self
    }
}

impl Deref for Received {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[..self.length]
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        // The thread is exiting: the buffer is freed instead.
        let _ = SPARE.try_with(|spare| spare.set(Some(buffer)));
    }
}
// ANCHOR_END: received

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_lends_its_one_spare_buffer_again_and_again() {
        let mut first = Received::lend(READ_CHUNK);
        first.space()[..4].copy_from_slice(b"mark");
        drop(first);
        for _ in 0..3 {
            // The same buffer, with what the last read left in it (a new
            // one would be zeroed; its address proves nothing, as malloc
            // hands a freed block out again).
            let mut again = Received::lend(READ_CHUNK);
            assert_eq!(&again.space()[..4], b"mark", "a new buffer per read");
        }
    }

    #[test]
    fn a_buffer_still_held_is_not_lent_twice() {
        let mut held = Received::lend(4);
        held.space().copy_from_slice(b"held");
        let held = held.filled(4);
        let mut other = Received::lend(READ_CHUNK);
        other.space().fill(b'x');
        assert_ne!(held.buffer.as_ptr(), other.buffer.as_ptr());
        assert_eq!(&*held, b"held");
        assert!(other.is_empty(), "nothing read yet");
    }
}
