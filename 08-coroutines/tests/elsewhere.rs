//! On FreeBSD, where the may crate does not build, 08-coroutines is one
//! line: what it needs and what to run instead, and exit status 1. (Its
//! other tests run everywhere else.)
#![cfg(target_os = "freebsd")]

#[test]
fn says_what_it_needs_and_exits_1() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_08-coroutines"))
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("08-coroutines needs the may crate"),
        "{stderr}"
    );
    assert!(stderr.contains("on this system try 09-async"), "{stderr}");
}
