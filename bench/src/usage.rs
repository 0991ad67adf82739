//! Where the CPU of a measurement went: the load generator, the
//! controller, the containers.
//!
//! On a 2-core box the throughput targets are limits of CPU, not of
//! waiting, so a ratio alone says little about what to change. Read before
//! and after a window, these counters split each invocation's CPU between
//! the parties: the load generator is this process's one runtime thread
//! (the bench runs a current-thread runtime; the `--noise` spinner is a
//! thread of its own and not counted), the controller all of its threads,
//! the containers their cgroups' CPU time (the runtime, and for the RIE
//! the emulator too).

use std::ops::Sub;
use std::time::Duration;

use lambdabox::backend::{cgroup, Counter};
use serde::Serialize;

/// The counters of one measurement's parties.
pub struct Parties {
    controller: Option<u32>,
    containers: Vec<Counter>,
}

/// CPU time used so far by each party (`controller` is `None` for a
/// baseline, which has none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    generator: Duration,
    controller: Option<Duration>,
    containers: Duration,
}

/// CPU per invocation in one window, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PerCall {
    pub generator_us: f64,
    /// `None` for a baseline, which has no controller.
    pub controller_us: Option<f64>,
    pub containers_us: f64,
}

impl Parties {
    /// A controller process (`None` for a baseline) and the Docker ids of
    /// the containers serving the measured function. A container whose
    /// cgroup cannot be found is left out.
    pub fn new(controller: Option<u32>, docker_ids: &[String]) -> Parties {
        let root = cgroup::host_root();
        let containers = docker_ids.iter().filter_map(|id| cgroup::CPU_TIME.reader(root, id)).collect();
        Parties { controller, containers }
    }

    pub fn read(&self) -> Usage {
        Usage {
            generator: cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID),
            controller: self.controller.map(process_cpu),
            containers: Duration::from_nanos(self.containers.iter().filter_map(|c| c()).sum()),
        }
    }
}

impl Usage {
    /// This usage (since an earlier reading) spread over `calls`.
    pub fn per_call(&self, calls: u64) -> PerCall {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / calls.max(1) as f64;
        PerCall {
            generator_us: us(self.generator),
            controller_us: self.controller.map(us),
            containers_us: us(self.containers),
        }
    }
}

impl Sub for Usage {
    type Output = Usage;
    fn sub(self, earlier: Usage) -> Usage {
        Usage {
            generator: self.generator.saturating_sub(earlier.generator),
            controller: self.controller.zip(earlier.controller).map(|(now, then)| now.saturating_sub(then)),
            containers: self.containers.saturating_sub(earlier.containers),
        }
    }
}

impl PerCall {
    /// The mean of several windows' figures.
    pub fn mean(all: &[PerCall]) -> Option<PerCall> {
        let n = all.len() as f64;
        let avg = |f: fn(&PerCall) -> f64| all.iter().map(f).sum::<f64>() / n;
        (!all.is_empty()).then(|| PerCall {
            generator_us: avg(|p| p.generator_us),
            controller_us: all[0].controller_us.map(|_| avg(|p| p.controller_us.unwrap_or(0.0))),
            containers_us: avg(|p| p.containers_us),
        })
    }

    pub fn total_us(&self) -> f64 {
        self.generator_us + self.controller_us.unwrap_or(0.0) + self.containers_us
    }
}

impl std::fmt::Display for PerCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.0} µs/call (load generator {:.0}", self.total_us(), self.generator_us)?;
        if let Some(c) = self.controller_us {
            write!(f, ", controller {c:.0}")?;
        }
        write!(f, ", containers {:.0})", self.containers_us)
    }
}

/// Time on CPU of process `pid`, every thread it has had included (0 once
/// it has exited). Summing its threads' `schedstat` would lose the threads
/// that ended between two readings, as tokio's idle blocking threads do.
fn process_cpu(pid: u32) -> Duration {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return Duration::ZERO };
    let mut clock: libc::clockid_t = 0;
    // SAFETY: writes one clockid_t to the valid pointer given.
    if unsafe { libc::clock_getcpuclockid(pid, &mut clock) } != 0 {
        return Duration::ZERO;
    }
    cpu_clock(clock)
}

/// A CPU-time clock's reading, in nanoseconds.
fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: writes one timespec to the valid pointer given.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spin until this thread has had `cpu` of CPU time (at most 10 s).
    fn burn(cpu: Duration) {
        let (start, wall) = (cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID), std::time::Instant::now());
        while cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID) - start < cpu && wall.elapsed() < Duration::from_secs(10) {
            std::hint::black_box(0u64);
        }
    }

    #[test]
    fn this_threads_cpu_time_grows_and_splits_per_call() {
        let parties = Parties::new(Some(std::process::id()), &[]);
        let before = parties.read();
        // A thread that ends between two readings stays counted.
        std::thread::spawn(|| burn(Duration::from_millis(20))).join().unwrap();
        burn(Duration::from_millis(30));
        let used = parties.read() - before;
        assert!(used.generator >= Duration::from_millis(30), "{used:?}");
        // The process's clock includes both threads' time.
        assert!(used.controller.unwrap() >= used.generator + Duration::from_millis(19), "{used:?}");
        let per = used.per_call(10);
        assert!(per.generator_us >= 3_000.0);
        assert_eq!(PerCall::mean(&[per, per]).unwrap().generator_us, per.generator_us);
        assert!(PerCall::mean(&[]).is_none());
    }
}
