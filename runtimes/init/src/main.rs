//! `lambdabox-init`: PID 1 of every lambdabox function container.
//!
//! Lambda runtimes talk HTTP to `AWS_LAMBDA_RUNTIME_API` (`host:port`). The
//! controller serves that API, but the container has no network: it reaches
//! the controller through unix sockets in a folder bind-mounted into it.
//! This program connects the two and does the chores of a container's PID 1:
//!
//! 1. listens on `127.0.0.1:9001` and hands every connection the runtime
//!    opens there to the controller, which serves it directly ([`handoff`]);
//! 2. starts the runtime's bootstrap with `AWS_LAMBDA_RUNTIME_API` set (the rest
//!    of the Lambda environment comes from the container's own environment);
//! 3. reaps orphaned zombies, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT;
//! 4. with `LAMBDABOX_GENERIC` set, waits to be told which function to run
//!    before starting anything ([`specialize`]);
//! 5. gives the bootstrap one pipe for stdout and stderr and hands its read
//!    end to the controller, which reads the function's log from it;
//! 6. when the bootstrap dies, tells the controller how (exit status or signal)
//!    over `LAMBDABOX_RUNTIME_SOCKET`, then exits with the bootstrap's status.
//!
//! Without `LAMBDABOX_HANDOFF_SOCKET` (init run outside lambdabox), the
//! bootstrap inherits init's stdout and stderr.
//!
//! Usage: `lambdabox-init [BOOTSTRAP [ARGS…]]`. Without a bootstrap it searches
//! Lambda's order: `/var/task/bootstrap`, `/opt/bootstrap`, `/var/runtime/bootstrap`.
//!
//! It depends on `libc` alone and is linked statically, so it runs in any
//! x86-64 image, including container-image functions that know nothing of us.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{exit, Command, Stdio};
use std::{env, mem, ptr, thread};

mod handoff;
mod specialize;

use handoff::Handoff;

/// Where the Runtime API listens inside the container; runtimes get it as
/// `AWS_LAMBDA_RUNTIME_API`.
const LISTEN_ADDR: &str = "127.0.0.1:9001";
/// The controller's socket, unless `LAMBDABOX_RUNTIME_SOCKET` says otherwise.
const DEFAULT_SOCKET: &str = "/lambdabox/rt/runtime.sock";
/// Lambda's bootstrap search order for `provided` runtimes.
const BOOTSTRAP_SEARCH: [&str; 3] = ["/var/task/bootstrap", "/opt/bootstrap", "/var/runtime/bootstrap"];
/// Exit status when the bootstrap cannot be started at all.
const EXIT_NO_BOOTSTRAP: i32 = 127;
/// Signals forwarded to the bootstrap rather than acted on.
const FORWARDED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

fn main() {
    let socket = PathBuf::from(env::var_os("LAMBDABOX_RUNTIME_SOCKET").unwrap_or_else(|| DEFAULT_SOCKET.into()));
    // Block the signals we handle before any thread exists so every thread
    // inherits the mask and only `sigwait` below sees them.
    let signals = handled_signals();
    // SAFETY: `signals` is an initialised sigset; the old mask is not needed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, ptr::null_mut()) };

    let listener = match TcpListener::bind(LISTEN_ADDR) {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on {LISTEN_ADDR}: {e}"), 1),
    };

    // A generic (prewarmed) container waits here until it is given a function.
    let specialized = env::var_os("LAMBDABOX_GENERIC").map(|_| match specialize::wait(&socket) {
        Ok(s) => s,
        Err(e) => fail(&format!("waiting to be specialized: {e}"), 1),
    });
    let (given, extra_env) = match specialized {
        Some(s) => (Some(s.bootstrap), s.env),
        None => (None, Vec::new()),
    };
    let (program, args) = match bootstrap_command(given) {
        Some(cmd) => cmd,
        None => {
            report_exit(&socket, "exit", EXIT_NO_BOOTSTRAP);
            fail("no bootstrap: none given and none found in /var/task, /opt, /var/runtime", EXIT_NO_BOOTSTRAP)
        }
    };
    let mut command = Command::new(&program);
    command
        .args(args)
        .env("AWS_LAMBDA_RUNTIME_API", LISTEN_ADDR)
        .envs(extra_env)
        .env_remove("LAMBDABOX_RUNTIME_SOCKET")
        .env_remove("LAMBDABOX_HANDOFF_SOCKET")
        .env_remove("LAMBDABOX_GENERIC");
    let handoff = env::var_os("LAMBDABOX_HANDOFF_SOCKET").and_then(|path| connect_handoff(Path::new(&path)));
    if let Some(h) = &handoff {
        give_log_pipe(h, &mut command);
    }
    // Connections are handed over only now: the log pipe goes first.
    thread::spawn(move || handoff::accept_loop(listener, handoff));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut empty: libc::sigset_t = mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
            Ok(())
        });
    }
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            report_exit(&socket, "exit", EXIT_NO_BOOTSTRAP);
            fail(&format!("cannot start {}: {e}", program.to_string_lossy()), EXIT_NO_BOOTSTRAP)
        }
    };
    // Close our copies of the pipe's write end: only the bootstrap's remain.
    drop(command);
    let status = supervise(child.id() as libc::pid_t, &signals);
    let (kind, code, exit_code) = match status {
        Status::Exited(c) => ("exit", c, c),
        Status::Signaled(s) => ("signal", s, 128 + s),
    };
    report_exit(&socket, kind, code);
    exit(exit_code);
}

/// How the bootstrap ended.
enum Status {
    Exited(i32),
    Signaled(i32),
}

/// The set of signals PID 1 waits for: child exits plus the forwarded ones.
fn handled_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Wait for signals until the bootstrap is gone, reaping every child (orphans
/// re-parented to us included) and forwarding termination requests.
fn supervise(bootstrap: libc::pid_t, signals: &libc::sigset_t) -> Status {
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `signals` is initialised and blocked in this thread.
        if unsafe { libc::sigwait(signals, &mut sig) } != 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(bootstrap, sig) };
            continue;
        }
        loop {
            let mut wstatus: libc::c_int = 0;
            // SAFETY: waitpid with a valid out pointer.
            let pid = unsafe { libc::waitpid(-1, &mut wstatus, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == bootstrap {
                if libc::WIFEXITED(wstatus) {
                    return Status::Exited(libc::WEXITSTATUS(wstatus));
                }
                if libc::WIFSIGNALED(wstatus) {
                    return Status::Signaled(libc::WTERMSIG(wstatus));
                }
            }
        }
    }
}

/// The bootstrap to run: the one a specialization named, else the
/// arguments if any, else Lambda's search order.
fn bootstrap_command(given: Option<Vec<OsString>>) -> Option<(OsString, Vec<OsString>)> {
    let mut args = given.unwrap_or_else(|| env::args_os().skip(1).collect()).into_iter();
    if let Some(program) = args.next() {
        return Some((program, args.collect()));
    }
    BOOTSTRAP_SEARCH.iter().map(Path::new).find(|p| p.is_file()).map(|p| (p.as_os_str().to_owned(), Vec::new()))
}

/// Connect to the controller's handoff socket; `None` (and a note on
/// stderr) when it cannot be reached.
fn connect_handoff(path: &Path) -> Option<Handoff> {
    match Handoff::connect(path) {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("lambdabox-init: handoff socket {}: {e}", path.display());
            None
        }
    }
}

/// Point the bootstrap's stdout and stderr at a new pipe whose read end
/// goes to the controller. On any failure the bootstrap keeps init's own
/// stdout and stderr, which Docker keeps.
fn give_log_pipe(handoff: &Handoff, command: &mut Command) {
    let given = handoff::log_pipe().and_then(|(read, write)| {
        handoff.send(handoff::LOG_PIPE, read.as_raw_fd())?;
        let err = write.try_clone()?;
        command.stdout(Stdio::from(write)).stderr(Stdio::from(err));
        Ok(())
    });
    if let Err(e) = given {
        eprintln!("lambdabox-init: log pipe: {e}");
    }
}

/// Tell the controller how the bootstrap ended, so the waiting caller gets
/// `Runtime.ExitError` with the right status at once. Best effort: the
/// controller also learns of the exit from Docker.
fn report_exit(socket: &Path, kind: &str, code: i32) {
    let body = format!("{{\"kind\":\"{kind}\",\"code\":{code}}}");
    let request = format!(
        "POST /lambdabox/v1/exit HTTP/1.1\r\nHost: lambdabox\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = UnixStream::connect(socket) {
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if stream.write_all(request.as_bytes()).is_ok() {
            let mut answer = [0u8; 256];
            let _ = stream.read(&mut answer);
        }
    }
}

fn fail(message: &str, status: i32) -> ! {
    eprintln!("lambdabox-init: {message}");
    exit(status)
}
