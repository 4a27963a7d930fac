//! What the server costs while it is under load: memory (RSS), threads,
//! open file descriptors and CPU, read from `/proc` with the `procfs` crate.
//! Linux only: elsewhere `--pid` is refused before the run, saying why.
//!
//! A prefork server is a tree of processes, so every sample adds up the
//! given pid and all its descendants; counting only the parent would make
//! 04-prefork look almost free. CPU is a percentage of one core (200 % =
//! both cores of a 2-core machine busy), like `top` shows it.

use anyhow::bail;
use serde::{Deserialize, Serialize};
#[cfg(target_os = "linux")]
use {
    anyhow::Context,
    procfs::process::{Process, all_processes},
    std::collections::HashMap,
    std::time::Instant,
};

/// One look at a process tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TreeSample {
    /// The process and its descendants that were alive.
    pub processes: u64,
    pub threads: u64,
    pub rss_bytes: u64,
    pub fds: u64,
    /// CPU in user mode since the previous sample, in % of one core; `None`
    /// on the first sample, which only sets the starting point.
    pub cpu_user_percent: Option<f64>,
    /// CPU in the kernel (system calls, TCP) since the previous sample.
    pub cpu_system_percent: Option<f64>,
}

/// What a process tree has spent so far: CPU time and context switches.
/// Two of these, taken at the start and the end of a measurement, give
/// what the server spent on the requests in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    /// The thread gave up the CPU to wait (a blocking read, accept,
    /// sleep, epoll_wait): the model's waiting.
    pub voluntary_switches: u64,
    /// The scheduler took the CPU away (time slice over, another thread
    /// woke): the cost of more runnable threads than cores.
    pub involuntary_switches: u64,
}

impl Spent {
    /// What was spent from `earlier` to `self`. Counters of threads and
    /// processes that ended in between are gone from /proc, so the
    /// switches of short-lived threads (02 without keep-alive) are missed:
    /// those numbers are lower bounds. CPU time is kept by the process.
    pub fn since(&self, earlier: &Spent) -> Spent {
        Spent {
            cpu_user_us: self.cpu_user_us.saturating_sub(earlier.cpu_user_us),
            cpu_system_us: self.cpu_system_us.saturating_sub(earlier.cpu_system_us),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }
}

/// Turns growing CPU tick counters into "% of one core since last time".
#[cfg(target_os = "linux")]
#[derive(Debug)]
struct CpuMeter {
    ticks_per_second: f64,
    previous: Option<(Instant, u64)>,
}

#[cfg(target_os = "linux")]
impl CpuMeter {
    fn new() -> Self {
        CpuMeter {
            ticks_per_second: procfs::ticks_per_second() as f64,
            previous: None,
        }
    }

    fn update(&mut self, now: Instant, ticks: u64) -> Option<f64> {
        let previous = self.previous.replace((now, ticks));
        let (then, previous_ticks) = previous?;
        let seconds = now.duration_since(then).as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
        // A child that exited takes its ticks with it, so the sum can shrink.
        let used = ticks.saturating_sub(previous_ticks) as f64 / self.ticks_per_second;
        Some(100.0 * used / seconds)
    }
}

/// Samples a process and all its descendants, e.g. a prefork server.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct ProcessTreeSampler {
    root: i32,
    page_size: u64,
    user: CpuMeter,
    system: CpuMeter,
}

#[cfg(target_os = "linux")]
impl ProcessTreeSampler {
    /// Fails if there is no process `root`, so a mistyped `--pid` is caught
    /// before the run.
    pub fn new(root: i32) -> anyhow::Result<Self> {
        Process::new(root)
            .and_then(|process| process.stat())
            .with_context(|| format!("no process with pid {root} to watch"))?;
        Ok(ProcessTreeSampler {
            root,
            page_size: procfs::page_size(),
            user: CpuMeter::new(),
            system: CpuMeter::new(),
        })
    }

    pub fn root(&self) -> i32 {
        self.root
    }

    /// What the tree has spent so far: CPU from each process's stat
    /// (which includes its ended threads), context switches summed over
    /// every live thread's status. One read per thread, so this is taken
    /// at the start and the end of a measurement, not every second.
    pub fn spent(&self) -> anyhow::Result<Spent> {
        let per_tick = 1e6 / procfs::ticks_per_second() as f64;
        let mut spent = Spent::default();
        for process in self.tree()? {
            let Ok(stat) = process.stat() else { continue };
            spent.cpu_user_us += (stat.utime as f64 * per_tick) as u64;
            spent.cpu_system_us += (stat.stime as f64 * per_tick) as u64;
            let Ok(tasks) = process.tasks() else { continue };
            for task in tasks.flatten() {
                let Ok(status) = task.status() else { continue };
                spent.voluntary_switches += status.voluntary_ctxt_switches.unwrap_or(0);
                spent.involuntary_switches += status.nonvoluntary_ctxt_switches.unwrap_or(0);
            }
        }
        Ok(spent)
    }

    /// The root process and its descendants. There is no "children of"
    /// lookup in /proc that works everywhere (task/*/children needs a
    /// kernel option), so read every process's parent and walk down.
    fn tree(&self) -> anyhow::Result<Vec<Process>> {
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        let mut processes = HashMap::new();
        for process in all_processes().context("cannot list processes in /proc")? {
            let Ok(process) = process else { continue };
            let Ok(stat) = process.stat() else { continue };
            children.entry(stat.ppid).or_default().push(stat.pid);
            processes.insert(stat.pid, process);
        }
        if !processes.contains_key(&self.root) {
            bail!("process {} has ended", self.root);
        }
        let mut tree = Vec::new();
        let mut to_visit = vec![self.root];
        while let Some(pid) = to_visit.pop() {
            if let Some(process) = processes.remove(&pid) {
                tree.push(process);
            }
            to_visit.extend(children.get(&pid).into_iter().flatten());
        }
        Ok(tree)
    }

    /// Adds up the tree now. Fails once the root process is gone.
    pub fn sample(&mut self) -> anyhow::Result<TreeSample> {
        let now = Instant::now();
        let mut sample = TreeSample::default();
        let (mut user_ticks, mut system_ticks) = (0, 0);
        for process in self.tree()? {
            // A process can exit between two reads; it then counts as gone.
            let Ok(stat) = process.stat() else { continue };
            sample.processes += 1;
            sample.threads += u64::try_from(stat.num_threads).unwrap_or(0);
            sample.rss_bytes += stat.rss * self.page_size;
            sample.fds += process.fd_count().unwrap_or(0) as u64;
            user_ticks += stat.utime;
            system_ticks += stat.stime;
        }
        sample.cpu_user_percent = self.user.update(now, user_ticks);
        sample.cpu_system_percent = self.system.update(now, system_ticks);
        Ok(sample)
    }
}

/// Without /proc there is no process tree to sample: the type cannot be
/// made (its `new` explains), so none of its methods can ever run.
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct ProcessTreeSampler {
    never: std::convert::Infallible,
}

#[cfg(not(target_os = "linux"))]
impl ProcessTreeSampler {
    pub fn new(root: i32) -> anyhow::Result<Self> {
        bail!(
            "cannot watch process {root}: a server's memory, threads and CPU are read from \
             Linux's /proc; on this system run without --pid"
        )
    }

    pub fn root(&self) -> i32 {
        match self.never {}
    }

    pub fn spent(&self) -> anyhow::Result<Spent> {
        match self.never {}
    }

    pub fn sample(&mut self) -> anyhow::Result<TreeSample> {
        match self.never {}
    }
}

/// The load generator's own CPU, user + system, in % of one core. If it is
/// near 100 % per runtime thread, the client is the bottleneck, not the
/// server. (Linux only; `None` elsewhere.)
#[derive(Debug)]
#[cfg_attr(not(target_os = "linux"), derive(Default))]
pub struct OwnCpu {
    #[cfg(target_os = "linux")]
    meter: CpuMeter,
}

#[cfg(target_os = "linux")]
impl Default for OwnCpu {
    fn default() -> Self {
        OwnCpu {
            meter: CpuMeter::new(),
        }
    }
}

#[cfg(target_os = "linux")]
impl OwnCpu {
    pub fn sample(&mut self) -> Option<f64> {
        let stat = Process::myself().and_then(|myself| myself.stat()).ok()?;
        self.meter.update(Instant::now(), stat.utime + stat.stime)
    }
}

#[cfg(not(target_os = "linux"))]
impl OwnCpu {
    pub fn sample(&mut self) -> Option<f64> {
        None
    }
}

/// Sockets in TIME_WAIT on this machine (its network namespace). Whoever
/// closes a TCP connection first keeps it in TIME_WAIT for a minute,
/// holding its port; with a connection per request these pile up and can
/// use up the local port range.
///
/// Read from the one-line summary in `/proc/net/sockstat` (`TCP: ... tw N`),
/// which procfs does not parse. `/proc/net/tcp` would allow filtering by
/// port, but it lists every socket: with 20,000 of them one read took 50 ms
/// of the CPU that the server under test needs.
pub fn time_wait_sockets() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let tcp = text.lines().find(|line| line.starts_with("TCP:"))?;
    let mut words = tcp.split_whitespace();
    words.find(|word| *word == "tw")?;
    words.next()?.parse().ok()
}

/// Reading /proc: Linux's tests only.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Work and waiting show up in what the tree has spent: CPU time for a
    /// busy loop, a voluntary context switch for every sleep.
    #[test]
    fn spent_counts_cpu_time_and_voluntary_switches() {
        let pid = i32::try_from(std::process::id()).expect("a pid fits an i32");
        let sampler = ProcessTreeSampler::new(pid).expect("we exist");
        let before = sampler.spent().expect("readable");
        // Spin for 200 ms of this thread's CPU time, not of the wall clock:
        // on shared cores 200 ms of wall clock can be far less CPU.
        let thread_cpu = || {
            let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_THREAD)
                .expect("getrusage works on this thread");
            let time = |value: nix::sys::time::TimeVal| {
                std::time::Duration::new(value.tv_sec() as u64, value.tv_usec() as u32 * 1000)
            };
            time(usage.user_time()) + time(usage.system_time())
        };
        let busy_until = thread_cpu() + std::time::Duration::from_millis(200);
        let mut spins = 0u64;
        while thread_cpu() < busy_until {
            spins = std::hint::black_box(spins + 1);
        }
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let spent = sampler.spent().expect("readable").since(&before);
        // 200 ms of spinning, counted in 10 ms ticks: well over 100 ms.
        assert!(
            spent.cpu_user_us + spent.cpu_system_us >= 100_000,
            "{spent:?}"
        );
        assert!(spent.voluntary_switches >= 20, "{spent:?}");
    }

    /// The side that closes first keeps the socket in TIME_WAIT: closing
    /// connections from here must show up in the count.
    #[test]
    fn counts_connections_this_side_closed_first() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let before = time_wait_sockets().expect("/proc/net/sockstat has a tw count");
        for _ in 0..20 {
            let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
            let (server_side, _) = listener.accept().expect("accept");
            drop(client); // we close first: our socket waits
            drop(server_side);
        }
        let after = time_wait_sockets().expect("still readable");
        // Ours stay for 60 s; other sockets on the machine may leave
        // TIME_WAIT meanwhile, but not 10 in these few milliseconds.
        assert!(after >= before + 10, "tw {before} -> {after}");
    }
}
