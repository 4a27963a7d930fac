//! Runs one check under a deadline and turns its end into a verdict. A
//! check is the suite's function: it passes by returning, fails by
//! panicking (an assertion, a broken connection, a bad status line) and is
//! skipped by panicking with a [`Skip`]. It runs in a thread of its own, so
//! a server that hangs costs one check its deadline and the run goes on.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use conformance::{Skip, Target, kill_every_started_server, transcript};

/// What became of one check.
#[derive(Debug, Clone)]
pub enum Verdict {
    Pass,
    /// What went wrong (the first panic, where the check says what it
    /// wanted) and the conversation that led there.
    Fail {
        message: String,
        transcript: Vec<String>,
    },
    /// Why the check could not run on this server.
    Skip(String),
}

/// Every panic message of the running check, in order: the first is the
/// cause (a client thread's assertion comes before the "thread finished"
/// of the check that joins it). Filled by the hook [`install_panic_hook`]
/// sets; the checks run one at a time, so they are all this check's.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn panics() -> std::sync::MutexGuard<'static, Vec<String>> {
    PANICS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Replaces the default hook (which prints every panic to stderr) with one
/// that keeps the message and where the check raised it, for the report.
pub fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        if info.payload().downcast_ref::<Skip>().is_some() {
            return;
        }
        let message = info
            .payload_as_str()
            .unwrap_or("the check panicked")
            .to_string();
        let message = match info.location() {
            Some(location) => format!("{message} (at {}:{})", location.file(), location.line()),
            None => message,
        };
        panics().push(message);
    }));
}

/// Runs `check` against `target`, giving it at most `deadline`.
pub fn run(
    name: &str,
    check: impl FnOnce(&Target) + Send + 'static,
    target: &Target,
    deadline: Duration,
) -> (Verdict, Duration) {
    panics().clear();
    transcript::start();
    let started = Instant::now();
    let (sender, receiver) = mpsc::channel();
    let target = target.clone();
    let spawned = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| check(&target)));
            let _ = sender.send(outcome.err());
        });
    if let Err(error) = spawned {
        let message = format!("the checker could not start a thread: {error}");
        return (fail(message), started.elapsed());
    }
    let verdict = match receiver.recv_timeout(deadline) {
        Ok(None) => Verdict::Pass,
        Ok(Some(payload)) => match payload.downcast_ref::<Skip>() {
            Some(Skip(reason)) => Verdict::Skip(reason.clone()),
            None => fail(first_panic()),
        },
        Err(_) => {
            // The check's own guards are stuck with it: kill what it
            // started, which also breaks the connections it waits on, and
            // give it a moment to end before the next check begins.
            kill_every_started_server();
            let _ = receiver.recv_timeout(Duration::from_secs(2));
            fail(format!(
                "no verdict within the deadline of {deadline:?}: the server hangs or never \
                 answers (it was stopped)"
            ))
        }
    };
    (verdict, started.elapsed())
}

fn fail(message: String) -> Verdict {
    Verdict::Fail {
        message,
        transcript: transcript::take(),
    }
}

/// The cause, and how many panics followed from it.
fn first_panic() -> String {
    let panics = panics();
    match panics.as_slice() {
        [] => "the check failed".to_string(),
        [only] => only.clone(),
        [first, rest @ ..] => format!("{first} (then {} more)", rest.len()),
    }
}
