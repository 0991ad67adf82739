//! One synchronous invocation: lease a container, hand the event to its
//! runtime, wait within Lambda's bounds, and turn what happened into
//! Lambda's answer.
//!
//! The work runs in its own task, so a caller that hangs up does not leave a
//! container half-used: the invocation finishes (as on Lambda) and the
//! container goes back to the pool. The caller's own wait is capped at the
//! queue timeout + init allowance + function timeout + a small grace.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;

use super::stream::{Answer, Streaming};
use super::{Engine, EngineError, InvokeRequest, InvokeResponse, RunCost};
use crate::backend::BackendError;
use crate::function::{self, Function};
use crate::images::Images;
use crate::logs::{PlatformLines, Report};
use crate::pool::{Launch, Lease, Pool, PoolError, Wait, BEHIND_STARTS_MAX, INIT_TIMEOUT};
use crate::runtime_api::{ExitReason, Invocation, Outcome, Ticket};

/// Slack on top of every bound before a caller is answered regardless.
const GRACE: Duration = Duration::from_secs(1);

impl Engine {
    /// Invoke (RequestResponse): the whole answer, a streamed one gathered.
    pub async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, EngineError> {
        match self.invoke_streaming(req).await? {
            Answer::Buffered(out) => Ok(out),
            Answer::Streamed(streamed) => Ok(streamed.collect().await),
        }
    }

    /// Invoke (RequestResponse), the answer streamed when the function
    /// streams it (InvokeWithResponseStream, RESPONSE_STREAM URLs).
    pub async fn invoke_streaming(&self, req: InvokeRequest) -> Result<Answer, EngineError> {
        if req.payload.len() > function::MAX_SYNC_PAYLOAD {
            return Err(EngineError::RequestTooLarge(format!(
                "Request must be smaller than {} bytes for the InvokeFunction operation",
                function::MAX_SYNC_PAYLOAD
            )));
        }
        if !req.queued {
            self.mark_caller();
        }
        let f = self.resolve_as(&req.function.or_latest(), super::Route::Draw)?;
        let launch = self.launch(&f).await?;
        let request_id = req.request_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let wait = if req.queued { Wait::Never } else { Wait::Queue };
        let timeout = Duration::from_secs(u64::from(f.timeout_s));
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload: req.payload,
            function_arn: self.realm.function_arn(&req.function.to_string()),
            trace_id: trace_id(),
            client_context: req.client_context,
            cognito_identity: None,
            timeout,
        };
        let cap = self.pool.config().queue_timeout + BEHIND_STARTS_MAX + INIT_TIMEOUT + timeout + GRACE;
        let task = tokio::spawn(run(self.pool.clone(), self.images.clone(), launch, invocation, req.log_tail, wait));
        match tokio::time::timeout(cap, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(source)) => Err(EngineError::Task { what: "invocation task", source }),
            Err(_) => Ok(Answer::Buffered(respond(Settled::TimedOut, &request_id, &f))),
        }
    }
}

/// How many containers one invocation may be handed to when each goes away
/// before taking it (see [`Outcome::NotTaken`]); then it fails as an exit.
const HANDOFFS: usize = 3;

/// The invocation proper, in its own task.
async fn run(
    pool: Pool,
    images: Arc<Images>,
    launch: Launch,
    invocation: Invocation,
    want_tail: bool,
    wait: Wait,
) -> Result<Answer, EngineError> {
    let request_id = invocation.request_id.clone();
    let f = launch.function.clone();
    for handoff in 1.. {
        let lease = lease(&pool, &images, launch.clone(), wait).await?;
        let container = lease.container().clone();
        let cold = container.invocations() == 0 && !container.provisioned;
        let lines = PlatformLines::of(&f.logging);
        container.log.begin(&request_id, &f.version_label(), lines);
        // A queued event's run is weighed by the CPU it uses (see
        // [`crate::queue`]); a caller's is not, to spare it the reads.
        let cpu_before = if wait == Wait::Never { container.cpu_time() } else { None };
        let delivered = Instant::now();
        let ticket = container.mailbox.deliver(invocation.clone())?;
        let (settled, taken) = settle(ticket).await;
        if matches!(settled, Settled::Done(Outcome::NotTaken(_))) && handoff < HANDOFFS {
            // The function never saw it: no START/REPORT here, try another container.
            container.log.abandon();
            lease.discard();
            continue;
        }
        if let Settled::Done(Outcome::Streamed(stream)) = settled {
            let taken = taken.unwrap_or(delivered);
            let streaming = Streaming { lease, function: f, request_id, taken, cold, want_tail };
            return Ok(Answer::Streamed(streaming.follow(stream)));
        }
        let report = Report {
            request_id: request_id.clone(),
            duration: taken.unwrap_or(delivered).elapsed(),
            memory_mb: container.memory_mb,
            max_memory_used_mb: None,
            init_duration: taken.filter(|_| cold).map(|t| t.saturating_duration_since(container.started)),
            timed_out: matches!(settled, Settled::TimedOut).then_some(f.timeout_s),
            lines,
        };
        // Read only when there is a before (`zip` would read it for every caller too).
        let cost = cpu_before.and_then(|before| {
            let after = container.cpu_time()?;
            Some(RunCost { cpu: after.saturating_sub(before), wall: report.duration })
        });
        let log_tail = container.log.finish(report, want_tail);
        if matches!(settled, Settled::Done(_)) {
            lease.release();
        } else {
            container.mailbox.cancel(&request_id);
            lease.discard();
        }
        return Ok(Answer::Buffered(InvokeResponse { log_tail, cost, ..respond(settled, &request_id, &f) }));
    }
    unreachable!("the loop returns by its last handoff")
}

/// A lease on a container for `launch`; rebuilds the runtime image once if
/// it disappeared behind our back.
async fn lease(pool: &Pool, images: &Images, mut launch: Launch, wait: Wait) -> Result<Lease, EngineError> {
    match pool.acquire(&launch, wait).await {
        Ok(lease) => Ok(lease),
        Err(PoolError::Backend(BackendError::ImageMissing(image))) => {
            let Some(runtime) = launch.runtime else {
                let uri = launch.function.image.as_ref().map_or("", |i| i.uri.as_str()).to_owned();
                return Err(EngineError::ImageGone { image, uri });
            };
            images.forget(runtime);
            launch.image = images.ensure(runtime).await?;
            Ok(pool.acquire(&launch, wait).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// How waiting for an invocation ended.
#[derive(Debug)]
pub(super) enum Settled {
    Done(Outcome),
    /// The function ran past its deadline.
    TimedOut,
    /// The runtime never asked for the event.
    InitTimedOut,
}

/// What a dropped reply channel means: the container went away.
fn vanished() -> Outcome {
    Outcome::Exited(ExitReason::Removed)
}

/// Wait for the runtime to take the event (bounded by [`INIT_TIMEOUT`]),
/// then for its answer (bounded by the deadline it was given). Also says
/// when the runtime took the event, if it did.
async fn settle(ticket: Ticket) -> (Settled, Option<Instant>) {
    let Ticket { accepted, mut outcome } = ticket;
    let deadline = tokio::select! {
        biased;
        done = &mut outcome => return (Settled::Done(done.unwrap_or_else(|_| vanished())), None),
        taken = tokio::time::timeout(INIT_TIMEOUT, accepted) => match taken {
            Ok(Ok(deadline)) => deadline,
            // Settled without being taken (init error, exit): the outcome is ready.
            Ok(Err(_)) => return (Settled::Done(outcome.await.unwrap_or_else(|_| vanished())), None),
            Err(_) => return (Settled::InitTimedOut, None),
        },
    };
    let taken = Instant::now();
    match tokio::time::timeout_at(deadline, outcome).await {
        Ok(done) => (Settled::Done(done.unwrap_or_else(|_| vanished())), Some(taken)),
        Err(_) => (Settled::TimedOut, Some(taken)),
    }
}

/// Lambda's platform error document.
pub(super) fn platform_error(error_type: &str, message: String) -> Bytes {
    serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string().into()
}

/// Turn how an invocation of `f` settled into Lambda's answer.
pub(super) fn respond(settled: Settled, request_id: &str, f: &Function) -> InvokeResponse {
    let timeout_s = f.timeout_s;
    let answered = |payload: Bytes| InvokeResponse {
        payload,
        function_error: None,
        executed_version: f.version_label(),
        request_id: request_id.to_owned(),
        log_tail: None,
        cost: None,
    };
    let payload = match settled {
        Settled::Done(Outcome::Response(body)) => return answered(body),
        // `run` hands a stream to [`Streaming`] before it could get here.
        Settled::Done(Outcome::Streamed(_)) => return answered(Bytes::new()),
        Settled::Done(Outcome::Error { body, error_type }) => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
                body
            } else {
                let message = String::from_utf8_lossy(&body).into_owned();
                platform_error(error_type.as_deref().unwrap_or("Runtime.Unknown"), message)
            }
        }
        Settled::Done(Outcome::ResponseTooLarge) => platform_error(
            "Function.ResponseSizeTooLarge",
            format!(
                "Response payload size exceeded maximum allowed payload size ({} bytes).",
                crate::runtime_api::MAX_RESPONSE
            ),
        ),
        Settled::Done(Outcome::NotTaken(reason) | Outcome::Exited(reason)) => exit_error(reason, request_id),
        Settled::Done(Outcome::NotStarted(why)) => {
            platform_error("Runtime.InvalidEntrypoint", format!("RequestId: {request_id} Error: {why}"))
        }
        Settled::TimedOut => platform_error(
            "Sandbox.Timedout",
            format!("RequestId: {request_id} Error: Task timed out after {timeout_s}.00 seconds"),
        ),
        Settled::InitTimedOut => {
            platform_error("Runtime.InitError", format!("RequestId: {request_id} Error: {}", init_timed_out()))
        }
    };
    InvokeResponse {
        payload,
        function_error: Some("Unhandled"),
        executed_version: f.version_label(),
        request_id: request_id.to_owned(),
        log_tail: None,
        cost: None,
    }
}

/// Lambda's error document for a runtime that went away, in its init or
/// during the invocation alike: `Runtime.ExitError`, worded as Lambda words
/// it (Go's `os/exec`: a clean exit has no error, hence "without providing
/// a reason").
pub(super) fn exit_error(reason: ExitReason, request_id: &str) -> Bytes {
    let (kind, detail) = match reason {
        ExitReason::Code(0) => ("Runtime.ExitError", "Runtime exited without providing a reason".to_owned()),
        ExitReason::Code(c) => ("Runtime.ExitError", format!("Runtime exited with error: exit status {c}")),
        ExitReason::Signal(s) => {
            ("Runtime.ExitError", format!("Runtime exited with error: signal: {}", signal_name(s)))
        }
        ExitReason::OutOfMemory => ("Runtime.OutOfMemory", "Runtime exited with error: signal: killed".to_owned()),
        ExitReason::Removed => ("Runtime.ExitError", "Runtime exited without providing a reason".to_owned()),
        ExitReason::ConnectionLost => {
            ("Runtime.ExitError", "Runtime exited without providing a reason: its container was lost".to_owned())
        }
        ExitReason::InitTimedOut => ("Runtime.InitError", init_timed_out()),
    };
    platform_error(kind, format!("RequestId: {request_id} Error: {detail}"))
}

fn init_timed_out() -> String {
    format!("Runtime did not ask for its first event within {}.00 seconds", INIT_TIMEOUT.as_secs())
}

/// Signal names as Lambda (Go's os/exec) prints them.
fn signal_name(sig: i32) -> String {
    match sig {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        3 => "quit".into(),
        4 => "illegal instruction".into(),
        6 => "aborted".into(),
        7 => "bus error".into(),
        8 => "floating point exception".into(),
        9 => "killed".into(),
        11 => "segmentation fault".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        other => format!("signal {other}"),
    }
}

/// An X-Ray style trace header for `Lambda-Runtime-Trace-Id`.
fn trace_id() -> String {
    let epoch = chrono::Utc::now().timestamp();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{epoch:08x}-{};Parent={};Sampled=0", &id[..24], &parent[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function that times out after 3 seconds.
    fn f() -> Function {
        Function { timeout_s: 3, ..Function::default() }
    }

    fn json(r: &InvokeResponse) -> serde_json::Value {
        serde_json::from_slice(&r.payload).unwrap()
    }

    fn exited(reason: ExitReason) -> Settled {
        Settled::Done(Outcome::Exited(reason))
    }

    #[test]
    fn timeouts_read_like_lambdas() {
        let r = respond(Settled::TimedOut, "abc", &f());
        assert_eq!(r.function_error, Some("Unhandled"));
        assert_eq!(json(&r)["errorType"], "Sandbox.Timedout");
        assert_eq!(json(&r)["errorMessage"], "RequestId: abc Error: Task timed out after 3.00 seconds");
    }

    #[test]
    fn exits_read_like_lambdas() {
        let r = respond(exited(ExitReason::Code(42)), "id", &f());
        assert_eq!(json(&r)["errorType"], "Runtime.ExitError");
        assert_eq!(json(&r)["errorMessage"], "RequestId: id Error: Runtime exited with error: exit status 42");
        let r = respond(exited(ExitReason::Signal(9)), "id", &f());
        assert!(json(&r)["errorMessage"].as_str().unwrap().ends_with("signal: killed"));
        let r = respond(exited(ExitReason::OutOfMemory), "id", &f());
        assert_eq!(json(&r)["errorType"], "Runtime.OutOfMemory");
        // A clean exit (sys.exit(0) at import, or after an answer) is no error to Go's os/exec.
        let r = respond(exited(ExitReason::Code(0)), "id", &f());
        assert_eq!(json(&r)["errorType"], "Runtime.ExitError");
        assert_eq!(json(&r)["errorMessage"], "RequestId: id Error: Runtime exited without providing a reason");
        let r = respond(Settled::Done(Outcome::NotTaken(ExitReason::Code(1))), "id", &f());
        assert_eq!(json(&r)["errorMessage"], "RequestId: id Error: Runtime exited with error: exit status 1");
    }

    #[test]
    fn runtime_errors_pass_through_and_garbage_is_wrapped() {
        let doc = Bytes::from_static(br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#);
        let r = respond(Settled::Done(Outcome::Error { body: doc.clone(), error_type: None }), "id", &f());
        assert_eq!(r.payload, doc);
        let garbage = Outcome::Error { body: Bytes::from_static(b"not json"), error_type: Some("Function.X".into()) };
        let r = respond(Settled::Done(garbage), "id", &f());
        assert_eq!(json(&r)["errorType"], "Function.X");
        let ok = respond(Settled::Done(Outcome::Response(Bytes::from_static(b"1"))), "id", &f());
        assert_eq!((ok.function_error, ok.payload.as_ref()), (None, &b"1"[..]));
    }

    #[test]
    fn trace_ids_have_xray_shape() {
        let t = trace_id();
        assert!(t.starts_with("Root=1-") && t.contains(";Parent=") && t.ends_with(";Sampled=0"), "{t}");
    }
}
