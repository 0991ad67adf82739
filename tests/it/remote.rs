//! The remote transport through real containers, without Kubernetes:
//! `--transport remote` on Docker gives containers no control folder and
//! no code bind mounts; init dials the controller's unix socket (mounted
//! alone), fetches the code into tmpfs folders and relays everything over
//! that one connection. The same conformance subset a Kubernetes backend
//! must pass.

use crate::common;

use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, KillContainerOptionsBuilder};
use common::{containers, eventually, Server};
use serde_json::json;

fn remote_server(extra: &[&str]) -> Server {
    let mut flags = vec!["--transport", "remote"];
    if !extra.contains(&"--network") {
        flags.extend(["--network", "none"]);
    }
    flags.extend_from_slice(extra);
    Server::start_with(&flags)
}

/// What a container of `function` has mounted, by target.
async fn mounts(home: &str, function: &str) -> Vec<(String, String)> {
    let id = containers(home, Some(function)).await.pop().expect("a container");
    let info = common::docker().await.inspect_container(&id, None::<InspectContainerOptions>).await.unwrap();
    let mut out: Vec<(String, String)> = info
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| (m.destination.unwrap_or_default(), format!("{:?}", m.typ)))
        .collect();
    let tmpfs = info.host_config.and_then(|h| h.tmpfs).unwrap_or_default();
    out.extend(tmpfs.into_keys().map(|k| (k, "tmpfs".to_owned())));
    out.sort();
    out
}

#[tokio::test]
async fn echo_logs_and_errors_over_the_remote_transport() {
    let server = remote_server(&[]);
    server.deploy("echo", "app.echo", json!({})).await;
    let event = r#"{"text":"héllo — 世界","n":[1,2.5,null]}"#;
    let (status, _, echoed) = server.invoke("echo", event).await;
    assert_eq!((status, echoed), (200, serde_json::from_str::<serde_json::Value>(event).unwrap()));

    let mounted = mounts(&server.home(), "echo").await;
    let targets: Vec<&str> = mounted.iter().map(|(t, _)| t.as_str()).collect();
    assert!(!targets.contains(&"/lambdabox/rt"), "no control folder: {mounted:?}");
    assert!(targets.contains(&"/lambdabox/controller.sock"), "{mounted:?}");
    assert!(
        mounted.contains(&("/var/task".to_owned(), "tmpfs".to_owned())),
        "code is fetched, not mounted: {mounted:?}"
    );

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

/// The gateway address of Docker's default bridge: the host as its
/// containers see it (traffic on it stays on this machine).
async fn bridge_gateway() -> String {
    let bridge = common::docker().await.inspect_network("bridge", None).await.unwrap();
    let configs = bridge.ipam.and_then(|i| i.config).unwrap_or_default();
    configs.into_iter().find_map(|c| c.gateway).expect("the bridge network has a gateway")
}

/// The same over TCP, as a Kubernetes pod dials the controller.
#[tokio::test]
async fn the_transport_also_runs_over_tcp() {
    let listen = format!("{}:0", bridge_gateway().await);
    let server = remote_server(&["--remote-listen", &listen, "--network", "bridge"]);
    server.deploy("tcp-echo", "app.logs", json!({})).await;
    let (_, body, tail) = server.invoke_tail("tcp-echo", r#"{"marker":"over-tcp"}"#).await;
    assert_eq!(body, json!({"logged": "over-tcp"}));
    assert!(tail.contains("stdout over-tcp\n"), "{tail}");
    let targets: Vec<String> = mounts(&server.home(), "tcp-echo").await.into_iter().map(|(t, _)| t).collect();
    assert!(!targets.iter().any(|t| t.starts_with("/lambdabox/") && t != "/lambdabox/init"), "{targets:?}");
}

#[tokio::test]
async fn timeouts_and_oom_over_the_remote_transport() {
    let server = remote_server(&[]);
    let cases = [
        ("r-timeout", json!({"Timeout": 1}), "sleep", "Sandbox.Timedout"),
        ("r-oom", json!({"MemorySize": 128, "Timeout": 20}), "hog", "Runtime.OutOfMemory"),
    ];
    server.assert_faults_recover(&cases).await;
}

#[tokio::test]
async fn concurrent_invocations_over_the_remote_transport() {
    let server = remote_server(&[]);
    server.deploy("conc", "app.sleep", json!({})).await;
    let calls = (0..8).map(|i| {
        let server = &server;
        async move { server.invoke("conc", &json!({"seconds": 1, "i": i}).to_string()).await }
    });
    for (status, _, body) in futures_util::future::join_all(calls).await {
        assert_eq!((status, body), (200, json!("woke")));
    }
    assert_eq!(containers(&server.home(), Some("conc")).await.len(), 8);
}

#[tokio::test]
async fn prewarmed_containers_fetch_their_code_when_specialized() {
    let server = remote_server(&["--prewarm", "1"]);
    server.deploy("warm1", "app.environment", json!({"Environment": {"Variables": {"OWN": "yes"}}})).await;
    let prewarmed = || async { server.ps().await.iter().filter(|c| c["state"] == "prewarmed").count() };
    assert!(eventually(Duration::from_secs(30), || async { prewarmed().await == 1 }).await);
    let generic = server.ps().await.into_iter().find(|c| c["state"] == "prewarmed").unwrap()["docker_id"].clone();
    let (status, _, env) = server.invoke("warm1", r#"{"keys":["OWN","AWS_LAMBDA_FUNCTION_NAME"]}"#).await;
    assert_eq!((status, env), (200, json!({"OWN": "yes", "AWS_LAMBDA_FUNCTION_NAME": "warm1"})));
    let ps = server.ps().await;
    let serving = ps.iter().find(|c| c["function"] == "warm1").expect("a container serves it");
    assert_eq!(serving["docker_id"], generic, "the prewarmed one: {ps:?}");
}

#[tokio::test]
async fn updates_retire_old_containers_over_the_remote_transport() {
    let server = remote_server(&[]);
    server.deploy_files("upd", "app.handler", &[("app.py", "def handler(e, c):\n    return 'one'\n")], json!({})).await;
    assert_eq!(server.invoke("upd", "{}").await.2, json!("one"));
    let before = containers(&server.home(), Some("upd")).await;
    let zip = common::zip_of(&[("app.py", "def handler(e, c):\n    return 'two'\n")]);
    let resp = server.sdk().update_function_code().function_name("upd").zip_file(zip.into()).send().await;
    resp.expect("code updated");
    assert!(eventually(Duration::from_secs(20), || async { server.invoke("upd", "{}").await.2 == json!("two") }).await);
    let gone = || async { containers(&server.home(), Some("upd")).await.iter().all(|id| !before.contains(id)) };
    assert!(eventually(Duration::from_secs(20), gone).await, "the old container was retired");
}

#[tokio::test]
async fn a_container_killed_mid_invocation_fails_the_caller_and_is_replaced() {
    let server = remote_server(&[]);
    server.deploy("victim", "app.sleep", json!({"Timeout": 60})).await;
    assert_eq!(server.invoke("victim", r#"{"seconds":0}"#).await.2, json!("woke"));
    let id = containers(&server.home(), Some("victim")).await.pop().unwrap();
    let call = server.invoke("victim", r#"{"seconds":50}"#);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let options = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
        common::docker().await.kill_container(&id, Some(options)).await.unwrap();
    };
    let started = std::time::Instant::now();
    let ((status, headers, doc), ()) = tokio::join!(call, kill);
    assert_eq!((status, headers["x-amz-function-error"].to_str().unwrap()), (200, "Unhandled"), "{doc}");
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{doc}");
    assert!(started.elapsed() < Duration::from_secs(45), "the caller did not wait for the handler's 50 s");
    assert_eq!(server.invoke("victim", r#"{"seconds":0}"#).await.2, json!("woke"), "a new container serves");
}

/// What the function itself can reach of the transport: nothing. Its
/// environment has no token, init's is not readable, the controller's
/// socket refuses its user, and the fetched code is not writable.
#[tokio::test]
async fn the_function_cannot_use_the_transport_itself() {
    let server = remote_server(&[]);
    let probe = r#"
import os, socket
def handler(event, context):
    out = {"env": sorted(k for k in os.environ if k.startswith("LAMBDABOX"))}
    try:
        open("/proc/1/environ", "rb").read()
        out["init_env"] = "readable"
    except OSError as e:
        out["init_env"] = type(e).__name__
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect("/lambdabox/controller.sock")
        out["socket"] = "connected"
    except OSError as e:
        out["socket"] = type(e).__name__
    try:
        open("/var/task/new.py", "w")
        out["code"] = "writable"
    except OSError as e:
        out["code"] = type(e).__name__
    return out
"#;
    server.deploy_files("probe", "app.handler", &[("app.py", probe)], json!({})).await;
    let (status, _, out) = server.invoke("probe", "{}").await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out,
        json!({"env": [], "init_env": "PermissionError", "socket": "PermissionError", "code": "PermissionError"})
    );
}
