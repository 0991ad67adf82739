//! `lambdabox-init`: PID 1 of every lambdabox function container.
//!
//! Lambda runtimes talk HTTP to `AWS_LAMBDA_RUNTIME_API` (`host:port`). The
//! controller serves that API, but the container need not have a network:
//! init reaches the controller over one control connection (a unix socket
//! in a folder bind-mounted into the container; see the
//! `lambdabox-protocol` crate). This program connects the two and does the
//! chores of a container's PID 1:
//!
//! 1. connects to the control socket before anything else runs, and keeps
//!    that connection as the container's only way to the controller;
//! 2. listens on `127.0.0.1:9001` and hands every connection the runtime
//!    opens there to the controller, which serves it directly ([`control`]);
//! 3. with `LAMBDABOX_GENERIC` set, waits to be told which function to run
//!    before starting anything but, with `LAMBDABOX_PRESTART` also set (and
//!    the local control socket), the language runtime, which then waits for
//!    the function's environment ([`prestart`]);
//! 4. starts the runtime's bootstrap as the sandbox user
//!    (`LAMBDABOX_SANDBOX_USER`), with `AWS_LAMBDA_RUNTIME_API` set, and
//!    gives up its own capabilities but the one forwarding signals needs
//!    ([`sandbox`]);
//! 5. gives the bootstrap one pipe for stdout and stderr and hands its read
//!    end to the controller, which reads the function's log from it;
//! 6. reaps orphaned zombies, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT;
//! 7. when the bootstrap dies, tells the controller how (exit status or
//!    signal), then exits with the bootstrap's status.
//!
//! With `LAMBDABOX_CONTROLLER` instead (the remote transport, for hosts
//! that share nothing with the controller), init dials the controller and
//! relays all of the above over that one connection ([`remote`]), after
//! fetching the code `LAMBDABOX_FETCH` names ([`fetch`]); over TLS when
//! `LAMBDABOX_CONTROLLER_CA` says whom to trust ([`tls`]). `lambdabox-init
//! fetch DEST=SHA256...` does only the fetch, for a Kubernetes init
//! container.
//!
//! Without either (init run outside lambdabox), the
//! bootstrap inherits init's stdout and stderr and runtime connections are
//! closed at once.
//!
//! Usage: `lambdabox-init [BOOTSTRAP [ARGS…]]`. Without a bootstrap it searches
//! Lambda's order: `/var/task/bootstrap`, `/opt/bootstrap`, `/var/runtime/bootstrap`.
//!
//! It depends on `libc`, `rustix`, the protocol crate and rustls (with
//! ring: no C library beyond libc's) alone and is linked statically, so it runs in any x86-64 image, including container-image
//! functions that know nothing of us.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::net::TcpListener;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{exit, Command, Stdio};
use std::sync::Arc;
use std::{env, mem, ptr, thread};

mod control;
mod fetch;
mod link;
mod prestart;
mod remote;
mod sandbox;
mod tls;

use control::Control;
use lambdabox_protocol::mux::CodeRef;
use lambdabox_protocol::{env as vars, tag, Exit, RUNTIME_API_ADDR};
use prestart::Prestarted;
use sandbox::User;

/// Lambda's bootstrap search order for `provided` runtimes.
const BOOTSTRAP_SEARCH: [&str; 3] = ["/var/task/bootstrap", "/opt/bootstrap", "/var/runtime/bootstrap"];
/// Exit status when the bootstrap cannot be started at all.
const EXIT_NO_BOOTSTRAP: i32 = 127;
/// Signals forwarded to the bootstrap rather than acted on.
const FORWARDED: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

fn main() {
    let mut args = env::args_os().skip(1);
    if args.next().is_some_and(|a| a == "fetch") {
        fetch_mode(args.collect())
    }
    // Block the signals we handle before any thread exists so every thread
    // inherits the mask and only `sigwait` below sees them.
    let signals = handled_signals();
    // SAFETY: `signals` is an initialised sigset; the old mask is not needed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, ptr::null_mut()) };

    let listener = match TcpListener::bind(RUNTIME_API_ADDR) {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on {RUNTIME_API_ADDR}: {e}"), 1),
    };
    let channel = open_channel();
    let user = sandbox_user();
    // Over the local socket nothing else needs more than the user switch
    // from here; a remote generic container first fetches its code (as
    // root) when it is specialized, before any function code runs.
    let local = matches!(channel, Some(Channel::Local(_)));
    if local {
        keep_only_user_switch();
    }
    // A runtime that can start ahead of need runs while a generic container
    // waits; its output already goes to the log pipe.
    let mut log = None;
    let prestarted = match (&channel, prestart::wanted()) {
        (Some(c @ Channel::Local(_)), Some(command)) => {
            log = open_log_pipe(c);
            prestart_runtime(&command, log.as_ref(), user)
        }
        _ => None,
    };
    // A generic (prewarmed) container waits here until it is given a function.
    let specialized = match (&channel, env::var_os(vars::GENERIC)) {
        (Some(c), Some(_)) => match c.wait_specialization() {
            Ok(s) => Some(s),
            Err(e) => fail(&format!("waiting to be specialized: {e}"), 1),
        },
        _ => None,
    };
    if !local {
        keep_only_user_switch();
    }
    let (given, extra_env, use_prestarted) = match specialized {
        Some(s) => (Some(s.bootstrap.into_iter().map(OsString::from_vec).collect()), s.env, s.prestarted),
        None => (None, Vec::new(), false),
    };
    if let Some(pid) = prestarted.and_then(|p| hand_over_or_discard(p, use_prestarted, &extra_env)) {
        accept_connections(channel.clone(), listener);
        run_to_the_end(channel.as_ref(), pid, &signals);
    }
    let (program, args) = match bootstrap_command(given) {
        Some(cmd) => cmd,
        None => not_started(
            channel.as_ref(),
            &format!("Couldn't find valid bootstrap(s): [{}]", BOOTSTRAP_SEARCH.join(" ")),
        ),
    };
    let mut command = Command::new(&program);
    command.args(args).env_clear().envs(bootstrap_environment(&extra_env));
    if let Some(c) = &channel {
        give_log_pipe(log.or_else(|| open_log_pipe(c)), &mut command);
    }
    // Connections are handed over only now: the log pipe goes first.
    accept_connections(channel.clone(), listener);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut empty: libc::sigset_t = mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
            match user {
                Some(u) => u.become_it(),
                None => Ok(()),
            }
        });
    }
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            let why = format!("fork/exec {}: {}", program.to_string_lossy(), errno_text(&e));
            not_started(channel.as_ref(), &why)
        }
    };
    remote::BOOTSTRAP.store(child.id() as libc::pid_t, std::sync::atomic::Ordering::Release);
    // Close our copies of the pipe's write end: only the bootstrap's remain.
    drop(command);
    run_to_the_end(channel.as_ref(), child.id() as libc::pid_t, &signals);
}

/// `LAMBDABOX_SANDBOX_USER`, the user the bootstrap runs as.
fn sandbox_user() -> Option<User> {
    env::var(vars::SANDBOX_USER).ok().map(|spec| {
        User::parse(&spec).unwrap_or_else(|| fail(&format!("{}={spec}: expected uid:gid", vars::SANDBOX_USER), 1))
    })
}

/// Give up every capability but the ones switching to the sandbox user needs.
fn keep_only_user_switch() {
    if let Err(e) = sandbox::keep_only_user_switch() {
        fail(&format!("dropping capabilities: {e}"), 1)
    }
}

/// Hand the runtime's connections on `listener` over `channel` from now on.
fn accept_connections(channel: Option<Channel>, listener: TcpListener) {
    match channel {
        Some(Channel::Remote(session)) => thread::spawn(move || session.accept_loop(listener)),
        Some(Channel::Local(c)) => thread::spawn(move || control::accept_loop(listener, Some(c))),
        None => thread::spawn(move || control::accept_loop(listener, None)),
    };
}

/// With the bootstrap (or the pre-started runtime) running: keep only the
/// capability forwarding signals needs, supervise it, report how it ended
/// and exit with its status.
fn run_to_the_end(channel: Option<&Channel>, bootstrap: libc::pid_t, signals: &libc::sigset_t) -> ! {
    if let Err(e) = sandbox::keep_only_kill() {
        eprintln!("lambdabox-init: dropping capabilities: {e}");
    }
    let (exit_report, exit_code) = match supervise(bootstrap, signals) {
        Status::Exited(c) => (Exit::Code(c), c),
        Status::Signaled(s) => (Exit::Signal(s), 128 + s),
    };
    report_exit(channel, exit_report);
    exit(exit_code);
}

/// The environment the bootstrap gets: init's own with the Runtime API's
/// address and `extra` (the function's variables, in order, the last of a
/// name winning) set, then Docker's additions (where Lambda has none) and
/// lambdabox's own variables removed. Sorted by name, as `Command` passes
/// a changed environment; a pre-started runtime is given the same.
fn bootstrap_environment(extra: &[(Vec<u8>, Vec<u8>)]) -> Vec<(OsString, OsString)> {
    let mut env: BTreeMap<OsString, OsString> = env::vars_os().collect();
    env.insert("AWS_LAMBDA_RUNTIME_API".into(), RUNTIME_API_ADDR.into());
    for (name, value) in extra {
        env.insert(OsString::from_vec(name.clone()), OsString::from_vec(value.clone()));
    }
    if env::var_os(vars::LAMBDA_ONLY).is_some() {
        for name in vars::DOCKER_ADDED {
            env.remove(OsStr::new(name));
        }
    }
    for name in vars::ALL {
        env.remove(OsStr::new(name));
    }
    env.into_iter().collect()
}

/// Start the runtime named by `LAMBDABOX_PRESTART` with the neutral
/// environment (the bootstrap's, without any function's variables). A
/// failure only costs the head start: the bootstrap runs as before.
fn prestart_runtime(command: &OsString, log: Option<&OwnedFd>, user: Option<User>) -> Option<Prestarted> {
    let (program, args) = prestart::command(command)?;
    match prestart::start(&program, &args, &bootstrap_environment(&[]), log, user) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("lambdabox-init: pre-starting {}: {}", program.to_string_lossy(), errno_text(&e));
            None
        }
    }
}

/// Give the pre-started runtime the function (`use_it`, as the controller
/// decided) and return its pid; else, or if it cannot take it, kill it so
/// the bootstrap starts alone.
fn hand_over_or_discard(p: Prestarted, use_it: bool, env: &[(Vec<u8>, Vec<u8>)]) -> Option<libc::pid_t> {
    if !use_it {
        p.discard();
        return None;
    }
    match p.hand_over(&bootstrap_environment(env)) {
        Ok(pid) => Some(pid),
        Err((p, e)) => {
            eprintln!("lambdabox-init: the pre-started runtime cannot take the function ({e}); starting the bootstrap");
            p.discard();
            None
        }
    }
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

/// A new pipe for the bootstrap's stdout and stderr whose read end goes to
/// the controller (local) or is read by us for it (remote): its write end.
/// On any failure the bootstrap keeps init's own stdout and stderr, which
/// the container engine keeps (bounded).
fn open_log_pipe(channel: &Channel) -> Option<OwnedFd> {
    let opened = control::log_pipe().and_then(|(read, write)| {
        match channel {
            Channel::Local(c) => c.send_fd(tag::LOG_PIPE, read.as_fd())?,
            Channel::Remote(s) => s.take_log_pipe(read)?,
        }
        Ok(write)
    });
    opened.map_err(|e| eprintln!("lambdabox-init: log pipe: {e}")).ok()
}

/// Point the bootstrap's stdout and stderr at the log pipe's write end.
fn give_log_pipe(write: Option<OwnedFd>, command: &mut Command) {
    let Some(write) = write else { return };
    match write.try_clone() {
        Ok(err) => {
            command.stdout(Stdio::from(write)).stderr(Stdio::from(err));
        }
        Err(e) => eprintln!("lambdabox-init: log pipe: {e}"),
    }
}

fn report_exit(channel: Option<&Channel>, exit: Exit) {
    match channel {
        Some(Channel::Local(c)) => c.send_exit(exit),
        Some(Channel::Remote(s)) => s.send_exit(exit),
        None => {}
    }
}

/// The bootstrap cannot be started: say why to the controller (which
/// answers `Runtime.InvalidEntrypoint` with it) and the log, and end.
fn not_started(channel: Option<&Channel>, why: &str) -> ! {
    match channel {
        Some(Channel::Local(c)) => c.send_not_started(why),
        Some(Channel::Remote(s)) => s.send_not_started(why),
        None => {}
    }
    fail(why, EXIT_NO_BOOTSTRAP)
}

/// The way to the controller: the local control socket, the remote
/// controller dialled out (after fetching the code `LAMBDABOX_FETCH` names,
/// before anything runs), or none.
fn open_channel() -> Option<Channel> {
    if let Some(path) = env::var_os(vars::CONTROL_SOCKET) {
        return Some(match Control::connect(Path::new(&path)) {
            Ok(c) => Channel::Local(Arc::new(c)),
            Err(e) => fail(&format!("control socket {}: {e}", Path::new(&path).display()), 1),
        });
    }
    let identity = link::Identity::from_env()?.unwrap_or_else(|e| fail(&e, 1));
    if let Some(list) = env::var_os(vars::FETCH) {
        let refs = parse_refs(list.to_string_lossy().split(',').filter(|s| !s.is_empty()));
        if let Err(e) = fetch::fetch_all(&identity, &refs) {
            fail(&e, 1)
        }
    }
    match remote::Session::open(identity) {
        Ok(s) => Some(Channel::Remote(s)),
        Err(e) => fail(&format!("controller: {e}"), 1),
    }
}

/// `lambdabox-init fetch [--install PATH] DEST[=DIGEST]...`: copy this
/// binary to PATH (for the pod's other containers), download and unpack
/// each DEST=DIGEST, and make each bare DEST an empty folder only root may
/// write (a generic container's init fills it later); then exit 0. A
/// Kubernetes init container's job.
fn fetch_mode(mut args: Vec<OsString>) -> ! {
    if args.first().is_some_and(|a| a == "--install") {
        let Some(path) = args.get(1).cloned() else { fail("fetch: --install needs a PATH", 64) };
        if let Err(e) = fetch::install_self(Path::new(&path)) {
            fail(&format!("fetch: installing init at {}: {e}", Path::new(&path).display()), 1)
        }
        args.drain(..2);
    }
    let (refs, empty): (Vec<&OsString>, Vec<&OsString>) =
        args.iter().partition(|a| a.to_str().is_some_and(|s| s.contains('=')));
    for dest in empty {
        if let Err(e) = fetch::prepare_empty(Path::new(dest)) {
            fail(&format!("fetch: {}: {e}", Path::new(dest).display()), 1)
        }
    }
    let refs = parse_refs(refs.iter().map(|a| a.to_str().unwrap_or("")));
    if refs.is_empty() {
        // Nothing to fetch (a generic pod): over TLS, still meet the
        // controller, so a certificate problem stops the pod here, with
        // its reason as the pod's status, not later in its function's
        // container.
        match link::Identity::from_env() {
            Some(Ok(identity)) if identity.tls.is_some() => {
                if let Err(e) = identity.probe() {
                    fail(&format!("fetch: {e}"), 1)
                }
            }
            Some(Err(e)) => fail(&e, 64),
            _ => {}
        }
        exit(0)
    }
    let identity = match link::Identity::from_env() {
        Some(Ok(i)) => i,
        Some(Err(e)) => fail(&e, 64),
        None => fail(&format!("fetch: {} is not set", vars::CONTROLLER), 64),
    };
    match fetch::fetch_all(&identity, &refs) {
        Ok(()) => exit(0),
        Err(e) => fail(&e, 1),
    }
}

fn parse_refs<'a>(items: impl Iterator<Item = &'a str>) -> Vec<CodeRef> {
    items
        .map(|item| CodeRef::parse(item).unwrap_or_else(|| fail(&format!("{item:?}: expected /DEST=SHA256"), 64)))
        .collect()
}

/// Where the controller is reached.
#[derive(Clone)]
enum Channel {
    Local(Arc<Control>),
    Remote(Arc<remote::Session>),
}

impl Channel {
    fn wait_specialization(&self) -> Result<lambdabox_protocol::Specialization, String> {
        match self {
            Channel::Local(c) => c.wait_specialization().map_err(|e| e.to_string()),
            Channel::Remote(s) => s.wait_specialization(),
        }
    }
}

/// An exec error as Lambda words it (Go's `syscall` texts, lowercase, no
/// "(os error N)").
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such file or directory".into(),
        Some(libc::EACCES) => "permission denied".into(),
        Some(libc::ENOEXEC) => "exec format error".into(),
        Some(libc::ENOTDIR) => "not a directory".into(),
        Some(libc::ETXTBSY) => "text file busy".into(),
        Some(libc::E2BIG) => "argument list too long".into(),
        Some(libc::ENOMEM) => "cannot allocate memory".into(),
        _ => {
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text);
            let mut chars = text.chars();
            chars.next().map_or(String::new(), |c| c.to_lowercase().chain(chars).collect())
        }
    }
}

fn fail(message: &str, status: i32) -> ! {
    eprintln!("lambdabox-init: {message}");
    exit(status)
}
