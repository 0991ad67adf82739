//! init's end of the control channel (see the `lambdabox-protocol` crate):
//! descriptors and the exit report out, a generic container's
//! specialization in.
//!
//! Descriptors are duplicates: once sent, init closes its own copy. Sends
//! come from two threads (the accept loop and the supervisor), so each
//! message goes out whole under one lock.

use std::io::{self, Read, Write};
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;

use lambdabox_protocol::{tag, Exit, Specialization};

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
    pub fn send_fd(&self, tag: u8, fd: RawFd) -> io::Result<()> {
        let _one_at_a_time = self.sending.lock().unwrap_or_else(|e| e.into_inner());
        let mut byte = [tag];
        let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
        // SAFETY: CMSG_SPACE only computes a size.
        let space = unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) } as usize;
        let mut control = vec![0u8; space];
        // SAFETY: an all-zero msghdr is valid; the pointers set below outlive
        // the sendmsg call, and CMSG_FIRSTHDR of a buffer of CMSG_SPACE bytes
        // is non-null and has room for one descriptor.
        unsafe {
            let mut msg: libc::msghdr = mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
            loop {
                if libc::sendmsg(self.stream.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) == 1 {
                    return Ok(());
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
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
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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
        if let Err(e) = control.send_fd(tag::CONNECTION, tcp.as_raw_fd()) {
            eprintln!("lambdabox-init: handing a runtime connection to the controller: {e}");
        }
    }
}
