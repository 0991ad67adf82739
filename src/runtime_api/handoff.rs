//! The controller's end of lambdabox-init's handoff socket: descriptors in,
//! each tagged with what it is (see `runtimes/init/src/handoff.rs`).
//!
//! The socket is reachable from inside the container, so what arrives is
//! checked: a connection must be a stream socket, and the log pipe is
//! checked by the log itself.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// Tag of the log pipe's read end.
const LOG_PIPE: u8 = b'L';
/// Tag of an accepted runtime connection.
const CONNECTION: u8 = b'C';

/// One descriptor from init.
#[derive(Debug)]
pub enum Handed {
    /// The read end of the bootstrap's stdout/stderr pipe.
    LogPipe(OwnedFd),
    /// A connection the runtime opened to the Runtime API.
    Connection(TcpStream),
}

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("handoff socket: {0}")]
    Io(#[from] io::Error),
    #[error("handoff message tagged {tag:#04x} carried no descriptor")]
    NoDescriptor { tag: u8 },
    #[error("handoff message with unknown tag {0:#04x}")]
    UnknownTag(u8),
    #[error("handed-over connection is not a stream socket")]
    NotAStream,
}

/// The next descriptor on `stream`, or `None` once init hangs up.
pub async fn receive(stream: &UnixStream) -> Result<Option<Handed>, HandoffError> {
    let (tag, fd) = loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || receive_raw(stream.as_raw_fd())) {
            Ok(Some(message)) => break message,
            Ok(None) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let fd = fd.ok_or(HandoffError::NoDescriptor { tag })?;
    match tag {
        LOG_PIPE => Ok(Some(Handed::LogPipe(fd))),
        CONNECTION => Ok(Some(Handed::Connection(connection(fd)?))),
        other => Err(HandoffError::UnknownTag(other)),
    }
}

/// A handed-over descriptor as a tokio TCP stream, once it is known to be a
/// stream socket (the runtime's end of 127.0.0.1:9001 in the container).
fn connection(fd: OwnedFd) -> Result<TcpStream, HandoffError> {
    let mut kind: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int of the length given.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 || kind != libc::SOCK_STREAM {
        return Err(HandoffError::NotAStream);
    }
    let std = std::net::TcpStream::from(fd);
    std.set_nonblocking(true)?;
    Ok(TcpStream::from_std(std)?)
}

/// One `recvmsg`: the tag byte and the descriptor it carried, if any.
/// `Ok(None)` at end of stream. Extra descriptors are closed.
fn receive_raw(socket: RawFd) -> io::Result<Option<(u8, Option<OwnedFd>)>> {
    let mut tag = [0u8; 1];
    let mut iov = libc::iovec { iov_base: tag.as_mut_ptr().cast(), iov_len: 1 };
    // Room for a few descriptors, so a sender attaching more cannot make
    // us lose track of (and leak) them.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; every pointer set outlives the
    // call; the CMSG_* walk stays within the control length the kernel set.
    unsafe {
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&control) as _;
        let n = libc::recvmsg(socket, &mut msg, libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        let mut fds = fds.into_iter();
        Ok(Some((tag[0], fds.next())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send like init does: one tag byte, one descriptor.
    fn send(socket: &std::os::unix::net::UnixStream, tag: u8, fd: RawFd) {
        let mut byte = [tag];
        let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
        let mut control = [0u64; 4];
        // SAFETY: as in init: a zeroed msghdr with pointers that outlive the call.
        unsafe {
            let mut msg: libc::msghdr = mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
            assert_eq!(libc::sendmsg(socket.as_raw_fd(), &msg, 0), 1);
        }
    }

    #[tokio::test]
    async fn descriptors_arrive_tagged_and_checked() {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let ours = UnixStream::from_std(ours).unwrap();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let file = tempfile::tempfile().unwrap();
        send(&theirs, CONNECTION, client.as_raw_fd());
        send(&theirs, CONNECTION, file.as_raw_fd());
        send(&theirs, LOG_PIPE, file.as_raw_fd());
        send(&theirs, b'?', file.as_raw_fd());
        drop(theirs);

        assert!(matches!(receive(&ours).await, Ok(Some(Handed::Connection(_)))));
        assert!(matches!(receive(&ours).await, Err(HandoffError::NotAStream)));
        assert!(matches!(receive(&ours).await, Ok(Some(Handed::LogPipe(_)))));
        assert!(matches!(receive(&ours).await, Err(HandoffError::UnknownTag(b'?'))));
        assert!(matches!(receive(&ours).await, Ok(None)));
    }
}
