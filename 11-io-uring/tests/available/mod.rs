//! Whether this machine can run io_uring at all. Where it cannot (a kernel
//! without it, `kernel.io_uring_disabled`, a container's seccomp filter),
//! 11's checks are skipped with the reason on stderr, never passed silently.

use std::io::Write;
#[cfg(target_os = "linux")]
use {nix::errno::Errno, std::sync::OnceLock, std::thread};

/// The binary under test, or, where io_uring is unavailable, an early
/// `return` from the calling test after printing why. It expands inside
/// each test function, so it can stand for the binary in `suite!`.
macro_rules! binary_or_skip {
    () => {{
        if let Some(reason) = crate::available::io_uring_unavailable() {
            crate::available::report_skip(&reason);
            return;
        }
        env!("CARGO_BIN_EXE_11-io-uring")
    }};
}
pub(crate) use binary_or_skip;

/// The reason io_uring cannot be used here, if `io_uring_setup` fails with
/// ENOSYS or EPERM. Any other failure runs the checks, which then fail.
///
/// Asked once, from a thread of its own: tearing a ring down later sends
/// the thread that used it a task-work notification, which interrupts a
/// socket read with a timeout (EINTR) in whatever test that thread runs.
#[cfg(target_os = "linux")]
pub fn io_uring_unavailable() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    REASON
        .get_or_init(|| {
            thread::spawn(|| {
                let error = io_uring::IoUring::new(2).err()?;
                let code = error.raw_os_error()?;
                (code == Errno::ENOSYS as i32 || code == Errno::EPERM as i32)
                    .then(|| format!("io_uring_setup failed: {error}"))
            })
            .join()
            .expect("the io_uring probe does not panic")
        })
        .clone()
}

/// io_uring is Linux's: elsewhere every check is skipped, saying so.
#[cfg(not(target_os = "linux"))]
pub fn io_uring_unavailable() -> Option<String> {
    Some("io_uring exists only on Linux".to_owned())
}

/// Written to stderr directly: the test harness captures `eprintln!` of
/// passing tests, and a skip must be seen.
pub fn report_skip(reason: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: 11-io-uring's checks need io_uring ({reason})"
    );
}
