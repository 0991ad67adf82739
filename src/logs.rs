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

    /// The file's path is only built when it is opened or rotated: this
    /// runs on every invocation.
    fn try_append(&self, function: &str, bytes: &[u8]) -> Result<(), LogError> {
        let io = |source| LogError::Io { path: self.path(function), source };
        let mut open = self.open.lock().expect("log book poisoned");
        if !open.contains_key(function) {
            let file = crate::private::append_file(&self.path(function)).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            open.insert(function.to_owned(), (file, len));
        }
        let (file, len) = open.get_mut(function).expect("inserted above");
        file.write_all(bytes).map_err(io)?;
        *len += bytes.len() as u64;
        if *len >= ROTATE_BYTES {
            open.remove(function);
            let path = self.path(function);
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

/// How the platform writes its own lines about an invocation: Lambda's
/// `START`/`END`/`REPORT` text, or with `LogFormat: JSON` the
/// `platform.start` and `platform.report` records Lambda writes instead
/// (none at all when `SystemLogLevel` is WARN: both are INFO records).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlatformLines {
    #[default]
    Text,
    Json,
    Off,
}

impl PlatformLines {
    /// What a function's `LoggingConfig` asks for.
    pub fn of(config: &crate::function::logging::LoggingConfig) -> PlatformLines {
        match (config.json, config.system_level.as_deref()) {
            (false, _) => PlatformLines::Text,
            (true, Some("WARN")) => PlatformLines::Off,
            (true, _) => PlatformLines::Json,
        }
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
    pub lines: PlatformLines,
}

/// A log record's time, as Lambda writes it.
fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// One JSON record of the platform's, on its own line.
fn record(kind: &str, record: serde_json::Value) -> String {
    let mut line = serde_json::json!({ "time": now(), "type": kind, "record": record }).to_string();
    line.push('\n');
    line
}

/// `START RequestId: ID Version: $LATEST` (or the version's number), or
/// its `platform.start` record.
pub fn start_line(request_id: &str, version: &str, lines: PlatformLines) -> String {
    match lines {
        PlatformLines::Text => format!("START RequestId: {request_id} Version: {version}\n"),
        PlatformLines::Json => {
            record("platform.start", serde_json::json!({ "requestId": request_id, "version": version }))
        }
        PlatformLines::Off => String::new(),
    }
}

/// The lines that close an invocation: Lambda's timeout notice when it timed
/// out, `END`, and `REPORT` with its tab-separated fields; or the
/// `platform.report` record.
pub fn end_lines(r: &Report) -> String {
    match r.lines {
        PlatformLines::Text => end_text(r),
        PlatformLines::Json => end_record(r),
        PlatformLines::Off => String::new(),
    }
}

fn end_text(r: &Report) -> String {
    let ms = r.duration.as_secs_f64() * 1000.0;
    let mut out = String::new();
    if let Some(timeout_s) = r.timed_out {
        out += &format!("{} {} Task timed out after {timeout_s}.00 seconds\n", now(), r.request_id);
    }
    out += &format!("END RequestId: {}\n", r.request_id);
    out += &format!(
        "REPORT RequestId: {}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
        r.request_id,
        billed_ms(ms),
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

fn end_record(r: &Report) -> String {
    let ms = r.duration.as_secs_f64() * 1000.0;
    let mut metrics = serde_json::json!({
        "durationMs": (ms * 1000.0).round() / 1000.0,
        "billedDurationMs": billed_ms(ms),
        "memorySizeMB": r.memory_mb,
        "maxMemoryUsedMB": r.max_memory_used_mb.unwrap_or(0),
    });
    if let Some(init) = r.init_duration {
        metrics["initDurationMs"] = ((init.as_secs_f64() * 1_000_000.0).round() / 1000.0).into();
    }
    let mut out = serde_json::json!({ "requestId": r.request_id, "metrics": metrics, "status": "success" });
    if r.timed_out.is_some() {
        out["status"] = "timeout".into();
        out["errorType"] = "Sandbox.Timedout".into();
    }
    record("platform.report", out)
}

/// Lambda bills whole milliseconds, at least one.
fn billed_ms(ms: f64) -> u64 {
    ms.ceil().max(1.0) as u64
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
            lines: PlatformLines::Text,
        }
    }

    #[test]
    fn lines_read_like_lambdas() {
        assert_eq!(start_line("id-1", "$LATEST", PlatformLines::Text), "START RequestId: id-1 Version: $LATEST\n");
        assert_eq!(start_line("id-2", "3", PlatformLines::Text), "START RequestId: id-2 Version: 3\n");
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
    fn json_format_writes_platform_records() {
        let start: serde_json::Value = serde_json::from_str(&start_line("id-1", "2", PlatformLines::Json)).unwrap();
        assert_eq!(
            (start["type"].as_str(), &start["record"]),
            (Some("platform.start"), &serde_json::json!({"requestId": "id-1", "version": "2"}))
        );
        assert!(start["time"].as_str().unwrap().ends_with('Z'));
        let cold =
            Report { init_duration: Some(Duration::from_micros(130_490)), lines: PlatformLines::Json, ..report() };
        let text = end_lines(&cold);
        assert_eq!(text.lines().count(), 1, "no END line: {text}");
        let written: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written["type"], "platform.report");
        assert_eq!(
            written["record"],
            serde_json::json!({"requestId": "id-1", "status": "success", "metrics": {
                "durationMs": 26.73, "billedDurationMs": 27, "memorySizeMB": 128, "maxMemoryUsedMB": 75,
                "initDurationMs": 130.49}})
        );
        let timed_out: serde_json::Value =
            serde_json::from_str(&end_lines(&Report { timed_out: Some(3), lines: PlatformLines::Json, ..report() }))
                .unwrap();
        assert_eq!(
            (timed_out["record"]["status"].as_str(), timed_out["record"]["errorType"].as_str()),
            (Some("timeout"), Some("Sandbox.Timedout"))
        );
        assert_eq!(
            start_line("id", "1", PlatformLines::Off) + &end_lines(&Report { lines: PlatformLines::Off, ..report() }),
            ""
        );
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
