//! Key pairs: generated, read from a credentials file or the environment,
//! and the set of them the controller accepts.
//!
//! A credentials file (`serve --credentials-file`, and the generated key
//! file) holds one pair a line, `ACCESS_KEY_ID SECRET_ACCESS_KEY`; blank lines
//! and lines starting with `#` are ignored. The client side also reads AWS's
//! shared credentials file (`~/.aws/credentials`, an ini file of profiles).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Characters of generated keys: upper-case letters and digits for the key
/// id (like AWS's), letters and digits for the secret (nothing a shell or an
/// ini file would need quoted).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Generated access key ids: this prefix, then random characters, 20 in all.
pub const GENERATED_PREFIX: &str = "LBX";
const GENERATED_ID_LEN: usize = 20;
const GENERATED_SECRET_LEN: usize = 40;
/// Shortest secret the controller accepts: a signed request is enough to
/// guess a short secret offline, so it must not be guessable.
pub const MIN_SECRET_LEN: usize = 16;
const MAX_ID_LEN: usize = 128;

pub const ENV_ACCESS_KEY_ID: &str = "LAMBDABOX_ACCESS_KEY_ID";
pub const ENV_SECRET_ACCESS_KEY: &str = "LAMBDABOX_SECRET_ACCESS_KEY";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line}: {problem}")]
    Line { path: PathBuf, line: usize, problem: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
}

/// An access key: its id, which travels in every request, and its secret,
/// which never does (and is never printed by `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    access_key_id: String,
    secret: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

impl KeyPair {
    /// A pair to sign with. The id must fit in a credential scope
    /// (`ID/DATE/REGION/...`): letters, digits and `_`, 1–128 of them.
    pub fn new(access_key_id: &str, secret: &str) -> Result<KeyPair, CredentialsError> {
        let id_ok = (1..=MAX_ID_LEN).contains(&access_key_id.len())
            && access_key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !id_ok {
            return Err(CredentialsError::Invalid(format!(
                "access key id '{access_key_id}': expected 1 to {MAX_ID_LEN} letters, digits or _"
            )));
        }
        if secret.is_empty() || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CredentialsError::Invalid(format!(
                "the secret of {access_key_id}: expected printable ASCII without spaces"
            )));
        }
        Ok(KeyPair { access_key_id: access_key_id.to_owned(), secret: secret.to_owned() })
    }

    /// A fresh pair from the operating system's CSPRNG: `LBX` and 17
    /// characters for the id, 40 characters (about 238 bits) for the secret.
    pub fn generate() -> Result<KeyPair, CredentialsError> {
        let id =
            format!("{GENERATED_PREFIX}{}", random_string(ID_ALPHABET, GENERATED_ID_LEN - GENERATED_PREFIX.len())?);
        let secret = random_string(SECRET_ALPHABET, GENERATED_SECRET_LEN)?;
        Ok(KeyPair { access_key_id: id, secret })
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The pair as a credentials-file line.
    pub fn to_line(&self) -> String {
        format!("{} {}\n", self.access_key_id, self.secret)
    }
}

/// `len` characters of `alphabet`, uniformly: random bytes that would bias
/// the modulo (those at or above the largest multiple of the alphabet's
/// size) are drawn again.
fn random_string(alphabet: &[u8], len: usize) -> Result<String, CredentialsError> {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| CredentialsError::Random(e.to_string()))?;
        for b in buf.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[b % alphabet.len()]));
        }
    }
    Ok(out)
}

/// Parse credentials-file text (`path` names it in errors).
pub fn parse(text: &str, path: &Path) -> Result<Vec<KeyPair>, CredentialsError> {
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let problem = |problem: String| CredentialsError::Line { path: path.to_owned(), line: i + 1, problem };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [id, secret] = fields[..] else {
            return Err(problem("expected ACCESS_KEY_ID SECRET_ACCESS_KEY".into()));
        };
        pairs.push(KeyPair::new(id, secret).map_err(|e| problem(e.to_string()))?);
    }
    Ok(pairs)
}

/// Read a credentials file.
pub fn read_file(path: &Path) -> Result<Vec<KeyPair>, CredentialsError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| CredentialsError::Read { path: path.to_owned(), source })?;
    parse(&text, path)
}

/// The pair in `LAMBDABOX_ACCESS_KEY_ID` and `LAMBDABOX_SECRET_ACCESS_KEY`:
/// both or neither.
pub fn from_env() -> Result<Option<KeyPair>, CredentialsError> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (get(ENV_ACCESS_KEY_ID), get(ENV_SECRET_ACCESS_KEY)) {
        (Some(id), Some(secret)) => KeyPair::new(&id, &secret).map(Some),
        (None, None) => Ok(None),
        _ => Err(CredentialsError::Invalid(format!(
            "set both {ENV_ACCESS_KEY_ID} and {ENV_SECRET_ACCESS_KEY}, or neither"
        ))),
    }
}

/// The key pairs the controller accepts, by access key id.
#[derive(Debug, Clone)]
pub struct KeyRing {
    by_id: HashMap<String, KeyPair>,
    /// The first pair: what the controller signs its own URLs with.
    primary: KeyPair,
}

impl KeyRing {
    /// At least one pair; an id may appear once (twice only with the same
    /// secret); every secret at least [`MIN_SECRET_LEN`] characters.
    pub fn new(pairs: Vec<KeyPair>) -> Result<KeyRing, CredentialsError> {
        let primary = pairs.first().cloned().ok_or_else(|| CredentialsError::Invalid("no key pairs".into()))?;
        let mut by_id = HashMap::new();
        for pair in pairs {
            if pair.secret.len() < MIN_SECRET_LEN {
                return Err(CredentialsError::Invalid(format!(
                    "the secret of {} is shorter than {MIN_SECRET_LEN} characters",
                    pair.access_key_id
                )));
            }
            if let Some(earlier) = by_id.get(&pair.access_key_id) {
                if earlier != &pair {
                    return Err(CredentialsError::Invalid(format!(
                        "access key id {} is given twice with different secrets",
                        pair.access_key_id
                    )));
                }
            }
            by_id.insert(pair.access_key_id.clone(), pair);
        }
        Ok(KeyRing { by_id, primary })
    }

    pub fn get(&self, access_key_id: &str) -> Option<&KeyPair> {
        self.by_id.get(access_key_id)
    }

    pub fn primary(&self) -> &KeyPair {
        &self.primary
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The pair AWS's credential chain would sign with, as far as static keys
/// go: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, else profile
/// `$AWS_PROFILE` (or `default`) of `$AWS_SHARED_CREDENTIALS_FILE` (or
/// `~/.aws/credentials`). Session tokens and SSO are not looked at: the
/// controller knows only static key pairs.
pub fn aws_chain() -> Option<KeyPair> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) = (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        return KeyPair::new(&id, &secret).ok();
    }
    let file = match get("AWS_SHARED_CREDENTIALS_FILE") {
        Some(f) => PathBuf::from(f),
        None => PathBuf::from(get("HOME")?).join(".aws/credentials"),
    };
    let text = std::fs::read_to_string(file).ok()?;
    aws_profile(&text, &get("AWS_PROFILE").unwrap_or_else(|| "default".into()))
}

/// The static keys of `profile` in a shared credentials (ini) file.
pub fn aws_profile(text: &str, profile: &str) -> Option<KeyPair> {
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
        } else if let Some((key, value)) = line.split_once('=').filter(|_| in_profile) {
            match key.trim() {
                "aws_access_key_id" => id = Some(value.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    KeyPair::new(&id?, &secret?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_look_like_aws_keys_and_differ() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        assert_eq!(a.access_key_id().len(), 20);
        assert!(a.access_key_id().starts_with("LBX"));
        assert!(a.access_key_id().bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_eq!(a.secret().len(), 40);
        assert!(a.secret().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(a.secret()), "Debug never shows the secret");
        KeyRing::new(vec![a, b]).expect("generated secrets are long enough");
    }

    #[test]
    fn credentials_files_hold_one_pair_a_line() {
        let text = "# lambdabox keys\n\nAKIAONE  secretsecretsecret1\n\tAKIATWO secretsecretsecret2 \n";
        let pairs = parse(text, Path::new("f")).unwrap();
        assert_eq!(pairs.iter().map(KeyPair::access_key_id).collect::<Vec<_>>(), ["AKIAONE", "AKIATWO"]);
        assert_eq!(pairs[1].secret(), "secretsecretsecret2");
        let err = parse("AKIA\n", Path::new("f")).unwrap_err().to_string();
        assert_eq!(err, "f line 1: expected ACCESS_KEY_ID SECRET_ACCESS_KEY");
        assert!(parse("AKIA/x secretsecretsecret\n", Path::new("f")).is_err(), "no / in ids");
        assert!(parse("A B C\n", Path::new("f")).is_err());
    }

    #[test]
    fn key_rings_refuse_weak_or_conflicting_secrets() {
        let pair = |id: &str, s: &str| KeyPair::new(id, s).unwrap();
        assert!(KeyRing::new(vec![]).is_err());
        assert!(KeyRing::new(vec![pair("A", "short")]).is_err());
        assert!(KeyRing::new(vec![pair("A", "secretsecretsecret1"), pair("A", "secretsecretsecret2")]).is_err());
        let ring = KeyRing::new(vec![pair("A", "secretsecretsecret1"), pair("B", "secretsecretsecret2")]).unwrap();
        assert_eq!(ring.get("B").unwrap().secret(), "secretsecretsecret2");
        assert!(ring.get("C").is_none());
        assert_eq!(ring.primary().access_key_id(), "A");
    }

    #[test]
    fn aws_profiles_are_found_by_name() {
        let ini = "[default]\naws_access_key_id = D1\naws_secret_access_key = dsecret\n\n\
                   [profile other]\nregion=x\n[other]\naws_access_key_id=O1\naws_secret_access_key=osecret\n";
        assert_eq!(aws_profile(ini, "default").unwrap().access_key_id(), "D1");
        assert_eq!(aws_profile(ini, "other").unwrap().secret(), "osecret");
        assert!(aws_profile(ini, "missing").is_none());
    }
}
