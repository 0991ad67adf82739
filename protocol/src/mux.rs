//! The remote transport: everything between a container and the controller
//! over ONE byte stream that lambdabox-init dials out (TCP, or a unix socket),
//! for hosts that share no file system or sockets with the controller (a
//! Kubernetes node). The local transport (crate root) passes descriptors
//! instead; both carry the same exit, not-started and specialization
//! messages.
//!
//! # Frames
//!
//! Every frame is a 9-byte header, `kind u8, stream u32, length u32` (big
//! endian), then `length` bytes. Each kind has its own size limit
//! ([`Kind::max_len`]); an unknown kind, an oversized length, or a stream id
//! on a kind that has none ends the connection (the reader never allocates
//! more than a limit).
//!
//! The first frame init sends is [`Frame::Hello`]: which container (its id
//! and unguessable token, both from its environment) and what for: a
//! [`Purpose::Session`] (the container's one control connection) or a
//! [`Purpose::Fetch`] (downloading code). On a session:
//!
//! - init → controller: [`Frame::Open`] (the runtime connected to
//!   127.0.0.1:9001; a new stream id, odd numbers chosen by init),
//!   [`Frame::Data`] / [`Frame::Close`] (its bytes, its end), [`Frame::Log`]
//!   (bootstrap output), [`Frame::Peak`] (peak memory, bytes),
//!   [`Frame::Exit`], [`Frame::NotStarted`].
//! - controller → init: [`Frame::Data`] / [`Frame::Close`] on a stream,
//!   [`Frame::Code`] then [`Frame::Specialize`] for a generic container.
//! - both: [`Frame::Window`], flow control. Each side may have at most
//!   [`WINDOW`] bytes of a stream's data in flight: it sends [`Frame::Data`]
//!   only against credit, which starts at [`WINDOW`] and comes back in
//!   `Window` frames as the receiver hands bytes on. A slow reader on one
//!   side thus never makes the other buffer more than a window per stream,
//!   and one stalled stream never blocks the others. Credit past [`WINDOW`],
//!   or data past the credit, ends the connection.
//!
//! Ordering carries a guarantee: init sends [`Frame::Log`] with everything
//! the log pipe holds *before* relaying any byte the runtime writes, so by
//! the time the controller reads a response, it has the output printed
//! before it (as the local transport's pipe drain gives).
//!
//! On a fetch connection, init sends [`Frame::Fetch`] (a digest); the
//! controller answers [`Frame::Chunk`]s of that archive ([`crate::archive`])
//! and [`Frame::End`], or closes the connection if the digest is not one
//! this container may fetch.

use std::fmt;
use std::io::{self, Read};

use crate::{DecodeError, Exit, Specialization, MAX_NOT_STARTED, MAX_SPECIALIZATION};

/// Bytes in a frame header.
pub const HEADER_LEN: usize = 9;
/// Largest `Data`, `Log` or `Chunk` payload.
pub const MAX_DATA: usize = 64 * 1024;
/// Bytes of one stream's data either side may have in flight.
pub const WINDOW: u32 = 256 * 1024;
/// Longest container id in a hello.
pub const MAX_ID: usize = 64;
/// Longest token in a hello.
pub const MAX_TOKEN: usize = 128;
/// Largest [`Frame::Code`] payload.
pub const MAX_CODE: usize = 4096;
/// A SHA-256 digest in lowercase hex.
pub const DIGEST_LEN: usize = 64;

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Hello,
    Open,
    Data,
    Close,
    Window,
    Log,
    Peak,
    Exit,
    NotStarted,
    Code,
    Specialize,
    Fetch,
    Chunk,
    End,
}

impl Kind {
    const ALL: [(Kind, u8); 14] = [
        (Kind::Hello, b'H'),
        (Kind::Open, b'O'),
        (Kind::Data, b'D'),
        (Kind::Close, b'C'),
        (Kind::Window, b'W'),
        (Kind::Log, b'L'),
        (Kind::Peak, b'P'),
        (Kind::Exit, b'X'),
        (Kind::NotStarted, b'N'),
        (Kind::Code, b'K'),
        (Kind::Specialize, b'S'),
        (Kind::Fetch, b'F'),
        (Kind::Chunk, b'A'),
        (Kind::End, b'E'),
    ];

    pub fn byte(self) -> u8 {
        Kind::ALL.iter().find(|(k, _)| *k == self).map_or(0, |(_, b)| *b)
    }

    pub fn from_byte(b: u8) -> Option<Kind> {
        Kind::ALL.iter().find(|(_, v)| *v == b).map(|(k, _)| *k)
    }

    /// The largest payload this kind may carry.
    pub fn max_len(self) -> usize {
        match self {
            Kind::Hello => 3 + MAX_ID + MAX_TOKEN,
            Kind::Open | Kind::Close | Kind::End => 0,
            Kind::Data | Kind::Log | Kind::Chunk => MAX_DATA,
            Kind::Window => 4,
            Kind::Peak => 8,
            Kind::Exit => Exit::LEN,
            Kind::NotStarted => MAX_NOT_STARTED,
            Kind::Code => MAX_CODE,
            Kind::Specialize => MAX_SPECIALIZATION,
            Kind::Fetch => DIGEST_LEN,
        }
    }

    /// Whether frames of this kind belong to a stream (id > 0).
    pub fn has_stream(self) -> bool {
        matches!(self, Kind::Open | Kind::Data | Kind::Close | Kind::Window)
    }
}

/// Why a frame was refused; any of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxError {
    UnknownKind(u8),
    TooLarge {
        kind: Kind,
        len: usize,
    },
    /// A stream id of 0 on a stream's frame, or one on a frame without.
    BadStream {
        kind: Kind,
        stream: u32,
    },
    /// A payload that does not parse.
    Malformed(Kind, DecodeError),
}

impl fmt::Display for MuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MuxError::UnknownKind(k) => write!(f, "frame of unknown kind {k:#04x}"),
            MuxError::TooLarge { kind, len } => write!(f, "{kind:?} frame of {len} bytes is over {}", kind.max_len()),
            MuxError::BadStream { kind, stream } => write!(f, "{kind:?} frame on stream {stream}"),
            MuxError::Malformed(kind, e) => write!(f, "{kind:?} frame: {e}"),
        }
    }
}

impl std::error::Error for MuxError {}

impl From<MuxError> for io::Error {
    fn from(e: MuxError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// A frame header, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub stream: u32,
    pub len: usize,
}

impl Header {
    pub fn encode(kind: Kind, stream: u32, len: usize) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = kind.byte();
        h[1..5].copy_from_slice(&stream.to_be_bytes());
        h[5..9].copy_from_slice(&(len.min(u32::MAX as usize) as u32).to_be_bytes());
        h
    }

    pub fn decode(h: [u8; HEADER_LEN]) -> Result<Header, MuxError> {
        let kind = Kind::from_byte(h[0]).ok_or(MuxError::UnknownKind(h[0]))?;
        let stream = u32::from_be_bytes([h[1], h[2], h[3], h[4]]);
        let len = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) as usize;
        if len > kind.max_len() {
            return Err(MuxError::TooLarge { kind, len });
        }
        if kind.has_stream() != (stream != 0) {
            return Err(MuxError::BadStream { kind, stream });
        }
        Ok(Header { kind, stream, len })
    }
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The container's one control connection.
    Session,
    /// Downloading code archives.
    Fetch,
}

/// Who is calling: the first frame on every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub purpose: Purpose,
    pub id: String,
    pub token: String,
}

/// Where fetched code goes: `DEST=DIGEST`, as `lambdabox-init fetch` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRef {
    /// An absolute folder path in the container.
    pub dest: String,
    /// SHA-256 (lowercase hex) of the archive.
    pub digest: String,
}

impl CodeRef {
    pub fn parse(text: &str) -> Option<CodeRef> {
        let (dest, digest) = text.rsplit_once('=')?;
        let dest_ok = dest.starts_with('/') && !dest.contains('\0') && !dest.split('/').any(|c| c == "..");
        (dest_ok && is_digest(digest)).then(|| CodeRef { dest: dest.to_owned(), digest: digest.to_owned() })
    }
}

impl fmt::Display for CodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.dest, self.digest)
    }
}

/// 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.len() == DIGEST_LEN && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Hello(Hello),
    Open(u32),
    Data(u32, Vec<u8>),
    Close(u32),
    Window(u32, u32),
    Log(Vec<u8>),
    /// Peak memory of the container's cgroup, in bytes.
    Peak(u64),
    Exit(Exit),
    NotStarted(String),
    /// Code to fetch before the specialization that follows.
    Code(Vec<CodeRef>),
    Specialize(Specialization),
    Fetch(String),
    Chunk(Vec<u8>),
    End,
}

impl Frame {
    /// Header and payload. Fails only for payloads over their limit.
    pub fn encode(&self) -> Result<Vec<u8>, MuxError> {
        let (kind, stream, payload): (Kind, u32, Vec<u8>) = match self {
            Frame::Hello(h) => (Kind::Hello, 0, hello_payload(h)?),
            Frame::Open(s) => (Kind::Open, *s, Vec::new()),
            Frame::Data(s, d) => (Kind::Data, *s, d.clone()),
            Frame::Close(s) => (Kind::Close, *s, Vec::new()),
            Frame::Window(s, n) => (Kind::Window, *s, n.to_be_bytes().to_vec()),
            Frame::Log(b) => (Kind::Log, 0, b.clone()),
            Frame::Peak(n) => (Kind::Peak, 0, n.to_be_bytes().to_vec()),
            Frame::Exit(e) => (Kind::Exit, 0, e.encode()[1..].to_vec()),
            Frame::NotStarted(why) => (Kind::NotStarted, 0, crate::not_started(why)[3..].to_vec()),
            Frame::Code(refs) => (Kind::Code, 0, code_payload(refs)),
            Frame::Specialize(s) => {
                let message = s.encode().map_err(|e| MuxError::Malformed(Kind::Specialize, e))?;
                (Kind::Specialize, 0, message[5..].to_vec())
            }
            Frame::Fetch(d) => (Kind::Fetch, 0, d.as_bytes().to_vec()),
            Frame::Chunk(b) => (Kind::Chunk, 0, b.clone()),
            Frame::End => (Kind::End, 0, Vec::new()),
        };
        if payload.len() > kind.max_len() {
            return Err(MuxError::TooLarge { kind, len: payload.len() });
        }
        let mut out = Header::encode(kind, stream, payload.len()).to_vec();
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// The frame `header` announced, from its payload.
    pub fn decode(header: Header, payload: Vec<u8>) -> Result<Frame, MuxError> {
        let kind = header.kind;
        let bad = |e| MuxError::Malformed(kind, e);
        if payload.len() != header.len {
            return Err(bad(DecodeError::Truncated));
        }
        let fixed = |n: usize| if payload.len() == n { Ok(()) } else { Err(bad(DecodeError::Truncated)) };
        Ok(match kind {
            Kind::Hello => Frame::Hello(parse_hello(&payload).map_err(bad)?),
            Kind::Open => Frame::Open(header.stream),
            Kind::Data => Frame::Data(header.stream, payload),
            Kind::Close => Frame::Close(header.stream),
            Kind::Window => {
                fixed(4)?;
                Frame::Window(header.stream, u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]))
            }
            Kind::Log => Frame::Log(payload),
            Kind::Peak => {
                fixed(8)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(&payload);
                Frame::Peak(u64::from_be_bytes(b))
            }
            Kind::Exit => {
                fixed(Exit::LEN)?;
                Frame::Exit(Exit::decode([payload[0], payload[1], payload[2], payload[3], payload[4]]).map_err(bad)?)
            }
            Kind::NotStarted => Frame::NotStarted(String::from_utf8_lossy(&payload).into_owned()),
            Kind::Code => Frame::Code(parse_code(&payload).map_err(bad)?),
            Kind::Specialize => Frame::Specialize(Specialization::decode(&payload).map_err(bad)?),
            Kind::Fetch => {
                let digest = String::from_utf8(payload).map_err(|_| bad(DecodeError::BadField))?;
                if !is_digest(&digest) {
                    return Err(bad(DecodeError::BadField));
                }
                Frame::Fetch(digest)
            }
            Kind::Chunk => Frame::Chunk(payload),
            Kind::End => Frame::End,
        })
    }
}

/// Read one frame (blocking), `None` at a clean end of stream between frames.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut head = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match r.read(&mut head[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let header = Header::decode(head)?;
    let mut payload = vec![0u8; header.len];
    r.read_exact(&mut payload)?;
    Ok(Some(Frame::decode(header, payload)?))
}

fn hello_payload(h: &Hello) -> Result<Vec<u8>, MuxError> {
    if h.id.len() > MAX_ID || h.token.len() > MAX_TOKEN {
        return Err(MuxError::TooLarge { kind: Kind::Hello, len: h.id.len() + h.token.len() });
    }
    let purpose = match h.purpose {
        Purpose::Session => b'S',
        Purpose::Fetch => b'F',
    };
    let mut p = vec![purpose, h.id.len() as u8];
    p.extend_from_slice(h.id.as_bytes());
    p.push(h.token.len() as u8);
    p.extend_from_slice(h.token.as_bytes());
    Ok(p)
}

fn parse_hello(p: &[u8]) -> Result<Hello, DecodeError> {
    let purpose = match p.first() {
        Some(b'S') => Purpose::Session,
        Some(b'F') => Purpose::Fetch,
        Some(_) => return Err(DecodeError::BadField),
        None => return Err(DecodeError::Truncated),
    };
    let mut rest = &p[1..];
    let mut field = |max: usize| -> Result<String, DecodeError> {
        let (&len, tail) = rest.split_first().ok_or(DecodeError::Truncated)?;
        let len = usize::from(len);
        if len > max || tail.len() < len {
            return Err(if len > max { DecodeError::TooLarge(len) } else { DecodeError::Truncated });
        }
        let text = &tail[..len];
        rest = &tail[len..];
        if !text.iter().all(|b| b.is_ascii_graphic()) {
            return Err(DecodeError::BadField);
        }
        Ok(String::from_utf8_lossy(text).into_owned())
    };
    let id = field(MAX_ID)?;
    let token = field(MAX_TOKEN)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(Hello { purpose, id, token })
}

fn code_payload(refs: &[CodeRef]) -> Vec<u8> {
    refs.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n").into_bytes()
}

fn parse_code(p: &[u8]) -> Result<Vec<CodeRef>, DecodeError> {
    let text = std::str::from_utf8(p).map_err(|_| DecodeError::BadField)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('\n').map(|line| CodeRef::parse(line).ok_or(DecodeError::BadField)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Hello(Hello { purpose: Purpose::Session, id: "abc123".into(), token: "f".repeat(64) }),
            Frame::Hello(Hello { purpose: Purpose::Fetch, id: "x".into(), token: "t".into() }),
            Frame::Open(1),
            Frame::Data(3, b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            Frame::Data(3, Vec::new()),
            Frame::Close(3),
            Frame::Window(5, WINDOW),
            Frame::Log(b"hello\n".to_vec()),
            Frame::Peak(123 << 20),
            Frame::Exit(Exit::Signal(9)),
            Frame::NotStarted("fork/exec /x: no such file or directory".into()),
            Frame::Code(vec![CodeRef { dest: "/var/task".into(), digest: DIGEST.into() }]),
            Frame::Code(Vec::new()),
            Frame::Specialize(Specialization {
                bootstrap: vec![b"/var/runtime/bootstrap".to_vec()],
                env: vec![(b"A".to_vec(), b"1".to_vec())],
                prestarted: false,
            }),
            Frame::Fetch(DIGEST.into()),
            Frame::Chunk(vec![7; MAX_DATA]),
            Frame::End,
        ]
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut wire = Vec::new();
        for f in samples() {
            wire.extend(f.encode().unwrap());
        }
        let mut r = &wire[..];
        for f in samples() {
            assert_eq!(read_frame(&mut r).unwrap(), Some(f));
        }
        assert_eq!(read_frame(&mut r).unwrap(), None);
    }

    #[test]
    fn oversized_and_unknown_frames_are_refused_before_reading_them() {
        let refuse = |h: [u8; HEADER_LEN]| read_frame(&mut &h[..]).unwrap_err();
        let err = refuse(Header::encode(Kind::Data, 1, MAX_DATA + 1));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let mut h = Header::encode(Kind::Log, 0, 1);
        h[0] = b'?';
        assert_eq!(Header::decode(h), Err(MuxError::UnknownKind(b'?')));
        assert!(matches!(Header::decode(Header::encode(Kind::Open, 0, 0)), Err(MuxError::BadStream { .. })));
        assert!(matches!(Header::decode(Header::encode(Kind::Log, 7, 0)), Err(MuxError::BadStream { .. })));
        assert!(matches!(Header::decode(Header::encode(Kind::Close, 1, 1)), Err(MuxError::TooLarge { .. })));
        assert!(Frame::Log(vec![0; MAX_DATA + 1]).encode().is_err());
        let huge = [b'S', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(Header::decode(huge).is_err(), "a 4 GB specialization is refused from its header");
    }

    #[test]
    fn truncated_frames_are_errors_not_ends() {
        let wire = Frame::Data(1, b"abc".to_vec()).encode().unwrap();
        for cut in 1..wire.len() {
            assert!(read_frame(&mut &wire[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn hostile_hellos_and_payloads_are_refused() {
        let decode = |kind: Kind, p: &[u8]| Frame::decode(Header { kind, stream: 0, len: p.len() }, p.to_vec());
        assert!(decode(Kind::Hello, b"").is_err());
        assert!(decode(Kind::Hello, b"Q\x01a\x01b").is_err(), "unknown purpose");
        assert!(decode(Kind::Hello, b"S\x05ab").is_err(), "id longer than the frame");
        assert!(decode(Kind::Hello, b"S\x01a\x01b!").is_err(), "trailing bytes");
        assert!(decode(Kind::Hello, b"S\x01\n\x01b").is_err(), "control bytes in an id");
        let long = Hello { purpose: Purpose::Session, id: "a".repeat(MAX_ID + 1), token: String::new() };
        assert!(Frame::Hello(long).encode().is_err());
        assert!(decode(Kind::Fetch, b"../../etc/passwd").is_err());
        assert!(decode(Kind::Fetch, DIGEST.to_uppercase().as_bytes()).is_err());
        assert!(decode(Kind::Code, b"relative=0").is_err());
        assert!(decode(Kind::Peak, b"1234").is_err());
        assert!(decode(Kind::Exit, b"?\0\0\0\0").is_err());
    }

    #[test]
    fn code_refs_parse_strictly() {
        let ok = CodeRef::parse(&format!("/var/task={DIGEST}")).unwrap();
        assert_eq!((ok.dest.as_str(), ok.to_string()), ("/var/task", format!("/var/task={DIGEST}")));
        for bad in [format!("var/task={DIGEST}"), format!("/a/../b={DIGEST}"), "/opt=abc".into(), "/opt".into()] {
            assert!(CodeRef::parse(&bad).is_none(), "{bad}");
        }
    }
}
