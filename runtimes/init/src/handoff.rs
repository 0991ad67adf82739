//! Hands file descriptors to the controller, so that it, not init, carries
//! the container's traffic.
//!
//! Two kinds of descriptor cross `LAMBDABOX_HANDOFF_SOCKET`, each as one
//! byte of tag with the descriptor attached (`SCM_RIGHTS`):
//!
//! - `L`, once, first: the read end of the pipe that holds the bootstrap's
//!   stdout and stderr. The controller reads it directly. Lambda attributes
//!   every line printed before a response to that invocation, and this pipe
//!   makes that cheap to honour: whatever the runtime wrote before it posted
//!   its response is already in the pipe when the response arrives, so one
//!   non-blocking read at that moment collects all of it.
//! - `C`, for every connection the runtime opens to `127.0.0.1:9001`: the
//!   accepted TCP socket itself. The controller then speaks HTTP with the
//!   runtime directly; nothing in the container copies bytes, and a warm
//!   invocation wakes no thread of ours.
//!
//! Descriptors are duplicates: once sent, init closes its own copy.

use std::io;
use std::mem;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Tag of the log pipe's read end.
pub const LOG_PIPE: u8 = b'L';
/// Tag of an accepted runtime connection.
pub const CONNECTION: u8 = b'C';

/// init's end of the handoff socket.
pub struct Handoff {
    stream: UnixStream,
}

impl Handoff {
    pub fn connect(path: &Path) -> io::Result<Handoff> {
        Ok(Handoff { stream: UnixStream::connect(path)? })
    }

    /// Send `fd` tagged `tag`; the caller closes its copy afterwards.
    pub fn send(&self, tag: u8, fd: RawFd) -> io::Result<()> {
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
/// Without a handoff (init run outside lambdabox) they are closed at once,
/// so a runtime fails fast instead of hanging.
pub fn accept_loop(listener: TcpListener, handoff: Option<Handoff>) {
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        let Some(handoff) = &handoff else { continue };
        // Small HTTP messages must not wait for Nagle; the option travels
        // with the socket.
        let _ = tcp.set_nodelay(true);
        if let Err(e) = handoff.send(CONNECTION, tcp.as_raw_fd()) {
            eprintln!("lambdabox-init: handing a runtime connection to the controller: {e}");
        }
    }
}
