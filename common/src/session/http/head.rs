//! Parsing a request head with httparse, and the RFC 9112 rules a server
//! MUST apply before it may trust the head: exactly one valid `Host` in
//! HTTP/1.1, and one unambiguous way to find where the body ends; and the
//! limits and statuses a request can run into.

use std::mem::MaybeUninit;

/// A request head (request line and headers) may be at most this long (431).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A request may have at most this many headers (431).
pub const MAX_HEADERS: usize = 64;
/// A request body may have at most this many bytes (413).
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;

/// An HTTP status with its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    pub const OK: Status = Status(200, "OK");
    pub const BAD_REQUEST: Status = Status(400, "Bad Request");
    pub const NOT_FOUND: Status = Status(404, "Not Found");
    pub const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    pub const REQUEST_TIMEOUT: Status = Status(408, "Request Timeout");
    pub const CONTENT_TOO_LARGE: Status = Status(413, "Content Too Large");
    pub const HEADERS_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    pub const NOT_IMPLEMENTED: Status = Status(501, "Not Implemented");
}

/// What a response says about the connection, and what happens to it after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Persistence {
    /// HTTP/1.1 default: stays open, no header needed.
    KeepAlive,
    /// HTTP/1.0 asked for `Connection: keep-alive`: stays open and the
    /// response must say so, or 1.0 clients (`ab -k`) wait for a close.
    KeepAliveDeclared,
    /// `Connection: close` is sent and the connection closes after it.
    Close,
}

/// How the request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// `Content-Length: N` (no header: 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the session needs from a parsed request head, copied out of
/// httparse's borrowed view so the input buffer can be changed afterwards.
#[derive(Debug)]
pub(super) struct Head {
    /// Bytes of the head, including the empty line.
    pub length: usize,
    /// A HEAD request: its answer, even an error, has no body.
    pub head_only: bool,
    /// The request as apps see it (method, target, version, headers).
    pub request: http::Request<()>,
    pub persistence: Persistence,
    /// `Err` when the head breaks a rule that ends the connection (bad
    /// `Host`, ambiguous framing, unknown coding): the status to answer.
    pub framing: Result<Framing, Status>,
}

pub(super) enum Parsed {
    Partial,
    Complete(Box<Head>),
    Error(Status),
}

pub(super) fn parse_head(input: &[u8]) -> Parsed {
    // httparse borrows the header slots, so they are made anew on every
    // attempt; a partial head is simply parsed again when more bytes come.
    // Uninitialized: httparse writes the slots it uses and hands back only
    // those, so 64 empty headers (2 KiB) need not be written per request.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let length = match request.parse_with_uninit_headers(input, &mut slots) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Error(Status::HEADERS_TOO_LARGE),
        Err(_) => return Parsed::Error(Status::BAD_REQUEST),
    };
    let head_only = request.method == Some("HEAD");
    let http_1_1 = request.version == Some(1);
    let Ok(app_request) = app_request(&request) else {
        return Parsed::Error(Status::BAD_REQUEST);
    };
    let mut fields = Fields::default();
    for header in request.headers.iter() {
        fields.add(header.name, header.value);
    }
    let persistence = match (http_1_1, fields.close, fields.keep_alive) {
        (_, true, _) => Persistence::Close,
        (true, false, _) => Persistence::KeepAlive,
        (false, false, true) => Persistence::KeepAliveDeclared,
        (false, false, false) => Persistence::Close,
    };
    Parsed::Complete(Box::new(Head {
        length,
        head_only,
        request: app_request,
        persistence,
        framing: fields.check_host(http_1_1).and(fields.framing(http_1_1)),
    }))
}

/// httparse's borrowed view, copied into the `http` crate's request type
/// that apps take. The target must also be a URI the `http` crate accepts.
///
/// Built field by field rather than with `http::Request::builder()`: the
/// builder moves its whole request (a few hundred bytes) at every step,
/// once per header, and those copies were the server's hottest user-space
/// code on the 0 ms page (`scripts/profile.sh`).
fn app_request(parsed: &httparse::Request<'_, '_>) -> Result<http::Request<()>, http::Error> {
    let mut request = http::Request::new(());
    *request.method_mut() = http::Method::from_bytes(parsed.method.unwrap_or("GET").as_bytes())?;
    *request.uri_mut() = http::Uri::try_from(parsed.path.unwrap_or("/"))?;
    *request.version_mut() = match parsed.version {
        Some(1) => http::Version::HTTP_11,
        _ => http::Version::HTTP_10,
    };
    let headers = request.headers_mut();
    headers.reserve(parsed.headers.len());
    for header in parsed.headers.iter() {
        headers.append(
            http::HeaderName::from_bytes(header.name.as_bytes())?,
            http::HeaderValue::from_bytes(header.value)?,
        );
    }
    Ok(request)
}

/// The header fields that matter for framing and persistence.
#[derive(Debug, Default)]
struct Fields {
    hosts: usize,
    host_valid: bool,
    /// Every transfer coding, in order, over all `Transfer-Encoding` lines.
    codings: Vec<String>,
    has_transfer_encoding: bool,
    content_length: ContentLength,
    close: bool,
    keep_alive: bool,
}

impl Fields {
    fn add(&mut self, name: &str, value: &[u8]) {
        if name.eq_ignore_ascii_case("host") {
            self.hosts += 1;
            self.host_valid = is_valid_host(value);
            return;
        }
        let value = String::from_utf8_lossy(value);
        if name.eq_ignore_ascii_case("transfer-encoding") {
            self.has_transfer_encoding = true;
            self.codings
                .extend(list(&value).map(str::to_ascii_lowercase));
        } else if name.eq_ignore_ascii_case("content-length") {
            // `Content-Length: 5, 5` (a list of one value) is allowed by
            // RFC 9110 §8.6; differing values are not.
            for item in value.split(',') {
                self.content_length = match (self.content_length, parse_length(item.trim())) {
                    (ContentLength::Absent, Some(length)) => ContentLength::Length(length),
                    (ContentLength::Length(earlier), Some(length)) if earlier == length => {
                        ContentLength::Length(length)
                    }
                    _ => ContentLength::Invalid,
                };
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in list(&value) {
                self.close |= token.eq_ignore_ascii_case("close");
                self.keep_alive |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
    }

    /// RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request
    /// without `Host`, and to any request with two or an invalid one.
    fn check_host(&self, http_1_1: bool) -> Result<(), Status> {
        match self.hosts {
            0 if http_1_1 => Err(Status::BAD_REQUEST),
            0 => Ok(()),
            1 if self.host_valid => Ok(()),
            _ => Err(Status::BAD_REQUEST),
        }
    }

    /// RFC 9112 §6.1 and §6.3: where the body ends, or why we cannot know.
    fn framing(&self, http_1_1: bool) -> Result<Framing, Status> {
        if !self.has_transfer_encoding {
            return match self.content_length {
                ContentLength::Absent => Ok(Framing::Length(0)),
                ContentLength::Length(length) => Ok(Framing::Length(length)),
                ContentLength::Invalid => Err(Status::BAD_REQUEST),
            };
        }
        // Both headers, or chunked in a 1.0 request: a proxy in front of us
        // might have framed the body the other way, which is how request
        // smuggling works. Refuse and close.
        if !http_1_1 || self.content_length != ContentLength::Absent {
            return Err(Status::BAD_REQUEST);
        }
        let chunked = self.codings.iter().filter(|c| *c == "chunked").count();
        if self.codings.last().map(String::as_str) != Some("chunked") || chunked > 1 {
            // Chunked must come last, once: otherwise the length of the
            // body cannot be determined at all.
            return Err(Status::BAD_REQUEST);
        }
        if self.codings.len() > 1 {
            // `gzip, chunked`: framed fine, but we decode no other coding.
            return Err(Status::NOT_IMPLEMENTED);
        }
        Ok(Framing::Chunked)
    }
}

/// What the `Content-Length` lines said, all of them together.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ContentLength {
    #[default]
    Absent,
    Length(u64),
    /// Two values disagree, or one is not a number.
    Invalid,
}

/// The non-empty items of a comma-separated header value.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// `1*DIGIT`, nothing else: Rust's `u64::from_str` would also take `+5`.
fn parse_length(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `Host = uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2): a
/// bracketed IP literal or a reg-name (letters, digits, `-._~`, `%XX`,
/// sub-delims), then an optional port of digits. The empty value is valid.
fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(end) = value.iter().position(|&byte| byte == b']') else {
            return false;
        };
        let literal = &value[1..end];
        let literal_ok = !literal.is_empty()
            && literal
                .iter()
                .all(|&byte| byte.is_ascii_hexdigit() || b":.vV".contains(&byte));
        if !literal_ok {
            return false;
        }
        (&[][..], &value[end + 1..])
    } else {
        match value.iter().position(|&byte| byte == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &[][..]),
        }
    };
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    port_ok && is_reg_name(host)
}

fn is_reg_name(host: &[u8]) -> bool {
    let mut index = 0;
    while index < host.len() {
        let byte = host[index];
        if byte == b'%' {
            let escape = host.get(index + 1..index + 3);
            if !escape.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            index += 3;
            continue;
        }
        if !(byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&byte)) {
            return false;
        }
        index += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_are_valid() {
        for host in [
            &b""[..],
            b"localhost",
            b"example.com:8080",
            b"127.0.0.1:9090",
            b"[::1]:80",
            b"[::1]",
            b"my-host_1.example~x",
            b"caf%C3%A9.example",
            b"x:",
        ] {
            assert!(is_valid_host(host), "{:?}", String::from_utf8_lossy(host));
        }
    }

    #[test]
    fn hosts_that_are_invalid() {
        for host in [
            &b"a b"[..],
            b"example.com/path",
            b"user@example.com",
            b"example.com:80a",
            b"example.com:80:90",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"[zz::1]",
            b"bad%zzhost",
            b"ab%41/cdefgh", // the escape is skipped, not what follows it
            b"bad%2",
            b"tab\there",
            b"\"quoted\"",
        ] {
            assert!(!is_valid_host(host), "{:?}", String::from_utf8_lossy(host));
        }
    }

    #[test]
    fn the_app_sees_method_target_and_version() {
        for (request, version, head_only) in [
            (
                &b"HEAD /a?b HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                http::Version::HTTP_11,
                true,
            ),
            (b"GET /a?b HTTP/1.0\r\n\r\n", http::Version::HTTP_10, false),
        ] {
            let Parsed::Complete(head) = parse_head(request) else {
                panic!("a complete head");
            };
            assert_eq!(head.request.version(), version);
            assert_eq!(head.request.uri(), "/a?b");
            assert_eq!(head.head_only, head_only);
            assert_eq!(head.length, request.len());
        }
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_length("0"), Some(0));
        assert_eq!(parse_length("1048576"), Some(1_048_576));
        for bad in ["", "+5", "-5", "5 5", "0x10", "99999999999999999999999"] {
            assert_eq!(parse_length(bad), None, "{bad:?}");
        }
    }
}
