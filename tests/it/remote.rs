//! The remote transport through real containers, without Kubernetes:
//! `--transport remote` on Docker gives containers no control folder and
//! no code bind mounts; init dials the controller's unix socket (mounted
//! alone), fetches the code into tmpfs folders and relays everything over
//! that one connection. The conformance subset ([`crate::subset`]) is the
//! one the Kubernetes backend passes ([`crate::k8s`]).

use crate::common;
use crate::subset;

use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, KillContainerOptionsBuilder};
use common::{containers, Server};
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
    subset::echo_logs_errors_and_crash(&server).await;
    let mounted = mounts(&server.home(), "echo").await;
    let targets: Vec<&str> = mounted.iter().map(|(t, _)| t.as_str()).collect();
    assert!(!targets.contains(&"/lambdabox/rt"), "no control folder: {mounted:?}");
    assert!(targets.contains(&"/lambdabox/controller.sock"), "{mounted:?}");
    assert!(
        mounted.contains(&("/var/task".to_owned(), "tmpfs".to_owned())),
        "code is fetched, not mounted: {mounted:?}"
    );
}

/// The gateway address of Docker's default bridge: the host as its
/// containers see it (traffic on it stays on this machine). A daemon that
/// has just created the bridge may not list it; Docker then uses the
/// subnet's first address.
async fn bridge_gateway() -> String {
    let bridge = common::docker().await.inspect_network("bridge", None).await.unwrap();
    let configs = bridge.ipam.and_then(|i| i.config).unwrap_or_default();
    let first_of = |subnet: &str| {
        let network: std::net::Ipv4Addr = subnet.split('/').next()?.parse().ok()?;
        Some(std::net::Ipv4Addr::from(u32::from(network) + 1).to_string())
    };
    let gateway = configs.iter().find_map(|c| c.gateway.clone());
    gateway.or_else(|| configs.iter().find_map(|c| first_of(c.subnet.as_deref()?))).expect("the bridge has a subnet")
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

/// The same over TLS with a generated certificate: containers are told
/// what to trust, and the function never sees it.
#[tokio::test]
async fn the_transport_also_runs_over_tls() {
    let listen = format!("{}:0", bridge_gateway().await);
    let server = remote_server(&["--remote-listen", &listen, "--network", "bridge", "--remote-tls", "auto"]);
    subset::echo_logs_errors_and_crash(&server).await;
    let kept = server.data_dir.join("remote-tls");
    assert!(kept.join("cert.pem").exists() && kept.join("key.pem").exists(), "kept in the data directory");
    let id = containers(&server.home(), Some("echo")).await.pop().expect("a container");
    let info = common::docker().await.inspect_container(&id, None::<InspectContainerOptions>).await.unwrap();
    let env = info.config.and_then(|c| c.env).unwrap_or_default();
    assert!(env.iter().any(|v| v.starts_with("LAMBDABOX_CONTROLLER_CA=-----BEGIN CERTIFICATE-----")), "{env:?}");
    server.deploy("tls-env", "app.environment", json!({})).await;
    let keys = json!({"keys": ["LAMBDABOX_CONTROLLER_CA", "LAMBDABOX_CONTROLLER", "LAMBDABOX_TOKEN"]});
    let (_, _, seen) = server.invoke("tls-env", &keys.to_string()).await;
    assert_eq!(
        seen,
        json!({"LAMBDABOX_CONTROLLER_CA": null, "LAMBDABOX_CONTROLLER": null, "LAMBDABOX_TOKEN": null}),
        "the function sees no transport variable"
    );
}

/// Containers check whom they dial: sent to a TLS server with another
/// certificate for the same address, init refuses it and says why, and
/// the invocation fails instead of talking to an impostor.
#[tokio::test]
async fn a_controller_with_a_certificate_containers_do_not_trust_is_refused() {
    let gateway = bridge_gateway().await;
    let impostor = Impostor::start(&gateway).await;
    let listen = format!("{gateway}:0");
    let server = remote_server(&[
        "--remote-listen",
        &listen,
        "--remote-advertise",
        &impostor.address,
        "--network",
        "bridge",
        "--remote-tls",
        "auto",
    ]);
    server.deploy("trusting", "app.echo", json!({})).await;
    let (status, headers, doc) = server.invoke("trusting", "{}").await;
    assert!(status >= 400 || headers.contains_key("x-amz-function-error"), "{status} {doc}");
    assert_eq!(doc["errorType"], "Runtime.ExitError", "init gave up: {doc}");
    assert!(impostor.dialled.load(std::sync::atomic::Ordering::SeqCst) > 0, "init did dial the impostor");
}

/// What init says when the controller's certificate is not the one it
/// was told to trust (a Kubernetes pod's status message carries it):
/// `lambdabox-init fetch`, run here as the init container runs it.
#[tokio::test]
async fn init_names_the_certificate_problem() {
    use lambdabox::remote::tls::{ServerTls, TlsSource};
    let impostor = Impostor::start("127.0.0.1").await;
    let dir = tempfile::tempdir().unwrap();
    let trusted = ServerTls::load(&TlsSource::Auto { dir: dir.path().to_owned() }, "127.0.0.1").unwrap();
    let task = format!("{}={}", dir.path().join("task").display(), "0".repeat(64));
    let run = |controller: String, ca: String, what: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(common::init_bin())
                .arg("fetch")
                .arg(what)
                .env("LAMBDABOX_CONTROLLER", controller)
                .env("LAMBDABOX_CONTROLLER_CA", ca)
                .env("LAMBDABOX_CONTAINER_ID", "c1")
                .env("LAMBDABOX_TOKEN", "t")
                .output()
                .unwrap()
        })
    };
    // With code to fetch, and without (a generic pod's init container
    // still meets the controller).
    let empty = dir.path().join("empty").display().to_string();
    for what in [task.clone(), empty] {
        let out = run(impostor.address.clone(), trusted.trust.clone(), what).await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("TLS handshake with the controller 127.0.0.1"), "{stderr}");
        assert!(stderr.contains("invalid peer certificate: UnknownIssuer"), "{stderr}");
    }
    // Garbage for a CA is refused before any dial.
    let out = run(impostor.address.clone(), "not a certificate".into(), task).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("LAMBDABOX_CONTROLLER_CA: no certificate in it"), "{stderr}");
}

/// A TLS server for `host` with a certificate of its own.
pub(crate) struct Impostor {
    pub(crate) address: String,
    pub(crate) dialled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Impostor {
    pub(crate) async fn start(host: &str) -> Impostor {
        use lambdabox::remote::tls::{ServerTls, TlsSource};
        let dir = tempfile::tempdir().unwrap();
        let tls = ServerTls::load(&TlsSource::Auto { dir: dir.path().to_owned() }, host).unwrap();
        let listener = tokio::net::TcpListener::bind(format!("{host}:0")).await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let dialled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = dialled.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let acceptor = tls.acceptor.clone();
                tokio::spawn(async move { acceptor.accept(tcp).await });
            }
        });
        Impostor { address, dialled, _dir: dir }
    }
}

#[tokio::test]
async fn timeouts_and_oom_over_the_remote_transport() {
    subset::timeout_and_oom(&remote_server(&[])).await;
}

#[tokio::test]
async fn concurrent_invocations_over_the_remote_transport() {
    let server = remote_server(&[]);
    let ids = subset::eight_concurrent(&server).await;
    assert_eq!(containers(&server.home(), Some("conc")).await.len(), ids.len());
}

#[tokio::test]
async fn prewarmed_containers_fetch_their_code_when_specialized() {
    subset::prewarm_specializes(&remote_server(&["--prewarm", "1"])).await;
}

#[tokio::test]
async fn updates_retire_old_containers_over_the_remote_transport() {
    subset::update_retires(&remote_server(&[])).await;
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

/// TLS settings that cannot work stop `serve` at once with one clear line
/// and status 64: flags that do not go together, and certificates that are
/// unreadable, not PEM, or not valid for the host containers dial.
#[tokio::test]
async fn tls_settings_that_cannot_work_stop_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).display().to_string();
    let cert = rcgen::generate_simple_self_signed(vec!["controller.example".to_owned()]).unwrap();
    std::fs::write(path("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(path("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(path("garbage.pem"), "not PEM\n").unwrap();
    let tcp = ["--remote-listen", "127.0.0.1:0"];
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--remote-tls".into(), "auto".into()], "needs a TCP --remote-listen"),
        (
            vec!["--remote-listen".into(), "unix:/tmp/lbx-x.sock".into(), "--remote-tls".into(), "auto".into()],
            "needs a TCP",
        ),
        (vec!["--remote-tls-cert".into(), path("cert.pem")], "--remote-tls-cert needs --remote-tls-key"),
        (
            vec!["--remote-tls-cert".into(), path("garbage.pem"), "--remote-tls-key".into(), path("key.pem")],
            "garbage.pem: no PEM certificate",
        ),
        (
            vec!["--remote-tls-cert".into(), path("missing.pem"), "--remote-tls-key".into(), path("key.pem")],
            "missing.pem: No such file",
        ),
        (
            vec!["--remote-tls-cert".into(), path("cert.pem"), "--remote-tls-key".into(), path("key.pem")],
            "not valid for 127.0.0.1",
        ),
    ];
    for (flags, expected) in cases {
        let mut args: Vec<String> =
            ["serve", "--listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0"].map(String::from).into();
        if flags.iter().any(|f| f.starts_with("--remote-tls-")) {
            args.extend(tcp.map(String::from));
        }
        args.extend(flags.clone());
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lambdabox"))
            .args(&args)
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .arg("--init-bin")
            .arg(common::init_bin())
            .env("LAMBDABOX_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{flags:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}
