//! The function URL configuration operations of the Lambda API
//! (`/2021-10-31/functions/{name}/url` and `…/urls`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::paging::{listing, ListQuery};
use super::{function_ref, json_body, ApiError, ApiResult};
use crate::constraints::{self, Checks};
use crate::engine::Engine;
use crate::function::url::{Cors, InvokeMode, UrlConfig, UrlPatch};
use crate::function::{FunctionRef, NameForm};
use crate::urls::Domain;

/// The URL routes; merged into [`super::app`].
pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/2021-10-31/functions/{name}/url", get(get_url).post(create_url).put(update_url).delete(delete_url))
        .route("/2021-10-31/functions/{name}/urls", get(list_urls))
}

/// CreateFunctionUrlConfig's and UpdateFunctionUrlConfig's body.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct UrlBody {
    auth_type: Option<String>,
    cors: Option<Cors>,
    invoke_mode: Option<String>,
}

impl UrlBody {
    fn patch(self) -> Result<UrlPatch, ApiError> {
        Ok(UrlPatch::parse(self.auth_type.as_deref(), self.cors, self.invoke_mode.as_deref())?)
    }
}

/// `FunctionName` with the `Qualifier` parameter folded in: an alias or
/// nothing, however it was given.
fn url_ref(name: &str, query: &HashMap<String, String>) -> Result<FunctionRef, ApiError> {
    let qualifier = query.get("Qualifier").map(String::as_str);
    let r = function_ref(name, NameForm::Plain)?.with_qualifier(qualifier, &constraints::URL_QUALIFIER)?;
    Checks::new().text(&constraints::URL_QUALIFIER, r.qualifier.as_deref()).finish()?;
    Ok(r)
}

/// Which optional members an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Create's: no `LastModifiedTime`; `InvokeMode` only once set.
    Created,
    /// Update's: `InvokeMode` only once set.
    Updated,
    /// Get's and List's: everything, `InvokeMode` defaulted.
    Described,
}

/// Lambda's FunctionUrlConfig.
fn url_configuration(engine: &Engine, domain: &Domain, url: &UrlConfig, shape: Shape) -> Value {
    let mut out = json!({
        "FunctionUrl": domain.url(&url.url_id),
        "FunctionArn": engine.url_function_arn(url),
        "AuthType": url.auth_type,
        "CreationTime": url.creation_time,
    });
    if let Some(cors) = &url.cors {
        out["Cors"] = json!(cors);
    }
    if shape != Shape::Created {
        out["LastModifiedTime"] = json!(url.last_modified_time);
    }
    let mode = match shape {
        Shape::Described => Some(url.invoke_mode.unwrap_or(InvokeMode::Buffered)),
        Shape::Created | Shape::Updated => url.invoke_mode,
    };
    if let Some(mode) = mode {
        out["InvokeMode"] = json!(mode);
    }
    out
}

async fn create_url(
    State(engine): State<Arc<Engine>>,
    Extension(domain): Extension<Domain>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let r = url_ref(&name, &q)?;
    let b: UrlBody = json_body(body, "CreateFunctionUrlConfig").await?;
    if b.auth_type.is_none() {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null",
        ));
    }
    let url = engine.create_url(&r, b.patch()?).await?;
    Ok((StatusCode::CREATED, Json(url_configuration(&engine, &domain, &url, Shape::Created))).into_response())
}

async fn get_url(
    State(engine): State<Arc<Engine>>,
    Extension(domain): Extension<Domain>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let url = engine.get_url(&url_ref(&name, &q)?)?;
    Ok(Json(url_configuration(&engine, &domain, &url, Shape::Described)).into_response())
}

async fn update_url(
    State(engine): State<Arc<Engine>>,
    Extension(domain): Extension<Domain>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let r = url_ref(&name, &q)?;
    let b: UrlBody = json_body(body, "UpdateFunctionUrlConfig").await?;
    let url = engine.update_url(&r, b.patch()?).await?;
    Ok(Json(url_configuration(&engine, &domain, &url, Shape::Updated)).into_response())
}

async fn delete_url(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    engine.delete_url(&url_ref(&name, &q)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_urls(
    State(engine): State<Arc<Engine>>,
    Extension(domain): Extension<Domain>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let all = engine.list_urls(&function_ref(&name, NameForm::Plain)?)?;
    // The function's own URL first ("0"), then its aliases' by name ("1NAME"): never an empty key.
    let key = |u: &Arc<UrlConfig>| u.alias.as_ref().map_or_else(|| "0".to_owned(), |a| format!("1{a}"));
    let render = |u: &Arc<UrlConfig>| url_configuration(&engine, &domain, u, Shape::Described);
    Ok(Json(listing("FunctionUrlConfigs", &all, &q, &constraints::URL_MAX_ITEMS, key, render)?).into_response())
}
