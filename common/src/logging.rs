//! A small logger for the `log` facade: every line says when (seconds since
//! start), which process and which thread, like the lecture's Python logs:
//!
//! ```text
//!    0.312s DEBUG pid=4242 conn-3: recv 18 bytes from 127.0.0.1:52110
//! ```

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use log::{Level, LevelFilter, Log, Metadata, Record};

static START: OnceLock<Instant> = OnceLock::new();
/// Dependencies whose chatter is hidden below `warn`: may logs every
/// descriptor it adds to or removes from its epoll set at `info`, which
/// would bury the server's own lines (and cost a locked stderr write per
/// connection).
const QUIET_DEPENDENCIES: &[&str] = &["may"];
static LOGGER: StderrLogger = StderrLogger;

struct StderrLogger;

/// Installs the logger at `filter`. Calling it twice is harmless.
pub fn init(filter: LevelFilter) {
    START.get_or_init(Instant::now);
    // Only fails if a logger is already set, which then stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(filter);
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let crate_name = metadata.target().split("::").next().unwrap_or("");
        if QUIET_DEPENDENCIES.contains(&crate_name) && metadata.level() > Level::Warn {
            return false;
        }
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let elapsed = START.get_or_init(Instant::now).elapsed().as_secs_f64();
        let thread = std::thread::current();
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        // One `write` per line: forked children share stderr, and a line
        // written in pieces would interleave with theirs.
        let line = format!(
            "{elapsed:9.3}s {level} pid={} {}: {}\n",
            std::process::id(),
            thread.name().unwrap_or("unnamed"),
            record.args()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// `pid=1234 thread=conn-7`: who serves, as the `X-Worker` header and every
/// log line say.
pub fn worker_label() -> String {
    let thread = std::thread::current();
    format!(
        "pid={} thread={}",
        std::process::id(),
        thread.name().unwrap_or("unnamed")
    )
}
