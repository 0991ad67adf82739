//! Invocations through the Lambda REST API with plain HTTP, checking what a
//! Python handler sees and what the caller gets back, byte for byte where
//! Lambda specifies it.

use crate::common;

use std::time::Duration;

use base64::Engine as _;
use common::{containers, zip_of, Server, APP_PY};
use serde_json::{json, Value};

#[tokio::test]
async fn echo_context_and_environment() {
    let server = Server::start();
    server.deploy("ctx", "app.context_fields", json!({"MemorySize": 512, "Timeout": 7})).await;
    let (status, headers, ctx) = server.invoke("ctx", "{}").await;
    assert_eq!(status, 200);
    assert!(headers.get("x-amz-function-error").is_none());
    assert_eq!(headers["x-amz-executed-version"], "$LATEST");
    let request_id = headers["x-amzn-requestid"].to_str().unwrap();
    assert_eq!(ctx["aws_request_id"], request_id, "context.aws_request_id is the Runtime API request id");
    assert_eq!(ctx["function_name"], "ctx");
    assert_eq!(ctx["function_version"], "$LATEST");
    assert_eq!(ctx["memory_limit_in_mb"], 512);
    assert_eq!(ctx["invoked_function_arn"], "arn:aws:lambda:us-east-1:000000000000:function:ctx");
    assert_eq!(ctx["log_group_name"], "/aws/lambda/ctx");
    let remaining = ctx["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 7000, "remaining time within the 7 s timeout: {remaining}");

    let env = json!({"Environment": {"Variables": {"GREETING": "hej", "EMPTY_OK": ""}}});
    server.deploy("env", "app.environment", env).await;
    let keys = r#"{"keys":["GREETING","EMPTY_OK","AWS_LAMBDA_FUNCTION_NAME","AWS_LAMBDA_FUNCTION_MEMORY_SIZE","LAMBDA_TASK_ROOT","AWS_REGION","AWS_EXECUTION_ENV","AWS_LAMBDA_RUNTIME_API","TZ"]}"#;
    let (_, _, vars) = server.invoke("env", keys).await;
    assert_eq!(
        vars,
        json!({
            "GREETING": "hej", "EMPTY_OK": "", "AWS_LAMBDA_FUNCTION_NAME": "env",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "LAMBDA_TASK_ROOT": "/var/task", "AWS_REGION": "us-east-1",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001", "TZ": ":UTC",
        })
    );

    server.deploy("echo", "app.echo", json!({})).await;
    let event = r#"{"text":"héllo — 世界","nested":{"list":[1,2.5,null,true]}}"#;
    let (status, _, echoed) = server.invoke("echo", event).await;
    assert_eq!((status, echoed), (200, serde_json::from_str::<Value>(event).unwrap()));
}

#[tokio::test]
async fn function_errors_have_lambdas_shape() {
    let server = Server::start();
    server.deploy("fail", "app.fail", json!({})).await;
    let (status, headers, doc) = server.invoke("fail", "{}").await;
    assert_eq!(status, 200, "a function error is not an API error");
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "ValueError");
    assert_eq!(doc["errorMessage"], "something went wrong");
    assert!(doc["stackTrace"].as_array().is_some_and(|t| !t.is_empty()), "{doc}");

    server.deploy("missing-module", "nomodule.handler", json!({})).await;
    let (status, headers, doc) = server.invoke("missing-module", "{}").await;
    assert_eq!((status, headers["x-amz-function-error"].to_str().unwrap()), (200, "Unhandled"));
    assert_eq!(doc["errorType"], "Runtime.ImportModuleError", "{doc}");

    server.deploy("missing-function", "app.no_such_function", json!({})).await;
    let (_, _, doc) = server.invoke("missing-function", "{}").await;
    assert_eq!(doc["errorType"], "Runtime.HandlerNotFound", "{doc}");

    server.deploy("exits", "app.exit3", json!({})).await;
    let (_, headers, doc) = server.invoke("exits", "{}").await;
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "Runtime.ExitError");
    let id = headers["x-amzn-requestid"].to_str().unwrap();
    assert_eq!(doc["errorMessage"], format!("RequestId: {id} Error: Runtime exited with error: exit status 3"));

    server.deploy("hog", "app.hog", json!({"MemorySize": 128, "Timeout": 20})).await;
    let (_, headers, doc) = server.invoke("hog", "{}").await;
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "Runtime.OutOfMemory", "{doc}");

    server.deploy("slow", "app.sleep", json!({"Timeout": 1})).await;
    let started = std::time::Instant::now();
    let (_, headers, doc) = server.invoke("slow", r#"{"seconds": 30}"#).await;
    // The handler would sleep 30 s: the answer comes when the 1 s timeout
    // ends it (any bound below 30 s shows that on a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(29), "the caller never waits for the handler past its timeout");
    let id = headers["x-amzn-requestid"].to_str().unwrap();
    assert_eq!(doc["errorType"], "Sandbox.Timedout");
    assert_eq!(doc["errorMessage"], format!("RequestId: {id} Error: Task timed out after 1.00 seconds"));
    let (_, _, doc) = server.invoke("slow", r#"{"seconds": 0}"#).await;
    assert_eq!(doc, json!("woke"), "a fresh container serves after a timeout");
}

#[tokio::test]
async fn bad_input_is_refused_and_leaves_nothing() {
    let server = Server::start();
    let create = |body: Value| server.post("/2015-03-31/functions").json(&body).send();
    let with_zip = |name: &str, zip: &[u8]| {
        json!({"FunctionName": name, "Runtime": "python3.11", "Handler": "app.echo",
               "Role": "arn:aws:iam::000000000000:role/r",
               "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)}})
    };
    let expect = |resp: reqwest::Response, status: u16, code: &str| {
        assert_eq!(resp.status().as_u16(), status);
        assert_eq!(resp.headers()["x-amzn-errortype"], code);
    };

    expect(create(with_zip("notzip", b"this is not a zip")).await, 400, "InvalidParameterValueException");
    expect(create(with_zip("slip", &zip_of(&[("../../evil.py", "x")]))).await, 400, "InvalidParameterValueException");
    expect(create(with_zip("abs", &zip_of(&[("/etc/evil", "x")]))).await, 400, "InvalidParameterValueException");
    // A name that breaks the model's pattern is AWS's ValidationException (recorded).
    expect(create(with_zip("bad name!", &zip_of(&[("app.py", APP_PY)]))).await, 400, "ValidationException");
    let mut unknown_runtime = with_zip("cobol", &zip_of(&[("app.py", APP_PY)]));
    unknown_runtime["Runtime"] = json!("cobol85");
    expect(create(unknown_runtime).await, 400, "InvalidParameterValueException");
    let mut reserved = with_zip("reserved", &zip_of(&[("app.py", APP_PY)]));
    reserved["Environment"] = json!({"Variables": {"AWS_REGION": "mars-1"}});
    expect(create(reserved).await, 400, "InvalidParameterValueException");
    let resp = server.post("/2015-03-31/functions").body("{oops").send().await;
    expect(resp, 400, "InvalidRequestContentException");
    let resp = server.get("/2015-03-31/functions/arn:aws:lambda:x:1:function:f").send().await;
    expect(resp, 400, "ValidationException");

    let body: Value = server.get("/2015-03-31/functions/").send().await.json().await.unwrap();
    assert_eq!(body["Functions"], json!([]), "no refused function was stored");
    let code_dir = server.data_dir.join("code");
    let leftovers: Vec<_> = std::fs::read_dir(&code_dir).unwrap().collect();
    assert!(leftovers.is_empty(), "nothing half-written on disk: {leftovers:?}");
    assert!(!server.data_dir.join("evil.py").exists());
}

#[tokio::test]
async fn warm_container_is_reused() {
    let server = Server::start();
    server.deploy("warm", "app.echo", json!({})).await;
    for i in 0..5 {
        let (status, _, body) = server.invoke("warm", &format!("{{\"i\":{i}}}")).await;
        assert_eq!((status, body), (200, json!({"i": i})));
    }
    assert_eq!(containers(&server.home(), Some("warm")).await.len(), 1, "five invocations, one container");
}

#[tokio::test]
async fn every_fault_is_followed_by_a_working_invocation() {
    let server = Server::start();
    let cases = [
        ("f-timeout", json!({"Timeout": 1}), "sleep", "Sandbox.Timedout"),
        ("f-exit", json!({}), "exit", "Runtime.ExitError"),
        ("f-oom", json!({"MemorySize": 128, "Timeout": 20}), "hog", "Runtime.OutOfMemory"),
    ];
    server.assert_faults_recover(&cases).await;

    // An exit in init is Runtime.ExitError as on Lambda; a clean one has no reason.
    let exits_in_init = [("app.py", "import sys\nsys.exit(2)\n")];
    server.deploy_files("f-init-exit", "app.fault", &exits_in_init, json!({})).await;
    let (_, _, doc) = server.invoke("f-init-exit", "{}").await;
    assert_eq!(doc["errorType"], "Runtime.ExitError", "an exit before the first event: {doc}");
    assert!(
        doc["errorMessage"].as_str().unwrap().ends_with("Error: Runtime exited with error: exit status 2"),
        "{doc}"
    );
    let clean_exit = [("app.py", "import sys\nsys.exit(0)\n")];
    server.deploy_files("f-init-exit0", "app.fault", &clean_exit, json!({})).await;
    let (_, _, doc) = server.invoke("f-init-exit0", "{}").await;
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{doc}");
    assert!(
        doc["errorMessage"].as_str().unwrap().ends_with("Error: Runtime exited without providing a reason"),
        "{doc}"
    );

    let broken = [("app.py", "raise RuntimeError('broken at import')\n")];
    server.deploy_files("f-import", "app.fault", &broken, json!({})).await;
    let (status, headers, doc) = server.invoke("f-import", "{}").await;
    assert_eq!((status, headers["x-amz-function-error"].to_str().unwrap()), (200, "Unhandled"));
    assert_eq!(doc["errorMessage"].as_str().map(|m| m.contains("broken at import")), Some(true), "{doc}");
    let fixed = base64::engine::general_purpose::STANDARD.encode(zip_of(&[("app.py", APP_PY)]));
    let resp = server.put("/2015-03-31/functions/f-import/code").json(&json!({"ZipFile": fixed})).send().await;
    assert_eq!(resp.status(), 200);
    let (status, _, doc) = server.invoke("f-import", r#"{"do": "nothing"}"#).await;
    assert_eq!((status, doc), (200, json!({"ok": "nothing"})), "fixed code serves at once");
}

/// An answer over 6 MB is Lambda's `Function.ResponseSizeTooLarge`, and only
/// that call fails. awslambdaric gets its 413 (the whole body is read, so
/// the POST completes) and, as on Lambda, ends its process; the next call
/// is served by a new runtime rather than meeting the dying one.
#[tokio::test]
async fn an_oversized_answer_fails_that_call_only() {
    let server = Server::start();
    let big = "def handler(event, context):\n    return 'x' * event['n']\n";
    server.deploy_files("big", "big.handler", &[("big.py", big)], json!({"MemorySize": 512})).await;
    let (status, headers, doc) = server.invoke("big", r#"{"n": 7000000}"#).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "Function.ResponseSizeTooLarge", "{doc}");
    let (status, headers, answer) = server.invoke("big", r#"{"n": 5}"#).await;
    assert_eq!((status, answer), (200, json!("xxxxx")));
    assert!(headers.get("x-amz-function-error").is_none());
    let log = server.logs("big").await;
    assert!(log.contains("Http response code: 413"), "the runtime was told why: {log}");
}

/// The variables a Python function finds, exactly Lambda's (without the
/// credentials Lambda adds for the function's role: lambdabox has no IAM),
/// and Lambda's `sys.path`, in a container started for the function and in
/// a prewarmed one alike.
#[tokio::test]
async fn a_python_function_sees_lambdas_environment_and_path() {
    let probe =
        "import os, sys\ndef handler(event, context):\n    return {'env': dict(os.environ), 'path': sys.path[:4]}\n";
    let expected = [
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_XRAY_CONTEXT_MISSING",
        "AWS_XRAY_DAEMON_ADDRESS",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
        "LANG",
        "LD_LIBRARY_PATH",
        "PATH",
        "PWD",
        "PYTHONPATH",
        "SHLVL",
        "TZ",
        "_AWS_XRAY_DAEMON_ADDRESS",
        "_AWS_XRAY_DAEMON_PORT",
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
    ];
    for prewarm in ["0", "1"] {
        let server = Server::start_with(&["--prewarm", prewarm]);
        server.deploy_files("probe", "probe.handler", &[("probe.py", probe)], json!({})).await;
        if prewarm == "1" {
            let ready = common::eventually(Duration::from_secs(20), || async {
                server.ps().await.iter().any(|c| c["state"] == "prewarmed")
            });
            assert!(ready.await, "a prewarmed container is waiting");
        }
        let (status, _, out) = server.invoke("probe", "{}").await;
        assert_eq!(status, 200, "{out}");
        let mut keys: Vec<&str> = out["env"].as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, expected, "prewarm {prewarm}: {out}");
        assert_eq!(out["env"]["PYTHONPATH"], "/var/runtime");
        assert_eq!(out["env"]["SHLVL"], "0");
        assert_eq!(out["env"]["PWD"], "/var/task");
        let path = json!(["/var/task", "/opt/python/lib/python3.11/site-packages", "/opt/python", "/var/runtime"]);
        assert_eq!(out["path"], path, "prewarm {prewarm}");
    }
}

/// `AWS_LAMBDA_EXEC_WRAPPER` on a managed runtime starts the wrapper with
/// the runtime's bootstrap as its arguments; a wrapper or bootstrap that
/// cannot be started is `Runtime.InvalidEntrypoint` in Lambda's words.
#[tokio::test]
async fn exec_wrappers_and_entrypoints_that_cannot_start() {
    let server = Server::start();
    let probe = "import os, sys\ndef handler(event, context):\n    return [os.environ.get('WRAPPED'), sys.argv[0]]\n";
    let wrapper = "#!/bin/sh\nexport WRAPPED=\"$1\"\nexec \"$@\"\n";
    let files = [("probe.py", probe), ("wrapper.sh", wrapper), ("plain.sh", "exit 0\n")];
    let with = |w: &str| json!({"Environment": {"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": w}}});
    server.deploy_files("wrapped", "probe.handler", &files, with("/var/task/wrapper.sh")).await;
    let (status, _, out) = server.invoke("wrapped", "{}").await;
    assert_eq!((status, &out[0]), (200, &json!("/var/runtime/bootstrap")), "{out}");

    for (name, path, why) in [
        ("missing", "/opt/nope", "fork/exec /opt/nope: no such file or directory"),
        ("not-executable", "/var/task/plain.sh", "fork/exec /var/task/plain.sh: permission denied"),
    ] {
        server.deploy_files(name, "probe.handler", &files, with(path)).await;
        let (status, headers, doc) = server.invoke(name, "{}").await;
        assert_eq!((status, &headers["x-amz-function-error"]), (200, &"Unhandled".parse().unwrap()));
        assert_eq!(doc["errorType"], "Runtime.InvalidEntrypoint", "{name}: {doc}");
        let id = headers["x-amzn-requestid"].to_str().unwrap();
        assert_eq!(doc["errorMessage"], format!("RequestId: {id} Error: {why}"), "{name}");
    }

    // provided runtimes take no wrapper (as on Lambda), and need a bootstrap.
    let no_bootstrap = json!({"Runtime": "provided.al2023"});
    server.deploy_files("no-bootstrap", "x", &[("readme.txt", "no bootstrap here")], no_bootstrap).await;
    let (_, _, doc) = server.invoke("no-bootstrap", "{}").await;
    assert_eq!(doc["errorType"], "Runtime.InvalidEntrypoint", "{doc}");
    let message = doc["errorMessage"].as_str().unwrap();
    assert!(
        message.ends_with(
            "Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap /var/runtime/bootstrap]"
        ),
        "{doc}"
    );
}
