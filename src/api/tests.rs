//! The API's answers, in-process: the router driven with `oneshot` over an
//! engine whose pool runs on the recording fake backend and whose Docker
//! client reaches nothing. Every error shape a client branches on is checked
//! here in milliseconds; what needs real containers lives under `tests/`.

use std::io::{Cursor, Write};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::arn::Realm;
use crate::backend::docker::DockerBackend;
use crate::backend::fake::FakeBackend;
use crate::engine::Engine;
use crate::images::Images;
use crate::logs::LogBook;
use crate::pool::{Pool, PoolConfig};
use crate::store::Store;

mod event_invoke;
mod eventbridge;

struct App {
    router: axum::Router,
    fake: FakeBackend,
    _tmp: tempfile::TempDir,
}

/// The router with `--insecure-no-auth`: these tests are about what
/// happens past the signature check (tests/it/auth.rs signs for real).
fn app() -> App {
    app_with(super::auth::Access::Open)
}

fn app_with(access: super::auth::Access) -> App {
    app_built(access, |data| crate::queue::QueueStore::open(data).unwrap())
}

fn app_built(access: super::auth::Access, events: impl FnOnce(&std::path::Path) -> crate::queue::QueueStore) -> App {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&tmp.path().join("data")).unwrap());
    let logs = Arc::new(LogBook::open(&tmp.path().join("logs")).unwrap());
    let fake = FakeBackend::new();
    let pool = Pool::new(Arc::new(fake.clone()), PoolConfig::for_tests(tmp.path()), logs.clone());
    let images = Arc::new(Images::new(Some(DockerBackend::unreachable(tmp.path()))));
    let events = events(&tmp.path().join("data"));
    let (queue, _dispatcher) = crate::queue::Queue::new(events, crate::queue::QueueConfig::default());
    let bus = crate::events::Bus::open(&tmp.path().join("data"), Realm::default(), 1).unwrap();
    let engine = Arc::new(Engine::new(store, pool, images, logs, Realm::default(), queue, bus));
    App { router: super::app(engine, access, crate::urls::Domain::new("us-east-1", Some(9001))), fake, _tmp: tmp }
}

impl App {
    /// One request; the answer's status, headers and JSON body (`Null`
    /// when empty).
    async fn call(&self, method: Method, path: &str, body: impl Into<Body>) -> (StatusCode, HeaderMap, Value) {
        let request = Request::builder().method(method).uri(path).body(body.into()).unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        (parts.status, parts.headers, value)
    }

    async fn create(&self, name: &str, extra: Value) -> (StatusCode, HeaderMap, Value) {
        let mut body = json!({
            "FunctionName": name,
            "Runtime": "python3.11",
            "Handler": "app.handler",
            "Role": "arn:aws:iam::123456789012:role/test",
            "Code": {"ZipFile": base64_zip(&[("app.py", "def handler(e, c):\n    return e\n")])},
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.call(Method::POST, "/2015-03-31/functions", body.to_string()).await
    }
}

fn base64_zip(files: &[(&str, &str)]) -> String {
    use base64::Engine as _;
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    base64::engine::general_purpose::STANDARD.encode(w.finish().unwrap().into_inner())
}

/// The AWS error shape: status, `x-amzn-ErrorType`, a request id and a
/// JSON body whose `Type` says whose fault it was, with the message under
/// the key AWS's model gives the exception.
fn assert_error(answer: &(StatusCode, HeaderMap, Value), status: u16, code: &str, fault: &str) {
    let (got, headers, body) = answer;
    assert_eq!(got.as_u16(), status, "{body}");
    assert_eq!(headers["x-amzn-errortype"], code, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["Type"], fault, "{body}");
    let key = if ["ResourceNotFoundException", "ServiceException"].contains(&code) { "Message" } else { "message" };
    assert!(body[key].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(headers.contains_key("x-amzn-requestid"), "{body}");
}

#[tokio::test]
async fn create_get_and_delete_a_function() {
    let app = app();
    let (status, _, created) = app.create("f", json!({"MemorySize": 256})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["FunctionName"], "f");
    assert_eq!(created["MemorySize"], 256);
    assert_eq!(created["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:f");
    let (status, _, got) = app.call(Method::GET, "/2015-03-31/functions/f", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["Configuration"], created);
    let (status, _, _) = app.call(Method::DELETE, "/2015-03-31/functions/f", Body::empty()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = app.call(Method::GET, "/2015-03-31/functions/f", Body::empty()).await;
    assert_error(&gone, 404, "ResourceNotFoundException", "User");
    assert!(app.fake.calls().is_empty(), "management calls start no container");
}

#[tokio::test]
async fn a_second_create_of_the_same_name_conflicts() {
    let app = app();
    assert_eq!(app.create("f", json!({})).await.0, StatusCode::CREATED);
    let again = app.create("f", json!({})).await;
    assert_error(&again, 409, "ResourceConflictException", "User");
    assert_eq!(again.2["message"], "Function already exist: f");
}

#[tokio::test]
async fn unknown_functions_are_not_found_everywhere() {
    let app = app();
    for (method, path) in [
        (Method::GET, "/2015-03-31/functions/nope"),
        (Method::GET, "/2015-03-31/functions/nope/configuration"),
        (Method::DELETE, "/2015-03-31/functions/nope"),
        (Method::POST, "/2015-03-31/functions/nope/invocations"),
        (Method::POST, "/2021-11-15/functions/nope/response-streaming-invocations"),
    ] {
        let answer = app.call(method.clone(), path, Body::empty()).await;
        assert_error(&answer, 404, "ResourceNotFoundException", "User");
        assert!(answer.2["Message"].as_str().unwrap().contains("nope"), "{method} {path}: {}", answer.2);
    }
}

#[tokio::test]
async fn malformed_requests_are_the_callers_fault() {
    let app = app();
    let not_json = app.call(Method::POST, "/2015-03-31/functions", "{not json").await;
    assert_error(&not_json, 400, "InvalidRequestContentException", "User");
    let not_base64 = app.create("f", json!({"Code": {"ZipFile": "***"}})).await;
    assert_error(&not_base64, 400, "InvalidParameterValueException", "User");
    let not_a_zip = app.create("f", json!({"Code": {"ZipFile": "aGVsbG8="}})).await;
    assert_error(&not_a_zip, 400, "InvalidParameterValueException", "User");
    let too_little = app.create("f", json!({"MemorySize": 64})).await;
    assert_error(&too_little, 400, "ValidationException", "User");
    let too_much = app.create("f", json!({"MemorySize": 10_241})).await;
    assert_error(&too_much, 400, "InvalidParameterValueException", "User");
    let no_runtime = app.create("f", json!({"Runtime": "cobol85"})).await;
    assert_error(&no_runtime, 400, "InvalidParameterValueException", "User");
    let unknown = app.call(Method::GET, "/2015-03-31/nothing-here", Body::empty()).await;
    assert_error(&unknown, 404, "UnknownOperationException", "User");
}

#[tokio::test]
async fn an_invoke_payload_over_6_mb_is_too_large() {
    let app = app();
    assert_eq!(app.create("f", json!({})).await.0, StatusCode::CREATED);
    let payload = vec![b' '; 6 * 1024 * 1024 + 1];
    let answer = app.call(Method::POST, "/2015-03-31/functions/f/invocations", payload).await;
    assert_error(&answer, 413, "RequestEntityTooLargeException", "User");
    assert!(app.fake.calls().is_empty(), "refused before any container starts");
}

#[tokio::test]
async fn invoke_with_response_stream_takes_invokes_checks() {
    let app = app();
    assert_eq!(app.create("f", json!({})).await.0, StatusCode::CREATED);
    let path = "/2021-11-15/functions/f/response-streaming-invocations";
    let payload = vec![b' '; 6 * 1024 * 1024 + 1];
    assert_error(&app.call(Method::POST, path, payload).await, 413, "RequestEntityTooLargeException", "User");
    let with_type = |kind: &str| {
        Request::builder().method(Method::POST).uri(path).header("x-amz-invocation-type", kind).body(Body::from("{}"))
    };
    let dry = app.router.clone().oneshot(with_type("DryRun").unwrap()).await.unwrap();
    assert_eq!(dry.status(), StatusCode::NO_CONTENT);
    let event = app.router.clone().oneshot(with_type("Event").unwrap()).await.unwrap();
    assert_eq!(event.status(), StatusCode::BAD_REQUEST, "no asynchronous streams");
    let body = axum::body::to_bytes(event.into_body(), usize::MAX).await.unwrap();
    let message = serde_json::from_slice::<Value>(&body).unwrap()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.ends_with("Member must satisfy enum value set: [RequestResponse, DryRun]"), "{message}");
    let missing = Request::builder()
        .method(Method::POST)
        .uri("/2021-11-15/functions/nope/response-streaming-invocations")
        .header("x-amz-invocation-type", "DryRun")
        .body(Body::from("{}"));
    assert_eq!(app.router.clone().oneshot(missing.unwrap()).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(app.fake.calls().is_empty(), "refused before any container starts");
}

#[tokio::test]
async fn invoke_names_the_invocation_types_it_takes() {
    let app = app();
    assert_eq!(app.create("f", json!({})).await.0, StatusCode::CREATED);
    let request = |name: &str, kind: &str| {
        Request::builder()
            .method(Method::POST)
            .uri(format!("/2015-03-31/functions/{name}/invocations"))
            .header("x-amz-invocation-type", kind)
            .body(Body::from("{}"))
            .unwrap()
    };
    let bogus = app.router.clone().oneshot(request("f", "Later")).await.unwrap();
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);
    let body = axum::body::to_bytes(bogus.into_body(), usize::MAX).await.unwrap();
    let message = serde_json::from_slice::<Value>(&body).unwrap()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("Value 'Later' at 'invocationType'"), "{message}");
    assert!(message.ends_with("Member must satisfy enum value set: [Event, RequestResponse, DryRun]"), "{message}");
    assert_eq!(app.router.clone().oneshot(request("f", "DryRun")).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(app.router.clone().oneshot(request("nope", "DryRun")).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(app.fake.calls().is_empty(), "no container for a dry run");
}

#[tokio::test]
async fn a_platform_failure_is_a_service_exception() {
    // The Docker client reaches nothing, so the runtime image cannot be
    // checked: ours to answer for, as AWS's 500 ServiceException.
    let app = app();
    assert_eq!(app.create("f", json!({})).await.0, StatusCode::CREATED);
    let answer = app.call(Method::POST, "/2015-03-31/functions/f/invocations", "{}").await;
    assert_error(&answer, 500, "ServiceException", "Service");
    assert!(answer.2["Message"].as_str().unwrap().starts_with("could not prepare the runtime image"), "{}", answer.2);
}

#[tokio::test]
async fn list_functions_pages_with_a_marker() {
    let app = app();
    for name in ["a", "b", "c"] {
        assert_eq!(app.create(name, json!({})).await.0, StatusCode::CREATED);
    }
    let (status, _, first) = app.call(Method::GET, "/2015-03-31/functions?MaxItems=2", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let names = |page: &Value| -> Vec<String> {
        page["Functions"].as_array().unwrap().iter().map(|f| f["FunctionName"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&first), ["a", "b"]);
    let marker = first["NextMarker"].as_str().unwrap();
    let path = format!("/2015-03-31/functions?MaxItems=2&Marker={marker}");
    let (_, _, second) = app.call(Method::GET, &path, Body::empty()).await;
    assert_eq!(names(&second), ["c"]);
    assert!(second["NextMarker"].is_null(), "{second}");
}

#[tokio::test]
async fn without_a_signature_only_the_health_check_answers() {
    let keys = crate::auth::KeyRing::new(vec![crate::auth::KeyPair::generate().unwrap()]).unwrap();
    let app = app_with(super::auth::Access::signed(crate::auth::Verifier::new(keys), "us-east-1"));
    let unsigned = app.call(Method::GET, "/2015-03-31/functions", Body::empty()).await;
    assert_eq!(unsigned.0, StatusCode::FORBIDDEN, "{}", unsigned.2);
    assert_eq!(unsigned.1["x-amzn-errortype"], "MissingAuthenticationTokenException");
    let unknown = app.call(Method::GET, "/2015-03-31/nothing-here", Body::empty()).await;
    assert_eq!(unknown.0, StatusCode::FORBIDDEN, "the fallback is behind the check too");
    let request = Request::builder().uri("/lambdabox/v1/health").body(Body::empty()).unwrap();
    let health = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

impl App {
    async fn json(&self, method: Method, path: &str, body: Value) -> (StatusCode, HeaderMap, Value) {
        self.call(method, path, body.to_string()).await
    }

    async fn get(&self, path: &str) -> (StatusCode, HeaderMap, Value) {
        self.call(Method::GET, path, Body::empty()).await
    }
}

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

#[tokio::test]
async fn versions_are_frozen_numbered_and_never_reused() {
    let app = app();
    app.create("f", json!({"Description": "one"})).await;
    let (status, _, v1) = app.json(Method::POST, "/2015-03-31/functions/f/versions", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!((v1["Version"].as_str(), v1["FunctionArn"].as_str()), (Some("1"), Some(&*format!("{ARN}:1"))));
    let again = app.json(Method::POST, "/2015-03-31/functions/f/versions", json!({"Description": "x"})).await;
    assert_eq!((again.0, &again.2), (StatusCode::CREATED, &v1), "nothing changed: the same version");
    let path = "/2015-03-31/functions/f/configuration";
    let (status, _, _) = app.json(Method::PUT, path, json!({"Description": "two", "MemorySize": 256})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, one) = app.get("/2015-03-31/functions/f/configuration?Qualifier=1").await;
    assert_eq!((one["Description"].as_str(), one["MemorySize"].as_u64()), (Some("one"), Some(128)), "{one}");
    let (_, _, v2) = app.json(Method::POST, "/2015-03-31/functions/f/versions", json!({"Description": "v2"})).await;
    assert_eq!(
        (v2["Version"].as_str(), v2["Description"].as_str(), v2["MemorySize"].as_u64()),
        (Some("2"), Some("v2"), Some(256))
    );
    let (status, _, _) = app.call(Method::DELETE, "/2015-03-31/functions/f?Qualifier=2", Body::empty()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = app.call(Method::DELETE, "/2015-03-31/functions/f?Qualifier=2", Body::empty()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "deleting an absent version succeeds, as on Lambda");
    app.json(Method::PUT, path, json!({"Description": "three"})).await;
    let (_, _, v3) = app.json(Method::POST, "/2015-03-31/functions/f/versions", json!({})).await;
    assert_eq!(v3["Version"], "3", "number 2 is never given again");
    let (_, _, list) = app.get("/2015-03-31/functions/f/versions?MaxItems=2").await;
    let versions: Vec<&str> =
        list["Versions"].as_array().unwrap().iter().map(|v| v["Version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["$LATEST", "1"]);
    assert_eq!(list["Versions"][0]["FunctionArn"], format!("{ARN}:$LATEST"));
    let marker = list["NextMarker"].as_str().unwrap();
    let (_, _, rest) = app.get(&format!("/2015-03-31/functions/f/versions?MaxItems=2&Marker={marker}")).await;
    assert_eq!(rest["Versions"][0]["Version"], "3");
    assert!(rest["NextMarker"].is_null(), "{rest}");
}

#[tokio::test]
async fn publish_preconditions_and_publish_on_update() {
    let app = app();
    let (_, _, created) = app.create("f", json!({"Publish": true})).await;
    assert_eq!((created["Version"].as_str(), created["FunctionArn"].as_str()), (Some("1"), Some(ARN)));
    let stale = app.json(Method::POST, "/2015-03-31/functions/f/versions", json!({"RevisionId": "stale"})).await;
    assert_error(&stale, 412, "PreconditionFailedException", "User");
    let sha = app.json(Method::POST, "/2015-03-31/functions/f/versions", json!({"CodeSha256": "nope"})).await;
    assert_error(&sha, 400, "InvalidParameterValueException", "User");
    assert!(sha.2["message"]
        .as_str()
        .unwrap()
        .starts_with("CodeSHA256 (nope) is different from current CodeSHA256 in $LATEST ("));
    let code = json!({"ZipFile": base64_zip(&[("app.py", "def handler(e, c):\n    return 2\n")]), "Publish": true});
    let (status, _, updated) = app.json(Method::PUT, "/2015-03-31/functions/f/code", code).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!((updated["Version"].as_str(), updated["FunctionArn"].as_str()), (Some("2"), Some(&*format!("{ARN}:2"))));
    let (_, _, one) = app.get("/2015-03-31/functions/f?Qualifier=1").await;
    assert_ne!(one["Configuration"]["CodeSha256"], updated["CodeSha256"], "version 1 keeps its code");
    assert!(one["Code"]["Location"].as_str().unwrap().contains("/functions/f:1/code.zip"), "{one}");
    let stale = app.json(Method::PUT, "/2015-03-31/functions/f/configuration", json!({"RevisionId": "old"})).await;
    assert_error(&stale, 412, "PreconditionFailedException", "User");
    let request = Request::builder()
        .method(Method::POST)
        .uri("/2015-03-31/functions/f:1/invocations")
        .header("x-amz-invocation-type", "Event")
        .body(Body::from("{}"))
        .unwrap();
    let answer = app.router.clone().oneshot(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED, "a version's event is queued for that version");
    let latest = app.call(Method::DELETE, "/2015-03-31/functions/f?Qualifier=$LATEST", Body::empty()).await;
    assert_error(&latest, 400, "InvalidParameterValueException", "User");
}

#[tokio::test]
async fn aliases_point_at_versions_with_weights() {
    let app = app();
    app.create("f", json!({"Publish": true})).await;
    app.json(Method::PUT, "/2015-03-31/functions/f/configuration", json!({"Description": "2"})).await;
    app.json(Method::POST, "/2015-03-31/functions/f/versions", json!({})).await;
    let aliases = "/2015-03-31/functions/f/aliases";
    let body =
        json!({"Name": "live", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}}});
    let (status, _, live) = app.json(Method::POST, aliases, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{live}");
    assert_eq!(live["AliasArn"], format!("{ARN}:live"));
    assert_eq!(live["RoutingConfig"], json!({"AdditionalVersionWeights": {"2": 0.25}}));
    let again = app.json(Method::POST, aliases, body).await;
    assert_error(&again, 409, "ResourceConflictException", "User");
    assert_eq!(again.2["message"], format!("Alias already exists: {ARN}:live"));
    let numeric = app.json(Method::POST, aliases, json!({"Name": "2024", "FunctionVersion": "1"})).await;
    assert_error(&numeric, 400, "ValidationException", "User");
    let missing = app.json(Method::POST, aliases, json!({"Name": "x", "FunctionVersion": "10"})).await;
    assert_error(&missing, 404, "ResourceNotFoundException", "User");
    assert_eq!(missing.2["Message"], format!("Function not found: {ARN}:10"));
    let latest =
        json!({"Name": "x", "FunctionVersion": "$LATEST", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}});
    assert_error(&app.json(Method::POST, aliases, latest).await, 400, "InvalidParameterValueException", "User");
    let (_, _, by_alias) = app.get("/2015-03-31/functions/f:live/configuration").await;
    assert_eq!(
        (by_alias["Version"].as_str(), by_alias["FunctionArn"].as_str()),
        (Some("1"), Some(&*format!("{ARN}:live")))
    );
    let in_use = app.call(Method::DELETE, "/2015-03-31/functions/f?Qualifier=2", Body::empty()).await;
    assert_error(&in_use, 409, "ResourceConflictException", "User");
    let path = format!("{aliases}/live");
    let stale = app.json(Method::PUT, &path, json!({"RevisionId": "old"})).await;
    assert_error(&stale, 412, "PreconditionFailedException", "User");
    let (_, _, moved) = app.json(Method::PUT, &path, json!({"FunctionVersion": "2", "RoutingConfig": {}})).await;
    assert_eq!(moved["FunctionVersion"], "2");
    assert!(moved.get("RoutingConfig").is_none() && moved["RevisionId"] != live["RevisionId"], "{moved}");
    let (_, _, filtered) = app.get(&format!("{aliases}?FunctionVersion=1")).await;
    assert_eq!(filtered["Aliases"], json!([]));
    let (status, _, _) = app.call(Method::DELETE, &path, Body::empty()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = app.call(Method::DELETE, &path, Body::empty()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "deleting an absent alias succeeds, as on Lambda");
    let gone = app.get(&path).await;
    assert_error(&gone, 404, "ResourceNotFoundException", "User");
    assert_eq!(gone.2["Message"], format!("Cannot find alias arn: {ARN}:live"));
    let update_gone = app.json(Method::PUT, &path, json!({})).await;
    assert_eq!(update_gone.2["Message"], format!("Alias not found: {ARN}:live"));
}

/// A failed commit (here: the queue's database cannot grow, as on a full
/// disk) answers 500 ServiceException, never 202, and stores nothing.
#[tokio::test]
async fn an_event_that_cannot_be_stored_is_refused_with_500() {
    let pages = 24; // the empty schema and a little room
    let app = app_built(super::auth::Access::Open, |data| crate::queue::QueueStore::open_full_at(data, pages).unwrap());
    let (status, _, _) = app.create("f", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let event = |bytes: usize| {
        Request::builder()
            .method(Method::POST)
            .uri("/2015-03-31/functions/f/invocations")
            .header("x-amz-invocation-type", "Event")
            .body(Body::from(json!({"blob": "x".repeat(bytes)}).to_string()))
            .unwrap()
    };
    let small = app.router.clone().oneshot(event(10)).await.unwrap();
    assert_eq!(small.status(), StatusCode::ACCEPTED, "room for a small one");
    let big = app.router.clone().oneshot(event(512 * 1024)).await.unwrap();
    assert_eq!(big.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(big.headers()["x-amzn-errortype"], "ServiceException");
    let (_, _, depths) = app.get("/lambdabox/v1/events").await;
    assert_eq!(depths["Functions"][0]["Queued"], 1, "only the stored one: {depths}");
}
