//! The version and alias operations of the Lambda API
//! (`/2015-03-31/functions/{name}/versions` and `…/aliases`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::paging::{listing, ListQuery};
use super::wire::FunctionConfiguration;
use super::{function_ref, json_body, ApiResult};
use crate::constraints::{self, Checks};
use crate::engine::{Engine, Publish};
use crate::function::alias::{Alias, AliasPatch};
use crate::function::{Function, NameForm};

/// The version and alias routes; merged into [`super::app`].
pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/2015-03-31/functions/{name}/versions", get(list_versions).post(publish))
        .route("/2015-03-31/functions/{name}/aliases", get(list_aliases).post(create_alias))
        .route("/2015-03-31/functions/{name}/aliases/{alias}", get(get_alias).put(update_alias).delete(delete_alias))
}

/// PublishVersion's body.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct PublishBody {
    code_sha256: Option<String>,
    description: Option<String>,
    revision_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RoutingBody {
    additional_version_weights: Option<BTreeMap<String, f64>>,
}

/// CreateAlias's and UpdateAlias's body.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AliasBody {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingBody>,
    revision_id: Option<String>,
}

impl AliasBody {
    fn patch(&mut self) -> AliasPatch {
        AliasPatch {
            function_version: self.function_version.take(),
            description: self.description.take(),
            // `RoutingConfig: {}` clears the weights, as `{"AdditionalVersionWeights": {}}` does.
            weights: self.routing_config.take().map(|r| r.additional_version_weights.unwrap_or_default()),
        }
    }
}

/// Lambda's AliasConfiguration.
fn alias_configuration(engine: &Engine, a: &Alias) -> Value {
    let mut out = json!({
        "AliasArn": engine.alias_arn(&a.function, &a.name),
        "Name": a.name,
        "FunctionVersion": a.function_version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if !a.weights.is_empty() {
        out["RoutingConfig"] = json!({ "AdditionalVersionWeights": a.weights });
    }
    out
}

/// A version as Lambda describes it, its ARN qualified by `qualifier`.
fn wire_config(f: &Function, engine: &Engine, qualifier: Option<&str>) -> FunctionConfiguration {
    FunctionConfiguration::of(f, engine.realm(), qualifier)
}

/// A required body member AWS's model checks before anything else.
fn required(value: Option<&str>, field: &str) -> Result<(), super::ApiError> {
    match value {
        Some(_) => Ok(()),
        None => Err(super::ApiError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

async fn publish(State(engine): State<Arc<Engine>>, Path(name): Path<String>, body: Body) -> ApiResult {
    let b: PublishBody = json_body(body, "PublishVersion").await?;
    Checks::new().text(&constraints::DESCRIPTION, b.description.as_deref()).finish()?;
    let publish = Publish { code_sha256: b.code_sha256, revision_id: b.revision_id, description: b.description };
    let v = engine.publish_version(&function_ref(&name, NameForm::Plain)?, publish).await?;
    let qualifier = v.version_label();
    Ok((StatusCode::CREATED, Json(wire_config(&v, &engine, Some(&qualifier)))).into_response())
}

async fn list_versions(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let all = engine.list_versions(&function_ref(&name, NameForm::Namespaced)?)?;
    // `$LATEST` first, then by number: zero-padded numbers sort as numbers.
    let key = |f: &Arc<Function>| f.version.map_or(String::new(), |n| format!("{n:010}"));
    let render = |f: &Arc<Function>| wire_config(f, &engine, Some(&f.version_label()));
    Ok(Json(listing("Versions", &all, &q, &constraints::MAX_ITEMS, key, render)?).into_response())
}

async fn create_alias(State(engine): State<Arc<Engine>>, Path(name): Path<String>, body: Body) -> ApiResult {
    let mut b: AliasBody = json_body(body, "CreateAlias").await?;
    required(b.name.as_deref(), "name")?;
    required(b.function_version.as_deref(), "functionVersion")?;
    let alias = b.name.take().unwrap_or_default();
    let a = engine.create_alias(&function_ref(&name, NameForm::Plain)?, &alias, b.patch()).await?;
    Ok((StatusCode::CREATED, Json(alias_configuration(&engine, &a))).into_response())
}

async fn get_alias(State(engine): State<Arc<Engine>>, Path((name, alias)): Path<(String, String)>) -> ApiResult {
    let a = engine.get_alias(&function_ref(&name, NameForm::Plain)?, &alias)?;
    Ok(Json(alias_configuration(&engine, &a)).into_response())
}

async fn update_alias(
    State(engine): State<Arc<Engine>>,
    Path((name, alias)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    let mut b: AliasBody = json_body(body, "UpdateAlias").await?;
    let patch = b.patch();
    let a =
        engine.update_alias(&function_ref(&name, NameForm::Plain)?, &alias, patch, b.revision_id.as_deref()).await?;
    Ok(Json(alias_configuration(&engine, &a)).into_response())
}

async fn delete_alias(State(engine): State<Arc<Engine>>, Path((name, alias)): Path<(String, String)>) -> ApiResult {
    engine.delete_alias(&function_ref(&name, NameForm::Plain)?, &alias).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_aliases(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    Checks::new().text(&constraints::ALIAS_FUNCTION_VERSION, q.function_version.as_deref()).finish()?;
    let all = engine.list_aliases(&function_ref(&name, NameForm::Plain)?, q.function_version.as_deref())?;
    let render = |a: &Arc<Alias>| alias_configuration(&engine, a);
    Ok(Json(listing("Aliases", &all, &q, &constraints::MAX_ITEMS, |a| a.name.clone(), render)?).into_response())
}
