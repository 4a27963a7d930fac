//! The chunked transfer coding of request bodies (RFC 9112 §7.1), decoded
//! incrementally and thrown away: the session only needs to know where the
//! body ends, so that the next request is parsed from the right byte.
//!
//! ```text
//! 5;name=value\r\n     chunk size in hex, optional extensions
//! hello\r\n            that many bytes, then CRLF
//! 0\r\n                the last chunk has size 0
//! Trailer: x\r\n       optional trailer fields
//! \r\n                 an empty line ends the body
//! ```
//!
//! The decoder is a byte-at-a-time state machine, so a body may arrive in
//! any number of pieces and nothing is buffered: a chunk's data is skipped
//! in bulk. Bare LF is refused as a line end: lenient line endings in chunk
//! framing are a classic request-smuggling vector when a proxy and a server
//! disagree.

use super::head::{MAX_BODY_BYTES, MAX_HEAD_BYTES};

/// A chunk-size line (size and extensions) may be at most this long.
const MAX_SIZE_LINE: usize = 4096;

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A bad chunk size, extension or terminator: 400.
    Malformed,
    /// The chunks add up to more than [`MAX_BODY_BYTES`]: 413.
    TooLarge,
    /// The trailer section is longer than a request head may be: 431.
    TrailersTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex digits of a chunk size.
    Size {
        size: u64,
        digits: usize,
    },
    /// After the size: `;ext=value` up to the CR; `length` bytes of the
    /// line so far.
    Extension {
        size: u64,
        length: usize,
    },
    /// Expecting the LF of the size line.
    SizeLf {
        size: u64,
    },
    /// Skipping chunk data.
    Data {
        left: u64,
    },
    /// Expecting the CRLF after the data.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    TrailerLf,
    /// Expecting the LF of the final empty line.
    FinalLf,
    Done,
}

/// The decoding state of one chunked request body.
#[derive(Debug, Clone)]
pub struct ChunkedBody {
    state: State,
    /// Data bytes announced so far, for the 1 MiB limit.
    total: u64,
    /// Bytes of trailer lines so far.
    trailers: usize,
}

impl Default for ChunkedBody {
    fn default() -> Self {
        ChunkedBody {
            state: State::Size { size: 0, digits: 0 },
            total: 0,
            trailers: 0,
        }
    }
}

impl ChunkedBody {
    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes body bytes from the front of `input` and returns how many
    /// belong to the body; stops at the body's end, so whatever follows
    /// (a pipelined request) is left alone.
    pub fn decode(&mut self, input: &[u8]) -> Result<usize, ChunkError> {
        let mut used = 0;
        while used < input.len() && !self.is_done() {
            if let State::Data { left } = self.state {
                // Chunk data is skipped in bulk, not byte by byte.
                let take = left.min((input.len() - used) as u64);
                used += take as usize;
                self.state = match left - take {
                    0 => State::DataCr,
                    left => State::Data { left },
                };
                continue;
            }
            self.state = self.step(input[used])?;
            used += 1;
        }
        Ok(used)
    }

    /// One byte of framing (everything but chunk data).
    fn step(&mut self, byte: u8) -> Result<State, ChunkError> {
        use ChunkError::{Malformed, TooLarge, TrailersTooLarge};
        Ok(match (self.state, byte) {
            (State::Size { size, digits }, _) if byte.is_ascii_hexdigit() => {
                let digit = u64::from(char::from(byte).to_digit(16).unwrap_or(0));
                let size = size * 16 + digit;
                // Checked on every digit, so the size can never overflow.
                if self.total + size > MAX_BODY_BYTES {
                    return Err(TooLarge);
                }
                State::Size {
                    size,
                    digits: digits + 1,
                }
            }
            (State::Size { digits: 0, .. }, _) => return Err(Malformed),
            (State::Size { size, .. }, b'\r') => State::SizeLf { size },
            (State::Size { size, digits }, b';' | b' ' | b'\t') => State::Extension {
                size,
                length: digits + 1,
            },
            (State::Extension { size, .. }, b'\r') => State::SizeLf { size },
            (State::Extension { size, length }, _) if is_field_byte(byte) => {
                if length >= MAX_SIZE_LINE {
                    return Err(Malformed);
                }
                State::Extension {
                    size,
                    length: length + 1,
                }
            }
            (State::SizeLf { size: 0 }, b'\n') => State::TrailerStart,
            (State::SizeLf { size }, b'\n') => {
                self.total += size;
                State::Data { left: size }
            }
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::Size { size: 0, digits: 0 },
            (State::TrailerStart, b'\r') => State::FinalLf,
            (State::FinalLf, b'\n') => State::Done,
            (State::TrailerStart | State::Trailer, _) if is_field_byte(byte) => {
                self.trailers += 1;
                if self.trailers > MAX_HEAD_BYTES {
                    return Err(TrailersTooLarge);
                }
                State::Trailer
            }
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            _ => return Err(Malformed),
        })
    }
}

/// A byte that may appear in a field line or a chunk extension: visible
/// characters, space, tab and obs-text, but no control characters (a lone
/// CR or LF among them would be a line-ending trick).
fn is_field_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= b' ' && byte != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits written out, so that a changed constant fails the tests.
    const LIMIT_BODY_BYTES: u64 = 1_048_576;
    const LIMIT_HEAD_BYTES: usize = 8_192;
    const LIMIT_SIZE_LINE: usize = 4_096;

    /// Decodes `input` in pieces of `piece` bytes; returns the bytes used.
    fn decode_in_pieces(input: &[u8], piece: usize) -> Result<(usize, bool), ChunkError> {
        let mut body = ChunkedBody::default();
        let mut used = 0;
        for part in input.chunks(piece) {
            let taken = body.decode(part)?;
            used += taken;
            if taken < part.len() {
                break;
            }
        }
        Ok((used, body.is_done()))
    }

    #[test]
    fn a_body_is_decoded_whatever_the_pieces_and_stops_at_its_end() {
        let body = b"5\r\nhello\r\n6;ext=1;x\r\n world\r\n0\r\nTrailer: yes\r\n\r\n";
        let mut input = body.to_vec();
        input.extend_from_slice(b"GET / HTTP/1.1\r\n");
        for piece in [1, 2, 3, 7, input.len()] {
            assert_eq!(
                decode_in_pieces(&input, piece),
                Ok((body.len(), true)),
                "{piece}"
            );
        }
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(decode_in_pieces(b"5\r\nhel", 100), Ok((6, false)));
        assert_eq!(decode_in_pieces(b"0\r\n", 100), Ok((3, false)));
        assert_eq!(decode_in_pieces(b"0\r\n\r", 100), Ok((4, false)));
    }

    #[test]
    fn upper_case_hex_and_leading_zeros_are_sizes() {
        assert_eq!(
            decode_in_pieces(b"0A\r\n0123456789\r\n0\r\n\r\n", 100),
            Ok((21, true))
        );
    }

    #[test]
    fn bad_framing_is_malformed() {
        for input in [
            &b"\r\n"[..],      // no size
            b"x\r\n",          // not hex
            b"-1\r\n",         // not hex
            b"5\nhello\r\n",   // bare LF after the size
            b"5\r\nhello\n",   // bare LF after the data
            b"5\r\nhelloXX",   // data longer than announced
            b"5\r\nhello\r\r", // CR CR
            b"0\r\nbad\nx",    // bare LF in a trailer
            b"0\r\n\rx",       // CR then not LF at the end
            b"5;a\x00b\r\n",   // control byte in an extension
            b";ext\r\n",       // extension without size
        ] {
            assert_eq!(
                decode_in_pieces(input, 1),
                Err(ChunkError::Malformed),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn the_size_line_is_bounded() {
        let mut line = b"1;".to_vec();
        line.resize(LIMIT_SIZE_LINE, b'a');
        line.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(decode_in_pieces(&line, 100).map(|(_, done)| done), Ok(true));
        let mut line = b"1;".to_vec();
        line.resize(LIMIT_SIZE_LINE + 1, b'a');
        line.extend_from_slice(b"\r\n");
        assert_eq!(decode_in_pieces(&line, 100), Err(ChunkError::Malformed));
    }

    #[test]
    fn exactly_the_body_limit_is_accepted_and_one_byte_more_is_too_large() {
        let limit = LIMIT_BODY_BYTES as usize;
        // Two chunks adding up to the limit.
        let mut input = format!("{:x}\r\n", limit - 1).into_bytes();
        input.resize(input.len() + limit - 1, b'a');
        input.extend_from_slice(b"\r\n1\r\nb\r\n0\r\n\r\n");
        assert_eq!(
            decode_in_pieces(&input, 4096).map(|(_, done)| done),
            Ok(true)
        );
        let mut over = format!("{:x}\r\n", limit - 1).into_bytes();
        over.resize(over.len() + limit - 1, b'a');
        over.extend_from_slice(b"\r\n2\r\n");
        assert_eq!(decode_in_pieces(&over, 4096), Err(ChunkError::TooLarge));
        // A size with more hex digits than a u64 holds never overflows.
        assert_eq!(
            decode_in_pieces(b"fffffffffffffffffffffffff\r\n", 1),
            Err(ChunkError::TooLarge)
        );
    }

    #[test]
    fn trailers_are_bounded_like_a_head() {
        let mut input = b"0\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', LIMIT_HEAD_BYTES));
        input.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            decode_in_pieces(&input, 100).map(|(_, done)| done),
            Ok(true)
        );
        let mut input = b"0\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'a', LIMIT_HEAD_BYTES + 1));
        assert_eq!(
            decode_in_pieces(&input, 100),
            Err(ChunkError::TrailersTooLarge)
        );
    }
}
