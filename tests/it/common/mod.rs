//! Shared by the integration tests: a real `lambdabox serve` process on a
//! loopback port with its own data directory, against the real Docker Engine.

#![allow(dead_code)]

pub mod bootstrap;
pub mod java;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bollard::query_parameters::ListContainersOptionsBuilder;
use lambdabox::auth::KeyPair;

/// The static lambdabox-init: `LAMBDABOX_INIT` (set by `make test`), else
/// built here the way the Makefile builds it.
pub fn init_bin() -> PathBuf {
    static INIT: OnceLock<PathBuf> = OnceLock::new();
    INIT.get_or_init(|| {
        if let Some(p) = std::env::var_os("LAMBDABOX_INIT") {
            return PathBuf::from(p);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "lambdabox-init", "--target", "x86_64-unknown-linux-gnu"])
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .current_dir(root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building lambdabox-init failed");
        root.join("target/x86_64-unknown-linux-gnu/release/lambdabox-init")
    })
    .clone()
}

/// The host's Docker Engine, API version negotiated.
pub async fn docker() -> bollard::Docker {
    bollard::Docker::connect_with_local_defaults().unwrap().negotiate_version().await.unwrap()
}

/// Make sure the runtime images exist (a no-op when they are current).
pub fn ensure_images() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let status = Command::new(env!("CARGO_BIN_EXE_lambdabox"))
            .args(["images", "build", "python3.11"])
            .status()
            .expect("lambdabox runs");
        assert!(status.success(), "lambdabox images build failed");
    });
}

/// Make sure one runtime's image exists, so its first invocation in a test
/// does not include an image build.
pub fn ensure_runtime_image(runtime: &str) {
    static DONE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut done = DONE.lock().unwrap();
    if done.iter().any(|r| r == runtime) {
        return;
    }
    let status = Command::new(env!("CARGO_BIN_EXE_lambdabox"))
        .args(["images", "build", runtime])
        .status()
        .expect("lambdabox runs");
    assert!(status.success(), "lambdabox images build {runtime} failed");
    done.push(runtime.to_owned());
}

/// A running controller. Dropping it stops it with SIGTERM.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// The function URL listener (`http://127.0.0.1:PORT`), unless a test
    /// turned it off.
    pub url_listener: Option<String>,
    pub data_dir: PathBuf,
    /// What every request of the harness is signed with: the pair the
    /// controller generated in its data directory, unless a test says
    /// otherwise ([`Server::with_key`]); `None` sends them unsigned.
    pub key: Option<KeyPair>,
    _tmp: Option<tempfile::TempDir>,
}

/// One API request through lambdabox's own client, signed with the
/// server's key pair when sent: the harness's one way to call the API. A
/// request that cannot be sent fails the test.
pub struct Call(lambdabox::client::Request);

impl Call {
    pub fn header(self, name: &str, value: impl AsRef<str>) -> Call {
        Call(self.0.header(name, value))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Call {
        Call(self.0.body(body))
    }

    pub fn json(self, body: &serde_json::Value) -> Call {
        Call(self.0.json(body))
    }

    pub fn query(self, pairs: &[(&str, &str)]) -> Call {
        Call(self.0.query(pairs))
    }

    pub async fn send(self) -> reqwest::Response {
        self.0.send().await.expect("request sent")
    }
}

impl Server {
    /// Start a controller with a fresh data directory.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Start a controller with a fresh data directory and extra `serve` flags.
    pub fn start_with(flags: &[&str]) -> Server {
        let tmp = tempfile::Builder::new().prefix("lbx-").tempdir().expect("tempdir");
        let mut s = Server::start_in_with(tmp.path(), flags);
        s._tmp = Some(tmp);
        s
    }

    /// Start a controller on an existing data directory.
    pub fn start_in(data_dir: &Path) -> Server {
        Server::start_in_with(data_dir, &[])
    }

    pub fn start_in_with(data_dir: &Path, flags: &[&str]) -> Server {
        Server::start_in_from(Path::new("."), data_dir, &init_bin(), flags)
    }

    /// Start a controller from working directory `cwd` (so `data_dir` and
    /// `init` may be relative to it).
    pub fn start_in_from(cwd: &Path, data_dir: &Path, init: &Path, flags: &[&str]) -> Server {
        Server::spawn(cwd, data_dir, init, flags, &[])
    }

    /// Start a controller with a fresh data directory, extra `serve` flags
    /// and environment variables.
    pub fn start_with_env(flags: &[&str], env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::Builder::new().prefix("lbx-").tempdir().expect("tempdir");
        let mut s = Server::spawn(Path::new("."), tmp.path(), &init_bin(), flags, env);
        s._tmp = Some(tmp);
        s
    }

    fn spawn(cwd: &Path, data_dir: &Path, init: &Path, flags: &[&str], env: &[(&str, &str)]) -> Server {
        ensure_images();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lambdabox"))
            .current_dir(cwd)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--init-bin")
            .arg(init)
            .args(flags)
            // Tests count containers by their function label, which
            // prewarmed ones lack: off (none kept, none grown from demand)
            // unless a test asks for them.
            .args(if flags.contains(&"--prewarm") { &[][..] } else { &["--prewarm", "0", "--prewarm-max", "0"][..] })
            // Functions under test need no network (nothing they do leaves
            // this machine), and a container without one starts on about
            // 150 ms less CPU (`DockerBackend::with_loopback_hosts`), which
            // the suite, CPU-bound, turns into wall time. Tests of
            // networking choose their mode.
            .args(if flags.contains(&"--network") { &[][..] } else { &["--network", "none"][..] })
            // Tests run side by side: never the fixed default port.
            .args(if flags.contains(&"--url-listen") { &[][..] } else { &["--url-listen", "127.0.0.1:0"][..] })
            // Credentials come from the flags and `env` only.
            .env_remove("LAMBDABOX_ACCESS_KEY_ID")
            .env_remove("LAMBDABOX_SECRET_ACCESS_KEY")
            .env_remove("LAMBDABOX_CREDENTIALS_FILE")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("lambdabox serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut url_listener = None;
        let url = loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).expect("ready line") > 0, "lambdabox exited before its ready line");
            if let Some(urls) = line.trim().strip_prefix("lambdabox function URLs on ") {
                url_listener = Some(urls.to_owned());
                continue;
            }
            break line.trim().strip_prefix("lambdabox listening on ").expect("ready line format").to_owned();
        };
        let data_dir = cwd.join(data_dir);
        let key = lambdabox::auth::keyfile::read(&data_dir).expect("the key file is readable");
        Server { child: Some(child), url, url_listener, data_dir, key, _tmp: None }
    }

    /// Sign the harness's requests with `key` from now on (`None`: unsigned).
    pub fn with_key(mut self, key: Option<KeyPair>) -> Server {
        self.key = key;
        self
    }

    /// A request to `path` (e.g. `/2015-03-31/functions`), signed when sent.
    pub fn request(&self, method: reqwest::Method, path: &str) -> Call {
        Call(self.client().request(method, path))
    }

    /// lambdabox's client for this server. A fresh one each time: a pooled
    /// connection must not outlive the test's runtime, and tests share this
    /// process.
    pub fn client(&self) -> lambdabox::client::Client {
        lambdabox::client::Client::new(reqwest::Client::new(), &self.url, self.key.clone())
    }

    pub fn get(&self, path: &str) -> Call {
        self.request(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.request(reqwest::Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call {
        self.request(reqwest::Method::PUT, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.request(reqwest::Method::DELETE, path)
    }

    /// Stop with SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(status.success(), "lambdabox exited with {status}");
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            panic!("lambdabox did not stop within 30 s of SIGTERM");
        }
    }

    /// Kill with SIGKILL: no clean-up happens.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The controller's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// Labels identifying this controller's containers.
    pub fn home(&self) -> String {
        lambdabox::server::home_id(&self.data_dir)
    }

    /// The path that invokes `name`.
    pub fn invoke_path(name: &str) -> String {
        lambdabox::client::paths::invocations(name)
    }

    /// Send SIGTERM without waiting.
    pub fn terminate(&self) {
        if let Some(child) = &self.child {
            unsafe_kill(child.id(), libc::SIGTERM);
        }
    }

    /// Wait for the process to exit (after [`Server::terminate`]).
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Create a Python function from [`APP_PY`] (plus `extra` files) with
    /// extra CreateFunction fields; panics unless 201.
    pub async fn deploy(&self, name: &str, handler: &str, extra: serde_json::Value) {
        self.deploy_files(name, handler, &[("app.py", APP_PY)], extra).await;
    }

    pub async fn deploy_files(&self, name: &str, handler: &str, files: &[(&str, &str)], extra: serde_json::Value) {
        use base64::Engine as _;
        let zip = base64::engine::general_purpose::STANDARD.encode(zip_of(files));
        // `extra` may override the runtime.
        let mut body = serde_json::json!({
            "FunctionName": name, "Runtime": "python3.11", "Handler": handler,
            "Role": "arn:aws:iam::000000000000:role/test", "Code": {"ZipFile": zip},
        });
        body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        let resp = Call(self.client().create_function(&body)).send().await;
        let status = resp.status();
        assert_eq!(status, 201, "{}", resp.text().await.unwrap());
    }

    /// Invoke; returns status, headers and the body as JSON (Null if not JSON).
    pub async fn invoke(&self, name: &str, payload: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let resp = Call(self.client().invoke(name, payload.to_owned())).send().await;
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let body = resp.bytes().await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    /// For each `(name, config, action, errorType)`: deploy `app.fault`,
    /// invoke it with `{"do": action}` and expect that unhandled error, then
    /// expect the next invocation to succeed.
    pub async fn assert_faults_recover(&self, cases: &[(&str, serde_json::Value, &str, &str)]) {
        for (name, config, action, error_type) in cases {
            self.deploy(name, "app.fault", config.clone()).await;
            let (status, headers, doc) = self.invoke(name, &serde_json::json!({ "do": action }).to_string()).await;
            assert_eq!((status, headers["x-amz-function-error"].to_str().unwrap()), (200, "Unhandled"));
            assert_eq!(doc["errorType"], *error_type, "{name}: {doc}");
            let (status, _, doc) = self.invoke(name, r#"{"do": "nothing"}"#).await;
            assert_eq!(
                (status, doc),
                (200, serde_json::json!({"ok": "nothing"})),
                "{name}: the next invocation succeeds"
            );
        }
    }

    /// Invoke with `X-Amz-Log-Type: Tail`; also returns the decoded log tail.
    pub async fn invoke_tail(
        &self,
        name: &str,
        payload: &str,
    ) -> (reqwest::header::HeaderMap, serde_json::Value, String) {
        use base64::Engine as _;
        let resp = Call(self.client().invoke(name, payload.to_owned())).header("x-amz-log-type", "Tail").send().await;
        assert_eq!(resp.status(), 200);
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap();
        let encoded = headers.get("x-amz-log-result").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let tail = base64::engine::general_purpose::STANDARD.decode(encoded).expect("log result is base64");
        (headers, serde_json::from_slice(&body).unwrap_or_default(), String::from_utf8_lossy(&tail).into_owned())
    }

    /// `GET /lambdabox/v1/functions/NAME/logs`: the end of the function's log.
    pub async fn logs(&self, name: &str) -> String {
        // All of it (up to the 16 MB a log keeps before it rotates).
        let all = lambdabox::logs::ROTATE_BYTES.to_string();
        let resp = Call(self.client().logs(name)).query(&[("bytes", all.as_str())]).send().await;
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// The official AWS SDK's Lambda client, pointed at this server and
    /// signing with its key pair.
    pub fn sdk(&self) -> aws_sdk_lambda::Client {
        let (id, secret) = match &self.key {
            Some(key) => (key.access_key_id(), key.secret()),
            None => ("unsigned", "unsigned"),
        };
        sdk_client(&self.url, id, secret)
    }

    /// `GET /lambdabox/v1/containers`.
    pub async fn ps(&self) -> Vec<serde_json::Value> {
        let body: serde_json::Value = Call(self.client().containers()).send().await.json().await.unwrap();
        body["Containers"].as_array().cloned().unwrap_or_default()
    }
}

/// The AWS SDK's Lambda client for `url`, signing with this key pair.
pub fn sdk_client(url: &str, access_key_id: &str, secret: &str) -> aws_sdk_lambda::Client {
    use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(access_key_id, secret, None, None, "lambdabox-tests"))
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe_kill(child.id(), libc::SIGTERM);
            let _ = child.wait();
        }
    }
}

fn unsafe_kill(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2) on a child we spawned.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// Ids of the containers of data directory `home` (optionally one function's),
/// running or not, as Docker reports them.
pub async fn containers(home: &str, function: Option<&str>) -> Vec<String> {
    let docker = docker().await;
    let mut labels = vec![format!("lambdabox.home={home}")];
    if let Some(f) = function {
        labels.push(format!("lambdabox.function={f}"));
    }
    let filters = HashMap::from([("label".to_string(), labels)]);
    let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
    docker.list_containers(Some(options)).await.unwrap().into_iter().filter_map(|c| c.id).collect()
}

/// Build a local image from a Dockerfile and files, as a user would with
/// `docker build`.
pub async fn build_image(tag: &str, files: &[(&str, &[u8])]) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *body).unwrap();
    }
    let context = tar.into_inner().unwrap();
    let docker = lambdabox::backend::docker::DockerBackend::connect().await.unwrap();
    docker.build(context, tag, HashMap::new(), HashMap::new(), |_| {}).await.expect("test image builds");
}

/// A user's image the way AWS documents images built on a runtime interface
/// client: `files` copied to their paths in the image (their folders on
/// PYTHONPATH, in order), awslambdaric as ENTRYPOINT, `handler` as CMD.
pub async fn python_image(tag: &str, files: &[(&str, &[u8])], handler: &str) {
    ensure_runtime_image("python3.11");
    let mut dockerfile = String::from("FROM lambdabox/python3.11:latest\n");
    let mut path: Vec<&str> = Vec::new();
    let mut context: Vec<(String, &[u8])> = Vec::new();
    for (i, (target, body)) in files.iter().enumerate() {
        dockerfile += &format!("COPY f{i} {target}\n");
        context.push((format!("f{i}"), body));
        let dir = Path::new(target).parent().and_then(Path::to_str).unwrap_or("/");
        if !path.contains(&dir) {
            path.push(dir);
        }
    }
    dockerfile += &format!(
        "ENV PYTHONPATH={}\nENTRYPOINT [\"/usr/bin/python3\", \"-m\", \"awslambdaric\"]\nCMD [\"{handler}\"]\n",
        path.join(":")
    );
    let mut all: Vec<(&str, &[u8])> = vec![("Dockerfile", dockerfile.as_bytes())];
    all.extend(context.iter().map(|(name, body)| (name.as_str(), *body)));
    build_image(tag, &all).await;
}

/// Remove a test image (best effort).
pub async fn remove_image(tag: &str) {
    let docker = docker().await;
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default().force(true).build();
    let _ = docker.remove_image(tag, Some(options), None).await;
}

/// A zip of `(name, contents)` files; scripts (`#!`) are executable.
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in files {
        let mode = if body.starts_with("#!") { 0o755 } else { 0o644 };
        w.start_file(*name, zip::write::SimpleFileOptions::default().unix_permissions(mode)).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The Python handlers the tests deploy.
pub const APP_PY: &str = r#"
import os, sys, time

def echo(event, context):
    return event

def context_fields(event, context):
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": int(context.memory_limit_in_mb),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "invoked_function_arn": context.invoked_function_arn,
        "log_group_name": context.log_group_name,
    }

def environment(event, context):
    return {k: os.environ.get(k) for k in event["keys"]}

def fail(event, context):
    raise ValueError("something went wrong")

def exit3(event, context):
    sys.exit(3)

def hog(event, context):
    chunks = [bytearray(16 * 1024 * 1024) for _ in range(64)]
    return len(chunks)

def sandbox(event, context):
    def writable(path):
        try:
            with open(path, "w") as f:
                f.write("x")
            return True
        except OSError:
            return False
    return {
        "uid": os.getuid(),
        "root_writable": writable("/evil"),
        "task_writable": writable("/var/task/evil"),
        "tmp_writable": writable("/tmp/ok"),
        "docker_socket": os.path.exists("/var/run/docker.sock") or os.path.exists("/run/docker.sock"),
    }

def forkbomb(event, context):
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)

def fault(event, context):
    what = event.get("do")
    if what == "sleep":
        time.sleep(30)
    if what == "exit":
        sys.exit(3)
    if what == "hog":
        hog(event, context)
    return {"ok": what}

def sleep(event, context):
    time.sleep(event.get("seconds", 5))
    return "woke"

def logs(event, context):
    print("stdout", event["marker"])
    print("stderr", event["marker"], file=sys.stderr)
    if event.get("then_exit"):
        os._exit(5)
    return {"logged": event["marker"]}
"#;

/// Wait until `cond` holds, polling; false if it never did within `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

impl Server {
    /// One raw request to the API: status, headers and body.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, bytes::Bytes) {
        let resp = self.request(method, path).body(body).send().await;
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        (status, headers, resp.bytes().await.unwrap())
    }
}

/// A Python interpreter with boto3 (installed into `target/pyenv` on first
/// use by `scripts/ensure-boto3.sh`, with its progress on stderr).
pub fn boto3_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = Command::new("sh")
                .arg(root.join("scripts/ensure-boto3.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("sh runs");
            assert!(out.status.success(), "installing boto3 failed (is PyPI reachable?)");
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        })
        .clone()
}
