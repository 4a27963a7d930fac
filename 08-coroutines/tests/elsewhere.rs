//! On FreeBSD, where the may crate does not build, 08-coroutines is one
//! line: what it needs and what to run instead, and exit status 1. (Its
//! other tests run everywhere else.)
#![cfg(target_os = "freebsd")]

#[test]
fn says_what_it_needs_and_exits_1() {
    conformance::says_it_cannot_run_here(
        env!("CARGO_BIN_EXE_08-coroutines"),
        "the may crate",
        "09-async",
    );
}
