//! Function logs: what functions print, framed by Lambda's `START`, `END`
//! and `REPORT` lines, kept per function on disk, and the last 4 KB of each
//! invocation for `LogType: Tail`.
//!
//! Output reaches us through a pipe per container whose read end
//! lambdabox-init hands over ([`container`]); reading it when a response
//! arrives collects everything printed before it. The files are plain text, one per function under
//! `DATA_DIR/logs/`, rotated once at [`ROTATE_BYTES`] so a chatty function
//! cannot fill the disk.

pub mod container;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub use container::{ContainerLog, MemoryProbe};

/// A function's log file is moved to `NAME.log.1` (replacing the previous
/// one) when it grows past this.
pub const ROTATE_BYTES: u64 = 16 * 1024 * 1024;
/// `X-Amz-Log-Result` carries at most this much of the invocation's log.
pub const TAIL_BYTES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("function log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// The per-function log files. Appends from many containers interleave at
/// chunk boundaries; each chunk is one `write`.
#[derive(Debug)]
pub struct LogBook {
    dir: PathBuf,
    open: Mutex<HashMap<String, (File, u64)>>,
}

impl LogBook {
    pub fn open(dir: &Path) -> Result<LogBook, LogError> {
        crate::private::dir(dir).map_err(|source| LogError::Io { path: dir.to_owned(), source })?;
        Ok(LogBook { dir: dir.to_owned(), open: Mutex::default() })
    }

    fn path(&self, function: &str) -> PathBuf {
        self.dir.join(format!("{function}.log"))
    }

    /// Append to `function`'s log. Failures are logged, not returned: a full
    /// disk must not fail invocations.
    pub fn append(&self, function: &str, bytes: &[u8]) {
        if let Err(e) = self.try_append(function, bytes) {
            tracing::warn!(function, error = %e, "could not write function log");
        }
    }

    fn try_append(&self, function: &str, bytes: &[u8]) -> Result<(), LogError> {
        let path = self.path(function);
        let io = |source| LogError::Io { path: path.clone(), source };
        let mut open = self.open.lock().expect("log book poisoned");
        if !open.contains_key(function) {
            let file = crate::private::append_file(&path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            open.insert(function.to_owned(), (file, len));
        }
        let (file, len) = open.get_mut(function).expect("inserted above");
        file.write_all(bytes).map_err(io)?;
        *len += bytes.len() as u64;
        if *len >= ROTATE_BYTES {
            open.remove(function);
            std::fs::rename(&path, path.with_extension("log.1")).map_err(io)?;
        }
        Ok(())
    }

    /// The last `max` bytes of `function`'s log (empty if it has none),
    /// starting at a line boundary when the cut falls mid-line.
    pub fn tail(&self, function: &str, max: u64) -> Result<Vec<u8>, LogError> {
        let path = self.path(function);
        let io = |source| LogError::Io { path: path.clone(), source };
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        let start = len.saturating_sub(max);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut out = Vec::with_capacity((len - start) as usize);
        file.read_to_end(&mut out).map_err(io)?;
        if start > 0 {
            if let Some(nl) = out.iter().position(|&b| b == b'\n') {
                out.drain(..=nl);
            }
        }
        Ok(out)
    }
}

/// What the `REPORT` line says about one invocation.
#[derive(Debug, Clone)]
pub struct Report {
    pub request_id: String,
    pub duration: Duration,
    pub memory_mb: u32,
    /// Filled in by the container's log when it writes the line.
    pub max_memory_used_mb: Option<u64>,
    /// Set on the first invocation of a cold container.
    pub init_duration: Option<Duration>,
    pub timed_out: Option<u32>,
}

/// `START RequestId: ID Version: $LATEST` (or the version's number).
pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}\n")
}

/// The lines that close an invocation: Lambda's timeout notice when it timed
/// out, `END`, and `REPORT` with its tab-separated fields.
pub fn end_lines(r: &Report) -> String {
    let ms = r.duration.as_secs_f64() * 1000.0;
    let mut out = String::new();
    if let Some(timeout_s) = r.timed_out {
        out += &format!(
            "{} {} Task timed out after {timeout_s}.00 seconds\n",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            r.request_id
        );
    }
    out += &format!("END RequestId: {}\n", r.request_id);
    out += &format!(
        "REPORT RequestId: {}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        r.request_id,
        ms.ceil().max(1.0) as u64,
        r.memory_mb,
        r.max_memory_used_mb.unwrap_or(0),
    );
    if let Some(init) = r.init_duration {
        out += &format!("Init Duration: {:.2} ms\t", init.as_secs_f64() * 1000.0);
    }
    if r.timed_out.is_some() {
        out += "Status: timeout";
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            request_id: "id-1".into(),
            duration: Duration::from_micros(26_730),
            memory_mb: 128,
            max_memory_used_mb: Some(75),
            init_duration: None,
            timed_out: None,
        }
    }

    #[test]
    fn lines_read_like_lambdas() {
        assert_eq!(start_line("id-1", "$LATEST"), "START RequestId: id-1 Version: $LATEST\n");
        assert_eq!(start_line("id-2", "3"), "START RequestId: id-2 Version: 3\n");
        assert_eq!(
            end_lines(&report()),
            "END RequestId: id-1\nREPORT RequestId: id-1\tDuration: 26.73 ms\tBilled Duration: 27 ms\t\
             Memory Size: 128 MB\tMax Memory Used: 75 MB\t\n"
        );
        let cold = Report { init_duration: Some(Duration::from_micros(130_490)), timed_out: Some(3), ..report() };
        let lines = end_lines(&cold);
        assert!(lines.lines().next().unwrap().ends_with("id-1 Task timed out after 3.00 seconds"), "{lines}");
        assert!(lines.ends_with("Init Duration: 130.49 ms\tStatus: timeout\n"), "{lines}");
    }

    #[test]
    fn files_append_tail_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let book = LogBook::open(dir.path()).unwrap();
        assert!(book.tail("f", 100).unwrap().is_empty());
        book.append("f", b"one\ntwo\nthree\n");
        assert_eq!(book.tail("f", 100).unwrap(), b"one\ntwo\nthree\n");
        assert_eq!(book.tail("f", 8).unwrap(), b"three\n", "a cut mid-line starts at the next line");
        let big = vec![b'x'; ROTATE_BYTES as usize];
        book.append("f", &big);
        assert!(dir.path().join("f.log.1").exists());
        book.append("f", b"fresh\n");
        assert_eq!(book.tail("f", 100).unwrap(), b"fresh\n");
    }
}
