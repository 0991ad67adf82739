//! A Docker container's counters read straight from the host's cgroup
//! files: its peak memory (every `REPORT` line) and the CPU time it has
//! used (the event queue paces CPU-heavy functions by it). A file read
//! costs a couple of microseconds; asking the engine would cost a
//! round trip.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Counter;

/// One kind of per-container cgroup file, wherever this host keeps it.
#[derive(Debug)]
pub struct CgroupFile {
    /// The places it may be, for cgroup v2 and v1 with either cgroup driver.
    layouts: &'static [Layout],
    /// The index in `layouts` this host uses, once found: every container
    /// of a host has the same layout.
    found: AtomicUsize,
}

/// Where one layout keeps the file (before and after the container's id,
/// under the cgroup root), and how to read its number.
#[derive(Debug)]
struct Layout {
    before: &'static str,
    after: &'static str,
    parse: fn(&str) -> Option<u64>,
}

/// The most memory the container has used since it started, in bytes.
pub static PEAK_MEMORY: CgroupFile = CgroupFile {
    layouts: &[
        Layout { before: "/system.slice/docker-", after: ".scope/memory.peak", parse: number },
        Layout { before: "/docker/", after: "/memory.peak", parse: number },
        Layout { before: "/memory/docker/", after: "/memory.max_usage_in_bytes", parse: number },
        Layout { before: "/memory/system.slice/docker-", after: ".scope/memory.max_usage_in_bytes", parse: number },
    ],
    found: AtomicUsize::new(usize::MAX),
};

/// The CPU time the container's processes have used, in nanoseconds.
pub static CPU_TIME: CgroupFile = CgroupFile {
    layouts: &[
        Layout { before: "/system.slice/docker-", after: ".scope/cpu.stat", parse: usage_usec },
        Layout { before: "/docker/", after: "/cpu.stat", parse: usage_usec },
        Layout { before: "/cpuacct/docker/", after: "/cpuacct.usage", parse: number },
        Layout { before: "/cpuacct/system.slice/docker-", after: ".scope/cpuacct.usage", parse: number },
        Layout { before: "/cpu,cpuacct/docker/", after: "/cpuacct.usage", parse: number },
        Layout { before: "/cpu,cpuacct/system.slice/docker-", after: ".scope/cpuacct.usage", parse: number },
    ],
    found: AtomicUsize::new(usize::MAX),
};

/// The host's cgroup file system: `/sys/fs/cgroup`, or where
/// `LAMBDABOX_HOST_CGROUP` says it is mounted (a controller in a container
/// sees its own cgroups at `/sys/fs/cgroup`, not its siblings').
pub fn host_root() -> &'static str {
    static ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| std::env::var("LAMBDABOX_HOST_CGROUP").unwrap_or_else(|_| "/sys/fs/cgroup".into()))
}

impl CgroupFile {
    /// A reader of container `id`'s counter under cgroup root `root`, with
    /// its file opened once; `None` when the host has no such file.
    pub fn reader(&'static self, root: &str, id: &str) -> Option<Counter> {
        let open = |l: &Layout| std::fs::File::open(format!("{root}{}{id}{}", l.before, l.after)).ok();
        let (file, layout) = match self.layouts.get(self.found.load(Ordering::Relaxed)) {
            Some(layout) => (open(layout)?, layout),
            None => self.layouts.iter().enumerate().find_map(|(i, layout)| {
                let file = open(layout)?;
                self.found.store(i, Ordering::Relaxed);
                Some((file, layout))
            })?,
        };
        let parse = layout.parse;
        Some(Box::new(move || {
            // Cgroup files answer each read from offset 0 with their current
            // value; the number this needs is on the first line.
            let mut buf = [0u8; 64];
            let n = file.read_at(&mut buf, 0).ok()?;
            parse(std::str::from_utf8(&buf[..n]).ok()?.lines().next()?)
        }))
    }
}

/// A file holding one decimal number.
fn number(line: &str) -> Option<u64> {
    line.trim().parse().ok()
}

/// cgroup v2's `cpu.stat`, whose first line is `usage_usec N`: in nanoseconds.
fn usage_usec(line: &str) -> Option<u64> {
    let usec: u64 = line.strip_prefix("usage_usec ")?.trim().parse().ok()?;
    usec.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_read_in_each_layouts_unit() {
        assert_eq!(number("1234\n"), Some(1234));
        assert_eq!(usage_usec("usage_usec 1500"), Some(1_500_000));
        assert_eq!(usage_usec("user_usec 1500"), None);
        assert_eq!(number("max"), None);
    }

    #[test]
    fn the_layout_found_is_remembered_and_read_again_on_each_call() {
        static FILE: CgroupFile = CgroupFile {
            layouts: &[
                Layout { before: "/a/", after: "/n", parse: number },
                Layout { before: "/b/x-", after: ".scope/cpu.stat", parse: usage_usec },
            ],
            found: AtomicUsize::new(usize::MAX),
        };
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("b/x-c1.scope");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cpu.stat"), "usage_usec 7\nuser_usec 5\n").unwrap();
        let root = root.path().to_str().unwrap();
        let read = FILE.reader(root, "c1").expect("found in the second layout");
        assert_eq!(read(), Some(7000));
        assert_eq!(FILE.found.load(Ordering::Relaxed), 1);
        std::fs::write(dir.join("cpu.stat"), "usage_usec 9\n").unwrap();
        assert_eq!(read(), Some(9000), "each call reads the current value");
        assert!(FILE.reader(root, "c2").is_none(), "a container without the file has no reader");
    }
}
