//! A `lambdabox serve` child process: started on a fresh data directory and
//! a loopback port, driven through its REST API, measured through
//! `/proc/PID/status`, and stopped with SIGTERM so it removes its own
//! containers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use lambdabox::client::{paths, Client, Request};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::load::{self, Target};
use crate::wire::WireError;

/// The handler every measurement runs.
pub const HANDLER_SOURCE: &str = "def handler(event, context):\n    return event\n";
pub const HANDLER: &str = "app.handler";
pub const RUNTIME: &str = "python3.11";

/// How long start-up (store, Docker, leftovers) may take before the ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stopping controller gets to drain and remove its containers.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on each management call.
const API_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("starting {bin}: {source}")]
    Spawn { bin: PathBuf, source: std::io::Error },
    #[error("lambdabox exited or printed no ready line within {0} s; see {1}")]
    NotReady(u64, PathBuf),
    #[error("{what}: {source}")]
    Http { what: String, source: reqwest::Error },
    #[error("{what}: {source}")]
    Send { what: String, source: lambdabox::auth::sign::SignError },
    #[error("reading the controller's key pair: {0}")]
    Key(#[from] lambdabox::auth::keyfile::KeyFileError),
    #[error("{what}: status {status}: {body}")]
    Api { what: String, status: u16, body: String },
    #[error("reading /proc/{pid}/status: {source}")]
    Proc { pid: u32, source: std::io::Error },
    #[error("the controller announced no function URL listener")]
    NoUrlListener,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running `lambdabox serve`.
#[derive(Debug)]
pub struct Controller {
    child: Child,
    pid: u32,
    /// lambdabox's own API client, signing with the pair the controller
    /// generated at start (none from a build that predates authentication).
    api: Client,
    /// The function URL listener, `http://127.0.0.1:PORT`, when it announced one.
    url_listener: Option<String>,
    /// The data directory, removed with the controller when it is a
    /// temporary one of its own.
    _data_dir: Option<tempfile::TempDir>,
}

/// Does `lambdabox serve --help` list `flag`?
pub async fn serve_supports(bin: &Path, flag: &str) -> bool {
    match Command::new(bin).args(["serve", "--help"]).output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).split_whitespace().any(|w| w.trim_end_matches(',') == flag),
        Err(_) => false,
    }
}

impl Controller {
    /// Start `bin serve` on `127.0.0.1:0` with a temporary data directory and
    /// `extra` arguments; its stderr goes to `log`. Returns once it printed
    /// its ready line.
    pub async fn start(bin: &Path, extra: &[String], log: &Path) -> Result<Controller, ControllerError> {
        // Short path: the controller puts unix sockets under it.
        let data_dir = tempfile::Builder::new().prefix("lbx-bench").tempdir_in("/tmp")?;
        let path = data_dir.path().to_owned();
        Controller::start_in(bin, &path, Some(data_dir), extra, log).await
    }

    /// [`Controller::start`] on the data directory `dir` (another
    /// controller's, to restart it), kept alive by `owned` if given.
    pub async fn start_in(
        bin: &Path,
        dir: &Path,
        owned: Option<tempfile::TempDir>,
        extra: &[String],
        log: &Path,
    ) -> Result<Controller, ControllerError> {
        let log_file = std::fs::File::create(log)?;
        let mut child = Command::new(bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--url-listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--drain-timeout", "10"])
            .args(extra)
            // It generates its key pair in the data directory, read below.
            .env_remove("LAMBDABOX_ACCESS_KEY_ID")
            .env_remove("LAMBDABOX_SECRET_ACCESS_KEY")
            .env_remove("LAMBDABOX_CREDENTIALS_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|source| ControllerError::Spawn { bin: bin.to_owned(), source })?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut url_listener = None;
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(urls) = line.strip_prefix("lambdabox function URLs on ") {
                    url_listener = Some(urls.trim().to_owned());
                }
                if let Some(url) = line.strip_prefix("lambdabox listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await;
        let endpoint = match ready {
            Ok(Some(url)) => url,
            _ => {
                let _ = child.start_kill();
                return Err(ControllerError::NotReady(READY_TIMEOUT.as_secs(), log.to_owned()));
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = reqwest::Client::builder().no_proxy().timeout(API_TIMEOUT).build().expect("plain client");
        let key = lambdabox::auth::keyfile::read(dir)?;
        let api = Client::new(http, &endpoint, key);
        Ok(Controller { child, pid, api, url_listener, _data_dir: owned })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A load target invoking function `name`, signed with the controller's key.
    pub fn target(&self, client: &load::Client, name: &str) -> Result<Target, WireError> {
        let url = format!("{}{}", self.api.endpoint(), paths::invocations(name));
        Target::signed(client, &url, self.api.key().cloned())
    }

    async fn call(&self, what: String, request: Request) -> Result<serde_json::Value, ControllerError> {
        let response = request.send().await.map_err(|source| ControllerError::Send { what: what.clone(), source })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|source| ControllerError::Http { what: what.clone(), source })?;
        if !(200..300).contains(&status) {
            return Err(ControllerError::Api { what, status, body });
        }
        Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
    }

    /// CreateFunction with the Python echo handler.
    pub async fn create_function(
        &self,
        name: &str,
        memory_mb: u32,
        idle_ttl_s: Option<u64>,
    ) -> Result<(), ControllerError> {
        let mut body = function_body(name, RUNTIME, HANDLER, &handler_zip()?, memory_mb);
        if let Some(ttl) = idle_ttl_s {
            body["IdleTtlSeconds"] = json!(ttl);
        }
        self.call(format!("CreateFunction {name}"), self.api.create_function(&body)).await.map(drop)
    }

    /// CreateFunction of any runtime from a zip.
    pub async fn create_function_from(
        &self,
        name: &str,
        runtime: &str,
        handler: &str,
        zip: &[u8],
        memory_mb: u32,
    ) -> Result<(), ControllerError> {
        let body = function_body(name, runtime, handler, zip, memory_mb);
        self.call(format!("CreateFunction {name}"), self.api.create_function(&body)).await.map(drop)
    }

    /// CreateFunctionUrlConfig (AuthType NONE, `mode` BUFFERED or
    /// RESPONSE_STREAM); returns the URL's path form on the URL listener,
    /// `http://127.0.0.1:PORT/lambda-url/ID/`, which needs no name resolution.
    pub async fn create_url(&self, name: &str, mode: &str) -> Result<String, ControllerError> {
        let body = json!({ "AuthType": "NONE", "InvokeMode": mode });
        let request = self.api.post(&paths::url_config(name)).json(&body);
        let config = self.call(format!("CreateFunctionUrlConfig {name}"), request).await?;
        let reported = config["FunctionUrl"].as_str().unwrap_or_default();
        let id = reported.trim_start_matches("http://").split('.').next().unwrap_or_default();
        let listener = self.url_listener.as_deref().ok_or(ControllerError::NoUrlListener)?;
        Ok(format!("{listener}/lambda-url/{id}/"))
    }

    /// UpdateFunctionConfiguration setting one environment variable: a new
    /// revision, so the next invocation needs a new container.
    pub async fn set_env(&self, name: &str, key: &str, value: &str) -> Result<(), ControllerError> {
        let body = json!({ "Environment": { "Variables": { key: value } } });
        let request = self.api.function(reqwest::Method::PUT, name, "/configuration").json(&body);
        self.call(format!("UpdateFunctionConfiguration {name}"), request).await.map(drop)
    }

    /// UpdateFunctionConfiguration setting the function's timeout, for
    /// invocations longer than the default 3 s.
    pub async fn set_timeout(&self, name: &str, seconds: u64) -> Result<(), ControllerError> {
        let body = json!({ "Timeout": seconds });
        let request = self.api.function(reqwest::Method::PUT, name, "/configuration").json(&body);
        self.call(format!("UpdateFunctionConfiguration {name}"), request).await.map(drop)
    }

    /// Asynchronous events still queued, all functions together.
    pub async fn queued_events(&self) -> Result<u64, ControllerError> {
        let depths = self.call("list event queues".into(), self.api.event_depths()).await?;
        let listed = depths["Functions"].as_array().into_iter().flatten();
        Ok(listed.filter_map(|f| f["Queued"].as_u64()).sum())
    }

    /// How many containers the controller holds (any state).
    pub async fn containers(&self) -> Result<usize, ControllerError> {
        let list = self.call("list containers".into(), self.api.containers()).await?;
        Ok(list["Containers"].as_array().map_or(0, Vec::len))
    }

    /// How many of the containers the controller holds are prewarmed
    /// generic ones, ready to be specialized.
    pub async fn prewarmed(&self) -> Result<usize, ControllerError> {
        let list = self.call("list containers".into(), self.api.containers()).await?;
        let listed = list["Containers"].as_array().into_iter().flatten();
        Ok(listed.filter(|c| c["state"] == "prewarmed").count())
    }

    /// Docker ids of the containers the controller holds.
    pub async fn docker_ids(&self) -> Result<Vec<String>, ControllerError> {
        self.docker_ids_where(|_| true).await
    }

    /// Docker ids of the containers the controller holds for `function`.
    pub async fn docker_ids_of(&self, function: &str) -> Result<Vec<String>, ControllerError> {
        self.docker_ids_where(|c| c["function"] == function).await
    }

    async fn docker_ids_where(
        &self,
        keep: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<Vec<String>, ControllerError> {
        let list = self.call("list containers".into(), self.api.containers()).await?;
        let listed = list["Containers"].as_array().into_iter().flatten();
        Ok(listed.filter(|c| keep(c)).filter_map(|c| c["docker_id"].as_str().map(str::to_owned)).collect())
    }

    /// One page of ListFunctions.
    pub async fn list_functions(&self, max: usize, marker: Option<&str>) -> Result<serde_json::Value, ControllerError> {
        let mut path = format!("/2015-03-31/functions/?MaxItems={max}");
        if let Some(m) = marker {
            path.push_str(&format!("&Marker={m}"));
        }
        self.call("ListFunctions".into(), self.api.get(&path)).await
    }

    /// The controller's resident memory, in KiB.
    pub fn rss_kib(&self) -> Result<u64, ControllerError> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .map_err(|source| ControllerError::Proc { pid: self.pid, source })?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| ControllerError::Proc { pid: self.pid, source: std::io::ErrorKind::InvalidData.into() })
    }

    /// SIGKILL: a crash. Its containers stay behind for the next
    /// controller on its data directory to clear.
    pub async fn kill(mut self) -> Result<(), ControllerError> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGTERM, then wait for it to drain and remove its containers; SIGKILL
    /// if it takes longer than [`STOP_TIMEOUT`].
    pub async fn stop(mut self) -> Result<(), ControllerError> {
        terminate(self.pid);
        let start = Instant::now();
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("lambdabox (pid {}) still running after {:?}; killing it", self.pid, start.elapsed());
                self.child.kill().await?;
            }
        }
        Ok(())
    }
}

impl Drop for Controller {
    /// A controller dropped without [`Controller::stop`] (an error, Ctrl-C)
    /// still gets SIGTERM, so it removes its containers on its own.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            terminate(self.pid);
        }
    }
}

fn terminate(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        if pid > 0 {
            // SAFETY: kill(2) on our own child's pid; it has no memory effects here.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

fn function_body(name: &str, runtime: &str, handler: &str, zip: &[u8], memory_mb: u32) -> serde_json::Value {
    json!({
        "FunctionName": name,
        "Runtime": runtime,
        "Handler": handler,
        "Role": "arn:aws:iam::000000000000:role/x",
        "Code": { "ZipFile": base64::engine::general_purpose::STANDARD.encode(zip) },
        "MemorySize": memory_mb,
    })
}

/// The function's code: `app.py` alone, zipped.
pub fn handler_zip() -> std::io::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("app.py", zip::write::SimpleFileOptions::default()).map_err(std::io::Error::other)?;
    w.write_all(HANDLER_SOURCE.as_bytes())?;
    Ok(w.finish().map_err(std::io::Error::other)?.into_inner())
}

/// The same code unpacked into `dir` (readable by any user), for RIE's `/var/task`.
pub fn write_handler_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let file = dir.join("app.py");
    std::fs::write(&file, HANDLER_SOURCE)?;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))
}
