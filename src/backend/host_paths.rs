//! Paths as the Docker engine names them, for a controller that itself
//! runs in a container (the lambdabox image, on the host's Docker socket).
//!
//! Function containers are siblings started by the host's engine, so the
//! source of every bind mount (code folders, socket folders, lambdabox-init,
//! merged layers) is resolved in the engine's filesystem, not in ours: a path
//! that exists only inside the controller's container would be created empty
//! by the engine, and the function would find nothing. The controller
//! inspects its own container and rewrites each path through the mount that
//! holds it: a data directory mounted at the same path (the documented set-up)
//! maps to itself, a named volume to its folder on the host. A path on no
//! mount cannot be shared, and saying so at start-up beats a function
//! container with an empty `/var/task`.

use std::path::{Path, PathBuf};

/// Where the controller's mounts come from, longest mount point first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPaths {
    /// (path inside this container, the same folder as the engine names it).
    /// Empty: not in a container, every path is the engine's as it is.
    mounts: Vec<(PathBuf, PathBuf)>,
    /// Whether this process runs in a container (paths on no mount are then
    /// invisible to the engine).
    contained: bool,
}

impl HostPaths {
    /// Not in a container: the engine sees our filesystem.
    pub fn identity() -> HostPaths {
        HostPaths::default()
    }

    /// In a container with these mounts: (mount point inside, engine's source).
    pub fn contained(mounts: impl IntoIterator<Item = (PathBuf, PathBuf)>) -> HostPaths {
        let mut mounts: Vec<_> = mounts.into_iter().collect();
        mounts.sort_by_key(|(inside, _)| std::cmp::Reverse(inside.as_os_str().len()));
        HostPaths { mounts, contained: true }
    }

    /// `path` (absolute, as this process sees it) as the engine names it, or
    /// `None` when only this container has it.
    pub fn to_engine(&self, path: &Path) -> Option<PathBuf> {
        if !self.contained {
            return Some(path.to_owned());
        }
        self.mounts.iter().find_map(|(inside, source)| {
            let rest = path.strip_prefix(inside).ok()?;
            Some(if rest.as_os_str().is_empty() { source.clone() } else { source.join(rest) })
        })
    }

    /// Whether the controller runs in a container.
    pub fn is_contained(&self) -> bool {
        self.contained
    }
}

/// The id of the Docker container this process runs in, read from
/// `/proc/self/mountinfo`: Docker bind-mounts the container's own
/// `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` from
/// `…/containers/<64 hex digits>/`. `None` outside Docker (where the host's
/// table also lists containers' `…/containers/<id>/mounts/shm`, at other
/// mount points).
pub fn own_container_id(mountinfo: &str) -> Option<String> {
    const DOCKER_FILES: [&str; 3] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split(' ').skip(3);
        let (root, mount_point) = (fields.next()?, fields.next()?);
        if !DOCKER_FILES.contains(&mount_point) {
            return None;
        }
        let (_, after) = root.split_once("/containers/")?;
        let id = after.split('/').next()?;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_container_paths_are_the_engines() {
        let paths = HostPaths::identity();
        assert_eq!(paths.to_engine(Path::new("/data/code/x")), Some(PathBuf::from("/data/code/x")));
    }

    #[test]
    fn paths_go_through_the_innermost_mount() {
        let paths = HostPaths::contained([
            (PathBuf::from("/var/lib/lambdabox"), PathBuf::from("/var/lib/lambdabox")),
            (PathBuf::from("/var/lib/lambdabox/code"), PathBuf::from("/var/lib/docker/volumes/code/_data")),
        ]);
        let engine = |p: &str| paths.to_engine(Path::new(p));
        assert_eq!(engine("/var/lib/lambdabox/run/k1"), Some(PathBuf::from("/var/lib/lambdabox/run/k1")));
        assert_eq!(
            engine("/var/lib/lambdabox/code/abc"),
            Some(PathBuf::from("/var/lib/docker/volumes/code/_data/abc"))
        );
        assert_eq!(engine("/var/lib/lambdabox/code"), Some(PathBuf::from("/var/lib/docker/volumes/code/_data")));
        // A sibling whose name merely starts the same is not on the mount.
        assert_eq!(engine("/var/lib/lambdaboxes/x"), None);
        assert_eq!(engine("/usr/local/bin/lambdabox-init"), None);
    }

    #[test]
    fn the_container_id_comes_from_docker_s_own_mounts() {
        let id = "0f3c".repeat(16);
        let mountinfo = format!(
            "601 600 0:52 / / rw,relatime - overlay overlay rw\n\
             612 601 254:1 /var/lib/docker/containers/{id}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(own_container_id(&mountinfo), Some(id));
        assert_eq!(own_container_id("22 1 254:1 / / rw - ext4 /dev/vda1 rw\n"), None);
        let host_shm =
            format!("90 22 0:60 / /var/lib/docker/containers/{}/mounts/shm rw - tmpfs shm rw\n", "ab".repeat(32));
        assert_eq!(own_container_id(&host_shm), None);
    }
}
