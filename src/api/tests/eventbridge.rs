//! The EventBridge API's JSON 1.1 answers, in-process: operations by
//! `X-Amz-Target`, errors as `{"__type", "message"}`, PutEvents' per-entry
//! answers.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::{app, App};

impl App {
    /// One `AWSEvents.<op>` call: status, `__type` of an error, body.
    async fn events(&self, op: &str, body: Value) -> (StatusCode, Value) {
        let request = Request::builder()
            .method("POST")
            .uri("/")
            .header("x-amz-target", format!("AWSEvents.{op}"))
            .header("content-type", "application/x-amz-json-1.1")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        assert_eq!(response.headers()["content-type"], "application/x-amz-json-1.1");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }
}

#[tokio::test]
async fn errors_are_json_1_1_with_eventbridges_codes() {
    let app = app();
    let (status, body) = app.events("DescribeRule", json!({"Name": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"__type": "ResourceNotFoundException", "message": "Rule nope does not exist on EventBus default."})
    );
    let (_, body) = app.events("DescribeRule", json!({})).await;
    assert_eq!(body["__type"], "ValidationException");
    assert!(body["message"].as_str().unwrap().contains("Value null at 'name'"), "{body}");
    let (_, body) =
        app.events("PutRule", json!({"Name": "a b", "State": "ON", "ScheduleExpression": "rate(1 minute)"})).await;
    assert!(body["message"].as_str().unwrap().starts_with("2 validation errors detected"), "{body}");
    let (_, body) = app.events("PutRule", json!({"Name": "r", "EventPattern": "{\"a\": [{\"prefix\": 1}]}"})).await;
    assert_eq!(body["__type"], "InvalidEventPatternException");
    let (_, body) = app.events("PutRule", json!({"Name": 5})).await;
    assert_eq!(body["__type"], "SerializationException");
    let (_, body) = app.events("CreateEventBus", json!({"Name": "b"})).await;
    assert_eq!(body["__type"], "UnknownOperationException");
    let (_, body) = app.events("ListRules", json!({"EventBusName": "b"})).await;
    assert_eq!(body["message"], "Event bus b does not exist.");
    let (status, body) = app.events("PutRule", json!({"Name": "r", "ScheduleExpression": "cron(0 3 * * ? *)"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"RuleArn": "arn:aws:events:us-east-1:000000000000:rule/r"})));
    let bad_target = json!({"Rule": "r", "Targets": [{"Id": "!", "Arn": "x"}]});
    let (_, body) = app.events("PutTargets", bad_target).await;
    assert!(body["message"].as_str().unwrap().contains("at 'targets.1.member.id'"), "{body}");
}

#[tokio::test]
async fn put_events_answers_each_entry() {
    let app = app();
    let entry = json!({"Source": "s", "DetailType": "t", "Detail": "{}", "Time": 1_700_000_000});
    let (status, body) = app.events("PutEvents", json!({"Entries": [entry, {"Source": "s"}]})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["FailedEntryCount"], 1);
    assert_eq!(body["Entries"][0]["EventId"].as_str().unwrap().len(), 36);
    assert_eq!(body["Entries"][1]["ErrorCode"], "InvalidArgument");
    let eleven: Vec<Value> = (0..11).map(|_| entry.clone()).collect();
    let (_, body) = app.events("PutEvents", json!({"Entries": eleven})).await;
    assert_eq!(body["__type"], "ValidationException");
    let big = json!({"Source": "s", "DetailType": "t", "Detail": format!("{{\"x\": \"{}\"}}", "a".repeat(300_000))});
    let (_, body) = app.events("PutEvents", json!({"Entries": [big]})).await;
    assert_eq!(body["message"], "Total size of the entries in the request is over the limit.");
    let test = json!({"EventPattern": "{\"source\": [\"s\"]}", "Event": "{\"source\": \"s\"}"});
    let (_, body) = app.events("TestEventPattern", test).await;
    assert_eq!(body["message"], "Parameter Event is not valid.");
}
