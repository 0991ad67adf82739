//! A [`Backend`] in memory that records every call, for testing the pool's
//! and the engine's decisions in-process, in milliseconds, with tokio's
//! paused clock. Nothing runs: a "container" is an entry in a table. Tests
//! play the runtime through each container's mailbox, tell the fake to fail
//! or hang a kind of call, and end containers as Docker would report it.
//!
//! What only a real engine can show (mounts, limits, the sandbox, init)
//! stays in the integration tests against Docker.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::watch;

use super::{Backend, BackendError, ContainerSpec, Counter, ExitInfo, Resources};
use crate::pool::cpu::CpuSetting;

/// One call the fake received, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Start(Box<ContainerSpec>),
    Wait(String),
    Remove(String),
    Resize(String, Resources),
    ListLabelled(String, String),
}

/// Kinds of call a test can make fail or hang.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Start,
    Remove,
    Resize,
    ListLabelled,
}

/// A container the fake "runs".
#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub id: String,
    pub spec: ContainerSpec,
    pub memory_mb: u32,
    pub cpu: Option<CpuSetting>,
    /// `None` while running.
    pub exit: Option<ExitInfo>,
}

#[derive(Debug, Default)]
struct Books {
    next_id: u64,
    containers: HashMap<String, FakeContainer>,
    /// Containers that existed before this run (for leftover clean-up).
    leftovers: Vec<(String, HashMap<String, String>)>,
    calls: Vec<Call>,
    failing: HashMap<Op, String>,
    hanging: HashSet<Op>,
    /// How long calls of a kind take before they answer.
    delays: HashMap<Op, std::time::Duration>,
}

/// See the module documentation. Cheap to clone; clones share the books.
#[derive(Debug, Clone, Default)]
pub struct FakeBackend {
    books: Arc<Mutex<Books>>,
    /// Bumped on every change of any container's state, to wake waiters.
    changed: Arc<watch::Sender<u64>>,
}

/// Exit code Docker reports for a container it killed.
const KILLED: i64 = 137;

impl FakeBackend {
    pub fn new() -> FakeBackend {
        FakeBackend::default()
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().expect("fake backend poisoned")
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.books().calls.clone()
    }

    /// The specs of every container started so far, in order.
    pub fn started(&self) -> Vec<ContainerSpec> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Start(spec) => Some(*spec),
                _ => None,
            })
            .collect()
    }

    /// Containers that exist and have not stopped.
    pub fn running(&self) -> Vec<FakeContainer> {
        let mut out: Vec<_> = self.books().containers.values().filter(|c| c.exit.is_none()).cloned().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// One container, if it exists (running or stopped, not removed).
    pub fn container(&self, id: &str) -> Option<FakeContainer> {
        self.books().containers.get(id).cloned()
    }

    /// Make every later call of kind `op` fail with `message` (until [`FakeBackend::heal`]).
    pub fn fail(&self, op: Op, message: &str) {
        self.books().failing.insert(op, message.to_owned());
    }

    /// Make every later call of kind `op` never answer.
    pub fn hang(&self, op: Op) {
        self.books().hanging.insert(op);
    }

    /// Make every later call of kind `op` take `delay` (on tokio's clock).
    pub fn delay(&self, op: Op, delay: std::time::Duration) {
        self.books().delays.insert(op, delay);
    }

    /// Calls of kind `op` work again.
    pub fn heal(&self, op: Op) {
        let mut b = self.books();
        b.failing.remove(&op);
        b.hanging.remove(&op);
    }

    /// A container another run left behind, carrying `labels`.
    pub fn add_leftover(&self, id: &str, labels: HashMap<String, String>) {
        self.books().leftovers.push((id.to_owned(), labels));
    }

    /// The container stops as Docker would report it (exit code, OOM).
    pub fn exit(&self, id: &str, info: ExitInfo) {
        if let Some(c) = self.books().containers.get_mut(id) {
            c.exit.get_or_insert(info);
        }
        self.bump();
    }

    /// What a call of kind `op` should do before its real work: fail, hang, or go on.
    async fn gate(&self, op: Op) -> Result<(), BackendError> {
        let (fail, hang, delay) = {
            let b = self.books();
            (b.failing.get(&op).cloned(), b.hanging.contains(&op), b.delays.get(&op).copied())
        };
        if let Some(delay) = delay.filter(|_| op != Op::Start) {
            tokio::time::sleep(delay).await;
        }
        if hang {
            std::future::pending::<()>().await;
        }
        match fail {
            Some(message) => Err(BackendError::Other(message)),
            None => Ok(()),
        }
    }

    fn record(&self, call: Call) {
        self.books().calls.push(call);
    }

    async fn start_fake(&self, spec: ContainerSpec) -> Result<String, BackendError> {
        self.record(Call::Start(Box::new(spec.clone())));
        let delay = self.books().delays.get(&Op::Start).copied();
        if let Some(delay) = delay {
            // Like an engine's, the creation goes on if the caller goes
            // away (a controller that exits mid-start).
            let (this, spec) = (self.clone(), spec);
            let created = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                this.create(spec)
            });
            return created.await.map_err(|e| BackendError::Other(e.to_string()));
        }
        self.gate(Op::Start).await?;
        Ok(self.create(spec))
    }

    /// The engine's side of a start: the container exists.
    fn create(&self, spec: ContainerSpec) -> String {
        let id = {
            let mut b = self.books();
            b.next_id += 1;
            let id = format!("fake{:04}", b.next_id);
            let container =
                FakeContainer { id: id.clone(), memory_mb: spec.memory_mb, cpu: spec.cpu, spec, exit: None };
            b.containers.insert(id.clone(), container);
            id
        };
        self.bump();
        id
    }

    async fn wait_fake(&self, id: String) -> Result<ExitInfo, BackendError> {
        self.record(Call::Wait(id.clone()));
        let mut changes = self.changed.subscribe();
        loop {
            match self.books().containers.get(&id) {
                None => return Ok(ExitInfo { code: -1, oom_killed: false }),
                Some(FakeContainer { exit: Some(info), .. }) => return Ok(*info),
                Some(_) => {}
            }
            if changes.changed().await.is_err() {
                return Err(BackendError::Other("fake backend dropped".into()));
            }
        }
    }

    async fn remove_fake(&self, id: String) -> Result<(), BackendError> {
        self.record(Call::Remove(id.clone()));
        self.gate(Op::Remove).await?;
        let killed = ExitInfo { code: KILLED, oom_killed: false };
        {
            let mut b = self.books();
            if let Some(c) = b.containers.get_mut(&id) {
                c.exit.get_or_insert(killed);
            }
        }
        // Waiters see the exit before the entry disappears.
        self.bump();
        tokio::task::yield_now().await;
        self.books().containers.remove(&id);
        self.books().leftovers.retain(|(l, _)| *l != id);
        self.bump();
        Ok(())
    }

    async fn update(&self, id: String, r: Resources) -> Result<(), BackendError> {
        self.record(Call::Resize(id.clone(), r));
        self.gate(Op::Resize).await?;
        let mut b = self.books();
        let c = b.containers.get_mut(&id).ok_or_else(|| BackendError::Other(format!("no such container: {id}")))?;
        c.memory_mb = r.memory_mb.unwrap_or(c.memory_mb);
        c.cpu = r.cpu.or(c.cpu);
        Ok(())
    }

    async fn list_fake(&self, key: String, value: String) -> Result<Vec<String>, BackendError> {
        self.record(Call::ListLabelled(key.clone(), value.clone()));
        self.gate(Op::ListLabelled).await?;
        let b = self.books();
        let live = b.containers.values().map(|c| (c.id.clone(), &c.spec.labels));
        let old = b.leftovers.iter().map(|(id, labels)| (id.clone(), labels));
        let mut ids: Vec<String> =
            live.chain(old).filter(|(_, labels)| labels.get(&key) == Some(&value)).map(|(id, _)| id).collect();
        ids.sort();
        Ok(ids)
    }
}

impl Backend for FakeBackend {
    fn start(&self, spec: ContainerSpec) -> BoxFuture<'_, Result<String, BackendError>> {
        self.start_fake(spec).boxed()
    }

    fn wait(&self, id: String) -> BoxFuture<'_, Result<ExitInfo, BackendError>> {
        self.wait_fake(id).boxed()
    }

    fn remove(&self, id: String) -> BoxFuture<'_, Result<(), BackendError>> {
        self.remove_fake(id).boxed()
    }

    fn resize(&self, id: String, r: Resources) -> BoxFuture<'_, Result<(), BackendError>> {
        self.update(id, r).boxed()
    }

    fn list_labelled(&self, key: &str, value: &str) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        self.list_fake(key.to_owned(), value.to_owned()).boxed()
    }

    fn peak_memory(&self, _id: &str) -> Option<Counter> {
        None
    }
}
