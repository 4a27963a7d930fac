//! Files mode's rules, without any networking: which file a request path
//! names under the document root, whether it may be served, and its MIME
//! type. The file server app ([`crate::app::FileServer`]) turns the answer
//! into a response.
//!
//! The order of the steps is the security argument:
//!
//! 1. the query string is dropped and the path percent-decoded (a bad
//!    escape or a NUL byte is 400: no file name can contain NUL, and a
//!    half-decoded path is a path nobody meant);
//! 2. the *decoded* path is split at `/` and its dot segments removed
//!    lexically, as RFC 3986 says; a `..` that would climb above the root
//!    is refused here (403) before the file system is touched, so `%2e%2e`
//!    and `%2f` cannot sneak one past: they were decoded in step 1;
//! 3. what remains is opened *relative to the root's directory descriptor*
//!    with `openat2(2)` and `RESOLVE_BENEATH` (Linux): the kernel follows
//!    symlinks but fails (`EXDEV`) the moment resolution would leave the
//!    root, by an absolute link, a relative one with `..`, or a link to a
//!    link. The check and the open are one system call, so nothing can swap
//!    a symlink in between (the race a "canonicalise, compare prefix, then
//!    open" server has). Systems without `openat2` (macOS, the BSDs) get
//!    the same rules from [`walk_beneath`]: one component at a time from the
//!    root's descriptor, each opened with `O_NOFOLLOW`, and symlinks
//!    followed by hand, so that the kernel never follows one for us.
//!
//! 403 or 404? Anything that would leave the root is 403: a `..` that
//! climbs out (found without touching the disk) and a symlink that leads
//! out, whether or not its target exists (the kernel refuses before it
//! looks), so a 403 tells nothing about what exists outside. Missing files,
//! a slash after a file name and symlink loops are 404.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::Mode;

/// The file served for a path that ends in `/`.
pub const INDEX_FILE: &str = "index.html";

/// Why a path is not served, as an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: not an origin-form path, a bad percent escape or a NUL.
    BadRequest,
    /// 403: outside the root, a directory without an index, or not a
    /// regular file (a FIFO would block the server on open).
    Forbidden,
    /// 404: nothing there, or a slash after a file name.
    NotFound,
}

/// What a request path names.
#[derive(Debug)]
pub enum Resolved {
    /// A regular file inside the root, opened, with its length (from the
    /// open file, so that both describe the same file).
    File {
        file: File,
        length: u64,
        content_type: &'static str,
    },
    /// A directory named without its final slash: the client is sent to
    /// `location` (the path with the slash), so that relative links in
    /// its index page resolve inside the directory.
    AddSlash { location: String },
}

// ANCHOR: root
/// The document root, held open: every file is opened relative to this
/// descriptor, never by an absolute path.
#[derive(Debug)]
pub struct Root {
    /// A handle on the directory to open files beneath (`O_PATH` on Linux:
    /// for `openat2`, not for reading).
    dir: OwnedFd,
    beneath: Beneath,
    /// Canonical, for messages.
    pub path: PathBuf,
}

/// How a file is opened without leaving the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beneath {
    /// One `openat2(RESOLVE_BENEATH)`: the kernel enforces the root.
    #[cfg(target_os = "linux")]
    Openat2,
    /// [`walk_beneath`]: one `openat(O_NOFOLLOW)` per component, anywhere.
    Walk,
}

impl Beneath {
    /// This system's best: the kernel's check where it has one.
    pub const NATIVE: Beneath = {
        #[cfg(target_os = "linux")]
        let native = Beneath::Openat2;
        #[cfg(not(target_os = "linux"))]
        let native = Beneath::Walk;
        native
    };
}

impl Root {
    /// Opens the root, checked once at start-up: it must be a directory
    /// we can list.
    pub fn open(path: &Path) -> io::Result<Root> {
        Root::open_with(path, Beneath::NATIVE)
    }

    /// [`Root::open`] with a chosen way of opening files beneath it (the
    /// tests run every rule with each way this system has).
    pub fn open_with(path: &Path, beneath: Beneath) -> io::Result<Root> {
        let path = path.canonicalize()?;
        // Reading the directory proves both "is a directory" and "readable".
        std::fs::read_dir(&path)?;
        let handle = match beneath {
            #[cfg(target_os = "linux")]
            Beneath::Openat2 => OFlag::O_PATH,
            // `O_PATH` is Linux's; elsewhere an ordinary read-only
            // descriptor serves as the starting point of `openat`.
            Beneath::Walk => OFlag::O_RDONLY,
        };
        let flags = handle | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::fcntl::open(&path, flags, Mode::empty())?;
        Ok(Root { dir, beneath, path })
    }

    /// Opens `relative` (no `..` left in it) without leaving the root, and
    /// asks the open file what it is (one `fstat` per request, and about
    /// the file that was opened, not whatever the name means by now).
    fn open_beneath(&self, relative: &Path) -> Result<(File, Metadata), Refusal> {
        let file = match self.beneath {
            #[cfg(target_os = "linux")]
            Beneath::Openat2 => openat2_beneath(&self.dir, relative)?,
            Beneath::Walk => walk_beneath(&self.dir, relative)?,
        };
        let metadata = file.metadata().map_err(refusal)?;
        Ok((file, metadata))
    }
}

/// `O_NONBLOCK` keeps a FIFO in the tree from blocking the open (and the
/// whole server with it); regular files ignore the flag.
fn file_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC
}

/// Linux: one system call resolves and opens, and refuses (`EXDEV`) any
/// path that would leave `root`.
#[cfg(target_os = "linux")]
fn openat2_beneath(root: &OwnedFd, relative: &Path) -> Result<File, Refusal> {
    use nix::errno::Errno;
    use nix::fcntl::{OpenHow, ResolveFlag, openat2};
    let how = OpenHow::new()
        .flags(file_flags())
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(root, relative, how) {
        Ok(fd) => Ok(File::from(fd)),
        // The path would leave the root (a symlink out).
        Err(Errno::EXDEV) => Err(Refusal::Forbidden),
        Err(errno) => Err(refusal(io::Error::from(errno))),
    }
}
// ANCHOR_END: root

// ANCHOR: walk
/// How many symlinks one path may pass through, as Linux's `ELOOP` limit.
const MAX_SYMLINKS: usize = 40;

/// The portable twin of `openat2(RESOLVE_BENEATH)`: resolves `relative`
/// one component at a time, each opened with `O_NOFOLLOW` relative to the
/// directory descriptor before it, so the kernel never follows a symlink
/// on its own. A symlink is read (`readlinkat`) and its target's components
/// put in front of the rest, as the kernel would; `..` steps back to the
/// descriptor of the directory above. The rules are openat2's: an absolute
/// link, or a `..` above the root, is 403; more than 40 links is a loop,
/// 404. No race: what is checked is the descriptor that is then used, and
/// a symlink swapped in between two steps makes `O_NOFOLLOW` fail rather
/// than be followed.
pub fn walk_beneath(root: &OwnedFd, relative: &Path) -> Result<File, Refusal> {
    // The directories entered below the root, innermost last.
    let mut entered: Vec<OwnedFd> = Vec::new();
    let mut rest: VecDeque<Vec<u8>> = VecDeque::new();
    push_components(&mut rest, relative.as_os_str().as_bytes());
    let mut links = 0;
    while let Some(name) = rest.pop_front() {
        if name == b".." {
            if entered.pop().is_none() {
                return Err(Refusal::Forbidden); // above the root
            }
            continue;
        }
        let dir = entered.last().unwrap_or(root);
        let name = OsStr::from_bytes(&name);
        // The last component may be a file; any before it must be a
        // directory. (Components are never empty or `.`.)
        let flags = if rest.is_empty() {
            file_flags()
        } else {
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC
        };
        match openat(dir, name, flags | OFlag::O_NOFOLLOW, Mode::empty()) {
            Ok(fd) if rest.is_empty() => return Ok(File::from(fd)),
            Ok(fd) => entered.push(fd),
            // O_NOFOLLOW failed on a symlink (ELOOP on Linux and macOS,
            // EMLINK on FreeBSD), or the open failed for another reason:
            // asking "is it a link?" tells the two apart on every system.
            Err(error) => match readlinkat(dir, name) {
                Ok(target) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Refusal::NotFound); // a loop
                    }
                    let target = target.into_vec();
                    if target.starts_with(b"/") {
                        return Err(Refusal::Forbidden); // absolute: out
                    }
                    push_components(&mut rest, &target);
                }
                Err(_) => return Err(refusal(io::Error::from(error))),
            },
        }
    }
    // The path named a directory (the root itself, or a link ending in
    // `..`): open it afresh, readable, like the last component above.
    let dir = entered.last().map_or(root.as_fd(), AsFd::as_fd);
    openat(dir, ".", file_flags(), Mode::empty())
        .map(File::from)
        .map_err(|errno| refusal(io::Error::from(errno)))
}

/// Puts the components of `path` in front of `rest`, in order, leaving out
/// empty ones and `.` (they change nothing).
fn push_components(rest: &mut VecDeque<Vec<u8>>, path: &[u8]) {
    for component in path.split(|&byte| byte == b'/').rev() {
        if !component.is_empty() && component != b"." {
            rest.push_front(component.to_vec());
        }
    }
}
// ANCHOR_END: walk

// ANCHOR: resolve
/// Finds the file that `target` (the request target, e.g.
/// `/img/a%20b.png?v=2`) names under `root`.
pub fn resolve(root: &Root, target: &str) -> Result<Resolved, Refusal> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Err(Refusal::BadRequest);
    }
    let decoded = percent_decode(path)?;
    let wants_directory = decoded.ends_with(b"/");
    let mut relative = PathBuf::from(".");
    let mut depth = 0;
    for segment in decoded.split(|&byte| byte == b'/') {
        match segment {
            b"" | b"." => {}
            // Climbing above the root: refused before any disk access.
            b".." if depth == 0 => return Err(Refusal::Forbidden),
            b".." => {
                relative.pop();
                depth -= 1;
            }
            name => {
                relative.push(OsStr::from_bytes(name));
                depth += 1;
            }
        }
    }
    let (file, metadata) = root.open_beneath(&relative)?;
    if metadata.is_dir() {
        if !wants_directory {
            return Ok(Resolved::AddSlash {
                location: format!("{path}/"),
            });
        }
        // A directory without an index (or whose index leads out) is not
        // listed: 403.
        return match root.open_beneath(&relative.join(INDEX_FILE)) {
            Ok((index, metadata)) => regular(index, &metadata, INDEX_FILE.as_ref()),
            Err(Refusal::NotFound) => Err(Refusal::Forbidden),
            Err(refused) => Err(refused),
        };
    }
    if wants_directory {
        return Err(Refusal::NotFound); // `/file.html/`
    }
    regular(file, &metadata, &relative)
}
// ANCHOR_END: resolve

/// Serves an open file if it is a regular one; a FIFO, a device or a
/// directory where a file is expected is 403.
fn regular(file: File, metadata: &Metadata, name: &Path) -> Result<Resolved, Refusal> {
    if !metadata.is_file() {
        return Err(Refusal::Forbidden);
    }
    Ok(Resolved::File {
        file,
        length: metadata.len(),
        content_type: content_type(name),
    })
}

/// How a failed file system call is answered.
fn refusal(error: io::Error) -> Refusal {
    match error.kind() {
        io::ErrorKind::PermissionDenied => Refusal::Forbidden,
        // Missing, a file used as a directory (ENOTDIR), a symlink loop,
        // a name too long: there is no such file to serve.
        _ => Refusal::NotFound,
    }
}

/// `%XX` escapes to bytes. A `%` without two hex digits after it, or a
/// decoded NUL, makes the request bad.
pub fn percent_decode(path: &str) -> Result<Vec<u8>, Refusal> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = match bytes[index] {
            b'%' => {
                let high = bytes.get(index + 1).and_then(|&digit| hex_value(digit));
                let low = bytes.get(index + 2).and_then(|&digit| hex_value(digit));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(Refusal::BadRequest);
                };
                index += 3;
                high * 16 + low
            }
            other => {
                index += 1;
                other
            }
        };
        if byte == 0 {
            return Err(Refusal::BadRequest);
        }
        decoded.push(byte);
    }
    Ok(decoded)
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|value| value as u8)
}

// ANCHOR: content_type
/// The bare `Content-Type` for a file name, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(OsStr::to_str).unwrap_or("");
    // mime_guess follows RFC 9239 (`text/javascript`); the lab's test suite
    // and the contract (the book's Contract chapter) expect the older,
    // still common name.
    if extension.eq_ignore_ascii_case("js") {
        return "application/javascript";
    }
    mime_guess::from_ext(extension)
        .first_raw()
        .unwrap_or("application/octet-stream")
}
// ANCHOR_END: content_type

#[cfg(test)]
mod tests;
