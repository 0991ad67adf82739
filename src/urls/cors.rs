//! CORS for function URLs, from the URL's configuration: Lambda answers
//! preflights itself, and its headers replace any CORS headers the
//! function sets.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;

use crate::function::url::Cors;

/// Whether a request is a browser's preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The request's origin when the configuration allows it: what
/// `Access-Control-Allow-Origin` answers (`*` when any origin may call
/// and credentials are not allowed).
fn allowed_origin(cors: &Cors, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let origins = cors.allow_origins.as_deref().unwrap_or_default();
    let credentials = cors.allow_credentials == Some(true);
    if origins.iter().any(|o| o == "*") {
        return Some(if credentials { origin.clone() } else { HeaderValue::from_static("*") });
    }
    let wanted = origin.to_str().ok()?;
    origins.iter().any(|o| o.eq_ignore_ascii_case(wanted)).then(|| origin.clone())
}

fn joined(items: Option<&[String]>) -> Option<HeaderValue> {
    items.filter(|i| !i.is_empty()).and_then(|i| HeaderValue::from_str(&i.join(",")).ok())
}

/// The answer to a preflight: the configured headers when the origin may
/// call, none otherwise (the browser then refuses).
pub fn preflight(cors: &Cors, request: &HeaderMap) -> Response {
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = allowed_origin(cors, request) else { return response };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if let Some(methods) = joined(cors.allow_methods.as_deref()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    }
    if let Some(headers) = joined(cors.allow_headers.as_deref()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
    }
    if let Some(age) = cors.max_age {
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
    if cors.allow_credentials == Some(true) {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
    response
}

/// Put the configured CORS headers on a function's response, in place of
/// any the function set.
pub fn decorate(cors: &Cors, request: &HeaderMap, response: &mut Response) {
    let h = response.headers_mut();
    let theirs: Vec<_> = h.keys().filter(|k| k.as_str().starts_with("access-control-")).cloned().collect();
    for name in theirs {
        h.remove(name);
    }
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = allowed_origin(cors, request) else { return };
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if let Some(expose) = joined(cors.expose_headers.as_deref()) {
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, expose);
    }
    if cors.allow_credentials == Some(true) {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors {
            allow_origins: Some(vec!["https://app.example".into()]),
            allow_methods: Some(vec!["GET".into(), "POST".into()]),
            allow_headers: Some(vec!["x-custom".into()]),
            expose_headers: Some(vec!["x-total".into()]),
            max_age: Some(60),
            allow_credentials: Some(true),
        }
    }

    fn from(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h.insert(header::ACCESS_CONTROL_REQUEST_METHOD, "POST".parse().unwrap());
        h
    }

    #[test]
    fn preflights_are_answered_from_the_configuration() {
        assert!(is_preflight(&Method::OPTIONS, &from("https://app.example")));
        assert!(!is_preflight(&Method::GET, &from("https://app.example")));
        let r = preflight(&cors(), &from("https://app.example"));
        let h = r.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "x-custom");
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "60");
        let r = preflight(&cors(), &from("https://evil.example"));
        assert!(!r.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[test]
    fn configured_headers_replace_the_functions() {
        let mut response = Response::new(axum::body::Body::empty());
        response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".parse().unwrap());
        response.headers_mut().insert("access-control-allow-methods", "DELETE".parse().unwrap());
        decorate(&cors(), &from("https://app.example"), &mut response);
        let h = response.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS], "x-total");
        assert!(!h.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS), "the function's own are gone");
    }
}
