//! The events API Gateway hands a route's function: payload format 1.0
//! (REST APIs, and HTTP APIs that ask for it) built here, and 2.0 built by
//! the function URL code ([`crate::urls::event`]) with the route's key and
//! path parameters added.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::HeaderMap;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::table::RouteSpec;
use crate::urls::event::{self as v2, Incoming};

/// The API id events report (there is one local API).
pub const API_ID: &str = "lambdabox";

/// One request to a route.
#[derive(Debug)]
pub struct Request<'a> {
    pub route: &'a RouteSpec,
    pub parameters: &'a BTreeMap<String, String>,
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: IpAddr,
    pub port: u16,
    pub host: &'a str,
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
}

/// The event for `req` in its route's payload format.
pub fn event(req: &Request<'_>) -> Value {
    if req.route.payload_format_version == "1.0" {
        v1(req)
    } else {
        v2_event(req)
    }
}

fn parameters(req: &Request<'_>) -> Value {
    if req.parameters.is_empty() {
        Value::Null
    } else {
        json!(req.parameters)
    }
}

fn v2_event(req: &Request<'_>) -> Value {
    let mut event = v2::event(&Incoming {
        method: req.method,
        raw_path: req.raw_path,
        raw_query: req.raw_query,
        headers: req.headers,
        body: req.body,
        source_ip: req.source_ip,
        port: req.port,
        url_id: API_ID,
        domain_name: req.host,
        caller: None,
        request_id: req.request_id,
        now: req.now,
    });
    let key = req.route.route_key();
    event["routeKey"] = key.clone().into();
    event["requestContext"]["routeKey"] = key.into();
    if !req.parameters.is_empty() {
        event["pathParameters"] = parameters(req);
    }
    event
}

/// Headers: the last value of each, and all values in order.
fn headers(headers: &HeaderMap) -> (Map<String, Value>, Map<String, Value>) {
    let (mut single, mut multi) = (Map::new(), Map::new());
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        single.insert(name.to_string(), value.clone().into());
        let all = multi.entry(name.to_string()).or_insert_with(|| json!([]));
        all.as_array_mut().expect("a list").push(value.into());
    }
    (single, multi)
}

/// Query parameters: the last value of each, and all values, decoded.
fn query(raw: Option<&str>) -> (Value, Value) {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    let (mut single, mut multi) = (Map::new(), Map::new());
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        single.insert(k.clone(), v.clone().into());
        multi.entry(k).or_insert_with(|| json!([])).as_array_mut().expect("a list").push(v.into());
    }
    if single.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (Value::Object(single), Value::Object(multi))
    }
}

fn v1(req: &Request<'_>) -> Value {
    let (single, multi) = headers(req.headers);
    let (query, multi_query) = query(req.raw_query);
    let path = percent_encoding::percent_decode_str(req.raw_path).decode_utf8_lossy().into_owned();
    let user_agent = single.get("user-agent").cloned().unwrap_or(Value::Null);
    let (body, base64) = match std::str::from_utf8(req.body) {
        _ if req.body.is_empty() => (Value::Null, false),
        Ok(text) => (text.into(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(req.body).into(), true),
    };
    let mut event = json!({
        "resource": req.route.path,
        "path": path,
        "httpMethod": req.method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": parameters(req),
        "stageVariables": null,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": API_ID,
            "domainName": req.host,
            "extendedRequestId": req.request_id,
            "httpMethod": req.method,
            "identity": { "sourceIp": req.source_ip.to_string(), "userAgent": user_agent },
            "path": path,
            "protocol": "HTTP/1.1",
            "requestId": req.request_id,
            "requestTime": req.now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "requestTimeEpoch": req.now.timestamp_millis(),
            "resourceId": "lambdabox",
            "resourcePath": req.route.path,
            "stage": if req.route.kind == "Api" { "Prod" } else { "$default" },
        },
        "body": body,
        "isBase64Encoded": base64,
    });
    if req.route.kind == "HttpApi" {
        event["version"] = "1.0".into();
        event["routeKey"] = req.route.route_key().into();
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(kind: &str, format: &str) -> RouteSpec {
        RouteSpec {
            kind: kind.into(),
            method: "GET".into(),
            path: "/items/{id}".into(),
            function: "f".into(),
            qualifier: None,
            payload_format_version: format.into(),
        }
    }

    fn request<'a>(route: &'a RouteSpec, params: &'a BTreeMap<String, String>, headers: &'a HeaderMap) -> Request<'a> {
        Request {
            route,
            parameters: params,
            method: "GET",
            raw_path: "/items/a%20b",
            raw_query: Some("x=1&x=2&y=z"),
            headers,
            body: b"",
            source_ip: "127.0.0.1".parse().unwrap(),
            port: 3000,
            host: "127.0.0.1",
            request_id: "r1",
            now: DateTime::from_timestamp(1_584_039_838, 0).unwrap(),
        }
    }

    #[test]
    fn payload_1_0_has_rest_api_members() {
        let mut h = HeaderMap::new();
        h.append("x-a", "1".parse().unwrap());
        h.append("x-a", "2".parse().unwrap());
        let params = BTreeMap::from([("id".to_owned(), "a b".to_owned())]);
        let r = route("Api", "1.0");
        let e = event(&request(&r, &params, &h));
        assert_eq!(e["resource"], "/items/{id}");
        assert_eq!(e["path"], "/items/a b");
        assert_eq!(e["httpMethod"], "GET");
        assert_eq!(e["headers"]["x-a"], "2");
        assert_eq!(e["multiValueHeaders"]["x-a"], json!(["1", "2"]));
        assert_eq!(e["queryStringParameters"], json!({"x": "2", "y": "z"}));
        assert_eq!(e["multiValueQueryStringParameters"]["x"], json!(["1", "2"]));
        assert_eq!(e["pathParameters"], json!({"id": "a b"}));
        assert_eq!(e["body"], Value::Null);
        assert!(e.get("version").is_none());
        let r = route("HttpApi", "1.0");
        assert_eq!(event(&request(&r, &params, &h))["version"], "1.0");
    }

    #[test]
    fn payload_2_0_has_the_route_key_and_parameters() {
        let h = HeaderMap::new();
        let params = BTreeMap::from([("id".to_owned(), "a b".to_owned())]);
        let r = route("HttpApi", "2.0");
        let e = event(&request(&r, &params, &h));
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "GET /items/{id}");
        assert_eq!(e["requestContext"]["routeKey"], "GET /items/{id}");
        assert_eq!(e["pathParameters"], json!({"id": "a b"}));
        assert_eq!(e["rawPath"], "/items/a%20b");
    }
}
