//! The `lambdabox` binary: parse the command line, set up logging, run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use lambdabox::arn::Realm;
use lambdabox::auth::{credentials, KeyRing};
use lambdabox::cli::{self, Cli, Command, ImagesCommand, ServeArgs, EXIT_CONFIG};
use lambdabox::function::{Runtime, RUNTIMES};
use lambdabox::remote::tls::TlsSource;
use lambdabox::remote::RemoteError;
use lambdabox::server::{ApiAuth, BackendChoice, Controller, ServeConfig, ServeError, SharingError};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) | Command::Images(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("LAMBDABOX_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)))
        .with_writer(std::io::stderr)
        // No colour codes in the log file of `serve --detach`, or in CI logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The controller gets a thread pool sized for serving; client commands
    // make a few requests and need one thread.
    let built = match &cli.command {
        Command::Serve(args) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(args.worker_threads()).enable_all().build()
        }
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let runtime = match built {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lambdabox: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lambdabox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(*args, cli.data_dir).await,
        Command::Images(ImagesCommand::Build { runtimes }) => build_images(runtimes).await,
        other => cli::run_client(&cli.endpoint, cli.data_dir.as_deref(), other).await,
    }
}

async fn serve(args: ServeArgs, data_dir: Option<PathBuf>) -> Result<ExitCode> {
    let config = match serve_config(&args, data_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lambdabox: {e:#}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    if args.detach {
        let detach =
            cli::daemon::Detach { data_dir: &config.data_dir, listen: args.listen, pid_file: args.pid_file.as_deref() };
        return cli::daemon::detach(detach).await;
    }
    // Held until the controller has shut down: removed on return.
    let _pid_file = args.pid_file.as_deref().map(cli::PidFile::create).transpose()?;
    raise_open_file_limit();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let url_listener = match args.url_listen.0 {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for function URLs (--url-listen)"))?,
        ),
        None => None,
    };
    let controller = match Controller::start(config).await {
        Ok(c) => c,
        Err(
            e @ (ServeError::InitMissing(_)
            | ServeError::Sharing(SharingError::Invisible { .. })
            | ServeError::Remote(RemoteError::Tls(_) | RemoteError::TlsOnUnix | RemoteError::Advertised(_))),
        ) => {
            eprintln!("lambdabox: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
        Err(e) => return Err(e.into()),
    };
    // The ready lines: scripts and tests wait for the last (and read the ports from them).
    if let Some(urls) = &url_listener {
        println!("lambdabox function URLs on http://{}", urls.local_addr()?);
    }
    println!("{}http://{}", cli::daemon::READY_LINE, listener.local_addr()?);
    controller.serve(listener, url_listener, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Raise the soft limit on open files to the hard one. Each container holds
/// a few descriptors in the controller (its runtime's connections, its log
/// pipe, its sockets), and the usual soft limit of 1024 would cap a big box
/// at a few hundred containers.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        if let Err(error) = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, ..limit }) {
            tracing::warn!(%error, "could not raise the open file limit");
        }
    }
}

fn serve_config(args: &ServeArgs, data_dir: Option<PathBuf>) -> Result<ServeConfig> {
    // Both end up in bind mounts, which Docker wants absolute.
    let data_dir = std::path::absolute(cli::data_dir(data_dir.as_deref())?)?;
    let init_bin = std::path::absolute(match &args.init_bin {
        Some(p) => p.clone(),
        None => cli::default_init_bin()?,
    })?;
    if args.user.split(':').count() != 2 || args.user.split(':').any(|p| p.parse::<u32>().is_err()) {
        anyhow::bail!("--user {}: expected numeric uid:gid", args.user);
    }
    if args.user.split(':').any(|p| p.parse::<u32>() == Ok(0)) {
        anyhow::bail!("--user {}: functions never run as root (uid or gid 0)", args.user);
    }
    warn_if_host_account(&args.user);
    let mut config = ServeConfig::new(data_dir, init_bin);
    config.network = args.network.clone();
    config.realm = Realm { region: args.region.clone(), ..Realm::default() };
    config.memory_budget_mb = args.memory_budget_mb;
    config.queue_timeout = Duration::from_millis(args.queue_timeout_ms);
    config.idle_ttl = Duration::from_secs(args.idle_ttl);
    config.cpu = if args.no_cpu_limit { lambdabox::pool::cpu::CpuMode::Off } else { args.cpu_limit };
    config.user = args.user.clone();
    config.drain_timeout = Duration::from_secs(args.drain_timeout);
    config.prewarm = args.prewarm;
    config.prewarm_max = args.prewarm_max;
    config.transport = args.transport;
    config.remote_listen = args.remote_listen.clone();
    config.remote_advertise = args.remote_advertise.clone();
    config.remote_tls = remote_tls(args, &config.data_dir)?;
    if args.backend == "kubernetes" {
        config.backend = BackendChoice::Kubernetes {
            namespace: args.kube_namespace.clone(),
            image_prefix: args.kube_image_prefix.clone(),
            pull_policy: args.kube_pull_policy.clone(),
        };
        config.transport = lambdabox::backend::Transport::Remote;
        match &args.remote_listen {
            Some(lambdabox::remote::Listen::Tcp(addr)) => {
                if addr.ip().is_unspecified() && args.remote_advertise.is_none() {
                    anyhow::bail!("--remote-listen {addr}: say with --remote-advertise which address pods dial");
                }
            }
            _ => anyhow::bail!("--backend kubernetes needs --remote-listen HOST:PORT, an address its pods can reach"),
        }
    }
    config.prewarm_runtimes = args.prewarm_runtimes;
    config.queue.retry_unit = Duration::from_millis(args.async_retry_unit_ms);
    config.schedule_clock_scale = args.schedule_clock_scale;
    config.auth = api_auth(args)?;
    Ok(config)
}

/// `--remote-tls auto`, or the user's files (cert and key together), for
/// a TCP --remote-listen only.
fn remote_tls(args: &ServeArgs, data_dir: &std::path::Path) -> Result<Option<TlsSource>> {
    let auto = args.remote_tls.as_deref() == Some("auto");
    let source = match (&args.remote_tls_cert, &args.remote_tls_key, auto) {
        (None, None, false) if args.remote_tls_ca.is_some() => {
            anyhow::bail!("--remote-tls-ca goes with --remote-tls-cert and --remote-tls-key")
        }
        (None, None, false) => return Ok(None),
        (Some(_), _, true) | (_, Some(_), true) => {
            anyhow::bail!("--remote-tls auto makes its own certificate: drop --remote-tls-cert/--remote-tls-key")
        }
        (None, None, true) if args.remote_tls_ca.is_some() => {
            anyhow::bail!("--remote-tls auto makes its own certificate: drop --remote-tls-ca")
        }
        (None, None, true) => TlsSource::Auto { dir: data_dir.join("remote-tls") },
        (Some(chain), Some(key), false) => {
            TlsSource::Files { chain: chain.clone(), key: key.clone(), ca: args.remote_tls_ca.clone() }
        }
        (Some(_), None, false) => anyhow::bail!("--remote-tls-cert needs --remote-tls-key (the certificate's key)"),
        (None, Some(_), false) => anyhow::bail!("--remote-tls-key needs --remote-tls-cert (the key's certificate)"),
    };
    if args.remote_tls.as_deref() == Some("off") {
        anyhow::bail!("--remote-tls off contradicts --remote-tls-cert/--remote-tls-key");
    }
    match &args.remote_listen {
        Some(lambdabox::remote::Listen::Tcp(_)) => Ok(Some(source)),
        _ => anyhow::bail!(
            "remote transport TLS needs a TCP --remote-listen HOST:PORT (a unix socket is reached only through its mount)"
        ),
    }
}

/// Configured key pairs (`--credentials-file`, then the LAMBDABOX_*
/// variables) replace the generated one; `--insecure-no-auth` takes none,
/// and only on loopback, where nobody else can reach the API.
fn api_auth(args: &ServeArgs) -> Result<ApiAuth> {
    let mut pairs = Vec::new();
    if let Some(path) = &args.credentials_file {
        pairs = credentials::read_file(path)?;
        if pairs.is_empty() {
            anyhow::bail!("--credentials-file {}: no key pairs in it", path.display());
        }
    }
    pairs.extend(credentials::from_env()?);
    match (args.insecure_no_auth, pairs.is_empty()) {
        (true, false) => {
            anyhow::bail!("--insecure-no-auth accepts any request: drop it, or the configured credentials")
        }
        (true, true) if !args.listen.ip().is_loopback() => anyhow::bail!(
            "--insecure-no-auth is allowed only with a loopback --listen address (127.0.0.1, ::1), not {}",
            args.listen
        ),
        (true, true) => Ok(ApiAuth::Off),
        (false, true) => Ok(ApiAuth::Generated),
        (false, false) => Ok(ApiAuth::Configured(KeyRing::new(pairs)?)),
    }
}

/// Functions run as `uid:gid` with no user namespace: a host account with
/// the same uid could signal or trace their processes. Say so at start.
fn warn_if_host_account(user: &str) {
    let Some(uid) = user.split(':').next().and_then(|u| u.parse::<libc::uid_t>().ok()) else { return };
    // SAFETY: getpwuid returns null or a pointer to a static entry we only read.
    let name = unsafe {
        let entry = libc::getpwuid(uid);
        (!entry.is_null()).then(|| std::ffi::CStr::from_ptr((*entry).pw_name).to_string_lossy().into_owned())
    };
    if let Some(name) = name {
        tracing::warn!(uid, account = %name, "functions run as a uid a host account also has; pick a free one with --user");
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested");
}

async fn build_images(names: Vec<String>) -> Result<ExitCode> {
    let runtimes: Vec<&'static Runtime> = if names.is_empty() {
        RUNTIMES.iter().collect()
    } else {
        names.iter().map(|n| Runtime::find(n)).collect::<Result<_, _>>()?
    };
    let docker = lambdabox::backend::docker::DockerBackend::connect()
        .await
        .context("cannot reach the Docker engine; is dockerd running?")?;
    let images = lambdabox::images::Images::new(Some(docker));
    // Clusters' pods copy init out of its own image.
    // `LAMBDABOX_INIT` as `serve --init-bin` reads it, else the one beside us.
    let init_bin = std::env::var_os("LAMBDABOX_INIT").map(PathBuf::from).or_else(|| cli::default_init_bin().ok());
    if let Some(init_bin) = init_bin.filter(|p| p.is_file()) {
        match images.ensure_init(&init_bin).await {
            Ok(tag) => eprintln!("init: {tag} is up to date"),
            Err(e @ lambdabox::images::ImageError::DynamicInit(_)) => eprintln!("init: image skipped: {e}"),
            Err(e) => return Err(e).context("building lambdabox-init's image"),
        }
    }
    for runtime in runtimes {
        let tag = images.ensure(runtime).await.with_context(|| format!("building the {} image", runtime.id))?;
        eprintln!("{}: {tag} is up to date", runtime.id);
    }
    Ok(ExitCode::SUCCESS)
}
