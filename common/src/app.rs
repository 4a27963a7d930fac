//! The app interface: what the HTTP engine hands a complete request to, and
//! what it gets back. This is the workspace's WSGI.
//!
//! WSGI calls `app(environ, start_response)`: `environ` is a dict with the
//! method, path, headers and a file for the body; the app calls
//! `start_response(status, headers)` and returns an iterable of byte
//! strings. Here the request is an [`http::Request`], the answer an
//! [`http::Response`] whose [`Body`] is either bytes or an open file that
//! the driver sends with `sendfile` (WSGI's `wsgi.file_wrapper`), and one
//! thing WSGI lacks: a response may be *due later* ([`Reply::At`]). That
//! is how the fake database waits without blocking anybody: the app does
//! not sleep, it says when its answer is ready, and the engine keeps that
//! instant as one more deadline. The engine stays sans-IO; the app never
//! touches the socket.
//!
//! The engine owns the connection-level headers: `Server`, `Date`,
//! `Content-Length`, `Connection` and `X-Worker`. An app sets the status,
//! `Content-Type` and anything else (`Allow`, `Location`). An app may set
//! `Connection: close` to have the connection closed after its response.
//!
//! Three apps: [`LabPage`] (the fake-DB page of http mode), [`FileServer`]
//! (files mode) and [`TowerApp`] (any `tower::Service`, such as the axum
//! Router of [`crate::quote`]).

use std::fmt::{Debug, Display};
use std::fs::File;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use http::header::{ALLOW, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;

use crate::files::{self, Refusal, Resolved, Root};
use crate::sendfile::FileRange;

/// A request as apps see it. The engine reads and discards request bodies
/// (no mode needs one), so the body is `()`.
pub type Request = http::Request<()>;
/// A response as apps give it.
pub type Response = http::Response<Body>;

// ANCHOR: interface
/// An app: called once per complete request, on the thread that serves the
/// connection. It must not block for long: in 06 and 07 that thread serves
/// every other connection too.
pub trait App: Send + Sync + Debug {
    fn call(&self, request: Request, now: Instant) -> Reply;
}

/// What an app answers.
#[derive(Debug)]
pub enum Reply {
    /// Send this now.
    Now(Response),
    /// Send this at the given instant (the fake DB's answer). The engine
    /// reads no further request of this connection until then, which keeps
    /// pipelined answers in order.
    At(Instant, Response),
}

/// A response body.
#[derive(Debug)]
pub enum Body {
    Bytes(Vec<u8>),
    /// An open file, sent by the driver straight from the file to the
    /// socket, in pieces no larger than the output bound.
    File(FileBody),
}
// ANCHOR_END: interface

impl Body {
    /// What `Content-Length` says.
    pub fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(file) => file.remaining,
        }
    }

    /// Nothing (left) to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ANCHOR: file_body
/// A file being sent: what is left of it. The engine does not read it:
/// the driver sends it from the file to the socket ([`FileBody::next`],
/// `sendfile(2)`, see [`crate::sendfile`]), so a 2 GiB file costs no more
/// memory than a small one, and its bytes never pass through the server.
#[derive(Debug)]
pub struct FileBody {
    file: File,
    /// Where the next byte to send is in the file.
    offset: u64,
    remaining: u64,
}

impl FileBody {
    /// `length` is what the response announced in `Content-Length`.
    pub fn new(file: File, length: u64) -> FileBody {
        FileBody {
            file,
            offset: 0,
            remaining: length,
        }
    }

    /// The next piece to send: at most `limit` bytes (the output bound).
    pub fn next(&self, limit: usize) -> FileRange<'_> {
        FileRange {
            file: &self.file,
            offset: self.offset,
            length: limit.min(usize::try_from(self.remaining).unwrap_or(usize::MAX)),
        }
    }

    /// `count` bytes of [`FileBody::next`] went out.
    pub fn advance(&mut self, count: usize) {
        let count = (count as u64).min(self.remaining);
        self.offset += count;
        self.remaining -= count;
    }

    /// Whether every announced byte was sent.
    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }
}
// ANCHOR_END: file_body

/// A short text response such as `404 Not Found\n`, the body every error
/// of the engine has too.
pub fn text_response(status: StatusCode) -> Response {
    let body = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = http::Response::new(Body::Bytes(body.into_bytes()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// 405 with the `Allow` header RFC 9110 requires.
fn method_not_allowed() -> Response {
    let mut response = text_response(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

fn is_get_or_head(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// The lab's page, the lab page app serves after the fake DB answered.
pub const INDEX_PAGE: &str =
    "<html><head><title>Success</title></head><body>Index page</body></html>";

// ANCHOR: lab_page
/// The lab's page behind a fake database: `GET /` and `HEAD /` are
/// answered after `db_latency`; the wait is a deadline, not a sleep.
#[derive(Debug, Clone, Copy)]
pub struct LabPage {
    pub db_latency: Duration,
}

impl App for LabPage {
    fn call(&self, request: Request, now: Instant) -> Reply {
        if request.uri().path() != "/" {
            return Reply::Now(text_response(StatusCode::NOT_FOUND));
        }
        if !is_get_or_head(request.method()) {
            return Reply::Now(method_not_allowed());
        }
        let mut page = http::Response::new(Body::Bytes(INDEX_PAGE.into()));
        page.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        Reply::At(now + self.db_latency, page)
    }
}
// ANCHOR_END: lab_page

// ANCHOR: file_server
/// Files mode: the document root's files, by the rules of [`crate::files`].
#[derive(Debug)]
pub struct FileServer {
    pub root: Arc<Root>,
}

impl App for FileServer {
    fn call(&self, request: Request, _now: Instant) -> Reply {
        if !is_get_or_head(request.method()) {
            return Reply::Now(method_not_allowed());
        }
        // The target as sent (`/a%20b.txt?v=1`): `files` decodes it itself.
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |target| target.as_str());
        Reply::Now(match files::resolve(&self.root, target) {
            Ok(Resolved::File {
                file,
                length,
                content_type,
            }) => {
                let mut response = http::Response::new(Body::File(FileBody::new(file, length)));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                response
            }
            Ok(Resolved::AddSlash { location }) => {
                let mut response = text_response(StatusCode::MOVED_PERMANENTLY);
                match HeaderValue::try_from(location) {
                    Ok(location) => {
                        response.headers_mut().insert(LOCATION, location);
                        response
                    }
                    Err(_) => text_response(StatusCode::BAD_REQUEST),
                }
            }
            Err(Refusal::BadRequest) => text_response(StatusCode::BAD_REQUEST),
            Err(Refusal::Forbidden) => text_response(StatusCode::FORBIDDEN),
            Err(Refusal::NotFound) => text_response(StatusCode::NOT_FOUND),
        })
    }
}
// ANCHOR_END: file_server

// ANCHOR: tower_app
/// Hosts any `tower::Service` (an axum Router, for one) as an app. Each
/// request is turned into an `http::Request<B>`, the service's future is
/// run to completion right here on the serving thread ([`block_on`]), and
/// the response body is collected into bytes. This is what a WSGI server
/// does with a synchronous framework: call it and wait.
pub struct TowerApp<S, B> {
    service: S,
    /// The request body type the service takes (axum: `axum::body::Body`).
    body: PhantomData<fn() -> B>,
}

impl<S, B> TowerApp<S, B> {
    pub fn new(service: S) -> TowerApp<S, B> {
        TowerApp {
            service,
            body: PhantomData,
        }
    }
}

impl<S, B, ResponseBody> App for TowerApp<S, B>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + Sync,
    S::Error: Display,
    B: Default,
    ResponseBody: HttpBody,
    ResponseBody::Error: Display,
{
    fn call(&self, request: Request, _now: Instant) -> Reply {
        // `Service::call` takes `&mut self`; services are cheap to clone
        // (axum's Router is an `Arc` inside), so each request gets its own.
        let mut service = self.service.clone();
        let request = request.map(|()| B::default());
        let outcome = block_on(async move {
            std::future::poll_fn(|context| service.poll_ready(context)).await?;
            service.call(request).await
        });
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                log::warn!("the app failed: {error}");
                return Reply::Now(text_response(StatusCode::INTERNAL_SERVER_ERROR));
            }
        };
        let (parts, body) = response.into_parts();
        match block_on(body.collect()) {
            Ok(collected) => Reply::Now(http::Response::from_parts(
                parts,
                Body::Bytes(collected.to_bytes().to_vec()),
            )),
            Err(error) => {
                log::warn!("the app's response body failed: {error}");
                Reply::Now(text_response(StatusCode::INTERNAL_SERVER_ERROR))
            }
        }
    }
}

impl<S, B> Debug for TowerApp<S, B> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TowerApp")
    }
}
// ANCHOR_END: tower_app

// ANCHOR: block_on
/// Runs a future to completion on this thread: poll it; if it is not
/// ready, sleep (park) until its waker is called, then poll again. This is
/// the smallest executor there is. It has no reactor and no timers, so a
/// future that waits for a tokio socket or `tokio::time::sleep` would park
/// forever (in fact tokio panics: "no reactor running"). Handlers that only
/// compute, like the quote, are ready on the first poll.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::park();
    }
}

/// A waker that unparks the thread blocked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}
// ANCHOR_END: block_on

#[cfg(test)]
mod tests;
