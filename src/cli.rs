//! The `lambdabox` command line. `serve` and `images` run the controller's
//! own code; every other command is a client of the REST API, the same API the
//! AWS CLI uses, so the CLI can never do what the API cannot.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::auth::{credentials, keyfile, sign, KeyPair};

pub mod daemon;
mod deploy;
mod pidfile;
mod schedules;
mod up;
mod watch;

pub use pidfile::PidFile;
pub use up::UpArgs;

/// Exit status for bad configuration (BSD `EX_USAGE`).
pub const EXIT_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "lambdabox", version, about = "AWS Lambda on your own Linux box")]
pub struct Cli {
    /// The lambdabox API to talk to.
    #[arg(long, global = true, env = "LAMBDABOX_ENDPOINT", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// The controller's data directory: where `serve` keeps functions, code
    /// and its generated key pair, which client commands sign with
    /// (default: $XDG_DATA_HOME/lambdabox, else ~/.local/share/lambdabox).
    #[arg(long, global = true, env = "LAMBDABOX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller: the Lambda API, the Runtime API and the containers.
    Serve(Box<ServeArgs>),
    /// Manage runtime images.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Create a function, or update it if it exists.
    Deploy(DeployArgs),
    /// Invoke a function and print its result.
    Invoke(InvokeArgs),
    /// List functions; with a NAME, that function's versions and aliases.
    Ls {
        /// A function whose versions and aliases to list.
        name: Option<String>,
    },
    /// Publish a version of a function's current code and configuration.
    Publish {
        /// Function name.
        name: String,
        /// The version's description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Point an alias at a version (creating the alias if needed).
    Alias {
        /// Function name.
        name: String,
        /// Alias name, e.g. live.
        alias: String,
        /// The version it names (a number, or $LATEST).
        version: String,
        /// Also send a share of invocations to another version: V=W, W in 0..1.
        #[arg(long, value_name = "V=W")]
        weight: Option<String>,
    },
    /// List the controller's containers.
    Ps,
    /// Print the end of a function's log.
    Logs {
        /// Function name.
        name: String,
        /// How much of the log, in bytes.
        #[arg(long, default_value_t = 64 * 1024)]
        bytes: u64,
    },
    /// Asynchronous events: queue depths, dead letters, redrive.
    #[command(subcommand)]
    Events(EventsCommand),
    /// List EventBridge rules: state, schedule or pattern, targets and
    /// the next firing of schedule rules (UTC).
    Rules,
    /// Give a function (or one of its aliases) a URL, or change its URL,
    /// and print it.
    Url(UrlArgs),
    /// Bring up an AWS SAM / CloudFormation project: build, create or update
    /// its functions, layers, schedules, URLs and API routes; delete what
    /// the template no longer has.
    Up(UpArgs),
    /// Stop the controller `serve --detach` started: SIGTERM to the pid in
    /// its pid file, then wait for it to drain and exit. Exits 3 when no
    /// controller runs.
    Down {
        /// The pid file `serve` was given (default: DATA_DIR/lambdabox.pid).
        #[arg(long, value_name = "PATH")]
        pid_file: Option<PathBuf>,
        /// How long to wait for it to exit before failing.
        #[arg(long, value_name = "S", default_value_t = 60)]
        timeout: u64,
    },
    /// Wait until the controller at --endpoint answers its health check;
    /// fails after --timeout.
    Wait {
        /// Seconds to wait.
        #[arg(long, value_name = "S", default_value_t = 60)]
        timeout: u64,
    },
    /// Delete a function (its queued events and dead letters go with it).
    Rm {
        /// Function name.
        name: String,
    },
    /// Print the controller's key pair as AWS environment variables, for
    /// the AWS CLI and SDKs: eval "$(lambdabox credentials)".
    ///
    /// The pair is LAMBDABOX_ACCESS_KEY_ID/LAMBDABOX_SECRET_ACCESS_KEY if set,
    /// else the one `serve` generated in the data directory. Client commands
    /// sign with the first of: those two variables; the data directory's
    /// generated pair, if readable; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY;
    /// profile $AWS_PROFILE (or default) of ~/.aws/credentials.
    Credentials,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Run in the background: return once the controller answers its health
    /// check (its pid file in DATA_DIR/lambdabox.pid, its output appended to
    /// DATA_DIR/lambdabox.log), or fail with its reason. `lambdabox down` stops it.
    #[arg(long)]
    pub detach: bool,
    /// Write the controller's pid here while it runs (and remove it at exit).
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Address function URLs are served on, or `off`. It is a listener of
    /// its own so that URLs may face a network the management API does not.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:9001")]
    pub url_listen: UrlListen,
    /// Accept only requests signed with these key pairs, instead of the
    /// pair generated in the data directory: a file of
    /// `ACCESS_KEY_ID SECRET_ACCESS_KEY` lines (`#` comments allowed).
    /// LAMBDABOX_ACCESS_KEY_ID and LAMBDABOX_SECRET_ACCESS_KEY add one more.
    #[arg(long, value_name = "PATH", env = "LAMBDABOX_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Accept unsigned requests and any key: for throwaway test set-ups
    /// only, and only with a loopback --listen address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// The static lambdabox-init binary (default: beside this executable).
    #[arg(long, env = "LAMBDABOX_INIT")]
    pub init_bin: Option<PathBuf>,
    /// Docker network mode for function containers (`bridge`, `none`, …).
    #[arg(long, default_value = "bridge")]
    pub network: String,
    /// Region reported in ARNs and AWS_REGION.
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Budget for the sum of running containers' MemorySize, in MB
    /// (default: 75% of the host's memory).
    #[arg(long, value_name = "MB")]
    pub memory_budget_mb: Option<u64>,
    /// How long an invocation over a concurrency limit waits before 429.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub queue_timeout_ms: u64,
    /// Seconds an idle container is kept (functions may set their own).
    #[arg(long, value_name = "S", default_value_t = 600)]
    pub idle_ttl: u64,
    /// How containers' CPU follows their memory (one vCPU's worth at
    /// 1,769 MB, as on Lambda): `weighted` (a share of contended CPU, idle
    /// CPU free to use), `strict` (Lambda's hard cap once initialised) or
    /// `off`.
    #[arg(long, value_name = "MODE", default_value = "weighted")]
    pub cpu_limit: crate::pool::cpu::CpuMode,
    /// The same as `--cpu-limit off` (kept for scripts that use it).
    #[arg(long, conflicts_with = "cpu_limit")]
    pub no_cpu_limit: bool,
    /// User (`uid:gid`, never 0) functions run as, as on Lambda (993).
    /// Pick one no account on the host uses: without user namespaces, a
    /// host account with that uid could signal or trace function processes.
    #[arg(long, default_value = crate::pool::DEFAULT_SANDBOX_USER)]
    pub user: String,
    /// Seconds shutdown waits for in-flight invocations.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub drain_timeout: u64,
    /// Prewarmed generic containers kept ready per runtime in use: a cold
    /// start takes one instead of creating a container (0: none).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub prewarm: usize,
    /// The most prewarmed containers of one kind kept ready after a burst
    /// of cold starts: the pool grows to the burst's size (within this and
    /// the memory budget) and shrinks back to `--prewarm` once the burst is
    /// an idle TTL old (`--prewarm-max` at or below `--prewarm`: no growth).
    #[arg(long, value_name = "N", default_value_t = crate::server::DEFAULT_PREWARM_MAX)]
    pub prewarm_max: usize,
    /// Whether prewarmed containers of Python, Node.js and Ruby functions start
    /// the language runtime and its runtime client ahead of need, so a cold
    /// start only imports the handler (`false`: they start it when
    /// specialized, as before; for comparison).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub prewarm_runtimes: bool,
    /// Pace of asynchronous retries: a failed event is retried 1 and then 2
    /// units later (Lambda: one minute); throttled events back off from
    /// 1/60 of a unit to 5 units. Shorter for tests.
    #[arg(long, value_name = "MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(60..))]
    pub async_retry_unit_ms: u64,
    /// Run the schedules' clock N times faster than the wall clock, from
    /// the first start with this N (a test setting: with 60, `rate(1
    /// minute)` fires every second). Kept across restarts of one data directory.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub schedule_clock_scale: u32,
    /// How function containers reach the controller: `local` (a socket
    /// folder and bind-mounted code; the fast default) or `remote` (init
    /// dials the controller and fetches its code, as on hosts that share
    /// nothing with it; a test and diagnostic mode on Docker).
    #[arg(long, value_name = "local|remote", default_value = "local", value_parser = parse_transport)]
    pub transport: crate::backend::Transport,
    /// Where the remote transport listens: `HOST:PORT`, or `unix:/path`
    /// (default with `--transport remote`: a unix socket in the run folder,
    /// bind-mounted into each container).
    #[arg(long, value_name = "ADDR")]
    pub remote_listen: Option<crate::remote::Listen>,
    /// The address containers dial for the remote transport when it is not
    /// --remote-listen's (a Service's name in a cluster; a NAT).
    #[arg(long, value_name = "HOST:PORT")]
    pub remote_advertise: Option<String>,
    /// TLS for a TCP --remote-listen without a certificate of your own:
    /// `auto` makes a self-signed one for the host containers dial
    /// (--remote-advertise's, else --remote-listen's), keeps it in the data
    /// directory (a new one if that host changes) and tells containers to
    /// trust it alone. `off` (the default) unless --remote-tls-cert is given.
    #[arg(long, value_name = "auto|off", value_parser = ["auto", "off"])]
    pub remote_tls: Option<String>,
    /// TLS for a TCP --remote-listen: this PEM certificate chain (leaf
    /// first), valid for the host containers dial; with --remote-tls-key.
    #[arg(long, value_name = "PEM")]
    pub remote_tls_cert: Option<PathBuf>,
    /// The PEM private key of --remote-tls-cert.
    #[arg(long, value_name = "PEM")]
    pub remote_tls_key: Option<PathBuf>,
    /// The PEM certificates containers trust for --remote-tls-cert
    /// (default: the chain's last certificate).
    #[arg(long, value_name = "PEM")]
    pub remote_tls_ca: Option<PathBuf>,
    /// Where function containers run: `docker` (this host's engine) or
    /// `kubernetes` (bare pods in a cluster, reached over the remote
    /// transport; needs a TCP --remote-listen the pods can reach).
    #[arg(long, value_name = "docker|kubernetes", default_value = "docker", value_parser = ["docker", "kubernetes"])]
    pub backend: String,
    /// Kubernetes: the function pods' namespace (default: the kubeconfig's,
    /// or the controller pod's own).
    #[arg(long, value_name = "NAME")]
    pub kube_namespace: Option<String>,
    /// Kubernetes: put before image names, where the nodes pull lambdabox's
    /// images from (`registry.example:5000/`).
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub kube_image_prefix: String,
    /// Kubernetes: the pods' imagePullPolicy.
    #[arg(long, value_name = "POLICY", default_value = "IfNotPresent", value_parser = ["IfNotPresent", "Never", "Always"])]
    pub kube_pull_policy: String,
    /// Threads serving the APIs (default: half the CPUs, at least one; the
    /// rest are left to the functions, whose runtimes do the heavy work).
    #[arg(long, value_name = "N", env = "LAMBDABOX_WORKERS", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
}

fn parse_transport(s: &str) -> Result<crate::backend::Transport, String> {
    match s {
        "local" => Ok(crate::backend::Transport::Local),
        "remote" => Ok(crate::backend::Transport::Remote),
        _ => Err("expected local or remote".into()),
    }
}

/// `--url-listen`: an address, or `off` for no function URL listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlListen(pub Option<SocketAddr>);

impl std::str::FromStr for UrlListen {
    type Err = String;

    fn from_str(s: &str) -> Result<UrlListen, String> {
        match s {
            "off" => Ok(UrlListen(None)),
            addr => addr.parse().map(|a| UrlListen(Some(a))).map_err(|e| format!("{e} (expected ADDR:PORT or off)")),
        }
    }
}

impl ServeArgs {
    /// How many threads the controller's async runtime gets. Each warm
    /// invocation is a chain of wake-ups; on few cores, a second worker mostly
    /// adds hand-offs between threads (measured on 2 cores: p50 0.52 ms with
    /// one worker against 0.66–0.74 ms with two), while functions want the
    /// other cores.
    pub fn worker_threads(&self) -> usize {
        match self.workers {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Per function: events waiting, the oldest one's age, dead letters.
    Ls,
    /// The dead letters of a function: events out of attempts or time.
    Failed {
        /// Function name.
        name: String,
    },
    /// Queue a function's dead letters again, attempts and age reset.
    Redrive {
        /// Function name.
        name: String,
        /// Only the event with this request id.
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build the images of the given runtimes (default: all) if missing or stale.
    Build {
        /// Runtime identifiers, e.g. python3.11.
        runtimes: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct UrlArgs {
    /// Function name.
    pub name: String,
    /// The alias the URL invokes (default: the function itself).
    #[arg(long)]
    pub alias: Option<String>,
    /// Who may call it: anyone who reaches the URL listener, or only
    /// requests SigV4-signed with the controller's credentials.
    #[arg(long, value_enum, default_value_t = UrlAuth::None)]
    pub auth: UrlAuth,
    /// An origin browsers may call it from (`*` for any); repeat for more.
    /// Sets the URL's CORS configuration (all methods and headers allowed).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// Stream the answer (InvokeMode RESPONSE_STREAM) instead of buffering it.
    #[arg(long)]
    pub stream: bool,
}

/// `--auth` of `lambdabox url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UrlAuth {
    None,
    Iam,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Function name.
    pub name: String,
    /// Runtime identifier, e.g. python3.11.
    #[arg(long)]
    pub runtime: String,
    /// Handler, e.g. app.handler.
    #[arg(long)]
    pub handler: String,
    /// A folder (zipped for you) or a .zip file.
    #[arg(long)]
    pub code: PathBuf,
    /// Memory in MB (128–10240).
    #[arg(long)]
    pub memory: Option<u32>,
    /// Timeout in seconds (1–900).
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Environment variable, KEY=VALUE; repeat for more.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Size of /tmp in MB (512–10240).
    #[arg(long, value_name = "MB")]
    pub ephemeral: Option<u32>,
    /// Seconds an idle container of this function is kept.
    #[arg(long, value_name = "S")]
    pub idle_ttl: Option<u32>,
    /// Reserved concurrency: at most N invocations at once.
    #[arg(long, value_name = "N")]
    pub reserved: Option<u32>,
    /// Provisioned concurrency: publish a version of what was deployed and
    /// keep N of its containers initialised (invoke NAME:VERSION, as printed);
    /// earlier versions give theirs up. 0 removes it from every version.
    #[arg(long, value_name = "N")]
    pub provisioned: Option<u32>,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// Function name (or NAME:QUALIFIER, or an ARN).
    pub name: String,
    /// The event: JSON text, or @FILE to read it from a file.
    #[arg(long, default_value = "{}")]
    pub payload: String,
    /// Also print the invocation's log (its last 4 KB) to standard error.
    #[arg(long, conflicts_with = "async_")]
    pub log: bool,
    /// Queue the event (InvocationType Event) and print its request id once
    /// it is stored; the function runs later, with Lambda's retries.
    #[arg(long = "async", id = "async_")]
    pub async_: bool,
}

/// The data directory: `given` (`--data-dir`), else the default.
pub fn data_dir(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(d) => Ok(d.to_owned()),
        None => default_data_dir(),
    }
}

/// The default data directory: `$XDG_DATA_HOME/lambdabox`, else `~/.local/share/lambdabox`.
fn default_data_dir() -> Result<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("lambdabox"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/lambdabox"))
}

/// Where lambdabox-init is when not given: beside the running executable.
pub fn default_init_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the lambdabox executable")?;
    Ok(exe.with_file_name("lambdabox-init"))
}

/// The CLI's side of [`crate::client::Client`]: requests are signed with
/// the key pair [`signing_key`] finds, and AWS error answers become one-line
/// errors that say which key was used.
struct Client {
    api: crate::client::Client,
    /// Where the key pair came from, for messages.
    key_source: Option<String>,
}

/// The key pair the CLI signs with, and where it was found (for messages).
#[derive(Debug)]
struct ClientKey {
    pair: KeyPair,
    source: String,
}

impl Client {
    fn new(endpoint: &str, data_dir: Option<&Path>) -> Client {
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|r| !r.is_empty()))
            .unwrap_or_else(|| sign::DEFAULT_REGION.to_owned());
        let (key, key_source) = match signing_key(data_dir) {
            Some(ClientKey { pair, source }) => (Some(pair), Some(source)),
            None => (None, None),
        };
        let api = crate::client::Client::new(reqwest::Client::new(), endpoint, key).in_region(&region);
        Client { api, key_source }
    }

    /// Sign and send a request, whatever its answer.
    async fn execute(&self, req: crate::client::Request) -> Result<reqwest::Response> {
        req.send().await.with_context(|| format!("cannot reach lambdabox at {}", self.api.endpoint()))
    }

    /// Send a request; AWS error answers become one-line errors.
    async fn send(&self, req: crate::client::Request) -> Result<reqwest::Response> {
        let resp = self.execute(req).await?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let code = resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let message = body["message"].as_str().or(body["Message"].as_str()).unwrap_or("no message");
        // The first line only: signature mismatches go on with the canonical request.
        let message = message.lines().next().unwrap_or_default();
        let hint = match (
            self.api.key().zip(self.key_source.as_ref()),
            crate::auth::AuthError::CODES.contains(&code.as_str()),
        ) {
            (_, false) => String::new(),
            (Some((key, source)), true) => format!(
                "\n(signed with access key {} from {source}; see `lambdabox credentials --help`)",
                key.access_key_id(),
            ),
            (None, true) => "\n(no credentials found: run as the controller's user, or set LAMBDABOX_ACCESS_KEY_ID \
                             and LAMBDABOX_SECRET_ACCESS_KEY, or AWS credentials)"
                .to_owned(),
        };
        bail!("{} ({}): {message}{hint}", if code.is_empty() { "error" } else { &code }, status.as_u16())
    }

    async fn exists(&self, name: &str) -> Result<bool> {
        let configuration = || self.api.function(reqwest::Method::GET, name, "/configuration");
        let resp = self.execute(configuration()).await?;
        match resp.status().as_u16() {
            404 => Ok(false),
            s if (200..300).contains(&s) => Ok(true),
            _ => self.send(configuration()).await.map(|_| true),
        }
    }
}

/// The key pair client commands sign with, first found of:
/// 1. `LAMBDABOX_ACCESS_KEY_ID` and `LAMBDABOX_SECRET_ACCESS_KEY`;
/// 2. the controller's generated pair in the data directory, if this user
///    can read it (the controller's own user can);
/// 3. the AWS credential chain's static keys: `AWS_ACCESS_KEY_ID` and
///    `AWS_SECRET_ACCESS_KEY`, else profile `$AWS_PROFILE` (or `default`) of
///    `~/.aws/credentials`.
///
/// None: requests go unsigned (enough for `serve --insecure-no-auth`).
fn signing_key(data_dir: Option<&Path>) -> Option<ClientKey> {
    match credentials::from_env() {
        Ok(Some(pair)) => return Some(ClientKey { pair, source: format!("${}", credentials::ENV_ACCESS_KEY_ID) }),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "ignoring the LAMBDABOX_* credentials"),
    }
    if let Some(pair) = generated_pair(data_dir) {
        return Some(pair);
    }
    credentials::aws_chain().map(|pair| ClientKey { pair, source: "the AWS credential chain".into() })
}

/// The generated pair of the data directory, if this user can read it.
fn generated_pair(data_dir: Option<&Path>) -> Option<ClientKey> {
    let dir = self::data_dir(data_dir).ok()?;
    match keyfile::read(&dir) {
        Ok(pair) => pair.map(|pair| ClientKey { pair, source: keyfile::path(&dir).display().to_string() }),
        Err(e) => {
            tracing::debug!(error = %e, "the generated key pair is not readable; trying the AWS credential chain");
            None
        }
    }
}

/// Zip a folder (sorted, fixed timestamps: the same files give the same
/// CodeSha256) or read a .zip file as is.
pub fn code_zip(path: &Path) -> Result<Vec<u8>> {
    if path.is_file() {
        return std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    }
    if !path.is_dir() {
        bail!("--code {}: no such file or folder", path.display());
    }
    Ok(crate::project::build::zip_dir(path)?)
}

fn parse_env(pairs: &[String]) -> Result<serde_json::Map<String, Value>> {
    pairs
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), Value::String(v.to_owned()))),
            _ => bail!("--env {p}: expected KEY=VALUE"),
        })
        .collect()
}

/// Run a client command.
pub async fn run_client(endpoint: &str, data_dir: Option<&Path>, command: Command) -> Result<ExitCode> {
    match command {
        Command::Credentials => return print_credentials(endpoint, data_dir),
        Command::Down { pid_file, timeout } => {
            let dir = self::data_dir(data_dir)?;
            return daemon::down(&dir, pid_file.as_deref(), std::time::Duration::from_secs(timeout)).await;
        }
        Command::Wait { timeout } => return daemon::wait(endpoint, std::time::Duration::from_secs(timeout)).await,
        Command::Up(ref args) if args.serve => {
            daemon::ensure_serving(endpoint, &self::data_dir(data_dir)?, &args.serve_args).await?
        }
        _ => {}
    }
    let client = Client::new(endpoint, data_dir);
    match command {
        Command::Deploy(args) => deploy(&client, args).await,
        Command::Invoke(args) => invoke(&client, args).await,
        Command::Ls { name: None } => list(&client).await,
        Command::Ls { name: Some(name) } => list_versions(&client, &name).await,
        Command::Publish { name, description } => publish(&client, &name, description).await,
        Command::Alias { name, alias, version, weight } => point_alias(&client, &name, &alias, &version, weight).await,
        Command::Ps => ps(&client).await,
        Command::Logs { name, bytes } => {
            let text = client.send(client.api.logs(&name).query(&[("bytes", bytes)])).await?.bytes().await?;
            std::io::stdout().write_all(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Events(command) => events(&client, command).await,
        Command::Rules => rules(&client).await,
        Command::Up(args) => up::up(&client, args).await,
        Command::Url(args) => url(&client, args).await,
        Command::Rm { name } => {
            client.send(client.api.function(reqwest::Method::DELETE, &name, "")).await?;
            eprintln!("deleted {name}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(_) | Command::Images(_) | Command::Credentials | Command::Down { .. } | Command::Wait { .. } => {
            unreachable!("handled before")
        }
    }
}

/// `lambdabox credentials`: the controller's pair (from the LAMBDABOX_*
/// variables, else the data directory) as `export` lines for a shell.
fn print_credentials(endpoint: &str, data_dir: Option<&Path>) -> Result<ExitCode> {
    let pair = match credentials::from_env()? {
        Some(pair) => pair,
        None => {
            let dir = self::data_dir(data_dir)?;
            keyfile::read(&dir)?.with_context(|| {
                format!(
                    "no generated key pair in {}: the controller makes one at its first start \
                     (unless it was given --credentials-file); pass --data-dir if it uses another folder",
                    dir.display()
                )
            })?
        }
    };
    let region = std::env::var("AWS_DEFAULT_REGION").ok().filter(|r| !r.is_empty());
    let lines = [
        ("AWS_ACCESS_KEY_ID", pair.access_key_id()),
        ("AWS_SECRET_ACCESS_KEY", pair.secret()),
        ("AWS_DEFAULT_REGION", region.as_deref().unwrap_or(sign::DEFAULT_REGION)),
        ("AWS_ENDPOINT_URL", endpoint.trim_end_matches('/')),
    ];
    for (name, value) in lines {
        println!("export {name}={}", shell_quote(value));
    }
    Ok(ExitCode::SUCCESS)
}

/// `value` as one shell word: as is when it is plainly safe, else in single quotes.
fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=+@%".contains(&b));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

async fn deploy(client: &Client, args: DeployArgs) -> Result<ExitCode> {
    let zip = base64::engine::general_purpose::STANDARD.encode(code_zip(&args.code)?);
    let env = parse_env(&args.env)?;
    let mut config = json!({ "Runtime": args.runtime, "Handler": args.handler });
    if let Some(m) = args.memory {
        config["MemorySize"] = m.into();
    }
    if let Some(t) = args.timeout {
        config["Timeout"] = t.into();
    }
    if !args.env.is_empty() {
        config["Environment"] = json!({ "Variables": env });
    }
    if let Some(e) = args.ephemeral {
        config["EphemeralStorage"] = json!({ "Size": e });
    }
    if let Some(t) = args.idle_ttl {
        config["IdleTtlSeconds"] = t.into();
    }
    let name = &args.name;
    let result: Value = if client.exists(name).await? {
        let code = json!({ "ZipFile": zip });
        client.send(client.api.function(reqwest::Method::PUT, name, "/code").json(&code)).await?;
        client
            .send(client.api.function(reqwest::Method::PUT, name, "/configuration").json(&config))
            .await?
            .json()
            .await?
    } else {
        config["FunctionName"] = name.as_str().into();
        config["Code"] = json!({ "ZipFile": zip });
        config["Role"] = "arn:aws:iam::000000000000:role/lambdabox".into();
        client.send(client.api.create_function(&config)).await?.json().await?
    };
    set_concurrency(client, name, args.reserved, args.provisioned).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(ExitCode::SUCCESS)
}

/// Apply `--reserved` and `--provisioned` through their Lambda APIs.
async fn set_concurrency(client: &Client, name: &str, reserved: Option<u32>, provisioned: Option<u32>) -> Result<()> {
    if let Some(n) = reserved {
        let path = format!("/2017-10-31/functions/{name}/concurrency");
        client.send(client.api.put(&path).json(&json!({ "ReservedConcurrentExecutions": n }))).await?;
    }
    if let Some(n) = provisioned {
        provision(client, name, n).await?;
    }
    Ok(())
}

/// `--provisioned N`: as on Lambda, provisioned concurrency belongs to a
/// published version, so publish one and move the function's provisioned
/// containers to it (N = 0: remove them everywhere).
async fn provision(client: &Client, name: &str, n: u32) -> Result<()> {
    let path = format!("/2019-09-30/functions/{name}/provisioned-concurrency");
    let keep = if n == 0 {
        None
    } else {
        let publish = client.api.function(reqwest::Method::POST, name, "/versions").json(&json!({}));
        let published: Value = client.send(publish).await?.json().await?;
        let version = published["Version"].as_str().context("PublishVersion answered no Version")?.to_owned();
        let body = json!({ "ProvisionedConcurrentExecutions": n });
        client.send(client.api.put(&path).query(&[("Qualifier", version.as_str())]).json(&body)).await?;
        eprintln!("{n} provisioned container(s) for {name}:{version}; invoke {name}:{version} to use them");
        Some(version)
    };
    for version in versions(client, name).await? {
        if Some(&version) == keep.as_ref() {
            continue;
        }
        match client.send(client.api.delete(&path).query(&[("Qualifier", version.as_str())])).await {
            Err(e) if e.to_string().contains("ProvisionedConcurrencyConfigNotFoundException") => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// A function's published versions (not `$LATEST`).
async fn versions(client: &Client, name: &str) -> Result<Vec<String>> {
    let all = version_configs(client, name).await?;
    let listed = all.iter().filter_map(|v| v["Version"].as_str());
    Ok(listed.filter(|v| *v != "$LATEST").map(str::to_owned).collect())
}

/// ListVersionsByFunction, every page: `$LATEST` then the versions.
async fn version_configs(client: &Client, name: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut req = client.api.function(reqwest::Method::GET, name, "/versions");
        if let Some(m) = &marker {
            req = req.query(&[("Marker", m)]);
        }
        let page: Value = client.send(req).await?.json().await?;
        out.extend(page["Versions"].as_array().into_iter().flatten().cloned());
        match page["NextMarker"].as_str() {
            Some(m) => marker = Some(m.to_owned()),
            None => return Ok(out),
        }
    }
}

async fn ps(client: &Client) -> Result<ExitCode> {
    let body: Value = client.send(client.api.containers()).await?.json().await?;
    println!(
        "{:<14} {:<28} {:<9} {:>8} {:>8} {:>11}  MEMORY",
        "CONTAINER", "FUNCTION", "STATE", "AGE", "IDLE", "INVOCATIONS"
    );
    for c in body["Containers"].as_array().into_iter().flatten() {
        let secs = |field: &str| format!("{:.1}s", c[field].as_u64().unwrap_or(0) as f64 / 1000.0);
        let state = match (c["state"].as_str().unwrap_or(""), c["provisioned"].as_bool().unwrap_or(false)) {
            (s, true) => format!("{s}*"),
            (s, false) => s.to_owned(),
        };
        println!(
            "{:<14} {:<28} {:<9} {:>8} {:>8} {:>11}  {} MB",
            c["container"].as_str().unwrap_or(""),
            c["function"].as_str().unwrap_or(""),
            state,
            secs("age_ms"),
            secs("idle_ms"),
            c["invocations"].as_u64().unwrap_or(0),
            c["memory_mb"].as_u64().unwrap_or(0)
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn invoke(client: &Client, args: InvokeArgs) -> Result<ExitCode> {
    let payload = match args.payload.strip_prefix('@') {
        Some(file) => std::fs::read(file).with_context(|| format!("cannot read payload file {file}"))?,
        None => args.payload.into_bytes(),
    };
    let mut req = client.api.invoke(&args.name, payload);
    if args.async_ {
        let resp = client.send(req.header("x-amz-invocation-type", "Event")).await?;
        let id = resp.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok()).unwrap_or("");
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.log {
        req = req.header("x-amz-log-type", "Tail");
    }
    let resp = client.send(req).await?;
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let function_error = header("x-amz-function-error");
    if let Some(log) = header("x-amz-log-result") {
        let text = base64::engine::general_purpose::STANDARD.decode(log).context("log result is not base64")?;
        std::io::stderr().write_all(&text)?;
    }
    let body = resp.bytes().await?;
    std::io::stdout().write_all(&body)?;
    println!();
    if let Some(kind) = function_error {
        let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let error_type = doc["errorType"].as_str().unwrap_or("Unknown");
        let message = doc["errorMessage"].as_str().unwrap_or("");
        eprintln!("function error ({kind}): {error_type}: {message}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Create the URL configuration, or update it if there is one; print the URL.
async fn url(client: &Client, args: UrlArgs) -> Result<ExitCode> {
    let path = crate::client::paths::url_config(&args.name);
    let query: Vec<(&str, &str)> = args.alias.iter().map(|a| ("Qualifier", a.as_str())).collect();
    let mut body = json!({
        "AuthType": if args.auth == UrlAuth::Iam { "AWS_IAM" } else { "NONE" },
        "InvokeMode": if args.stream { "RESPONSE_STREAM" } else { "BUFFERED" },
    });
    if !args.cors_origins.is_empty() {
        body["Cors"] = json!({ "AllowOrigins": args.cors_origins, "AllowMethods": ["*"], "AllowHeaders": ["*"] });
    }
    let exists = client.execute(client.api.get(&path).query(&query)).await?.status().is_success();
    let request = if exists { client.api.put(&path) } else { client.api.post(&path) };
    let answer: Value = client.send(request.query(&query).json(&body)).await?.json().await?;
    let url = answer["FunctionUrl"].as_str().context("the answer has no FunctionUrl")?;
    println!("{url}");
    Ok(ExitCode::SUCCESS)
}

async fn events(client: &Client, command: EventsCommand) -> Result<ExitCode> {
    match command {
        EventsCommand::Ls => {
            let page: Value = client.send(client.api.event_depths()).await?.json().await?;
            let now = chrono::Utc::now().timestamp_millis();
            println!("{:<32} {:>8} {:>12} {:>12}", "FUNCTION", "QUEUED", "OLDEST AGE", "DEAD LETTERS");
            for f in page["Functions"].as_array().into_iter().flatten() {
                let age = f["OldestEnqueuedMs"].as_i64().map_or("-".to_owned(), |t| format!("{}s", (now - t) / 1000));
                println!(
                    "{:<32} {:>8} {:>12} {:>12}",
                    f["Function"].as_str().unwrap_or(""),
                    f["Queued"],
                    age,
                    f["DeadLetters"]
                );
            }
        }
        EventsCommand::Failed { name } => {
            let page: Value = client.send(client.api.dead_letters(&name)).await?.json().await?;
            for d in page["DeadLetters"].as_array().into_iter().flatten() {
                println!("{}", serde_json::to_string(d)?);
            }
        }
        EventsCommand::Redrive { name, id } => {
            let mut req = client.api.redrive(&name);
            if let Some(id) = &id {
                req = req.query(&[("RequestId", id)]);
            }
            let out: Value = client.send(req).await?.json().await?;
            eprintln!("queued {} event(s) of {name} again", out["Redriven"]);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn rules(client: &Client) -> Result<ExitCode> {
    let page: Value = client.send(client.api.rules()).await?.json().await?;
    println!("{:<32} {:<9} {:>7} {:<21} WHEN", "RULE", "STATE", "TARGETS", "NEXT FIRING");
    for r in page["Rules"].as_array().into_iter().flatten() {
        let when = r["ScheduleExpression"].as_str().or(r["EventPattern"].as_str()).unwrap_or("");
        println!(
            "{:<32} {:<9} {:>7} {:<21} {when}",
            r["Name"].as_str().unwrap_or(""),
            r["State"].as_str().unwrap_or(""),
            r["Targets"],
            r["NextFiring"].as_str().unwrap_or("-"),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn publish(client: &Client, name: &str, description: Option<String>) -> Result<ExitCode> {
    let body = json!({ "Description": description.unwrap_or_default() });
    let published: Value =
        client.send(client.api.function(reqwest::Method::POST, name, "/versions").json(&body)).await?.json().await?;
    println!("{}", published["Version"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// `lambdabox alias`: UpdateAlias, or CreateAlias when it does not exist yet.
async fn point_alias(
    client: &Client,
    name: &str,
    alias: &str,
    version: &str,
    weight: Option<String>,
) -> Result<ExitCode> {
    let mut body = json!({ "FunctionVersion": version });
    if let Some(w) = weight {
        let (extra, share) = w.split_once('=').context("--weight: expected VERSION=WEIGHT, e.g. 2=0.1")?;
        let share: f64 = share.parse().context("--weight: the weight is a number between 0 and 1")?;
        body["RoutingConfig"] = json!({ "AdditionalVersionWeights": { extra: share } });
    }
    let path = format!("/aliases/{alias}");
    let updated = client.send(client.api.function(reqwest::Method::PUT, name, &path).json(&body)).await;
    let answer: Value = match updated {
        Err(e) if e.to_string().contains("ResourceNotFoundException") => {
            body["Name"] = json!(alias);
            client.send(client.api.function(reqwest::Method::POST, name, "/aliases").json(&body)).await?.json().await?
        }
        other => other?.json().await?,
    };
    println!("{}", answer["AliasArn"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

/// `lambdabox ls NAME`: versions, then aliases.
async fn list_versions(client: &Client, name: &str) -> Result<ExitCode> {
    println!("{:<10} {:<20} {:<30}  DESCRIPTION", "VERSION", "LAST MODIFIED", "CODE SHA256");
    for v in version_configs(client, name).await? {
        let text = |k: &str| v[k].as_str().unwrap_or("").to_owned();
        println!(
            "{:<10} {:<20.19} {:<30.30}  {}",
            text("Version"),
            text("LastModified"),
            text("CodeSha256"),
            text("Description")
        );
    }
    let aliases: Value = client.send(client.api.function(reqwest::Method::GET, name, "/aliases")).await?.json().await?;
    let listed = aliases["Aliases"].as_array().cloned().unwrap_or_default();
    if !listed.is_empty() {
        println!("\n{:<20} {:<10} ROUTING", "ALIAS", "VERSION");
        for a in listed {
            let routing = a["RoutingConfig"]["AdditionalVersionWeights"]
                .as_object()
                .map(|w| w.iter().map(|(v, share)| format!("{v}={share}")).collect::<Vec<_>>().join(","));
            println!(
                "{:<20} {:<10} {}",
                a["Name"].as_str().unwrap_or(""),
                a["FunctionVersion"].as_str().unwrap_or(""),
                routing.unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(client: &Client) -> Result<ExitCode> {
    let mut marker: Option<String> = None;
    println!("{:<32} {:<12} {:>7} {:>8}  LAST MODIFIED", "NAME", "RUNTIME", "MEMORY", "TIMEOUT");
    loop {
        let mut req = client.api.get(crate::client::paths::FUNCTIONS);
        if let Some(m) = &marker {
            req = req.query(&[("Marker", m)]);
        }
        let page: Value = client.send(req).await?.json().await?;
        for f in page["Functions"].as_array().into_iter().flatten() {
            println!(
                "{:<32} {:<12} {:>7} {:>7}s  {}",
                f["FunctionName"].as_str().unwrap_or(""),
                f["Runtime"].as_str().unwrap_or(""),
                f["MemorySize"].as_u64().unwrap_or(0),
                f["Timeout"].as_u64().unwrap_or(0),
                f["LastModified"].as_str().unwrap_or("")
            );
        }
        match page["NextMarker"].as_str() {
            Some(m) => marker = Some(m.to_owned()),
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}
