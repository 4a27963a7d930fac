//! loadgen's own reading of a response head (`loadgen::http::parse_head`),
//! the one parser of the client side: loadgen frames every reply by it, so
//! a head it misreads makes it misread every reply after it on the
//! connection. For every input:
//! - no panic, and a complete head is no longer than the input;
//! - the head alone parses to the same head (nothing after it counts);
//! - every shorter prefix of it is "incomplete", never an error and never
//!   another head (what arrives in pieces reads like what arrives whole);
//! - the body length it returns is written, in plain digits, in every
//!   `Content-Length` header of the head, and there is no
//!   `Transfer-Encoding` that would override it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadgen::http::parse_head;

fuzz_target!(|input: &[u8]| {
    let Ok(Some(head)) = parse_head(input) else {
        return;
    };
    assert!(head.length <= input.len());
    let whole = &input[..head.length];
    assert_eq!(parse_head(whole), Ok(Some(head)));
    for cut in 0..head.length {
        assert_eq!(parse_head(&input[..cut]), Ok(None), "cut at {cut}");
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    assert!(response.parse(whole).is_ok_and(|status| status.is_complete()));
    let digits = head.content_length.to_string();
    let mut lengths = 0;
    for header in response.headers.iter() {
        assert!(!header.name.eq_ignore_ascii_case("transfer-encoding"));
        if header.name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let value = std::str::from_utf8(header.value).expect("a length is text");
            let value = value.trim_matches([' ', '\t']).trim_start_matches('0');
            assert_eq!(value, digits.trim_start_matches('0'), "{head:?}");
        }
    }
    assert!(lengths > 0, "a head without Content-Length was accepted");
});
