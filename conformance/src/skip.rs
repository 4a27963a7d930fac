//! How a check says it cannot run against this server (it needs a flag of
//! its choosing, a signal, the server's log): a panic with a [`Skip`]
//! payload, which the checker reports as skipped rather than failed. A
//! module of its own because both the targets and the servers raise it.

/// Why a check could not run against this target: the payload of the panic
/// that [`skip`] raises, which the checker tells apart from a failure.
#[derive(Debug, Clone)]
pub struct Skip(pub String);

/// Ends the current check as skipped (not failed) with `reason`.
pub fn skip(reason: impl Into<String>) -> ! {
    std::panic::panic_any(Skip(reason.into()))
}
