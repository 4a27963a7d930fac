//! File bodies without copies: file -> pipe -> socket.
//!
//! io_uring has no `sendfile`. It has `splice`, which moves bytes between
//! a pipe and anything else: from the file into a pipe the kernel moves
//! *references* to the page cache's pages, not bytes, and from the pipe
//! into the socket it hands those same pages to the network stack. So a
//! body goes out in two operations per pipeful, linked (`IOSQE_IO_LINK`:
//! the second starts when the first is done), and its bytes are copied
//! once, by the client's `recv`, as with 07's `sendfile`.
//!
//! The surprise: `IORING_OP_SPLICE` never completes at submission. The
//! kernel has no non-blocking way to splice from a file (the page may be
//! on disk), so it hands every splice to *io-wq*, its own pool of worker
//! threads, and a worker runs both links, blocking as 01-blocking would.
//! A wake-up of a kernel thread per pipeful costs more than copying a
//! small body twice, so only bodies of [`WORTH_A_PIPE`] or more take this
//! path; smaller ones are read and sent like bytes (`connection.rs`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use common::sendfile::FileRange;
use io_uring::opcode;
use io_uring::squeue::{Entry, Flags};
use io_uring::types::Fd;
use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// A body at least this long is spliced; a shorter one is copied.
/// `scripts/bench-files-nginx.sh` measures both sides of it: the small
/// file (copied) and the 1 MiB one (spliced).
pub const WORTH_A_PIPE: usize = 64 * 1024;

/// The pipe we ask for: a 1 MiB body in one pipeful, so one hand-off to
/// io-wq (the default pipe holds 64 KiB: sixteen; 256 KiB pipes cost the
/// 1 MiB file a quarter more CPU, `scripts/bench-files-nginx.sh`). An
/// unprivileged user may ask up to `fs.pipe-max-size` (1 MiB), and the
/// kernel counts each pipe's size against its user while the pipe exists:
/// past `fs.pipe-user-pages-soft` (64 MiB, 64 such pipes) it refuses the
/// size, and the pipe keeps the one it was made with (64 KiB, or 8 KiB
/// once past that limit): slower, never wrong.
const PIPE_SIZE: i32 = 1024 * 1024;

/// The two links that send the next piece of a body.
pub struct Splices {
    /// File -> pipe, linked to `send`; `None` when a short fill left bytes
    /// in the pipe, which go first.
    pub fill: Option<Entry>,
    /// Pipe -> socket.
    pub send: Entry,
}

// ANCHOR: file_pipe
/// A connection's pipe, made when a large body starts and closed when it
/// is sent, so that waiting connections hold none.
pub struct FilePipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
    /// Bytes filled into the pipe and not sent yet.
    held: usize,
}

impl FilePipe {
    pub fn new() -> io::Result<FilePipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let capacity = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE))
            .or_else(|_| fcntl(&write, FcntlArg::F_GETPIPE_SZ))?;
        Ok(FilePipe {
            read,
            write,
            capacity: usize::try_from(capacity).unwrap_or(0),
            held: 0,
        })
    }

    /// The operations that send the next piece of `range` to `socket`:
    /// at most a pipeful.
    ///
    /// The descriptors in the entries are looked up by the io-wq worker
    /// when it runs them, later. They stay open until then: the pipe is
    /// the connection's, freed with it once nothing is in flight, and the
    /// session closes the file only after its last byte was sent, which
    /// comes after the fill that read it.
    pub fn next(&self, range: &FileRange<'_>, socket: Fd) -> io::Result<Splices> {
        if self.held > 0 {
            return Ok(Splices {
                fill: None,
                send: self.send(socket, self.held),
            });
        }
        let length = range.length.min(self.capacity);
        let offset = i64::try_from(range.offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        // A fill shorter than asked (the file shrank) fails the link: the
        // send is cancelled instead of waiting forever on an empty pipe,
        // and the next round sends what the fill left.
        let fill = opcode::Splice::new(
            Fd(range.file.as_raw_fd()),
            offset,
            Fd(self.write.as_raw_fd()),
            -1,
            to_u32(length),
        )
        .build()
        .flags(Flags::IO_LINK);
        Ok(Splices {
            fill: Some(fill),
            send: self.send(socket, length),
        })
    }

    fn send(&self, socket: Fd, length: usize) -> Entry {
        opcode::Splice::new(Fd(self.read.as_raw_fd()), -1, socket, -1, to_u32(length)).build()
    }

    /// A fill completed: `count` bytes more in the pipe.
    pub fn filled(&mut self, count: usize) {
        self.held += count;
    }

    /// A send completed: `count` bytes left the pipe for the socket.
    pub fn sent(&mut self, count: usize) {
        self.held = self.held.saturating_sub(count);
    }
}
// ANCHOR_END: file_pipe

fn to_u32(length: usize) -> u32 {
    u32::try_from(length).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use io_uring::IoUring;
    use nix::libc::ECANCELED;

    use super::*;

    /// Submits `entries` in order and returns their results, in order.
    fn run(ring: &mut IoUring, entries: &[Entry]) -> Vec<i32> {
        for (index, entry) in entries.iter().enumerate() {
            let entry = entry.clone().user_data(index as u64);
            // SAFETY: the entries point to no memory, only to descriptors
            // that the test keeps open until the completions are reaped.
            #[allow(unsafe_code)]
            unsafe { ring.submission().push(&entry) }.expect("room in the queue");
        }
        ring.submit_and_wait(entries.len()).expect("io_uring_enter");
        let mut results = vec![i32::MIN; entries.len()];
        for completion in ring.completion() {
            results[completion.user_data() as usize] = completion.result();
        }
        results
    }

    /// An empty pipe's next piece: a fill linked to a send, run.
    fn fill_and_send(
        ring: &mut IoUring,
        pipe: &FilePipe,
        range: &FileRange<'_>,
        socket: Fd,
    ) -> Vec<i32> {
        let splices = pipe.next(range, socket).expect("entries");
        let fill = splices.fill.expect("an empty pipe is filled first");
        run(ring, &[fill, splices.send])
    }

    /// What the driver meets when a file shrank under a response that
    /// announced more: the linked send must not wait for bytes that never
    /// come, and the bytes the fill did move must still go out.
    #[test]
    fn a_short_fill_cancels_its_send_and_the_bytes_it_moved_go_next() {
        let Ok(mut ring) = IoUring::new(8) else {
            eprintln!("SKIPPED: io_uring is unavailable here");
            return;
        };
        let content: Vec<u8> = (0..40_000u32).map(|index| (index % 251) as u8).collect();
        let mut file: File = tempfile::tempfile().expect("a temp file");
        file.write_all(&content).expect("write");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let socket = Fd(server.as_raw_fd());
        let mut pipe = FilePipe::new().expect("a pipe");

        // The response announced 60,000 bytes; the file holds 40,000.
        let range = FileRange {
            file: &file,
            offset: 0,
            length: 60_000,
        };
        let results = fill_and_send(&mut ring, &pipe, &range, socket);
        assert_eq!(results, [40_000, -ECANCELED]);
        pipe.filled(range.moved(40_000).expect("bytes moved"));

        // Nothing was sent, so the range is the same; the pipe goes first.
        let splices = pipe.next(&range, socket).expect("entries");
        assert!(
            splices.fill.is_none(),
            "bytes in the pipe go before a new fill"
        );
        assert_eq!(run(&mut ring, &[splices.send]), [40_000]);
        pipe.sent(40_000);

        // The rest of the range: the file ends, which is the error.
        let rest = FileRange {
            file: &file,
            offset: 40_000,
            length: 20_000,
        };
        let results = fill_and_send(&mut ring, &pipe, &rest, socket);
        assert_eq!(results, [0, -ECANCELED]);
        let error = rest.moved(0).expect_err("the file ended early");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);

        drop(server);
        let mut received = Vec::new();
        client.read_to_end(&mut received).expect("read");
        assert!(
            received == content,
            "the client got other bytes than the file's"
        );
    }
}
