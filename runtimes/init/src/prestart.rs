//! A language runtime started ahead of need in a generic container.
//!
//! With [`vars::PRESTART`] set, init starts that command (a wrapper around
//! the image's official runtime client) before it knows its function: as the
//! sandbox user, with the container's neutral environment (no function's
//! variable is known yet), its output on the log pipe, and the read end of a
//! pipe as [`HANDOFF_FD`]. The wrapper loads the runtime and its client, then
//! blocks reading that pipe. At specialization init either hands it the
//! function's environment ([`Prestarted::hand_over`]), and the wrapper goes on
//! into the runtime client's normal start, or kills it
//! ([`Prestarted::discard`]) and starts the bootstrap as it always did.

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::{mem, ptr};

use lambdabox_protocol::{env as vars, handoff, HANDOFF_FD};

use crate::sandbox::User;

/// The pre-started runtime: its process and the write end of its hand-off
/// pipe (close-on-exec, so no later child inherits it).
pub struct Prestarted {
    child: Child,
    handoff: OwnedFd,
}

/// The command in [`vars::PRESTART`]: words separated by spaces (the
/// controller writes it; no word holds a space).
pub fn command(value: &OsString) -> Option<(OsString, Vec<OsString>)> {
    let mut words = value.as_bytes().split(|b| *b == b' ').filter(|w| !w.is_empty());
    let program = OsString::from(std::ffi::OsStr::from_bytes(words.next()?));
    Some((program, words.map(|w| OsString::from(std::ffi::OsStr::from_bytes(w))).collect()))
}

/// Start `program` as `user` with exactly `env`, `log` as its stdout and
/// stderr, and a new pipe's read end as [`HANDOFF_FD`]; its stdin is init's,
/// as a bootstrap's is.
pub fn start(
    program: &OsString,
    args: &[OsString],
    env: &[(OsString, OsString)],
    log: Option<&OwnedFd>,
    user: Option<User>,
) -> io::Result<Prestarted> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let mut command = Command::new(program);
    command.args(args).env_clear().envs(env.iter().map(|(n, v)| (n, v)));
    if let Some(log) = log {
        command.stdout(Stdio::from(log.try_clone()?)).stderr(Stdio::from(log.try_clone()?));
    }
    let read_fd = read.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut empty: libc::sigset_t = mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
            give_handoff_fd(read_fd)?;
            match user {
                Some(u) => u.become_it(),
                None => Ok(()),
            }
        });
    }
    let child = command.spawn()?;
    // Our copy of the read end closes here: only the runtime's remains, so
    // its death makes our write fail instead of block.
    drop(read);
    Ok(Prestarted { child, handoff: write })
}

/// Make `fd` the child's [`HANDOFF_FD`], open across exec. Runs between fork
/// and exec: plain system calls only.
fn give_handoff_fd(fd: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl/dup2 on descriptors this process owns.
    let ok = unsafe {
        if fd == HANDOFF_FD {
            libc::fcntl(fd, libc::F_SETFD, 0) == 0
        } else {
            libc::dup2(fd, HANDOFF_FD) == HANDOFF_FD
        }
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Prestarted {
    /// Its process id, to supervise it as the bootstrap.
    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Whether it still runs (it is not reaped here if it ended: a later
    /// [`Prestarted::discard`] does that).
    fn alive(&self) -> bool {
        // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
        let mut info: libc::siginfo_t = unsafe { mem::zeroed() };
        // WNOWAIT: an ended one stays a zombie for `discard` to reap.
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: waitid on our own child with a valid out pointer.
        let r = unsafe { libc::waitid(libc::P_PID, self.pid() as libc::id_t, &mut info, flags) };
        // SAFETY: si_pid is valid to read after a successful waitid.
        r == 0 && unsafe { info.si_pid() } == 0
    }

    /// Give it the function's environment; it then starts the runtime
    /// client as a new bootstrap would. On failure (it died, or the pipe
    /// broke) it is handed back, to discard.
    pub fn hand_over(self, env: &[(OsString, OsString)]) -> Result<libc::pid_t, (Prestarted, io::Error)> {
        if !self.alive() {
            return Err((self, io::Error::other("the pre-started runtime is gone")));
        }
        let pairs: Vec<(&[u8], &[u8])> = env.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        let message = handoff::encode(&pairs);
        let written = std::fs::File::from(match self.handoff.try_clone() {
            Ok(fd) => fd,
            Err(e) => return Err((self, e)),
        })
        .write_all(&message);
        match written {
            Ok(()) => {
                let pid = self.pid();
                // Closing the write end tells the wrapper the message is whole.
                drop(self.handoff);
                Ok(pid)
            }
            Err(e) => Err((self, e)),
        }
    }

    /// Kill it and wait for it, so nothing of it is left when the bootstrap
    /// starts in its place.
    pub fn discard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether init should pre-start a runtime: [`vars::PRESTART`], in a
/// generic container only.
pub fn wanted() -> Option<OsString> {
    std::env::var_os(vars::GENERIC).and(std::env::var_os(vars::PRESTART))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_space_separated_words() {
        let (program, args) = command(&OsString::from("/var/runtime/bootstrap --prestart  1769")).unwrap();
        assert_eq!(program, "/var/runtime/bootstrap");
        assert_eq!(args, ["--prestart", "1769"]);
        assert!(command(&OsString::from(" ")).is_none());
    }
}
