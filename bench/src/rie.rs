//! The baselines' containers: the AWS Runtime Interface Emulator as the
//! entrypoint of a `lambdabox/python3.11` container, the way SAM local and
//! RIE users run it (RIE bind-mounted at `/rie`, the handler at `/var/task`,
//! port 8080 published on loopback, no CPU or memory limits).
//!
//! Every container carries the label [`RUN_LABEL`] with this run's id, so
//! [`Rie::remove_all`] can clear them whatever happened.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, ContainerSummary, HostConfig, PortBinding};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;

/// Label on every container the bench starts; its value is the run id.
pub const RUN_LABEL: &str = "lambdabox-bench.run";
/// The port RIE listens on inside the container.
const RIE_PORT: &str = "8080/tcp";
/// Bound on each Docker call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RieError {
    #[error("Docker: {0}")]
    Docker(#[from] bollard::errors::Error),
    #[error("Docker did not answer {what} within {secs} s")]
    Timeout { what: &'static str, secs: u64 },
    #[error("no free loopback port: {0}")]
    Port(#[from] std::io::Error),
}

async fn bounded<T>(
    what: &'static str,
    fut: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, RieError> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(RieError::Timeout { what, secs: CALL_TIMEOUT.as_secs() }),
    }
}

/// What every RIE container runs.
#[derive(Debug, Clone)]
pub struct RieSpec {
    /// The RIE executable on the host.
    pub rie: PathBuf,
    /// The folder holding `app.py`.
    pub task: PathBuf,
    pub image: String,
    pub handler: String,
}

/// A started RIE container and the loopback port it answers on.
#[derive(Debug, Clone)]
pub struct RieContainer {
    pub id: String,
    pub port: u16,
}

impl RieContainer {
    /// The invocation URL RIE serves (the function name is always `function`).
    pub fn invoke_url(&self) -> String {
        format!("http://127.0.0.1:{}/2015-03-31/functions/function/invocations", self.port)
    }
}

/// The Docker engine, version negotiated, plus this run's label.
#[derive(Debug, Clone)]
pub struct Rie {
    docker: Docker,
    run_id: String,
}

impl Rie {
    pub async fn connect(run_id: &str) -> Result<Rie, RieError> {
        let docker = Docker::connect_with_local_defaults()?;
        let docker = bounded("version negotiation", docker.negotiate_version()).await?;
        Ok(Rie { docker, run_id: run_id.to_owned() })
    }

    /// Create and start one RIE container published on `port`. Removes it
    /// again if it cannot be started.
    pub async fn start(&self, spec: &RieSpec, port: u16) -> Result<RieContainer, RieError> {
        let binds = vec![bind(&spec.rie, "/rie"), bind(&spec.task, "/var/task")];
        let ports = HashMap::from([(
            RIE_PORT.to_owned(),
            Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(port.to_string()) }]),
        )]);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: Some(vec!["/rie".into()]),
            cmd: Some(vec!["/usr/bin/python3".into(), "-m".into(), "awslambdaric".into(), spec.handler.clone()]),
            labels: Some(HashMap::from([(RUN_LABEL.to_owned(), self.run_id.clone())])),
            exposed_ports: Some(vec![RIE_PORT.to_owned()]),
            host_config: Some(HostConfig { binds: Some(binds), port_bindings: Some(ports), ..Default::default() }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().build();
        let created = bounded("container create", self.docker.create_container(Some(options), body)).await?;
        if let Err(e) = bounded("container start", self.docker.start_container(&created.id, None)).await {
            let _ = self.remove(&created.id).await;
            return Err(e);
        }
        Ok(RieContainer { id: created.id, port })
    }

    /// `None` while the container runs, else its exit code.
    pub async fn exit_code(&self, id: &str) -> Result<Option<i64>, RieError> {
        let info = bounded("container inspect", self.docker.inspect_container(id, None)).await?;
        let state = info.state.unwrap_or_default();
        Ok(if state.running == Some(true) { None } else { Some(state.exit_code.unwrap_or(-1)) })
    }

    /// Force-remove one container.
    pub async fn remove(&self, id: &str) -> Result<(), RieError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        bounded("container remove", self.docker.remove_container(id, Some(options))).await
    }

    /// Whether Docker still has container `id` (in any state): a container
    /// lambdabox retired is gone only once its removal has finished.
    pub async fn exists(&self, id: &str) -> Result<bool, RieError> {
        Ok(!self.list("id", id).await?.is_empty())
    }

    /// How many containers, running or not, carry `label` (`key=value`).
    pub async fn count_labelled(&self, label: &str) -> Result<usize, RieError> {
        Ok(self.list("label", label).await?.len())
    }

    /// Force-remove every container of this run; returns how many there were.
    pub async fn remove_all(&self) -> Result<usize, RieError> {
        let found = self.list("label", &format!("{RUN_LABEL}={}", self.run_id)).await?;
        let mut removed = 0;
        for id in found.into_iter().filter_map(|c| c.id) {
            self.remove(&id).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Containers in any state matching one Docker list filter (`id`, `label`).
    async fn list(&self, filter: &str, value: &str) -> Result<Vec<ContainerSummary>, RieError> {
        let filters = HashMap::from([(filter.to_owned(), vec![value.to_owned()])]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        bounded("container list", self.docker.list_containers(Some(options))).await
    }
}

fn bind(host: &Path, target: &str) -> String {
    format!("{}:{target}:ro", host.display())
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16, RieError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
