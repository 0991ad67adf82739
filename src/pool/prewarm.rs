//! Prewarmed generic containers: started per runtime image before any
//! function needs them, so a cold invocation skips container creation.
//!
//! A generic container runs lambdabox-init in generic mode: it waits on the
//! Runtime API socket to be told what to run. Its `/var/task` and `/opt` are
//! bind mounts of empty per-container folders. When a function needs a new
//! container and its runtime has a generic one ready, the pool
//! *specializes* it: hard-links the function's code (and merged layers) into
//! those folders, sets its memory limit, and answers init with the bootstrap
//! and the function's environment. From then on it is that function's
//! container for life, like one started for it: one function, one revision,
//! never handed back to the generic set.
//!
//! What a generic container cannot take: container image functions (their
//! image is the runtime) and functions whose EphemeralStorage differs from
//! the default (`/tmp`'s size is fixed when a container is created).
//!
//! # Runtimes started ahead of need
//!
//! For runtimes that can ([`Prestart`]), init starts the language runtime
//! and its runtime client in the generic container at once, as the sandbox
//! user, with the [neutral environment](super::environment::neutral_environment):
//! a wrapper around the official client loads it and waits. A specialization
//! then hands that process the function's environment, and the client's
//! normal start imports the handler (the function's init phase). Only a
//! function the waiting runtime can honour exactly takes it
//! ([`hand_over`]); for any other, init kills it and starts the bootstrap
//! as before. Such generics are kept per MemorySize ([`PrewarmKey`]) and
//! created at that size: Node.js sizes V8's heap as it starts, and with the
//! runtime already running, changing the container's memory limit at
//! specialization (a Docker update, 10–20 ms) would be most of what is left
//! of a cold start. A generic never holds more memory than the function
//! that takes it.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{Launch, Sockets};
use crate::function::{Prestart, Runtime, DEFAULT_EPHEMERAL_MB};

/// A generic container's memory limit until it is specialized, when no
/// runtime is started in it ahead of need: init alone needs a few MB.
pub(super) const GENERIC_MEMORY_MB: u32 = 128;

/// A started generic container, not yet anyone's. Its `/var/task` and
/// `/opt` are [`task_dir`] and [`opt_dir`] of its socket folder.
#[derive(Debug)]
pub(super) struct Generic {
    pub sockets: Sockets,
    pub docker_id: String,
    /// Watches for its death while it waits; stopped when it is taken.
    pub watch: Option<JoinHandle<()>>,
    /// The runtime init started in it ahead of need, if any.
    pub prestart: Option<&'static Prestart>,
    /// Its memory limit (and the CPU weight that goes with it).
    pub memory_mb: u32,
}

/// Which generic containers are interchangeable: the image, and what runs
/// in it while it waits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct PrewarmKey {
    pub image: String,
    /// The runtime whose language runtime is started ahead of need, if any.
    pub prestarted: Option<&'static Runtime>,
    /// The MemorySize its runtime was started for, and the container's.
    pub memory_mb: Option<u32>,
}

impl PrewarmKey {
    /// The key of generics that can serve a function of `memory_mb` on
    /// `runtime` in `image`, with runtimes started ahead of need
    /// (`prestart`, where the runtime can) or not.
    pub fn new(image: String, runtime: Option<&'static Runtime>, memory_mb: u32, prestart: bool) -> PrewarmKey {
        let prestarted = runtime.filter(|r| prestart && r.prestart.is_some());
        let memory_mb = prestarted.map(|_| memory_mb);
        PrewarmKey { image, prestarted, memory_mb }
    }

    /// The memory limit its generics are created with.
    pub fn container_memory_mb(&self) -> u32 {
        self.memory_mb.unwrap_or(GENERIC_MEMORY_MB)
    }

    /// The key of generics that can become `launch`'s container.
    pub fn for_launch(launch: &Launch, prestart: bool) -> PrewarmKey {
        PrewarmKey::new(launch.image.clone(), launch.runtime, launch.function.memory_mb, prestart)
    }

    /// How its generics start the runtime ahead of need, if they do.
    pub fn prestart(&self) -> Option<&'static Prestart> {
        self.prestarted.and_then(|r| r.prestart)
    }

    /// What init runs ahead of need: the runtime's command, and the memory
    /// size when the runtime depends on it.
    pub fn prestart_command(&self) -> Option<String> {
        let p = self.prestart()?;
        let mut words: Vec<String> = p.command.iter().map(|w| (*w).to_owned()).collect();
        words.extend(self.memory_mb.filter(|_| p.memory_argument).map(|m| m.to_string()));
        Some(words.join(" "))
    }
}

/// The host folder mounted at a container's `/var/task` (generic ones only).
pub(super) fn task_dir(socket_dir: &Path) -> PathBuf {
    socket_dir.with_extension("task")
}

/// The host folder mounted at a container's `/opt` (generic ones only).
pub(super) fn opt_dir(socket_dir: &Path) -> PathBuf {
    socket_dir.with_extension("opt")
}

/// The generic containers of each image: ready ones and how many are
/// starting, against how many are wanted.
#[derive(Debug, Default)]
pub(super) struct Prewarm {
    ready: HashMap<PrewarmKey, Vec<Generic>>,
    starting: HashMap<PrewarmKey, usize>,
    /// What functions use, to keep generics of.
    wanted: Vec<PrewarmKey>,
}

impl Prewarm {
    /// Keep generics of exactly these images; returns generics of images no
    /// longer wanted, to remove.
    pub fn set_wanted(&mut self, keys: Vec<PrewarmKey>) -> Vec<Generic> {
        self.wanted = keys;
        let unwanted: Vec<PrewarmKey> = self.ready.keys().filter(|i| !self.wanted.contains(i)).cloned().collect();
        unwanted.into_iter().flat_map(|i| self.ready.remove(&i).unwrap_or_default()).collect()
    }

    /// Which images need how many more generics to have `per_image` each;
    /// counts them as starting.
    pub fn claim_starts(&mut self, per_image: usize) -> Vec<PrewarmKey> {
        let mut out = Vec::new();
        for image in &self.wanted {
            let have = self.ready.get(image).map_or(0, Vec::len) + self.starting.get(image).copied().unwrap_or(0);
            for _ in have..per_image {
                out.push(image.clone());
            }
            *self.starting.entry(image.clone()).or_default() += per_image.saturating_sub(have);
        }
        out
    }

    /// A start finished (`Some`) or failed (`None`). Returns the generic if
    /// its image is no longer wanted.
    pub fn started(&mut self, key: &PrewarmKey, generic: Option<Generic>) -> Option<Generic> {
        if let Some(n) = self.starting.get_mut(key) {
            *n = n.saturating_sub(1);
        }
        let g = generic?;
        if !self.wanted.contains(key) {
            return Some(g);
        }
        self.ready.entry(key.clone()).or_default().push(g);
        None
    }

    /// Take a ready generic of `key` that can become `launch`'s container.
    pub fn take(&mut self, launch: &Launch, key: &PrewarmKey) -> Option<Generic> {
        if !eligible(launch) {
            return None;
        }
        self.ready.get_mut(key)?.pop()
    }

    /// Forget a generic that died while waiting.
    pub fn forget(&mut self, key: &str) -> Option<Generic> {
        for list in self.ready.values_mut() {
            if let Some(at) = list.iter().position(|g| g.sockets.key == key) {
                return Some(list.swap_remove(at));
            }
        }
        None
    }

    /// How many generics are being started.
    pub fn starting(&self) -> usize {
        self.starting.values().sum()
    }

    /// Every ready generic, for shutdown.
    pub fn drain(&mut self) -> Vec<Generic> {
        self.ready.drain().flat_map(|(_, list)| list).collect()
    }

    /// Keys of ready generics by image, for `ps`.
    pub fn ready_keys(&self) -> Vec<(String, String, String, u32)> {
        let mut out: Vec<_> = self
            .ready
            .iter()
            .flat_map(|(key, list)| {
                list.iter().map(move |g| (g.sockets.key.clone(), g.docker_id.clone(), key.image.clone(), g.memory_mb))
            })
            .collect();
        out.sort();
        out
    }
}

/// Whether a generic container of `launch.image` can become its container.
pub(super) fn eligible(launch: &Launch) -> bool {
    launch.runtime.is_some()
        && launch.function.image.is_none()
        && launch.function.ephemeral_storage_mb == DEFAULT_EPHEMERAL_MB
}

/// Whether the runtime started ahead in a generic container (with the
/// `neutral` environment) can become `launch`'s, whose environment is `env`:
/// the function starts the runtime's own bootstrap (no exec wrapper or other
/// command) and sets no variable read at start to another value. Otherwise
/// it gets a fresh bootstrap, as without a runtime started ahead.
pub(super) fn hand_over(prestart: &Prestart, launch: &Launch, neutral: &[String], env: &[String]) -> bool {
    let own_bootstrap =
        launch.runtime.is_some_and(|r| launch.bootstrap().iter().map(String::as_str).eq(r.bootstrap.iter().copied()));
    own_bootstrap && prestart.honours(neutral, env)
}

/// What init is told to run: the bootstrap command and the function's
/// environment (`KEY=VALUE` strings), as a control-channel message; with
/// `prestarted`, init hands the environment to the runtime it started ahead
/// instead.
pub(super) fn specialization_message(
    bootstrap: &[String],
    env: &[String],
    prestarted: bool,
) -> Result<Bytes, lambdabox_protocol::DecodeError> {
    let s = lambdabox_protocol::Specialization {
        prestarted,
        bootstrap: bootstrap.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env: env
            .iter()
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (name.as_bytes().to_vec(), value.as_bytes().to_vec())
            })
            .collect(),
    };
    Ok(s.encode()?.into())
}

/// Make `dst` (an existing empty folder) hold the tree at `src`: folders
/// created, files hard-linked (copied when `src` is on another file system),
/// symlinks recreated. Blocking.
pub(super) fn link_tree(src: &Path, dst: &Path) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir(&to)?;
            fs::set_permissions(&to, fs::metadata(&from)?.permissions())?;
            link_tree(&from, &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use crate::function::Function;
    use crate::logs::ContainerLog;
    use crate::runtime_api::Mailbox;

    fn generic(key: &str, dir: &Path) -> Generic {
        let sockets = Sockets {
            key: key.into(),
            dir: dir.join(key),
            mailbox: Arc::new(Mailbox::new()),
            log: Arc::new(ContainerLog::new()),
            server: tokio::spawn(async {}),
            remote: None,
        };
        Generic { sockets, docker_id: format!("docker-{key}"), watch: None, prestart: None, memory_mb: 128 }
    }

    fn launch(image: &str, f: Function) -> Launch {
        Launch {
            function: Arc::new(f),
            runtime: Some(Runtime::find("python3.11").unwrap()),
            image: image.into(),
            task_dir: Some("/tmp".into()),
            opt_dir: None,
        }
    }

    #[tokio::test]
    async fn books_keep_the_wanted_number_per_image() {
        let tmp = tempfile::tempdir().unwrap();
        let k = |image: &str| PrewarmKey::new(image.into(), None, 128, true);
        let images = |keys: Vec<PrewarmKey>| {
            let mut v: Vec<String> = keys.into_iter().map(|k| k.image).collect();
            v.sort();
            v
        };
        let mut p = Prewarm::default();
        assert!(p.set_wanted(vec![k("py"), k("node")]).is_empty());
        assert_eq!(images(p.claim_starts(2)), ["node", "node", "py", "py"]);
        assert!(p.claim_starts(2).is_empty(), "starts under way count");
        assert!(p.started(&k("py"), Some(generic("a", tmp.path()))).is_none());
        assert!(p.started(&k("py"), None).is_none(), "a failed start frees its claim");
        assert_eq!(images(p.claim_starts(2)), ["py"]);
        assert_eq!(p.starting(), 3);

        let f = Function { ephemeral_storage_mb: DEFAULT_EPHEMERAL_MB, ..Function::default() };
        assert!(p.take(&launch("node", f.clone()), &k("node")).is_none(), "none ready for node yet");
        let odd = Function { ephemeral_storage_mb: 1024, ..f.clone() };
        assert!(p.take(&launch("py", odd), &k("py")).is_none(), "a different /tmp size cannot use one");
        assert_eq!(p.take(&launch("py", f.clone()), &k("py")).unwrap().sockets.key, "a");
        assert!(p.take(&launch("py", f), &k("py")).is_none());

        assert!(p.started(&k("py"), Some(generic("b", tmp.path()))).is_none());
        assert_eq!(p.forget("b").unwrap().sockets.key, "b");
        assert!(p.started(&k("py"), Some(generic("c", tmp.path()))).is_none());
        let unwanted = p.set_wanted(vec![k("node")]);
        assert_eq!(unwanted.iter().map(|g| g.sockets.key.as_str()).collect::<Vec<_>>(), ["c"]);
        let late = p.started(&k("py"), Some(generic("d", tmp.path())));
        assert_eq!(
            late.unwrap().sockets.key,
            "d",
            "a start that finishes after its image went out of use is handed back"
        );
    }

    #[test]
    fn runtimes_started_per_memory_size_are_kept_per_size() {
        let node = Runtime::find("nodejs20.x").unwrap();
        let python = Runtime::find("python3.11").unwrap();
        let at = |runtime: &'static Runtime, memory_mb: u32, prestart: bool| {
            let f = Function { memory_mb, ..Function::default() };
            let l = Launch { runtime: Some(runtime), ..launch("img", f) };
            PrewarmKey::for_launch(&l, prestart)
        };
        assert_ne!(at(node, 128, true), at(node, 1769, true), "V8's heap is sized as node starts");
        assert_eq!(at(node, 1769, true).prestart_command().unwrap(), "/var/runtime/prestart 1769");
        assert_ne!(at(python, 128, true), at(python, 1769, true), "created at the function's size");
        assert_eq!(at(python, 1769, true).prestart_command().unwrap(), "/var/runtime/prestart");
        assert_eq!(at(python, 1769, true).container_memory_mb(), 1769);
        assert_eq!(at(node, 128, false), at(node, 1769, false), "nothing started ahead: one kind");
        assert_eq!(at(node, 1769, false).prestart_command(), None);
        assert_eq!(at(node, 1769, false).container_memory_mb(), GENERIC_MEMORY_MB, "resized when taken");
    }

    #[test]
    fn only_functions_the_waiting_runtime_can_honour_take_it() {
        use crate::pool::environment::{lambda_environment, neutral_environment};
        let runtime = Runtime::find("python3.11").unwrap();
        let prestart = runtime.prestart.unwrap();
        let neutral = neutral_environment(runtime);
        let decide = |vars: &[(&str, &str)]| {
            let f = Function {
                environment: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                ..Function::default()
            };
            let l = launch("img", f);
            let env = lambda_environment(&l.function, l.runtime, &crate::arn::Realm::default(), "on-demand");
            hand_over(prestart, &l, &neutral, &env)
        };
        assert!(decide(&[]));
        assert!(decide(&[("TABLE", "orders"), ("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]), "read after the hand-over");
        assert!(decide(&[("LANG", "en_US.UTF-8")]), "the same value as the neutral one");
        for (name, value) in [
            ("PYTHONPATH", "/var/task/vendor"),
            ("PYTHONDONTWRITEBYTECODE", "1"),
            ("LD_PRELOAD", "/opt/lib/x.so"),
            ("LD_LIBRARY_PATH", "/opt/x"),
            ("LANG", "C"),
            ("LC_ALL", "C"),
            ("TZ", "Europe/Oslo"),
            ("HOME", "/tmp"),
            ("AWS_LAMBDA_EXEC_WRAPPER", "/opt/wrapper"),
        ] {
            assert!(!decide(&[(name, value)]), "{name} is read as the interpreter starts");
        }
        let node = Runtime::find("nodejs20.x").unwrap();
        let node_neutral = neutral_environment(node);
        for name in
            ["NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_PATH", "UV_THREADPOOL_SIZE", "AWS_LAMBDA_RUNTIME_VERBOSE"]
        {
            let mut env = node_neutral.clone();
            env.push(format!("{name}=x"));
            assert!(!node.prestart.unwrap().honours(&node_neutral, &env), "{name}");
        }
    }

    #[test]
    fn specializations_carry_any_value_intact() {
        use lambdabox_protocol::Specialization;
        let env = ["A=1".to_owned(), "B=x=y".to_owned(), "C=".to_owned()];
        let message = specialization_message(&["/var/runtime/bootstrap".into()], &env, true).unwrap();
        let decoded = Specialization::decode(&message[5..]).unwrap();
        assert!(decoded.prestarted);
        assert_eq!(decoded.bootstrap, [b"/var/runtime/bootstrap".to_vec()]);
        let pairs: Vec<(&[u8], &[u8])> = decoded.env.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(pairs, [(&b"A"[..], &b"1"[..]), (b"B", b"x=y"), (b"C", b"")]);
        assert!(
            specialization_message(&[], &["K=a\0AWS_REGION=x".into()], false).is_err(),
            "a NUL cannot split a value"
        );
    }

    #[test]
    fn trees_are_linked_not_copied() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        fs::create_dir_all(src.join("pkg/sub")).unwrap();
        fs::write(src.join("app.py"), "x").unwrap();
        fs::write(src.join("pkg/sub/m.py"), "y").unwrap();
        std::os::unix::fs::symlink("app.py", src.join("link.py")).unwrap();
        fs::create_dir(&dst).unwrap();
        link_tree(&src, &dst).unwrap();
        assert_eq!(fs::read_to_string(dst.join("pkg/sub/m.py")).unwrap(), "y");
        assert_eq!(fs::metadata(dst.join("app.py")).unwrap().ino(), fs::metadata(src.join("app.py")).unwrap().ino());
        assert_eq!(fs::read_link(dst.join("link.py")).unwrap(), PathBuf::from("app.py"));
    }
}
