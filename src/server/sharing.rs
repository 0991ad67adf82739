//! What the controller shares with function containers must be visible to
//! the Docker engine that starts them. On the host it always is; in the
//! lambdabox image (a container on the host's Docker socket) only what lies
//! on a mount is ([`HostPaths`]). Checked once at start-up, so a wrong
//! `-v` fails with its fix instead of as functions with empty folders.

use std::path::{Path, PathBuf};

use crate::backend::host_paths::HostPaths;

#[derive(Debug, thiserror::Error)]
pub enum SharingError {
    #[error(
        "the {what} {path} is inside this container, where the Docker engine that starts function containers \
         cannot see it; mount it from the host at the same path (-v {path}:{path})"
    )]
    Invisible { what: &'static str, path: String },
    #[error("cannot copy lambdabox-init into the data directory ({path}): {source}")]
    Staging { path: PathBuf, source: std::io::Error },
}

/// Fail unless the engine sees `path` (the data directory, the socket folder).
pub fn check(paths: &HostPaths, what: &'static str, path: &Path) -> Result<(), SharingError> {
    match paths.to_engine(path) {
        Some(_) => Ok(()),
        None => Err(SharingError::Invisible { what, path: path.display().to_string() }),
    }
}

/// The lambdabox-init containers mount: `init_bin` itself when the engine
/// sees it, else a copy in `DATA_DIR/bin` (in the image, the binary lives
/// in the image's `/usr/local/bin`, which no other container can mount).
/// The copy is replaced at every start, so it is always this version's;
/// containers of an earlier run keep the file they mounted.
pub fn init_bin(paths: &HostPaths, init_bin: &Path, data_dir: &Path) -> Result<PathBuf, SharingError> {
    if paths.to_engine(init_bin).is_some() {
        return Ok(init_bin.to_owned());
    }
    let target = data_dir.join("bin").join("lambdabox-init");
    let staging = |source| SharingError::Staging { path: target.clone(), source };
    let dir = target.parent().expect("a file in bin/");
    std::fs::create_dir_all(dir).map_err(staging)?;
    let part = dir.join(".lambdabox-init.part");
    std::fs::copy(init_bin, &part).map_err(staging)?;
    std::fs::rename(&part, &target).map_err(staging)?;
    tracing::info!(path = %target.display(), "lambdabox-init copied into the data directory, where the engine sees it");
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invisible_init_binary_is_copied_into_the_data_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let image_bin = tmp.path().join("image/lambdabox-init");
        std::fs::create_dir_all(image_bin.parent().unwrap()).unwrap();
        std::fs::write(&image_bin, b"init").unwrap();
        let paths = HostPaths::contained([(data.clone(), data.clone())]);
        let staged = init_bin(&paths, &image_bin, &data).unwrap();
        assert_eq!(staged, data.join("bin/lambdabox-init"));
        assert_eq!(std::fs::read(&staged).unwrap(), b"init");
        assert!(check(&paths, "data directory", &data).is_ok());
        assert!(check(&paths, "socket folder", Path::new("/tmp/lambdabox-run-x")).is_err());
        // Outside a container, the binary is used where it is.
        assert_eq!(init_bin(&HostPaths::identity(), &image_bin, &data).unwrap(), image_bin);
    }
}
