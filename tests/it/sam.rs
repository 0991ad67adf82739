//! `lambdabox up` on examples/sam-app against a real controller: builds
//! from PyPI and npm in the runtime images, the layer, the schedule, the
//! URL and both route kinds; a second `up` that changes nothing; `--watch`
//! picking up an edit; pruning; a malformed template's line. And the
//! compiled and Makefile build paths (tests/fixtures/sam/builds).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{self, eventually, Server};

/// `lambdabox up` against `server`, from a copy of the project in `dir`.
fn up_command(server: &Server, dir: &Path, api: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lambdabox"));
    cmd.args(["--endpoint", &server.url, "--data-dir"])
        .arg(&server.data_dir)
        .args(["up", "--stack-name", "sam-app", "--api-listen", api, "-f"])
        .arg(dir.join("template.yaml"))
        .args(extra);
    cmd
}

fn up(server: &Server, dir: &Path, api: &str) -> Output {
    let out = up_command(server, dir, api, &[]).output().unwrap();
    assert!(out.status.success(), "up failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The example copied to a fresh folder (edits never touch the repo).
fn project() -> (tempfile::TempDir, PathBuf) {
    copied("examples/sam-app")
}

/// The project at `path` (from the repository's root) in a fresh folder.
fn copied(path: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new().prefix("lbx-sam-").tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let status = Command::new("cp").arg("-r").arg(&src).arg(tmp.path()).status().unwrap();
    assert!(status.success());
    let dir = tmp.path().join(src.file_name().unwrap());
    let _ = std::fs::remove_dir_all(dir.join(".lambdabox"));
    (tmp, dir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn get(url: &str) -> (u16, Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// boto3 against the controller: `script` prints one JSON line.
fn boto3(server: &Server, script: &str) -> Value {
    let key = server.key.as_ref().unwrap();
    let preamble = format!(
        "import boto3, json\nlam = boto3.client('lambda', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='{}', aws_secret_access_key='{}')\n",
        server.url,
        key.access_key_id(),
        key.secret()
    );
    let out = Command::new(common::boto3_python()).arg("-c").arg(format!("{preamble}{script}")).output().unwrap();
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sam_project_comes_up_stays_idempotent_watches_and_prunes() {
    common::ensure_runtime_image("python3.11");
    common::ensure_runtime_image("nodejs20.x");
    let server = Server::start();
    let (_tmp, dir) = project();
    let api = format!("127.0.0.1:{}", free_port());
    let first = up(&server, &dir, &api);
    let log = String::from_utf8_lossy(&first.stderr);
    assert!(log.contains("PyFunction (sam-app-PyFunction): created"), "{log}");

    // Routes: HttpApi (2.0) with a path parameter, Api (1.0), and 403 elsewhere.
    let (status, body) = get(&format!("http://{api}/items/42")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["message"].as_str(), body["six"].as_str()), (Some("Hi, 42!"), Some("1.16.0")));
    assert_eq!(body["route"], "GET /items/{id}");
    let (_, body) = get(&format!("http://{api}/hello/bob")).await;
    assert_eq!((body["hello"].as_str(), body["minute"].as_u64()), (Some("bob"), Some(60000)));
    let (status, body) = get(&format!("http://{api}/nowhere")).await;
    assert_eq!((status, body["message"].as_str()), (403, Some("Missing Authentication Token")));

    // boto3 sees the functions, the alias and the URL.
    let seen = boto3(
        &server,
        "r = lam.invoke(FunctionName='sam-app-PyFunction', Qualifier='live', Payload=b'{}')\n\
         u = lam.get_function_url_config(FunctionName='sam-app-PyFunction', Qualifier='live')\n\
         c = lam.get_function_configuration(FunctionName='sam-app-NodeFunction')\n\
         print(json.dumps([json.loads(json.loads(r['Payload'].read())['body'])['stage'], u['AuthType'], \
         c['MemorySize'], c['Timeout'], c['Environment']['Variables']['STAGE']]))\n",
    );
    assert_eq!(seen, serde_json::json!(["dev", "NONE", 256, 10, "dev"]));

    // A second `up` changes nothing.
    let second = up(&server, &dir, &api);
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(!log.contains("created") && !log.contains("updated"), "{log}");
    assert!(log.contains("build unchanged (cached)"), "{log}");

    // --watch: an edit reaches the next request.
    let mut watcher = up_command(&server, &dir, &api, &["--watch"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(watcher.stderr.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.contains("watching for changes") {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(|l| eprintln!("watch: {}", l.unwrap_or_default())));
    let app = dir.join("py/app.py");
    std::fs::write(&app, std::fs::read_to_string(&app).unwrap().replace("\"v1\"", "\"v2\"")).unwrap();
    let url = format!("http://{api}/items/1");
    let changed = eventually(Duration::from_secs(60), || async { get(&url).await.1["version"] == "v2" }).await;
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(changed, "--watch did not update the function");

    // Pruning: the Node function leaves the template, and the controller.
    let template = std::fs::read_to_string(dir.join("template.yaml")).unwrap();
    let cut = template.find("  NodeFunction:").unwrap();
    let end = template.find("Outputs:").unwrap();
    std::fs::write(dir.join("template.yaml"), format!("{}{}", &template[..cut], &template[end..])).unwrap();
    let log = String::from_utf8_lossy(&up(&server, &dir, &api).stderr).into_owned();
    assert!(log.contains("sam-app-NodeFunction: deleted"), "{log}");
    let status = server.get("/2015-03-31/functions/sam-app-NodeFunction").send().await.status().as_u16();
    assert_eq!(status, 404);
    let (status, _) = get(&format!("http://{api}/hello/bob")).await;
    assert_eq!(status, 403, "the pruned function's route is gone");
}

#[test]
fn go_rust_and_makefile_builds_come_up_and_are_cached() {
    common::ensure_runtime_image("python3.11");
    common::ensure_runtime_image("provided.al2023");
    common::ensure_runtime_image("ruby3.3");
    let server = Server::start();
    let (_tmp, dir) = copied("tests/fixtures/sam/builds");
    let first = up(&server, &dir, "127.0.0.1:0");
    let log = String::from_utf8_lossy(&first.stderr);
    for step in ["go build", "cargo build", "make for python3.11", "layer MadeLayer: ", "bundle install for ruby3.3"] {
        assert!(log.contains(step), "no {step:?} in {log}");
    }
    let seen = boto3(
        &server,
        "out = {}\n\
         for f in ['GoFunction', 'RustFunction', 'MadeFunction', 'RubyFunction']:\n\
         \x20   r = lam.invoke(FunctionName='sam-app-' + f, Payload=b'{\"n\": 7}')\n\
         \x20   out[f] = [r.get('FunctionError'), json.loads(r['Payload'].read())]\n\
         print(json.dumps(out))\n",
    );
    assert_eq!(seen["GoFunction"], serde_json::json!([null, { "lang": "go", "event": { "n": 7 } }]));
    assert_eq!(seen["RustFunction"], serde_json::json!([null, { "lang": "rust", "event": { "n": 7 } }]));
    assert_eq!(
        seen["MadeFunction"],
        serde_json::json!([null, { "lang": "python", "built_with": [3, 11], "layer": "made-layer", "event": { "n": 7 } }]),
        "the recipe ran in the python3.11 build image, and its layer's recipe laid out python/"
    );
    assert_eq!(
        seen["RubyFunction"],
        serde_json::json!([null, { "lang": "ruby", "greeting": "from-ruby-layer", "event": { "n": 7 } }]),
        "bundler ran in the ruby3.3 build image, and the layer build put its code under ruby/lib"
    );

    // Only what the recipe put in ARTIFACTS_DIR is packaged; the Go and
    // Rust packages are the binary alone.
    let files = boto3(
        &server,
        "import io, urllib.request, zipfile\nout = {}\n\
         for f in ['GoFunction', 'MadeFunction']:\n\
         \x20   loc = lam.get_function(FunctionName='sam-app-' + f)['Code']['Location']\n\
         \x20   out[f] = sorted(zipfile.ZipFile(io.BytesIO(urllib.request.urlopen(loc).read())).namelist())\n\
         print(json.dumps(out))\n",
    );
    assert_eq!(files, serde_json::json!({ "GoFunction": ["bootstrap"], "MadeFunction": ["app.py", "generated.py"] }));

    let second = up(&server, &dir, "127.0.0.1:0");
    let log = String::from_utf8_lossy(&second.stderr);
    assert!(!log.contains("created") && !log.contains("updated"), "{log}");
    assert_eq!(log.matches("build unchanged (cached)").count(), 5, "{log}");
}

#[test]
fn a_malformed_template_is_one_error_with_its_line() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("template.yaml"),
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: [app.handler\n",
    )
    .unwrap();
    let out = up_command(&server, tmp.path(), "127.0.0.1:0", &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("template.yaml:6"), "{err}");
}
