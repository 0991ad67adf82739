//! Runtimes beyond python3.11: the same behaviour through other images.

use crate::common;

use common::{Server, APP_PY};
use serde_json::json;

/// A complete Lambda runtime in shell, the way AWS's custom-runtime tutorial writes one.
const SHELL_BOOTSTRAP: &str = r#"#!/bin/sh
set -eu
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
    HEADERS="$(mktemp)"
    EVENT="$(curl -sS -D "$HEADERS" "$API/invocation/next")"
    ID="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')"
    ARN="$(grep -i '^Lambda-Runtime-Invoked-Function-Arn:' "$HEADERS" | cut -d: -f2- | tr -d '[:space:]')"
    rm -f "$HEADERS"
    curl -sS -X POST "$API/invocation/$ID/response" \
        -d "{\"event\":$EVENT,\"handler\":\"$_HANDLER\",\"request_id\":\"$ID\",\"arn\":\"$ARN\",\"memory\":\"$AWS_LAMBDA_FUNCTION_MEMORY_SIZE\",\"exec_env\":\"${AWS_EXECUTION_ENV:-none}\"}" >/dev/null
done
"#;

#[tokio::test]
async fn provided_runs_the_zips_own_bootstrap() {
    let server = Server::start();
    for runtime in ["provided.al2023", "provided"] {
        let name = runtime.replace('.', "-");
        server
            .deploy_files(&name, "function.handler", &[("bootstrap", SHELL_BOOTSTRAP)], json!({"Runtime": runtime}))
            .await;
        let (status, headers, body) = server.invoke(&name, r#"{"hello":"shell"}"#).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["event"], json!({"hello": "shell"}));
        assert_eq!(body["handler"], "function.handler");
        assert_eq!(body["request_id"], headers["x-amzn-requestid"].to_str().unwrap());
        assert_eq!(body["arn"], format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"));
        assert_eq!(body["memory"], "128");
        assert_eq!(body["exec_env"], "none", "provided runtimes have no AWS_EXECUTION_ENV");
    }
}

#[tokio::test]
async fn python313_runs_the_same_handlers() {
    let server = Server::start();
    server.deploy_files("py313", "app.context_fields", &[("app.py", APP_PY)], json!({"Runtime": "python3.13"})).await;
    let (status, headers, ctx) = server.invoke("py313", "{}").await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["aws_request_id"], headers["x-amzn-requestid"].to_str().unwrap());
    assert_eq!(ctx["function_name"], "py313");
    server.deploy_files("py313-env", "app.environment", &[("app.py", APP_PY)], json!({"Runtime": "python3.13"})).await;
    let (_, _, env) = server.invoke("py313-env", r#"{"keys":["AWS_EXECUTION_ENV"]}"#).await;
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.13");
    server.deploy_files("py313-fail", "app.fail", &[("app.py", APP_PY)], json!({"Runtime": "python3.13"})).await;
    let (_, headers, doc) = server.invoke("py313-fail", "{}").await;
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "ValueError");
}

const NODE_CJS: &str = r#"
exports.context = async (event, context) => ({
  awsRequestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  memoryLimitInMB: context.memoryLimitInMB,
  remaining: context.getRemainingTimeInMillis(),
  arn: context.invokedFunctionArn,
  execEnv: process.env.AWS_EXECUTION_ENV,
  event,
});
exports.callback = (event, context, callback) => {
  setTimeout(() => callback(null, { viaCallback: event.n + 1 }), 10);
};
exports.fail = async () => {
  throw new TypeError('bad things');
};
"#;

const NODE_ESM: &str = r#"
export const handler = async (event) => ({ esm: true, echo: event });
"#;

#[tokio::test]
async fn nodejs_runs_lambda_style_handlers() {
    let server = Server::start();
    for runtime in ["nodejs18.x", "nodejs20.x"] {
        let fname = |f: &str| format!("{}-{f}", runtime.replace('.', "-"));
        let files = [("index.js", NODE_CJS), ("esm.mjs", NODE_ESM)];
        let cfg = json!({"Runtime": runtime, "Timeout": 9});
        server.deploy_files(&fname("ctx"), "index.context", &files, cfg.clone()).await;
        let (status, headers, ctx) = server.invoke(&fname("ctx"), r#"{"text":"héllo"}"#).await;
        assert_eq!(status, 200, "{runtime}: {ctx}");
        assert_eq!(ctx["awsRequestId"], headers["x-amzn-requestid"].to_str().unwrap());
        assert_eq!(ctx["functionName"], fname("ctx"));
        assert_eq!(ctx["functionVersion"], "$LATEST");
        assert_eq!(ctx["memoryLimitInMB"], "128");
        assert_eq!(ctx["execEnv"], format!("AWS_Lambda_{runtime}"));
        assert_eq!(ctx["event"], json!({"text": "héllo"}));
        let remaining = ctx["remaining"].as_i64().unwrap();
        assert!(remaining > 0 && remaining <= 9000, "{remaining}");

        server.deploy_files(&fname("cb"), "index.callback", &files, cfg.clone()).await;
        assert_eq!(server.invoke(&fname("cb"), r#"{"n":41}"#).await.2, json!({"viaCallback": 42}));

        server.deploy_files(&fname("esm"), "esm.handler", &files, cfg.clone()).await;
        assert_eq!(server.invoke(&fname("esm"), r#"[1,2]"#).await.2, json!({"esm": true, "echo": [1, 2]}));

        server.deploy_files(&fname("fail"), "index.fail", &files, cfg.clone()).await;
        let (_, headers, doc) = server.invoke(&fname("fail"), "{}").await;
        assert_eq!(headers["x-amz-function-error"], "Unhandled");
        assert_eq!((doc["errorType"].as_str(), doc["errorMessage"].as_str()), (Some("TypeError"), Some("bad things")));
        assert!(doc["trace"][0].as_str().unwrap().starts_with("TypeError: bad things"), "{doc}");

        server.deploy_files(&fname("nohandler"), "index.missing", &files, cfg.clone()).await;
        assert_eq!(server.invoke(&fname("nohandler"), "{}").await.2["errorType"], "Runtime.HandlerNotFound");
        server.deploy_files(&fname("nomodule"), "nope.handler", &files, cfg.clone()).await;
        assert_eq!(server.invoke(&fname("nomodule"), "{}").await.2["errorType"], "Runtime.ImportModuleError");
    }
}
