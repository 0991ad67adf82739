//! What one label-selected watch has seen of the pods this backend
//! started: each pod's stage, and a version that moves on every change, so
//! that `start` (waiting for Running) and `wait` (waiting for the end)
//! need no API call of their own. Pods the backend did not start (an
//! earlier run's, another controller's) are ignored.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tokio::sync::watch;

use super::manifest::{FETCH, FUNCTION};
use crate::backend::ExitInfo;

/// A pod created this recently may be missing from a relist that began
/// before it existed: it is not taken for gone.
const RELIST_GRACE: Duration = Duration::from_secs(10);

/// Waiting reasons that will not pass by waiting: the image is not there
/// or cannot be used.
const IMAGE_FAILURES: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Where a pod is in its life, as far as the backend cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Created; the watch has not reported it yet.
    Created,
    /// Not running yet; `unschedulable` says why no node took it.
    Pending { unschedulable: Option<String> },
    /// The function's container runs, on `node`.
    Running { node: Option<String> },
    /// The function's container ended.
    Ended(ExitInfo),
    /// It can never run: its image cannot be had, or fetching its code failed.
    Failed(String),
    /// Deleted, or missing from a relist.
    Gone,
}

#[derive(Debug)]
struct Tracked {
    stage: Stage,
    since: Instant,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Board {
    pods: Mutex<HashMap<String, Tracked>>,
    version: watch::Sender<u64>,
}

impl Default for Board {
    fn default() -> Self {
        Board { pods: Mutex::default(), version: watch::channel(0).0 }
    }
}

impl Board {
    /// Follow pod `name` from now on (before creating it).
    pub fn track(&self, name: &str) {
        let t = Tracked { stage: Stage::Created, since: Instant::now() };
        self.pods.lock().expect("board poisoned").insert(name.to_owned(), t);
    }

    /// Stop following `name`: whoever waits on it sees it gone.
    pub fn forget(&self, name: &str) {
        self.pods.lock().expect("board poisoned").remove(name);
        self.bump();
    }

    /// `name`'s stage; a pod not (or no longer) followed is gone.
    pub fn stage(&self, name: &str) -> Stage {
        self.pods.lock().expect("board poisoned").get(name).map_or(Stage::Gone, |t| t.stage.clone())
    }

    /// A receiver that sees the next change to any pod.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The watch reported `pod` added or changed.
    pub fn apply(&self, pod: &Pod) {
        let Some(name) = pod.metadata.name.as_deref() else { return };
        let stage = if pod.metadata.deletion_timestamp.is_some() { None } else { Some(stage_of(pod)) };
        self.set(name, stage.unwrap_or(Stage::Gone));
    }

    /// The watch reported `name` deleted.
    pub fn deleted(&self, name: &str) {
        self.set(name, Stage::Gone);
    }

    /// A relist found exactly `present`: followed pods missing from it
    /// were deleted while the watch was down.
    pub fn relisted(&self, present: &HashSet<String>) {
        let mut pods = self.pods.lock().expect("board poisoned");
        for (name, t) in pods.iter_mut() {
            if !present.contains(name) && t.since.elapsed() > RELIST_GRACE {
                t.stage = Stage::Gone;
            }
        }
        drop(pods);
        self.bump();
    }

    fn set(&self, name: &str, stage: Stage) {
        let mut pods = self.pods.lock().expect("board poisoned");
        let Some(t) = pods.get_mut(name) else { return };
        // An end is final: a later, staler report does not undo it.
        if matches!(t.stage, Stage::Ended(_) | Stage::Failed(_) | Stage::Gone) {
            return;
        }
        t.stage = stage;
        drop(pods);
        self.bump();
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

/// A pod's stage from its status.
pub fn stage_of(pod: &Pod) -> Stage {
    let Some(status) = &pod.status else { return Stage::Pending { unschedulable: None } };
    let function = status.container_statuses.iter().flatten().find(|c| c.name == FUNCTION);
    let fetch = status.init_container_statuses.iter().flatten().find(|c| c.name == FETCH);
    if let Some(exit) = function.and_then(ended) {
        return Stage::Ended(exit);
    }
    if let Some(why) =
        fetch.and_then(|c| failure(c, "fetching its code")).or_else(|| function.and_then(|c| failure(c, "starting")))
    {
        return Stage::Failed(why);
    }
    if function.and_then(|c| c.state.as_ref()).is_some_and(|s| s.running.is_some()) {
        return Stage::Running { node: pod.spec.as_ref().and_then(|s| s.node_name.clone()) };
    }
    match status.phase.as_deref() {
        // Ended with no word from the function's container: evicted, or its
        // node lost.
        Some("Failed" | "Succeeded") => {
            let why = status.message.clone().or(status.reason.clone()).unwrap_or_else(|| "the pod ended".into());
            Stage::Failed(why)
        }
        _ => {
            let unschedulable = status.conditions.iter().flatten().find_map(|c| {
                (c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
                    .then(|| c.message.clone().unwrap_or_else(|| "no node has room".into()))
            });
            Stage::Pending { unschedulable }
        }
    }
}

/// How the container ended, if it has.
fn ended(c: &ContainerStatus) -> Option<ExitInfo> {
    let t = c.state.as_ref()?.terminated.as_ref()?;
    Some(ExitInfo { code: i64::from(t.exit_code), oom_killed: t.reason.as_deref() == Some("OOMKilled") })
}

/// Why the container will never run, if that is known: an image that
/// cannot be had, or (the fetch container) an exit other than 0.
fn failure(c: &ContainerStatus, doing: &str) -> Option<String> {
    let state = c.state.as_ref()?;
    if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or_default();
        if IMAGE_FAILURES.contains(&reason) {
            return Some(format!("{doing}: image {}: {reason}: {}", c.image, w.message.as_deref().unwrap_or_default()));
        }
    }
    let t = state.terminated.as_ref().filter(|t| t.exit_code != 0 && c.name == FETCH)?;
    Some(format!("{doing}: exit {}: {}", t.exit_code, t.message.as_deref().or(t.reason.as_deref()).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": "n1", "containers": [{"name": "function"}]},
            "status": status,
        }))
        .unwrap()
    }

    fn function_state(state: serde_json::Value) -> Pod {
        pod(serde_json::json!({"phase": "Running", "containerStatuses": [
            {"name": "function", "image": "img", "imageID": "", "ready": true, "restartCount": 0, "state": state}
        ]}))
    }

    #[test]
    fn running_ended_and_oom_are_told_apart() {
        assert_eq!(
            stage_of(&function_state(serde_json::json!({"running": {}}))),
            Stage::Running { node: Some("n1".into()) }
        );
        let oom = function_state(serde_json::json!({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}));
        assert_eq!(stage_of(&oom), Stage::Ended(ExitInfo { code: 137, oom_killed: true }));
        let crash = function_state(serde_json::json!({"terminated": {"exitCode": 3, "reason": "Error"}}));
        assert_eq!(stage_of(&crash), Stage::Ended(ExitInfo { code: 3, oom_killed: false }));
    }

    #[test]
    fn an_unschedulable_pod_says_why_and_a_missing_image_fails() {
        let p = pod(serde_json::json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes: Insufficient memory."}
        ]}));
        assert_eq!(stage_of(&p), Stage::Pending { unschedulable: Some("0/2 nodes: Insufficient memory.".into()) });
        let p = pod(serde_json::json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "lambdabox-fetch", "image": "lambdabox/init:x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}}}
        ]}));
        assert!(matches!(stage_of(&p), Stage::Failed(m) if m.contains("ErrImageNeverPull")));
        let p = pod(serde_json::json!({"phase": "Failed", "initContainerStatuses": [
            {"name": "lambdabox-fetch", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"terminated": {"exitCode": 1, "message": "digest mismatch"}}}
        ]}));
        assert!(matches!(stage_of(&p), Stage::Failed(m) if m.contains("digest mismatch")));
    }

    #[test]
    fn the_board_follows_only_its_own_pods_and_an_end_is_final() {
        let b = Board::default();
        b.apply(&function_state(serde_json::json!({"running": {}})));
        assert_eq!(b.stage("p"), Stage::Gone, "not followed");
        b.track("p");
        assert_eq!(b.stage("p"), Stage::Created);
        b.apply(&function_state(serde_json::json!({"terminated": {"exitCode": 0}})));
        b.apply(&function_state(serde_json::json!({"running": {}})));
        assert_eq!(b.stage("p"), Stage::Ended(ExitInfo { code: 0, oom_killed: false }));
        b.forget("p");
        assert_eq!(b.stage("p"), Stage::Gone);
    }

    #[test]
    fn a_relist_ends_only_pods_old_enough_to_have_been_listed() {
        let b = Board::default();
        b.track("new");
        b.relisted(&HashSet::new());
        assert_eq!(b.stage("new"), Stage::Created);
    }
}
