//! The core the API drives: function management and invocation.
//!
//! It knows nothing of HTTP: requests come in as typed calls, answers and
//! [`EngineError`]s go out, and the [`crate::api`] layer turns those into AWS
//! shapes. Management calls are serialised by one lock (they are rare and
//! touch disk); invocations never take it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

mod invoke;
mod layers;

pub use layers::NewLayerVersion;

use crate::function::{self, ConfigPatch, Function, FunctionRef, InvalidParameter, Realm, Runtime, LATEST};
use crate::images::{ImageError, Images};
use crate::logs::LogBook;
use crate::pool::{Launch, Pool, PoolError, Throttle};
use crate::store::code::CodeError;
use crate::store::{Store, StoreError};

/// How long a runtime may take to ask for its first event (Lambda's init limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures of engine calls, by what the client did wrong or what broke.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    #[error("{0}")]
    InvalidRequestContent(String),
    #[error("{0}")]
    RequestTooLarge(String),
    /// Over the function's reserved concurrency or the box's budget.
    #[error("{0}")]
    Throttled(Throttle),
    /// No provisioned concurrency is configured for the function.
    #[error("No Provisioned Concurrency Config found for this function")]
    ProvisionedNotFound,
    /// The platform could not run the function (Docker, images, disk).
    #[error("{0}")]
    Service(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => EngineError::NotFound(e.to_string()),
            StoreError::Conflict(_) => EngineError::Conflict(e.to_string()),
            other => EngineError::Service(other.to_string()),
        }
    }
}

impl From<CodeError> for EngineError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Io(_) => EngineError::Service(e.to_string()),
            other => EngineError::InvalidParameter(InvalidParameter(other.to_string())),
        }
    }
}

impl From<PoolError> for EngineError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Throttled(t) => EngineError::Throttled(t),
            other => EngineError::Service(format!("could not start the function's container: {other}")),
        }
    }
}

impl From<ImageError> for EngineError {
    fn from(e: ImageError) -> Self {
        EngineError::Service(format!("could not prepare the runtime image: {e}"))
    }
}

/// CreateFunction's input, already decoded from its wire form.
#[derive(Debug, Clone, Default)]
pub struct NewFunction {
    pub name: String,
    pub runtime: String,
    pub handler: String,
    pub role: Option<String>,
    pub description: Option<String>,
    pub memory_mb: Option<u32>,
    pub timeout_s: Option<u32>,
    pub environment: BTreeMap<String, String>,
    pub ephemeral_storage_mb: Option<u32>,
    pub idle_ttl_s: Option<u32>,
    /// Layer version ARNs, unpacked under `/opt` in this order.
    pub layers: Vec<String>,
    pub zip: Vec<u8>,
}

/// One synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub function: FunctionRef,
    pub payload: Bytes,
    /// ClientContext JSON (decoded from the base64 header).
    pub client_context: Option<String>,
    /// `LogType: Tail`: return the last 4 KB of the invocation's log.
    pub log_tail: bool,
}

/// What the caller gets back. A function error is still a successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeResponse {
    pub payload: Bytes,
    /// `Some("Unhandled")` when the function failed.
    pub function_error: Option<&'static str>,
    pub executed_version: &'static str,
    pub request_id: String,
    /// The invocation's log tail, when asked for.
    pub log_tail: Option<Bytes>,
}

/// The state of a function's provisioned concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedStatus {
    pub requested: u32,
    /// Containers initialised and waiting for traffic.
    pub ready: u32,
    pub last_modified: String,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    store: Arc<Store>,
    pool: Pool,
    images: Arc<Images>,
    logs: Arc<LogBook>,
    realm: Realm,
    writes: tokio::sync::Mutex<()>,
}

fn now_lambda_format() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Engine {
    pub fn new(store: Arc<Store>, pool: Pool, images: Arc<Images>, logs: Arc<LogBook>, realm: Realm) -> Engine {
        Engine { store, pool, images, logs, realm, writes: tokio::sync::Mutex::new(()) }
    }

    /// The last `max_bytes` of a function's log.
    pub fn log_tail(&self, function: &FunctionRef, max_bytes: u64) -> Result<Vec<u8>, EngineError> {
        let f = self.resolve(function)?;
        self.logs.tail(&f.name, max_bytes).map_err(|e| EngineError::Service(e.to_string()))
    }

    pub fn realm(&self) -> &Realm {
        &self.realm
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// CreateFunction.
    pub async fn create_function(&self, new: NewFunction) -> Result<Arc<Function>, EngineError> {
        function::validate_name(&new.name)?;
        let patch = ConfigPatch {
            runtime: Some(new.runtime),
            handler: Some(new.handler),
            role: new.role,
            description: new.description,
            memory_mb: new.memory_mb,
            timeout_s: new.timeout_s,
            environment: Some(new.environment),
            ephemeral_storage_mb: new.ephemeral_storage_mb,
            idle_ttl_s: new.idle_ttl_s,
            layers: None,
        };
        patch.validate()?;
        let _guard = self.writes.lock().await;
        if self.store.get(&new.name).is_some() {
            return Err(StoreError::Conflict(new.name).into());
        }
        let layers = self.resolve_layers(&new.layers)?;
        let code = self.put_code(new.zip).await?;
        let mut f = Function {
            name: new.name,
            runtime: String::new(),
            handler: String::new(),
            role: format!("arn:aws:iam::{}:role/lambdabox", self.realm.account),
            description: String::new(),
            memory_mb: function::DEFAULT_MEMORY_MB,
            timeout_s: function::DEFAULT_TIMEOUT_S,
            ephemeral_storage_mb: function::DEFAULT_EPHEMERAL_MB,
            environment: BTreeMap::new(),
            code_sha256: code.sha256_hex.clone(),
            code_size: code.size,
            last_modified: now_lambda_format(),
            revision_id: new_revision(),
            reserved_concurrency: None,
            provisioned_concurrency: 0,
            idle_ttl_s: None,
            layers,
        };
        patch.apply(&mut f);
        match self.store.insert(f) {
            Ok(f) => Ok(f),
            Err(e) => {
                self.collect_code(&code.sha256_hex);
                Err(e.into())
            }
        }
    }

    /// GetFunction / GetFunctionConfiguration.
    pub fn get_function(&self, r: &FunctionRef) -> Result<Arc<Function>, EngineError> {
        self.resolve(r)
    }

    /// ListFunctions, in name order.
    pub fn list_functions(&self) -> Vec<Arc<Function>> {
        self.store.list()
    }

    /// UpdateFunctionCode.
    pub async fn update_code(&self, r: &FunctionRef, zip: Vec<u8>) -> Result<Arc<Function>, EngineError> {
        let _guard = self.writes.lock().await;
        let current = self.resolve(r)?;
        let code = self.put_code(zip).await?;
        let mut f = (*current).clone();
        f.code_sha256 = code.sha256_hex;
        f.code_size = code.size;
        self.commit_update(&current, f).await
    }

    /// UpdateFunctionConfiguration.
    pub async fn update_configuration(
        &self,
        r: &FunctionRef,
        patch: ConfigPatch,
    ) -> Result<Arc<Function>, EngineError> {
        patch.validate()?;
        let _guard = self.writes.lock().await;
        let current = self.resolve(r)?;
        let mut f = (*current).clone();
        if let Some(arns) = &patch.layers {
            f.layers = self.resolve_layers(arns)?;
        }
        patch.apply(&mut f);
        self.commit_update(&current, f).await
    }

    /// Store an updated function under a new revision: its containers are
    /// retired and provisioned ones restarted with the new configuration.
    async fn commit_update(&self, old: &Function, mut f: Function) -> Result<Arc<Function>, EngineError> {
        f.last_modified = now_lambda_format();
        f.revision_id = new_revision();
        let updated = self.store.update(f)?;
        self.pool.retire(&updated.name, Some(&updated.revision_id));
        if old.code_sha256 != updated.code_sha256 {
            self.collect_code(&old.code_sha256);
        }
        if old.layers != updated.layers {
            self.collect_opt_dir(&old.layers);
            for l in &old.layers {
                self.collect_code(&l.code_sha256);
            }
        }
        self.provision(&updated).await;
        Ok(updated)
    }

    /// Ask the pool for `f`'s provisioned containers (none when 0).
    async fn provision(&self, f: &Arc<Function>) {
        match self.launch(f).await {
            Ok(launch) => self.pool.set_provisioned(launch, f.provisioned_concurrency),
            Err(e) => tracing::warn!(function = %f.name, error = %e, "cannot provision containers"),
        }
    }

    /// At start-up: provision every function that asks for it.
    pub async fn restore_provisioned(&self) {
        for f in self.store.list().into_iter().filter(|f| f.provisioned_concurrency > 0) {
            self.provision(&f).await;
        }
    }

    /// What the pool needs to start containers of `f` (building the
    /// runtime's image first if it is missing).
    async fn launch(&self, f: &Arc<Function>) -> Result<Launch, EngineError> {
        let runtime = Runtime::find(&f.runtime)?;
        Ok(Launch {
            function: f.clone(),
            runtime,
            image: self.images.ensure(runtime).await?,
            task_dir: self.store.code().task_dir(&f.code_sha256),
            opt_dir: self.opt_dir(f).await?,
        })
    }

    /// Store a change that is not a new revision (concurrency settings).
    async fn amend(&self, r: &FunctionRef, change: impl FnOnce(&mut Function)) -> Result<Arc<Function>, EngineError> {
        let _guard = self.writes.lock().await;
        let mut f = (*self.resolve(r)?).clone();
        change(&mut f);
        Ok(self.store.update(f)?)
    }

    /// PutFunctionConcurrency.
    pub async fn put_reserved_concurrency(&self, r: &FunctionRef, n: u32) -> Result<Arc<Function>, EngineError> {
        let current = self.resolve(r)?;
        if current.provisioned_concurrency > n {
            return Err(InvalidParameter(format!(
                "ReservedConcurrentExecutions {n} is below the function's provisioned concurrency ({})",
                current.provisioned_concurrency
            ))
            .into());
        }
        self.amend(r, |f| f.reserved_concurrency = Some(n)).await
    }

    /// DeleteFunctionConcurrency.
    pub async fn delete_reserved_concurrency(&self, r: &FunctionRef) -> Result<Arc<Function>, EngineError> {
        self.amend(r, |f| f.reserved_concurrency = None).await
    }

    /// PutProvisionedConcurrencyConfig (on `$LATEST`: lambdabox has no versions yet).
    pub async fn put_provisioned(&self, r: &FunctionRef, n: u32) -> Result<ProvisionedStatus, EngineError> {
        if n == 0 {
            return Err(InvalidParameter("ProvisionedConcurrentExecutions must be at least 1".into()).into());
        }
        let current = self.resolve(r)?;
        if current.reserved_concurrency.is_some_and(|reserved| n > reserved) {
            return Err(InvalidParameter(format!(
                "ProvisionedConcurrentExecutions {n} exceeds the function's reserved concurrency"
            ))
            .into());
        }
        let f = self.amend(r, |f| f.provisioned_concurrency = n).await?;
        self.provision(&f).await;
        self.get_provisioned(r)
    }

    /// GetProvisionedConcurrencyConfig.
    pub fn get_provisioned(&self, r: &FunctionRef) -> Result<ProvisionedStatus, EngineError> {
        let f = self.resolve(r)?;
        if f.provisioned_concurrency == 0 {
            return Err(EngineError::ProvisionedNotFound);
        }
        Ok(ProvisionedStatus {
            requested: f.provisioned_concurrency,
            ready: self.pool.provisioned_ready(&f.name).min(f.provisioned_concurrency),
            last_modified: f.last_modified.clone(),
        })
    }

    /// DeleteProvisionedConcurrencyConfig.
    pub async fn delete_provisioned(&self, r: &FunctionRef) -> Result<(), EngineError> {
        if self.resolve(r)?.provisioned_concurrency == 0 {
            return Err(EngineError::ProvisionedNotFound);
        }
        let f = self.amend(r, |f| f.provisioned_concurrency = 0).await?;
        self.provision(&f).await;
        Ok(())
    }

    /// DeleteFunction: the function, its warm containers and its code (if
    /// no other function shares it) are gone when this returns.
    pub async fn delete_function(&self, r: &FunctionRef) -> Result<(), EngineError> {
        if r.qualifier.as_deref() == Some(LATEST) {
            return Err(
                InvalidParameter("$LATEST version cannot be deleted without deleting the function.".into()).into()
            );
        }
        let _guard = self.writes.lock().await;
        let f = self.resolve(r)?;
        self.store.delete(&f.name)?;
        self.pool.retire(&f.name, None);
        self.collect_code(&f.code_sha256);
        self.collect_opt_dir(&f.layers);
        for l in &f.layers {
            self.collect_code(&l.code_sha256);
        }
        Ok(())
    }

    /// The function a reference names; only `$LATEST` exists until versions do.
    fn resolve(&self, r: &FunctionRef) -> Result<Arc<Function>, EngineError> {
        let not_found = || {
            let arn = self.realm.function_arn(&r.name);
            let what = match &r.qualifier {
                Some(q) => format!("{arn}:{q}"),
                None => arn,
            };
            EngineError::NotFound(format!("Function not found: {what}"))
        };
        let f = self.store.get(&r.name).ok_or_else(not_found)?;
        match r.qualifier.as_deref() {
            None | Some(LATEST) => Ok(f),
            Some(_) => Err(not_found()),
        }
    }

    async fn put_code(&self, zip: Vec<u8>) -> Result<crate::store::code::StoredCode, EngineError> {
        if zip.is_empty() {
            return Err(InvalidParameter("Code.ZipFile is required and must be a non-empty zip archive".into()).into());
        }
        let store = self.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.code().put_zip(&zip))
            .await
            .map_err(|e| EngineError::Service(e.to_string()))??;
        Ok(stored)
    }

    /// Delete a code blob once no function or layer version refers to it.
    fn collect_code(&self, sha256_hex: &str) {
        let in_use = self.store.code_in_use(sha256_hex)
            || self.store.layer_blob_in_use(sha256_hex).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot tell whether a layer uses a blob; keeping it");
                true
            });
        if !in_use {
            if let Err(e) = self.store.code().remove(sha256_hex) {
                tracing::warn!(code = sha256_hex, error = %e, "could not remove unused code");
            }
        }
    }
}
