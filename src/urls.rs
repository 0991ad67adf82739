//! The function URL listener: plain HTTP in, one synchronous invocation
//! per request, the function's answer out. Served on a listener of its
//! own (`--url-listen`) so URLs can face a network the management API
//! never sees.
//!
//! A request names its URL by host, `<url-id>.lambda-url.<region>.localhost`
//! (what `FunctionUrl` reports), or, for clients that cannot resolve
//! `*.localhost`, by path: `/lambda-url/<url-id>/<rest>`, which the
//! function sees as `/<rest>`. The event ([`event`]), the mapping of its
//! result ([`answer`]), streamed answers ([`stream`]) and CORS ([`cors`])
//! are Lambda's; the engine only invokes.

pub mod answer;
pub mod cors;
pub mod event;
pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::Utc;

use crate::api::ApiError;
use crate::auth::sigv4::{self, RequestParts, UNSIGNED_PAYLOAD};
use crate::auth::verify::Payload;
use crate::auth::{AuthError, Verifier};
use crate::engine::{Engine, EngineError, InvokeRequest};
use crate::function::url::{is_url_id, AuthType, InvokeMode, UrlConfig};
use crate::function::{FunctionRef, MAX_SYNC_PAYLOAD};
use event::{Caller, Incoming};

/// The path prefix of the path form.
pub const PATH_PREFIX: &str = "/lambda-url/";

/// The host names URLs are served under, and the port they report.
#[derive(Debug, Clone)]
pub struct Domain {
    /// `lambda-url.<region>.localhost`.
    suffix: Arc<str>,
    /// The URL listener's port; `None` when URLs are not served.
    port: Option<u16>,
}

impl Domain {
    pub fn new(region: &str, port: Option<u16>) -> Domain {
        Domain { suffix: format!("lambda-url.{region}.localhost").into(), port }
    }

    /// `<url-id>.lambda-url.<region>.localhost`.
    pub fn host(&self, url_id: &str) -> String {
        format!("{url_id}.{}", self.suffix)
    }

    /// What `FunctionUrl` reports: `http://HOST:PORT/`.
    pub fn url(&self, url_id: &str) -> String {
        match self.port {
            Some(port) => format!("http://{}:{port}/", self.host(url_id)),
            None => format!("http://{}/", self.host(url_id)),
        }
    }

    /// The URL id a `Host` header names, if it is one of ours.
    fn url_id_of_host<'h>(&self, host: &'h str) -> Option<&'h str> {
        let name = host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(host, |h| h.0);
        let (id, rest) = name.split_once('.')?;
        (rest.eq_ignore_ascii_case(&self.suffix) && is_url_id(id)).then_some(id)
    }
}

/// Which URL a request is for, and the path its function sees.
#[derive(Debug, PartialEq, Eq)]
struct Target<'r> {
    url_id: &'r str,
    raw_path: &'r str,
}

/// By host first, then by the path form.
fn target<'r>(domain: &Domain, host: Option<&'r str>, path: &'r str) -> Option<Target<'r>> {
    if let Some(url_id) = host.and_then(|h| domain.url_id_of_host(h)) {
        return Some(Target { url_id, raw_path: path });
    }
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let (url_id, raw_path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    is_url_id(url_id).then_some(Target { url_id, raw_path })
}

/// Why a URL request got no answer from its function.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// No such URL (or its function or alias is gone): Lambda's 403.
    #[error("no function URL here")]
    Unknown,
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// An AWS_IAM URL on a controller without credentials (`--insecure-no-auth`).
    #[error("this controller has no credentials to check AWS_IAM URLs with")]
    NoCredentials,
    #[error("Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation")]
    TooLarge,
    #[error("could not read the request body: {0}")]
    Body(String),
    #[error("the invocation failed: {0}")]
    Engine(#[from] EngineError),
    #[error("the function failed or its answer is no HTTP response: {0}")]
    Function(String),
}

/// `{"Message": …}` with `x-amzn-ErrorType`, as Lambda's URL front end answers.
fn refusal(status: StatusCode, code: &'static str, message: Option<&str>) -> Response {
    let body = serde_json::json!({ "Message": message }).to_string();
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(code));
    r
}

impl IntoResponse for UrlError {
    fn into_response(self) -> Response {
        let forbidden = || refusal(StatusCode::FORBIDDEN, "AccessDeniedException", None);
        match self {
            UrlError::Unknown => forbidden(),
            UrlError::Unauthenticated(e) => ApiError::from(e).into_response(),
            UrlError::NoCredentials => {
                tracing::warn!("refused a request to an AWS_IAM function URL: {self}");
                forbidden()
            }
            UrlError::TooLarge => refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                Some(&UrlError::TooLarge.to_string()),
            ),
            UrlError::Body(m) => refusal(StatusCode::BAD_REQUEST, "InvalidRequestContentException", Some(&m)),
            UrlError::Engine(EngineError::Throttled(_)) => {
                refusal(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", Some("Rate Exceeded."))
            }
            UrlError::Engine(EngineError::RequestTooLarge(m)) => {
                refusal(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLargeException", Some(&m))
            }
            UrlError::Engine(EngineError::NotFound(_) | EngineError::AccessDenied) => forbidden(),
            e @ (UrlError::Engine(_) | UrlError::Function(_)) => {
                tracing::info!(error = %e, "function URL answered 502");
                let mut r = (StatusCode::BAD_GATEWAY, "Internal Server Error").into_response();
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
        }
    }
}

/// What every URL request needs.
#[derive(Debug, Clone)]
struct Urls {
    engine: Arc<Engine>,
    /// The controller's key pairs, for AWS_IAM URLs; `None` with `--insecure-no-auth`.
    verifier: Option<Arc<Verifier>>,
    domain: Domain,
}

/// The URL listener's service: every method and path goes to [`serve`].
pub fn app(engine: Arc<Engine>, verifier: Option<Arc<Verifier>>, domain: Domain) -> Router {
    Router::new().fallback(serve).layer(DefaultBodyLimit::disable()).with_state(Urls { engine, verifier, domain })
}

async fn serve(State(urls): State<Urls>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut response = handle(&urls, peer, request, &request_id).await.unwrap_or_else(IntoResponse::into_response);
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amzn-requestid", id);
    }
    response
}

/// The URL a request is for, with its function (and alias) still there.
fn find_url(urls: &Urls, request: &Request) -> Result<(Arc<UrlConfig>, String), UrlError> {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let t = target(&urls.domain, host, request.uri().path()).ok_or(UrlError::Unknown)?;
    let url = urls.engine.url_by_id(t.url_id).ok_or(UrlError::Unknown)?;
    Ok((url, t.raw_path.to_owned()))
}

async fn handle(urls: &Urls, peer: SocketAddr, request: Request, request_id: &str) -> Result<Response, UrlError> {
    let (url, raw_path) = find_url(urls, &request)?;
    if let (Some(c), true) = (&url.cors, cors::is_preflight(request.method(), request.headers())) {
        return Ok(cors::preflight(c, request.headers()));
    }
    let (parts, body) = request.into_parts();
    let body = read_body(body).await?;
    let caller = match url.auth_type {
        AuthType::None => None,
        AuthType::AwsIam => Some(authenticate(urls, &parts, &body)?),
    };
    let now = Utc::now();
    let domain_name = urls.domain.host(&url.url_id);
    let event = event::event(&Incoming {
        method: parts.method.as_str(),
        raw_path: &raw_path,
        raw_query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip(),
        port: urls.domain.port.unwrap_or(80),
        url_id: &url.url_id,
        domain_name: &domain_name,
        caller: caller.as_ref(),
        request_id,
        now,
    });
    let mut response = invoke(urls, &url, Bytes::from(event.to_string()), request_id).await?;
    if let Some(c) = &url.cors {
        cors::decorate(c, &parts.headers, &mut response);
    }
    Ok(response)
}

/// Run the URL's function on `event` and answer as its invoke mode says:
/// BUFFERED maps the whole result; RESPONSE_STREAM passes bytes on as the
/// function writes them ([`stream`]).
async fn invoke(urls: &Urls, url: &UrlConfig, event: Bytes, request_id: &str) -> Result<Response, UrlError> {
    let function = FunctionRef { qualifier: url.alias.clone(), ..FunctionRef::named(&url.function) };
    let mut req = InvokeRequest::sync(function, event, None, false);
    req.request_id = Some(request_id.to_owned());
    match url.mode() {
        InvokeMode::ResponseStream => stream::response(urls.engine.invoke_streaming(req).await?).await,
        InvokeMode::Buffered => {
            let out = urls.engine.invoke(req).await?;
            if out.function_error.is_some() {
                return Err(UrlError::Function(String::from_utf8_lossy(&out.payload).into_owned()));
            }
            answer::response(&out.payload).map_err(|e| UrlError::Function(e.to_string()))
        }
    }
}

/// The body, within Invoke's limit.
async fn read_body(body: Body) -> Result<Bytes, UrlError> {
    axum::body::to_bytes(body, MAX_SYNC_PAYLOAD).await.map_err(|e| {
        let over = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if over {
            UrlError::TooLarge
        } else {
            UrlError::Body(e.to_string())
        }
    })
}

/// Check an AWS_IAM URL request's SigV4 signature (service `lambda`) with
/// the controller's key pairs: the same verifier as the management API's.
fn authenticate(urls: &Urls, parts: &axum::http::request::Parts, body: &[u8]) -> Result<Caller, UrlError> {
    let verifier = urls.verifier.as_ref().ok_or(UrlError::NoCredentials)?;
    let wire = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    let claim = verifier.claim(&wire, Utc::now())?;
    let hash = match claim.payload() {
        Payload::Unsigned => UNSIGNED_PAYLOAD.to_owned(),
        Payload::Declared(hash) if hash.eq_ignore_ascii_case(&sigv4::hex_sha256(body)) => hash.clone(),
        Payload::Declared(_) => {
            return Err(AuthError::Invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
            )
            .into())
        }
        Payload::Body => sigv4::hex_sha256(body),
    };
    claim.verify(&wire, &hash)?;
    Ok(Caller { access_key_id: claim.access_key_id().to_owned(), account: urls.engine.realm().account.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdefghijklmnopqrstuv";

    #[test]
    fn urls_are_found_by_host_or_by_path() {
        let d = Domain::new("us-east-1", Some(9001));
        assert_eq!(d.url(ID), format!("http://{ID}.lambda-url.us-east-1.localhost:9001/"));
        let host = format!("{ID}.lambda-url.us-east-1.localhost:9001");
        assert_eq!(target(&d, Some(&host), "/a%2Fb"), Some(Target { url_id: ID, raw_path: "/a%2Fb" }));
        let host = format!("{ID}.LAMBDA-URL.us-east-1.localhost");
        assert_eq!(target(&d, Some(&host), "/").map(|t| t.url_id), Some(ID));
        let path = format!("/lambda-url/{ID}/x/y");
        assert_eq!(target(&d, Some("127.0.0.1:9001"), &path), Some(Target { url_id: ID, raw_path: "/x/y" }));
        let path = format!("/lambda-url/{ID}");
        assert_eq!(target(&d, None, &path), Some(Target { url_id: ID, raw_path: "/" }));
        let other_region = format!("{ID}.lambda-url.eu-west-1.localhost");
        assert_eq!(target(&d, Some(&other_region), "/"), None);
        assert_eq!(target(&d, None, "/lambda-url/short/x"), None);
        assert_eq!(target(&d, None, "/2015-03-31/functions"), None);
    }
}
