//! The blocking driver: accepts connections and serves each from start to
//! close with plain blocking calls. 01-05 run it on OS threads, 08 runs the very same
//! code on may coroutines; the model files only decide *who* runs it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::sendfile::FileRange;
use crate::session::{Session, SessionConfig};
use crate::shutdown::{ACCEPT_BACKOFF, AcceptErrors, Connection, Shutdown, half_close_writing};

/// Bytes read per `read` call. On the heap, not the stack: a coroutine's
/// stack (08) is only a few KiB.
pub(crate) const READ_CHUNK: usize = 8 * 1024;

/// How a blocking world waits. Threads (01-05) block the OS thread;
/// coroutines (08) implement it with may's socket and `coroutine::sleep`,
/// which park only the coroutine.
// ANCHOR: blocking_io
pub trait BlockingIo {
    /// The connection type: `std::net::TcpStream` or may's.
    type Stream: Read + Write + AsRawFd;

    /// Reads into `buffer`, waiting at most `timeout` for something to
    /// arrive: `Ok(None)` once it passed with nothing read.
    fn read_within(
        stream: &mut Self::Stream,
        buffer: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<usize>>;

    /// Makes a `write` that cannot progress give up after `timeout`.
    fn set_write_timeout(stream: &Self::Stream, timeout: Option<Duration>) -> io::Result<()>;

    /// Turns Nagle's algorithm off (TCP_NODELAY), see [`serve_connection`].
    fn set_nodelay(stream: &Self::Stream) -> io::Result<()>;

    /// Sends some of a file (a response body): read, then write, through
    /// the stream's own `write`. Threads' sockets do better with
    /// `sendfile(2)`; may's (08) must yield to their scheduler when the
    /// socket is full, which only may's own `write` knows how to do.
    fn send_file(stream: &mut Self::Stream, range: &FileRange<'_>) -> io::Result<usize> {
        range.copy_to(stream)
    }

    /// Waits for the fake database. This is the line the lecture's servers
    /// spend their time in: `time.sleep(0.3)`.
    fn sleep(duration: Duration);

    /// Who is serving, for the `X-Worker` header and the logs.
    fn worker_label() -> String {
        crate::logging::worker_label()
    }
}
// ANCHOR_END: blocking_io

/// OS threads and std sockets: the driver of 01-05.
#[derive(Debug)]
pub struct Threads;

impl BlockingIo for Threads {
    type Stream = TcpStream;

    fn read_within(
        stream: &mut TcpStream,
        buffer: &mut [u8],
        timeout: Duration,
    ) -> io::Result<Option<usize>> {
        // Wait in poll(2), not with a socket timeout (SO_RCVTIMEO): poll
        // sleeps on a high-resolution timer, a socket timeout on the timer
        // wheel, whose slots a few hundred ticks out are 8 ticks wide. At
        // HZ=250 a 300 ms fake-DB deadline fired up to 32 ms late (the RPC
        // answers of 01-05 came 20 ms late in the median).
        let millis = timeout.as_micros().div_ceil(1000);
        let timeout = PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, timeout)? == 0 {
            return Ok(None);
        }
        stream.read(buffer).map(Some)
    }

    fn set_write_timeout(stream: &TcpStream, timeout: Option<Duration>) -> io::Result<()> {
        stream.set_write_timeout(timeout)
    }

    fn set_nodelay(stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)
    }

    /// From the file to the socket in the kernel: see [`crate::sendfile`].
    fn send_file(stream: &mut TcpStream, range: &FileRange<'_>) -> io::Result<usize> {
        crate::sendfile::send_file(stream.as_fd(), range)
    }

    fn sleep(duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Waits for the next connection, or returns `None` once shutdown is
/// requested: the accept loop of every blocking model (01-05). Many threads
/// or processes may call it on one listener.
///
/// It waits in `poll(2)` on the listener and the shutdown pipe, because a
/// thread blocked in `accept(2)` cannot be woken for shutdown. The
/// listener is non-blocking: when several waiters wake for one
/// connection, the losers get `WouldBlock` and wait again instead of
/// blocking in `accept` where shutdown could not reach them.
///
/// The connection is registered ([`Shutdown::adopt`]) before it is
/// returned, so a shutdown that starts while it is handed to a thread
/// still waits for it.
pub fn accept(listener: &TcpListener, shutdown: &Shutdown) -> Option<Connection<TcpStream>> {
    let mut errors = AcceptErrors::default();
    loop {
        if shutdown.is_requested() {
            return None;
        }
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(shutdown.wake_fd(), PollFlags::POLLIN),
        ];
        if let Err(error) = poll(&mut fds, PollTimeout::NONE) {
            if error != nix::errno::Errno::EINTR {
                log::error!("poll on the listener failed: {error}");
                std::thread::sleep(ACCEPT_BACKOFF);
            }
            continue;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                errors.succeeded();
                // Accepted sockets do not inherit O_NONBLOCK on Linux,
                // but say what we rely on.
                if let Err(error) = stream.set_nonblocking(false) {
                    log::warn!("cannot make connection from {peer} blocking: {error}");
                    continue;
                }
                return Some(shutdown.adopt(stream, peer));
            }
            Err(error) => std::thread::sleep(errors.failed(&error)),
        }
    }
}

/// Serves one connection until it closes: the whole life of a client in
/// a blocking model. Errors (a reset, a broken pipe) end only this
/// connection and are logged at debug level.
pub fn serve_connection<Io: BlockingIo>(
    mut connection: Connection<Io::Stream>,
    config: SessionConfig,
) {
    let peer = connection.peer;
    let shutdown = &connection.tracked.shutdown;
    let stream = &mut connection.stream;
    let mut session = Session::new(config, Io::worker_label(), Instant::now());
    log::debug!("connect {peer}");
    match prepare::<Io>(stream, config)
        .and_then(|()| drive::<Io>(stream, peer, &mut session, shutdown))
    {
        Ok(()) => log::debug!("close {peer}"),
        Err(error) => log::debug!("close {peer}: {error}"),
    }
    // Dropping `connection` ends its registration, then closes the socket.
}

/// Socket options every blocking connection needs.
fn prepare<Io: BlockingIo>(stream: &Io::Stream, config: SessionConfig) -> io::Result<()> {
    // Without a write timeout, a client that sends but never reads would
    // hold this thread in `write` for ever (and in 01 the whole server):
    // its window fills and the kernel waits for it. A write that makes no
    // progress for an idle timeout ends the connection instead. (std
    // refuses a zero timeout.)
    Io::set_write_timeout(
        stream,
        Some(config.idle_timeout.max(Duration::from_millis(1))),
    )?;
    // Nagle's algorithm holds a small write back until the previous one is
    // acknowledged, and the client delays its ACK by up to 40 ms: an echo
    // of a few bytes, or a response written in two pieces, would wait for
    // it. We always write everything we have at once, so send it now.
    Io::set_nodelay(stream)
}

// ANCHOR: drive
/// The loop of a blocking connection: send what is pending, then either
/// sleep for the fake DB or read (with the idle timeout as read timeout).
fn drive<Io: BlockingIo>(
    stream: &mut Io::Stream,
    // Only for the debug lines: a thread may serve several connections at
    // once (08-10), and `bench timelines` tells them apart by the peer.
    peer: SocketAddr,
    session: &mut Session,
    shutdown: &Shutdown,
) -> io::Result<()> {
    let mut buffer = vec![0; READ_CHUNK];
    loop {
        if shutdown.is_requested() {
            session.begin_shutdown(Instant::now());
        }
        // A blocking write returns once the kernel took some bytes; a client
        // that does not read makes us wait here, which is the backpressure.
        while session.wants_write() {
            let sent = match session.pending_file() {
                Some(range) => Io::send_file(stream, &range)?,
                None => stream.write(session.pending_output())?,
            };
            if sent == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            log::debug!("send {sent} bytes to {peer}");
            session.consume_output(sent, Instant::now());
        }
        if session.take_half_close() {
            // The last response is out: FIN, then read until the client's
            // EOF (lingering close, see `Session`).
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
            // This whole thread (or coroutine) waits, and that is the model.
            Io::sleep(wait);
            // If shutdown began meanwhile, the top of the loop tells the
            // session before this answer is written out, and the session
            // marks it `Connection: close` then.
            session.handle_timers(Instant::now());
            continue;
        }
        // The wait ends at the session's next deadline, which moves (a
        // response sent restarts the idle timeout; a new request starts its
        // own deadline), so it is computed anew before every read.
        let capacity = session.read_capacity().min(buffer.len());
        match Io::read_within(stream, &mut buffer[..capacity], wait) {
            Ok(Some(0)) => session.receive_eof(Instant::now()),
            Ok(Some(received)) => {
                log::debug!("recv {received} bytes from {peer}");
                session.receive(&buffer[..received], Instant::now());
            }
            Ok(None) => session.handle_timers(Instant::now()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: drive
