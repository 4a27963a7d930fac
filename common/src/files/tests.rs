//! Every way out of the document root we could think of, plus the ordinary
//! paths that must keep working.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

/// A temp dir holding `root/` (the document root) and `outside/` (what
/// must never be served), with symlinks that lead in and out.
struct Tree {
    _dir: tempfile::TempDir,
    root: Root,
}

/// Every way this system has of opening beneath the root: each test runs
/// its table with each, so the portable walk is tested on Linux too.
const WAYS: &[Beneath] = &[
    #[cfg(target_os = "linux")]
    Beneath::Openat2,
    Beneath::Walk,
];

/// One tree per way of opening files beneath its root.
fn trees() -> impl Iterator<Item = Tree> {
    WAYS.iter().map(|&beneath| tree(beneath))
}

fn tree(beneath: Beneath) -> Tree {
    let dir = tempfile::tempdir().expect("a temp dir");
    let base = dir.path();
    let write = |path: &str, text: &str| {
        let path = base.join(path);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(path, text).expect("write a file");
    };
    write("outside/secret.txt", "secret");
    write("root/index.html", "root index");
    write("root/a b.txt", "with a space");
    write("root/x..y.txt", "two dots");
    write("root/style.css", "css");
    write("root/dir/index.html", "dir index");
    write("root/dir/page.html", "page");
    // A directory named like a file, without an index.
    fs::create_dir_all(base.join("root/page.html")).expect("mkdir");
    fs::create_dir_all(base.join("root/empty")).expect("mkdir");
    // macOS's APFS refuses names that are not UTF-8 (EILSEQ).
    if cfg!(not(target_os = "macos")) {
        fs::write(
            base.join("root").join(OsStr::from_bytes(b"\xff.bin")),
            "latin",
        )
        .expect("write");
    }
    symlink("../outside/secret.txt", base.join("root/link-out")).expect("symlink");
    symlink(base.join("outside"), base.join("root/dir-out")).expect("symlink");
    symlink("../../outside/secret.txt", base.join("root/dir/up")).expect("symlink");
    symlink("../outside/missing.txt", base.join("root/dangling")).expect("symlink");
    symlink("dir/page.html", base.join("root/link-in")).expect("symlink");
    symlink("dir", base.join("root/dir-in")).expect("symlink");
    symlink("loop", base.join("root/loop")).expect("symlink");
    fs::create_dir_all(base.join("root/index-out")).expect("mkdir");
    symlink(
        "../../outside/secret.txt",
        base.join("root/index-out/index.html"),
    )
    .expect("symlink");
    nix::unistd::mkfifo(
        &base.join("root/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .expect("mkfifo");
    let root = Root::open_with(&base.join("root"), beneath).expect("the root");
    Tree { _dir: dir, root }
}

/// The content served for `target`; panics if it is refused.
fn served(tree: &Tree, target: &str) -> String {
    match resolve(&tree.root, target) {
        Ok(Resolved::File {
            mut file, length, ..
        }) => {
            let mut text = String::new();
            file.read_to_string(&mut text).expect("read");
            assert_eq!(text.len() as u64, length, "{target}: length");
            text
        }
        other => panic!(
            "{target} ({:?}): expected a file, got {other:?}",
            tree.root.beneath
        ),
    }
}

fn refused(tree: &Tree, target: &str) -> Refusal {
    match resolve(&tree.root, target) {
        Err(refusal) => refusal,
        Ok(resolved) => panic!(
            "{target} ({:?}): expected a refusal, got {resolved:?}",
            tree.root.beneath
        ),
    }
}

#[test]
fn plain_paths_are_served() {
    for tree in trees() {
        assert_eq!(served(&tree, "/"), "root index");
        assert_eq!(served(&tree, "/index.html"), "root index");
        assert_eq!(served(&tree, "/dir/"), "dir index");
        assert_eq!(served(&tree, "/dir/page.html"), "page");
        assert_eq!(served(&tree, "/a%20b.txt"), "with a space");
        assert_eq!(served(&tree, "/x..y.txt"), "two dots");
        if cfg!(not(target_os = "macos")) {
            assert_eq!(served(&tree, "/%ff.bin"), "latin", "non-UTF-8 names");
        }
        assert_eq!(served(&tree, "//dir//page.html"), "page");
        assert_eq!(served(&tree, "/./dir/./page.html"), "page");
    }
}

#[test]
fn dot_dot_that_stays_inside_is_fine() {
    for tree in trees() {
        assert_eq!(served(&tree, "/dir/../a%20b.txt"), "with a space");
        assert_eq!(served(&tree, "/dir/%2e%2e/style.css"), "css");
        assert_eq!(served(&tree, "/empty/../dir/page.html"), "page");
    }
}

#[test]
fn the_query_is_ignored() {
    for tree in trees() {
        assert_eq!(served(&tree, "/a%20b.txt?x=1&y=../../etc"), "with a space");
        assert_eq!(served(&tree, "/dir/?"), "dir index");
        assert_eq!(
            served(&tree, "/?%zz"),
            "root index",
            "no decoding after `?`"
        );
    }
}

#[test]
fn dot_dot_that_climbs_out_is_forbidden() {
    for tree in trees() {
        for target in [
            "/..",
            "/../",
            "/../outside/secret.txt",
            "/dir/../../outside/secret.txt",
            "/./../outside/secret.txt",
            "//../outside/secret.txt",
            "/%2e%2e/outside/secret.txt",
            "/%2E%2E/outside/secret.txt",
            "/%2e%2e%2foutside%2fsecret.txt",
            "/..%2foutside%2fsecret.txt",
            "/.%2e/outside/secret.txt",
            "/dir/%2e%2e/%2e%2e/outside/secret.txt",
            "/dir/..%2f..%2f..%2f..%2fetc%2fpasswd",
            "/../../../../../../etc/passwd",
            "/empty/../../outside/secret.txt",
        ] {
            assert_eq!(refused(&tree, target), Refusal::Forbidden, "{target}");
        }
    }
}

#[test]
fn lookalikes_of_dot_dot_are_ordinary_names() {
    for tree in trees() {
        // Not separators or dot segments on Unix: just names that do not exist.
        for target in [
            "/..%5c..%5coutside%5csecret.txt",
            "/...",
            "/.../outside/secret.txt",
            "/%2e%2e%2e/outside",
            "/%c0%ae%c0%ae/outside/secret.txt",
        ] {
            assert_eq!(refused(&tree, target), Refusal::NotFound, "{target}");
        }
    }
}

#[test]
fn symlinks_that_lead_out_are_forbidden() {
    for tree in trees() {
        assert_eq!(refused(&tree, "/link-out"), Refusal::Forbidden);
        assert_eq!(refused(&tree, "/dir-out/secret.txt"), Refusal::Forbidden);
        assert_eq!(refused(&tree, "/dir-out/"), Refusal::Forbidden);
        assert_eq!(refused(&tree, "/dir/up"), Refusal::Forbidden);
        assert_eq!(
            refused(&tree, "/index-out/"),
            Refusal::Forbidden,
            "an index that is a symlink out"
        );
        // The kernel refuses at the step out, before it looks for the target:
        // a 403 tells nothing about what exists outside.
        assert_eq!(refused(&tree, "/dangling"), Refusal::Forbidden);
        assert_eq!(refused(&tree, "/loop"), Refusal::NotFound);
    }
}

#[test]
fn symlinks_that_stay_inside_are_followed() {
    for tree in trees() {
        assert_eq!(served(&tree, "/link-in"), "page");
        assert_eq!(served(&tree, "/dir-in/page.html"), "page");
        assert_eq!(served(&tree, "/dir-in/"), "dir index");
    }
}

#[test]
fn bad_escapes_and_nul_are_bad_requests() {
    for tree in trees() {
        for target in [
            "/%",
            "/%2",
            "/%zz",
            "/a%2",
            "/%%32%65",
            "/%00",
            "/a%00.txt",
            "/dir/%00/",
            "",
            "dir/page.html",
            "*",
            "http://host/index.html",
        ] {
            assert_eq!(refused(&tree, target), Refusal::BadRequest, "{target:?}");
        }
    }
}

#[test]
fn directories_files_and_slashes() {
    for tree in trees() {
        assert_eq!(refused(&tree, "/empty/"), Refusal::Forbidden, "no index");
        assert_eq!(
            refused(&tree, "/page.html/"),
            Refusal::Forbidden,
            "a directory named like a file has no index"
        );
        assert_eq!(refused(&tree, "/dir/page.html/"), Refusal::NotFound);
        assert_eq!(refused(&tree, "/dir/page.html/x"), Refusal::NotFound);
        assert_eq!(refused(&tree, "/missing.html"), Refusal::NotFound);
        assert_eq!(refused(&tree, "/pipe"), Refusal::Forbidden, "a FIFO");
        for (target, location) in [
            ("/dir", "/dir/"),
            ("/page.html", "/page.html/"),
            ("/dir-in?x=1", "/dir-in/"),
            ("/a%20dir/..", "/a%20dir/../"),
        ] {
            match resolve(&tree.root, target) {
                Ok(Resolved::AddSlash { location: got }) => assert_eq!(got, location),
                other => panic!("{target}: expected a redirect, got {other:?}"),
            }
        }
    }
}

#[test]
fn content_types_are_bare_and_exact() {
    for (name, expected) in [
        ("a.html", "text/html"),
        ("a.htm", "text/html"),
        ("a.css", "text/css"),
        ("a.js", "application/javascript"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.JPG", "image/jpeg"),
        ("a.png", "image/png"),
        ("a.gif", "image/gif"),
        ("a.swf", "application/x-shockwave-flash"),
        ("a.txt", "text/plain"),
        ("a", "application/octet-stream"),
        ("a.unknown-ext", "application/octet-stream"),
        ("x..y.txt", "text/plain"),
    ] {
        assert_eq!(content_type(Path::new(name)), expected, "{name}");
    }
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode("/a%20b").as_deref(), Ok(&b"/a b"[..]));
    assert_eq!(percent_decode("/%2F%2f").as_deref(), Ok(&b"///"[..]));
    assert_eq!(percent_decode("/%e2%82%ac").as_deref(), Ok("/€".as_bytes()));
    assert_eq!(percent_decode("/plain").as_deref(), Ok(&b"/plain"[..]));
    assert_eq!(percent_decode("/%0"), Err(Refusal::BadRequest));
    assert_eq!(percent_decode("/%+1"), Err(Refusal::BadRequest));
}

#[test]
fn a_root_must_be_a_readable_directory() {
    for tree in trees() {
        let path = &tree.root.path;
        assert!(Root::open(&path.join("index.html")).is_err());
        assert!(Root::open(&path.join("missing")).is_err());
        assert_eq!(
            Root::open(&path.join("dir-in")).expect("a root").path,
            path.join("dir"),
            "the root itself is canonicalised"
        );
    }
}
