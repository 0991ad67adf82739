//! Go functions built with AWS's aws-lambda-go (tests/fixtures/provided-go)
//! on the provided runtimes: what the conformance suite does not check,
//! typed event handlers, errors named by their Go type, and panics.

use crate::common;

use base64::Engine as _;
use common::Server;
use serde_json::{json, Value};

const RUNTIMES: [&str; 2] = ["provided.al2023", "provided"];

async fn deploy(server: &Server, runtime: &str, case: &str) -> String {
    let zip = lambdabox::cli::code_zip(&common::bootstrap::go()).expect("the Go fixture zips");
    let name = format!("go-{}-{case}", runtime.replace('.', "_"));
    let body = json!({
        "FunctionName": name, "Runtime": runtime, "Handler": case,
        "Role": "arn:aws:iam::000000000000:role/go", "MemorySize": 128,
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
    });
    let resp = server.post("/2015-03-31/functions").json(&body).send().await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    name
}

/// An HTTP API (payload 2.0) event, as API Gateway and function URLs send it.
fn http_event() -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/orders/7", "rawQueryString": "full=1",
        "cookies": ["session=abc"], "headers": {"x-test": "yes", "content-type": "text/plain"},
        "queryStringParameters": {"full": "1"},
        "requestContext": {
            "accountId": "000000000000", "apiId": "api", "domainName": "api.example", "domainPrefix": "api",
            "http": {"method": "POST", "path": "/orders/7", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "06/Dec/2026:10:00:00 +0000", "timeEpoch": 1796551200000u64
        },
        "body": "aGk=", "isBase64Encoded": true
    })
}

#[tokio::test]
async fn typed_handlers_errors_and_panics_behave_as_on_lambda() {
    for runtime in RUNTIMES {
        common::ensure_runtime_image(runtime);
    }
    let server = Server::start();
    for runtime in RUNTIMES {
        // A typed handler: aws-lambda-go decodes the event into
        // events.APIGatewayV2HTTPRequest and encodes its response type.
        let name = deploy(&server, runtime, "apigw").await;
        let (status, headers, answer) = server.invoke(&name, &http_event().to_string()).await;
        assert_eq!(status, 200, "{runtime}: {answer}");
        assert!(headers.get("x-amz-function-error").is_none(), "{runtime}: {answer}");
        assert_eq!(answer["statusCode"], 201, "{runtime}: {answer}");
        assert_eq!(answer["headers"]["content-type"], "application/json");
        let inner: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        let id = headers["x-amzn-requestid"].to_str().unwrap();
        assert_eq!(
            inner,
            json!({"method": "POST", "rawPath": "/orders/7", "query": {"full": "1"}, "header": "yes",
                   "cookies": ["session=abc"], "body": "aGk=", "base64": true, "requestId": id}),
            "{runtime}"
        );

        // An error of the function's own type is reported by its type name.
        let name = deploy(&server, runtime, "typed-error").await;
        let (_, headers, doc) = server.invoke(&name, r#"{"code":7}"#).await;
        assert_eq!(headers["x-amz-function-error"], "Unhandled", "{runtime}: {doc}");
        assert_eq!(doc, json!({"errorMessage": "boom 7", "errorType": "BoomError"}), "{runtime}");

        // A panic: reported with the panic value's type and a stack trace,
        // after which aws-lambda-go ends the process; the next invocation
        // gets a new one.
        let name = deploy(&server, runtime, "panic").await;
        let (_, headers, doc) = server.invoke(&name, r#"{"message":"at the disco"}"#).await;
        assert_eq!(headers["x-amz-function-error"], "Unhandled", "{runtime}: {doc}");
        assert_eq!(doc["errorMessage"], "at the disco", "{runtime}: {doc}");
        assert_eq!(doc["errorType"], "string", "{runtime}: {doc}");
        let frames = doc["stackTrace"].as_array().expect("a stack trace");
        assert!(frames.iter().any(|f| f["label"] == "panics"), "{runtime}: the handler's frame: {doc}");
        let (_, _, again) = server.invoke(&name, r#"{"message":"twice"}"#).await;
        assert_eq!(again["errorMessage"], "twice", "{runtime}: {again}");
    }
}
