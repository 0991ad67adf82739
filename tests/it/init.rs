//! lambdabox-init as PID 1 of a real container: exit status, signal
//! forwarding, zombie reaping, the environment it gives the bootstrap.

use crate::common;

use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    KillContainerOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

/// Start a container whose PID 1 is lambdabox-init running `script` under sh.
async fn start(docker: &Docker, script: Option<&str>) -> String {
    start_as(docker, script, None).await
}

/// Like [`start`]; with `sandbox_user`, in the shape lambdabox gives every
/// function container: init as root with only the capabilities it needs to
/// start the bootstrap as that user, no new privileges.
async fn start_as(docker: &Docker, script: Option<&str>, sandbox_user: Option<&str>) -> String {
    common::ensure_images();
    let mut entrypoint = vec!["/lambdabox/init".to_owned()];
    if let Some(s) = script {
        entrypoint.extend(["/bin/sh".to_owned(), "-c".to_owned(), s.to_owned()]);
    }
    let body = ContainerCreateBody {
        image: Some("lambdabox/base:bookworm".into()),
        entrypoint: Some(entrypoint),
        cmd: Some(vec![]),
        labels: Some([("lambdabox.test".to_string(), "init".to_string())].into()),
        env: sandbox_user.map(|u| vec![format!("LAMBDABOX_SANDBOX_USER={u}")]),
        user: sandbox_user.map(|_| "0:0".to_owned()),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/lambdabox/init:ro", common::init_bin().display())]),
            network_mode: Some("none".into()),
            cap_drop: sandbox_user.map(|_| vec!["ALL".to_owned()]),
            cap_add: sandbox_user.map(|_| vec!["SETUID".to_owned(), "SETGID".to_owned(), "KILL".to_owned()]),
            security_opt: sandbox_user.map(|_| vec!["no-new-privileges".to_owned()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.unwrap().id;
    docker.start_container(&id, None).await.unwrap();
    id
}

/// Wait for the container to stop; returns its exit code and removes it.
async fn exit_code(docker: &Docker, id: &str) -> i64 {
    let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let waited = tokio::time::timeout(Duration::from_secs(20), docker.wait_container(id, Some(options)).next()).await;
    let code = match waited.expect("container stops").unwrap() {
        Ok(r) => r.status_code,
        Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => code,
        Err(e) => panic!("wait: {e}"),
    };
    let _ = docker.remove_container(id, Some(RemoveContainerOptionsBuilder::default().force(true).build())).await;
    code
}

#[tokio::test]
async fn exits_with_the_bootstraps_status() {
    let docker = common::docker().await;
    let id = start(&docker, Some("exit 42")).await;
    assert_eq!(exit_code(&docker, &id).await, 42);
}

#[tokio::test]
async fn forwards_sigterm_to_the_bootstrap() {
    let docker = common::docker().await;
    let id = start(&docker, Some("trap 'exit 7' TERM; while true; do sleep 0.1; done")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    docker.kill_container(&id, Some(KillContainerOptionsBuilder::default().signal("SIGTERM").build())).await.unwrap();
    assert_eq!(exit_code(&docker, &id).await, 7, "the bootstrap saw SIGTERM and chose its status");
}

#[tokio::test]
async fn gives_the_bootstrap_the_runtime_api_address() {
    let docker = common::docker().await;
    let script =
        r#"test "$AWS_LAMBDA_RUNTIME_API" = 127.0.0.1:9001 && test -z "$LAMBDABOX_CONTROL_SOCKET" && exit 5; exit 1"#;
    let id = start(&docker, Some(script)).await;
    assert_eq!(exit_code(&docker, &id).await, 5);
}

#[tokio::test]
async fn reaps_orphaned_zombies() {
    let docker = common::docker().await;
    // Orphans re-parented to PID 1 must not stay zombies.
    let script = r#"(sleep 0.2 &); (sleep 0.2 &); (sleep 0.2 &); sleep 1.5
        for s in /proc/[0-9]*/status; do grep -q '^State:.*Z' "$s" 2>/dev/null && exit 9; done; exit 0"#;
    let id = start(&docker, Some(script)).await;
    assert_eq!(exit_code(&docker, &id).await, 0, "a zombie was left unreaped");
}

#[tokio::test]
async fn without_a_bootstrap_exits_127() {
    let docker = common::docker().await;
    let id = start(&docker, None).await;
    assert_eq!(exit_code(&docker, &id).await, 127);
}

#[tokio::test]
async fn runs_the_bootstrap_as_the_sandbox_user_without_capabilities() {
    let docker = common::docker().await;
    // Exit 7 proves init could still forward SIGTERM to another user's process.
    let script = r#"test "$(id -u):$(id -g)" = 993:994 || exit 9
        grep -q '^CapEff:[[:space:]]*0000000000000000$' /proc/self/status || exit 8
        grep -q '^CapPrm:[[:space:]]*0000000000000000$' /proc/self/status || exit 8
        test -z "$(id -G | tr -d ' 0123456789')" && ! id -G | grep -qw 0 || exit 6
        kill -0 1 2>/dev/null && exit 5
        trap 'exit 7' TERM; while true; do sleep 0.1; done"#;
    let id = start_as(&docker, Some(script), Some("993:994")).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    docker.kill_container(&id, Some(KillContainerOptionsBuilder::default().signal("SIGTERM").build())).await.unwrap();
    assert_eq!(exit_code(&docker, &id).await, 7);
}

#[tokio::test]
async fn refuses_to_start_the_bootstrap_as_root_when_it_cannot_switch() {
    let docker = common::docker().await;
    // Without CAP_SETUID the switch fails: the bootstrap must not run at all.
    let body = ContainerCreateBody {
        image: Some("lambdabox/base:bookworm".into()),
        entrypoint: Some(vec!["/lambdabox/init".into(), "/bin/sh".into(), "-c".into(), "exit 0".into()]),
        cmd: Some(vec![]),
        user: Some("1000:1000".into()),
        env: Some(vec!["LAMBDABOX_SANDBOX_USER=993:993".into()]),
        labels: Some([("lambdabox.test".to_string(), "init".to_string())].into()),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{}:/lambdabox/init:ro", common::init_bin().display())]),
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker.create_container(None, body).await.unwrap().id;
    docker.start_container(&id, None).await.unwrap();
    assert_ne!(exit_code(&docker, &id).await, 0, "the bootstrap ran without the user switch");
}
