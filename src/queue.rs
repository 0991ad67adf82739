//! Asynchronous invocations (`InvocationType: Event`): a durable queue of
//! events ([`store`]) and the dispatcher that runs them through the same
//! pool as synchronous calls, with Lambda's retry policy.
//!
//! # How it behaves
//!
//! - An event is committed to disk before its caller hears 202; it leaves
//!   the queue only once the function has answered (or it is kept as a dead
//!   letter). A controller killed mid-run delivers what was in flight again
//!   when it restarts: at least once, as on Lambda.
//! - A function error (handled, crash, timeout, out of memory) counts as an
//!   attempt; after `1 + MaximumRetryAttempts` attempts (retried 1 and then
//!   2 retry units later, a unit being a minute as on Lambda, or
//!   `--async-retry-unit-ms`) the event becomes a dead letter,
//!   `RetriesExhausted`.
//! - No capacity (the function's reserved concurrency or the box's memory
//!   budget is in use) is not an attempt: the event waits, backing off from
//!   1/60 of a unit (1 s) doubling to 5 units (5 min), until it is older
//!   than `MaximumEventAgeInSeconds`, then it is a dead letter,
//!   `EventAgeExceeded`. Reserved concurrency 0 dead-letters at once.
//! - Events take only capacity nobody waits for: a queued event never gets a
//!   container ahead of a synchronous caller (see [`crate::pool::Pool::acquire`]),
//!   and each function's events run at most as many at a time as have
//!   lately found room (halved on every throttle, grown by one on every
//!   run), so a backlog does not flood the pool with refusals; while
//!   callers are being answered, CPU-heavy functions' events leave them
//!   most of the CPUs ([`pace`]).
//! - Each function's EventInvokeConfig ([`invoke_config`]) sets its
//!   `MaximumRetryAttempts` and `MaximumEventAgeInSeconds`. A failed event
//!   whose next retry would come after its maximum age ends at once,
//!   `EventAgeExceeded`, as Lambda does rather than wait.
//! - An event that ends with a destination for its outcome (OnSuccess,
//!   OnFailure: another function) is replaced, in one commit, by a new
//!   event for that function carrying Lambda's invocation record
//!   ([`record`]). A destination on the default event bus gets the record
//!   as an event's `detail`, routed by the bus's rules
//!   ([`crate::events`]). A failure without an OnFailure destination is kept as a
//!   dead letter.
//! - Dead letters are kept, listed and redriven (`lambdabox events`);
//!   nothing is dropped, except by deleting the function, which deletes its
//!   queue (and its configs) with it.

pub mod invoke_config;
mod pace;
pub mod record;
pub mod store;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine::{Engine, EngineError, InvokeRequest, RunCost};
use crate::function::{Function, FunctionRef, LATEST};
pub use invoke_config::{ConfigEntry, EventInvokeConfig};
use pace::{Outcome, Pace, Slot};
use record::{Condition, Record};
use store::{now_ms, Body};
pub use store::{DeadLetter, Depth, EventMeta, NewEvent, QueueStore, QueueStoreError};

/// Lambda's defaults for a function without an EventInvokeConfig.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
pub const DEFAULT_MAX_EVENT_AGE_S: u32 = 21_600;
/// How the dispatcher paces retries and spreads work.
#[derive(Debug, Clone, Copy)]
pub struct QueueConfig {
    /// Lambda retries a failed event 1 and 2 minutes later: one unit is a
    /// minute by default, shorter in tests.
    pub retry_unit: Duration,
    /// Most events of one function running at once unless its reserved
    /// concurrency says otherwise: more containers than the CPUs can run
    /// only add start-up work to a backlog.
    pub per_function: usize,
}

impl Default for QueueConfig {
    fn default() -> QueueConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        QueueConfig { retry_unit: Duration::from_secs(60), per_function: (4 * cpus).max(8) }
    }
}

impl QueueConfig {
    /// Delay before retry number `attempt` (1-based) after a function error.
    fn retry_delay(&self, attempt: u32) -> Duration {
        self.retry_unit * attempt.max(1)
    }

    /// Delay after the `n`th refusal for want of capacity (1-based): 1/60 of
    /// a unit doubling, at most 5 units.
    fn backoff(&self, n: u32) -> Duration {
        let first = self.retry_unit / 60;
        first.saturating_mul(1 << n.saturating_sub(1).min(16)).min(self.retry_unit * 5)
    }
}

/// The queue as the engine sees it: where to commit events and how to wake
/// the dispatcher.
#[derive(Debug, Clone)]
pub struct Queue {
    store: QueueStore,
    wake: mpsc::UnboundedSender<Arrival>,
}

/// An event for the dispatcher: what it books, and the payload when it
/// came in this run (so running it needs no read of the database).
#[derive(Debug)]
struct Arrival {
    meta: EventMeta,
    body: Option<Body>,
}

/// Payload bytes the dispatcher keeps in memory for queued events; past
/// it, payloads are read back from the database when their turn comes.
const KEEP_BYTES: usize = 64 * 1024 * 1024;

/// Callers count as being answered until this long after the last one
/// came ([`pace`]'s CPU budget applies meanwhile): callers a few hundred
/// milliseconds apart are one stretch of work, not many.
const CALLERS_QUIET_MS: i64 = 250;

/// The receiving half, run once the engine exists ([`Dispatcher::run`]).
#[derive(Debug)]
pub struct Dispatcher {
    store: QueueStore,
    config: QueueConfig,
    incoming: mpsc::UnboundedReceiver<Arrival>,
}

impl Queue {
    pub fn new(store: QueueStore, config: QueueConfig) -> (Queue, Dispatcher) {
        let (wake, incoming) = mpsc::unbounded_channel();
        (Queue { store: store.clone(), wake }, Dispatcher { store, config, incoming })
    }

    /// Commit `event` and hand it to the dispatcher. Returns once it is on disk.
    pub async fn accept(&self, event: NewEvent) -> Result<(), QueueStoreError> {
        let (meta, body) = fresh(&event);
        let id = self.store.insert(event).await?;
        let _ = self.wake.send(Arrival { meta: EventMeta { id, ..meta }, body: Some(body) });
        Ok(())
    }

    /// Replace event `id` by `event` (a destination's record) in one commit,
    /// and hand the new one to the dispatcher.
    async fn forward(&self, id: i64, event: NewEvent) -> Result<(), QueueStoreError> {
        let (meta, body) = fresh(&event);
        let id = self.store.forward(id, event).await?;
        let _ = self.wake.send(Arrival { meta: EventMeta { id, ..meta }, body: Some(body) });
        Ok(())
    }

    pub fn store(&self) -> &QueueStore {
        &self.store
    }

    /// Queue a function's dead letters again (one, with `request_id`).
    pub async fn redrive(&self, function: &str, request_id: Option<String>) -> Result<usize, QueueStoreError> {
        let again = self.store.redrive(function, request_id).await?;
        let n = again.len();
        for meta in again {
            let _ = self.wake.send(Arrival { meta, body: None });
        }
        Ok(n)
    }
}

/// What the dispatcher holds of a new event (its id once stored), and its
/// payload (a cheap copy).
fn fresh(event: &NewEvent) -> (EventMeta, Body) {
    let body = Body { payload: event.payload.clone(), client_context: event.client_context.clone(), last_error: None };
    let meta = EventMeta {
        id: 0,
        request_id: event.request_id.clone(),
        function: event.function.clone(),
        qualifier: event.qualifier.clone(),
        enqueued_ms: event.enqueued_ms,
        attempts: 0,
        due_ms: event.enqueued_ms,
    };
    (meta, body)
}

/// How one attempt ended, for the dispatcher's books.
#[derive(Debug)]
enum Verdict {
    /// Ran (successfully or not) or left the queue: a slot freed by work done.
    Ran,
    /// To run again at this time; `ran` if the function ran and failed.
    Again { due_ms: i64, attempts: u32, ran: bool },
    /// Turned away for want of capacity; try again at `due_ms`.
    Throttled { due_ms: i64 },
}

/// An attempt's end, as its task reports it to the dispatcher.
#[derive(Debug)]
struct Attempted {
    id: i64,
    verdict: Verdict,
    /// Its place in [`Pace`], given back now.
    slot: Slot,
    /// What the run used, if the function ran and it was measured.
    cost: Option<RunCost>,
}

/// An event the dispatcher holds, with what only this run remembers.
#[derive(Debug, Clone)]
struct Held {
    meta: EventMeta,
    /// Refusals for want of capacity so far (drives the backoff).
    throttles: u32,
    /// The payload, when kept in memory (see [`KEEP_BYTES`]).
    body: Option<Body>,
}

impl Dispatcher {
    /// Run events until `stop`: first those already queued (in flight when
    /// the last run stopped included), then whatever arrives.
    pub async fn run(mut self, engine: Arc<Engine>, stop: CancellationToken) {
        let mut held: HashMap<i64, Held> = HashMap::new();
        let mut due: BinaryHeap<Reverse<(i64, i64)>> = BinaryHeap::new();
        // Payload bytes held in memory now.
        let mut kept = 0usize;
        for meta in self.resume().await {
            hold(&mut held, &mut due, &mut kept, Arrival { meta, body: None });
        }
        let (done_tx, mut done) = mpsc::unbounded_channel::<Attempted>();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut pace = Pace::new(cpus);
        // One timer for the next due event, moved only when that changes
        // (`i64::MAX`: nothing is due; `i64::MIN`: it fired).
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed = i64::MIN;
        loop {
            self.launch_due(&engine, &mut held, &mut due, &mut pace, &done_tx, &stop);
            let next = due.peek().map_or(i64::MAX, |Reverse((at, _))| *at);
            if next != armed {
                armed = next;
                let wait = match next {
                    i64::MAX => Duration::from_secs(3600),
                    at => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)),
                };
                timer.as_mut().reset(tokio::time::Instant::now() + wait);
            }
            // Each arm takes everything its channel holds: a burst of
            // arrivals or endings costs one launch round, not one each.
            tokio::select! {
                () = stop.cancelled() => return,
                Some(first) = self.incoming.recv() => {
                    let mut next = Some(first);
                    while let Some(arrival) = next {
                        hold(&mut held, &mut due, &mut kept, arrival);
                        next = self.incoming.try_recv().ok();
                    }
                }
                Some(first) = done.recv() => {
                    let mut next = Some(first);
                    while let Some(ended) = next {
                        // A failed attempt stored its error with the event:
                        // the next one reads the event back from the database.
                        if !matches!(ended.verdict, Verdict::Throttled { .. }) {
                            if let Some(body) = held.get_mut(&ended.id).and_then(|h| h.body.take()) {
                                kept -= body.payload.len();
                            }
                        }
                        settle(&mut held, &mut due, &mut pace, ended, &engine, self.config);
                        next = done.try_recv().ok();
                    }
                }
                () = &mut timer => armed = i64::MIN,
            }
        }
    }

    /// The events queued when the controller started, those in flight when
    /// the last run stopped included.
    async fn resume(&self) -> Vec<EventMeta> {
        match self.store.queued().await {
            Ok(list) => {
                if !list.is_empty() {
                    tracing::info!(events = list.len(), "resuming queued asynchronous events");
                }
                list
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the event queue; queued events wait for a restart");
                Vec::new()
            }
        }
    }

    /// Start every due event its function's pace lets start; park the rest.
    fn launch_due(
        &self,
        engine: &Arc<Engine>,
        held: &mut HashMap<i64, Held>,
        due: &mut BinaryHeap<Reverse<(i64, i64)>>,
        pace: &mut Pace,
        done: &mpsc::UnboundedSender<Attempted>,
        stop: &CancellationToken,
    ) {
        let now = now_ms();
        let callers = now - engine.last_caller_ms() < CALLERS_QUIET_MS;
        while let Some(&Reverse((at, id))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            let Some(h) = held.get(&id) else { continue };
            let Some(slot) = pace.take(&h.meta.function, id, callers) else { continue };
            let (engine, store, config, h, done, stop) =
                (engine.clone(), self.store.clone(), self.config, h.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let (verdict, cost) = attempt(&engine, &store, config, &h, &stop).await;
                let _ = done.send(Attempted { id: h.meta.id, verdict, slot, cost });
            });
        }
    }
}

/// Hold a new event, with its payload while [`KEEP_BYTES`] allows, due
/// when it says.
fn hold(held: &mut HashMap<i64, Held>, due: &mut BinaryHeap<Reverse<(i64, i64)>>, kept: &mut usize, a: Arrival) {
    let Arrival { meta, body } = a;
    let size = body.as_ref().map_or(0, |b| b.payload.len());
    let body = body.filter(|_| *kept + size <= KEEP_BYTES);
    *kept += body.as_ref().map_or(0, |_| size);
    due.push(Reverse((meta.due_ms, meta.id)));
    held.insert(meta.id, Held { meta, throttles: 0, body });
}

/// Book how an attempt ended: give back its slot, schedule what runs
/// again, and make due what its function's pace now lets start.
fn settle(
    held: &mut HashMap<i64, Held>,
    due: &mut BinaryHeap<Reverse<(i64, i64)>>,
    pace: &mut Pace,
    ended: Attempted,
    engine: &Engine,
    config: QueueConfig,
) {
    let Attempted { id, verdict, slot, cost } = ended;
    let Some(h) = held.get_mut(&id) else { return };
    let function = h.meta.function.clone();
    let outcome = match verdict {
        Verdict::Ran => {
            held.remove(&id);
            Outcome::Ran
        }
        Verdict::Again { due_ms, attempts, ran } => {
            h.meta.due_ms = due_ms;
            h.meta.attempts = attempts;
            due.push(Reverse((due_ms, id)));
            if ran {
                Outcome::Ran
            } else {
                Outcome::Neither
            }
        }
        Verdict::Throttled { due_ms } => {
            h.throttles += 1;
            h.meta.due_ms = due_ms;
            due.push(Reverse((due_ms, id)));
            Outcome::Refused
        }
    };
    let cap = engine.function(&function).map_or(1, |f| window_cap(&f, config));
    let now = now_ms();
    for parked in pace.give_back(&function, slot, outcome, cost, cap) {
        due.push(Reverse((now, parked)));
    }
}

/// How many of a function's events may run at once, at most.
fn window_cap(f: &Function, config: QueueConfig) -> usize {
    f.reserved_concurrency.map_or(config.per_function, |r| (r as usize).max(1))
}

/// What the EventInvokeConfig of the version or alias an event was sent
/// to says, or Lambda's defaults.
fn policy(store: &QueueStore, f: &Function, qualifier: Option<&str>) -> EventInvokeConfig {
    store.config(&f.name, qualifier.unwrap_or(LATEST)).unwrap_or_default()
}

/// After failed attempt number `attempts`, whose retry would run when the
/// event is `age_at_retry_ms` old: `None` to retry, or why it ends now.
fn after_failure(attempts: u32, policy: &EventInvokeConfig, age_at_retry_ms: i64) -> Option<Condition> {
    if attempts > policy.retries() {
        Some(Condition::RetriesExhausted)
    } else if age_at_retry_ms > policy.max_age_ms() {
        Some(Condition::EventAgeExceeded)
    } else {
        None
    }
}

/// How an event leaves the queue.
#[derive(Debug)]
enum Ending {
    Succeeded {
        attempts: u32,
        response: bytes::Bytes,
    },
    /// `why` is what a dead letter keeps; `response` the function's last
    /// error document, if it ever ran.
    Failed {
        condition: Condition,
        attempts: u32,
        why: String,
        response: Option<String>,
    },
}

/// Run one event once and record the outcome durably; what the run used,
/// if it ran and was measured.
async fn attempt(
    engine: &Engine,
    store: &QueueStore,
    config: QueueConfig,
    h: &Held,
    stop: &CancellationToken,
) -> (Verdict, Option<RunCost>) {
    let mut cost = None;
    match try_attempt(engine, store, config, h, stop, &mut cost).await {
        Ok(v) => (v, cost),
        Err(e) => {
            // The queue's own disk failed: the event stays as it was stored
            // and runs again later (at least once).
            tracing::error!(error = %e, request_id = %h.meta.request_id, "event queue write failed");
            let due_ms = now_ms() + millis(config.backoff(h.throttles + 1));
            (Verdict::Throttled { due_ms }, cost)
        }
    }
}

async fn try_attempt(
    engine: &Engine,
    store: &QueueStore,
    config: QueueConfig,
    h: &Held,
    stop: &CancellationToken,
    cost: &mut Option<RunCost>,
) -> Result<Verdict, QueueStoreError> {
    let meta = &h.meta;
    let body = match &h.body {
        Some(body) => body.clone(),
        None => match store.body(meta.id).await? {
            Some(body) => body,
            None => return Ok(Verdict::Ran),
        },
    };
    let Some(f) = engine.function(&meta.function) else {
        let why = format!("Function not found: {}", engine.function_arn(&meta.function));
        store.fail(meta.id, meta.attempts, "FunctionNotFound", why).await?;
        return Ok(Verdict::Ran);
    };
    let policy = policy(store, &f, meta.qualifier.as_deref());
    let failed = |condition, why: &str| Ending::Failed {
        condition,
        attempts: meta.attempts,
        why: why.to_owned(),
        response: body.last_error.clone(),
    };
    if now_ms() - meta.enqueued_ms > policy.max_age_ms() {
        let ending = failed(Condition::EventAgeExceeded, "The event was older than the function's maximum event age");
        conclude(engine, meta, &body, &policy, ending).await?;
        return Ok(Verdict::Ran);
    }
    if f.reserved_concurrency == Some(0) {
        conclude(
            engine,
            meta,
            &body,
            &policy,
            failed(Condition::RetriesExhausted, "The function's reserved concurrency is 0"),
        )
        .await?;
        return Ok(Verdict::Ran);
    }
    let request = InvokeRequest {
        function: FunctionRef { qualifier: meta.qualifier.clone(), ..FunctionRef::named(&meta.function) },
        payload: body.payload.clone(),
        client_context: body.client_context.clone(),
        log_tail: false,
        request_id: Some(meta.request_id.clone()),
        queued: true,
    };
    let outcome = engine.invoke(request).await;
    *cost = outcome.as_ref().ok().and_then(|out| out.cost);
    if stop.is_cancelled() {
        // The controller is stopping and removing containers under the
        // invocation: whatever happened, the event stays as stored and
        // runs again at the next start (at least once), no attempt spent.
        return Ok(Verdict::Throttled { due_ms: now_ms() });
    }
    match outcome {
        Ok(out) if out.function_error.is_none() => {
            let ending = Ending::Succeeded { attempts: meta.attempts + 1, response: out.payload };
            conclude(engine, meta, &body, &policy, ending).await?;
            Ok(Verdict::Ran)
        }
        Ok(out) => {
            let attempts = meta.attempts + 1;
            let error = String::from_utf8_lossy(&out.payload).into_owned();
            let due_ms = now_ms() + millis(config.retry_delay(attempts));
            if let Some(condition) = after_failure(attempts, &policy, due_ms - meta.enqueued_ms) {
                let ending = Ending::Failed { condition, attempts, why: error.clone(), response: Some(error) };
                conclude(engine, meta, &body, &policy, ending).await?;
                return Ok(Verdict::Ran);
            }
            store.retry(meta.id, attempts, due_ms, error).await?;
            Ok(Verdict::Again { due_ms, attempts, ran: true })
        }
        Err(EngineError::NotFound(why)) => {
            store.fail(meta.id, meta.attempts, "FunctionNotFound", why).await?;
            Ok(Verdict::Ran)
        }
        Err(e) => {
            // No capacity, or lambdabox could not start a container: not the
            // function's failure, so not an attempt.
            if !matches!(e, EngineError::Throttled(_)) {
                tracing::warn!(error = %e, request_id = %meta.request_id, "asynchronous event will be retried");
            }
            Ok(Verdict::Throttled { due_ms: now_ms() + millis(config.backoff(h.throttles + 1)) })
        }
    }
}

/// Take an event out of the queue as it ended: to its destination as a
/// record (one commit replaces the event by the record's), else forgotten
/// (a success) or kept as a dead letter (a failure).
async fn conclude(
    engine: &Engine,
    meta: &EventMeta,
    body: &Body,
    policy: &EventInvokeConfig,
    ending: Ending,
) -> Result<(), QueueStoreError> {
    let (destination, condition, attempts, response) = match &ending {
        Ending::Succeeded { attempts, response } => {
            (policy.on_success.as_deref(), Condition::Success, *attempts, Some(&response[..]))
        }
        Ending::Failed { condition, attempts, response, .. } => {
            (policy.on_failure.as_deref(), *condition, *attempts, response.as_deref().map(str::as_bytes))
        }
    };
    let at_ms = now_ms();
    let qualifier = meta.qualifier.as_deref().unwrap_or(LATEST);
    let function_arn = format!("{}:{qualifier}", engine.function_arn(&meta.function));
    let record = Record {
        request_id: &meta.request_id,
        function_arn: &function_arn,
        condition,
        invoke_count: attempts,
        request_payload: &body.payload,
        response,
        at_ms,
    };
    if destination.is_some_and(|arn| engine.is_default_bus(arn)) {
        return to_bus(engine, meta, &function_arn, condition, &record.to_json()).await;
    }
    let target = destination.and_then(|arn| match engine.destination(arn, &meta.function) {
        Ok(name) => Some(name),
        Err(e) => {
            tracing::warn!(function = %meta.function, destination = arn, error = %e, "destination unusable; event kept");
            None
        }
    });
    let store = engine.queue().store();
    let Some(target) = target else {
        return match ending {
            Ending::Succeeded { .. } => {
                store.forget(meta.id);
                Ok(())
            }
            Ending::Failed { condition, attempts, why, .. } => {
                store.fail(meta.id, attempts, condition.as_str(), why).await
            }
        };
    };
    let event = NewEvent {
        request_id: uuid::Uuid::new_v4().to_string(),
        function: target,
        qualifier: None,
        payload: record.to_json(),
        client_context: None,
        enqueued_ms: at_ms,
    };
    engine.queue().forward(meta.id, event).await
}

/// Send an invocation record to the default event bus: its matching
/// rules' targets are queued, then the event leaves the queue (at least
/// once: a crash between the two sends the record again).
async fn to_bus(
    engine: &Engine,
    meta: &EventMeta,
    function_arn: &str,
    condition: Condition,
    record: &bytes::Bytes,
) -> Result<(), QueueStoreError> {
    let event = engine.record_event(function_arn, condition == Condition::Success, record);
    if let Err(e) = engine.publish(&event).await {
        return match e {
            EngineError::Queue(e) => Err(e),
            other => Err(QueueStoreError::Io(std::io::Error::other(other.to_string()))),
        };
    }
    engine.queue().store().delete(meta.id).await
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_retry_pacing_scales_with_the_unit() {
        let lambda = QueueConfig::default();
        assert_eq!(lambda.retry_delay(1), Duration::from_secs(60));
        assert_eq!(lambda.retry_delay(2), Duration::from_secs(120));
        assert_eq!(lambda.backoff(1), Duration::from_secs(1));
        assert_eq!(lambda.backoff(2), Duration::from_secs(2));
        assert_eq!(lambda.backoff(9), Duration::from_secs(256));
        assert_eq!(lambda.backoff(10), Duration::from_secs(300), "capped at 5 minutes");
        assert_eq!(lambda.backoff(40), Duration::from_secs(300));
        let fast = QueueConfig { retry_unit: Duration::from_millis(600), per_function: 1 };
        assert_eq!(fast.retry_delay(2), Duration::from_millis(1200));
        assert_eq!(fast.backoff(1), Duration::from_millis(10));
    }

    #[test]
    fn a_failed_event_ends_when_out_of_retries_or_when_its_retry_would_be_too_old() {
        let lambda = QueueConfig::default();
        let defaults = EventInvokeConfig::default();
        let age_at_retry = |attempts| millis(lambda.retry_delay(attempts)) + 1_000;
        assert_eq!(after_failure(1, &defaults, age_at_retry(1)), None);
        assert_eq!(after_failure(2, &defaults, age_at_retry(2)), None);
        assert_eq!(after_failure(3, &defaults, age_at_retry(3)), Some(Condition::RetriesExhausted));
        let none = EventInvokeConfig { max_retries: Some(0), ..Default::default() };
        assert_eq!(after_failure(1, &none, age_at_retry(1)), Some(Condition::RetriesExhausted));
        // Lambda's recorded behaviour: with a 60 s maximum age the first
        // retry (a minute later) would be too old, so the event ends after
        // one attempt, without waiting.
        let young = EventInvokeConfig { max_age_s: Some(60), ..Default::default() };
        assert_eq!(after_failure(1, &young, age_at_retry(1)), Some(Condition::EventAgeExceeded));
        let roomy = EventInvokeConfig { max_age_s: Some(120), ..Default::default() };
        assert_eq!(after_failure(1, &roomy, age_at_retry(1)), None);
        assert_eq!(after_failure(2, &roomy, 60_000 + age_at_retry(2)), Some(Condition::EventAgeExceeded));
    }
}
