//! Container lifecycles behind a small trait, so the pool's logic can be unit
//! tested with a recording fake ([`fake`]) while [`docker`] drives the real
//! engine.

pub mod cgroup;
pub mod docker;
#[cfg(test)]
pub mod fake;
pub mod host_paths;
pub mod kube;

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::PathBuf;

use futures_util::future::BoxFuture;

use crate::pool::cpu::CpuSetting;

/// Resources of a running container to change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// The memory limit (and swap: none).
    pub memory_mb: Option<u32>,
    pub cpu: Option<CpuSetting>,
}

/// Everything needed to start one function container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Docker container name (unique on the host).
    pub name: String,
    pub image: String,
    /// The container's PID 1 and its arguments (lambdabox-init, then the bootstrap).
    pub entrypoint: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub mounts: Vec<BindMount>,
    /// Code the container gets without a shared file system (the remote
    /// transport): each a folder, filled by lambdabox-init from the
    /// controller before anything runs. How is the backend's business: a
    /// private writable place at `target` (Docker: a tmpfs; Kubernetes: an
    /// emptyDir) and, for those with a digest, a fetch into it
    /// (`lambdabox-init fetch`, or init itself told by
    /// [`lambdabox_protocol::env::FETCH`]).
    pub code: Vec<CodeMount>,
    pub memory_mb: u32,
    /// Its CPU weight or cap from creation, if any ([`crate::pool::cpu`]).
    pub cpu: Option<CpuSetting>,
    /// Docker network mode: `bridge`, `none`, …
    pub network: String,
    pub working_dir: String,
    pub sandbox: Sandbox,
    /// The image is not one of lambdabox's own (a container image
    /// function): paths it declares as `VOLUME` are masked, so that `/tmp`
    /// stays the only writable place.
    pub foreign_image: bool,
}

/// The confinement of a function container. The defaults are Lambda's shape:
/// nothing writable but a size-limited `/tmp`, no capabilities but the few
/// PID 1 needs to drop to the function's user, no new privileges, bounded
/// processes, file descriptors and engine-side log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// `uid:gid` PID 1 runs as. lambdabox-init runs as root so that it is
    /// not the function's user (see `runtimes/init/src/sandbox.rs`); it
    /// starts the function as the sandbox user.
    pub user: String,
    /// Capabilities PID 1 starts with (every other one is dropped).
    pub init_capabilities: Vec<String>,
    pub read_only_root: bool,
    /// Size of the `/tmp` tmpfs (EphemeralStorage).
    pub tmp_mb: u32,
    pub pids_limit: i64,
    pub max_open_files: i64,
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox {
            user: "0:0".into(),
            init_capabilities: Vec::new(),
            read_only_root: true,
            tmp_mb: 512,
            pids_limit: 1024,
            max_open_files: 1024,
        }
    }
}

/// A host path made visible in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

/// A folder of code in the container, fetched rather than mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMount {
    /// Where, in the container (`/var/task`, `/opt`).
    pub target: String,
    /// The archive's SHA-256 to fetch there; `None` leaves it empty for
    /// init to fill when it is specialized (a prewarmed container).
    pub digest: Option<String>,
}

/// How a backend's containers reach the controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// A control socket folder bind-mounted in, descriptors handed over,
    /// code bind-mounted: one host.
    #[default]
    Local,
    /// init dials the controller's hub and everything travels over that
    /// connection ([`crate::remote`]), code included.
    Remote,
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: i64,
    pub oom_killed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("image {0} is missing")]
    ImageMissing(String),
    #[error("Docker engine: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("Docker engine did not answer {what} within {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    #[error("{0} is inside the controller's container, on no mount the Docker engine can see")]
    NotShared(PathBuf),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] ::kube::Error),
    /// No node (or engine) has room for the container within the queue timeout.
    #[error("no room for another container: {0}")]
    NoCapacity(String),
    /// The backend cannot do this (see the README's backend table).
    #[error("this backend does not support {0}")]
    Unsupported(&'static str),
    #[error("{0}")]
    Other(String),
}

/// Reads one of a container's counters as it is now: its peak memory in
/// bytes ([`Backend::peak_memory`]) or the CPU time it has used in
/// nanoseconds ([`Backend::cpu_time`]).
pub type Counter = Box<dyn Fn() -> Option<u64> + Send + Sync>;

/// Starts, watches and removes containers. Implementations must be cheap to
/// share: the pool holds one behind an `Arc`.
pub trait Backend: Send + Sync + Debug {
    /// Create and start a container; returns its id.
    fn start(&self, spec: ContainerSpec) -> BoxFuture<'_, Result<String, BackendError>>;
    /// Resolve once the container has stopped.
    fn wait(&self, id: String) -> BoxFuture<'_, Result<ExitInfo, BackendError>>;
    /// Stop (kill) and delete a container; a container already gone is fine.
    fn remove(&self, id: String) -> BoxFuture<'_, Result<(), BackendError>>;
    /// Change the container's resources from now on, in one engine call:
    /// what is `None` in `r` stays as it is.
    fn resize(&self, id: String, r: Resources) -> BoxFuture<'_, Result<(), BackendError>>;
    /// Ids of every container, running or not, carrying label `key=value`.
    fn list_labelled(&self, key: &str, value: &str) -> BoxFuture<'_, Result<Vec<String>, BackendError>>;
    /// A reader of the most memory the container has used since it
    /// started, in bytes, if the host lets us read it cheaply: no engine
    /// round trip, and (Docker) a file opened once, as it is read for every
    /// invocation's `REPORT` line. `None` when the host has no such file.
    fn peak_memory(&self, id: &str) -> Option<Counter>;
    /// A reader of the CPU time the container's processes have used, in
    /// nanoseconds, under the same rules as [`Backend::peak_memory`]: the
    /// event queue reads it around every queued event it runs. `None` when
    /// the host has no such file (the queue then paces by concurrency only).
    fn cpu_time(&self, _id: &str) -> Option<Counter> {
        None
    }
    /// The last lines lambdabox-init wrote to its own stderr (its reason
    /// when it fails: a certificate the controller's TLS presented that it
    /// does not trust, a digest mismatch), if the backend keeps them.
    fn last_words(&self, _id: String) -> BoxFuture<'_, Option<String>> {
        Box::pin(std::future::ready(None))
    }
    /// How its containers reach the controller.
    fn transport(&self) -> Transport {
        Transport::Local
    }
}
