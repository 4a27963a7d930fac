//! A deliberately small HTTP/1.x client that reads responses byte-exactly,
//! so tests see what the server really sent (and the checker's report can
//! show it: every send and read goes into the [`crate::transcript`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// No single read in a test waits longer: a hung server fails the test
/// instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// One connection, with a buffered reader that keeps bytes of the next
/// (pipelined) response.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<Recorded>,
    writer: TcpStream,
}

/// A stream whose reads go into the transcript: what came back, and when
/// the server closed or went quiet.
#[derive(Debug)]
pub(crate) struct Recorded(pub(crate) TcpStream);

impl Read for Recorded {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let result = self.0.read(buffer);
        match &result {
            Ok(0) => crate::transcript::record("closed by the server after", b""),
            Ok(count) => crate::transcript::record("received", &buffer[..*count]),
            Err(error) => crate::transcript::record(&format!("read failed ({error}) after"), b""),
        }
        result
    }
}

/// Sends all of `bytes`, noting them in the transcript.
pub(crate) fn send_all(mut stream: &TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    crate::transcript::record("sent", bytes);
    stream.write_all(bytes)
}

/// A parsed response.
#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Shown in a failed check's message: the body as text (escaped, its
/// start only), which a student can read, rather than a list of numbers.
impl std::fmt::Debug for Response {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 120;
        let shown = &self.body[..self.body.len().min(SHOWN)];
        let more = if self.body.len() > SHOWN { "..." } else { "" };
        formatter
            .debug_struct("Response")
            .field("status_line", &self.status_line)
            .field("headers", &self.headers)
            .field(
                "body",
                &format_args!(
                    "{} bytes \"{}\"{more}",
                    self.body.len(),
                    shown.escape_ascii()
                ),
            )
            .finish()
    }
}

impl Response {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream =
            TcpStream::connect(addr).unwrap_or_else(|error| panic!("connect {addr}: {error}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set a read timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set a write timeout");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let writer = stream.try_clone().expect("clone the stream");
        Client {
            reader: BufReader::new(Recorded(stream)),
            writer,
        }
    }

    pub fn stream(&self) -> &TcpStream {
        &self.writer
    }

    pub fn send(&mut self, bytes: &[u8]) {
        send_all(&self.writer, bytes).expect("send to the server");
    }

    /// Sends `GET / HTTP/1.1` and reads the response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false)
    }

    /// Reads one response; `head_only` for the answer to HEAD (no body).
    pub fn read_response(&mut self, head_only: bool) -> Response {
        let status_line = self.read_line();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        assert!(
            status_line.starts_with("HTTP/1."),
            "bad status line {status_line:?}"
        );
        let mut headers = Vec::new();
        loop {
            let line = self.read_line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header {line:?}"));
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let mut response = Response {
            status,
            status_line,
            headers,
            body: Vec::new(),
        };
        if !head_only {
            let length: usize = response
                .header("Content-Length")
                .expect("every response has Content-Length")
                .parse()
                .expect("Content-Length is a number");
            response.body = vec![0; length];
            self.reader
                .read_exact(&mut response.body)
                .expect("read the whole body");
        }
        response
    }

    /// Reads until the server closes; returns what came (should be nothing
    /// after a complete response). Panics if the server keeps it open.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("the server closes the connection");
        rest
    }

    /// Reads into `buffer` exactly.
    pub fn read_exact(&mut self, buffer: &mut [u8]) {
        self.reader
            .read_exact(buffer)
            .expect("read the expected bytes");
    }

    /// Whether the server closed the connection within `wait` (EOF or reset).
    pub fn is_closed_within(&mut self, wait: Duration) -> bool {
        self.writer
            .set_read_timeout(Some(wait))
            .expect("set a read timeout");
        let mut byte = [0; 1];
        let closed = match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => !matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
        self.writer
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set a read timeout");
        closed
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        let read = self
            .reader
            .read_line(&mut line)
            .expect("read a response line");
        assert!(
            read > 0,
            "the server closed the connection before a complete response"
        );
        assert!(line.ends_with("\r\n"), "lines end with CRLF: {line:?}");
        line.truncate(line.len() - 2);
        line
    }
}
