//! Checks of files mode and axum mode, over real sockets against a document
//! root generated in a temp dir for each check: nested directories, names
//! with spaces and two dots, binary files compared byte for byte, a symlink
//! that leads out of the root. Against a running server (`check --addr
//! --mode files --root DIR`) the same tree is written into the directory it
//! serves, and removed after each check.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::client::{Client, Response};
use crate::prefork::children_of;
use crate::server::Server;
use crate::skip::skip;
use crate::target::Target;

/// The document root of one check, deleted when dropped. `files` maps each
/// file's URL path (percent-encoded) to its content.
pub struct DocRoot {
    /// `Some` for a root made here (the root is `DIR/root`); `None` for
    /// the root of a running server, emptied on drop.
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Bytes that reveal reordering or loss, different for every `seed`.
fn binary_content(length: usize, seed: usize) -> Vec<u8> {
    (0..length)
        .map(|index| ((index * 31 + seed * 7 + index / 997) % 256) as u8)
        .collect()
}

impl DocRoot {
    pub fn new() -> DocRoot {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().join("root");
        DocRoot::fill(Some(dir), root)
    }

    /// The root for a check: a new one in a temp dir for a server the
    /// check starts; for a running server the directory it serves, which
    /// must be empty (`secret.txt` goes beside it, to see that nothing
    /// outside is served).
    pub fn for_target(target: &Target) -> DocRoot {
        let Some(running) = target.running_root() else {
            return DocRoot::new();
        };
        let Some(root) = running else {
            skip("needs --root DIR: an empty directory the server serves, for the check's files")
        };
        // The previous check's client threads may still hold its tree (a
        // failed check does not wait for them): it goes when they end.
        let is_empty = || {
            fs::read_dir(&root)
                .map(|mut entries| entries.next().is_none())
                .unwrap_or(false)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !is_empty() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(
            is_empty(),
            "--root {}: must be an empty directory (the checker writes its files there)",
            root.display()
        );
        let secret = root.join("../secret.txt");
        assert!(
            !secret.exists(),
            "{} exists: the checker puts its own there, and will not overwrite yours",
            secret.display()
        );
        DocRoot::fill(None, root)
    }

    fn fill(dir: Option<tempfile::TempDir>, root: PathBuf) -> DocRoot {
        let mut root = DocRoot {
            dir,
            root,
            files: BTreeMap::new(),
        };
        root.add(
            "index.html",
            b"<html><head><link rel=stylesheet href=style.css></head>\
              <body><img src=img/logo.png></body></html>",
        );
        root.add("style.css", b"body { background: #fed; }");
        root.add("app.js", b"console.log('hi');");
        root.add("img/logo.png", &binary_content(150_000, 1));
        root.add("img/photo.jpg", &binary_content(1_000_000, 2));
        root.add("img/anim.gif", &binary_content(4_321, 3));
        root.add("a dir/with space.txt", b"spaces in both names");
        root.add("x..y.txt", b"two dots in a name");
        root.add("nested/deep/er/index.html", b"deep index");
        root.add("nested/deep/er/data.bin", &binary_content(70_001, 4));
        fs::create_dir_all(root.path("empty")).expect("mkdir");
        // A directory named like a file.
        fs::create_dir_all(root.path("page.html")).expect("mkdir");
        fs::write(root.root.join("../secret.txt"), "outside the root").expect("write");
        symlink("../secret.txt", root.path("link-out")).expect("symlink");
        symlink("style.css", root.path("link-in.css")).expect("symlink");
        for index in 0..40 {
            let size = 500 + index * 5_113;
            root.add(
                &format!("burst/f{index:02}.bin"),
                &binary_content(size, index),
            );
        }
        root
    }

    /// Where the server is told to look: `DIR/root`, so that `DIR/secret.txt`
    /// is just outside.
    pub fn root(&self) -> PathBuf {
        self.root.clone()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// Writes a file and remembers its content under its URL path.
    pub fn add(&mut self, name: &str, content: &[u8]) {
        let path = self.path(name);
        fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        fs::write(&path, content).expect("write a file");
        self.files
            .insert(format!("/{}", name.replace(' ', "%20")), content.to_vec());
    }

    pub fn content(&self, url: &str) -> &[u8] {
        self.files.get(url).map_or_else(
            || panic!("{url} is not in the document root"),
            Vec::as_slice,
        )
    }
}

impl Drop for DocRoot {
    fn drop(&mut self) {
        // A temp dir removes itself; a running server's root is emptied
        // (and `secret.txt` beside it removed) for the next check.
        if self.dir.is_none() {
            let _ = fs::remove_file(self.root.join("../secret.txt"));
            if let Ok(entries) = fs::read_dir(&self.root) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let _ = if path.is_dir() && !path.is_symlink() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                }
            }
        }
    }
}

impl Default for DocRoot {
    fn default() -> DocRoot {
        DocRoot::new()
    }
}

/// A files-mode server for `root` (a running one already serves it).
pub fn files_server(target: &Target, root: &Path) -> Server {
    let root = root.to_str().expect("a UTF-8 temp path");
    target.start(&["--mode", "files", "--root", root])
}

fn request(method: &str, target: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

/// Every response: `Server`, `Date`, `Connection`, a length.
fn assert_common_headers(response: &Response, target: &str) {
    for name in ["Server", "Date", "Connection", "Content-Length"] {
        assert!(
            response.header(name).is_some(),
            "{target}: no {name} in {response:?}"
        );
    }
}

fn assert_file(response: &Response, target: &str, content: &[u8], content_type: &str) {
    assert_eq!(response.status, 200, "{target}: {response:?}");
    assert_common_headers(response, target);
    assert_eq!(
        response.header("Content-Type"),
        Some(content_type),
        "{target}"
    );
    assert_eq!(
        response.header("Content-Length"),
        Some(content.len().to_string().as_str()),
        "{target}"
    );
    assert!(response.body == content, "{target}: the body differs");
}

pub fn files_serve_the_tree(target: &Target) {
    let root = DocRoot::for_target(target);
    let server = files_server(target, &root.root());
    let mut client = Client::connect(server.addr);
    let index = root.content("/index.html");
    assert_file(&client.get("/"), "/", index, "text/html");
    assert_file(&client.get("/?v=1"), "/?v=1", index, "text/html");
    for (target, content_type) in [
        ("/index.html", "text/html"),
        ("/style.css", "text/css"),
        ("/app.js", "application/javascript"),
        ("/img/logo.png", "image/png"),
        ("/img/photo.jpg", "image/jpeg"),
        ("/img/anim.gif", "image/gif"),
        ("/a%20dir/with%20space.txt", "text/plain"),
        ("/x..y.txt", "text/plain"),
        ("/nested/deep/er/data.bin", "application/octet-stream"),
    ] {
        let response = client.get(target);
        assert_file(&response, target, root.content(target), content_type);
        assert_eq!(
            response.header("Connection"),
            Some("keep-alive"),
            "{target}: HTTP/1.1 stays open"
        );
    }
    let deep = client.get("/nested/deep/er/");
    assert_file(&deep, "/nested/deep/er/", b"deep index", "text/html");
    let encoded = client.get("/img/%6c%6fgo.png?x=%zz");
    assert_file(
        &encoded,
        "encoded",
        root.content("/img/logo.png"),
        "image/png",
    );
    let inside = client.get("/link-in.css");
    assert_file(
        &inside,
        "/link-in.css",
        root.content("/style.css"),
        "text/css",
    );
}

pub fn files_head_has_lengths_and_no_body(target: &Target) {
    let root = DocRoot::for_target(target);
    let server = files_server(target, &root.root());
    let mut client = Client::connect(server.addr);
    for target in ["/img/photo.jpg", "/style.css", "/x..y.txt"] {
        client.send(&request("HEAD", target));
        let head = client.read_response(true);
        assert_eq!(head.status, 200, "{target}");
        assert_common_headers(&head, target);
        assert_eq!(
            head.header("Content-Length"),
            Some(root.content(target).len().to_string().as_str()),
            "{target}: HEAD announces the GET's length"
        );
    }
    // Had any HEAD sent a body, this would read it as a status line.
    let after = client.get("/style.css");
    assert_file(&after, "/style.css", root.content("/style.css"), "text/css");
}

/// Each refusal on a connection of its own, sent raw (a client library
/// would normalise `..` away before sending).
pub fn files_refusals(target: &Target) {
    let root = DocRoot::for_target(target);
    let server = files_server(target, &root.root());
    for (method, target, status) in [
        ("GET", "/missing.html", 404),
        ("GET", "/style.css/", 404),
        ("GET", "/empty/", 403),
        ("GET", "/page.html/", 403),
        ("GET", "/../secret.txt", 403),
        ("GET", "/%2e%2e/secret.txt", 403),
        ("GET", "/%2e%2e%2fsecret.txt", 403),
        ("GET", "/img/..%2f..%2f..%2fsecret.txt", 403),
        ("GET", "/link-out", 403),
        ("GET", "/%zz", 400),
        ("GET", "/a%00.txt", 400),
        ("POST", "/style.css", 405),
        ("DELETE", "/", 405),
        ("HEAD", "/missing.html", 404),
    ] {
        let mut client = Client::connect(server.addr);
        client.send(&request(method, target));
        let response = client.read_response(method == "HEAD");
        assert_eq!(response.status, status, "{method} {target}: {response:?}");
        assert_common_headers(&response, target);
        assert!(
            response.body != b"outside the root",
            "{target} leaked a file from outside the root"
        );
        if status == 405 {
            assert_eq!(response.header("Allow"), Some("GET, HEAD"));
        }
    }
    let mut client = Client::connect(server.addr);
    let moved = client.get("/a%20dir");
    assert_eq!(moved.status, 301, "a directory without its slash");
    assert_eq!(moved.header("Location"), Some("/a%20dir/"));
    // A 404 keeps the connection open.
    assert_eq!(client.get("/nope").status, 404);
    let css = client.get("/style.css");
    assert_file(&css, "/style.css", root.content("/style.css"), "text/css");
}

pub fn files_pipelined_keep_alive(target: &Target) {
    let root = DocRoot::for_target(target);
    let server = files_server(target, &root.root());
    let targets = [
        "/img/photo.jpg",
        "/style.css",
        "/missing",
        "/img/logo.png",
        "/x..y.txt",
        "/nested/deep/er/data.bin",
        "/burst/f07.bin",
    ];
    let mut batch = Vec::new();
    for target in targets {
        batch.extend(request("GET", target));
    }
    batch.extend(request("HEAD", "/img/logo.png"));
    let mut client = Client::connect(server.addr);
    client.send(&batch);
    for target in targets {
        let response = client.read_response(false);
        match root.files.get(target) {
            Some(content) => assert!(
                response.status == 200 && response.body == *content,
                "{target}: wrong response in the pipeline: {}",
                response.status_line
            ),
            None => assert_eq!(response.status, 404, "{target}"),
        }
    }
    let head = client.read_response(true);
    assert_eq!(head.header("Content-Length"), Some("150000"));
    assert_eq!(client.get("/app.js").body, root.content("/app.js"));
}

/// Resident memory of the server and its children (prefork), in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let mut pids = vec![pid];
    pids.extend(children_of(pid));
    pids.iter()
        .filter_map(|&pid| crate::procinfo::resident_bytes(pid))
        .sum()
}

/// The file the memory and shrinking checks send: far larger than what a
/// server buffers per connection (64 KiB) plus the socket buffers.
const BIG_FILE: usize = 50 * 1000 * 1000;

/// How much the server's memory may grow while it sends a 50 MB file: a
/// server that read the file into memory would grow by 50 MB.
const RSS_GROWTH_LIMIT: u64 = 12 * 1024 * 1024;

pub fn files_large_file_keeps_memory_flat(target: &Target) {
    let mut root = DocRoot::for_target(target);
    let server = files_server(target, &root.root());
    let pid = server.process("reads the server's memory");
    root.add("big.bin", &binary_content(BIG_FILE, 9));
    let mut client = Client::connect(server.addr);
    // Warm up: threads and buffers that exist for any request.
    assert_eq!(client.get("/style.css").status, 200);
    let before = resident_bytes(pid);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::SeqCst) {
                peak = peak.max(resident_bytes(pid));
                thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    client.send(&request("GET", "/big.bin"));
    let response = client.read_response(true);
    assert_eq!(response.header("Content-Length"), Some("50000000"));
    // Read half, stop reading for a while (the server must stop too, not
    // buffer the rest), then read the rest.
    let expected = root.content("/big.bin");
    let mut body = vec![0; BIG_FILE];
    client.read_exact(&mut body[..BIG_FILE / 2]);
    let stalled_peak = {
        let mut peak = 0;
        for _ in 0..40 {
            peak = peak.max(resident_bytes(pid));
            thread::sleep(Duration::from_millis(10));
        }
        peak
    };
    client.read_exact(&mut body[BIG_FILE / 2..]);
    done.store(true, Ordering::SeqCst);
    let peak = sampler.join().expect("the sampler").max(stalled_peak);
    assert!(body == expected, "the 50 MB body differs");
    let growth = peak.saturating_sub(before);
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "RSS grew by {} KiB while sending 50 MB (from {} KiB)",
        growth / 1024,
        before / 1024
    );
    assert_eq!(client.get("/app.js").body, root.content("/app.js"));
}

/// A file truncated while it is being sent: the server cannot keep the
/// promise of `Content-Length`, so it logs and closes that connection, and
/// goes on serving.
pub fn files_shrinking_file_ends_only_its_connection(target: &Target) {
    let mut root = DocRoot::for_target(target);
    let server = files_server(target, &root.root());
    server.process("reads the server's log");
    root.add("shrinks.bin", &binary_content(BIG_FILE, 5));
    let mut client = Client::connect(server.addr);
    client.send(&request("GET", "/shrinks.bin"));
    assert_eq!(client.read_response(true).status, 200);
    let mut first = vec![0; 1_000_000];
    client.read_exact(&mut first);
    // The server is at most its 64 KiB plus the socket buffers (a few MB)
    // ahead of us: far from the end of the file it is about to lose.
    fs::File::options()
        .write(true)
        .open(root.path("shrinks.bin"))
        .and_then(|file| file.set_len(1_000_000))
        .expect("truncate the file");
    let rest = client.read_to_close();
    assert!(
        first.len() + rest.len() < BIG_FILE,
        "the whole file came although it shrank"
    );
    // What came is the file as it was, cut short: never another file's
    // bytes, never the whole length padded out. One exception is the
    // kernel's, not the server's: `sendfile` queues references to the page
    // cache, not copies, and the truncation drops and zeroes those pages,
    // so what was queued past the new end may arrive as zeros (measured:
    // megabytes of them; nginx's `sendfile on` has the same property).
    let expected = root.content("/shrinks.bin");
    let new_end = first.len();
    let body: Vec<u8> = first.iter().chain(&rest).copied().collect();
    let differs = body
        .iter()
        .zip(expected)
        .enumerate()
        .position(|(at, (&byte, &wanted))| byte != wanted && !(at >= new_end && byte == 0));
    assert!(
        differs.is_none(),
        "the cut body differs from the file it was cut from at byte {differs:?}"
    );
    server.wait_for_log("could not be sent", 1, Duration::from_secs(10));
    // A new connection: 01 serves one at a time, so none could wait beside.
    let css = Client::connect(server.addr).get("/style.css");
    assert_file(&css, "/style.css", root.content("/style.css"), "text/css");
}

/// A file deleted while it is sent: the server's open descriptor keeps it
/// alive, so the download completes as it was (a server that reopened it
/// could only cut the body, never fill it with something else); the next
/// request for it is 404 and the server goes on.
pub fn files_deleted_file_is_sent_or_cut(target: &Target) {
    let mut root = DocRoot::for_target(target);
    let server = files_server(target, &root.root());
    root.add("vanishes.bin", &binary_content(BIG_FILE, 6));
    let expected = root.content("/vanishes.bin").to_vec();
    let mut client = Client::connect(server.addr);
    // Connection: close, so that the end of the body, whole or cut, is
    // the server's close.
    client.send(b"GET /vanishes.bin HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let head = client.read_response(true);
    assert_eq!(head.header("Content-Length"), Some("50000000"));
    let mut body = vec![0; 1_000_000];
    client.read_exact(&mut body);
    fs::remove_file(root.path("vanishes.bin")).expect("delete the file");
    body.extend(client.read_to_close());
    assert!(
        body.len() <= BIG_FILE && body == expected[..body.len()],
        "the body of the deleted file ({} bytes) differs from the file",
        body.len()
    );
    let mut next = Client::connect(server.addr);
    assert_eq!(next.get("/vanishes.bin").status, 404);
    let css = next.get("/style.css");
    assert_file(&css, "/style.css", root.content("/style.css"), "text/css");
}

/// Restores the mode bits of the paths it holds when dropped, also when a
/// check fails, so that the document root can be deleted.
struct Locked(Vec<(PathBuf, fs::Permissions)>);

impl Locked {
    /// Takes every permission from `paths` (`chmod 000`).
    fn new(paths: &[PathBuf]) -> Locked {
        let mut locked = Locked(Vec::new());
        for path in paths {
            let before = fs::metadata(path).expect("stat").permissions();
            fs::set_permissions(path, fs::Permissions::from_mode(0o000)).expect("chmod 000");
            locked.0.push((path.clone(), before));
        }
        locked
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        for (path, permissions) in self.0.drain(..) {
            let _ = fs::set_permissions(path, permissions);
        }
    }
}

/// Whether this process reads a file whatever its mode bits: root with
/// CAP_DAC_OVERRIDE, as tests often run in a container or CI. A server it
/// starts could read too, and `chmod 000` would deny nothing.
fn reads_despite_chmod_000() -> bool {
    let dir = tempfile::tempdir().expect("a temp dir");
    let probe = dir.path().join("probe");
    fs::write(&probe, "x").expect("write");
    let _locked = Locked::new(std::slice::from_ref(&probe));
    fs::File::open(&probe).is_ok()
}

/// A file or directory under the root that the server may not read (its
/// permissions changed while it runs) is 403, like any refusal; the rest of
/// the tree is served meanwhile, and the file again once it is readable.
pub fn files_unreadable_is_403(target: &Target) {
    let root = DocRoot::for_target(target);
    // As root, the server is started without the capabilities that ignore
    // the mode bits (it keeps its uid), through util-linux's setpriv.
    let target = if reads_despite_chmod_000() && target.is_started_here() {
        let setpriv = std::process::Command::new("setpriv")
            .arg("--version")
            .output();
        if !setpriv.is_ok_and(|output| output.status.success()) {
            crate::procinfo::report_skip_because(
                "files_unreadable_is_403",
                "running as root, chmod 000 denies nothing, and setpriv (util-linux) \
                 is not there to start the server without CAP_DAC_OVERRIDE",
            );
            return;
        }
        target.without_read_override()
    } else {
        target.clone()
    };
    let server = files_server(&target, &root.root());
    let get = |path: &str| Client::connect(server.addr).get(path);
    assert_eq!(get("/style.css").status, 200);
    let locked = Locked::new(&[root.path("style.css"), root.path("nested/deep")]);
    for path in ["/style.css", "/nested/deep/er/data.bin", "/nested/deep/er/"] {
        let response = get(path);
        assert_eq!(response.status, 403, "{path} unreadable: {response:?}");
        assert_common_headers(&response, path);
    }
    let js = get("/app.js");
    assert_file(
        &js,
        "/app.js",
        root.content("/app.js"),
        "application/javascript",
    );
    drop(locked);
    let css = get("/style.css");
    assert_file(&css, "/style.css", root.content("/style.css"), "text/css");
    let deep = get("/nested/deep/er/data.bin");
    assert_eq!(deep.body, root.content("/nested/deep/er/data.bin"));
}

/// How many clients are served beside a client that stopped reading.
const OTHERS: usize = 100;

/// A client that asks for a 50 MB file and never reads: the server's
/// 64 KiB and the socket buffers fill, and it must wait for that client
/// without making anyone else wait. 100 other clients each get their
/// answer at once from a concurrent model; a model that serves one
/// connection at a time (01) serves them once it gives the staller up at
/// the idle timeout. Either way within 1.5 idle timeouts, the linger time
/// and some slack.
pub fn files_stalled_reader_does_not_hurt_others(target: &Target) {
    let mut root = DocRoot::for_target(target);
    let server = target.start(&[
        "--mode",
        "files",
        "--root",
        root.root().to_str().expect("a UTF-8 temp path"),
        "--idle-timeout",
        "2s",
    ]);
    root.add("big.bin", &binary_content(BIG_FILE, 7));
    let staller = TcpStream::connect(server.addr).expect("connect");
    (&staller)
        .write_all(&request("GET", "/big.bin"))
        .expect("send the request");
    // The observable state: 64 KiB and more wait unread in our socket.
    staller
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set a read timeout");
    let mut pending = vec![0; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while staller.peek(&mut pending).unwrap_or(0) < pending.len() {
        assert!(Instant::now() < deadline, "the 50 MB file does not come");
        thread::sleep(Duration::from_millis(10));
    }
    // 01 first waits out the idle timeout and the lingering close that
    // follows it (up to 2 s, the contract's linger time), then serves the
    // 100 one by one.
    let bound = server.idle_timeout * 3 / 2 + Duration::from_secs(2 + 5);
    let root = Arc::new(root);
    let started = Instant::now();
    let others: Vec<_> = (0..OTHERS)
        .map(|index| {
            let (addr, root) = (server.addr, Arc::clone(&root));
            thread::spawn(move || {
                let response = Client::connect(addr).get("/style.css");
                assert!(
                    response.status == 200 && response.body == root.content("/style.css"),
                    "client {index} beside a stalled reader: {}",
                    response.status_line
                );
                started.elapsed()
            })
        })
        .collect();
    let slowest = others
        .into_iter()
        .map(|other| other.join().expect("a client beside the stalled one"))
        .max()
        .unwrap_or_default();
    assert!(
        slowest < bound,
        "the slowest of {OTHERS} clients beside a stalled reader took {slowest:?} \
         (idle timeout {:?})",
        server.idle_timeout
    );
    drop(staller);
}

/// What a browser does with a page: 6 keep-alive connections at once,
/// fetching 40 files between them.
pub fn files_browser_burst(target: &Target) {
    let root = Arc::new(DocRoot::for_target(target));
    let server = files_server(target, &root.root());
    let connections = 6;
    let start = Arc::new(Barrier::new(connections));
    let fetchers: Vec<_> = (0..connections)
        .map(|connection| {
            let root = Arc::clone(&root);
            let start = Arc::clone(&start);
            let addr = server.addr;
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                start.wait();
                let mut fetched = 0;
                for index in (connection..40).step_by(connections) {
                    let target = format!("/burst/f{index:02}.bin");
                    let response = client.get(&target);
                    assert!(
                        response.status == 200 && response.body == root.content(&target),
                        "{target}: {}",
                        response.status_line
                    );
                    fetched += 1;
                }
                // Like a browser leaving the page: blocking models serve
                // the next connection only once this one is gone.
                client.stream().shutdown(std::net::Shutdown::Both).ok();
                fetched
            })
        })
        .collect();
    let fetched: usize = fetchers
        .into_iter()
        .map(|fetcher| fetcher.join().expect("a fetcher"))
        .sum();
    assert_eq!(fetched, 40);
}

pub fn files_root_must_be_a_directory(target: &Target) {
    let root = DocRoot::new();
    let not_a_dir = root.path("style.css");
    for bad in [not_a_dir.to_str().expect("UTF-8"), "/no/such/dir"] {
        let (status, stderr) = target.run_to_exit(&["--mode", "files", "--root", bad]);
        assert_eq!(status.code(), Some(2), "--root {bad}: {stderr}");
        assert!(
            stderr.contains("--root") && stderr.contains("not a readable directory"),
            "{stderr}"
        );
    }
}

/// The lecture's quote, as the axum app sends it.
pub const QUOTE_AUTHOR: &str = "Grace Hopper";
pub const QUOTE: &str = "I've always been more interested in the future than in the past.";

pub fn axum_quote(target: &Target) {
    let server = target.start(&["--mode", "axum"]);
    let mut client = Client::connect(server.addr);
    for _ in 0..2 {
        let response = client.get("/quote");
        assert_eq!(response.status, 200, "{response:?}");
        assert_common_headers(&response, "/quote");
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        let quote: serde_json::Value =
            serde_json::from_slice(&response.body).expect("the body is JSON");
        assert_eq!(quote["author"], QUOTE_AUTHOR);
        assert_eq!(quote["quote"], QUOTE);
    }
    client.send(&request("HEAD", "/quote"));
    let head = client.read_response(true);
    assert_eq!(head.status, 200);
    client.send(&request("POST", "/quote"));
    let post = client.read_response(false);
    assert_eq!(post.status, 405, "{post:?}");
    assert!(
        post.header("Allow")
            .is_some_and(|allow| allow.contains("GET")),
        "{post:?}"
    );
    assert_eq!(client.get("/nope").status, 404);
    // Pipelined, and still in order.
    let mut batch = request("GET", "/quote");
    batch.extend(request("GET", "/missing"));
    batch.extend(request("GET", "/quote"));
    client.send(&batch);
    let statuses: Vec<u16> = (0..3).map(|_| client.read_response(false).status).collect();
    assert_eq!(statuses, [200, 404, 200]);
}
