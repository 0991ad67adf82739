//! The pid file of a background controller (`serve --pid-file`, which
//! `serve --detach` always passes): written by the controller itself once it
//! starts, removed when it exits, read by `lambdabox down`.
//!
//! A pid outlives its process and may be reused, so a pid file is believed
//! only while the process it names is alive and is a `lambdabox`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where `serve --detach` keeps its pid file in the data directory.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join("lambdabox.pid")
}

/// A pid file this process holds; removed on drop if it still names us.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Claim `path` for this process: fails if it names another live
    /// controller; a stale one (its process gone) is replaced.
    pub fn create(path: &Path) -> Result<PidFile> {
        let contents = format!("{}\n", std::process::id());
        for _ in 0..2 {
            match crate::private::create_new(path, contents.as_bytes()) {
                Ok(()) => return Ok(PidFile { path: path.to_owned() }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some(pid) = running(path)? {
                        bail!("a controller is already running (pid {pid}, pid file {})", path.display());
                    }
                    remove_stale(path)?;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot write the pid file {}", path.display())),
            }
        }
        bail!("the pid file {} keeps reappearing: another controller is starting", path.display())
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read(&self.path).ok().flatten() == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The pid `path` names, if the file exists and holds one.
fn read(path: &Path) -> Result<Option<u32>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read the pid file {}", path.display())),
    }
}

/// The pid of the live controller `path` names, if any.
pub fn running(path: &Path) -> Result<Option<u32>> {
    Ok(read(path)?.filter(|&pid| is_live_lambdabox(pid)))
}

/// Remove a pid file whose process is gone (a crash, SIGKILL).
pub fn remove_stale(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove the stale pid file {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Whether `pid` is a running (not zombie) process whose command is lambdabox.
pub fn is_live_lambdabox(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `PID (COMM) STATE …`: COMM may hold spaces and parentheses, so split at the last ')'.
    let Some((head, tail)) = stat.rsplit_once(')') else { return false };
    let comm = head.split_once('(').map_or("", |(_, c)| c);
    let state = tail.trim_start().chars().next();
    comm == "lambdabox" && !matches!(state, Some('Z' | 'X'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_names_its_process_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_path(dir.path());
        let held = PidFile::create(&path).unwrap();
        assert_eq!(read(&path).unwrap(), Some(std::process::id()));
        drop(held);
        assert!(!path.exists());
    }

    #[test]
    fn a_stale_pid_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = default_path(dir.path());
        // Pid 1 is never a lambdabox here; a pid past pid_max never exists.
        std::fs::write(&path, "4194305\n").unwrap();
        assert_eq!(running(&path).unwrap(), None);
        let _held = PidFile::create(&path).unwrap();
        assert_eq!(read(&path).unwrap(), Some(std::process::id()));
    }

    #[test]
    fn only_lambdabox_processes_count() {
        // The test binary is not called lambdabox.
        assert!(!is_live_lambdabox(std::process::id()));
        assert!(!is_live_lambdabox(4_194_305));
    }
}
