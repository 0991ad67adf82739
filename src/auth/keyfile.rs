//! The generated key pair's file, `DATA_DIR/credentials`: made by the
//! controller at its first start when no credentials are configured, read
//! back at every later start, and read by the `lambdabox` CLI (run by the
//! same user) so that it needs no configuration.
//!
//! The file is in the credentials-file format (one `ACCESS_KEY_ID SECRET`
//! line) and mode 0600 in the 0700 data directory: only the controller's
//! user can read it.

use std::io;
use std::path::{Path, PathBuf};

use super::credentials::{self, CredentialsError, KeyPair};

pub const FILE_NAME: &str = "credentials";

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("{0}: expected exactly one key pair")]
    NotOnePair(PathBuf),
}

/// Where the generated pair of `data_dir` lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The controller's generated pair: read from the data directory, or made
/// now (first start) and written there. Returns whether it was made now.
pub fn load_or_generate(data_dir: &Path) -> Result<(KeyPair, bool), KeyFileError> {
    let file = path(data_dir);
    let io_err = |source| KeyFileError::Io { path: file.clone(), source };
    crate::private::dir(data_dir).map_err(|source| KeyFileError::Io { path: data_dir.to_owned(), source })?;
    if let Some(pair) = read(data_dir)? {
        return Ok((pair, false));
    }
    let pair = KeyPair::generate()?;
    let contents = format!(
        "# lambdabox API key pair, generated at first start; only this user can read it.\n\
         # `lambdabox credentials` prints it as AWS environment variables.\n{}",
        pair.to_line()
    );
    match crate::private::create_new(&file, contents.as_bytes()) {
        Ok(()) => Ok((pair, true)),
        // Another controller on the same data directory was quicker: use its pair.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read(data_dir)?.map(|p| (p, false)).ok_or(KeyFileError::NotOnePair(file))
        }
        Err(e) => Err(io_err(e)),
    }
}

/// The generated pair of `data_dir`, if there is one; an unreadable file
/// (another user's data directory) is an error.
pub fn read(data_dir: &Path) -> Result<Option<KeyPair>, KeyFileError> {
    let file = path(data_dir);
    let bytes = match crate::private::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KeyFileError::Io { path: file, source }),
    };
    let text = String::from_utf8_lossy(&bytes);
    match credentials::parse(&text, &file)?.as_slice() {
        [pair] => Ok(Some(pair.clone())),
        _ => Err(KeyFileError::NotOnePair(file)),
    }
}

/// Remove the generated pair, which configured credentials replace: left
/// behind, it would no longer be accepted, yet the CLI would still sign
/// with it. Returns whether there was one.
pub fn remove(data_dir: &Path) -> Result<bool, KeyFileError> {
    let file = path(data_dir);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(KeyFileError::Io { path: file, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_pair_is_generated_once_private_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        assert!(read(&data).unwrap().is_none());
        let (first, made) = load_or_generate(&data).unwrap();
        assert!(made);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path(&data)), 0o600);
        assert_eq!(mode(&data), 0o700);
        let (again, made) = load_or_generate(&data).unwrap();
        assert_eq!((again, made), (first.clone(), false));
        assert_eq!(read(&data).unwrap(), Some(first));
        assert!(remove(&data).unwrap());
        assert!(!remove(&data).unwrap());
        let (fresh, made) = load_or_generate(&data).unwrap();
        assert!(made && read(&data).unwrap() == Some(fresh));
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_new_pair() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(path(tmp.path()), "AKIA1 secretsecretsecret1\nAKIA2 secretsecretsecret2\n").unwrap();
        assert!(matches!(load_or_generate(tmp.path()), Err(KeyFileError::NotOnePair(_))));
    }
}
