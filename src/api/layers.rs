//! The layer operations of the Lambda API (`/2018-10-31/layers/…`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Links;
use super::paging::{max_items, DEFAULT_MAX_ITEMS};
use super::{json_body, stored_zip, zip_from, ApiError, ApiResult};
use crate::arn::Realm;
use crate::constraints::{self, Checks};
use crate::engine::{Engine, NewLayerVersion};
use crate::layer::LayerVersion;
use crate::store::code::sha256_base64;

/// The layer routes; merged into [`super::app`].
pub fn routes() -> Router<Arc<Engine>> {
    Router::new()
        .route("/2018-10-31/layers", get(list_layers))
        .route("/2018-10-31/layers/{name}/versions", get(list_versions).post(publish))
        .route("/2018-10-31/layers/{name}/versions/{version}", get(get_version).delete(delete_version))
        .route("/lambdabox/v1/layers/{name}/versions/{version}/content.zip", get(download))
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ContentBody {
    zip_file: Option<String>,
    s3_bucket: Option<String>,
}

/// PublishLayerVersion's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishBody {
    description: Option<String>,
    #[serde(default)]
    content: ContentBody,
    #[serde(default)]
    compatible_runtimes: Vec<String>,
    #[serde(default)]
    compatible_architectures: Vec<String>,
    license_info: Option<String>,
}

/// Lambda's LayerVersionsListItem: a version without its content.
fn list_item(v: &LayerVersion, realm: &Realm) -> Value {
    let mut item = json!({
        "LayerVersionArn": realm.layer_version_arn(&v.name, v.version),
        "Version": v.version,
        "Description": v.description,
        "CreatedDate": v.created,
        "CompatibleRuntimes": v.compatible_runtimes,
        "CompatibleArchitectures": v.compatible_architectures,
    });
    if let Some(license) = &v.license_info {
        item["LicenseInfo"] = license.clone().into();
    }
    item
}

/// GetLayerVersion's and PublishLayerVersion's answer.
fn full_version(v: &LayerVersion, realm: &Realm, links: &Links, headers: &HeaderMap) -> Value {
    let mut out = list_item(v, realm);
    out["LayerArn"] = realm.layer_arn(&v.name).into();
    out["Content"] = json!({
        "Location": links.url(headers, &format!("/lambdabox/v1/layers/{}/versions/{}/content.zip", v.name, v.version)),
        "CodeSha256": sha256_base64(&v.code_sha256),
        "CodeSize": v.code_size,
    });
    out
}

/// A `VersionNumber` path parameter (a long in AWS's model).
fn version_number(raw: &str) -> Result<u64, ApiError> {
    let n: i64 = raw
        .parse()
        .map_err(|_| ApiError::invalid_parameter(format!("Version number {raw} is not valid: expected an integer")))?;
    u64::try_from(n)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::invalid_parameter("Layer Version Cannot be less than 1"))
}

/// The layer lists' filters, as the model bounds them: any runtime id AWS
/// knows (not only those lambdabox runs) and either architecture.
fn filters(q: &HashMap<String, String>) -> Result<Filter<'_>, ApiError> {
    let runtime = q.get("CompatibleRuntime").map(String::as_str);
    let architecture = q.get("CompatibleArchitecture").map(String::as_str);
    Checks::new()
        .one_of(&constraints::COMPATIBLE_RUNTIME, runtime)
        .one_of(&constraints::COMPATIBLE_ARCHITECTURE, architecture)
        .finish()?;
    Ok(Filter { runtime, architecture })
}

/// Which versions a list keeps.
struct Filter<'a> {
    runtime: Option<&'a str>,
    architecture: Option<&'a str>,
}

impl Filter<'_> {
    fn keeps(&self, v: &LayerVersion) -> bool {
        let has = |list: &[String], wanted: Option<&str>| wanted.is_none_or(|w| list.iter().any(|x| x == w));
        has(&v.compatible_runtimes, self.runtime) && has(&v.compatible_architectures, self.architecture)
    }
}

/// One page of `items` after `Marker` (the index it stopped at), under
/// `key`, with `NextMarker` when more follow.
fn page(key: &str, items: Vec<Value>, q: &HashMap<String, String>) -> ApiResult {
    let max = max_items(q.get("MaxItems").map(String::as_str), &constraints::MAX_LAYER_ITEMS, DEFAULT_MAX_ITEMS)?;
    let start = match q.get("Marker").filter(|m| !m.is_empty()) {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| ApiError::invalid_parameter("Marker is not valid"))?,
    };
    let end = (start + max).min(items.len());
    let more = end < items.len();
    let mut out = json!({ key: items.into_iter().skip(start).take(max).collect::<Vec<_>>() });
    if more {
        out["NextMarker"] = end.to_string().into();
    }
    Ok(Json(out).into_response())
}

async fn publish(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Extension(links): Extension<Links>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let b: PublishBody = json_body(body, "PublishLayerVersion").await?;
    let zip = zip_from(b.content.zip_file.as_deref(), b.content.s3_bucket.as_deref(), None)?;
    let new = NewLayerVersion {
        name,
        description: b.description,
        compatible_runtimes: b.compatible_runtimes,
        compatible_architectures: b.compatible_architectures,
        license_info: b.license_info,
        zip,
    };
    let v = engine.publish_layer_version(new).await?;
    Ok((StatusCode::CREATED, Json(full_version(&v, engine.realm(), &links, &headers))).into_response())
}

async fn get_version(
    State(engine): State<Arc<Engine>>,
    Path((name, version)): Path<(String, String)>,
    Extension(links): Extension<Links>,
    headers: HeaderMap,
) -> ApiResult {
    let v = engine.get_layer_version(&name, version_number(&version)?)?;
    Ok(Json(full_version(&v, engine.realm(), &links, &headers)).into_response())
}

async fn delete_version(State(engine): State<Arc<Engine>>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    engine.delete_layer_version(&name, version_number(&version)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_versions(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let filter = filters(&q)?;
    let items = engine
        .list_layer_versions(&name)?
        .iter()
        .filter(|v| filter.keeps(v))
        .map(|v| list_item(v, engine.realm()))
        .collect();
    page("LayerVersions", items, &q)
}

async fn list_layers(State(engine): State<Arc<Engine>>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    let realm = engine.realm();
    let filter = filters(&q)?;
    let items = engine
        .list_layers()?
        .iter()
        .filter(|v| filter.keeps(v))
        .map(|v| {
            json!({
                "LayerName": v.name,
                "LayerArn": realm.layer_arn(&v.name),
                "LatestMatchingVersion": list_item(v, realm),
            })
        })
        .collect();
    page("Layers", items, &q)
}

async fn download(State(engine): State<Arc<Engine>>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    let v = engine.get_layer_version(&name, version_number(&version)?)?;
    stored_zip(&engine, &v.code_sha256).await
}
