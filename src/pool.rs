//! Warm containers per function: started on demand within limits, reused,
//! recycled when idle, evicted when memory runs short, kept ready when
//! provisioned.
//!
//! A [`Container`] serves one function revision for its whole life and one
//! invocation at a time: [`Pool::acquire`] hands it out exclusively as a
//! [`Lease`] and the lease gives it back. Two limits bound how many run:
//! the function's reserved concurrency, and the box's memory budget (the sum
//! of the live containers' MemorySize). Over either, a request waits in a
//! short queue and is then throttled.
//!
//! Each container has a watcher task that learns of its death from the
//! backend and settles its mailbox, so a crash is noticed at once, and a
//! maintenance task reaps idle containers and tops up provisioned ones.

pub mod cpu;
mod demand;
mod environment;
mod prewarm;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::arn::Realm;
use crate::backend::{
    Backend, BackendError, BindMount, CodeMount, ContainerSpec, ExitInfo, Resources, Sandbox, Transport,
};
use crate::function::{Function, Runtime};
use crate::logs::{ContainerLog, LogBook, MemoryProbe};
use crate::remote::Hub;
use crate::runtime_api::{self, ExitReason, Mailbox};
use cpu::{CpuMode, CpuSetting};
pub use environment::lambda_environment;
use lambdabox_protocol::mux::CodeRef;
use lambdabox_protocol::{self as protocol, CONTROL_DIR, CONTROL_SOCKET};
use prewarm::{Generic, Prewarm, PrewarmKey};

/// What one or more functions use, to keep prewarmed containers of: their
/// runtime's image, the runtime and MemorySize, and how many functions.
#[derive(Debug, Clone)]
pub struct PrewarmUse {
    pub image: String,
    pub runtime: &'static Runtime,
    pub memory_mb: u32,
    pub functions: usize,
}
use state::{Admission, State};

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
    /// On prewarmed generic containers (which carry no function label).
    pub const GENERIC: &str = "lambdabox.generic";
}

/// The variable naming a managed runtime's wrapper script.
const EXEC_WRAPPER: &str = "AWS_LAMBDA_EXEC_WRAPPER";
/// Where containers' mounts appear inside them.
/// Where lambdabox-init is in every container (PID 1's path).
pub const INIT_TARGET: &str = "/lambdabox/init";
const TASK_ROOT: &str = "/var/task";
const OPT_ROOT: &str = "/opt";
/// How long a runtime may take from its start to its first `next`, as
/// Lambda's init phase; past it the container is removed and whoever waits
/// on it gets `Runtime.InitError`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a synchronous caller waits behind its function's cold starts
/// under way ([`PoolConfig::start_limit`]) before starting its own anyway.
pub const BEHIND_STARTS_MAX: Duration = Duration::from_secs(3);
/// The least time a ready cold start keeps holding back its function's
/// other callers ([`Container::limiting`]).
const LIMIT_HOLD_MIN: Duration = Duration::from_millis(500);
/// The `uid:gid` functions run as unless configured otherwise: Lambda's
/// own sandbox user, 993.
pub const DEFAULT_SANDBOX_USER: &str = "993:993";
/// How long a starting runtime may use the whole machine before its CPU is
/// capped in proportion to its memory, if it has not polled for an event
/// by then. Cold starts of small functions stay quick (Lambda, too, boosts
/// init), and a bootstrap that spins instead of polling gets at most this.
pub const INIT_CPU_BURST: Duration = Duration::from_secs(3);
/// How often the maintenance task looks at idle and provisioned containers.
const MAINTENANCE_TICK: Duration = Duration::from_millis(200);
/// How long shutdown waits for containers being created to exist, so it
/// can remove them too.
const SHUTDOWN_START_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("runtime API socket {path}: {source}")]
    Socket { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Throttled(Throttle),
    #[error("cannot tell a prewarmed container what to run: {0}")]
    Specialization(protocol::DecodeError),
    #[error("code for a remote container: {0}")]
    Code(#[from] crate::remote::code::CodeError),
    #[error("the backend's containers use the remote transport, but no remote listener is configured")]
    NoHub,
}

/// Which limit turned an invocation away; the names are Lambda's `Reason`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Throttle {
    #[error("Rate Exceeded: the function's reserved concurrency is in use")]
    Reserved,
    #[error("Rate Exceeded: the box's memory budget for containers is in use")]
    Budget,
    /// The backend found no room (no Kubernetes node took the pod in time).
    #[error("Rate Exceeded: no node has room for another container")]
    Capacity,
}

impl Throttle {
    /// Lambda's `Reason` for this throttle.
    pub fn reason(self) -> &'static str {
        match self {
            Throttle::Reserved => "ReservedFunctionConcurrentInvocationLimitExceeded",
            Throttle::Budget | Throttle::Capacity => "ConcurrentInvocationLimitExceeded",
        }
    }
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
    /// The most MemorySize all live containers may add up to.
    pub memory_budget_mb: u64,
    /// How long an invocation over a limit waits for room before 429.
    pub queue_timeout: Duration,
    /// Idle TTL for functions that do not set their own.
    pub idle_ttl: Duration,
    /// How containers' CPU follows their memory ([`cpu`]).
    pub cpu: CpuMode,
    /// User the function containers run as (`uid:gid`).
    pub user: String,
    /// Generic containers kept ready per runtime image in use (0: none),
    /// at least: the floor of [`prewarm`]'s demand-grown pool.
    pub prewarm: usize,
    /// The most generic containers of one kind kept ready after bursts of
    /// cold starts (at least `prewarm`; bounded by the memory budget).
    pub prewarm_max: usize,
    /// The remote transport's hub, for backends whose containers use it.
    pub remote: Option<Arc<Hub>>,
    /// Start the language runtime in generic containers ahead of need, for
    /// runtimes that can ([`prewarm`]).
    pub prestart: bool,
    /// Cold starts of one function under way at once for synchronous
    /// callers (0: no limit); more callers take the first container that
    /// is free, or start one once a start has settled
    /// ([`Container::limiting`]), waiting at most [`BEHIND_STARTS_MAX`].
    /// See [`default_start_limit`].
    pub start_limit: u32,
}

/// Cold starts per CPU worth running at once: container creation and
/// runtime init are CPU-bound, so more in parallel only finish later.
const STARTS_PER_CPU: u32 = 8;

/// [`PoolConfig::start_limit`] for this machine.
pub fn default_start_limit() -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    STARTS_PER_CPU * cpus
}

#[cfg(test)]
impl PoolConfig {
    /// Settings for in-process tests, with folders under `dir`.
    pub fn for_tests(dir: &std::path::Path) -> PoolConfig {
        let run_dir = dir.join("run");
        std::fs::create_dir_all(&run_dir).expect("test run folder");
        PoolConfig {
            run_dir,
            init_bin: dir.join("init"),
            network: "none".into(),
            home: "home".into(),
            instance: "run1".into(),
            realm: Realm::default(),
            memory_budget_mb: 1024,
            queue_timeout: Duration::from_millis(100),
            idle_ttl: Duration::from_secs(600),
            cpu: CpuMode::Weighted,
            user: DEFAULT_SANDBOX_USER.into(),
            prewarm: 0,
            prewarm_max: 0,
            remote: None,
            prestart: true,
            start_limit: 0,
        }
    }
}

/// What the pool needs to start a container for a function.
#[derive(Debug, Clone)]
pub struct Launch {
    pub function: Arc<Function>,
    /// `None` for container image functions: the image is the runtime.
    pub runtime: Option<&'static Runtime>,
    pub image: String,
    /// The unpacked code on the host, mounted at `/var/task` (zip functions).
    pub task_dir: Option<PathBuf>,
    /// The function's layers merged, mounted at `/opt`.
    pub opt_dir: Option<PathBuf>,
}

impl Launch {
    /// What lambdabox-init starts: the runtime's bootstrap, or the image's
    /// ENTRYPOINT + CMD; empty means Lambda's search for `bootstrap`.
    /// On a managed runtime, `AWS_LAMBDA_EXEC_WRAPPER` (a wrapper script,
    /// as observability layers install) is started instead, with the
    /// bootstrap as its arguments, as on Lambda.
    fn bootstrap(&self) -> Vec<String> {
        match (self.runtime, &self.function.image) {
            (Some(runtime), _) => {
                let wrapper = self.function.environment.get(EXEC_WRAPPER).filter(|w| !w.is_empty());
                let wrapper = wrapper.filter(|_| !runtime.bootstrap.is_empty());
                wrapper.into_iter().cloned().chain(runtime.bootstrap.iter().map(|s| s.to_string())).collect()
            }
            (None, Some(image)) => image.command(),
            (None, None) => Vec::new(),
        }
    }

    fn working_dir(&self) -> String {
        match &self.function.image {
            Some(image) => image.working_dir(),
            None => TASK_ROOT.to_owned(),
        }
    }
}

/// One function container and its Runtime API.
#[derive(Debug)]
pub struct Container {
    /// Short id naming its socket folder and Docker name.
    pub key: String,
    pub docker_id: String,
    pub function: String,
    /// The version it runs, as [`Function::slot`] names it.
    pub slot: String,
    pub revision: String,
    pub memory_mb: u32,
    /// Started for provisioned concurrency: never reaped while configured.
    pub provisioned: bool,
    pub mailbox: Arc<Mailbox>,
    /// Its output, framed per invocation.
    pub log: Arc<ContainerLog>,
    pub started: Instant,
    idle_ttl: Duration,
    invocations: AtomicU64,
    /// When it last finished an invocation (or was started), for TTL and LRU.
    last_used: Mutex<Instant>,
    busy: AtomicBool,
    /// Started for an invocation that has not ended yet (counted in
    /// [`Inner::cold_starts`]).
    cold: AtomicBool,
    /// Counted against its function's [`PoolConfig::start_limit`]: from
    /// its start for a caller until it has been ready as long as its start
    /// took (within [`LIMIT_HOLD_MIN`] and [`BEHIND_STARTS_MAX`]), or is
    /// gone. Meanwhile it serves the callers behind it as fast as it
    /// answers; after that, starting another container would likely be
    /// quicker than waiting for a busy one.
    limiting: AtomicBool,
    server: JoinHandle<()>,
    /// Reads the CPU time its processes have used, where the host lets us
    /// ([`Container::cpu_time`]).
    cpu: CpuClock,
}

/// A container's CPU-time reader ([`Backend::cpu_time`]), if any.
struct CpuClock(Option<crate::backend::Counter>);

impl std::fmt::Debug for CpuClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "CpuClock(cgroup)" } else { "CpuClock(none)" })
    }
}

impl Container {
    /// The CPU time its processes have used so far, where the host lets us
    /// read it cheaply (Docker on this host, not a remote or Kubernetes
    /// node): what the event queue weighs a queued event's run by.
    pub fn cpu_time(&self) -> Option<Duration> {
        self.cpu.0.as_ref().and_then(|read| read()).map(Duration::from_nanos)
    }

    /// Invocations served so far.
    pub fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::Relaxed)
    }

    fn last_used(&self) -> Instant {
        *self.last_used.lock().expect("container poisoned")
    }

    fn touch(&self) {
        *self.last_used.lock().expect("container poisoned") = Instant::now();
    }
}

/// A container lent to one invocation. Give it back with [`Lease::release`]
/// (it may serve again) or [`Lease::discard`]; dropping it discards it.
#[derive(Debug)]
pub struct Lease {
    pool: Pool,
    container: Option<Arc<Container>>,
}

impl Lease {
    pub fn container(&self) -> &Arc<Container> {
        self.container.as_ref().expect("lease holds its container until returned")
    }

    /// The invocation is over: keep the container warm if it can serve again.
    pub fn release(mut self) {
        if let Some(c) = self.container.take() {
            c.invocations.fetch_add(1, Ordering::Relaxed);
            self.pool.give_back(c, true);
        }
    }

    /// The container must not serve again (timeout, crash).
    pub fn discard(mut self) {
        if let Some(c) = self.container.take() {
            c.invocations.fetch_add(1, Ordering::Relaxed);
            self.pool.give_back(c, false);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(c) = self.container.take() {
            self.pool.give_back(c, false);
        }
    }
}

/// What `lambdabox ps` shows of a container.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerInfo {
    pub container: String,
    pub docker_id: String,
    pub function: String,
    pub revision: String,
    /// `starting`, `idle` or `busy`.
    pub state: &'static str,
    pub provisioned: bool,
    pub memory_mb: u32,
    pub age_ms: u64,
    pub idle_ms: u64,
    pub invocations: u64,
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
    logs: Arc<LogBook>,
    state: Mutex<State>,
    prewarm: Mutex<Prewarm>,
    /// Notified whenever capacity may have freed up.
    changed: Notify,
    /// Set by [`Pool::shutdown`]: maintenance starts nothing more.
    closing: AtomicBool,
    /// Synchronous callers waiting for room right now.
    waiters: AtomicUsize,
    /// Function containers being created right now: shutdown waits for
    /// them, or one created after its listing would be left behind.
    starting: AtomicUsize,
    /// Cold starts under way: containers started for an invocation, from
    /// their creation until that first invocation is over. The prewarmed
    /// pool grows only when there are none, so a burst's own runtimes and
    /// first invocations get the engine and the CPU first.
    cold_starts: AtomicUsize,
}

/// What a caller of [`Pool::acquire`] that cannot have a container yet
/// waits for.
enum WaitFor {
    /// Room under a limit, until the queue timeout; then this 429.
    Room(Throttle),
    /// Its function's cold starts under way ([`Admission::Behind`]), until
    /// [`BEHIND_STARTS_MAX`]; then it starts its own.
    Starts,
}

/// Whether [`Pool::acquire`] may wait for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A synchronous caller: waits up to the queue timeout.
    Queue,
    /// A queued asynchronous event: takes only free room, at once or never.
    Never,
}

/// Counts one of something (a waiting caller, a start under way) while it
/// lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Counted<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A container's host side before it runs anything: its socket folder,
/// Runtime API server and log.
#[derive(Debug)]
struct Sockets {
    key: String,
    dir: PathBuf,
    mailbox: Arc<Mailbox>,
    log: Arc<ContainerLog>,
    server: JoinHandle<()>,
    /// Remote transport only: how it authenticates and what it fetches.
    remote: Option<RemoteSide>,
}

/// A remote container's registration, as the pool needs it.
#[derive(Debug, Clone)]
struct RemoteSide {
    token: String,
    code: Arc<Mutex<Vec<CodeRef>>>,
    peak: Arc<AtomicU64>,
}

impl Sockets {
    /// Undo [`Pool::open_sockets`] when the container never started.
    fn close(self) {
        self.server.abort();
        remove_dirs(&self.dir);
    }
}

/// Remove a container's host folders: sockets, and a generic one's
/// `/var/task` and `/opt`.
fn remove_dirs(dir: &Path) {
    for d in [dir.to_path_buf(), prewarm::task_dir(dir), prewarm::opt_dir(dir)] {
        let _ = std::fs::remove_dir_all(d);
    }
}

impl Pool {
    pub fn new(backend: Arc<dyn Backend>, config: PoolConfig, logs: Arc<LogBook>) -> Pool {
        let inner = Inner {
            backend,
            config,
            logs,
            state: Mutex::default(),
            prewarm: Mutex::default(),
            changed: Notify::new(),
            closing: AtomicBool::new(false),
            starting: AtomicUsize::new(0),
            cold_starts: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
        };
        Pool { inner: Arc::new(inner) }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().expect("pool poisoned")
    }

    fn prewarm(&self) -> std::sync::MutexGuard<'_, Prewarm> {
        self.inner.prewarm.lock().expect("prewarm poisoned")
    }

    /// Keep generic containers for what functions use (see [`PrewarmUse`]);
    /// generics nothing uses are removed.
    pub fn set_prewarm_images(&self, uses: Vec<PrewarmUse>) {
        let prestart = self.inner.config.prestart;
        let mut keys: Vec<(PrewarmKey, usize)> = Vec::new();
        for u in uses {
            let key = PrewarmKey::new(u.image, Some(u.runtime), u.memory_mb, prestart);
            match keys.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += u.functions,
                None => keys.push((key, u.functions)),
            }
        }
        let unwanted = self.prewarm().set_uses(keys);
        for g in unwanted {
            self.remove_generic(g);
        }
    }

    /// How many generics of one kind are kept ready, as configured.
    fn prewarm_limits(&self) -> prewarm::Limits {
        let c = &self.inner.config;
        prewarm::Limits { floor: c.prewarm, max: c.prewarm_max.max(c.prewarm), idle: c.idle_ttl }
    }

    /// Start the maintenance task (idle reaping, provisioned top-ups). It
    /// holds only a weak reference: it ends when the pool is dropped.
    pub fn start_maintenance(&self) -> JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(MAINTENANCE_TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                Pool { inner }.maintain();
            }
        })
    }

    /// Remove containers an earlier run from this data directory left
    /// behind (a controller killed with hundreds of containers): listed now,
    /// before this run starts any, so nothing of its own can be among them;
    /// removed in the background, so start-up does not wait for the engine
    /// to delete them one by one. They serve nothing meanwhile: their
    /// control sockets went with the run that made them. Answers how many.
    pub async fn remove_leftovers(&self) -> Result<JoinHandle<usize>, PoolError> {
        let ids = self.inner.backend.list_labelled(labels::HOME, &self.inner.config.home).await?;
        let ours = self.state().docker_ids();
        let stale: Vec<String> = ids.into_iter().filter(|id| !ours.contains(id)).collect();
        let backend = self.inner.backend.clone();
        Ok(tokio::spawn(async move {
            let count = stale.len();
            let failed = remove_all(&*backend, stale).await.len();
            if count > 0 {
                tracing::info!(removed = count - failed, failed, "removed containers left by an earlier run");
            }
            count
        }))
    }

    /// A container for one invocation of `launch.function`: an idle warm one,
    /// else a new one if the limits allow, else ([`Wait::Queue`]) wait up to
    /// the queue timeout for room and then [`PoolError::Throttled`].
    /// [`Wait::Never`] (a queued asynchronous event) never waits and takes
    /// nothing while a synchronous caller waits: callers come first.
    pub async fn acquire(&self, launch: &Launch, wait: Wait) -> Result<Lease, PoolError> {
        let arrived = tokio::time::Instant::now();
        let deadline = arrived + self.inner.config.queue_timeout;
        // A synchronous caller waits behind its function's cold starts at
        // most this long, then starts its own (see `Admission::Behind`).
        let behind_until = arrived + BEHIND_STARTS_MAX;
        let mut waiting: Option<Counted<'_>> = None;
        loop {
            if wait == Wait::Never && self.inner.waiters.load(Ordering::Acquire) > 0 {
                return Err(PoolError::Throttled(Throttle::Budget));
            }
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let limit = (wait == Wait::Queue && tokio::time::Instant::now() < behind_until)
                .then_some(self.inner.config.start_limit)
                .filter(|n| *n > 0);
            let admission = self.state().admit(&launch.function, self.inner.config.memory_budget_mb, limit);
            let wait_for = match admission {
                Admission::Warm(c, evicted) => {
                    self.destroy_all(evicted);
                    return Ok(Lease { pool: self.clone(), container: Some(c) });
                }
                Admission::Start(evicted) => {
                    self.destroy_all(evicted);
                    break;
                }
                Admission::Behind(evicted) => {
                    self.destroy_all(evicted);
                    WaitFor::Starts
                }
                Admission::Throttled(t, evicted) => {
                    self.destroy_all(evicted);
                    if wait == Wait::Never {
                        return Err(PoolError::Throttled(t));
                    }
                    WaitFor::Room(t)
                }
            };
            waiting.get_or_insert_with(|| Counted::new(&self.inner.waiters));
            match wait_for {
                WaitFor::Room(t) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Err(PoolError::Throttled(t));
                    }
                }
                // Past it, the next admission starts a container regardless.
                WaitFor::Starts => {
                    let _ = tokio::time::timeout_at(behind_until, notified).await;
                }
            }
        }
        drop(waiting);
        let asked = Instant::now();
        match self.start(launch, false).await {
            Ok(c) => {
                self.unlimit_later(&c, asked);
                Ok(Lease { pool: self.clone(), container: Some(c) })
            }
            Err(e) => {
                self.state().cancel_start(&launch.function, true);
                self.inner.changed.notify_waiters();
                Err(e)
            }
        }
    }

    /// Stop counting `c` (started at `asked`) against its function's start
    /// limit once it is gone, or has been ready as long as its start took
    /// (at least [`LIMIT_HOLD_MIN`]: a specialized prewarmed container
    /// starts in milliseconds, but the next start may be a whole container).
    fn unlimit_later(&self, c: &Arc<Container>, asked: Instant) {
        let (pool, c) = (self.clone(), c.clone());
        tokio::spawn(async move {
            if c.mailbox.wait_ready().await {
                let hold = asked.elapsed().clamp(LIMIT_HOLD_MIN, BEHIND_STARTS_MAX);
                tokio::time::sleep(hold).await;
            }
            pool.unlimit(&c);
        });
    }

    /// `c` no longer holds back its function's other callers (idempotent).
    fn unlimit(&self, c: &Container) {
        if c.limiting.swap(false, Ordering::AcqRel) {
            self.state().start_settled(&c.slot);
            self.inner.changed.notify_waiters();
        }
    }

    fn give_back(&self, c: Arc<Container>, reusable: bool) {
        if c.cold.swap(false, Ordering::AcqRel) {
            self.inner.cold_starts.fetch_sub(1, Ordering::AcqRel);
        }
        let doomed = self.state().give_back(&c, reusable && c.mailbox.is_usable());
        if let Some(c) = doomed {
            self.destroy(c);
        }
        self.inner.changed.notify_waiters();
    }

    fn destroy_all(&self, containers: Vec<Arc<Container>>) {
        for c in containers {
            self.destroy(c);
        }
    }

    fn destroy(&self, c: Arc<Container>) {
        destroy(&self.inner, c, ExitReason::Removed);
    }

    /// The function version of `slot` ([`Function::slot`]) changed (`Some(new
    /// revision)`) or was deleted (`None`): retire its idle containers now
    /// and its busy ones when they finish.
    pub fn retire(&self, slot: &str, revision: Option<&str>) {
        let retired = self.state().retire(slot, revision);
        self.destroy_all(retired);
        self.inner.changed.notify_waiters();
    }

    /// Keep `count` initialised containers of `launch` ready (0 stops it).
    pub fn set_provisioned(&self, launch: Launch, count: u32) {
        self.state().set_provisioned(launch, count);
        self.maintain();
    }

    /// How many provisioned containers of `slot` are initialised.
    pub fn provisioned_ready(&self, slot: &str) -> u32 {
        self.state().provisioned_ready(slot)
    }

    /// Every live container, for `lambdabox ps`.
    pub fn list(&self) -> Vec<ContainerInfo> {
        let mut out = self.state().list(Instant::now());
        out.extend(self.prewarm().ready_keys().into_iter().map(|(key, docker_id, image, memory_mb)| ContainerInfo {
            container: key,
            docker_id,
            function: String::new(),
            revision: image,
            state: "prewarmed",
            provisioned: false,
            memory_mb,
            age_ms: 0,
            idle_ms: 0,
            invocations: 0,
        }));
        out
    }

    /// Reap idle containers past their TTL and start missing provisioned ones.
    fn maintain(&self) {
        if self.inner.closing.load(Ordering::Relaxed) {
            return;
        }
        self.maintain_prewarm();
        let (expired, to_start) = self.state().maintenance(Instant::now(), self.inner.config.memory_budget_mb);
        let freed = !expired.is_empty();
        for c in expired {
            tracing::info!(function = %c.function, container = %c.key, "idle past its TTL; removing");
            self.destroy(c);
        }
        if freed {
            self.inner.changed.notify_waiters();
        }
        for launch in to_start {
            let pool = self.clone();
            tokio::spawn(async move {
                let f = launch.function.clone();
                match pool.start(&launch, true).await {
                    Ok(c) => {
                        let doomed = pool.state().give_back(&c, true);
                        if let Some(c) = doomed {
                            pool.destroy(c);
                        }
                    }
                    Err(e) => {
                        pool.state().cancel_start(&f, false);
                        tracing::warn!(function = %f.name, error = %e, "could not start a provisioned container");
                    }
                }
                pool.inner.changed.notify_waiters();
            });
        }
    }

    /// Start the generics the prewarm books ask for and remove the ones
    /// they no longer want ([`Prewarm::plan`]).
    fn maintain_prewarm(&self) {
        let room = self.inner.config.memory_budget_mb as i64 - self.state().memory_mb() as i64;
        let busy = self.inner.starting.load(Ordering::Acquire) + self.inner.cold_starts.load(Ordering::Acquire);
        let grow = busy == 0;
        let plan = self.prewarm().plan(Instant::now(), self.prewarm_limits(), room, grow);
        for g in plan.remove {
            tracing::info!(container = %g.sockets.key, "prewarmed container no longer wanted; removing");
            self.remove_generic(g);
        }
        for key in plan.start {
            let pool = self.clone();
            tokio::spawn(async move {
                let started = match pool.start_generic(&key).await {
                    Ok(g) => Some(g),
                    Err(e) => {
                        tracing::warn!(image = key.image, error = %e, "could not start a prewarmed container");
                        None
                    }
                };
                if let Some(unwanted) = pool.prewarm().started(&key, started) {
                    pool.remove_generic(unwanted);
                }
            });
        }
    }

    /// Remove every container of this run; used at shutdown. Docker is asked
    /// too, so containers already on their way out (retired, timed out) are
    /// waited for rather than left behind if their removal is slow.
    pub async fn shutdown(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
        let mut generics = self.prewarm().set_uses(Vec::new());
        // Containers being created now would escape the listing below.
        let deadline = Instant::now() + SHUTDOWN_START_WAIT;
        let starting = || self.prewarm().starting() + self.inner.starting.load(Ordering::Acquire);
        while starting() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        generics.extend(self.prewarm().drain());
        let generics: Vec<String> = generics
            .into_iter()
            .map(|g| {
                g.sockets.server.abort();
                g.docker_id
            })
            .collect();
        let all = self.state().drain();
        let mut ids: Vec<String> = all
            .iter()
            .map(|c| {
                c.mailbox.exited(ExitReason::Removed);
                c.server.abort();
                c.docker_id.clone()
            })
            .collect();
        ids.extend(generics);
        match self.inner.backend.list_labelled(labels::INSTANCE, &self.inner.config.instance).await {
            Ok(more) => ids.extend(more),
            Err(e) => tracing::warn!(error = %e, "could not list this run's containers"),
        }
        ids.sort();
        ids.dedup();
        for (id, e) in remove_all(&*self.inner.backend, ids).await {
            tracing::warn!(container = %id, error = %e, "could not remove container at shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.inner.config.run_dir);
    }

    /// Start a container (its memory already reserved) and register it
    /// busy: a prewarmed generic one specialized for `launch` if one is
    /// ready, else a new one.
    async fn start(&self, launch: &Launch, provisioned: bool) -> Result<Arc<Container>, PoolError> {
        let key = PrewarmKey::for_launch(launch, self.inner.config.prestart);
        let generic = self.prewarm().take(launch, &key, !provisioned, Instant::now(), self.prewarm_limits());
        if let Some(g) = generic {
            let key = g.sockets.key.clone();
            match self.specialize(g, launch, provisioned).await {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(container = %key, error = %e, "could not specialize; starting a new container")
                }
            }
        }
        let code = self.code_refs(launch).await?;
        let sockets = self.open_sockets(code)?;
        let spec = self.container_spec(launch, &sockets, provisioned);
        let _starting = Counted::new(&self.inner.starting);
        match self.inner.backend.start(spec).await {
            Ok(docker_id) => Ok(self.adopt(launch, sockets, docker_id, provisioned, "container started")),
            Err(e) => {
                sockets.close();
                match e {
                    BackendError::NoCapacity(why) => {
                        tracing::warn!(function = %launch.function.name, "{why}");
                        Err(PoolError::Throttled(Throttle::Capacity))
                    }
                    e => Err(e.into()),
                }
            }
        }
    }

    /// The hub, when the backend's containers use the remote transport.
    fn hub(&self) -> Result<Option<&Arc<Hub>>, PoolError> {
        match self.inner.backend.transport() {
            Transport::Local => Ok(None),
            Transport::Remote => self.inner.config.remote.as_ref().map(Some).ok_or(PoolError::NoHub),
        }
    }

    /// Remote transport: what `launch`'s container fetches (its code and
    /// merged layers, archived once by digest). Empty on the local one.
    async fn code_refs(&self, launch: &Launch) -> Result<Vec<CodeRef>, PoolError> {
        let Some(hub) = self.hub()? else { return Ok(Vec::new()) };
        let mut refs = Vec::new();
        for (dir, dest) in [(&launch.task_dir, TASK_ROOT), (&launch.opt_dir, OPT_ROOT)] {
            if let Some(dir) = dir {
                refs.push(CodeRef { dest: dest.to_owned(), digest: hub.code().publish(dir).await? });
            }
        }
        Ok(refs)
    }

    /// A socket folder with a served Runtime API, and the log it feeds; on
    /// the remote transport, a registration with the hub instead, allowed
    /// to fetch `code`.
    fn open_sockets(&self, code: Vec<CodeRef>) -> Result<Sockets, PoolError> {
        let key = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        let dir = self.inner.config.run_dir.join(&key);
        if let Some(hub) = self.hub()? {
            let registration = hub.register(&key, code);
            let remote = RemoteSide {
                token: registration.token.clone(),
                code: registration.code.clone(),
                peak: registration.peak.clone(),
            };
            let (mailbox, log) = (Arc::new(Mailbox::new()), Arc::new(ContainerLog::new()));
            let app = runtime_api::router(mailbox.clone());
            let server = tokio::spawn(crate::remote::serve(registration, mailbox.clone(), log.clone(), app));
            return Ok(Sockets { key, dir, mailbox, log, server, remote: Some(remote) });
        }
        let socket_err = |source| PoolError::Socket { path: dir.clone(), source };
        // Private: inside the container only root (init) may enter it.
        crate::private::dir(&dir).map_err(socket_err)?;
        let path = dir.join(lambdabox_protocol::CONTROL_SOCKET);
        let listener = runtime_api::bind(&path).map_err(socket_err)?;
        let mailbox = Arc::new(Mailbox::new());
        let log = Arc::new(ContainerLog::new());
        let server = tokio::spawn(runtime_api::serve(listener, path, mailbox.clone(), log.clone()));
        Ok(Sockets { key, dir, mailbox, log, server, remote: None })
    }

    /// Make a running container `launch.function`'s: its books, its log,
    /// the watch on its end and its CPU cap.
    fn adopt(
        &self,
        launch: &Launch,
        sockets: Sockets,
        docker_id: String,
        provisioned: bool,
        how: &str,
    ) -> Arc<Container> {
        let f = &launch.function;
        sockets.log.adopt(f.name.clone(), self.inner.logs.clone(), self.peak_probe(&sockets, &docker_id));
        let idle_ttl = f.idle_ttl_s.map_or(self.inner.config.idle_ttl, |s| Duration::from_secs(u64::from(s)));
        let cpu = CpuClock(sockets.remote.is_none().then(|| self.inner.backend.cpu_time(&docker_id)).flatten());
        let container = Arc::new(Container {
            key: sockets.key,
            docker_id,
            function: f.name.clone(),
            slot: f.slot(),
            revision: f.pool_revision().to_owned(),
            memory_mb: f.memory_mb,
            provisioned,
            mailbox: sockets.mailbox,
            log: sockets.log,
            started: Instant::now(),
            idle_ttl,
            invocations: AtomicU64::new(0),
            last_used: Mutex::new(Instant::now()),
            busy: AtomicBool::new(true),
            cold: AtomicBool::new(!provisioned),
            limiting: AtomicBool::new(!provisioned),
            server: sockets.server,
            cpu,
        });
        if !provisioned {
            self.inner.cold_starts.fetch_add(1, Ordering::AcqRel);
        }
        self.state().register(container.clone());
        tokio::spawn(watch(self.inner.clone(), container.clone(), sockets.dir));
        tokio::spawn(supervise_init(self.inner.clone(), container.clone()));
        tracing::info!(function = %f.name, container = %container.key, provisioned, "{how}");
        container
    }

    /// Where a container's `REPORT` line finds its peak memory: the host's
    /// cgroup files, or (remote transport) what its init last reported.
    fn peak_probe(&self, sockets: &Sockets, docker_id: &str) -> MemoryProbe {
        const MB: u64 = 1024 * 1024;
        if let Some(remote) = &sockets.remote {
            let peak = remote.peak.clone();
            return Box::new(move || Some(peak.load(Ordering::Acquire)).filter(|b| *b > 0).map(|b| b.div_ceil(MB)));
        }
        match self.inner.backend.peak_memory(docker_id) {
            Some(read) => Box::new(move || read().map(|b| b.div_ceil(MB))),
            None => Box::new(|| None),
        }
    }

    /// Start a generic container of `key` (see [`prewarm`]).
    async fn start_generic(&self, key: &PrewarmKey) -> Result<Generic, PoolError> {
        let sockets = self.open_sockets(Vec::new())?;
        let local_dirs = if sockets.remote.is_none() {
            vec![prewarm::task_dir(&sockets.dir), prewarm::opt_dir(&sockets.dir)]
        } else {
            Vec::new()
        };
        for d in &local_dirs {
            if let Err(source) = code_dir(d) {
                sockets.close();
                return Err(PoolError::Socket { path: d.clone(), source });
            }
        }
        let spec = self.generic_spec(key, &sockets);
        let docker_id = match self.inner.backend.start(spec).await {
            Ok(id) => id,
            Err(e) => {
                sockets.close();
                return Err(e.into());
            }
        };
        let watch = tokio::spawn(watch_generic(self.clone(), sockets.key.clone(), docker_id.clone()));
        let runtime_started = key.prestarted.is_some();
        tracing::info!(image = key.image, container = %sockets.key, runtime_started, "prewarmed container started");
        let memory_mb = key.container_memory_mb();
        Ok(Generic { sockets, docker_id, watch: Some(watch), prestart: key.prestart(), memory_mb })
    }

    /// Turn generic `g` into `launch`'s container: its code and layers in
    /// place, its memory limit, then init told what to run.
    async fn specialize(
        &self,
        mut g: Generic,
        launch: &Launch,
        provisioned: bool,
    ) -> Result<Arc<Container>, PoolError> {
        if let Some(w) = g.watch.take() {
            w.abort();
        }
        if let Some(remote) = g.sockets.remote.clone() {
            // Told to init with its specialization; fetched by init itself.
            match self.code_refs(launch).await {
                Ok(refs) => *remote.code.lock().expect("registration poisoned") = refs,
                Err(e) => {
                    self.remove_generic(g);
                    return Err(e);
                }
            }
        } else if let Err(e) = self.link_code(&g, launch).await {
            self.remove_generic(g);
            return Err(e);
        }
        let env = self.function_environment(launch, provisioned);
        let hand_over = match (g.prestart, launch.runtime) {
            (Some(p), Some(runtime)) => prewarm::hand_over(p, launch, &environment::neutral_environment(runtime), &env),
            _ => false,
        };
        if g.prestart.is_some() {
            tracing::debug!(function = %launch.function.name, hand_over, "the runtime started ahead of need");
        }
        match prewarm::specialization_message(&launch.bootstrap(), &env, hand_over) {
            Ok(message) => g.sockets.mailbox.specialize(message),
            Err(e) => {
                self.remove_generic(g);
                return Err(PoolError::Specialization(e));
            }
        }
        // Raised while the runtime initialises: a generic container starts at
        // the smallest MemorySize (and its CPU weight), or at the function's
        // own when its runtime was started ahead, so a function is never
        // given more than its own, only (for a few ms) less.
        let memory_mb = launch.function.memory_mb;
        if memory_mb != g.memory_mb {
            let resources = Resources { memory_mb: Some(memory_mb), cpu: self.inner.config.cpu.at_start(memory_mb) };
            if let Err(e) = self.inner.backend.resize(g.docker_id.clone(), resources).await {
                self.remove_generic(g);
                return Err(e.into());
            }
        }
        Ok(self.adopt(launch, g.sockets, g.docker_id, provisioned, "prewarmed container specialized"))
    }

    /// Local transport: hard-link `launch`'s code and layers into generic
    /// `g`'s empty `/var/task` and `/opt` folders.
    async fn link_code(&self, g: &Generic, launch: &Launch) -> Result<(), PoolError> {
        let dir = g.sockets.dir.clone();
        let mut links = vec![];
        if let Some(task) = &launch.task_dir {
            links.push((task.clone(), prewarm::task_dir(&dir)));
        }
        if let Some(opt) = &launch.opt_dir {
            links.push((opt.clone(), prewarm::opt_dir(&dir)));
        }
        tokio::task::spawn_blocking(move || links.iter().try_for_each(|(src, dst)| prewarm::link_tree(src, dst)))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| PoolError::Socket { path: dir, source })
    }

    /// Remove a generic container that will not be used.
    fn remove_generic(&self, g: Generic) {
        if let Some(w) = g.watch {
            w.abort();
        }
        let Generic { sockets, docker_id, .. } = g;
        sockets.server.abort();
        let backend = self.inner.backend.clone();
        tokio::spawn(async move {
            if let Err(e) = backend.remove(docker_id).await {
                tracing::warn!(container = %sockets.key, error = %e, "could not remove prewarmed container");
            }
            remove_dirs(&sockets.dir);
        });
    }

    /// A generic container's spec: lambdabox-init waiting to be told what
    /// to run, empty `/var/task` and `/opt`, the default sandbox.
    fn generic_spec(&self, prewarm_key: &PrewarmKey, sockets: &Sockets) -> ContainerSpec {
        let name = format!("lambdabox-prewarmed-{}", sockets.key);
        let tmp_mb = crate::function::DEFAULT_EPHEMERAL_MB;
        let (image, memory_mb) = (&prewarm_key.image, prewarm_key.container_memory_mb());
        let mut spec = self.base_spec(name, image, sockets, memory_mb, tmp_mb, TASK_ROOT.into());
        spec.env.push(format!("{}=1", protocol::env::GENERIC));
        spec.env.push(format!("{}=1", protocol::env::LAMBDA_ONLY));
        if let (Some(command), Some(runtime)) = (prewarm_key.prestart_command(), prewarm_key.prestarted) {
            // What every function of the runtime has, so the runtime started
            // now sees nothing another function would not.
            spec.env.splice(0..0, environment::neutral_environment(runtime));
            spec.env.push(format!("{}={command}", protocol::env::PRESTART));
        }
        spec.labels.insert(labels::GENERIC.to_owned(), "1".to_owned());
        if sockets.remote.is_some() {
            for target in [TASK_ROOT, OPT_ROOT] {
                spec.code.push(CodeMount { target: target.into(), digest: None });
            }
        } else {
            spec.mounts.push(read_only(prewarm::task_dir(&sockets.dir), TASK_ROOT));
            spec.mounts.push(read_only(prewarm::opt_dir(&sockets.dir), OPT_ROOT));
        }
        spec
    }

    /// The environment `launch.function`'s bootstrap starts with.
    fn function_environment(&self, launch: &Launch, provisioned: bool) -> Vec<String> {
        let init_type = if provisioned { "provisioned-concurrency" } else { "on-demand" };
        lambda_environment(&launch.function, launch.runtime, &self.inner.config.realm, init_type)
    }

    /// A container started for `launch.function`: its bootstrap, environment,
    /// labels, code and layers.
    fn container_spec(&self, launch: &Launch, sockets: &Sockets, provisioned: bool) -> ContainerSpec {
        let f = &launch.function;
        let name = format!("lambdabox-{}-{}", f.name, sockets.key);
        let mut spec =
            self.base_spec(name, &launch.image, sockets, f.memory_mb, f.ephemeral_storage_mb, launch.working_dir());
        spec.foreign_image = launch.runtime.is_none();
        spec.entrypoint.extend(launch.bootstrap());
        // Before lambdabox's own variables, which must win over a user's.
        spec.env.splice(0..0, self.function_environment(launch, provisioned));
        if launch.runtime.is_some() {
            spec.env.push(format!("{}=1", protocol::env::LAMBDA_ONLY));
        }
        spec.labels.extend([
            (labels::FUNCTION.to_owned(), f.name.clone()),
            (labels::VERSION.to_owned(), f.version_label()),
            (labels::REVISION.to_owned(), f.pool_revision().to_owned()),
        ]);
        if let Some(remote) = &sockets.remote {
            let refs = remote.code.lock().expect("registration poisoned").clone();
            spec.code = refs.into_iter().map(|r| CodeMount { target: r.dest, digest: Some(r.digest) }).collect();
            return spec;
        }
        if let Some(task) = &launch.task_dir {
            spec.mounts.push(read_only(task.clone(), TASK_ROOT));
        }
        if let Some(opt) = &launch.opt_dir {
            spec.mounts.push(read_only(opt.clone(), OPT_ROOT));
        }
        spec
    }

    /// What every lambdabox container has: lambdabox-init as PID 1 with its
    /// way to the controller (its socket folder, or the hub's address and
    /// its identity), the labels that find it again, the sandbox.
    fn base_spec(
        &self,
        name: String,
        image: &str,
        sockets: &Sockets,
        memory_mb: u32,
        tmp_mb: u32,
        working_dir: String,
    ) -> ContainerSpec {
        let cfg = &self.inner.config;
        let mut env = vec![format!("{}={}", protocol::env::SANDBOX_USER, cfg.user)];
        let mut mounts = vec![read_only(cfg.init_bin.clone(), INIT_TARGET)];
        match (&sockets.remote, &cfg.remote) {
            (Some(remote), Some(hub)) => {
                let access = hub.access();
                env.push(format!("{}={}", protocol::env::CONTROLLER, access.controller));
                if let Some(ca) = &access.ca {
                    env.push(format!("{}={ca}", protocol::env::CONTROLLER_CA));
                }
                env.push(format!("{}={}", protocol::env::CONTAINER_ID, sockets.key));
                env.push(format!("{}={}", protocol::env::TOKEN, remote.token));
                mounts.extend(access.mount.clone());
            }
            _ => {
                env.push(format!("{}={CONTROL_DIR}/{CONTROL_SOCKET}", protocol::env::CONTROL_SOCKET));
                mounts.push(read_only(sockets.dir.clone(), CONTROL_DIR));
            }
        }
        ContainerSpec {
            name,
            image: image.to_owned(),
            entrypoint: vec![INIT_TARGET.to_owned()],
            env,
            labels: HashMap::from([
                (labels::MANAGED.to_owned(), "1".to_owned()),
                (labels::HOME.to_owned(), cfg.home.clone()),
                (labels::INSTANCE.to_owned(), cfg.instance.clone()),
            ]),
            mounts,
            code: Vec::new(),
            memory_mb,
            cpu: cfg.cpu.at_start(memory_mb),
            network: cfg.network.clone(),
            working_dir,
            sandbox: Sandbox { tmp_mb, init_capabilities: init_capabilities(), ..Sandbox::default() },
            foreign_image: false,
        }
    }
}

/// Removals in flight at once when many containers go together (shutdown,
/// an earlier run's leftovers). The engine deletes containers mostly one
/// at a time: hundreds asked at once would wait past its call timeout.
const REMOVE_CONCURRENCY: usize = 8;

/// Remove every container of `ids`, [`REMOVE_CONCURRENCY`] at a time;
/// the ones that could not be removed, with why.
async fn remove_all(backend: &dyn Backend, ids: Vec<String>) -> Vec<(String, BackendError)> {
    use futures_util::StreamExt;
    futures_util::stream::iter(ids)
        .map(|id| async move { (id.clone(), backend.remove(id).await) })
        .buffer_unordered(REMOVE_CONCURRENCY)
        .filter_map(|(id, result)| async move { result.err().map(|e| (id, e)) })
        .collect()
        .await
}

/// Create `dir` readable by the sandbox user, which will find a function's
/// code in it (whatever the umask).
fn code_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().mode(0o755).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
}

/// What lambdabox-init starts with besides root's uid: switching the
/// bootstrap to the sandbox user, signalling it, and, when the controller
/// is not root (its control folder then belongs to another uid), reading
/// that folder once. init keeps only the signalling once the function runs;
/// the function itself has none.
fn init_capabilities() -> Vec<String> {
    let mut caps = vec!["SETUID".to_owned(), "SETGID".to_owned(), "KILL".to_owned()];
    if !rustix::process::geteuid().is_root() {
        caps.push("DAC_OVERRIDE".to_owned());
    }
    caps
}

/// A read-only bind mount.
fn read_only(source: PathBuf, target: &str) -> BindMount {
    BindMount { source, target: target.into(), read_only: true }
}

/// Watch a container's start. Its CPU is capped once its runtime has
/// initialised or its init burst ([`INIT_CPU_BURST`]) is over, whichever
/// comes first: init runs with the whole machine, so cold starts do not pay
/// for small MemorySizes (Lambda, too, boosts init), and a bootstrap that
/// never polls gets no more than the burst (the cap takes effect a few tens
/// of milliseconds after it is asked for, a Docker update). A runtime that
/// has not polled for an event within [`INIT_TIMEOUT`] of its start is
/// removed, whoever started it (an invocation, provisioned concurrency): a
/// bootstrap that hangs or spins is not kept.
async fn supervise_init(inner: Arc<Inner>, c: Arc<Container>) {
    let ready = tokio::time::timeout(INIT_CPU_BURST, c.mailbox.wait_ready()).await;
    if ready == Ok(false) {
        return;
    }
    if let Some(cap) = inner.config.cpu.once_initialised(c.memory_mb) {
        cap_cpu(inner.backend.as_ref(), &c, cap).await;
    }
    let rest = INIT_TIMEOUT.saturating_sub(c.started.elapsed());
    if ready.is_ok() || tokio::time::timeout(rest, c.mailbox.wait_ready()).await.is_ok() {
        return;
    }
    tracing::warn!(function = %c.function, container = %c.key, "runtime did not initialise in time; removing");
    let forgotten = inner.state.lock().expect("pool poisoned").forget(&c.key);
    if let Some(c) = forgotten {
        destroy(&inner, c, ExitReason::InitTimedOut);
    }
    inner.changed.notify_waiters();
}

async fn cap_cpu(backend: &dyn Backend, c: &Container, cap: CpuSetting) {
    if let Err(e) = backend.resize(c.docker_id.clone(), Resources { memory_mb: None, cpu: Some(cap) }).await {
        // A runtime that already exited (or was retired) has no CPU to cap.
        if c.mailbox.is_finished() || matches!(e, BackendError::Unsupported(_)) {
            tracing::debug!(container = %c.key, error = %e, "not capping CPU");
        } else {
            tracing::warn!(container = %c.key, error = %e, "could not limit CPU");
        }
    }
}

/// Remove a container that is already out of the pool's books, settling
/// whoever waits on it with `reason`. Its watcher finishes the clean-up
/// when the backend reports it gone.
fn destroy(inner: &Inner, c: Arc<Container>, reason: ExitReason) {
    c.mailbox.exited(reason);
    let backend = inner.backend.clone();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let lift = (inner.config.cpu == CpuMode::Strict).then(|| cpu::unlimited(cpus));
    tokio::spawn(async move {
        if let Some(cpu) = lift {
            // A container capped to a small share with many processes (a
            // fork bomb) can take minutes to die at that share: lift the cap
            // so the kill completes at once. Best effort.
            let _ = backend.resize(c.docker_id.clone(), Resources { memory_mb: None, cpu: Some(cpu) }).await;
        }
        if let Err(e) = backend.remove(c.docker_id.clone()).await {
            tracing::warn!(container = %c.key, error = %e, "could not remove container");
        }
    });
}

/// Wait for a container to stop, then settle its mailbox and clean up.
async fn watch(inner: Arc<Inner>, c: Arc<Container>, dir: PathBuf) {
    let reason = match inner.backend.wait(c.docker_id.clone()).await {
        Ok(ExitInfo { oom_killed: true, .. }) => ExitReason::OutOfMemory,
        Ok(ExitInfo { code, .. }) => match c.mailbox.noted_exit() {
            Some(reason) => reason,
            None => {
                log_init_failure(&inner, &c, code).await;
                ExitReason::Code(code as i32)
            }
        },
        Err(e) => {
            tracing::warn!(container = %c.key, error = %e, "lost track of container");
            ExitReason::Removed
        }
    };
    c.mailbox.exited(reason);
    inner.state.lock().expect("pool poisoned").forget(&c.key);
    inner.changed.notify_waiters();
    c.server.abort();
    if let Err(e) = inner.backend.remove(c.docker_id.clone()).await {
        tracing::warn!(container = %c.key, error = %e, "could not remove stopped container");
    }
    remove_dirs(&dir);
    tracing::info!(function = %c.function, container = %c.key, ?reason, "container gone");
}

/// A container that ended with no exit report: init itself gave up (a
/// bootstrap's end would have been reported). Its reason is on its stderr;
/// the operator gets it in the log (the caller gets Lambda's words).
async fn log_init_failure(inner: &Inner, c: &Container, code: i64) {
    if !(1..128).contains(&code) {
        return; // killed (by us, or the OOM killer): nothing to explain
    }
    if let Some(words) = inner.backend.last_words(c.docker_id.clone()).await {
        tracing::warn!(container = %c.key, code, init = %words, "lambdabox-init failed");
    }
}

/// Wait for a generic container to stop while it waits to be specialized;
/// if it does, forget and remove it (the next maintenance starts another).
async fn watch_generic(pool: Pool, key: String, docker_id: String) {
    let _ = pool.inner.backend.wait(docker_id).await;
    let gone = pool.prewarm().forget(&key);
    if let Some(mut g) = gone {
        g.watch = None;
        tracing::warn!(container = %key, "prewarmed container stopped while waiting");
        pool.remove_generic(g);
    }
}
