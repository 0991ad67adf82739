//! Warm containers per function, started on demand.
//!
//! A [`Container`] serves one function revision for its whole life and one
//! invocation at a time: the pool hands it out exclusively ([`Pool::acquire`])
//! and takes it back when the invocation is over ([`Pool::release`]). Each
//! container has a watcher task that learns of its death from the backend,
//! settles its mailbox and cleans up, so a crash is never noticed late.

mod environment;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::backend::{Backend, BackendError, BindMount, ContainerSpec, ExitInfo};
use crate::function::{Function, Realm, Runtime};
use crate::runtime_api::{self, ExitReason, Mailbox};

pub use environment::lambda_environment;

/// Label keys every lambdabox container carries.
pub mod labels {
    /// Marks a container as ours.
    pub const MANAGED: &str = "lambdabox";
    /// Which data directory's controller owns it (a hash of the path), so a
    /// restarted controller finds what its predecessor left behind.
    pub const HOME: &str = "lambdabox.home";
    /// Which run of that controller started it.
    pub const INSTANCE: &str = "lambdabox.instance";
    pub const FUNCTION: &str = "lambdabox.function";
    pub const VERSION: &str = "lambdabox.version";
    pub const REVISION: &str = "lambdabox.revision";
}

/// Where containers' mounts come from inside them.
const INIT_TARGET: &str = "/lambdabox/init";
const SOCKET_DIR_TARGET: &str = "/lambdabox/rt";
const TASK_ROOT: &str = "/var/task";

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("runtime API socket {path}: {source}")]
    Socket { path: PathBuf, source: std::io::Error },
}

/// Settings fixed at start-up.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Per-container socket folders live here. Unix socket paths are limited
    /// to 108 bytes, so keep it short.
    pub run_dir: PathBuf,
    /// The static lambdabox-init binary on the host.
    pub init_bin: PathBuf,
    /// Docker network mode for function containers.
    pub network: String,
    /// Value of [`labels::HOME`].
    pub home: String,
    /// Value of [`labels::INSTANCE`].
    pub instance: String,
    pub realm: Realm,
}

/// What the pool needs to start a container for a function.
#[derive(Debug, Clone)]
pub struct Launch {
    pub function: Arc<Function>,
    pub runtime: &'static Runtime,
    pub image: String,
    /// The unpacked code on the host, mounted at `/var/task`.
    pub task_dir: PathBuf,
}

/// One function container and its Runtime API.
#[derive(Debug)]
pub struct Container {
    /// Short id naming its socket folder and Docker name.
    pub key: String,
    pub docker_id: String,
    pub function: String,
    pub revision: String,
    pub mailbox: Arc<Mailbox>,
    pub started: Instant,
    invocations: AtomicU64,
    server: JoinHandle<()>,
}

impl Container {
    /// Count one more invocation served; returns the new total.
    pub fn served(&self) -> u64 {
        self.invocations.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// See the module documentation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Arc<dyn Backend>,
    config: PoolConfig,
    /// Idle containers per function name, most recently used last.
    idle: Mutex<HashMap<String, Vec<Arc<Container>>>>,
    /// Every container this run started and has not yet seen die.
    live: Mutex<HashMap<String, Arc<Container>>>,
}

impl Pool {
    pub fn new(backend: Arc<dyn Backend>, config: PoolConfig) -> Pool {
        Pool { inner: Arc::new(Inner { backend, config, idle: Mutex::default(), live: Mutex::default() }) }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Remove containers an earlier run from this data directory left behind.
    pub async fn remove_leftovers(&self) -> Result<usize, PoolError> {
        let ids = self.inner.backend.list_labelled(labels::HOME, &self.inner.config.home).await?;
        let ours: Vec<String> =
            self.inner.live.lock().expect("pool poisoned").values().map(|c| c.docker_id.clone()).collect();
        let stale: Vec<String> = ids.into_iter().filter(|id| !ours.contains(id)).collect();
        let count = stale.len();
        futures_util::future::join_all(stale.into_iter().map(|id| self.inner.backend.remove(id))).await;
        Ok(count)
    }

    /// An idle warm container of this function revision, else a new one.
    /// Returns the container and whether it was started for this call (cold).
    pub async fn acquire(&self, launch: &Launch) -> Result<(Arc<Container>, bool), PoolError> {
        if let Some(c) = self.take_idle(&launch.function) {
            return Ok((c, false));
        }
        Ok((self.start(launch).await?, true))
    }

    fn take_idle(&self, f: &Function) -> Option<Arc<Container>> {
        let mut idle = self.inner.idle.lock().expect("pool poisoned");
        let list = idle.get_mut(&f.name)?;
        while let Some(c) = list.pop() {
            if c.revision == f.revision_id && c.mailbox.is_usable() {
                return Some(c);
            }
            self.destroy(c);
        }
        None
    }

    /// Give a container back after an invocation: warm if it can serve
    /// again, removed otherwise.
    pub fn release(&self, c: Arc<Container>) {
        if !c.mailbox.is_usable() || !self.inner.live.lock().expect("pool poisoned").contains_key(&c.key) {
            self.destroy(c);
            return;
        }
        self.inner.idle.lock().expect("pool poisoned").entry(c.function.clone()).or_default().push(c);
    }

    /// Remove a container now (timeout, crash, retirement). Its watcher does the
    /// rest of the clean-up when Docker reports it gone.
    pub fn destroy(&self, c: Arc<Container>) {
        c.mailbox.exited(ExitReason::Removed);
        let backend = self.inner.backend.clone();
        tokio::spawn(async move {
            if let Err(e) = backend.remove(c.docker_id.clone()).await {
                tracing::warn!(container = %c.key, error = %e, "could not remove container");
            }
        });
    }

    /// Retire every idle container of `function` (updated or deleted).
    /// Busy ones are retired by [`Pool::release`] when their revision is stale.
    pub fn retire(&self, function: &str) {
        let retired = self.inner.idle.lock().expect("pool poisoned").remove(function).unwrap_or_default();
        for c in retired {
            self.destroy(c);
        }
    }

    /// How many containers of `function` are alive (idle or busy).
    pub fn count(&self, function: &str) -> usize {
        self.inner.live.lock().expect("pool poisoned").values().filter(|c| c.function == function).count()
    }

    /// Remove every container of this run; used at shutdown.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Container>> = self.inner.live.lock().expect("pool poisoned").drain().map(|(_, c)| c).collect();
        self.inner.idle.lock().expect("pool poisoned").clear();
        let removals = all.iter().map(|c| {
            c.mailbox.exited(ExitReason::Removed);
            c.server.abort();
            self.inner.backend.remove(c.docker_id.clone())
        });
        for result in futures_util::future::join_all(removals).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not remove container at shutdown");
            }
        }
        let _ = std::fs::remove_dir_all(&self.inner.config.run_dir);
    }

    async fn start(&self, launch: &Launch) -> Result<Arc<Container>, PoolError> {
        let key = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let dir = self.inner.config.run_dir.join(&key);
        let socket_err = |source| PoolError::Socket { path: dir.clone(), source };
        std::fs::create_dir_all(&dir).map_err(socket_err)?;
        let listener = runtime_api::bind(&dir.join("runtime.sock")).map_err(socket_err)?;
        let mailbox = Arc::new(Mailbox::new());
        let server = tokio::spawn(runtime_api::serve(listener, mailbox.clone()));
        let spec = self.container_spec(launch, &key, &dir);
        let docker_id = match self.inner.backend.start(spec).await {
            Ok(id) => id,
            Err(e) => {
                server.abort();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.into());
            }
        };
        let f = &launch.function;
        let container = Arc::new(Container {
            key: key.clone(),
            docker_id,
            function: f.name.clone(),
            revision: f.revision_id.clone(),
            mailbox,
            started: Instant::now(),
            invocations: AtomicU64::new(0),
            server,
        });
        self.inner.live.lock().expect("pool poisoned").insert(key, container.clone());
        tokio::spawn(watch(self.inner.clone(), container.clone(), dir));
        tracing::info!(function = %f.name, container = %container.key, "container started");
        Ok(container)
    }

    fn container_spec(&self, launch: &Launch, key: &str, socket_dir: &std::path::Path) -> ContainerSpec {
        let cfg = &self.inner.config;
        let f = &launch.function;
        let mut entrypoint = vec![INIT_TARGET.to_owned()];
        entrypoint.extend(launch.runtime.bootstrap.iter().map(|s| s.to_string()));
        let mut env = lambda_environment(f, launch.runtime, &cfg.realm, "on-demand");
        env.push(format!("LAMBDABOX_RUNTIME_SOCKET={SOCKET_DIR_TARGET}/runtime.sock"));
        let labels = HashMap::from([
            (labels::MANAGED.to_owned(), "1".to_owned()),
            (labels::HOME.to_owned(), cfg.home.clone()),
            (labels::INSTANCE.to_owned(), cfg.instance.clone()),
            (labels::FUNCTION.to_owned(), f.name.clone()),
            (labels::VERSION.to_owned(), crate::function::LATEST.to_owned()),
            (labels::REVISION.to_owned(), f.revision_id.clone()),
        ]);
        ContainerSpec {
            name: format!("lambdabox-{}-{key}", f.name),
            image: launch.image.clone(),
            entrypoint,
            env,
            labels,
            mounts: vec![
                BindMount { source: cfg.init_bin.clone(), target: INIT_TARGET.into(), read_only: true },
                BindMount { source: socket_dir.to_path_buf(), target: SOCKET_DIR_TARGET.into(), read_only: true },
                BindMount { source: launch.task_dir.clone(), target: TASK_ROOT.into(), read_only: true },
            ],
            memory_mb: f.memory_mb,
            network: cfg.network.clone(),
            working_dir: TASK_ROOT.into(),
        }
    }
}

/// Wait for a container to stop, then settle its mailbox and clean up.
async fn watch(inner: Arc<Inner>, c: Arc<Container>, dir: PathBuf) {
    let reason = match inner.backend.wait(c.docker_id.clone()).await {
        Ok(ExitInfo { oom_killed: true, .. }) => ExitReason::OutOfMemory,
        Ok(ExitInfo { code, .. }) => c.mailbox.noted_exit().unwrap_or(ExitReason::Code(code as i32)),
        Err(e) => {
            tracing::warn!(container = %c.key, error = %e, "lost track of container");
            ExitReason::Removed
        }
    };
    c.mailbox.exited(reason);
    inner.live.lock().expect("pool poisoned").remove(&c.key);
    if let Some(list) = inner.idle.lock().expect("pool poisoned").get_mut(&c.function) {
        list.retain(|x| x.key != c.key);
    }
    c.server.abort();
    if let Err(e) = inner.backend.remove(c.docker_id.clone()).await {
        tracing::warn!(container = %c.key, error = %e, "could not remove stopped container");
    }
    let _ = std::fs::remove_dir_all(dir);
    tracing::info!(function = %c.function, container = %c.key, ?reason, "container gone");
}
