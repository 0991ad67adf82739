//! What a function container may and may not do.

use crate::common;

use std::time::Duration;

use common::{containers, Server};
use serde_json::json;

#[tokio::test]
async fn handlers_run_unprivileged_on_a_read_only_root() {
    let server = Server::start();
    server.deploy("jail", "app.sandbox", json!({"MemorySize": 256})).await;
    let (status, _, seen) = server.invoke("jail", "{}").await;
    assert_eq!(status, 200);
    assert_ne!(seen["uid"], 0, "runs as a non-root user");
    assert_eq!(seen["root_writable"], false, "/ is read-only");
    assert_eq!(seen["task_writable"], false, "/var/task is read-only");
    assert_eq!(seen["tmp_writable"], true, "/tmp is writable");
    assert_eq!(seen["docker_socket"], false, "no Docker socket inside");

    let id = containers(&server.home(), Some("jail")).await.remove(0);
    let docker = common::docker().await;
    let host = docker.inspect_container(&id, None).await.unwrap().host_config.unwrap();
    // By default a CPU weight in proportion to memory (1,024 at 1,769 MB), no hard cap.
    assert_eq!(host.cpu_shares, Some(256 * 1024 / 1769), "weighted in proportion to memory");
    assert!(host.cpu_quota.unwrap_or(0) <= 0 && host.nano_cpus.unwrap_or(0) == 0, "{host:?}");
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(host.security_opt, Some(vec!["no-new-privileges".to_string()]));
    assert_eq!(host.pids_limit, Some(1024));
    assert_eq!((host.memory, host.memory_swap), (Some(256 << 20), Some(256 << 20)), "memory = MemorySize, no swap");
    let tmpfs = host.tmpfs.unwrap_or_default();
    assert!(tmpfs.get("/tmp").is_some_and(|o| o.contains("size=512m")), "{tmpfs:?}");
}

#[tokio::test]
async fn a_fork_bomb_is_contained() {
    let mut server = Server::start();
    server.deploy("bomb", "app.forkbomb", json!({"Timeout": 4})).await;
    server.deploy("bystander", "app.echo", json!({})).await;
    assert_eq!(server.invoke("bystander", r#"{"before": true}"#).await.0, 200);
    let bomb = server.invoke("bomb", "{}");
    let bystander = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut answers = Vec::new();
        for i in 0..5 {
            answers.push(server.invoke("bystander", &format!("{{\"i\":{i}}}")).await);
        }
        answers
    };
    let ((_, headers, doc), answers) = tokio::join!(bomb, bystander);
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    // The bomb hits the pids limit, then its memory limit or its deadline
    // (which first depends on how much CPU it gets).
    let error = doc["errorType"].as_str().unwrap_or_default();
    assert!(["Sandbox.Timedout", "Runtime.OutOfMemory"].contains(&error), "{doc}");
    for (i, (status, _, body)) in answers.into_iter().enumerate() {
        assert_eq!((status, body), (200, json!({"i": i})), "another function keeps working");
    }
    let home = server.home();
    server.stop();
    assert!(containers(&home, None).await.is_empty(), "even the bomb's container is removed at shutdown");
}

/// What a function sees of its network: its interfaces, whether
/// `localhost` resolves, and whether a loopback server answers it.
const NETWORK_PROBE: &str = r#"
import os, socket, threading

def handler(event, context):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    threading.Thread(target=lambda: server.accept()[0].sendall(b"pong"), daemon=True).start()
    with socket.create_connection(("localhost", server.getsockname()[1]), timeout=5) as c:
        answer = c.recv(4).decode()
    return {
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "localhost": sorted({a[4][0] for a in socket.getaddrinfo("localhost", 80, proto=socket.IPPROTO_TCP)}),
        "loopback": answer,
    }
"#;

#[tokio::test]
async fn containers_can_run_without_a_network() {
    for (mode, interfaces) in [("none", json!(["lo"])), ("bridge", json!(["eth0", "lo"]))] {
        let server = Server::start_with(&["--network", mode]);
        server.deploy("offline", "app.echo", json!({})).await;
        let (status, _, body) = server.invoke("offline", r#"{"ok": true}"#).await;
        assert_eq!((status, body), (200, json!({"ok": true})), "{mode}: the Runtime API needs no network");

        server.deploy_files("probe", "probe.handler", &[("probe.py", NETWORK_PROBE)], json!({})).await;
        let (status, _, seen) = server.invoke("probe", "{}").await;
        assert_eq!(status, 200, "{mode}: {seen}");
        assert_eq!(seen["interfaces"], interfaces, "{mode}: {seen}");
        assert!(seen["localhost"].as_array().unwrap().contains(&json!("127.0.0.1")), "{mode}: {seen}");
        assert_eq!(seen["loopback"], "pong", "{mode}: {seen}");
    }
}
