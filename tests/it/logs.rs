//! Function logs: what a function prints reaches its log between Lambda's
//! START and END/REPORT lines, and `LogType: Tail` returns it.

use crate::common;

use common::{eventually, Server};
use serde_json::json;
use std::time::Duration;

fn request_id(headers: &reqwest::header::HeaderMap) -> String {
    headers["x-amzn-requestid"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn tail_holds_the_invocations_lines_in_lambdas_frame() {
    let server = Server::start();
    server.deploy("logs", "app.logs", json!({})).await;
    let (headers, body, tail) = server.invoke_tail("logs", r#"{"marker":"first-ünïcode"}"#).await;
    assert_eq!(body, json!({"logged": "first-ünïcode"}));
    let id = request_id(&headers);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.first().copied(), Some(format!("START RequestId: {id} Version: $LATEST").as_str()), "{tail}");
    assert!(lines.contains(&"stdout first-ünïcode") && lines.contains(&"stderr first-ünïcode"), "{tail}");
    assert_eq!(lines[lines.len() - 2], format!("END RequestId: {id}"), "{tail}");
    let report = lines[lines.len() - 1];
    assert!(report.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")), "{report}");
    assert!(report.contains("\tMemory Size: 128 MB\t") && report.contains("\tMax Memory Used: "), "{report}");
    assert!(report.contains("\tInit Duration: "), "a cold start reports its init: {report}");
    let used = |report: &str| -> u64 {
        let after = report.split("\tMax Memory Used: ").nth(1).expect("a peak");
        after.split(' ').next().unwrap().parse().expect("a number of MB")
    };
    assert!(used(report) > 0, "the container's cgroup was read: {report}");

    let (headers, _, tail) = server.invoke_tail("logs", r#"{"marker":"second"}"#).await;
    let second = request_id(&headers);
    assert!(tail.contains("stdout second") && !tail.contains("first"), "only this invocation's lines: {tail}");
    assert!(!tail.contains("Init Duration"), "a warm invocation has no init: {tail}");
    let warm = tail.lines().last().unwrap();
    assert!(used(warm) >= used(report), "a peak only grows, read again from the same file: {warm}");

    // Without Tail there is no log result, but the lines are still kept.
    let (status, headers, _) = server.invoke("logs", r#"{"marker":"third"}"#).await;
    assert_eq!(status, 200);
    assert!(headers.get("x-amz-log-result").is_none());
    let third = request_id(&headers);
    let done = format!("REPORT RequestId: {third}");
    assert!(eventually(Duration::from_secs(5), || async { server.logs("logs").await.contains(&done) }).await);
    let log = server.logs("logs").await;
    let at = |needle: &str| log.find(needle).unwrap_or_else(|| panic!("{needle} missing from {log}"));
    assert!(at(&format!("START RequestId: {id}")) < at("stdout first-ünïcode"));
    assert!(at("stderr first-ünïcode") < at(&format!("END RequestId: {id}")));
    assert!(at(&format!("END RequestId: {id}")) < at(&format!("START RequestId: {second}")));
    assert!(at(&format!("START RequestId: {third}")) < at("stdout third"));
}

#[tokio::test]
async fn timeouts_and_crashes_are_logged_too() {
    let server = Server::start();
    server.deploy("slow", "app.sleep", json!({"Timeout": 1})).await;
    let (headers, body, tail) = server.invoke_tail("slow", r#"{"seconds":5}"#).await;
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    let id = request_id(&headers);
    assert!(tail.contains(&format!("{id} Task timed out after 1.00 seconds")), "{tail}");
    assert!(tail.trim_end().ends_with("Status: timeout"), "{tail}");

    server.deploy("crash", "app.logs", json!({})).await;
    let (_, body, tail) = server.invoke_tail("crash", r#"{"marker":"last words","then_exit":true}"#).await;
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert!(tail.contains("stdout last words") && tail.contains("stderr last words"), "{tail}");
}

#[tokio::test]
async fn bad_log_type_and_unknown_function_are_refused() {
    let server = Server::start();
    server.deploy("f", "app.echo", json!({})).await;
    let resp = server.post(&Server::invoke_path("f")).header("x-amz-log-type", "Everything").body("{}").send().await;
    assert_eq!(resp.status(), 400);
    // The model's enum: ValidationException, as AWS answers it.
    assert_eq!(resp.headers()["x-amzn-errortype"], "ValidationException");
    let resp = server.get("/lambdabox/v1/functions/nope/logs").send().await;
    assert_eq!(resp.status(), 404);
}

/// `LoggingConfig.LogFormat: JSON`: the runtime's own client writes the
/// function's log records as JSON with the request id, keeping the
/// configured level, as on Lambda.
#[tokio::test]
async fn json_log_format_reaches_the_runtime() {
    let server = Server::start();
    let code = "import logging\nlogger = logging.getLogger()\n\
def handler(event, context):\n    logger.debug('quiet')\n    logger.info('loud')\n    return 'ok'\n";
    let json = json!({"LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "LogGroup": "/mine/app"}});
    server.deploy_files("structured", "code.handler", &[("code.py", code)], json).await;
    let config: serde_json::Value =
        server.get("/2015-03-31/functions/structured/configuration").send().await.json().await.unwrap();
    assert_eq!(
        config["LoggingConfig"],
        json!({"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO", "LogGroup": "/mine/app"})
    );
    let (headers, body, tail) = server.invoke_tail("structured", "{}").await;
    assert_eq!(body, json!("ok"));
    let id = headers["x-amzn-requestid"].to_str().unwrap();
    let records: Vec<serde_json::Value> = tail.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let loud = records.iter().find(|r| r["message"] == "loud").unwrap_or_else(|| panic!("{tail}"));
    assert_eq!((loud["level"].as_str(), loud["requestId"].as_str()), (Some("INFO"), Some(id)), "{loud}");
    assert!(!tail.contains("quiet"), "DEBUG is below the configured level: {tail}");
    // The platform's own lines are JSON records too: platform.start and platform.report, no END.
    let of_type = |t: &str| records.iter().find(|r| r["type"] == t).unwrap_or_else(|| panic!("no {t}: {tail}"));
    assert_eq!(of_type("platform.start")["record"], json!({"requestId": id, "version": "$LATEST"}));
    let report = &of_type("platform.report")["record"];
    assert_eq!((report["requestId"].as_str(), report["status"].as_str()), (Some(id), Some("success")), "{report}");
    assert_eq!(report["metrics"]["memorySizeMB"], 128);
    assert!(report["metrics"]["durationMs"].as_f64().is_some() && report["metrics"]["initDurationMs"].is_number());
    assert!(!tail.contains("START RequestId") && !tail.contains("END RequestId"), "{tail}");

    // Levels need JSON, as on Lambda; back to Text drops them.
    let text = json!({"LoggingConfig": {"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"}});
    let refused = server.put("/2015-03-31/functions/structured/configuration").json(&text).send().await;
    assert_eq!(refused.status(), 400);
    let text = json!({"LoggingConfig": {"LogFormat": "Text"}});
    let back: serde_json::Value =
        server.put("/2015-03-31/functions/structured/configuration").json(&text).send().await.json().await.unwrap();
    assert_eq!(back["LoggingConfig"], json!({"LogFormat": "Text", "LogGroup": "/mine/app"}));
}
