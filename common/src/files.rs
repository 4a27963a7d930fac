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
//! 3. the remaining path is joined to the root and canonicalised by the
//!    kernel (every symlink followed); if the result is not inside the
//!    canonical root, a symlink led out (403).
//!
//! 403 or 404? A `..` that climbs out is 403 without looking at the disk,
//! so it tells nothing about what exists outside. A symlink that leads out
//! is 403 too when its target exists (the link is inside the root and
//! visible anyway) and 404 when it dangles: canonicalising needs a target.
//! Missing files, and a slash after a file name, are 404.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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

/// The root as the server will compare against: absolute, symlinks
/// resolved, and a directory we can list. Checked once at start-up.
pub fn canonical_root(root: &Path) -> io::Result<PathBuf> {
    let canonical = root.canonicalize()?;
    // Reading the directory proves both "is a directory" and "readable".
    std::fs::read_dir(&canonical)?;
    Ok(canonical)
}

// ANCHOR: resolve
/// Finds the file that `target` (the request target, e.g.
/// `/img/a%20b.png?v=2`) names under `root`, which must come from
/// [`canonical_root`].
pub fn resolve(root: &Path, target: &str) -> Result<Resolved, Refusal> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/') {
        return Err(Refusal::BadRequest);
    }
    let decoded = percent_decode(path)?;
    let wants_directory = decoded.ends_with(b"/");
    let mut segments: Vec<&[u8]> = Vec::new();
    for segment in decoded.split(|&byte| byte == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                // Climbing above the root: refused before any disk access.
                segments.pop().ok_or(Refusal::Forbidden)?;
            }
            name => segments.push(name),
        }
    }
    let mut candidate = root.to_path_buf();
    candidate.extend(segments.iter().map(|name| OsStr::from_bytes(name)));
    let canonical = inside_root(root, &candidate)?;
    let metadata = std::fs::metadata(&canonical).map_err(refusal)?;
    if metadata.is_dir() {
        if !wants_directory {
            return Ok(Resolved::AddSlash {
                location: format!("{path}/"),
            });
        }
        // The index may itself be a symlink: check it like any path.
        let index = inside_root(root, &canonical.join(INDEX_FILE)).map_err(|refused| {
            // A directory without an index is not listed: 403.
            match refused {
                Refusal::NotFound => Refusal::Forbidden,
                other => other,
            }
        })?;
        return open_regular(&index).map_err(|refused| match refused {
            Refusal::NotFound => Refusal::Forbidden,
            other => other,
        });
    }
    if wants_directory {
        return Err(Refusal::NotFound); // `/file.html/`
    }
    open_regular(&canonical)
}
// ANCHOR_END: resolve

/// Canonicalises `candidate` (the kernel follows every symlink) and checks
/// that the result is still under `root`.
fn inside_root(root: &Path, candidate: &Path) -> Result<PathBuf, Refusal> {
    let canonical = candidate.canonicalize().map_err(refusal)?;
    if canonical.starts_with(root) {
        Ok(canonical)
    } else {
        Err(Refusal::Forbidden)
    }
}

/// Opens a regular file; anything else (directory, FIFO, device) is 403.
/// The type is checked before opening because opening a FIFO blocks until
/// someone writes to it, which would stall the whole server.
fn open_regular(path: &Path) -> Result<Resolved, Refusal> {
    if !std::fs::metadata(path).map_err(refusal)?.is_file() {
        return Err(Refusal::Forbidden);
    }
    let file = File::open(path).map_err(refusal)?;
    let metadata = file.metadata().map_err(refusal)?;
    if !metadata.is_file() {
        return Err(Refusal::Forbidden);
    }
    Ok(Resolved::File {
        file,
        length: metadata.len(),
        content_type: content_type(path),
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
    // and design.md expect the older, still common name.
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
