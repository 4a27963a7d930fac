//! The chunked decoder against a reference decoder written here from the
//! grammar (RFC 9112 §7.1, with the limits of `chunked.rs`), whole-input
//! and line by line: for every input, split anywhere, both must reach the
//! same verdict (the body's end, "more please", or the same error).
#![no_main]

use common::fuzzing::{ChunkError, ChunkedBody};
use common::session::{MAX_BODY_BYTES, MAX_HEAD_BYTES};
use libfuzzer_sys::fuzz_target;

/// A chunk-size line (digits and extensions) is at most this long.
const MAX_SIZE_LINE: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The body ends after this many bytes.
    Done(usize),
    /// Everything so far is body; more is needed.
    More,
    Error(ChunkError),
}

fn field_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= b' ' && byte != 0x7f)
}

/// The reference: the whole input at once, in the grammar's order.
fn reference(input: &[u8]) -> Verdict {
    use ChunkError::{Malformed, TooLarge, TrailersTooLarge};
    let mut at = 0;
    let mut total: u64 = 0;
    macro_rules! next {
        () => {
            match input.get(at) {
                Some(&byte) => byte,
                None => return Verdict::More,
            }
        };
    }
    macro_rules! expect {
        ($byte:expr) => {
            if next!() != $byte {
                return Verdict::Error(Malformed);
            }
            at += 1;
        };
    }
    loop {
        let (mut size, mut digits) = (0u64, 0usize);
        while let Some(digit) = char::from(next!()).to_digit(16) {
            size = size * 16 + u64::from(digit);
            digits += 1;
            at += 1;
            if total + size > MAX_BODY_BYTES {
                return Verdict::Error(TooLarge);
            }
        }
        if digits == 0 {
            return Verdict::Error(Malformed);
        }
        if matches!(next!(), b';' | b' ' | b'\t') {
            let mut line = digits + 1;
            at += 1;
            while next!() != b'\r' {
                if !field_byte(next!()) || line >= MAX_SIZE_LINE {
                    return Verdict::Error(Malformed);
                }
                line += 1;
                at += 1;
            }
        }
        expect!(b'\r');
        expect!(b'\n');
        if size == 0 {
            break;
        }
        total += size;
        let left = input.len() - at;
        if (left as u64) < size {
            return Verdict::More;
        }
        at += size as usize;
        expect!(b'\r');
        expect!(b'\n');
    }
    let mut trailer_bytes = 0;
    loop {
        if next!() == b'\r' {
            at += 1;
            expect!(b'\n');
            return Verdict::Done(at);
        }
        while next!() != b'\r' {
            if !field_byte(next!()) {
                return Verdict::Error(Malformed);
            }
            trailer_bytes += 1;
            if trailer_bytes > MAX_HEAD_BYTES {
                return Verdict::Error(TrailersTooLarge);
            }
            at += 1;
        }
        at += 1;
        expect!(b'\n');
    }
}

/// The decoder under test, fed `input` in pieces whose lengths come from
/// `splits`.
fn incremental(input: &[u8], splits: &[u8]) -> Verdict {
    let mut body = ChunkedBody::default();
    let mut at = 0;
    let mut sizes = splits.iter().map(|&size| usize::from(size) + 1).cycle();
    while at < input.len() {
        let end = (at + sizes.next().unwrap_or(input.len())).min(input.len());
        match body.decode(&input[at..end]) {
            Err(error) => return Verdict::Error(error),
            Ok(used) => {
                at += used;
                if body.is_done() {
                    return Verdict::Done(at);
                }
                assert_eq!(at, end, "stopped early without being done");
            }
        }
    }
    Verdict::More
}

fuzz_target!(|data: &[u8]| {
    // The first byte says how many split lengths follow; the rest is the body.
    let (&count, rest) = data.split_first().unwrap_or((&0, &[]));
    let (splits, input) = rest.split_at(usize::from(count % 16).min(rest.len()));
    let splits = if splits.is_empty() {
        &[255u8][..]
    } else {
        splits
    };
    assert_eq!(
        incremental(input, splits),
        reference(input),
        "on {:?}",
        String::from_utf8_lossy(input)
    );
});
