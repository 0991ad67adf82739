//! The Node.js runtimes (nodejs18.x on bookworm, nodejs20.x on trixie) run
//! AWS's aws-lambda-ric. What it brings beyond the conformance suite: Lambda's
//! console line format, callback handlers and `callbackWaitsForEmptyEventLoop`,
//! error documents for the user's own error classes, ES modules beside
//! CommonJS with the module path Lambda's Node.js runtime sets, and
//! `awslambda.streamifyResponse` handlers.

use crate::common;

use common::Server;
use serde_json::{json, Value};

const RUNTIMES: [&str; 2] = ["nodejs18.x", "nodejs20.x"];

/// CommonJS handlers: console output, callbacks and a custom error class.
const INDEX_JS: &str = r#"
const { shout } = require('./lib/words');

exports.console = async (event) => {
  console.log('hello %s', event.name);
  console.info('info line');
  console.warn('warn line');
  console.error('error line');
  console.log('two\nlines');
  return { ok: true };
};

// Callback style. Lambda answers once the callback has been called and, unless
// the handler says otherwise, the event loop is empty: the timer runs first.
exports.waits = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => console.log('timer fired'), event.timerMs);
  callback(null, { answered: shout(event.name) });
};

class ValidationError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ValidationError';
  }
}

exports.invalid = async (event) => {
  await new Promise((resolve) => setImmediate(resolve));
  throw new ValidationError(`bad ${event.field}`);
};

exports.cjs = async () => ({ kind: 'commonjs', shout: shout('cjs') });
"#;

const WORDS_JS: &str = "exports.shout = (s) => `${s}!`;\n";

/// An ES module (`.mjs`) with a static import and top-level await, which
/// CommonJS cannot have.
const ESM_MJS: &str = r#"
import { twice } from './twice.mjs';

const ready = await Promise.resolve('top-level await');

export const handler = async (event) => ({
  kind: 'esm',
  ready,
  twice: twice(event.n),
  nodePath: process.env.NODE_PATH,
  streamify: typeof awslambda.streamifyResponse,
});
"#;

const TWICE_MJS: &str = "export const twice = (n) => n * 2;\n";

/// A response-streaming handler, written in pieces.
const STREAM_MJS: &str = r#"
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType('text/plain');
  responseStream.write('part one, ');
  await new Promise((resolve) => setTimeout(resolve, 20));
  responseStream.write(`part two for ${event.name}`);
  responseStream.end();
});
"#;

/// A `.js` ES module, so declared by the nearest package.json.
const MODULE_PACKAGE_JSON: &str = r#"{ "type": "module" }"#;
const MODULE_APP_JS: &str = "export const handler = async () => ({ kind: 'esm-js' });\n";

fn files() -> [(&'static str, &'static str); 7] {
    [
        ("index.js", INDEX_JS),
        ("lib/words.js", WORDS_JS),
        ("esm.mjs", ESM_MJS),
        ("twice.mjs", TWICE_MJS),
        ("stream.mjs", STREAM_MJS),
        ("modern/package.json", MODULE_PACKAGE_JSON),
        ("modern/app.js", MODULE_APP_JS),
    ]
}

/// Deploy `handler` as function `runtime-case`; returns its name.
async fn deploy(server: &Server, runtime: &str, case: &str, handler: &str) -> String {
    let name = format!("{}-{case}", runtime.replace('.', "-"));
    server.deploy_files(&name, handler, &files(), json!({"Runtime": runtime, "Timeout": 10})).await;
    name
}

/// The tail's console records, split at tabs: `[timestamp, request id, level, message]`.
fn records(tail: &str) -> Vec<Vec<&str>> {
    tail.lines().map(|l| l.splitn(4, '\t').collect::<Vec<_>>()).filter(|r| r.len() == 4).collect()
}

/// `2024-01-31T12:34:56.789Z`, as `Date.prototype.toISOString` writes it.
fn is_iso_timestamp(s: &str) -> bool {
    let digit = |i: usize| s.as_bytes().get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, c: u8| s.as_bytes().get(i) == Some(&c);
    s.len() == 24
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22].into_iter().all(digit)
        && [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')]
            .into_iter()
            .all(|(i, c)| at(i, c))
}

#[tokio::test]
async fn console_lines_carry_time_request_id_and_level() {
    let server = Server::start();
    for runtime in RUNTIMES {
        common::ensure_runtime_image(runtime);
        let name = deploy(&server, runtime, "console", "index.console").await;
        let (headers, body, tail) = server.invoke_tail(&name, r#"{"name":"Ada"}"#).await;
        assert_eq!(body, json!({"ok": true}), "{runtime}: {tail}");
        let id = headers["x-amzn-requestid"].to_str().unwrap();
        let records = records(&tail);
        let found = |level: &str, message: &str| {
            records.iter().find(|r| r[2] == level && r[3] == message).unwrap_or_else(|| {
                panic!("{runtime}: no {level} record {message:?} in the tail:\n{tail}");
            })
        };
        for (level, message) in
            [("INFO", "hello Ada"), ("INFO", "info line"), ("WARN", "warn line"), ("ERROR", "error line")]
        {
            let record = found(level, message);
            assert!(is_iso_timestamp(record[0]), "{runtime}: timestamp {:?}", record[0]);
            assert_eq!(record[1], id, "{runtime}: {tail}");
        }
        // A multi-line message stays one record: its newlines become carriage returns.
        found("INFO", "two\rlines");
    }
}

#[tokio::test]
async fn callback_handlers_wait_for_the_event_loop_unless_told_not_to() {
    let server = Server::start();
    for runtime in RUNTIMES {
        common::ensure_runtime_image(runtime);
        let name = deploy(&server, runtime, "waits", "index.waits").await;

        // By default the answer waits for the timer the handler left behind.
        let event = json!({"name": "wait", "wait": true, "timerMs": 300});
        let (headers, body, tail) = server.invoke_tail(&name, &event.to_string()).await;
        assert!(headers.get("x-amz-function-error").is_none(), "{runtime}: {body}");
        assert_eq!(body, json!({"answered": "wait!"}), "{runtime}");
        assert!(tail.contains("timer fired"), "{runtime}: the answer came before the timer ran:\n{tail}");

        // callbackWaitsForEmptyEventLoop = false: answered at the callback,
        // though a timer far past the function's timeout is still pending;
        // and the container serves the next event.
        for round in 0..2 {
            let event = json!({"name": format!("now{round}"), "wait": false, "timerMs": 600_000});
            let (headers, body, tail) = server.invoke_tail(&name, &event.to_string()).await;
            assert!(headers.get("x-amz-function-error").is_none(), "{runtime}: {body}");
            assert_eq!(body, json!({"answered": format!("now{round}!")}), "{runtime}");
            assert!(!tail.contains("timer fired"), "{runtime}: {tail}");
        }
    }
}

#[tokio::test]
async fn custom_error_classes_keep_their_name_and_stack() {
    let server = Server::start();
    for runtime in RUNTIMES {
        common::ensure_runtime_image(runtime);
        let name = deploy(&server, runtime, "invalid", "index.invalid").await;
        let (headers, doc, tail) = server.invoke_tail(&name, r#"{"field":"email"}"#).await;
        assert_eq!(headers.get("x-amz-function-error").map(|v| v.to_str().unwrap()), Some("Unhandled"), "{doc}");
        let keys: Vec<&str> = doc.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["errorMessage", "errorType", "trace"], "{runtime}: {doc}");
        assert_eq!(doc["errorType"], "ValidationError", "{runtime}: {doc}");
        assert_eq!(doc["errorMessage"], "bad email", "{runtime}: {doc}");
        let trace: Vec<&str> = doc["trace"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        assert_eq!(trace[0], "ValidationError: bad email", "{runtime}: {doc}");
        assert!(trace.iter().any(|l| l.contains("/var/task/index.js:")), "{runtime}: {doc}");
        // The runtime logs the error too, as one ERROR record.
        let id = headers["x-amzn-requestid"].to_str().unwrap();
        let logged = records(&tail).into_iter().find(|r| r[2] == "ERROR" && r[3].starts_with("Invoke Error"));
        let logged = logged.unwrap_or_else(|| panic!("{runtime}: no Invoke Error record:\n{tail}"));
        assert_eq!(logged[1], id);
        assert!(logged[3].contains(r#""errorType":"ValidationError""#), "{runtime}: {tail}");
    }
}

#[tokio::test]
async fn es_modules_and_commonjs_load_alike() {
    let server = Server::start();
    for runtime in RUNTIMES {
        common::ensure_runtime_image(runtime);
        let major = &runtime["nodejs".len()..runtime.len() - ".x".len()];

        let esm = deploy(&server, runtime, "esm", "esm.handler").await;
        let (status, _, body) = server.invoke(&esm, r#"{"n":21}"#).await;
        assert_eq!(status, 200, "{runtime}: {body}");
        let node_path = format!(
            "/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task"
        );
        let expected = json!({
            "kind": "esm", "ready": "top-level await", "twice": 42, "nodePath": node_path, "streamify": "function",
        });
        assert_eq!(body, expected, "{runtime}");

        let cjs = deploy(&server, runtime, "cjs", "index.cjs").await;
        assert_eq!(server.invoke(&cjs, "{}").await.2, json!({"kind": "commonjs", "shout": "cjs!"}), "{runtime}");

        let esm_js = deploy(&server, runtime, "esm-js", "modern/app.handler").await;
        let (_, _, body): (u16, _, Value) = server.invoke(&esm_js, "{}").await;
        assert_eq!(body, json!({"kind": "esm-js"}), "{runtime}");
    }
}

#[tokio::test]
async fn a_streamed_response_reaches_a_plain_invoke_whole() {
    let server = Server::start();
    for runtime in RUNTIMES {
        common::ensure_runtime_image(runtime);
        let name = deploy(&server, runtime, "stream", "stream.handler").await;
        let resp = server.post(&Server::invoke_path(&name)).body(r#"{"name":"Ada"}"#).send().await;
        assert_eq!(resp.status(), 200, "{runtime}");
        assert!(resp.headers().get("x-amz-function-error").is_none(), "{runtime}");
        assert_eq!(resp.text().await.unwrap(), "part one, part two for Ada", "{runtime}");
    }
}
