//! Scale: [`FUNCTIONS`] functions deployed and [`WARM`] of them with a warm
//! container, on one controller. What it shows is whether anything on the
//! invocation path, in start-up or in the controller's own footprint grows
//! with the number of functions or containers:
//!
//! - warm latency of one function alone on the controller, then of the same
//!   function once the others are deployed and warm (same controller, same
//!   connection: their ratio is the cost of being one among many);
//! - ListFunctions over every page;
//! - the controller's RSS and open descriptors with that many containers;
//! - what one idle warm Python container costs the host (its cgroup's
//!   memory), the mean over all of them;
//! - restart to ready after a crash: the controller killed (SIGKILL, every
//!   container left behind) and started again on the same data directory,
//!   timed from spawn to the ready line: the store's load and the
//!   reconcile, which lists the leftovers and removes them in the background.
//!
//! Every container reserves its MemorySize from the memory budget, so the
//! controller gets a budget sized for [`WARM`] containers of 128 MB, over
//! the box's memory: the containers are idle and use a fraction of it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::controller::Controller;
use crate::load::{self, Percentiles};
use crate::{Ctx, Plan};

/// Functions deployed.
pub const FUNCTIONS: usize = 1000;
/// Of them, how many get a warm container.
pub const WARM: usize = 200;
/// Their MemorySize: Lambda's default.
const MEMORY_MB: u32 = 128;
/// Cold starts in flight while warming: enough to be quick, few enough
/// not to time out on 2 cores.
const WARMING_CONCURRENCY: usize = 8;
/// ListFunctions' page size (Lambda's largest MaxItems).
const PAGE: usize = 50;
/// Longest the bench waits for a restarted controller to clear its
/// predecessor's containers.
const CLEAR_LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize)]
pub struct ScaleResults {
    pub functions: usize,
    pub warm_containers: usize,
    /// The measured function's warm latency with no other function deployed.
    pub alone: Percentiles,
    /// The same, among [`FUNCTIONS`] functions and [`WARM`] warm containers.
    pub among_many: Percentiles,
    pub list_all_pages_ms: f64,
    pub pages: usize,
    pub rss_mb: f64,
    pub open_descriptors: usize,
    /// Mean memory charged to one idle warm container's cgroup.
    pub container_memory_mb: Option<f64>,
    /// Of it, anonymous memory (the processes' own, without page cache).
    pub container_anon_mb: Option<f64>,
    /// After a SIGKILL with every container left behind.
    pub restart_to_ready_ms: f64,
    /// How long the restarted controller took to remove those, meanwhile serving.
    pub leftovers_cleared_s: f64,
}

pub async fn measure(plan: &Plan, ctx: &Ctx, client: &load::Client) -> Result<ScaleResults> {
    let budget = (WARM as u32 + 16) * MEMORY_MB;
    let extra = ["--idle-ttl", "3600", "--memory-budget-mb", &budget.to_string()];
    let data_dir = tempfile::Builder::new().prefix("lbx-scale").tempdir_in("/tmp")?;
    let lambdabox = ctx.controller_in("lambdabox-scale", data_dir.path(), &extra).await?;
    lambdabox.create_function("f0000", MEMORY_MB, None).await?;
    let target = lambdabox.target(client, "f0000")?;
    warm_up(&target, plan.warm_up_n).await?;
    let alone = percentiles(load::latency(&target, plan.latency_n, plan.latency_budget).await, "alone")?;
    step!("scale: one function alone, warm p50 {:.3} ms p99 {:.3} ms", alone.p50_ms, alone.p99_ms);

    let began = Instant::now();
    for i in 1..FUNCTIONS {
        lambdabox.create_function(&name(i), MEMORY_MB, None).await?;
    }
    step!("scale: {FUNCTIONS} functions deployed in {:.1} s", began.elapsed().as_secs_f64());
    let began = Instant::now();
    warm(&lambdabox, client).await?;
    step!("scale: {WARM} functions warmed in {:.1} s", began.elapsed().as_secs_f64());

    warm_up(&target, plan.warm_up_n).await?;
    let among_many = percentiles(load::latency(&target, plan.latency_n, plan.latency_budget).await, "among many")?;
    let (list_all_pages_ms, pages) = list_all(&lambdabox).await?;
    let warm_containers = lambdabox.containers().await?;
    let rss_mb = lambdabox.rss_kib()? as f64 / 1024.0;
    let open_descriptors = open_descriptors(lambdabox.pid())?;
    let (container_memory_mb, container_anon_mb) = container_memory(&lambdabox.docker_ids().await?);
    step!(
        "scale: warm p50 {:.3} ms p99 {:.3} ms among {FUNCTIONS} functions and {warm_containers} containers; \
         ListFunctions {pages} pages {list_all_pages_ms:.0} ms; RSS {rss_mb:.1} MB, {open_descriptors} descriptors; \
         an idle container {} MB ({} MB anonymous)",
        among_many.p50_ms,
        among_many.p99_ms,
        shown(container_memory_mb),
        shown(container_anon_mb),
    );
    // A crash: every container stays behind for the next run to clear.
    lambdabox.kill().await?;
    let began = Instant::now();
    let again = ctx.controller_in("lambdabox-scale-restart", data_dir.path(), &extra).await?;
    let restart_to_ready_ms = began.elapsed().as_secs_f64() * 1000.0;
    let home = format!("{}={}", lambdabox::pool::labels::HOME, lambdabox::server::home_id(data_dir.path()));
    let left = ctx.rie.count_labelled(&home).await?;
    step!(
        "scale: restart to ready after a crash, {FUNCTIONS} functions stored and {left} containers left behind: \
         {restart_to_ready_ms:.0} ms"
    );
    let cleared = Instant::now();
    while ctx.rie.count_labelled(&home).await? > again.containers().await? && cleared.elapsed() < CLEAR_LIMIT {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let leftovers_cleared_s = cleared.elapsed().as_secs_f64();
    step!("scale: the new run removed them in the background in {leftovers_cleared_s:.1} s");
    again.stop().await?;
    Ok(ScaleResults {
        functions: FUNCTIONS,
        warm_containers,
        alone,
        among_many,
        list_all_pages_ms,
        pages,
        rss_mb,
        open_descriptors,
        container_memory_mb,
        container_anon_mb,
        restart_to_ready_ms,
        leftovers_cleared_s,
    })
}

fn name(i: usize) -> String {
    format!("f{i:04}")
}

fn shown(mb: Option<f64>) -> String {
    mb.map_or("?".into(), |v| format!("{v:.1}"))
}

async fn warm_up(target: &load::Target, n: usize) -> Result<()> {
    for _ in 0..n {
        target.invoke().await.context("warming the measured function")?;
    }
    Ok(())
}

fn percentiles(l: load::Latency, what: &str) -> Result<Percentiles> {
    l.percentiles.with_context(|| format!("no successful invocation {what}: {:?}", l.first_error))
}

/// One invocation each of the first [`WARM`] functions, a few at a time.
async fn warm(lambdabox: &Controller, client: &load::Client) -> Result<()> {
    let all: Vec<usize> = (0..WARM).collect();
    for chunk in all.chunks(WARMING_CONCURRENCY) {
        let targets = chunk.iter().map(|&i| lambdabox.target(client, &name(i))).collect::<Result<Vec<_>, _>>()?;
        let calls: Vec<_> =
            targets.into_iter().map(|target| tokio::spawn(async move { target.invoke().await })).collect();
        for c in calls {
            c.await?.context("warming a function")?;
        }
    }
    Ok(())
}

/// ListFunctions from the first page to the last; the time and page count.
async fn list_all(lambdabox: &Controller) -> Result<(f64, usize)> {
    let began = Instant::now();
    let (mut marker, mut pages, mut seen) = (None::<String>, 0, 0);
    loop {
        let page = lambdabox.list_functions(PAGE, marker.as_deref()).await?;
        pages += 1;
        seen += page["Functions"].as_array().map_or(0, Vec::len);
        match page["NextMarker"].as_str() {
            Some(next) => marker = Some(next.to_owned()),
            None => break,
        }
    }
    let elapsed = began.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(seen == FUNCTIONS, "ListFunctions listed {seen} functions, not {FUNCTIONS}");
    Ok((elapsed, pages))
}

fn open_descriptors(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd")).context("listing the controller's descriptors")?.count())
}

/// Mean charged and anonymous memory of the containers' cgroups, in MB
/// (cgroup v1 or v2, either Docker cgroup driver); `None` when unreadable.
fn container_memory(ids: &[String]) -> (Option<f64>, Option<f64>) {
    let readings: Vec<(u64, u64)> = ids.iter().filter_map(|id| cgroup_memory(id)).collect();
    if readings.is_empty() {
        return (None, None);
    }
    let mean = |f: fn(&(u64, u64)) -> u64| {
        Some(readings.iter().map(f).sum::<u64>() as f64 / readings.len() as f64 / (1024.0 * 1024.0))
    };
    (mean(|r| r.0), mean(|r| r.1))
}

/// `(charged, anonymous)` bytes of one container's memory cgroup.
fn cgroup_memory(id: &str) -> Option<(u64, u64)> {
    /// The cgroup folder around the id, the usage file, the anonymous
    /// memory's key in `memory.stat`.
    const LAYOUTS: [(&str, &str, &str, &str); 4] = [
        ("/sys/fs/cgroup/memory/docker/", "", "memory.usage_in_bytes", "total_rss"),
        ("/sys/fs/cgroup/memory/system.slice/docker-", ".scope", "memory.usage_in_bytes", "total_rss"),
        ("/sys/fs/cgroup/system.slice/docker-", ".scope", "memory.current", "anon"),
        ("/sys/fs/cgroup/docker/", "", "memory.current", "anon"),
    ];
    LAYOUTS.iter().find_map(|(before, after, usage, anon_key)| {
        let dir = format!("{before}{id}{after}");
        let charged = std::fs::read_to_string(format!("{dir}/{usage}")).ok()?.trim().parse().ok()?;
        let stat = std::fs::read_to_string(format!("{dir}/memory.stat")).ok()?;
        let anon = stat.lines().find_map(|l| match l.split_once(' ') {
            Some((key, value)) if key == *anon_key => value.trim().parse().ok(),
            _ => None,
        })?;
        Some((charged, anon))
    })
}
