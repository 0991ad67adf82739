//! Code archives: a folder (a function's unpacked code, or its merged
//! layers) as one byte stream, which the controller serves and
//! `lambdabox-init fetch` unpacks where no file system is shared.
//!
//! Our own small format rather than tar: it has only what a code folder
//! holds (folders, regular files, symlinks), so the unpacker has nothing
//! else to refuse, and every field is length-prefixed. An archive is named
//! by the SHA-256 of its bytes ([`crate::sha256`]); the controller writes
//! entries in a fixed order, so one folder always gives one digest.
//!
//! ```text
//! MAGIC, then entries, then END:
//!   kind u8 ('d' folder, 'f' file, 'l' symlink), mode u32, path (u16 length + bytes)
//!   'f': size u64, then that many bytes
//!   'l': target (u16 length + bytes)
//! END: the single byte 'E'
//! ```
//!
//! Paths are relative, `/`-separated, with no empty, `.` or `..` component
//! ([`check_path`]); symlink targets are relative and stay inside the
//! archive's root ([`check_link`]). A decoder refuses anything else, and
//! counts entries and bytes against [`Limits`].

use std::fmt;
use std::io::{self, Read, Write};

/// The first bytes of every archive.
pub const MAGIC: &[u8; 8] = b"LBXCODE1";
/// Longest path or symlink target.
pub const MAX_PATH: usize = 4096;

const DIR: u8 = b'd';
const FILE: u8 = b'f';
const LINK: u8 = b'l';
const END: u8 = b'E';

/// What an archive may hold, at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    /// Sum of file sizes.
    pub max_bytes: u64,
}

impl Default for Limits {
    /// Lambda's own ceiling is 250 MB unzipped for code and layers together.
    fn default() -> Self {
        Limits { max_entries: 100_000, max_bytes: 300 * 1024 * 1024 }
    }
}

/// One entry. A `File`'s content follows it in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir { path: String, mode: u32 },
    File { path: String, mode: u32, size: u64 },
    Symlink { path: String, target: String },
    End,
}

/// Why an archive was refused.
#[derive(Debug)]
pub enum ArchiveError {
    Io(io::Error),
    BadMagic,
    UnknownKind(u8),
    /// An absolute path, an empty, `.` or `..` component, a NUL, non-UTF-8.
    BadPath(String),
    /// A symlink that is absolute or climbs out of the archive's root.
    EscapingLink {
        path: String,
        target: String,
    },
    TooManyEntries,
    TooLarge,
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::Io(e) => write!(f, "archive I/O: {e}"),
            ArchiveError::BadMagic => write!(f, "not a code archive"),
            ArchiveError::UnknownKind(k) => write!(f, "entry of unknown kind {k:#04x}"),
            ArchiveError::BadPath(p) => write!(f, "path {p:?} is not a plain relative path"),
            ArchiveError::EscapingLink { path, target } => {
                write!(f, "symlink {path:?} -> {target:?} leaves the folder")
            }
            ArchiveError::TooManyEntries => write!(f, "too many entries"),
            ArchiveError::TooLarge => write!(f, "files add up to more than the limit"),
        }
    }
}

impl std::error::Error for ArchiveError {}

impl From<io::Error> for ArchiveError {
    fn from(e: io::Error) -> Self {
        ArchiveError::Io(e)
    }
}

/// A plain relative path: non-empty, no leading `/`, no empty, `.` or `..`
/// component, no NUL, at most [`MAX_PATH`] bytes.
pub fn check_path(path: &str) -> Result<(), ArchiveError> {
    let plain = !path.is_empty()
        && path.len() <= MAX_PATH
        && !path.contains('\0')
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if plain {
        Ok(())
    } else {
        Err(ArchiveError::BadPath(path.to_owned()))
    }
}

/// A symlink at `path` pointing at `target` stays inside the root: the
/// target is relative and, walked from the link's folder, never climbs
/// above the root.
pub fn check_link(path: &str, target: &str) -> Result<(), ArchiveError> {
    let escaping = || ArchiveError::EscapingLink { path: path.to_owned(), target: target.to_owned() };
    if target.is_empty() || target.starts_with('/') || target.contains('\0') || target.len() > MAX_PATH {
        return Err(escaping());
    }
    let mut depth = path.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return Err(escaping());
        }
    }
    Ok(())
}

/// Writes an archive. Call [`Encoder::finish`] at the end.
#[derive(Debug)]
pub struct Encoder<W: Write> {
    out: W,
}

impl<W: Write> Encoder<W> {
    pub fn new(mut out: W) -> io::Result<Encoder<W>> {
        out.write_all(MAGIC)?;
        Ok(Encoder { out })
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.head(DIR, mode, path)
    }

    /// A file of `size` bytes, all read from `content`.
    pub fn file(&mut self, path: &str, mode: u32, size: u64, content: impl Read) -> io::Result<()> {
        self.head(FILE, mode, path)?;
        self.out.write_all(&size.to_be_bytes())?;
        let copied = io::copy(&mut content.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{path} shrank while archived")));
        }
        Ok(())
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.head(LINK, 0o777, path)?;
        self.text(target)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[END])?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn head(&mut self, kind: u8, mode: u32, path: &str) -> io::Result<()> {
        check_path(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        self.out.write_all(&[kind])?;
        self.out.write_all(&mode.to_be_bytes())?;
        self.text(path)
    }

    fn text(&mut self, text: &str) -> io::Result<()> {
        let len =
            u16::try_from(text.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path too long"))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(text.as_bytes())
    }
}

/// Reads an archive entry by entry. After a [`Entry::File`], read its
/// content with [`Decoder::content`] (what is left unread is skipped by the
/// next [`Decoder::next_entry`]).
#[derive(Debug)]
pub struct Decoder<R: Read> {
    input: R,
    limits: Limits,
    entries: usize,
    bytes: u64,
    /// Content of the last file not read yet.
    unread: u64,
    ended: bool,
}

impl<R: Read> Decoder<R> {
    pub fn new(mut input: R, limits: Limits) -> Result<Decoder<R>, ArchiveError> {
        let mut magic = [0u8; MAGIC.len()];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(ArchiveError::BadMagic);
        }
        Ok(Decoder { input, limits, entries: 0, bytes: 0, unread: 0, ended: false })
    }

    pub fn next_entry(&mut self) -> Result<Entry, ArchiveError> {
        if self.ended {
            return Ok(Entry::End);
        }
        io::copy(&mut (&mut self.input).take(self.unread), &mut io::sink())?;
        self.unread = 0;
        let kind = self.u8()?;
        if kind == END {
            self.ended = true;
            return Ok(Entry::End);
        }
        if !matches!(kind, DIR | FILE | LINK) {
            return Err(ArchiveError::UnknownKind(kind));
        }
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries);
        }
        let mode = u32::from_be_bytes(self.array()?);
        let path = self.text()?;
        check_path(&path)?;
        match kind {
            DIR => Ok(Entry::Dir { path, mode }),
            FILE => {
                let size = u64::from_be_bytes(self.array()?);
                self.bytes = self.bytes.saturating_add(size);
                if self.bytes > self.limits.max_bytes {
                    return Err(ArchiveError::TooLarge);
                }
                self.unread = size;
                Ok(Entry::File { path, mode, size })
            }
            _ => {
                let target = self.text()?;
                check_link(&path, &target)?;
                Ok(Entry::Symlink { path, target })
            }
        }
    }

    /// The content of the file [`Decoder::next_entry`] just returned.
    pub fn content(&mut self) -> impl Read + '_ {
        let size = std::mem::take(&mut self.unread);
        (&mut self.input).take(size)
    }

    /// The reader, once [`Entry::End`] was returned (to check nothing follows).
    pub fn into_inner(self) -> R {
        self.input
    }

    fn u8(&mut self) -> Result<u8, ArchiveError> {
        Ok(self.array::<1>()?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ArchiveError> {
        let mut b = [0u8; N];
        self.input.read_exact(&mut b)?;
        Ok(b)
    }

    fn text(&mut self) -> Result<String, ArchiveError> {
        let len = usize::from(u16::from_be_bytes(self.array()?));
        if len > MAX_PATH {
            return Err(ArchiveError::BadPath(format!("<{len} bytes>")));
        }
        let mut bytes = vec![0u8; len];
        self.input.read_exact(&mut bytes)?;
        String::from_utf8(bytes).map_err(|e| ArchiveError::BadPath(String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut e = Encoder::new(Vec::new()).unwrap();
        e.dir("pkg", 0o755).unwrap();
        e.file("pkg/app.py", 0o644, 5, &b"hello"[..]).unwrap();
        e.symlink("pkg/link.py", "app.py").unwrap();
        e.file("run", 0o755, 0, &b""[..]).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn archives_round_trip() {
        let bytes = sample();
        let mut d = Decoder::new(&bytes[..], Limits::default()).unwrap();
        assert_eq!(d.next_entry().unwrap(), Entry::Dir { path: "pkg".into(), mode: 0o755 });
        assert_eq!(d.next_entry().unwrap(), Entry::File { path: "pkg/app.py".into(), mode: 0o644, size: 5 });
        let mut content = String::new();
        d.content().read_to_string(&mut content).unwrap();
        assert_eq!(content, "hello");
        assert_eq!(d.next_entry().unwrap(), Entry::Symlink { path: "pkg/link.py".into(), target: "app.py".into() });
        assert!(matches!(d.next_entry().unwrap(), Entry::File { size: 0, .. }));
        assert_eq!(d.next_entry().unwrap(), Entry::End);
        assert!(d.into_inner().is_empty());
    }

    #[test]
    fn unread_content_is_skipped() {
        let bytes = sample();
        let mut d = Decoder::new(&bytes[..], Limits::default()).unwrap();
        d.next_entry().unwrap();
        d.next_entry().unwrap();
        assert!(matches!(d.next_entry().unwrap(), Entry::Symlink { .. }));
    }

    #[test]
    fn paths_and_links_stay_inside() {
        for bad in ["", "/etc/passwd", "a/../b", "..", "./a", "a//b", "a/", "a\0b"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        check_path("a/b.c/d").unwrap();
        check_link("a/b", "c").unwrap();
        check_link("a/b", "../c").unwrap();
        check_link("a/b", "./../x/../y").unwrap();
        for (path, target) in [("a", "../x"), ("a/b", "../../x"), ("a", "/etc"), ("a", ""), ("a/b", "x/../../../y")] {
            assert!(check_link(path, target).is_err(), "{path} -> {target}");
        }
    }

    /// Hand-made hostile archives: each refused, none allocating what it claims.
    #[test]
    fn hostile_archives_are_refused() {
        let entry = |kind: u8, path: &str, tail: &[u8]| {
            let mut b = MAGIC.to_vec();
            b.push(kind);
            b.extend_from_slice(&0o644u32.to_be_bytes());
            b.extend_from_slice(&(path.len() as u16).to_be_bytes());
            b.extend_from_slice(path.as_bytes());
            b.extend_from_slice(tail);
            b
        };
        let first = |bytes: Vec<u8>| Decoder::new(&bytes[..], Limits::default()).and_then(|mut d| d.next_entry());
        assert!(matches!(first(entry(b'b', "dev", &[])), Err(ArchiveError::UnknownKind(b'b'))), "no devices");
        assert!(matches!(first(entry(FILE, "../x", &[0; 8])), Err(ArchiveError::BadPath(_))));
        assert!(matches!(first(entry(FILE, "/x", &[0; 8])), Err(ArchiveError::BadPath(_))));
        let mut link = 4u16.to_be_bytes().to_vec();
        link.extend_from_slice(b"/etc");
        assert!(matches!(first(entry(LINK, "x", &link)), Err(ArchiveError::EscapingLink { .. })));
        assert!(matches!(first(entry(FILE, "big", &u64::MAX.to_be_bytes())), Err(ArchiveError::TooLarge)));
        assert!(matches!(first(b"NOTANARC".to_vec()), Err(ArchiveError::BadMagic)));
        assert!(matches!(first(entry(DIR, "d", &[])[..12].to_vec()), Err(ArchiveError::Io(_))), "truncated");
        let mut many = MAGIC.to_vec();
        for i in 0..3 {
            many.extend_from_slice(&entry(DIR, &format!("d{i}"), &[])[MAGIC.len()..]);
        }
        let mut d = Decoder::new(&many[..], Limits { max_entries: 2, max_bytes: 10 }).unwrap();
        d.next_entry().unwrap();
        d.next_entry().unwrap();
        assert!(matches!(d.next_entry(), Err(ArchiveError::TooManyEntries)));
    }
}
