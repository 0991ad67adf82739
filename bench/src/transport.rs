//! The remote transport's cost on one host: warm latency of the same
//! function through a controller on the local transport (socket handoff,
//! bind-mounted code) and one on `--transport remote` (init dials out and
//! relays every byte over one multiplexed connection), in the same run.
//! `--only transport`; with the Kubernetes testbed up (`eval "$(
//! scripts/k8s-testbed.sh env)"`), a third controller on `--backend
//! kubernetes` measures what pods add: the network between node and
//! controller, and a pod's start.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::load::{self, Latency};
use crate::{Ctx, Plan};

const PYTHON: &str = "def handler(event, context):\n    return event\n";

/// Sequential warm invocations, and the first (cold) one, per controller.
#[derive(Debug, Clone, Serialize)]
pub struct TransportResults {
    pub local: Measured,
    pub remote: Measured,
    /// With `KUBECONFIG` and `LBXK_CONTROLLER_ADDR` set (the testbed's
    /// `env`): a controller on `--backend kubernetes`.
    pub kubernetes: Option<Measured>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub warm: Latency,
    /// The first invocation after the function was created, container
    /// start included (no prewarmed container: `--prewarm 0`).
    pub cold_ms: f64,
}

pub async fn measure(plan: &Plan, ctx: &Ctx, memory_mb: u32, client: &load::Client) -> Result<TransportResults> {
    let kube_listen = match (std::env::var_os("KUBECONFIG"), std::env::var("LBXK_CONTROLLER_ADDR")) {
        (Some(_), Ok(addr)) => Some(format!("{addr}:0")),
        _ => None,
    };
    let mut variants: Vec<(&str, Vec<&str>)> =
        vec![("lambdabox-local", vec![]), ("lambdabox-remote", vec!["--transport", "remote"])];
    if let Some(listen) = &kube_listen {
        let flags = vec!["--backend", "kubernetes", "--remote-listen", listen, "--kube-pull-policy", "Never"];
        variants.push(("lambdabox-kubernetes", flags));
    }
    let mut measured = Vec::new();
    for (name, mut extra) in variants {
        extra.extend(["--prewarm", "0"]);
        let lambdabox = ctx.controller(name, &extra).await?;
        let zip = crate::runtimes::zip(&[("app.py", PYTHON)])?;
        lambdabox.create_function_from("t", crate::controller::RUNTIME, "app.handler", &zip, memory_mb).await?;
        let target = lambdabox.target(client, "t")?;
        let started = Instant::now();
        load::first_success(&target, started, Duration::from_millis(20), Duration::from_secs(60))
            .await
            .with_context(|| format!("{name} never answered"))?;
        let cold_ms = started.elapsed().as_secs_f64() * 1000.0;
        load::latency(&target, plan.warm_up_n, plan.latency_budget).await;
        let warm = load::latency(&target, plan.latency_n, plan.latency_budget).await;
        let pct = |f: fn(&load::Percentiles) -> f64| warm.percentiles.as_ref().map_or(f64::NAN, f);
        step!(
            "transport: {name}: cold {cold_ms:.0} ms; warm p50 {:.3} ms, p99 {:.3} ms ({} errors)",
            pct(|p| p.p50_ms),
            pct(|p| p.p99_ms),
            warm.errors
        );
        measured.push(Measured { warm, cold_ms });
        lambdabox.stop().await?;
    }
    let kubernetes = if kube_listen.is_some() { measured.pop() } else { None };
    let (remote, local) = (measured.pop().expect("two"), measured.pop().expect("two"));
    Ok(TransportResults { local, remote, kubernetes })
}
