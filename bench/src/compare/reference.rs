//! nginx as the `files` scenario's reference row: the server the lab's
//! static-file assignment is measured against, started the way the models
//! are (a process group of its own, stopped with SIGTERM, killed on drop).
//!
//! It runs with one worker process, as the single-threaded models do, and
//! with `sendfile on`, its default for files: a model that copies through
//! user space is compared with one that does not.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, anyhow};

use super::scenarios::{FileKind, IDLE_TIMEOUT};
use super::server::ModelServer;

/// Where nginx is: on the PATH, or where Debian puts it (`/usr/sbin` is not
/// on every user's PATH).
pub fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let debian = PathBuf::from("/usr/sbin/nginx");
        debian.is_file().then_some(debian)
    })
}

/// The document root both nginx and the models serve in the `files`
/// scenario: a 4 KiB HTML page and a 1 MiB file, made once per comparison
/// in a scratch folder (with nginx's configuration and logs beside it) that
/// is removed when dropped.
#[derive(Debug)]
pub struct DocumentRoot {
    scratch: PathBuf,
    pub path: PathBuf,
}

impl DocumentRoot {
    pub fn create() -> anyhow::Result<Self> {
        let scratch = std::env::temp_dir().join(format!("loadgen-compare-{}", std::process::id()));
        let path = scratch.join("docs");
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let root = DocumentRoot { scratch, path };
        for file in FileKind::ALL {
            let target = root.path.join(file.file_name());
            std::fs::write(&target, contents(file))
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        Ok(root)
    }
}

impl Drop for DocumentRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A file's bytes: an HTML page of exactly its size, or bytes that do not
/// compress (a simple generator; the same on every run).
fn contents(file: FileKind) -> Vec<u8> {
    match file {
        FileKind::Small => {
            let head = "<!doctype html>\n<html><head><title>small</title></head><body><p>";
            let tail = "</p></body></html>\n";
            let filler = file.bytes() - head.len() - tail.len();
            format!("{head}{}{tail}", "x".repeat(filler)).into_bytes()
        }
        FileKind::Large => {
            let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
            (0..file.bytes())
                .map(|_| {
                    // xorshift64: enough to defeat compression, not a secret.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 56) as u8
                })
                .collect()
        }
    }
}

/// nginx's configuration: one worker, no access log, files from `docs`,
/// keep-alive as long as the models' idle timeout, and every path it writes
/// under `prefix`, so it runs without touching the system's nginx.
pub fn nginx_config(prefix: &Path, docs: &Path, addr: SocketAddr) -> String {
    let prefix = prefix.display();
    format!(
        "worker_processes 1;\n\
         daemon off;\n\
         pid {prefix}/nginx.pid;\n\
         error_log {prefix}/error.log warn;\n\
         worker_rlimit_nofile 20000;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n    \
             access_log off;\n    \
             sendfile on;\n    \
             keepalive_requests 1000000;\n    \
             keepalive_timeout {}s;\n    \
             types {{ text/html html; application/octet-stream bin; }}\n    \
             client_body_temp_path {prefix}/body;\n    \
             proxy_temp_path {prefix}/proxy;\n    \
             fastcgi_temp_path {prefix}/fastcgi;\n    \
             uwsgi_temp_path {prefix}/uwsgi;\n    \
             scgi_temp_path {prefix}/scgi;\n    \
             server {{\n        \
                 listen {addr} backlog=4096;\n        \
                 root {};\n    \
             }}\n\
         }}\n",
        IDLE_TIMEOUT.as_secs(),
        docs.display()
    )
}

/// Starts nginx on a free port over `docs`; its configuration and logs go
/// in a folder `nginx` next to the document root.
pub fn start_nginx(
    binary: &Path,
    docs: &Path,
    timeout: Duration,
) -> anyhow::Result<(ModelServer, Vec<String>)> {
    let prefix = docs.parent().unwrap_or(docs).join("nginx");
    std::fs::create_dir_all(&prefix)
        .with_context(|| format!("cannot create {}", prefix.display()))?;
    // nginx wants a port number, not 0: take a free one from the kernel.
    // Another program could take it before nginx binds it; then nginx
    // fails to start and the cell says so.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("no free port for nginx")?;
    let config = prefix.join("nginx.conf");
    std::fs::write(&config, nginx_config(&prefix, docs, addr))
        .with_context(|| format!("cannot write {}", config.display()))?;
    let args: Vec<String> = vec![
        "-p".to_string(),
        prefix.display().to_string(),
        "-e".to_string(),
        prefix.join("error.log").display().to_string(),
        "-c".to_string(),
        config.display().to_string(),
    ];
    let mut command = Command::new(binary);
    command.args(&args);
    let server =
        harness::Server::spawn_listening(command, addr, timeout).map_err(|error| anyhow!(error))?;
    Ok((ModelServer::from_harness(server)?, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_have_their_sizes_and_the_large_one_does_not_repeat() {
        for file in FileKind::ALL {
            assert_eq!(contents(file).len(), file.bytes(), "{}", file.name());
        }
        let large = contents(FileKind::Large);
        let distinct = large.iter().collect::<std::collections::HashSet<_>>().len();
        assert_eq!(distinct, 256, "every byte value occurs");
        assert_ne!(large[..4096], large[4096..8192]);
    }

    #[test]
    fn nginx_serves_the_root_with_one_worker_on_the_port() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 4242));
        let text = nginx_config(Path::new("/p"), Path::new("/docs"), addr);
        assert!(text.contains("worker_processes 1;"));
        assert!(text.contains("listen 127.0.0.1:4242 backlog=4096;"));
        assert!(text.contains("root /docs;"));
        assert!(text.contains("error_log /p/error.log"));
    }
}
