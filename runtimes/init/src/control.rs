//! init's end of the control channel (see the `lambdabox-protocol` crate):
//! descriptors and the exit report out, a generic container's
//! specialization in.
//!
//! Descriptors are duplicates: once sent, init closes its own copy. Sends
//! come from two threads (the accept loop and the supervisor), so each
//! message goes out whole under one lock.

use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;

use lambdabox_protocol::{tag, Exit, Specialization};
use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

/// The connection to the controller, opened before anything else runs.
pub struct Control {
    stream: UnixStream,
    sending: Mutex<()>,
}

impl Control {
    pub fn connect(path: &Path) -> io::Result<Control> {
        Ok(Control { stream: UnixStream::connect(path)?, sending: Mutex::new(()) })
    }

    /// Send `fd` tagged `tag`; the caller closes its copy afterwards.
    pub fn send_fd(&self, tag: u8, fd: BorrowedFd<'_>) -> io::Result<()> {
        let _one_at_a_time = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        let fds = [fd];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io::Error::other("no room for a descriptor"));
        }
        loop {
            match sendmsg(&self.stream, &[IoSlice::new(&[tag])], &mut control, SendFlags::NOSIGNAL) {
                Ok(1) => return Ok(()),
                Ok(_) => return Err(io::Error::other("the tag byte was not sent")),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Tell the controller how the bootstrap ended, so the waiting caller
    /// gets `Runtime.ExitError` with the right status at once. Best effort:
    /// the controller also learns of the exit from the container engine.
    pub fn send_exit(&self, exit: Exit) {
        let _one_at_a_time = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        let _ = (&self.stream).write_all(&exit.encode());
    }

    /// Tell the controller the bootstrap could not be started, and why.
    pub fn send_not_started(&self, why: &str) {
        let _one_at_a_time = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        let _ = (&self.stream).write_all(&lambdabox_protocol::not_started(why));
    }

    /// Wait (as long as it takes) for the controller to say what to run.
    pub fn wait_specialization(&self) -> io::Result<Specialization> {
        let mut stream = &self.stream;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head)?;
        if head[0] != tag::SPECIALIZE {
            return Err(bad(&format!("expected a specialization, got tag {:#04x}", head[0])));
        }
        let len = Specialization::payload_len([head[1], head[2], head[3], head[4]]).map_err(|e| bad(&e.to_string()))?;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        Specialization::decode(&payload).map_err(|e| bad(&e.to_string()))
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("specialization: {what}"))
}

/// A pipe for the bootstrap's output: `(read, write)`, both close-on-exec
/// (the bootstrap gets the write end as its stdout and stderr explicitly).
pub fn log_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// Accept runtime connections forever and hand each to the controller.
/// Without a control channel (init run outside lambdabox) they are closed at
/// once, so a runtime fails fast instead of hanging.
pub fn accept_loop(listener: std::net::TcpListener, control: Option<std::sync::Arc<Control>>) {
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        let Some(control) = &control else { continue };
        // Small HTTP messages must not wait for Nagle; the option travels
        // with the socket.
        let _ = tcp.set_nodelay(true);
        if let Err(e) = control.send_fd(tag::CONNECTION, tcp.as_fd()) {
            eprintln!("lambdabox-init: handing a runtime connection to the controller: {e}");
        }
    }
}
