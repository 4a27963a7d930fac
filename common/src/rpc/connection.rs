//! One RPC connection: bytes in, complete lines answered in order, replies
//! out, each at its time. Like the session it belongs to, it does no I/O
//! and reads the clock only from its arguments.
//!
//! Replies leave in the order their lines came (pipelining), but a `query`
//! does not hold up the lines behind it: they are answered at once and
//! their replies queue behind the query's, which is sent when the fake DB's
//! deadline passes. So ten pipelined queries take one `--db-latency`, not
//! ten, and no thread ever sleeps for them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::error::{ErrorCode, RpcError};
use super::line::{MAX_LINE, Reply, answer_line, error_reply, to_line};
use super::registry::Registry;

/// At most this many answered lines wait for their turn to be sent; past
/// it the connection reads no more (like the output bound).
pub const MAX_QUEUED: usize = 128;

/// A reply that may be sent only from `ready_at` on.
#[derive(Debug)]
struct Queued {
    ready_at: Instant,
    line: Vec<u8>,
}

#[derive(Debug)]
pub struct RpcConnection {
    registry: &'static Registry,
    db_latency: Duration,
    /// Received bytes: the start of a line not complete yet, or complete
    /// lines not answered yet (while the queue or the output is full).
    input: Vec<u8>,
    /// How many leading bytes of `input` are known to hold no newline, so
    /// a long line arriving in pieces is scanned once, not once per piece.
    scanned: usize,
    /// Replies not yet due, oldest first; their deadlines never decrease.
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// Replies whose turn came, moved to the session's output as fast as
    /// its bound allows (one reply may be bigger than the bound: an echo
    /// of a long line).
    due: Vec<u8>,
    /// How much of `due` went out already.
    due_sent: usize,
    /// No more lines will be read or answered (EOF, shutdown, a line over
    /// the limit); the queue still drains.
    no_more_lines: bool,
    /// The peer closed its side: what is left in `input` is its last line.
    peer_closed: bool,
}

impl RpcConnection {
    pub fn new(registry: &'static Registry, db_latency: Duration) -> RpcConnection {
        RpcConnection {
            registry,
            db_latency,
            input: Vec::new(),
            scanned: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            due: Vec::new(),
            due_sent: 0,
            no_more_lines: false,
            peer_closed: false,
        }
    }

    /// How many bytes to read now, given `output_len` unsent bytes. Zero
    /// while the output (sent or queued) is at the session's bound or too
    /// many replies wait: that is the backpressure on a client that sends
    /// and never reads. Otherwise room for one more line of at most
    /// [`MAX_LINE`] bytes and its newline, and not a byte more.
    pub fn read_capacity(&self, output_len: usize, output_limit: usize) -> usize {
        if self.no_more_lines || self.is_full(output_len, output_limit) {
            return 0;
        }
        (MAX_LINE + 1).saturating_sub(self.input.len())
    }

    /// No more lines are answered until the client reads (or the queue
    /// moves): the output is at its bound, counting replies not yet due.
    fn is_full(&self, output_len: usize, output_limit: usize) -> bool {
        self.due.len() > self.due_sent
            || self.queue.len() >= MAX_QUEUED
            || output_len + self.queued_bytes >= output_limit
    }

    pub fn receive(&mut self, bytes: &[u8]) {
        if !self.no_more_lines {
            self.input.extend_from_slice(bytes);
        }
    }

    /// The peer closed its side: a last line without a newline still counts.
    pub fn receive_eof(&mut self) {
        self.peer_closed = true;
    }

    /// The server is shutting down: replies already queued still go out,
    /// lines not answered yet are dropped.
    pub fn stop(&mut self) {
        self.no_more_lines = true;
        self.input = Vec::new();
    }

    /// When the next queued reply is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|queued| queued.ready_at)
    }

    /// Nothing more will be written: close once the output is sent.
    pub fn is_done(&self) -> bool {
        self.no_more_lines && self.queue.is_empty() && self.due.is_empty()
    }

    /// Sends the replies that are due and answers complete lines, as far as
    /// the clock and the room in `output` (bounded by `output_limit`) allow.
    // ANCHOR: advance
    pub fn advance(&mut self, now: Instant, output: &mut Vec<u8>, output_limit: usize) {
        let mut start = 0; // input before `start` is answered
        loop {
            while let Some(queued) = self.queue.pop_front_if(|queued| queued.ready_at <= now) {
                self.queued_bytes -= queued.line.len();
                self.due.extend_from_slice(&queued.line);
            }
            let room = output_limit.saturating_sub(output.len());
            let end = self.due.len().min(self.due_sent + room);
            output.extend_from_slice(&self.due[self.due_sent..end]);
            self.due_sent = end;
            if self.due_sent == self.due.len() {
                self.due.clear();
                self.due_sent = 0;
            }
            if self.no_more_lines || self.is_full(output.len(), output_limit) {
                // Answer the rest once the client has read some, or the
                // queue has moved.
                break;
            }
            let unread = &self.input[start..];
            match unread[self.scanned..]
                .iter()
                .position(|&byte| byte == b'\n')
            {
                Some(offset) => {
                    let end = start + self.scanned + offset;
                    self.scanned = 0;
                    let reply = answer(self.registry, &self.input[start..end]);
                    start = end + 1;
                    self.enqueue(reply, now);
                }
                None if unread.len() > MAX_LINE => {
                    self.scanned = 0;
                    self.no_more_lines = true;
                    let error = RpcError::new(
                        ErrorCode::InvalidRequest,
                        format!("a line may be at most {MAX_LINE} bytes; closing"),
                    );
                    let reply = error_reply(serde_json::Value::Null, &error);
                    self.send(to_line(&reply), now);
                }
                None if self.peer_closed => {
                    let reply = answer(self.registry, unread);
                    start = self.input.len();
                    self.no_more_lines = true;
                    self.enqueue(reply, now);
                }
                None => {
                    self.scanned = unread.len();
                    break;
                }
            }
        }
        if self.no_more_lines {
            self.input = Vec::new();
        } else {
            self.input.drain(..start);
        }
    }
    // ANCHOR_END: advance

    fn enqueue(&mut self, reply: Option<Reply>, now: Instant) {
        let Some(reply) = reply else {
            return; // a notification or a blank line
        };
        if reply.waits_for_db {
            let ready_at = self.queue_tail(now).max(now + self.db_latency);
            self.queued_bytes += reply.line.len();
            self.queue.push_back(Queued {
                ready_at,
                line: reply.line,
            });
        } else {
            self.send(reply.line, now);
        }
    }

    /// An immediate reply: straight out, unless earlier replies still wait
    /// (then it waits behind them, to keep the order).
    fn send(&mut self, line: Vec<u8>, now: Instant) {
        if self.queue.is_empty() {
            self.due.extend_from_slice(&line);
        } else {
            let ready_at = self.queue_tail(now);
            self.queued_bytes += line.len();
            self.queue.push_back(Queued { ready_at, line });
        }
    }

    fn queue_tail(&self, now: Instant) -> Instant {
        self.queue.back().map_or(now, |queued| queued.ready_at)
    }
}

/// The reply to one line; blank lines (an Enter too many in `nc`) are no
/// message at all.
fn answer(registry: &Registry, line: &[u8]) -> Option<Reply> {
    if line.trim_ascii().is_empty() {
        None
    } else {
        answer_line(registry, line)
    }
}
