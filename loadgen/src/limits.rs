//! The client's own limits: open files and local ports. A load generator
//! that runs out of either measures itself, not the server, so it raises
//! what it can and warns about the rest before the run.

use serde::{Deserialize, Serialize};

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// File descriptors kept free for stdio, the runtime, and /proc reads.
const SPARE_DESCRIPTORS: u64 = 64;

/// Where a run took place, for the JSON report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Environment {
    /// CPU cores the load generator may use (the server shares them).
    pub cores: usize,
    /// Kernel version, e.g. `6.1.0`.
    pub kernel: String,
    /// Open-file limit of the load generator after raising it.
    pub fd_limit_soft: u64,
    pub fd_limit_hard: u64,
    /// `net.ipv4.ip_local_port_range`: ports a client connection can use.
    pub local_port_range: Option<[u16; 2]>,
    pub loadgen_version: String,
}

/// The environment and the warnings that apply to a run with this many
/// simultaneous connections.
#[derive(Clone, Debug)]
pub struct Preflight {
    pub environment: Environment,
    pub warnings: Vec<String>,
}

/// Raises the soft open-file limit to the hard one (the soft default of
/// 1024 is far below what a C10K test needs) and returns (soft, hard).
pub fn raise_open_file_limit() -> (u64, u64) {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return (0, 0);
    };
    // `rlim_t` is signed on FreeBSD, unsigned on Linux and macOS.
    #[allow(clippy::useless_conversion)]
    let count = |limit| u64::try_from(limit).unwrap_or(u64::MAX);
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return (count(hard), count(hard));
    }
    (count(soft), count(hard))
}

/// The range of local ports the kernel picks from for outgoing connections.
pub fn local_port_range() -> Option<[u16; 2]> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(low)), Some(Ok(high))) => Some([low, high]),
        _ => None,
    }
}

#[cfg(target_os = "linux")]
pub fn kernel_version() -> String {
    match procfs::KernelVersion::current() {
        Ok(version) => format!("{}.{}.{}", version.major, version.minor, version.patch),
        Err(_) => "unknown".to_string(),
    }
}

/// Kernel version elsewhere: what `uname -r` says (e.g. Darwin's `24.1.0`).
#[cfg(not(target_os = "linux"))]
pub fn kernel_version() -> String {
    std::process::Command::new("uname")
        .arg("-r")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Raises the fd limit and checks that `connections` at once fit.
pub fn preflight(connections: u64) -> Preflight {
    let (soft, hard) = raise_open_file_limit();
    let ports = local_port_range();
    let mut warnings = Vec::new();
    if soft > 0 && connections + SPARE_DESCRIPTORS > soft {
        warnings.push(format!(
            "{connections} connections need about {} file descriptors but the open-file \
             limit is {soft} (hard limit {hard}); expect emfile errors",
            connections + SPARE_DESCRIPTORS
        ));
    }
    if let Some([low, high]) = ports {
        let available = u64::from(high.saturating_sub(low)) + 1;
        if connections > available {
            warnings.push(format!(
                "{connections} connections to one server address need {connections} local \
                 ports but ip_local_port_range {low}..{high} has {available}; expect \
                 no_local_port errors"
            ));
        }
    }
    Preflight {
        environment: Environment {
            cores: std::thread::available_parallelism().map_or(1, |cores| cores.get()),
            kernel: kernel_version(),
            fd_limit_soft: soft,
            fd_limit_hard: hard,
            local_port_range: ports,
            loadgen_version: env!("CARGO_PKG_VERSION").to_string(),
        },
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_when_connections_cannot_fit() {
        let huge = preflight(10_000_000);
        assert!(
            huge.warnings
                .iter()
                .any(|warning| warning.contains("file descriptors")),
            "{:?}",
            huge.warnings
        );
        assert!(huge.environment.cores >= 1);
        assert!(huge.environment.fd_limit_soft >= 1);
        assert!(preflight(10).warnings.is_empty());
    }
}
