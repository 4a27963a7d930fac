//! What the two event-loop models (06-select, 07-epoll) share: everything
//! except the readiness syscall itself.
//!
//! One thread serves every connection. It never blocks on a socket (all are
//! non-blocking) and never sleeps for the fake DB: each connection is a small
//! state machine ([`Session`] plus its socket), and the thread only waits in
//! one place, `select(2)` or `epoll_wait(2)`, for the first of
//! - a socket becoming readable or writable,
//! - the nearest timer (a fake-DB answer, an idle timeout, the end of an
//!   accept back-off, the end of the shutdown grace period),
//! - SIGINT/SIGTERM, which arrive as a readable descriptor (a signalfd on
//!   Linux, a self-pipe elsewhere: see [`crate::signals`]).
//!
//! A model's `main.rs` owns the syscall and talks to [`EventLoop`] in four
//! steps per round: tell the kernel what to watch (through its
//! [`InterestList`]), wait at most [`EventLoop::timeout`], hand each ready
//! descriptor to [`EventLoop::dispatch`], then [`EventLoop::fire_due_timers`].
//! This is the lecture's `read_waiters`/`write_waiters` loop, with the
//! timers of asyncio's `loop.call_later` added.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::session::{OUTPUT_LIMIT, Session, SessionConfig};
use crate::shutdown::{AcceptErrors, GRACE_PERIOD};
use crate::signals::{SignalWatch, shutdown_signals};

/// What the loop wants to hear about one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
}

/// What the kernel reported about one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    /// epoll's `EPOLLERR`/`EPOLLHUP`, reported even with no interest: the
    /// peer reset the connection. (select reports that as "readable".)
    pub hung_up: bool,
}

/// Whom a readiness report is for. epoll carries it as the event's `u64`;
/// select finds it by scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Token {
    Listener,
    Signals,
    /// A connection, by its slot in the connection table.
    Connection(usize),
}

impl Token {
    const LISTENER: u64 = u64::MAX;
    const SIGNALS: u64 = u64::MAX - 1;

    /// The token as epoll's event data: the slot number itself.
    pub fn to_u64(self) -> u64 {
        match self {
            Token::Listener => Token::LISTENER,
            Token::Signals => Token::SIGNALS,
            Token::Connection(slot) => slot as u64,
        }
    }

    pub fn from_u64(data: u64) -> Token {
        match data {
            Token::LISTENER => Token::Listener,
            Token::SIGNALS => Token::Signals,
            slot => Token::Connection(slot as usize),
        }
    }
}

/// How a model tells its readiness syscall what to watch. epoll keeps an
/// interest list in the kernel, so each call is an `epoll_ctl`; select keeps
/// none (every call passes the whole list), so its calls only check that a
/// descriptor fits into an `fd_set`. An error from `add` closes that
/// connection at once; the loop goes on.
pub trait InterestList {
    fn add(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()>;
    fn modify(&mut self, fd: BorrowedFd<'_>, token: Token, interest: Interest) -> io::Result<()>;
    fn remove(&mut self, fd: BorrowedFd<'_>) -> io::Result<()>;
}

/// Returns a descriptor that becomes readable when SIGINT or SIGTERM
/// arrives, for the loop to watch beside its sockets: a signalfd on Linux,
/// a self-pipe elsewhere ([`crate::signals`] says why each). Call it first
/// thing, before any thread exists and before the start-up line (tests
/// signal as soon as they read it).
pub fn watch_signals() -> io::Result<SignalWatch> {
    SignalWatch::new(&shutdown_signals())
}

// ANCHOR: timers
/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// The session's deadline: a fake-DB answer or an idle timeout. The
    /// generation tells a reused slot's new connection from the old one.
    Connection { slot: usize, generation: u64 },
    /// The accept back-off after running out of descriptors is over.
    ResumeAccepting,
    /// The shutdown grace period is over: exit even if clients are busy.
    GraceOver,
}

/// The timer heap: a min-heap of (when, what). Entries are never removed
/// when plans change (a heap cannot find them cheaply); an entry that no
/// longer matches its connection is skipped when it comes up ("stale").
/// Public for 11-io-uring, which keeps its deadlines here too rather than
/// one kernel timeout per connection.
#[derive(Debug)]
pub struct Timers<T> {
    heap: BinaryHeap<Reverse<(Instant, T)>>,
}

// By hand: the derive would ask for `T: Default`, which no timer needs.
impl<T: Ord> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
        }
    }
}

impl<T: Ord + Copy> Timers<T> {
    /// asyncio's `loop.call_at`: run `timer` at `when`.
    pub fn call_at(&mut self, when: Instant, timer: T) {
        self.heap.push(Reverse((when, timer)));
    }

    /// asyncio's `loop.call_later`: run `timer` after `delay`.
    pub fn call_later(&mut self, now: Instant, delay: Duration, timer: T) {
        self.call_at(now + delay, timer);
    }

    /// The nearest deadline: how long the loop may wait.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((when, _))| *when)
    }

    /// The next timer due at `now`, earliest first.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// Keeps stale entries from waking the loop early (the top) or piling
    /// up (each keep-alive request leaves one idle-timeout entry behind):
    /// drops those `is_live` rejects, all of them once the heap holds more
    /// than two per `open` connection.
    pub fn compact(&mut self, open: usize, is_live: impl Fn(Instant, T) -> bool) {
        while let Some(&Reverse((when, timer))) = self.heap.peek() {
            if is_live(when, timer) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > 2 * open + 64 {
            self.heap
                .retain(|&Reverse((when, timer))| is_live(when, timer));
        }
    }
}
// ANCHOR_END: timers

/// One client: its non-blocking socket and its protocol state.
#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    session: Session,
    generation: u64,
    /// What the interest list holds for this socket now.
    registered: Interest,
    /// The earliest deadline of ours in the timer heap, if any.
    timer_at: Option<Instant>,
    /// An I/O error (reset, broken pipe): close without further ado.
    failed: bool,
}

// ANCHOR: connection
impl Connection {
    /// What to watch: readable while the session takes input (not while the
    /// fake DB works, nor past the 64 KiB of unsent output: backpressure),
    /// writable only while output is pending. Watching writability of an
    /// idle socket would wake the loop on every round, for nothing.
    fn wanted(&self) -> Interest {
        Interest {
            read: self.session.wants_read(),
            write: self.session.wants_write(),
        }
    }

    /// One `read` per readiness report. Level-triggered readiness reports
    /// the rest next round, and one client sending fast cannot keep the
    /// loop to itself meanwhile.
    fn read_once(&mut self, buffer: &mut [u8], now: Instant) {
        let capacity = self.session.read_capacity().min(buffer.len());
        if capacity == 0 {
            return;
        }
        match self.stream.read(&mut buffer[..capacity]) {
            Ok(0) => {
                log::debug!("eof from {}", self.peer);
                self.session.receive_eof(now);
            }
            Ok(received) => {
                log::debug!("recv {received} bytes from {}", self.peer);
                self.session.receive(&buffer[..received], now);
            }
            // Readiness can be stale (another event changed things): fine.
            Err(error) if is_retry(&error) => {}
            Err(error) => self.fail(&error),
        }
    }

    /// Writes pending output until it is all sent or the kernel's buffer is
    /// full. A partial write is normal: the session keeps the rest, and the
    /// loop asks for writability until it is gone.
    fn write_pending(&mut self, now: Instant) {
        while self.session.wants_write() {
            // A response body's file goes from the file to the socket in
            // the kernel, not through a buffer of ours (see `sendfile`).
            let written = match self.session.pending_file() {
                Some(range) => crate::sendfile::send_file(self.stream.as_fd(), &range),
                None => self.stream.write(self.session.pending_output()),
            };
            match written {
                Ok(0) => return self.fail(&io::ErrorKind::WriteZero.into()),
                Ok(sent) => {
                    log::debug!("send {sent} bytes to {}", self.peer);
                    self.session.consume_output(sent, now);
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => return self.fail(&error),
            }
        }
    }

    fn fail(&mut self, error: &io::Error) {
        log::debug!("connection from {} failed: {error}", self.peer);
        self.failed = true;
    }

    fn is_finished(&self) -> bool {
        self.failed || self.session.is_finished()
    }
}
// ANCHOR_END: connection

fn is_retry(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The state of a one-thread server: the listener, the connection table,
/// the timer heap, and the shutdown bookkeeping.
#[derive(Debug)]
pub struct EventLoop {
    /// `None` once shutdown began: closing it makes new connects fail.
    listener: Option<TcpListener>,
    /// Out of descriptors: the listener is not watched until a timer fires.
    accept_paused: bool,
    accept_errors: AcceptErrors,
    signals: SignalWatch,
    /// The connection table; a connection's index is its token.
    connections: Vec<Option<Connection>>,
    free_slots: Vec<usize>,
    /// Slots closed this round; reused only from the next round on, so a
    /// readiness report still queued for the old connection can never reach
    /// a new one in the same slot.
    released_slots: Vec<usize>,
    open: usize,
    accepted: u64,
    timers: Timers<Timer>,
    /// One read buffer for the whole server: one thread reads one socket at
    /// a time, and the session copies what it keeps.
    read_buffer: Box<[u8]>,
    config: SessionConfig,
    /// Shared by every session: one thread serves them all.
    worker: Arc<str>,
    draining: bool,
    grace_over: bool,
}

impl EventLoop {
    /// Takes over the listener and the signal descriptor and registers both.
    pub fn new(
        listener: TcpListener,
        signals: SignalWatch,
        config: SessionConfig,
        interests: &mut impl InterestList,
    ) -> io::Result<EventLoop> {
        interests.add(listener.as_fd(), Token::Listener, Interest::READ)?;
        interests.add(signals.as_fd(), Token::Signals, Interest::READ)?;
        Ok(EventLoop {
            listener: Some(listener),
            accept_paused: false,
            accept_errors: AcceptErrors::default(),
            signals,
            connections: Vec::new(),
            free_slots: Vec::new(),
            released_slots: Vec::new(),
            open: 0,
            accepted: 0,
            timers: Timers::default(),
            read_buffer: vec![0; OUTPUT_LIMIT].into_boxed_slice(),
            config,
            // One thread serves everyone: the label is the same for all.
            worker: crate::worker_label().into(),
            draining: false,
            grace_over: false,
        })
    }

    /// False once shutdown has begun and every connection is closed, or the
    /// grace period is over.
    pub fn is_running(&self) -> bool {
        !(self.draining && (self.open == 0 || self.grace_over))
    }

    /// How long the readiness syscall may wait: until the nearest timer, or
    /// for ever (`None`) when there is none. Rounded *up* to whole
    /// milliseconds (epoll's unit): rounding down would wake up just before
    /// the deadline, find nothing due and wait 0 ms again and again.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        let wait = self.timers.next()?.saturating_duration_since(now);
        let millis = wait.as_nanos().div_ceil(1_000_000);
        Some(Duration::from_millis(
            u64::try_from(millis).unwrap_or(u64::MAX),
        ))
    }

    /// Every descriptor to watch and for what, for select, which passes the
    /// whole list on every call. A paused listener is left out.
    pub fn watched(&self) -> impl Iterator<Item = (Token, BorrowedFd<'_>, Interest)> {
        let listener = self
            .listener
            .as_ref()
            .filter(|_| !self.accept_paused)
            .map(|listener| (Token::Listener, listener.as_fd(), Interest::READ));
        let signals = (Token::Signals, self.signals.as_fd(), Interest::READ);
        let connections = self
            .connections
            .iter()
            .enumerate()
            .filter_map(|(slot, connection)| {
                let connection = connection.as_ref()?;
                Some((
                    Token::Connection(slot),
                    connection.stream.as_fd(),
                    connection.registered,
                ))
            });
        listener
            .into_iter()
            .chain(std::iter::once(signals))
            .chain(connections)
    }

    // ANCHOR: dispatch
    /// Acts on one readiness report.
    pub fn dispatch(
        &mut self,
        token: Token,
        readiness: Readiness,
        now: Instant,
        interests: &mut impl InterestList,
    ) {
        match token {
            Token::Listener => self.accept(now, interests),
            Token::Signals => self.read_signal(now, interests),
            Token::Connection(slot) => {
                // Closed earlier this round (e.g. by shutdown): nothing to do.
                let Some(connection) = self.connections.get_mut(slot).and_then(Option::as_mut)
                else {
                    return;
                };
                if readiness.hung_up {
                    connection.fail(&io::ErrorKind::ConnectionReset.into());
                } else {
                    if readiness.readable {
                        connection.read_once(&mut self.read_buffer, now);
                    }
                    if readiness.writable {
                        connection.write_pending(now);
                    }
                }
                self.settle(slot, now, interests);
            }
        }
    }
    // ANCHOR_END: dispatch

    // ANCHOR: accept
    /// Accepts until `WouldBlock`: one readiness report may stand for many
    /// queued connections.
    fn accept(&mut self, now: Instant, interests: &mut impl InterestList) {
        loop {
            let Some(listener) = self.listener.as_ref().filter(|_| !self.accept_paused) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_errors.succeeded();
                    self.open_connection(stream, peer, now, interests);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    let pause = self.accept_errors.failed(&error);
                    if !pause.is_zero() {
                        // Out of descriptors, most likely. The connection
                        // stays queued and the listener stays readable, so
                        // watching it would spin; sleeping would stall every
                        // client. Instead: stop watching it, and set a timer.
                        self.pause_accepting(now, pause, interests);
                        return;
                    }
                }
            }
        }
    }

    fn open_connection(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        now: Instant,
        interests: &mut impl InterestList,
    ) {
        // Accepted sockets do not inherit O_NONBLOCK on Linux. A blocking
        // socket here would let one slow client stop the whole server.
        if let Err(error) = stream.set_nonblocking(true) {
            log::warn!("cannot make the connection from {peer} non-blocking: {error}");
            return;
        }
        // No Nagle: we write whatever the session has at once; holding a
        // small write back for the client's delayed ACK only adds latency.
        if let Err(error) = stream.set_nodelay(true) {
            log::debug!("cannot set TCP_NODELAY for {peer}: {error}");
        }
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.connections.push(None);
            self.connections.len() - 1
        });
        let session = Session::new(self.config, Arc::clone(&self.worker), now);
        if let Err(error) = interests.add(stream.as_fd(), Token::Connection(slot), Interest::READ) {
            // Dropping the stream closes it: the client sees EOF at once.
            log::warn!("closing the connection from {peer} at once: {error}");
            self.free_slots.push(slot);
            return;
        }
        log::debug!("connect {peer} (slot {slot})");
        self.accepted += 1;
        self.connections[slot] = Some(Connection {
            stream,
            peer,
            session,
            generation: self.accepted,
            registered: Interest::READ,
            timer_at: None,
            failed: false,
        });
        self.open += 1;
        self.settle(slot, now, interests);
    }
    // ANCHOR_END: accept

    // ANCHOR: accept_pause
    fn pause_accepting(
        &mut self,
        now: Instant,
        pause: Duration,
        interests: &mut impl InterestList,
    ) {
        if let Some(listener) = &self.listener
            && let Err(error) = interests.remove(listener.as_fd())
        {
            log::warn!("cannot stop watching the listener: {error}");
        }
        self.accept_paused = true;
        self.timers.call_later(now, pause, Timer::ResumeAccepting);
    }

    fn resume_accepting(&mut self, now: Instant, interests: &mut impl InterestList) {
        let Some(listener) = &self.listener else {
            return; // shut down meanwhile
        };
        match interests.add(listener.as_fd(), Token::Listener, Interest::READ) {
            Ok(()) => self.accept_paused = false,
            Err(error) => {
                log::warn!("cannot watch the listener again: {error}");
                self.timers.call_later(
                    now,
                    crate::shutdown::ACCEPT_BACKOFF,
                    Timer::ResumeAccepting,
                );
            }
        }
    }
    // ANCHOR_END: accept_pause

    // ANCHOR: settle
    /// After anything happened to a connection: send new output at once,
    /// close it if it is done, else bring the interest list and the timer
    /// heap up to date.
    fn settle(&mut self, slot: usize, now: Instant, interests: &mut impl InterestList) {
        let Some(connection) = self.connections.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        // New output (an echo, a DB answer): try to write it right away. The
        // socket is nearly always writable; asking the kernel first would
        // cost a round of the loop. Only what does not fit waits for
        // writability.
        if connection.session.wants_write() && !connection.registered.write {
            connection.write_pending(now);
        }
        // The last response is out and the client may still be sending:
        // FIN now, then read and discard until its EOF (lingering close).
        if connection.session.take_half_close()
            && let Err(error) = crate::shutdown::half_close_writing(connection.stream.as_raw_fd())
        {
            connection.fail(&error);
        }
        if connection.is_finished() {
            return self.close(slot, interests);
        }
        let wanted = connection.wanted();
        if wanted != connection.registered {
            let fd = connection.stream.as_fd();
            if let Err(error) = interests.modify(fd, Token::Connection(slot), wanted) {
                log::warn!(
                    "cannot watch the connection from {}: {error}",
                    connection.peer
                );
                return self.close(slot, interests);
            }
            connection.registered = wanted;
        }
        // A later deadline than the one in the heap needs no new entry: the
        // old one fires early, the session says "not yet", and we come back
        // here. Only an earlier one (a DB query started) is pushed.
        if let Some(deadline) = connection.session.next_deadline()
            && connection
                .timer_at
                .is_none_or(|scheduled| deadline < scheduled)
        {
            connection.timer_at = Some(deadline);
            let generation = connection.generation;
            self.timers
                .call_at(deadline, Timer::Connection { slot, generation });
        }
    }
    // ANCHOR_END: settle

    fn close(&mut self, slot: usize, interests: &mut impl InterestList) {
        let Some(connection) = self.connections.get_mut(slot).and_then(Option::take) else {
            return;
        };
        // Closing the socket would drop it from an epoll set too; saying so
        // explicitly keeps the syscalls visible in a trace.
        if let Err(error) = interests.remove(connection.stream.as_fd()) {
            log::debug!("cannot stop watching {}: {error}", connection.peer);
        }
        log::debug!("close {}", connection.peer);
        self.released_slots.push(slot);
        self.open -= 1;
        // `connection` is dropped here, which closes the socket.
    }

    // ANCHOR: fire_timers
    /// Runs every timer that is due: session deadlines, the end of an
    /// accept back-off, the end of the grace period. Call it once per round,
    /// after dispatching.
    pub fn fire_due_timers(&mut self, now: Instant, interests: &mut impl InterestList) {
        self.free_slots.append(&mut self.released_slots);
        while let Some((when, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Connection { slot, generation } => {
                    let Some(connection) = self.connections.get_mut(slot).and_then(Option::as_mut)
                    else {
                        continue; // closed since
                    };
                    if connection.generation != generation || connection.timer_at != Some(when) {
                        continue; // a newer connection, or superseded by an earlier entry
                    }
                    connection.timer_at = None;
                    connection.session.handle_timers(now);
                    self.settle(slot, now, interests);
                }
                Timer::ResumeAccepting => self.resume_accepting(now, interests),
                Timer::GraceOver => self.grace_over = true,
            }
        }
        self.compact_timers();
    }
    // ANCHOR_END: fire_timers

    /// Whether a heap entry still means something.
    fn is_live(&self, when: Instant, timer: Timer) -> bool {
        match timer {
            Timer::Connection { slot, generation } => self
                .connections
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|connection| {
                    connection.generation == generation && connection.timer_at == Some(when)
                }),
            Timer::ResumeAccepting | Timer::GraceOver => true,
        }
    }

    fn compact_timers(&mut self) {
        // Taken out for a moment: `is_live` looks at the rest of `self`.
        let mut timers = std::mem::take(&mut self.timers);
        timers.compact(self.open, |when, timer| self.is_live(when, timer));
        self.timers = timers;
    }

    // ANCHOR: shutdown
    fn read_signal(&mut self, now: Instant, interests: &mut impl InterestList) {
        let signal = match self.signals.drain() {
            Ok(signals) => match signals.first() {
                Some(signal) => signal.as_str(),
                None => return, // spurious wake-up
            },
            Err(error) => {
                log::warn!("cannot read the signal descriptor: {error}");
                return;
            }
        };
        if self.draining {
            log::warn!("received {signal} again: exiting without waiting");
            std::process::exit(1);
        }
        log::info!("received {signal}: finishing in-flight requests, then exiting");
        self.begin_shutdown(now, interests);
    }

    /// Graceful shutdown: close the listener (new connects are refused),
    /// let every session finish what is in flight, and give them at most
    /// the grace period.
    fn begin_shutdown(&mut self, now: Instant, interests: &mut impl InterestList) {
        if let Some(listener) = self.listener.take()
            && !self.accept_paused
            && let Err(error) = interests.remove(listener.as_fd())
        {
            log::debug!("cannot stop watching the listener: {error}");
        }
        self.draining = true;
        self.timers.call_later(now, GRACE_PERIOD, Timer::GraceOver);
        for slot in 0..self.connections.len() {
            if let Some(connection) = self.connections[slot].as_mut() {
                connection.session.begin_shutdown(now);
                self.settle(slot, now, interests);
            }
        }
    }

    /// After the loop: says how it ended.
    pub fn finish(self) {
        if self.open > 0 {
            crate::shutdown::warn_grace_over(self.open, GRACE_PERIOD);
        }
        log::info!("stopped after serving {} connection(s)", self.accepted);
    }
    // ANCHOR_END: shutdown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_earliest_first_and_only_when_due() {
        let start = Instant::now();
        let mut timers = Timers::default();
        timers.call_later(start, Duration::from_millis(30), Timer::GraceOver);
        timers.call_later(start, Duration::from_millis(10), Timer::ResumeAccepting);
        assert_eq!(timers.next(), Some(start + Duration::from_millis(10)));
        assert_eq!(timers.pop_due(start), None);
        let later = start + Duration::from_millis(40);
        assert_eq!(
            timers.pop_due(later).map(|(_, timer)| timer),
            Some(Timer::ResumeAccepting)
        );
        assert_eq!(
            timers.pop_due(later).map(|(_, timer)| timer),
            Some(Timer::GraceOver)
        );
        assert_eq!(timers.pop_due(later), None);
    }

    /// Stale entries (each keep-alive request leaves one) leave from the
    /// top at once, and from anywhere only once the heap holds more than two
    /// per open connection plus 64: bounded, without a scan on every turn.
    #[test]
    fn compact_drops_stale_timers_from_the_top_and_all_past_the_bound() {
        let start = Instant::now();
        let filled = |count: u64| {
            let mut timers = Timers::default();
            for slot in 0..count {
                timers.call_at(start + Duration::from_millis(slot), slot);
            }
            timers
        };
        let even = |_: Instant, slot: u64| slot.is_multiple_of(2);
        // 5 open connections: the bound is 2 * 5 + 64 = 74 entries.
        let mut at_the_bound = filled(74);
        at_the_bound.compact(5, even);
        assert_eq!(at_the_bound.heap.len(), 74, "the top is live: nothing goes");
        let mut past_the_bound = filled(75);
        past_the_bound.compact(5, even);
        assert_eq!(past_the_bound.heap.len(), 38, "every odd slot goes");
        let mut stale_top = filled(10);
        stale_top.compact(5, |_, slot| slot >= 3);
        assert_eq!(stale_top.next(), Some(start + Duration::from_millis(3)));
        assert_eq!(stale_top.heap.len(), 7);
    }

    #[test]
    fn tokens_round_trip_through_epoll_data() {
        for token in [
            Token::Listener,
            Token::Signals,
            Token::Connection(0),
            Token::Connection(4999),
        ] {
            assert_eq!(Token::from_u64(token.to_u64()), token);
        }
    }
}
