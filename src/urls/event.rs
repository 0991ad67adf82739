//! The event a function URL hands its function: API Gateway's HTTP API
//! payload format 2.0, with every member Lambda fills, so that AWS's own
//! event types (Rust `lambda_http`, Powertools) accept it unchanged.

use std::net::IpAddr;

use axum::http::HeaderMap;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The caller a signed request proved to be (AWS_IAM URLs).
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: String,
    pub account: String,
}

/// One HTTP request to a URL, as the event needs it.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub method: &'a str,
    /// The path as the client sent it, still percent-encoded.
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: IpAddr,
    /// The listener's port, for `x-forwarded-port`.
    pub port: u16,
    pub url_id: &'a str,
    /// The URL's host name, without a port.
    pub domain_name: &'a str,
    /// `None`: an AWS_IAM URL's request was not signed (a NONE URL).
    pub caller: Option<&'a Caller>,
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
}

/// `text/*`, JSON and XML bodies travel as text; the rest (forms, images,
/// no content type) as base64, as Lambda sends them.
fn is_text(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(kind) = headers.get("content-type").and_then(|v| v.to_str().ok()) else { return false };
    let kind = kind.to_ascii_lowercase();
    let textual = kind.starts_with("text/") || ["json", "xml", "javascript"].iter().any(|t| kind.contains(t));
    textual && std::str::from_utf8(body).is_ok()
}

/// Header names lowercased, repeats joined with `,`; cookies apart.
fn headers(headers: &HeaderMap) -> (Map<String, Value>, Vec<String>) {
    let mut out = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            continue;
        }
        match out.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => {
                out.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    (out, cookies)
}

/// A query string's parameters, decoded, repeats joined with `,`.
fn query_parameters(raw: &str) -> Map<String, Value> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    let mut out = Map::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        match out.get_mut(&k) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(&v);
            }
            _ => {
                out.insert(k, Value::String(v));
            }
        }
    }
    out
}

/// An X-Ray trace header for a request that brought none.
fn trace_id(now: DateTime<Utc>) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{:08x}-{}", now.timestamp(), &random[..24])
}

/// The 2.0 event for `req`.
pub fn event(req: &Incoming<'_>) -> Value {
    let (mut headers, cookies) = headers(req.headers);
    headers.insert("x-forwarded-for".into(), req.source_ip.to_string().into());
    headers.insert("x-forwarded-proto".into(), "http".into());
    headers.insert("x-forwarded-port".into(), req.port.to_string().into());
    headers.entry("x-amzn-trace-id").or_insert_with(|| trace_id(req.now).into());
    let user_agent = headers.get("user-agent").cloned().unwrap_or_else(|| "".into());
    let mut context = json!({
        "accountId": req.caller.map_or("anonymous", |c| c.account.as_str()),
        "apiId": req.url_id,
        "domainName": req.domain_name,
        "domainPrefix": req.url_id,
        "http": {
            "method": req.method,
            "path": req.raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": req.source_ip.to_string(),
            "userAgent": user_agent,
        },
        "requestId": req.request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": req.now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "timeEpoch": req.now.timestamp_millis(),
    });
    if let Some(caller) = req.caller {
        context["authorizer"] = json!({ "iam": {
            "accessKey": caller.access_key_id,
            "accountId": caller.account,
            "callerId": caller.access_key_id,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": format!("arn:aws:iam::{}:user/{}", caller.account, caller.access_key_id),
            "userId": caller.access_key_id,
        }});
    }
    let raw_query = req.raw_query.unwrap_or("");
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !raw_query.is_empty() {
        event["queryStringParameters"] = Value::Object(query_parameters(raw_query));
    }
    if !req.body.is_empty() {
        if is_text(req.headers, req.body) {
            event["body"] = String::from_utf8_lossy(req.body).into();
        } else {
            event["body"] = base64::engine::general_purpose::STANDARD.encode(req.body).into();
            event["isBase64Encoded"] = true.into();
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming<'a>(headers: &'a HeaderMap, body: &'a [u8], query: Option<&'a str>) -> Incoming<'a> {
        Incoming {
            method: "POST",
            raw_path: "/pa2%2Fth/1",
            raw_query: query,
            headers,
            body,
            source_ip: "10.1.2.3".parse().unwrap(),
            port: 9001,
            url_id: "0123456789abcdefghijklmnopqrstuv",
            domain_name: "0123456789abcdefghijklmnopqrstuv.lambda-url.us-east-1.localhost",
            caller: None,
            request_id: "r-1",
            now: DateTime::from_timestamp(1_584_039_838, 0).unwrap(),
        }
    }

    #[test]
    fn headers_cookies_and_query_are_lambdas() {
        let mut h = HeaderMap::new();
        h.append("X-Repeat", "a".parse().unwrap());
        h.append("x-repeat", "b".parse().unwrap());
        h.append("cookie", "s=1; t=2".parse().unwrap());
        h.append("cookie", "u=3".parse().unwrap());
        h.append("content-type", "application/json".parse().unwrap());
        h.append("user-agent", "test/echo".parse().unwrap());
        let e = event(&incoming(&h, br#"{"a":1}"#, Some("q=a%20b&m=foo&m=%2Fbar&plus=1+2&flag")));
        assert_eq!(e["headers"]["x-repeat"], "a,b");
        assert!(e["headers"].get("cookie").is_none(), "cookies are not repeated in headers");
        assert_eq!(e["cookies"], json!(["s=1", "t=2", "u=3"]));
        assert_eq!(e["headers"]["x-forwarded-for"], "10.1.2.3");
        assert_eq!(e["headers"]["x-forwarded-port"], "9001");
        assert!(e["headers"]["x-amzn-trace-id"].as_str().unwrap().starts_with("Root=1-5e6a87"));
        assert_eq!(e["queryStringParameters"], json!({"q": "a b", "m": "foo,/bar", "plus": "1 2", "flag": ""}));
        assert_eq!(e["rawQueryString"], "q=a%20b&m=foo&m=%2Fbar&plus=1+2&flag");
        assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some(r#"{"a":1}"#), Some(false)));
        let c = &e["requestContext"];
        assert_eq!(c["time"], "12/Mar/2020:19:03:58 +0000");
        assert_eq!(c["timeEpoch"], 1_584_039_838_000i64);
        assert_eq!(c["http"]["path"], "/pa2%2Fth/1");
        assert_eq!(c["http"]["userAgent"], "test/echo");
        assert_eq!(c["accountId"], "anonymous");
        assert!(c.get("authorizer").is_none());
    }

    #[test]
    fn bodies_are_base64_unless_text_and_absent_when_empty() {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
        let e = event(&incoming(&h, b"a=1", None));
        assert_eq!((e["body"].as_str(), e["isBase64Encoded"].as_bool()), (Some("YT0x"), Some(true)));
        assert!(e.get("queryStringParameters").is_none() && e.get("cookies").is_none());
        h.insert("content-type", "text/plain".parse().unwrap());
        let e = event(&incoming(&h, &[0xff, 0x00], None));
        assert_eq!(e["isBase64Encoded"], true, "text that is not UTF-8 travels as base64");
        let e = event(&incoming(&h, b"", None));
        assert!(e.get("body").is_none() && e["isBase64Encoded"] == false);
        let caller = Caller { access_key_id: "AKIAX".into(), account: "000000000000".into() };
        let e = event(&Incoming { caller: Some(&caller), ..incoming(&h, b"", None) });
        assert_eq!(e["requestContext"]["accountId"], "000000000000");
        assert_eq!(e["requestContext"]["authorizer"]["iam"]["accessKey"], "AKIAX");
    }
}
