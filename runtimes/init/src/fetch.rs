//! Fetch mode: download code archives from the controller and unpack them
//! (`lambdabox-init fetch /var/task=DIGEST /opt=DIGEST`), for containers
//! that share no file system with it. A Kubernetes init container runs it
//! into the volumes the function mounts read-only; a generic container's
//! init runs it itself once told what to become.
//!
//! Nothing from the controller is trusted blindly: every archive is checked
//! against the digest it was asked by (what a node may cache under that
//! name), and the unpacker creates only folders, regular files and
//! symlinks whose targets stay inside, never writes through a link, never
//! overwrites, and stops at the archive's size limits. A digest mismatch
//! is found at the end, after unpacking: the fetch then fails, and so does
//! the container that needed it.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use lambdabox_protocol::archive::{Decoder, Entry, Limits};
use lambdabox_protocol::mux::{read_frame, CodeRef, Frame, Purpose};
use lambdabox_protocol::sha256::Sha256;

use crate::link::{Identity, Link};

/// Fetch and unpack each of `refs`, one connection each.
pub fn fetch_all(identity: &Identity, refs: &[CodeRef]) -> Result<(), String> {
    for r in refs {
        fetch(identity, r).map_err(|e| format!("fetching {} into {}: {e}", r.digest, r.dest))?;
    }
    Ok(())
}

/// Copy the running binary to `path`: root's, executable by all, never
/// writable but by root.
pub fn install_self(path: &Path) -> io::Result<()> {
    let bin = fs::read("/proc/self/exe")?;
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o555).open(path)?;
    file.write_all(&bin)?;
    file.sync_all()?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o555))
}

/// `dest` as an empty folder only root may write to (a volume starts out
/// writable by all).
pub fn prepare_empty(dest: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dest)?;
    if fs::symlink_metadata(dest)?.file_type().is_symlink() {
        return Err(bad("the destination is a symlink"));
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755))
}

fn fetch(identity: &Identity, r: &CodeRef) -> io::Result<()> {
    let mut link = identity.dial(Purpose::Fetch)?;
    link.write_all(&Frame::Fetch(r.digest.clone()).encode()?)?;
    let mut chunks = Chunks { link, piece: Vec::new(), at: 0, hash: Sha256::new(), ended: false };
    unpack(&mut chunks, Path::new(&r.dest))?;
    let digest = chunks.finish()?;
    if digest != r.digest {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("the archive's digest is {digest}")));
    }
    Ok(())
}

/// The archive's bytes from `Chunk` frames up to `End`, hashed as read.
struct Chunks {
    link: Link,
    piece: Vec<u8>,
    at: usize,
    hash: Sha256,
    ended: bool,
}

impl Chunks {
    /// After the archive's end: the stream must end too; returns the digest.
    fn finish(mut self) -> io::Result<String> {
        let mut rest = [0u8; 1];
        if self.read(&mut rest)? != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bytes after the archive's end"));
        }
        Ok(self.hash.finish_hex())
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.piece.len() {
            if self.ended {
                return Ok(0);
            }
            match read_frame(&mut self.link)? {
                Some(Frame::Chunk(bytes)) => {
                    self.hash.update(&bytes);
                    (self.piece, self.at) = (bytes, 0);
                }
                Some(Frame::End) => self.ended = true,
                Some(other) => return Err(bad(&format!("unexpected frame {other:?}"))),
                None => return Err(bad("the controller closed the connection (unknown digest?)")),
            }
        }
        let n = buf.len().min(self.piece.len() - self.at);
        buf[..n].copy_from_slice(&self.piece[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Unpack an archive into `dest` (created if missing; it must not be a
/// link). Entries go only into folders this archive created, so no entry
/// can be written through a symlink.
pub fn unpack(input: impl Read, dest: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dest)?;
    if fs::symlink_metadata(dest)?.file_type().is_symlink() {
        return Err(bad("the destination is a symlink"));
    }
    fs::set_permissions(dest, fs::Permissions::from_mode(0o755))?;
    let mut decoder = Decoder::new(input, Limits::default()).map_err(|e| bad(&e.to_string()))?;
    let mut dirs: HashSet<String> = HashSet::new();
    loop {
        let entry = decoder.next_entry().map_err(|e| bad(&e.to_string()))?;
        let path = match &entry {
            Entry::End => return Ok(()),
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => path.clone(),
        };
        let parent = path.rsplit_once('/').map(|(p, _)| p);
        if parent.is_some_and(|p| !dirs.contains(p)) {
            return Err(bad(&format!("{path}: its folder is not one the archive made")));
        }
        let target = dest.join(&path);
        match entry {
            Entry::Dir { .. } => {
                fs::DirBuilder::new().mode(0o755).create(&target)?;
                dirs.insert(path);
            }
            Entry::File { mode, .. } => {
                // Readable by the function's user, executable if it was; never
                // setuid, never writable but by root.
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)?;
                io::copy(&mut decoder.content(), &mut file)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
            }
            Entry::Symlink { target: to, .. } => std::os::unix::fs::symlink(to, &target)?,
            Entry::End => unreachable!("handled above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambdabox_protocol::archive::Encoder;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lbx-init-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn archives_unpack_with_safe_modes() {
        let mut e = Encoder::new(Vec::new()).unwrap();
        e.dir("pkg", 0o700).unwrap();
        e.file("pkg/app.py", 0o4777, 2, &b"hi"[..]).unwrap();
        e.file("data", 0o600, 1, &b"x"[..]).unwrap();
        e.symlink("pkg/same.py", "app.py").unwrap();
        let dest = temp("ok");
        unpack(&e.finish().unwrap()[..], &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("pkg/same.py")).unwrap(), "hi");
        let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!((mode("pkg"), mode("pkg/app.py"), mode("data")), (0o755, 0o755, 0o644));
        fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn nothing_is_written_through_a_link_or_twice() {
        // A link to a folder inside, then a file "through" it: refused,
        // since only folders the archive made take entries.
        let mut e = Encoder::new(Vec::new()).unwrap();
        e.dir("real", 0o755).unwrap();
        e.symlink("alias", "real").unwrap();
        e.file("alias/x", 0o644, 1, &b"x"[..]).unwrap();
        let dest = temp("through");
        assert!(unpack(&e.finish().unwrap()[..], &dest).is_err());
        assert!(!dest.join("real/x").exists());

        let mut e = Encoder::new(Vec::new()).unwrap();
        e.file("twice", 0o644, 1, &b"a"[..]).unwrap();
        e.file("twice", 0o644, 1, &b"b"[..]).unwrap();
        let dest2 = temp("twice");
        assert!(unpack(&e.finish().unwrap()[..], &dest2).is_err());
        assert_eq!(fs::read_to_string(dest2.join("twice")).unwrap(), "a");
        for d in [dest, dest2] {
            fs::remove_dir_all(d).unwrap();
        }
    }
}
