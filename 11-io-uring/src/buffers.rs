//! Provided buffers: receive memory that belongs to the server, not to a
//! connection, and that the kernel picks from only when data arrives.
//!
//! A receive submitted with a buffer of its own pins that buffer for as
//! long as the socket stays silent, which for an idle keep-alive client is
//! seconds: 10,000 idle clients, 10,000 buffers. With a *provided-buffer
//! ring* (`IORING_REGISTER_PBUF_RING`, Linux 5.19) the receive names a
//! buffer *group* instead (`IOSQE_BUFFER_SELECT`); when bytes come, the
//! kernel takes the next free buffer from the group's ring, fills it, and
//! says which one in the completion (`IORING_CQE_F_BUFFER` and the buffer
//! id in the flags). We copy the bytes into the session and hand the buffer
//! back at once, so an idle connection holds no receive memory at all, and
//! a busy server needs only as many buffers as receives complete in one
//! round.
//!
//! The ring is a third ring shared with the kernel, but flowing the other
//! way: we are the producer (we write free buffers at its tail), the kernel
//! the consumer.

use std::alloc::Layout;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::IoUring;
use io_uring::types::BufRingEntry;

/// The group this server's receives pick from (any number will do; one
/// group is all we need).
pub const GROUP: u16 = 0;
/// Bytes per buffer: a whole request head in one or two receives, as the
/// per-connection buffer before had.
pub const BUFFER_SIZE: usize = 4096;
/// Buffers in the ring (a power of two, at most 32768). Each is back in the
/// ring as soon as its completion is handled, so this bounds the receives
/// that can complete in *one round*; one beyond finds the ring empty,
/// completes with `ENOBUFS` without taking any data, and is submitted
/// again. Memory for the whole server: 512 x 4 KiB = 2 MiB, touched only
/// as the kernel uses it.
const COUNT: u16 = 512;

pub struct ProvidedBuffers {
    /// The ring of free-buffer descriptors, page-aligned as the kernel
    /// requires; the kernel reads it, we write it.
    entries: *mut BufRingEntry,
    entries_layout: Layout,
    /// `COUNT` buffers of `BUFFER_SIZE` bytes, one allocation. Only ever
    /// reached through this pointer: the kernel writes into some buffers
    /// while we read others, so no Rust reference may cover them all.
    memory: *mut [u8],
    /// Our count of buffers published so far (wraps, like the kernel's).
    tail: u16,
}

impl ProvidedBuffers {
    /// Allocates the buffers and registers them with `uring` as [`GROUP`].
    pub fn register(uring: &IoUring) -> io::Result<ProvidedBuffers> {
        let entries_layout = Layout::array::<BufRingEntry>(COUNT.into())
            .and_then(|layout| layout.align_to(4096))
            .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size (COUNT entries of 16 bytes).
        #[allow(unsafe_code)]
        let entries = unsafe { std::alloc::alloc_zeroed(entries_layout) }.cast::<BufRingEntry>();
        if entries.is_null() {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        let memory = Box::into_raw(vec![0u8; usize::from(COUNT) * BUFFER_SIZE].into_boxed_slice());
        let mut buffers = ProvidedBuffers {
            entries,
            entries_layout,
            memory,
            tail: 0,
        };
        // SAFETY: the ring and the buffers stay allocated and in place
        // until `drop`, which comes after the ring (`Ring` drops its
        // `IoUring` first) and so after the registration.
        #[allow(unsafe_code)]
        unsafe {
            uring
                .submitter()
                .register_buf_ring_with_flags(entries as u64, COUNT, GROUP, 0)?;
        }
        for id in 0..COUNT {
            buffers.give_back(id);
        }
        Ok(buffers)
    }

    // ANCHOR: give_back
    /// The `length` bytes the kernel received into buffer `id`. Until the
    /// buffer is given back, the kernel does not touch it.
    pub fn received(&self, id: u16, length: usize) -> &[u8] {
        let offset = usize::from(id % COUNT) * BUFFER_SIZE;
        let length = length.min(BUFFER_SIZE);
        // SAFETY: in bounds (`id % COUNT`, `length` clamped); the kernel
        // picked this buffer for one completion and will not write it
        // again before `give_back` puts it back in the ring.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.memory.cast::<u8>().add(offset), length)
        }
    }

    /// Puts buffer `id` back at the ring's tail, for the kernel to fill
    /// again.
    pub fn give_back(&mut self, id: u16) {
        let id = id % COUNT;
        let slot = usize::from(self.tail % COUNT);
        // SAFETY: `slot` < COUNT, inside the ring's allocation; the kernel
        // reads entries only below the tail we publish, and this one is
        // at or beyond it until the store below.
        #[allow(unsafe_code)]
        unsafe {
            let entry = &mut *self.entries.add(slot);
            let address = self.memory.cast::<u8>().add(usize::from(id) * BUFFER_SIZE);
            entry.set_addr(address as u64);
            entry.set_len(BUFFER_SIZE as u32);
            entry.set_bid(id);
        }
        self.tail = self.tail.wrapping_add(1);
        // The kernel reads the tail without a lock: the entry must be
        // visible before the new tail is (Release).
        // SAFETY: the tail is a u16 inside the first entry, aligned for an
        // atomic; only we write it.
        #[allow(unsafe_code)]
        unsafe {
            let tail = BufRingEntry::tail(self.entries).cast_mut();
            AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
        }
    }
    // ANCHOR_END: give_back
}

impl Drop for ProvidedBuffers {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout and this box;
        // nothing refers to them once the ring is gone.
        #[allow(unsafe_code)]
        unsafe {
            std::alloc::dealloc(self.entries.cast(), self.entries_layout);
            drop(Box::from_raw(self.memory));
        }
    }
}
