//! The remote transport's controller end: one listener every remote
//! container dials (the wire is `lambdabox_protocol::mux`), for hosts that
//! share no socket folder or file system with the controller (a Kubernetes
//! node; or Docker with `--transport remote`, which proves the path here).
//!
//! The pool [`Hub::register`]s each container it starts in remote mode:
//! its id, an unguessable token (32 bytes from the OS), and the code it may
//! fetch. A connection's first frame must be a hello naming a registered id
//! with its token (compared in constant time); anything else is dropped.
//! A container has one session ([`session`]): a second one for the same id
//! is refused. Fetch connections ([`code`]) may come any number of times,
//! for registered digests only. A registration ends when its
//! [`Registration`] is dropped (the container is gone), and with it every
//! way in for that id.
//!
//! A TCP hub may speak TLS ([`tls`]): the handshake happens before the
//! hello and counts against the same time and the same bound on
//! unidentified connections, so a slow or garbled client holds nothing
//! longer than one that says nothing; a plaintext client never gets past
//! it. Containers are told what to trust with their address. A unix-socket
//! hub is reached only through a bind mount, and stays plaintext.

pub mod code;
pub mod session;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambdabox_protocol::mux::{CodeRef, Frame, Hello, Purpose};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::backend::BindMount;
use crate::logs::ContainerLog;
use crate::runtime_api::Mailbox;
pub use code::CodeShelf;

/// Where a unix-socket hub appears inside containers.
pub const SOCKET_TARGET: &str = "/lambdabox/controller.sock";
/// How long a new connection may take to say who it is.
const HELLO_TIME: Duration = Duration::from_secs(5);
/// Connections that have not said who they are yet, at most: guessing or
/// idle clients cannot make us hold more. Over it, accepting waits (the
/// kernel's backlog holds newcomers) rather than dropping anyone.
const UNIDENTIFIED_MAX: usize = 256;

/// Any byte stream a container reached us on.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug + 'static> Io for T {}

/// Where the hub listens: `host:port`, or `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Listen, String> {
        match s.strip_prefix("unix:") {
            Some(path) if path.starts_with('/') => Ok(Listen::Unix(PathBuf::from(path))),
            Some(_) => Err("expected unix:/absolute/path".into()),
            None => s.parse().map(Listen::Tcp).map_err(|e| format!("{e} (expected HOST:PORT or unix:/path)")),
        }
    }
}

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("remote transport listener {what}: {source}")]
    Listen { what: String, source: std::io::Error },
    #[error("code archives: {0}")]
    Code(#[from] code::CodeError),
    #[error("remote transport TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("remote transport TLS is for a TCP --remote-listen; a unix socket is reached only through its mount")]
    TlsOnUnix,
    #[error("containers dial {0:?}, which is not HOST:PORT")]
    Advertised(String),
}

/// What the container learns to find us: `LAMBDABOX_CONTROLLER`'s value,
/// a mount when that is a unix socket, and with TLS the PEM certificates
/// to trust (`LAMBDABOX_CONTROLLER_CA`).
#[derive(Debug, Clone)]
pub struct Access {
    pub controller: String,
    pub mount: Option<BindMount>,
    pub ca: Option<String>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Hub {
    registry: Mutex<HashMap<String, Entry>>,
    code: Arc<CodeShelf>,
    access: Access,
}

/// One registered container.
#[derive(Debug)]
struct Entry {
    token: String,
    /// Taken by its first session connection.
    session: Option<oneshot::Sender<Box<dyn Io>>>,
    code: Arc<Mutex<Vec<CodeRef>>>,
}

/// A container's place in the hub; dropping it unregisters the container.
#[derive(Debug)]
pub struct Registration {
    hub: Arc<Hub>,
    pub id: String,
    /// For `LAMBDABOX_TOKEN`.
    pub token: String,
    /// The code it may fetch (and a generic one is told to fetch).
    pub code: Arc<Mutex<Vec<CodeRef>>>,
    /// Peak memory in bytes, as its init reports it.
    pub peak: Arc<AtomicU64>,
    session: Option<oneshot::Receiver<Box<dyn Io>>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.registry.lock().expect("hub poisoned").remove(&self.id);
    }
}

impl Registration {
    /// Set what the container may fetch.
    pub fn set_code(&self, refs: Vec<CodeRef>) {
        *self.code.lock().expect("registration poisoned") = refs;
    }
}

impl Hub {
    /// Listen on `listen`, keep code archives in `archives`; serves until
    /// the process ends. Containers dial `advertise` if given (the address
    /// they know us by), else the address bound; over TLS from `tls` if
    /// given, its certificate valid for the host they dial.
    pub async fn bind(
        listen: &Listen,
        advertise: Option<String>,
        archives: PathBuf,
        tls: Option<&tls::TlsSource>,
    ) -> Result<Arc<Hub>, RemoteError> {
        let code = Arc::new(CodeShelf::open(archives)?);
        let failed = |source| RemoteError::Listen { what: format!("{listen:?}"), source };
        let (access, acceptor, secure) = match listen {
            Listen::Tcp(addr) => {
                let l = tokio::net::TcpListener::bind(addr).await.map_err(failed)?;
                let bound = l.local_addr().map_err(failed)?;
                let controller = advertise.unwrap_or_else(|| bound.to_string());
                let secure = tls.map(|source| load_tls(source, &controller)).transpose()?;
                let ca = secure.as_ref().map(|s| s.trust.clone());
                (Access { controller, mount: None, ca }, Acceptor::Tcp(l), secure.map(|s| s.acceptor))
            }
            Listen::Unix(_) if tls.is_some() => return Err(RemoteError::TlsOnUnix),
            Listen::Unix(path) => {
                let l = bind_unix(path).map_err(failed)?;
                let mount = BindMount { source: path.clone(), target: SOCKET_TARGET.into(), read_only: true };
                let access = Access { controller: format!("unix:{SOCKET_TARGET}"), mount: Some(mount), ca: None };
                (access, Acceptor::Unix(l), None)
            }
        };
        let hub = Arc::new(Hub { registry: Mutex::default(), code, access });
        tokio::spawn(accept_loop(Arc::downgrade(&hub), acceptor, secure));
        Ok(hub)
    }

    /// How containers reach this hub.
    pub fn access(&self) -> &Access {
        &self.access
    }

    pub fn code(&self) -> &Arc<CodeShelf> {
        &self.code
    }

    /// Admit container `id` from now on, with a fresh token.
    pub fn register(self: &Arc<Self>, id: &str, code: Vec<CodeRef>) -> Registration {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the OS random source");
        let token = hex::encode(secret);
        let (tx, rx) = oneshot::channel();
        let code = Arc::new(Mutex::new(code));
        let entry = Entry { token: token.clone(), session: Some(tx), code: code.clone() };
        self.registry.lock().expect("hub poisoned").insert(id.to_owned(), entry);
        Registration { hub: self.clone(), id: id.to_owned(), token, code, peak: Arc::default(), session: Some(rx) }
    }

    /// Route a connection that said `hello`; `None` drops it.
    fn admit(&self, hello: &Hello) -> Option<Admitted> {
        let mut registry = self.registry.lock().expect("hub poisoned");
        let entry = registry.get_mut(&hello.id)?;
        if !same_secret(&entry.token, &hello.token) {
            return None;
        }
        match hello.purpose {
            Purpose::Session => entry.session.take().map(Admitted::Session),
            Purpose::Fetch => Some(Admitted::Fetch(entry.code.clone())),
        }
    }
}

impl Registration {
    /// The container's session connection, once it dials in (`None` if
    /// the hub is gone).
    pub async fn session(&mut self) -> Option<Box<dyn Io>> {
        self.session.take()?.await.ok()
    }
}

enum Admitted {
    Session(oneshot::Sender<Box<dyn Io>>),
    Fetch(Arc<Mutex<Vec<CodeRef>>>),
}

/// Equal secrets, in time that depends only on their length.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

enum Acceptor {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl Acceptor {
    async fn accept(&self) -> std::io::Result<Box<dyn Io>> {
        Ok(match self {
            Acceptor::Tcp(l) => {
                let (s, _) = l.accept().await?;
                let _ = s.set_nodelay(true);
                notice_silence(&s);
                Box::new(s)
            }
            Acceptor::Unix(l) => Box::new(l.accept().await?.0),
        })
    }
}

/// A container's node can vanish without a word (its power, its link):
/// keepalive probes on an idle connection, and a bound on data left
/// unacknowledged, end its session within about 15 s rather than the
/// kernel's two hours, and with it the container. Best effort.
fn notice_silence(s: &tokio::net::TcpStream) {
    use rustix::net::sockopt;
    let _ = sockopt::set_socket_keepalive(s, true);
    let _ = sockopt::set_tcp_keepidle(s, Duration::from_secs(5));
    let _ = sockopt::set_tcp_keepintvl(s, Duration::from_secs(2));
    let _ = sockopt::set_tcp_keepcnt(s, 3);
    let _ = sockopt::set_tcp_user_timeout(s, 15_000);
}

/// The unix socket containers dial: the controller's user's alone, so in
/// a container only init (root, or holding DAC_OVERRIDE until the function
/// starts) can connect, never the function's user. The token still decides.
fn bind_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn accept_loop(hub: std::sync::Weak<Hub>, acceptor: Acceptor, tls: Option<TlsAcceptor>) {
    let unidentified = Arc::new(Semaphore::new(UNIDENTIFIED_MAX));
    loop {
        let conn = match acceptor.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "remote transport accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(hub) = hub.upgrade() else { return };
        let Ok(permit) = unidentified.clone().acquire_owned().await else { return };
        let tls = tls.clone();
        tokio::spawn(async move {
            let hello = tokio::time::timeout(HELLO_TIME, async move {
                let conn = handshake(conn, tls.as_ref()).await?;
                first_hello(conn).await
            })
            .await;
            drop(permit);
            let Ok(Some((hello, conn))) = hello else { return };
            match hub.admit(&hello) {
                Some(Admitted::Session(tx)) => {
                    let _ = tx.send(conn);
                }
                Some(Admitted::Fetch(code)) => code::serve_fetch(conn, code, hub.code.clone()).await,
                None => {
                    tracing::warn!(container = %hello.id, "refused a remote connection: unknown id, wrong token or a second session")
                }
            }
        });
    }
}

/// TLS for containers that dial `controller`: the certificate must be
/// valid for its host.
fn load_tls(source: &tls::TlsSource, controller: &str) -> Result<tls::ServerTls, RemoteError> {
    let host = lambdabox_protocol::host_of(controller).ok_or_else(|| RemoteError::Advertised(controller.into()))?;
    Ok(tls::ServerTls::load(source, host)?)
}

/// The TLS handshake, when the hub speaks TLS: `None` (drop the
/// connection) if it fails, as it does for a plaintext client.
async fn handshake(conn: Box<dyn Io>, tls: Option<&TlsAcceptor>) -> Option<Box<dyn Io>> {
    let Some(tls) = tls else { return Some(conn) };
    match tls.accept(conn).await {
        Ok(stream) => Some(Box::new(stream)),
        Err(error) => {
            tracing::debug!(%error, "refused a remote connection: TLS handshake failed");
            None
        }
    }
}

/// The hello a connection must open with.
async fn first_hello(mut conn: Box<dyn Io>) -> Option<(Hello, Box<dyn Io>)> {
    match session::read_frame(&mut conn).await {
        Ok(Some(Frame::Hello(hello))) => Some((hello, conn)),
        _ => None,
    }
}

/// Serve container `registration.id`'s session until it ends, then settle
/// its mailbox: a lost connection is the container's death. Runs as the
/// container's server task; aborting it ends the session and unregisters.
pub async fn serve(mut registration: Registration, mailbox: Arc<Mailbox>, log: Arc<ContainerLog>, app: axum::Router) {
    let Some(conn) = registration.session().await else { return };
    let parts = session::Parts {
        mailbox: mailbox.clone(),
        log,
        peak: registration.peak.clone(),
        code: registration.code.clone(),
    };
    session::run(conn, app, parts).await;
    session::lost(&mailbox).await;
}

#[cfg(test)]
mod tests;
