//! Wiring and lifecycle: open the store, connect to Docker, clear what an
//! earlier run left, serve the API until `shutdown` resolves, then remove
//! every container this run started.
//!
//! [`Controller::serve`] takes a bound listener so `main` owns the address and
//! tests can bind `127.0.0.1:0`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::serve::ListenerExt;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::api;
use crate::backend::docker::DockerBackend;
use crate::backend::BackendError;
use crate::engine::Engine;
use crate::function::{Realm, Runtime};
use crate::images::Images;
use crate::pool::{Pool, PoolConfig, PoolError};
use crate::store::{Store, StoreError};

/// Longest unix socket path the kernel accepts, less room for `KEY/runtime.sock`.
const MAX_RUN_DIR_LEN: usize = 108 - 32;

/// Settings for one controller, parsed once at start-up.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub init_bin: PathBuf,
    pub network: String,
    pub realm: Realm,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot reach the Docker engine ({0}); is dockerd running? (`make run` starts it)")]
    Docker(#[from] BackendError),
    #[error("{0}")]
    Pool(#[from] PoolError),
    #[error("lambdabox-init not found at {0}; build it with `make build` or pass --init-bin")]
    InitMissing(PathBuf),
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
    pool: Pool,
}

impl Controller {
    /// Open the store, connect to Docker and remove containers an earlier
    /// run from this data directory left behind.
    pub async fn start(config: ServeConfig) -> Result<Controller, ServeError> {
        if !config.init_bin.is_file() {
            return Err(ServeError::InitMissing(config.init_bin));
        }
        let store = Arc::new(Store::open(&config.data_dir)?);
        let docker = DockerBackend::connect().await?;
        let home = home_id(&config.data_dir);
        let pool = Pool::new(
            Arc::new(docker.clone()),
            PoolConfig {
                run_dir: run_dir(&config.data_dir, &home),
                init_bin: config.init_bin.clone(),
                network: config.network.clone(),
                home,
                instance: uuid::Uuid::new_v4().simple().to_string(),
                realm: config.realm.clone(),
            },
        );
        let removed = pool.remove_leftovers().await?;
        if removed > 0 {
            tracing::info!(removed, "removed containers left by an earlier run");
        }
        let images = Arc::new(Images::new(docker));
        prepare_images_in_use(&store, &images);
        tracing::info!(data_dir = %config.data_dir.display(), functions = store.list().len(), "controller started");
        let engine = Arc::new(Engine::new(store, pool.clone(), images, config.realm));
        Ok(Controller { engine, pool })
    }

    /// Serve the Lambda API on `listener` until `shutdown` resolves, then
    /// remove every container this run started.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let result = axum::serve(listener, api::app(self.engine)).with_graceful_shutdown(shutdown).await;
        tracing::info!("shutting down: removing containers");
        self.pool.shutdown().await;
        result.map_err(ServeError::from)
    }
}

/// Where container sockets live: under the data directory when the path is
/// short enough for a unix socket, else under the temp directory.
fn run_dir(data_dir: &Path, home: &str) -> PathBuf {
    let candidate = data_dir.join("run");
    if candidate.as_os_str().len() <= MAX_RUN_DIR_LEN {
        candidate
    } else {
        std::env::temp_dir().join(format!("lambdabox-{home}"))
    }
}

/// Check (and if needed build) the images of runtimes that stored functions
/// use, in the background, so their first invocation does not wait for it.
fn prepare_images_in_use(store: &Store, images: &Arc<Images>) {
    let mut runtimes: Vec<&'static Runtime> =
        store.list().iter().filter_map(|f| Runtime::find(&f.runtime).ok()).collect();
    runtimes.sort_by_key(|r| r.id);
    runtimes.dedup();
    for runtime in runtimes {
        let images = images.clone();
        tokio::spawn(async move {
            if let Err(e) = images.ensure(runtime).await {
                tracing::warn!(runtime = runtime.id, error = %e, "could not prepare image");
            }
        });
    }
}
