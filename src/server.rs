//! Wiring and lifecycle: open the store, connect to Docker, clear what an
//! earlier run left, serve the API until `shutdown` resolves, then remove
//! every container this run started.
//!
//! [`Controller::serve`] takes a bound listener so `main` owns the address and
//! tests can bind `127.0.0.1:0`.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use axum::Extension;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::api;
use crate::api::auth::Access;
use crate::arn::Realm;
use crate::auth::keyfile::{self, KeyFileError};
use crate::auth::{KeyRing, Verifier};
use crate::backend::docker::DockerBackend;
use crate::backend::kube::{KubeBackend, KubeOptions};
use crate::backend::{Backend, BackendError, Transport};
use crate::engine::Engine;
use crate::events::{Bus, RuleStoreError};
use crate::gateway::Gateway;
use crate::images::Images;
use crate::logs::{LogBook, LogError};
use crate::pool::{Pool, PoolConfig, PoolError};
use crate::queue::{Dispatcher, Queue, QueueConfig, QueueStore, QueueStoreError};
use crate::remote;
use crate::store::{Store, StoreError};
use crate::urls;

mod sharing;

pub use sharing::SharingError;

/// Longest unix socket path the kernel accepts, less room for `KEY/runtime.sock`.
const MAX_RUN_DIR_LEN: usize = 108 - 32;

/// The most prewarmed containers of one kind kept after bursts, unless
/// configured: a burst of 64 first invocations (the bench's) finds one each.
pub const DEFAULT_PREWARM_MAX: usize = 64;

/// Settings for one controller, parsed once at start-up.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub init_bin: PathBuf,
    pub network: String,
    pub realm: Realm,
    /// Budget for the sum of live containers' MemorySize; `None` means 75%
    /// of the host's memory.
    pub memory_budget_mb: Option<u64>,
    pub queue_timeout: Duration,
    pub idle_ttl: Duration,
    pub cpu: crate::pool::cpu::CpuMode,
    pub user: String,
    /// How long shutdown waits for in-flight invocations.
    pub drain_timeout: Duration,
    /// Generic containers kept ready per runtime image in use, at least.
    pub prewarm: usize,
    /// The most kept ready of one kind after bursts of cold starts.
    pub prewarm_max: usize,
    /// Start language runtimes in them ahead of need, where the runtime can.
    pub prewarm_runtimes: bool,
    /// Who may call the API.
    pub auth: ApiAuth,
    /// How asynchronous events are retried.
    pub queue: QueueConfig,
    /// How much faster than the wall clock schedules run (1: not at all;
    /// more for tests, see [`crate::events::clock`]).
    pub schedule_clock_scale: u32,
    /// How function containers reach the controller: the local socket
    /// handoff (the default, and fast), or the remote transport (a test
    /// and diagnostic mode on Docker, the path a Kubernetes backend uses).
    pub transport: Transport,
    /// Where the remote transport listens; without it, a unix socket in
    /// the run folder, bind-mounted alone into each container.
    pub remote_listen: Option<remote::Listen>,
    /// What containers dial when it is not `remote_listen`'s address.
    pub remote_advertise: Option<String>,
    /// TLS on a TCP `remote_listen`.
    pub remote_tls: Option<remote::tls::TlsSource>,
    /// Where function containers run.
    pub backend: BackendChoice,
}

/// Which engine runs function containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BackendChoice {
    /// This host's Docker Engine (local or remote transport).
    #[default]
    Docker,
    /// Bare pods in a Kubernetes cluster, over the remote transport.
    Kubernetes { namespace: Option<String>, image_prefix: String, pull_policy: String },
}

/// How API callers are authenticated, as configured.
#[derive(Debug, Clone)]
pub enum ApiAuth {
    /// Requests are signed with the key pair generated at first start and
    /// kept in the data directory ([`keyfile`]): secure with no set-up.
    Generated,
    /// Requests are signed with one of these pairs (`--credentials-file`,
    /// `LAMBDABOX_ACCESS_KEY_ID`); they replace the generated one.
    Configured(KeyRing),
    /// `--insecure-no-auth`: anything goes (loopback only, checked by `main`).
    Off,
}

impl ServeConfig {
    /// Defaults for everything but where things are.
    pub fn new(data_dir: PathBuf, init_bin: PathBuf) -> ServeConfig {
        ServeConfig {
            data_dir,
            init_bin,
            network: "bridge".into(),
            realm: Realm::default(),
            memory_budget_mb: None,
            queue_timeout: Duration::from_millis(100),
            idle_ttl: Duration::from_secs(600),
            cpu: crate::pool::cpu::CpuMode::Weighted,
            user: crate::pool::DEFAULT_SANDBOX_USER.into(),
            drain_timeout: Duration::from_secs(30),
            prewarm: 1,
            prewarm_max: DEFAULT_PREWARM_MAX,
            prewarm_runtimes: true,
            auth: ApiAuth::Generated,
            queue: QueueConfig::default(),
            schedule_clock_scale: 1,
            transport: Transport::Local,
            remote_listen: None,
            remote_advertise: None,
            remote_tls: None,
            backend: BackendChoice::Docker,
        }
    }
}

/// Three quarters of the host's memory (`MemTotal`), in MB.
pub fn default_memory_budget_mb() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(4 * 1024 * 1024);
    total_kb / 1024 * 3 / 4
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot reach the Docker engine ({0}); is dockerd running? (`make run` starts it)")]
    Docker(#[from] BackendError),
    #[error("Kubernetes backend: {0}")]
    Kubernetes(BackendError),
    #[error("lambdabox-init's image: {0}")]
    InitImage(#[from] crate::images::ImageError),
    #[error("{0}")]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Logs(#[from] LogError),
    #[error("lambdabox-init not found at {0}; build it with `make build` or pass --init-bin")]
    InitMissing(PathBuf),
    #[error("API credentials: {0}")]
    Credentials(#[from] KeyFileError),
    #[error("{0}")]
    Queue(#[from] QueueStoreError),
    #[error("{0}")]
    Rules(#[from] RuleStoreError),
    #[error("container socket folder: {0}")]
    RunDir(std::io::Error),
    #[error(transparent)]
    Sharing(#[from] SharingError),
    #[error(transparent)]
    Remote(#[from] remote::RemoteError),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

/// A stable short id for a data directory: containers are labelled with it.
pub fn home_id(data_dir: &Path) -> String {
    let canonical = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A started controller: store open, Docker reachable, leftovers cleared.
/// Split from [`Controller::serve`] so callers can announce readiness only
/// once start-up work is done.
#[derive(Debug)]
pub struct Controller {
    engine: Arc<Engine>,
    access: Access,
    pool: Pool,
    dispatcher: Dispatcher,
    drain_timeout: Duration,
    /// Project stacks and their API route listeners.
    gateway: Arc<Gateway>,
    /// Cancelled when shutdown begins: every listener stops accepting.
    stop: tokio_util::sync::CancellationToken,
}

impl Controller {
    /// Open the store, connect to Docker and remove containers an earlier
    /// run from this data directory left behind.
    pub async fn start(config: ServeConfig) -> Result<Controller, ServeError> {
        if !config.init_bin.is_file() {
            return Err(ServeError::InitMissing(config.init_bin));
        }
        let store = Arc::new(Store::open(&config.data_dir)?);
        let access = api_access(&config)?;
        let run_dir = run_dir(&config.data_dir).map_err(ServeError::RunDir)?;
        let (backend, images, init_bin) = backend(&config, &run_dir).await?;
        let hub = open_hub(&config, &run_dir).await?;
        let home = home_id(&config.data_dir);
        let logs = Arc::new(LogBook::open(&config.data_dir.join("logs"))?);
        let pool = Pool::new(
            backend,
            PoolConfig {
                run_dir,
                init_bin,
                network: config.network.clone(),
                home,
                instance: uuid::Uuid::new_v4().simple().to_string(),
                realm: config.realm.clone(),
                memory_budget_mb: config.memory_budget_mb.unwrap_or_else(default_memory_budget_mb),
                queue_timeout: config.queue_timeout,
                idle_ttl: config.idle_ttl,
                cpu: config.cpu,
                user: config.user.clone(),
                prewarm: config.prewarm,
                prewarm_max: config.prewarm_max,
                remote: hub,
                prestart: config.prewarm_runtimes,
                start_limit: crate::pool::default_start_limit(),
            },
            logs.clone(),
        );
        // Not awaited: the removal logs what it did once done.
        drop(pool.remove_leftovers().await?);
        let images = Arc::new(images);
        tracing::info!(
            data_dir = %config.data_dir.display(),
            functions = store.list().len(),
            memory_budget_mb = pool.config().memory_budget_mb,
            "controller started"
        );
        let events = QueueStore::open(&config.data_dir)?;
        let (queue, dispatcher) = Queue::new(events, config.queue);
        let bus = Bus::open(&config.data_dir, config.realm.clone(), config.schedule_clock_scale)?;
        tracing::info!(rules = bus.rules().len(), "event bus rules loaded");
        let engine = Arc::new(Engine::new(store, pool.clone(), images, logs, config.realm, queue, bus));
        pool.start_maintenance();
        engine.restore_provisioned().await;
        // Also checks (and if needed builds) the images of the runtimes in
        // use, so their first invocation does not wait for it.
        tokio::spawn(engine.clone().keep_prewarm_current());
        let stop = tokio_util::sync::CancellationToken::new();
        let gateway = Gateway::open(engine.clone(), &config.data_dir, stop.clone()).await;
        Ok(Controller { engine, access, pool, dispatcher, drain_timeout: config.drain_timeout, gateway, stop })
    }

    /// Serve the Lambda API on `listener`, and function URLs on
    /// `url_listener` when given, until `shutdown` resolves; then stop
    /// accepting, let in-flight invocations finish (at most the drain
    /// timeout) and remove every container this run started.
    pub async fn serve(
        self,
        listener: TcpListener,
        url_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let stop = self.stop.clone();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown.await;
                stop.cancel();
            }
        });
        // Queued events run until shutdown begins; what is still queued (or
        // in flight) then runs again at the next start.
        tokio::spawn(self.dispatcher.run(self.engine.clone(), stop.clone()));
        // Schedule rules fire from now on; slots missed while stopped fire
        // once (see crate::events::scheduler).
        tokio::spawn(crate::events::scheduler::run(self.engine.clone(), stop.clone()));
        let url_port = match &url_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let domain = urls::Domain::new(&self.engine.realm().region, url_port);
        let app =
            api::app(self.engine.clone(), self.access.clone(), domain.clone()).layer(Extension(self.gateway.clone()));
        let api =
            axum::serve(nodelay(listener), app).with_graceful_shutdown(stop.clone().cancelled_owned()).into_future();
        let url_server = async {
            let Some(listener) = url_listener else { return Ok(()) };
            let app = urls::app(self.engine.clone(), self.access.verifier(), domain);
            axum::serve(nodelay(listener), app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future()
                .await
        };
        let servers = async {
            let (api, urls) = tokio::join!(api, url_server);
            api.and(urls)
        };
        let drain_limit = async {
            stop.cancelled().await;
            tokio::time::sleep(self.drain_timeout).await;
        };
        let result = tokio::select! {
            r = servers => r.map_err(ServeError::from),
            () = drain_limit => {
                tracing::warn!(secs = self.drain_timeout.as_secs(), "in-flight invocations outlived the drain timeout");
                Ok(())
            }
        };
        tracing::info!("shutting down: removing containers");
        self.pool.shutdown().await;
        result
    }
}

/// The backend `config` chooses, the images it runs (built here when a
/// Docker Engine is beside the controller), and the lambdabox-init path
/// the pool mounts.
async fn backend(config: &ServeConfig, run_dir: &Path) -> Result<(Arc<dyn Backend>, Images, PathBuf), ServeError> {
    Ok(match &config.backend {
        BackendChoice::Docker => {
            let docker = DockerBackend::connect().await?.discover_host_paths().await?.with_transport(config.transport);
            sharing::check(docker.host_paths(), "data directory", &config.data_dir)?;
            sharing::check(docker.host_paths(), "socket folder", run_dir)?;
            let docker = docker.with_loopback_hosts(run_dir)?;
            let init_bin = sharing::init_bin(docker.host_paths(), &config.init_bin, &config.data_dir)?;
            (Arc::new(docker.clone()) as Arc<dyn Backend>, Images::new(Some(docker)), init_bin)
        }
        BackendChoice::Kubernetes { namespace, image_prefix, pull_policy } => {
            let docker = match DockerBackend::connect().await {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::info!(error = %e, "no Docker engine beside the controller: images must be in the cluster's reach");
                    None
                }
            };
            let images = Images::new(docker);
            let options = KubeOptions {
                namespace: namespace.clone(),
                image_prefix: image_prefix.clone(),
                init_image: images.ensure_init(&config.init_bin).await?,
                pull_policy: pull_policy.clone(),
                queue_timeout: config.queue_timeout,
            };
            let kube = KubeBackend::connect(options).await.map_err(ServeError::Kubernetes)?;
            (Arc::new(kube) as Arc<dyn Backend>, images, config.init_bin.clone())
        }
    })
}

/// The remote transport's hub, when configured or when containers use it.
async fn open_hub(config: &ServeConfig, run_dir: &Path) -> Result<Option<Arc<remote::Hub>>, ServeError> {
    let listen = match (&config.remote_listen, config.transport) {
        (Some(l), _) => l.clone(),
        (None, Transport::Remote) => remote::Listen::Unix(run_dir.join("controller.sock")),
        (None, Transport::Local) => return Ok(None),
    };
    let archives = config.data_dir.join("archives");
    let hub = remote::Hub::bind(&listen, config.remote_advertise.clone(), archives, config.remote_tls.as_ref()).await?;
    let tls = hub.access().ca.is_some();
    tracing::info!(listen = ?listen, transport = ?config.transport, tls, "remote transport listening");
    Ok(Some(hub))
}

/// Answers go out as soon as they are written (no Nagle delay).
fn nodelay(listener: TcpListener) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    fn set(tcp: &mut tokio::net::TcpStream) {
        let _ = tcp.set_nodelay(true);
    }
    listener.tap_io(set)
}

/// Resolve the configured authentication: load or generate the key pair,
/// or take the configured ones (removing a generated pair they replace).
fn api_access(config: &ServeConfig) -> Result<Access, ServeError> {
    let path = keyfile::path(&config.data_dir);
    let keys = match &config.auth {
        ApiAuth::Off => {
            tracing::warn!("--insecure-no-auth: the API accepts unsigned requests from anyone who can reach it");
            return Ok(Access::Open);
        }
        ApiAuth::Configured(keys) => {
            if keyfile::remove(&config.data_dir)? {
                tracing::info!(path = %path.display(), "removed the generated key pair: configured credentials replace it");
            }
            tracing::info!(key_pairs = keys.len(), "API requests must be signed with a configured key pair");
            keys.clone()
        }
        ApiAuth::Generated => {
            let (pair, generated) = keyfile::load_or_generate(&config.data_dir)?;
            tracing::info!(
                access_key_id = pair.access_key_id(),
                path = %path.display(),
                generated,
                "API requests must be signed with this key pair; `lambdabox credentials` prints it"
            );
            KeyRing::new(vec![pair]).map_err(KeyFileError::from)?
        }
    };
    Ok(Access::signed(Verifier::new(keys), &config.realm.region))
}

/// Where container control sockets live: a private folder under the data
/// directory when the path is short enough for a unix socket, else a fresh
/// one under the temp directory, made by `mkdtemp` (unpredictable, 0700,
/// ours by construction; another user's folder can never be adopted).
fn run_dir(data_dir: &Path) -> std::io::Result<PathBuf> {
    let candidate = data_dir.join("run");
    if candidate.as_os_str().len() <= MAX_RUN_DIR_LEN {
        crate::private::dir(&candidate)?;
        return Ok(candidate);
    }
    use std::os::unix::fs::PermissionsExt;
    let fresh = tempfile::Builder::new()
        .prefix("lambdabox-run-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?
        .keep();
    if fresh.as_os_str().len() > MAX_RUN_DIR_LEN {
        return Err(std::io::Error::other(format!(
            "no folder short enough for unix sockets: {} and {} are both over {MAX_RUN_DIR_LEN} bytes",
            candidate.display(),
            fresh.display()
        )));
    }
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_never_run_as_root_by_default() {
        let config = ServeConfig::new(PathBuf::from("/data"), PathBuf::from("/init"));
        assert_eq!(config.user, crate::pool::DEFAULT_SANDBOX_USER);
    }
}
