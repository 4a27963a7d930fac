//! Sending a piece of a file to a socket without copying it through the
//! server: `sendfile(2)`, the one place with platform code for it.
//!
//! Read + write moves every byte twice across the kernel boundary: the
//! kernel copies the page cache into our buffer, then our buffer into the
//! socket. `sendfile` tells the kernel "these bytes of that file, to this
//! socket", and it moves them itself, from the page cache to the socket:
//! no buffer in the server, one syscall instead of two. Linux, macOS and
//! FreeBSD each have one, with three different signatures; elsewhere
//! [`FileRange::copy_to`] reads and writes, which is also what a driver
//! uses whose sockets are not the kernel's plain ones (08's may sockets)
//! and what the tests use to check it on Linux.
//!
//! On a non-blocking socket `sendfile` fails with `EAGAIN` like `write`,
//! and, like `write`, sends only what the socket takes. A file that ends
//! before the bytes the response announced (it shrank while we sent it)
//! makes `sendfile` return 0: that is an error here, the driver closes the
//! connection, since the client counts on `Content-Length` bytes.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;

/// At most this much of a file per `sendfile` call. The call takes only
/// what the socket's send buffer has room for (up to a few MiB on
/// loopback, as the kernel grows it), so no memory of ours grows with it;
/// the bound only keeps one call short, so that an event loop's other
/// connections are not kept waiting, as nginx's `sendfile_max_chunk` does
/// (2 MiB by default too). Calls of 64 KiB, the output bound, cost the
/// 1 MiB file twice the CPU: `scripts/bench-files-nginx.sh`.
pub const FILE_CHUNK: usize = 2 * 1024 * 1024;

/// The portable copy reads at most this much at a time: the session's
/// output bound (64 KiB), so a copying driver holds no more than echo does.
const COPY_LIMIT: usize = 64 * 1024;

// ANCHOR: file_range
/// The part of a file to send next: at most [`FILE_CHUNK`] bytes, which
/// `sendfile` hands to the socket as far as it takes them; a driver that
/// copies them instead reads at most the output bound at a time.
#[derive(Debug, Clone, Copy)]
pub struct FileRange<'a> {
    pub file: &'a File,
    pub offset: u64,
    pub length: usize,
}
// ANCHOR_END: file_range

impl FileRange<'_> {
    /// Reads the start of the range into `buffer` (`pread`: the file's own
    /// position is not used, so nothing else can move it). Fails if the
    /// file ends first.
    pub fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        let wanted = buffer.len().min(self.length);
        let read = self.file.read_at(&mut buffer[..wanted], self.offset)?;
        if wanted == 0 {
            return Ok(0);
        }
        self.moved(read)
    }

    /// Checks the count a system call moved out of this range (a read, a
    /// `sendfile`, a splice): 0 of a non-empty range means the file ended
    /// before the length its response announced.
    pub fn moved(&self, count: usize) -> io::Result<usize> {
        if count == 0 && self.length > 0 {
            return Err(ended_early());
        }
        Ok(count)
    }

    /// How much of the range a driver that copies reads at once: at most
    /// the output bound, whatever `sendfile` is offered.
    pub fn copy_length(&self) -> usize {
        self.length.min(COPY_LIMIT)
    }

    /// The portable fallback: reads the range and writes what `socket`
    /// takes. Bytes read but not taken are read again next time (from the
    /// page cache), so nothing is kept between calls.
    pub fn copy_to(&self, socket: &mut impl Write) -> io::Result<usize> {
        let mut buffer = vec![0; self.copy_length()];
        let read = self.read(&mut buffer)?;
        socket.write(&buffer[..read])
    }
}

/// The file ended before the length its response announced. Logged here,
/// where every driver's send of a file finds it: the driver only sees an
/// error and closes the connection.
fn ended_early() -> io::Error {
    let error = io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file ended before its announced length (it shrank while sent)",
    );
    log::warn!("closing a connection: its file could not be sent: {error}");
    error
}

/// A file offset as the system's `off_t`.
fn offset(range: &FileRange<'_>) -> io::Result<nix::libc::off_t> {
    nix::libc::off_t::try_from(range.offset).map_err(|_| io::ErrorKind::InvalidInput.into())
}

// ANCHOR: send_file
/// Sends what `socket` takes of `range` with the system's `sendfile`;
/// returns how many bytes went out.
#[cfg(target_os = "linux")]
pub fn send_file(socket: BorrowedFd<'_>, range: &FileRange<'_>) -> io::Result<usize> {
    let mut offset = offset(range)?;
    let sent = nix::sys::sendfile::sendfile(socket, range.file, Some(&mut offset), range.length)?;
    range.moved(sent)
}
// ANCHOR_END: send_file

/// macOS and FreeBSD: the file comes first, and the count of bytes sent
/// comes back beside the result, because a non-blocking socket may take
/// some and then say `EAGAIN`: those bytes count.
#[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
pub fn send_file(socket: BorrowedFd<'_>, range: &FileRange<'_>) -> io::Result<usize> {
    #[cfg(target_vendor = "apple")]
    let (result, sent) = nix::sys::sendfile::sendfile(
        range.file,
        socket,
        offset(range)?,
        Some(nix::libc::off_t::try_from(range.length).unwrap_or(nix::libc::off_t::MAX)),
        None,
        None,
    );
    #[cfg(target_os = "freebsd")]
    let (result, sent) = nix::sys::sendfile::sendfile(
        range.file,
        socket,
        offset(range)?,
        Some(range.length),
        None,
        None,
        nix::sys::sendfile::SfFlags::empty(),
        0,
    );
    let sent = usize::try_from(sent).unwrap_or(0);
    match result {
        Ok(()) | Err(nix::errno::Errno::EAGAIN) if sent > 0 => Ok(sent),
        Ok(()) => range.moved(0),
        Err(errno) => Err(errno.into()),
    }
}

/// Systems without a `sendfile` here: read, then write.
#[cfg(not(any(target_os = "linux", target_vendor = "apple", target_os = "freebsd")))]
pub fn send_file(socket: BorrowedFd<'_>, range: &FileRange<'_>) -> io::Result<usize> {
    struct Socket<'a>(BorrowedFd<'a>);
    impl Write for Socket<'_> {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            Ok(nix::unistd::write(self.0, bytes)?)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    range.copy_to(&mut Socket(socket))
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    use super::*;

    fn file_of(content: &[u8]) -> File {
        let mut file = tempfile::tempfile().expect("a temp file");
        file.write_all(content).expect("write");
        file
    }

    fn connected() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (server, client)
    }

    /// Sends the whole range with `send`, as a driver would, and returns
    /// what the client received.
    fn send_all(
        file: &File,
        offset: u64,
        length: usize,
        mut send: impl FnMut(&mut TcpStream, &FileRange<'_>) -> io::Result<usize>,
    ) -> Vec<u8> {
        let (mut server, mut client) = connected();
        let (mut offset, mut left) = (offset, length);
        while left > 0 {
            let range = FileRange {
                file,
                offset,
                length: left.min(4096),
            };
            let sent = send(&mut server, &range).expect("send");
            offset += sent as u64;
            left -= sent;
        }
        drop(server);
        let mut received = Vec::new();
        client.read_to_end(&mut received).expect("read");
        received
    }

    #[test]
    fn sendfile_and_the_fallback_send_the_same_bytes() {
        let content: Vec<u8> = (0..100_000u32).map(|index| (index % 251) as u8).collect();
        let file = file_of(&content);
        let native = send_all(&file, 1000, 50_000, |socket, range| {
            send_file(socket.as_fd(), range)
        });
        let fallback = send_all(&file, 1000, 50_000, |socket, range| range.copy_to(socket));
        assert_eq!(native, &content[1000..51_000]);
        assert_eq!(fallback, native);
    }

    #[test]
    fn a_file_that_ended_early_is_an_error_both_ways() {
        let file = file_of(&[7; 100]);
        let range = FileRange {
            file: &file,
            offset: 100,
            length: 50,
        };
        let (mut server, _client) = connected();
        let native = send_file(server.as_fd(), &range).expect_err("past the end");
        let fallback = range.copy_to(&mut server).expect_err("past the end");
        assert_eq!(native.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(fallback.kind(), io::ErrorKind::UnexpectedEof);
    }
}
