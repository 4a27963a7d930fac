//! What the eleven models share, so that each model's `main.rs` shows only its
//! model: how connections are accepted, who runs them, how they wait.
//!
//! - [`session`]: the sans-IO protocol core: one engine per protocol (echo,
//!   HTTP, RPC) around what every connection shares;
//! - [`rpc`]: JSON-RPC 2.0 over lines (the RPC homework), the registry of
//!   typed functions and one connection's lines in order;
//! - [`app`]: the app interface (our WSGI) and its apps: the lab page, the
//!   file server ([`files`] has its path rules), any `tower::Service` such
//!   as the axum Router in [`quote`];
//! - [`driver`]: the blocking driver that 01-05 and 08 run per connection,
//!   and the accept loop of 01-05;
//! - [`async_driver`]: its twin with `.await`, run by 09 (tokio) and 10;
//! - [`shutdown`]: SIGINT/SIGTERM, waking blocked threads, back-off when
//!   `accept` runs out of file descriptors;
//! - [`signals`]: SIGINT/SIGTERM as a readable descriptor for the loops
//!   (signalfd on Linux, the self-pipe trick elsewhere);
//! - [`prefork`]: the single-threaded supervisor that 04 and 05 fork under;
//! - [`event_loop`]: the connection table, timers and shutdown that 06 and
//!   07 share (each brings only its readiness syscall);
//! - [`cli`]: the flags every server accepts, and the one place that turns
//!   them into a server's parts (its protocol, its app, its log level);
//! - this file: start-up (logging, fd limit, listen, the start-up line).

pub mod app;
pub mod async_driver;
pub mod cli;
pub mod driver;
pub mod event_loop;
pub mod files;
pub mod logging;
pub mod prefork;
pub mod quote;
pub mod rpc;
pub mod sendfile;
pub mod session;
pub mod shutdown;
pub mod signals;

/// Internals the fuzz targets (`fuzz/`) drive directly, beside the public
/// API: not for servers.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::session::http::chunked::{ChunkError, ChunkedBody};
}

use std::fmt::Display;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use socket2::{Domain, Protocol, Socket, Type};

pub use cli::{Mode, ServerArgs};
pub use driver::{BlockingIo, Threads, accept, serve_connection};
pub use logging::worker_label;
pub use session::{Session, SessionConfig};
pub use shutdown::{AcceptErrors, Connection, GRACE_PERIOD, RepeatedSignal, Shutdown};

/// Binding the listening socket failed; the message names the address and
/// the OS's reason, e.g. `cannot listen on 127.0.0.1:9090: Address already
/// in use (os error 98)`.
#[derive(Debug)]
pub struct ListenError {
    pub addr: SocketAddr,
    pub source: io::Error,
}

impl Display for ListenError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "cannot listen on {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for ListenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Creates the listening socket with socket2, because std's `bind` gives no
/// say over the backlog (it uses 128, which drops bursts of connects).
/// SO_REUSEADDR lets a restarted server bind while old connections sit in
/// TIME_WAIT; unlike SO_REUSEPORT it does not let two servers share a port,
/// so "port in use" is still an error. The listener is non-blocking: every
/// model waits for readiness its own way (poll, select, epoll, tokio).
pub fn listen(addr: SocketAddr, backlog: i32) -> Result<TcpListener, ListenError> {
    let bind = || -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    };
    bind().map_err(|source| ListenError { addr, source })
}

/// Everything a server does before its model starts: logging, the
/// open-file limit, the listening socket and the start-up line. Set up
/// signal handling *before* calling it: tests send SIGTERM as soon as they
/// read the start-up line.
pub fn start(model: &'static str, args: &ServerArgs) -> Result<TcpListener, ListenError> {
    start_using(model, None, args)
}

/// [`start`] for a model whose readiness API depends on the system or a
/// flag (06: select or poll; 07: epoll or kqueue): the start-up line names
/// it, e.g. `... mode=http readiness=kqueue pid=1234`.
pub fn start_using(
    model: &'static str,
    readiness: Option<&str>,
    args: &ServerArgs,
) -> Result<TcpListener, ListenError> {
    logging::init(args.log.into());
    match raise_open_file_limit() {
        Ok(limit) => log::debug!("open-file limit {limit}"),
        Err(error) => log::warn!("cannot raise the open-file limit: {error}"),
    }
    let listener = listen(args.addr, args.backlog)?;
    let addr = listener.local_addr().map_err(|source| ListenError {
        addr: args.addr,
        source,
    })?;
    announce(addr, model, args.mode, readiness);
    Ok(listener)
}

/// Prints the one start-up line that tests and scripts wait for, e.g.
/// `listening on 127.0.0.1:9090 model=06-select mode=http pid=1234`
/// (with `readiness=poll` before the pid where a model names its API).
/// It goes to stdout and is flushed at once: when stdout is a pipe, Rust
/// would otherwise keep it in a buffer and the waiting script would hang.
pub fn announce(addr: SocketAddr, model: &str, mode: Mode, readiness: Option<&str>) {
    let readiness = readiness.map_or(String::new(), |api| format!(" readiness={api}"));
    let line = format!(
        "listening on {addr} model={model} mode={}{readiness} pid={}\n",
        mode.name(),
        std::process::id()
    );
    let mut stdout = io::stdout().lock();
    // If nobody reads stdout there is nobody to tell; keep serving.
    let _ = stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Raises the soft limit on open files to the hard limit and returns it.
/// Each connection is a file descriptor; the usual soft limit of 1024 would
/// cap a server at about a thousand clients.
pub fn raise_open_file_limit() -> io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    // `rlim_t` is unsigned on Linux and macOS, signed on FreeBSD (where
    // RLIM_INFINITY is the largest i64).
    #[allow(clippy::useless_conversion)]
    Ok(u64::try_from(hard).unwrap_or(u64::MAX))
}

/// The whole of a model's `main` on a system it cannot run on (10 needs
/// epoll, 11 io_uring, 08 a crate that does not build on FreeBSD): one line
/// on stderr naming what it needs and what to try instead, and exit
/// status 1: `11-io-uring needs Linux's io_uring; on this system try
/// 07-epoll`.
pub fn cannot_run_here(model: &str, needs: &str, instead: &str) -> ExitCode {
    eprintln!("{model} needs {needs}; on this system try {instead}");
    ExitCode::FAILURE
}

/// Turns a server's outcome into its exit status: an error becomes one line
/// on stderr (`07-epoll: error: cannot listen on ...`) and exit status 1,
/// never a panic or a backtrace.
pub fn exit_status<E: Display>(model: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints anyhow's chain of causes on one line.
            eprintln!("{model}: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
