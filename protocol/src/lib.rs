//! The control channel between the lambdabox controller and lambdabox-init,
//! spelled once for both ends.
//!
//! Every function container gets one unix socket, `control.sock`, in a folder
//! bind-mounted at [`CONTROL_DIR`]. lambdabox-init (PID 1, the only process in
//! the container allowed to reach that folder) connects to it before it
//! starts anything else; the controller accepts that one connection and then
//! closes the listener and removes the socket, so the connection init holds
//! is the container's *only* way to the controller besides the Runtime API
//! connections init hands over on it.
//!
//! # Messages
//!
//! From init, each a tag byte sent with one `sendmsg`:
//!
//! - [`tag::LOG_PIPE`] with a descriptor (`SCM_RIGHTS`): the read end of the
//!   bootstrap's stdout/stderr pipe. Once, before any connection.
//! - [`tag::CONNECTION`] with a descriptor: a TCP connection the runtime
//!   opened to [`RUNTIME_API_ADDR`]; the controller serves HTTP on it.
//! - [`tag::EXIT`] followed by [`Exit::LEN`] bytes: how the bootstrap ended.
//! - [`tag::NOT_STARTED`], a 2-byte big-endian length, then that much UTF-8
//!   text ([`not_started`]): the bootstrap could not be started, in Lambda's
//!   words (`fork/exec /opt/wrapper: no such file or directory`).
//!
//! From the controller, only to a generic (prewarmed) container's init,
//! which waits for it: [`tag::SPECIALIZE`], a 4-byte big-endian length, then
//! a [`Specialization`]. Every field is length-prefixed, so no byte of a
//! value (a NUL, an `=`) can break the framing or smuggle a variable.
//!
//! Where the controller shares no host with its containers, init dials out
//! instead and everything travels over one multiplexed connection
//! ([`mux`]); code then comes as content-addressed archives ([`archive`],
//! named by [`sha256`]).
//!
//! # Handing a function to a pre-started runtime
//!
//! A generic container may run its language runtime ahead of need
//! ([`env::PRESTART`]): a wrapper around the official runtime client, started
//! by init as the sandbox user with a neutral environment, that waits on
//! descriptor [`HANDOFF_FD`]. When a [`Specialization`] says
//! [`Specialization::prestarted`], init writes the function's whole
//! environment there ([`handoff`]) and closes it instead of starting a new
//! bootstrap. The wrappers are Python and JavaScript, so that format is kept
//! trivially parseable.
//!
//! The crate depends on nothing: init is linked statically and stays small.

pub mod archive;
pub mod mux;
pub mod sha256;

use std::fmt;

/// Where the Runtime API listens inside a container; runtimes get it as
/// `AWS_LAMBDA_RUNTIME_API`.
pub const RUNTIME_API_ADDR: &str = "127.0.0.1:9001";
/// The port of [`RUNTIME_API_ADDR`], which handed-over connections must be to.
pub const RUNTIME_API_PORT: u16 = 9001;
/// Where a container's control folder is mounted.
pub const CONTROL_DIR: &str = "/lambdabox/rt";
/// The control socket's file name in that folder.
pub const CONTROL_SOCKET: &str = "control.sock";

/// Environment variables the controller sets for init (and init removes
/// before starting the bootstrap).
pub mod env {
    /// Path of the control socket inside the container.
    pub const CONTROL_SOCKET: &str = "LAMBDABOX_CONTROL_SOCKET";
    /// `uid:gid` the bootstrap runs as; init itself runs as root without
    /// capabilities beyond those needed to switch to it.
    pub const SANDBOX_USER: &str = "LAMBDABOX_SANDBOX_USER";
    /// Set in generic (prewarmed) containers: wait for a [`super::Specialization`].
    pub const GENERIC: &str = "LAMBDABOX_GENERIC";
    /// Set for functions on a managed or provided runtime (not container
    /// images, whose own `ENV` may set them): the bootstrap gets Lambda's
    /// environment alone, without the variables Docker adds ([`DOCKER_ADDED`]).
    pub const LAMBDA_ONLY: &str = "LAMBDABOX_LAMBDA_ONLY";
    /// Remote transport: where init dials the controller, `host:port` or
    /// `unix:/path` (instead of [`CONTROL_SOCKET`]).
    pub const CONTROLLER: &str = "LAMBDABOX_CONTROLLER";
    /// Remote transport over TLS: the PEM certificates init trusts for the
    /// controller ([`CONTROLLER`]'s host is the name it verifies). Unset:
    /// plain TCP (or a unix socket).
    pub const CONTROLLER_CA: &str = "LAMBDABOX_CONTROLLER_CA";
    /// Remote transport: the container's id, sent in its hello.
    pub const CONTAINER_ID: &str = "LAMBDABOX_CONTAINER_ID";
    /// Remote transport: the container's secret, sent in its hello.
    pub const TOKEN: &str = "LAMBDABOX_TOKEN";
    /// Remote transport: code init fetches itself before anything starts,
    /// `DEST=DIGEST` pairs separated by `,` (where no init container does it).
    pub const FETCH: &str = "LAMBDABOX_FETCH";
    /// Set in generic containers of runtimes that can start ahead of need:
    /// the command (words separated by spaces) init starts at once, as the
    /// sandbox user, with the container's neutral environment and the read
    /// end of the hand-off pipe as [`super::HANDOFF_FD`].
    pub const PRESTART: &str = "LAMBDABOX_PRESTART";
    /// Every variable above, for init to clear from the bootstrap's environment.
    pub const ALL: [&str; 10] = [
        CONTROL_SOCKET,
        SANDBOX_USER,
        GENERIC,
        LAMBDA_ONLY,
        CONTROLLER,
        CONTROLLER_CA,
        CONTAINER_ID,
        TOKEN,
        FETCH,
        PRESTART,
    ];
    /// What Docker puts in every container's environment and Lambda does not.
    pub const DOCKER_ADDED: [&str; 2] = ["HOSTNAME", "HOME"];
}

/// The host of a `host:port` address, brackets taken off an IPv6 one
/// (`[::1]:9100` → `::1`): the name a TLS client checks the controller's
/// certificate against. `None` when there is no port, or an empty host.
pub fn host_of(address: &str) -> Option<&str> {
    let (host, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        // A bare IPv6 address has more colons: it needs brackets.
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty()).then_some(host)
}

/// Message tags.
pub mod tag {
    /// init → controller, with a descriptor: the log pipe's read end.
    pub const LOG_PIPE: u8 = b'L';
    /// init → controller, with a descriptor: a runtime connection.
    pub const CONNECTION: u8 = b'C';
    /// init → controller: the bootstrap's end, [`super::Exit::LEN`] bytes follow.
    pub const EXIT: u8 = b'X';
    /// init → controller: the bootstrap could not start; see [`super::not_started`].
    pub const NOT_STARTED: u8 = b'N';
    /// controller → init: a length-prefixed [`super::Specialization`] follows.
    pub const SPECIALIZE: u8 = b'S';
}

/// Largest [`Specialization`] either end accepts. The environment Lambda
/// allows is 4 KB of user variables plus a few dozen of its own.
pub const MAX_SPECIALIZATION: usize = 256 * 1024;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside a field.
    Truncated,
    /// Over [`MAX_SPECIALIZATION`].
    TooLarge(usize),
    /// Bytes left after the last field.
    TrailingBytes,
    /// An environment name that is empty or holds `=` or NUL, or a value or
    /// argument that holds NUL: `execve` could not pass it faithfully.
    BadField,
    /// An exit report of an unknown kind.
    BadExitKind(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "message ends inside a field"),
            DecodeError::TooLarge(n) => write!(f, "message of {n} bytes is over {MAX_SPECIALIZATION}"),
            DecodeError::TrailingBytes => write!(f, "bytes after the last field"),
            DecodeError::BadField => write!(f, "a name or value execve cannot carry (empty name, '=' or NUL)"),
            DecodeError::BadExitKind(k) => write!(f, "exit report of unknown kind {k:#04x}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Longest text a [`tag::NOT_STARTED`] message carries.
pub const MAX_NOT_STARTED: usize = 1024;

/// The whole [`tag::NOT_STARTED`] message for `why`, cut to
/// [`MAX_NOT_STARTED`] bytes at a character boundary.
pub fn not_started(why: &str) -> Vec<u8> {
    let mut end = why.len().min(MAX_NOT_STARTED);
    while !why.is_char_boundary(end) {
        end -= 1;
    }
    let mut message = vec![tag::NOT_STARTED];
    message.extend_from_slice(&(end as u16).to_be_bytes());
    message.extend_from_slice(&why.as_bytes()[..end]);
    message
}

/// How the bootstrap ended, as init saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// Bytes after the [`tag::EXIT`] tag: a kind byte and a big-endian i32.
    pub const LEN: usize = 5;

    /// The whole message, tag included.
    pub fn encode(self) -> [u8; 1 + Exit::LEN] {
        let (kind, value) = match self {
            Exit::Code(c) => (b'c', c),
            Exit::Signal(s) => (b's', s),
        };
        let v = value.to_be_bytes();
        [tag::EXIT, kind, v[0], v[1], v[2], v[3]]
    }

    /// The bytes after the tag.
    pub fn decode(bytes: [u8; Exit::LEN]) -> Result<Exit, DecodeError> {
        let value = i32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        match bytes[0] {
            b'c' => Ok(Exit::Code(value)),
            b's' => Ok(Exit::Signal(value)),
            other => Err(DecodeError::BadExitKind(other)),
        }
    }
}

/// What a generic container is to become: the bootstrap command (empty for
/// Lambda's search order), the function's whole environment, and whether the
/// runtime init pre-started may take it (else init stops that one and starts
/// the bootstrap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Specialization {
    pub bootstrap: Vec<Vec<u8>>,
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    pub prestarted: bool,
}

impl Specialization {
    /// The whole message: tag, payload length, payload. The payload is two
    /// lists (bootstrap arguments, then name/value pairs), each a u32 count
    /// followed by u32-length-prefixed byte strings, then one byte: 1 to
    /// hand the function to the pre-started runtime, 0 not to.
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        self.check()?;
        let mut payload = Vec::new();
        put_u32(&mut payload, self.bootstrap.len());
        for arg in &self.bootstrap {
            put_bytes(&mut payload, arg);
        }
        put_u32(&mut payload, self.env.len());
        for (name, value) in &self.env {
            put_bytes(&mut payload, name);
            put_bytes(&mut payload, value);
        }
        payload.push(u8::from(self.prestarted));
        if payload.len() > MAX_SPECIALIZATION {
            return Err(DecodeError::TooLarge(payload.len()));
        }
        let mut message = vec![tag::SPECIALIZE];
        put_u32(&mut message, payload.len());
        message.extend_from_slice(&payload);
        Ok(message)
    }

    /// The payload's length from the 4 bytes after the tag, refused when
    /// over [`MAX_SPECIALIZATION`] (so a reader never allocates more).
    pub fn payload_len(header: [u8; 4]) -> Result<usize, DecodeError> {
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_SPECIALIZATION {
            return Err(DecodeError::TooLarge(len));
        }
        Ok(len)
    }

    /// Decode a payload (what follows the tag and length).
    pub fn decode(payload: &[u8]) -> Result<Specialization, DecodeError> {
        if payload.len() > MAX_SPECIALIZATION {
            return Err(DecodeError::TooLarge(payload.len()));
        }
        let mut r = Reader { rest: payload };
        let mut s = Specialization::default();
        for _ in 0..r.count()? {
            s.bootstrap.push(r.bytes()?.to_vec());
        }
        for _ in 0..r.count()? {
            let name = r.bytes()?.to_vec();
            let value = r.bytes()?.to_vec();
            s.env.push((name, value));
        }
        s.prestarted = match r.take(1)? {
            [0] => false,
            [1] => true,
            _ => return Err(DecodeError::BadField),
        };
        if !r.rest.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        s.check()?;
        Ok(s)
    }

    /// Every argument and value NUL-free, every name non-empty without `=`.
    fn check(&self) -> Result<(), DecodeError> {
        let nul_free = |b: &[u8]| !b.contains(&0);
        let args_ok = self.bootstrap.iter().all(|a| nul_free(a));
        let env_ok = self.env.iter().all(|(n, v)| !n.is_empty() && nul_free(n) && !n.contains(&b'=') && nul_free(v));
        if args_ok && env_ok {
            Ok(())
        } else {
            Err(DecodeError::BadField)
        }
    }
}

/// Descriptor on which a pre-started runtime reads its [`handoff`].
pub const HANDOFF_FD: i32 = 3;

/// What init writes to a pre-started runtime on [`HANDOFF_FD`] (then closes
/// it): a 4-byte big-endian length, then that many bytes of `NAME=VALUE`
/// entries each ended by a NUL (the layout of `/proc/PID/environ`). Names
/// hold no `=` and nothing holds a NUL ([`Specialization`]'s checks), so a
/// reader splits on NUL, then at the first `=`. The length lets a reader
/// tell a whole message from one cut short.
pub mod handoff {
    use super::DecodeError;

    /// The whole message for `env`, in the order given.
    pub fn encode<N: AsRef<[u8]>, V: AsRef<[u8]>>(env: &[(N, V)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in env {
            body.extend_from_slice(name.as_ref());
            body.push(b'=');
            body.extend_from_slice(value.as_ref());
            body.push(0);
        }
        let mut message = (body.len().min(u32::MAX as usize) as u32).to_be_bytes().to_vec();
        message.extend_from_slice(&body);
        message
    }

    /// One variable: name and value.
    pub type Pair = (Vec<u8>, Vec<u8>);

    /// The pairs of a whole message (what the wrappers do, for tests).
    pub fn decode(message: &[u8]) -> Result<Vec<Pair>, DecodeError> {
        let (len, body) = message.split_first_chunk::<4>().ok_or(DecodeError::Truncated)?;
        match (u32::from_be_bytes(*len) as usize).cmp(&body.len()) {
            std::cmp::Ordering::Greater => return Err(DecodeError::Truncated),
            std::cmp::Ordering::Less => return Err(DecodeError::TrailingBytes),
            std::cmp::Ordering::Equal => {}
        }
        let Some(entries) = body.strip_suffix(&[0]) else {
            return if body.is_empty() { Ok(Vec::new()) } else { Err(DecodeError::Truncated) };
        };
        entries
            .split(|b| *b == 0)
            .map(|entry| {
                let at = entry.iter().position(|b| *b == b'=').filter(|at| *at > 0).ok_or(DecodeError::BadField)?;
                Ok((entry[..at].to_vec(), entry[at + 1..].to_vec()))
            })
            .collect()
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Lengths are bounded by MAX_SPECIALIZATION long before u32::MAX.
    out.extend_from_slice(&(n.min(u32::MAX as usize) as u32).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A cursor over a payload that never reads past its end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// A count of items, each at least 4 bytes: a count the rest cannot
    /// hold is refused before any loop runs on it.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.u32()?;
        if n > self.rest.len() / 4 {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_takes_the_port_and_brackets_off() {
        assert_eq!(super::host_of("10.0.0.1:9100"), Some("10.0.0.1"));
        assert_eq!(super::host_of("lambdabox.lambdabox.svc:9100"), Some("lambdabox.lambdabox.svc"));
        assert_eq!(super::host_of("[::1]:9100"), Some("::1"));
        assert_eq!(super::host_of("[fd00::5]:1"), Some("fd00::5"));
        for bad in ["10.0.0.1", "::1:9100", "[::1]", ":9100", "[]:9100", "host:port", "host:99999", "[::1:9100"] {
            assert_eq!(super::host_of(bad), None, "{bad}");
        }
    }

    use super::*;

    fn sample() -> Specialization {
        Specialization {
            bootstrap: vec![b"/var/runtime/bootstrap".to_vec(), b"--flag".to_vec()],
            env: vec![(b"_HANDLER".to_vec(), b"app.handler".to_vec()), (b"EQ".to_vec(), b"a=b".to_vec())],
            prestarted: true,
        }
    }

    fn payload(message: &[u8]) -> &[u8] {
        assert_eq!(message[0], tag::SPECIALIZE);
        let len = Specialization::payload_len(message[1..5].try_into().unwrap()).unwrap();
        assert_eq!(len, message.len() - 5);
        &message[5..]
    }

    #[test]
    fn specializations_round_trip() {
        let message = sample().encode().unwrap();
        assert_eq!(Specialization::decode(payload(&message)).unwrap(), sample());
        let empty = Specialization::default();
        assert_eq!(Specialization::decode(payload(&empty.encode().unwrap())).unwrap(), empty);
        let mut odd_flag = sample().encode().unwrap();
        *odd_flag.last_mut().unwrap() = 2;
        assert_eq!(Specialization::decode(payload(&odd_flag)), Err(DecodeError::BadField));
    }

    #[test]
    fn handoffs_are_environ_blocks_with_a_length() {
        let env = [("_HANDLER", "app.handler"), ("EQ", "a=b"), ("EMPTY", "")];
        let message = handoff::encode(&env);
        assert_eq!(&message[..4], &35u32.to_be_bytes());
        assert_eq!(&message[4..], b"_HANDLER=app.handler\0EQ=a=b\0EMPTY=\0");
        let decoded = handoff::decode(&message).unwrap();
        let pairs: Vec<(&[u8], &[u8])> = decoded.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(pairs, [(&b"_HANDLER"[..], &b"app.handler"[..]), (b"EQ", b"a=b"), (b"EMPTY", b"")]);
        let none: [(&str, &str); 0] = [];
        assert_eq!(handoff::encode(&none), [0, 0, 0, 0]);
        assert_eq!(handoff::decode(&[0, 0, 0, 0]).unwrap(), Vec::<(Vec<u8>, Vec<u8>)>::new());
        for cut in 0..message.len() {
            assert!(handoff::decode(&message[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = message.clone();
        longer.push(b'x');
        assert_eq!(handoff::decode(&longer), Err(DecodeError::TrailingBytes));
        assert_eq!(handoff::decode(&[0, 0, 0, 3, b'=', b'v', 0]), Err(DecodeError::BadField), "a name is never empty");
    }

    #[test]
    fn values_cannot_break_the_framing() {
        let mut s = sample();
        s.env.push((b"K".to_vec(), b"x\0AWS_LAMBDA_RUNTIME_API=evil".to_vec()));
        assert_eq!(s.encode(), Err(DecodeError::BadField), "a NUL in a value is refused");
        let mut s = sample();
        s.env.push((b"A=B".to_vec(), b"v".to_vec()));
        assert_eq!(s.encode(), Err(DecodeError::BadField), "a name with '=' is refused");
        let mut s = sample();
        s.env.push((Vec::new(), b"v".to_vec()));
        assert_eq!(s.encode(), Err(DecodeError::BadField));
    }

    #[test]
    fn hostile_payloads_are_refused_without_big_allocations() {
        let message = sample().encode().unwrap();
        let p = payload(&message);
        for cut in 0..p.len() {
            assert!(Specialization::decode(&p[..cut]).is_err(), "truncated at {cut}");
        }
        let mut trailing = p.to_vec();
        trailing.push(0);
        assert_eq!(Specialization::decode(&trailing), Err(DecodeError::TrailingBytes));
        assert_eq!(Specialization::decode(&[0xff, 0xff, 0xff, 0xff]), Err(DecodeError::Truncated));
        assert!(matches!(Specialization::payload_len([0xff; 4]), Err(DecodeError::TooLarge(_))));
        let big = Specialization { bootstrap: vec![vec![b'a'; MAX_SPECIALIZATION]], ..Default::default() };
        assert!(matches!(big.encode(), Err(DecodeError::TooLarge(_))));
    }

    #[test]
    fn exits_round_trip() {
        for exit in [Exit::Code(0), Exit::Code(-1), Exit::Code(42), Exit::Signal(9)] {
            let m = exit.encode();
            assert_eq!(m[0], tag::EXIT);
            assert_eq!(Exit::decode(m[1..].try_into().unwrap()), Ok(exit));
        }
        assert_eq!(Exit::decode([b'?', 0, 0, 0, 0]), Err(DecodeError::BadExitKind(b'?')));
    }

    #[test]
    fn not_started_texts_are_framed_and_bounded() {
        let m = not_started("fork/exec /opt/w: permission denied");
        assert_eq!((m[0], u16::from_be_bytes([m[1], m[2]])), (tag::NOT_STARTED, 35));
        assert_eq!(&m[3..], b"fork/exec /opt/w: permission denied");
        let long = "é".repeat(MAX_NOT_STARTED);
        let m = not_started(&long);
        let len = usize::from(u16::from_be_bytes([m[1], m[2]]));
        assert!(len <= MAX_NOT_STARTED && std::str::from_utf8(&m[3..]).is_ok() && m.len() == 3 + len);
    }
}
