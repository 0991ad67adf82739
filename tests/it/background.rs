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
    let init = common::init_bin();
    let init = init.to_str().unwrap();
    // Port 0: the kernel picks, and --detach prints where it landed.
    let serve =
        ["serve", "--detach", "--listen", "127.0.0.1:0", "--url-listen", "off", "--prewarm", "0", "--init-bin", init];
    let nowhere = format!("http://127.0.0.1:{}", free_port());

    let down = lambdabox(data.path(), &nowhere, &["down"]);
    assert_eq!(down.status.code(), Some(3), "nothing runs yet: {}", stderr(&down));
    let wait = lambdabox(data.path(), &nowhere, &["wait", "--timeout", "1"]);
    assert!(!wait.status.success(), "wait must time out with nothing serving");

    let started = lambdabox(data.path(), &nowhere, &serve);
    assert!(started.status.success(), "serve --detach: {}", stderr(&started));
    let endpoint = String::from_utf8_lossy(&started.stdout).trim().to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:") && !endpoint.ends_with(":0"), "stdout: {endpoint:?}");
    // It answers as soon as --detach returns, under the pid in its pid file.
    let pid: u32 = std::fs::read_to_string(data.path().join("lambdabox.pid")).unwrap().trim().parse().unwrap();
    assert!(runs(pid));
    let ls = lambdabox(data.path(), &endpoint, &["ls"]);
    assert!(ls.status.success(), "the detached controller answers signed requests: {}", stderr(&ls));
    assert!(lambdabox(data.path(), &endpoint, &["wait", "--timeout", "5"]).status.success());
    let log = std::fs::read_to_string(data.path().join("lambdabox.log")).unwrap();
    assert!(log.contains(&format!("lambdabox listening on {endpoint}")), "its output goes to the log file: {log}");

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
fn up_serve_starts_a_controller_with_the_serve_arguments_given() {
    common::ensure_images();
    let data = tempfile::Builder::new().prefix("lbx-").tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("template.yaml"),
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Runtime: python3.11\n\
         \x20     Handler: index.handler\n      InlineCode: \"def handler(e, c):\\n  return e\"\n",
    )
    .unwrap();
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let init = format!("--serve-arg={}", common::init_bin().display());
    let template = project.path().join("template.yaml");
    let up = [
        "up",
        "--serve",
        "--serve-arg=--url-listen",
        "--serve-arg=off",
        "--serve-arg=--init-bin",
        &init,
        "--serve-arg=--prewarm=0",
        "--stack-name",
        "bg",
        "-f",
        template.to_str().unwrap(),
    ];
    let out = lambdabox(data.path(), &endpoint, &up);
    let stopped = lambdabox(data.path(), &endpoint, &["down", "--timeout", "30"]);
    assert!(out.status.success(), "up --serve: {}", stderr(&out));
    assert!(stopped.status.success(), "down: {}", stderr(&stopped));
    let log = std::fs::read_to_string(data.path().join("lambdabox.log")).unwrap();
    assert!(!log.contains("function URLs on"), "--url-listen off reached the controller: {log}");
    let bad = lambdabox(data.path(), &endpoint, &["up", "--serve-arg=--prewarm=0", "-f", template.to_str().unwrap()]);
    assert!(!bad.status.success() && stderr(&bad).contains("--serve"), "{}", stderr(&bad));
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

/// examples/makefile-ci as its README says to run it: `make ci` brings the
/// project up on a background controller, tests it and takes it down, and
/// a failing test fails the target yet still takes the controller down.
#[test]
fn the_makefile_example_passes_and_fails_as_a_ci_job_would() {
    common::ensure_images();
    let tmp = tempfile::Builder::new().prefix("lbx-make-").tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/makefile-ci");
    assert!(Command::new("cp").arg("-r").arg(&src).arg(tmp.path()).status().unwrap().success());
    let dir = tmp.path().join("makefile-ci");
    let _ = std::fs::remove_dir_all(dir.join(".lambdabox"));
    let make = |target: &str| {
        Command::new("make")
            .arg("-C")
            .arg(&dir)
            .arg(target)
            .arg(concat!("LAMBDABOX=", env!("CARGO_BIN_EXE_lambdabox")))
            .arg(format!("PORT={}", free_port()))
            .arg(format!("API_PORT={}", free_port()))
            .env("LAMBDABOX_INIT", common::init_bin())
            .output()
            .expect("make runs")
    };
    let passed = make("ci");
    assert!(passed.status.success(), "make ci: {}{}", stderr(&passed), String::from_utf8_lossy(&passed.stdout));
    assert!(String::from_utf8_lossy(&passed.stdout).contains("tests passed"));
    assert!(!dir.join(".lambdabox/lambdabox.pid").exists(), "the controller was taken down");

    let app = dir.join("src/app.py");
    let code = std::fs::read_to_string(&app).unwrap();
    std::fs::write(&app, code.replace("hello, ", "goodbye, ")).unwrap();
    let failed = make("ci");
    assert!(!failed.status.success(), "a failing test must fail the target");
    assert!(!dir.join(".lambdabox/lambdabox.pid").exists(), "the controller was taken down after the failure too");
}
