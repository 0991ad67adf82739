//! The user the function runs as, and the capabilities init gives up.
//!
//! init runs as root in the container with only `CAP_SETUID`, `CAP_SETGID`
//! and `CAP_KILL` (plus `CAP_DAC_OVERRIDE` when the controller is not root and
//! owns the control folder), so that it is a different user from the
//! function: the function cannot signal it, trace it, read `/proc/1/fd` or
//! reach the control folder (mode 0700). init drops the file override once
//! the control socket is open, switches the bootstrap to the sandbox user
//! between fork and exec, and once the bootstrap runs keeps only `CAP_KILL`,
//! which forwarding a signal to another user's process needs.
//! `no-new-privileges` keeps the function from regaining any.

use std::io;

/// `uid:gid`, both numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

impl User {
    pub fn parse(spec: &str) -> Option<User> {
        let (uid, gid) = spec.split_once(':')?;
        Some(User { uid: uid.parse().ok()?, gid: gid.parse().ok()? })
    }

    /// Become this user with no supplementary groups, for good (no
    /// capability survives a switch away from uid 0). Only async-signal-safe
    /// calls: this runs between fork and exec.
    pub fn become_it(self) -> io::Result<()> {
        // SAFETY: plain system calls with valid arguments.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(self.gid, self.gid, self.gid) != 0
                || libc::setresuid(self.uid, self.uid, self.uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getuid() != self.uid || libc::geteuid() != self.uid || libc::getegid() != self.gid {
                return Err(io::Error::other("the user switch did not take"));
            }
        }
        Ok(())
    }
}

const CAP_KILL: u32 = 5;
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Keep only what switching the bootstrap's user and signalling it need.
pub fn keep_only_user_switch() -> io::Result<()> {
    keep((1 << CAP_SETGID) | (1 << CAP_SETUID) | (1 << CAP_KILL))
}

/// Keep only what signalling the bootstrap needs.
pub fn keep_only_kill() -> io::Result<()> {
    keep(1 << CAP_KILL)
}

fn keep(bits: u32) -> io::Result<()> {
    set_capabilities([CapData { effective: bits, permitted: bits, inheritable: 0 }, CapData::default()])
}

/// Dropping capabilities never fails for lack of privilege; a set init
/// never had is simply not kept.
fn set_capabilities(mut data: [CapData; 2]) -> io::Result<()> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut current = [CapData::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as the kernel expects.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut header, current.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        for (want, have) in data.iter_mut().zip(current) {
            want.permitted &= have.permitted;
            want.effective &= want.permitted;
            want.inheritable = 0;
        }
        if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_numeric_pairs() {
        assert_eq!(User::parse("993:994"), Some(User { uid: 993, gid: 994 }));
        for bad in ["993", "sbx:993", "993:", ":993", "1:2:3", "-1:0"] {
            assert_eq!(User::parse(bad), None, "{bad}");
        }
    }
}
