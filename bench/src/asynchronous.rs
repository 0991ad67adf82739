//! Asynchronous invocations, measured in the same run as the synchronous
//! figures they are compared with: how fast events are accepted (each
//! committed to disk before its 202), how long a 202 takes, and how fast the
//! queue then runs them, against synchronous throughput at the same
//! concurrency on the same function.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::load::{self, Throughput};
use crate::{Ctx, Plan};

/// Concurrent senders, as the targets are stated.
pub const SENDERS: usize = 16;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct AsyncResults {
    /// Events sent back to back by [`SENDERS`] callers; `latency` is the 202's.
    pub accepted: Throughput,
    /// Events the queue ran, from the first send until the queue was empty.
    pub executed: u64,
    pub executed_seconds: f64,
    pub executed_per_sec: f64,
    /// Synchronous invocations at [`SENDERS`], same function, same controller.
    pub sync: Throughput,
}

pub async fn measure(plan: &Plan, ctx: &Ctx, memory_mb: u32, client: &load::Client) -> Result<AsyncResults> {
    let lambdabox = ctx.controller("lambdabox-async", &[]).await?;
    lambdabox.create_function("echo", memory_mb, None).await?;
    let target = lambdabox.target(client, "echo")?;
    load::first_success(&target, Instant::now(), Duration::from_millis(20), Duration::from_secs(60))
        .await
        .context("lambdabox never answered")?;
    load::throughput(&target, SENDERS, plan.warm_up, plan.throughput_max).await;
    tokio::time::sleep(plan.settle).await;
    let sync = load::throughput(&target, SENDERS, plan.throughput, plan.throughput_max).await;
    step!("async: synchronous at c{SENDERS}: {:.0} inv/s, p50 / p99 {}", sync.per_sec, p50_p99(&sync));

    let events = target.events();
    let began = Instant::now();
    let accepted = load::throughput(&events, SENDERS, plan.throughput, plan.throughput_max).await;
    let executed = accepted.ok + accepted.late;
    step!(
        "async: {:.0} events/s accepted at c{SENDERS} ({} errors); 202 p50 / p99 {}; waiting for the queue to run them",
        accepted.per_sec,
        accepted.errors,
        p50_p99(&accepted)
    );
    let deadline = began + Duration::from_secs(300);
    while lambdabox.queued_events().await? > 0 {
        if Instant::now() > deadline {
            bail!("the event queue did not empty within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let executed_seconds = began.elapsed().as_secs_f64();
    let executed_per_sec = executed as f64 / executed_seconds;
    step!("async: {executed} events run in {executed_seconds:.1} s: {executed_per_sec:.0} events/s");
    lambdabox.stop().await?;
    Ok(AsyncResults { accepted, executed, executed_seconds, executed_per_sec, sync })
}

/// "p50 / p99 ms" of a window's latencies, or "-" without any.
fn p50_p99(t: &Throughput) -> String {
    t.latency.as_ref().map_or("-".into(), |p| format!("{:.2} / {:.2} ms", p.p50_ms, p.p99_ms))
}
