//! The EventInvokeConfig operations over HTTP
//! (`/2019-09-25/functions/{name}/event-invoke-config[?Qualifier=]` and its
//! `/list`), and the one check of `DeadLetterConfig` that CreateFunction and
//! UpdateFunctionConfiguration share.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::paging::{listing, ListQuery};
use super::{management_body, namespaced_ref, wire, ApiError, ApiResult};
use crate::constraints::{self, Checks};
use crate::engine::{Engine, EventInvokePatch};
use crate::function::{FunctionRef, NameForm};

/// The routes; merged into [`super::app`].
pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            get(get_config).put(put_config).post(update_config).delete(delete_config),
        )
        .route("/2019-09-25/functions/{name}/event-invoke-config/list", get(list_configs))
}

/// A Put or Update body; an empty one sets nothing (and is refused as such).
async fn patch(body: Body, op: &str) -> Result<EventInvokePatch, ApiError> {
    let bytes = management_body(body, op).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(EventInvokePatch::default());
    }
    let b: wire::EventInvokeConfigBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid_content(format!("Could not parse request body: {e}")))?;
    Ok(b.into())
}

async fn put_config(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let patch = patch(body, "PutFunctionEventInvokeConfig").await?;
    let entry = engine.put_event_invoke_config(&namespaced_ref(&name, &q)?, patch).await?;
    Ok(Json(wire::event_invoke_config(&entry, engine.realm())).into_response())
}

async fn update_config(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let patch = patch(body, "UpdateFunctionEventInvokeConfig").await?;
    let entry = engine.update_event_invoke_config(&namespaced_ref(&name, &q)?, patch).await?;
    Ok(Json(wire::event_invoke_config(&entry, engine.realm())).into_response())
}

async fn get_config(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let entry = engine.get_event_invoke_config(&namespaced_ref(&name, &q)?)?;
    Ok(Json(wire::event_invoke_config(&entry, engine.realm())).into_response())
}

async fn delete_config(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    engine.delete_event_invoke_config(&namespaced_ref(&name, &q)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// ListFunctionEventInvokeConfigs: pages in qualifier order; the marker is
/// the last qualifier of the page before.
async fn list_configs(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let all = engine.list_event_invoke_configs(&FunctionRef::parse(&name, NameForm::Namespaced)?)?;
    let (limit, render) =
        (&constraints::MAX_EVENT_INVOKE_CONFIG_ITEMS, |e: &_| wire::event_invoke_config(e, engine.realm()));
    let out = listing("FunctionEventInvokeConfigs", &all, &q, limit, |e| e.qualifier.clone(), render)?;
    Ok(Json(out).into_response())
}

/// `DeadLetterConfig`: AWS sends failed events to an SQS queue or SNS
/// topic, neither of which this box serves, so a target is refused when it
/// is configured rather than failing events later; `{}` or an empty
/// `TargetArn` (no dead-letter queue) is accepted.
pub(super) fn dead_letter_config(c: Option<&wire::DeadLetterConfigBody>) -> Result<(), ApiError> {
    let target = c.and_then(|c| c.target_arn.as_deref());
    Checks::new().text(&constraints::DEAD_LETTER_TARGET, target).finish()?;
    match target.filter(|t| !t.is_empty()) {
        None => Ok(()),
        Some(arn) => Err(ApiError::invalid_parameter(format!(
            "DeadLetterConfig.TargetArn {arn} cannot be used: lambdabox serves no SQS queue or SNS topic to send \
             failed events to. Leave DeadLetterConfig out (failed events are kept on this box: lambdabox events \
             failed NAME) or set an OnFailure destination function with PutFunctionEventInvokeConfig."
        ))),
    }
}
