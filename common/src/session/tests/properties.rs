//! Properties over arbitrary input: whatever arrives, in whatever pieces,
//! the session stays within its bounds and answers in order.

use proptest::prelude::*;

use super::*;

/// Pieces of request that make random input hit the interesting paths
/// (pipelines, bodies, errors) far more often than random bytes would.
fn http_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(GET.to_vec()),
        Just(HEAD.to_vec()),
        Just(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec()),
        Just(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        Just(b"HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n".to_vec()),
        Just(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".to_vec()),
        Just(b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec()),
        Just(b"Content-Length: 20\r\n".to_vec()),
        Just(b"Content-Length: 2000000\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
        Just(b"5;x=y\r\nhello\r\n".to_vec()),
        Just(b"0\r\nTrailer: t\r\n\r\n".to_vec()),
        Just(b"0\r\n\r\n".to_vec()),
        Just(b"Connection: close\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(vec![b'a'; 9000]),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Proptest's regression files would land outside this module's folder;
/// a failing case is printed (shrunk) in the test output anyway.
fn proptest_config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Cycles through `sizes` (never empty, every entry at least 1).
struct Sizes<'a> {
    sizes: &'a [usize],
    next: usize,
}

impl Sizes<'_> {
    fn pick(&mut self) -> usize {
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        size
    }
}

/// Pseudo-random bytes from a seed (xorshift), for inputs too large for
/// proptest to generate byte by byte.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

proptest! {
    #![proptest_config(proptest_config())]

    /// Whatever arrives, however split, whatever pauses the client makes and
    /// however slowly it reads: no panic, pending output stays bounded, and
    /// after EOF the session finishes in a bounded number of steps.
    #[test]
    fn http_never_panics_and_always_finishes(
        fragments in prop::collection::vec(http_fragment(), 0..24),
        reads in prop::collection::vec(1..2000usize, 1..8),
        writes in prop::collection::vec(1..5000usize, 1..8),
        pauses in prop::collection::vec(prop_oneof![4 => Just(0u64), 1 => 0..25_000u64], 1..8),
    ) {
        let input = fragments.concat();
        let mut driver = Driver::http();
        let (mut reads, mut writes) = (Sizes { sizes: &reads, next: 0 }, Sizes { sizes: &writes, next: 0 });
        let mut pauses = pauses.iter().cycle();
        let mut rest = &input[..];
        let mut output = Vec::new();
        let mut eof_sent = false;
        // Every read or write moves at least a byte; the other steps (EOF,
        // timers) come at most a few per request, and a request takes more
        // than 8 bytes. So the loop ends if the wake-ups and the output stay
        // within these bounds.
        let max_wakes = input.len() / 8 + 4;
        let max_output = 512 * max_wakes;
        let mut wakes = 0;
        while !driver.session.is_finished() {
            prop_assert!(wakes <= max_wakes, "{} wake-ups for {} bytes", wakes, input.len());
            prop_assert!(output.len() <= max_output, "{} bytes of output", output.len());
            prop_assert!(driver.session.pending_output().len() <= LIMIT_OUTPUT);
            if driver.session.wants_write() {
                let count = writes.pick().min(driver.session.pending_output().len());
                output.extend_from_slice(&driver.session.pending_output()[..count]);
                driver.session.consume_output(count, driver.now);
                continue;
            }
            let capacity = driver.session.read_capacity();
            if capacity > 0 && !rest.is_empty() {
                let count = reads.pick().min(capacity).min(rest.len());
                driver.session.receive(&rest[..count], driver.now);
                rest = &rest[count..];
                output.extend(driver.sleep(ms(*pauses.next().unwrap_or(&0))));
            } else if capacity > 0 && !eof_sent {
                driver.eof();
                eof_sent = true;
            } else {
                driver.wake();
                wakes += 1;
            }
        }
        prop_assert!(output.is_empty() || output.starts_with(b"HTTP/1.1 "));
        prop_assert_eq!(driver.session.next_deadline(), None);
    }

    /// Echo sends back exactly what came in, however it is split on the way
    /// in and out, and never holds more than LIMIT_OUTPUT.
    #[test]
    fn echo_output_equals_input(
        head in prop::collection::vec(any::<u8>(), 0..512),
        seed in any::<u64>(),
        noise_len in prop_oneof![Just(0usize), 0..200_000usize],
        reads in prop::collection::vec(1..100_000usize, 1..8),
        writes in prop::collection::vec(1..100_000usize, 1..8),
        write_first in prop::collection::vec(any::<bool>(), 1..8),
    ) {
        let mut input = head;
        input.extend(noise(seed, noise_len));
        let mut driver = Driver::echo();
        let (mut reads, mut writes) = (Sizes { sizes: &reads, next: 0 }, Sizes { sizes: &writes, next: 0 });
        let mut write_first = write_first.iter().cycle();
        let mut rest = &input[..];
        let mut output = Vec::new();
        let mut eof_sent = false;
        let mut steps = 0;
        while !driver.session.is_finished() {
            // Each step but the EOF moves at least one byte in or out.
            steps += 1;
            prop_assert!(steps <= 2 * input.len() + 1, "not finished after {} steps", steps);
            let capacity = driver.session.read_capacity();
            let can_read = capacity > 0 && !rest.is_empty();
            if driver.session.wants_write() && (!can_read || *write_first.next().unwrap_or(&true)) {
                let count = writes.pick().min(driver.session.pending_output().len());
                output.extend_from_slice(&driver.session.pending_output()[..count]);
                driver.session.consume_output(count, driver.now);
            } else if can_read {
                let count = reads.pick().min(capacity).min(rest.len());
                driver.session.receive(&rest[..count], driver.now);
                rest = &rest[count..];
            } else if !eof_sent {
                prop_assert!(rest.is_empty(), "read_capacity 0 with nothing to write");
                driver.eof();
                eof_sent = true;
            } else {
                prop_assert!(false, "stuck: nothing to read or write, not finished");
            }
            prop_assert!(driver.session.pending_output().len() <= LIMIT_OUTPUT);
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(output.len(), input.len());
        prop_assert!(output == input, "the echo differs from the input");
    }
}
