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

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::{Launch, Sockets};
use crate::function::DEFAULT_EPHEMERAL_MB;

/// A generic container's memory limit until it is specialized: init alone
/// needs a few MB.
pub(super) const GENERIC_MEMORY_MB: u32 = 128;

/// A started generic container, not yet anyone's. Its `/var/task` and
/// `/opt` are [`task_dir`] and [`opt_dir`] of its socket folder.
#[derive(Debug)]
pub(super) struct Generic {
    pub sockets: Sockets,
    pub docker_id: String,
    /// Watches for its death while it waits; stopped when it is taken.
    pub watch: Option<JoinHandle<()>>,
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
    ready: HashMap<String, Vec<Generic>>,
    starting: HashMap<String, usize>,
    /// Images (runtime image tags) functions use, to keep generics of.
    wanted: Vec<String>,
}

impl Prewarm {
    /// Keep generics of exactly these images; returns generics of images no
    /// longer wanted, to remove.
    pub fn set_wanted(&mut self, images: Vec<String>) -> Vec<Generic> {
        self.wanted = images;
        let unwanted: Vec<String> = self.ready.keys().filter(|i| !self.wanted.contains(i)).cloned().collect();
        unwanted.into_iter().flat_map(|i| self.ready.remove(&i).unwrap_or_default()).collect()
    }

    /// Which images need how many more generics to have `per_image` each;
    /// counts them as starting.
    pub fn claim_starts(&mut self, per_image: usize) -> Vec<String> {
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
    pub fn started(&mut self, image: &str, generic: Option<Generic>) -> Option<Generic> {
        if let Some(n) = self.starting.get_mut(image) {
            *n = n.saturating_sub(1);
        }
        let g = generic?;
        if !self.wanted.iter().any(|w| w == image) {
            return Some(g);
        }
        self.ready.entry(image.to_owned()).or_default().push(g);
        None
    }

    /// Take a ready generic that can become `launch`'s container.
    pub fn take(&mut self, launch: &Launch) -> Option<Generic> {
        if !eligible(launch) {
            return None;
        }
        self.ready.get_mut(&launch.image)?.pop()
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
    pub fn ready_keys(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<_> = self
            .ready
            .iter()
            .flat_map(|(image, list)| {
                list.iter().map(move |g| (g.sockets.key.clone(), g.docker_id.clone(), image.clone()))
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

/// What init is told to run: the bootstrap command and the function's
/// environment (`KEY=VALUE` strings), as a control-channel message.
pub(super) fn specialization_message(
    bootstrap: &[String],
    env: &[String],
) -> Result<Bytes, lambdabox_protocol::DecodeError> {
    let s = lambdabox_protocol::Specialization {
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

    use crate::function::{Function, Runtime};
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
        Generic { sockets, docker_id: format!("docker-{key}"), watch: None }
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
        let mut p = Prewarm::default();
        assert!(p.set_wanted(vec!["py".into(), "node".into()]).is_empty());
        let mut starts = p.claim_starts(2);
        starts.sort();
        assert_eq!(starts, ["node", "node", "py", "py"]);
        assert!(p.claim_starts(2).is_empty(), "starts under way count");
        assert!(p.started("py", Some(generic("a", tmp.path()))).is_none());
        assert!(p.started("py", None).is_none(), "a failed start frees its claim");
        assert_eq!(p.claim_starts(2), ["py"]);
        assert_eq!(p.starting(), 3);

        let f = Function { ephemeral_storage_mb: DEFAULT_EPHEMERAL_MB, ..Function::default() };
        assert!(p.take(&launch("node", f.clone())).is_none(), "none ready for node yet");
        let odd = Function { ephemeral_storage_mb: 1024, ..f.clone() };
        assert!(p.take(&launch("py", odd)).is_none(), "a different /tmp size cannot use one");
        assert_eq!(p.take(&launch("py", f.clone())).unwrap().sockets.key, "a");
        assert!(p.take(&launch("py", f)).is_none());

        assert!(p.started("py", Some(generic("b", tmp.path()))).is_none());
        assert_eq!(p.forget("b").unwrap().sockets.key, "b");
        assert!(p.started("py", Some(generic("c", tmp.path()))).is_none());
        let unwanted = p.set_wanted(vec!["node".into()]);
        assert_eq!(unwanted.iter().map(|g| g.sockets.key.as_str()).collect::<Vec<_>>(), ["c"]);
        let late = p.started("py", Some(generic("d", tmp.path())));
        assert_eq!(
            late.unwrap().sockets.key,
            "d",
            "a start that finishes after its image went out of use is handed back"
        );
    }

    #[test]
    fn specializations_carry_any_value_intact() {
        use lambdabox_protocol::Specialization;
        let env = ["A=1".to_owned(), "B=x=y".to_owned(), "C=".to_owned()];
        let message = specialization_message(&["/var/runtime/bootstrap".into()], &env).unwrap();
        let decoded = Specialization::decode(&message[5..]).unwrap();
        assert_eq!(decoded.bootstrap, [b"/var/runtime/bootstrap".to_vec()]);
        let pairs: Vec<(&[u8], &[u8])> = decoded.env.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(pairs, [(&b"A"[..], &b"1"[..]), (b"B", b"x=y"), (b"C", b"")]);
        assert!(specialization_message(&[], &["K=a\0AWS_REGION=x".into()]).is_err(), "a NUL cannot split a value");
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
