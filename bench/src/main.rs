//! `lambdabox-bench`: lambdabox against the AWS Runtime Interface Emulator,
//! in one run on this machine, with the same Python handler
//! (`def handler(event, context): return event`) and the same image.
//!
//! `make bench` builds everything, fetches the RIE and runs this; `make bench
//! BENCH_ARGS=--quick` runs a shorter version (under a minute).
//!
//! Speed is reported as ratios against baselines measured in the same run,
//! next to the targets; nothing is asserted.
//!
//! # Layout
//!
//! - [`load`]: the HTTP client and load loops (latency, throughput, first
//!   success), the same code for every side.
//! - [`rie`]: the baselines' containers (RIE as entrypoint, via bollard).
//! - [`controller`]: a `lambdabox serve` child process and its REST API.
//! - [`asynchronous`], [`urls`], [`runtimes`], [`cpu`], [`burst`]: sections
//!   measured on controllers of their own (events; function URLs and
//!   streaming; cold starts per runtime; the CPU model at two memory sizes;
//!   64 concurrent first invocations).
//! - [`report`]: the results (JSON) and the table.
//! - [`chart`]: the PNG chart.

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// A progress line on stderr, stamped with the time since start.
macro_rules! step {
    ($($arg:tt)*) => {
        eprintln!("[bench {:6.1}s] {}", $crate::START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64(), format!($($arg)*))
    };
}

mod asynchronous;
mod burst;
mod chart;
mod controller;
mod cpu;
mod load;
mod noise;
mod paired;
mod report;
mod rie;
mod runtimes;
mod scale;
mod transport;
mod urls;
mod usage;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use controller::Controller;
use load::{Latency, Target, Throughput};
use report::{ColdStarts, Maybe, Memory, Results, Settings};
use rie::{Rie, RieSpec};

#[derive(Debug, Parser)]
#[command(about = "Benchmark lambdabox against the AWS Runtime Interface Emulator on this machine")]
struct Args {
    /// Small counts and short runs (under a minute); skips the 100-function memory run.
    #[arg(long)]
    quick: bool,
    /// The lambdabox binary (release build; lambdabox-init beside it).
    #[arg(long, default_value = "target/release/lambdabox")]
    lambdabox: PathBuf,
    /// The RIE executable (x86-64), as `make bench` extracts it from aws-sam-cli.
    #[arg(long, default_value = "target/bench/cache/aws-lambda-rie")]
    rie: PathBuf,
    /// Where results.json, results.png and the controllers' logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The image both sides run.
    #[arg(long, default_value = "lambdabox/python3.11:latest")]
    image: String,
    /// MemorySize of every lambdabox function.
    #[arg(long, default_value_t = 1769)]
    memory_mb: u32,
    /// lambdabox's --memory-budget-mb (default: room for a container per caller
    /// at the highest concurrency; the box's default, 75% of RAM, would cap it).
    #[arg(long)]
    memory_budget_mb: Option<u64>,
    /// Run one section alone and print its figures (no results.json or
    /// chart): for working on that part.
    #[arg(long, value_enum)]
    only: Option<Section>,
    /// With `--only cold`: these runtimes alone (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    runtimes: Vec<String>,
    /// Keep one CPU busy with a spinning thread for the whole run, both
    /// sides included: the figures of a box that is doing other work.
    #[arg(long)]
    noise: bool,
    /// One more argument for every `lambdabox serve` the bench starts
    /// (repeat it: `--serve-arg=--workers --serve-arg=2`), to compare settings.
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

/// The sections `--only` can run alone.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Section {
    /// Cold starts per runtime, without and with prewarmed containers.
    Cold,
    /// Forced cold starts in turns with baseline B, then warm throughput at
    /// c16 against the RIE at c1 in alternating windows.
    Paired,
    Async,
    Urls,
    Cpu,
    Burst,
    Scale,
    /// Warm latency on the local and the remote transport.
    Transport,
}

/// Counts and durations of one mode.
#[derive(Debug, Clone)]
struct Plan {
    mode: &'static str,
    latency_n: usize,
    latency_budget: Duration,
    warm_up_n: usize,
    throughput: Duration,
    throughput_max: u64,
    levels: Vec<usize>,
    rie_levels: Vec<usize>,
    /// Sustained load at each concurrency before it is measured, so the pool
    /// has scaled out to it: a single burst of calls is mostly served by the
    /// containers already warm (each answers in well under a millisecond),
    /// which left the new ones to start inside the measured window.
    warm_up: Duration,
    /// Pause after the warm-up, for containers' start-up work to finish.
    settle: Duration,
    cold_k: usize,
    cold_pause: Duration,
    /// Cold starts per runtime in the per-runtime table, each way.
    runtime_cold_k: usize,
    /// The same with the default prewarmed pool. Its starts are two-valued
    /// on a busy box (about 10 ms when the runtime's import runs on an idle
    /// core, 20-40 ms when it shares the busy one), and five samples let
    /// the median move with where two or three land. They are quick.
    prewarmed_k: usize,
    prewarm: usize,
    hundred_functions: bool,
    /// How long the two CPU-bound functions compete.
    contention: Duration,
    /// Alternating RIE / lambdabox throughput windows ([`paired`]).
    pairs: usize,
    pair_window: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                mode: "quick",
                latency_n: 200,
                latency_budget: Duration::from_secs(10),
                warm_up_n: 10,
                throughput: Duration::from_millis(1500),
                throughput_max: 20_000,
                levels: vec![1, 4, 16, 64],
                rie_levels: vec![1, 4],
                warm_up: Duration::from_millis(500),
                settle: Duration::from_millis(500),
                cold_k: 3,
                cold_pause: Duration::from_millis(1000),
                runtime_cold_k: 2,
                prewarmed_k: 3,
                prewarm: 2,
                hundred_functions: false,
                contention: Duration::from_secs(4),
                pairs: 2,
                pair_window: Duration::from_millis(750),
            }
        } else {
            Plan {
                mode: "full",
                latency_n: 2000,
                latency_budget: Duration::from_secs(60),
                warm_up_n: 50,
                throughput: Duration::from_secs(10),
                throughput_max: 500_000,
                levels: vec![1, 4, 16, 64],
                rie_levels: vec![1, 4],
                warm_up: Duration::from_secs(2),
                settle: Duration::from_secs(1),
                cold_k: 15,
                cold_pause: Duration::from_millis(2000),
                runtime_cold_k: 5,
                prewarmed_k: 11,
                prewarm: 2,
                hundred_functions: true,
                contention: Duration::from_secs(12),
                pairs: 7,
                pair_window: Duration::from_secs(2),
            }
        }
    }
}

/// What cleanup needs whatever happens: the Docker handle with this run's
/// label, and the controllers' pids.
#[derive(Debug)]
struct Ctx {
    rie: Rie,
    pids: Mutex<Vec<u32>>,
    out: PathBuf,
    lambdabox: PathBuf,
    budget_mb: u64,
    /// The build grows its prewarmed pool from demand (`--prewarm-max`).
    grows_prewarm: bool,
    /// `--serve-arg`s, given to every controller.
    serve_args: Vec<String>,
}

impl Ctx {
    /// `extra`, and `--prewarm-max 0` unless it sets that: the pool's size
    /// then stays what `--prewarm` says, so cold starts stay cold and no
    /// container is created inside a measured window because of the
    /// warm-up's cold starts (only the burst asks for growth).
    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        args.extend(self.serve_args.iter().cloned());
        if self.grows_prewarm && !extra.contains(&"--prewarm-max") {
            args.extend(["--prewarm-max".to_owned(), "0".to_owned()]);
        }
        args
    }

    /// Start a controller with `extra` arguments, logging to `out/NAME.log`.
    async fn controller(&self, name: &str, extra: &[&str]) -> Result<Controller> {
        let mut args: Vec<String> = vec!["--memory-budget-mb".into(), self.budget_mb.to_string()];
        args.extend(self.args(extra));
        let log = self.out.join(format!("{name}.log"));
        let c = Controller::start(&self.lambdabox, &args, &log).await?;
        self.pids.lock().expect("pid list").push(c.pid());
        step!("lambdabox {name} (pid {}) ready; its log: {}", c.pid(), log.display());
        Ok(c)
    }

    /// A controller on data directory `dir` with `extra` arguments alone
    /// (the caller picks its memory budget).
    async fn controller_in(&self, name: &str, dir: &std::path::Path, extra: &[&str]) -> Result<Controller> {
        let args = self.args(extra);
        let log = self.out.join(format!("{name}.log"));
        let c = Controller::start_in(&self.lambdabox, dir, None, &args, &log).await?;
        self.pids.lock().expect("pid list").push(c.pid());
        step!("lambdabox {name} (pid {}) ready; its log: {}", c.pid(), log.display());
        Ok(c)
    }
}

fn main() -> ExitCode {
    START.get_or_init(Instant::now);
    let args = Args::parse();
    // One thread: it is the load generator, whose CPU the paired windows
    // count (`usage.rs`), and with one thread no answer crosses threads
    // before its caller sees it.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lambdabox-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lambdabox-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn main_async(args: Args) -> Result<()> {
    check_inputs(&args)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let plan = Plan::new(args.quick);
    let run_id = format!("{}-{}", std::process::id(), unix_secs());
    let rie = Rie::connect(&run_id).await.context("cannot reach the Docker engine (`make docker` starts it)")?;
    let max_level = plan.levels.iter().copied().max().unwrap_or(1) as u64;
    let budget_mb = args.memory_budget_mb.unwrap_or(u64::from(args.memory_mb) * (max_level + 4));
    let grows_prewarm = controller::serve_supports(&args.lambdabox, "--prewarm-max").await;
    let (out, lambdabox) = (args.out.clone(), args.lambdabox.clone());
    let serve_args = args.serve_args.clone();
    let ctx = Ctx { rie, pids: Mutex::new(Vec::new()), out, lambdabox, budget_mb, grows_prewarm, serve_args };
    let noise = args.noise.then(noise::Noise::start);
    if let Some(section) = args.only {
        let outcome = tokio::select! {
            r = run_only(section, &args, &plan, &ctx) => r,
            _ = interrupted() => Err(anyhow::anyhow!("interrupted")),
        };
        cleanup(&ctx).await;
        return outcome;
    }
    let outcome = tokio::select! {
        r = run(&args, &plan, &ctx) => r,
        _ = interrupted() => Err(anyhow::anyhow!("interrupted")),
    };
    // Whatever happened: controllers were sent SIGTERM when dropped; wait for
    // them to remove their containers, and remove the baselines' containers.
    cleanup(&ctx).await;
    drop(noise);
    let mut results = outcome?;
    results.settings.noise = args.noise;
    print!("{}", report::table(&results));
    let json_path = args.out.join("results.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let png_path = args.out.join("results.png");
    match chart::register_font(chart::FONT).and_then(|()| chart::draw(&results, &png_path)) {
        Ok(()) => step!("wrote {} and {}", json_path.display(), png_path.display()),
        Err(e) => step!("wrote {}; no chart: {e}", json_path.display()),
    }
    Ok(())
}

fn check_inputs(args: &Args) -> Result<()> {
    if !args.lambdabox.is_file() {
        bail!("{} not found; run `make build` (or `make bench`)", args.lambdabox.display());
    }
    if !args.rie.is_file() {
        bail!("RIE not found at {}; `make bench` fetches it from the aws-sam-cli wheel", args.rie.display());
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn cleanup(ctx: &Ctx) {
    match ctx.rie.remove_all().await {
        Ok(0) => {}
        Ok(n) => step!("removed {n} leftover baseline container(s)"),
        Err(e) => step!("could not remove the baseline containers (label {}): {e}", rie::RUN_LABEL),
    }
    let pids = ctx.pids.lock().expect("pid list").clone();
    let deadline = Instant::now() + Duration::from_secs(70);
    for pid in pids {
        while running(pid) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if running(pid) {
            step!("lambdabox pid {pid} is still shutting down");
        }
    }
}

/// Is `pid` alive (not gone, not a zombie)?
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
        }
        Err(_) => false,
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One section alone; its step lines say what it measured.
async fn run_only(section: Section, args: &Args, plan: &Plan, ctx: &Ctx) -> Result<()> {
    let client = load::Client::new();
    match section {
        Section::Cold => {
            let rows = runtimes::measure(plan, ctx, args.memory_mb, &client, &args.runtimes).await?;
            println!("{}", report::runtime_table(&rows));
        }
        Section::Paired => {
            let spec = rie_spec(args)?;
            let lambdabox = ctx.controller("lambdabox-paired", &["--prewarm", "0"]).await?;
            lambdabox.create_function("echo", args.memory_mb, None).await?;
            lambdabox.create_function("cold", args.memory_mb, None).await?;
            let (cold, b) = paired_cold_starts(plan, ctx, &spec, &lambdabox, "cold", &client).await?;
            let median = |c: &ColdStarts| c.stats.as_ref().map_or(f64::NAN, |p| p.p50_ms);
            step!("cold start medians: lambdabox {:.0} ms, B {:.0} ms", median(&cold), median(&b));
            let target = lambdabox.target(&client, "echo")?;
            load::throughput(&target, paired::CONCURRENCY, plan.warm_up, plan.throughput_max).await;
            tokio::time::sleep(plan.settle).await;
            drop(paired::measure(plan, ctx, &spec, &client, &lambdabox, "echo").await?);
            lambdabox.stop().await?;
        }
        Section::Async => drop(asynchronous::measure(plan, ctx, args.memory_mb, &client).await?),
        Section::Urls => drop(urls::measure(plan, ctx, args.memory_mb, &client).await?),
        Section::Cpu => {
            let spec = rie_spec(args)?;
            let (container, _, latency) = rie_latency(plan, ctx, &spec, &client).await?;
            ctx.rie.remove(&container.id).await.context("removing the RIE container")?;
            drop(cpu::measure(plan, ctx, latency, &client).await?);
        }
        Section::Burst => drop(burst::measure(ctx, &rie_spec(args)?, &client).await?),
        Section::Scale => {
            scale::measure(plan, ctx, &client).await?;
        }
        Section::Transport => drop(transport::measure(plan, ctx, args.memory_mb, &client).await?),
    }
    Ok(())
}

/// What every RIE container runs: the same handler, unpacked under `out`.
fn rie_spec(args: &Args) -> Result<RieSpec> {
    let task = args.out.join("task");
    controller::write_handler_dir(&task).context("writing the handler folder")?;
    Ok(RieSpec {
        rie: std::fs::canonicalize(&args.rie)?,
        task: std::fs::canonicalize(&task)?,
        image: args.image.clone(),
        handler: controller::HANDLER.into(),
    })
}

async fn run(args: &Args, plan: &Plan, ctx: &Ctx) -> Result<Results> {
    let began = Instant::now();
    let client = load::Client::new();
    let spec = rie_spec(args)?;
    step!("mode {}: same handler, image {}; RIE containers get no CPU/memory limits (as SAM)", plan.mode, args.image);

    let (rie_latency, rie_throughput, rie_notes) = measure_rie(plan, ctx, &spec, &client).await?;
    let main = measure_lambdabox(args, plan, ctx, &spec, &client).await?;
    let lambdabox_cold_prewarm = measure_prewarm(args, plan, ctx, &client).await?;
    step!("asynchronous invocations: accepted and run at c{}, against synchronous", asynchronous::SENDERS);
    let asynchronous = asynchronous::measure(plan, ctx, args.memory_mb, &client).await?;
    step!("function URLs: warm latency and c{} against Invoke; a streamed response's first byte", urls::CONCURRENCY);
    let urls = urls::measure(plan, ctx, args.memory_mb, &client).await?;
    step!(
        "cold starts per runtime ({} each without a prewarmed pool and with late runtimes, {} with the default pool)",
        plan.runtime_cold_k,
        plan.prewarmed_k
    );
    let runtime_cold = runtimes::measure(plan, ctx, args.memory_mb, &client, &args.runtimes).await?;
    step!(
        "CPU model: warm latency at {} and {} MB, then both CPU-bound at once; weighted, then strict",
        cpu::SMALL_MB,
        cpu::LARGE_MB
    );
    let cpu = cpu::measure(plan, ctx, rie_latency.clone(), &client).await?;
    step!(
        "burst: {} concurrent first invocations, against {} RIE containers started at once",
        burst::SIZE,
        burst::SIZE
    );
    let burst = burst::measure(ctx, &spec, &client).await?;
    let memory_100_functions = if plan.hundred_functions {
        Maybe::Measured { value: measure_hundred(args, ctx, &client).await? }
    } else {
        Maybe::NotAvailable { reason: "skipped in --quick".into() }
    };

    let scale = if plan.hundred_functions {
        step!("scale: {} functions, {} warm containers", scale::FUNCTIONS, scale::WARM);
        Maybe::Measured { value: scale::measure(plan, ctx, &client).await? }
    } else {
        Maybe::NotAvailable { reason: "skipped in --quick; --only scale runs it".into() }
    };

    Ok(Results {
        settings: Settings {
            mode: plan.mode,
            image: args.image.clone(),
            memory_size_mb: args.memory_mb,
            lambdabox_memory_budget_mb: ctx.budget_mb,
            latency_invocations: plan.latency_n,
            throughput_seconds: plan.throughput.as_secs_f64(),
            cold_starts: plan.cold_k,
            prewarm: plan.prewarm,
            rie_container_limits: "none (as SAM local)",
            host_cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            host_memory_mb: host_memory_mb(),
            noise: false,
        },
        lambdabox_latency: main.latency,
        rie_latency,
        lambdabox_throughput: main.throughput,
        rie_throughput,
        paired: main.paired,
        rie_notes,
        lambdabox_cold: main.cold,
        lambdabox_cold_prewarm,
        per_container_cold: main.per_container_cold,
        memory_after_throughput: Some(main.memory),
        memory_100_functions,
        runtime_cold,
        asynchronous,
        urls,
        cpu,
        burst,
        scale,
        duration_seconds: began.elapsed().as_secs_f64(),
    })
}

fn host_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn describe_latency(who: &str, l: &Latency) {
    match &l.percentiles {
        Some(p) => step!(
            "{who}: warm latency over {} invocations: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms ({} errors)",
            p.n,
            p.p50_ms,
            p.p90_ms,
            p.p99_ms,
            l.errors
        ),
        None => step!("{who}: no successful invocation ({} errors: {:?})", l.errors, l.first_error),
    }
}

fn describe_throughput(who: &str, t: &Throughput) {
    step!(
        "{who}: concurrency {}: {:.1} inv/s ({} ok, {} errors in {:.1} s; {} more finished {:.1} s later; \
         latency p50 {:.2} ms, p99 {:.2} ms, max {:.0} ms){}",
        t.concurrency,
        t.per_sec,
        t.ok,
        t.errors,
        t.seconds,
        t.late,
        t.drain_seconds,
        t.latency.as_ref().map_or(f64::NAN, |p| p.p50_ms),
        t.latency.as_ref().map_or(f64::NAN, |p| p.p99_ms),
        t.latency.as_ref().map_or(f64::NAN, |p| p.max_ms),
        t.first_error.as_ref().map_or(String::new(), |e| format!("; first error: {}", e.trim()))
    );
}

/// Baseline A: one RIE container, warm.
async fn measure_rie(
    plan: &Plan,
    ctx: &Ctx,
    spec: &RieSpec,
    client: &load::Client,
) -> Result<(Latency, Vec<Throughput>, Vec<String>)> {
    let (container, target, latency) = rie_latency(plan, ctx, spec, client).await?;
    let result = async {
        let (mut throughputs, mut notes) = (Vec::new(), Vec::new());
        // Concurrency 1 first: RIE serves one invocation at a time, and more
        // may break it.
        for &c in &plan.rie_levels {
            let t = load::throughput(&target, c, plan.throughput, plan.throughput_max).await;
            describe_throughput("RIE", &t);
            throughputs.push(t);
            if let Some(code) = ctx.rie.exit_code(&container.id).await? {
                let note = format!("The RIE container exited (code {code}) during its concurrency-{c} run.");
                step!("{note}");
                notes.push(note);
                break;
            }
        }
        anyhow::Ok((latency, throughputs, notes))
    }
    .await;
    ctx.rie.remove(&container.id).await.context("removing the RIE container")?;
    result
}

/// One RIE container, answered once and warmed up, its target and its warm
/// latency; the caller removes the container.
async fn rie_latency(
    plan: &Plan,
    ctx: &Ctx,
    spec: &RieSpec,
    client: &load::Client,
) -> Result<(rie::RieContainer, Target, Latency)> {
    step!("baseline A: starting one RIE container");
    let (container, target) = warm_rie(plan, ctx, spec, client).await?;
    let latency = load::latency(&target, plan.latency_n, plan.latency_budget).await;
    describe_latency("RIE", &latency);
    Ok((container, target, latency))
}

/// One RIE container, answered once and warmed up (removed again if it never
/// answers); the caller removes the container.
async fn warm_rie(
    plan: &Plan,
    ctx: &Ctx,
    spec: &RieSpec,
    client: &load::Client,
) -> Result<(rie::RieContainer, Target)> {
    let container = ctx.rie.start(spec, rie::free_port()?).await.context("starting the RIE container")?;
    let target = Target::new(client, &container.invoke_url())?;
    let first = load::first_success(&target, Instant::now(), Duration::from_millis(20), Duration::from_secs(60)).await;
    let first = match first {
        Ok(first) => first,
        Err(e) => {
            ctx.rie.remove(&container.id).await.context("removing the RIE container")?;
            return Err(e).with_context(|| format!("RIE never answered at {}", target.url()));
        }
    };
    step!("RIE answered its first invocation after {:.0} ms", first.as_secs_f64() * 1000.0);
    load::latency(&target, plan.warm_up_n, plan.latency_budget).await;
    Ok((container, target))
}

/// Baseline B once: a fresh RIE container, timed from create to its first
/// successful answer, then removed.
async fn per_container_once(
    ctx: &Ctx,
    spec: &RieSpec,
    client: &load::Client,
) -> Result<Result<Duration, load::InvokeError>> {
    let port = rie::free_port()?;
    let start = Instant::now();
    let container = ctx.rie.start(spec, port).await.context("starting an RIE container")?;
    let target = Target::new(client, &container.invoke_url())?;
    let answer = load::first_success(&target, start, Duration::from_millis(5), Duration::from_secs(60)).await;
    ctx.rie.remove(&container.id).await.context("removing an RIE container")?;
    Ok(answer)
}

/// One forced cold start of function `name`: a new revision
/// (UpdateFunctionConfiguration, waited for), then one timed invocation.
///
/// Before the invocation, the previous revision's containers must be gone
/// from Docker (the new revision retired them; lambdabox removes them in
/// the background), as baseline B removes each of its containers before it
/// starts the next: a removal still running would be Docker work inside the
/// timed start. Then a pause, for a prewarmed pool to refill.
async fn cold_start_once(
    plan: &Plan,
    ctx: &Ctx,
    lambdabox: &Controller,
    name: &str,
    target: &Target,
    i: usize,
) -> Result<Result<Duration, load::InvokeError>> {
    let retired = lambdabox.docker_ids_of(name).await?;
    lambdabox.set_env(name, "BENCH_REVISION", &format!("{}-{i}", unix_secs())).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in &retired {
        while ctx.rie.exists(id).await? && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(plan.cold_pause).await;
    Ok(target.invoke().await)
}

/// `k` forced cold starts of function `name` ([`cold_start_once`]).
async fn cold_starts(
    plan: &Plan,
    ctx: &Ctx,
    k: usize,
    lambdabox: &Controller,
    name: &str,
    client: &load::Client,
    who: &str,
) -> Result<ColdStarts> {
    let target = lambdabox.target(client, name)?;
    let mut tally = ColdTally::default();
    for i in 0..k {
        tally.record(who, i, k, cold_start_once(plan, ctx, lambdabox, name, &target, i).await?);
    }
    Ok(tally.finish())
}

/// `plan.cold_k` forced cold starts of function `name` and as many of
/// baseline B, taking turns (B first in even rounds, lambdabox first in odd
/// ones), so both sides' figures come from the same minutes of the run: on
/// a box whose speed drifts, B measured minutes earlier made the ratio
/// swing by a third between runs. Returns lambdabox's, then B's.
async fn paired_cold_starts(
    plan: &Plan,
    ctx: &Ctx,
    spec: &RieSpec,
    lambdabox: &Controller,
    name: &str,
    client: &load::Client,
) -> Result<(ColdStarts, ColdStarts)> {
    step!(
        "cold starts: {} forced ones (a new revision each, no warm container), taking turns with baseline B \
         (a fresh RIE container each: create + start + first answer)",
        plan.cold_k
    );
    let target = lambdabox.target(client, name)?;
    let (mut ours, mut b) = (ColdTally::default(), ColdTally::default());
    for i in 0..plan.cold_k {
        if i % 2 == 0 {
            b.record("B", i, plan.cold_k, per_container_once(ctx, spec, client).await?);
        }
        ours.record("cold", i, plan.cold_k, cold_start_once(plan, ctx, lambdabox, name, &target, i).await?);
        if i % 2 == 1 {
            b.record("B", i, plan.cold_k, per_container_once(ctx, spec, client).await?);
        }
    }
    Ok((ours.finish(), b.finish()))
}

/// One series of cold starts as they come: each reported on stderr, the
/// failures counted and the first one kept.
#[derive(Default)]
struct ColdTally {
    samples: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl ColdTally {
    fn record<E: std::error::Error>(&mut self, who: &str, i: usize, of: usize, result: Result<Duration, E>) {
        match result {
            Ok(d) => {
                step!("  {who} {}/{of}: {:.0} ms", i + 1, d.as_secs_f64() * 1000.0);
                self.samples.push(d);
            }
            Err(e) => {
                let why = load::describe(&e);
                step!("  {who} {}/{of}: failed: {why}", i + 1);
                self.errors += 1;
                self.first_error.get_or_insert(why);
            }
        }
    }

    fn finish(self) -> ColdStarts {
        ColdStarts::new(&self.samples, self.errors, self.first_error)
    }
}

/// What the main lambdabox controller measured.
struct MainRun {
    latency: Latency,
    cold: ColdStarts,
    throughput: Vec<Throughput>,
    paired: paired::Paired,
    memory: Memory,
    /// Baseline B, measured in turns with `cold`.
    per_container_cold: ColdStarts,
}

/// lambdabox: warm latency, cold starts (in turns with baseline B),
/// throughput by concurrency, the controller's memory, then c16 in windows
/// alternating with the RIE's.
async fn measure_lambdabox(
    args: &Args,
    plan: &Plan,
    ctx: &Ctx,
    spec: &RieSpec,
    client: &load::Client,
) -> Result<MainRun> {
    step!("lambdabox: starting a controller (MemorySize {} MB, budget {} MB)", args.memory_mb, ctx.budget_mb);
    // Builds with a prewarmed pool may keep one by default: these cold starts are without it.
    let extra: &[&str] =
        if controller::serve_supports(&args.lambdabox, "--prewarm").await { &["--prewarm", "0"] } else { &[] };
    let lambdabox = ctx.controller("lambdabox", extra).await?;
    lambdabox.create_function("echo", args.memory_mb, None).await?;
    lambdabox.create_function("cold", args.memory_mb, None).await?;
    let target = lambdabox.target(client, "echo")?;
    let first = load::first_success(&target, Instant::now(), Duration::from_millis(20), Duration::from_secs(60))
        .await
        .context("lambdabox never answered")?;
    step!("lambdabox answered its first invocation after {:.0} ms", first.as_secs_f64() * 1000.0);
    load::latency(&target, plan.warm_up_n, plan.latency_budget).await;
    let latency = load::latency(&target, plan.latency_n, plan.latency_budget).await;
    describe_latency("lambdabox", &latency);

    let (cold, per_container_cold) = paired_cold_starts(plan, ctx, spec, &lambdabox, "cold", client).await?;

    let mut throughput = Vec::new();
    for &c in &plan.levels {
        let warm_up = load::throughput(&target, c, plan.warm_up, plan.throughput_max).await;
        if warm_up.errors > 0 {
            step!("lambdabox: warm-up at concurrency {c}: {} failed invocations", warm_up.errors);
        }
        tokio::time::sleep(plan.settle).await;
        let t = load::throughput(&target, c, plan.throughput, plan.throughput_max).await;
        describe_throughput("lambdabox", &t);
        throughput.push(t);
    }
    let memory = Memory {
        rss_mb: lambdabox.rss_kib()? as f64 / 1024.0,
        containers: lambdabox.containers().await?,
        functions: 2,
    };
    step!("lambdabox: controller RSS {:.1} MB with {} containers", memory.rss_mb, memory.containers);
    let paired = paired::measure(plan, ctx, spec, client, &lambdabox, "echo").await?;
    step!("lambdabox: stopping (it removes its containers)");
    lambdabox.stop().await?;
    Ok(MainRun { latency, cold, throughput, paired, memory, per_container_cold })
}

/// Cold starts again on a controller with a prewarmed pool, when this build
/// has `--prewarm`.
async fn measure_prewarm(args: &Args, plan: &Plan, ctx: &Ctx, client: &load::Client) -> Result<Maybe<ColdStarts>> {
    if !controller::serve_supports(&args.lambdabox, "--prewarm").await {
        step!("lambdabox serve has no --prewarm in this build; skipping the prewarm row");
        return Ok(Maybe::NotAvailable { reason: "no --prewarm in this build".into() });
    }
    let n = plan.prewarm.to_string();
    let lambdabox = ctx.controller("lambdabox-prewarm", &["--prewarm", &n]).await?;
    lambdabox.create_function("cold", args.memory_mb, None).await?;
    step!("lambdabox --prewarm {n}: {} forced cold starts", plan.cold_k);
    let cold = cold_starts(plan, ctx, plan.cold_k, &lambdabox, "cold", client, "prewarm").await?;
    lambdabox.stop().await?;
    Ok(Maybe::Measured { value: cold })
}

/// 100 functions deployed, 32 of them with a warm container: the
/// controller's resident memory.
async fn measure_hundred(args: &Args, ctx: &Ctx, client: &load::Client) -> Result<Memory> {
    const FUNCTIONS: usize = 100;
    const WARM: usize = 32;
    step!("memory: {FUNCTIONS} functions, {WARM} kept warm");
    let lambdabox = ctx.controller("lambdabox-100", &["--idle-ttl", "3600"]).await?;
    for i in 0..FUNCTIONS {
        lambdabox.create_function(&format!("f{i:03}"), args.memory_mb, None).await?;
    }
    // Eight at a time: enough to be quick, few enough not to time out on 2 cores.
    for chunk in (0..WARM).collect::<Vec<_>>().chunks(8) {
        let targets =
            chunk.iter().map(|i| lambdabox.target(client, &format!("f{i:03}"))).collect::<Result<Vec<_>, _>>()?;
        let calls: Vec<_> =
            targets.into_iter().map(|target| tokio::spawn(async move { target.invoke().await })).collect();
        for c in calls {
            c.await?.context("warming a function")?;
        }
    }
    let memory = Memory {
        rss_mb: lambdabox.rss_kib()? as f64 / 1024.0,
        containers: lambdabox.containers().await?,
        functions: FUNCTIONS,
    };
    step!(
        "memory: controller RSS {:.1} MB with {FUNCTIONS} functions and {} containers",
        memory.rss_mb,
        memory.containers
    );
    lambdabox.stop().await?;
    Ok(memory)
}
