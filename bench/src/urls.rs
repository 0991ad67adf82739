//! Function URLs, measured in the same run (and on the same controller and
//! function) as the management Invoke path they are compared with: warm
//! latency and throughput at c16 through a BUFFERED URL and through
//! Invoke; then how soon a streamed response's first byte arrives, against
//! when its last does (a Node `streamifyResponse` handler behind a
//! RESPONSE_STREAM URL, writing its second chunk [`STREAM_GAP`] after its
//! first).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::load::{self, Latency, Percentiles, Target, Throughput};
use crate::{Ctx, Plan};

/// Concurrent callers of the throughput comparison, as the target is stated.
pub const CONCURRENCY: usize = 16;
/// How long the streaming handler waits between its two chunks.
pub const STREAM_GAP: Duration = Duration::from_millis(100);

/// Answers Invoke's payload with itself and a URL's event with its body:
/// the same bytes back either way, so one function serves both paths.
const PYTHON: &str = "def handler(event, context):\n    return event.get(\"body\", event)\n";

/// Two chunks, `GAP_MS` ([`STREAM_GAP`]) apart.
const NODE_STREAM: &str = r#"export const handler = awslambda.streamifyResponse(async (event, stream) => {
  stream.setContentType('text/plain');
  stream.write('first\n');
  await new Promise((resolve) => setTimeout(resolve, GAP_MS));
  stream.write('last\n');
  stream.end();
});
"#;

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct UrlResults {
    /// Sequential warm invocations through Invoke, then through the URL.
    pub invoke: Latency,
    pub url: Latency,
    /// At [`CONCURRENCY`] callers.
    pub invoke_throughput: Throughput,
    pub url_throughput: Throughput,
    /// A streamed response: first byte, and whole body.
    pub stream_first_byte: Option<Percentiles>,
    pub stream_complete: Option<Percentiles>,
    pub stream_errors: u64,
    pub stream_gap_ms: f64,
}

pub async fn measure(plan: &Plan, ctx: &Ctx, memory_mb: u32, client: &load::Client) -> Result<UrlResults> {
    let lambdabox = ctx.controller("lambdabox-urls", &[]).await?;
    let zip = crate::runtimes::zip(&[("app.py", PYTHON)])?;
    lambdabox.create_function_from("web", crate::controller::RUNTIME, "app.handler", &zip, memory_mb).await?;
    let invoke = lambdabox.target(client, "web")?;
    let url = Target::function_url(client, &lambdabox.create_url("web", "BUFFERED").await?)?;
    for target in [&invoke, &url] {
        load::first_success(target, Instant::now(), Duration::from_millis(20), Duration::from_secs(60))
            .await
            .with_context(|| format!("{} never answered", target.url()))?;
        load::latency(target, plan.warm_up_n, plan.latency_budget).await;
    }
    let invoke_latency = load::latency(&invoke, plan.latency_n, plan.latency_budget).await;
    let url_latency = load::latency(&url, plan.latency_n, plan.latency_budget).await;
    let p50 = |l: &Latency| l.percentiles.as_ref().map_or(f64::NAN, |p| p.p50_ms);
    step!("urls: warm p50 Invoke {:.3} ms, URL {:.3} ms", p50(&invoke_latency), p50(&url_latency));
    let mut throughputs = Vec::new();
    for target in [&invoke, &url] {
        load::throughput(target, CONCURRENCY, plan.warm_up, plan.throughput_max).await;
        tokio::time::sleep(plan.settle).await;
        throughputs.push(load::throughput(target, CONCURRENCY, plan.throughput, plan.throughput_max).await);
    }
    let (url_throughput, invoke_throughput) = (throughputs.pop().expect("two"), throughputs.pop().expect("two"));
    step!(
        "urls: c{CONCURRENCY} Invoke {:.0} inv/s, URL {:.0} inv/s",
        invoke_throughput.per_sec,
        url_throughput.per_sec
    );

    let source = NODE_STREAM.replace("GAP_MS", &STREAM_GAP.as_millis().to_string());
    let node = crate::runtimes::zip(&[("index.mjs", &source)])?;
    lambdabox.create_function_from("stream", "nodejs20.x", "index.handler", &node, memory_mb).await?;
    let stream_url = lambdabox.create_url("stream", "RESPONSE_STREAM").await?;
    let samples = (plan.latency_n / 20).max(5);
    let (first, whole, stream_errors) = streams(client, &stream_url, samples).await?;
    step!(
        "urls: streamed response: first byte p50 {:.2} ms, whole body p50 {:.2} ms ({} errors)",
        first.as_ref().map_or(f64::NAN, |p| p.p50_ms),
        whole.as_ref().map_or(f64::NAN, |p| p.p50_ms),
        stream_errors
    );
    lambdabox.stop().await?;
    Ok(UrlResults {
        invoke: invoke_latency,
        url: url_latency,
        invoke_throughput,
        url_throughput,
        stream_first_byte: first,
        stream_complete: whole,
        stream_errors,
        stream_gap_ms: STREAM_GAP.as_secs_f64() * 1000.0,
    })
}

/// Time to first byte and to the whole body of `samples` streamed
/// responses, one at a time, after one unmeasured (cold) one.
async fn streams(
    client: &load::Client,
    url: &str,
    samples: usize,
) -> Result<(Option<Percentiles>, Option<Percentiles>, u64)> {
    if let Err(e) = stream_once(client, url).await {
        bail!("the streaming function never answered: {e:#}");
    }
    let (mut first, mut whole, mut errors) = (Vec::new(), Vec::new(), 0);
    for _ in 0..samples {
        match stream_once(client, url).await {
            Ok((f, w)) => {
                first.push(f);
                whole.push(w);
            }
            Err(_) => errors += 1,
        }
    }
    Ok((Percentiles::of(&first), Percentiles::of(&whole), errors))
}

/// One streamed response: when its first body byte came, when it ended.
async fn stream_once(client: &load::Client, url: &str) -> Result<(Duration, Duration)> {
    let start = Instant::now();
    let mut response = client.http().get(url).send().await?;
    if response.status() != 200 {
        bail!("status {}", response.status());
    }
    let mut body = Vec::new();
    let mut first = None;
    while let Some(chunk) = response.chunk().await? {
        first.get_or_insert_with(|| start.elapsed());
        body.extend_from_slice(&chunk);
    }
    let whole = start.elapsed();
    if body != b"first\nlast\n" {
        bail!("unexpected body {:?}", String::from_utf8_lossy(&body));
    }
    Ok((first.unwrap_or(whole), whole))
}
