//! Prewarmed generic containers: started for the runtimes in use before any
//! function needs them, specialized on a cold start, one function for life.

use crate::common;

use std::time::Duration;

use common::{eventually, Server};
use serde_json::json;

async fn prewarmed(server: &Server) -> Vec<serde_json::Value> {
    server.ps().await.into_iter().filter(|c| c["state"] == "prewarmed").collect()
}

#[tokio::test]
async fn cold_starts_take_a_prewarmed_container_and_the_pool_refills() {
    let server = Server::start_with(&["--prewarm", "2"]);
    assert!(prewarmed(&server).await.is_empty(), "nothing is prewarmed before a runtime is in use");
    server.deploy("first", "app.context_fields", json!({"MemorySize": 256})).await;
    assert!(eventually(Duration::from_secs(20), || async { prewarmed(&server).await.len() == 2 }).await);
    let generic: Vec<String> =
        prewarmed(&server).await.iter().map(|c| c["docker_id"].as_str().unwrap().to_owned()).collect();

    let (status, headers, ctx) = server.invoke("first", "{}").await;
    assert_eq!(status, 200, "{ctx}");
    assert_eq!(ctx["function_name"], "first");
    assert_eq!(ctx["memory_limit_in_mb"], 256);
    assert_eq!(ctx["aws_request_id"], headers["x-amzn-requestid"].to_str().unwrap());
    let ps = server.ps().await;
    let serving = ps.iter().find(|c| c["function"] == "first").expect("a container serves it");
    assert!(generic.contains(&serving["docker_id"].as_str().unwrap().to_owned()), "a prewarmed one: {ps:?}");
    assert!(eventually(Duration::from_secs(20), || async { prewarmed(&server).await.len() == 2 }).await, "refilled");

    // Specialized containers see the function's own environment and code,
    // and its memory limit is the function's.
    server.deploy("env", "app.environment", json!({"Environment": {"Variables": {"OWN": "yes"}}})).await;
    let (_, _, env) = server.invoke("env", r#"{"keys":["OWN","AWS_LAMBDA_FUNCTION_NAME","_HANDLER"]}"#).await;
    assert_eq!(env, json!({"OWN": "yes", "AWS_LAMBDA_FUNCTION_NAME": "env", "_HANDLER": "app.environment"}));
    let (_, _, tail) = server.invoke_tail("env", r#"{"keys":[]}"#).await;
    assert!(tail.contains("Memory Size: 128 MB"), "{tail}");

    // A function that cannot use one (its /tmp size differs) still starts.
    server.deploy("big-tmp", "app.echo", json!({"EphemeralStorage": {"Size": 1024}})).await;
    assert_eq!(server.invoke("big-tmp", r#"{"x":1}"#).await.2, json!({"x": 1}));
}

#[tokio::test]
async fn prewarmed_containers_follow_the_runtimes_in_use() {
    common::ensure_runtime_image("nodejs20.x");
    let server = Server::start_with(&["--prewarm", "1"]);
    server.deploy("py", "app.echo", json!({})).await;
    let images = || async {
        let mut v: Vec<String> =
            prewarmed(&server).await.iter().map(|c| c["revision"].as_str().unwrap().to_owned()).collect();
        v.sort();
        v
    };
    assert!(eventually(Duration::from_secs(20), || async { images().await == ["lambdabox/python3.11:latest"] }).await);
    server
        .deploy_files(
            "node",
            "index.handler",
            &[("index.js", "exports.handler = async (e) => e;")],
            json!({"Runtime": "nodejs20.x"}),
        )
        .await;
    let both = ["lambdabox/nodejs20.x:latest", "lambdabox/python3.11:latest"];
    assert!(eventually(Duration::from_secs(20), || async { images().await == both }).await, "{:?}", images().await);
    assert_eq!(server.invoke("node", r#"{"n":1}"#).await.2, json!({"n": 1}));
    let resp = server.delete("/2015-03-31/functions/py").send().await;
    assert_eq!(resp.status(), 204);
    let node_only = ["lambdabox/nodejs20.x:latest"];
    assert!(
        eventually(Duration::from_secs(20), || async { images().await == node_only }).await,
        "{:?}",
        images().await
    );
}

#[tokio::test]
async fn shutdown_leaves_no_prewarmed_container_behind() {
    let mut server = Server::start_with(&["--prewarm", "3"]);
    let home = server.home();
    server.deploy("f", "app.echo", json!({})).await;
    assert!(eventually(Duration::from_secs(20), || async { !prewarmed(&server).await.is_empty() }).await);
    // Stop while some may still be starting.
    server.stop();
    assert!(common::containers(&home, None).await.is_empty(), "a stopped controller removes its prewarmed containers");
}
