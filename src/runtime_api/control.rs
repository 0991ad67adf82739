//! The controller's end of a container's control channel (the wire is the
//! `lambdabox-protocol` crate): descriptors and the exit report in, a
//! generic container's specialization out.
//!
//! Only lambdabox-init can reach the control socket (a 0700 folder, and the
//! listener closes after its one connection), but init shares a container
//! with hostile code, so what arrives is still checked as if anyone had sent
//! it: a connection must be a TCP socket connected to the container's own
//! Runtime API address, the log pipe must be a FIFO (checked by the log),
//! and anything else ends the channel.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use lambdabox_protocol::{tag, DecodeError, Exit, RUNTIME_API_PORT};
use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// One message from init.
#[derive(Debug)]
pub enum Message {
    /// The read end of the bootstrap's stdout/stderr pipe.
    LogPipe(OwnedFd),
    /// A connection the runtime opened to the Runtime API.
    Connection(TcpStream),
    /// How the bootstrap ended.
    Exit(Exit),
}

/// Why the channel was closed; every variant but `Io` means init sent what
/// it never sends.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    #[error("message tagged {tag:#04x} carried no descriptor")]
    NoDescriptor { tag: u8 },
    #[error("message tagged {tag:#04x} carried a descriptor it should not")]
    UnexpectedDescriptor { tag: u8 },
    #[error("message with unknown tag {0:#04x}")]
    UnknownTag(u8),
    #[error("handed-over connection is not TCP to the Runtime API's own address ({0})")]
    NotTheRuntimeApi(String),
    #[error("malformed message: {0}")]
    Malformed(#[from] DecodeError),
    #[error("the channel closed inside a message")]
    Truncated,
}

/// The next message on `stream`, or `None` once init hangs up.
pub async fn receive(stream: &UnixStream) -> Result<Option<Message>, ControlError> {
    let Some((tag, fd)) = receive_raw(stream, 1).await? else { return Ok(None) };
    match (tag[0], fd) {
        (tag::LOG_PIPE, Some(fd)) => Ok(Some(Message::LogPipe(fd))),
        (tag::CONNECTION, Some(fd)) => Ok(Some(Message::Connection(runtime_connection(fd)?))),
        (t @ (tag::LOG_PIPE | tag::CONNECTION), None) => Err(ControlError::NoDescriptor { tag: t }),
        (tag::EXIT, None) => {
            let mut body = [0u8; Exit::LEN];
            let mut filled = 0;
            while filled < body.len() {
                match receive_raw(stream, body.len() - filled).await? {
                    Some((bytes, None)) => {
                        body[filled..filled + bytes.len()].copy_from_slice(&bytes);
                        filled += bytes.len();
                    }
                    Some((_, Some(_))) => return Err(ControlError::UnexpectedDescriptor { tag: tag::EXIT }),
                    None => return Err(ControlError::Truncated),
                }
            }
            Ok(Some(Message::Exit(Exit::decode(body)?)))
        }
        (t @ tag::EXIT, Some(_)) => Err(ControlError::UnexpectedDescriptor { tag: t }),
        (other, _) => Err(ControlError::UnknownTag(other)),
    }
}

/// Write all of `bytes` (a specialization) to init.
pub async fn send(stream: &UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A handed-over descriptor as a tokio TCP stream, once it is known to be
/// what init accepts: a TCP socket whose local end is the Runtime API's
/// address and whose peer is on the container's loopback. Anything a
/// function could make itself (a socketpair, a pipe, a socket to elsewhere)
/// fails here.
fn runtime_connection(fd: OwnedFd) -> Result<TcpStream, ControlError> {
    let int_option = |name| socket_int(&fd, name);
    let (domain, kind, protocol) =
        (int_option(libc::SO_DOMAIN), int_option(libc::SO_TYPE), int_option(libc::SO_PROTOCOL));
    if domain != Some(libc::AF_INET) || kind != Some(libc::SOCK_STREAM) || protocol != Some(libc::IPPROTO_TCP) {
        return Err(ControlError::NotTheRuntimeApi(format!("domain {domain:?}, type {kind:?}, protocol {protocol:?}")));
    }
    let std = std::net::TcpStream::from(fd);
    let (local, peer) = (std.local_addr().ok(), std.peer_addr().ok());
    let api = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), RUNTIME_API_PORT);
    if local != Some(api) || !peer.is_some_and(|p| p.ip().is_loopback()) {
        return Err(ControlError::NotTheRuntimeApi(format!("local {local:?}, peer {peer:?}")));
    }
    std.set_nonblocking(true)?;
    Ok(TcpStream::from_std(std)?)
}

/// An integer socket option, `None` when it cannot be read (not a socket).
fn socket_int(fd: &OwnedFd, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into an int of the length given.
    let rc = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, name, (&mut value as *mut libc::c_int).cast(), &mut len)
    };
    (rc == 0).then_some(value)
}

/// Up to `max` bytes and the first descriptor that came with them, waiting
/// until something arrives; `None` at end of stream.
async fn receive_raw(stream: &UnixStream, max: usize) -> Result<Option<(Vec<u8>, Option<OwnedFd>)>, ControlError> {
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || receive_once(stream.as_raw_fd(), max)) {
            Ok(got) => return Ok(got),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `recvmsg` of at most `max` bytes. Extra descriptors are closed; a
/// message stops at the first descriptor-carrying byte, so a descriptor
/// always belongs to the tag it came with.
fn receive_once(socket: RawFd, max: usize) -> io::Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; max];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: max };
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
        buf.truncate(n as usize);
        Ok(Some((buf, fds.into_iter().next())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send like init does: one tag byte, one descriptor.
    fn send_fd(socket: &std::os::unix::net::UnixStream, tag: u8, fd: RawFd) {
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

    fn pair() -> (UnixStream, std::os::unix::net::UnixStream) {
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        (UnixStream::from_std(ours).unwrap(), theirs)
    }

    #[tokio::test]
    async fn messages_arrive_tagged() {
        use std::io::Write;
        let (ours, mut theirs) = pair();
        let file = tempfile::tempfile().unwrap();
        send_fd(&theirs, tag::LOG_PIPE, file.as_raw_fd());
        theirs.write_all(&Exit::Signal(9).encode()).unwrap();
        drop(theirs);
        assert!(matches!(receive(&ours).await, Ok(Some(Message::LogPipe(_)))));
        assert!(matches!(receive(&ours).await, Ok(Some(Message::Exit(Exit::Signal(9))))));
        assert!(matches!(receive(&ours).await, Ok(None)));
    }

    #[tokio::test]
    async fn only_connections_to_the_runtime_api_port_are_taken() {
        let (ours, theirs) = pair();
        // A TCP connection on loopback, but not to port 9001 (which a test
        // cannot bind for itself): refused like any other socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (unix_a, _unix_b) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        for fd in [client.as_raw_fd(), unix_a.as_raw_fd(), file.as_raw_fd()] {
            send_fd(&theirs, tag::CONNECTION, fd);
            assert!(matches!(receive(&ours).await, Err(ControlError::NotTheRuntimeApi(_))));
        }
    }

    #[tokio::test]
    async fn what_init_never_sends_is_an_error() {
        use std::io::Write;
        let file = tempfile::tempfile().unwrap();
        let (ours, mut theirs) = pair();
        send_fd(&theirs, b'?', file.as_raw_fd());
        assert!(matches!(receive(&ours).await, Err(ControlError::UnknownTag(b'?'))));
        theirs.write_all(b"C").unwrap();
        assert!(matches!(receive(&ours).await, Err(ControlError::NoDescriptor { tag: b'C' })));
        send_fd(&theirs, tag::EXIT, file.as_raw_fd());
        assert!(matches!(receive(&ours).await, Err(ControlError::UnexpectedDescriptor { .. })));
        theirs.write_all(&[tag::EXIT, b'?', 0, 0, 0, 0]).unwrap();
        assert!(matches!(receive(&ours).await, Err(ControlError::Malformed(_))));
        theirs.write_all(&[tag::EXIT, b'c', 0]).unwrap();
        drop(theirs);
        assert!(matches!(receive(&ours).await, Err(ControlError::Truncated)));
    }
}
