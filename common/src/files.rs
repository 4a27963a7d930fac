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
//!    with `openat2(2)` and `RESOLVE_BENEATH`: the kernel follows symlinks
//!    but fails (`EXDEV`) the moment resolution would leave the root, by an
//!    absolute link, a relative one with `..`, or a link to a link. The
//!    check and the open are one system call, so nothing can swap a symlink
//!    in between (the race a "canonicalise, compare prefix, then open"
//!    server has).
//!
//! 403 or 404? Anything that would leave the root is 403: a `..` that
//! climbs out (found without touching the disk) and a symlink that leads
//! out, whether or not its target exists (the kernel refuses before it
//! looks), so a 403 tells nothing about what exists outside. Missing files,
//! a slash after a file name and symlink loops are 404.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

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
    /// `O_PATH`: a handle on the directory for `openat2`, not for reading.
    dir: OwnedFd,
    /// Canonical, for messages.
    pub path: PathBuf,
}

impl Root {
    /// Opens the root, checked once at start-up: it must be a directory
    /// we can list.
    pub fn open(path: &Path) -> io::Result<Root> {
        let path = path.canonicalize()?;
        // Reading the directory proves both "is a directory" and "readable".
        std::fs::read_dir(&path)?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = nix::fcntl::open(&path, flags, nix::sys::stat::Mode::empty())?;
        Ok(Root { dir, path })
    }

    /// Opens `relative` (no `..` left in it) without leaving the root, and
    /// asks the open file what it is (one `fstat` per request, and about
    /// the file that was opened, not whatever the name means by now).
    /// `O_NONBLOCK` keeps a FIFO in the tree from blocking the open (and
    /// the whole server with it); regular files ignore the flag.
    fn open_beneath(&self, relative: &Path) -> Result<(File, Metadata), Refusal> {
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let file = match openat2(&self.dir, relative, how) {
            Ok(fd) => File::from(fd),
            // The path would leave the root (a symlink out).
            Err(Errno::EXDEV) => return Err(Refusal::Forbidden),
            Err(errno) => return Err(refusal(io::Error::from(errno))),
        };
        let metadata = file.metadata().map_err(refusal)?;
        Ok((file, metadata))
    }
}
// ANCHOR_END: root

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
