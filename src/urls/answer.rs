//! What a function's result means as an HTTP response, by Lambda's rules
//! for function URLs: an object with `statusCode` describes the response;
//! any other JSON is the body of a 200 `application/json` answer.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value};

/// Why a result is no HTTP response.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnswerError {
    #[error("the function's result is not JSON")]
    NotJson,
    #[error("statusCode {0} is not an HTTP status")]
    BadStatus(String),
    #[error("the body is marked isBase64Encoded but is not base64")]
    BadBase64,
}

/// The response for a function's result `payload`.
pub fn response(payload: &[u8]) -> Result<Response, AnswerError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| AnswerError::NotJson)?;
    match value {
        Value::Object(object) if object.contains_key("statusCode") => described(object),
        // A string is the body itself, unquoted; the rest re-serialised compactly.
        Value::String(s) => Ok(json_answer(s.into_bytes())),
        other => Ok(json_answer(other.to_string().into_bytes())),
    }
}

fn json_answer(body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A header value as the function gave it: strings as they are, numbers
/// and booleans as their JSON text.
fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(value.to_string()),
        _ => None,
    }
}

/// `{"statusCode", "headers", "cookies", "body", "isBase64Encoded"}`.
fn described(object: Map<String, Value>) -> Result<Response, AnswerError> {
    let code = status_of(&object["statusCode"])?;
    let body = match object.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if object.get("isBase64Encoded") == Some(&Value::Bool(true)) => {
            base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| AnswerError::BadBase64)?
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = code;
    let h = response.headers_mut();
    put_headers(&object, h);
    if !h.contains_key(header::CONTENT_TYPE) {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(response)
}

/// The head a streamed response's JSON prelude describes (`statusCode`,
/// 200 when absent; `headers`; `cookies`), as Node's
/// `awslambda.HttpResponseStream.from` writes it.
pub fn prelude(json: &[u8]) -> Result<(StatusCode, HeaderMap), AnswerError> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(json) else { return Err(AnswerError::NotJson) };
    let code = match object.get("statusCode") {
        None | Some(Value::Null) => StatusCode::OK,
        Some(status) => status_of(status)?,
    };
    let mut headers = HeaderMap::new();
    put_headers(&object, &mut headers);
    Ok((code, headers))
}

/// `statusCode`: a number or a numeric string.
fn status_of(value: &Value) -> Result<StatusCode, AnswerError> {
    let text = match value {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
    .unwrap_or_default();
    text.parse::<u16>()
        .ok()
        .and_then(|n| StatusCode::from_u16(n).ok())
        .ok_or_else(|| AnswerError::BadStatus(value.to_string()))
}

/// `headers` (single values) and `cookies` (one `set-cookie` each).
fn put_headers(object: &Map<String, Value>, h: &mut HeaderMap) {
    for (name, value) in object.get("headers").and_then(Value::as_object).into_iter().flatten() {
        let parsed = (HeaderName::try_from(name.as_str()).ok(), header_text(value).and_then(|v| v.parse().ok()));
        match parsed {
            (Some(name), Some(value)) => {
                h.insert(name, value);
            }
            _ => tracing::debug!(header = %name, "dropped a header the function returned: not a valid HTTP header"),
        }
    }
    for cookie in object.get("cookies").and_then(Value::as_array).into_iter().flatten() {
        if let Some(value) = cookie.as_str().and_then(|c| HeaderValue::from_str(c).ok()) {
            h.append(header::SET_COOKIE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(payload: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let r = response(payload.as_bytes()).unwrap();
        let status = r.status().as_u16();
        let headers =
            r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned())).collect::<Vec<_>>();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn other_json_is_a_compact_200_and_strings_are_unquoted() {
        let json = ("content-type".to_owned(), "application/json".to_owned());
        assert_eq!(parts(r#""hello""#).await, (200, vec![json.clone()], b"hello".to_vec()));
        assert_eq!(parts(r#"{"a": 1}"#).await, (200, vec![json.clone()], br#"{"a":1}"#.to_vec()));
        assert_eq!(parts("[1, \"x\", true]").await.2, br#"[1,"x",true]"#.to_vec());
        assert_eq!(parts("3.5").await.2, b"3.5".to_vec());
        assert_eq!(response(b"not json").unwrap_err(), AnswerError::NotJson);
    }

    #[tokio::test]
    async fn a_described_response_sets_status_headers_cookies_and_body() {
        let (status, headers, body) = parts(
            r#"{"statusCode": "302", "headers": {"Location": "/next", "X-N": 7},
                "cookies": ["a=1; Path=/", "b=2"], "body": "aGk=", "isBase64Encoded": true}"#,
        )
        .await;
        assert_eq!((status, body), (302, b"hi".to_vec()));
        let get = |n: &str| headers.iter().filter(|(k, _)| k == n).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
        assert_eq!(get("location"), ["/next"]);
        assert_eq!(get("x-n"), ["7"]);
        assert_eq!(get("set-cookie"), ["a=1; Path=/", "b=2"]);
        assert_eq!(get("content-type"), ["application/json"]);
        assert_eq!(parts(r#"{"statusCode": 204}"#).await.0, 204);
        assert!(matches!(response(br#"{"statusCode": "abc"}"#), Err(AnswerError::BadStatus(_))));
    }

    #[test]
    fn a_prelude_gives_the_head_of_a_streamed_response() {
        let (status, headers) =
            prelude(br#"{"statusCode":201,"headers":{"Content-Type":"text/html"},"cookies":["a=1","b=2"]}"#).unwrap();
        assert_eq!(status, 201);
        assert_eq!(headers["content-type"], "text/html");
        assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
        assert_eq!(prelude(br#"{"headers":{}}"#).unwrap().0, 200, "200 when it names no status");
        assert_eq!(prelude(b"[1]").unwrap_err(), AnswerError::NotJson);
    }
}
