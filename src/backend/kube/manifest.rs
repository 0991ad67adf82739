//! A [`ContainerSpec`] as a Kubernetes pod: pure translation, no API calls,
//! so every rule of the sandbox is unit-tested here.
//!
//! The pod is bare (no Deployment: lambdabox is the controller that
//! replaces it) and never restarts. Its init container, from lambdabox's
//! init image, copies lambdabox-init into a volume of its own and fetches
//! the function's code from the controller into the volumes the function
//! then mounts read-only: the node needs no file of ours. The function's
//! container runs its runtime image (or the user's image) with that init as
//! PID 1, under the same confinement the Docker backend applies, as far as
//! a pod can express it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, Pod, PodSecurityContext, PodSpec, ResourceRequirements,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use lambdabox_protocol::env as vars;

use super::labels::label_value;
use crate::backend::{BackendError, ContainerSpec};
use crate::pool::cpu::CpuSetting;
use crate::pool::INIT_TARGET;

/// The function's container in the pod.
pub const FUNCTION: &str = "function";
/// The init container that installs init and fetches code.
pub const FETCH: &str = "lambdabox-fetch";
/// Where lambdabox-init lives in its own image.
const INIT_IN_IMAGE: &str = "/lambdabox-init";
/// Variables the init container needs to dial the controller.
const IDENTITY: [&str; 4] = [vars::CONTROLLER, vars::CONTROLLER_CA, vars::CONTAINER_ID, vars::TOKEN];

/// What the backend adds to every pod, from its configuration.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    pub namespace: String,
    /// Prepended to every image name (`registry.example/`).
    pub image_prefix: String,
    /// lambdabox-init's image.
    pub init_image: String,
    /// `IfNotPresent`, `Never`, `Always`.
    pub pull_policy: String,
}

/// The pod for `spec`, named `name`.
pub fn pod(spec: &ContainerSpec, name: &str, t: &PodTemplate) -> Result<Pod, BackendError> {
    if let Some(m) = spec.mounts.iter().find(|m| m.target != INIT_TARGET) {
        return Err(BackendError::Other(format!(
            "{} would be mounted from the controller's host at {}; a Kubernetes node has no such path \
             (use a TCP --remote-listen)",
            m.source.display(),
            m.target
        )));
    }
    let (uid, gid) = user_ids(&spec.sandbox.user)?;
    let mut volumes =
        vec![empty_dir("lbx-init", None, None), empty_dir("tmp", Some("Memory"), Some(spec.sandbox.tmp_mb))];
    // init's volume, at the folder of the path the pool starts.
    let init_dir = INIT_TARGET.rsplit_once('/').map_or("/", |(dir, _)| dir);
    let mut fetch_mounts = vec![mount("lbx-init", init_dir, false)];
    let mut function_mounts = vec![mount("lbx-init", init_dir, true), mount("tmp", "/tmp", false)];
    let mut fetch_args = vec!["fetch".to_owned(), "--install".to_owned(), INIT_TARGET.to_owned()];
    for (i, code) in spec.code.iter().enumerate() {
        let volume = format!("lbx-code-{i}");
        // Memory-backed, as the Docker backend's tmpfs: its pages count
        // against the pod's memory.
        volumes.push(empty_dir(&volume, Some("Memory"), None));
        fetch_mounts.push(mount(&volume, &code.target, false));
        // A generic container's init fills its folders when specialized.
        function_mounts.push(mount(&volume, &code.target, code.digest.is_some()));
        fetch_args.push(match &code.digest {
            Some(d) => format!("{}={d}", code.target),
            None => code.target.clone(),
        });
    }
    let identity: Vec<EnvVar> = env(&spec.env).into_iter().filter(|e| IDENTITY.contains(&e.name.as_str())).collect();
    let fetch = Container {
        name: FETCH.into(),
        image: Some(format!("{}{}", t.image_prefix, t.init_image)),
        image_pull_policy: Some(t.pull_policy.clone()),
        command: Some(vec![INIT_IN_IMAGE.into()]),
        args: Some(fetch_args),
        env: Some(identity),
        volume_mounts: Some(fetch_mounts),
        resources: Some(resources(64, None)),
        security_context: Some(security(0, 0, &[], true)),
        // Its last words become the status message we report.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let function = Container {
        name: FUNCTION.into(),
        image: Some(format!("{}{}", t.image_prefix, spec.image)),
        image_pull_policy: Some(t.pull_policy.clone()),
        command: Some(spec.entrypoint.clone()),
        args: Some(Vec::new()),
        env: Some(env(&spec.env)),
        working_dir: Some(spec.working_dir.clone()),
        volume_mounts: Some(function_mounts),
        resources: Some(resources(spec.memory_mb, spec.cpu)),
        security_context: Some(security(uid, gid, &spec.sandbox.init_capabilities, spec.sandbox.read_only_root)),
        ..Container::default()
    };
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(t.namespace.clone()),
            labels: Some(spec.labels.iter().map(|(k, v)| (k.clone(), label_value(v))).collect()),
            // The values as given, for people reading the pod.
            annotations: Some(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            init_containers: Some(vec![fetch]),
            containers: vec![function],
            volumes: Some(volumes),
            restart_policy: Some("Never".into()),
            automount_service_account_token: Some(false),
            // No variables describing the namespace's services.
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(0),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(false),
                ..PodSecurityContext::default()
            }),
            ..PodSpec::default()
        }),
        status: None,
    })
}

/// A pod name for a container name: DNS-1123 (lowercase letters, digits,
/// `-`), at most 63 characters, keeping the end, which is what makes the
/// pool's names unique.
pub fn pod_name(container_name: &str) -> String {
    let mut s: String =
        container_name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    if s.len() > 63 {
        s = format!("{}-{}", &s[..38], &s[s.len() - 24..]);
    }
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() {
        "lambdabox".into()
    } else {
        s
    }
}

/// `uid:gid` as numbers (Kubernetes takes no names).
fn user_ids(user: &str) -> Result<(i64, i64), BackendError> {
    let bad = || BackendError::Other(format!("sandbox user {user:?}: Kubernetes needs a numeric uid:gid"));
    let (u, g) = user.split_once(':').unwrap_or((user, user));
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

fn env(pairs: &[String]) -> Vec<EnvVar> {
    // Later values win, as with Docker's list.
    let mut seen = BTreeMap::new();
    for (i, p) in pairs.iter().enumerate() {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        seen.insert(k.to_owned(), (i, v.to_owned()));
    }
    let mut vars: Vec<(usize, String, String)> = seen.into_iter().map(|(k, (i, v))| (i, k, v)).collect();
    vars.sort();
    vars.into_iter().map(|(_, name, value)| EnvVar { name, value: Some(value), value_from: None }).collect()
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount { name: volume.into(), mount_path: path.into(), read_only: Some(read_only), ..VolumeMount::default() }
}

fn empty_dir(name: &str, medium: Option<&str>, size_mb: Option<u32>) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: medium.map(str::to_owned),
            size_limit: size_mb.map(|mb| Quantity(format!("{mb}Mi"))),
        }),
        ..Volume::default()
    }
}

/// Memory requested and limited alike (the scheduler places by it, the
/// kernel enforces it); CPU from the pool's setting: a weight becomes a
/// request (cgroup shares), a hard cap a limit.
fn resources(memory_mb: u32, cpu: Option<CpuSetting>) -> ResourceRequirements {
    let memory = Quantity(format!("{memory_mb}Mi"));
    let mut requests = BTreeMap::from([("memory".to_owned(), memory.clone())]);
    let mut limits = BTreeMap::from([("memory".to_owned(), memory)]);
    match cpu {
        Some(CpuSetting::Shares(shares)) => {
            requests.insert("cpu".into(), Quantity(format!("{}m", (shares * 1000 / 1024).max(1))));
        }
        Some(CpuSetting::Quota { period_us, quota_us }) if period_us > 0 => {
            let milli = Quantity(format!("{}m", (quota_us * 1000 / period_us).max(1)));
            requests.insert("cpu".into(), milli.clone());
            limits.insert("cpu".into(), milli);
        }
        _ => {}
    }
    ResourceRequirements { limits: Some(limits), requests: Some(requests), ..ResourceRequirements::default() }
}

fn security(uid: i64, gid: i64, add: &[String], read_only_root: bool) -> SecurityContext {
    SecurityContext {
        run_as_user: Some(uid),
        run_as_group: Some(gid),
        read_only_root_filesystem: Some(read_only_root),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: Some(add.to_vec()) }),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BindMount, CodeMount, Sandbox};

    fn template() -> PodTemplate {
        PodTemplate {
            namespace: "fx".into(),
            image_prefix: "reg.local/".into(),
            init_image: "lambdabox/init:abc".into(),
            pull_policy: "IfNotPresent".into(),
        }
    }

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "lambdabox-My_Func-0123456789ab".into(),
            image: "lambdabox/python3.11:latest".into(),
            entrypoint: vec!["/lambdabox/init".into(), "/var/runtime/bootstrap".into()],
            env: vec![
                "LAMBDABOX_CONTROLLER=10.0.0.1:9100".into(),
                "LAMBDABOX_CONTROLLER_CA=-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into(),
                "LAMBDABOX_CONTAINER_ID=0123456789ab".into(),
                "LAMBDABOX_TOKEN=secret".into(),
                "A=1".into(),
                "A=2".into(),
            ],
            labels: [("lambdabox.version".to_owned(), "$LATEST".to_owned())].into(),
            mounts: vec![BindMount { source: "/host/init".into(), target: "/lambdabox/init".into(), read_only: true }],
            code: vec![
                CodeMount { target: "/var/task".into(), digest: Some("d1".into()) },
                CodeMount { target: "/opt".into(), digest: None },
            ],
            memory_mb: 256,
            cpu: Some(CpuSetting::Shares(512)),
            network: "bridge".into(),
            working_dir: "/var/task".into(),
            sandbox: Sandbox { user: "993:994".into(), init_capabilities: vec!["SETUID".into()], ..Sandbox::default() },
            foreign_image: false,
        }
    }

    #[test]
    fn the_sandbox_becomes_the_pods_security_context() {
        let pod = pod(&spec(), "p", &template()).unwrap();
        let ps = pod.spec.unwrap();
        assert_eq!(ps.automount_service_account_token, Some(false));
        assert_eq!(ps.enable_service_links, Some(false));
        assert_eq!(ps.restart_policy.as_deref(), Some("Never"));
        let f = &ps.containers[0];
        let sc = f.security_context.as_ref().unwrap();
        assert_eq!((sc.run_as_user, sc.run_as_group), (Some(993), Some(994)));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        let caps = sc.capabilities.as_ref().unwrap();
        assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(caps.add.as_deref(), Some(&["SETUID".to_owned()][..]));
        let r = f.resources.as_ref().unwrap();
        assert_eq!(r.limits.as_ref().unwrap()["memory"].0, "256Mi");
        assert_eq!(r.requests.as_ref().unwrap()["cpu"].0, "500m");
        assert_eq!(f.image.as_deref(), Some("reg.local/lambdabox/python3.11:latest"));
        // /tmp is memory-backed with the ephemeral size.
        let tmp = ps.volumes.as_ref().unwrap().iter().find(|v| v.name == "tmp").unwrap();
        let dir = tmp.empty_dir.as_ref().unwrap();
        assert_eq!(
            (dir.medium.as_deref(), dir.size_limit.as_ref().map(|q| q.0.as_str())),
            (Some("Memory"), Some("512Mi"))
        );
    }

    #[test]
    fn code_is_fetched_by_the_init_container_and_mounted_read_only() {
        let ps = pod(&spec(), "p", &template()).unwrap().spec.unwrap();
        let fetch = &ps.init_containers.as_ref().unwrap()[0];
        assert_eq!(
            fetch.args.as_deref().unwrap(),
            ["fetch", "--install", "/lambdabox/init", "/var/task=d1", "/opt"].map(String::from)
        );
        let names: Vec<_> = fetch.env.as_ref().unwrap().iter().map(|e| e.name.as_str()).collect();
        // Whom to trust comes with where to dial: a multi-line PEM, whole.
        assert_eq!(
            names,
            ["LAMBDABOX_CONTROLLER", "LAMBDABOX_CONTROLLER_CA", "LAMBDABOX_CONTAINER_ID", "LAMBDABOX_TOKEN"]
        );
        let ca = fetch.env.as_ref().unwrap()[1].value.as_deref().unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----\n") && ca.ends_with("-----END CERTIFICATE-----\n"));
        let mounts = ps.containers[0].volume_mounts.as_ref().unwrap();
        let ro = |path: &str| mounts.iter().find(|m| m.mount_path == path).unwrap().read_only;
        assert_eq!(ro("/var/task"), Some(true));
        assert_eq!(ro("/lambdabox"), Some(true));
        // A generic container's init fills /opt when it is specialized.
        assert_eq!(ro("/opt"), Some(false));
        assert_eq!(ro("/tmp"), Some(false));
    }

    #[test]
    fn the_last_value_of_a_variable_wins_and_labels_are_made_valid() {
        let pod = pod(&spec(), "p", &template()).unwrap();
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        let a: Vec<_> = env.iter().filter(|e| e.name == "A").map(|e| e.value.clone().unwrap()).collect();
        assert_eq!(a, ["2"]);
        let labels = pod.metadata.labels.unwrap();
        assert_ne!(labels["lambdabox.version"], "$LATEST");
        assert_eq!(pod.metadata.annotations.unwrap()["lambdabox.version"], "$LATEST");
    }

    #[test]
    fn host_paths_other_than_init_are_refused() {
        let mut s = spec();
        s.mounts.push(BindMount {
            source: "/run/x.sock".into(),
            target: "/lambdabox/controller.sock".into(),
            read_only: true,
        });
        assert!(pod(&s, "p", &template()).is_err());
    }

    #[test]
    fn pod_names_are_dns_labels_that_keep_their_unique_end() {
        assert_eq!(pod_name("lambdabox-My_Func-0123456789ab"), "lambdabox-my-func-0123456789ab");
        let long = format!("lambdabox-{}-0123456789ab", "f".repeat(64));
        let n = pod_name(&long);
        assert!(n.len() <= 63, "{n}");
        assert!(n.ends_with("-0123456789ab"), "{n}");
    }
}
