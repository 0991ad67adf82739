//! Signing as a client. The `lambdabox` CLI, the integration tests and the
//! benchmark send every request through [`send`]; the controller presigns
//! the download URLs it hands out (GetFunction's `Code.Location`) with
//! [`presign`].

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};

use super::credentials::KeyPair;
use super::sigv4::{self, RequestParts, Scope, SigningKey, ALGORITHM, AMZ_DATE_FORMAT, UNSIGNED_PAYLOAD};
use super::verify::SERVICE;

/// The region clients sign for unless told otherwise; the controller
/// accepts any.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Headers left out of signatures: hop-by-hop ones, and those clients or
/// proxies may change on the way (the list botocore uses).
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot sign a streamed request body")]
    StreamingBody,
    #[error("cannot sign a request to {0}: it has no host")]
    NoHost(String),
    #[error(transparent)]
    Http(#[from] reqwest::Error),
}

/// `host[:port]` as HTTP clients send it (the port only when not the
/// scheme's default).
fn host_of(url: &reqwest::Url) -> Result<String, SignError> {
    let host = url.host_str().ok_or_else(|| SignError::NoHost(url.to_string()))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("signing values are visible ASCII")
}

/// Sign `request` in its `Authorization` header, for service `lambda` in
/// `region` at `now`: every header it carries is signed (but those in
/// [`UNSIGNED_HEADERS`]), with `host`, `x-amz-date` and
/// `x-amz-content-sha256`, the body's hash, which lets the controller check
/// the signature before it reads the body.
pub fn sign(request: &mut reqwest::Request, key: &KeyPair, region: &str, now: DateTime<Utc>) -> Result<(), SignError> {
    let payload_hash = match request.body() {
        None => sigv4::hex_sha256(b""),
        Some(body) => sigv4::hex_sha256(body.as_bytes().ok_or(SignError::StreamingBody)?),
    };
    let (method, url) = (request.method().clone(), request.url().clone());
    sign_parts(method.as_str(), &url, request.headers_mut(), &payload_hash, key, region, now)
}

/// [`sign`] for a request held as its parts, by a client that writes its own
/// HTTP (the benchmark's load generator): adds `host`, `x-amz-date`,
/// `x-amz-content-sha256` (`payload_hash`, the body's hex SHA-256) and
/// `authorization` to `headers`.
pub fn sign_parts(
    method: &str,
    url: &reqwest::Url,
    headers: &mut HeaderMap,
    payload_hash: &str,
    key: &KeyPair,
    region: &str,
    now: DateTime<Utc>,
) -> Result<(), SignError> {
    let host = host_of(url)?;
    let amz_date = now.format(AMZ_DATE_FORMAT).to_string();
    headers.remove(header::AUTHORIZATION);
    headers.insert(header::HOST, header_value(&host));
    headers.insert("x-amz-date", header_value(&amz_date));
    headers.insert("x-amz-content-sha256", header_value(payload_hash));
    let mut signed: Vec<String> =
        headers.keys().map(|k| k.as_str().to_owned()).filter(|k| !UNSIGNED_HEADERS.contains(&k.as_str())).collect();
    signed.sort();
    let scope = scope(&amz_date, region, SERVICE);
    let parts = RequestParts { method, path: url.path(), query: url.query(), headers };
    let canonical = sigv4::canonical_request(&parts, &sigv4::query_pairs(url.query()), &signed, payload_hash);
    let signature =
        SigningKey::derive(key.secret(), &scope).sign(&sigv4::string_to_sign(&amz_date, &scope, &canonical));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        key.access_key_id(),
        signed.join(";")
    );
    headers.insert(header::AUTHORIZATION, header_value(&authorization));
    Ok(())
}

/// Build `builder`'s request, sign it with `key` (send it unsigned if
/// `None`, for a controller run with `--insecure-no-auth`) and send it.
pub async fn send(
    builder: reqwest::RequestBuilder,
    key: Option<&KeyPair>,
    region: &str,
) -> Result<reqwest::Response, SignError> {
    let (client, request) = builder.build_split();
    let mut request = request?;
    if let Some(key) = key {
        sign(&mut request, key, region, Utc::now())?;
    }
    Ok(client.execute(request).await?)
}

/// A presigned URL for `GET http://{host}{path}`, valid for `expires`
/// from `now`, over `UNSIGNED-PAYLOAD`: the query carries the signature, so whoever holds the URL
/// may fetch it with no credentials (like the S3 URLs AWS hands out). `path`
/// must be percent-encoded already.
pub fn presign(host: &str, path: &str, key: &KeyPair, region: &str, now: DateTime<Utc>, expires: Duration) -> String {
    let amz_date = now.format(AMZ_DATE_FORMAT).to_string();
    let scope = scope(&amz_date, region, SERVICE);
    presign_scoped(host, path, key, &scope, &amz_date, expires, UNSIGNED_PAYLOAD)
}

fn scope(amz_date: &str, region: &str, service: &str) -> Scope {
    Scope { date: amz_date[..8].to_owned(), region: region.to_owned(), service: service.to_owned() }
}

fn presign_scoped(
    host: &str,
    path: &str,
    key: &KeyPair,
    scope: &Scope,
    amz_date: &str,
    expires: Duration,
    payload_hash: &str,
) -> String {
    let credential = format!("{}/{scope}", key.access_key_id());
    let query = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={}&X-Amz-SignedHeaders=host",
        sigv4::encode(credential.as_bytes()),
        expires.as_secs()
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, header_value(host));
    let parts = RequestParts { method: "GET", path, query: Some(&query), headers: &headers };
    let canonical =
        sigv4::canonical_request(&parts, &sigv4::query_pairs(Some(&query)), &["host".to_owned()], payload_hash);
    let signature = SigningKey::derive(key.secret(), scope).sign(&sigv4::string_to_sign(amz_date, scope, &canonical));
    format!("http://{host}{path}?{query}&X-Amz-Signature={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sigv4::Scope;

    #[test]
    fn presigned_urls_match_the_aws_test_suite() {
        // get-vanilla, query-signature.txt: signed for service `service`.
        let key = KeyPair::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").unwrap();
        let scope = Scope { date: "20150830".into(), region: "us-east-1".into(), service: "service".into() };
        let url = presign_scoped(
            "example.amazonaws.com",
            "/",
            &key,
            &scope,
            "20150830T123600Z",
            Duration::from_secs(3600),
            // The suite signs the empty body's hash; lambdabox's URLs sign UNSIGNED-PAYLOAD.
            &sigv4::hex_sha256(b""),
        );
        assert_eq!(
            url,
            "http://example.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d"
        );
    }

    #[test]
    fn hosts_keep_non_default_ports() {
        let host = |u: &str| host_of(&reqwest::Url::parse(u).unwrap()).unwrap();
        assert_eq!(host("http://127.0.0.1:9000/x"), "127.0.0.1:9000");
        assert_eq!(host("http://localhost/x"), "localhost");
        assert_eq!(host("https://[::1]:443/"), "[::1]");
    }
}
