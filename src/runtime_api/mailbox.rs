//! One container's mailbox: where the pool drops an invocation and the
//! runtime's `next` long-poll picks it up, and where the runtime's answer (or
//! the container's death) is turned into the caller's [`Outcome`].
//!
//! Each invocation's reply is a oneshot sender held in exactly one place (the
//! pending slot, then the in-flight slot), so it is resolved exactly once,
//! whichever comes first: response, error, init error, exit or cancellation.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};

/// An event on its way to a runtime, with what the `next` headers carry.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub function_arn: String,
    pub trace_id: String,
    /// JSON, already decoded from the Invoke call's base64 header.
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    /// The function's timeout; the deadline starts when the runtime takes the event.
    pub timeout: Duration,
}

/// How an invocation ended, as far as the container could tell.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `POST …/response`: the function's result.
    Response(Bytes),
    /// `POST …/response` in streaming mode: the response as it is written.
    /// The invocation goes on until the stream ends.
    Streamed(super::ResponseStream),
    /// `POST …/error` or `POST /runtime/init/error`: the runtime's error document
    /// and the type from `Lambda-Runtime-Function-Error-Type`, if sent.
    Error { body: Bytes, error_type: Option<String> },
    /// The runtime posted a response larger than Lambda allows.
    ResponseTooLarge,
    /// The bootstrap (or the whole container) went away first: during its
    /// init, or while this event was its to answer.
    Exited(ExitReason),
    /// The runtime went away after serving earlier events, without asking
    /// for this one (aws-lambda-go ends its process right after reporting
    /// a panic): the function never saw the event, so it may run elsewhere.
    NotTaken(ExitReason),
    /// The bootstrap could not be started at all; lambdabox-init's words
    /// for why, which are Lambda's (`Runtime.InvalidEntrypoint`).
    NotStarted(String),
}

/// The status lambdabox-init ends with when it cannot start the bootstrap
/// (a shell's "command not found").
const EXIT_NOT_STARTED: i32 = 127;

/// Why a container's runtime is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The bootstrap exited with this status.
    Code(i32),
    /// The bootstrap was killed by this signal.
    Signal(i32),
    /// The kernel's OOM killer ended it: over the function's MemorySize.
    OutOfMemory,
    /// Removed by lambdabox (timeout, shutdown, retirement) or behind its back.
    Removed,
    /// Removed because the runtime did not ask for an event within the
    /// init timeout.
    InitTimedOut,
    /// Its remote transport's connection broke ([`crate::remote`]): the
    /// container is as good as dead.
    ConnectionLost,
}

/// The caller's side of a delivered invocation.
#[derive(Debug)]
pub struct Ticket {
    /// Fires with the deadline when a runtime takes the event.
    pub accepted: oneshot::Receiver<Instant>,
    /// Fires with the outcome.
    pub outcome: oneshot::Receiver<Outcome>,
}

/// What a runtime's `next` receives.
#[derive(Debug, Clone)]
pub struct NextEvent {
    pub invocation: Invocation,
    /// Lambda-Runtime-Deadline-Ms: milliseconds since the epoch.
    pub deadline_epoch_ms: u128,
}

/// A mailbox already holding an invocation was handed another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("container is busy with another invocation")]
pub struct Busy;

/// Errors the Runtime API answers with, by Lambda's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    /// 400: no such invocation in this container.
    #[error("Invalid request ID")]
    InvalidRequestId,
    /// 403: the invocation was already answered, or init/error after init.
    #[error("Invalid state transition")]
    InvalidStateTransition,
}

struct Pending {
    invocation: Invocation,
    accepted: oneshot::Sender<Instant>,
    reply: oneshot::Sender<Outcome>,
}

struct InFlight {
    request_id: String,
    reply: oneshot::Sender<Outcome>,
    deadline: Instant,
    /// A runtime's answer is being read; a second one is refused at once.
    answering: bool,
}

#[derive(Default)]
struct State {
    pending: Option<Pending>,
    in_flight: Option<InFlight>,
    /// The request id answered last, so a second answer gets 403 not 400.
    last_done: Option<String>,
    /// Set once the runtime has taken its first event.
    initialized: bool,
    /// Set once the runtime has called `next` at all: its init is done.
    ready: bool,
    init_error: Option<(Bytes, Option<String>)>,
    exit: Option<ExitReason>,
    /// Why the bootstrap could not be started, when it could not.
    not_started: Option<String>,
    /// How lambdabox-init said the bootstrap ended, when that alone cannot
    /// settle it (a SIGKILL may be the OOM killer's: Docker knows which).
    reported: Option<ExitReason>,
    /// For a generic container: what its init is to run, once decided.
    specialization: Option<Bytes>,
}

impl State {
    /// How an event the runtime never took settles when it is gone: its
    /// failure if the runtime never served (it died in init), else free to
    /// run elsewhere.
    fn untaken(&self, reason: ExitReason) -> Outcome {
        if let Some(why) = &self.not_started {
            Outcome::NotStarted(why.clone())
        } else if self.initialized {
            Outcome::NotTaken(reason)
        } else {
            Outcome::Exited(reason)
        }
    }
}

/// See the module documentation.
#[derive(Default)]
pub struct Mailbox {
    state: Mutex<State>,
    /// Wakes the runtime's `next` when an invocation arrives.
    wake: Notify,
    /// Wakes those waiting for the runtime to become ready (or die).
    settled_init: Notify,
    /// Wakes a generic container's init waiting to be specialized.
    specialized: Notify,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("Mailbox")
            .field("pending", &s.pending.is_some())
            .field("in_flight", &s.in_flight.as_ref().map(|i| &i.request_id))
            .field("exit", &s.exit)
            .finish()
    }
}

impl Mailbox {
    pub fn new() -> Mailbox {
        Mailbox::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("mailbox poisoned")
    }

    /// Tell a generic container's init what to run (see
    /// `runtimes/init/src/specialize.rs` for the body's format).
    pub fn specialize(&self, body: Bytes) {
        self.lock().specialization = Some(body);
        self.specialized.notify_waiters();
    }

    /// Init's long poll: what to run, once the pool has decided. `None` if
    /// the container is finished first.
    pub async fn specialization(&self) -> Option<Bytes> {
        loop {
            let notified = self.specialized.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.lock();
                if let Some(body) = &s.specialization {
                    return Some(body.clone());
                }
                if s.exit.is_some() {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Hand an invocation to this container. The pool guarantees one at a
    /// time, so [`Busy`] means a bug upstream, reported rather than queued.
    pub fn deliver(&self, invocation: Invocation) -> Result<Ticket, Busy> {
        let (accepted_tx, accepted) = oneshot::channel();
        let (reply_tx, outcome) = oneshot::channel();
        let mut s = self.lock();
        if s.pending.is_some() || s.in_flight.is_some() {
            return Err(Busy);
        }
        if let Some((body, error_type)) = s.init_error.clone() {
            let _ = reply_tx.send(Outcome::Error { body, error_type });
        } else if let Some(reason) = s.exit {
            let _ = reply_tx.send(s.untaken(reason));
        } else {
            s.pending = Some(Pending { invocation, accepted: accepted_tx, reply: reply_tx });
            drop(s);
            self.wake.notify_one();
        }
        Ok(Ticket { accepted, outcome })
    }

    /// The runtime's long-poll: wait for the next event. `None` once the
    /// container is finished (the runtime should exit).
    pub async fn next(&self) -> Option<NextEvent> {
        loop {
            let notified = self.wake.notified();
            {
                let mut s = self.lock();
                if s.exit.is_some() {
                    return None;
                }
                if !s.ready {
                    s.ready = true;
                    self.settled_init.notify_waiters();
                }
                if let Some(p) = s.pending.take() {
                    let deadline = Instant::now() + p.invocation.timeout;
                    let epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + p.invocation.timeout;
                    s.initialized = true;
                    s.in_flight = Some(InFlight {
                        request_id: p.invocation.request_id.clone(),
                        reply: p.reply,
                        deadline,
                        answering: false,
                    });
                    let _ = p.accepted.send(deadline);
                    return Some(NextEvent { invocation: p.invocation, deadline_epoch_ms: epoch.as_millis() });
                }
            }
            notified.await;
        }
    }

    /// A runtime starts posting an answer to `request_id`: check, from the
    /// request line alone, that it is the invocation in flight and nobody is
    /// answering it yet, and claim it. Returns the invocation's deadline,
    /// which bounds how long its body may take.
    pub fn begin_answer(&self, request_id: &str) -> Result<Instant, MailboxError> {
        let mut s = self.lock();
        let last_done = s.last_done.as_deref() == Some(request_id);
        match s.in_flight.as_mut() {
            Some(f) if f.request_id == request_id && !f.answering => {
                f.answering = true;
                Ok(f.deadline)
            }
            Some(f) if f.request_id == request_id => Err(MailboxError::InvalidStateTransition),
            _ if last_done => Err(MailboxError::InvalidStateTransition),
            _ => Err(MailboxError::InvalidRequestId),
        }
    }

    /// Whether `POST /runtime/init/error` may still be posted, checked
    /// before its body is read.
    pub fn can_init_error(&self) -> Result<(), MailboxError> {
        let s = self.lock();
        if s.initialized || s.init_error.is_some() {
            return Err(MailboxError::InvalidStateTransition);
        }
        Ok(())
    }

    /// `POST …/{id}/response` or `…/{id}/error`: settle the in-flight invocation.
    pub fn complete(&self, request_id: &str, outcome: Outcome) -> Result<(), MailboxError> {
        let mut s = self.lock();
        match s.in_flight.take() {
            Some(f) if f.request_id == request_id => {
                s.last_done = Some(f.request_id);
                let _ = f.reply.send(outcome);
                Ok(())
            }
            other => {
                s.in_flight = other;
                if s.last_done.as_deref() == Some(request_id) {
                    Err(MailboxError::InvalidStateTransition)
                } else {
                    Err(MailboxError::InvalidRequestId)
                }
            }
        }
    }

    /// `POST /runtime/init/error`: the function cannot start. Every
    /// invocation this container is given from now on gets this error.
    pub fn init_error(&self, body: Bytes, error_type: Option<String>) -> Result<(), MailboxError> {
        let mut s = self.lock();
        if s.initialized || s.init_error.is_some() {
            return Err(MailboxError::InvalidStateTransition);
        }
        if let Some(p) = s.pending.take() {
            let _ = p.reply.send(Outcome::Error { body: body.clone(), error_type: error_type.clone() });
        }
        s.init_error = Some((body, error_type));
        Ok(())
    }

    /// The runtime or its container is gone; settle whatever waits. The first
    /// reason reported wins (lambdabox-init's own report comes before Docker's).
    pub fn exited(&self, reason: ExitReason) {
        let mut s = self.lock();
        if s.exit.is_none() {
            s.exit = Some(reason);
        }
        let reason = s.exit.unwrap_or(reason);
        if let Some(p) = s.pending.take() {
            let _ = p.reply.send(s.untaken(reason));
        }
        if let Some(f) = s.in_flight.take() {
            let _ = f.reply.send(Outcome::Exited(reason));
        }
        drop(s);
        self.wake.notify_one();
        self.settled_init.notify_waiters();
        self.specialized.notify_waiters();
    }

    /// lambdabox-init could not start the bootstrap: whatever waits, and
    /// whatever is delivered later, gets `why`.
    pub fn not_started(&self, why: String) {
        self.lock().not_started = Some(why);
        self.exited(ExitReason::Code(EXIT_NOT_STARTED));
    }

    /// Whether the runtime has finished init (called `next` at least once).
    pub fn is_ready(&self) -> bool {
        self.lock().ready
    }

    /// Wait until the runtime is ready (`true`) or the container is gone (`false`).
    pub async fn wait_ready(&self) -> bool {
        loop {
            let notified = self.settled_init.notified();
            {
                let s = self.lock();
                if s.exit.is_some() {
                    return false;
                }
                if s.ready {
                    return true;
                }
            }
            notified.await;
        }
    }

    /// Remember lambdabox-init's report without settling anything yet.
    pub fn note_exit(&self, reason: ExitReason) {
        self.lock().reported = Some(reason);
    }

    /// What [`Mailbox::note_exit`] recorded, if anything.
    pub fn noted_exit(&self) -> Option<ExitReason> {
        self.lock().reported
    }

    /// Whether the runtime is gone or going: it exited, was reported
    /// exiting, or its container was retired.
    pub fn is_finished(&self) -> bool {
        let s = self.lock();
        s.exit.is_some() || s.reported.is_some()
    }

    /// Drop an invocation the caller gave up on (its deadline passed); a
    /// late answer from the runtime then gets 400.
    pub fn cancel(&self, request_id: &str) {
        let mut s = self.lock();
        if s.pending.as_ref().is_some_and(|p| p.invocation.request_id == request_id) {
            s.pending = None;
        }
        if s.in_flight.as_ref().is_some_and(|f| f.request_id == request_id) {
            s.in_flight = None;
        }
    }

    /// Whether this container can take another invocation.
    pub fn is_usable(&self) -> bool {
        let s = self.lock();
        s.exit.is_none() && s.init_error.is_none() && s.pending.is_none() && s.in_flight.is_none()
    }
}

#[cfg(test)]
impl Invocation {
    /// An invocation of `{}` with request id `id`, for tests that play the
    /// runtime's side.
    pub(crate) fn for_tests(id: &str, timeout: Duration) -> Invocation {
        Invocation {
            request_id: id.into(),
            payload: Bytes::from_static(b"{}"),
            function_arn: "arn".into(),
            trace_id: String::new(),
            client_context: None,
            cognito_identity: None,
            timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(id: &str) -> Invocation {
        Invocation::for_tests(id, Duration::from_secs(3))
    }

    #[tokio::test]
    async fn response_reaches_the_caller_once() {
        let mb = Mailbox::new();
        let ticket = mb.deliver(invocation("r1")).unwrap();
        assert!(mb.deliver(invocation("r2")).is_err(), "one at a time");
        let next = mb.next().await.unwrap();
        assert_eq!(next.invocation.request_id, "r1");
        assert!(ticket.accepted.await.is_ok());
        assert_eq!(mb.complete("nope", Outcome::Response(Bytes::new())), Err(MailboxError::InvalidRequestId));
        mb.complete("r1", Outcome::Response(Bytes::from_static(b"42"))).unwrap();
        assert_eq!(mb.complete("r1", Outcome::Response(Bytes::new())), Err(MailboxError::InvalidStateTransition));
        assert_eq!(ticket.outcome.await.unwrap(), Outcome::Response(Bytes::from_static(b"42")));
        assert!(mb.is_usable());
    }

    #[tokio::test]
    async fn answers_are_claimed_before_their_bodies_are_read() {
        let mb = Mailbox::new();
        assert_eq!(mb.begin_answer("r1"), Err(MailboxError::InvalidRequestId), "nothing in flight");
        let _ticket = mb.deliver(invocation("r1")).unwrap();
        assert_eq!(mb.begin_answer("r1"), Err(MailboxError::InvalidRequestId), "not yet taken");
        mb.next().await.unwrap();
        assert_eq!(mb.begin_answer("bogus"), Err(MailboxError::InvalidRequestId));
        assert!(mb.begin_answer("r1").unwrap() > Instant::now(), "the deadline bounds the body");
        assert_eq!(mb.begin_answer("r1"), Err(MailboxError::InvalidStateTransition), "one answer at a time");
        mb.complete("r1", Outcome::Response(Bytes::new())).unwrap();
        assert_eq!(mb.begin_answer("r1"), Err(MailboxError::InvalidStateTransition), "already answered");
        assert_eq!(mb.can_init_error(), Err(MailboxError::InvalidStateTransition), "init is over");
    }

    #[tokio::test]
    async fn next_waits_for_delivery() {
        let mb = std::sync::Arc::new(Mailbox::new());
        let waiter = tokio::spawn({
            let mb = mb.clone();
            async move { mb.next().await.map(|e| e.invocation.request_id) }
        });
        tokio::task::yield_now().await;
        let _ticket = mb.deliver(invocation("late")).unwrap();
        assert_eq!(waiter.await.unwrap().as_deref(), Some("late"));
    }

    #[tokio::test]
    async fn init_error_answers_pending_and_later_invocations() {
        let mb = Mailbox::new();
        let first = mb.deliver(invocation("a")).unwrap();
        mb.init_error(Bytes::from_static(b"{\"errorType\":\"Runtime.ImportModuleError\"}"), None).unwrap();
        assert!(matches!(first.outcome.await.unwrap(), Outcome::Error { .. }));
        assert!(!mb.is_usable());
        let second = mb.deliver(invocation("b")).unwrap();
        assert!(matches!(second.outcome.await.unwrap(), Outcome::Error { .. }));
        assert_eq!(mb.init_error(Bytes::new(), None), Err(MailboxError::InvalidStateTransition));
    }

    #[tokio::test]
    async fn exit_settles_in_flight_and_ends_long_poll() {
        let mb = Mailbox::new();
        let ticket = mb.deliver(invocation("a")).unwrap();
        mb.next().await.unwrap();
        mb.exited(ExitReason::Code(3));
        mb.exited(ExitReason::Removed);
        assert_eq!(ticket.outcome.await.unwrap(), Outcome::Exited(ExitReason::Code(3)));
        assert!(mb.next().await.is_none());
        assert!(!mb.wait_ready().await);
    }

    #[tokio::test]
    async fn exit_before_first_event_is_an_init_failure() {
        let mb = std::sync::Arc::new(Mailbox::new());
        let ticket = mb.deliver(invocation("a")).unwrap();
        mb.exited(ExitReason::Code(1));
        assert_eq!(ticket.outcome.await.unwrap(), Outcome::Exited(ExitReason::Code(1)));
    }

    #[tokio::test]
    async fn an_event_never_taken_after_earlier_ones_may_run_elsewhere() {
        let mb = Mailbox::new();
        let first = mb.deliver(invocation("a")).unwrap();
        mb.next().await.unwrap();
        assert!(mb.begin_answer("a").is_ok());
        mb.complete("a", Outcome::Response(Bytes::from_static(b"1"))).unwrap();
        assert_eq!(first.outcome.await.unwrap(), Outcome::Response(Bytes::from_static(b"1")));
        // The runtime ends its process instead of asking for the next event.
        let waiting = mb.deliver(invocation("b")).unwrap();
        mb.exited(ExitReason::Code(1));
        assert_eq!(waiting.outcome.await.unwrap(), Outcome::NotTaken(ExitReason::Code(1)));
        let late = mb.deliver(invocation("c")).unwrap();
        assert_eq!(late.outcome.await.unwrap(), Outcome::NotTaken(ExitReason::Code(1)));
    }

    #[tokio::test]
    async fn a_bootstrap_that_never_started_answers_why() {
        let mb = Mailbox::new();
        let waiting = mb.deliver(invocation("a")).unwrap();
        mb.not_started("fork/exec /opt/w: no such file or directory".into());
        mb.exited(ExitReason::Code(127));
        let why = Outcome::NotStarted("fork/exec /opt/w: no such file or directory".into());
        assert_eq!(waiting.outcome.await.unwrap(), why);
        assert_eq!(mb.deliver(invocation("b")).unwrap().outcome.await.unwrap(), why);
        assert!(mb.next().await.is_none());
    }

    #[tokio::test]
    async fn ready_once_the_runtime_polls() {
        let mb = std::sync::Arc::new(Mailbox::new());
        assert!(!mb.is_ready());
        let waiter = tokio::spawn({
            let mb = mb.clone();
            async move { mb.wait_ready().await }
        });
        let poller = tokio::spawn({
            let mb = mb.clone();
            async move { mb.next().await.is_some() }
        });
        assert!(waiter.await.unwrap());
        assert!(mb.is_ready());
        poller.abort();
    }

    #[tokio::test]
    async fn cancelled_invocation_rejects_late_answers() {
        let mb = Mailbox::new();
        let _ticket = mb.deliver(invocation("a")).unwrap();
        mb.next().await.unwrap();
        mb.cancel("a");
        assert_eq!(mb.complete("a", Outcome::Response(Bytes::new())), Err(MailboxError::InvalidRequestId));
    }
}
