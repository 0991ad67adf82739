//! The Ruby runtimes (ruby3.1 on bookworm, ruby3.3 on trixie): lambdabox's
//! Ruby runtime client behaves as Lambda's does, handlers written for Lambda
//! run unchanged.

use crate::common;

use std::time::Instant;

use common::Server;
use serde_json::json;

/// The conformance fixture: one top-level method per case.
const HANDLERS_RB: &str = include_str!("../fixtures/ruby/function/handlers.rb");

/// A class-method handler in a nested namespace, loading a helper from `lib/`
/// (on the load path, as on Lambda).
const SHOP_RB: &str = r#"
require 'pricing'

module Shop
  class Orders
    def self.total(event:, context:)
      { total: Pricing.total(event['items']), request: context.aws_request_id }
    end
  end
end
"#;

const PRICING_RB: &str = r#"
module Pricing
  def self.total(items)
    items.sum { |i| i['price'] * i['qty'] }
  end
end
"#;

const SYNTAX_ERROR_RB: &str = "def handler(event:, context:)\n  { broken: \nend\n";

/// Less common parts of the context, and a handler whose answer is `nil`.
const EXTRAS_RB: &str = r#"
def client_context(event:, context:)
  { client_context: context.client_context, identity: context.identity, deadline: context.deadline_ms }
end

def nothing(event:, context:)
  nil
end

class PaymentError < StandardError; end

def custom_error(event:, context:)
  raise PaymentError, 'card declined'
end

def with_logger(event:, context:)
  Logger.new($stdout, progname: 'shop').warn('low stock')
  Logger.new($stderr).info('to stderr')
  'logged'
end

def raw(event:, context:)
  StringIO.new('plain, not JSON')
end
"#;

const EXIT_RB: &str = "def handler(event:, context:)\n  exit 3\nend\n";

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("handlers.rb", HANDLERS_RB),
        ("shop.rb", SHOP_RB),
        ("lib/pricing.rb", PRICING_RB),
        ("broken.rb", SYNTAX_ERROR_RB),
        ("exits.rb", EXIT_RB),
        ("extras.rb", EXTRAS_RB),
    ]
}

/// Deploy `handler` as function `runtime-case` and return its name.
async fn deploy(server: &Server, runtime: &str, case: &str, handler: &str) -> String {
    let name = format!("{}-{case}", runtime.replace('.', "-"));
    server.deploy_files(&name, handler, &files(), json!({"Runtime": runtime, "Timeout": 9})).await;
    name
}

async fn runs_lambda_style_handlers(runtime: &str) {
    common::ensure_runtime_image(runtime);
    let server = Server::start();

    // Echo: any JSON value, any Unicode, unchanged. The first call is the cold start.
    let echo = deploy(&server, runtime, "echo", "handlers.echo").await;
    let started = Instant::now();
    let (status, _, body) = server.invoke(&echo, r#"{"text":"héllo wörld ✓ 日本"}"#).await;
    eprintln!("{runtime}: cold start (first invocation) {} ms", started.elapsed().as_millis());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"text": "héllo wörld ✓ 日本"}));
    let started = Instant::now();
    assert_eq!(server.invoke(&echo, r#"[1,"two",null,{"n":3.5}]"#).await.2, json!([1, "two", null, {"n": 3.5}]));
    eprintln!("{runtime}: warm invocation {} ms", started.elapsed().as_millis());
    assert_eq!(server.invoke(&echo, r#""just a string""#).await.2, json!("just a string"));

    // Lambda's context object.
    let ctx = deploy(&server, runtime, "ctx", "handlers.context").await;
    let (status, headers, body) = server.invoke(&ctx, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requestId"], headers["x-amzn-requestid"].to_str().unwrap());
    assert_eq!(body["functionName"], ctx);
    assert_eq!(body["functionVersion"], "$LATEST");
    assert_eq!(body["memoryLimitInMB"], 128);
    assert_eq!(body["invokedFunctionArn"], format!("arn:aws:lambda:us-east-1:000000000000:function:{ctx}"));
    assert_eq!(body["logGroupName"], format!("/aws/lambda/{ctx}"));
    assert!(body["logStreamName"].as_str().unwrap().contains("[$LATEST]"), "{body}");
    let (first, second) = (body["remainingMs"][0].as_i64().unwrap(), body["remainingMs"][1].as_i64().unwrap());
    assert!(first <= 9000 && second > 0 && second < first, "{body}");

    // The client context Invoke carries (base64 JSON) arrives parsed.
    use base64::Engine as _;
    let extras = deploy(&server, runtime, "clientctx", "extras.client_context").await;
    let sent = json!({"client": {"app_title": "shop"}, "custom": {"k": "v"}, "env": {}});
    let resp = server
        .post(&Server::invoke_path(&extras))
        .header("X-Amz-Client-Context", base64::engine::general_purpose::STANDARD.encode(sent.to_string()))
        .body("{}")
        .send()
        .await;
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["client_context"], sent);
    assert_eq!(body["identity"], json!(null));
    assert!(body["deadline"].as_i64().unwrap() > 1_700_000_000_000, "{body}");
    let nothing = deploy(&server, runtime, "nil", "extras.nothing").await;
    let (status, headers, body) = server.invoke(&nothing, "{}").await;
    assert_eq!((status, body), (200, json!(null)));
    assert!(headers.get("x-amz-function-error").is_none());

    // The environment, with Ruby's load and gem paths as on Lambda.
    let env = deploy(&server, runtime, "env", "handlers.env").await;
    let (_, _, body) = server.invoke(&env, r#"{"keys":["AWS_EXECUTION_ENV","RUBYLIB","GEM_PATH","NOPE"]}"#).await;
    assert_eq!(body["AWS_EXECUTION_ENV"], format!("AWS_Lambda_{runtime}"));
    assert!(body["RUBYLIB"].as_str().unwrap().starts_with("/var/task:/var/task/lib:/opt/ruby/lib"), "{body}");
    let abi = if runtime == "ruby3.1" { "3.1.0" } else { "3.3.0" };
    let gems = format!("/var/task/vendor/bundle/ruby/{abi}:/opt/ruby/gems/{abi}");
    assert!(body["GEM_PATH"].as_str().unwrap().starts_with(&gems), "{body}");
    assert_eq!(body["NOPE"], json!(null));

    let logs = deploy(&server, runtime, "logs", "handlers.logs").await;
    assert_eq!(server.invoke(&logs, r#"{"marker":"M1"}"#).await.2, json!({"logged": "M1"}));

    // A Logger on stdout or stderr writes Lambda's line, with the request id.
    let logger = deploy(&server, runtime, "logger", "extras.with_logger").await;
    let (headers, body, tail) = server.invoke_tail(&logger, "{}").await;
    assert_eq!(body, json!("logged"));
    let id = headers["x-amzn-requestid"].to_str().unwrap();
    let line = tail.lines().find(|l| l.ends_with("low stock")).unwrap_or_else(|| panic!("{tail}"));
    let (head, rest) = line.split_once("] ").unwrap();
    assert!(head.starts_with("W, [20") && head.contains(" #"), "{line}");
    assert_eq!(rest, format!(" WARN {id} -- shop: low stock"), "{line}");
    assert!(tail.lines().any(|l| l.ends_with(&format!("  INFO {id} -- : to stderr"))), "{tail}");

    // An IO answer goes back as its bytes, not as JSON.
    let raw = deploy(&server, runtime, "raw", "extras.raw").await;
    let resp = server.post(&Server::invoke_path(&raw)).body("{}").send().await;
    assert_eq!(resp.text().await.unwrap(), "plain, not JSON");

    // A handler's error: Lambda's document, and the function keeps serving.
    let fail = deploy(&server, runtime, "fail", "handlers.raise_boom").await;
    for _ in 0..2 {
        let (status, headers, doc) = server.invoke(&fail, "{}").await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-amz-function-error"], "Unhandled");
        assert_eq!(doc["errorType"], "Function<ArgumentError>", "{doc}");
        assert_eq!(doc["errorMessage"], "boom");
        let trace = doc["stackTrace"].as_array().unwrap();
        assert!(trace[0].as_str().unwrap().starts_with("/var/task/handlers.rb:"), "{doc}");
        assert!(trace.iter().all(|l| !l.as_str().unwrap().contains("/var/runtime/")), "{doc}");
    }
    // The error is logged as aws_lambda_ric logs it: a headline, then the
    // document as indented JSON, on stdout.
    let (_, doc, tail) = server.invoke_tail(&fail, "{}").await;
    let logged = tail.split_once("Error raised from handler method\n").unwrap_or_else(|| panic!("{tail}")).1;
    assert!(logged.starts_with("{\n  \"errorMessage\": \"boom\",\n"), "{tail}");
    let end = logged.find("\n}\n").unwrap_or_else(|| panic!("{tail}")) + 2;
    assert_eq!(serde_json::from_str::<serde_json::Value>(&logged[..end]).unwrap(), doc);
    // The function's own error classes keep their names.
    let custom = deploy(&server, runtime, "custom", "extras.custom_error").await;
    let (_, _, doc) = server.invoke(&custom, "{}").await;
    assert_eq!(
        (doc["errorType"].as_str(), doc["errorMessage"].as_str()),
        (Some("Function<PaymentError>"), Some("card declined"))
    );

    // A class method in a nested namespace.
    let shop = deploy(&server, runtime, "shop", "shop.Shop::Orders.total").await;
    let (status, headers, body) = server.invoke(&shop, r#"{"items":[{"price":3,"qty":2},{"price":5,"qty":1}]}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"total": 11, "request": headers["x-amzn-requestid"].to_str().unwrap()}));

    // Loading failures are init errors, reported through /runtime/init/error.
    let cases = [
        ("nofile", "nope.handler", "Init<LoadError>", "cannot load such file -- nope"),
        ("syntax", "broken.handler", "Init<SyntaxError>", "broken.rb"),
        ("malformed", "handlers", "Init<ArgumentError>", "Invalid handler"),
    ];
    for (case, handler, error_type, message) in cases {
        let name = deploy(&server, runtime, case, handler).await;
        let (status, headers, doc) = server.invoke(&name, "{}").await;
        assert_eq!((status, &headers["x-amz-function-error"]), (200, &"Unhandled".parse().unwrap()));
        assert_eq!(doc["errorType"], error_type, "{case}: {doc}");
        assert!(doc["errorMessage"].as_str().unwrap().contains(message), "{case}: {doc}");
    }

    // As on Lambda, a misspelt method is found out when it is called:
    // NoMethodError, after which the runtime starts afresh.
    let missing = deploy(&server, runtime, "nomethod", "handlers.missing").await;
    let (_, headers, doc) = server.invoke(&missing, "{}").await;
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "Function<NoMethodError>", "{doc}");
    assert!(doc["errorMessage"].as_str().unwrap().contains("missing"), "{doc}");
    let nested = deploy(&server, runtime, "noclass", "shop.Shop::Nope.total").await;
    assert_eq!(server.invoke(&nested, "{}").await.2["errorType"], "Function<NameError>");
    // NameError is critical as on Lambda: the process ends, the next event
    // goes to a new one.
    let (_, _, tail) = server.invoke_tail(&nested, "{}").await;
    assert!(tail.contains("Critical exception from handler\n{"), "{tail}");

    // Ending the process: exit! is the platform's Runtime.ExitError; `exit`
    // raises SystemExit, which the runtime reports before it exits.
    let crash = deploy(&server, runtime, "crash", "handlers.crash").await;
    let (_, headers, doc) = server.invoke(&crash, "{}").await;
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{doc}");
    assert!(doc["errorMessage"].as_str().unwrap().contains("exit status 3"), "{doc}");
    let exits = deploy(&server, runtime, "exit", "exits.handler").await;
    assert_eq!(server.invoke(&exits, "{}").await.2["errorType"], "Function<SystemExit>");
    // The runtime ended after reporting; the next event goes to a fresh one
    // even before lambdabox has heard of the exit.
    assert_eq!(server.invoke(&exits, "{}").await.2["errorType"], "Function<SystemExit>");
}

#[tokio::test]
async fn ruby31_runs_lambda_style_handlers() {
    runs_lambda_style_handlers("ruby3.1").await;
}

#[tokio::test]
async fn ruby33_runs_lambda_style_handlers() {
    runs_lambda_style_handlers("ruby3.3").await;
}

/// With `LoggingConfig.LogFormat: JSON`, a Logger writes one JSON record per
/// line with the request id, at the configured level, as Lambda's Ruby
/// runtime does.
#[tokio::test]
async fn json_log_format_makes_loggers_write_json() {
    common::ensure_runtime_image("ruby3.3");
    let server = Server::start();
    let json = json!({"Runtime": "ruby3.3", "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "WARN"}});
    server.deploy_files("rb-json", "extras.with_logger", &files(), json).await;
    let (headers, body, tail) = server.invoke_tail("rb-json", "{}").await;
    assert_eq!(body, json!("logged"));
    let id = headers["x-amzn-requestid"].to_str().unwrap();
    let records: Vec<serde_json::Value> = tail.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let warn = records.iter().find(|r| r["message"] == "low stock").unwrap_or_else(|| panic!("{tail}"));
    assert_eq!((warn["level"].as_str(), warn["logger"].as_str()), (Some("WARN"), Some("shop")), "{warn}");
    assert_eq!(warn["requestId"], id);
    assert!(warn["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{warn}");
    assert!(!tail.contains("to stderr"), "INFO is below the configured WARN: {tail}");
}
