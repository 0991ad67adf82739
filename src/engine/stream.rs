//! Streamed answers: what an invocation becomes when its runtime posts its
//! response in streaming mode. The caller gets the chunks as the function
//! writes them; the invocation (its container lease, END/REPORT, the log
//! tail) finishes in a task of its own when the stream ends, and the
//! caller learns then whether the function failed mid-stream.
//!
//! A caller that wants the whole answer at once (Invoke, a BUFFERED URL)
//! gathers it with [`StreamedResponse::collect`], within Invoke's limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::invoke::{exit_error, platform_error, respond, Settled};
use super::InvokeResponse;
use crate::function::Function;
use crate::logs::{PlatformLines, Report};
use crate::pool::Lease;
use crate::runtime_api::stream::MAX_STREAMED_RESPONSE;
use crate::runtime_api::{ExitReason, Outcome, ResponseStream, StreamEnd, MAX_RESPONSE};

/// How long past its deadline a stream's end is awaited before the
/// container is given up on (the Runtime API ends it at the deadline).
const END_GRACE: Duration = Duration::from_secs(2);

/// An invocation's answer: whole, or streamed as the function writes it.
#[derive(Debug)]
pub enum Answer {
    Buffered(InvokeResponse),
    Streamed(StreamedResponse),
}

/// A response still being written.
#[derive(Debug)]
pub struct StreamedResponse {
    /// What the runtime said the stream holds.
    pub content_type: String,
    /// `$LATEST` or the number of the version that runs.
    pub executed_version: String,
    pub request_id: String,
    /// The function's bytes, chunk by chunk; closed when it stops writing.
    chunks: mpsc::Receiver<Bytes>,
    /// How it ended, once the invocation is over; taken when read.
    done: Option<oneshot::Receiver<StreamDone>>,
}

/// What a streamed response yields, in order: chunks, then one `Done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Chunk(Bytes),
    Done(StreamDone),
}

/// How a streamed invocation ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamDone {
    /// Lambda's error document when the function failed, timed out or
    /// broke off mid-stream.
    pub error: Option<Bytes>,
    /// The invocation's log tail, when asked for.
    pub log_tail: Option<Bytes>,
}

impl StreamDone {
    /// The error type of [`StreamDone::error`]: the document's
    /// `errorType`, or `Unhandled` if it names none.
    pub fn error_type(&self) -> Option<String> {
        let doc = self.error.as_ref()?;
        let named = serde_json::from_slice::<serde_json::Value>(doc)
            .ok()
            .and_then(|v| v.get("errorType").and_then(|t| t.as_str()).map(str::to_owned));
        Some(named.unwrap_or_else(|| "Unhandled".to_owned()))
    }
}

impl StreamedResponse {
    /// A response whose chunks come from `chunks` and whose end from `done`.
    pub fn new(
        content_type: String,
        executed_version: String,
        request_id: String,
        chunks: mpsc::Receiver<Bytes>,
        done: oneshot::Receiver<StreamDone>,
    ) -> StreamedResponse {
        StreamedResponse { content_type, executed_version, request_id, chunks, done: Some(done) }
    }

    /// The next chunk, or how the stream ended; `None` after that.
    pub async fn next_event(&mut self) -> Option<StreamEvent> {
        if let Some(chunk) = self.chunks.recv().await {
            return Some(StreamEvent::Chunk(chunk));
        }
        Some(StreamEvent::Done(self.finished().await?))
    }

    /// How the stream ended, once: its chunks are not read any further
    /// (the function still runs to its end).
    async fn finished(&mut self) -> Option<StreamDone> {
        self.chunks.close();
        let done = self.done.take()?.await;
        // The invocation's task is gone (the controller is stopping).
        Some(done.unwrap_or_else(|_| StreamDone {
            error: Some(exit_error(ExitReason::Removed, &self.request_id)),
            log_tail: None,
        }))
    }

    /// The whole answer, as Invoke gives it: the bytes (at most Invoke's
    /// limit) or Lambda's error document.
    pub async fn collect(mut self) -> InvokeResponse {
        let mut kept: Vec<Bytes> = Vec::new();
        let mut size = 0usize;
        while let Some(chunk) = self.chunks.recv().await {
            size += chunk.len();
            if size > MAX_RESPONSE {
                break;
            }
            kept.push(chunk);
        }
        let done = self.finished().await.unwrap_or_default();
        let StreamedResponse { executed_version, request_id, .. } = self;
        let too_large = size > MAX_RESPONSE;
        let error = done.error.or_else(|| too_large.then(|| too_large_error(MAX_RESPONSE as u64)));
        InvokeResponse {
            function_error: error.is_some().then_some("Unhandled"),
            payload: error.unwrap_or_else(|| Bytes::from(kept.concat())),
            executed_version,
            request_id,
            log_tail: done.log_tail,
            cost: None,
        }
    }
}

fn too_large_error(limit: u64) -> Bytes {
    platform_error(
        "Function.ResponseSizeTooLarge",
        format!("Response payload size exceeded maximum allowed payload size ({limit} bytes)."),
    )
}

/// What finishing a streamed invocation needs.
pub(super) struct Streaming {
    pub lease: Lease,
    pub function: Arc<Function>,
    pub request_id: String,
    /// When the runtime took the event.
    pub taken: Instant,
    /// The first invocation of a cold container.
    pub cold: bool,
    pub want_tail: bool,
}

impl Streaming {
    /// Hand `stream` to the caller and finish the invocation when it ends.
    pub fn follow(self, stream: ResponseStream) -> StreamedResponse {
        let ResponseStream { content_type, chunks, end } = stream;
        let (done_tx, done) = oneshot::channel();
        let answer =
            StreamedResponse::new(content_type, self.function.version_label(), self.request_id.clone(), chunks, done);
        tokio::spawn(async move {
            let _ = done_tx.send(self.finish(end).await);
        });
        answer
    }

    async fn finish(self, end: oneshot::Receiver<StreamEnd>) -> StreamDone {
        let f = &self.function;
        let backstop = self.taken + Duration::from_secs(u64::from(f.timeout_s)) + END_GRACE;
        let ended = match tokio::time::timeout_at(backstop, end).await {
            Ok(Ok(end)) => Some(end),
            // The Runtime API connection went with its container.
            Ok(Err(_)) => None,
            Err(_) => Some(StreamEnd::TimedOut),
        };
        let container = self.lease.container().clone();
        let report = Report {
            request_id: self.request_id.clone(),
            duration: self.taken.elapsed(),
            memory_mb: container.memory_mb,
            max_memory_used_mb: None,
            init_duration: self.cold.then(|| self.taken.saturating_duration_since(container.started)),
            timed_out: matches!(ended, Some(StreamEnd::TimedOut)).then_some(f.timeout_s),
            lines: PlatformLines::of(&f.logging),
        };
        let log_tail = container.log.finish(report, self.want_tail);
        if matches!(ended, Some(StreamEnd::Complete | StreamEnd::Failed { .. })) {
            self.lease.release();
        } else {
            container.mailbox.cancel(&self.request_id);
            self.lease.discard();
        }
        StreamDone { error: error_document(ended, &self.request_id, f), log_tail }
    }
}

/// Lambda's error document for how a stream ended (`None`: its container
/// went away), if it failed.
fn error_document(ended: Option<StreamEnd>, request_id: &str, f: &Function) -> Option<Bytes> {
    let Some(ended) = ended else { return Some(exit_error(ExitReason::Removed, request_id)) };
    match ended {
        StreamEnd::Complete => None,
        StreamEnd::Failed { body, error_type } => {
            Some(respond(Settled::Done(Outcome::Error { body, error_type }), request_id, f).payload)
        }
        StreamEnd::TooLarge => Some(too_large_error(MAX_STREAMED_RESPONSE)),
        StreamEnd::Broken(why) => Some(platform_error(
            "Runtime.Unknown",
            format!("RequestId: {request_id} Error: the runtime's response stream broke off: {why}"),
        )),
        StreamEnd::TimedOut => Some(respond(Settled::TimedOut, request_id, f).payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Function {
        Function { timeout_s: 3, ..Function::default() }
    }

    #[test]
    fn stream_ends_read_like_lambdas_errors() {
        assert_eq!(error_document(Some(StreamEnd::Complete), "id", &f()), None);
        assert!(error_document(None, "id", &f()).is_some(), "a container gone mid-stream is an error");
        let doc = |end| -> serde_json::Value {
            serde_json::from_slice(&error_document(Some(end), "id", &f()).unwrap()).unwrap()
        };
        assert_eq!(doc(StreamEnd::TimedOut)["errorType"], "Sandbox.Timedout");
        assert_eq!(doc(StreamEnd::TooLarge)["errorType"], "Function.ResponseSizeTooLarge");
        let thrown = Bytes::from_static(br#"{"errorType":"Error","errorMessage":"boom","trace":[]}"#);
        let failed = StreamEnd::Failed { body: thrown.clone(), error_type: Some("Runtime.Unknown".into()) };
        assert_eq!(doc(failed)["errorMessage"], "boom");
        let done = StreamDone { error: Some(thrown), log_tail: None };
        assert_eq!(done.error_type().as_deref(), Some("Error"));
        assert_eq!(StreamDone::default().error_type(), None);
    }

    #[tokio::test]
    async fn collecting_a_stream_gives_invokes_answer() {
        let (chunks_tx, chunks) = mpsc::channel(4);
        let (done_tx, done) = oneshot::channel();
        let streamed = StreamedResponse::new("text/plain".into(), "$LATEST".into(), "id".into(), chunks, done);
        let collected = tokio::spawn(streamed.collect());
        chunks_tx.send(Bytes::from_static(b"hello, ")).await.unwrap();
        chunks_tx.send(Bytes::from_static(b"world")).await.unwrap();
        drop(chunks_tx);
        done_tx.send(StreamDone::default()).unwrap();
        let r = collected.await.unwrap();
        assert_eq!((r.payload.as_ref(), r.function_error), (&b"hello, world"[..], None));
    }
}
