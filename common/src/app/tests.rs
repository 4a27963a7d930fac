//! The apps and the tower bridge on their own, without an engine.

use std::fs;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

use super::*;

fn request(method: &str, target: &str) -> Request {
    http::Request::builder()
        .method(method)
        .uri(target)
        .body(())
        .expect("a valid request")
}

fn now_response(reply: Reply) -> Response {
    match reply {
        Reply::Now(response) => response,
        Reply::At(..) => panic!("expected an answer now"),
    }
}

fn bytes(response: &Response) -> &[u8] {
    match response.body() {
        Body::Bytes(bytes) => bytes,
        Body::File(_) => panic!("expected bytes"),
    }
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

#[test]
fn the_lab_page_is_due_after_the_db_latency() {
    let app = LabPage {
        db_latency: Duration::from_millis(300),
    };
    let now = Instant::now();
    for method in ["GET", "HEAD"] {
        match app.call(request(method, "/?q=1"), now) {
            Reply::At(due, page) => {
                assert_eq!(due, now + Duration::from_millis(300));
                assert_eq!(page.status(), StatusCode::OK);
                assert_eq!(bytes(&page), crate::app::INDEX_PAGE.as_bytes());
                assert_eq!(
                    header(&page, "content-type"),
                    Some("text/html; charset=utf-8")
                );
            }
            Reply::Now(response) => panic!("{method}: no DB wait: {response:?}"),
        }
    }
    let missing = now_response(app.call(request("GET", "/x"), now));
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(bytes(&missing), b"404 Not Found\n");
    let post = now_response(app.call(request("POST", "/"), now));
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&post, "allow"), Some("GET, HEAD"));
}

fn file_server() -> (tempfile::TempDir, FileServer) {
    let dir = tempfile::tempdir().expect("a temp dir");
    fs::create_dir(dir.path().join("dir")).expect("mkdir");
    fs::write(dir.path().join("dir/a b.css"), "body {}").expect("write");
    let root = Arc::new(Root::open(dir.path()).expect("a root"));
    (dir, FileServer { root })
}

#[test]
fn the_file_server_answers_by_the_rules_of_files() {
    let (_dir, app) = file_server();
    let now = Instant::now();
    for method in ["GET", "HEAD"] {
        let found = now_response(app.call(request(method, "/dir/a%20b.css?v=2"), now));
        assert_eq!(found.status(), StatusCode::OK);
        assert_eq!(header(&found, "content-type"), Some("text/css"));
        assert!(matches!(found.body(), Body::File(_)));
        assert_eq!(found.body().len(), 7);
    }
    let moved = now_response(app.call(request("GET", "/dir"), now));
    assert_eq!(moved.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(header(&moved, "location"), Some("/dir/"));
    for (method, target, status) in [
        ("GET", "/dir/", StatusCode::FORBIDDEN),
        ("GET", "/../etc/passwd", StatusCode::FORBIDDEN),
        ("GET", "/nope", StatusCode::NOT_FOUND),
        ("GET", "/%zz", StatusCode::BAD_REQUEST),
        ("POST", "/dir/a%20b.css", StatusCode::METHOD_NOT_ALLOWED),
        ("DELETE", "/nope", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let response = now_response(app.call(request(method, target), now));
        assert_eq!(response.status(), status, "{method} {target}");
    }
}

#[test]
fn a_file_body_comes_in_pieces_no_larger_than_the_limit() {
    let mut temp = tempfile::tempfile().expect("a temp file");
    let content: Vec<u8> = (0..100_000u32).map(|index| (index % 251) as u8).collect();
    temp.write_all(&content).expect("write");
    let mut body = FileBody::new(temp, content.len() as u64);
    assert_eq!(body.next(0).length, 0, "no room, nothing");
    let mut sent = Vec::new();
    while !body.is_done() {
        let range = body.next(7000);
        assert!(range.length <= 7000, "never more than the limit");
        let mut piece = vec![0; range.length];
        let read = range.read(&mut piece).expect("read");
        sent.extend_from_slice(&piece[..read]);
        body.advance(read);
    }
    assert_eq!(sent, content);
}

fn quote_app() -> TowerApp<axum::Router, axum::body::Body> {
    TowerApp::new(crate::quote::router())
}

#[test]
fn the_bridge_serves_the_axum_quote() {
    let app = quote_app();
    let response = now_response(app.call(request("GET", "/quote"), Instant::now()));
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let quote: serde_json::Value = serde_json::from_slice(bytes(&response)).expect("JSON");
    assert_eq!(quote["author"], "Grace Hopper");
    assert_eq!(
        quote["quote"],
        "I've always been more interested in the future than in the past."
    );
}

#[test]
fn the_bridge_passes_axums_own_answers_through() {
    let app = quote_app();
    let now = Instant::now();
    let head = now_response(app.call(request("HEAD", "/quote"), now));
    assert_eq!(head.status(), StatusCode::OK);
    assert!(bytes(&head).is_empty(), "axum drops the body of HEAD");
    let post = now_response(app.call(request("POST", "/quote"), now));
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = header(&post, "allow").expect("405 says what is allowed");
    assert!(allow.contains("GET"), "{allow}");
    let missing = now_response(app.call(request("GET", "/quotes"), now));
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// A service that always fails, as a misbehaving framework might.
#[derive(Clone)]
struct Failing;

impl tower::Service<http::Request<()>> for Failing {
    type Response = http::Response<String>;
    type Error = &'static str;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Err("boom"))
    }
}

#[test]
fn a_failing_service_is_a_500() {
    let app: TowerApp<Failing, ()> = TowerApp::new(Failing);
    let response = now_response(app.call(request("GET", "/"), Instant::now()));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// Pending on its first poll; another thread wakes it a little later.
struct WokenLater {
    started: bool,
    done: Arc<AtomicBool>,
}

impl Future for WokenLater {
    type Output = &'static str;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done.load(Ordering::SeqCst) {
            return Poll::Ready("woken");
        }
        if !self.started {
            self.started = true;
            let done = Arc::clone(&self.done);
            let waker = context.waker().clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                done.store(true, Ordering::SeqCst);
                waker.wake();
            });
        }
        Poll::Pending
    }
}

#[test]
fn block_on_sleeps_until_woken() {
    let future = WokenLater {
        started: false,
        done: Arc::new(AtomicBool::new(false)),
    };
    assert_eq!(block_on(future), "woken");
    assert_eq!(block_on(async { 6 * 7 }), 42);
}
