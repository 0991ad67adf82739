//! TLS for the hub's TCP listener: the certificate it presents, and what
//! containers are told to trust (`LAMBDABOX_CONTROLLER_CA`).
//!
//! Either the user's chain and key (`--remote-tls-cert`, `--remote-tls-key`;
//! containers trust `--remote-tls-ca`, else the chain's last certificate),
//! or `--remote-tls auto`: a self-signed certificate for the advertised
//! host, generated once and kept in the data directory, which containers
//! trust alone. Either way the hub checks at start, as init will, that the
//! certificate is valid for the host containers dial: a certificate no
//! container could accept is a start-up error, not a fleet of failing
//! containers. `auto` uses that same check to decide whether the kept
//! certificate still fits (the advertised name changed: a new one).

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// The auto mode's files, in their folder of the data directory.
const AUTO_CERT: &str = "cert.pem";
const AUTO_KEY: &str = "key.pem";

/// Where the hub's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// The user's PEM files: the chain (leaf first), its key, and
    /// optionally the certificates containers trust.
    Files { chain: PathBuf, key: PathBuf, ca: Option<PathBuf> },
    /// A self-signed certificate kept in `dir`.
    Auto { dir: PathBuf },
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {what}", path.display())]
    Pem { path: PathBuf, what: String },
    #[error("the TLS certificate and key: {0}")]
    Config(rustls::Error),
    #[error("containers dial {host}, which a TLS certificate cannot name")]
    Name { host: String },
    #[error("the TLS certificate is not valid for {host}, the host containers dial: {source}")]
    NotFor { host: String, source: rustls::Error },
    #[error("generating a TLS certificate for {host}: {source}")]
    Generate { host: String, source: rcgen::Error },
    #[error("keeping the generated TLS certificate in {}: {source}", path.display())]
    Keep { path: PathBuf, source: io::Error },
}

/// The hub's side of TLS.
#[derive(Clone)]
pub struct ServerTls {
    pub acceptor: TlsAcceptor,
    /// PEM certificates for `LAMBDABOX_CONTROLLER_CA`.
    pub trust: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Set up from `source` for containers dialling `host`.
    pub fn load(source: &TlsSource, host: &str) -> Result<ServerTls, TlsError> {
        match source {
            TlsSource::Files { chain, key, ca } => ServerTls::from_files(chain, key, ca.as_deref(), host),
            TlsSource::Auto { dir } => ServerTls::auto(dir, host),
        }
    }

    fn from_files(chain_path: &Path, key_path: &Path, ca: Option<&Path>, host: &str) -> Result<ServerTls, TlsError> {
        let chain = certificates(chain_path)?;
        let key = private_key(key_path)?;
        // The CA file's certificates, else the chain's top: the CA that
        // signed it, or the leaf itself.
        let trusted = match ca {
            Some(path) => certificates(path)?,
            None => chain[chain.len() - 1..].to_vec(),
        };
        check_name(&chain, &trusted, host)?;
        // Re-encoded: certificates only, whatever else the file held.
        let trust = trusted.iter().map(pem_of).collect();
        ServerTls::new(chain, key, trust)
    }

    /// The kept self-signed certificate if it is valid for `host`, else a
    /// new one, kept for next time.
    fn auto(dir: &Path, host: &str) -> Result<ServerTls, TlsError> {
        let (cert_path, key_path) = (dir.join(AUTO_CERT), dir.join(AUTO_KEY));
        if cert_path.exists() && key_path.exists() {
            match ServerTls::from_files(&cert_path, &key_path, None, host) {
                Ok(tls) => return Ok(tls),
                Err(e) => tracing::info!(reason = %e, "generating a new remote transport certificate"),
            }
        }
        let name = ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Name { host: host.to_owned() })?;
        let generated = |source| TlsError::Generate { host: host.to_owned(), source };
        let key = rcgen::KeyPair::generate().map_err(generated)?;
        let mut params = rcgen::CertificateParams::new(vec![name.to_str().into_owned()]).map_err(generated)?;
        // A name of its own: a client holding another generated certificate
        // then reads "unknown issuer", not a bad signature under a shared name.
        let mut tag = [0u8; 4];
        getrandom::fill(&mut tag).expect("the OS random source");
        let cn = format!("lambdabox controller {host} {}", hex::encode(tag));
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).map_err(generated)?;
        keep(dir, &key_path, &key.serialize_pem(), 0o600)?;
        keep(dir, &cert_path, &cert.pem(), 0o644)?;
        tracing::info!(%host, path = %cert_path.display(), "generated a self-signed remote transport certificate");
        ServerTls::from_files(&cert_path, &key_path, None, host)
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, trust: String) -> Result<Self, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Config)?;
        Ok(ServerTls { acceptor: TlsAcceptor::from(Arc::new(config)), trust })
    }
}

/// Our own choice, not the process default (which kube's client installs).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verify `chain` for `host` as init will: trusting `trusted` alone.
fn check_name(
    chain: &[CertificateDer<'static>],
    trusted: &[CertificateDer<'static>],
    host: &str,
) -> Result<(), TlsError> {
    let not_for = |source| TlsError::NotFor { host: host.to_owned(), source };
    let name = ServerName::try_from(host.to_owned()).map_err(|_| TlsError::Name { host: host.to_owned() })?;
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.clone()).map_err(not_for)?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| not_for(rustls::Error::General(e.to_string())))?;
    verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now()).map_err(not_for)?;
    Ok(())
}

fn read(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// The PEM certificates in `path`, at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let bad = |what: String| TlsError::Pem { path: path.to_owned(), what };
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| TlsError::Pem { path: path.to_owned(), what: format!("no PEM private key in it: {e}") })
}

fn pem_of(cert: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem + "-----END CERTIFICATE-----\n"
}

/// Write `text` to `path` in `dir` (only ours) with `mode`, whole or not
/// at all: a half-written key must not be read back next start.
fn keep(dir: &Path, path: &Path, text: &str, mode: u32) -> Result<(), TlsError> {
    let failed = |source| TlsError::Keep { path: path.to_owned(), source };
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(failed)?;
    crate::private::replace(path, text.as_bytes(), mode).map_err(failed)
}

#[cfg(test)]
mod tests;
