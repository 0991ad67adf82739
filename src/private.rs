//! Paths only the controller's own user may reach: the data directory, its
//! database, logs and credentials, and the containers' control folders.
//!
//! Other local users are not trusted (see SECURITY.md). Everything the
//! controller keeps is under one data directory of mode 0700, so nothing
//! below it is reachable by them whatever its own mode; files holding
//! secrets are 0600 as well, in case they are copied elsewhere. Modes are
//! set explicitly, never left to the umask.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Make `dir` a private folder: create it 0700 (its parents as usual), or
/// take an existing one if it is a real folder (not a link) owned by this
/// user, tightening its mode to 0700.
pub fn dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = fs::symlink_metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::other(format!("{} is not a folder", dir.display())));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(io::Error::other(format!(
            "{} belongs to uid {}, not to this user (uid {me}); refusing to keep anything in it",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Open `path` for appending, creating it 0600; an existing file is made
/// 0600 too.
pub fn append_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().create(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)?;
    restrict(&file)?;
    Ok(file)
}

/// Make sure `path` exists as a 0600 file (SQLite then creates its journal
/// files with the same mode).
pub fn touch(path: &Path) -> io::Result<()> {
    append_file(path).map(drop)
}

/// Create `path` as a new 0600 file holding `contents`, or fail with
/// `AlreadyExists`. The contents are written to a temporary file first and
/// linked into place, so no reader ever sees a partial file and two
/// processes racing to create it cannot both win.
pub fn create_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp =
        tempfile::Builder::new().prefix(".new-").permissions(fs::Permissions::from_mode(0o600)).tempfile_in(dir)?;
    let mut file = tmp.as_file();
    file.write_all(contents)?;
    file.sync_all()?;
    fs::hard_link(tmp.path(), path)
}

/// Write `contents` to `path` whole or not at all, replacing what is
/// there: a staged file beside it, synced, then renamed over it, so no
/// reader (nor the next start, after a crash) sees part of it. Its mode is
/// `mode` exactly, whatever the umask.
pub fn replace(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let staged = path.with_extension("part");
    let _ = fs::remove_file(&staged);
    let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&staged)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::rename(&staged, path)
}

/// Read a file only this user can read: not through a link, only a regular
/// file this user owns (its mode is tightened to 0600 if it was looser).
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    let meta = file.metadata()?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_file() || meta.uid() != me {
        return Err(io::Error::other(format!("{} is not a regular file of this user (uid {me})", path.display())));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    let mut contents = Vec::new();
    file.read_to_end(&mut contents)?;
    Ok(contents)
}

fn restrict(file: &File) -> io::Result<()> {
    if file.metadata()?.mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn folders_are_created_or_tightened_to_0700() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = tmp.path().join("a/b/data");
        dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        let loose = tmp.path().join("loose");
        fs::create_dir(&loose).unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o777)).unwrap();
        dir(&loose).unwrap();
        assert_eq!(mode(&loose), 0o700);
    }

    #[test]
    fn links_and_files_are_not_taken_for_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(dir(&link).is_err(), "a symlink is refused");
        assert_eq!(mode(&target), 0o755, "and what it points at is untouched");
        fs::write(tmp.path().join("file"), "x").unwrap();
        assert!(dir(&tmp.path().join("file")).is_err());
    }

    #[test]
    fn replaced_files_are_whole_and_have_their_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("hosts");
        fs::write(&path, "old, longer than the new contents").unwrap();
        replace(&path, b"new", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o644);
        assert!(!path.with_extension("part").exists(), "nothing staged is left");
    }

    #[test]
    fn files_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("f.log");
        fs::write(&log, "old").unwrap();
        fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
        append_file(&log).unwrap();
        assert_eq!(mode(&log), 0o600);
        let db = tmp.path().join("x.db");
        touch(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let link = tmp.path().join("link.log");
        std::os::unix::fs::symlink(&log, &link).unwrap();
        assert!(append_file(&link).is_err(), "never written through a link");
    }

    #[test]
    fn new_files_are_created_once_and_read_only_directly() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("key");
        create_new(&key, b"first").unwrap();
        assert_eq!(mode(&key), 0o600);
        let again = create_new(&key, b"second").unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(read(&key).unwrap(), b"first");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1, "no temporary file left behind");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        read(&key).unwrap();
        assert_eq!(mode(&key), 0o600, "a loose mode is tightened on read");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&key, &link).unwrap();
        assert!(read(&link).is_err(), "never read through a link");
        assert!(read(tmp.path()).is_err(), "a folder is not a key file");
    }
}
