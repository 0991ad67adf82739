//! Asynchronous invocation over HTTP: the legacy InvokeAsync operation and
//! lambdabox's own routes to watch the event queue and redrive dead letters
//! (Invoke with `X-Amz-Invocation-Type: Event` is in [`super::invoke`]).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{function_ref, read_limited, ApiError, ApiResult};
use crate::engine::{Engine, EngineError};
use crate::function::{self, NameForm};

/// The queue routes; merged into [`super::app`].
pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/2014-11-13/functions/{name}/invoke-async", post(invoke_async))
        .route("/2014-11-13/functions/{name}/invoke-async/", post(invoke_async))
        .route("/lambdabox/v1/events", get(depths))
        .route("/lambdabox/v1/functions/{name}/events/failed", get(dead_letters))
        .route("/lambdabox/v1/functions/{name}/events/redrive", post(redrive))
}

/// 202 for an event now on disk, with its request id.
pub(super) fn accepted(request_id: &str, body: Body) -> Response {
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// `InvokeAsync` (deprecated, still served by Lambda): the body is the event.
async fn invoke_async(State(engine): State<Arc<Engine>>, Path(name): Path<String>, body: Body) -> ApiResult {
    let function = function_ref(&name, NameForm::Namespaced)?;
    let payload = read_limited(body, function::MAX_SYNC_PAYLOAD, || {
        ApiError::too_large(format!(
            "Request must be smaller than {} bytes for the InvokeAsync operation",
            function::MAX_SYNC_PAYLOAD
        ))
    })
    .await?;
    let request_id = engine.invoke_async(&function, payload, None).await?;
    let mut response = accepted(&request_id, Body::from(json!({ "Status": 202 }).to_string()));
    response.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `GET /lambdabox/v1/events`: per function, queued events, the oldest
/// one's age and dead letters.
async fn depths(State(engine): State<Arc<Engine>>) -> ApiResult {
    let list = engine.queue().store().depths().await.map_err(EngineError::Queue)?;
    Ok(Json(json!({ "Functions": list })).into_response())
}

/// `GET /lambdabox/v1/functions/{name}/events/failed`: the dead letters.
async fn dead_letters(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> ApiResult {
    let f = engine.get_function(&function_ref(&name, NameForm::Namespaced)?)?;
    let list = engine.queue().store().dead_letters(&f.name).await.map_err(EngineError::Queue)?;
    Ok(Json(json!({ "DeadLetters": list })).into_response())
}

/// `POST /lambdabox/v1/functions/{name}/events/redrive[?RequestId=ID]`:
/// queue dead letters again, attempts and age reset.
async fn redrive(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let f = engine.get_function(&function_ref(&name, NameForm::Namespaced)?)?;
    let n = engine.queue().redrive(&f.name, q.get("RequestId").cloned()).await.map_err(EngineError::Queue)?;
    Ok(Json(json!({ "Redriven": n })).into_response())
}
