//! On a system without io_uring, 11-io-uring is one line: what it needs
//! and what to run instead, and exit status 1. (Its other tests run only
//! on Linux.)
#![cfg(not(target_os = "linux"))]

#[test]
fn says_what_it_needs_and_exits_1() {
    conformance::says_it_cannot_run_here(
        env!("CARGO_BIN_EXE_11-io-uring"),
        "Linux's io_uring",
        "07-epoll",
    );
}
