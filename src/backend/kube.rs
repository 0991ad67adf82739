//! [`Backend`] on a Kubernetes cluster: one bare pod per function
//! container, reaching the controller over the remote transport
//! ([`crate::remote`]); the node needs nothing of ours but lambdabox's
//! images.
//!
//! One label-selected watch follows every pod ([`pods`]); `start` returns
//! once the function's container runs, `wait` once it ended. A pod no node
//! takes within the queue timeout is deleted and answered as a throttle,
//! as the Docker backend's memory budget is. What a pod cannot express is
//! left out and said in the README: live memory or CPU changes (`resize`),
//! the pids and open-files limits (the cluster's kubelet sets those), and
//! the masking of a foreign image's `VOLUME`s.

mod labels;
pub mod manifest;
pub mod pods;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;

use self::labels::label_value;
use self::manifest::PodTemplate;
use self::pods::{Board, Stage};
use super::{Backend, BackendError, ContainerSpec, Counter, ExitInfo, Resources, Transport};
use crate::pool::labels as pool_labels;

/// How long a scheduled pod may take to run its function's container
/// (pulling an image included) before it is given up.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a pod no node takes is given at least, whatever the queue
/// timeout: the scheduler needs a moment to say so at all.
const UNSCHEDULABLE_MIN: Duration = Duration::from_secs(2);

/// How to reach the cluster and what to put in pods.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// The namespace pods go in; default: the kubeconfig's (or the
    /// service account's, in a cluster).
    pub namespace: Option<String>,
    /// Prepended to image names: where the cluster pulls lambdabox's images.
    pub image_prefix: String,
    /// lambdabox-init's image ([`crate::images::Images::ensure_init`]).
    pub init_image: String,
    pub pull_policy: String,
    /// How long a pod may wait for a node before the call is throttled.
    pub queue_timeout: Duration,
}

/// A connection to a cluster's API server, and the pods this run started.
#[derive(Debug, Clone)]
pub struct KubeBackend {
    pods: Api<Pod>,
    board: Arc<Board>,
    template: PodTemplate,
    queue_timeout: Duration,
}

impl KubeBackend {
    /// Read the configuration (`KUBECONFIG`, `~/.kube/config`, or the pod's
    /// service account), check that pods can be listed, and start the watch.
    pub async fn connect(options: KubeOptions) -> Result<KubeBackend, BackendError> {
        // The one TLS provider this process uses (a build that links a
        // second one, as the tests' AWS SDK does, must say which).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config =
            kube::Config::infer().await.map_err(|e| BackendError::Other(format!("Kubernetes configuration: {e}")))?;
        let namespace = options.namespace.unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config)?;
        let pods: Api<Pod> = Api::namespaced(client, &namespace);
        pods.list(&ListParams::default().labels(&managed_selector()).limit(1)).await?;
        let board = Arc::new(Board::default());
        tokio::spawn(follow(pods.clone(), board.clone()));
        tracing::info!(namespace, "Kubernetes backend connected");
        let template = PodTemplate {
            namespace,
            image_prefix: options.image_prefix,
            init_image: options.init_image,
            pull_policy: options.pull_policy,
        };
        Ok(KubeBackend { pods, board, template, queue_timeout: options.queue_timeout })
    }

    async fn start_pod(&self, spec: ContainerSpec) -> Result<String, BackendError> {
        let name = manifest::pod_name(&spec.name);
        let pod = manifest::pod(&spec, &name, &self.template)?;
        self.board.track(&name);
        if let Err(e) = self.pods.create(&PostParams::default(), &pod).await {
            self.board.forget(&name);
            return Err(e.into());
        }
        match until_running(&self.board, &name, self.queue_timeout).await {
            Ok(()) => Ok(name),
            Err(e) => {
                let _ = self.delete_pod(&name).await;
                Err(e)
            }
        }
    }

    async fn wait_pod(&self, name: String) -> ExitInfo {
        loop {
            let mut changes = self.board.changes();
            match self.board.stage(&name) {
                Stage::Ended(exit) => return exit,
                Stage::Failed(_) | Stage::Gone => return ExitInfo { code: -1, oom_killed: false },
                _ => {}
            }
            let _ = changes.changed().await;
        }
    }

    async fn delete_pod(&self, name: &str) -> Result<(), BackendError> {
        // At once: a function container has nothing to flush, and a pod on
        // a lost node would otherwise wait for its kubelet forever.
        let params = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        let result = match self.pods.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        };
        self.board.forget(name);
        result
    }

    async fn list(&self, key: &str, value: &str) -> Result<Vec<String>, BackendError> {
        let selector = format!("{},{key}={}", managed_selector(), label_value(value));
        let list = self.pods.list(&ListParams::default().labels(&selector)).await?;
        Ok(list.items.into_iter().filter_map(|p| p.metadata.name).collect())
    }
}

impl Backend for KubeBackend {
    fn start(&self, spec: ContainerSpec) -> BoxFuture<'_, Result<String, BackendError>> {
        self.start_pod(spec).boxed()
    }

    fn wait(&self, id: String) -> BoxFuture<'_, Result<ExitInfo, BackendError>> {
        self.wait_pod(id).map(Ok).boxed()
    }

    fn remove(&self, id: String) -> BoxFuture<'_, Result<(), BackendError>> {
        async move { self.delete_pod(&id).await }.boxed()
    }

    fn resize(&self, _id: String, _r: Resources) -> BoxFuture<'_, Result<(), BackendError>> {
        async { Err(BackendError::Unsupported("changing a running pod's resources")) }.boxed()
    }

    fn list_labelled(&self, key: &str, value: &str) -> BoxFuture<'_, Result<Vec<String>, BackendError>> {
        let (key, value) = (key.to_owned(), value.to_owned());
        async move { self.list(&key, &value).await }.boxed()
    }

    fn peak_memory(&self, _id: &str) -> Option<Counter> {
        // init reports it over the remote transport.
        None
    }

    fn transport(&self) -> Transport {
        Transport::Remote
    }
}

/// Wait until `name`'s function container runs (or already ran). A pod
/// no node takes is given up once the queue timeout (at least
/// [`UNSCHEDULABLE_MIN`]) has passed: a throttle, as a full box is. One
/// still being placed or pulled is given [`START_TIMEOUT`].
async fn until_running(board: &Board, name: &str, queue_timeout: Duration) -> Result<(), BackendError> {
    // tokio's clock: tests pause it.
    let created = tokio::time::Instant::now();
    let unschedulable_limit = queue_timeout.max(UNSCHEDULABLE_MIN);
    loop {
        let mut changes = board.changes();
        match board.stage(name) {
            Stage::Running { .. } | Stage::Ended(_) => return Ok(()),
            Stage::Failed(why) => return Err(BackendError::Other(format!("pod {name}: {why}"))),
            Stage::Gone => return Err(BackendError::Other(format!("pod {name} was deleted before it ran"))),
            Stage::Pending { unschedulable: Some(why) } if created.elapsed() >= unschedulable_limit => {
                return Err(BackendError::NoCapacity(format!("pod {name}: {why}")));
            }
            Stage::Created | Stage::Pending { .. } => {}
        }
        let next = if created.elapsed() < unschedulable_limit { unschedulable_limit } else { START_TIMEOUT };
        let left = next.saturating_sub(created.elapsed());
        if left.is_zero() {
            return Err(BackendError::Timeout { what: "pod start", secs: START_TIMEOUT.as_secs() });
        }
        // The sender lives in `board`, which outlives this wait.
        let _ = tokio::time::timeout(left, changes.changed()).await;
    }
}

/// Every pod lambdabox starts carries this label.
fn managed_selector() -> String {
    format!("{}=1", pool_labels::MANAGED)
}

/// The one watch: keep `board` current until the process ends, relisting
/// (with backoff) whenever the watch is lost.
async fn follow(pods: Api<Pod>, board: Arc<Board>) {
    let config = watcher::Config::default().labels(&managed_selector());
    let mut events = std::pin::pin!(watcher::watcher(pods, config).default_backoff());
    let mut listed = HashSet::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(pod)) => board.apply(&pod),
            Ok(Event::Delete(pod)) => board.deleted(pod.metadata.name.as_deref().unwrap_or_default()),
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(pod)) => {
                listed.extend(pod.metadata.name.clone());
                board.apply(&pod);
            }
            Ok(Event::InitDone) => board.relisted(&listed),
            Err(e) => tracing::warn!(error = %e, "Kubernetes pod watch lost; relisting"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    fn unschedulable() -> Pod {
        pod(serde_json::json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available"}
        ]}))
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_no_node_takes_is_a_throttle_after_the_queue_timeout() {
        let board = Arc::new(Board::default());
        board.track("p");
        board.apply(&unschedulable());
        let started = tokio::time::Instant::now();
        let r = until_running(&board, "p", Duration::from_secs(5)).await;
        assert!(matches!(r, Err(BackendError::NoCapacity(ref m)) if m.contains("0/2 nodes")), "{r:?}");
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_placed_late_still_starts() {
        let board = Arc::new(Board::default());
        board.track("p");
        board.apply(&unschedulable());
        let later = board.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            later.apply(&pod(serde_json::json!({"phase": "Running", "containerStatuses": [
                {"name": "function", "image": "i", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]})));
        });
        until_running(&board, "p", Duration::from_secs(5)).await.expect("runs");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_that_never_runs_times_out_and_a_failed_one_says_why() {
        let board = Arc::new(Board::default());
        board.track("slow");
        let r = until_running(&board, "slow", Duration::from_millis(100)).await;
        assert!(matches!(r, Err(BackendError::Timeout { .. })), "{r:?}");
        board.track("bad");
        board.apply(
            &serde_json::from_value(
                serde_json::json!({"metadata": {"name": "bad"}, "status": {"phase": "Failed", "message": "evicted"}}),
            )
            .unwrap(),
        );
        let r = until_running(&board, "bad", Duration::from_millis(100)).await;
        assert!(matches!(r, Err(BackendError::Other(ref m)) if m.contains("evicted")), "{r:?}");
    }
}
