//! What one run measured ([`Results`], written as JSON) and the table printed
//! from it: lambdabox, its baseline, their ratio and the issue's target.
//!
//! Targets are shown, never asserted: timings depend on the machine.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

pub use crate::asynchronous::AsyncResults;
pub use crate::burst::BurstResults;
pub use crate::cpu::CpuResults;
use crate::load::{Latency, Percentiles, Throughput};
pub use crate::runtimes::RuntimeCold;
pub use crate::scale::ScaleResults;
pub use crate::urls::UrlResults;

/// Cold starts: each sample is the time from the request that forces a new
/// container to its first successful answer.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStarts {
    pub samples_ms: Vec<f64>,
    pub stats: Option<Percentiles>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl ColdStarts {
    pub fn new(samples: &[Duration], errors: u64, first_error: Option<String>) -> ColdStarts {
        ColdStarts {
            samples_ms: samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect(),
            stats: Percentiles::of(samples),
            errors,
            first_error,
        }
    }
}

/// A measurement that some builds or modes cannot make.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Maybe<T> {
    Measured { value: T },
    NotAvailable { reason: String },
}

impl<T> Maybe<T> {
    pub fn value(&self) -> Option<&T> {
        match self {
            Maybe::Measured { value } => Some(value),
            Maybe::NotAvailable { .. } => None,
        }
    }
}

/// The controller's resident memory and how many containers it held then.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub rss_mb: f64,
    pub containers: usize,
    pub functions: usize,
}

/// Settings of the run, so a reader can tell what was compared.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub mode: &'static str,
    pub image: String,
    pub memory_size_mb: u32,
    pub lambdabox_memory_budget_mb: u64,
    pub latency_invocations: usize,
    pub throughput_seconds: f64,
    pub cold_starts: usize,
    pub prewarm: usize,
    pub rie_container_limits: &'static str,
    pub host_cores: usize,
    pub host_memory_mb: u64,
    /// `--noise`: one CPU kept busy by a spinning thread throughout.
    pub noise: bool,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub settings: Settings,
    pub lambdabox_latency: Latency,
    pub rie_latency: Latency,
    pub lambdabox_throughput: Vec<Throughput>,
    pub rie_throughput: Vec<Throughput>,
    /// c16 against the RIE at c1 in alternating windows: the throughput verdict.
    pub paired: crate::paired::Paired,
    /// What happened to the RIE container (e.g. it exited under concurrency).
    pub rie_notes: Vec<String>,
    pub lambdabox_cold: ColdStarts,
    pub lambdabox_cold_prewarm: Maybe<ColdStarts>,
    /// Baseline B: a fresh RIE container per invocation, as `sam local invoke`.
    pub per_container_cold: ColdStarts,
    pub memory_after_throughput: Option<Memory>,
    pub memory_100_functions: Maybe<Memory>,
    /// Cold starts of an echo function in every runtime, without and with prewarm.
    pub runtime_cold: Vec<RuntimeCold>,
    /// Asynchronous invocations: accepted and run, against synchronous.
    pub asynchronous: AsyncResults,
    /// Function URLs against Invoke, and a streamed response's first byte.
    pub urls: UrlResults,
    /// Warm latency at 128 and 1,769 MB and CPU under contention, per CPU mode.
    pub cpu: CpuResults,
    /// 64 concurrent first invocations, against 64 containers started at once.
    pub burst: BurstResults,
    /// 1,000 functions and 200 warm containers on one controller.
    pub scale: Maybe<ScaleResults>,
    pub duration_seconds: f64,
}

/// A target a ratio is held against: `le` means lambdabox/baseline ≤ value.
#[derive(Debug, Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
    /// The ratio within this fraction of 1, either way.
    Near(f64),
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::AtMost(v) => format!("<= {v:.2}"),
            Target::AtLeast(v) => format!(">= {v:.2}"),
            Target::Near(v) => format!("1 +/- {v:.2}"),
        }
    }

    fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtMost(v) => ratio <= v,
            Target::AtLeast(v) => ratio >= v,
            Target::Near(v) => (ratio - 1.0).abs() <= v,
        }
    }
}

struct Row {
    label: String,
    ours: Option<f64>,
    base: Option<f64>,
    base_label: &'static str,
    target: Option<Target>,
    note: String,
}

fn throughput_at(list: &[Throughput], c: usize) -> Option<&Throughput> {
    list.iter().find(|t| t.concurrency == c)
}

fn error_note(errors: u64) -> String {
    if errors == 0 {
        String::new()
    } else {
        format!("{errors} errors")
    }
}

fn rows(r: &Results) -> Vec<Row> {
    let ours = r.lambdabox_latency.percentiles.as_ref();
    let rie = r.rie_latency.percentiles.as_ref();
    let mut rows = Vec::new();
    let lat_note = error_note(r.lambdabox_latency.errors + r.rie_latency.errors);
    for (label, f, target) in [
        ("warm latency p50 (ms)", (|p: &Percentiles| p.p50_ms) as fn(&Percentiles) -> f64, Some(Target::AtMost(0.5))),
        ("warm latency p90 (ms)", |p: &Percentiles| p.p90_ms, None),
        ("warm latency p99 (ms)", |p: &Percentiles| p.p99_ms, Some(Target::AtMost(0.5))),
    ] {
        rows.push(Row {
            label: label.into(),
            ours: ours.map(f),
            base: rie.map(f),
            base_label: "RIE",
            target,
            note: lat_note.clone(),
        });
    }
    // RIE serves one invocation at a time: its concurrency-1 figure is the
    // baseline at every concurrency.
    let rie_c1 = throughput_at(&r.rie_throughput, 1);
    for t in &r.lambdabox_throughput {
        let mut note = error_note(t.errors);
        if t.concurrency > 1 {
            note = [note, "vs RIE at c1".into()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
        }
        rows.push(Row {
            label: format!("throughput c{} (inv/s)", t.concurrency),
            ours: Some(t.per_sec),
            base: rie_c1.map(|b| b.per_sec),
            base_label: "RIE",
            target: None,
            note,
        });
    }
    rows.push(paired_row(&r.paired));
    rows.extend(paired_cpu_row(&r.paired));
    let b = r.per_container_cold.stats.as_ref();
    let cold = r.lambdabox_cold.stats.as_ref();
    rows.push(Row {
        label: "cold start median (ms)".into(),
        ours: cold.map(|p| p.p50_ms),
        base: b.map(|p| p.p50_ms),
        base_label: "B",
        target: Some(Target::AtMost(1.0)),
        note: error_note(r.lambdabox_cold.errors + r.per_container_cold.errors),
    });
    rows.push(Row {
        label: "cold start p90 (ms)".into(),
        ours: cold.map(|p| p.p90_ms),
        base: b.map(|p| p.p90_ms),
        base_label: "B",
        target: None,
        note: String::new(),
    });
    let (prewarm, note) = match &r.lambdabox_cold_prewarm {
        Maybe::Measured { value } => (value.stats.as_ref().map(|p| p.p50_ms), error_note(value.errors)),
        Maybe::NotAvailable { reason } => (None, format!("n/a ({reason})")),
    };
    rows.push(Row {
        label: "cold start, prewarm, median (ms)".into(),
        ours: prewarm,
        base: b.map(|p| p.p50_ms),
        base_label: "B",
        target: Some(Target::AtMost(0.25)),
        note,
    });
    rows.extend(async_rows(&r.asynchronous));
    rows.extend(url_rows(&r.urls));
    rows.extend(cpu_rows(&r.cpu));
    rows.extend(burst_rows(&r.burst));
    if let Some(m) = &r.memory_after_throughput {
        rows.push(Row {
            label: "controller RSS after load (MB)".into(),
            ours: Some(m.rss_mb),
            base: None,
            base_label: "",
            target: None,
            note: format!("{} containers", m.containers),
        });
    }
    let (rss, note) = match &r.memory_100_functions {
        Maybe::Measured { value } => (
            Some(value.rss_mb),
            format!("{} functions, {} containers; target <= 50 MB", value.functions, value.containers),
        ),
        Maybe::NotAvailable { reason } => (None, format!("n/a ({reason})")),
    };
    rows.push(Row {
        label: "controller RSS, 100 fns (MB)".into(),
        ours: rss,
        base: None,
        base_label: "",
        target: None,
        note: if rss.is_some_and(|v| v > 50.0) { format!("{note} (NOT met)") } else { note },
    });
    rows.extend(scale_rows(&r.scale));
    rows
}

/// c16 against the RIE at c1 over alternating windows: the throughput
/// target's row (the sequential rows above measure the two sides minutes
/// apart). Each side's figure is its mean over its windows, which took the
/// same time on both sides, so the ratio is that of the two throughputs over
/// the same stretch of the run.
fn paired_row(p: &crate::paired::Paired) -> Row {
    let mean = |f: fn(&crate::paired::Pair) -> f64| {
        (!p.pairs.is_empty()).then(|| p.pairs.iter().map(f).sum::<f64>() / p.pairs.len() as f64)
    };
    let errors: u64 = p.pairs.iter().map(|x| x.lambdabox.errors + x.rie.errors).sum();
    let mut note = format!("{} alternating pairs of {:.1} s windows", p.pairs.len(), p.window_seconds);
    if let Some(m) = p.median_ratio {
        note = format!("{note}; median pair {m:.2}");
    }
    if errors > 0 {
        note = format!("{note}; {errors} errors");
    }
    if let Some(n) = &p.note {
        note = format!("{note}; {n}");
    }
    Row {
        label: format!("throughput c{}, paired (inv/s)", crate::paired::CONCURRENCY),
        ours: mean(|x| x.lambdabox.per_sec),
        base: mean(|x| x.rie.per_sec),
        base_label: "RIE",
        target: Some(Target::AtLeast(3.0)),
        note,
    }
}

/// Where the paired windows' CPU went, per invocation: on a 2-core box it
/// is what bounds the c16 row above.
fn paired_cpu_row(p: &crate::paired::Paired) -> Option<Row> {
    let (l, r) = (p.lambdabox_cpu?, p.rie_cpu?);
    Some(Row {
        label: "CPU per invocation, paired (µs)".into(),
        ours: Some(l.total_us()),
        base: Some(r.total_us()),
        base_label: "RIE",
        target: None,
        note: format!(
            "load generator {:.0} / {:.0}, controller {:.0}, containers {:.0} / {:.0}",
            l.generator_us,
            r.generator_us,
            l.controller_us.unwrap_or(0.0),
            l.containers_us,
            r.containers_us
        ),
    })
}

/// A figure held against a fixed bound rather than a baseline.
fn bounded(label: String, value: Option<f64>, at_most: f64, unit: &str, note: String) -> Row {
    let met = value.map(|v| if v <= at_most { "" } else { " (NOT met)" }).unwrap_or_default();
    let sep = if note.is_empty() { "" } else { "; " };
    Row {
        label,
        ours: value,
        base: None,
        base_label: "",
        target: None,
        note: format!("{note}{sep}target <= {at_most} {unit}{met}"),
    }
}

/// The scale rows: one function's warm p50 among 1,000 against alone, and
/// fixed bounds on listing, memory and restart.
fn scale_rows(s: &Maybe<ScaleResults>) -> Vec<Row> {
    let s = match s {
        Maybe::Measured { value } => value,
        Maybe::NotAvailable { reason } => {
            return vec![Row {
                label: format!("warm p50 among {} fns (ms)", crate::scale::FUNCTIONS),
                ours: None,
                base: None,
                base_label: "",
                target: None,
                note: format!("n/a ({reason})"),
            }]
        }
    };
    let containers = format!("{} functions, {} containers", s.functions, s.warm_containers);
    vec![
        Row {
            label: format!("warm p50 among {} fns (ms)", s.functions),
            ours: Some(s.among_many.p50_ms),
            base: Some(s.alone.p50_ms),
            base_label: "1 fn",
            target: Some(Target::AtMost(1.2)),
            note: format!("{} warm containers", s.warm_containers),
        },
        bounded(
            "ListFunctions, all pages (ms)".into(),
            Some(s.list_all_pages_ms),
            200.0,
            "ms",
            format!("{} pages", s.pages),
        ),
        bounded(format!("controller RSS, {} fns (MB)", s.functions), Some(s.rss_mb), 100.0, "MB", containers),
        bounded(
            "restart to ready, after a crash (ms)".into(),
            Some(s.restart_to_ready_ms),
            2000.0,
            "ms",
            format!("leftovers removed in the background in {:.1} s", s.leftovers_cleared_s),
        ),
        Row {
            label: "idle warm container, host memory (MB)".into(),
            ours: s.container_memory_mb,
            base: None,
            base_label: "",
            target: None,
            note: format!("{} MB anonymous; controller {} descriptors", num(s.container_anon_mb), s.open_descriptors),
        },
    ]
}

/// The asynchronous rows: acceptance and the 202's p99 against fixed
/// targets, execution against synchronous throughput in the same run.
fn async_rows(a: &AsyncResults) -> Vec<Row> {
    let c = crate::asynchronous::SENDERS;
    let p99 = a.accepted.latency.as_ref().map(|p| p.p99_ms);
    let fixed = |met: bool, target: &str| format!("target {target}{}", if met { "" } else { " (NOT met)" });
    vec![
        Row {
            label: format!("async accepted c{c} (ev/s)"),
            ours: Some(a.accepted.per_sec),
            base: None,
            base_label: "",
            target: None,
            note: [fixed(a.accepted.per_sec >= 5000.0, ">= 5000"), error_note(a.accepted.errors)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        },
        Row {
            label: "async 202 p99 (ms)".into(),
            ours: p99,
            base: None,
            base_label: "",
            target: None,
            note: fixed(p99.is_some_and(|p| p <= 5.0), "<= 5 ms"),
        },
        Row {
            label: "async executed (ev/s)".into(),
            ours: Some(a.executed_per_sec),
            base: Some(a.sync.per_sec),
            base_label: "sync",
            target: Some(Target::AtLeast(0.8)),
            note: format!("{} events in {:.1} s; sync c{c}", a.executed, a.executed_seconds),
        },
    ]
}

/// The function URL rows: the URL path against Invoke on the same
/// function and controller; a streamed response's first byte against its
/// last.
fn url_rows(u: &UrlResults) -> Vec<Row> {
    let (url, invoke) = (u.url.percentiles.as_ref(), u.invoke.percentiles.as_ref());
    let c = crate::urls::CONCURRENCY;
    vec![
        Row {
            label: "URL warm p50 (ms)".into(),
            ours: url.map(|p| p.p50_ms),
            base: invoke.map(|p| p.p50_ms),
            base_label: "Invoke",
            target: Some(Target::AtMost(1.2)),
            note: error_note(u.url.errors + u.invoke.errors),
        },
        Row {
            label: "URL warm p99 (ms)".into(),
            ours: url.map(|p| p.p99_ms),
            base: invoke.map(|p| p.p99_ms),
            base_label: "Invoke",
            target: None,
            note: String::new(),
        },
        Row {
            label: format!("URL throughput c{c} (inv/s)"),
            ours: Some(u.url_throughput.per_sec),
            base: Some(u.invoke_throughput.per_sec),
            base_label: "Invoke",
            target: None,
            note: error_note(u.url_throughput.errors + u.invoke_throughput.errors),
        },
        Row {
            label: "stream first byte p50 (ms)".into(),
            ours: u.stream_first_byte.as_ref().map(|p| p.p50_ms),
            base: u.stream_complete.as_ref().map(|p| p.p50_ms),
            base_label: "whole",
            target: None,
            note: [format!("2nd chunk written {:.0} ms after the 1st", u.stream_gap_ms), error_note(u.stream_errors)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        },
    ]
}

/// The CPU model's rows, per mode: the small function's warm p99 against
/// the large one's and RIE's, and the CPU split against the memory ratio.
/// Targets are the default (weighted) mode's; strict is for comparison.
fn cpu_rows(c: &CpuResults) -> Vec<Row> {
    let p99 = |l: &Latency| l.percentiles.as_ref().map(|p| p.p99_ms);
    let mut rows = Vec::new();
    for (m, default) in [(&c.weighted, true), (&c.strict, false)] {
        let target = |t| if default { Some(t) } else { None };
        let (small, large) = (crate::cpu::SMALL_MB, crate::cpu::LARGE_MB);
        rows.push(Row {
            label: format!("{} p99 {small} MB (ms)", m.mode),
            ours: p99(&m.small),
            base: p99(&m.large),
            base_label: "1769 MB",
            target: target(Target::AtMost(1.5)),
            note: error_note(m.small.errors + m.large.errors),
        });
        rows.push(Row {
            label: format!("{} p99 {small} MB vs RIE (ms)", m.mode),
            ours: p99(&m.small),
            base: p99(&c.rie),
            base_label: "RIE",
            target: target(Target::AtMost(0.5)),
            note: String::new(),
        });
        // The target is about continuous contention; short invocations
        // favour the small function (see `cpu`), shown for comparison.
        let short = format!("{} ms calls", crate::cpu::SPIN_MS);
        for (k, how, goal) in [(&m.continuous, "continuous", true), (&m.contention, short.as_str(), false)] {
            rows.push(Row {
                label: format!("{} CPU {small}/{large} MB, {how}", m.mode),
                ours: Some(k.cpu_ratio),
                base: Some(k.memory_ratio),
                base_label: "mem",
                target: if goal { target(Target::Near(0.2)) } else { None },
                note: [
                    format!("{:.0}/{:.0} ms CPU in {:.1} s", k.small_cpu_ms, k.large_cpu_ms, k.seconds),
                    error_note(k.errors),
                ]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
            });
        }
    }
    rows
}

/// The burst row: time to the last of 64 first answers, against 64
/// containers started at once.
fn burst_rows(b: &BurstResults) -> Vec<Row> {
    let n = crate::burst::SIZE;
    vec![
        Row {
            label: format!("burst {n} first calls, last (ms)"),
            ours: Some(b.lambdabox.last_answer_ms),
            base: Some(b.container_per_call.last_answer_ms),
            base_label: "B x64",
            target: Some(Target::AtMost(0.5)),
            note: format!(
                "errors {} vs {}; {} containers after",
                b.lambdabox.errors, b.container_per_call.errors, b.lambdabox_containers
            ),
        },
        Row {
            label: format!("burst {n} again, another function (ms)"),
            ours: Some(b.lambdabox_again.last_answer_ms),
            base: Some(b.container_per_call.last_answer_ms),
            base_label: "B x64",
            target: Some(Target::AtMost(0.5)),
            note: format!("errors {}; {} prewarmed before it", b.lambdabox_again.errors, b.prewarmed_before_again),
        },
    ]
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
        None => "n/a".into(),
    }
}

/// The human table.
pub fn table(r: &Results) -> String {
    let header = ["metric", "lambdabox", "baseline", "ratio", "target", "met", "notes"];
    let body: Vec<Vec<String>> = rows(r)
        .into_iter()
        .map(|row| {
            let ratio = match (row.ours, row.base) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            };
            let base = match row.base {
                Some(_) => format!("{} {}", num(row.base), row.base_label),
                None => "-".into(),
            };
            let (target, met) = match (row.target, ratio) {
                (Some(t), Some(x)) => (t.text(), if t.met(x) { "yes" } else { "no" }.to_owned()),
                (Some(t), None) => (t.text(), "-".into()),
                (None, _) => ("-".into(), "-".into()),
            };
            let ratio = ratio.map_or("-".into(), |x| format!("{x:.2}"));
            vec![row.label, num(row.ours), base, ratio, target, met, row.note]
        })
        .collect();
    let mut out = markdown(&header, &body);
    let s = &r.settings;
    let _ = writeln!(
        out,
        "\nratio = lambdabox / baseline. Baselines: RIE = one AWS Runtime Interface Emulator container \
         (warm, serving one invocation at a time); B = a fresh RIE container per invocation, as `sam local invoke` \
         (create + start + first answer).\n\
         Same handler (`return event`), image {} and host for all. lambdabox functions: MemorySize {} MB \
         (lambdabox weighs a container's CPU in proportion: 1 vCPU's worth at 1769 MB, `--cpu-limit weighted`), memory budget {} MB; RIE containers: \
         {}. Host: {} cores, {} MB{}. Mode: {}; {} latency samples, {:.1} s per throughput run, {} cold starts each.",
        s.image,
        s.memory_size_mb,
        s.lambdabox_memory_budget_mb,
        s.rie_container_limits,
        s.host_cores,
        s.host_memory_mb,
        if s.noise { ", one of them kept busy by a spinning thread all along (--noise)" } else { "" },
        s.mode,
        s.latency_invocations,
        s.throughput_seconds,
        s.cold_starts,
    );
    for t in r.rie_throughput.iter().filter(|t| t.concurrency > 1) {
        let _ = writeln!(
            out,
            "RIE at concurrency {}: {:.1} successful inv/s, {} errors{}",
            t.concurrency,
            t.per_sec,
            t.errors,
            t.first_error.as_ref().map_or(String::new(), |e| format!(" (first: {})", e.trim()))
        );
    }
    let under_load: Vec<String> = r
        .lambdabox_throughput
        .iter()
        .filter_map(|t| {
            t.latency.as_ref().map(|p| format!("c{} {:.2}/{:.2}/{:.0}", t.concurrency, p.p50_ms, p.p99_ms, p.max_ms))
        })
        .collect();
    if !under_load.is_empty() {
        let _ = writeln!(out, "lambdabox latency under load, p50/p99/max ms: {}", under_load.join(", "));
    }
    for note in &r.rie_notes {
        let _ = writeln!(out, "{note}");
    }
    let _ = writeln!(out, "Whole run: {:.1} s.", r.duration_seconds);
    if !r.runtime_cold.is_empty() {
        let _ = write!(out, "\n{}", runtime_table(&r.runtime_cold));
    }
    out
}

/// Cold start medians per runtime (ms), without and with a prewarmed pool.
pub fn runtime_table(list: &[RuntimeCold]) -> String {
    let median = |m: &Maybe<ColdStarts>| match m {
        Maybe::Measured { value } => {
            let p50 = value.stats.as_ref().map_or("n/a".into(), |p| format!("{:.0}", p.p50_ms));
            if value.errors > 0 {
                format!("{p50} ({} failed)", value.errors)
            } else {
                p50
            }
        }
        // The first words: the whole reason is in results.json.
        Maybe::NotAvailable { reason } => format!("n/a ({})", reason.chars().take(60).collect::<String>()),
    };
    let header = [
        "runtime",
        "runtime client",
        "cold start p50 (ms)",
        "prewarmed, runtime started late p50 (ms)",
        "prewarmed p50 (ms)",
    ];
    let body: Vec<Vec<String>> = list
        .iter()
        .map(|r| {
            let late = match &r.prewarmed_runtime_late {
                Maybe::NotAvailable { .. } => "=".to_owned(),
                measured => median(measured),
            };
            vec![r.runtime.to_owned(), r.client.to_owned(), median(&r.cold), late, median(&r.prewarmed)]
        })
        .collect();
    markdown(&header, &body)
}

/// A Markdown table, columns padded to their widest cell.
fn markdown(header: &[&str], body: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in body {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: Vec<&str>| {
        let line: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "| {} |", line.join(" | "));
    };
    push(header.to_vec());
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    push(rule.iter().map(String::as_str).collect());
    for line in body {
        push(line.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throughput(c: usize, per_sec: f64) -> Throughput {
        Throughput {
            concurrency: c,
            ok: 10,
            late: 0,
            errors: 0,
            seconds: 1.0,
            drain_seconds: 0.0,
            per_sec,
            latency: None,
            first_error: None,
        }
    }

    /// 30 µs of load generator, `controller` µs of controller, 250 µs of containers.
    fn cpu(controller: Option<f64>) -> crate::usage::PerCall {
        crate::usage::PerCall { generator_us: 30.0, controller_us: controller, containers_us: 250.0 }
    }

    fn latency(ms: u64) -> Latency {
        let samples: Vec<Duration> = (0..10).map(|_| Duration::from_millis(ms)).collect();
        Latency { percentiles: Percentiles::of(&samples), errors: 0, first_error: None }
    }

    fn cpu_mode(mode: &'static str) -> crate::cpu::ModeResults {
        let contention = crate::cpu::Contention {
            seconds: 4.0,
            small_cpu_ms: 500.0,
            large_cpu_ms: 7000.0,
            cpu_ratio: 500.0 / 7000.0,
            memory_ratio: 128.0 / 1769.0,
            invocations: 32,
            errors: 0,
            first_error: None,
        };
        let continuous = contention.clone();
        crate::cpu::ModeResults { mode, small: latency(1), large: latency(1), contention, continuous }
    }

    fn burst(last_answer_ms: f64) -> crate::burst::Burst {
        crate::burst::Burst { last_answer_ms, answers: latency(5).percentiles, errors: 0, first_error: None }
    }

    #[test]
    fn table_shows_ratios_and_targets() {
        let r = Results {
            settings: Settings {
                mode: "quick",
                image: "img".into(),
                memory_size_mb: 1769,
                lambdabox_memory_budget_mb: 1000,
                latency_invocations: 10,
                throughput_seconds: 1.0,
                cold_starts: 1,
                prewarm: 2,
                rie_container_limits: "none",
                host_cores: 2,
                host_memory_mb: 1000,
                noise: false,
            },
            lambdabox_latency: latency(1),
            rie_latency: latency(4),
            lambdabox_throughput: vec![throughput(1, 500.0), throughput(16, 900.0)],
            rie_throughput: vec![throughput(1, 250.0)],
            paired: crate::paired::Paired {
                window_seconds: 2.0,
                pairs: [(900.0, 300.0), (700.0, 250.0)]
                    .map(|(l, r)| crate::paired::Pair {
                        lambdabox: throughput(16, l),
                        rie: throughput(1, r),
                        ratio: l / r,
                        lambdabox_cpu: cpu(Some(150.0)),
                        rie_cpu: cpu(None),
                    })
                    .to_vec(),
                median_ratio: Some(2.9),
                lambdabox_cpu: Some(cpu(Some(150.0))),
                rie_cpu: Some(cpu(None)),
                note: None,
            },
            rie_notes: Vec::new(),
            lambdabox_cold: ColdStarts::new(&[Duration::from_millis(300)], 0, None),
            lambdabox_cold_prewarm: Maybe::NotAvailable { reason: "no --prewarm in this build".into() },
            per_container_cold: ColdStarts::new(&[Duration::from_millis(1200)], 0, None),
            memory_after_throughput: None,
            memory_100_functions: Maybe::NotAvailable { reason: "skipped in --quick".into() },
            runtime_cold: vec![RuntimeCold {
                runtime: "java21",
                client: "ric",
                cold: Maybe::Measured { value: ColdStarts::new(&[Duration::from_millis(412)], 1, None) },
                prewarmed: Maybe::NotAvailable { reason: "no Go".into() },
                prewarmed_runtime_late: Maybe::NotAvailable { reason: "not started ahead of need".into() },
            }],
            asynchronous: AsyncResults {
                accepted: Throughput { latency: Some(latency(2).percentiles.unwrap()), ..throughput(16, 6000.0) },
                executed: 6000,
                executed_seconds: 2.0,
                executed_per_sec: 3000.0,
                sync: throughput(16, 3000.0),
            },
            urls: UrlResults {
                invoke: latency(2),
                url: latency(2),
                invoke_throughput: throughput(16, 1000.0),
                url_throughput: throughput(16, 900.0),
                stream_first_byte: latency(3).percentiles,
                stream_complete: latency(100).percentiles,
                stream_errors: 0,
                stream_gap_ms: 100.0,
            },
            cpu: CpuResults { weighted: cpu_mode("weighted"), strict: cpu_mode("strict"), rie: latency(4) },
            burst: BurstResults {
                lambdabox: burst(1000.0),
                lambdabox_again: burst(300.0),
                prewarmed_before_again: 64,
                lambdabox_containers: 64,
                container_per_call: burst(4000.0),
            },
            scale: Maybe::Measured {
                value: ScaleResults {
                    functions: 1000,
                    warm_containers: 200,
                    alone: latency(1).percentiles.unwrap(),
                    among_many: latency(1).percentiles.unwrap(),
                    list_all_pages_ms: 250.0,
                    pages: 20,
                    rss_mb: 30.0,
                    open_descriptors: 1000,
                    container_memory_mb: Some(6.5),
                    container_anon_mb: Some(5.9),
                    restart_to_ready_ms: 40.0,
                    leftovers_cleared_s: 12.0,
                },
            },
            duration_seconds: 3.0,
        };
        let t = table(&r);
        assert!(t.contains("| warm latency p50 (ms)"), "{t}");
        assert!(t.contains("0.25 "), "p50 ratio 1/4: {t}");
        assert!(t.contains("n/a (no --prewarm in this build)"), "{t}");
        let java = t.lines().find(|l| l.starts_with("| java21")).unwrap_or_default();
        let cells: Vec<&str> = java.split('|').map(str::trim).collect();
        assert_eq!(cells[1..6], ["java21", "ric", "412 (1 failed)", "=", "n/a (no Go)"], "{t}");
        let line = |start: &str| t.lines().find(|l| l.starts_with(start)).unwrap_or_default().to_owned();
        let sequential = line("| throughput c16 (inv/s)");
        assert!(sequential.contains("3.60") && !sequential.contains(">= 3.00"), "c16 ratio 900/250, no verdict: {t}");
        let paired = line("| throughput c16, paired");
        assert!(paired.contains("2.91") && paired.contains(">= 3.00") && paired.contains("no"), "800/275: {t}");
        let split = line("| CPU per invocation, paired");
        assert!(split.contains("| 430 ") && split.contains("| 280 ") && split.contains("controller 150"), "{t}");
        let executed = line("| async executed (ev/s)");
        assert!(executed.contains("1.00") && executed.contains(">= 0.80") && executed.contains("yes"), "{t}");
        let url = line("| URL warm p50 (ms)");
        assert!(url.contains("1.00") && url.contains("<= 1.20") && url.contains("yes"), "{t}");
        let cpu = line("| weighted CPU 128/1769 MB");
        assert!(cpu.contains("0.99") && cpu.contains("1 +/- 0.20") && cpu.contains("yes"), "{t}");
        let burst = line("| burst 64 first calls, last (ms)");
        assert!(burst.contains("0.25") && burst.contains("<= 0.50") && burst.contains("yes"), "{t}");
        let among = line("| warm p50 among 1000 fns (ms)");
        assert!(among.contains("1.00") && among.contains("<= 1.20") && among.contains("yes"), "{t}");
        let listing = line("| ListFunctions, all pages (ms)");
        assert!(listing.contains("target <= 200 ms (NOT met)"), "250 ms is over: {t}");
        assert!(line("| restart to ready, after a crash").contains("target <= 2000 ms") && !t.contains("2000 ms (NOT"));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""status":"not_available""#), "{json}");
    }
}
