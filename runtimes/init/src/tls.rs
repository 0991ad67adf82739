//! TLS on the TCP link to the controller, when `LAMBDABOX_CONTROLLER_CA`
//! says whom to trust.
//!
//! The session reads on one thread and writes from others on clones of
//! one [`Link`](crate::link::Link), which a TLS connection (one state
//! machine) cannot give. So the handshake is done at dial time, and then a
//! pump thread owns the TCP stream and the [`ClientConnection`], and
//! bridges them to one end of a `UnixStream::pair()`: above it the link is
//! a plain byte stream, cloned as before. The plain TCP path has no pump.
//!
//! Either side ending ends both: the controller's close (or a lost
//! connection, or a TLS error) closes the pair, which the session sees as
//! the connection lost; the session closing its end (or shutting it down
//! before init exits, [`Link::finish`](crate::link::Link::finish), which
//! waits for [`Drained`]) sends what is left, then `close_notify`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use rustix::event::{poll, PollFd, PollFlags};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The handshake's bound: the controller answers at once or not at all.
const HANDSHAKE_TIME: Duration = Duration::from_secs(10);
/// Bytes read from the session at a time (a TLS record's worth).
const CHUNK: usize = 16 * 1024;

/// Set once everything the session wrote has gone out to the controller
/// (or never will): a socket's kernel sends what it holds after the
/// process ends, but bytes still in the pair or the pump would be lost.
#[derive(Debug, Default)]
pub struct Drained {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Drained {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Wait for it, at most `limit`.
    pub fn wait(&self, limit: Duration) {
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        let _ = self.changed.wait_timeout_while(done, limit, |d| !*d);
    }
}

/// A client configuration trusting the PEM certificates in `pem` (and
/// nothing else: not the system's roots, which a container may not have).
pub fn client_config(pem: &str) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("not PEM certificates: {e}"))?;
        roots.add(cert).map_err(|e| format!("a certificate we cannot use: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate in it".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Shake hands with the controller on `tcp`, checking its certificate is
/// for `host`; then the plaintext end of the link, its pump running, and
/// what says when the pump has sent all after that end was shut down.
pub fn connect(mut tcp: TcpStream, host: &str, config: Arc<ClientConfig>) -> io::Result<(UnixStream, Arc<Drained>)> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(format!("server name {host:?}: {e}")))?;
    let mut tls = ClientConnection::new(config, name).map_err(invalid)?;
    tcp.set_read_timeout(Some(HANDSHAKE_TIME))?;
    tcp.set_write_timeout(Some(HANDSHAKE_TIME))?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).map_err(|e| handshake_error(host, e))?;
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    tcp.set_nonblocking(true)?;
    let (session_end, pump_end) = UnixStream::pair()?;
    pump_end.set_nonblocking(true)?;
    let mut pump = Pump {
        tcp,
        tls,
        local: pump_end,
        inbound: Vec::new(),
        local_done: false,
        half_closed: false,
        remote_done: false,
        drained: Arc::default(),
    };
    let drained = pump.drained.clone();
    thread::spawn(move || {
        let result = pump.run();
        pump.drained.set();
        if let Err(e) = result {
            // A broken pipe is the session gone: nothing to say.
            if e.kind() != io::ErrorKind::BrokenPipe {
                eprintln!("lambdabox-init: TLS link to the controller: {e}");
            }
        }
    });
    Ok((session_end, drained))
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Say which step failed: a certificate problem reads as one.
fn handshake_error(host: &str, e: io::Error) -> io::Error {
    let what = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no answer".to_owned(),
        io::ErrorKind::UnexpectedEof => "the controller closed the connection (is its remote transport TLS?)".into(),
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("TLS handshake with the controller {host}: {what}"))
}

/// The thread between the session's plaintext and the controller's TLS.
struct Pump {
    tcp: TcpStream,
    tls: ClientConnection,
    /// Our end of the pair; the session holds the other.
    local: UnixStream,
    /// Plaintext from the controller the session has not taken yet.
    inbound: Vec<u8>,
    /// The session closed its end.
    local_done: bool,
    /// And the controller was told.
    half_closed: bool,
    /// The controller closed (`close_notify` or end of stream).
    remote_done: bool,
    drained: Arc<Drained>,
}

impl Pump {
    fn run(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            self.receive()?;
            self.deliver()?;
            if self.remote_done && self.inbound.is_empty() {
                // Closing our end tells the session.
                return Ok(());
            }
            self.take(&mut buf)?;
            self.send()?;
            if self.local_done && !self.tls.wants_write() && !self.half_closed {
                // close_notify is out; what the controller still sends is
                // delivered until it ends too (or nobody reads it).
                let _ = self.tcp.shutdown(Shutdown::Write);
                self.half_closed = true;
                self.drained.set();
            }
            self.wait()?;
        }
    }

    /// Read and decrypt what the controller sent, once the session has
    /// taken the last of it (so a slow reader slows the controller down).
    fn receive(&mut self) -> io::Result<()> {
        if !self.inbound.is_empty() || self.remote_done {
            return Ok(());
        }
        match self.tls.read_tls(&mut self.tcp) {
            Ok(0) => self.remote_done = true,
            Ok(_) => {
                if let Err(e) = self.tls.process_new_packets() {
                    // The alert that says why, if it can go out.
                    let _ = self.tls.write_tls(&mut self.tcp);
                    return Err(invalid(e));
                }
            }
            Err(e) if blocked(&e) => {}
            Err(e) => return Err(e),
        }
        let mut reader = self.tls.reader();
        let mut piece = [0u8; CHUNK];
        loop {
            match reader.read(&mut piece) {
                Ok(0) => {
                    self.remote_done = true;
                    return Ok(());
                }
                Ok(n) => self.inbound.extend_from_slice(&piece[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // The stream ended without close_notify: the same to the session.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.remote_done = true;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn deliver(&mut self) -> io::Result<()> {
        while !self.inbound.is_empty() {
            match self.local.write(&self.inbound) {
                Ok(n) => drop(self.inbound.drain(..n)),
                Err(e) if blocked(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Take what the session wrote, once the last of it went out.
    fn take(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if self.local_done || self.tls.wants_write() {
            return Ok(());
        }
        match self.local.read(buf) {
            Ok(0) => {
                self.local_done = true;
                self.tls.send_close_notify();
                Ok(())
            }
            Ok(n) => self.tls.writer().write_all(&buf[..n]),
            Err(e) if blocked(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(_) => {}
                Err(e) if blocked(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sleep until a step above can progress. A side is polled only for
    /// what we would do with it now, so a closed side we are not reading
    /// yet cannot keep waking us.
    fn wait(&self) -> io::Result<()> {
        let mut remote = PollFlags::empty();
        if self.inbound.is_empty() && !self.remote_done {
            remote |= PollFlags::IN;
        }
        if self.tls.wants_write() {
            remote |= PollFlags::OUT;
        }
        let mut local = PollFlags::empty();
        if !self.local_done && !self.tls.wants_write() {
            local |= PollFlags::IN;
        }
        if !self.inbound.is_empty() {
            local |= PollFlags::OUT;
        }
        let mut fds = Vec::with_capacity(2);
        if !remote.is_empty() {
            fds.push(PollFd::new(&self.tcp, remote));
        }
        if !local.is_empty() {
            fds.push(PollFd::new(&self.local, local));
        }
        loop {
            match poll(&mut fds, None) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn blocked(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ServerConfig, ServerConnection, StreamOwned};

    use super::*;

    /// A TLS echo server on loopback with a self-signed certificate for
    /// 127.0.0.1: its address, that certificate's PEM, and its thread.
    fn echo_server() -> (String, String, thread::JoinHandle<io::Result<()>>) {
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let key = PrivateKeyDer::from_pem_slice(cert.signing_key.serialize_pem().as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = thread::spawn(move || {
            let (tcp, _) = listener.accept()?;
            let mut tls = StreamOwned::new(ServerConnection::new(Arc::new(config)).map_err(invalid)?, tcp);
            let mut buf = [0u8; 4096];
            loop {
                match tls.read(&mut buf)? {
                    0 => break,
                    n => tls.write_all(&buf[..n])?,
                }
            }
            tls.conn.send_close_notify();
            tls.flush()
        });
        (address, cert.cert.pem(), server)
    }

    #[test]
    fn bytes_cross_both_ways_and_an_end_ends_both() {
        let (address, pem, server) = echo_server();
        let tcp = TcpStream::connect(&address).unwrap();
        let (mut link, drained) = connect(tcp, "127.0.0.1", client_config(&pem).unwrap()).unwrap();
        // Much more than the socket buffers hold, so both directions block
        // and resume.
        let sent: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut writer = link.try_clone().unwrap();
        let expected = sent.clone();
        let writing = thread::spawn(move || {
            writer.write_all(&expected).unwrap();
            // Our end of the writing: the pump sends close_notify.
            writer.shutdown(Shutdown::Write).unwrap();
            drained.wait(Duration::from_secs(20));
            assert!(*drained.done.lock().unwrap(), "all sent after the end");
        });
        let mut got = Vec::new();
        link.read_to_end(&mut got).unwrap();
        writing.join().unwrap();
        assert!(got == sent, "{} bytes back of {}", got.len(), sent.len());
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_certificate_for_another_name_or_issuer_fails_the_dial() {
        let (address, pem, _server) = echo_server();
        let err =
            connect(TcpStream::connect(&address).unwrap(), "localhost", client_config(&pem).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("TLS handshake with the controller localhost: invalid peer certificate"),
            "{err}"
        );
        let (address, _, _server) = echo_server();
        let err =
            connect(TcpStream::connect(&address).unwrap(), "127.0.0.1", client_config(&pem).unwrap()).unwrap_err();
        assert!(err.to_string().contains("invalid peer certificate"), "{err}");
    }

    #[test]
    fn a_plaintext_or_silent_peer_fails_the_dial() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (_, pem, _server) = echo_server();
        let hangs_up = thread::spawn(move || drop(listener.accept().unwrap()));
        let err = connect(TcpStream::connect(address).unwrap(), "127.0.0.1", client_config(&pem).unwrap()).unwrap_err();
        hangs_up.join().unwrap();
        assert!(err.to_string().contains("closed the connection") || err.to_string().contains("reset"), "{err}");
    }

    #[test]
    fn trust_must_be_pem_certificates() {
        assert_eq!(client_config("").unwrap_err(), "no certificate in it");
        assert_eq!(client_config("hello").unwrap_err(), "no certificate in it");
        let broken = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(client_config(broken).unwrap_err().starts_with("not PEM certificates"));
    }
}
