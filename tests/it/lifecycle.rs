//! The controller as a durable service: functions survive a restart, its
//! containers are removed when it stops, and a crashed run's containers are
//! cleared by the next start.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::{containers, eventually, Server};
use serde_json::{json, Value};

async fn echo(server: &Server, name: &str, payload: Value) -> Value {
    let (status, _, body) = server.invoke(name, &payload.to_string()).await;
    assert_eq!(status, 200);
    body
}

#[tokio::test]
async fn restarted_controller_keeps_functions() {
    let tmp = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let mut first = Server::start_in(tmp.path());
    first.deploy("kept-a", "app.echo", json!({})).await;
    first.deploy("kept-b", "app.echo", json!({})).await;
    assert_eq!(echo(&first, "kept-a", json!({"run": 1})).await, json!({"run": 1}));
    let home = first.home();
    first.stop();
    assert!(containers(&home, None).await.is_empty(), "a stopped controller removes its containers");

    let second = Server::start_in(tmp.path());
    let list: Value = second.get("/2015-03-31/functions/").send().await.json().await.unwrap();
    let names: Vec<&str> =
        list["Functions"].as_array().unwrap().iter().map(|f| f["FunctionName"].as_str().unwrap()).collect();
    assert_eq!(names, ["kept-a", "kept-b"]);
    assert_eq!(echo(&second, "kept-b", json!({"run": 2})).await, json!({"run": 2}));
}

#[tokio::test]
async fn killed_controller_containers_are_cleared_at_next_start() {
    let tmp = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let mut first = Server::start_in(tmp.path());
    first.deploy("orphan", "app.echo", json!({})).await;
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

#[tokio::test]
async fn relative_paths_on_the_command_line_work() {
    let tmp = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    std::fs::copy(common::init_bin(), tmp.path().join("init")).unwrap();
    let server = Server::start_in_from(tmp.path(), Path::new("data"), Path::new("init"), &[]);
    server.deploy("rel", "app.echo", json!({})).await;
    assert_eq!(echo(&server, "rel", json!({"relative": true})).await, json!({"relative": true}));
}
