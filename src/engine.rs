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

use crate::function::{self, ConfigPatch, Function, FunctionRef, InvalidParameter, Realm, Runtime, LATEST};
use crate::images::{ImageError, Images};
use crate::pool::{Container, Launch, Pool, PoolError};
use crate::runtime_api::{ExitReason, Invocation, Outcome, Ticket};
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
        EngineError::Service(format!("could not start the function's container: {e}"))
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
    pub zip: Vec<u8>,
}

/// One synchronous invocation.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub function: FunctionRef,
    pub payload: Bytes,
    /// ClientContext JSON (decoded from the base64 header).
    pub client_context: Option<String>,
}

/// What the caller gets back. A function error is still a successful call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeResponse {
    pub payload: Bytes,
    /// `Some("Unhandled")` when the function failed.
    pub function_error: Option<&'static str>,
    pub executed_version: &'static str,
    pub request_id: String,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    store: Arc<Store>,
    pool: Pool,
    images: Arc<Images>,
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
    pub fn new(store: Arc<Store>, pool: Pool, images: Arc<Images>, realm: Realm) -> Engine {
        Engine { store, pool, images, realm, writes: tokio::sync::Mutex::new(()) }
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
        };
        patch.validate()?;
        let _guard = self.writes.lock().await;
        if self.store.get(&new.name).is_some() {
            return Err(StoreError::Conflict(new.name).into());
        }
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
        self.commit_update(&current, f)
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
        patch.apply(&mut f);
        self.commit_update(&current, f)
    }

    fn commit_update(&self, old: &Function, mut f: Function) -> Result<Arc<Function>, EngineError> {
        f.last_modified = now_lambda_format();
        f.revision_id = new_revision();
        let updated = self.store.update(f)?;
        self.pool.retire(&updated.name);
        if old.code_sha256 != updated.code_sha256 {
            self.collect_code(&old.code_sha256);
        }
        Ok(updated)
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
        self.pool.retire(&f.name);
        self.collect_code(&f.code_sha256);
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

    /// Delete a code blob once no function refers to it.
    fn collect_code(&self, sha256_hex: &str) {
        if !self.store.code_in_use(sha256_hex) {
            if let Err(e) = self.store.code().remove(sha256_hex) {
                tracing::warn!(code = sha256_hex, error = %e, "could not remove unused code");
            }
        }
    }

    /// Invoke (RequestResponse).
    pub async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, EngineError> {
        if req.payload.len() > function::MAX_SYNC_PAYLOAD {
            return Err(EngineError::RequestTooLarge(format!(
                "Request must be smaller than {} bytes for the InvokeFunction operation",
                function::MAX_SYNC_PAYLOAD
            )));
        }
        let f = self.resolve(&req.function)?;
        let container = self.container_for(&f).await?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload: req.payload,
            function_arn: self.realm.function_arn(&req.function.to_string()),
            trace_id: trace_id(),
            client_context: req.client_context,
            cognito_identity: None,
            timeout: Duration::from_secs(u64::from(f.timeout_s)),
        };
        let ticket = container
            .mailbox
            .deliver(invocation)
            .map_err(|_| EngineError::Service("internal error: a container was handed out while busy".into()))?;
        container.served();
        let settled = settle(ticket).await;
        if matches!(settled, Settled::Done(_)) {
            self.pool.release(container);
        } else {
            container.mailbox.cancel(&request_id);
            self.pool.destroy(container);
        }
        Ok(respond(settled, &request_id, f.timeout_s))
    }

    /// A container for `f`: warm if one is idle, else started (building the
    /// runtime's image first if it is missing).
    async fn container_for(&self, f: &Arc<Function>) -> Result<Arc<Container>, EngineError> {
        let runtime = Runtime::find(&f.runtime)?;
        let mut launch = Launch {
            function: f.clone(),
            runtime,
            image: self.images.ensure(runtime).await?,
            task_dir: self.store.code().task_dir(&f.code_sha256),
        };
        match self.pool.acquire(&launch).await {
            Ok((c, _cold)) => Ok(c),
            Err(PoolError::Backend(crate::backend::BackendError::ImageMissing(_))) => {
                self.images.forget(runtime);
                launch.image = self.images.ensure(runtime).await?;
                Ok(self.pool.acquire(&launch).await?.0)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// How waiting for an invocation ended.
#[derive(Debug)]
enum Settled {
    Done(Outcome),
    /// The function ran past its deadline.
    TimedOut,
    /// The runtime never asked for the event.
    InitTimedOut,
}

/// Wait for the runtime to take the event (bounded by [`INIT_TIMEOUT`]),
/// then for its answer (bounded by the deadline it was given).
async fn settle(ticket: Ticket) -> Settled {
    let Ticket { accepted, mut outcome } = ticket;
    let deadline = tokio::select! {
        biased;
        done = &mut outcome => return Settled::Done(done.unwrap_or(Outcome::Exited(ExitReason::Removed))),
        taken = tokio::time::timeout(INIT_TIMEOUT, accepted) => match taken {
            Ok(Ok(deadline)) => deadline,
            // Settled without being taken (init error, exit): the outcome is ready.
            Ok(Err(_)) => return Settled::Done(outcome.await.unwrap_or(Outcome::Exited(ExitReason::Removed))),
            Err(_) => return Settled::InitTimedOut,
        },
    };
    match tokio::time::timeout_at(deadline.into(), outcome).await {
        Ok(done) => Settled::Done(done.unwrap_or(Outcome::Exited(ExitReason::Removed))),
        Err(_) => Settled::TimedOut,
    }
}

/// Turn how an invocation settled into Lambda's answer.
fn respond(settled: Settled, request_id: &str, timeout_s: u32) -> InvokeResponse {
    let platform_error = |error_type: &str, message: String| {
        serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string().into()
    };
    let (payload, failed) = match settled {
        Settled::Done(Outcome::Response(body)) => (body, false),
        Settled::Done(Outcome::Error { body, error_type }) => {
            let body = if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
                body
            } else {
                let message = String::from_utf8_lossy(&body).into_owned();
                platform_error(error_type.as_deref().unwrap_or("Runtime.Unknown"), message)
            };
            (body, true)
        }
        Settled::Done(Outcome::ResponseTooLarge) => (
            platform_error(
                "Function.ResponseSizeTooLarge",
                format!(
                    "Response payload size exceeded maximum allowed payload size ({} bytes).",
                    crate::runtime_api::MAX_RESPONSE
                ),
            ),
            true,
        ),
        Settled::Done(Outcome::Exited(reason)) => {
            let (kind, detail) = match reason {
                ExitReason::Code(c) => ("Runtime.ExitError", format!("Runtime exited with error: exit status {c}")),
                ExitReason::Signal(s) => {
                    ("Runtime.ExitError", format!("Runtime exited with error: signal: {}", signal_name(s)))
                }
                ExitReason::OutOfMemory => {
                    ("Runtime.OutOfMemory", "Runtime exited with error: signal: killed".to_owned())
                }
                ExitReason::Removed => ("Runtime.ExitError", "Runtime exited without providing a reason".to_owned()),
            };
            (platform_error(kind, format!("RequestId: {request_id} Error: {detail}")), true)
        }
        Settled::TimedOut => (
            platform_error(
                "Sandbox.Timedout",
                format!("RequestId: {request_id} Error: Task timed out after {timeout_s}.00 seconds"),
            ),
            true,
        ),
        Settled::InitTimedOut => (
            platform_error(
                "Runtime.InitError",
                format!(
                    "RequestId: {request_id} Error: Runtime did not ask for its first event within {}.00 seconds",
                    INIT_TIMEOUT.as_secs()
                ),
            ),
            true,
        ),
    };
    InvokeResponse {
        payload,
        function_error: failed.then_some("Unhandled"),
        executed_version: LATEST,
        request_id: request_id.to_owned(),
    }
}

/// Signal names as Lambda (Go's os/exec) prints them.
fn signal_name(sig: i32) -> String {
    match sig {
        1 => "hangup".into(),
        2 => "interrupt".into(),
        3 => "quit".into(),
        4 => "illegal instruction".into(),
        6 => "aborted".into(),
        7 => "bus error".into(),
        8 => "floating point exception".into(),
        9 => "killed".into(),
        11 => "segmentation fault".into(),
        13 => "broken pipe".into(),
        15 => "terminated".into(),
        other => format!("signal {other}"),
    }
}

/// An X-Ray style trace header for `Lambda-Runtime-Trace-Id`.
fn trace_id() -> String {
    let epoch = chrono::Utc::now().timestamp();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{epoch:08x}-{};Parent={};Sampled=0", &id[..24], &parent[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(r: &InvokeResponse) -> serde_json::Value {
        serde_json::from_slice(&r.payload).unwrap()
    }

    #[test]
    fn timeouts_read_like_lambdas() {
        let r = respond(Settled::TimedOut, "abc", 3);
        assert_eq!(r.function_error, Some("Unhandled"));
        assert_eq!(json(&r)["errorType"], "Sandbox.Timedout");
        assert_eq!(json(&r)["errorMessage"], "RequestId: abc Error: Task timed out after 3.00 seconds");
    }

    #[test]
    fn exits_read_like_lambdas() {
        let r = respond(Settled::Done(Outcome::Exited(ExitReason::Code(42))), "id", 3);
        assert_eq!(json(&r)["errorType"], "Runtime.ExitError");
        assert_eq!(json(&r)["errorMessage"], "RequestId: id Error: Runtime exited with error: exit status 42");
        let r = respond(Settled::Done(Outcome::Exited(ExitReason::Signal(9))), "id", 3);
        assert!(json(&r)["errorMessage"].as_str().unwrap().ends_with("signal: killed"));
        let r = respond(Settled::Done(Outcome::Exited(ExitReason::OutOfMemory)), "id", 3);
        assert_eq!(json(&r)["errorType"], "Runtime.OutOfMemory");
    }

    #[test]
    fn runtime_errors_pass_through_and_garbage_is_wrapped() {
        let doc = Bytes::from_static(br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":[]}"#);
        let r = respond(Settled::Done(Outcome::Error { body: doc.clone(), error_type: None }), "id", 3);
        assert_eq!(r.payload, doc);
        let r = respond(
            Settled::Done(Outcome::Error {
                body: Bytes::from_static(b"not json"),
                error_type: Some("Function.X".into()),
            }),
            "id",
            3,
        );
        assert_eq!(json(&r)["errorType"], "Function.X");
        let ok = respond(Settled::Done(Outcome::Response(Bytes::from_static(b"1"))), "id", 3);
        assert_eq!((ok.function_error, ok.payload.as_ref()), (None, &b"1"[..]));
    }

    #[test]
    fn trace_ids_have_xray_shape() {
        let t = trace_id();
        assert!(t.starts_with("Root=1-") && t.contains(";Parent=") && t.ends_with(";Sampled=0"), "{t}");
    }
}
