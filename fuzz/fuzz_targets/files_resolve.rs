//! Files mode's path rules over a small tree with symlinks in, out and in
//! a loop: whatever the request target, a file that is served lies inside
//! the root (its real path, asked of the open descriptor), and the two ways
//! of opening beneath the root (Linux's openat2 and the portable walk)
//! agree on every answer.
#![no_main]

use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::files::{Beneath, Refusal, Resolved, Root, resolve};
use libfuzzer_sys::fuzz_target;

struct Tree {
    base: PathBuf,
    roots: Vec<Root>,
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        // Kept for the whole run (the fuzzer never returns normally).
        let base = tempfile::tempdir().expect("a temp dir").keep();
        let write = |path: &str| {
            let path = base.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, "x").expect("write");
        };
        for path in [
            "outside/secret",
            "root/index.html",
            "root/a/b/c.txt",
            "root/a/index.html",
        ] {
            write(path);
        }
        std::fs::create_dir_all(base.join("root/empty")).expect("mkdir");
        for (target, link) in [
            ("../outside/secret", "root/out"),
            ("../../outside", "root/a/up"),
            ("a/b", "root/in"),
            ("b/../../a", "root/a/round"),
            ("loop", "root/loop"),
            ("/etc/passwd", "root/abs"),
            ("../root/a", "root/back-in"),
        ] {
            symlink(target, base.join(link)).expect("symlink");
        }
        let mut ways = vec![Beneath::Walk];
        if cfg!(target_os = "linux") {
            ways.push(Beneath::NATIVE);
        }
        let roots = ways
            .into_iter()
            .map(|way| Root::open_with(&base.join("root"), way).expect("the root"))
            .collect();
        Tree { base, roots }
    })
}

/// Where an open descriptor really is (Linux: /proc/self/fd).
fn real_path(file: &std::fs::File) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// What one way answered: a file (by inode), a redirect, or a refusal.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    File(u64),
    AddSlash(String),
    Refused(Refusal),
}

fn answer(root: &Root, target: &str, inside: &Path) -> Answer {
    match resolve(root, target) {
        Ok(Resolved::File { file, .. }) => {
            if let Some(path) = real_path(&file) {
                assert!(
                    path.starts_with(inside),
                    "{target:?} served {path:?}, outside the root"
                );
            }
            Answer::File(file.metadata().expect("fstat").ino())
        }
        Ok(Resolved::AddSlash { location }) => Answer::AddSlash(location),
        Err(refusal) => Answer::Refused(refusal),
    }
}

fuzz_target!(|target: &[u8]| {
    // Request targets are visible ASCII after httparse; anything else is
    // decoded from %XX, which the fuzzer can write too.
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let tree = tree();
    let inside = tree
        .base
        .join("root")
        .canonicalize()
        .expect("the root exists");
    let answers: Vec<Answer> = tree
        .roots
        .iter()
        .map(|root| answer(root, target, &inside))
        .collect();
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "the ways disagree on {target:?}: {answers:?}"
    );
});
