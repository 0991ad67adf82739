//! A controller in the background, for Makefiles and CI: `serve --detach`
//! starts one and returns once it answers its health check (or fails with
//! its reason and exit status), `down` stops it, `wait` waits for one, and
//! `up --serve` starts one when none answers.
//!
//! The detached controller is this executable again, run as `serve` in a
//! session of its own, its output appended to `DATA_DIR/lambdabox.log`; it
//! writes and removes its own pid file ([`super::pidfile`]), so the file
//! exists exactly while a controller owns it.

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
    if d.listen.port() == 0 {
        bail!("--detach needs a fixed --listen port (not 0) to check the controller's health on");
    }
    let pid_file = d.pid_file.map_or_else(|| pidfile::default_path(d.data_dir), Path::to_owned);
    if let Some(pid) = pidfile::running(&pid_file)? {
        bail!(
            "a controller is already running (pid {pid}, pid file {}); `lambdabox down` stops it",
            pid_file.display()
        );
    }
    let endpoint = format!("http://{}", reachable(d.listen));
    if healthy(&endpoint).await {
        bail!("something already answers at {endpoint}; stop it or pick another --listen");
    }
    crate::private::dir(d.data_dir)
        .with_context(|| format!("cannot use the data directory {}", d.data_dir.display()))?;
    let log_path = log_path(d.data_dir);
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
        if healthy(&endpoint).await {
            eprintln!(
                "lambdabox running in the background at {endpoint} (pid {}); log: {}; `lambdabox down` stops it",
                child.id(),
                log_path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if Instant::now() > deadline {
            terminate(child.id());
            print_log_tail(&log_path, log_start);
            bail!("the controller did not answer at {endpoint} within {} s; stopped it", READY_TIMEOUT.as_secs());
        }
        tokio::time::sleep(POLL).await;
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
/// controller listening there (`serve --detach --listen HOST:PORT`), with
/// the same data directory.
pub async fn ensure_serving(endpoint: &str, data_dir: &Path) -> Result<()> {
    if healthy(endpoint).await {
        return Ok(());
    }
    let listen = listen_address(endpoint)?;
    let exe = std::env::current_exe().context("cannot locate the lambdabox executable")?;
    let status = tokio::process::Command::new(exe)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--detach", "--listen", &listen.to_string()])
        .stdin(Stdio::null())
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
    fn serve_listens_where_the_endpoint_points() {
        assert_eq!(listen_address("http://127.0.0.1:9100").unwrap(), "127.0.0.1:9100".parse().unwrap());
        assert_eq!(listen_address("http://localhost:9100/").unwrap(), "127.0.0.1:9100".parse().unwrap());
        assert!(listen_address("http://example.com:9000").is_err());
    }
}
