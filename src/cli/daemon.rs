//! A controller in the background, for Makefiles and CI: `serve --detach`
//! starts one and returns once it answers its health check (or fails with
//! its reason and exit status), `down` stops it, `wait` waits for one, and
//! `up --serve` starts one when none answers.
//!
//! The detached controller is this executable again, run as `serve` in a
//! session of its own, its output appended to `DATA_DIR/lambdabox.log`
//! (moved to `lambdabox.log.1` at a start that finds it over
//! [`LOG_ROTATE_BYTES`]); it writes and removes its own pid file
//! ([`super::pidfile`]), so the file exists exactly while a controller owns
//! it. Its address is read from its ready line in the log, so `--listen
//! 127.0.0.1:0` works too: the endpoint is printed on stdout, alone, for
//! scripts to capture.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::pidfile;
use crate::client::paths;

/// Exit status of `down` when no controller runs (LSB's "program is not running").
pub const EXIT_NOT_RUNNING: u8 = 3;
/// How long `serve --detach` waits for the controller's health check.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between health checks and liveness checks.
const POLL: Duration = Duration::from_millis(100);
/// Lines of the controller's log shown when it fails to start.
const LOG_TAIL_LINES: usize = 20;
/// A log bigger than this is moved aside (one generation kept) when a
/// controller starts.
pub const LOG_ROTATE_BYTES: u64 = 16 * 1024 * 1024;
/// The start of the ready line `serve` prints, with its address, once it
/// answers: scripts, tests and [`detach`] wait for it.
pub const READY_LINE: &str = "lambdabox listening on ";

/// Where a detached controller's output goes.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("lambdabox.log")
}

/// What `serve --detach` needs to know of the serve command it repeats.
#[derive(Debug)]
pub struct Detach<'a> {
    pub data_dir: &'a Path,
    pub listen: SocketAddr,
    /// `--pid-file` as given; the data directory's by default.
    pub pid_file: Option<&'a Path>,
}

/// `serve --detach`: start the controller in the background and return once
/// it answers, with its pid, or fail with the end of its log and its exit
/// status.
pub async fn detach(d: Detach<'_>) -> Result<ExitCode> {
    let pid_file = d.pid_file.map_or_else(|| pidfile::default_path(d.data_dir), Path::to_owned);
    if let Some(pid) = pidfile::running(&pid_file)? {
        bail!(
            "a controller is already running (pid {pid}, pid file {}); `lambdabox down` stops it",
            pid_file.display()
        );
    }
    if d.listen.port() != 0 {
        let endpoint = format!("http://{}", reachable(d.listen));
        if healthy(&endpoint).await {
            bail!("something already answers at {endpoint}; stop it or pick another --listen");
        }
    }
    crate::private::dir(d.data_dir)
        .with_context(|| format!("cannot use the data directory {}", d.data_dir.display()))?;
    let log_path = log_path(d.data_dir);
    rotate(&log_path, LOG_ROTATE_BYTES).with_context(|| format!("cannot rotate {}", log_path.display()))?;
    let log = crate::private::append_file(&log_path).with_context(|| format!("cannot open {}", log_path.display()))?;
    let log_start = log.metadata()?.len();
    let mut child = spawn(d.data_dir, d.pid_file.is_none().then_some(&pid_file), log)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            print_log_tail(&log_path, log_start);
            eprintln!("lambdabox: the controller exited during start-up ({status}); its log: {}", log_path.display());
            return Ok(ExitCode::from(
                status.code().and_then(|c| u8::try_from(c).ok()).filter(|&c| c != 0).unwrap_or(1),
            ));
        }
        if let Some(endpoint) = announced(&log_path, log_start) {
            if healthy(&endpoint).await {
                eprintln!(
                    "lambdabox running in the background at {endpoint} (pid {}); log: {}; `lambdabox down` stops it",
                    child.id(),
                    log_path.display()
                );
                println!("{endpoint}");
                return Ok(ExitCode::SUCCESS);
            }
        }
        if Instant::now() > deadline {
            terminate(child.id());
            print_log_tail(&log_path, log_start);
            bail!("the controller did not answer within {} s; stopped it", READY_TIMEOUT.as_secs());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The endpoint the controller announced in its log since `from` (its
/// ready line), reachable from here.
fn announced(path: &Path, from: u64) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(text.get(from as usize..)?);
    let line = text.lines().rev().find_map(|l| l.strip_prefix(READY_LINE))?;
    let addr: SocketAddr = line.trim().strip_prefix("http://")?.parse().ok()?;
    Some(format!("http://{}", reachable(addr)))
}

/// Move `path` to `path.1` (replacing it) when it is bigger than `limit`.
fn rotate(path: &Path, limit: u64) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > limit => {
            let mut old = path.as_os_str().to_owned();
            old.push(".1");
            std::fs::rename(path, old)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// This executable as `serve` again, without `--detach`, in a new session
/// (no terminal's hang-up or Ctrl-C reaches it), output to `log`.
fn spawn(data_dir: &Path, add_pid_file: Option<&PathBuf>, log: std::fs::File) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("cannot locate the lambdabox executable")?;
    let mut command = Command::new(exe);
    command.args(std::env::args_os().skip(1).filter(|a| a != "--detach"));
    // The same folder, however it was named (the environment, not an
    // argument: a second --data-dir would be refused).
    command.env("LAMBDABOX_DATA_DIR", data_dir);
    if let Some(path) = add_pid_file {
        command.arg("--pid-file").arg(path);
    }
    command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // SAFETY: setsid is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| rustix::process::setsid().map(drop).map_err(std::io::Error::from));
    }
    command.spawn().context("cannot start the controller")
}

/// An address clients can reach `listen` at: a wildcard becomes loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

/// Whether a controller answers its health check at `endpoint`.
async fn healthy(endpoint: &str) -> bool {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build();
    let Ok(http) = http else { return false };
    let url = format!("{}{}", endpoint.trim_end_matches('/'), paths::HEALTH);
    matches!(http.get(url).send().await, Ok(r) if r.status().is_success())
}

/// Print what the controller logged since `from` (its last lines).
fn print_log_tail(path: &Path, from: u64) {
    let Ok(text) = std::fs::read(path) else { return };
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..] {
        eprintln!("  {line}");
    }
}

/// Ask `pid` to shut down (SIGTERM: drain, remove containers, exit).
fn terminate(pid: u32) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

/// `lambdabox down`: stop the controller the data directory's pid file
/// names and wait (at most `timeout`) for it to exit.
pub async fn down(data_dir: &Path, pid_file: Option<&Path>, timeout: Duration) -> Result<ExitCode> {
    let path = pid_file.map_or_else(|| pidfile::default_path(data_dir), Path::to_owned);
    let Some(pid) = pidfile::running(&path)? else {
        let why = if path.exists() { "its process is gone; removed the stale pid file" } else { "no pid file at" };
        pidfile::remove_stale(&path)?;
        eprintln!("lambdabox: no controller is running from {} ({why} {})", data_dir.display(), path.display());
        return Ok(ExitCode::from(EXIT_NOT_RUNNING));
    };
    terminate(pid);
    let deadline = Instant::now() + timeout;
    while pidfile::is_live_lambdabox(pid) {
        if Instant::now() > deadline {
            bail!(
                "the controller (pid {pid}) still runs after {} s (draining invocations?); `kill -KILL {pid}` forces it",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    // It removes its pid file as it exits; a killed one could not.
    pidfile::remove_stale(&path)?;
    eprintln!("lambdabox stopped (pid {pid})");
    Ok(ExitCode::SUCCESS)
}

/// `lambdabox wait`: poll the health check at `endpoint` until it answers.
pub async fn wait(endpoint: &str, timeout: Duration) -> Result<ExitCode> {
    let deadline = Instant::now() + timeout;
    while !healthy(endpoint).await {
        if Instant::now() > deadline {
            bail!("no controller answered at {endpoint} within {} s", timeout.as_secs());
        }
        tokio::time::sleep(POLL).await;
    }
    eprintln!("lambdabox is ready at {endpoint}");
    Ok(ExitCode::SUCCESS)
}

/// `up --serve`: when nothing answers at `endpoint`, start a detached
/// controller listening there (`serve --detach --listen HOST:PORT`, then
/// `serve_args`), with the same data directory.
pub async fn ensure_serving(endpoint: &str, data_dir: &Path, serve_args: &[String]) -> Result<()> {
    if healthy(endpoint).await {
        return Ok(());
    }
    let listen = listen_address(endpoint)?;
    let exe = std::env::current_exe().context("cannot locate the lambdabox executable")?;
    let status = tokio::process::Command::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--detach", "--listen", &listen.to_string()])
        .args(serve_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await
        .context("cannot start a controller")?;
    if !status.success() {
        bail!("--serve: could not start a controller at {endpoint} ({status})");
    }
    Ok(())
}

/// The address a controller must listen on to answer at `endpoint`
/// (`http://127.0.0.1:9000`, `http://localhost:9000`).
fn listen_address(endpoint: &str) -> Result<SocketAddr> {
    let url = reqwest::Url::parse(endpoint).with_context(|| format!("--endpoint {endpoint}: not a URL"))?;
    let port = url.port_or_known_default().context("--endpoint has no port")?;
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip.parse().map_err(|_| {
            anyhow::anyhow!("--serve starts a controller only for an endpoint on an IP address here, not {endpoint}")
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        assert_eq!(reachable("0.0.0.0:9000".parse().unwrap()), "127.0.0.1:9000".parse().unwrap());
        assert_eq!(reachable("[::]:9000".parse().unwrap()), "[::1]:9000".parse().unwrap());
        assert_eq!(reachable("10.0.0.2:9000".parse().unwrap()), "10.0.0.2:9000".parse().unwrap());
    }

    #[test]
    fn the_endpoint_is_read_from_the_ready_line_written_after_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("lambdabox.log");
        std::fs::write(&log, "lambdabox listening on http://127.0.0.1:9000\nold run\n").unwrap();
        let from = std::fs::metadata(&log).unwrap().len();
        assert_eq!(announced(&log, from), None, "an earlier run's line is not this one's");
        let more = "INFO controller started\nlambdabox function URLs on http://127.0.0.1:40001\n\
                    lambdabox listening on http://0.0.0.0:40000\n";
        std::fs::write(&log, format!("{}{more}", std::fs::read_to_string(&log).unwrap())).unwrap();
        assert_eq!(announced(&log, from).as_deref(), Some("http://127.0.0.1:40000"));
    }

    #[test]
    fn a_big_log_is_moved_aside_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("lambdabox.log");
        rotate(&log, 4).unwrap();
        std::fs::write(&log, "1234").unwrap();
        rotate(&log, 4).unwrap();
        assert!(log.exists(), "at the limit it stays");
        std::fs::write(&log, "12345").unwrap();
        rotate(&log, 4).unwrap();
        assert!(!log.exists());
        assert_eq!(std::fs::read_to_string(dir.path().join("lambdabox.log.1")).unwrap(), "12345");
    }

    #[test]
    fn serve_listens_where_the_endpoint_points() {
        assert_eq!(listen_address("http://127.0.0.1:9100").unwrap(), "127.0.0.1:9100".parse().unwrap());
        assert_eq!(listen_address("http://localhost:9100/").unwrap(), "127.0.0.1:9100".parse().unwrap());
        assert!(listen_address("http://example.com:9000").is_err());
    }
}
