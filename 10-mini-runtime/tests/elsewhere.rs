//! On a system without epoll, 10-mini-runtime is one line: what it needs
//! and what to run instead, and exit status 1. (Its other tests run only
//! on Linux.)
#![cfg(not(target_os = "linux"))]

#[test]
fn says_what_it_needs_and_exits_1() {
    conformance::says_it_cannot_run_here(
        env!("CARGO_BIN_EXE_10-mini-runtime"),
        "Linux's epoll",
        "09-async",
    );
}
