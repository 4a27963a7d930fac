//! One client: its socket, its session, and the memory the kernel works
//! on while its operations are in flight.
//!
//! With readiness (06, 07) the kernel only *tells* us a socket is ready and
//! we call `read` with a buffer of our choice, for the length of one
//! syscall. With completions the buffer is handed over at submission and
//! the kernel writes into it whenever the data arrives, maybe much later.
//! So each connection owns its buffers, in a `Box` the table never moves,
//! and frees them only after the last completion says the kernel let go.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Instant;

use common::Session;
use common::shutdown::half_close_writing;
use io_uring::opcode;
use io_uring::types::{Fd, Timespec};
use nix::sys::socket::MsgFlags;

use crate::ring::{Completion, Io, Op, Ring};

/// Each connection's receive buffer. Every idle connection has a receive
/// in flight, so this is memory per *open* connection (epoll needs one
/// buffer per *server*): small enough for 10,000 idle clients, large
/// enough for a request head. Provided buffer rings remove the cost (see
/// the book's exercises).
const RECV_BUFFER: usize = 4096;

// ANCHOR: connection
pub struct Connection {
    socket: TcpStream,
    session: Session,
    /// The kernel writes into it while a receive is in flight.
    recv_buffer: Box<[u8]>,
    /// A copy of the session's output being sent. The session's own buffer
    /// may grow, and so move, while the kernel reads from this one.
    send_buffer: Vec<u8>,
    /// The kernel reads it when the timeout is submitted.
    timeout: Timespec,
    receiving: bool,
    sending: bool,
    /// The deadline of our timeout in flight, if one is.
    timer_at: Option<Instant>,
    /// An earlier deadline came up: the timeout is being removed.
    timer_removing: bool,
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
            recv_buffer: vec![0; RECV_BUFFER].into_boxed_slice(),
            send_buffer: Vec::new(),
            timeout: Timespec::new(),
            receiving: false,
            sending: false,
            timer_at: None,
            timer_removing: false,
            failed: false,
            cancelled: false,
        })
    }

    fn in_flight(&self) -> bool {
        self.receiving || self.sending || self.timer_at.is_some()
    }

    // ANCHOR: complete
    /// The kernel finished one of our operations: the bytes are already in
    /// the buffer (or out of it), no second syscall needed.
    fn complete(&mut self, io: Io, completion: &Completion, now: Instant) {
        match (io, completion.result()) {
            (_, Err(_)) if completion.is_cancelled() => {}
            (Io::Timer, _) => {} // -ETIME: it fired
            (_, Err(error)) => self.fail(&error),
            (Io::Recv, Ok(0)) => self.session.receive_eof(now),
            (Io::Recv, Ok(received)) => {
                log::debug!("recv {received} bytes on fd {}", self.socket.as_raw_fd());
                let received = &self.recv_buffer[..received as usize];
                self.session.receive(received, now);
            }
            (Io::Send, Ok(0)) => self.fail(&io::ErrorKind::WriteZero.into()),
            // A short send is normal: the rest goes out with the next one.
            (Io::Send, Ok(sent)) => {
                log::debug!("send {sent} bytes on fd {}", self.socket.as_raw_fd());
                self.session.consume_output(sent as usize, now);
            }
        }
        match io {
            Io::Recv => self.receiving = false,
            Io::Send => self.sending = false,
            Io::Timer => {
                self.timer_at = None;
                self.timer_removing = false;
                // Fired (-ETIME) or removed for an earlier one: either way
                // the session decides; calling it early is harmless.
                self.session.handle_timers(now);
            }
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
    /// a receive, a timeout), or cancel everything once it is finished.
    /// True once nothing is in flight and the connection can be freed.
    fn settle(&mut self, slot: usize, ring: &mut Ring, now: Instant) -> bool {
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
        if !self.sending && self.session.wants_write() {
            self.send_buffer.clear();
            match self.session.pending_file() {
                // A file body: the portable fallback, read into the send
                // buffer and sent like bytes (a splice would spare the copy).
                Some(range) => {
                    self.send_buffer.resize(range.length, 0);
                    match range.read(&mut self.send_buffer) {
                        Ok(read) => self.send_buffer.truncate(read),
                        Err(error) => {
                            self.fail(&error);
                            return self.cancel(slot, ring);
                        }
                    }
                }
                None => self
                    .send_buffer
                    .extend_from_slice(self.session.pending_output()),
            }
            let length = u32::try_from(self.send_buffer.len()).unwrap_or(u32::MAX);
            let send = opcode::Send::new(fd, self.send_buffer.as_ptr(), length)
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
        }
        if !self.receiving && self.session.wants_read() {
            let capacity = self.session.read_capacity().min(RECV_BUFFER);
            let buffer = self.recv_buffer.as_mut_ptr();
            let recv = opcode::Recv::new(fd, buffer, capacity as u32).build();
            // SAFETY: `recv_buffer` is a boxed slice that never moves or
            // shrinks; it is read only after this receive completed, and
            // freed only when nothing is in flight.
            #[allow(unsafe_code)]
            unsafe {
                ring.push(Op::Connection(slot, Io::Recv), recv)
            };
            self.receiving = true;
        }
        match (self.session.next_deadline(), self.timer_at) {
            (Some(deadline), None) => {
                self.timeout = Timespec::from(deadline.saturating_duration_since(now));
                let timeout = opcode::Timeout::new(&raw const self.timeout).build();
                // SAFETY: the kernel reads the timespec when the entry is
                // submitted; it lives in this boxed connection, which is
                // freed only after this timeout completes.
                #[allow(unsafe_code)]
                unsafe {
                    ring.push(Op::Connection(slot, Io::Timer), timeout)
                };
                self.timer_at = Some(deadline);
            }
            // A DB query began: its answer is due before the idle timeout
            // we are waiting for. Remove that; its completion sets this one.
            // The kernel finds the timeout to remove by walking every
            // pending timeout of the ring, so this costs O(connections) per
            // request: at 5000 clients most of the server's time (the book's
            // chapter measures it; its exercise 5 avoids the cancel).
            (Some(deadline), Some(at)) if deadline < at && !self.timer_removing => {
                ring.cancel(Op::Connection(slot, Io::Timer));
                self.timer_removing = true;
            }
            // Later deadlines need nothing: the old timeout fires early,
            // the session says "not yet", and we come back here.
            _ => {}
        }
        false
    }
    // ANCHOR_END: settle

    // ANCHOR: cancel
    /// Finished, but the kernel may still hold our buffers: cancel each
    /// operation in flight and wait for its completion before freeing them.
    fn cancel(&mut self, slot: usize, ring: &mut Ring) -> bool {
        if !self.in_flight() {
            return true;
        }
        if !self.cancelled {
            self.cancelled = true;
            for (busy, io) in [
                (self.receiving, Io::Recv),
                (self.sending, Io::Send),
                (self.timer_at.is_some(), Io::Timer),
            ] {
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
}

impl Table {
    /// Every empty slot is on `free` or `released`, exactly once.
    pub fn open(&self) -> usize {
        self.slots.len() - self.free.len() - self.released.len()
    }

    pub fn next_round(&mut self) {
        self.free.append(&mut self.released);
    }

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
            connection.complete(io, done, now);
            self.settle(slot, ring, now);
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
        if connection.settle(slot, ring, now) {
            // Nothing in flight: the kernel holds none of its memory now.
            self.slots[slot] = None;
            self.released.push(slot);
            log::debug!("close slot {slot}");
        }
    }
}
// ANCHOR_END: table
