//! The AWS Lambda REST API (REST-JSON, `/2015-03-31/...`) over the engine.
//!
//! Handlers only parse, validate the wire format and answer: every decision is
//! the [`Engine`]'s. Parameters are checked against the one table of AWS's
//! constraints ([`crate::constraints`]), so a malformed name, qualifier or
//! enum value gets the exception AWS gives it. Bodies are read with explicit
//! limits per operation (the 6 MB Invoke limit is an API fact, answered with
//! RequestEntityTooLargeException). Every route is behind
//! [`auth::require_signature`], and every answer, refusals included, carries
//! an `x-amzn-RequestId`.

pub mod auth;
pub mod error;
mod event_invoke;
mod eventbridge;
mod events;
pub mod eventstream;
mod layers;
mod paging;
mod response_stream;
mod stacks;
#[cfg(test)]
mod tests;
mod urls;
mod versions;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine as _;

use crate::constraints::{self, Checks, Member, Text};
use crate::engine::{Code, CodeUpdate, Engine, InvokeRequest, NewFunction};
use crate::function::{self, FunctionRef, NameForm};
pub use error::ApiError;
use paging::{listing, ListQuery};
use wire::FunctionConfiguration;

/// Largest management request, AWS's figure: a 50 MB zip, base64-encoded,
/// plus room for the JSON around it.
const MAX_MANAGEMENT_BODY: usize = 70_167_211;
/// Largest `X-Amz-Client-Context` header (base64).
const MAX_CLIENT_CONTEXT: usize = 3583;
type ApiResult = Result<Response, ApiError>;

/// The router; state is the engine. `access` says who may call it: its
/// check wraps every route and the fallback, so add routes above it.
/// `url_domain` is where function URLs are served, for `FunctionUrl`.
pub fn app(engine: Arc<Engine>, access: auth::Access, url_domain: crate::urls::Domain) -> Router {
    Router::new()
        .route("/2015-03-31/functions", post(create_function).get(list_functions))
        .route("/2015-03-31/functions/", post(create_function).get(list_functions))
        .route("/2015-03-31/functions/{name}", get(get_function).delete(delete_function))
        .route("/2015-03-31/functions/{name}/configuration", get(get_configuration).put(update_configuration))
        .route("/2015-03-31/functions/{name}/code", put(update_code))
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route("/2021-11-15/functions/{name}/response-streaming-invocations", post(response_stream::invoke))
        .route("/2017-10-31/functions/{name}/concurrency", put(put_concurrency).delete(delete_concurrency))
        .route("/2019-09-30/functions/{name}/concurrency", get(get_concurrency))
        .route(
            "/2019-09-30/functions/{name}/provisioned-concurrency",
            put(put_provisioned).get(get_provisioned).delete(delete_provisioned),
        )
        .route("/2016-08-19/account-settings", get(account_settings))
        .route("/lambdabox/v1/functions/{name}/code.zip", get(download_code))
        .route("/lambdabox/v1/functions/{name}/logs", get(function_logs))
        .route("/lambdabox/v1/containers", get(list_containers))
        .route(crate::client::paths::HEALTH, get(|| async { "ok" }))
        .merge(layers::routes())
        .merge(versions::routes())
        .merge(events::routes())
        .merge(event_invoke::routes())
        .merge(eventbridge::routes())
        .merge(urls::routes())
        .merge(stacks::routes())
        .fallback(unknown_operation)
        .layer(DefaultBodyLimit::disable())
        .layer(Extension(url_domain))
        .layer(axum::middleware::from_fn_with_state(access, auth::require_signature))
        .layer(axum::middleware::map_response(with_request_id))
        .with_state(engine)
}

/// Every answer carries `x-amzn-RequestId`, refusals too, as AWS's do
/// (clients show it as `ResponseMetadata.RequestId`); Invoke sets its own,
/// the invocation's.
async fn with_request_id(mut response: Response) -> Response {
    if !response.headers().contains_key("x-amzn-requestid") {
        let id = uuid::Uuid::new_v4().to_string();
        response
            .headers_mut()
            .insert("x-amzn-requestid", HeaderValue::from_str(&id).expect("a uuid is a header value"));
    }
    response
}

async fn unknown_operation() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "UnknownOperationException", "Unknown operation")
}

/// Read a body of at most `limit` bytes; a longer one gets `too_large`.
async fn read_limited(body: Body, limit: usize, too_large: impl FnOnce() -> ApiError) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            Err(if over { too_large() } else { ApiError::invalid_content(format!("could not read request body: {e}")) })
        }
    }
}

/// The operation a request with a body is, for messages that name it.
fn operation_name(method: &axum::http::Method, path: &str) -> &'static str {
    use axum::http::Method;
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    match (method, last) {
        (&Method::POST, "functions") => "CreateFunction",
        (&Method::PUT, "code") => "UpdateFunctionCode",
        (&Method::PUT, "configuration") => "UpdateFunctionConfiguration",
        (&Method::POST, "invocations") => "Invoke",
        (&Method::POST, "response-streaming-invocations") => "InvokeWithResponseStream",
        (&Method::PUT, "concurrency") => "PutFunctionConcurrency",
        (&Method::PUT, "provisioned-concurrency") => "PutProvisionedConcurrencyConfig",
        (&Method::POST, "versions") if path.contains("/layers/") => "PublishLayerVersion",
        (&Method::POST, "versions") => "PublishVersion",
        (&Method::POST, "aliases") => "CreateAlias",
        (&Method::POST, "url") => "CreateFunctionUrlConfig",
        (&Method::PUT, "url") => "UpdateFunctionUrlConfig",
        _ => "requested",
    }
}

/// A management body of operation `op`, within the largest operation's limit.
async fn management_body(body: Body, op: &str) -> Result<Bytes, ApiError> {
    read_limited(body, MAX_MANAGEMENT_BODY, || {
        ApiError::too_large(format!("Request must be smaller than {MAX_MANAGEMENT_BODY} bytes for the {op} operation"))
    })
    .await
}

/// Parse the body of operation `op` as JSON of type `T`.
async fn json_body<T: serde::de::DeserializeOwned>(body: Body, op: &str) -> Result<T, ApiError> {
    let bytes = management_body(body, op).await?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid_content(format!("Could not parse request body: {e}")))
}

fn decode_zip(b64: &str) -> Result<Vec<u8>, ApiError> {
    let zip = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ApiError::invalid_parameter(format!("ZipFile is not valid base64: {e}")))?;
    if zip.len() > function::MAX_ZIP_BYTES {
        return Err(ApiError::too_large(format!("Zipped size must be smaller than {} bytes", function::MAX_ZIP_BYTES)));
    }
    Ok(zip)
}

/// The zip a Code (or UpdateFunctionCode) body carries; other sources are
/// not available on a box without S3 or a registry.
fn zip_from(zip_file: Option<&str>, s3_bucket: Option<&str>, image_uri: Option<&str>) -> Result<Vec<u8>, ApiError> {
    match (zip_file, s3_bucket, image_uri) {
        (Some(z), None, None) => decode_zip(z),
        (None, Some(_), _) => {
            Err(ApiError::invalid_parameter("S3 code locations are not supported by lambdabox; send Code.ZipFile"))
        }
        (None, None, Some(_)) => Err(ApiError::invalid_parameter(
            "PackageType Image is not supported yet by this lambdabox; send Code.ZipFile",
        )),
        (None, None, None) => Err(ApiError::invalid_parameter("Code.ZipFile is required")),
        _ => Err(ApiError::invalid_parameter("Please provide exactly one of ZipFile, S3Bucket or ImageUri")),
    }
}

/// `Architectures` as the model bounds it (one of `x86_64`, `arm64`);
/// this box runs x86_64 only.
fn check_architectures(archs: Option<&[String]>) -> Result<(), ApiError> {
    Checks::new().list(&constraints::ARCHITECTURES, archs).finish()?;
    match archs {
        Some([a]) if a != "x86_64" => Err(ApiError::invalid_parameter(format!(
            "Architecture {a} is not supported by lambdabox, which runs x86_64 functions only"
        ))),
        _ => Ok(()),
    }
}

/// A FunctionName path parameter of an operation that takes `form`.
fn function_ref(name: &str, form: NameForm) -> Result<FunctionRef, ApiError> {
    Ok(FunctionRef::parse(name, form)?)
}

/// A reference with the `Qualifier` query parameter (checked as
/// `member`) folded in.
fn qualified_ref(
    name: &str,
    form: NameForm,
    query: &HashMap<String, String>,
    member: &Member<Text>,
) -> Result<FunctionRef, ApiError> {
    Ok(function_ref(name, form)?.with_qualifier(query.get("Qualifier").map(String::as_str), member)?)
}

/// The reference of the operations on a function or one of its versions
/// (GetFunction, GetFunctionConfiguration, DeleteFunction, Invoke).
fn namespaced_ref(name: &str, query: &HashMap<String, String>) -> Result<FunctionRef, ApiError> {
    qualified_ref(name, NameForm::Namespaced, query, &constraints::QUALIFIER)
}

fn configuration(engine: &Engine, f: &function::Function) -> Json<FunctionConfiguration> {
    Json(FunctionConfiguration::of(f, engine.realm(), None))
}

async fn create_function(State(engine): State<Arc<Engine>>, body: Body) -> ApiResult {
    let mut b: wire::CreateFunctionBody = json_body(body, "CreateFunction").await?;
    let function = function_ref(&b.function_name, NameForm::Plain)?;
    check_architectures(b.architectures.as_deref())?;
    event_invoke::dead_letter_config(b.config.dead_letter_config.as_ref())?;
    let image_config = b.config.image_config.take().unwrap_or_default();
    let code = match b.package_type.as_deref() {
        None | Some("Zip") => {
            Code::Zip(zip_from(b.code.zip_file.as_deref(), b.code.s3_bucket.as_deref(), b.code.image_uri.as_deref())?)
        }
        Some("Image") => image_code(b.code.image_uri, b.code.zip_file.is_some(), image_config)?,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{other}' at 'packageType' failed to satisfy constraint: \
                 Member must satisfy enum value set: [Zip, Image]"
            )))
        }
    };
    let zip = matches!(code, Code::Zip(_));
    let required = |v: &Option<String>, what: &str| match (v, zip) {
        (None, true) => Err(ApiError::invalid_parameter(format!("{what} is required for .zip deployment packages"))),
        (Some(_), false) => {
            Err(ApiError::invalid_parameter(format!("{what} is not supported for functions with PackageType Image")))
        }
        _ => Ok(()),
    };
    required(&b.config.runtime, "Runtime")?;
    required(&b.config.handler, "Handler")?;
    let new = NewFunction { function, code, config: b.config.into(), publish: b.publish.unwrap_or(false) };
    let f = engine.create_function(new).await?;
    Ok((StatusCode::CREATED, configuration(&engine, &f)).into_response())
}

/// An image function's code: `Code.ImageUri`, and nothing else.
fn image_code(uri: Option<String>, has_zip: bool, config: wire::ImageConfigBody) -> Result<Code, ApiError> {
    match uri {
        Some(uri) if !has_zip && !uri.is_empty() => Ok(Code::Image { uri, config: config.into() }),
        _ => Err(ApiError::invalid_parameter("PackageType Image requires Code.ImageUri (and no ZipFile)")),
    }
}

async fn list_functions(State(engine): State<Arc<Engine>>, Query(q): Query<ListQuery>) -> ApiResult {
    Checks::new()
        .one_of(&constraints::FUNCTION_VERSION, q.function_version.as_deref())
        .text(&constraints::MASTER_REGION, q.master_region.as_deref())
        .finish()?;
    // `FunctionVersion=ALL` lists every version, each by its qualified
    // ARN: `$LATEST` here (published versions are ListVersionsByFunction's).
    let version = q.function_version.is_some().then_some(function::LATEST);
    let all = engine.list_functions();
    let render = |f: &Arc<function::Function>| FunctionConfiguration::of(f, engine.realm(), version);
    let out = listing("Functions", &all, &q, &constraints::MAX_ITEMS, |f| f.name.clone(), render)?;
    Ok(Json(out).into_response())
}

async fn get_function(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    Extension(links): Extension<auth::Links>,
    headers: HeaderMap,
) -> ApiResult {
    let function = namespaced_ref(&name, &q)?;
    let f = engine.get_function(&function)?;
    let code = match &f.image {
        Some(image) => serde_json::json!({
            "RepositoryType": "ECR", "ImageUri": image.uri, "ResolvedImageUri": format!("{}@{}", image.uri, image.id),
        }),
        None => serde_json::json!({
            "RepositoryType": "S3", "Location": links.url(&headers, &format!("/lambdabox/v1/functions/{}/code.zip", f.slot())),
        }),
    };
    // No `Tags`: AWS leaves the key out for a function without tags.
    let mut out = serde_json::json!({
        "Configuration": FunctionConfiguration::of(&f, engine.realm(), function.qualifier.as_deref()),
        "Code": code,
    });
    if let Some(n) = f.reserved_concurrency {
        out["Concurrency"] = serde_json::json!({ "ReservedConcurrentExecutions": n });
    }
    Ok(Json(out).into_response())
}

async fn get_configuration(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let function = namespaced_ref(&name, &q)?;
    let f = engine.get_function(&function)?;
    Ok(Json(FunctionConfiguration::of(&f, engine.realm(), function.qualifier.as_deref())).into_response())
}

async fn delete_function(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    engine.delete_function(&namespaced_ref(&name, &q)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn update_code(State(engine): State<Arc<Engine>>, Path(name): Path<String>, body: Body) -> ApiResult {
    let b: wire::UpdateCodeBody = json_body(body, "UpdateFunctionCode").await?;
    check_architectures(b.architectures.as_deref())?;
    let code = match (b.image_uri, b.zip_file.is_some()) {
        (Some(uri), has_zip) => image_code(Some(uri), has_zip, wire::ImageConfigBody::default())?,
        (None, _) => Code::Zip(zip_from(b.zip_file.as_deref(), b.s3_bucket.as_deref(), None)?),
    };
    let update = CodeUpdate { code, publish: b.publish.unwrap_or(false), revision_id: b.revision_id };
    let f = engine.update_code(&function_ref(&name, NameForm::Plain)?, update).await?;
    // With `Publish`, the answer is the new version's, by its qualified ARN.
    let qualifier = f.version.map(|_| f.version_label());
    Ok(Json(FunctionConfiguration::of(&f, engine.realm(), qualifier.as_deref())).into_response())
}

async fn update_configuration(State(engine): State<Arc<Engine>>, Path(name): Path<String>, body: Body) -> ApiResult {
    let b: wire::UpdateConfigurationBody = json_body(body, "UpdateFunctionConfiguration").await?;
    event_invoke::dead_letter_config(b.config.dead_letter_config.as_ref())?;
    let function = function_ref(&name, NameForm::Plain)?;
    let f = engine.update_configuration(&function, b.config.into(), b.revision_id.as_deref()).await?;
    Ok(configuration(&engine, &f).into_response())
}

/// `GET /lambdabox/v1/functions/{name}[:{version}]/code.zip`: the zip a
/// function or one of its versions runs, as GetFunction's link gives it.
async fn download_code(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> ApiResult {
    let f = engine.get_function(&function_ref(&name, NameForm::Namespaced)?)?;
    if let Some(image) = &f.image {
        return Err(ApiError::invalid_parameter(format!(
            "{name} is a container image function ({}): it has no zip",
            image.uri
        )));
    }
    stored_zip(&engine, &f.code_sha256).await
}

/// A zip from the code store, as uploaded (function code and layer content).
async fn stored_zip(engine: &Engine, sha256_hex: &str) -> ApiResult {
    let bytes = engine.stored_zip(sha256_hex).await?;
    Ok(([(header::CONTENT_TYPE, "application/zip")], bytes).into_response())
}

/// The ClientContext header, base64 of JSON, decoded.
fn client_context(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("x-amz-client-context") else { return Ok(None) };
    if raw.len() > MAX_CLIENT_CONTEXT {
        return Err(ApiError::invalid_parameter(format!(
            "Client context must be at most {MAX_CLIENT_CONTEXT} bytes, base64-encoded"
        )));
    }
    let decoded = raw
        .to_str()
        .ok()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok())
        .ok_or_else(|| ApiError::invalid_parameter("Client context must be base64 of a JSON object"))?;
    Ok(Some(decoded))
}

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    fn name(self) -> &'static str {
        match self {
            InvocationType::RequestResponse => "RequestResponse",
            InvocationType::Event => "Event",
            InvocationType::DryRun => "DryRun",
        }
    }

    /// `value` if it is one of `accepted` (the operation's enum, in the
    /// order its validation message lists it).
    fn parse(value: &str, accepted: &[InvocationType]) -> Result<InvocationType, ApiError> {
        accepted.iter().copied().find(|t| t.name() == value).ok_or_else(|| {
            let names: Vec<&str> = accepted.iter().map(|t| t.name()).collect();
            ApiError::validation(format!(
                "1 validation error detected: Value '{value}' at 'invocationType' failed to satisfy constraint: \
                 Member must satisfy enum value set: [{}]",
                names.join(", ")
            ))
        })
    }
}

/// What Invoke and InvokeWithResponseStream read from a request alike.
struct InvokeInput {
    function: FunctionRef,
    payload: Bytes,
    client_context: Option<String>,
    log_tail: bool,
    /// `RequestResponse` when the header is absent.
    invocation_type: InvocationType,
}

impl InvokeInput {
    /// The request's input, for an operation that takes the invocation
    /// types `accepted`.
    async fn read(
        name: &str,
        q: &HashMap<String, String>,
        headers: &HeaderMap,
        body: Body,
        accepted: &[InvocationType],
    ) -> Result<Self, ApiError> {
        let function = namespaced_ref(name, q)?;
        let invocation_type =
            headers.get("x-amz-invocation-type").and_then(|v| v.to_str().ok()).unwrap_or("RequestResponse").to_owned();
        let payload = read_limited(body, function::MAX_SYNC_PAYLOAD, || {
            ApiError::too_large(format!(
                "Request must be smaller than {} bytes for the InvokeFunction operation",
                function::MAX_SYNC_PAYLOAD
            ))
        })
        .await?;
        let payload = if payload.iter().all(u8::is_ascii_whitespace) { Bytes::from_static(b"{}") } else { payload };
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&payload) {
            return Err(ApiError::invalid_content(format!("Could not parse request body into json: {e}")));
        }
        let client_context = client_context(headers)?;
        let log_tail = match headers.get("x-amz-log-type").map(|v| v.to_str().unwrap_or("")) {
            None | Some("None") => false,
            Some("Tail") => true,
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: \
                     Member must satisfy enum value set: [Tail, None]"
                )))
            }
        };
        let invocation_type = InvocationType::parse(&invocation_type, accepted)?;
        Ok(InvokeInput { function, payload, client_context, log_tail, invocation_type })
    }

    /// A `DryRun`'s answer: 204 once the function (and qualifier) exists.
    fn dry_run(&self, engine: &Engine) -> ApiResult {
        engine.get_function(&self.function)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    /// The synchronous call this input asks for.
    fn request(self) -> InvokeRequest {
        InvokeRequest::sync(self.function, self.payload, self.client_context, self.log_tail)
    }
}

/// The invocation's headers on an answer: its id and the version that ran.
fn invocation_headers(h: &mut HeaderMap, executed_version: &str, request_id: &str) {
    if let Ok(version) = HeaderValue::from_str(executed_version) {
        h.insert("x-amz-executed-version", version);
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", id);
    }
}

async fn invoke(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    use InvocationType::*;
    let input = InvokeInput::read(&name, &q, &headers, body, &[Event, RequestResponse, DryRun]).await?;
    match input.invocation_type {
        RequestResponse => {}
        DryRun => return input.dry_run(&engine),
        Event => {
            let request_id = engine.invoke_async(&input.function, input.payload, input.client_context).await?;
            return Ok(events::accepted(&request_id, Body::empty()));
        }
    }
    let out = engine.invoke(input.request()).await?;
    let mut response = Response::new(Body::from(out.payload));
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    invocation_headers(h, &out.executed_version, &out.request_id);
    if let Some(kind) = out.function_error {
        h.insert("x-amz-function-error", HeaderValue::from_static(kind));
    }
    if let Some(tail) = out.log_tail {
        let encoded = base64::engine::general_purpose::STANDARD.encode(tail);
        h.insert("x-amz-log-result", HeaderValue::from_str(&encoded).expect("base64 is a valid header value"));
    }
    Ok(response)
}

/// Default and largest amount of a function's log one request returns.
const LOG_DEFAULT_BYTES: u64 = 64 * 1024;
const LOG_MAX_BYTES: u64 = crate::logs::ROTATE_BYTES;

/// `GET /lambdabox/v1/functions/{name}/logs[?bytes=N]`: the end of the
/// function's log as text.
async fn function_logs(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let bytes =
        match q.get("bytes") {
            None => LOG_DEFAULT_BYTES,
            Some(v) => v.parse::<u64>().ok().filter(|n| (1..=LOG_MAX_BYTES).contains(n)).ok_or_else(|| {
                ApiError::invalid_parameter(format!("bytes must be an integer in 1..={LOG_MAX_BYTES}"))
            })?,
        };
    let text = engine.log_tail(&FunctionRef::named(&name), bytes)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn put_concurrency(State(engine): State<Arc<Engine>>, Path(name): Path<String>, body: Body) -> ApiResult {
    let b: wire::ConcurrencyBody = json_body(body, "PutFunctionConcurrency").await?;
    let f = engine
        .put_reserved_concurrency(&function_ref(&name, NameForm::Plain)?, b.reserved_concurrent_executions)
        .await?;
    Ok(Json(serde_json::json!({ "ReservedConcurrentExecutions": f.reserved_concurrency })).into_response())
}

async fn get_concurrency(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> ApiResult {
    let f = engine.get_reserved_concurrency(&function_ref(&name, NameForm::Plain)?)?;
    let out = match f.reserved_concurrency {
        Some(n) => serde_json::json!({ "ReservedConcurrentExecutions": n }),
        None => serde_json::json!({}),
    };
    Ok(Json(out).into_response())
}

async fn delete_concurrency(State(engine): State<Arc<Engine>>, Path(name): Path<String>) -> ApiResult {
    engine.delete_reserved_concurrency(&function_ref(&name, NameForm::Plain)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The provisioned concurrency operations' reference: `Qualifier` is
/// required (the engine refuses `$LATEST`, as AWS does).
fn provisioned_ref(name: &str, query: &HashMap<String, String>) -> Result<FunctionRef, ApiError> {
    if !query.contains_key("Qualifier") {
        return Err(ApiError::validation(
            "1 validation error detected: Value null at 'qualifier' failed to satisfy constraint: Member must not be null",
        ));
    }
    qualified_ref(name, NameForm::Plain, query, &constraints::PROVISIONED_QUALIFIER)
}

async fn put_provisioned(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Body,
) -> ApiResult {
    let b: wire::ProvisionedBody = json_body(body, "PutProvisionedConcurrencyConfig").await?;
    let status = engine.put_provisioned(&provisioned_ref(&name, &q)?, b.provisioned_concurrent_executions).await?;
    Ok((StatusCode::ACCEPTED, Json(wire::provisioned_config(&status))).into_response())
}

/// GetProvisionedConcurrencyConfig, or with `List=ALL`
/// ListProvisionedConcurrencyConfigs (the same path).
async fn get_provisioned(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    if q.contains_key("List") {
        return list_provisioned(&engine, &name, &q);
    }
    let status = engine.get_provisioned(&provisioned_ref(&name, &q)?)?;
    Ok(Json(wire::provisioned_config(&status)).into_response())
}

fn list_provisioned(engine: &Engine, name: &str, q: &HashMap<String, String>) -> ApiResult {
    let r = function_ref(name, NameForm::Plain)?;
    let all = engine.list_provisioned(&r)?;
    let arn = engine.function_arn(&r.name);
    let q = ListQuery { marker: q.get("Marker").cloned(), max_items: q.get("MaxItems").cloned(), ..Default::default() };
    let render = |s: &crate::engine::ProvisionedStatus| {
        let mut item = wire::provisioned_config(s);
        item["FunctionArn"] = format!("{arn}:{}", s.qualifier).into();
        item
    };
    let key = |s: &crate::engine::ProvisionedStatus| s.qualifier.clone();
    let out = listing("ProvisionedConcurrencyConfigs", &all, &q, &constraints::MAX_PROVISIONED_ITEMS, key, render)?;
    Ok(Json(out).into_response())
}

async fn delete_provisioned(
    State(engine): State<Arc<Engine>>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    engine.delete_provisioned(&provisioned_ref(&name, &q)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GetAccountSettings: Lambda's account limits and what this box's
/// functions use of them.
async fn account_settings(State(engine): State<Arc<Engine>>) -> ApiResult {
    Ok(Json(wire::account_settings(&engine.account_usage())).into_response())
}

/// `lambdabox ps`: every live container of this controller.
async fn list_containers(State(engine): State<Arc<Engine>>) -> ApiResult {
    Ok(Json(serde_json::json!({ "Containers": engine.containers() })).into_response())
}
