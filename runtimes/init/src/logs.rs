//! Carries the bootstrap's standard output and error to the controller.
//!
//! Lambda attributes every line a function prints to the invocation it was
//! printed in, and `LogType: Tail` returns those lines with the response. So
//! the controller must know, when a response arrives, that it has every byte
//! the function wrote before it. Docker's log stream cannot promise that; a
//! pipe we own can: the bootstrap's stdout and stderr both go into one pipe
//! (keeping their relative order), this thread forwards what it reads over
//! `logs.sock`, and when the controller sends a *flush token* it drains the
//! pipe and echoes the token. Every byte written before the runtime posted
//! its response was in the pipe by then, so it reaches the controller before
//! the echo.
//!
//! Wire format, init → controller: frames of one tag byte, a big-endian u32
//! length and the payload: `D` (log bytes) or `F` (an echoed 8-byte token).
//! Controller → init: bare 8-byte tokens.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

const DATA: u8 = b'D';
const FLUSHED: u8 = b'F';
const TOKEN_LEN: usize = 8;
/// Largest `D` frame; also the read size.
const CHUNK: usize = 64 * 1024;

/// The write end for the bootstrap's stdout and stderr, and a receiver that
/// fires once everything written to it has been forwarded (all writers gone).
pub struct LogPipe {
    pub write: OwnedFd,
    pub drained: mpsc::Receiver<()>,
}

/// Connect to the controller's log socket and start forwarding. `None` when
/// it cannot be reached: the bootstrap then inherits our own stdout/stderr,
/// which Docker keeps.
pub fn start(socket: &Path) -> Option<LogPipe> {
    let stream = UnixStream::connect(socket).ok()?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    // SAFETY: both descriptors were just created and are owned here alone.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own. Non-blocking so a flush can drain
    // the pipe without waiting for more.
    unsafe { libc::fcntl(read.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let (done, drained) = mpsc::channel();
    thread::spawn(move || {
        if let Err(e) = pump(File::from(read), stream, &done) {
            eprintln!("lambdabox-init: log stream: {e}");
        }
    });
    Some(LogPipe { write, drained })
}

/// Forward the pipe until the controller hangs up; answer flush tokens.
fn pump(mut pipe: File, mut stream: UnixStream, done: &mpsc::Sender<()>) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut tokens = Vec::with_capacity(TOKEN_LEN);
    let mut pipe_open = true;
    loop {
        let mut fds = [
            libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if pipe_open { pipe.as_raw_fd() } else { -1 }, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: `fds` is a valid array of two pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[1].revents != 0 && !drain(&mut pipe, &mut stream, &mut buf)? {
            pipe_open = false;
            let _ = done.send(());
        }
        if fds[0].revents != 0 {
            let n = stream.read(&mut buf[..TOKEN_LEN])?;
            if n == 0 {
                // The controller is gone (the container is being removed).
                return Ok(());
            }
            tokens.extend_from_slice(&buf[..n]);
            while tokens.len() >= TOKEN_LEN {
                let token: Vec<u8> = tokens.drain(..TOKEN_LEN).collect();
                if pipe_open && !drain(&mut pipe, &mut stream, &mut buf)? {
                    pipe_open = false;
                    let _ = done.send(());
                }
                frame(&mut stream, FLUSHED, &token)?;
            }
        }
    }
}

/// Forward everything the pipe holds now. `false` once every writer has
/// closed it.
fn drain(pipe: &mut File, stream: &mut UnixStream, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        match pipe.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => frame(stream, DATA, &buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn frame(stream: &mut UnixStream, tag: u8, payload: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(tag);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    stream.write_all(&out)
}
