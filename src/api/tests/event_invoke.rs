//! EventInvokeConfig and DeadLetterConfig answers, in-process.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{app, assert_error, App};

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function";

impl App {
    async fn config(&self, method: Method, target: &str, body: Value) -> (StatusCode, axum::http::HeaderMap, Value) {
        let path = format!("/2019-09-25/functions/{target}");
        let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
        self.call(method, &path, body).await
    }
}

#[tokio::test]
async fn configs_are_put_merged_read_listed_and_deleted() {
    let app = app();
    for name in ["f", "g"] {
        assert_eq!(app.create(name, json!({})).await.0, StatusCode::CREATED);
    }
    let (status, _, put) = app.config(Method::PUT, "f/event-invoke-config", json!({"MaximumRetryAttempts": 0})).await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["FunctionArn"], format!("{ARN}:f:$LATEST"));
    assert_eq!(put["DestinationConfig"], json!({"OnSuccess": {}, "OnFailure": {}}));
    assert!(put.get("MaximumEventAgeInSeconds").is_none(), "{put}");
    let seconds = put["LastModified"].as_f64().expect("epoch seconds, a number");
    assert!(seconds > 1.7e9, "{put}");

    // Put replaces, Update merges.
    let (_, _, put) = app.config(Method::PUT, "f/event-invoke-config", json!({"MaximumEventAgeInSeconds": 60})).await;
    assert!(put.get("MaximumRetryAttempts").is_none(), "{put}");
    let dest =
        json!({"DestinationConfig": {"OnFailure": {"Destination": format!("{ARN}:g")}}, "MaximumRetryAttempts": 1});
    let (status, _, updated) = app.config(Method::POST, "f/event-invoke-config", dest).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(
        (updated["MaximumEventAgeInSeconds"].as_u64(), updated["MaximumRetryAttempts"].as_u64()),
        (Some(60), Some(1))
    );
    assert_eq!(
        updated["DestinationConfig"],
        json!({"OnSuccess": {}, "OnFailure": {"Destination": format!("{ARN}:g")}})
    );

    let (_, _, got) = app.config(Method::GET, "f/event-invoke-config?Qualifier=%24LATEST", Value::Null).await;
    assert_eq!(got, updated);
    let (_, _, listed) = app.config(Method::GET, "f/event-invoke-config/list?MaxItems=1", Value::Null).await;
    assert_eq!(listed["FunctionEventInvokeConfigs"], json!([updated]));
    assert!(listed.get("NextMarker").is_none(), "{listed}");

    let (status, _, _) = app.config(Method::DELETE, "f/event-invoke-config", Value::Null).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gone = app.config(Method::GET, "f/event-invoke-config", Value::Null).await;
    assert_error(&gone, 404, "ResourceNotFoundException", "User");
    assert_eq!(gone.2["Message"], format!("The function {ARN}:f:$LATEST doesn't have an EventInvokeConfig"));
    let update = app.config(Method::POST, "f/event-invoke-config", json!({"MaximumRetryAttempts": 1})).await;
    assert_eq!(update.2["Message"], format!("The function {ARN}:f:$LATEST doesn't have an EventInvokeConfig"));

    // Deleting the function deletes its configs.
    app.config(Method::PUT, "f/event-invoke-config", json!({"MaximumRetryAttempts": 2})).await;
    app.call(Method::DELETE, "/2015-03-31/functions/f", Body::empty()).await;
    app.create("f", json!({})).await;
    let (_, _, listed) = app.config(Method::GET, "f/event-invoke-config/list", Value::Null).await;
    assert_eq!(listed["FunctionEventInvokeConfigs"], json!([]));
}

#[tokio::test]
async fn configs_are_refused_as_aws_refuses_them() {
    let app = app();
    for name in ["f", "g"] {
        assert_eq!(app.create(name, json!({})).await.0, StatusCode::CREATED);
    }
    let put = |target: &'static str, body: Value| {
        let app = &app;
        async move { app.config(Method::PUT, &format!("{target}/event-invoke-config"), body).await }
    };
    let message = |a: &(StatusCode, axum::http::HeaderMap, Value)| {
        a.2["message"].as_str().or(a.2["Message"].as_str()).unwrap_or_default().to_owned()
    };

    let nothing = put("nope", json!({})).await;
    assert_error(&nothing, 400, "InvalidParameterValueException", "User");
    assert_eq!(message(&nothing), "You must specify at least one of error handling or destination setting.");
    let empty_body = put("f", Value::Null).await;
    assert_error(&empty_body, 400, "InvalidParameterValueException", "User");
    let absent = put("nope", json!({"MaximumRetryAttempts": 1})).await;
    assert_error(&absent, 404, "ResourceNotFoundException", "User");
    assert_eq!(message(&absent), "The function doesn't exist.");
    let version =
        app.config(Method::PUT, "f/event-invoke-config?Qualifier=1", json!({"MaximumRetryAttempts": 1})).await;
    assert_eq!(message(&version), "The function doesn't exist.");
    let get_version = app.config(Method::GET, "f/event-invoke-config?Qualifier=1", Value::Null).await;
    assert_eq!(message(&get_version), format!("The function {ARN}:f:1 doesn't have an EventInvokeConfig"));
    let mismatch = app
        .config(Method::PUT, "f:%24LATEST/event-invoke-config?Qualifier=1", json!({"MaximumRetryAttempts": 1}))
        .await;
    assert_error(&mismatch, 400, "InvalidParameterValueException", "User");
    assert!(message(&mismatch).starts_with("The derived qualifier"));

    let retries = put("f", json!({"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 59})).await;
    assert_error(&retries, 400, "ValidationException", "User");
    assert!(message(&retries).starts_with("2 validation errors detected"), "{}", retries.2);

    let dest = |arn: String| json!({"DestinationConfig": {"OnSuccess": {"Destination": arn}}});
    let itself = put("f", dest(format!("{ARN}:f"))).await;
    assert_eq!(message(&itself), "You can't specify the function as a destination for itself.");
    let missing = put("f", dest(format!("{ARN}:nope"))).await;
    assert_eq!(message(&missing), format!("The destination ARN {ARN}:nope is invalid."));
    let other_account = put("f", dest("arn:aws:lambda:us-east-1:123456789012:function:g".into())).await;
    assert_error(&other_account, 400, "InvalidParameterValueException", "User");
    let iam = put("f", dest("arn:aws:iam:us-east-1:000000000000:function:g".into())).await;
    assert_eq!(
        message(&iam),
        "The provided destination config DestinationConfig(onSuccess=OnSuccess(destination=arn:aws:iam:us-east-1:\
         000000000000:function:g), onFailure=null) is invalid."
    );
    for unserved in ["arn:aws:sqs:us-east-1:000000000000:q", "arn:aws:sns:us-east-1:000000000000:t", "kafka://topic"] {
        let refused = put("f", dest(unserved.into())).await;
        assert_error(&refused, 400, "InvalidParameterValueException", "User");
        assert!(message(&refused).contains("lambdabox serves only Lambda"), "{}", refused.2);
    }
    let pattern = put("f", json!({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:_-/!lambda:x"}}})).await;
    assert_error(&pattern, 400, "ValidationException", "User");
    assert!(message(&pattern).contains("at 'destinationConfig.onFailure.destination'"), "{}", pattern.2);
    let ok = put("f", dest(format!("{ARN}:g:$LATEST"))).await;
    assert_eq!(ok.0, StatusCode::OK, "a qualified ARN of another function: {}", ok.2);

    let page = app.config(Method::GET, "f/event-invoke-config/list?MaxItems=51", Value::Null).await;
    assert_error(&page, 400, "ValidationException", "User");
    let list_absent = app.config(Method::GET, "nope/event-invoke-config/list", Value::Null).await;
    assert_eq!(message(&list_absent), "The function doesn't exist.");
}

#[tokio::test]
async fn a_dead_letter_target_is_refused_and_none_is_accepted() {
    let app = app();
    let refused =
        app.create("f", json!({"DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq"}})).await;
    assert_error(&refused, 400, "InvalidParameterValueException", "User");
    assert!(refused.2["message"].as_str().unwrap().contains("lambdabox serves no SQS queue or SNS topic"));
    let malformed = app.create("f", json!({"DeadLetterConfig": {"TargetArn": "dlq"}})).await;
    assert_error(&malformed, 400, "ValidationException", "User");
    let (status, _, created) = app.create("f", json!({"DeadLetterConfig": {}})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created.get("DeadLetterConfig").is_none(), "{created}");
    let body = json!({"DeadLetterConfig": {"TargetArn": ""}}).to_string();
    let (status, _, updated) = app.call(Method::PUT, "/2015-03-31/functions/f/configuration", body).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert!(updated.get("DeadLetterConfig").is_none(), "{updated}");
    let body = json!({"DeadLetterConfig": {"TargetArn": "arn:aws:sns:us-east-1:000000000000:t"}}).to_string();
    let refused = app.call(Method::PUT, "/2015-03-31/functions/f/configuration", body).await;
    assert_error(&refused, 400, "InvalidParameterValueException", "User");
}
