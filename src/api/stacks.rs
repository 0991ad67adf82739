//! lambdabox's own stack records (`/lambdabox/v1/stacks/{name}`): what a
//! project brought up by `lambdabox up` owns, and its API routes, which the
//! controller serves from then on ([`crate::gateway`]).

use std::sync::Arc;

use axum::extract::{Extension, Path};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::{ApiError, ApiResult};
use crate::engine::Engine;
use crate::gateway::{Gateway, GatewayError, StackRecord};

/// The stack routes; merged into [`super::app`].
pub fn routes() -> Router<Arc<Engine>> {
    Router::new().route("/lambdabox/v1/stacks/{name}", get(get_stack).put(put_stack).delete(delete_stack))
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> ApiError {
        match e {
            GatewayError::Io(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", e.to_string()),
            _ => ApiError::invalid_parameter(e.to_string()),
        }
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", format!("No stack named {name}"))
}

async fn get_stack(Extension(gateway): Extension<Arc<Gateway>>, Path(name): Path<String>) -> ApiResult {
    let record = gateway.stack(&name).ok_or_else(|| not_found(&name))?;
    Ok(Json(record).into_response())
}

async fn put_stack(
    Extension(gateway): Extension<Arc<Gateway>>,
    Path(name): Path<String>,
    Json(record): Json<StackRecord>,
) -> ApiResult {
    Ok(Json(gateway.put_stack(&name, record).await?).into_response())
}

async fn delete_stack(Extension(gateway): Extension<Arc<Gateway>>, Path(name): Path<String>) -> ApiResult {
    if !gateway.delete_stack(&name)? {
        return Err(not_found(&name));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
