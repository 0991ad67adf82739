//! `--noise`: a CPU-bound load on one core for the whole run, both sides'
//! measurements included, so the figures say how lambdabox and its
//! baselines hold up on a box that is doing other work (a build, another
//! service) rather than only on a quiet one.
//!
//! One thread pinned to the last CPU spins until the run ends, or for
//! [`LIMIT`] at most, so a run that is killed or hangs cannot leave a core
//! burning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest any run keeps the core busy (a full run takes 10–20 min).
const LIMIT: Duration = Duration::from_secs(45 * 60);

/// The running load; stops when dropped.
#[derive(Debug)]
pub struct Noise {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Noise {
    /// Start spinning on the last CPU.
    pub fn start() -> Noise {
        let cpu = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("noise".into())
            .spawn(move || {
                pin_to(cpu);
                spin(&flag, Instant::now() + LIMIT);
            })
            .ok();
        step!("noise: one thread spinning on CPU {cpu} for the whole run (at most {} min)", LIMIT.as_secs() / 60);
        Noise { stop, thread }
    }
}

impl Drop for Noise {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Keep this thread on `cpu`, best effort (without it, the load is still
/// one core's worth, wherever the scheduler puts it).
fn pin_to(cpu: usize) {
    // SAFETY: `cpu_set_t` is plain data, valid when zeroed; CPU_SET writes
    // inside it (cpu < CPU_SETSIZE on any machine this runs on), and
    // sched_setaffinity(0, ..) only reads it, for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Integer work the compiler cannot drop, checking the flag and the
/// deadline every few milliseconds.
fn spin(stop: &AtomicBool, deadline: Instant) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        std::hint::black_box(x);
    }
}
