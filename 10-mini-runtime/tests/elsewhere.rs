//! On a system without what it needs, 10-mini-runtime is one line: what it
//! needs and what to run instead, and exit status 1. (Its other tests
//! run only on Linux.)
#![cfg(not(target_os = "linux"))]

#[test]
fn says_it_needs_linux_and_exits_1() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_10-mini-runtime"))
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("10-mini-runtime needs Linux's"),
        "{stderr}"
    );
    assert!(stderr.contains("on this system try"), "{stderr}");
}
