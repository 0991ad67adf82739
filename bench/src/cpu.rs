//! The CPU model (`--cpu-limit`): does a small function answer as fast as a
//! large one on an idle box, and do two CPU-bound functions divide a busy
//! box in their memory ratio?
//!
//! Each mode runs on a controller of its own: warm latency of the echo
//! handler at [`SMALL_MB`] and at [`LARGE_MB`] on the same controller, one
//! after the other; then [`CALLERS`] callers per function invoking a
//! handler that spins on the CPU for [`SPIN_MS`] of wall time and says how
//! much CPU time it got, all at once, so both cores are contended for the
//! whole window. What each function got is the sum of those CPU times.
//! Then the same callers once more, each with one invocation spinning the
//! whole window: continuous contention, which is what the target is about.
//! Short invocations give the small function more than its weight, because
//! each begins with a wake-up and the scheduler places a task that slept
//! near its run queue's least virtual time (README, "CPU model").

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::controller::Controller;
use crate::load::{self, Latency, Target};
use crate::{Ctx, Plan};

/// Lambda's default MemorySize, and the size that buys one vCPU.
pub const SMALL_MB: u32 = 128;
pub const LARGE_MB: u32 = 1769;
/// The pause between two sizes' turns of warm calls: several half-lives
/// (32 ms) of the kernel's running average of a group's load.
const TURN_REST: Duration = Duration::from_millis(250);
/// Concurrent callers per CPU-bound function: two each, so either function
/// alone could use both cores and only the weights decide the split.
pub const CALLERS: usize = 2;
/// Wall time each CPU-bound invocation spins for: long against the gaps
/// between invocations, well inside the default 3 s timeout.
pub const SPIN_MS: u64 = 500;
/// How far ahead the continuous run's common start is set: time for every
/// caller's invocation to reach its container first.
const START_AHEAD: Duration = Duration::from_millis(500);

/// Spins until `ms` of wall time have passed; answers with the CPU time
/// this process got meanwhile. Given `start` (Unix time, seconds), it first
/// sleeps until then, so that invocations sent one after another all spin
/// over the same stretch of time (containers share the host's clock).
const SPIN: &str = "import time\n\n\
def handler(event, context):\n    \
    if 'start' in event:\n        \
        time.sleep(max(0.0, event['start'] - time.time()))\n    \
    end = time.monotonic() + event['ms'] / 1000.0\n    \
    cpu = time.process_time()\n    \
    n = 0\n    \
    while time.monotonic() < end:\n        \
        n += 1\n    \
    return {'cpu_ms': (time.process_time() - cpu) * 1000.0, 'iterations': n}\n";

/// One mode's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ModeResults {
    pub mode: &'static str,
    pub small: Latency,
    pub large: Latency,
    /// Invocations of [`SPIN_MS`] back to back.
    pub contention: Contention,
    /// One invocation per caller spinning the whole window.
    pub continuous: Contention,
}

/// What the two CPU-bound functions got while competing.
#[derive(Debug, Clone, Serialize)]
pub struct Contention {
    pub seconds: f64,
    pub small_cpu_ms: f64,
    pub large_cpu_ms: f64,
    /// small / large CPU time, against [`Contention::memory_ratio`].
    pub cpu_ratio: f64,
    pub memory_ratio: f64,
    pub invocations: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Both modes, and the RIE's warm latency from the same run.
#[derive(Debug, Clone, Serialize)]
pub struct CpuResults {
    pub weighted: ModeResults,
    pub strict: ModeResults,
    pub rie: Latency,
}

pub async fn measure(plan: &Plan, ctx: &Ctx, rie: Latency, client: &load::Client) -> Result<CpuResults> {
    let weighted = measure_mode(plan, ctx, "weighted", client).await?;
    let strict = measure_mode(plan, ctx, "strict", client).await?;
    Ok(CpuResults { weighted, strict, rie })
}

async fn measure_mode(plan: &Plan, ctx: &Ctx, mode: &'static str, client: &load::Client) -> Result<ModeResults> {
    let lambdabox = ctx.controller(&format!("lambdabox-cpu-{mode}"), &["--cpu-limit", mode]).await?;
    let mut echoes = Vec::new();
    for mb in [SMALL_MB, LARGE_MB] {
        let name = format!("echo{mb}");
        lambdabox.create_function(&name, mb, None).await?;
        echoes.push(lambdabox.target(client, &name)?);
    }
    let mut latencies = warm_latencies(plan, &echoes).await?;
    let p99 = |l: &Latency| l.percentiles.as_ref().map_or(f64::NAN, |p| p.p99_ms);
    step!(
        "cpu {mode}: warm p99 {:.2} ms at {SMALL_MB} MB, {:.2} ms at {LARGE_MB} MB",
        p99(&latencies[0]),
        p99(&latencies[1])
    );
    let targets = spinners(plan, &lambdabox, client).await?;
    let window_ms = u64::try_from(plan.contention.as_millis()).unwrap_or(u64::MAX);
    let contention = contend(&targets, plan.contention, &format!(r#"{{"ms":{SPIN_MS}}}"#)).await;
    contention.report(mode, &format!("{SPIN_MS} ms invocations"));
    // Without a common start, the callers' invocations would begin a few
    // milliseconds apart, and whichever function began first would have
    // both cores alone meanwhile.
    let start = (std::time::SystemTime::now() + START_AHEAD).duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
    let continuous = contend(&targets, Duration::ZERO, &format!(r#"{{"ms":{window_ms},"start":{start:.3}}}"#)).await;
    continuous.report(mode, &format!("one {window_ms} ms invocation per caller"));
    lambdabox.stop().await?;
    let large = latencies.pop().expect("two");
    let small = latencies.pop().expect("two");
    Ok(ModeResults { mode, small, large, contention, continuous })
}

/// Each target's first answer (a cold start), then its warm-up, then the
/// measured runs in turns of a quarter each (A B B A…): the sizes' tails
/// are compared as a ratio, so both come from the same minutes. A turn
/// is a run of its own, not one call each in alternation, and turns are
/// [`TURN_REST`] apart: the kernel weighs a container's group by its
/// recent load, so a 1,769 MB container busy a moment ago would cut the
/// 128 MB one's share of its parent group, a contention between the two
/// sizes this row is not about (the contended rows below are).
async fn warm_latencies(plan: &Plan, targets: &[Target]) -> Result<Vec<Latency>> {
    for target in targets {
        load::first_success(target, Instant::now(), Duration::from_millis(20), Duration::from_secs(60))
            .await
            .with_context(|| format!("{} never answered", target.url()))?;
        load::latency(target, plan.warm_up_n, plan.latency_budget).await;
    }
    let targets: Vec<&Target> = targets.iter().collect();
    let turns = load::Turns { each: plan.latency_n.div_ceil(4), rest: TURN_REST };
    Ok(load::in_turns(&targets, plan.latency_n, plan.latency_budget * 2, turns).await)
}

/// The two CPU-bound functions, deployed with a timeout that lets one
/// invocation spin the whole window, each with one container per caller
/// started (and warm) before any window opens.
async fn spinners(plan: &Plan, lambdabox: &Controller, client: &load::Client) -> Result<Vec<(usize, Target)>> {
    let zip = crate::runtimes::zip(&[("app.py", SPIN)])?;
    let timeout_s = plan.contention.as_secs() + 30;
    let mut targets = Vec::new();
    for mb in [SMALL_MB, LARGE_MB] {
        let name = format!("spin{mb}");
        lambdabox.create_function_from(&name, crate::controller::RUNTIME, "app.handler", &zip, mb).await?;
        lambdabox.set_timeout(&name, timeout_s).await?;
        let target = lambdabox.target(client, &name)?;
        let warm = spin_all(&[(0, target.clone())], CALLERS, Duration::ZERO, r#"{"ms":10}"#).await;
        if let Some(e) = warm.first_error {
            anyhow::bail!("warming {name}: {e}");
        }
        targets.push((targets.len(), target));
    }
    Ok(targets)
}

/// [`CALLERS`] callers on each function at once, invoking with `payload`
/// back to back until `window` has passed (at least once each).
async fn contend(targets: &[(usize, Target)], window: Duration, payload: &str) -> Contention {
    let began = Instant::now();
    let tally = spin_all(targets, CALLERS, window, payload).await;
    let (small, large) = (tally.cpu_ms[0], tally.cpu_ms[1]);
    Contention {
        seconds: began.elapsed().as_secs_f64(),
        small_cpu_ms: small,
        large_cpu_ms: large,
        cpu_ratio: if large > 0.0 { small / large } else { f64::NAN },
        memory_ratio: f64::from(SMALL_MB) / f64::from(LARGE_MB),
        invocations: tally.invocations,
        errors: tally.errors,
        first_error: tally.first_error,
    }
}

impl Contention {
    /// The progress line for one contended run of `mode`, `how` invoked.
    fn report(&self, mode: &str, how: &str) {
        step!(
            "cpu {mode}: contended for {:.1} s, {how}: {SMALL_MB} MB got {:.0} ms of CPU, {LARGE_MB} MB {:.0} ms: \
             ratio {:.3} (memory ratio {:.3}; {} invocations, {} errors)",
            self.seconds,
            self.small_cpu_ms,
            self.large_cpu_ms,
            self.cpu_ratio,
            self.memory_ratio,
            self.invocations,
            self.errors
        );
    }
}

/// CPU time got per target (by index), and how the calls went.
#[derive(Debug, Default)]
struct SpinTally {
    cpu_ms: [f64; 2],
    invocations: u64,
    errors: u64,
    first_error: Option<String>,
}

/// `callers` concurrent callers per target, each invoking with `payload`
/// back to back until `window` has passed (at least once each; bounded by
/// the window and the invocation timeout). The callers start in turns
/// across the targets, not all of one target's first.
async fn spin_all(targets: &[(usize, Target)], callers: usize, window: Duration, payload: &str) -> SpinTally {
    let deadline = Instant::now() + window;
    let tasks: Vec<_> = (0..callers)
        .flat_map(|_| targets.iter().cloned())
        .map(|(i, target)| {
            let payload = payload.to_owned();
            tokio::spawn(async move {
                let mut tally = SpinTally::default();
                loop {
                    tally.invocations += 1;
                    match target.call(&payload).await {
                        Ok((_, answer)) => tally.cpu_ms[i] += cpu_ms(&answer),
                        Err(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert_with(|| load::describe(&e));
                        }
                    }
                    if Instant::now() >= deadline {
                        return tally;
                    }
                }
            })
        })
        .collect();
    let mut total = SpinTally::default();
    for task in tasks {
        let t = task.await.unwrap_or_else(|_| SpinTally { errors: 1, ..SpinTally::default() });
        total.cpu_ms[0] += t.cpu_ms[0];
        total.cpu_ms[1] += t.cpu_ms[1];
        total.invocations += t.invocations;
        total.errors += t.errors;
        total.first_error = total.first_error.or(t.first_error);
    }
    total
}

fn cpu_ms(answer: &[u8]) -> f64 {
    serde_json::from_slice::<serde_json::Value>(answer).ok().and_then(|v| v["cpu_ms"].as_f64()).unwrap_or(0.0)
}
