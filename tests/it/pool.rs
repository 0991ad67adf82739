//! The container pool against the real engine: scaling out, concurrency
//! limits, idle recycling, eviction, provisioned concurrency, healing, drain.

use crate::common;

use std::time::{Duration, Instant};

use common::{containers, eventually, Server};
use serde_json::json;

/// Fire `n` invocations of `name` at once; returns their statuses.
async fn burst(server: &Server, name: &str, n: usize, payload: &str) -> Vec<u16> {
    let calls = (0..n).map(|_| server.invoke(name, payload));
    let results = futures_util::future::join_all(calls).await;
    results.into_iter().map(|(status, _, _)| status).collect()
}

/// PutFunctionConcurrency.
async fn reserve(server: &Server, name: &str, n: u32) {
    let put = server
        .put(&format!("/2017-10-31/functions/{name}/concurrency"))
        .json(&json!({"ReservedConcurrentExecutions": n}))
        .send()
        .await;
    assert_eq!(put.status(), 200);
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn concurrent_invocations_scale_out_to_one_container_each() {
    let server = Server::start();
    server.deploy("sleepy", "app.sleep", json!({"Timeout": 30})).await;
    let statuses = burst(&server, "sleepy", 16, r#"{"seconds": 1}"#).await;
    assert_eq!(count(&statuses, 200), 16, "{statuses:?}");
    assert_eq!(containers(&server.home(), Some("sleepy")).await.len(), 16, "one container per concurrent invocation");
    let ps = server.ps().await;
    let served: u64 = ps.iter().map(|c| c["invocations"].as_u64().unwrap()).sum();
    assert_eq!((ps.len(), served), (16, 16));
}

#[tokio::test]
async fn reserved_concurrency_throttles_the_excess() {
    let server = Server::start();
    server.deploy("capped", "app.sleep", json!({"Timeout": 30})).await;
    reserve(&server, "capped", 4).await;
    let statuses = burst(&server, "capped", 16, r#"{"seconds": 1}"#).await;
    assert_eq!((count(&statuses, 200), count(&statuses, 429)), (4, 12), "{statuses:?}");
    let (status, headers, body) = {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(server.invoke("capped", r#"{"seconds": 2}"#));
        }
        let throttled = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            server.invoke("capped", r#"{"seconds": 0}"#).await
        };
        let (_, throttled) = tokio::join!(futures_util::future::join_all(held), throttled);
        throttled
    };
    assert_eq!(status, 429);
    assert_eq!(headers["x-amzn-errortype"], "TooManyRequestsException");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded");
    assert!(containers(&server.home(), Some("capped")).await.len() <= 4);
}

#[tokio::test]
async fn a_longer_queue_makes_the_excess_wait_instead() {
    let server = Server::start_with(&["--queue-timeout-ms", "20000"]);
    server.deploy("queued", "app.sleep", json!({"Timeout": 30})).await;
    reserve(&server, "queued", 4).await;
    let statuses = burst(&server, "queued", 16, r#"{"seconds": 1}"#).await;
    assert_eq!(count(&statuses, 200), 16, "{statuses:?}");
    assert_eq!(containers(&server.home(), Some("queued")).await.len(), 4, "never more than the reserved 4");
}

#[tokio::test]
async fn idle_containers_are_reaped_after_the_ttl() {
    let server = Server::start_with(&["--idle-ttl", "2"]);
    server.deploy("brief", "app.echo", json!({})).await;
    server.deploy("own-ttl", "app.echo", json!({"IdleTtlSeconds": 60})).await;
    assert_eq!(server.invoke("own-ttl", "{}").await.0, 200);
    assert_eq!(server.invoke("brief", "{}").await.0, 200);
    let idle_since = Instant::now();
    assert_eq!(containers(&server.home(), Some("brief")).await.len(), 1);
    // Removal itself (kill, wait, delete) can take seconds on a loaded host.
    let gone =
        eventually(Duration::from_secs(20), || async { containers(&server.home(), Some("brief")).await.is_empty() })
            .await;
    assert!(gone, "still there {:?} after going idle", idle_since.elapsed());
    assert_eq!(containers(&server.home(), Some("own-ttl")).await.len(), 1, "a function's own TTL wins");
}

#[tokio::test]
async fn memory_budget_evicts_the_least_recently_used_container() {
    let server = Server::start_with(&["--memory-budget-mb", "256"]);
    for name in ["first", "second", "third"] {
        server.deploy(name, "app.echo", json!({"MemorySize": 128})).await;
    }
    assert_eq!(server.invoke("first", "{}").await.0, 200);
    assert_eq!(server.invoke("second", "{}").await.0, 200);
    assert_eq!(server.invoke("first", "{}").await.0, 200, "first is now the most recently used");
    assert_eq!(server.invoke("third", "{}").await.0, 200);
    let home = server.home();
    let evicted =
        eventually(Duration::from_secs(20), || async { containers(&home, Some("second")).await.is_empty() }).await;
    assert!(evicted, "the least recently used container (second) was not evicted");
    assert_eq!(containers(&home, Some("first")).await.len(), 1);
    assert_eq!(containers(&home, Some("third")).await.len(), 1);
}

#[tokio::test]
async fn provisioned_containers_are_ready_ahead_and_never_reaped() {
    let server = Server::start_with(&["--idle-ttl", "1"]);
    server.deploy("ready", "app.environment", json!({"Publish": true})).await;
    // As on Lambda, only a published version or an alias takes it.
    let latest = "/2019-09-30/functions/ready/provisioned-concurrency?Qualifier=$LATEST";
    let refused = server.put(latest).json(&json!({"ProvisionedConcurrentExecutions": 2})).send().await;
    assert_eq!(refused.status(), 400);
    let refused: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(
        refused["message"],
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    );
    let path = "/2019-09-30/functions/ready/provisioned-concurrency?Qualifier=1";
    let put = server.put(path).json(&json!({"ProvisionedConcurrentExecutions": 2})).send().await;
    assert_eq!(put.status(), 202);
    let ready = eventually(Duration::from_secs(20), || async {
        let body: serde_json::Value = server.get(path).send().await.json().await.unwrap();
        body["Status"] == "READY"
    })
    .await;
    assert!(ready, "provisioned concurrency never became READY");
    assert_eq!(containers(&server.home(), Some("ready")).await.len(), 2, "started before any invocation");
    let (_, _, env) = server.invoke("ready:1", r#"{"keys":["AWS_LAMBDA_INITIALIZATION_TYPE"]}"#).await;
    assert_eq!(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "provisioned-concurrency");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(containers(&server.home(), Some("ready")).await.len(), 2, "not reaped past the 1 s TTL");

    assert_eq!(server.delete(path).send().await.status(), 204);
    let reaped =
        eventually(Duration::from_secs(20), || async { containers(&server.home(), Some("ready")).await.is_empty() })
            .await;
    assert!(reaped, "once unconfigured they are ordinary idle containers");
    let missing = server.get(path).send().await;
    assert_eq!(missing.headers()["x-amzn-errortype"], "ProvisionedConcurrencyConfigNotFoundException");
}

#[tokio::test]
async fn a_container_removed_behind_our_back_is_replaced() {
    let server = Server::start();
    server.deploy("healed", "app.echo", json!({})).await;
    assert_eq!(server.invoke("healed", r#"{"n":1}"#).await.0, 200);
    let before = containers(&server.home(), Some("healed")).await;
    let docker = common::docker().await;
    let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(true).build();
    docker.remove_container(&before[0], Some(options)).await.unwrap();
    let noticed = eventually(Duration::from_secs(20), || async { server.ps().await.is_empty() }).await;
    assert!(noticed, "the pool still lists a removed container");
    let (status, _, body) = server.invoke("healed", r#"{"n":2}"#).await;
    assert_eq!((status, body), (200, json!({"n": 2})));
    let after = containers(&server.home(), Some("healed")).await;
    assert!(after.len() == 1 && after[0] != before[0]);
}

#[tokio::test]
async fn sigterm_drains_in_flight_invocations_first() {
    let mut server = Server::start();
    server.deploy("draining", "app.sleep", json!({"Timeout": 30})).await;
    let home = server.home();
    let call = server.post(&Server::invoke_path("draining")).body(r#"{"seconds": 2}"#);
    let in_flight = tokio::spawn(async move {
        let resp = call.send().await;
        (resp.status().as_u16(), resp.text().await.unwrap())
    });
    let busy =
        eventually(Duration::from_secs(10), || async { server.ps().await.iter().any(|c| c["state"] == "busy") }).await;
    assert!(busy, "the invocation never started");
    server.terminate();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!((status, body.as_str()), (200, "\"woke\""), "the in-flight invocation finished normally");
    assert!(server.wait_exit(Duration::from_secs(20)), "the controller did not exit after draining");
    assert!(containers(&home, None).await.is_empty(), "its containers are removed");
}
