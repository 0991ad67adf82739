//! A controller in the background, as a Makefile or CI job drives it:
//! `serve --detach` returns once it is healthy (or fails with why),
//! `wait` polls its health, `down` stops it, with exit codes a target can use.

use std::path::Path;
use std::process::{Command, Output};

use crate::common;

/// `lambdabox ARGS` with this data directory and endpoint.
fn lambdabox(data: &Path, endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lambdabox"))
        .args(args)
        .env("LAMBDABOX_DATA_DIR", data)
        .env("LAMBDABOX_ENDPOINT", endpoint)
        .env_remove("LAMBDABOX_ACCESS_KEY_ID")
        .env_remove("LAMBDABOX_SECRET_ACCESS_KEY")
        .output()
        .expect("lambdabox runs")
}

/// A loopback port nothing listens on (free when asked; tests run side by side).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn detach_wait_and_down_drive_a_background_controller() {
    common::ensure_images();
    let data = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let endpoint = format!("http://{listen}");
    let init = common::init_bin();
    let init = init.to_str().unwrap();
    let serve = ["serve", "--detach", "--listen", &listen, "--url-listen", "off", "--prewarm", "0", "--init-bin", init];

    let down = lambdabox(data.path(), &endpoint, &["down"]);
    assert_eq!(down.status.code(), Some(3), "nothing runs yet: {}", stderr(&down));
    let wait = lambdabox(data.path(), &endpoint, &["wait", "--timeout", "1"]);
    assert!(!wait.status.success(), "wait must time out with nothing serving");

    let started = lambdabox(data.path(), &endpoint, &serve);
    assert!(started.status.success(), "serve --detach: {}", stderr(&started));
    // It answers as soon as --detach returns, under the pid in its pid file.
    let pid: u32 = std::fs::read_to_string(data.path().join("lambdabox.pid")).unwrap().trim().parse().unwrap();
    assert!(runs(pid));
    let ls = lambdabox(data.path(), &endpoint, &["ls"]);
    assert!(ls.status.success(), "the detached controller answers signed requests: {}", stderr(&ls));
    assert!(lambdabox(data.path(), &endpoint, &["wait", "--timeout", "5"]).status.success());
    let log = std::fs::read_to_string(data.path().join("lambdabox.log")).unwrap();
    assert!(log.contains("lambdabox listening on"), "its output goes to the log file: {log}");

    let again = lambdabox(data.path(), &endpoint, &serve);
    assert!(!again.status.success(), "a second controller on the same data directory must be refused");
    assert!(stderr(&again).contains("already running"), "{}", stderr(&again));

    let stopped = lambdabox(data.path(), &endpoint, &["down", "--timeout", "30"]);
    assert!(stopped.status.success(), "down: {}", stderr(&stopped));
    assert!(!data.path().join("lambdabox.pid").exists(), "the pid file is removed");
    assert!(!runs(pid), "the process is gone");
    let down = lambdabox(data.path(), &endpoint, &["down"]);
    assert_eq!(down.status.code(), Some(3), "{}", stderr(&down));
}

#[test]
fn a_controller_that_cannot_start_fails_detach_with_its_reason() {
    let data = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let endpoint = format!("http://{listen}");
    let serve = ["serve", "--detach", "--listen", &listen, "--url-listen", "off", "--init-bin", "/nonexistent/init"];
    let out = lambdabox(data.path(), &endpoint, &serve);
    assert_eq!(out.status.code(), Some(64), "the controller's own exit status: {}", stderr(&out));
    assert!(stderr(&out).contains("lambdabox-init not found"), "{}", stderr(&out));
    assert!(!data.path().join("lambdabox.pid").exists());
}

/// Whether `pid` is a running lambdabox: not gone, not reused, not a zombie
/// waiting for its new parent to reap it.
fn runs(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    stat.contains("(lambdabox)") && !stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}
