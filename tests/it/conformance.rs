//! One conformance suite, run unchanged on every runtime lambdabox serves.
//!
//! Each runtime family's fixture (tests/fixtures/FAMILY/, written in that
//! language's own idiom; the contract is tests/fixtures/README.md) is
//! deployed once per case and driven through the public API only. What
//! differs between runtimes is data in [`Spec`]: the handler spellings and
//! the error type the language raises.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use common::Server;
use serde_json::{json, Value};

/// What the suite needs to know about one runtime. `runtime` is a Lambda
/// runtime identifier, or [`IMAGE`] for container image functions.
struct Spec {
    runtime: &'static str,
    /// The fixture folder under tests/fixtures/.
    family: &'static str,
    /// Handler strings by case: echo, context, env, logs, fail, crash, sleep, layer.
    handlers: [&'static str; 8],
    /// The `errorType` of the fixture's `fail` case.
    fail_type: &'static str,
}

impl Spec {
    fn handler(&self, case: &str) -> &'static str {
        let cases = ["echo", "context", "env", "logs", "fail", "crash", "sleep", "layer"];
        self.handlers[cases.iter().position(|c| *c == case).expect("known case")]
    }

    fn fixture(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(self.family)
    }

    /// The function's and the layer's zips, built the way that language's
    /// users build them.
    fn zips(&self) -> (Vec<u8>, Vec<u8>) {
        let zip = |dir: &Path| lambdabox::cli::code_zip(dir).expect("fixture zips");
        match self.family {
            // A compiled `bootstrap`; the layer is the shell fixture's /opt/bin tool.
            "provided-rust" | "provided-go" => {
                let bootstrap =
                    if self.family == "provided-go" { common::bootstrap::go() } else { common::bootstrap::rust() };
                (zip(&bootstrap), zip(&self.fixture().join("../provided/layer")))
            }
            // Compiled with the JDK of the java17 image, as a Java user's build would.
            "java" => {
                common::ensure_runtime_image("java17");
                let (function, layer) = common::java::fixture_zips();
                (function.to_vec(), layer.to_vec())
            }
            _ => (zip(&self.fixture().join("function")), zip(&self.fixture().join("layer"))),
        }
    }

    /// A function name for one case of this runtime.
    fn name(&self, case: &str) -> String {
        format!("{}-{case}", self.runtime.replace('.', "_"))
    }
}

/// `module.case`: Python modules and Node.js files alike.
const MODULE_DOT_CASE: [&str; 8] = [
    "handlers.echo",
    "handlers.context",
    "handlers.env",
    "handlers.logs",
    "handlers.fail",
    "handlers.crash",
    "handlers.sleep",
    "handlers.layer",
];
const RUBY: [&str; 8] = [
    "handlers.echo",
    "handlers.context",
    "handlers.env",
    "handlers.logs",
    "handlers.raise_boom",
    "handlers.crash",
    "handlers.sleep_ms",
    "handlers.layer",
];
const JAVA: [&str; 8] = [
    "conformance.Handlers::echo",
    "conformance.Handlers::context",
    "conformance.Handlers::env",
    "conformance.Handlers::logs",
    "conformance.Handlers::fail",
    "conformance.Handlers::crash",
    "conformance.Handlers::sleep",
    "conformance.Handlers::layer",
];
/// The provided fixture is one bootstrap; `_HANDLER` names the case.
const PROVIDED: [&str; 8] = ["echo", "context", "env", "logs", "fail", "crash", "sleep", "layer"];

/// The pseudo-runtime of container image functions: the Python fixture in a
/// user's image built on the python3.11 image, with awslambdaric as
/// ENTRYPOINT. Images take no layers, so the layer's files are copied to
/// /opt, as AWS advises for images.
const IMAGE: &str = "image";

/// Build the conformance image; returns its tag.
async fn build_conformance_image(spec: &Spec) -> String {
    let read = |rel: &str| std::fs::read(spec.fixture().join(rel)).expect("fixture file");
    let (handlers, layer) = (read("function/handlers.py"), read("layer/python/layer_info.py"));
    let tag = format!("lambdabox-test/conformance:{}", uuid::Uuid::new_v4().simple());
    let files = [("/var/task/handlers.py", &handlers[..]), ("/opt/python/layer_info.py", &layer[..])];
    common::python_image(&tag, &files, "handlers.echo").await;
    tag
}

/// Deploy the fixture once per case, with the layer on the `layer` case.
/// Returns the image built for image functions, to remove afterwards.
async fn deploy_all(server: &Server, spec: &Spec) -> Option<String> {
    let image = if spec.runtime == IMAGE { Some(build_conformance_image(spec).await) } else { None };
    let (function_zip, layer_zip) = spec.zips();
    let layer_arn = publish_layer(server, spec, layer_zip).await;
    let code = base64::engine::general_purpose::STANDARD.encode(function_zip);
    for case in ["echo", "context", "env", "logs", "fail", "crash", "sleep", "layer"] {
        let mut body = json!({
            "FunctionName": spec.name(case), "Runtime": spec.runtime, "Handler": spec.handler(case),
            "Role": "arn:aws:iam::000000000000:role/conformance", "Code": {"ZipFile": code},
            "MemorySize": 256, "Timeout": if case == "sleep" { 1 } else { 10 },
            "Environment": {"Variables": {"CONFORMANCE_VAR": "värde ✓"}},
        });
        if let Some(tag) = &image {
            let config = body.as_object_mut().unwrap();
            config.remove("Runtime");
            config.remove("Handler");
            config.insert("PackageType".into(), json!("Image"));
            config.insert("Code".into(), json!({ "ImageUri": tag }));
            config.insert("ImageConfig".into(), json!({ "Command": [spec.handler(case)] }));
        } else if case == "layer" {
            body["Layers"] = json!([layer_arn]);
        }
        let resp = server.post("/2015-03-31/functions").json(&body).send().await;
        assert_eq!(resp.status(), 201, "{}: {}", spec.runtime, resp.text().await.unwrap());
    }
    image
}

async fn publish_layer(server: &Server, spec: &Spec, zip: Vec<u8>) -> String {
    let body = json!({
        "Content": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
        "CompatibleRuntimes": if spec.runtime == IMAGE { json!([]) } else { json!([spec.runtime]) },
    });
    let resp = server.post(&format!("/2018-10-31/layers/{}-layer/versions", spec.family)).json(&body).send().await;
    assert_eq!(resp.status(), 201);
    let out: Value = resp.json().await.unwrap();
    out["LayerVersionArn"].as_str().unwrap().to_owned()
}

/// Invoke and expect success; returns the answer and the request id.
async fn ok(server: &Server, spec: &Spec, case: &str, payload: &Value) -> (Value, String) {
    let (status, headers, body) = server.invoke(&spec.name(case), &payload.to_string()).await;
    assert_eq!(status, 200, "{} {case}: {body}", spec.runtime);
    assert!(headers.get("x-amz-function-error").is_none(), "{} {case} failed: {body}", spec.runtime);
    (body, headers["x-amzn-requestid"].to_str().unwrap().to_owned())
}

/// Invoke and expect a function error; returns the error document.
async fn failed(server: &Server, spec: &Spec, case: &str, payload: &Value) -> Value {
    let (status, headers, body) = server.invoke(&spec.name(case), &payload.to_string()).await;
    assert_eq!(status, 200, "{} {case}: {body}", spec.runtime);
    assert_eq!(headers.get("x-amz-function-error").map(|v| v.to_str().unwrap()), Some("Unhandled"), "{body}");
    body
}

async fn echo_cases(server: &Server, spec: &Spec) {
    let doc = json!({"text": "héllo wörld ✓ 日本語 🚀", "nested": {"list": [1, 2.5, true, null, "x"]}, "empty": {}});
    assert_eq!(ok(server, spec, "echo", &doc).await.0, doc, "{}: echo", spec.runtime);
    assert_eq!(ok(server, spec, "echo", &json!([1, "two"])).await.0, json!([1, "two"]));

    // 5.9 MB each way. Mostly ASCII: runtimes may answer non-ASCII as
    // \u escapes (awslambdaric does), which would push it over 6 MB.
    let big = json!({"blob": format!("{}ünïcode ✓", "lambdabox ".repeat(590_000))});
    assert!(big.to_string().len() > 5_800_000 && big.to_string().len() < 6_000_000);
    let (back, _) = ok(server, spec, "echo", &big).await;
    assert!(back == big, "{}: the 5.9 MB payload did not come back intact", spec.runtime);

    // Eight at once, each answered with its own event.
    let calls = (0..8).map(|n| async move { ok(server, spec, "echo", &json!({"n": n})).await.0 });
    let answers = futures_util::future::join_all(calls).await;
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(answer, &json!({"n": n}), "{}: concurrent echo", spec.runtime);
    }
}

async fn context_case(server: &Server, spec: &Spec) {
    let name = spec.name("context");
    let (ctx, request_id) = ok(server, spec, "context", &json!({})).await;
    assert_eq!(ctx["requestId"], request_id.as_str(), "{}: {ctx}", spec.runtime);
    assert_eq!(ctx["functionName"], name.as_str());
    assert_eq!(ctx["functionVersion"], "$LATEST");
    assert_eq!(ctx["memoryLimitInMB"], 256);
    assert_eq!(ctx["invokedFunctionArn"], format!("arn:aws:lambda:us-east-1:000000000000:function:{name}"));
    assert_eq!(ctx["logGroupName"], format!("/aws/lambda/{name}"));
    assert!(ctx["logStreamName"].as_str().is_some_and(|s| !s.is_empty()), "{ctx}");
    let (first, second) = (ctx["remainingMs"][0].as_i64().unwrap(), ctx["remainingMs"][1].as_i64().unwrap());
    assert!(first <= 10_000 && first > 8_000, "{}: remaining {first}", spec.runtime);
    assert!(second < first && second >= first - 1_000, "{}: remaining {first} then {second}", spec.runtime);
}

async fn env_case(server: &Server, spec: &Spec) {
    let keys = ["CONFORMANCE_VAR", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION"];
    let more = ["LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_VERSION", "NOT_SET_ANYWHERE"];
    let all: Vec<&str> = keys.iter().chain(more.iter()).copied().collect();
    let (env, _) = ok(server, spec, "env", &json!({ "keys": all })).await;
    assert_eq!(env["CONFORMANCE_VAR"], "värde ✓", "{}: {env}", spec.runtime);
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], spec.name("env").as_str());
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["NOT_SET_ANYWHERE"], Value::Null);
}

async fn logs_case(server: &Server, spec: &Spec) {
    let marker = format!("mark-{}-ü", spec.runtime);
    let (headers, body, tail) = server.invoke_tail(&spec.name("logs"), &json!({ "marker": marker }).to_string()).await;
    assert_eq!(body, json!({ "logged": marker }), "{}", spec.runtime);
    let id = headers["x-amzn-requestid"].to_str().unwrap();
    assert!(tail.starts_with(&format!("START RequestId: {id}")), "{}: {tail}", spec.runtime);
    assert!(tail.contains(&format!("stdout {marker}")) && tail.contains(&format!("stderr {marker}")), "{tail}");
    assert!(tail.contains(&format!("REPORT RequestId: {id}")), "{tail}");
    assert!(server.logs(&spec.name("logs")).await.contains(&format!("stderr {marker}")));
}

async fn failure_cases(server: &Server, spec: &Spec) {
    let doc = failed(server, spec, "fail", &json!({})).await;
    assert_eq!(doc["errorType"], spec.fail_type, "{}: {doc}", spec.runtime);
    assert_eq!(doc["errorMessage"], "boom", "{}: {doc}", spec.runtime);
    // A handled error leaves the runtime serving.
    assert_eq!(failed(server, spec, "fail", &json!({})).await["errorMessage"], "boom");

    let doc = failed(server, spec, "crash", &json!({})).await;
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{}: {doc}", spec.runtime);
    assert!(doc["errorMessage"].as_str().unwrap().ends_with("Runtime exited with error: exit status 3"), "{doc}");

    let doc = failed(server, spec, "sleep", &json!({"ms": 3000})).await;
    assert_eq!(doc["errorType"], "Sandbox.Timedout", "{}: {doc}", spec.runtime);
    assert!(doc["errorMessage"].as_str().unwrap().ends_with("Task timed out after 1.00 seconds"), "{doc}");
    // The next invocation gets a fresh container.
    let again = async {
        let (status, headers, body) = server.invoke(&spec.name("sleep"), r#"{"ms":10}"#).await;
        status == 200 && headers.get("x-amz-function-error").is_none() && body == json!({"slept": 10})
    };
    assert!(tokio::time::timeout(Duration::from_secs(30), again).await.unwrap_or(false), "{}", spec.runtime);
}

async fn layer_case(server: &Server, spec: &Spec) {
    let (body, _) = ok(server, spec, "layer", &json!({})).await;
    assert_eq!(body, json!({"layer": "from-layer"}), "{}", spec.runtime);
}

/// The whole suite on one runtime.
async fn conform(spec: Spec) {
    conform_on(spec, &[]).await;
}

/// The whole suite on one runtime, on a controller started with `flags`.
async fn conform_on(spec: Spec, flags: &[&str]) {
    if spec.runtime != IMAGE {
        common::ensure_runtime_image(spec.runtime);
    }
    let server = Server::start_with(flags);
    let image = deploy_all(&server, &spec).await;
    echo_cases(&server, &spec).await;
    context_case(&server, &spec).await;
    env_case(&server, &spec).await;
    logs_case(&server, &spec).await;
    failure_cases(&server, &spec).await;
    layer_case(&server, &spec).await;
    if let Some(tag) = image {
        common::remove_image(&tag).await;
    }
}

macro_rules! conformance {
    ($($test:ident: $runtime:literal, $family:literal, $handlers:expr, $fail:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            conform(Spec { runtime: $runtime, family: $family, handlers: $handlers, fail_type: $fail }).await;
        }
    )*};
}

conformance! {
    python3_11: "python3.11", "python", MODULE_DOT_CASE, "ValueError";
    python3_13: "python3.13", "python", MODULE_DOT_CASE, "ValueError";
    nodejs18_x: "nodejs18.x", "nodejs", MODULE_DOT_CASE, "TypeError";
    nodejs20_x: "nodejs20.x", "nodejs", MODULE_DOT_CASE, "TypeError";
    ruby3_1: "ruby3.1", "ruby", RUBY, "Function<ArgumentError>";
    ruby3_3: "ruby3.3", "ruby", RUBY, "Function<ArgumentError>";
    java17: "java17", "java", JAVA, "java.lang.IllegalArgumentException";
    java21: "java21", "java", JAVA, "java.lang.IllegalArgumentException";
    provided_al2023: "provided.al2023", "provided", PROVIDED, "ShellError";
    provided: "provided", "provided", PROVIDED, "ShellError";
    provided_rust: "provided.al2023", "provided-rust", PROVIDED, "BoomError";
    provided_al2023_go: "provided.al2023", "provided-go", PROVIDED, "errorString";
    provided_go: "provided", "provided-go", PROVIDED, "errorString";
    container_image: "image", "python", MODULE_DOT_CASE, "ValueError";
}

/// The suite again where prewarmed containers run the language runtime
/// ahead of need: the cold starts that take one hand the function to a
/// runtime that was already running (the rest start containers as usual).
#[tokio::test]
async fn python3_11_prewarmed() {
    let spec = Spec { runtime: "python3.11", family: "python", handlers: MODULE_DOT_CASE, fail_type: "ValueError" };
    conform_on(spec, &["--prewarm", "3"]).await;
}

#[tokio::test]
async fn python3_13_prewarmed() {
    let spec = Spec { runtime: "python3.13", family: "python", handlers: MODULE_DOT_CASE, fail_type: "ValueError" };
    conform_on(spec, &["--prewarm", "3"]).await;
}

#[tokio::test]
async fn java17_prewarmed() {
    let spec =
        Spec { runtime: "java17", family: "java", handlers: JAVA, fail_type: "java.lang.IllegalArgumentException" };
    conform_on(spec, &["--prewarm", "3"]).await;
}

#[tokio::test]
async fn java21_prewarmed() {
    let spec =
        Spec { runtime: "java21", family: "java", handlers: JAVA, fail_type: "java.lang.IllegalArgumentException" };
    conform_on(spec, &["--prewarm", "3"]).await;
}

#[tokio::test]
async fn nodejs20_x_prewarmed() {
    let spec = Spec { runtime: "nodejs20.x", family: "nodejs", handlers: MODULE_DOT_CASE, fail_type: "TypeError" };
    conform_on(spec, &["--prewarm", "3"]).await;
}
