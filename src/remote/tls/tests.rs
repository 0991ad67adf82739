use std::os::unix::fs::PermissionsExt;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use super::*;

/// A CA, and a leaf for `names` it signed: (ca pem, leaf pem, leaf key pem).
pub(crate) fn ca_and_leaf(names: &[&str]) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn files(chain: &Path, key: &Path, ca: Option<&Path>) -> TlsSource {
    TlsSource::Files { chain: chain.to_owned(), key: key.to_owned(), ca: ca.map(Path::to_owned) }
}

#[test]
fn auto_generates_once_keeps_the_key_private_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = TlsSource::Auto { dir: dir.path().join("remote-tls") };
    let first = ServerTls::load(&source, "10.1.2.3").unwrap();
    let key = dir.path().join("remote-tls").join(AUTO_KEY);
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fs::metadata(dir.path().join("remote-tls")).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(first.trust.starts_with("-----BEGIN CERTIFICATE-----\n"), "{}", first.trust);
    let again = ServerTls::load(&source, "10.1.2.3").unwrap();
    assert_eq!(again.trust, first.trust, "a restart reuses the kept certificate");
}

#[test]
fn auto_makes_a_new_certificate_when_the_advertised_name_changes() {
    let dir = tempfile::tempdir().unwrap();
    let source = TlsSource::Auto { dir: dir.path().to_owned() };
    let by_ip = ServerTls::load(&source, "10.1.2.3").unwrap();
    let by_name = ServerTls::load(&source, "lambdabox.lambdabox.svc").unwrap();
    assert_ne!(by_name.trust, by_ip.trust);
    let v6 = ServerTls::load(&source, "fd00::1").unwrap();
    assert_ne!(v6.trust, by_name.trust);
    assert_eq!(ServerTls::load(&source, "fd00::1").unwrap().trust, v6.trust);
}

#[test]
fn auto_replaces_a_damaged_kept_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let source = TlsSource::Auto { dir: dir.path().to_owned() };
    let first = ServerTls::load(&source, "10.1.2.3").unwrap();
    fs::write(dir.path().join(AUTO_CERT), "garbage").unwrap();
    let second = ServerTls::load(&source, "10.1.2.3").unwrap();
    assert_ne!(second.trust, first.trust);
}

#[test]
fn user_files_are_trusted_by_their_chain_top_or_the_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, key) = ca_and_leaf(&["controller.example", "10.0.0.1"]);
    let key = write(dir.path(), "key.pem", &key);
    // Leaf and CA in the chain: containers trust the CA.
    let chain = write(dir.path(), "chain.pem", &format!("{leaf}{ca}"));
    let tls = ServerTls::load(&files(&chain, &key, None), "controller.example").unwrap();
    assert_eq!(tls.trust.trim(), ca.trim());
    // The leaf alone, with the CA named: the CA file's text.
    let alone = write(dir.path(), "leaf.pem", &leaf);
    let ca_file = write(dir.path(), "ca.pem", &ca);
    let tls = ServerTls::load(&files(&alone, &key, Some(&ca_file)), "10.0.0.1").unwrap();
    assert_eq!(tls.trust, ca);
}

#[test]
fn a_certificate_not_for_the_dialled_host_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, key) = ca_and_leaf(&["controller.example"]);
    let chain = write(dir.path(), "chain.pem", &format!("{leaf}{ca}"));
    let key = write(dir.path(), "key.pem", &key);
    let err = ServerTls::load(&files(&chain, &key, None), "10.0.0.1").unwrap_err();
    assert!(matches!(err, TlsError::NotFor { .. }), "{err}");
    assert!(err.to_string().contains("not valid for 10.0.0.1"), "{err}");
    // Nor does a CA that did not sign it make it acceptable.
    let (other_ca, _, _) = ca_and_leaf(&["controller.example"]);
    let other = write(dir.path(), "other.pem", &other_ca);
    let alone = write(dir.path(), "leaf.pem", &leaf);
    let err = ServerTls::load(&files(&alone, &key, Some(&other)), "controller.example").unwrap_err();
    assert!(matches!(err, TlsError::NotFor { .. }), "{err}");
}

#[test]
fn unreadable_garbled_or_mismatched_files_say_which() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, key) = ca_and_leaf(&["controller.example"]);
    let chain = write(dir.path(), "chain.pem", &format!("{leaf}{ca}"));
    let key = write(dir.path(), "key.pem", &key);
    let missing = dir.path().join("missing.pem");
    let err = ServerTls::load(&files(&missing, &key, None), "controller.example").unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }) && err.to_string().contains("missing.pem"), "{err}");
    let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
    let err = ServerTls::load(&files(&garbage, &key, None), "controller.example").unwrap_err();
    assert!(matches!(err, TlsError::Pem { .. }) && err.to_string().contains("garbage.pem"), "{err}");
    let err = ServerTls::load(&files(&chain, &chain, None), "controller.example").unwrap_err();
    assert!(err.to_string().contains("no PEM private key"), "{err}");
    let (_, _, other_key) = ca_and_leaf(&["controller.example"]);
    let other_key = write(dir.path(), "other-key.pem", &other_key);
    let err = ServerTls::load(&files(&chain, &other_key, None), "controller.example").unwrap_err();
    assert!(matches!(err, TlsError::Config(_)), "{err}");
}

#[test]
fn a_host_no_certificate_can_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = ServerTls::load(&TlsSource::Auto { dir: dir.path().to_owned() }, "bad host!").unwrap_err();
    assert!(matches!(err, TlsError::Name { .. }), "{err}");
}
