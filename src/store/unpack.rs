//! Unpacking a zip so that the kernel never follows a link on our behalf.
//!
//! Zips may hold symbolic links (`node_modules/.bin`, versioned `.so`
//! names), and they are kept: inside a container they resolve against the
//! container's own filesystem. What must never happen is the controller,
//! which runs as root, following one while it unpacks. Links that each look
//! harmless chain (`u0 -> .`, `u1 -> u0/..`, … climb one level each), so no
//! check of a target's text can tell where it leads. Instead nothing here
//! opens a path: every entry is made one component at a time, relative to
//! a descriptor of its parent folder, opened with `O_NOFOLLOW` and (where
//! the kernel has `openat2`) `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`. A
//! link is only ever created as an entry's last component, and one met on
//! the way to another entry is refused, never followed.
//!
//! Every byte read from the archive counts against [`Limits::max_bytes`],
//! link targets included, and reads are capped as they stream: sizes the
//! zip declares are not trusted. Modes are set explicitly (0755 folders,
//! 0755 or 0644 files), never left to the umask or the zip.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Cursor, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::function::{MAX_UNZIPPED_BYTES, MAX_ZIP_ENTRIES};

/// Linux's longest file name (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// Linux's longest path (`PATH_MAX`, its terminating NUL included): the
/// most an entry name may hold.
const PATH_MAX: usize = 4096;
/// The longest link target the kernel stores: `PATH_MAX` with its NUL.
const MAX_TARGET: usize = PATH_MAX - 1;

/// How much one archive may make the controller do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes read from the archive: file contents and link targets.
    pub max_bytes: u64,
    /// Entries, whatever they are.
    pub max_entries: usize,
}

impl Limits {
    /// Lambda's 250 MB unzipped and lambdabox's entry limit.
    pub const LAMBDA: Limits = Limits { max_bytes: MAX_UNZIPPED_BYTES, max_entries: MAX_ZIP_ENTRIES };
}

/// Why an archive was refused or could not be unpacked. All but
/// [`UnpackError::Io`] are the uploader's doing.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The bytes are not a zip archive Lambda would accept.
    #[error("Could not unzip uploaded file. Please check your file, then try to upload again. ({0})")]
    InvalidZip(String),
    /// An entry would land outside the folder, or reach it through a link.
    #[error("Could not unzip uploaded file: entry '{0}' would be written outside of the function's code folder")]
    UnsafeEntry(String),
    /// An entry's name, or one part of it, is longer than Linux allows.
    #[error(
        "Could not unzip uploaded file: entry name '{0}' is too long \
         (at most {PATH_MAX} bytes, each part at most {NAME_MAX} bytes)"
    )]
    NameTooLong(String),
    /// A link's target is longer than Linux allows.
    #[error("Could not unzip uploaded file: the target of symbolic link '{0}' is longer than {MAX_TARGET} bytes")]
    TargetTooLong(String),
    /// Unpacked, the archive is over [`Limits::max_bytes`].
    #[error("Unzipped size must be smaller than {0} bytes")]
    TooLarge(u64),
    /// The archive has more than [`Limits::max_entries`] entries.
    #[error("Could not unzip uploaded file: it has {0} entries; lambdabox unpacks at most {1}")]
    TooManyEntries(usize, usize),
    #[error("code store I/O: {0}")]
    Io(#[from] io::Error),
}

fn invalid(e: impl std::fmt::Display) -> UnpackError {
    UnpackError::InvalidZip(e.to_string())
}

/// Unpack `zip` into the folder `dest` (created if missing; a later
/// archive's files replace an earlier one's, as layers merge), within
/// `limits`. Blocking.
pub fn unpack(zip: &[u8], dest: &Path, limits: &Limits) -> Result<(), UnpackError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip)).map_err(invalid)?;
    if archive.len() > limits.max_entries {
        return Err(UnpackError::TooManyEntries(archive.len(), limits.max_entries));
    }
    fs::create_dir_all(dest)?;
    let root = rustix::fs::open(dest, dir_flags(), Mode::empty()).map_err(io::Error::from)?;
    rustix::fs::fchmod(&root, DIR_MODE).map_err(io::Error::from)?;
    let mut budget = limits.max_bytes;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(invalid)?;
        unpack_entry(root.as_fd(), entry, &mut budget, limits)?;
    }
    Ok(())
}

/// Make one entry below `root`, folder by folder.
fn unpack_entry(
    root: BorrowedFd<'_>,
    mut entry: zip::read::ZipFile<'_, Cursor<&[u8]>>,
    budget: &mut u64,
    limits: &Limits,
) -> Result<(), UnpackError> {
    let name = entry.name().map_err(invalid)?.into_owned();
    let parts = entry_parts(&name)?;
    let Some((last, parents)) = parts.split_last() else { return Ok(()) };
    let mut held: Option<OwnedFd> = None;
    for (i, part) in parents.iter().enumerate() {
        let at = held.as_ref().map_or(root, AsFd::as_fd);
        held = Some(enter(at, part).map_err(|e| refusal(e, &name, &parts[..=i]))?);
    }
    let dir = held.as_ref().map_or(root, AsFd::as_fd);
    if entry.is_dir() {
        enter(dir, last).map_err(|e| refusal(e, &name, &parts))?;
    } else if entry.is_symlink() {
        let target = read_target(&mut entry, budget, &name, limits)?;
        replace(dir, last, &name)?;
        rustix::fs::symlinkat(OsStr::from_bytes(&target), dir, *last).map_err(io::Error::from)?;
    } else {
        let executable = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
        replace(dir, last, &name)?;
        write_file(dir, last, &mut entry, budget, executable, limits)?;
    }
    Ok(())
}

/// The folders' mode: readable and searchable by the sandbox user.
const DIR_MODE: Mode = Mode::from_raw_mode(0o755);

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Open the single component `name` below `dir`, never through a link:
/// `openat2` confines the lookup; kernels without it (before 5.6) get
/// `openat`, equally safe for one component under `O_NOFOLLOW`.
fn open_beneath(dir: BorrowedFd<'_>, name: &str, flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(dir, name, flags, mode, resolve) {
        Err(Errno::NOSYS) => rustix::fs::openat(dir, name, flags, mode),
        other => other,
    }
}

/// The folder `name` below `dir`, made (0755) if missing. Fails with
/// `ELOOP` or `ENOTDIR` when `name` is a link or a file.
fn enter(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Errno> {
    match open_beneath(dir, name, dir_flags(), Mode::empty()) {
        Err(Errno::NOENT) => {
            rustix::fs::mkdirat(dir, name, DIR_MODE)?;
            let made = open_beneath(dir, name, dir_flags(), Mode::empty())?;
            rustix::fs::fchmod(&made, DIR_MODE)?;
            Ok(made)
        }
        other => other,
    }
}

/// Turn a failure to enter `parts` of entry `name` into why: a link or a
/// file in the way is the zip's doing, anything else the disk's.
fn refusal(e: Errno, name: &str, parts: &[&str]) -> UnpackError {
    if e == Errno::LOOP || e == Errno::NOTDIR {
        let at = parts.join("/");
        tracing::warn!(entry = name, at = %at, "refused a zip entry that goes through a link or a file");
        UnpackError::UnsafeEntry(format!("{name} (through '{at}', a symbolic link or a file)"))
    } else {
        UnpackError::Io(e.into())
    }
}

/// Make room for a new file or link `name` below `dir`: an earlier one of
/// that name (a link is removed, not followed) goes; a folder stays and
/// refuses the entry.
fn replace(dir: BorrowedFd<'_>, name: &str, entry: &str) -> Result<(), UnpackError> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => Err(UnpackError::UnsafeEntry(format!("{entry} (would replace a folder)"))),
        Err(e) => Err(UnpackError::Io(e.into())),
    }
}

/// Write one file's contents, within the budget, then give it its mode.
fn write_file(
    dir: BorrowedFd<'_>,
    name: &str,
    entry: &mut impl Read,
    budget: &mut u64,
    executable: bool,
    limits: &Limits,
) -> Result<(), UnpackError> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
    let fd = open_beneath(dir, name, flags, Mode::from_raw_mode(0o600)).map_err(io::Error::from)?;
    let mut out = File::from(fd);
    let written = io::copy(&mut entry.take(*budget + 1), &mut out).map_err(|e| invalid(format!("{name}: {e}")))?;
    if written > *budget {
        return Err(UnpackError::TooLarge(limits.max_bytes));
    }
    *budget -= written;
    // Readable by the sandbox user whatever the zip said; never writable
    // by others, never setuid: only "executable or not" is kept.
    let mode = if executable { 0o755 } else { 0o644 };
    rustix::fs::fchmod(&out, Mode::from_raw_mode(mode)).map_err(io::Error::from)?;
    Ok(())
}

/// A link's target: at most [`MAX_TARGET`] bytes, counted against the
/// budget. Only one byte more than either limit is ever read.
fn read_target(entry: &mut impl Read, budget: &mut u64, name: &str, limits: &Limits) -> Result<Vec<u8>, UnpackError> {
    let cap = (MAX_TARGET as u64).min(*budget) + 1;
    let mut target = Vec::new();
    entry.take(cap).read_to_end(&mut target).map_err(|e| invalid(format!("{name}: {e}")))?;
    let read = target.len() as u64;
    if read > *budget {
        return Err(UnpackError::TooLarge(limits.max_bytes));
    }
    *budget -= read;
    if target.len() > MAX_TARGET {
        return Err(UnpackError::TargetTooLong(name.to_owned()));
    }
    if target.is_empty() || target.contains(&0) {
        return Err(invalid(format!("symbolic link '{name}' has an empty target or one with a NUL byte")));
    }
    Ok(target)
}

/// An entry's name as the folders and name it is made of, `.` and `..`
/// resolved by their text (nothing on disk is consulted). Refuses names
/// that are absolute, climb above the root, hold NUL or are too long.
fn entry_parts(name: &str) -> Result<Vec<&str>, UnpackError> {
    if name.len() > PATH_MAX || name.split('/').any(|part| part.len() > NAME_MAX) {
        let shown: String = name.chars().take(64).collect();
        return Err(UnpackError::NameTooLong(format!("{shown}…")));
    }
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return Err(UnpackError::UnsafeEntry(name.to_owned()));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or_else(|| UnpackError::UnsafeEntry(name.to_owned()))?;
            }
            part => parts.push(part),
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use zip::write::SimpleFileOptions;

    const SMALL: Limits = Limits { max_bytes: 1024, max_entries: 10 };

    /// A zip as `build` writes it.
    fn zip_with(build: impl FnOnce(&mut zip::ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        build(&mut w);
        w.finish().unwrap().into_inner()
    }

    fn file(w: &mut zip::ZipWriter<Cursor<Vec<u8>>>, name: &str, mode: u32, body: &[u8]) {
        w.start_file(name, SimpleFileOptions::default().external_attributes(mode << 16)).unwrap();
        w.write_all(body).unwrap();
    }

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn names_resolve_by_text_and_stay_inside() {
        assert_eq!(entry_parts("a/./b/../c").unwrap(), ["a", "c"]);
        assert_eq!(entry_parts("dir/").unwrap(), ["dir"]);
        assert!(entry_parts("./").unwrap().is_empty());
        for bad in ["..", "a/../..", "/etc/passwd", "\\x", "a\0b"] {
            assert!(matches!(entry_parts(bad), Err(UnpackError::UnsafeEntry(_))), "{bad:?}");
        }
        assert!(entry_parts(&"a".repeat(255)).is_ok());
        assert!(matches!(entry_parts(&"a".repeat(256)), Err(UnpackError::NameTooLong(_))));
        assert!(matches!(entry_parts(&"a/".repeat(2049)), Err(UnpackError::NameTooLong(_))));
    }

    #[test]
    fn modes_are_set_explicitly() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("task");
        let zip = zip_with(|w| {
            file(w, "private.py", 0o100600, b"x");
            file(w, "world.txt", 0o100666, b"x");
            file(w, "bin/tool", 0o100777, b"x");
            file(w, "only-group-x", 0o100610, b"x");
            w.add_directory("open/", SimpleFileOptions::default().external_attributes(0o41777 << 16)).unwrap();
        });
        unpack(&zip, &dest, &Limits::LAMBDA).unwrap();
        let want = [
            ("", 0o755),
            ("private.py", 0o644),
            ("world.txt", 0o644),
            ("bin", 0o755),
            ("bin/tool", 0o755),
            ("only-group-x", 0o755),
            ("open", 0o755),
        ];
        for (path, mode) in want {
            assert_eq!(mode_of(&dest.join(path)), mode, "{path}");
        }
    }

    #[test]
    fn links_are_kept_but_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("task");
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let zip = zip_with(|w| {
            let opts = SimpleFileOptions::default();
            w.add_symlink("abs", outside.to_str().unwrap(), opts).unwrap();
            w.add_symlink("node_modules/.bin/tool", "../tool/cli.js", opts).unwrap();
            w.add_symlink("replaced", outside.join("victim").to_str().unwrap(), opts).unwrap();
        });
        unpack(&zip, &dest, &Limits::LAMBDA).unwrap();
        // A later archive's file (as a later layer's) replaces the link itself.
        unpack(&zip_with(|w| file(w, "replaced", 0o100644, b"mine")), &dest, &Limits::LAMBDA).unwrap();
        assert_eq!(fs::read_link(dest.join("abs")).unwrap(), outside);
        assert_eq!(fs::read_link(dest.join("node_modules/.bin/tool")).unwrap(), Path::new("../tool/cli.js"));
        assert_eq!(fs::read(dest.join("replaced")).unwrap(), b"mine");
        assert!(!outside.join("victim").exists());
        for through in ["abs/", "abs/x", "abs/sub/x"] {
            let zip = zip_with(|w| {
                if through.ends_with('/') {
                    w.add_directory(through, SimpleFileOptions::default()).unwrap();
                } else {
                    file(w, through, 0o100644, b"x");
                }
            });
            assert!(matches!(unpack(&zip, &dest, &Limits::LAMBDA), Err(UnpackError::UnsafeEntry(_))), "{through}");
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing reached the link's target");
    }

    #[test]
    fn files_and_folders_do_not_replace_each_other() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("task");
        let dir_then_file = zip_with(|w| {
            w.add_directory("x/", SimpleFileOptions::default()).unwrap();
            file(w, "x", 0o100644, b"x");
        });
        assert!(matches!(unpack(&dir_then_file, &dest, &Limits::LAMBDA), Err(UnpackError::UnsafeEntry(_))));
        let file_then_below = zip_with(|w| {
            file(w, "f", 0o100644, b"x");
            file(w, "f/below", 0o100644, b"x");
        });
        assert!(matches!(unpack(&file_then_below, &dest, &Limits::LAMBDA), Err(UnpackError::UnsafeEntry(_))));
    }

    #[test]
    fn every_byte_counts_against_the_budget() {
        let tmp = tempfile::tempdir().unwrap();
        let big_file = zip_with(|w| file(w, "big", 0o100644, &[b'x'; 1025]));
        assert!(matches!(unpack(&big_file, &tmp.path().join("a"), &SMALL), Err(UnpackError::TooLarge(1024))));
        let files_then_link = zip_with(|w| {
            file(w, "one", 0o100644, &[b'x'; 1000]);
            w.add_symlink("link", "t".repeat(100), SimpleFileOptions::default()).unwrap();
        });
        let result = unpack(&files_then_link, &tmp.path().join("b"), &SMALL);
        assert!(matches!(result, Err(UnpackError::TooLarge(_))), "link targets count: {result:?}");
        let exactly = zip_with(|w| file(w, "one", 0o100644, &[b'x'; 1024]));
        unpack(&exactly, &tmp.path().join("c"), &SMALL).unwrap();
    }

    #[test]
    fn link_targets_are_bounded_and_well_formed() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("task");
        let long = zip_with(|w| w.add_symlink("l", "t".repeat(PATH_MAX), SimpleFileOptions::default()).unwrap());
        assert!(matches!(unpack(&long, &dest, &Limits::LAMBDA), Err(UnpackError::TargetTooLong(_))));
        let longest = zip_with(|w| w.add_symlink("l", "t".repeat(MAX_TARGET), SimpleFileOptions::default()).unwrap());
        unpack(&longest, &dest, &Limits::LAMBDA).unwrap();
        assert_eq!(fs::read_link(dest.join("l")).unwrap().as_os_str().len(), MAX_TARGET);
        let empty = zip_with(|w| w.add_symlink("e", "", SimpleFileOptions::default()).unwrap());
        assert!(matches!(unpack(&empty, &dest, &Limits::LAMBDA), Err(UnpackError::InvalidZip(_))));
    }

    #[test]
    fn entries_are_counted_before_anything_is_made() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("task");
        let many = zip_with(|w| (0..11).for_each(|i| file(w, &format!("f{i}"), 0o100644, b"")));
        assert!(matches!(unpack(&many, &dest, &SMALL), Err(UnpackError::TooManyEntries(11, 10))));
        assert!(!dest.exists(), "nothing was made");
        let ten = zip_with(|w| (0..10).for_each(|i| file(w, &format!("f{i}"), 0o100644, b"")));
        unpack(&ten, &dest, &SMALL).unwrap();
    }
}
