//! Code for remote containers: each code folder (a function's unpacked
//! zip, its merged layers) packed once into a `lambdabox_protocol::archive`,
//! named by the SHA-256 of the archive's bytes, and served to containers
//! that registered that digest.
//!
//! The folders it packs are content-addressed and never change in place
//! (see [`crate::store::code`]), so a folder's digest is remembered by its
//! path. Archives are written to a temporary file and renamed into place,
//! so a digest's file is always whole.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambdabox_protocol::archive::{check_link, Encoder};
use lambdabox_protocol::mux::{is_digest, CodeRef, Frame, Kind, MAX_DATA};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::session::read_frame;
use super::Io;

/// How long a fetch connection may sit between requests.
const FETCH_IDLE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: a name that is not UTF-8")]
    NotUtf8(PathBuf),
}

/// The archives, on disk under one folder.
#[derive(Debug)]
pub struct CodeShelf {
    dir: PathBuf,
    /// Folder → digest of its archive.
    packed: Mutex<HashMap<PathBuf, String>>,
}

impl CodeShelf {
    /// Archives under `dir` (private; emptied: what an earlier run packed is
    /// packed again on demand).
    pub fn open(dir: PathBuf) -> Result<CodeShelf, CodeError> {
        let io_err = |source| CodeError::Io { path: dir.clone(), source };
        let _ = fs::remove_dir_all(&dir);
        crate::private::dir(&dir).map_err(io_err)?;
        Ok(CodeShelf { dir, packed: Mutex::default() })
    }

    /// The digest of `folder`'s archive, packing it the first time.
    pub async fn publish(self: &Arc<Self>, folder: &Path) -> Result<String, CodeError> {
        if let Some(d) = self.packed.lock().expect("shelf poisoned").get(folder) {
            return Ok(d.clone());
        }
        let (shelf, folder) = (self.clone(), folder.to_path_buf());
        let digest = tokio::task::spawn_blocking(move || {
            let digest = pack(&folder, &shelf.dir)?;
            shelf.packed.lock().expect("shelf poisoned").insert(folder, digest.clone());
            Ok(digest)
        })
        .await
        .map_err(|e| CodeError::Io { path: self.dir.clone(), source: io::Error::other(e) })?;
        digest
    }

    /// The archive file of `digest`, if packed.
    fn archive(&self, digest: &str) -> Option<PathBuf> {
        let path = self.dir.join(digest);
        (is_digest(digest) && path.is_file()).then_some(path)
    }
}

/// Writes through to a file while hashing.
struct Hashing<W> {
    out: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Pack `folder` into `shelf/DIGEST`; returns the digest. Blocking.
fn pack(folder: &Path, shelf: &Path) -> Result<String, CodeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CodeError::Io { path, source }
    };
    let tmp = tempfile::NamedTempFile::new_in(shelf).map_err(io_err(shelf))?;
    let digest = {
        let out = Hashing { out: io::BufWriter::new(tmp.as_file()), hash: Sha256::new() };
        let mut encoder = Encoder::new(out).map_err(io_err(shelf))?;
        add_folder(&mut encoder, folder, "")?;
        let Hashing { hash, .. } = encoder.finish().map_err(io_err(shelf))?;
        hex::encode(hash.finalize())
    };
    let path = shelf.join(&digest);
    tmp.persist(&path).map_err(|e| CodeError::Io { path: path.clone(), source: e.error })?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io_err(&path))?;
    Ok(digest)
}

/// Entries of `dir` (at archive path `prefix`), sorted so one folder always
/// packs to the same bytes. Links that would leave the folder are left out
/// (the unpacker would refuse them); anything but folders, files and links
/// is too.
fn add_folder<W: Write>(encoder: &mut Encoder<W>, dir: &Path, prefix: &str) -> Result<(), CodeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CodeError::Io { path, source }
    };
    let mut entries: Vec<_> = fs::read_dir(dir).map_err(io_err(dir))?.collect::<Result<_, _>>().map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().into_string().map_err(|_| CodeError::NotUtf8(path.clone()))?;
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_dir() {
            encoder.dir(&rel, mode).map_err(io_err(&path))?;
            add_folder(encoder, &path, &rel)?;
        } else if meta.is_file() {
            let file = fs::File::open(&path).map_err(io_err(&path))?;
            encoder.file(&rel, mode, meta.len(), file).map_err(io_err(&path))?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(io_err(&path))?;
            match target.to_str().filter(|t| check_link(&rel, t).is_ok()) {
                Some(t) => encoder.symlink(&rel, t).map_err(io_err(&path))?,
                None => {
                    tracing::warn!(path = %path.display(), "left a symlink out of a code archive: it leaves the folder")
                }
            }
        }
    }
    Ok(())
}

/// Answer a fetch connection: each requested digest that this container
/// may fetch, as chunks and an end; anything else closes the connection.
pub async fn serve_fetch(mut conn: Box<dyn Io>, allowed: Arc<Mutex<Vec<CodeRef>>>, shelf: Arc<CodeShelf>) {
    loop {
        let digest = match tokio::time::timeout(FETCH_IDLE, read_frame(&mut conn)).await {
            Ok(Ok(Some(Frame::Fetch(d)))) => d,
            _ => return,
        };
        let may = allowed.lock().expect("registration poisoned").iter().any(|r| r.digest == digest);
        let Some(path) = shelf.archive(&digest).filter(|_| may) else {
            tracing::warn!(digest, "refused a fetch of code the container was not given");
            return;
        };
        if let Err(e) = send_archive(&mut conn, &path).await {
            tracing::warn!(digest, error = %e, "sending code failed");
            return;
        }
    }
}

async fn send_archive(conn: &mut Box<dyn Io>, path: &Path) -> io::Result<()> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut buf = vec![0u8; MAX_DATA];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        let mut f = lambdabox_protocol::mux::Header::encode(Kind::Chunk, 0, n).to_vec();
        f.extend_from_slice(&buf[..n]);
        conn.write_all(&f).await?;
    }
    conn.write_all(&Frame::End.encode()?).await?;
    conn.flush().await
}
