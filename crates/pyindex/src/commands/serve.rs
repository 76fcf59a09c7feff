//! `pyindex serve`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use pyindex_registry::auth::password;
use pyindex_registry::{AccessMode, Actor, Registry};
use pyindex_server::listener::{self, ConnectionLimits, MAX_CONNECTIONS, Transport};
use pyindex_server::tls::{self, Tls};
use pyindex_server::{AppState, HostPolicy, PublicUrl, TrustedProxies};
use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, ServeArgs, Switch};
use crate::config::{
    DEFAULT_FILE_CACHE, DEFAULT_LISTEN, DEFAULT_MAX_UPLOAD_SIZE, DEFAULT_UPSTREAM_CACHE_SIZE,
    DEFAULT_UPSTREAM_TIMEOUT, DEFAULT_UPSTREAM_TTL, FileConfig,
};
use crate::data_dir::{self, Opener, Place, Storage};
use crate::duration::Timeout;
use crate::log_writer::{self, FlushGuard};

/// Name of the first admin account, created at the first start that needs one.
const FIRST_ADMIN: &str = "admin";
/// Where a generated first-admin password is written (mode 0600), inside the data directory.
const ADMIN_PASSWORD_FILE: &str = "admin-password";
/// Environment variable that sets the first admin's password instead of generating one.
const ADMIN_PASSWORD_ENV: &str = "PYINDEX_ADMIN_PASSWORD";

/// Logs to standard error at INFO (or as `RUST_LOG` says): readable lines, colored only on a
/// terminal, or one JSON object per line with the request's span (its id) in `span`. Lines are
/// written in batches by a thread of their own (see [`crate::log_writer`]); the returned guard
/// writes what is left when it is dropped at exit.
fn init_logging(format: LogFormat, request_log: Switch) -> FlushGuard {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if request_log == Switch::Off {
        // The request span and line have their own target (see pyindex_server's router).
        match format!("{}=off", pyindex_server::REQUEST_LOG_TARGET).parse() {
            Ok(directive) => filter = filter.add_directive(directive),
            Err(e) => eprintln!("pyindex: could not turn the request log off: {e}"),
        }
    }
    let (writer, guard) = log_writer::batched(std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Human => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_span_list(false).init(),
    }
    guard
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The access mode: as configured, or `open` on loopback with no accounts, else `upload`.
/// `open` is refused on any other address: it would let anyone on the network publish.
fn access_mode(
    configured: Option<AccessMode>,
    listen: SocketAddr,
    has_accounts: bool,
) -> anyhow::Result<AccessMode> {
    let loopback = listen.ip().is_loopback();
    match configured {
        Some(AccessMode::Open) if !loopback => bail!(
            "--auth open lets anyone publish, so it is allowed only on a loopback address, not on {listen}: \
             use --auth upload (the default) or --auth all"
        ),
        Some(mode) => Ok(mode),
        None if !has_accounts && loopback => Ok(AccessMode::Open),
        None => Ok(AccessMode::Upload),
    }
}

/// The connection bounds: flags, then environment, then the file, then defaults; the default
/// connection cap comes from the open-file limit the process has.
fn connection_limits(
    args: &ServeArgs,
    file: &FileConfig,
    open_files: u64,
) -> anyhow::Result<ConnectionLimits> {
    let pick = |flag: Option<Timeout>, from_file: Option<Timeout>, default| {
        flag.or(from_file).map_or(default, |t| t.0)
    };
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or_else(|| listener::default_max_connections(open_files));
    if !(1..=MAX_CONNECTIONS).contains(&max_connections) {
        bail!("--max-connections must be between 1 and {MAX_CONNECTIONS}, not {max_connections}");
    }
    Ok(ConnectionLimits {
        header_timeout: pick(
            args.header_timeout,
            file.header_timeout,
            ConnectionLimits::DEFAULT_HEADER_TIMEOUT,
        ),
        keep_alive_timeout: pick(
            args.keep_alive_timeout,
            file.keep_alive_timeout,
            ConnectionLimits::DEFAULT_KEEP_ALIVE_TIMEOUT,
        ),
        body_timeout: pick(
            args.body_timeout,
            file.body_timeout,
            ConnectionLimits::DEFAULT_BODY_TIMEOUT,
        ),
        shutdown_timeout: pick(
            args.shutdown_timeout,
            file.shutdown_timeout,
            ConnectionLimits::DEFAULT_SHUTDOWN_TIMEOUT,
        ),
        max_connections,
    })
}

/// TLS, the trusted proxies and the public URL: flags, then environment, then the file.
struct Deployment {
    transport: Transport,
    public_url: Option<PublicUrl>,
}

fn deployment(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Deployment> {
    let cert = args.tls_cert.as_ref().or(file.tls_cert.as_ref());
    let key = args.tls_key.as_ref().or(file.tls_key.as_ref());
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => {
            Some(Arc::new(Tls::load(cert, key).map_err(anyhow::Error::msg)?))
        }
        (None, None) => None,
        _ => bail!(
            "TLS needs both a certificate and a key: set --tls-cert and --tls-key \
             (PYINDEX_TLS_CERT / PYINDEX_TLS_KEY, tls_cert / tls_key in the config file), or neither"
        ),
    };
    let proxies = if args.trusted_proxies.is_empty() {
        &file.trusted_proxy
    } else {
        &args.trusted_proxies
    };
    let trusted_proxies = TrustedProxies::parse(proxies).map_err(anyhow::Error::msg)?;
    let public_url = args
        .public_url
        .as_deref()
        .or(file.public_url.as_deref())
        .map(PublicUrl::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    Ok(Deployment {
        transport: Transport {
            tls,
            trusted_proxies: Arc::new(trusted_proxies),
        },
        public_url,
    })
}

/// Environment variables with upstream credentials, for upstream URLs without userinfo.
const UPSTREAM_USERNAME_ENV: &str = "PYINDEX_UPSTREAM_USERNAME";
const UPSTREAM_PASSWORD_ENV: &str = "PYINDEX_UPSTREAM_PASSWORD";

/// The upstream proxy's settings (flags, then environment, then the file), or `None` when no
/// upstream is configured (the default).
fn upstream_settings(
    args: &ServeArgs,
    file: &FileConfig,
    max_file_size: u64,
) -> anyhow::Result<Option<pyindex_upstream::Settings>> {
    let urls = if args.upstreams.is_empty() {
        &file.upstream
    } else {
        &args.upstreams
    };
    if urls.is_empty() {
        return Ok(None);
    }
    let credentials = match std::env::var(UPSTREAM_USERNAME_ENV) {
        Ok(user) if !user.is_empty() => Some((
            user,
            std::env::var(UPSTREAM_PASSWORD_ENV).unwrap_or_default(),
        )),
        _ => None,
    };
    let indexes = urls
        .iter()
        .map(|url| pyindex_upstream::IndexUrl::parse(url, credentials.clone()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let pick = |flag: Option<Timeout>, from_file: Option<Timeout>, default| {
        flag.or(from_file).map_or(default, |t| t.0)
    };
    Ok(Some(pyindex_upstream::Settings {
        indexes,
        timeout: pick(
            args.upstream_timeout,
            file.upstream_timeout,
            DEFAULT_UPSTREAM_TIMEOUT,
        ),
        ttl: pick(args.upstream_ttl, file.upstream_ttl, DEFAULT_UPSTREAM_TTL),
        cache_size: args
            .upstream_cache_size
            .or(file.upstream_cache_size)
            .map_or(DEFAULT_UPSTREAM_CACHE_SIZE, |s| s.0),
        max_file_size,
    }))
}

/// The cooldown on new upstream releases (flags, then environment, then the file; off by
/// default). Exempt names are normalized; a name that is no project name is an error.
fn cooldown(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<pyindex_registry::Cooldown> {
    let exempt = if args.upstream_min_age_exempt.is_empty() {
        &file.upstream_min_age_exempt
    } else {
        &args.upstream_min_age_exempt
    };
    let exempt = exempt
        .iter()
        .map(|name| {
            pyindex_packaging::ProjectName::new(name)
                .map(|n| n.as_str().to_owned())
                .map_err(|e| anyhow::anyhow!("--upstream-min-age-exempt '{name}': {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(pyindex_registry::Cooldown {
        min_age: args.upstream_min_age.or(file.upstream_min_age).map(|t| t.0),
        allow_unknown_age: args.upstream_allow_unknown_age
            || file.upstream_allow_unknown_age.unwrap_or(false),
        exempt,
    })
}

/// Raises the open-file limit to the hard limit and returns the limit in force, logging it.
fn raise_open_file_limit() -> u64 {
    match listener::raise_open_file_limit() {
        Ok(limit) => {
            tracing::info!(
                before = limit.before,
                now = limit.now,
                "open-file limit (RLIMIT_NOFILE) set to the hard limit"
            );
            limit.now
        }
        Err(error) => {
            let limit = listener::open_file_limit();
            tracing::warn!(%error, limit, "could not raise the open-file limit; keeping it");
            limit
        }
    }
}

/// Creates the first admin when credentials are needed and no account exists yet, with the
/// password from the environment or a generated one written to a 0600 file in the data dir.
/// Renders, in the background, the READMEs of releases stored before READMEs were rendered at
/// publication (a page viewed before it gets there renders its own), and logs how many.
fn spawn_readme_rendering(registry: Registry) {
    tokio::spawn(async move {
        match registry.render_missing_readmes().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(releases = n, "READMEs of older releases rendered"),
            Err(e) => tracing::warn!(error = %e,
                "could not render the READMEs of older releases; their pages render them when viewed"),
        }
    });
}

async fn ensure_first_admin(registry: &Registry, data: &Path) -> anyhow::Result<()> {
    if registry.has_accounts().await? {
        return Ok(());
    }
    let (password, generated) = match std::env::var(ADMIN_PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (password::generate(), true),
    };
    if let Err(e) = registry
        .add_user(Actor::Cli, FIRST_ADMIN, &password, true)
        .await
    {
        // Replicas starting together on one new database: one of them creates the admin.
        if registry.has_accounts().await? {
            tracing::info!("another server created the first admin account");
            return Ok(());
        }
        return Err(e).with_context(|| format!("could not create the first admin account (is {ADMIN_PASSWORD_ENV} at least 8 characters?)"));
    }
    if generated {
        let path = data.join(ADMIN_PASSWORD_FILE);
        write_secret(&path, &format!("{password}\n"))?;
        eprintln!(
            "Created the admin account '{FIRST_ADMIN}' with the password below (also in {}; delete that file once you \
             have stored it):\n{password}",
            path.display()
        );
    } else {
        eprintln!(
            "Created the admin account '{FIRST_ADMIN}' with the password from {ADMIN_PASSWORD_ENV}."
        );
    }
    Ok(())
}

fn write_secret(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // A file left from before keeps its own mode under `create`: replace it instead.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("could not replace {}", path.display())),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("could not write {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// How long presigned download URLs last, with `--storage-redirect` (if it is on).
const DEFAULT_REDIRECT_EXPIRY: Duration = Duration::from_secs(300);

/// The presigned URLs' lifetime if downloads are redirected to the bucket; refused without one.
fn storage_redirect(
    args: &ServeArgs,
    file: &FileConfig,
    place: &Place,
) -> anyhow::Result<Option<Duration>> {
    let expiry = args
        .storage_redirect_expiry
        .or(file.storage_redirect_expiry)
        .map(|t| t.0);
    if !args
        .storage_redirect
        .or(file.storage_redirect)
        .unwrap_or(false)
    {
        if expiry.is_some() {
            anyhow::bail!(
                "--storage-redirect-expiry (PYINDEX_STORAGE_REDIRECT_EXPIRY, \
                 storage_redirect_expiry) is set but downloads are not redirected: add \
                 --storage-redirect, or remove it"
            );
        }
        return Ok(None);
    }
    if !matches!(place.storage, Storage::S3(_)) {
        anyhow::bail!(
            "--storage-redirect (PYINDEX_STORAGE_REDIRECT, storage_redirect) redirects downloads \
             to a bucket, but the files are in {}: use it with --storage s3://BUCKET/PREFIX, or \
             remove it",
            place.storage.shown()
        );
    }
    // SigV4 presigned URLs are valid for at most 7 days.
    let expiry = expiry.unwrap_or(DEFAULT_REDIRECT_EXPIRY);
    if expiry > Duration::from_secs(7 * 86_400) {
        anyhow::bail!(
            "--storage-redirect-expiry is longer than 7 days, the most an S3 presigned URL allows"
        );
    }
    Ok(Some(expiry))
}

/// Serves the index until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs, file: &FileConfig, place: &Place) -> anyhow::Result<()> {
    let data = place.data.as_path();
    let _flush_logs_at_exit = init_logging(
        args.log_format
            .or(file.log_format)
            .unwrap_or(LogFormat::Human),
        args.request_log.or(file.request_log).unwrap_or(Switch::On),
    );
    let listen = match args.listen.or(file.listen) {
        Some(addr) => addr,
        None => DEFAULT_LISTEN
            .parse()
            .context("invalid default listen address")?,
    };
    let max_upload_size = args
        .max_upload_size
        .or(file.max_upload_size)
        .map_or(DEFAULT_MAX_UPLOAD_SIZE, |s| s.0);
    let allowed_hosts = if args.allowed_hosts.is_empty() {
        &file.allowed_host
    } else {
        &args.allowed_hosts
    };
    let deployment = deployment(&args, file)?;
    let mut host_policy = HostPolicy::new(listen, allowed_hosts).map_err(anyhow::Error::msg)?;
    if let Some(public_url) = &deployment.public_url {
        host_policy = host_policy.also_allowing(public_url.host());
    }
    let metrics = args.metrics.or(file.metrics).unwrap_or_default();
    let limits = checked_connection_limits(&args, file)?;
    let storage_redirect = storage_redirect(&args, file, place)?;
    let _lock = data_dir::lock_for_server(data)?;
    let registry = open_registry(&args, file, place, max_upload_size).await?;
    let mode = access_mode(
        args.auth.or(file.auth),
        listen,
        registry.has_accounts().await?,
    )?;
    if mode != AccessMode::Open {
        ensure_first_admin(&registry, data).await?;
    }
    let mut state = AppState::new(registry.with_access_mode(mode), max_upload_size)
        .with_listen_address(listen)
        .with_host_policy(host_policy)
        .with_metrics_access(metrics);
    if let Some(expires_in) = storage_redirect {
        state = state.with_storage_redirect(expires_in);
    }
    let base_url = match deployment.public_url {
        Some(public_url) => {
            let base = public_url.base().to_owned();
            state = state.with_public_url(public_url);
            base
        }
        None if deployment.transport.tls.is_some() => format!("https://{listen}"),
        None => format!("http://{listen}"),
    };
    complete_release_details(&state.registry).await?;
    let _watcher = state.registry.spawn_change_watcher();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    tracing::info!(
        %listen,
        data = %data.display(),
        database = place.database.engine(),
        storage = %place.storage.shown(),
        storage_redirect = ?storage_redirect,
        max_upload_size,
        auth = %mode,
        ?limits,
        allowed_hosts = ?allowed_hosts,
        tls = ?deployment.transport.tls,
        trusted_proxies = ?deployment.transport.trusted_proxies,
        %metrics,
        "pyindex is serving: index at {base_url}/simple/, uploads at {base_url}/legacy/"
    );
    tokio::spawn(tls::reload_on_hangup(deployment.transport.tls.clone()));
    let upstream = state.registry.upstream().cloned();
    listener::serve(
        listener,
        pyindex_server::router(state),
        limits,
        deployment.transport,
        shutdown_signal(),
    )
    .await;
    if let Some(upstream) = upstream {
        // Pages not stored yet, and the last uses of cached upstream files (for
        // least-recently-used eviction).
        upstream.flush().await;
    }
    Ok(())
}

/// The connection limits, after raising the open-file limit they depend on; warns when the
/// configured connection cap is above what that limit leaves room for.
fn checked_connection_limits(
    args: &ServeArgs,
    file: &FileConfig,
) -> anyhow::Result<ConnectionLimits> {
    let open_files = raise_open_file_limit();
    let limits = connection_limits(args, file, open_files)?;
    if limits.max_connections as u64 > listener::default_max_connections(open_files) as u64 {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_files,
            "--max-connections is above what the open-file limit leaves room for; clients may see refused connections"
        );
    }
    Ok(limits)
}

/// The registry on the configured catalog and storage, proxying to the configured upstreams.
async fn open_registry(
    args: &ServeArgs,
    file: &FileConfig,
    place: &Place,
    max_upload_size: u64,
) -> anyhow::Result<Registry> {
    let file_cache = args
        .file_cache
        .or(file.file_cache)
        .map_or(DEFAULT_FILE_CACHE, |s| s.0);
    // Upstream files are bounded by the cache size, and by the largest upload at least 1 GiB.
    let upstream = upstream_settings(args, file, max_upload_size.max(1 << 30))?;
    let registry = data_dir::open(place, Opener::Server { file_cache }).await?;
    let Some(settings) = upstream else {
        return Ok(registry);
    };
    tracing::info!(
        upstreams = ?settings.indexes,
        timeout = ?settings.timeout,
        ttl = ?settings.ttl,
        cache_size = settings.cache_size,
        "proxying names without a local project to the upstream indexes, in this order"
    );
    let cooldown = cooldown(args, file)?;
    if let Some(min_age) = cooldown.min_age {
        tracing::info!(
            ?min_age,
            allow_unknown_age = cooldown.allow_unknown_age,
            exempt = ?cooldown.exempt,
            "upstream files younger than the cooldown are held back"
        );
    }
    Ok(registry.with_upstream(settings)?.with_cooldown(cooldown))
}

/// Fills in the details of releases published before they were kept, and renders the READMEs
/// not rendered yet in the background.
async fn complete_release_details(registry: &Registry) -> anyhow::Result<()> {
    let filled = registry
        .fill_release_details()
        .await
        .context("could not fill in the details of releases published before they were kept")?;
    if filled > 0 {
        tracing::info!(
            releases = filled,
            "release details read from stored metadata"
        );
    }
    spawn_readme_rendering(registry.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn serve_args(flags: &[&str]) -> ServeArgs {
        use clap::Parser;
        let argv = ["pyindex", "serve"].iter().chain(flags);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Serve(args) => *args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn connection_limits_take_flags_then_file_then_defaults() {
        let file: FileConfig =
            toml::from_str("header_timeout = \"5s\"\nbody_timeout = 7\nmax_connections = 300\n")
                .unwrap();
        let limits =
            connection_limits(&serve_args(&["--header-timeout", "2s"]), &file, 1024).unwrap();
        assert_eq!(limits.header_timeout, Duration::from_secs(2));
        assert_eq!(limits.body_timeout, Duration::from_secs(7));
        assert_eq!(
            limits.keep_alive_timeout,
            ConnectionLimits::DEFAULT_KEEP_ALIVE_TIMEOUT
        );
        assert_eq!(
            limits.shutdown_timeout,
            ConnectionLimits::DEFAULT_SHUTDOWN_TIMEOUT
        );
        assert_eq!(limits.max_connections, 300);
        let defaults = connection_limits(&serve_args(&[]), &FileConfig::default(), 1024).unwrap();
        assert_eq!(defaults.header_timeout, Duration::from_secs(30));
        assert_eq!(
            defaults.max_connections,
            listener::default_max_connections(1024)
        );
        assert!(connection_limits(&serve_args(&["--max-connections", "0"]), &file, 1024).is_err());
    }

    #[test]
    fn deployment_settings_are_checked() {
        let file: FileConfig = toml::from_str(
            "trusted_proxy = [\"10.0.0.0/8\"]\npublic_url = \"https://a.internal\"\n",
        )
        .unwrap();
        let from_file = deployment(&serve_args(&[]), &file).unwrap();
        assert!(from_file.transport.tls.is_none());
        assert!(
            from_file
                .transport
                .trusted_proxies
                .contains("10.1.1.1".parse().unwrap())
        );
        assert_eq!(from_file.public_url.unwrap().base(), "https://a.internal");
        let flags = deployment(
            &serve_args(&[
                "--trusted-proxy",
                "127.0.0.1",
                "--public-url",
                "http://b.internal:8080",
            ]),
            &file,
        )
        .unwrap();
        assert!(
            !flags
                .transport
                .trusted_proxies
                .contains("10.1.1.1".parse().unwrap()),
            "flags replace the file's list"
        );
        assert_eq!(flags.public_url.unwrap().base(), "http://b.internal:8080");
        let half: FileConfig = toml::from_str("tls_cert = \"/nonexistent/cert.pem\"\n").unwrap();
        let err = deployment(&serve_args(&[]), &half)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--tls-key"), "{err}");
        let bad_url = deployment(
            &serve_args(&["--public-url", "pypi.internal"]),
            &FileConfig::default(),
        );
        assert!(bad_url.is_err());
        let bad_proxy = deployment(
            &serve_args(&["--trusted-proxy", "proxy"]),
            &FileConfig::default(),
        );
        assert!(bad_proxy.is_err());
    }

    #[test]
    fn open_only_on_loopback() {
        assert_eq!(
            access_mode(None, addr("127.0.0.1:9001"), false).unwrap(),
            AccessMode::Open
        );
        assert_eq!(
            access_mode(None, addr("[::1]:9001"), false).unwrap(),
            AccessMode::Open
        );
        assert_eq!(
            access_mode(None, addr("0.0.0.0:9001"), false).unwrap(),
            AccessMode::Upload
        );
        assert_eq!(
            access_mode(None, addr("127.0.0.1:9001"), true).unwrap(),
            AccessMode::Upload
        );
        assert!(access_mode(Some(AccessMode::Open), addr("0.0.0.0:9001"), false).is_err());
        assert_eq!(
            access_mode(Some(AccessMode::All), addr("0.0.0.0:9001"), true).unwrap(),
            AccessMode::All
        );
    }
}
