//! Hostile functions and hostile local users, tried against a live
//! controller: what they attempt must be refused or contained, and everyone
//! else must keep working.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{containers, eventually, Server};
use serde_json::{json, Value};

/// A function that attacks its own container's plumbing. Each probe
/// returns "allowed" or the errno name it got.
const HOSTILE_PY: &str = r#"
import ctypes, errno, os, socket, time

libc = ctypes.CDLL(None, use_errno=True)
KEPT = []

def attempt(fn):
    try:
        fn()
        return "allowed"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def checked(rc):
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc

def connect_control():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/lambdabox/rt/control.sock")

def write_pid1_stdout():
    with open("/proc/1/fd/1", "wb") as f:
        f.write(b"x" * 65536)

def steal_pid1_fd():
    pidfd = checked(libc.syscall(434, 1, 0))  # pidfd_open
    checked(libc.syscall(438, pidfd, 3, 0))   # pidfd_getfd

def capabilities():
    for line in open("/proc/self/status"):
        if line.startswith("CapEff:"):
            return line.split()[1]

def reach_the_controller(event, context):
    return {
        "uid": os.getuid(),
        "capabilities": capabilities(),
        "list_control_dir": attempt(lambda: os.listdir("/lambdabox/rt")),
        "connect_control": attempt(connect_control),
        "write_pid1_stdout": attempt(write_pid1_stdout),
        "read_pid1_environ": attempt(lambda: open("/proc/1/environ", "rb").read()),
        "signal_pid1": attempt(lambda: os.kill(1, 0)),
        "ptrace_pid1": attempt(lambda: checked(libc.ptrace(16, 1, None, None))),
        "steal_pid1_fd": attempt(steal_pid1_fd),
        "become_root": attempt(lambda: os.setuid(0)),
    }

def flood(event, context):
    for _ in range(event["connections"]):
        try:
            KEPT.append(socket.create_connection(("127.0.0.1", 9001), timeout=2))
        except OSError:
            break
    time.sleep(1)
    return len(KEPT)

def bogus_answers(event, context):
    # Headers announcing a body just under 6 MB, for request ids that do not
    # exist: the answer must come before any byte of the body is sent.
    lines = []
    for i in range(event["connections"]):
        s = socket.create_connection(("127.0.0.1", 9001), timeout=5)
        s.sendall(b"POST /2018-06-01/runtime/invocation/bogus-%d/response HTTP/1.1\r\n"
                  b"Host: x\r\nContent-Length: 6291455\r\n\r\n" % i)
        try:
            lines.append(s.recv(4096).split(b"\r\n")[0].decode())
        except OSError as e:
            lines.append("no answer: %s" % e)
        s.close()
    return lines
"#;

async fn hostile(server: &Server, name: &str) {
    server.deploy_files(name, "hostile.reach_the_controller", &[("hostile.py", HOSTILE_PY)], json!({})).await;
}

async fn call(server: &Server, name: &str, handler_event: Value) -> Value {
    let (status, headers, body) = server.invoke(name, &handler_event.to_string()).await;
    assert_eq!(status, 200);
    assert!(headers.get("x-amz-function-error").is_none(), "{body}");
    body
}

#[tokio::test]
async fn a_function_cannot_reach_init_or_the_controllers_socket() {
    let server = Server::start();
    hostile(&server, "hostile").await;
    let seen = call(&server, "hostile", json!({})).await;
    assert_eq!(seen["uid"], 993, "{seen}");
    assert_eq!(seen["capabilities"], "0000000000000000", "the function holds no capability: {seen}");
    for probe in [
        "list_control_dir",
        "connect_control",
        "write_pid1_stdout",
        "read_pid1_environ",
        "signal_pid1",
        "ptrace_pid1",
        "steal_pid1_fd",
        "become_root",
    ] {
        assert_ne!(seen[probe], "allowed", "{probe} must be refused: {seen}");
    }
    let (status, _, body) = server.invoke("hostile", "{}").await;
    assert_eq!(status, 200, "the container keeps serving: {body}");
}

/// Descriptors the controller process holds.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn runtime_api_connections_are_bounded_per_container() {
    let server = Server::start();
    server.deploy_files("flood", "hostile.flood", &[("hostile.py", HOSTILE_PY)], json!({"Timeout": 60})).await;
    server.deploy("bystander", "app.echo", json!({})).await;
    call(&server, "bystander", json!({"warm": true})).await;
    let before = open_fds(server.pid());
    let opened = call(&server, "flood", json!({"connections": 900})).await;
    assert!(opened.as_u64().unwrap() > 100, "the function opened its connections: {opened}");
    let after = open_fds(server.pid());
    // One new container costs the controller a few descriptors (its log
    // pipe, its control connection, a handful of Runtime API connections).
    assert!(after < before + 32, "the controller went from {before} to {after} descriptors");
    assert_eq!(call(&server, "bystander", json!({"i": 1})).await, json!({"i": 1}), "other functions still work");
    let (status, _, _) = server.invoke("flood", r#"{"connections": 0}"#).await;
    assert_eq!(status, 200, "the flooding container still serves");
}

#[tokio::test]
async fn runtime_api_bodies_for_unknown_invocations_are_refused_before_they_are_read() {
    let server = Server::start();
    server.deploy_files("bogus", "hostile.bogus_answers", &[("hostile.py", HOSTILE_PY)], json!({})).await;
    let lines = call(&server, "bogus", json!({"connections": 6})).await;
    for line in lines.as_array().unwrap() {
        assert_eq!(line, "HTTP/1.1 400 Bad Request", "{lines}");
    }
}

/// A `provided` bootstrap that spins and never asks for an event.
const SPINNER: &str = "#!/bin/sh\nwhile :; do :; done\n";

#[tokio::test]
async fn a_bootstrap_that_never_polls_is_capped_and_removed() {
    common::ensure_runtime_image("provided.al2023");
    // Lambda's hard caps: init runs uncapped until the burst is over.
    let server = Server::start_with(&["--cpu-limit", "strict"]);
    let extra = json!({"Runtime": "provided.al2023", "MemorySize": 128, "Publish": true});
    server.deploy_files("spinner", "spin", &[("bootstrap", SPINNER)], extra).await;
    let body = json!({"ProvisionedConcurrentExecutions": 1}).to_string().into_bytes();
    let path = "/2019-09-30/functions/spinner/provisioned-concurrency?Qualifier=1";
    let (status, _, answer) = server.api(reqwest::Method::PUT, path, body).await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    let docker = common::docker().await;
    let home = server.home();
    let started =
        eventually(Duration::from_secs(20), || async { !containers(&home, Some("spinner")).await.is_empty() }).await;
    assert!(started, "the provisioned container started");
    let first = containers(&home, Some("spinner")).await.remove(0);
    let capped = eventually(Duration::from_secs(10), || async {
        let host = docker.inspect_container(&first, None).await.map(|i| i.host_config.unwrap_or_default());
        // 1 ms every 13.8 ms: 128/1,769 of a CPU on the shortest period that holds it.
        host.is_ok_and(|h| (h.cpu_period, h.cpu_quota) == (Some(13821), Some(1000)))
    })
    .await;
    assert!(capped, "a spinning init is capped once its burst is over");
    let removed =
        eventually(Duration::from_secs(30), || async { !containers(&home, Some("spinner")).await.contains(&first) })
            .await;
    assert!(removed, "a runtime that never polls is removed after the init deadline");

    let (status, headers, doc) = server.invoke("spinner", "{}").await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-amz-function-error"], "Unhandled");
    assert_eq!(doc["errorType"], "Runtime.InitError", "{doc}");
}

#[tokio::test]
async fn docker_keeps_little_of_a_containers_own_output() {
    let server = Server::start();
    server.deploy("quiet", "app.echo", json!({})).await;
    call(&server, "quiet", json!({})).await;
    let id = containers(&server.home(), Some("quiet")).await.remove(0);
    let docker = common::docker().await;
    let log = docker.inspect_container(&id, None).await.unwrap().host_config.unwrap().log_config.unwrap();
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    let config = log.config.unwrap_or_default();
    assert_eq!(config.get("max-size").map(String::as_str), Some("1m"), "{config:?}");
    assert_eq!(config.get("max-file").map(String::as_str), Some("1"), "{config:?}");
}

const VOLUME_PY: &str = r#"
import os

def handler(event, context):
    try:
        with open("/data/filler", "wb") as f:
            f.write(b"x" * 1024)
        return "written"
    except OSError as e:
        return e.strerror
"#;

#[tokio::test]
async fn an_images_volumes_are_not_writable() {
    common::ensure_runtime_image("python3.11");
    let tag = "lambdabox-test/volume:latest";
    let dockerfile = "FROM lambdabox/python3.11:latest\nCOPY app.py /app/app.py\nVOLUME /data\nENV PYTHONPATH=/app\n\
                      ENTRYPOINT [\"/usr/bin/python3\", \"-m\", \"awslambdaric\"]\nCMD [\"app.handler\"]\n";
    common::build_image(tag, &[("Dockerfile", dockerfile.as_bytes()), ("app.py", VOLUME_PY.as_bytes())]).await;
    let server = Server::start();
    let body = json!({
        "FunctionName": "volumes", "PackageType": "Image", "Code": {"ImageUri": tag},
        "Role": "arn:aws:iam::000000000000:role/test",
    });
    let (status, _, answer) =
        server.api(reqwest::Method::POST, "/2015-03-31/functions", body.to_string().into_bytes()).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
    let (status, _, said) = server.invoke("volumes", "{}").await;
    assert_eq!(status, 200);
    assert_ne!(said, "written", "the image's VOLUME must not give the function a writable disk");
    let id = containers(&server.home(), Some("volumes")).await.remove(0);
    let docker = common::docker().await;
    let mounts = docker.inspect_container(&id, None).await.unwrap().mounts.unwrap_or_default();
    assert!(mounts.iter().all(|m| m.typ.as_deref() != Some("volume")), "no anonymous volume was created: {mounts:?}");
    drop(server);
    common::remove_image(tag).await;
}

/// Run `sh -c script` as uid/gid 65534 (nobody); true if it succeeded.
fn as_nobody(script: &str) -> bool {
    Command::new("/bin/sh")
        .args(["-c", script])
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("sh runs")
        .success()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

#[tokio::test]
async fn other_local_users_cannot_read_or_reach_anything() {
    let server = Server::start_with(&["--prewarm", "1"]);
    server.deploy("secretive", "app.environment", json!({"Environment": {"Variables": {"TOKEN": "s3cr3t"}}})).await;
    call(&server, "secretive", json!({"keys": ["TOKEN"]})).await;
    let data = server.data_dir.clone();
    assert_eq!(mode(&data), 0o700, "the data directory is private");
    assert_eq!(mode(&data.join("lambdabox.db")), 0o600);
    assert_eq!(mode(&data.join("logs/secretive.log")), 0o600);
    assert_eq!(mode(&data.join("run")), 0o700);
    // The data directory is under a private temp folder: open the way to it
    // for the attacker, as a careless parent folder would.
    for ancestor in data.ancestors().skip(1) {
        let full = std::fs::metadata(ancestor).unwrap().mode() & 0o7777;
        if full & 0o005 != 0o005 {
            std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(full | 0o055)).unwrap();
        }
    }
    let d = data.display();
    assert!(!as_nobody(&format!("ls {d}")), "cannot list the data directory");
    assert!(!as_nobody(&format!("cat {d}/lambdabox.db")), "cannot read function environments");
    assert!(!as_nobody(&format!("cat {d}/logs/secretive.log")), "cannot read logs");
    // Every container's control folder is private, and its socket is gone
    // once init connected (a prewarmed container's init is waiting on it).
    let run = data.join("run");
    let folders = || -> Vec<PathBuf> {
        let entries = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().path());
        entries.filter(|p| p.extension().is_none()).collect()
    };
    // The prewarmed replacement is started in the background after the
    // function's container took the first one: on a loaded box it may lag.
    let both = eventually(Duration::from_secs(30), || async { folders().len() >= 2 }).await;
    assert!(both, "a function container and a prewarmed one: {:?}", folders());
    for folder in folders() {
        assert_eq!(mode(&folder), 0o700, "{}", folder.display());
    }
    // The replacement prewarmed container may still be starting; its
    // socket goes as soon as its init connects.
    let empty = |f: &PathBuf| std::fs::read_dir(f).map(|mut d| d.next().is_none()).unwrap_or(true);
    let closed = eventually(Duration::from_secs(30), || async { folders().iter().all(empty) }).await;
    assert!(closed, "no socket left to connect to: {:?}", folders());
}

#[tokio::test]
async fn a_long_data_dir_never_adopts_a_predictable_shared_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("a-data-directory-whose-path-is-too-long-for-unix-socket-paths-under-it");
    std::fs::create_dir_all(&data).unwrap();
    // What an attacker would plant where older builds put the sockets.
    let planted = std::env::temp_dir().join(format!("lambdabox-{}", lambdabox::server::home_id(&data)));
    std::fs::create_dir_all(&planted).unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = Server::start_in(&data);
    server.deploy("long", "app.echo", json!({})).await;
    call(&server, "long", json!({})).await;
    let id = containers(&server.home(), Some("long")).await.remove(0);
    let docker = common::docker().await;
    let mounts = docker.inspect_container(&id, None).await.unwrap().mounts.unwrap_or_default();
    let control = mounts.iter().find(|m| m.destination.as_deref() == Some("/lambdabox/rt")).unwrap();
    let source = PathBuf::from(control.source.clone().unwrap());
    assert!(!source.starts_with(&planted), "the planted folder was adopted: {}", source.display());
    let run = source.parent().unwrap();
    assert_eq!(mode(run), 0o700, "{}", run.display());
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    assert_eq!(std::fs::metadata(run).unwrap().uid(), me, "{}", run.display());
    assert!(std::fs::read_dir(&planted).unwrap().next().is_none(), "nothing was put in the planted folder");
    drop(server);
    let _ = std::fs::remove_dir_all(&planted);
}
