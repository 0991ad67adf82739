//! The server side of the Lambda Runtime API (`/2018-06-01/runtime/…`).
//!
//! Each container gets its own folder of unix sockets, bind-mounted into
//! it. The runtime's connections to `127.0.0.1:9001` reach us through
//! `handoff.sock`: lambdabox-init passes each accepted TCP socket over it
//! and we serve HTTP on that socket directly ([`handoff`]). `runtime.sock`
//! serves the same API over plain HTTP for init's own requests (its exit
//! report, a generic container's wait to be specialized). The sockets
//! belong to exactly one container, so the router needs no container id:
//! its state is that container's [`Mailbox`].

pub mod handoff;
pub mod mailbox;

use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;

use crate::logs::ContainerLog;

pub use mailbox::{ExitReason, Invocation, Mailbox, MailboxError, NextEvent, Outcome, Ticket};

use crate::function::MAX_SYNC_PAYLOAD;

/// Route paths, shared with tests' clients.
pub mod paths {
    pub const NEXT: &str = "/2018-06-01/runtime/invocation/next";
    pub const RESPONSE: &str = "/2018-06-01/runtime/invocation/{request_id}/response";
    pub const ERROR: &str = "/2018-06-01/runtime/invocation/{request_id}/error";
    pub const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
    /// lambdabox-init's report of how the bootstrap ended (not part of Lambda's API).
    pub const EXIT: &str = "/lambdabox/v1/exit";
    /// A generic container's init asking what to run (not part of Lambda's API).
    pub const SPECIALIZE: &str = "/lambdabox/v1/specialize";
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
}

/// Largest response a runtime may post: 6 MB plus Lambda's 100 bytes of slack.
pub const MAX_RESPONSE: usize = MAX_SYNC_PAYLOAD + 100;

/// The Runtime API for one container.
pub fn router(mailbox: Arc<Mailbox>) -> Router {
    Router::new()
        .route(paths::NEXT, get(next))
        .route(paths::RESPONSE, post(response))
        .route(paths::ERROR, post(error))
        .route(paths::INIT_ERROR, post(init_error))
        .route(paths::EXIT, post(exit_report))
        .route(paths::SPECIALIZE, get(specialize))
        .with_state(mailbox)
}

/// Bind the container's socket at `path`, readable by any user in the
/// container (runtimes need not run as root).
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Serve one container's Runtime API until the task is aborted, which also
/// ends every connection: HTTP on `listener`, and the connections and log
/// pipe init hands over on `handoff` (the pipe goes to `log`).
pub async fn serve(listener: UnixListener, handoff: UnixListener, mailbox: Arc<Mailbox>, log: Arc<ContainerLog>) {
    let app = router(mailbox);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tasks.spawn(serve_connection(stream, app.clone()));
                }
                Err(e) => accept_failed(e).await,
            },
            accepted = handoff.accept() => match accepted {
                Ok((stream, _)) => {
                    tasks.spawn(take_handoffs(stream, app.clone(), log.clone()));
                }
                Err(e) => accept_failed(e).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
}

/// Serve what init hands over on one handoff connection until it hangs up.
/// The connections' tasks live as long as this one.
async fn take_handoffs(stream: UnixStream, app: Router, log: Arc<ContainerLog>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            handed = handoff::receive(&stream) => match handed {
                Ok(Some(handoff::Handed::Connection(tcp))) => {
                    connections.spawn(serve_connection(tcp, app.clone()));
                }
                Ok(Some(handoff::Handed::LogPipe(pipe))) => {
                    if let Err(e) = log.attach(pipe) {
                        tracing::warn!(error = %e, "refused a log pipe");
                    }
                }
                Ok(None) => break,
                Err(e @ handoff::HandoffError::Io(_)) => {
                    tracing::warn!(error = %e, "handoff connection failed");
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "refused a handoff"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Init is gone; finish the connections it handed over.
    while connections.join_next().await.is_some() {}
}

/// HTTP/1.1 on one connection, until either side closes it.
async fn serve_connection<I>(io: I, app: Router)
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

async fn specialize(State(mailbox): State<Arc<Mailbox>>) -> Response {
    match mailbox.specialization().await {
        Some(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        None => api_error(StatusCode::GONE, "Runtime.Terminated", "the execution environment is shutting down"),
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

/// Read a runtime's posted body, or `None` when it is over [`MAX_RESPONSE`].
async fn read_body(body: Body) -> Result<Option<Bytes>, Response> {
    match axum::body::to_bytes(body, MAX_RESPONSE + 1).await {
        Ok(b) if b.len() > MAX_RESPONSE => Ok(None),
        Ok(b) => Ok(Some(b)),
        Err(e) => {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Ok(None)
            } else {
                Err(api_error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &e.to_string()))
            }
        }
    }
}

async fn response(State(mailbox): State<Arc<Mailbox>>, UrlPath(request_id): UrlPath<String>, body: Body) -> Response {
    match read_body(body).await {
        Ok(Some(bytes)) => match mailbox.complete(&request_id, Outcome::Response(bytes)) {
            Ok(()) => accepted(),
            Err(e) => mailbox_error(e),
        },
        Ok(None) => {
            let _ = mailbox.complete(&request_id, Outcome::ResponseTooLarge);
            api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."),
            )
        }
        Err(r) => r,
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
    let body = match read_body(body).await {
        Ok(b) => b.unwrap_or_default(),
        Err(r) => return r,
    };
    match mailbox.complete(&request_id, Outcome::Error { body, error_type }) {
        Ok(()) => accepted(),
        Err(e) => mailbox_error(e),
    }
}

async fn init_error(State(mailbox): State<Arc<Mailbox>>, headers: HeaderMap, body: Body) -> Response {
    let error_type = declared_error_type(&headers);
    let body = match read_body(body).await {
        Ok(b) => b.unwrap_or_default(),
        Err(r) => return r,
    };
    match mailbox.init_error(body, error_type) {
        Ok(()) => accepted(),
        Err(e) => mailbox_error(e),
    }
}

const SIGKILL: i32 = 9;

#[derive(Deserialize)]
struct ExitReport {
    kind: String,
    code: i32,
}

async fn exit_report(State(mailbox): State<Arc<Mailbox>>, body: Bytes) -> Response {
    match serde_json::from_slice::<ExitReport>(&body) {
        Ok(r) => {
            match (r.kind.as_str(), r.code) {
                // SIGKILL: maybe the OOM killer. Docker's verdict settles it.
                ("signal", SIGKILL) => mailbox.note_exit(ExitReason::Signal(SIGKILL)),
                ("signal", sig) => mailbox.exited(ExitReason::Signal(sig)),
                (_, code) => mailbox.exited(ExitReason::Code(code)),
            }
            accepted()
        }
        Err(e) => api_error(StatusCode::BAD_REQUEST, "InvalidRequestContent", &e.to_string()),
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
