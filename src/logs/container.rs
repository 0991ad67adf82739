//! One container's log: the bootstrap's stdout and stderr, read straight
//! from the pipe lambdabox-init hands over (see
//! `runtimes/init/src/handoff.rs`), framed per invocation by `START`, `END`
//! and `REPORT`, written to the function's file and, when asked, returned
//! as the invocation's tail.
//!
//! Why this is cheap and still exact: a runtime writes its output to the
//! pipe before it posts the response, so when the response arrives,
//! [`ContainerLog::finish`] reads what the pipe holds without blocking and
//! has every byte of that invocation. Between invocations a small task
//! reads the pipe as output comes, so long runs stream to the file. An
//! invocation that prints nothing costs one file write (its `START`, `END`
//! and `REPORT` together) and no task wake-up.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{end_lines, start_line, LogBook, PlatformLines, Report, TAIL_BYTES};

/// Reads a container's peak memory use in MB, if the host tells.
pub type MemoryProbe = Box<dyn Fn() -> Option<u64> + Send + Sync>;

/// Output kept while a container has no function yet (a prewarmed one, or
/// the moment between start and adoption); more than this is dropped.
const UNOWNED_MAX: usize = 16 * TAIL_BYTES;
/// One read from the pipe (its default capacity).
const READ_SIZE: usize = 64 * 1024;
/// An unfinished line longer than this is written as it is.
const PARTIAL_MAX: usize = 64 * 1024;

/// A container's log. Shared by the Runtime API server (which attaches the
/// pipe), the pipe's reader task and the invocation path.
#[derive(Debug, Default)]
pub struct ContainerLog {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    owner: Option<Owner>,
    pipe: Option<Arc<AsyncFd<OwnedFd>>>,
    /// The invocation under way, if any.
    current: Option<Capture>,
    /// Output that came before there was an owner.
    unowned: Vec<u8>,
    /// The start of a line whose end has not come yet.
    partial: Vec<u8>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("function", &self.owner.as_ref().map(|o| &o.function))
            .field("attached", &self.pipe.is_some())
            .finish_non_exhaustive()
    }
}

/// Whose log this is, once the container serves a function.
struct Owner {
    function: String,
    book: Arc<LogBook>,
    peak_memory_mb: MemoryProbe,
}

/// The invocation under way: its `START` line until something is written
/// after it, and its lines so far (the last [`TAIL_BYTES`] matter).
struct Capture {
    start: Option<String>,
    lines: Vec<u8>,
}

impl Capture {
    fn push(&mut self, bytes: &[u8]) {
        self.lines.extend_from_slice(bytes);
        if self.lines.len() > 4 * TAIL_BYTES {
            self.lines.drain(..self.lines.len() - TAIL_BYTES);
        }
    }

    fn tail(mut self) -> Bytes {
        let cut = self.lines.len().saturating_sub(TAIL_BYTES);
        self.lines.drain(..cut);
        self.lines.into()
    }
}

impl State {
    /// Write `bytes` to the owner's file, after the pending `START` line if
    /// an invocation has not written it yet.
    fn emit(&mut self, bytes: &[u8]) {
        let Some(owner) = &self.owner else {
            let room = UNOWNED_MAX.saturating_sub(self.unowned.len());
            self.unowned.extend_from_slice(&bytes[..bytes.len().min(room)]);
            return;
        };
        let Some(capture) = &mut self.current else {
            owner.book.append(&owner.function, bytes);
            return;
        };
        match capture.start.take() {
            Some(start) => {
                let mut chunk = start.into_bytes();
                chunk.extend_from_slice(bytes);
                owner.book.append(&owner.function, &chunk);
                capture.push(&chunk);
            }
            None => {
                owner.book.append(&owner.function, bytes);
                capture.push(bytes);
            }
        }
    }

    /// Output as it comes: whole lines go out at once, the start of an
    /// unfinished one waits for its end (or for the invocation's end). Lines
    /// from several containers of one function, written to its one file at
    /// the same time, so never cut into each other.
    fn take_output(&mut self, bytes: &[u8]) {
        // Whole lines end at the last newline; the rest waits for its end.
        let cut = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |last| last + 1);
        let (lines, rest) = bytes.split_at(cut);
        if !lines.is_empty() {
            if self.partial.is_empty() {
                self.emit(lines);
            } else {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(lines);
                self.emit(&joined);
            }
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > PARTIAL_MAX {
            let long = std::mem::take(&mut self.partial);
            self.emit(&long);
        }
    }

    /// Write out an unfinished line, ended: its invocation is over, and
    /// what follows (`END`) starts a line of its own.
    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let mut partial = std::mem::take(&mut self.partial);
            partial.push(b'\n');
            self.emit(&partial);
        }
    }

    /// Read what the pipe holds now. `false` once every writer is gone.
    fn drain(&mut self) -> bool {
        let Some(pipe) = self.pipe.clone() else { return false };
        // Uninitialised: this runs twice per invocation and nearly always
        // reads nothing, so zeroing 64 KB each time would be the main cost.
        let mut buf = MaybeUninit::<[u8; READ_SIZE]>::uninit();
        loop {
            // SAFETY: the kernel writes at most READ_SIZE bytes into `buf`.
            let n = unsafe { libc::read(pipe.as_raw_fd(), buf.as_mut_ptr().cast(), READ_SIZE) };
            match n {
                0 => {
                    self.pipe = None;
                    self.flush_partial();
                    return false;
                }
                n if n > 0 => {
                    // SAFETY: read(2) initialised the first `n` bytes.
                    let read = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
                    self.take_output(read);
                }
                _ => match io::Error::last_os_error().kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => return true,
                    _ => {
                        self.pipe = None;
                        return false;
                    }
                },
            }
        }
    }
}

impl ContainerLog {
    pub fn new() -> ContainerLog {
        ContainerLog::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("container log poisoned")
    }

    /// Take the bootstrap's output pipe from init and read it from now on.
    /// Only the first pipe counts: anything else the container sends is
    /// refused, as is a descriptor that is not a pipe.
    pub fn attach(self: &Arc<Self>, pipe: OwnedFd) -> io::Result<()> {
        let mut state = self.state();
        if state.pipe.is_some() {
            return Err(io::Error::other("the container already gave its log pipe"));
        }
        let meta = std::fs::File::from(pipe.try_clone()?).metadata()?;
        if !std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()) {
            return Err(io::Error::other("the log descriptor is not a pipe"));
        }
        rustix::fs::fcntl_setfl(&pipe, rustix::fs::OFlags::NONBLOCK)?;
        // SAFETY: an OwnedFd is open, and stays the same descriptor, for as
        // long as the AsyncFd that owns it.
        let pipe = unsafe { AsyncFd::register_with_interest(pipe, Interest::READABLE) }?;
        let pipe = Arc::new(pipe);
        state.pipe = Some(pipe.clone());
        tokio::spawn(read_pipe(Arc::downgrade(self), pipe));
        Ok(())
    }

    /// Output that came by other means than a pipe (the remote transport's
    /// log frames, sent in the order it was written): taken like what the
    /// pipe gives.
    pub fn feed(&self, bytes: &[u8]) {
        self.state().take_output(bytes);
    }

    /// The container now serves `function`: its output goes to that
    /// function's file in `book`, with what came before.
    pub fn adopt(&self, function: String, book: Arc<LogBook>, peak_memory_mb: MemoryProbe) {
        let mut state = self.state();
        state.owner = Some(Owner { function, book, peak_memory_mb });
        let early = std::mem::take(&mut state.unowned);
        if !early.is_empty() {
            state.emit(&early);
        }
    }

    /// An invocation starts. Its `START` line is written with its first
    /// output, or with its `END`.
    pub fn begin(&self, request_id: &str, version: &str, lines: PlatformLines) {
        let mut state = self.state();
        state.drain();
        state.flush_partial();
        state.current = Some(Capture { start: Some(start_line(request_id, version, lines)), lines: Vec::new() });
    }

    /// The invocation did not happen here after all (the runtime went away
    /// without taking it): forget it, so no `END` or `REPORT` is written for
    /// it in this container's log. What the runtime printed on its way out
    /// still goes to the function's log.
    pub fn abandon(&self) {
        let mut state = self.state();
        state.current = None;
        state.drain();
        state.flush_partial();
    }

    /// The invocation is over: take everything it printed, then write `END`
    /// and `REPORT`. With `want_tail`, returns the last [`TAIL_BYTES`] of
    /// its log.
    pub fn finish(&self, mut report: Report, want_tail: bool) -> Option<Bytes> {
        let mut state = self.state();
        state.drain();
        state.flush_partial();
        report.max_memory_used_mb = state.owner.as_ref().and_then(|o| (o.peak_memory_mb)());
        state.emit(end_lines(&report).as_bytes());
        let capture = state.current.take()?;
        want_tail.then(|| capture.tail())
    }
}

/// Read the pipe as output comes, until every writer is gone or the log is.
async fn read_pipe(log: Weak<ContainerLog>, pipe: Arc<AsyncFd<OwnedFd>>) {
    loop {
        let Ok(mut ready) = pipe.readable().await else { return };
        let Some(log) = log.upgrade() else { return };
        if !log.state().drain() {
            return;
        }
        ready.clear_ready();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn pipe() -> (OwnedFd, std::fs::File) {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        (read, std::fs::File::from(write))
    }

    fn report(id: &str) -> Report {
        Report {
            request_id: id.into(),
            duration: Duration::from_millis(2),
            memory_mb: 128,
            max_memory_used_mb: None,
            init_duration: None,
            timed_out: None,
            lines: PlatformLines::Text,
        }
    }

    #[tokio::test]
    async fn output_before_the_response_belongs_to_the_invocation() {
        let dir = tempfile::tempdir().unwrap();
        let book = Arc::new(LogBook::open(dir.path()).unwrap());
        let log = Arc::new(ContainerLog::new());
        let (read, mut write) = pipe();
        log.attach(read).unwrap();
        write.write_all(b"init line\n").unwrap();
        log.adopt("f".into(), book.clone(), Box::new(|| Some(42)));

        log.begin("one", "$LATEST", PlatformLines::Text);
        write.write_all(b"hello\n").unwrap();
        let tail = log.finish(report("one"), true).unwrap();
        let tail = String::from_utf8(tail.to_vec()).unwrap();
        assert!(tail.starts_with("START RequestId: one Version: $LATEST\nhello\nEND RequestId: one\n"), "{tail}");
        assert!(tail.contains("Max Memory Used: 42 MB"), "{tail}");

        log.begin("two", "$LATEST", PlatformLines::Text);
        assert_eq!(log.finish(report("two"), false), None);
        let file = String::from_utf8(book.tail("f", 10_000).unwrap()).unwrap();
        assert!(file.starts_with("init line\nSTART RequestId: one"), "{file}");
        assert!(file.contains("START RequestId: two Version: $LATEST\nEND RequestId: two\n"), "{file}");
    }

    #[tokio::test]
    async fn only_one_pipe_is_taken() {
        let log = Arc::new(ContainerLog::new());
        log.attach(pipe().0).unwrap();
        assert!(log.attach(pipe().0).is_err());
        let file = tempfile::tempfile().unwrap();
        let other = Arc::new(ContainerLog::new());
        assert!(other.attach(OwnedFd::from(file)).is_err(), "a regular file is not a log pipe");
    }

    /// Two containers of one function print at the same time, each a line in
    /// pieces: the file gets each line whole.
    #[tokio::test]
    async fn lines_of_containers_printing_at_once_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        let book = Arc::new(LogBook::open(dir.path()).unwrap());
        let (a, b) = (Arc::new(ContainerLog::new()), Arc::new(ContainerLog::new()));
        let (read_a, mut write_a) = pipe();
        let (read_b, mut write_b) = pipe();
        a.attach(read_a).unwrap();
        b.attach(read_b).unwrap();
        a.adopt("f".into(), book.clone(), Box::new(|| None));
        b.adopt("f".into(), book.clone(), Box::new(|| None));
        a.begin("one", "$LATEST", PlatformLines::Text);
        b.begin("two", "$LATEST", PlatformLines::Text);
        write_a.write_all(b"RAN one").unwrap();
        a.state().drain();
        write_b.write_all(b"RAN two whole\n").unwrap();
        b.state().drain();
        write_a.write_all(b" rest\nand an unfinished").unwrap();
        a.state().drain();
        b.finish(report("two"), false);
        a.finish(report("one"), false);
        let file = String::from_utf8(book.tail("f", 10_000).unwrap()).unwrap();
        assert!(file.contains("\nRAN two whole\n"), "{file}");
        assert!(file.contains("\nRAN one rest\n"), "{file}");
        assert!(file.contains("\nand an unfinished\nEND RequestId: one\n"), "{file}");
    }
}
