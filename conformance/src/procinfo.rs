//! What the checks ask about a server process: is it alive, which are its
//! children, how many threads, how much memory, CPU and descriptors.
//!
//! Linux answers everything from `/proc` (read with the `procfs` crate).
//! Elsewhere the liveness, the children and the memory come from `ps`,
//! whose `-o` columns POSIX fixes; threads, CPU ticks and descriptors have
//! no portable source, so those answers are `None` there and the checks
//! that need them say "skipped" instead of guessing. The `ps` path is
//! compiled and tested on Linux too, against `/proc`.

use std::collections::BTreeSet;
use std::process::Command;

/// Whether a process with this pid exists and is not a zombie.
pub fn process_exists(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    return linux::state(pid).is_some_and(|state| !matches!(state, 'Z' | 'X'));
    #[cfg(not(target_os = "linux"))]
    return ps::processes()
        .iter()
        .any(|row| row.pid == pid && !row.is_zombie());
}

/// The living (not zombie) processes whose parent is `parent`.
pub fn children_of(parent: u32) -> BTreeSet<u32> {
    #[cfg(target_os = "linux")]
    return linux::children_of(parent);
    #[cfg(not(target_os = "linux"))]
    return ps::children_of(parent);
}

/// Resident memory of one process, in bytes.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    return linux::resident_bytes(pid);
    #[cfg(not(target_os = "linux"))]
    return ps::kib(pid, "rss").map(|kib| kib * 1024);
}

/// Virtual memory (address space) of one process, in bytes.
pub fn virtual_bytes(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    return linux::virtual_bytes(pid);
    #[cfg(not(target_os = "linux"))]
    return ps::kib(pid, "vsz").map(|kib| kib * 1024);
}

/// How many threads a process has (`None`: not knowable on this system).
pub fn thread_count(pid: u32) -> Option<usize> {
    #[cfg(target_os = "linux")]
    return linux::thread_count(pid);
    #[cfg(not(target_os = "linux"))]
    return unknown(pid);
}

/// User plus system CPU time of a process, in clock ticks (`None`: not
/// knowable on this system).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    return linux::cpu_ticks(pid);
    #[cfg(not(target_os = "linux"))]
    return unknown(pid);
}

/// How often the threads of a process and of its children went to sleep
/// and were woken again (voluntary context switches, summed): a server
/// that only waits adds next to none, one that polls a timer adds one per
/// tick. `None`: not knowable on this system.
pub fn wakeups(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    return linux::wakeups(pid);
    #[cfg(not(target_os = "linux"))]
    return unknown(pid);
}

/// Clock ticks per second, the unit of [`cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    #[cfg(target_os = "linux")]
    return procfs::ticks_per_second();
    #[cfg(not(target_os = "linux"))]
    return 100;
}

/// How many descriptors a process has open (`None`: not knowable on this
/// system).
pub fn open_descriptors(pid: u32) -> Option<usize> {
    #[cfg(target_os = "linux")]
    return linux::open_descriptors(pid);
    #[cfg(not(target_os = "linux"))]
    return unknown(pid);
}

/// The numbers of the descriptors a process has open: where the next
/// ones will go, since a new descriptor takes the lowest free number.
pub fn descriptor_numbers(pid: u32) -> Option<BTreeSet<i32>> {
    #[cfg(target_os = "linux")]
    return linux::descriptor_numbers(pid);
    #[cfg(not(target_os = "linux"))]
    return unknown(pid);
}

/// No answer on this system.
#[cfg(not(target_os = "linux"))]
fn unknown<T>(_pid: u32) -> Option<T> {
    None
}

/// Prints that part of a check is skipped on this system: to stderr
/// directly, since the test harness hides `eprintln!` of passing tests.
pub fn report_skip(check: &str, what: &str) {
    report_skip_because(
        check,
        &format!("{what} cannot be measured on this system (needs /proc)"),
    );
}

/// Prints that part of a check, or all of it, is skipped, and why.
pub fn report_skip_because(check: &str, reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {check}: {reason}");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeSet;

    use procfs::process::{Process, all_processes};

    fn process(pid: u32) -> Option<Process> {
        Process::new(i32::try_from(pid).ok()?).ok()
    }

    pub fn state(pid: u32) -> Option<char> {
        Some(process(pid)?.stat().ok()?.state)
    }

    pub fn children_of(parent: u32) -> BTreeSet<u32> {
        let Ok(processes) = all_processes() else {
            return BTreeSet::new();
        };
        processes
            .filter_map(|process| process.ok()?.stat().ok())
            .filter(|stat| {
                u32::try_from(stat.ppid).is_ok_and(|ppid| ppid == parent)
                    && !matches!(stat.state, 'Z' | 'X')
            })
            .filter_map(|stat| u32::try_from(stat.pid).ok())
            .collect()
    }

    pub fn resident_bytes(pid: u32) -> Option<u64> {
        Some(process(pid)?.stat().ok()?.rss * procfs::page_size())
    }

    pub fn virtual_bytes(pid: u32) -> Option<u64> {
        Some(process(pid)?.stat().ok()?.vsize)
    }

    pub fn thread_count(pid: u32) -> Option<usize> {
        usize::try_from(process(pid)?.stat().ok()?.num_threads).ok()
    }

    pub fn cpu_ticks(pid: u32) -> Option<u64> {
        let stat = process(pid)?.stat().ok()?;
        Some(stat.utime + stat.stime)
    }

    pub fn open_descriptors(pid: u32) -> Option<usize> {
        process(pid)?.fd_count().ok()
    }

    pub fn descriptor_numbers(pid: u32) -> Option<BTreeSet<i32>> {
        let descriptors = process(pid)?.fd().ok()?;
        // One closed while we list them is simply not there.
        Some(descriptors.flatten().map(|info| info.fd).collect())
    }

    pub fn wakeups(pid: u32) -> Option<u64> {
        let mut total = 0;
        for pid in std::iter::once(pid).chain(children_of(pid)) {
            for task in process(pid)?.tasks().ok()?.flatten() {
                // A thread that exited meanwhile has no status: skip it.
                let status = task.status().ok();
                total += status
                    .and_then(|status| status.voluntary_ctxt_switches)
                    .unwrap_or(0);
            }
        }
        Some(total)
    }
}

/// The portable source: `ps` with POSIX's `-o` columns (empty headers by
/// `=`), the same on Linux, macOS and the BSDs.
pub mod ps {
    use super::{BTreeSet, Command};

    /// One line of `ps -A -o pid=,ppid=,stat=`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Row {
        pub pid: u32,
        pub ppid: u32,
        /// The state letters, e.g. `S`, `Ss`, `Z`.
        pub stat: String,
    }

    impl Row {
        pub fn is_zombie(&self) -> bool {
            self.stat.starts_with(['Z', 'X'])
        }
    }

    /// Every process, as `ps` sees it; empty if `ps` cannot run.
    pub fn processes() -> Vec<Row> {
        let Some(output) = run(&["-A", "-o", "pid=,ppid=,stat="]) else {
            return Vec::new();
        };
        output
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                Some(Row {
                    pid: fields.next()?.parse().ok()?,
                    ppid: fields.next()?.parse().ok()?,
                    stat: fields.next()?.to_owned(),
                })
            })
            .collect()
    }

    pub fn children_of(parent: u32) -> BTreeSet<u32> {
        processes()
            .into_iter()
            .filter(|row| row.ppid == parent && !row.is_zombie())
            .map(|row| row.pid)
            .collect()
    }

    /// A column in KiB (`rss`, `vsz`) of one process.
    pub fn kib(pid: u32, column: &str) -> Option<u64> {
        let output = run(&["-o", &format!("{column}="), "-p", &pid.to_string()])?;
        output.trim().parse().ok()
    }

    fn run(args: &[&str]) -> Option<String> {
        let output = Command::new("ps").args(args).output().ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The portable `ps` answers agree with /proc on Linux, so the path
    /// other systems use is not untested code.
    #[test]
    fn ps_agrees_with_proc() {
        let me = std::process::id();
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("start sleep");
        let child_pid = child.id();

        assert!(process_exists(me));
        assert!(
            ps::processes()
                .iter()
                .any(|row| row.pid == me && !row.is_zombie())
        );
        assert!(children_of(me).contains(&child_pid));
        assert!(ps::children_of(me).contains(&child_pid));

        // Sizes of the `sleep`, not of this process, whose other test
        // threads allocate between the two reads; and only once it sleeps,
        // so its start-up (the loader mapping libraries) is over.
        let started = std::time::Instant::now();
        while linux::state(child_pid) != Some('S') {
            assert!(started.elapsed().as_secs() < 5, "sleep never slept");
            std::thread::yield_now();
        }
        let rss = resident_bytes(child_pid).expect("rss from /proc");
        let ps_rss = ps::kib(child_pid, "rss").expect("rss from ps") * 1024;
        assert!(
            ps_rss.abs_diff(rss) < rss / 2,
            "ps says {ps_rss} B resident, /proc {rss} B"
        );
        let virtual_size = virtual_bytes(child_pid).expect("vsize from /proc");
        let ps_virtual = ps::kib(child_pid, "vsz").expect("vsz from ps") * 1024;
        assert!(ps_virtual.abs_diff(virtual_size) < virtual_size / 2);

        child.kill().expect("kill sleep");
        // Killed but not yet reaped: a zombie, which neither counts.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while process_exists(child_pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!process_exists(child_pid), "a zombie is not alive");
        assert!(!ps::children_of(me).contains(&child_pid), "nor for ps");
        child.wait().expect("reap sleep");
        assert!(thread_count(me).is_some_and(|threads| threads >= 1));
        assert!(open_descriptors(me).is_some_and(|fds| fds >= 3));
        assert!(cpu_ticks(me).is_some());
    }
}
