//! The load generator: one HTTP client ([`crate::wire`]), used the same way
//! against lambdabox and the baselines, so only the server side differs
//! between them.
//!
//! Every loop here is bounded twice, by a count and by a deadline, and every
//! request has a timeout.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use lambdabox::auth::{sign, sigv4, KeyPair};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST};
use serde::Serialize;

use crate::wire::{Endpoint, WireError};

/// The event every measurement sends; the handler returns it unchanged.
pub const PAYLOAD: &str = r#"{"bench":"lambdabox","n":42}"#;

/// Pause of a throughput worker after a failed invocation, so a dead server
/// is not hammered with refused connections.
const ERROR_PAUSE: Duration = Duration::from_millis(10);
/// Longest one invocation may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why one invocation did not count as a success.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("request failed: {0}")]
    Wire(#[from] WireError),
    #[error("signing failed: {0}")]
    Sign(#[from] lambdabox::auth::sign::SignError),
    #[error("status {status}: {body}")]
    Status { status: u16, body: String },
    #[error("function error {kind}: {body}")]
    Function { kind: String, body: String },
    #[error("answer was not the event echoed back: {0}")]
    WrongBody(String),
}

/// An error with its causes, `: `-separated (reqwest's own text omits them),
/// each said once.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Something that runs the echo handler behind one invocation URL.
#[derive(Debug, Clone)]
pub struct Target {
    endpoint: Arc<Endpoint>,
    url: reqwest::Url,
    /// The request target: path and query.
    path: String,
    /// lambdabox's key pair: its invocations are signed, as every client's
    /// are, so signing and verifying are part of what is measured. The
    /// baselines take unsigned requests.
    key: Option<KeyPair>,
    /// Send asynchronous invocations (`InvocationType: Event`): success is
    /// a 202, the event stored for later.
    event: bool,
    /// A function URL rather than Invoke: the payload goes as a JSON body
    /// (`content-type: application/json`) and the function answers with it.
    function_url: bool,
}

/// The load generator's connections, one idle list per server (`host:port`)
/// shared by every [`Target`] on it, as a pooling HTTP client would; and a
/// reqwest client for what is not an invocation (streamed answers). An
/// endpoint's connections close when its last target is dropped: the bench
/// starts and stops many servers in one run.
#[derive(Debug, Clone)]
pub struct Client {
    endpoints: Arc<Mutex<HashMap<String, Weak<Endpoint>>>>,
    http: reqwest::Client,
}

impl Client {
    /// A client that keeps connections alive and never goes through a
    /// proxy: every address the bench talks to is on loopback.
    pub fn new() -> Client {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client builds");
        Client { endpoints: Arc::default(), http }
    }

    /// For requests the load loops do not make (streamed answers).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn endpoint(&self, url: &reqwest::Url) -> Result<Arc<Endpoint>, WireError> {
        let fresh = Endpoint::of(url, REQUEST_TIMEOUT)?;
        let mut endpoints = self.endpoints.lock().expect("endpoints");
        if let Some(live) = endpoints.get(fresh.authority()).and_then(Weak::upgrade) {
            return Ok(live);
        }
        endpoints.retain(|_, e| e.strong_count() > 0);
        endpoints.insert(fresh.authority().to_owned(), Arc::downgrade(&fresh));
        Ok(fresh)
    }
}

impl Target {
    pub fn new(client: &Client, url: &str) -> Result<Target, WireError> {
        let url: reqwest::Url = url.parse().map_err(|_| WireError::Url(url.to_owned()))?;
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Ok(Target { endpoint: client.endpoint(&url)?, url, path, key: None, event: false, function_url: false })
    }

    /// A function URL (unsigned: AuthType NONE) whose function answers
    /// with the request's body.
    pub fn function_url(client: &Client, url: &str) -> Result<Target, WireError> {
        Ok(Target { function_url: true, ..Target::new(client, url)? })
    }

    /// A target whose invocations are signed with `key`.
    pub fn signed(client: &Client, url: &str, key: Option<KeyPair>) -> Result<Target, WireError> {
        Ok(Target { key, ..Target::new(client, url)? })
    }

    /// The same function, invoked asynchronously.
    pub fn events(self) -> Target {
        Target { event: true, ..self }
    }

    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// One invocation; success means status 200, no function error and the
    /// event echoed back. Returns how long it took.
    pub async fn invoke(&self) -> Result<Duration, InvokeError> {
        if self.event {
            return self.send_event().await;
        }
        static SENT: OnceLock<serde_json::Value> = OnceLock::new();
        let sent = SENT.get_or_init(|| serde_json::from_str(PAYLOAD).expect("PAYLOAD is JSON"));
        let (elapsed, answer) = self.call(PAYLOAD).await?;
        match serde_json::from_slice::<serde_json::Value>(&answer) {
            Ok(v) if v == *sent => Ok(elapsed),
            _ => Err(InvokeError::WrongBody(excerpt(&answer))),
        }
    }

    /// One synchronous invocation with `payload`; success means status 200
    /// and no function error. Returns how long it took and the answer.
    pub async fn call(&self, payload: &str) -> Result<(Duration, Vec<u8>), InvokeError> {
        let start = Instant::now();
        let answer = self.endpoint.exchange(&self.request(payload.as_bytes())?).await?;
        let elapsed = start.elapsed();
        if answer.status != 200 {
            return Err(InvokeError::Status { status: answer.status, body: excerpt(&answer.body) });
        }
        if let Some(kind) = answer.function_error {
            return Err(InvokeError::Function { kind, body: excerpt(&answer.body) });
        }
        Ok((elapsed, answer.body))
    }

    /// The whole `POST` of `body` to this target, signed now if it has a
    /// key (as an SDK signs each request).
    fn request(&self, body: &[u8]) -> Result<Vec<u8>, InvokeError> {
        let mut headers = HeaderMap::new();
        if self.function_url {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if self.event {
            headers.insert("x-amz-invocation-type", HeaderValue::from_static("Event"));
        }
        match &self.key {
            Some(key) => {
                let hash = sigv4::hex_sha256(body);
                sign::sign_parts("POST", &self.url, &mut headers, &hash, key, sign::DEFAULT_REGION, Utc::now())?
            }
            None => {
                let host = HeaderValue::from_str(self.endpoint.authority())
                    .map_err(|_| WireError::Url(self.url.to_string()))?;
                headers.insert(HOST, host);
            }
        }
        let mut out = Vec::with_capacity(256 + body.len());
        let _ = write!(out, "POST {} HTTP/1.1\r\ncontent-length: {}\r\n", self.path, body.len());
        for (name, value) in &headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        Ok(out)
    }

    /// One asynchronous invocation: success is a 202, the event stored.
    async fn send_event(&self) -> Result<Duration, InvokeError> {
        let start = Instant::now();
        let answer = self.endpoint.exchange(&self.request(PAYLOAD.as_bytes())?).await?;
        match answer.status {
            202 => Ok(start.elapsed()),
            status => Err(InvokeError::Status { status, body: excerpt(&answer.body) }),
        }
    }
}

/// The first 300 bytes of an answer, for an error message.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub n: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles; `None` for no samples.
    pub fn of(samples: &[Duration]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let rank = |p: f64| {
            let i = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[i.clamp(1, ms.len()) - 1]
        };
        Some(Percentiles {
            n: ms.len(),
            p50_ms: rank(50.0),
            p90_ms: rank(90.0),
            p99_ms: rank(99.0),
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            max_ms: ms[ms.len() - 1],
        })
    }
}

/// Sequential latencies of up to `count` invocations on one keep-alive
/// connection, stopping at `budget`. Errors are counted, not timed.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub percentiles: Option<Percentiles>,
    pub errors: u64,
    pub first_error: Option<String>,
}

pub async fn latency(target: &Target, count: usize, budget: Duration) -> Latency {
    let turns = Turns { each: count, rest: Duration::ZERO };
    in_turns(&[target], count, budget, turns).await.pop().expect("one target, one latency")
}

/// How targets take turns in [`in_turns`]: `each` invocations of one, then
/// a `rest` (so what one target's calls left behind, such as the kernel's
/// running average of its container's load, has faded before the next
/// one's turn), then the next target.
#[derive(Debug, Clone, Copy)]
pub struct Turns {
    pub each: usize,
    pub rest: Duration,
}

/// [`latency`] of several targets taking turns, up to `count` invocations
/// each, the order reversed every round (A B, B A, …), so that every
/// target's figures come from the same minutes of the run: measured one
/// after the other on a busy box, two targets' tails came from different
/// minutes, and their ratio swung with the load.
pub async fn in_turns(targets: &[&Target], count: usize, budget: Duration, turns: Turns) -> Vec<Latency> {
    take_turns(targets.len(), count, budget, turns, |i| targets[i].invoke()).await
}

/// [`in_turns`]'s schedule over `n` parties, each call made by `call(i)`.
async fn take_turns<F, Fut, E>(n: usize, count: usize, budget: Duration, turns: Turns, mut call: F) -> Vec<Latency>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Duration, E>>,
    E: std::error::Error,
{
    let deadline = Instant::now() + budget;
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::with_capacity(count)).collect();
    let mut order: Vec<usize> = (0..n).collect();
    while seen.iter().any(|s| s.calls() < count) && Instant::now() < deadline {
        for &i in &order {
            for _ in 0..turns.each.min(count - seen[i].calls()) {
                if Instant::now() >= deadline {
                    break;
                }
                seen[i].record(call(i).await);
            }
            if !turns.rest.is_zero() {
                tokio::time::sleep(turns.rest).await;
            }
        }
        order.reverse();
    }
    seen.into_iter().map(Seen::finish).collect()
}

/// One target's samples and errors while [`in_turns`] runs.
struct Seen {
    samples: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Seen {
    fn with_capacity(count: usize) -> Seen {
        Seen { samples: Vec::with_capacity(count), errors: 0, first_error: None }
    }

    fn calls(&self) -> usize {
        self.samples.len() + self.errors as usize
    }

    fn record<E: std::error::Error>(&mut self, result: Result<Duration, E>) {
        match result {
            Ok(d) => self.samples.push(d),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| describe(&e));
            }
        }
    }

    fn finish(self) -> Latency {
        Latency { percentiles: Percentiles::of(&self.samples), errors: self.errors, first_error: self.first_error }
    }
}

/// What a fixed-duration run at one concurrency achieved.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub concurrency: usize,
    /// Successes that finished inside the window.
    pub ok: u64,
    /// Successes still in flight when the window closed (not counted in `per_sec`).
    pub late: u64,
    pub errors: u64,
    /// The window: the run's duration, or less if the count bound ended it.
    pub seconds: f64,
    /// How long the last in-flight invocations took to finish after it.
    pub drain_seconds: f64,
    /// Successful invocations per second inside the window.
    pub per_sec: f64,
    /// Latency of the successful invocations under this load.
    pub latency: Option<Percentiles>,
    pub first_error: Option<String>,
}

/// What one throughput worker saw.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    late: u64,
    errors: u64,
    samples: Vec<Duration>,
    first_error: Option<String>,
}

/// `concurrency` workers invoke back to back until `duration` has passed or
/// `max_count` invocations have been sent in all (a worker pauses
/// [`ERROR_PAUSE`] after a failure).
pub async fn throughput(target: &Target, concurrency: usize, duration: Duration, max_count: u64) -> Throughput {
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let target = target.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline && sent.fetch_add(1, Ordering::Relaxed) < max_count {
                    match target.invoke().await {
                        Ok(took) => {
                            if Instant::now() <= deadline {
                                tally.ok += 1;
                            } else {
                                tally.late += 1;
                            }
                            tally.samples.push(took);
                        }
                        Err(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert_with(|| describe(&e));
                            tokio::time::sleep(ERROR_PAUSE).await;
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.await.unwrap_or_else(|_| Tally {
            errors: 1,
            first_error: Some("worker panicked".into()),
            ..Tally::default()
        });
        total.ok += t.ok;
        total.late += t.late;
        total.errors += t.errors;
        total.samples.extend(t.samples);
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }
    let elapsed = start.elapsed();
    let window = elapsed.min(duration).as_secs_f64().max(f64::EPSILON);
    Throughput {
        concurrency,
        ok: total.ok,
        late: total.late,
        errors: total.errors,
        seconds: window,
        drain_seconds: elapsed.saturating_sub(duration).as_secs_f64(),
        per_sec: total.ok as f64 / window,
        latency: Percentiles::of(&total.samples),
        first_error: total.first_error,
    }
}

/// Invoke until the first success, retrying refused or failed attempts every
/// `pause`, for at most `budget`. Returns the time from `since` to that success.
pub async fn first_success(
    target: &Target,
    since: Instant,
    pause: Duration,
    budget: Duration,
) -> Result<Duration, InvokeError> {
    let deadline = since + budget;
    loop {
        match target.invoke().await {
            Ok(_) => return Ok(since.elapsed()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(pause).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&samples).unwrap();
        assert_eq!((p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms), (50.0, 90.0, 99.0, 100.0));
        let one = Percentiles::of(&[Duration::from_millis(7)]).unwrap();
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        assert!(Percentiles::of(&[]).is_none());
    }

    /// Runs the schedule with every call answering at once, `fail` saying
    /// which calls (by their overall index) fail; returns the callers' order.
    fn schedule(n: usize, count: usize, each: usize, fail: &[usize]) -> (Vec<usize>, Vec<Latency>) {
        let order = std::cell::RefCell::new(Vec::new());
        let turns = Turns { each, rest: Duration::ZERO };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let latencies = runtime.block_on(take_turns(n, count, Duration::from_secs(60), turns, |i| {
            let mut order = order.borrow_mut();
            let failed = fail.contains(&order.len());
            order.push(i);
            async move {
                if failed {
                    Err(std::io::Error::other("refused"))
                } else {
                    Ok(Duration::from_millis(1 + i as u64))
                }
            }
        }));
        (order.into_inner(), latencies)
    }

    #[test]
    fn turns_alternate_their_order_and_stop_at_each_count() {
        let (order, latencies) = schedule(2, 5, 2, &[]);
        assert_eq!(order, [0, 0, 1, 1, 1, 1, 0, 0, 0, 1]);
        let counts: Vec<usize> = latencies.iter().map(|l| l.percentiles.as_ref().unwrap().n).collect();
        assert_eq!(counts, [5, 5]);
        assert_eq!(latencies[1].percentiles.as_ref().unwrap().p50_ms, 2.0, "each party's own samples");
    }

    #[test]
    fn a_failed_call_counts_toward_its_party_and_is_kept_apart() {
        let (order, latencies) = schedule(2, 2, 1, &[1]);
        assert_eq!(order, [0, 1, 1, 0]);
        assert_eq!((latencies[0].errors, latencies[1].errors), (0, 1));
        assert_eq!(latencies[1].percentiles.as_ref().unwrap().n, 1);
        assert_eq!(latencies[1].first_error.as_deref(), Some("refused"));
        let (alone, _) = schedule(1, 3, 3, &[]);
        assert_eq!(alone, [0, 0, 0], "one party: plain sequential calls");
    }
}
