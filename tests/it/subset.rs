//! The conformance subset every remote backend passes: echo, logs, a
//! handled error, a crash, a timeout, OOM, 8 concurrent invocations,
//! prewarm, and an update retiring old containers. Each check takes a
//! running controller and uses the API alone (containers are counted with
//! `GET /lambdabox/v1/containers`), so that [`crate::remote`] runs it on
//! Docker with `--transport remote` and [`crate::k8s`] on a real
//! Kubernetes with `--backend kubernetes`.

use std::time::Duration;

use serde_json::json;

use crate::common::{self, eventually, Server};

/// The ids of the containers serving `function` (`docker_id`: a Docker
/// container id, or a pod's name).
pub async fn container_ids(server: &Server, function: &str) -> Vec<String> {
    let ps = server.ps().await;
    let mut ids: Vec<String> = ps
        .iter()
        .filter(|c| c["function"] == function)
        .filter_map(|c| c["docker_id"].as_str().map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// Echo, logs arriving with the answer, a handled error, and a crash after
/// which a new container serves.
pub async fn echo_logs_errors_and_crash(server: &Server) {
    server.deploy("echo", "app.echo", json!({})).await;
    let event = r#"{"text":"héllo — 世界","n":[1,2.5,null]}"#;
    let (status, _, echoed) = server.invoke("echo", event).await;
    assert_eq!((status, echoed), (200, serde_json::from_str::<serde_json::Value>(event).unwrap()));

    // Printed, then returned: the output comes with the answer.
    server.deploy("logs", "app.logs", json!({})).await;
    for i in 0..5 {
        let marker = format!("m{i}");
        let (_, body, tail) = server.invoke_tail("logs", &json!({"marker": marker}).to_string()).await;
        assert_eq!(body, json!({"logged": marker}));
        assert!(tail.contains(&format!("stdout {marker}\n")) && tail.contains(&format!("stderr {marker}\n")), "{tail}");
        assert!(tail.contains("REPORT RequestId"), "{tail}");
        assert!(tail.contains("Max Memory Used: "), "peak memory comes over the connection: {tail}");
    }

    server.deploy("fail", "app.fail", json!({})).await;
    let (status, headers, doc) = server.invoke("fail", "{}").await;
    assert_eq!((status, headers["x-amz-function-error"].to_str().unwrap()), (200, "Unhandled"));
    assert_eq!(doc["errorType"], "ValueError");

    // Crash: os._exit after printing; the output still arrives.
    let (status, headers, doc) = server.invoke("logs", r#"{"marker":"bye","then_exit":true}"#).await;
    assert_eq!((status, headers["x-amz-function-error"].to_str().unwrap()), (200, "Unhandled"));
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{doc}");
    assert!(eventually(Duration::from_secs(20), || async { server.logs("logs").await.contains("stdout bye\n") }).await);
    let (_, body, _) = server.invoke_tail("logs", r#"{"marker":"again"}"#).await;
    assert_eq!(body, json!({"logged": "again"}), "a new container serves after a crash");
}

/// A timeout and an out-of-memory kill, each answered as Lambda does and
/// followed by a working invocation.
pub async fn timeout_and_oom(server: &Server) {
    let cases = [
        ("r-timeout", json!({"Timeout": 1}), "sleep", "Sandbox.Timedout"),
        ("r-oom", json!({"MemorySize": 128, "Timeout": 20}), "hog", "Runtime.OutOfMemory"),
    ];
    server.assert_faults_recover(&cases).await;
}

/// 8 invocations at once, each in a container of its own; returns the ids.
pub async fn eight_concurrent(server: &Server) -> Vec<String> {
    server.deploy("conc", "app.sleep", json!({})).await;
    let calls = (0..8).map(|i| async move { server.invoke("conc", &json!({"seconds": 2, "i": i}).to_string()).await });
    for (status, _, body) in futures_util::future::join_all(calls).await {
        assert_eq!((status, body), (200, json!("woke")));
    }
    let ids = container_ids(server, "conc").await;
    assert_eq!(ids.len(), 8, "{ids:?}");
    ids
}

/// A prewarmed generic container (the server runs with `--prewarm 1`)
/// becomes the function's at its first invocation, with its code and only
/// its environment.
pub async fn prewarm_specializes(server: &Server) {
    server.deploy("warm1", "app.environment", json!({"Environment": {"Variables": {"OWN": "yes"}}})).await;
    let prewarmed = || async { server.ps().await.iter().filter(|c| c["state"] == "prewarmed").count() };
    assert!(eventually(Duration::from_secs(60), || async { prewarmed().await >= 1 }).await, "a generic container");
    let generics: Vec<_> =
        server.ps().await.into_iter().filter(|c| c["state"] == "prewarmed").map(|c| c["docker_id"].clone()).collect();
    let (status, _, env) = server.invoke("warm1", r#"{"keys":["OWN","AWS_LAMBDA_FUNCTION_NAME"]}"#).await;
    assert_eq!((status, env), (200, json!({"OWN": "yes", "AWS_LAMBDA_FUNCTION_NAME": "warm1"})));
    let ps = server.ps().await;
    let serving = ps.iter().find(|c| c["function"] == "warm1").expect("a container serves it");
    assert!(generics.contains(&serving["docker_id"]), "a prewarmed one: {ps:?}");
}

/// New code is served after an update, and the old code's containers go.
pub async fn update_retires(server: &Server) {
    server.deploy_files("upd", "app.handler", &[("app.py", "def handler(e, c):\n    return 'one'\n")], json!({})).await;
    assert_eq!(server.invoke("upd", "{}").await.2, json!("one"));
    let before = container_ids(server, "upd").await;
    assert_eq!(before.len(), 1);
    let zip = common::zip_of(&[("app.py", "def handler(e, c):\n    return 'two'\n")]);
    let resp = server.sdk().update_function_code().function_name("upd").zip_file(zip.into()).send().await;
    resp.expect("code updated");
    assert!(eventually(Duration::from_secs(30), || async { server.invoke("upd", "{}").await.2 == json!("two") }).await);
    let gone = || async { container_ids(server, "upd").await.iter().all(|id| !before.contains(id)) };
    assert!(eventually(Duration::from_secs(30), gone).await, "the old container was retired");
}
