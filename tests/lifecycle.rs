//! The controller as a durable service: functions survive a restart, its
//! containers are removed when it stops, and a crashed run's containers are
//! cleared by the next start.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{containers, eventually, zip_of, Server, APP_PY};
use serde_json::{json, Value};

async fn deploy_echo(server: &Server, name: &str) {
    let zip = base64::engine::general_purpose::STANDARD.encode(zip_of(&[("app.py", APP_PY)]));
    let body = json!({"FunctionName": name, "Runtime": "python3.11", "Handler": "app.echo",
                      "Role": "arn:aws:iam::000000000000:role/test", "Code": {"ZipFile": zip}});
    let resp =
        reqwest::Client::new().post(format!("{}/2015-03-31/functions", server.url)).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 201);
}

async fn echo(server: &Server, name: &str, payload: Value) -> Value {
    let resp = reqwest::Client::new().post(server.invoke_url(name)).json(&payload).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn restarted_controller_keeps_functions() {
    let tmp = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let mut first = Server::start_in(tmp.path());
    deploy_echo(&first, "kept-a").await;
    deploy_echo(&first, "kept-b").await;
    assert_eq!(echo(&first, "kept-a", json!({"run": 1})).await, json!({"run": 1}));
    let home = first.home();
    first.stop();
    assert!(containers(&home, None).await.is_empty(), "a stopped controller removes its containers");

    let second = Server::start_in(tmp.path());
    let list: Value =
        reqwest::get(format!("{}/2015-03-31/functions/", second.url)).await.unwrap().json().await.unwrap();
    let names: Vec<&str> =
        list["Functions"].as_array().unwrap().iter().map(|f| f["FunctionName"].as_str().unwrap()).collect();
    assert_eq!(names, ["kept-a", "kept-b"]);
    assert_eq!(echo(&second, "kept-b", json!({"run": 2})).await, json!({"run": 2}));
}

#[tokio::test]
async fn killed_controller_containers_are_cleared_at_next_start() {
    let tmp = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let mut first = Server::start_in(tmp.path());
    deploy_echo(&first, "orphan").await;
    echo(&first, "orphan", json!({})).await;
    let home = first.home();
    let orphans = containers(&home, Some("orphan")).await;
    assert_eq!(orphans.len(), 1);
    first.kill();
    assert_eq!(containers(&home, Some("orphan")).await, orphans, "SIGKILL leaves the container behind");

    let second = Server::start_in(tmp.path());
    let cleared = eventually(Duration::from_secs(10), || async {
        containers(&home, Some("orphan")).await.iter().all(|id| !orphans.contains(id))
    })
    .await;
    assert!(cleared, "the old run's container survived start-up");
    assert_eq!(echo(&second, "orphan", json!({"again": true})).await, json!({"again": true}));
}
