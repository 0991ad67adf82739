//! init's end of the remote transport (the protocol crate's `mux`): one
//! connection init dials out, carrying the runtime's connections as
//! streams, the log, peak memory, the exit report and a generic
//! container's specialization.
//!
//! Threads, since init is plain std: one reads the controller's frames, one
//! reads the log pipe, two per runtime connection (runtime → controller,
//! controller → runtime). Frames go out whole under one lock. Each stream
//! holds at most [`WINDOW`] bytes from the controller that the runtime has
//! not read yet; it sends only against the controller's credit.
//!
//! The connection is the container's life: if it breaks, init kills the
//! bootstrap and exits, and the container ends.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use lambdabox_protocol::mux::{read_frame, Frame, Header, Kind, Purpose, MAX_DATA, WINDOW};
use lambdabox_protocol::{Exit, Specialization};

use crate::link::{Identity, Link};

/// Runtime connections relayed at once; more are closed (the controller
/// refuses them too).
const MAX_STREAMS: usize = 8;
/// Where the container's own cgroup reports its peak memory: v2, then v1.
const PEAK_FILES: [&str; 2] = ["/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"];

/// The bootstrap's pid once started, for [`Session::lost`].
pub static BOOTSTRAP: AtomicI32 = AtomicI32::new(0);

/// What a generic container is told: code to fetch, then what to run.
#[derive(Debug)]
pub enum Order {
    Code(Vec<lambdabox_protocol::mux::CodeRef>),
    Specialize(Specialization),
}

/// The session with the controller.
pub struct Session {
    pub identity: Identity,
    writer: Mutex<Link>,
    streams: Mutex<HashMap<u32, Arc<Stream>>>,
    next_stream: AtomicU32,
    /// The log pipe's read end (non-blocking), once there is one. Held
    /// while reading *and* sending, so output goes out in pipe order.
    log: Mutex<Option<OwnedFd>>,
    last_peak: AtomicU64,
    orders: Mutex<Option<Receiver<Order>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.identity.id).finish_non_exhaustive()
    }
}

/// One relayed runtime connection.
struct Stream {
    id: u32,
    tcp: TcpStream,
    /// Bytes we may still send.
    credit: Mutex<u32>,
    credit_given: Condvar,
    /// From the controller, for the runtime; `None` marks the stream's end.
    inbound: Mutex<(VecDeque<Option<Vec<u8>>>, usize)>,
    inbound_ready: Condvar,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    /// Dial the controller and say hello; the reader thread starts with it.
    pub fn open(identity: Identity) -> io::Result<Arc<Session>> {
        let link = identity.dial(Purpose::Session)?;
        let reader = link.try_clone()?;
        let (orders, receiver) = mpsc::channel();
        let session = Arc::new(Session {
            identity,
            writer: Mutex::new(link),
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU32::new(1),
            log: Mutex::new(None),
            last_peak: AtomicU64::new(0),
            orders: Mutex::new(Some(receiver)),
        });
        let s = session.clone();
        thread::spawn(move || s.read_loop(reader, orders));
        Ok(session)
    }

    /// Wait for the controller to say what this generic container runs,
    /// fetching the code it names first.
    pub fn wait_specialization(&self) -> Result<Specialization, String> {
        let orders = lock(&self.orders).take().ok_or("already specialized")?;
        loop {
            match orders.recv() {
                Ok(Order::Code(refs)) => crate::fetch::fetch_all(&self.identity, &refs)?,
                Ok(Order::Specialize(s)) => return Ok(s),
                Err(_) => return Err("the controller went away".into()),
            }
        }
    }

    /// The bootstrap's output pipe: we read it and send it on.
    pub fn take_log_pipe(self: &Arc<Self>, read: OwnedFd) -> io::Result<()> {
        rustix::io::ioctl_fionbio(&read, true)?;
        let raw = read.as_raw_fd();
        *lock(&self.log) = Some(read);
        let s = self.clone();
        thread::spawn(move || loop {
            let mut poll = libc::pollfd { fd: raw, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd; `raw` stays open while `log` holds it
            // (and a closed fd only makes poll report POLLNVAL).
            let ready = unsafe { libc::poll(&mut poll, 1, -1) };
            if ready < 0 || poll.revents & libc::POLLNVAL != 0 || !s.drain_log() {
                return;
            }
        });
        Ok(())
    }

    /// Send what the log pipe holds now. `false` once it is gone.
    fn drain_log(&self) -> bool {
        let mut log = lock(&self.log);
        let Some(fd) = log.as_ref() else { return false };
        let mut buf = vec![0u8; MAX_DATA];
        loop {
            match rustix::io::read(fd, &mut buf[..]) {
                Ok(0) => {
                    *log = None;
                    return false;
                }
                Ok(n) => self.send(Kind::Log, 0, &buf[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return true,
                Err(_) => {
                    *log = None;
                    return false;
                }
            }
        }
    }

    /// Before any byte from the runtime goes out: the output printed
    /// before it, and the peak memory if it grew.
    fn before_runtime_bytes(&self) {
        self.drain_log();
        let peak = PEAK_FILES.iter().find_map(|f| fs::read_to_string(f).ok()?.trim().parse::<u64>().ok());
        if let Some(peak) = peak {
            if self.last_peak.fetch_max(peak, Ordering::AcqRel) < peak {
                self.send(Kind::Peak, 0, &peak.to_be_bytes());
            }
        }
    }

    /// The last word before init ends: it must arrive.
    pub fn send_exit(&self, exit: Exit) {
        self.drain_log();
        self.send(Kind::Exit, 0, &exit.encode()[1..]);
        lock(&self.writer).finish();
    }

    /// The last word before init ends: it must arrive.
    pub fn send_not_started(&self, why: &str) {
        self.drain_log();
        self.send(Kind::NotStarted, 0, &lambdabox_protocol::not_started(why)[3..]);
        lock(&self.writer).finish();
    }

    /// One frame out, whole. A connection that cannot take it is lost.
    fn send(&self, kind: Kind, stream: u32, payload: &[u8]) {
        let mut frame = Header::encode(kind, stream, payload.len()).to_vec();
        frame.extend_from_slice(payload);
        if lock(&self.writer).write_all(&frame).is_err() {
            self.lost("the connection to the controller broke");
        }
    }

    /// The connection is gone: so is the container.
    fn lost(&self, why: &str) -> ! {
        eprintln!("lambdabox-init: {why}; stopping");
        let pid = BOOTSTRAP.load(Ordering::Acquire);
        if pid > 0 {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::process::exit(1)
    }

    /// Frames from the controller, until the connection ends (then the
    /// container does).
    fn read_loop(&self, mut link: Link, orders: Sender<Order>) {
        loop {
            let frame = match read_frame(&mut link) {
                Ok(Some(f)) => f,
                Ok(None) => self.lost("the controller closed the connection"),
                Err(e) => self.lost(&format!("reading from the controller: {e}")),
            };
            match frame {
                Frame::Data(id, bytes) => self.inbound(id, Some(bytes)),
                Frame::Close(id) => self.inbound(id, None),
                Frame::Window(id, n) => {
                    let Some(stream) = lock(&self.streams).get(&id).cloned() else { continue };
                    let mut credit = lock(&stream.credit);
                    match credit.checked_add(n).filter(|c| *c <= WINDOW) {
                        Some(c) => *credit = c,
                        None => self.lost("the controller gave credit past the window"),
                    }
                    stream.credit_given.notify_all();
                }
                Frame::Code(refs) => {
                    let _ = orders.send(Order::Code(refs));
                }
                Frame::Specialize(s) => {
                    let _ = orders.send(Order::Specialize(s));
                }
                other => self.lost(&format!("the controller sent {:?}", kind_of(&other))),
            }
        }
    }

    /// Queue bytes (or the end) for a stream's runtime side.
    fn inbound(&self, id: u32, bytes: Option<Vec<u8>>) {
        let Some(stream) = lock(&self.streams).get(&id).cloned() else { return };
        let mut queue = lock(&stream.inbound);
        if let Some(b) = &bytes {
            queue.1 += b.len();
            if queue.1 > WINDOW as usize {
                drop(queue);
                self.lost("the controller sent past its window");
            }
        }
        queue.0.push_back(bytes);
        stream.inbound_ready.notify_all();
    }

    /// Relay every runtime connection accepted on `listener`.
    pub fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let _ = tcp.set_nodelay(true);
            if lock(&self.streams).len() >= MAX_STREAMS {
                continue;
            }
            let (Ok(up), Ok(down)) = (tcp.try_clone(), tcp.try_clone()) else { continue };
            let id = self.next_stream.fetch_add(2, Ordering::AcqRel);
            let stream = Arc::new(Stream {
                id,
                tcp,
                credit: Mutex::new(WINDOW),
                credit_given: Condvar::new(),
                inbound: Mutex::new((VecDeque::new(), 0)),
                inbound_ready: Condvar::new(),
                closed: AtomicBool::new(false),
            });
            lock(&self.streams).insert(id, stream.clone());
            self.send(Kind::Open, id, &[]);
            let (s, st) = (self.clone(), stream.clone());
            thread::spawn(move || s.relay_up(&st, up));
            let s = self.clone();
            thread::spawn(move || s.relay_down(&stream, down));
        }
    }

    /// Runtime → controller, against credit; output first.
    fn relay_up(&self, stream: &Stream, mut tcp: TcpStream) {
        let mut buf = vec![0u8; MAX_DATA];
        loop {
            let n = match tcp.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.before_runtime_bytes();
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let mut credit = lock(&stream.credit);
                while *credit == 0 && !stream.closed.load(Ordering::Acquire) {
                    credit = stream.credit_given.wait(credit).unwrap_or_else(|e| e.into_inner());
                }
                if stream.closed.load(Ordering::Acquire) {
                    return;
                }
                let take = rest.len().min(*credit as usize);
                *credit -= take as u32;
                drop(credit);
                self.send(Kind::Data, stream.id, &rest[..take]);
                rest = &rest[take..];
            }
        }
        self.close(stream);
    }

    /// Controller → runtime; credit returned as the runtime takes bytes.
    fn relay_down(&self, stream: &Stream, mut tcp: TcpStream) {
        loop {
            let item = {
                let mut queue = lock(&stream.inbound);
                loop {
                    if let Some(item) = queue.0.pop_front() {
                        break item;
                    }
                    queue = stream.inbound_ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(bytes) = item else { break };
            if tcp.write_all(&bytes).is_err() {
                break;
            }
            lock(&stream.inbound).1 -= bytes.len();
            self.send(Kind::Window, stream.id, &(bytes.len() as u32).to_be_bytes());
        }
        self.close(stream);
    }

    /// End a stream once, from whichever side ended first.
    fn close(&self, stream: &Stream) {
        if stream.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = stream.tcp.shutdown(Shutdown::Both);
        lock(&stream.inbound).0.push_back(None);
        stream.inbound_ready.notify_all();
        stream.credit_given.notify_all();
        lock(&self.streams).remove(&stream.id);
        self.send(Kind::Close, stream.id, &[]);
    }
}

fn kind_of(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello(_) => "a hello",
        Frame::Open(_) => "an open",
        Frame::Log(_) | Frame::Peak(_) | Frame::Exit(_) | Frame::NotStarted(_) => "a frame only init sends",
        _ => "a frame out of place",
    }
}
