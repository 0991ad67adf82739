//! One container's log stream: lambdabox-init's frames in, each invocation's
//! lines framed by `START`/`END`/`REPORT` out, to the function's file and,
//! when asked, as the invocation's tail.
//!
//! A single task per container owns the ordering. Commands from the
//! invocation path (`begin`, `finish`) and frames from init are handled one
//! at a time; while a finish waits for init to echo its flush token, later
//! commands wait too, so output of one invocation is never written after the
//! next one's `START`. See `runtimes/init/src/logs.rs` for the wire format.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{end_lines, start_line, LogBook, Report, TAIL_BYTES};

/// How long a finish waits for init to echo its flush token. Init answers
/// from its own thread, so only a wedged container makes it wait this long.
const FLUSH_WAIT: Duration = Duration::from_secs(1);
/// The largest frame init sends (its read size); anything bigger is a
/// protocol error.
const MAX_FRAME: usize = 64 * 1024;

/// Reads a container's peak memory use in MB, if the host tells.
pub type MemoryProbe = Box<dyn Fn() -> Option<u64> + Send + Sync>;

/// The invocation path's handle on a container's log task. Dropping it ends
/// the task once pending commands are done.
#[derive(Debug)]
pub struct ContainerLog {
    commands: mpsc::UnboundedSender<Command>,
}

#[derive(Debug)]
enum Command {
    Begin(String),
    Finish { report: Report, tail: Option<oneshot::Sender<Bytes>> },
}

/// What the reader hands the log task.
#[derive(Debug)]
enum Frame {
    /// Init connected; flush tokens go here.
    Connected(OwnedWriteHalf),
    Data(Bytes),
    Flushed(u64),
}

impl ContainerLog {
    /// Serve `listener` (the container's `logs.sock`) for `function`'s log.
    /// `peak_memory_mb` is read for each `REPORT` line, here rather than on
    /// the invocation's path.
    pub fn spawn(
        listener: UnixListener,
        function: String,
        book: Arc<LogBook>,
        peak_memory_mb: MemoryProbe,
    ) -> (ContainerLog, JoinHandle<()>) {
        let (commands, rx) = mpsc::unbounded_channel();
        let stream = Stream { function, book, current: None, peak_memory_mb };
        let task = tokio::spawn(run(listener, stream, rx));
        (ContainerLog { commands }, task)
    }

    /// A handle whose commands go nowhere, for unit tests of pool logic.
    #[cfg(test)]
    pub(crate) fn detached() -> ContainerLog {
        ContainerLog { commands: mpsc::unbounded_channel().0 }
    }

    /// An invocation starts: its `START` line, and its capture begins.
    pub fn begin(&self, request_id: &str) {
        let _ = self.commands.send(Command::Begin(request_id.to_owned()));
    }

    /// The invocation ended: once everything it printed is in, write `END`
    /// and `REPORT`. With `want_tail`, the receiver gets the last
    /// [`TAIL_BYTES`] of its log.
    pub fn finish(&self, report: Report, want_tail: bool) -> Option<oneshot::Receiver<Bytes>> {
        let (tx, rx) = want_tail.then(oneshot::channel).unzip();
        let _ = self.commands.send(Command::Finish { report, tail: tx });
        rx
    }
}

/// The lines of the invocation under way, kept to its last [`TAIL_BYTES`].
#[derive(Debug, Default)]
struct Capture(Vec<u8>);

impl Capture {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > 4 * TAIL_BYTES {
            self.0.drain(..self.0.len() - TAIL_BYTES);
        }
    }

    fn tail(mut self) -> Bytes {
        let cut = self.0.len().saturating_sub(TAIL_BYTES);
        self.0.drain(..cut);
        self.0.into()
    }
}

/// A finish waiting for init's echo.
struct Flush {
    token: u64,
    report: Report,
    tail: Option<oneshot::Sender<Bytes>>,
    deadline: Instant,
}

/// The log task's state between events.
struct Stream {
    function: String,
    book: Arc<LogBook>,
    current: Option<Capture>,
    peak_memory_mb: MemoryProbe,
}

impl Stream {
    fn write(&mut self, bytes: &[u8]) {
        self.book.append(&self.function, bytes);
        if let Some(c) = &mut self.current {
            c.push(bytes);
        }
    }

    fn begin(&mut self, request_id: &str) {
        self.current = Some(Capture::default());
        self.write(start_line(request_id).as_bytes());
    }

    fn close(&mut self, mut flush: Flush) {
        flush.report.max_memory_used_mb = (self.peak_memory_mb)();
        self.write(end_lines(&flush.report).as_bytes());
        let capture = self.current.take().unwrap_or_default();
        if let Some(tail) = flush.tail {
            let _ = tail.send(capture.tail());
        }
    }
}

async fn run(listener: UnixListener, mut stream: Stream, mut commands: mpsc::UnboundedReceiver<Command>) {
    let (frames_tx, mut frames) = mpsc::channel(64);
    let reader = tokio::spawn(read_frames(listener, frames_tx));
    let mut writer: Option<OwnedWriteHalf> = None;
    let mut flushing: Option<Flush> = None;
    let mut frames_open = true;
    let mut next_token = 0u64;
    loop {
        let deadline = flushing.as_ref().map_or_else(|| Instant::now() + FLUSH_WAIT, |f| f.deadline);
        tokio::select! {
            frame = frames.recv(), if frames_open => match frame {
                Some(Frame::Connected(w)) => writer = Some(w),
                Some(Frame::Data(bytes)) => stream.write(&bytes),
                Some(Frame::Flushed(token)) => {
                    if flushing.as_ref().is_some_and(|f| f.token == token) {
                        stream.close(flushing.take().expect("checked"));
                    }
                }
                None => {
                    // Init is gone: nothing more will come.
                    frames_open = false;
                    writer = None;
                    if let Some(f) = flushing.take() {
                        stream.close(f);
                    }
                }
            },
            command = commands.recv(), if flushing.is_none() => match command {
                Some(Command::Begin(request_id)) => stream.begin(&request_id),
                Some(Command::Finish { report, tail }) => {
                    next_token += 1;
                    let flush = Flush { token: next_token, report, tail, deadline: Instant::now() + FLUSH_WAIT };
                    let sent = match &mut writer {
                        Some(w) => w.write_all(&next_token.to_be_bytes()).await.is_ok(),
                        None => false,
                    };
                    if sent {
                        flushing = Some(flush);
                    } else {
                        stream.close(flush);
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline), if flushing.is_some() => {
                stream.close(flushing.take().expect("guarded"));
            }
        }
    }
    reader.abort();
}

/// Accept init's one connection and turn its bytes into frames.
async fn read_frames(listener: UnixListener, frames: mpsc::Sender<Frame>) {
    let Ok((conn, _)) = listener.accept().await else { return };
    let (read, write) = conn.into_split();
    if frames.send(Frame::Connected(write)).await.is_err() {
        return;
    }
    let mut read = BufReader::new(read);
    loop {
        let mut head = [0u8; 5];
        if read.read_exact(&mut head).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            tracing::warn!(len, "oversized log frame; dropping the log stream");
            return;
        }
        let mut payload = vec![0u8; len];
        if read.read_exact(&mut payload).await.is_err() {
            return;
        }
        let frame = match (head[0], <[u8; 8]>::try_from(payload.as_slice())) {
            (b'D', _) => Frame::Data(payload.into()),
            (b'F', Ok(token)) => Frame::Flushed(u64::from_be_bytes(token)),
            (tag, _) => {
                tracing::warn!(tag, "unknown log frame; dropping the log stream");
                return;
            }
        };
        if frames.send(frame).await.is_err() {
            return;
        }
    }
}
