//! The remote transport's cost on one host: warm latency of the same
//! function through a controller on the local transport (socket handoff,
//! bind-mounted code) and one on `--transport remote` (init dials out and
//! relays every byte over one multiplexed connection), in the same run.
//! `--only transport`; what a Kubernetes backend adds on top is the
//! network between node and controller.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::load::{self, Latency};
use crate::{Ctx, Plan};

const PYTHON: &str = "def handler(event, context):\n    return event\n";

/// Sequential warm invocations on each transport.
#[derive(Debug, Clone, Serialize)]
pub struct TransportResults {
    pub local: Latency,
    pub remote: Latency,
}

pub async fn measure(plan: &Plan, ctx: &Ctx, memory_mb: u32, client: &reqwest::Client) -> Result<TransportResults> {
    let mut measured = Vec::new();
    for (name, extra) in [("lambdabox-local", &[][..]), ("lambdabox-remote", &["--transport", "remote"][..])] {
        let lambdabox = ctx.controller(name, extra).await?;
        let zip = crate::runtimes::zip(&[("app.py", PYTHON)])?;
        lambdabox.create_function_from("t", crate::controller::RUNTIME, "app.handler", &zip, memory_mb).await?;
        let target = lambdabox.target(client, "t");
        load::first_success(&target, Instant::now(), Duration::from_millis(20), Duration::from_secs(60))
            .await
            .with_context(|| format!("{name} never answered"))?;
        load::latency(&target, plan.warm_up_n, plan.latency_budget).await;
        measured.push(load::latency(&target, plan.latency_n, plan.latency_budget).await);
        lambdabox.stop().await?;
    }
    let (remote, local) = (measured.pop().expect("two"), measured.pop().expect("two"));
    let pct = |l: &Latency, f: fn(&load::Percentiles) -> f64| l.percentiles.as_ref().map_or(f64::NAN, f);
    step!(
        "transport: warm p50 local {:.3} ms, remote {:.3} ms; p99 local {:.3} ms, remote {:.3} ms ({} + {} errors)",
        pct(&local, |p| p.p50_ms),
        pct(&remote, |p| p.p50_ms),
        pct(&local, |p| p.p99_ms),
        pct(&remote, |p| p.p99_ms),
        local.errors,
        remote.errors
    );
    Ok(TransportResults { local, remote })
}
