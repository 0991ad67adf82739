//! Throughput at concurrency 16 against the RIE at concurrency 1, measured
//! in alternating short windows rather than minutes apart.
//!
//! The main throughput table measures the RIE first and lambdabox's c16 a few
//! minutes later. On a box whose speed drifts (another job starts, the host
//! steals time) the ratio then says as much about *when* each side ran as
//! about the two engines: the same build gave 2.38 and 3.78 in two `--noise`
//! runs, with the same section's synchronous c16 also 22% lower in the first.
//! Here both sides take turns (RIE, lambdabox, lambdabox, RIE, ... so a
//! steady trend falls on both equally). The figure is each side's mean over
//! its windows, so the two throughputs cover the same stretch of the run;
//! each pair's own ratio and their median are kept to show the spread.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::controller::Controller;
use crate::load::{self, Target, Throughput};
use crate::rie::RieSpec;
use crate::usage::{Parties, PerCall};
use crate::{Ctx, Plan};

/// The lambdabox side's concurrency (the target's).
pub const CONCURRENCY: usize = 16;

/// One lambdabox window and the RIE window next to it.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    pub lambdabox: Throughput,
    pub rie: Throughput,
    /// lambdabox's invocations per second over the RIE's.
    pub ratio: f64,
    /// Where each side's CPU went, per invocation.
    pub lambdabox_cpu: PerCall,
    pub rie_cpu: PerCall,
}

/// Every pair, and the median of their ratios (the spread; the report's
/// ratio is of the two sides' means).
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    pub window_seconds: f64,
    pub pairs: Vec<Pair>,
    pub median_ratio: Option<f64>,
    /// The mean of the pairs' CPU per invocation, each side.
    pub lambdabox_cpu: Option<PerCall>,
    pub rie_cpu: Option<PerCall>,
    /// The RIE container exited during its windows.
    pub note: Option<String>,
}

/// `plan.pairs` pairs of windows against `function` on `controller`
/// (already warm at [`CONCURRENCY`]) and one fresh RIE container, warmed up
/// first.
pub async fn measure(
    plan: &Plan,
    ctx: &Ctx,
    spec: &RieSpec,
    client: &load::Client,
    controller: &Controller,
    function: &str,
) -> Result<Paired> {
    step!(
        "paired windows: {} × ({:.1} s RIE at c1, {:.1} s lambdabox at c{CONCURRENCY}), alternating",
        plan.pairs,
        plan.pair_window.as_secs_f64(),
        plan.pair_window.as_secs_f64()
    );
    let lambdabox = Side {
        target: controller.target(client, function)?,
        parties: Parties::new(Some(controller.pid()), &controller.docker_ids_of(function).await?),
        concurrency: CONCURRENCY,
    };
    let (container, target) = crate::warm_rie(plan, ctx, spec, client).await?;
    let rie = Side { target, parties: Parties::new(None, std::slice::from_ref(&container.id)), concurrency: 1 };
    let result = async {
        let mut pairs = Vec::with_capacity(plan.pairs);
        for i in 0..plan.pairs {
            let ((l, l_cpu), (r, r_cpu)) = if i % 2 == 0 {
                let r = rie.window(plan).await;
                (lambdabox.window(plan).await, r)
            } else {
                let l = lambdabox.window(plan).await;
                (l, rie.window(plan).await)
            };
            let ratio = l.per_sec / r.per_sec.max(f64::EPSILON);
            step!(
                "  pair {}/{}: lambdabox {:.0}/s ({} errors), RIE {:.0}/s ({} errors): {ratio:.2}; CPU: lambdabox {l_cpu}, RIE {r_cpu}",
                i + 1,
                plan.pairs,
                l.per_sec,
                l.errors,
                r.per_sec,
                r.errors
            );
            pairs.push(Pair { lambdabox: l, rie: r, ratio, lambdabox_cpu: l_cpu, rie_cpu: r_cpu });
            if let Some(code) = ctx.rie.exit_code(&container.id).await? {
                let note = format!("The RIE container exited (code {code}) during pair {}.", i + 1);
                step!("{note}");
                return anyhow::Ok(Paired::new(plan, pairs, Some(note)));
            }
        }
        anyhow::Ok(Paired::new(plan, pairs, None))
    }
    .await;
    ctx.rie.remove(&container.id).await.context("removing the RIE container")?;
    let paired = result?;
    if let Some(m) = paired.median_ratio {
        step!("paired windows: median ratio {m:.2}");
    }
    if let (Some(l), Some(r)) = (paired.lambdabox_cpu, paired.rie_cpu) {
        step!("paired windows: CPU per invocation, mean: lambdabox {l}; RIE {r}");
    }
    Ok(paired)
}

/// One side of the pairs: what to invoke, at what concurrency, and whose
/// CPU time to count.
struct Side {
    target: Target,
    parties: Parties,
    concurrency: usize,
}

impl Side {
    async fn window(&self, plan: &Plan) -> (Throughput, PerCall) {
        let before = self.parties.read();
        let t = load::throughput(&self.target, self.concurrency, plan.pair_window, plan.throughput_max).await;
        let used = self.parties.read() - before;
        let per_call = used.per_call(t.ok + t.late);
        (t, per_call)
    }
}

impl Paired {
    fn new(plan: &Plan, pairs: Vec<Pair>, note: Option<String>) -> Paired {
        let ratios: Vec<f64> = pairs.iter().map(|p| p.ratio).collect();
        let l_cpu: Vec<PerCall> = pairs.iter().map(|p| p.lambdabox_cpu).collect();
        let r_cpu: Vec<PerCall> = pairs.iter().map(|p| p.rie_cpu).collect();
        Paired {
            window_seconds: plan.pair_window.as_secs_f64(),
            median_ratio: median(&ratios),
            lambdabox_cpu: PerCall::mean(&l_cpu),
            rie_cpu: PerCall::mean(&r_cpu),
            pairs,
            note,
        }
    }
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }
}
