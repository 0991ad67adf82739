//! Code blobs, content-addressed by the SHA-256 of the zip.
//!
//! Each zip is kept as `code/HEX.zip` and unpacked once (by
//! [`super::unpack`], which never follows a link) into `code/HEX/`, the
//! folder bind-mounted read-only at `/var/task`. Both are written under a
//! temporary name and renamed into place, so a crash or a rejected zip never
//! leaves half a blob where the engine would find it.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::unpack::{unpack, Limits, UnpackError};

/// Why a zip was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// The zip itself was refused, or unpacking it failed.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
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
        let hex = hex::encode(Sha256::digest(zip));
        let stored = StoredCode { sha256_hex: hex.clone(), size: zip.len() as u64 };
        let dir = self.task_dir(&hex);
        if dir.is_dir() && self.zip_path(&hex).is_file() {
            return Ok(stored);
        }
        let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&self.root)?;
        let unpacked = tmp.path().join("task");
        unpack(zip, &unpacked, &Limits::LAMBDA)?;
        let tmp_zip = tmp.path().join("code.zip");
        let mut f = fs::File::create(&tmp_zip)?;
        f.write_all(zip)?;
        f.sync_all()?;
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
        self.root.join(format!("opt-{}", hex::encode(digest.finalize())))
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
            unpack(&zip, &merged, &Limits::LAMBDA)?;
        }
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
    base64::engine::general_purpose::STANDARD.encode(hex::decode(sha256_hex).unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use std::os::unix::fs::PermissionsExt;
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
        assert!(matches!(store.put_zip(b"not a zip at all"), Err(CodeError::Unpack(UnpackError::InvalidZip(_)))));
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing half-written stays");
    }

    #[test]
    fn refuses_zip_slip() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().join("code")).unwrap();
        for zip in [zip_of(&[("../evil.py", "x")]), zip_of(&[("ok/../../evil.py", "x")]), zip_of(&[("/etc/evil", "x")])]
        {
            assert!(matches!(store.put_zip(&zip), Err(CodeError::Unpack(UnpackError::UnsafeEntry(_)))));
        }
        assert_eq!(fs::read_dir(tmp.path().join("code")).unwrap().count(), 0);
        assert!(!tmp.path().join("evil.py").exists());
    }

    #[test]
    fn keeps_symlinks_wherever_they_point() {
        // Followed only inside the container, where they cannot leave it.
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().to_path_buf()).unwrap();
        for (name, target) in [("lib/current", "../app.py"), ("cache", "/tmp/cache"), ("up", "../../..")] {
            let code = store.put_zip(&zip_with_symlink(name, target)).unwrap();
            let link = store.task_dir(&code.sha256_hex).join(name);
            assert_eq!(fs::read_link(link).unwrap(), PathBuf::from(target));
        }
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
        assert!(matches!(store.put_zip(&zip), Err(CodeError::Unpack(UnpackError::UnsafeEntry(_)))));
        assert!(!tmp.path().join("escaped.txt").exists());
    }

    /// Links `u0 -> .`, `u(k) -> u(k-1)/..` (each alone inside the folder,
    /// together climbing out of it), then `t -> u24/OUTSIDE`, then `then`.
    /// 24 levels climb out of any temporary folder and stay below the
    /// kernel's 40 links per lookup.
    fn climbing_zip(outside: &Path, then: &[&str]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default();
        w.add_symlink("u0", ".", opts).unwrap();
        for k in 1..=24 {
            w.add_symlink(format!("u{k}"), format!("u{}/..", k - 1), opts).unwrap();
        }
        w.add_symlink("t", format!("u24{}", outside.display()), opts).unwrap();
        for entry in then {
            if entry.ends_with('/') {
                w.add_directory(*entry, opts).unwrap();
            } else {
                w.start_file(*entry, opts).unwrap();
                w.write_all(b"x").unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    /// A folder outside the store, mode 0700 and empty, and a check that it
    /// stayed so.
    fn outside_dir(tmp: &tempfile::TempDir) -> (PathBuf, impl Fn()) {
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o700)).unwrap();
        let check = outside.clone();
        (outside, move || {
            let mode = fs::metadata(&check).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o700, "the outside folder's mode changed");
            assert_eq!(fs::read_dir(&check).unwrap().count(), 0, "something was created outside");
        })
    }

    #[test]
    fn chained_links_never_lead_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().join("code")).unwrap();
        let (outside, untouched) = outside_dir(&tmp);
        for reach in ["t/", "t/made/", "t/made/deeper/", "t/pwned", "t/sub/pwned"] {
            let result = store.put_zip(&climbing_zip(&outside, &[reach]));
            untouched();
            assert!(matches!(result, Err(CodeError::Unpack(UnpackError::UnsafeEntry(_)))), "{reach}: {result:?}");
        }
        // The links alone are kept as links: only following them is refused.
        let links = store.put_zip(&climbing_zip(&outside, &[])).unwrap();
        let task = store.task_dir(&links.sha256_hex);
        assert_eq!(fs::read_link(task.join("u1")).unwrap(), PathBuf::from("u0/.."));
        assert!(fs::symlink_metadata(task.join("t")).unwrap().file_type().is_symlink());
    }

    #[test]
    fn chained_links_never_lead_outside_when_layers_merge() {
        let tmp = tempfile::tempdir().unwrap();
        let store = CodeStore::open(tmp.path().join("code")).unwrap();
        let (outside, untouched) = outside_dir(&tmp);
        let links = store.put_zip(&climbing_zip(&outside, &[])).unwrap();
        for reach in ["t/", "t/pwned"] {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            if reach.ends_with('/') {
                w.add_directory(reach, SimpleFileOptions::default()).unwrap();
            } else {
                w.start_file(reach, SimpleFileOptions::default()).unwrap();
            }
            let through = store.put_zip(&w.finish().unwrap().into_inner()).unwrap();
            let result = store.build_opt_dir(&[&links.sha256_hex, &through.sha256_hex]);
            untouched();
            assert!(matches!(result, Err(CodeError::Unpack(UnpackError::UnsafeEntry(_)))), "{reach}: {result:?}");
        }
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
}
