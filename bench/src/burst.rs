//! A burst: [`SIZE`] concurrent first invocations of a function that has no
//! container yet, on a controller with no prewarmed pool (`--prewarm 0`), so
//! every one of them waits for containers the burst itself makes start;
//! against the same burst on container-per-call ([`SIZE`] RIE containers
//! started at once, each answering one invocation, as `sam local invoke`
//! run [`SIZE`] times in parallel). Timed from the first request to the
//! last answer.
//!
//! Then, on the same controller, the same burst on a second function of the
//! same runtime and size, once the prewarmed pool has grown from the first
//! burst's demand (or stopped growing): what a burst costs when bursts
//! have been seen before (a redeploy, a sibling function).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::load::{self, Percentiles, Target};
use crate::rie::{self, RieSpec};
use crate::Ctx;

/// Concurrent first invocations, as the target is stated.
pub const SIZE: usize = 64;
/// The function's MemorySize: Lambda's default, what a new user deploys.
pub const MEMORY_MB: u32 = 128;
/// Longest the bench waits for the prewarmed pool to grow after the first
/// burst; it also stops waiting once the pool has not grown for [`SETTLED`].
const GROWTH_WAIT: Duration = Duration::from_secs(120);
const SETTLED: Duration = Duration::from_secs(5);

/// Longest one member of the burst may take, all retries included (RIE
/// containers refuse connections until their server is up).
const BUDGET: Duration = Duration::from_secs(120);

/// One side's burst.
#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    /// From the first request to the last answer (successful or not).
    pub last_answer_ms: f64,
    /// Each successful invocation's time from the burst's start.
    pub answers: Option<Percentiles>,
    pub errors: u64,
    pub first_error: Option<String>,
}

/// Both sides.
#[derive(Debug, Clone, Serialize)]
pub struct BurstResults {
    pub lambdabox: Burst,
    /// Containers the controller held after the burst.
    pub lambdabox_containers: usize,
    /// The second burst, on another function, once the pool had grown.
    pub lambdabox_again: Burst,
    /// Prewarmed containers ready when the second burst began.
    pub prewarmed_before_again: usize,
    pub container_per_call: Burst,
}

pub async fn measure(ctx: &Ctx, spec: &RieSpec, client: &load::Client) -> Result<BurstResults> {
    // Nothing ready at first; the pool may grow from the burst (to the default cap).
    let grow: &[&str] = if ctx.grows_prewarm { &["--prewarm-max", "64"] } else { &[] };
    let lambdabox = ctx.controller("lambdabox-burst", &[&["--prewarm", "0"], grow].concat()).await?;
    lambdabox.create_function("burst", MEMORY_MB, None).await?;
    let ours = invoke_at_once(lambdabox.target(client, "burst")?).await;
    let lambdabox_containers = lambdabox.containers().await?;
    describe("lambdabox", &ours);
    lambdabox.create_function("burst-again", MEMORY_MB, None).await?;
    let prewarmed_before_again = if ctx.grows_prewarm { wait_for_growth(&lambdabox).await? } else { 0 };
    step!("burst again: {prewarmed_before_again} prewarmed containers ready");
    let again = invoke_at_once(lambdabox.target(client, "burst-again")?).await;
    describe("lambdabox again", &again);
    lambdabox.stop().await?;
    let theirs = container_per_call(ctx, spec, client).await?;
    describe("container-per-call", &theirs);
    Ok(BurstResults {
        lambdabox: ours,
        lambdabox_containers,
        lambdabox_again: again,
        prewarmed_before_again,
        container_per_call: theirs,
    })
}

/// [`SIZE`] invocations of `target` at once.
async fn invoke_at_once(target: Target) -> Burst {
    let began = Instant::now();
    let calls: Vec<_> = (0..SIZE)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { target.invoke().await.map(|_| began.elapsed()).map_err(|e| load::describe(&e)) })
        })
        .collect();
    tally(calls).await
}

/// Wait until the controller's prewarmed pool holds [`SIZE`] containers or,
/// once it has started growing, has not grown for [`SETTLED`] (at most
/// [`GROWTH_WAIT`]); how many it holds.
async fn wait_for_growth(controller: &crate::controller::Controller) -> Result<usize> {
    let began = Instant::now();
    let (mut seen, mut since) = (controller.prewarmed().await?, Instant::now());
    while seen < SIZE && (seen == 0 || since.elapsed() < SETTLED) && began.elapsed() < GROWTH_WAIT {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = controller.prewarmed().await?;
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
    }
    Ok(seen)
}

/// [`SIZE`] RIE containers created and started at once, each invoked until
/// its first answer; all removed afterwards.
async fn container_per_call(ctx: &Ctx, spec: &RieSpec, client: &load::Client) -> Result<Burst> {
    let mut ports = HashSet::new();
    while ports.len() < SIZE {
        ports.insert(rie::free_port()?);
    }
    let began = Instant::now();
    let calls: Vec<_> = ports
        .into_iter()
        .map(|port| {
            let (rie, spec, client) = (ctx.rie.clone(), spec.clone(), client.clone());
            tokio::spawn(async move {
                let container = rie.start(&spec, port).await.map_err(|e| load::describe(&e))?;
                let answer = match Target::new(&client, &container.invoke_url()) {
                    Ok(target) => load::first_success(&target, began, Duration::from_millis(5), BUDGET).await,
                    Err(e) => Err(e.into()),
                };
                let _ = rie.remove(&container.id).await;
                answer.map_err(|e| load::describe(&e))
            })
        })
        .collect();
    Ok(tally(calls).await)
}

/// The answers' times and the failures; the last answer is the latest
/// success (a failure is counted, not timed).
async fn tally(calls: Vec<tokio::task::JoinHandle<Result<Duration, String>>>) -> Burst {
    let (mut answers, mut errors, mut first_error) = (Vec::new(), 0, None);
    for call in calls {
        let outcome = call.await.unwrap_or_else(|e| Err(e.to_string()));
        match outcome {
            Ok(at) => answers.push(at),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let last = answers.iter().max().copied().unwrap_or_default();
    Burst { last_answer_ms: last.as_secs_f64() * 1000.0, answers: Percentiles::of(&answers), errors, first_error }
}

fn describe(who: &str, b: &Burst) {
    step!(
        "burst {who}: {SIZE} first invocations: last answer after {:.0} ms, median {:.0} ms; {} errors{}",
        b.last_answer_ms,
        b.answers.as_ref().map_or(f64::NAN, |p| p.p50_ms),
        b.errors,
        b.first_error.as_ref().map_or(String::new(), |e| format!(" (first: {e})"))
    );
}
