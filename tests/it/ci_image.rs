//! The lambdabox image as Docker-based CI runs it: the controller in a
//! container on the host's Docker socket, its data directory mounted at the
//! same path, functions in sibling containers started by the host's engine,
//! invoked from the host through the published port, and nothing left
//! behind once the container stops.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common;

/// The host side of one run, removed on drop even when an assertion fails:
/// the controller container, its network and the test's image tag.
struct Run {
    name: String,
    tag: String,
}

impl Drop for Run {
    fn drop(&mut self) {
        for args in [&["rm", "-f", &self.name][..], &["network", "rm", &self.name], &["rmi", "-f", &self.tag]] {
            let _ = Command::new("docker").args(args).output();
        }
    }
}

/// Run the Docker CLI; its trimmed stdout, or a panic with its stderr.
fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("the docker CLI runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The lambdabox CLI against the containerised controller, signing with `key`.
fn lambdabox(endpoint: &str, key: (&str, &str), args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lambdabox"))
        .args(args)
        .env("LAMBDABOX_ENDPOINT", endpoint)
        .env("LAMBDABOX_ACCESS_KEY_ID", key.0)
        .env("LAMBDABOX_SECRET_ACCESS_KEY", key.1)
        .output()
        .expect("lambdabox runs")
}

/// `make image`'s recipe, from the binaries this test run uses.
fn build_image(tag: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("sh")
        .arg("scripts/build-image.sh")
        .current_dir(root)
        .env("BIN", env!("CARGO_BIN_EXE_lambdabox"))
        .env("INIT", common::init_bin())
        .env("TAG", tag)
        .status()
        .expect("sh runs");
    assert!(status.success(), "scripts/build-image.sh failed");
}

/// A function that says which container it runs in and whether it can
/// open a TCP connection to the controller's container.
const PROBE: &str = r#"
import socket

def handler(event, context):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((event["controller"], 9000))
        reachable = True
    except OSError:
        reachable = False
    finally:
        s.close()
    return {"hostname": socket.gethostname(), "reachable": reachable}
"#;

#[tokio::test]
async fn the_image_runs_functions_in_sibling_containers_and_leaves_nothing() {
    common::ensure_images();
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let run = Run { name: format!("lambdabox-it-ci-{suffix}"), tag: format!("lambdabox/lambdabox:it-{suffix}") };
    build_image(&run.tag);
    // Short (unix socket paths live under it) and the same on both sides.
    let data = tempfile::Builder::new().prefix("lbx-ci-").tempdir_in("/tmp").unwrap();
    let data_dir = data.path().to_str().unwrap();
    let key = ("LBXCITESTKEY00000001", "ci-image-test-secret-0123456789abcdef0123");
    // A network of its own, as compose gives a project: function containers
    // (on the default bridge) must not reach the controller through it.
    docker(&["network", "create", &run.name]);
    let id_var = format!("LAMBDABOX_ACCESS_KEY_ID={}", key.0);
    let secret_var = format!("LAMBDABOX_SECRET_ACCESS_KEY={}", key.1);
    let mount = format!("{data_dir}:{data_dir}");
    let data_var = format!("LAMBDABOX_DATA_DIR={data_dir}");
    #[rustfmt::skip]
    let controller = docker(&[
        "run", "-d", "--name", &run.name, "--network", &run.name, "-p", "127.0.0.1::9000",
        "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", &mount, "-v", "/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
        "-e", &data_var, "-e", &id_var, "-e", &secret_var, &run.tag,
        "serve", "--listen", "0.0.0.0:9000", "--url-listen", "off", "--prewarm", "0",
    ]);
    let endpoint = format!("http://{}", docker(&["port", &run.name, "9000/tcp"]).lines().next().unwrap());
    let waited = lambdabox(&endpoint, key, &["wait", "--timeout", "30"]);
    assert!(waited.status.success(), "not ready: {}", docker(&["logs", &run.name]));

    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("app.py"), PROBE).unwrap();
    let code_dir = code.path().to_str().unwrap();
    let deploy = ["deploy", "probe", "--runtime", "python3.11", "--handler", "app.handler", "--code", code_dir];
    let deployed = lambdabox(&endpoint, key, &deploy);
    assert!(deployed.status.success(), "deploy: {}", String::from_utf8_lossy(&deployed.stderr));

    let inspect = ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &run.name];
    let controller_ip = docker(&inspect);
    let payload = serde_json::json!({ "controller": controller_ip }).to_string();
    let invoked = lambdabox(&endpoint, key, &["invoke", "probe", "--payload", &payload]);
    assert!(invoked.status.success(), "invoke: {}", String::from_utf8_lossy(&invoked.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&invoked.stdout).unwrap();

    // The function ran in a container of the host's engine, beside the controller's.
    let home = lambdabox::server::home_id(data.path());
    let siblings = common::containers(&home, Some("probe")).await;
    assert_eq!(siblings.len(), 1, "one function container on the host's engine");
    let hostname = answer["hostname"].as_str().unwrap();
    assert!(siblings[0].starts_with(hostname), "ran in {hostname}, not in {}", siblings[0]);
    assert!(!controller.starts_with(hostname), "the function ran in the controller's container");
    assert_eq!(answer["reachable"], false, "a function reached the controller's container: {answer}");
    // Its REPORT line measured memory through the host's cgroup files.
    let logs = lambdabox(&endpoint, key, &["logs", "probe"]);
    let logs = String::from_utf8_lossy(&logs.stdout);
    assert!(logs.contains("Max Memory Used:") && !logs.contains("Max Memory Used: 0 MB"), "{logs}");
    // lambdabox-init was staged where the host's engine could mount it.
    assert!(data.path().join("bin/lambdabox-init").is_file());

    docker(&["stop", "--time", "30", &run.name]);
    let exit = docker(&["inspect", "-f", "{{.State.ExitCode}}", &run.name]);
    assert_eq!(exit, "0", "the controller exited uncleanly: {}", docker(&["logs", &run.name]));
    assert!(
        common::eventually(Duration::from_secs(5), || async { common::containers(&home, None).await.is_empty() }).await,
        "function containers outlived the controller"
    );
}

/// `docker-compose` (Debian's Compose v1, which the test tools install)
/// with `args`, on examples/docker-compose as project `project`.
fn compose(project: &str, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/docker-compose/docker-compose.yml");
    Command::new("docker-compose")
        .arg("-p")
        .arg(project)
        .arg("-f")
        .arg(file)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("docker-compose runs (scripts/ensure-test-tools.sh installs it)")
}

/// The shipped compose file as the README runs it: up, a function deployed
/// and invoked from the host, the example client service listing it over
/// the project's network, and down leaving no function container behind.
#[tokio::test]
async fn the_compose_example_serves_the_host_and_its_own_network() {
    common::ensure_images();
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let project = format!("lbxcompose{suffix}");
    let run = Run { name: project.clone(), tag: format!("lambdabox/lambdabox:it-{suffix}") };
    build_image(&run.tag);
    let data = tempfile::Builder::new().prefix("lbx-compose-").tempdir_in("/tmp").unwrap();
    let ports: Vec<String> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().unwrap().port().to_string())
        .collect();
    let key = ("LBXCOMPOSE000000KEY1", "compose-test-secret-0123456789abcdef0123");
    let env = [
        ("LAMBDABOX_IMAGE", run.tag.as_str()),
        ("LAMBDABOX_DATA_DIR", data.path().to_str().unwrap()),
        ("LAMBDABOX_SECRET_ACCESS_KEY", key.1),
        ("LAMBDABOX_API_PORT", &ports[0]),
        ("LAMBDABOX_URL_PORT", &ports[1]),
        ("LAMBDABOX_ROUTES_PORT", &ports[2]),
    ];
    /// `docker-compose down` however the test ends.
    struct Down<'a>(&'a str, &'a [(&'a str, &'a str)]);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = compose(self.0, self.1, &["down", "--timeout", "40"]);
        }
    }
    let down = Down(&project, &env);
    let up = compose(&project, &env, &["up", "-d", "lambdabox"]);
    assert!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));
    let endpoint = format!("http://127.0.0.1:{}", ports[0]);
    let waited = lambdabox(&endpoint, key, &["wait", "--timeout", "60"]);
    let logs = || String::from_utf8_lossy(&compose(&project, &env, &["logs", "lambdabox"]).stdout).into_owned();
    assert!(waited.status.success(), "not ready: {}", logs());

    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("app.py"), "def handler(event, context):\n    return {'echo': event}\n").unwrap();
    let deploy = ["deploy", "echo", "--runtime", "python3.11", "--handler", "app.handler"];
    let deployed = lambdabox(&endpoint, key, &[&deploy[..], &["--code", code.path().to_str().unwrap()]].concat());
    assert!(deployed.status.success(), "deploy: {}", String::from_utf8_lossy(&deployed.stderr));
    let invoked = lambdabox(&endpoint, key, &["invoke", "echo", "--payload", r#"{"n": 1}"#]);
    assert!(invoked.status.success(), "invoke: {} {}", String::from_utf8_lossy(&invoked.stderr), logs());
    let answer: serde_json::Value = serde_json::from_slice(&invoked.stdout).unwrap();
    assert_eq!(answer, serde_json::json!({ "echo": { "n": 1 } }));

    // The example client service reaches the API by service name.
    let listed = compose(&project, &env, &["--profile", "tests", "run", "--rm", "tests"]);
    assert!(listed.status.success(), "tests service: {}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("echo"), "{}", String::from_utf8_lossy(&listed.stdout));

    drop(down);
    let home = lambdabox::server::home_id(data.path());
    assert!(
        common::eventually(Duration::from_secs(10), || async { common::containers(&home, None).await.is_empty() })
            .await,
        "function containers outlived `docker-compose down`"
    );
}
