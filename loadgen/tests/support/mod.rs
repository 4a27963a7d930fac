//! Tiny servers for the tests, each on 127.0.0.1:0 in its own thread with
//! its own single-threaded runtime, so the load generator under test cannot
//! starve them. They live until the test process ends. And the model
//! binaries, built for bench's end-to-end tests, which include this file
//! (`#[path]`) rather than keep a copy.

// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use loadgen::{CommonConfig, Report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Timing tests run one at a time: the machine has two shared cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs one load in a fresh runtime, alone.
pub fn run_alone<F: Future>(load: F) -> F::Output {
    let _alone = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the load generator")
        .block_on(load)
}

/// Settings for a short run against `addr`.
pub fn common(addr: SocketAddr, duration: Duration) -> CommonConfig {
    CommonConfig::new(addr, duration)
}

/// Starts a server thread whose connections are handled by `serve`.
pub fn start_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    listener
        .set_nonblocking(true)
        .expect("tokio needs a non-blocking listener");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the test server");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let listener = TcpListener::from_std(listener).expect("register the listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::task::spawn_local(serve(stream));
            }
        });
    });
    addr
}

/// A server stall: from `after` past the first request, for `length`,
/// every reply waits until the stall is over (like a GC pause or a full
/// lock would make it).
#[derive(Debug)]
pub struct Stall {
    pub after: Duration,
    pub length: Duration,
    first_request: OnceLock<Instant>,
}

impl Stall {
    pub fn new(after: Duration, length: Duration) -> Arc<Self> {
        Arc::new(Stall {
            after,
            length,
            first_request: OnceLock::new(),
        })
    }

    async fn wait(&self) {
        let first = *self.first_request.get_or_init(Instant::now);
        let (begins, ends) = (first + self.after, first + self.after + self.length);
        let now = Instant::now();
        if now >= begins && now < ends {
            tokio::time::sleep_until(tokio::time::Instant::from_std(ends)).await;
        }
    }
}

const PAGE: &str = "<html><head><title>Success</title></head><body>Index page</body></html>";

/// An HTTP/1.1 keep-alive server whose every reply comes `delay` after the
/// request, optionally with a stall.
pub fn start_http_server(delay: Duration, stall: Option<Arc<Stall>>) -> SocketAddr {
    start_server(move |stream| serve_http(stream, delay, stall.clone()))
}

async fn serve_http(mut stream: TcpStream, delay: Duration, stall: Option<Arc<Stall>>) {
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{PAGE}",
        PAGE.len()
    );
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let head_end = loop {
            if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break position + 4;
            }
            match stream.read_buf(&mut buffer).await {
                Ok(1..) => {}
                _ => return,
            }
        };
        buffer.drain(..head_end);
        tokio::time::sleep(delay).await;
        if let Some(stall) = &stall {
            stall.wait().await;
        }
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// An echo server; with `corrupt`, it flips the first byte of every chunk
/// it sends back.
pub fn start_echo_server(corrupt: bool) -> SocketAddr {
    start_server(move |stream| serve_echo(stream, corrupt))
}

async fn serve_echo(mut stream: TcpStream, corrupt: bool) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let count = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(count) => count,
        };
        if corrupt {
            buffer[0] ^= 0xff;
        }
        if stream.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

/// A port on which nobody listens (bound a moment ago, then released).
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .local_addr()
        .expect("a bound listener has an address")
}

/// Prints the summary, so a failing test shows what was measured.
pub fn show(report: &Report) {
    eprintln!("{}", report.summary_table());
}

/// Builds the model `packages` (a no-op when they are up to date) in this
/// test's profile and returns the folder their binaries are in. The models
/// belong to other packages, so Cargo does not build them for loadgen's
/// tests by itself.
pub fn built_models(packages: &[&str]) -> PathBuf {
    // This test binary lives in <target>/<profile>/deps/.
    let test_binary = std::env::current_exe().expect("the test knows its own path");
    let bin_dir = test_binary
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in <target>/<profile>/deps")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet"]);
    for package in packages {
        command.args(["-p", package]);
    }
    if bin_dir.ends_with("release") {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "cargo build {packages:?} failed");
    bin_dir
}
