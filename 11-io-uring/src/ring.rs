//! The ring: io_uring's two queues shared with the kernel, and the names
//! of the operations in flight.
//!
//! The submission queue (SQ) is where we write requests ("receive into
//! this buffer", "tell me in 300 ms"), the completion queue (CQ) is where
//! the kernel writes results. One `io_uring_enter` hands over every queued
//! request *and* waits for completions: a whole round of the loop is one
//! syscall, however many sockets it touched.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use io_uring::types::{CancelBuilder, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use nix::errno::Errno;

use crate::buffers::ProvidedBuffers;

/// Requests handed to the kernel per batch. A fuller queue is submitted
/// early and refilled, never dropped (see [`Ring::push`]).
const SUBMISSION_ENTRIES: u32 = 1024;
/// Room for completions: far above the submission queue, because one
/// round can complete much more than it submits (every idle connection has
/// a receive in flight; shutdown cancels them all at once). Should it still
/// fill, the kernel keeps the surplus aside (`IORING_FEAT_NODROP`) and a
/// lost completion is reported as an error, never ignored.
const COMPLETION_ENTRIES: u32 = 16 * 1024;

/// What one in-flight operation is for: its `user_data`, given at
/// submission and handed back with the completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Accept,
    Signal,
    ResumeAccepting,
    GraceOver,
    /// A cancellation request; what it cancels completes on its own.
    Cancel,
    /// An operation of the connection in this slot of the table.
    Connection(usize, Io),
}

/// The operations a connection can have in flight, at most one of each.
/// (Its deadlines are not operations: they wait in the loop's timer heap.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    Recv,
    Send,
    /// File -> pipe, the first half of a spliced file body.
    Fill,
}

impl Op {
    /// Loop-wide operations have the top bit set; a connection's is its
    /// slot times four plus the kind.
    const LOOP: u64 = 1 << 63;

    fn to_u64(self) -> u64 {
        match self {
            Op::Accept => Op::LOOP,
            Op::Signal => Op::LOOP | 1,
            Op::ResumeAccepting => Op::LOOP | 2,
            Op::GraceOver => Op::LOOP | 3,
            Op::Cancel => Op::LOOP | 4,
            Op::Connection(slot, io) => (slot as u64) << 2 | io as u64,
        }
    }

    /// The operation a completion's user data names; `None` for a value
    /// this program never submits, which must not pass for a real one.
    fn from_u64(data: u64) -> Option<Op> {
        if data & Op::LOOP != 0 {
            return match data & !Op::LOOP {
                0 => Some(Op::Accept),
                1 => Some(Op::Signal),
                2 => Some(Op::ResumeAccepting),
                3 => Some(Op::GraceOver),
                4 => Some(Op::Cancel),
                _ => None,
            };
        }
        let io = match data & 3 {
            0 => Io::Recv,
            1 => Io::Send,
            2 => Io::Fill,
            _ => return None,
        };
        Some(Op::Connection((data >> 2) as usize, io))
    }
}

/// One reaped completion.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    pub op: Op,
    result: i32,
    /// A multishot operation stays armed and will complete again.
    pub more: bool,
    /// The provided buffer the kernel picked for a receive (see
    /// `buffers.rs`); ours again once handled.
    pub buffer: Option<u16>,
}

impl Completion {
    /// The syscall's result: a count or a new descriptor, or `-errno`.
    pub fn result(&self) -> io::Result<u32> {
        u32::try_from(self.result).map_err(|_| io::Error::from_raw_os_error(-self.result))
    }

    pub fn is_cancelled(&self) -> bool {
        self.result == -(Errno::ECANCELED as i32)
    }

    /// EINVAL: what an older kernel says to a newer kind of request.
    pub fn is_unsupported(&self) -> bool {
        self.result == -(Errno::EINVAL as i32)
    }

    /// ENOBUFS: every provided buffer was taken when data came; nothing
    /// was received, and the receive can simply be submitted again.
    pub fn is_out_of_buffers(&self) -> bool {
        self.result == -(Errno::ENOBUFS as i32)
    }
}

/// The ring and the count of operations the kernel still holds.
pub struct Ring {
    /// Declared (so dropped) before `buffers`: the kernel lets go of the
    /// buffer ring when this closes.
    uring: IoUring,
    pub buffers: ProvidedBuffers,
    /// Entries that found the queue full even after a submit; they go
    /// first in the next round, in order.
    backlog: VecDeque<squeue::Entry>,
    in_flight: usize,
}

impl Ring {
    /// Fails where io_uring is unavailable: ENOSYS (no kernel support) or
    /// EPERM (`kernel.io_uring_disabled`, a container's seccomp filter).
    pub fn new() -> io::Result<Ring> {
        // Where a completion's "task work" runs. By default the kernel
        // runs it whenever this thread next enters or leaves the kernel
        // (an interrupt, any syscall): profiles on some Intel machines
        // showed 11's extra CPU there, spinning on socket locks under
        // `io_recv` at random moments. DEFER_TASKRUN (Linux 6.1) runs it only inside
        // `io_uring_enter` when we ask for completions, which `wait` does
        // once per round; it requires SINGLE_ISSUER, the promise that one
        // thread submits, which is this model. An older kernel refuses the
        // flags (EINVAL), and the ring is built without them.
        let uring = IoUring::builder()
            .setup_cqsize(COMPLETION_ENTRIES)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(SUBMISSION_ENTRIES)
            .or_else(|error| match error.raw_os_error() {
                Some(code) if code == Errno::EINVAL as i32 => IoUring::builder()
                    .setup_cqsize(COMPLETION_ENTRIES)
                    .build(SUBMISSION_ENTRIES),
                _ => Err(error),
            })?;
        let buffers = ProvidedBuffers::register(&uring)?;
        Ok(Ring {
            uring,
            buffers,
            backlog: VecDeque::new(),
            in_flight: 0,
        })
    }

    /// Queues `entry` for the next submission, named `op`.
    ///
    /// # Safety
    /// Whatever memory the entry points to (a buffer, a timespec) must stay
    /// valid and in place until the kernel is done with it: for buffers,
    /// until this operation's last completion has been reaped.
    #[allow(unsafe_code)]
    pub unsafe fn push(&mut self, op: Op, entry: squeue::Entry) {
        self.in_flight += 1;
        let entry = entry.user_data(op.to_u64());
        // SAFETY: the caller keeps what the entry points to alive.
        if !self.backlog.is_empty() || !unsafe { self.try_push(&entry) } {
            self.backlog.push_back(entry);
        }
    }

    /// A timeout `after` from now, as `op`. The `'static` lifetime is the
    /// proof that the timespec outlives the operation.
    pub fn timeout(&mut self, op: Op, after: &'static Timespec) {
        let entry = opcode::Timeout::new(after).build();
        // SAFETY: a static never moves nor goes away.
        #[allow(unsafe_code)]
        unsafe {
            self.push(op, entry)
        };
    }

    /// Cancels `target` (its own completion then says `ECANCELED`).
    pub fn cancel(&mut self, target: Op) {
        let entry = opcode::AsyncCancel::new(target.to_u64()).build();
        // SAFETY: a cancellation points to no memory.
        #[allow(unsafe_code)]
        unsafe {
            self.push(Op::Cancel, entry)
        };
    }

    /// Cancels every operation in flight (Linux 5.19: "any").
    pub fn cancel_all(&mut self) {
        let entry = opcode::AsyncCancel2::new(CancelBuilder::any()).build();
        // SAFETY: a cancellation points to no memory.
        #[allow(unsafe_code)]
        unsafe {
            self.push(Op::Cancel, entry)
        };
    }

    /// Operations submitted or queued whose last completion is not reaped.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A full queue is submitted at once, which empties it; then retried.
    ///
    /// # Safety
    ///
    /// As for [`Ring::push`]: whatever `entry` points to (buffers, a
    /// timespec) must stay valid and in place until the kernel is done with
    /// it, that is until the operation's last completion has been reaped.
    #[allow(unsafe_code)]
    unsafe fn try_push(&mut self, entry: &squeue::Entry) -> bool {
        // SAFETY: forwarded from `push`.
        if unsafe { self.uring.submission().push(entry) }.is_ok() {
            return true;
        }
        // Errors (EBUSY: completions must be reaped first) leave the entry
        // in the backlog; `wait` reports real ones.
        let _ = self.uring.submit();
        // SAFETY: as above.
        unsafe { self.uring.submission().push(entry) }.is_ok()
    }

    // ANCHOR: wait
    /// One round: submit everything queued and sleep in `io_uring_enter`
    /// until at least one operation completed or `timeout` passed (the
    /// nearest deadline of the timer heap: like `epoll_wait`'s timeout, one
    /// timer for the whole loop), then reap all completions.
    #[allow(unsafe_code)]
    pub fn wait(
        &mut self,
        completions: &mut Vec<Completion>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        while let Some(entry) = self.backlog.pop_front() {
            // SAFETY: pushed with `push`, whose caller keeps its memory alive.
            if !unsafe { self.try_push(&entry) } {
                self.backlog.push_front(entry);
                break;
            }
        }
        let waited = match timeout {
            None => self.uring.submit_and_wait(1),
            // The kernel reads the timespec during this call only
            // (`IORING_ENTER_EXT_ARG`, Linux 5.11): a local does.
            Some(timeout) => {
                let timespec = Timespec::from(timeout);
                let args = SubmitArgs::new().timespec(&timespec);
                self.uring.submitter().submit_with_args(1, &args)
            }
        };
        match waited {
            Err(error) if error.raw_os_error() == Some(Errno::EBUSY as i32) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // The timeout passed with nothing completed: timers are due.
            Err(error) if error.raw_os_error() == Some(Errno::ETIME as i32) => {}
            result => {
                result?;
            }
        }
        let queue = self.uring.completion();
        if queue.overflow() > 0 {
            return Err(io::Error::other(format!(
                "the completion queue overflowed: {} completions lost",
                queue.overflow()
            )));
        }
        for entry in queue {
            let more = cqueue::more(entry.flags());
            if !more {
                self.in_flight -= 1;
            }
            let Some(op) = Op::from_u64(entry.user_data()) else {
                log::warn!(
                    "ignoring a completion with unknown tag {:#x}",
                    entry.user_data()
                );
                continue;
            };
            completions.push(Completion {
                op,
                result: entry.result(),
                more,
                buffer: cqueue::buffer_select(entry.flags()),
            });
        }
        Ok(())
    }
    // ANCHOR_END: wait
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_user_data() {
        for op in [
            Op::Accept,
            Op::Signal,
            Op::ResumeAccepting,
            Op::GraceOver,
            Op::Cancel,
            Op::Connection(0, Io::Recv),
            Op::Connection(4999, Io::Send),
            Op::Connection(1 << 40, Io::Recv),
        ] {
            assert_eq!(Op::from_u64(op.to_u64()), Some(op));
        }
    }

    #[test]
    fn unknown_tags_are_no_operation() {
        assert_eq!(Op::from_u64(Op::LOOP | 5), None);
        assert_eq!(Op::from_u64(u64::MAX), None);
        assert_eq!(Op::from_u64(7 << 2 | 3), None);
    }
}
