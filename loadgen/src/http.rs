//! `loadgen http`: a small HTTP/1.1 client under three kinds of load.
//!
//! - users (`--users N --think 5s..15s`): the lab's Locust user, who
//!   requests a page, reads it for a while, and requests again;
//! - connections (`--connections N`): no think time, each connection sends
//!   its next request as soon as the reply is in (closed loop, saturation);
//! - rate (`--rate R`): requests on a fixed plan, R per second, whatever
//!   the server does (open loop); latency counts from the planned start.
//!
//! The client checks the status line and reads exactly `Content-Length`
//! body bytes, so a reply that is cut short or runs long is caught.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{Close, Config, HttpConfig, HttpLoad};
use crate::duration::DurationRange;
use crate::limits;
use crate::observe::Observe;
use crate::report::Report;
use crate::run::{
    Clock, Pacing, RECONNECT_PAUSE, ResourceWatch, Spawning, connect, drive, into_report,
};
use crate::stats::{ErrorKind, Recorder, Timing};

/// A response head longer than this is not from one of our servers.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Runs an HTTP load and reports what it measured.
pub(crate) async fn run_http(config: HttpConfig, observe: &Observe) -> anyhow::Result<Report> {
    validate(&config)?;
    let preflight = limits::preflight(config.load.connections() as u64);
    let watch = ResourceWatch::new(&config.common)?;
    let recorder = Recorder::new();
    let clock = Clock::starting_now(config.common.duration);
    let (spawning, pacing, think) = match &config.load {
        HttpLoad::Users {
            users,
            think,
            spawn_rate,
        } => (
            Spawning {
                clients: *users,
                per_second: *spawn_rate,
            },
            Pacing::Closed,
            Some(*think),
        ),
        HttpLoad::Connections {
            connections,
            spawn_rate,
        } => (
            Spawning {
                clients: *connections,
                per_second: *spawn_rate,
            },
            Pacing::Closed,
            None,
        ),
        HttpLoad::Rate { rate, connections } => (
            Spawning {
                clients: *connections,
                per_second: None,
            },
            Pacing::open(clock.start, *rate),
            None,
        ),
    };
    let request = request_bytes(&config);
    let target = Target {
        addr: config.common.addr,
        timeout: config.common.timeout,
        keepalive: config.keepalive,
        close: config.close,
    };
    let client_recorder = Arc::clone(&recorder);
    let schedule = pacing.clone();
    let measured = drive(
        &config.common,
        observe,
        clock,
        watch,
        &recorder,
        spawning,
        &schedule,
        move |_index| {
            let client = HttpClient::new(target, Arc::clone(&request));
            user(
                client,
                pacing.clone(),
                think,
                Arc::clone(&client_recorder),
                clock.deadline,
            )
        },
    )
    .await?;
    Ok(into_report(Config::Http(config), preflight, measured, None))
}

fn validate(config: &HttpConfig) -> anyhow::Result<()> {
    ensure!(
        config.path.starts_with('/') && !config.path.chars().any(char::is_whitespace),
        "--path must start with / and contain no spaces, got {:?}",
        config.path
    );
    let positive = |rate: f64| rate.is_finite() && rate > 0.0;
    match &config.load {
        HttpLoad::Users {
            users, spawn_rate, ..
        } => {
            ensure!(*users > 0, "--users must be at least 1");
            ensure!(
                spawn_rate.is_none_or(positive),
                "--spawn-rate must be a positive number of users per second"
            );
        }
        HttpLoad::Connections {
            connections,
            spawn_rate,
        } => {
            ensure!(*connections > 0, "--connections must be at least 1");
            ensure!(
                spawn_rate.is_none_or(positive),
                "--spawn-rate must be a positive number of connections per second"
            );
        }
        HttpLoad::Rate { rate, connections } => {
            ensure!(
                positive(*rate),
                "--rate must be a positive number of requests per second"
            );
            ensure!(*connections > 0, "--connections must be at least 1");
        }
    }
    Ok(())
}

/// The request every client sends, built once.
fn request_bytes(config: &HttpConfig) -> Arc<[u8]> {
    // A connection the client will reset must still be open on the server's
    // side when the reset arrives, or the server never meets it.
    let connection = if config.keepalive || config.close == Close::Reset {
        "keep-alive"
    } else {
        "close"
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: loadgen\r\nAccept: */*\r\nConnection: {connection}\r\n\r\n",
        config.path, config.common.addr
    )
    .into_bytes()
    .into()
}

#[derive(Clone, Copy, Debug)]
struct Target {
    addr: SocketAddr,
    timeout: Duration,
    keepalive: bool,
    close: Close,
}

/// What a complete response looked like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reply {
    status: u16,
    /// Head and body bytes.
    bytes: usize,
    body: usize,
    /// The server said it will close (`Connection: close`, or HTTP/1.0).
    server_closes: bool,
}

/// The head of a response: its length, status, body length and whether the
/// server closes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub length: usize,
    pub status: u16,
    pub content_length: usize,
    pub server_closes: bool,
}

/// A connection (or a connection per request) with a read buffer.
#[derive(Debug)]
struct HttpClient {
    target: Target,
    request: Arc<[u8]>,
    connection: Option<TcpStream>,
    buffer: Vec<u8>,
}

impl HttpClient {
    fn new(target: Target, request: Arc<[u8]>) -> Self {
        HttpClient {
            target,
            request,
            connection: None,
            buffer: Vec::with_capacity(4096),
        }
    }

    /// Sends the request and reads the whole reply.
    async fn request(&mut self) -> Result<Reply, ErrorKind> {
        let reused = self.connection.is_some();
        match self.try_request().await {
            // A server may close an idle keep-alive connection at any moment
            // (its idle timeout), and a client only learns it by sending.
            // Like browsers and Locust's HTTP library, try once more on a
            // fresh connection; a real failure fails again.
            Err(ErrorKind::Closed | ErrorKind::Reset) if reused => self.try_request().await,
            outcome => outcome,
        }
    }

    async fn try_request(&mut self) -> Result<Reply, ErrorKind> {
        let stream = match &mut self.connection {
            Some(stream) => stream,
            None => self
                .connection
                .insert(connect(self.target.addr, self.target.timeout).await?),
        };
        let outcome = exchange(stream, &self.request, &mut self.buffer).await;
        if outcome.is_err() {
            self.connection = None;
        }
        outcome
    }

    /// After a reply with `Connection: close`, waits for the server to
    /// close first. Whoever closes first keeps the port in TIME_WAIT for a
    /// minute; on the server side that costs nothing, on the client side it
    /// uses up the local port range within seconds at a few thousand
    /// connections per second.
    async fn close_after_server(&mut self) {
        if let Some(mut stream) = self.connection.take() {
            let mut scratch = [0u8; 256];
            let _ = tokio::time::timeout(self.target.timeout, async {
                while let Ok(1..) = stream.read(&mut scratch).await {}
            })
            .await;
        }
    }

    /// Ends the connection with a reset: with `SO_LINGER` 0, `close` drops
    /// whatever is unsent and sends RST instead of FIN, and the socket is
    /// gone at once, with no TIME_WAIT.
    fn reset(&mut self) {
        if let Some(stream) = self.connection.take() {
            // Fails only on a socket that is already broken; dropping it
            // then closes it either way.
            let _ = stream.set_zero_linger();
        }
    }

    /// Ends a connection after its only request, as `--close` says.
    async fn close(&mut self) {
        match self.target.close {
            Close::Fin => self.close_after_server().await,
            Close::Reset => self.reset(),
        }
    }
}

/// Writes the request, then reads the head and exactly `Content-Length`
/// body bytes.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<Reply, ErrorKind> {
    stream
        .write_all(request)
        .await
        .map_err(|error| ErrorKind::from_io(&error))?;
    buffer.clear();
    let head = loop {
        if let Some(head) = parse_head(buffer)? {
            break head;
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return Err(ErrorKind::WrongReply);
        }
        read_more(stream, buffer).await?;
    };
    let total = head.length + head.content_length;
    while buffer.len() < total {
        read_more(stream, buffer).await?;
    }
    // We never pipeline, so bytes beyond the body mean the server sent more
    // than it announced, and the next reply would be misread.
    if buffer.len() > total {
        return Err(ErrorKind::WrongReply);
    }
    Ok(Reply {
        status: head.status,
        bytes: total,
        body: head.content_length,
        server_closes: head.server_closes,
    })
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), ErrorKind> {
    buffer.reserve(4096);
    match stream.read_buf(buffer).await {
        Ok(0) if buffer.is_empty() => Err(ErrorKind::Closed),
        Ok(0) => Err(ErrorKind::ShortReply),
        Ok(_) => Ok(()),
        Err(error) => Err(ErrorKind::from_io(&error)),
    }
}

/// Parses a response head; `Ok(None)` while it is incomplete.
///
/// Strict where a lenient reading would misframe the next reply (RFC 9112
/// section 6.3): the body length must be plain digits, repeated
/// `Content-Length` headers must agree, and a `Transfer-Encoding` (which
/// would override the length) is refused, as our servers never send one.
pub fn parse_head(buffer: &[u8]) -> Result<Option<Head>, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buffer) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ErrorKind::WrongReply),
    };
    let status = response.code.ok_or(ErrorKind::WrongReply)?;
    // HTTP/1.0 closes after the response unless told otherwise.
    let mut server_closes = response.version == Some(0);
    let mut content_length = None;
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).map_err(|_| ErrorKind::WrongReply)?;
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = parse_length(value).ok_or(ErrorKind::WrongReply)?;
            if content_length.is_some_and(|earlier| earlier != parsed) {
                return Err(ErrorKind::WrongReply);
            }
            content_length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ErrorKind::WrongReply);
        } else if header.name.eq_ignore_ascii_case("connection") {
            // A list of tokens: `Connection: keep-alive, Upgrade` is legal.
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    server_closes = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    server_closes = false;
                }
            }
        }
    }
    // Our servers always send Content-Length; without it the end of the body
    // would only be known when the server closes.
    let content_length = content_length.ok_or(ErrorKind::WrongReply)?;
    Ok(Some(Head {
        length,
        status,
        content_length,
        server_closes,
    }))
}

/// `Content-Length = 1*DIGIT` (RFC 9110 section 8.6): `str::parse` alone
/// would also take `+5`.
fn parse_length(value: &str) -> Option<usize> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// One user (or connection): request, optionally think, repeat.
async fn user(
    mut client: HttpClient,
    pacing: Pacing,
    think: Option<DurationRange>,
    recorder: Arc<Recorder>,
    deadline: Instant,
) {
    let _active = recorder.active_guard();
    loop {
        // With keep-alive the connect happens once, before the first
        // request, and is not part of any request's time. Without it every
        // request pays for its connect, which is the point of measuring it.
        if client.target.keepalive && client.connection.is_none() {
            match connect(client.target.addr, client.target.timeout).await {
                Ok(stream) => client.connection = Some(stream),
                Err(kind) => {
                    recorder.record_error(kind);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let intended = pacing.next_start(deadline).await;
        let sent = Instant::now();
        let ticket = recorder.begin(intended, sent);
        let outcome = tokio::time::timeout(client.target.timeout, client.request()).await;
        let done = Instant::now();
        drop(ticket);
        match outcome {
            Ok(Ok(reply)) => {
                if reply.status == 200 {
                    let sent_bytes = client.request.len() as u64;
                    let timing = Timing {
                        intended,
                        sent,
                        done,
                    };
                    recorder.record_reply(
                        timing,
                        sent_bytes,
                        reply.bytes as u64,
                        reply.body as u64,
                    );
                } else {
                    recorder.record_error(ErrorKind::BadStatus);
                }
                if !client.target.keepalive {
                    client.close().await;
                } else if reply.server_closes {
                    client.close_after_server().await;
                }
            }
            Ok(Err(kind)) => {
                recorder.record_error(kind);
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
            Err(_elapsed) => {
                recorder.record_error(ErrorKind::Timeout);
                client.connection = None;
            }
        }
        if let Some(think) = think {
            tokio::time::sleep(think.pick()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello";

    /// The head of a response the test knows to be valid and whole.
    fn complete(bytes: &[u8]) -> Head {
        parse_head(bytes).expect("valid").expect("complete")
    }

    #[test]
    fn parses_a_complete_head() {
        let head = complete(PAGE);
        assert_eq!(head.status, 200);
        assert_eq!(head.content_length, 5);
        assert_eq!(head.length, PAGE.len() - 5);
        assert!(!head.server_closes);
    }

    #[test]
    fn waits_for_the_rest_of_a_head() {
        assert_eq!(parse_head(&PAGE[..20]), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
    }

    #[test]
    fn notices_close_and_http_1_0() {
        let close = b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let head = complete(close);
        assert_eq!(head.status, 404);
        assert!(head.server_closes);
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert!(complete(old).server_closes);
        let kept = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!complete(kept).server_closes);
    }

    #[test]
    fn refuses_garbage_and_missing_length() {
        assert_eq!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(ErrorKind::WrongReply)
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"),
            Err(ErrorKind::WrongReply)
        );
    }

    #[test]
    fn refuses_a_length_that_could_misframe_the_next_reply() {
        for head in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert_eq!(parse_head(head), Err(ErrorKind::WrongReply), "{head:?}");
        }
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(
            parse_head(twice).map(|head| head.map(|h| h.content_length)),
            Ok(Some(5))
        );
    }

    #[test]
    fn reads_connection_as_a_list_of_tokens() {
        let head = b"HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\nContent-Length: 0\r\n\r\n";
        assert!(complete(head).server_closes);
    }
}
