//! Code blobs, content-addressed by the SHA-256 of the zip.
//!
//! Each zip is kept as `code/HEX.zip` and unpacked once into `code/HEX/`, the
//! folder bind-mounted read-only at `/var/task`. Both are written under a
//! temporary name and renamed into place, so a crash or a rejected zip never
//! leaves half a blob where the engine would find it.

use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::function::MAX_UNZIPPED_BYTES;

/// Why a zip was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The bytes are not a zip archive Lambda would accept.
    #[error("Could not unzip uploaded file. Please check your file, then try to upload again. ({0})")]
    InvalidZip(String),
    /// An entry would land outside `/var/task`.
    #[error("Could not unzip uploaded file: entry '{0}' would be written outside of the function's code folder")]
    UnsafeEntry(String),
    /// Unpacked, the code exceeds Lambda's 250 MB limit.
    #[error("Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")]
    TooLarge,
    #[error("code store I/O: {0}")]
    Io(#[from] io::Error),
}

/// A zip in the store: its digest and size as Lambda reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub sha256_hex: String,
    pub size: u64,
}

/// The folder of code blobs.
#[derive(Debug)]
pub struct CodeStore {
    root: PathBuf,
}

impl CodeStore {
    /// Open (creating) the store and sweep temporaries a crash left behind.
    pub fn open(root: PathBuf) -> io::Result<CodeStore> {
        crate::private::dir(&root)?;
        for entry in fs::read_dir(&root)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                remove_any(&entry.path())?;
            }
        }
        Ok(CodeStore { root })
    }

    /// Validate, unpack and store a zip. Blocking: call off the async runtime.
    pub fn put_zip(&self, zip: &[u8]) -> Result<StoredCode, CodeError> {
        let hex = hex(&Sha256::digest(zip));
        let stored = StoredCode { sha256_hex: hex.clone(), size: zip.len() as u64 };
        let dir = self.task_dir(&hex);
        if dir.is_dir() && self.zip_path(&hex).is_file() {
            return Ok(stored);
        }
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&self.root)?;
        let unpacked = tmp.path().join("task");
        unpack(zip, &unpacked)?;
        let tmp_zip = tmp.path().join("code.zip");
        let mut f = fs::File::create(&tmp_zip)?;
        f.write_all(zip)?;
        f.sync_all()?;
        fs::set_permissions(&unpacked, fs::Permissions::from_mode(0o755))?;
        if !dir.is_dir() {
            fs::rename(&unpacked, &dir)?;
        }
        fs::rename(&tmp_zip, self.zip_path(&hex))?;
        Ok(stored)
    }

    /// The unpacked code, mounted at `/var/task`.
    pub fn task_dir(&self, sha256_hex: &str) -> PathBuf {
        self.root.join(sha256_hex)
    }

    /// The zip as uploaded, served back by GetFunction's code location.
    pub fn zip_path(&self, sha256_hex: &str) -> PathBuf {
        self.root.join(format!("{sha256_hex}.zip"))
    }

    /// Where the layers with these blobs (in order) are merged, mounted at
    /// `/opt`. Named by a digest of the list, so functions with the same
    /// layers share one folder.
    pub fn opt_dir(&self, layer_shas: &[&str]) -> PathBuf {
        let mut digest = Sha256::new();
        for sha in layer_shas {
            digest.update(sha.as_bytes());
            digest.update(b"\n");
        }
        self.root.join(format!("opt-{}", hex(&digest.finalize())))
    }

    /// Merge layers into their [`CodeStore::opt_dir`], unpacking each zip in
    /// order so a later layer's file replaces an earlier one's, as on Lambda.
    /// Built under a temporary name; a no-op when it exists. Blocking.
    pub fn build_opt_dir(&self, layer_shas: &[&str]) -> Result<PathBuf, CodeError> {
        let dir = self.opt_dir(layer_shas);
        if dir.is_dir() {
            return Ok(dir);
        }
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&self.root)?;
        let merged = tmp.path().join("opt");
        for sha in layer_shas {
            let zip = fs::read(self.zip_path(sha))?;
            unpack(&zip, &merged)?;
        }
        fs::create_dir_all(&merged)?;
        fs::set_permissions(&merged, fs::Permissions::from_mode(0o755))?;
        if !dir.is_dir() {
            fs::rename(&merged, &dir)?;
        }
        Ok(dir)
    }

    /// Delete a merged `/opt` no function uses any more.
    pub fn remove_opt_dir(&self, layer_shas: &[&str]) -> io::Result<()> {
        remove_any(&self.opt_dir(layer_shas))
    }

    /// Delete a blob no function uses any more.
    pub fn remove(&self, sha256_hex: &str) -> io::Result<()> {
        remove_any(&self.zip_path(sha256_hex))?;
        remove_any(&self.task_dir(sha256_hex))
    }
}

/// Lambda's `CodeSha256`: base64 of the raw digest.
pub fn sha256_base64(sha256_hex: &str) -> String {
    let raw: Vec<u8> =
        (0..sha256_hex.len() / 2).filter_map(|i| u8::from_str_radix(&sha256_hex[2 * i..2 * i + 2], 16).ok()).collect();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Unpack `zip` into `dest`, refusing anything that could escape it: `..`
/// and absolute paths, and symlinks whose target leaves the folder.
fn unpack(zip: &[u8], dest: &Path) -> Result<(), CodeError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(|e| CodeError::InvalidZip(e.to_string()))?;
    fs::create_dir_all(dest)?;
    let mut budget = MAX_UNZIPPED_BYTES;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| CodeError::InvalidZip(e.to_string()))?;
        let raw_name = entry.name().map_err(|e| CodeError::InvalidZip(e.to_string()))?.into_owned();
        let rel = safe_relative(&raw_name).ok_or_else(|| CodeError::UnsafeEntry(raw_name.clone()))?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        if through_symlink(dest, &rel) {
            return Err(CodeError::UnsafeEntry(format!("{raw_name} (below a symbolic link)")));
        }
        let path = dest.join(&rel);
        if entry.is_dir() {
            fs::create_dir_all(&path)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        // Layers merge into one folder: a later file replaces an earlier one.
        remove_any(&path)?;
        if entry.is_symlink() {
            let mut target = String::new();
            entry.read_to_string(&mut target).map_err(|e| CodeError::InvalidZip(e.to_string()))?;
            let resolved = rel.parent().unwrap_or(Path::new("")).join(&target);
            if Path::new(&target).is_absolute() || safe_relative(&resolved.to_string_lossy()).is_none() {
                return Err(CodeError::UnsafeEntry(format!("{raw_name} -> {target}")));
            }
            symlink(&target, &path)?;
            continue;
        }
        let mut out = fs::File::create(&path)?;
        let written = io::copy(&mut (&mut entry).take(budget + 1), &mut out)
            .map_err(|e| CodeError::InvalidZip(format!("{raw_name}: {e}")))?;
        if written > budget {
            return Err(CodeError::TooLarge);
        }
        budget -= written;
        // Readable by the sandbox user whatever the zip said; executable bits kept.
        let mode = entry.unix_mode().unwrap_or(0o644) & 0o777 | 0o444;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Whether a parent of `rel` under `dest` is a symlink: writing through one
/// could land outside `dest` (chained links each look harmless alone).
fn through_symlink(dest: &Path, rel: &Path) -> bool {
    let mut at = dest.to_path_buf();
    let parents = rel.parent().map(|p| p.components().collect::<Vec<_>>()).unwrap_or_default();
    parents.into_iter().any(|part| {
        at.push(part);
        fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink())
    })
}

/// The entry's path made relative and normalised, or `None` when it is
/// absolute or climbs above the root.
fn safe_relative(name: &str) -> Option<PathBuf> {
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in Path::new(name).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, body) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn zip_with_symlink(name: &str, target: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink(name, target, SimpleFileOptions::default()).unwrap();
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn stores_by_digest_and_unpacks_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().join("code")).unwrap();
        let zip = zip_of(&[("app.py", "def handler(e, c): return e\n"), ("pkg/mod.py", "X = 1\n")]);
        let a = store.put_zip(&zip).unwrap();
        let b = store.put_zip(&zip).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.size, zip.len() as u64);
        let dir = store.task_dir(&a.sha256_hex);
        assert_eq!(fs::read_to_string(dir.join("pkg/mod.py")).unwrap(), "X = 1\n");
        assert_eq!(
            sha256_base64(&a.sha256_hex),
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&zip))
        );
        store.remove(&a.sha256_hex).unwrap();
        assert!(!dir.exists() && !store.zip_path(&a.sha256_hex).exists());
    }

    #[test]
    fn refuses_what_is_not_a_zip() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().to_path_buf()).unwrap();
        assert!(matches!(store.put_zip(b"not a zip at all"), Err(CodeError::InvalidZip(_))));
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing half-written stays");
    }

    #[test]
    fn refuses_zip_slip() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().join("code")).unwrap();
        for zip in [
            zip_of(&[("../evil.py", "x")]),
            zip_of(&[("ok/../../evil.py", "x")]),
            zip_of(&[("/etc/evil", "x")]),
            zip_with_symlink("link", "/etc/passwd"),
            zip_with_symlink("sub/link", "../../outside"),
        ] {
            assert!(matches!(store.put_zip(&zip), Err(CodeError::UnsafeEntry(_))));
        }
        assert_eq!(fs::read_dir(tmp.path().join("code")).unwrap().count(), 0);
        assert!(!tmp.path().join("evil.py").exists());
    }

    #[test]
    fn keeps_symlinks_that_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().to_path_buf()).unwrap();
        let code = store.put_zip(&zip_with_symlink("lib/current", "../app.py")).unwrap();
        let link = store.task_dir(&code.sha256_hex).join("lib/current");
        assert_eq!(fs::read_link(link).unwrap(), PathBuf::from("../app.py"));
    }

    #[test]
    fn refuses_writing_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().join("code")).unwrap();
        // Each link alone stays inside; together they would climb out.
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink("a/b", "..", SimpleFileOptions::default()).unwrap();
        w.add_symlink("a/b/c", "..", SimpleFileOptions::default()).unwrap();
        w.start_file("a/b/c/escaped.txt", SimpleFileOptions::default()).unwrap();
        w.write_all(b"x").unwrap();
        let zip = w.finish().unwrap().into_inner();
        assert!(matches!(store.put_zip(&zip), Err(CodeError::UnsafeEntry(_))));
        assert!(!tmp.path().join("escaped.txt").exists());
    }

    #[test]
    fn layers_merge_in_order_into_one_opt() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().join("code")).unwrap();
        let first = store.put_zip(&zip_of(&[("python/shared.py", "first"), ("bin/tool", "1")])).unwrap();
        let second = store.put_zip(&zip_of(&[("python/shared.py", "second"), ("lib/x.so", "2")])).unwrap();
        let shas = [first.sha256_hex.as_str(), second.sha256_hex.as_str()];
        let opt = store.build_opt_dir(&shas).unwrap();
        assert_eq!(opt, store.opt_dir(&shas));
        assert_eq!(fs::read_to_string(opt.join("python/shared.py")).unwrap(), "second", "later layers win");
        assert!(opt.join("bin/tool").is_file() && opt.join("lib/x.so").is_file());
        let reversed = store.build_opt_dir(&[shas[1], shas[0]]).unwrap();
        assert_eq!(fs::read_to_string(reversed.join("python/shared.py")).unwrap(), "first");
        store.remove_opt_dir(&shas).unwrap();
        assert!(!opt.exists() && reversed.exists());
    }

    #[test]
    fn normalises_entry_names() {
        assert_eq!(safe_relative("a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(safe_relative(".."), None);
        assert_eq!(safe_relative("/x"), None);
    }
}
