//! [`Backend`] on a real Docker Engine through bollard, plus the image calls
//! the [`crate::images`] module needs.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, ContainerUpdateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};

use super::host_paths::{self, HostPaths};
use super::{cgroup, Backend, BackendError, CodeMount, ContainerSpec, Counter, ExitInfo, Resources, Transport};
use crate::pool::cpu::CpuSetting;

/// What Docker keeps of a container's own stdout and stderr: only
/// lambdabox-init writes there (the function's output goes to the log pipe,
/// and the function cannot reach PID 1's descriptors), so a little is plenty.
const ENGINE_LOG_MAX: &str = "1m";
/// How many of init's own stderr lines explain a failure.
const LAST_WORDS: &str = "5";
/// tmpfs options masking an image's `VOLUME`.
const MASKED_VOLUME: &str = "ro,nosuid,nodev,noexec,size=4k,mode=0555";
/// Docker's network mode with nothing but loopback.
const NO_NETWORK: &str = "none";
/// `/etc/hosts` of a container without a network: loopback names only,
/// what Docker itself writes for `none`.
const LOOPBACK_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
/// Bound on any single Docker call that should be quick.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often, and how long, to retry waiting on a container while the engine is unreachable.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
const WAIT_RETRIES: u32 = 240;

/// A connection to the Docker Engine, version negotiated.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    docker: Docker,
    /// How the engine names this process's paths, for bind mounts.
    host_paths: Arc<HostPaths>,
    /// Local (the default, and the fast path) or remote: the remote
    /// transport on one host, a test and diagnostic mode for the path other
    /// backends need.
    transport: Transport,
    /// The engine's path of a [`LOOPBACK_HOSTS`] file, once
    /// [`DockerBackend::with_loopback_hosts`] wrote one: containers of
    /// network mode `none` then skip Docker's network set-up.
    loopback_hosts: Option<PathBuf>,
}

async fn bounded<T>(
    what: &'static str,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(r) => r.map_err(BackendError::from),
        Err(_) => Err(BackendError::Timeout { what, secs: CALL_TIMEOUT.as_secs() }),
    }
}

/// tmpfs options of a fetched code folder: root's (init fills it, the
/// function's user only reads), sized to the archives' limit. Its pages
/// count against the container's memory, as on a Kubernetes memory-backed
/// emptyDir.
const CODE_TMPFS: &str = "rw,exec,nosuid,nodev,mode=0755,size=300m";

/// Code without a shared file system, Docker's way: a tmpfs per folder,
/// and init told to fetch into it before anything runs (no init container).
fn fetched_code(code: &[CodeMount], tmpfs: &mut HashMap<String, String>, env: &mut Vec<String>) {
    for c in code {
        tmpfs.insert(c.target.clone(), CODE_TMPFS.to_owned());
    }
    let fetch: Vec<String> = code.iter().filter_map(|c| Some(format!("{}={}", c.target, c.digest.as_ref()?))).collect();
    if !fetch.is_empty() {
        env.push(format!("{}={}", lambdabox_protocol::env::FETCH, fetch.join(",")));
    }
}

/// Docker's `CpuShares`, `CpuPeriod` and `CpuQuota` for a setting.
fn cpu_fields(cpu: Option<CpuSetting>) -> (Option<i64>, Option<i64>, Option<i64>) {
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    match cpu {
        None => (None, None, None),
        Some(CpuSetting::Shares(n)) => (Some(int(n)), None, None),
        Some(CpuSetting::Quota { period_us, quota_us }) => (None, Some(int(period_us)), Some(int(quota_us))),
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

impl DockerBackend {
    /// Connect to the local engine (`DOCKER_HOST` or the default socket) and
    /// agree on an API version (Debian's engine speaks 1.41).
    pub async fn connect() -> Result<DockerBackend, BackendError> {
        let docker = Docker::connect_with_local_defaults()?;
        let docker = bounded("version negotiation", docker.negotiate_version()).await?;
        bounded("ping", docker.ping()).await?;
        Ok(DockerBackend { docker, host_paths: Arc::default(), transport: Transport::Local, loopback_hosts: None })
    }

    /// A client of a socket path in `dir` that nobody listens on: every
    /// call fails at once. In-process tests build [`crate::images::Images`]
    /// with it.
    #[cfg(test)]
    pub fn unreachable(dir: &std::path::Path) -> DockerBackend {
        let path = dir.join("no-docker.sock");
        std::fs::write(&path, b"").expect("placeholder socket path");
        let docker = Docker::connect_with_unix(&path.to_string_lossy(), 1, bollard::API_DEFAULT_VERSION)
            .expect("a client needs no connection");
        DockerBackend { docker, host_paths: Arc::default(), transport: Transport::Local, loopback_hosts: None }
    }

    /// Learn how the engine names this process's paths: when it runs in a
    /// Docker container, through that container's mounts ([`host_paths`]).
    /// A container the engine does not know (a controller on another
    /// engine's socket) passes paths as they are, with a warning.
    pub async fn discover_host_paths(mut self) -> Result<DockerBackend, BackendError> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let Some(id) = host_paths::own_container_id(&mountinfo) else { return Ok(self) };
        let short = &id[..12];
        match bounded("container inspect", self.docker.inspect_container(&id, None)).await {
            Ok(info) => {
                let mounts = info.mounts.unwrap_or_default().into_iter().filter_map(|m| {
                    let source = m.source.filter(|s| !s.is_empty())?;
                    Some((PathBuf::from(m.destination?), PathBuf::from(source)))
                });
                self.host_paths = Arc::new(HostPaths::contained(mounts));
                tracing::info!(container = short, "in a container: bind mounts name its mounts' sources on the host");
            }
            Err(BackendError::Docker(e)) if is_not_found(&e) => tracing::warn!(
                container = short,
                "in a container this Docker engine does not know: bind mount paths are passed as they are"
            ),
            Err(e) => return Err(e),
        }
        Ok(self)
    }

    /// Use `transport` for containers from now on.
    pub fn with_transport(mut self, transport: Transport) -> DockerBackend {
        self.transport = transport;
        self
    }

    /// Start containers of network mode `none` with networking disabled
    /// instead, and `/etc/hosts` from a file written in `dir` (a folder the
    /// engine sees). Inside, the two look the same: loopback up, no other
    /// interface, `localhost` resolving. But Docker sets up even an empty
    /// network with a hook that re-executes the daemon's binary, about
    /// 150 ms of CPU per container start here; a disabled one has none.
    pub fn with_loopback_hosts(mut self, dir: &std::path::Path) -> Result<DockerBackend, BackendError> {
        let path = dir.join("loopback.hosts");
        // 0644: the function's user reads it through the bind mount.
        crate::private::replace(&path, LOOPBACK_HOSTS.as_bytes(), 0o644)
            .map_err(|e| BackendError::Other(format!("{}: {e}", path.display())))?;
        self.loopback_hosts = Some(self.host_paths.to_engine(&path).ok_or(BackendError::NotShared(path))?);
        Ok(self)
    }

    /// How the engine names this process's paths.
    pub fn host_paths(&self) -> &HostPaths {
        &self.host_paths
    }

    /// What starting `image` runs (its id, ENTRYPOINT, CMD and WORKDIR)
    /// and its labels. `Ok(None)` when there is no such image.
    pub async fn image_facts(&self, image: &str) -> Result<Option<ImageFacts>, BackendError> {
        match bounded("image inspect", self.docker.inspect_image(image)).await {
            Ok(info) => {
                let config = info.config.unwrap_or_default();
                Ok(Some(ImageFacts {
                    id: info.id.unwrap_or_default(),
                    entrypoint: config.entrypoint.unwrap_or_default(),
                    cmd: config.cmd.unwrap_or_default(),
                    working_dir: config.working_dir.unwrap_or_default(),
                    labels: config.labels.unwrap_or_default(),
                }))
            }
            Err(BackendError::Docker(e)) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Try to pull `image` from a registry. Machines without one fail fast
    /// (name resolution), which callers treat as "build it locally".
    pub async fn pull(&self, image: &str, mut progress: impl FnMut(&str)) -> Result<(), BackendError> {
        let options = CreateImageOptionsBuilder::default().from_image(image).build();
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = tokio::time::timeout(CALL_TIMEOUT, stream.next())
            .await
            .map_err(|_| BackendError::Timeout { what: "image pull", secs: CALL_TIMEOUT.as_secs() })?
        {
            let info = item?;
            if let Some(status) = info.status {
                progress(&status);
            }
        }
        Ok(())
    }

    /// Build an image from a tar context, tagging it `tag`, labelling it and
    /// passing `build_args`.
    /// Each line of build output goes to `progress`. No overall timeout:
    /// installing packages may legitimately take minutes, and the output shows it.
    pub async fn build(
        &self,
        context: Vec<u8>,
        tag: &str,
        labels: HashMap<String, String>,
        build_args: HashMap<String, String>,
        mut progress: impl FnMut(&str),
    ) -> Result<(), BackendError> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .buildargs(&build_args)
            .build();
        let mut stream = self.docker.build_image(options, None, Some(bollard::body_full(Bytes::from(context))));
        while let Some(item) = stream.next().await {
            let info = item?;
            if let Some(detail) = info.error_detail {
                return Err(BackendError::Other(detail.message.unwrap_or_else(|| "image build failed".into())));
            }
            if let Some(line) = info.stream {
                for l in line.lines().filter(|l| !l.trim().is_empty()) {
                    progress(l);
                }
            }
        }
        Ok(())
    }

    /// The `VOLUME`s `image` declares. Docker would give each a writable
    /// anonymous volume on the host's disk, outside any size limit.
    async fn image_volumes(&self, image: &str) -> Result<Vec<String>, BackendError> {
        match bounded("image inspect", self.docker.inspect_image(image)).await {
            Ok(info) => Ok(info.config.and_then(|c| c.volumes).unwrap_or_default()),
            Err(BackendError::Docker(e)) if is_not_found(&e) => Err(BackendError::ImageMissing(image.to_owned())),
            Err(e) => Err(e),
        }
    }

    async fn start_container(&self, spec: ContainerSpec) -> Result<String, BackendError> {
        let memory = i64::from(spec.memory_mb) * 1024 * 1024;
        let (cpu_shares, cpu_period, cpu_quota) = cpu_fields(spec.cpu);
        let mut binds: Vec<String> = spec
            .mounts
            .iter()
            .map(|m| {
                let source =
                    self.host_paths.to_engine(&m.source).ok_or_else(|| BackendError::NotShared(m.source.clone()))?;
                Ok(format!("{}:{}:{}", source.display(), m.target, if m.read_only { "ro" } else { "rw" }))
            })
            .collect::<Result<_, BackendError>>()?;
        let no_network = self.loopback_hosts.as_ref().filter(|_| spec.network == NO_NETWORK);
        if let Some(hosts) = no_network {
            binds.push(format!("{}:/etc/hosts:ro", hosts.display()));
        }
        let sb = &spec.sandbox;
        let mut tmpfs =
            HashMap::from([("/tmp".to_owned(), format!("rw,exec,nosuid,nodev,mode=1777,size={}m", sb.tmp_mb))]);
        let mut env = spec.env;
        fetched_code(&spec.code, &mut tmpfs, &mut env);
        if spec.foreign_image {
            // A mount at a VOLUME's path stops Docker from creating the
            // volume; an empty read-only tmpfs keeps the path unwritable.
            for path in self.image_volumes(&spec.image).await? {
                tmpfs.entry(path).or_insert_with(|| MASKED_VOLUME.to_owned());
            }
        }
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: Some(spec.entrypoint),
            cmd: Some(Vec::new()),
            env: Some(env),
            labels: Some(spec.labels),
            working_dir: Some(spec.working_dir),
            user: Some(sb.user.clone()),
            network_disabled: no_network.map(|_| true),
            host_config: Some(HostConfig {
                binds: Some(binds),
                memory: Some(memory),
                memory_swap: Some(memory),
                cpu_shares,
                cpu_period,
                cpu_quota,
                network_mode: Some(spec.network),
                init: Some(false),
                readonly_rootfs: Some(sb.read_only_root),
                tmpfs: Some(tmpfs),
                cap_drop: Some(vec!["ALL".to_owned()]),
                cap_add: Some(sb.init_capabilities.clone()),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".to_owned()),
                    config: Some(HashMap::from([
                        ("max-size".to_owned(), ENGINE_LOG_MAX.to_owned()),
                        ("max-file".to_owned(), "1".to_owned()),
                    ])),
                }),
                security_opt: Some(vec!["no-new-privileges".to_owned()]),
                pids_limit: Some(sb.pids_limit),
                ulimits: Some(vec![ResourcesUlimits {
                    name: Some("nofile".to_owned()),
                    soft: Some(sb.max_open_files),
                    hard: Some(sb.max_open_files),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = match bounded("container create", self.docker.create_container(Some(options), body)).await {
            Err(BackendError::Docker(e)) if is_not_found(&e) => return Err(BackendError::ImageMissing(spec.image)),
            other => other?,
        };
        if let Err(e) = bounded("container start", self.docker.start_container(&created.id, None)).await {
            let _ = self.remove_container(created.id).await;
            return Err(e);
        }
        Ok(created.id)
    }

    /// Wait for the container to stop. If the engine goes away meanwhile (a
    /// restart), keep asking until it answers again: a restart stops the
    /// container, and the caller must hear of it.
    async fn wait_container(&self, id: String) -> Result<ExitInfo, BackendError> {
        let gone = ExitInfo { code: -1, oom_killed: false };
        let mut retries = 0;
        loop {
            let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
            let failure = match self.docker.wait_container(&id, Some(options)).next().await {
                Some(Ok(r)) => return Ok(self.exit_info(&id, r.status_code).await),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    return Ok(self.exit_info(&id, code).await)
                }
                Some(Err(e)) if is_not_found(&e) => return Ok(gone),
                Some(Err(e)) => BackendError::from(e),
                None => BackendError::Other("container wait ended without a status".into()),
            };
            retries += 1;
            if retries > WAIT_RETRIES {
                return Err(failure);
            }
            tracing::warn!(container = %id, error = %failure, "lost the engine while waiting; retrying");
            tokio::time::sleep(RETRY_PAUSE).await;
            match self.docker.inspect_container(&id, None).await {
                Ok(info) => {
                    let state = info.state.unwrap_or_default();
                    if !state.running.unwrap_or(false) {
                        let code = state.exit_code.unwrap_or(-1);
                        return Ok(ExitInfo { code, oom_killed: state.oom_killed.unwrap_or(false) });
                    }
                }
                Err(e) if is_not_found(&e) => return Ok(gone),
                Err(_) => {}
            }
        }
    }

    /// The container's own stderr (only init writes there), last lines.
    async fn stderr_tail(&self, id: String) -> Option<String> {
        let options = LogsOptionsBuilder::default().stderr(true).tail(LAST_WORDS).build();
        let read = self.docker.logs(&id, Some(options)).take(64).collect::<Vec<_>>();
        let lines = tokio::time::timeout(Duration::from_secs(5), read).await.ok()?;
        let text: String = lines.into_iter().filter_map(Result::ok).map(|l| l.to_string()).collect();
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    /// The exit code with the engine's OOM verdict.
    async fn exit_info(&self, id: &str, code: i64) -> ExitInfo {
        let oom_killed = match bounded("container inspect", self.docker.inspect_container(id, None)).await {
            Ok(info) => info.state.and_then(|s| s.oom_killed).unwrap_or(false),
            Err(_) => false,
        };
        ExitInfo { code, oom_killed }
    }

    async fn remove_container(&self, id: String) -> Result<(), BackendError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match bounded("container remove", self.docker.remove_container(&id, Some(options))).await {
            Err(BackendError::Docker(e)) if is_not_found(&e) => Ok(()),
            // 409: another removal is under way; done when it is.
            Err(BackendError::Docker(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            })) => self.wait_gone(&id).await,
            other => other,
        }
    }

    /// Wait until the engine no longer knows the container (bounded).
    async fn wait_gone(&self, id: &str) -> Result<(), BackendError> {
        for _ in 0..WAIT_RETRIES {
            match self.docker.inspect_container(id, None).await {
                Err(e) if is_not_found(&e) => return Ok(()),
                _ => tokio::time::sleep(RETRY_PAUSE).await,
            }
        }
        Err(BackendError::Timeout { what: "container removal", secs: (RETRY_PAUSE * WAIT_RETRIES).as_secs() })
    }

    async fn update_resources(&self, id: String, r: Resources) -> Result<(), BackendError> {
        let bytes = r.memory_mb.map(|mb| i64::from(mb) * 1024 * 1024);
        let (cpu_shares, cpu_period, cpu_quota) = cpu_fields(r.cpu);
        let body = ContainerUpdateBody {
            memory: bytes,
            memory_swap: bytes,
            cpu_shares,
            cpu_period,
            cpu_quota,
            ..Default::default()
        };
        bounded("container update", self.docker.update_container(&id, body)).await
    }

    async fn list(&self, key: &str, value: &str) -> Result<Vec<String>, BackendError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{key}={value}")])]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let found = bounded("container list", self.docker.list_containers(Some(options))).await?;
        Ok(found.into_iter().filter_map(|c| c.id).collect())
    }
}

/// See [`DockerBackend::image_facts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    pub id: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub labels: HashMap<String, String>,
}

impl Backend for DockerBackend {
    fn start(&self, spec: ContainerSpec) -> BoxFuture<'_, Result<String, BackendError>> {
        self.start_container(spec).boxed()
    }

    fn wait(&self, id: String) -> BoxFuture<'_, Result<ExitInfo, BackendError>> {
        self.wait_container(id).boxed()
    }

    fn remove(&self, id: String) -> BoxFuture<'_, Result<(), BackendError>> {
        self.remove_container(id).boxed()
    }

    fn resize(&self, id: String, r: Resources) -> BoxFuture<'_, Result<(), BackendError>> {
        self.update_resources(id, r).boxed()
    }

    fn last_words(&self, id: String) -> BoxFuture<'_, Option<String>> {
        self.stderr_tail(id).boxed()
    }

    fn list_labelled(&self, key: &str, value: &str) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        let (key, value) = (key.to_owned(), value.to_owned());
        async move { self.list(&key, &value).await }.boxed()
    }

    fn peak_memory(&self, id: &str) -> Option<Counter> {
        cgroup::PEAK_MEMORY.reader(cgroup::host_root(), id)
    }

    fn cpu_time(&self, id: &str) -> Option<Counter> {
        cgroup::CPU_TIME.reader(cgroup::host_root(), id)
    }

    fn transport(&self) -> Transport {
        self.transport
    }
}
