//! The gate in front of every API route: a request must carry a valid SigV4
//! signature (header or presigned URL) by a key pair the controller accepts.
//!
//! [`super::app`] puts [`require_signature`] around the whole router, its
//! fallback included, so a route added there is covered without asking.
//! Only [`PUBLIC`] is served unsigned. The Runtime API is not here: it is
//! served on each container's own socket, never on the API's listener.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use tokio::sync::Semaphore;

use super::error::BodyShape;
use super::{management_body, ApiError};
use crate::auth::sigv4::{self, RequestParts, UNSIGNED_PAYLOAD};
use crate::auth::verify::Payload;
use crate::auth::{AuthError, KeyPair, Verifier};

/// What is served without a signature: the health check, so scripts and
/// load balancers can wait for the controller without holding keys. It
/// says "ok" and nothing else.
pub const PUBLIC: &[(Method, &str)] = &[(Method::GET, crate::client::paths::HEALTH)];

/// How long the download URLs the controller hands out stay valid (as
/// Lambda's `Code.Location`).
const LINK_VALIDITY: Duration = Duration::from_secs(600);

/// Bodies over this size (or of unknown size) take a turn at
/// [`LARGE_BODIES_AT_ONCE`] before they are read.
const SMALL_BODY: u64 = 1024 * 1024;
/// How many large bodies may be read at once before their signature is
/// checked. A header signature covers the body's hash, so the body must be
/// held before anyone is proven to have sent it: this bounds what knowing
/// an access key id (not its secret) lets a sender make the controller hold
/// to a few hundred MB, while uploads from real clients merely queue.
const LARGE_BODIES_AT_ONCE: usize = 4;

/// Who may call the API.
#[derive(Debug, Clone)]
pub enum Access {
    /// Requests must be signed with a key pair of the verifier's.
    Signed { verifier: Arc<Verifier>, links: Links, large_bodies: Arc<Semaphore> },
    /// `--insecure-no-auth`: any request, signed or not, by any key.
    Open,
}

impl Access {
    /// Signed requests only; the controller presigns its own URLs with the
    /// verifier's first pair, for `region`.
    pub fn signed(verifier: Verifier, region: &str) -> Access {
        let links = Links { key: Some(Arc::new(verifier.keys().primary().clone())), region: region.into() };
        let large_bodies = Arc::new(Semaphore::new(LARGE_BODIES_AT_ONCE));
        Access::Signed { verifier: Arc::new(verifier), links, large_bodies }
    }

    /// The verifier of signed access: function URLs of AuthType AWS_IAM
    /// check their requests with it too. `None` for open access.
    pub fn verifier(&self) -> Option<Arc<Verifier>> {
        match self {
            Access::Signed { verifier, .. } => Some(verifier.clone()),
            Access::Open => None,
        }
    }

    fn links(&self) -> Links {
        match self {
            Access::Signed { links, .. } => links.clone(),
            Access::Open => Links { key: None, region: "".into() },
        }
    }
}

/// Makes the download URLs handlers hand out (GetFunction's
/// `Code.Location`, GetLayerVersion's `Content.Location`): presigned with
/// the controller's first key pair when requests must be signed, so they
/// work without credentials like the S3 URLs AWS gives. Every request
/// carries one as an extension (cheap to clone).
#[derive(Debug, Clone)]
pub struct Links {
    key: Option<Arc<KeyPair>>,
    region: Arc<str>,
}

impl Links {
    /// A URL for `path` (percent-encoded) on the host the request came to.
    pub fn url(&self, request_headers: &HeaderMap, path: &str) -> String {
        let host = request_headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:9000");
        match &self.key {
            Some(key) => crate::auth::sign::presign(host, path, key, &self.region, Utc::now(), LINK_VALIDITY),
            None => format!("http://{host}{path}"),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        ApiError {
            body: super::error::BodyShape::Untyped,
            ..ApiError::new(StatusCode::FORBIDDEN, e.code(), e.to_string())
        }
    }
}

/// The middleware: pass a request on if it is public, or open access, or
/// correctly signed; else answer AWS's 403.
pub async fn require_signature(State(access): State<Access>, mut request: Request, next: Next) -> Response {
    let public = PUBLIC.iter().any(|(m, p)| request.method() == m && request.uri().path() == *p);
    request.extensions_mut().insert(access.links());
    let (verifier, large_bodies) = match &access {
        Access::Signed { verifier, large_bodies, .. } if !public => (verifier, large_bodies),
        _ => return next.run(request).await,
    };
    // A JSON 1.1 client (EventBridge's) reads errors in that protocol's shape.
    let json11 = request.headers().contains_key("x-amz-target");
    match authenticate(verifier, large_bodies, request).await {
        Ok(request) => next.run(request).await,
        Err(e) if json11 => ApiError { body: BodyShape::AmzJson, ..e }.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Check the signature. The body is read (up to the largest API body) only
/// when its hash is needed, and handed on as read; a declared hash
/// (`X-Amz-Content-Sha256`) lets a bad signature be refused before.
async fn authenticate(verifier: &Verifier, large_bodies: &Semaphore, request: Request) -> Result<Request, ApiError> {
    let (parts, body) = request.into_parts();
    let wire = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
    };
    let refused = |e: AuthError| {
        tracing::debug!(code = e.code(), method = %wire.method, path = wire.path, "unauthenticated request refused");
        ApiError::from(e)
    };
    let claim = verifier.claim(&wire, Utc::now()).map_err(refused)?;
    let body = match claim.payload() {
        Payload::Unsigned => {
            claim.verify(&wire, UNSIGNED_PAYLOAD).map_err(refused)?;
            body
        }
        Payload::Declared(hash) => {
            claim.verify(&wire, hash).map_err(refused)?;
            let bytes = management_body(body, super::operation_name(&parts.method, parts.uri.path())).await?;
            if !hash.eq_ignore_ascii_case(&sigv4::hex_sha256(&bytes)) {
                return Err(refused(AuthError::Invalid(
                    "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
                )));
            }
            Body::from(bytes)
        }
        Payload::Body => {
            // hyper reads no more than a declared Content-Length.
            let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            let _turn = match declared {
                Some(len) if len <= SMALL_BODY => None,
                _ => Some(large_bodies.acquire().await.expect("the semaphore is never closed")),
            };
            let bytes = management_body(body, super::operation_name(&parts.method, parts.uri.path())).await?;
            claim.verify(&wire, &sigv4::hex_sha256(&bytes)).map_err(refused)?;
            Body::from(bytes)
        }
    };
    tracing::trace!(access_key_id = claim.access_key_id(), "signature verified");
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{sign, KeyRing};
    use axum::body::Bytes;
    use axum::extract::Extension;
    use axum::routing::{get, post as route_post};
    use axum::Router;
    use tower::ServiceExt;

    fn key() -> KeyPair {
        KeyPair::new("AKIATEST", "secretsecretsecretsecret").unwrap()
    }

    fn signed_access() -> Access {
        Access::signed(Verifier::new(KeyRing::new(vec![key()]).unwrap()), "us-east-1")
    }

    /// A router shaped like the API's: a public health check, an echo, a
    /// handler that hands out a link, a fallback; the gate around it all.
    fn app(access: Access) -> Router {
        Router::new()
            .route("/lambdabox/v1/health", get(|| async { "ok" }))
            .route("/echo", route_post(|body: Bytes| async move { body }).get(|| async { "zip" }))
            .route("/link", get(|Extension(l): Extension<Links>, h: HeaderMap| async move { l.url(&h, "/echo") }))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn_with_state(access, require_signature))
    }

    /// `request` as reqwest would send it to 127.0.0.1:9000, signed if `key`.
    fn http_request(request: reqwest::Request, key: Option<&KeyPair>) -> Request {
        let mut request = request;
        if let Some(key) = key {
            sign::sign(&mut request, key, "us-east-1", Utc::now()).unwrap();
        }
        let mut out = Request::builder().method(request.method().as_str()).uri(request.url().as_str());
        for (name, value) in request.headers() {
            out = out.header(name, value);
        }
        if !request.headers().contains_key(header::HOST) {
            out = out.header(header::HOST, "127.0.0.1:9000");
        }
        let body = request.body().and_then(|b| b.as_bytes()).map(<[u8]>::to_vec).unwrap_or_default();
        out.body(Body::from(body)).unwrap()
    }

    fn post(path: &str, body: &str) -> reqwest::Request {
        reqwest::Client::new().post(format!("http://127.0.0.1:9000{path}")).body(body.to_owned()).build().unwrap()
    }

    async fn answer(app: Router, request: Request) -> (u16, Option<String>, String) {
        let response = app.oneshot(request).await.unwrap();
        let code = response.headers().get("x-amzn-errortype").map(|v| v.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, code, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn only_the_health_check_is_served_unsigned() {
        let get = |path: &str| reqwest::Client::new().get(format!("http://127.0.0.1:9000{path}")).build().unwrap();
        let (status, _, body) = answer(app(signed_access()), http_request(get("/lambdabox/v1/health"), None)).await;
        assert_eq!((status, body.as_str()), (200, "ok"));
        for path in ["/echo", "/link", "/nowhere", "/lambdabox/v1/health/x"] {
            let (status, code, body) = answer(app(signed_access()), http_request(get(path), None)).await;
            assert_eq!((status, code.as_deref()), (403, Some("MissingAuthenticationTokenException")), "{path}");
            assert_eq!(body, r#"{"message":"Missing Authentication Token"}"#);
        }
        let (status, _, _) = answer(app(signed_access()), http_request(get("/nowhere"), Some(&key()))).await;
        assert_eq!(status, 404, "signed, an unknown path reaches the fallback");
    }

    #[tokio::test]
    async fn json_1_1_clients_get_refusals_in_their_shape() {
        let mut request = post("/echo", "{}");
        request.headers_mut().insert("x-amz-target", "AWSEvents.ListRules".parse().unwrap());
        let (status, code, body) = answer(app(signed_access()), http_request(request, None)).await;
        assert_eq!((status, code.as_deref()), (403, Some("MissingAuthenticationTokenException")));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
        );
    }

    #[tokio::test]
    async fn signed_bodies_pass_and_tampered_ones_do_not() {
        let (status, _, body) = answer(app(signed_access()), http_request(post("/echo", "{}"), Some(&key()))).await;
        assert_eq!((status, body.as_str()), (200, "{}"), "the body reaches the handler as sent");

        let mut request = post("/echo", "{}");
        sign::sign(&mut request, &key(), "us-east-1", Utc::now()).unwrap();
        *request.body_mut() = Some(reqwest::Body::from("{\"evil\":1}"));
        let (status, code, body) = answer(app(signed_access()), http_request(request, None)).await;
        assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")), "declared hash: {body}");

        // Without a declared hash (as the AWS SDKs sign) the body's own hash is checked.
        let mut request = post("/echo", "{}");
        sign::sign(&mut request, &key(), "us-east-1", Utc::now()).unwrap();
        let mut tampered = http_request(request, None);
        tampered.headers_mut().remove("x-amz-content-sha256");
        *tampered.body_mut() = Body::from("{\"evil\":1}");
        let (status, code, _) = answer(app(signed_access()), tampered).await;
        assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")));
    }

    #[tokio::test]
    async fn open_access_takes_anything_and_links_are_plain() {
        let (status, _, _) = answer(app(Access::Open), http_request(post("/echo", "{}"), None)).await;
        assert_eq!(status, 200);
        let stranger = KeyPair::new("AKIASTRANGER", "x").unwrap();
        let (status, _, _) = answer(app(Access::Open), http_request(post("/echo", "{}"), Some(&stranger))).await;
        assert_eq!(status, 200);
        let link = reqwest::Client::new().get("http://127.0.0.1:9000/link").build().unwrap();
        let (_, _, url) = answer(app(Access::Open), http_request(link, None)).await;
        assert_eq!(url, "http://127.0.0.1:9000/echo");
    }

    #[tokio::test]
    async fn links_are_presigned_and_work_without_keys() {
        let link = reqwest::Client::new().get("http://127.0.0.1:9000/link").build().unwrap();
        let (_, _, url) = answer(app(signed_access()), http_request(link, Some(&key()))).await;
        assert!(url.starts_with("http://127.0.0.1:9000/echo?X-Amz-Algorithm=AWS4-HMAC-SHA256&"), "{url}");
        let get = reqwest::Client::new().get(&url).build().unwrap();
        let (status, _, body) = answer(app(signed_access()), http_request(get, None)).await;
        assert_eq!((status, body.as_str()), (200, "zip"));
        let post = reqwest::Client::new().post(&url).body("{}").build().unwrap();
        let (status, code, _) = answer(app(signed_access()), http_request(post, None)).await;
        assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")), "good for GET only");
    }

    #[tokio::test]
    async fn bodies_over_the_api_limit_are_refused_unread() {
        let big = "x".repeat(super::super::MAX_MANAGEMENT_BODY + 1);
        let mut request = http_request(post("/echo", "{}"), Some(&key()));
        request.headers_mut().remove("x-amz-content-sha256");
        *request.body_mut() = Body::from(big);
        let (status, code, _) = answer(app(signed_access()), request).await;
        assert_eq!((status, code.as_deref()), (413, Some("RequestEntityTooLargeException")));
    }

    /// A signed request whose body (of unknown size) never ends, as a
    /// sender that knows the key id but not the secret could send.
    fn endless_body() -> Request {
        let mut request = http_request(post("/echo", "{}"), Some(&key()));
        request.headers_mut().remove("x-amz-content-sha256");
        request.headers_mut().remove(header::CONTENT_LENGTH);
        let never = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        *request.body_mut() = Body::from_stream(never);
        request
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_few_large_unverified_bodies_are_read_at_once() {
        let access = signed_access();
        let Access::Signed { large_bodies, .. } = &access else { unreachable!() };
        let large_bodies = large_bodies.clone();
        let router = app(access);
        let held: Vec<_> =
            (0..LARGE_BODIES_AT_ONCE).map(|_| tokio::spawn(router.clone().oneshot(endless_body()))).collect();
        tokio::task::yield_now().await;
        // Bodies with a small declared length do not wait for a turn…
        let mut small = http_request(post("/echo", "{}"), Some(&key()));
        small.headers_mut().remove("x-amz-content-sha256");
        small.headers_mut().insert(header::CONTENT_LENGTH, "2".parse().unwrap());
        let (status, code, _) = answer(router.clone(), small).await;
        assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")), "read and judged at once");
        // …large ones of unknown size do: the next is not read while the
        // endless ones hold every turn.
        // Its declared hash removed, it is judged on its body, so it must
        // be read first (and then fails, the header having been signed).
        let mut probe = http_request(post("/echo", "{}"), Some(&key()));
        probe.headers_mut().remove("x-amz-content-sha256");
        probe.headers_mut().remove(header::CONTENT_LENGTH);
        let probe = tokio::spawn(answer(router.clone(), probe));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(held.iter().all(|h| !h.is_finished()), "the endless bodies are being read");
        assert_eq!(large_bodies.available_permits(), 0, "every turn is taken");
        assert!(!probe.is_finished(), "a fifth large body waits for a turn");
        held[0].abort();
        let (status, code, _) = probe.await.unwrap();
        assert_eq!((status, code.as_deref()), (403, Some("InvalidSignatureException")), "read once a turn is free");
        held.iter().for_each(|h| h.abort());
    }
}
