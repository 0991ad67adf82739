//! The Kubernetes backend on a real cluster: `make test-k8s` brings up the
//! testbed (`scripts/k8s-testbed.sh`: an API server, a scheduler and two
//! nodes with their own dockerd and kubelet, in network namespaces of
//! their own) and runs these with `LAMBDABOX_K8S=1`. Without it (plain
//! `make test`) each test says it was skipped and passes: there is no
//! cluster to test against.
//!
//! The controller runs on this host with `--backend kubernetes`, its
//! remote transport listening on the testbed's host address with TLS
//! (`--remote-tls auto`); pods reach it there and nowhere else. The conformance subset is
//! [`crate::subset`], the one Docker's remote transport passes too. The
//! node-loss test kills a node, so `scripts/test-k8s.sh` runs it last and
//! alone.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::OnceCell;

use crate::common::{self, eventually, Server};
use crate::subset;

const TESTBED: &str = "scripts/k8s-testbed.sh";

/// The cluster, when `LAMBDABOX_K8S=1`: lambdabox-init's image is built and
/// loaded into both nodes once.
async fn cluster() -> Option<&'static str> {
    static INIT_IMAGE: OnceCell<String> = OnceCell::const_new();
    if std::env::var("LAMBDABOX_K8S").as_deref() != Ok("1") {
        eprintln!("skipped: no cluster (make test-k8s runs this with LAMBDABOX_K8S=1)");
        return None;
    }
    let tag = INIT_IMAGE
        .get_or_init(|| async {
            let docker = lambdabox::backend::docker::DockerBackend::connect().await.expect("Docker");
            let images = lambdabox::images::Images::new(Some(docker));
            let tag = images.ensure_init(&common::init_bin()).await.expect("lambdabox-init's image");
            let status = Command::new(TESTBED).args(["load", &tag]).status().expect("the testbed script runs");
            assert!(status.success(), "loading {tag} into the nodes");
            tag
        })
        .await;
    Some(tag.as_str())
}

fn controller_addr() -> String {
    std::env::var("LBXK_CONTROLLER_ADDR").expect("LBXK_CONTROLLER_ADDR (k8s-testbed.sh env)")
}

/// A controller on the cluster, over TLS, with extra `serve` flags; `None`
/// (the test is skipped) without a cluster.
async fn k8s_server(extra: &[&str]) -> Option<Server> {
    cluster().await?;
    let listen = format!("{}:0", controller_addr());
    let mut flags = vec!["--backend", "kubernetes", "--remote-listen", &listen, "--kube-pull-policy", "Never"];
    flags.extend(["--remote-tls", "auto"]);
    flags.extend_from_slice(extra);
    Some(Server::start_with(&flags))
}

fn kubectl(args: &[&str]) -> String {
    let bin = std::env::var("LBXK_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(bin).args(args).output().expect("kubectl runs");
    assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The node pod `name` runs on.
fn node_of(pod: &str) -> String {
    kubectl(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"])
}

#[tokio::test]
async fn echo_logs_errors_and_crash_on_kubernetes() {
    let Some(server) = k8s_server(&[]).await else { return };
    subset::echo_logs_errors_and_crash(&server).await;
}

#[tokio::test]
async fn timeout_and_oom_on_kubernetes() {
    let Some(server) = k8s_server(&[]).await else { return };
    subset::timeout_and_oom(&server).await;
}

#[tokio::test]
async fn eight_concurrent_invocations_spread_over_both_nodes() {
    let Some(server) = k8s_server(&[]).await else { return };
    let pods = subset::eight_concurrent(&server).await;
    let mut nodes: Vec<String> = pods.iter().map(|p| node_of(p)).collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 2, "pods on both nodes: {nodes:?}");
}

#[tokio::test]
async fn prewarmed_pods_are_specialized() {
    let Some(server) = k8s_server(&["--prewarm", "1"]).await else { return };
    subset::prewarm_specializes(&server).await;
}

#[tokio::test]
async fn updates_retire_old_pods() {
    let Some(server) = k8s_server(&[]).await else { return };
    subset::update_retires(&server).await;
}

/// The pod is confined as a Docker container is, and the function can
/// neither write its code nor see the transport's token; the controller's
/// shutdown removes its pods.
#[tokio::test]
async fn pods_are_sandboxed_and_removed_at_shutdown() {
    let Some(mut server) = k8s_server(&[]).await else { return };
    let probe = r#"
import os
def handler(event, context):
    out = {"env": sorted(k for k in os.environ if k.startswith("LAMBDABOX")), "uid": os.getuid()}
    for path in ["/var/task/new.py", "/opt/new", "/lambdabox/new", "/new"]:
        try:
            open(path, "w")
            out[path] = "writable"
        except OSError as e:
            out[path] = type(e).__name__
    open("/tmp/ok", "w").write("x")
    return out
"#;
    server.deploy_files("probe", "app.handler", &[("app.py", probe)], json!({})).await;
    let (status, _, out) = server.invoke("probe", "{}").await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["env"], json!([]), "{out}");
    assert_eq!(out["uid"], 993, "{out}");
    for path in ["/var/task/new.py", "/opt/new", "/lambdabox/new", "/new"] {
        assert_ne!(out[path], "writable", "{path}: {out}");
    }
    let pod = subset::container_ids(&server, "probe").await.pop().expect("a pod");
    let spec: serde_json::Value = serde_json::from_str(&kubectl(&["get", "pod", &pod, "-o", "json"])).unwrap();
    let function = &spec["spec"]["containers"][0];
    assert_eq!(function["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(function["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(function["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(function["resources"]["limits"]["memory"], "128Mi");
    assert_eq!(spec["spec"]["automountServiceAccountToken"], false);
    for container in [function, &spec["spec"]["initContainers"][0]] {
        let names: Vec<&str> = container["env"].as_array().unwrap().iter().filter_map(|e| e["name"].as_str()).collect();
        assert!(names.contains(&"LAMBDABOX_CONTROLLER_CA"), "told what to trust: {names:?}");
    }
    server.stop();
    let home = format!("lambdabox.home={}", server.home());
    let left = || async { kubectl(&["get", "pods", "-l", &home, "-o", "name"]).trim().is_empty() };
    assert!(eventually(Duration::from_secs(30), left).await, "the controller removed its pods");
}

/// Pods sent to a controller whose certificate they were not told to
/// trust (an impostor at the advertised address) never start, and the
/// caller learns why from the init container's words.
#[tokio::test]
async fn pods_refuse_a_controller_they_do_not_trust() {
    if cluster().await.is_none() {
        return;
    }
    let impostor = crate::remote::Impostor::start(&controller_addr()).await;
    let server = k8s_server(&["--remote-advertise", &impostor.address]).await.expect("the cluster");
    server.deploy("trusting", "app.echo", json!({})).await;
    let (status, _, doc) = server.invoke("trusting", "{}").await;
    assert!(status >= 400, "{status} {doc}");
    let text = doc.to_string();
    assert!(text.contains("TLS handshake with the controller") && text.contains("invalid peer certificate"), "{doc}");
    assert!(impostor.dialled.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

/// A node lost mid-invocation (its kubelet, dockerd and containers killed):
/// the caller gets an error well within the function's timeout, and the
/// next call is served on the other node. Kills a node: run alone, last.
#[tokio::test]
async fn node_loss() {
    let Some(server) = k8s_server(&[]).await else { return };
    server.deploy("victim", "app.sleep", json!({"Timeout": 120})).await;
    assert_eq!(server.invoke("victim", r#"{"seconds":0}"#).await.2, json!("woke"));
    let pod = subset::container_ids(&server, "victim").await.pop().expect("a pod");
    let node = node_of(&pod);
    let n = node.strip_prefix("lbxk-n").expect("a testbed node").to_owned();
    let call = server.invoke("victim", r#"{"seconds":100}"#);
    let kill = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = Command::new(TESTBED).args(["kill-node", &n]).status().expect("the testbed script runs");
        assert!(status.success(), "kill-node {n}");
    };
    let started = Instant::now();
    let ((status, headers, doc), ()) = tokio::join!(call, kill);
    let took = started.elapsed();
    assert_eq!(status, 200, "{doc}");
    assert_eq!(headers["x-amz-function-error"].to_str().unwrap(), "Unhandled", "{doc}");
    assert!(took < Duration::from_secs(60), "the caller heard within {took:?}, not at the 100 s the handler sleeps");
    let (status, _, body) = server.invoke("victim", r#"{"seconds":0}"#).await;
    assert_eq!((status, body), (200, json!("woke")), "the next call is served");
    let now = subset::container_ids(&server, "victim").await;
    assert!(now.iter().all(|p| node_of(p) != node), "served on the other node: {now:?}");
}

/// A container-image function: the user's image, with lambdabox-init
/// copied in by the init container (the image has none).
#[tokio::test]
async fn container_image_functions_run_with_init_copied_in() {
    if cluster().await.is_none() {
        return;
    }
    let tag = "lambdabox-test/k8s-image:1";
    let app = "def handler(event, context):\n    return {'from': 'image', 'event': event}\n";
    common::python_image(tag, &[("/var/task/app.py", app.as_bytes())], "app.handler").await;
    let status = Command::new(TESTBED).args(["load", tag]).status().expect("the testbed script runs");
    assert!(status.success(), "loading {tag} into the nodes");
    let server = k8s_server(&[]).await.expect("the cluster");
    let body = json!({
        "FunctionName": "img", "PackageType": "Image", "Role": "arn:aws:iam::000000000000:role/test",
        "Code": {"ImageUri": tag},
    });
    let resp = server.post("/2015-03-31/functions").json(&body).send().await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let (status, _, out) = server.invoke("img", r#"{"n":1}"#).await;
    assert_eq!((status, out), (200, json!({"from": "image", "event": {"n": 1}})));
}
