//! The core the API drives: function management and invocation.
//!
//! It knows nothing of HTTP: requests come in as typed calls, answers and
//! [`EngineError`]s go out, and the [`crate::api`] layer turns those into AWS
//! shapes. Management calls are serialised by one lock (they are rare and
//! touch disk); invocations never take it.

use std::sync::Arc;

use bytes::Bytes;

mod event_invoke;
mod eventbridge;
mod invoke;
mod layers;
mod provisioned;
mod stream;
mod urls;
mod versions;

pub use event_invoke::{DestinationPatch, EventInvokePatch};
pub use layers::NewLayerVersion;
pub use provisioned::ProvisionedStatus;
pub use stream::{Answer, StreamDone, StreamEvent, StreamedResponse};
pub use versions::Publish;
use versions::{check_revision, Route};

use crate::arn::Realm;
use crate::constraints::{InvalidParameter, Refused};
use crate::function::{self, ConfigPatch, Function, FunctionRef, ImageCode, ImageConfig, Runtime, LATEST};
use crate::images::{ImageError, Images};
use crate::logs::LogBook;
use crate::pool::{Launch, Pool, PoolError, PrewarmUse, Throttle};
use crate::queue::{NewEvent, Queue, QueueStoreError};
use crate::store::code::CodeError;
use crate::store::unpack::UnpackError;
use crate::store::{Store, StoreError};

/// Failures of engine calls, by what the client did wrong or what broke.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    /// An ARN of another account: AWS answers 403 and says nothing more.
    #[error("access denied")]
    AccessDenied,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    InvalidParameter(#[from] InvalidParameter),
    /// A value breaks a constraint of AWS's API model.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidRequestContent(String),
    #[error("{0}")]
    RequestTooLarge(String),
    /// Over the function's reserved concurrency or the box's budget.
    #[error("{0}")]
    Throttled(Throttle),
    /// A `RevisionId` precondition failed: the resource changed since.
    #[error("{0}")]
    PreconditionFailed(String),
    /// No provisioned concurrency is configured for the function.
    #[error("No Provisioned Concurrency Config found for this function")]
    ProvisionedNotFound,
    // What follows is ours, not the caller's: each keeps the error that
    // caused it, so the API border can log the whole chain and tests can
    // match on what broke.
    /// The database or the data directory failed.
    #[error("{0}")]
    Store(#[source] StoreError),
    /// Storing or reading code failed on disk.
    #[error("code store I/O: {0}")]
    Code(#[source] std::io::Error),
    /// No container could be started or reached (Docker, the runtime).
    #[error("could not start the function's container: {0}")]
    Pool(#[source] PoolError),
    /// The runtime image could not be built or found.
    #[error("could not prepare the runtime image: {0}")]
    Image(#[from] ImageError),
    /// An image function's image left the Docker engine.
    #[error(
        "The function's image {image} ({uri}) is no longer in this host's Docker engine; \
         load it again and update the function's code"
    )]
    ImageGone { image: String, uri: String },
    /// The function's log could not be read.
    #[error("{0}")]
    Logs(#[from] crate::logs::LogError),
    /// The asynchronous event queue's database failed: the event was not
    /// accepted (the caller retries).
    #[error("the event queue failed: {0}")]
    Queue(#[source] QueueStoreError),
    /// A task the engine ran the work on panicked or was cancelled.
    #[error("{what} failed: {source}")]
    Task { what: &'static str, source: tokio::task::JoinError },
    /// A container handed out as idle already held an invocation: a pool
    /// bookkeeping bug, never the caller's doing.
    #[error("internal error: {0}")]
    Busy(#[from] crate::runtime_api::mailbox::Busy),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => EngineError::NotFound(e.to_string()),
            StoreError::Conflict(_) => EngineError::Conflict(e.to_string()),
            other => EngineError::Store(other),
        }
    }
}

impl From<CodeError> for EngineError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Io(source) | CodeError::Unpack(UnpackError::Io(source)) => EngineError::Code(source),
            other => EngineError::InvalidParameter(InvalidParameter(other.to_string())),
        }
    }
}

impl From<Refused> for EngineError {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Validation(message) => EngineError::Validation(message),
            Refused::InvalidParameter(e) => EngineError::InvalidParameter(e),
        }
    }
}

impl From<PoolError> for EngineError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Throttled(t) => EngineError::Throttled(t),
            other => EngineError::Pool(other),
        }
    }
}

/// CreateFunction's input, already decoded from its wire form.
#[derive(Debug, Clone, Default)]
pub struct NewFunction {
    /// `FunctionName` as parsed: a name, or an ARN of this realm.
    pub function: FunctionRef,
    pub code: Code,
    /// Everything else, as UpdateFunctionConfiguration would set it on a
    /// function with Lambda's defaults. Its `layers` are version ARNs,
    /// unpacked under `/opt` in this order; an image's configuration
    /// travels with its [`Code::Image`].
    pub config: ConfigPatch,
    /// `Publish`: publish version 1 at once.
    pub publish: bool,
}

/// UpdateFunctionCode's input besides the function.
#[derive(Debug, Clone, Default)]
pub struct CodeUpdate {
    pub code: Code,
    /// `Publish`: publish a version of the result.
    pub publish: bool,
    /// `RevisionId`: update only if `$LATEST` is still this revision.
    pub revision_id: Option<String>,
}

/// A function's code as CreateFunction and UpdateFunctionCode carry it.
#[derive(Debug, Clone)]
pub enum Code {
    /// The zip's bytes (`Code.ZipFile`).
    Zip(Vec<u8>),
    /// A local image (`Code.ImageUri`) and its `ImageConfig`.
    Image { uri: String, config: ImageConfig },
}

impl Default for Code {
    fn default() -> Self {
        Code::Zip(Vec::new())
    }
}

/// An update without `ImageConfig` keeps the function's current one.
fn config_or_current(given: ImageConfig, current: Option<&ImageCode>) -> ImageConfig {
    match current {
        Some(image) if given == ImageConfig::default() => image.config.clone(),
        _ => given,
    }
}

/// One invocation run to its end: a synchronous call, or a queued event.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub function: FunctionRef,
    pub payload: Bytes,
    /// ClientContext JSON (decoded from the base64 header).
    pub client_context: Option<String>,
    /// `LogType: Tail`: return the last 4 KB of the invocation's log.
    pub log_tail: bool,
    /// The request id, when it was given out already (a queued event's 202).
    pub request_id: Option<String>,
    /// A queued asynchronous event: it takes only capacity nobody waits for
    /// and is turned away at once rather than queued ([`crate::pool::Wait`]).
    pub queued: bool,
}

impl InvokeRequest {
    /// A synchronous call.
    pub fn sync(
        function: FunctionRef,
        payload: Bytes,
        client_context: Option<String>,
        log_tail: bool,
    ) -> InvokeRequest {
        InvokeRequest { function, payload, client_context, log_tail, request_id: None, queued: false }
    }
}

/// What the caller gets back. A function error is still a successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeResponse {
    pub payload: Bytes,
    /// `Some("Unhandled")` when the function failed.
    pub function_error: Option<&'static str>,
    /// `$LATEST` or the number of the version that ran.
    pub executed_version: String,
    pub request_id: String,
    /// The invocation's log tail, when asked for.
    pub log_tail: Option<Bytes>,
    /// What the run cost the box, measured for queued events where the
    /// host lets us (the queue paces CPU-heavy functions by it).
    pub cost: Option<RunCost>,
}

/// The CPU time a run's container used against the run's wall time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCost {
    pub cpu: std::time::Duration,
    pub wall: std::time::Duration,
}

/// What this box's functions use of an account's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUsage {
    pub function_count: usize,
    pub total_code_size: u64,
    /// The sum of the functions' reserved concurrency.
    pub reserved_concurrency: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    store: Arc<Store>,
    pool: Pool,
    images: Arc<Images>,
    logs: Arc<LogBook>,
    realm: Realm,
    queue: Queue,
    /// Rules, schedules and the default event bus.
    bus: crate::events::Bus,
    writes: tokio::sync::Mutex<()>,
    /// Poked when the set of runtimes in use may have changed.
    runtimes_changed: tokio::sync::Notify,
    /// When the last caller came (synchronous invoke or event accepted),
    /// in Unix milliseconds: the event queue leaves room for callers
    /// ([`crate::queue`]).
    last_caller_ms: std::sync::atomic::AtomicI64,
}

/// The concurrency operations act on a function, never on a version.
fn unqualified_only(r: &FunctionRef) -> Result<(), EngineError> {
    match r.qualifier {
        None => Ok(()),
        Some(_) => Err(InvalidParameter(
            "This operation is permitted on Lambda functions only. Aliases and versions do not support this \
             operation. Please specify either a function name or an unqualified function ARN."
                .into(),
        )
        .into()),
    }
}

fn now_lambda_format() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Engine {
    pub fn new(
        store: Arc<Store>,
        pool: Pool,
        images: Arc<Images>,
        logs: Arc<LogBook>,
        realm: Realm,
        queue: Queue,
        bus: crate::events::Bus,
    ) -> Engine {
        Engine {
            store,
            pool,
            images,
            logs,
            realm,
            queue,
            bus,
            writes: tokio::sync::Mutex::new(()),
            runtimes_changed: tokio::sync::Notify::new(),
            last_caller_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// The last `max_bytes` of a function's log.
    pub fn log_tail(&self, function: &FunctionRef, max_bytes: u64) -> Result<Vec<u8>, EngineError> {
        let f = self.resolve(function)?;
        Ok(self.logs.tail(&f.name, max_bytes)?)
    }

    pub fn realm(&self) -> &Realm {
        &self.realm
    }

    /// A function by name, as the invoke path sees it (no lock, no disk).
    pub fn function(&self, name: &str) -> Option<Arc<Function>> {
        self.store.get(name)
    }

    /// The unqualified ARN of function `name`.
    pub fn function_arn(&self, name: &str) -> String {
        self.realm.function_arn(name)
    }

    /// Invoke with `InvocationType: Event`: the event is committed to the
    /// queue (on disk) before this returns its request id; the function
    /// runs later ([`crate::queue`]).
    pub async fn invoke_async(
        &self,
        r: &FunctionRef,
        payload: Bytes,
        client_context: Option<String>,
    ) -> Result<String, EngineError> {
        if payload.len() > function::MAX_ASYNC_PAYLOAD {
            return Err(EngineError::RequestTooLarge(format!(
                "{} byte payload is too large for the Event invocation type (limit {} bytes)",
                payload.len(),
                function::MAX_ASYNC_PAYLOAD
            )));
        }
        self.mark_caller();
        // Checked now (404 before anything is stored); the event runs the
        // version or alias as it is when its turn comes, as on Lambda.
        let f = self.resolve(r)?;
        let qualifier = r.qualifier.clone().filter(|q| q != LATEST);
        let request_id = uuid::Uuid::new_v4().to_string();
        let event = NewEvent {
            request_id: request_id.clone(),
            function: f.name.clone(),
            qualifier,
            payload,
            client_context,
            enqueued_ms: crate::queue::store::now_ms(),
        };
        self.queue.accept(event).await.map_err(EngineError::Queue)?;
        Ok(request_id)
    }

    /// A caller is being answered now.
    fn mark_caller(&self) {
        self.last_caller_ms.store(crate::queue::store::now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// When the last caller came, in Unix milliseconds (0: none yet).
    pub fn last_caller_ms(&self) -> i64 {
        self.last_caller_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The event queue: depths, dead letters, redrive.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// A zip as uploaded (function code or layer content), for the
    /// presigned download Get* answers point at.
    pub async fn stored_zip(&self, sha256_hex: &str) -> Result<Vec<u8>, EngineError> {
        let path = self.store.code().zip_path(sha256_hex);
        tokio::fs::read(&path).await.map_err(EngineError::Code)
    }

    /// Every live container, for `lambdabox ps`.
    pub fn containers(&self) -> Vec<crate::pool::ContainerInfo> {
        self.pool.list()
    }

    /// CreateFunction.
    pub async fn create_function(&self, new: NewFunction) -> Result<Arc<Function>, EngineError> {
        self.check_realm(&new.function)?;
        if new.function.qualifier.is_some() {
            return Err(InvalidParameter("CreateFunction's FunctionName may not carry a qualifier".into()).into());
        }
        let publish = new.publish;
        let name = new.function.name;
        function::validate_name(&name)?;
        let is_zip = matches!(new.code, Code::Zip(_));
        let mut patch = new.config;
        if !is_zip {
            (patch.runtime, patch.handler) = (None, None);
        }
        patch.validate()?;
        let layer_arns = patch.layers.take().unwrap_or_default();
        if !is_zip && !layer_arns.is_empty() {
            return Err(InvalidParameter("Layers are not supported for functions with PackageType Image".into()).into());
        }
        let _guard = self.writes.lock().await;
        if self.store.get(&name).is_some() {
            return Err(StoreError::Conflict(name).into());
        }
        let layers = self.resolve_layers(&layer_arns)?;
        let mut f = Function {
            name,
            role: format!("arn:aws:iam::{}:role/lambdabox", self.realm.account),
            memory_mb: function::DEFAULT_MEMORY_MB,
            timeout_s: function::DEFAULT_TIMEOUT_S,
            ephemeral_storage_mb: function::DEFAULT_EPHEMERAL_MB,
            last_modified: now_lambda_format(),
            revision_id: new_revision(),
            layers,
            ..Function::default()
        };
        self.set_code(&mut f, new.code).await?;
        patch.apply(&mut f)?;
        let code_sha256 = f.code_sha256.clone();
        match self.with_store(move |store| store.insert(f)).await {
            Ok(f) if publish => {
                self.runtimes_changed.notify_one();
                self.publish_locked(&FunctionRef::named(&f.name), Publish::default()).await
            }
            Ok(f) => {
                self.runtimes_changed.notify_one();
                Ok(f)
            }
            Err(e) => {
                self.collect_code(&code_sha256);
                Err(e)
            }
        }
    }

    /// Point `f` at new code: a zip stored by digest, or a local image
    /// pinned by id. The package type never changes, as on Lambda.
    async fn set_code(&self, f: &mut Function, code: Code) -> Result<(), EngineError> {
        let fresh = f.code_sha256.is_empty() && f.image.is_none();
        match code {
            Code::Zip(_) if !fresh && f.image.is_some() => Err(InvalidParameter(
                "Please provide ImageUri when updating a function with packageType Image.".into(),
            ))?,
            Code::Image { .. } if !fresh && f.image.is_none() => Err(InvalidParameter(
                "Please don't provide ImageUri when updating a function with packageType Zip.".into(),
            ))?,
            Code::Zip(zip) => {
                let stored = self.put_code(zip).await?;
                f.code_sha256 = stored.sha256_hex;
                f.code_size = stored.size;
            }
            Code::Image { uri, config } => {
                function::validate_image_uri(&uri)?;
                config.validate()?;
                let facts = self.images.function_image(&uri).await?.ok_or_else(|| {
                    InvalidParameter(format!(
                        "Source image {uri} does not exist. Provide a valid source image (build or load it into \
                         this host's Docker engine; lambdabox does not pull from registries)."
                    ))
                })?;
                let config = config_or_current(config, f.image.as_ref());
                f.image = Some(ImageCode {
                    uri,
                    id: facts.id,
                    entrypoint: facts.entrypoint,
                    cmd: facts.cmd,
                    working_dir: facts.working_dir,
                    config,
                });
                if f.image.as_ref().is_some_and(|i| i.command().is_empty()) {
                    Err(InvalidParameter(
                        "The image has no ENTRYPOINT or CMD and ImageConfig sets neither: nothing to run".into(),
                    ))?
                }
            }
        }
        Ok(())
    }

    /// GetFunction / GetFunctionConfiguration.
    pub fn get_function(&self, r: &FunctionRef) -> Result<Arc<Function>, EngineError> {
        self.resolve(r)
    }

    /// ListFunctions, in name order.
    pub fn list_functions(&self) -> Vec<Arc<Function>> {
        self.store.list()
    }

    /// UpdateFunctionCode; with `Publish`, the version it published.
    pub async fn update_code(&self, r: &FunctionRef, update: CodeUpdate) -> Result<Arc<Function>, EngineError> {
        let _guard = self.writes.lock().await;
        let current = self.resolve_latest(r, update.revision_id.as_deref())?;
        let mut f = (*current).clone();
        self.set_code(&mut f, update.code).await?;
        let updated = self.commit_update(&current, f).await?;
        if update.publish {
            return self.publish_locked(r, Publish::default()).await;
        }
        Ok(updated)
    }

    /// UpdateFunctionConfiguration.
    pub async fn update_configuration(
        &self,
        r: &FunctionRef,
        patch: ConfigPatch,
        revision_id: Option<&str>,
    ) -> Result<Arc<Function>, EngineError> {
        patch.validate()?;
        let _guard = self.writes.lock().await;
        let current = self.resolve_latest(r, revision_id)?;
        let mut f = (*current).clone();
        if let Some(arns) = &patch.layers {
            f.layers = self.resolve_layers(arns)?;
        }
        match (&mut f.image, &patch.image_config) {
            (Some(image), Some(config)) => image.config = config.clone(),
            (None, Some(_)) => {
                Err(InvalidParameter("ImageConfig applies only to functions with PackageType Image".into()))?
            }
            (Some(_), None) if patch.runtime.is_some() || patch.handler.is_some() || !f.layers.is_empty() => {
                Err(InvalidParameter(
                    "Runtime, Handler and Layers are not supported for functions with PackageType Image".into(),
                ))?
            }
            _ => {}
        }
        patch.apply(&mut f)?;
        self.commit_update(&current, f).await
    }

    /// Store an updated function under a new revision: its containers are
    /// retired and provisioned ones restarted with the new configuration.
    async fn commit_update(&self, old: &Function, mut f: Function) -> Result<Arc<Function>, EngineError> {
        f.last_modified = now_lambda_format();
        f.revision_id = new_revision();
        f.run_revision = None;
        // Changed since it was last published: the next PublishVersion publishes anew.
        f.published = None;
        let updated = self.with_store(move |store| store.update(f)).await?;
        if old.runtime != updated.runtime {
            self.runtimes_changed.notify_one();
        }
        self.pool.retire(&updated.slot(), Some(updated.pool_revision()));
        if old.code_sha256 != updated.code_sha256 {
            self.collect_code(&old.code_sha256);
        }
        if old.layers != updated.layers {
            self.collect_layers(&old.layers);
        }
        Ok(updated)
    }

    /// Keep the pool's prewarmed containers matched to the runtimes in
    /// use, for as long as the engine lives: now, and after every change.
    pub async fn keep_prewarm_current(self: Arc<Self>) {
        loop {
            let changed = self.runtimes_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            self.refresh_prewarm().await;
            changed.await;
        }
    }

    /// Make sure the images of the runtimes stored zip functions use are
    /// current (building them if needed), and keep prewarmed containers of
    /// them.
    async fn refresh_prewarm(&self) {
        let mut uses: Vec<(&'static Runtime, u32)> = self
            .store
            .list()
            .iter()
            .filter(|f| f.image.is_none())
            .filter_map(|f| Runtime::find(&f.runtime).ok().map(|r| (r, f.memory_mb)))
            .collect();
        uses.sort_by_key(|(r, memory_mb)| (r.image, r.id, *memory_mb));
        let mut counted: Vec<((&'static Runtime, u32), usize)> = Vec::new();
        for u in uses {
            match counted.last_mut() {
                Some((last, n)) if *last == u => *n += 1,
                _ => counted.push((u, 1)),
            }
        }
        let mut wanted = Vec::new();
        for ((runtime, memory_mb), functions) in counted {
            match self.images.ensure(runtime).await {
                Ok(image) => wanted.push(PrewarmUse { image, runtime, memory_mb, functions }),
                Err(e) => tracing::warn!(runtime = runtime.id, error = %e, "no prewarmed containers for this runtime"),
            }
        }
        self.pool.set_prewarm_images(wanted);
    }

    /// What the pool needs to start containers of `f` (building the
    /// runtime's image first if it is missing).
    async fn launch(&self, f: &Arc<Function>) -> Result<Launch, EngineError> {
        if let Some(image) = &f.image {
            return Ok(Launch {
                function: f.clone(),
                runtime: None,
                image: image.id.clone(),
                task_dir: None,
                opt_dir: None,
            });
        }
        let runtime = Runtime::find(&f.runtime)?;
        Ok(Launch {
            function: f.clone(),
            runtime: Some(runtime),
            image: self.images.ensure(runtime).await?,
            task_dir: Some(self.store.code().task_dir(&f.code_sha256)),
            opt_dir: self.opt_dir(f).await?,
        })
    }

    /// Store a change to `$LATEST` that is not a new revision (reserved
    /// concurrency, which bounds every version together).
    async fn amend(&self, r: &FunctionRef, change: impl FnOnce(&mut Function)) -> Result<Arc<Function>, EngineError> {
        let _guard = self.writes.lock().await;
        let mut f = (*self.resolve(&r.or_latest())?).clone();
        change(&mut f);
        self.with_store(move |store| store.update(f)).await
    }

    /// PutFunctionConcurrency.
    pub async fn put_reserved_concurrency(&self, r: &FunctionRef, n: u32) -> Result<Arc<Function>, EngineError> {
        unqualified_only(r)?;
        let current = self.resolve(&r.or_latest())?;
        let provisioned = self.provisioned_total(&current.name);
        if provisioned > n {
            return Err(InvalidParameter(format!(
                "ReservedConcurrentExecutions {n} is below the function's provisioned concurrency ({provisioned})"
            ))
            .into());
        }
        self.amend(r, |f| f.reserved_concurrency = Some(n)).await
    }

    /// GetFunctionConcurrency.
    pub fn get_reserved_concurrency(&self, r: &FunctionRef) -> Result<Arc<Function>, EngineError> {
        unqualified_only(r)?;
        self.resolve(r)
    }

    /// GetAccountSettings' usage: how many functions, how much code.
    pub fn account_usage(&self) -> AccountUsage {
        let functions = self.store.list();
        AccountUsage {
            function_count: functions.len(),
            total_code_size: functions.iter().map(|f| f.code_size).sum(),
            reserved_concurrency: functions.iter().filter_map(|f| f.reserved_concurrency).map(u64::from).sum(),
        }
    }

    /// DeleteFunctionConcurrency.
    pub async fn delete_reserved_concurrency(&self, r: &FunctionRef) -> Result<Arc<Function>, EngineError> {
        unqualified_only(r)?;
        self.amend(r, |f| f.reserved_concurrency = None).await
    }

    /// DeleteFunction: the function with its versions and aliases, its warm
    /// containers and its code (if nothing else runs it) are gone when this
    /// returns. With a version number, that version alone.
    pub async fn delete_function(&self, r: &FunctionRef) -> Result<(), EngineError> {
        match r.qualifier.as_deref() {
            Some(LATEST) => {
                return Err(
                    InvalidParameter("$LATEST version cannot be deleted without deleting the function.".into()).into()
                )
            }
            Some(q) => return self.delete_version(r, q).await,
            None => {}
        }
        let _guard = self.writes.lock().await;
        let f = self.resolve(r)?;
        let name = f.name.clone();
        let removed = self.with_store(move |store| store.delete(&name)).await?;
        self.runtimes_changed.notify_one();
        self.pool.retire(&f.slot(), None);
        for v in &removed.versions {
            self.forget_version(v);
        }
        // Its queued events and dead letters go with it, as on Lambda.
        match self.queue.store().purge(&f.name).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(function = %f.name, events = n, "deleted the function's queued events"),
            Err(e) => tracing::warn!(function = %f.name, error = %e, "could not delete the function's queued events"),
        }
        self.collect_code(&f.code_sha256);
        self.collect_layers(&f.layers);
        Ok(())
    }

    /// The function, version or alias (as its primary version) a reference names.
    fn resolve(&self, r: &FunctionRef) -> Result<Arc<Function>, EngineError> {
        self.resolve_as(r, Route::Primary)
    }

    /// `$LATEST`, for the operations that change it (a published version
    /// never changes), when it is still revision `revision_id` if given.
    fn resolve_latest(&self, r: &FunctionRef, revision_id: Option<&str>) -> Result<Arc<Function>, EngineError> {
        if r.qualifier.as_deref().is_some_and(|q| q != LATEST) {
            return Err(InvalidParameter(format!(
                "{r} is a published version or an alias, which cannot change; update the function ($LATEST) and \
                 publish a new version"
            ))
            .into());
        }
        let f = self.resolve(r)?;
        check_revision(revision_id, &f.revision_id)?;
        Ok(f)
    }

    /// A function ARN names this region and account, or nothing here.
    fn check_realm(&self, r: &FunctionRef) -> Result<(), EngineError> {
        match (r.region.as_deref(), r.account.as_deref()) {
            (Some(region), _) if region != self.realm.region => Err(EngineError::NotFound(format!(
                "Functions from '{region}' are not reachable in this region ('{}')",
                self.realm.region
            ))),
            (_, Some(account)) if account != self.realm.account => Err(EngineError::AccessDenied),
            _ => Ok(()),
        }
    }

    /// `Function not found: ARN[:QUALIFIER]`, as the reference was given.
    fn not_found(&self, r: &FunctionRef) -> EngineError {
        let arn = self.realm.function_arn(&r.name);
        EngineError::NotFound(match &r.qualifier {
            Some(q) => format!("Function not found: {arn}:{q}"),
            None => format!("Function not found: {arn}"),
        })
    }

    async fn put_code(&self, zip: Vec<u8>) -> Result<crate::store::code::StoredCode, EngineError> {
        if zip.is_empty() {
            return Err(InvalidParameter("Code.ZipFile is required and must be a non-empty zip archive".into()).into());
        }
        self.with_store(move |store| store.code().put_zip(&zip)).await
    }

    /// Run store work on the blocking pool: commits wait for the disk (WAL
    /// with `synchronous=FULL`), code is unpacked file by file, and
    /// invocations are served by the same few async threads.
    async fn with_store<T, E, F>(&self, op: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        E: Into<EngineError> + Send + 'static,
        F: FnOnce(&Store) -> Result<T, E> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || op(&store)).await {
            Ok(result) => result.map_err(Into::into),
            Err(source) => Err(EngineError::Task { what: "store task", source }),
        }
    }

    /// Delete a code blob once no function or layer version refers to it.
    fn collect_code(&self, sha256_hex: &str) {
        // Image functions have no blob; an empty key would name the whole store.
        if sha256_hex.is_empty() {
            return;
        }
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
