//! The server side of the Lambda Runtime API (`/2018-06-01/runtime/…`).
//!
//! Each container gets its own folder (mode 0700, so only the container's
//! root-owned init can enter it) holding one unix socket, `control.sock`.
//! lambdabox-init connects to it before anything else runs; we accept that
//! one connection, then close the listener and remove the socket, so nothing
//! else in the container can ever speak to us except over the Runtime API
//! connections init hands over on it ([`control`]). We serve HTTP on those
//! sockets directly. The folder belongs to exactly one container, so the
//! router needs no container id: its state is that container's [`Mailbox`].

pub mod control;
pub mod mailbox;
pub mod stream;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use lambdabox_protocol::Exit;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;

use crate::logs::ContainerLog;

pub use mailbox::{ExitReason, Invocation, Mailbox, MailboxError, NextEvent, Outcome, Ticket};
pub use stream::{ResponseStream, StreamEnd};

use crate::function::MAX_SYNC_PAYLOAD;

/// Route paths, shared with tests' clients.
pub mod paths {
    pub const NEXT: &str = "/2018-06-01/runtime/invocation/next";
    pub const RESPONSE: &str = "/2018-06-01/runtime/invocation/{request_id}/response";
    pub const ERROR: &str = "/2018-06-01/runtime/invocation/{request_id}/error";
    pub const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
}

/// Header names, as Lambda spells them.
pub mod headers {
    pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
    pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
    pub const FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
    pub const TRACE_ID: &str = "lambda-runtime-trace-id";
    pub const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
    pub const COGNITO_IDENTITY: &str = "lambda-runtime-cognito-identity";
    pub const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
    /// `streaming` on a response POST: a chunked body, passed on as it comes.
    pub const RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";
    /// A streamed response's trailer: base64 of the error document.
    pub const FUNCTION_ERROR_BODY: &str = "lambda-runtime-function-error-body";
}

/// Largest response a runtime may post: 6 MB plus Lambda's 100 bytes of slack.
pub const MAX_RESPONSE: usize = MAX_SYNC_PAYLOAD + 100;
/// Runtime API connections one container may hold open at once. Runtime
/// clients use one or two; the bound keeps a function that opens thousands
/// from spending the controller's descriptors.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a posted body may take to arrive after the invocation's
/// deadline (or, for an init error, after it started).
const BODY_GRACE: Duration = Duration::from_secs(1);
/// How long a runtime may take to send an init error's body.
const INIT_ERROR_BODY_TIME: Duration = Duration::from_secs(10);

/// The Runtime API for one container.
pub fn router(mailbox: Arc<Mailbox>) -> Router {
    Router::new()
        .route(paths::NEXT, get(next))
        .route(paths::RESPONSE, post(response))
        .route(paths::ERROR, post(error))
        .route(paths::INIT_ERROR, post(init_error))
        .with_state(mailbox)
}

/// Bind the container's control socket at `path`, reachable by its owner
/// alone (init runs as root; the folder is 0700 too).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serve one container until the task is aborted, which also ends every
/// connection: take init's one control connection on `listener` (then close
/// it and remove `path`), and serve what init hands over on it.
pub async fn serve(listener: UnixListener, path: PathBuf, mailbox: Arc<Mailbox>, log: Arc<ContainerLog>) {
    let stream = loop {
        match listener.accept().await {
            Ok((stream, _)) => break stream,
            Err(e) => accept_failed(e).await,
        }
    };
    drop(listener);
    let _ = std::fs::remove_file(&path);
    take_control(stream, router(mailbox.clone()), mailbox, log).await;
}

/// Serve what init sends on its control connection until it hangs up (or
/// breaks the protocol), and send it its specialization when there is one.
/// The connections' tasks live as long as this one.
async fn take_control(stream: UnixStream, app: Router, mailbox: Arc<Mailbox>, log: Arc<ContainerLog>) {
    let mut connections = JoinSet::new();
    let mut refused_any = false;
    let mut specialized = false;
    loop {
        tokio::select! {
            message = control::receive(&stream) => match message {
                Ok(Some(control::Message::Connection(tcp))) => {
                    if connections.len() < MAX_CONNECTIONS {
                        connections.spawn(serve_connection(tcp, app.clone()));
                    } else if !std::mem::replace(&mut refused_any, true) {
                        tracing::warn!(limit = MAX_CONNECTIONS, "a runtime opened too many Runtime API connections; closing the extra ones");
                    }
                }
                Ok(Some(control::Message::LogPipe(pipe))) => {
                    if let Err(e) = log.attach(pipe) {
                        tracing::warn!(error = %e, "refused a log pipe");
                    }
                }
                Ok(Some(control::Message::Exit(exit))) => note_exit(&mailbox, exit),
                Ok(Some(control::Message::NotStarted(why))) => mailbox.not_started(why),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "closing a container's control channel");
                    break;
                }
            },
            body = mailbox.specialization(), if !specialized => {
                specialized = true;
                let sent = match body {
                    Some(body) => control::send(&stream, &body).await,
                    None => Ok(()),
                };
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "could not send a specialization");
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Init is gone; finish the connections it handed over.
    while connections.join_next().await.is_some() {}
}

/// How init said the bootstrap ended.
pub(crate) fn note_exit(mailbox: &Mailbox, exit: Exit) {
    const SIGKILL: i32 = 9;
    match exit {
        // SIGKILL: maybe the OOM killer. Docker's verdict settles it.
        Exit::Signal(SIGKILL) => mailbox.note_exit(ExitReason::Signal(SIGKILL)),
        Exit::Signal(sig) => mailbox.exited(ExitReason::Signal(sig)),
        Exit::Code(code) => mailbox.exited(ExitReason::Code(code)),
    }
}

/// HTTP/1.1 on one connection, until either side closes it: a handed-over
/// socket, or a stream of the remote transport ([`crate::remote`]).
pub(crate) async fn serve_connection<I>(io: I, app: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(error = %e, "runtime API connection ended");
    }
}

/// A failed accept (out of descriptors, most likely): pause rather than spin.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!(error = %e, "runtime API accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

/// A Runtime API error document: `{"errorMessage","errorType"}`.
fn api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, [(header::CONTENT_TYPE, "application/json")], r#"{"status":"OK"}"#).into_response()
}

fn mailbox_error(e: MailboxError) -> Response {
    match e {
        MailboxError::InvalidRequestId => api_error(StatusCode::BAD_REQUEST, "InvalidRequestID", &e.to_string()),
        MailboxError::InvalidStateTransition => {
            api_error(StatusCode::FORBIDDEN, "InvalidStateTransition", &e.to_string())
        }
    }
}

async fn next(State(mailbox): State<Arc<Mailbox>>) -> Response {
    let Some(event) = mailbox.next().await else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.Terminated",
            "the execution environment is shutting down",
        );
    };
    let inv = event.invocation;
    let mut response = Response::new(Body::from(inv.payload));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            if !value.is_empty() {
                h.insert(name, v);
            }
        }
    };
    put(headers::REQUEST_ID, &inv.request_id);
    put(headers::DEADLINE_MS, &event.deadline_epoch_ms.to_string());
    put(headers::FUNCTION_ARN, &inv.function_arn);
    put(headers::TRACE_ID, &inv.trace_id);
    put(headers::CLIENT_CONTEXT, inv.client_context.as_deref().unwrap_or(""));
    put(headers::COGNITO_IDENTITY, inv.cognito_identity.as_deref().unwrap_or(""));
    response
}

/// Why a posted body could not be taken.
enum BodyFailure {
    /// Over [`MAX_RESPONSE`].
    TooLarge,
    /// The connection broke, or the body did not arrive in time.
    Unreadable(String),
}

impl BodyFailure {
    /// What the runtime is told.
    fn response(&self) -> Response {
        match self {
            BodyFailure::TooLarge => api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."),
            ),
            BodyFailure::Unreadable(why) => api_error(StatusCode::BAD_REQUEST, "InvalidRequestContent", why),
        }
    }

    /// What the caller is told: the runtime failed to answer.
    fn outcome(&self) -> Outcome {
        match self {
            BodyFailure::TooLarge => Outcome::ResponseTooLarge,
            BodyFailure::Unreadable(why) => {
                let doc = serde_json::json!({
                    "errorMessage": format!("The runtime's answer could not be read: {why}"),
                    "errorType": "Runtime.Unknown",
                });
                Outcome::Error { body: doc.to_string().into(), error_type: Some("Runtime.Unknown".into()) }
            }
        }
    }
}

/// How much of an oversized answer is read (and dropped) so that the
/// runtime's POST completes and it gets its 413, as on Lambda, rather than
/// a connection cut mid-write that some runtime clients do not survive.
/// Beyond this the connection is dropped.
const DRAIN_MAX: usize = 8 * MAX_RESPONSE;

/// Read a runtime's posted body: at most [`MAX_RESPONSE`] bytes, arriving
/// before `until`. Called only once the request id and state were checked
/// from the headers, so nobody can make us hold a body for nothing. An
/// oversized body is read to its end (up to [`DRAIN_MAX`]) and dropped.
async fn read_body(body: Body, until: tokio::time::Instant) -> Result<Bytes, BodyFailure> {
    use http_body_util::BodyExt as _;
    let read = async {
        let mut body = body;
        // Chunks as they came: one (the usual case) is returned without a copy.
        let mut kept: Vec<Bytes> = Vec::new();
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyFailure::Unreadable(e.to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len();
            if seen > DRAIN_MAX {
                break;
            }
            if seen <= MAX_RESPONSE {
                kept.push(data);
            }
        }
        if seen > MAX_RESPONSE {
            return Err(BodyFailure::TooLarge);
        }
        Ok(match kept.len() {
            0 => Bytes::new(),
            1 => kept.swap_remove(0),
            _ => Bytes::from(kept.concat()),
        })
    };
    match tokio::time::timeout_at(until, read).await {
        Ok(result) => result,
        Err(_) => Err(BodyFailure::Unreadable("the body did not arrive before the invocation's deadline".into())),
    }
}

/// Settle invocation `request_id` with what the runtime posted.
async fn answer(mailbox: &Mailbox, request_id: &str, body: Body, outcome: impl FnOnce(Bytes) -> Outcome) -> Response {
    let deadline = match mailbox.begin_answer(request_id) {
        Ok(d) => d,
        Err(e) => return mailbox_error(e),
    };
    match read_body(body, deadline + BODY_GRACE).await {
        Ok(bytes) => match mailbox.complete(request_id, outcome(bytes)) {
            Ok(()) => accepted(),
            Err(e) => mailbox_error(e),
        },
        Err(failure) => {
            let _ = mailbox.complete(request_id, failure.outcome());
            failure.response()
        }
    }
}

/// Takes the whole request, not a `HeaderMap` (which axum would copy):
/// the buffered answer, the hot path, only glances at one header.
async fn response(
    State(mailbox): State<Arc<Mailbox>>,
    UrlPath(request_id): UrlPath<String>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if stream::is_streaming(&parts.headers) {
        return streamed(&mailbox, &request_id, &parts.headers, body).await;
    }
    answer(&mailbox, &request_id, body, Outcome::Response).await
}

/// A streamed response: the caller gets the stream as soon as the headers
/// are here, then each chunk as it is read; the runtime's POST is answered
/// once the body is over.
async fn streamed(mailbox: &Mailbox, request_id: &str, headers: &HeaderMap, body: Body) -> Response {
    let deadline = match mailbox.begin_answer(request_id) {
        Ok(d) => d,
        Err(e) => return mailbox_error(e),
    };
    let (writer, stream) = stream::channel(headers);
    if let Err(e) = mailbox.complete(request_id, Outcome::Streamed(stream)) {
        return mailbox_error(e);
    }
    match writer.pump(body, deadline).await {
        StreamEnd::Complete | StreamEnd::Failed { .. } => accepted(),
        StreamEnd::TooLarge => api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            &format!("Exceeded maximum allowed payload size ({} bytes).", stream::MAX_STREAMED_RESPONSE),
        ),
        StreamEnd::Broken(why) => api_error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &why),
        StreamEnd::TimedOut => api_error(StatusCode::FORBIDDEN, "InvalidStateTransition", "The invocation timed out"),
    }
}

/// The error type a runtime declared, kept only in Lambda's accepted form.
fn declared_error_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(headers::FUNCTION_ERROR_TYPE)?.to_str().ok()?;
    let valid = |prefix: &str| {
        raw.strip_prefix(prefix).is_some_and(|rest| {
            let mut chars = rest.chars();
            chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphabetic())
        })
    };
    Some(if valid("Runtime.") || valid("Function.") {
        raw.to_owned()
    } else if raw.starts_with("Function") {
        "Function.Unknown".to_owned()
    } else {
        "Runtime.Unknown".to_owned()
    })
}

async fn error(
    State(mailbox): State<Arc<Mailbox>>,
    UrlPath(request_id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let error_type = declared_error_type(&headers);
    answer(&mailbox, &request_id, body, |body| Outcome::Error { body, error_type }).await
}

async fn init_error(State(mailbox): State<Arc<Mailbox>>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = mailbox.can_init_error() {
        return mailbox_error(e);
    }
    let error_type = declared_error_type(&headers);
    let body = match read_body(body, tokio::time::Instant::now() + INIT_ERROR_BODY_TIME).await {
        Ok(b) => b,
        // An init error too large to keep is still an init error.
        Err(BodyFailure::TooLarge) => Bytes::new(),
        Err(failure) => return failure.response(),
    };
    match mailbox.init_error(body, error_type) {
        Ok(()) => accepted(),
        Err(e) => mailbox_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_keep_lambdas_form() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(headers::FUNCTION_ERROR_TYPE, HeaderValue::from_str(v).unwrap());
            declared_error_type(&h)
        };
        assert_eq!(with("Runtime.ImportModuleError").as_deref(), Some("Runtime.ImportModuleError"));
        assert_eq!(with("Function.Boom").as_deref(), Some("Function.Boom"));
        assert_eq!(with("unhandled").as_deref(), Some("Runtime.Unknown"));
        assert_eq!(with("Runtime.bad").as_deref(), Some("Runtime.Unknown"));
        assert_eq!(declared_error_type(&HeaderMap::new()), None);
    }
}
