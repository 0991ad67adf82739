//! One container's session: the frames its init sends, demultiplexed.
//!
//! Each stream (a runtime connection inside the container) becomes an
//! in-memory duplex that the Runtime API's HTTP server
//! ([`crate::runtime_api::serve_connection`]) serves like a socket. One
//! task reads frames in order and never waits on a stream: data goes to
//! the stream's task through a queue that the window bounds (init may not
//! send more than [`WINDOW`] bytes we have not passed on), and credit goes
//! back as the HTTP server takes the bytes. Log frames are fed to the
//! container's log as they are read, so output printed before a response
//! is in the log before the response's first byte reaches the server.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambdabox_protocol::mux::{CodeRef, Frame, Header, Kind, HEADER_LEN, MAX_DATA, WINDOW};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::Io;
use crate::logs::ContainerLog;
use crate::runtime_api::{self, ExitReason, Mailbox, MAX_CONNECTIONS};

/// Frames waiting for the connection, at most.
const OUTBOX: usize = 64;
/// How long init's SIGKILL report waits for the backend's verdict (the
/// OOM killer, or not) once the connection is gone.
const VERDICT_WAIT: Duration = Duration::from_secs(3);

/// What a session feeds.
#[derive(Debug, Clone)]
pub struct Parts {
    pub mailbox: Arc<Mailbox>,
    pub log: Arc<ContainerLog>,
    pub peak: Arc<AtomicU64>,
    /// The code a generic container is told to fetch with its specialization.
    pub code: Arc<Mutex<Vec<CodeRef>>>,
}

/// Why a session ended other than by init hanging up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    #[error("init broke the protocol: {0}")]
    Protocol(String),
}

/// One frame from an async stream; `None` at a clean end between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut head = [0u8; HEADER_LEN];
    if r.read(&mut head[..1]).await? == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[1..]).await?;
    let header = Header::decode(head)?;
    let mut payload = vec![0u8; header.len];
    r.read_exact(&mut payload).await?;
    Ok(Some(Frame::decode(header, payload)?))
}

/// A frame's bytes, for the outbox.
fn frame(kind: Kind, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Header::encode(kind, stream, payload.len()).to_vec();
    f.extend_from_slice(payload);
    f
}

/// A stream as the reading task sees it.
struct Inbound {
    tx: mpsc::UnboundedSender<Option<Vec<u8>>>,
    received: u64,
    /// Bytes handed to the HTTP server so far.
    passed: Arc<AtomicU64>,
    /// Bytes we may still send init.
    credit: Arc<Semaphore>,
}

/// Serve a session until init hangs up or breaks the protocol.
pub async fn run(conn: Box<dyn Io>, app: axum::Router, parts: Parts) {
    let (read, mut write) = tokio::io::split(conn);
    let (outbox, mut out) = mpsc::channel::<Vec<u8>>(OUTBOX);
    let mut tasks = JoinSet::new();
    tasks.spawn(async move {
        while let Some(f) = out.recv().await {
            if write.write_all(&f).await.is_err() {
                return;
            }
            // A socket writes through; TLS may hold the last record back
            // until flushed (a no-op on a socket).
            if out.is_empty() && write.flush().await.is_err() {
                return;
            }
        }
    });
    tasks.spawn(specialize(parts.clone(), outbox.clone()));
    let mut streams = JoinSet::new();
    let result = read_loop(BufReader::with_capacity(2 * MAX_DATA, read), &app, &parts, &outbox, &mut streams).await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "closing a remote container's session");
    }
}

/// Wait for a generic container's specialization; send its code list, then it.
async fn specialize(parts: Parts, outbox: mpsc::Sender<Vec<u8>>) {
    let Some(message) = parts.mailbox.specialization().await else { return };
    let refs = parts.code.lock().expect("registration poisoned").clone();
    let code = Frame::Code(refs).encode().unwrap_or_else(|_| frame(Kind::Code, 0, &[]));
    // The local message is tag, length, payload: the frame carries the payload.
    let spec = frame(Kind::Specialize, 0, message.get(5..).unwrap_or_default());
    if outbox.send(code).await.is_err() || outbox.send(spec).await.is_err() {
        tracing::warn!("could not send a specialization");
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut read: R,
    app: &axum::Router,
    parts: &Parts,
    outbox: &mpsc::Sender<Vec<u8>>,
    streams: &mut JoinSet<()>,
) -> Result<(), SessionError> {
    let mut open: HashMap<u32, Inbound> = HashMap::new();
    let violation = |what: String| Err(SessionError::Protocol(what));
    while let Some(f) = read_frame(&mut read).await? {
        while streams.try_join_next().is_some() {}
        match f {
            Frame::Open(id) => {
                if open.contains_key(&id) || open.len() >= MAX_CONNECTIONS {
                    let _ = outbox.send(frame(Kind::Close, id, &[])).await;
                    continue;
                }
                open.insert(id, open_stream(id, app, outbox, streams));
            }
            Frame::Data(id, bytes) => {
                let Some(s) = open.get_mut(&id) else { continue };
                s.received += bytes.len() as u64;
                if s.received > s.passed.load(Ordering::Acquire) + u64::from(WINDOW) {
                    return violation(format!("stream {id}: data past the window"));
                }
                let _ = s.tx.send(Some(bytes));
            }
            Frame::Close(id) => {
                if let Some(s) = open.remove(&id) {
                    s.credit.close();
                    let _ = s.tx.send(None);
                }
            }
            Frame::Window(id, n) => {
                let Some(s) = open.get(&id) else { continue };
                if s.credit.available_permits() as u64 + u64::from(n) > u64::from(WINDOW) {
                    return violation(format!("stream {id}: credit past the window"));
                }
                s.credit.add_permits(n as usize);
            }
            Frame::Log(bytes) => parts.log.feed(&bytes),
            Frame::Peak(bytes) => parts.peak.store(bytes, Ordering::Release),
            Frame::Exit(exit) => runtime_api::note_exit(&parts.mailbox, exit),
            Frame::NotStarted(why) => parts.mailbox.not_started(why),
            other => return violation(format!("{other:?}").chars().take(80).collect()),
        }
    }
    Ok(())
}

/// A stream's duplex, served by the Runtime API, and its pump.
fn open_stream(id: u32, app: &axum::Router, outbox: &mpsc::Sender<Vec<u8>>, streams: &mut JoinSet<()>) -> Inbound {
    let (ours, server) = tokio::io::duplex(MAX_DATA);
    streams.spawn(runtime_api::serve_connection(server, app.clone()));
    let (tx, rx) = mpsc::unbounded_channel();
    let passed = Arc::new(AtomicU64::new(0));
    let credit = Arc::new(Semaphore::new(WINDOW as usize));
    streams.spawn(pump(id, ours, rx, outbox.clone(), passed.clone(), credit.clone()));
    Inbound { tx, received: 0, passed, credit }
}

/// Move one stream's bytes: init's to the server (credit back as they go
/// in), the server's to init (against init's credit), until both ends close.
async fn pump(
    id: u32,
    io: tokio::io::DuplexStream,
    mut inbound: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    outbox: mpsc::Sender<Vec<u8>>,
    passed: Arc<AtomicU64>,
    credit: Arc<Semaphore>,
) {
    let (mut from_server, mut to_server) = tokio::io::split(io);
    let down = async {
        while let Some(Some(bytes)) = inbound.recv().await {
            if to_server.write_all(&bytes).await.is_err() {
                break;
            }
            passed.fetch_add(bytes.len() as u64, Ordering::AcqRel);
            let _ = outbox.send(frame(Kind::Window, id, &(bytes.len() as u32).to_be_bytes())).await;
        }
        let _ = to_server.shutdown().await;
    };
    let up = async {
        let mut buf = vec![0u8; MAX_DATA];
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let Ok(permits) = credit.acquire_many(n as u32).await else { break };
            permits.forget();
            if outbox.send(frame(Kind::Data, id, &buf[..n])).await.is_err() {
                break;
            }
        }
        let _ = outbox.send(frame(Kind::Close, id, &[])).await;
    };
    tokio::join!(down, up);
}

/// The session is over: the container is dead unless init already said
/// how. A SIGKILL it reported may be the OOM killer's, which only the
/// backend can tell: its verdict gets a moment first.
pub async fn lost(mailbox: &Mailbox) {
    if mailbox.noted_exit().is_some() {
        tokio::time::sleep(VERDICT_WAIT).await;
        if let Some(reason) = mailbox.noted_exit() {
            mailbox.exited(reason);
        }
        return;
    }
    mailbox.exited(ExitReason::ConnectionLost);
}
