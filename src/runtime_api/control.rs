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

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;

use lambdabox_protocol::{tag, DecodeError, Exit, MAX_NOT_STARTED, RUNTIME_API_PORT};
use rustix::net::{
    ipproto, recvmsg, sockopt, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketType,
};
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
    /// The bootstrap could not be started; Lambda's words for why.
    NotStarted(String),
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
            receive_exact(stream, &mut body, tag::EXIT).await?;
            Ok(Some(Message::Exit(Exit::decode(body)?)))
        }
        (tag::NOT_STARTED, None) => {
            let mut len = [0u8; 2];
            receive_exact(stream, &mut len, tag::NOT_STARTED).await?;
            let len = usize::from(u16::from_be_bytes(len));
            if len > MAX_NOT_STARTED {
                return Err(DecodeError::TooLarge(len).into());
            }
            let mut text = vec![0u8; len];
            receive_exact(stream, &mut text, tag::NOT_STARTED).await?;
            Ok(Some(Message::NotStarted(String::from_utf8_lossy(&text).into_owned())))
        }
        (t @ (tag::EXIT | tag::NOT_STARTED), Some(_)) => Err(ControlError::UnexpectedDescriptor { tag: t }),
        (other, _) => Err(ControlError::UnknownTag(other)),
    }
}

/// Fill `body` with the bytes that follow a `tag` message, which carry no
/// descriptor.
async fn receive_exact(stream: &UnixStream, body: &mut [u8], tag: u8) -> Result<(), ControlError> {
    let mut filled = 0;
    while filled < body.len() {
        match receive_raw(stream, body.len() - filled).await? {
            Some((bytes, None)) => {
                body[filled..filled + bytes.len()].copy_from_slice(&bytes);
                filled += bytes.len();
            }
            Some((_, Some(_))) => return Err(ControlError::UnexpectedDescriptor { tag }),
            None => return Err(ControlError::Truncated),
        }
    }
    Ok(())
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
    let domain = sockopt::socket_domain(&fd).ok();
    let kind = sockopt::socket_type(&fd).ok();
    let protocol = sockopt::socket_protocol(&fd).ok().flatten();
    if domain != Some(AddressFamily::INET) || kind != Some(SocketType::STREAM) || protocol != Some(ipproto::TCP) {
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

/// Up to `max` bytes and the first descriptor that came with them, waiting
/// until something arrives; `None` at end of stream.
async fn receive_raw(stream: &UnixStream, max: usize) -> Result<Option<(Vec<u8>, Option<OwnedFd>)>, ControlError> {
    loop {
        stream.readable().await?;
        match stream.try_io(Interest::READABLE, || receive_once(stream, max)) {
            Ok(got) => return Ok(got),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `recvmsg` of at most `max` bytes. Extra descriptors are closed; a
/// message stops at the first descriptor-carrying byte, so a descriptor
/// always belongs to the tag it came with.
fn receive_once(socket: &UnixStream, max: usize) -> io::Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; max];
    // Room for a few descriptors, so a sender attaching more cannot make
    // us lose track of (and leak) them: the kernel would close the excess
    // it could not deliver, and everything delivered is owned below.
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received =
        recvmsg(socket, &mut [IoSliceMut::new(&mut buf)], &mut control, RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT)?;
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(passed) = message {
            fds.extend(passed);
        }
    }
    if received.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    buf.truncate(received.bytes);
    Ok(Some((buf, fds.into_iter().next())))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

    /// Send like init does: one tag byte, one descriptor.
    fn send_fd(socket: &std::os::unix::net::UnixStream, tag: u8, fd: RawFd) {
        use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
        // SAFETY: every caller passes a descriptor it keeps open for the call.
        let fds = [unsafe { BorrowedFd::borrow_raw(fd) }];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        let sent = sendmsg(socket.as_fd(), &[io::IoSlice::new(&[tag])], &mut control, SendFlags::empty());
        assert_eq!(sent.unwrap(), 1);
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
        theirs.write_all(&lambdabox_protocol::not_started("fork/exec /x: permission denied")).unwrap();
        // An over-long length is refused before anything is read into it.
        theirs.write_all(&[tag::NOT_STARTED, 0xff, 0xff]).unwrap();
        drop(theirs);
        assert!(matches!(receive(&ours).await, Ok(Some(Message::LogPipe(_)))));
        assert!(matches!(receive(&ours).await, Ok(Some(Message::Exit(Exit::Signal(9))))));
        match receive(&ours).await {
            Ok(Some(Message::NotStarted(why))) => assert_eq!(why, "fork/exec /x: permission denied"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(receive(&ours).await, Err(ControlError::Malformed(DecodeError::TooLarge(65535)))));
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
