//! The connection init dials to a remote controller, and who it says it is.
//!
//! `LAMBDABOX_CONTROLLER` is `host:port` (TCP) or `unix:/path`. TLS would be
//! one more [`Link`] variant (and a `LAMBDABOX_CONTROLLER_TLS` naming the CA
//! to trust), chosen here; nothing above this module knows what carries the
//! bytes.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use lambdabox_protocol::env as vars;
use lambdabox_protocol::mux::{Frame, Hello, Purpose};

/// A byte stream to the controller.
#[derive(Debug)]
pub enum Link {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Link {
    fn dial(address: &str) -> io::Result<Link> {
        match address.strip_prefix("unix:") {
            Some(path) => Ok(Link::Unix(UnixStream::connect(path)?)),
            None => {
                let tcp = TcpStream::connect(address)?;
                // Frames are small and answered: no Nagle delay.
                tcp.set_nodelay(true)?;
                Ok(Link::Tcp(tcp))
            }
        }
    }

    /// A second handle on the same connection (one thread reads, others write).
    pub fn try_clone(&self) -> io::Result<Link> {
        Ok(match self {
            Link::Tcp(s) => Link::Tcp(s.try_clone()?),
            Link::Unix(s) => Link::Unix(s.try_clone()?),
        })
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.read(buf),
            Link::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.write(buf),
            Link::Unix(s) => s.write(buf),
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
}

impl Identity {
    /// `None` without `LAMBDABOX_CONTROLLER` (not the remote transport);
    /// an error text when it is set but the id or token is missing.
    pub fn from_env() -> Option<Result<Identity, String>> {
        let controller = std::env::var(vars::CONTROLLER).ok()?;
        let var =
            |name: &str| std::env::var(name).map_err(|_| format!("{} is set but {name} is not", vars::CONTROLLER));
        Some(var(vars::CONTAINER_ID).and_then(|id| Ok(Identity { controller, id, token: var(vars::TOKEN)? })))
    }

    /// A new connection to the controller, hello sent.
    pub fn dial(&self, purpose: Purpose) -> io::Result<Link> {
        let mut link = Link::dial(&self.controller)?;
        let hello = Hello { purpose, id: self.id.clone(), token: self.token.clone() };
        link.write_all(&Frame::Hello(hello).encode()?)?;
        Ok(link)
    }
}
