//! One client: its socket, its session, and the memory the kernel works
//! on while its operations are in flight.
//!
//! With readiness (06, 07) the kernel only *tells* us a socket is ready and
//! we call `read` with a buffer of our choice, for the length of one
//! syscall. With completions the buffer is handed over at submission and
//! the kernel writes into it whenever the data arrives, maybe much later.
//! So each connection owns what it sends, in a `Box` the table never
//! moves, and frees it only after the last completion says the kernel let
//! go. What it receives lands in a buffer the kernel picks from the
//! server's provided buffers (`buffers.rs`) only when bytes arrive.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

use common::Session;
use common::event_loop::Timers;
use common::shutdown::half_close_writing;
use io_uring::opcode;
use io_uring::squeue::Flags;
use io_uring::types::Fd;
use nix::sys::socket::MsgFlags;

use crate::buffers::{self, ProvidedBuffers};
use crate::ring::{Completion, Io, Op, Ring};
use crate::splice::{self, FilePipe};

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19; the crate does not name it):
/// skip the receive attempt at submission and wait for data first. We
/// submit a receive right after answering, when the client has not sent
/// its next request yet, so the attempt would nearly always find the
/// socket empty (`EAGAIN`) and only then arm the wait: a wasted socket
/// lock per request. Data already there is still received at once.
const POLL_FIRST: u16 = 1 << 0;

// ANCHOR: connection
pub struct Connection {
    socket: TcpStream,
    session: Session,
    /// A copy of the session's output being sent. The session's own buffer
    /// may grow, and so move, while the kernel reads from this one.
    send_buffer: Vec<u8>,
    /// Only while a large file body is sent (`splice.rs`), and then every
    /// send empties it, not `send_buffer`. Boxed, so that a connection
    /// without one is a pointer larger, not the pipe's size.
    pipe: Option<Box<FilePipe>>,
    receiving: bool,
    sending: bool,
    /// A fill of the pipe from a file is in flight.
    filling: bool,
    /// The deadline of our entry in the loop's timer heap, if one is.
    timer_at: Option<Instant>,
    failed: bool,
    /// Everything in flight was cancelled; waiting for the completions.
    cancelled: bool,
}
// ANCHOR_END: connection

impl Connection {
    pub fn new(socket: TcpStream, session: Session) -> Box<Connection> {
        Box::new(Connection {
            socket,
            session,
            send_buffer: Vec::new(),
            pipe: None,
            receiving: false,
            sending: false,
            filling: false,
            timer_at: None,
            failed: false,
            cancelled: false,
        })
    }

    fn in_flight(&self) -> bool {
        self.receiving || self.sending || self.filling
    }

    // ANCHOR: complete
    /// The kernel finished one of our operations: the bytes are already in
    /// a buffer (or out of it), no second syscall needed.
    fn complete(
        &mut self,
        io: Io,
        completion: &Completion,
        buffers: &mut ProvidedBuffers,
        now: Instant,
    ) {
        match (io, completion.result()) {
            (_, Err(_)) if completion.is_cancelled() => {}
            // Every provided buffer was taken: nothing was received, and
            // `settle` submits the receive again.
            (Io::Recv, Err(_)) if completion.is_out_of_buffers() => {}
            (_, Err(error)) => self.fail(&error),
            (Io::Recv, Ok(0)) => self.session.receive_eof(now),
            (Io::Recv, Ok(received)) => {
                log::debug!("recv {received} bytes on fd {}", self.socket.as_raw_fd());
                if let Some(id) = completion.buffer {
                    // The session copies what it keeps: the buffer can go
                    // straight back to the kernel.
                    let bytes = buffers.received(id, received as usize);
                    self.session.receive(bytes, now);
                }
            }
            (Io::Send, Ok(0)) => self.fail(&io::ErrorKind::WriteZero.into()),
            // A short send is normal: the rest goes out with the next one.
            (Io::Send, Ok(sent)) => {
                log::debug!("send {sent} bytes on fd {}", self.socket.as_raw_fd());
                self.session.consume_output(sent as usize, now);
                if let Some(pipe) = self.pipe.as_mut() {
                    pipe.sent(sent as usize);
                    // The body's last bytes: the pipe goes, so that a
                    // waiting connection holds no descriptors.
                    if self.session.pending_file().is_none() {
                        self.pipe = None;
                    }
                }
            }
            (Io::Fill, Ok(filled)) => {
                let moved = (self.session.pending_file()).map(|range| range.moved(filled as usize));
                match (moved, self.pipe.as_mut()) {
                    (Some(Ok(filled)), Some(pipe)) => pipe.filled(filled),
                    (Some(Err(error)), _) => self.fail(&error),
                    _ => self.fail(&io::Error::other("a pipe filled with no file to send")),
                }
            }
        }
        // Whatever the result, a buffer the kernel picked is ours to return.
        if let Some(id) = completion.buffer {
            buffers.give_back(id);
        }
        match io {
            Io::Recv => self.receiving = false,
            Io::Send => self.sending = false,
            Io::Fill => self.filling = false,
        }
    }
    // ANCHOR_END: complete

    fn fail(&mut self, error: &io::Error) {
        log::debug!(
            "connection on fd {} failed: {error}",
            self.socket.as_raw_fd()
        );
        self.failed = true;
    }

    // ANCHOR: settle
    /// After anything happened: submit what the session wants now (a send,
    /// a receive), note its next deadline in the loop's timer heap, or
    /// cancel everything once it is finished. True once nothing is in
    /// flight and the connection can be freed.
    fn settle(
        &mut self,
        slot: usize,
        ring: &mut Ring,
        timers: &mut Timers<usize>,
        now: Instant,
    ) -> bool {
        if !self.cancelled && self.session.next_deadline().is_some_and(|due| due <= now) {
            self.session.handle_timers(now); // due already: no timer needed
        }
        // The last response is out and the client may still be sending:
        // FIN now (a plain, non-blocking syscall; no need for the ring),
        // then keep receiving until its EOF (lingering close).
        if self.session.take_half_close()
            && let Err(error) = half_close_writing(self.socket.as_raw_fd())
        {
            self.fail(&error);
        }
        if self.cancelled || self.failed || self.session.is_finished() {
            return self.cancel(slot, ring);
        }
        let fd = Fd(self.socket.as_raw_fd());
        if !self.sending
            && !self.filling
            && self.session.wants_write()
            && let Err(error) = self.send_next(slot, ring)
        {
            self.fail(&error);
            return self.cancel(slot, ring);
        }
        if !self.receiving && self.session.wants_read() {
            // No buffer of ours: the kernel takes one from the provided
            // group when bytes arrive, at most `capacity` of them.
            let capacity = self.session.read_capacity().min(buffers::BUFFER_SIZE);
            let recv = opcode::Recv::new(fd, std::ptr::null_mut(), capacity as u32)
                .buf_group(buffers::GROUP)
                .ioprio(POLL_FIRST)
                .build()
                .flags(Flags::BUFFER_SELECT);
            // SAFETY: the only memory is a provided buffer, which lives as
            // long as the ring.
            #[allow(unsafe_code)]
            unsafe {
                ring.push(Op::Connection(slot, Io::Recv), recv)
            };
            self.receiving = true;
        }
        // Deadlines are not operations: an entry in the loop's timer heap,
        // as in 07. Only an earlier one (a DB query began) needs a new
        // entry; for a later one the old entry comes up early, the
        // session says "not yet", and we come back here. (Asking the
        // kernel for a timeout per connection meant cancelling one per
        // request, and the kernel finds it by walking every pending
        // timeout: O(connections) per request.)
        if let Some(deadline) = self.session.next_deadline()
            && self.timer_at.is_none_or(|at| deadline < at)
        {
            timers.call_at(deadline, slot);
            self.timer_at = Some(deadline);
        }
        false
    }
    // ANCHOR_END: settle

    // ANCHOR: send_next
    /// Submits the next piece of output: bytes (the session's, or a small
    /// file's read into the send buffer), or a large file body, spliced.
    fn send_next(&mut self, slot: usize, ring: &mut Ring) -> io::Result<()> {
        let large =
            (self.session.pending_file()).is_some_and(|range| range.length >= splice::WORTH_A_PIPE);
        if large && self.pipe.is_none() {
            // Out of descriptors (a pipe takes two), the body is copied:
            // slower, but the response still goes out.
            self.pipe = FilePipe::new()
                .inspect_err(|error| log::debug!("no pipe ({error}): copying the file body"))
                .ok()
                .map(Box::new);
        }
        self.send_buffer.clear();
        match self.session.pending_file() {
            // A body started in the pipe ends there: its bytes are in it.
            Some(_) if self.pipe.is_some() => return self.splice_next(slot, ring),
            Some(range) => {
                self.send_buffer.resize(range.copy_length(), 0);
                let read = range.read(&mut self.send_buffer)?;
                self.send_buffer.truncate(read);
            }
            None => (self.send_buffer).extend_from_slice(self.session.pending_output()),
        }
        let length = u32::try_from(self.send_buffer.len()).unwrap_or(u32::MAX);
        let send = opcode::Send::new(
            Fd(self.socket.as_raw_fd()),
            self.send_buffer.as_ptr(),
            length,
        )
        .flags(MsgFlags::MSG_NOSIGNAL.bits())
        .build();
        // SAFETY: `send_buffer` is not touched again until this send
        // completes (`sending`), and the connection is freed only when
        // nothing is in flight.
        #[allow(unsafe_code)]
        unsafe {
            ring.push(Op::Connection(slot, Io::Send), send)
        };
        self.sending = true;
        Ok(())
    }
    // ANCHOR_END: send_next

    // ANCHOR: splice_next
    /// Submits the next piece of a large file body: file -> pipe -> socket.
    fn splice_next(&mut self, slot: usize, ring: &mut Ring) -> io::Result<()> {
        let (Some(range), Some(pipe)) = (self.session.pending_file(), self.pipe.as_ref()) else {
            return Ok(());
        };
        let splices = pipe.next(&range, Fd(self.socket.as_raw_fd()))?;
        // SAFETY: splices point to no memory of ours, only to descriptors,
        // which stay open while they are in flight (see `FilePipe::next`).
        #[allow(unsafe_code)]
        unsafe {
            if let Some(fill) = splices.fill {
                ring.push(Op::Connection(slot, Io::Fill), fill);
                self.filling = true;
            }
            ring.push(Op::Connection(slot, Io::Send), splices.send);
        }
        self.sending = true;
        Ok(())
    }
    // ANCHOR_END: splice_next

    // ANCHOR: cancel
    /// Finished, but the kernel may still hold our buffers: cancel each
    /// operation in flight and wait for its completion before freeing them.
    fn cancel(&mut self, slot: usize, ring: &mut Ring) -> bool {
        if !self.in_flight() {
            return true;
        }
        if !self.cancelled {
            self.cancelled = true;
            let operations = [
                (self.receiving, Io::Recv),
                (self.sending, Io::Send),
                (self.filling, Io::Fill),
            ];
            for (busy, io) in operations {
                if busy {
                    ring.cancel(Op::Connection(slot, io));
                }
            }
        }
        false
    }
    // ANCHOR_END: cancel
}

// ANCHOR: table
/// The connection table, a slab: a connection's slot is part of the
/// `user_data` of each of its operations.
#[derive(Default)]
pub struct Table {
    slots: Vec<Option<Box<Connection>>>,
    free: Vec<usize>,
    /// Freed this round; reused from the next, after their cancellations
    /// were submitted, so none can hit a new connection in the same slot.
    released: Vec<usize>,
    /// Every connection's next deadline, by slot: `common`'s heap, as 07's.
    timers: Timers<usize>,
}

impl Table {
    /// Every empty slot is on `free` or `released`, exactly once.
    pub fn open(&self) -> usize {
        self.slots.len() - self.free.len() - self.released.len()
    }

    pub fn next_round(&mut self) {
        self.free.append(&mut self.released);
    }
    // ANCHOR_END: table

    // ANCHOR: table_timers
    /// The nearest deadline of any connection: the loop's one timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Hands each due deadline to its session, after the completions of
    /// the round. An entry whose connection moved its deadline (or closed)
    /// is stale and skipped.
    pub fn fire_due_timers(&mut self, ring: &mut Ring, now: Instant) {
        while let Some((when, slot)) = self.timers.pop_due(now) {
            let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue; // closed since
            };
            if connection.timer_at != Some(when) {
                continue; // superseded by an earlier entry
            }
            connection.timer_at = None;
            connection.session.handle_timers(now);
            self.settle(slot, ring, now);
        }
        let slots = &self.slots;
        let open = slots.len() - self.free.len() - self.released.len();
        self.timers.compact(open, |when, slot| {
            slots
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|connection| connection.timer_at == Some(when))
        });
    }
    // ANCHOR_END: table_timers

    // ANCHOR: table_slots
    pub fn insert(&mut self, connection: Box<Connection>, ring: &mut Ring, now: Instant) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        log::debug!("connect fd {} (slot {slot})", connection.socket.as_raw_fd());
        self.slots[slot] = Some(connection);
        self.settle(slot, ring, now);
    }

    pub fn complete(
        &mut self,
        slot: usize,
        io: Io,
        done: &Completion,
        ring: &mut Ring,
        now: Instant,
    ) {
        if let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) {
            connection.complete(io, done, &mut ring.buffers, now);
            self.settle(slot, ring, now);
        } else if let Some(id) = done.buffer {
            // A slot is freed only with nothing in flight, so this should
            // not come; if it does, the buffer still goes back.
            ring.buffers.give_back(id);
        }
    }

    /// Every session finishes what is in flight; idle ones are done now.
    pub fn begin_shutdown(&mut self, ring: &mut Ring, now: Instant) {
        for slot in 0..self.slots.len() {
            if let Some(connection) = self.slots[slot].as_mut() {
                connection.session.begin_shutdown(now);
                self.settle(slot, ring, now);
            }
        }
    }

    fn settle(&mut self, slot: usize, ring: &mut Ring, now: Instant) {
        let Some(connection) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if connection.settle(slot, ring, &mut self.timers, now) {
            // Nothing in flight: the kernel holds none of its memory now.
            self.slots[slot] = None;
            self.released.push(slot);
            log::debug!("close slot {slot}");
        }
    }
}
// ANCHOR_END: table_slots
