//! The connection init dials to a remote controller, and who it says it is.
//!
//! `LAMBDABOX_CONTROLLER` is `host:port` (TCP) or `unix:/path`. With
//! `LAMBDABOX_CONTROLLER_CA` (the PEM certificates to trust) a TCP link is
//! TLS, checked against the address's host ([`crate::tls`]); nothing above
//! this module knows what carries the bytes.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use lambdabox_protocol::env as vars;
use lambdabox_protocol::mux::{Frame, Hello, Purpose};

/// A byte stream to the controller.
#[derive(Debug)]
pub enum Link {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// TLS over TCP: the plaintext end of [`crate::tls`]'s pump.
    Tls(UnixStream, Arc<crate::tls::Drained>),
}

/// How long the last words may take to leave over TLS.
const FINISH_TIME: std::time::Duration = std::time::Duration::from_secs(5);

impl Link {
    fn dial(address: &str, tls: Option<&Arc<rustls::ClientConfig>>) -> io::Result<Link> {
        match address.strip_prefix("unix:") {
            Some(path) => Ok(Link::Unix(UnixStream::connect(path)?)),
            None => {
                let tcp = TcpStream::connect(address)?;
                // Frames are small and answered: no Nagle delay.
                tcp.set_nodelay(true)?;
                let Some(config) = tls else { return Ok(Link::Tcp(tcp)) };
                let host = lambdabox_protocol::host_of(address)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{address}: no host")))?;
                let (stream, drained) = crate::tls::connect(tcp, host, config.clone())?;
                Ok(Link::Tls(stream, drained))
            }
        }
    }

    /// A second handle on the same connection (one thread reads, others write).
    pub fn try_clone(&self) -> io::Result<Link> {
        Ok(match self {
            Link::Tcp(s) => Link::Tcp(s.try_clone()?),
            Link::Unix(s) => Link::Unix(s.try_clone()?),
            Link::Tls(s, d) => Link::Tls(s.try_clone()?, d.clone()),
        })
    }

    /// Before the process ends: see that what was written reaches the
    /// controller. A socket's kernel sends it anyway; over TLS it must get
    /// through the pump first, which ends our side with `close_notify`.
    pub fn finish(&self) {
        if let Link::Tls(s, drained) = self {
            let _ = s.shutdown(std::net::Shutdown::Write);
            drained.wait(FINISH_TIME);
        }
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.read(buf),
            Link::Unix(s) | Link::Tls(s, _) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.write(buf),
            Link::Unix(s) | Link::Tls(s, _) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Where the controller is and who this container is, from the environment.
#[derive(Debug, Clone)]
pub struct Identity {
    pub controller: String,
    pub id: String,
    pub token: String,
    /// Whom to trust when the link is TLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Identity {
    /// `None` without `LAMBDABOX_CONTROLLER` (not the remote transport);
    /// an error text when it is set but the id or token is missing, or the
    /// CA is not usable.
    pub fn from_env() -> Option<Result<Identity, String>> {
        let controller = std::env::var(vars::CONTROLLER).ok()?;
        let var =
            |name: &str| std::env::var(name).map_err(|_| format!("{} is set but {name} is not", vars::CONTROLLER));
        let ca = std::env::var(vars::CONTROLLER_CA).ok();
        Some((|| {
            let tls = match ca {
                Some(_) if controller.starts_with("unix:") => {
                    return Err(format!("{}: TLS is for a TCP {}", vars::CONTROLLER_CA, vars::CONTROLLER))
                }
                Some(pem) => {
                    Some(crate::tls::client_config(&pem).map_err(|e| format!("{}: {e}", vars::CONTROLLER_CA))?)
                }
                None => None,
            };
            Ok(Identity { id: var(vars::CONTAINER_ID)?, token: var(vars::TOKEN)?, controller, tls })
        })())
    }

    /// Connect (and over TLS, shake hands), then hang up: is the
    /// controller there, and the one to trust?
    pub fn probe(&self) -> io::Result<()> {
        Link::dial(&self.controller, self.tls.as_ref()).map(drop)
    }

    /// A new connection to the controller, hello sent.
    pub fn dial(&self, purpose: Purpose) -> io::Result<Link> {
        let mut link = Link::dial(&self.controller, self.tls.as_ref())?;
        let hello = Hello { purpose, id: self.id.clone(), token: self.token.clone() };
        link.write_all(&Frame::Hello(hello).encode()?)?;
        Ok(link)
    }
}
