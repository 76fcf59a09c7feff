//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use pyindex_catalog::ProjectStatus;
use pyindex_registry::AccessMode;
use pyindex_server::MetricsAccess;

use crate::data_dir::{Database, StorageUrl};
use crate::duration::{Age, Timeout};
use crate::size::ByteSize;

/// A private Python package index: PEP 503/691 simple API, uploads with twine and uv.
///
/// Settings come from flags, then PYINDEX_* environment variables, then the TOML file given
/// with --config, then built-in defaults.
#[derive(Debug, Parser)]
#[command(name = "pyindex", version, about, long_about)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "PYINDEX_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory: catalog database and files [default: ./pyindex-data]. Every command but
    /// `serve`, `user add` and `user import-htpasswd` needs one that holds a catalog, except
    /// `restore`, which needs an empty one.
    #[arg(long, global = true, env = "PYINDEX_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Catalog database: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`
    /// [default: the SQLite catalog inside the data directory]. On PostgreSQL several servers
    /// (each with its own data directory) can serve one index.
    #[arg(long, global = true, env = "PYINDEX_DATABASE", value_name = "URL", value_parser = Database::parse, hide_env_values = true)]
    pub database: Option<Database>,

    /// Most connections to a PostgreSQL catalog held by this process [default: 10].
    #[arg(long, global = true, env = "PYINDEX_DATABASE_POOL_SIZE", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool_size: Option<u32>,

    /// Longest wait for a PostgreSQL connection: when the database cannot be reached within it,
    /// a request that needs the database gets 503 (pages and downloads already cached are still
    /// served) [default: 5s].
    #[arg(
        long,
        global = true,
        env = "PYINDEX_DATABASE_ACQUIRE_TIMEOUT",
        value_name = "DURATION"
    )]
    pub database_acquire_timeout: Option<Timeout>,

    /// Where files are stored: `file://PATH` or `s3://BUCKET/PREFIX` [default: the data
    /// directory's files/]. In a bucket, several servers can serve one index (with a PostgreSQL
    /// catalog); credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the
    /// configuration file).
    #[arg(long, global = true, env = "PYINDEX_STORAGE", value_name = "URL", value_parser = StorageUrl::parse)]
    pub storage: Option<StorageUrl>,

    /// The S3 server's URL, e.g. http://127.0.0.1:8333 [default: AWS, or AWS_ENDPOINT].
    #[arg(long, global = true, env = "PYINDEX_S3_ENDPOINT", value_name = "URL", value_parser = parse_endpoint)]
    pub s3_endpoint: Option<String>,

    /// The bucket's region [default: AWS_REGION or AWS_DEFAULT_REGION, else us-east-1].
    #[arg(long, global = true, env = "PYINDEX_S3_REGION", value_name = "REGION")]
    pub s3_region: Option<String>,

    /// Path-style requests (ENDPOINT/BUCKET/KEY), or with `=false` virtual-hosted ones
    /// (BUCKET.ENDPOINT/KEY) [default: path-style with --s3-endpoint, virtual-hosted without].
    #[arg(long, global = true, env = "PYINDEX_S3_PATH_STYLE", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub s3_path_style: Option<bool>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Accepts an `http://` or `https://` URL.
pub fn parse_endpoint(text: &str) -> Result<String, String> {
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.trim_end_matches('/').to_owned())
    } else {
        Err(format!(
            "'{text}' is not an endpoint URL: use http://HOST:PORT or https://HOST"
        ))
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the index over HTTP.
    Serve(Box<ServeArgs>),
    /// Yank a release: installers skip it unless it is pinned with ==.
    Yank {
        /// Project name (any spelling that normalizes to it).
        project: String,
        /// Version of the release.
        version: String,
        /// Why it was yanked; shown by pip and uv when the release is installed anyway.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Undo a yank.
    Unyank {
        /// Project name.
        project: String,
        /// Version of the release.
        version: String,
    },
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage who may publish to and manage a project.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Import an existing index: an nginx-style tree (the folder holding `simple/`, e.g.
    /// /var/www/pypi) or a flat directory of distributions (pypiserver). Every file is checked
    /// with the upload's rules; good files are imported, the rest listed with the reason. Safe
    /// to re-run and to run while the server serves. Exit status: 0 if every file was imported
    /// or already present, 1 if some were skipped, 2 if SOURCE cannot be imported at all.
    Import {
        /// The folder holding `simple/`, or a directory of .whl/.tar.gz/.zip files.
        source: PathBuf,
        /// Files imported at once.
        #[arg(long, default_value_t = pyindex_ops::import::DEFAULT_JOBS, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=64), usize::from))]
        jobs: usize,
    },
    /// Fetch what a build needs through a running pyindex ahead of time, so that the server's
    /// upstream cache holds it for an offline build. FILE is a requirements file with exact pins
    /// (`pip freeze`), a PEP 751 pylock.toml or a uv.lock; every file's sha256 is checked.
    /// Credentials: user info in the index URL, or an API token in PYINDEX_MIRROR_TOKEN. Safe to
    /// re-run. Exit status: 0 if every file was fetched and verified, 1 if some were not (listed
    /// with the reason), 2 if FILE cannot be read or the index cannot be reached.
    Mirror(MirrorArgs),
    /// Show the audit log: who published, yanked, or changed accounts and tokens, when and from where.
    Audit {
        /// How many of the newest entries to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Re-hash every stored file against the catalog and report each missing or corrupt one
    /// (exit status 1 if any). Safe while the server runs.
    Verify {
        /// Also remove what nothing references: blobs left by a crash between storing and
        /// recording a file, and stale upload spool files. Never removes a listed file.
        #[arg(long)]
        repair: bool,
        /// Keep (and, without --repair, do not report) unreferenced blobs, leftovers of
        /// interrupted uploads and, while a server runs, spool files younger than this, since
        /// an upload in progress has stored them but not recorded them yet.
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        grace: Age,
    },
    /// Copy the catalog and every file into DEST (new or empty), consistently, while the server
    /// runs and accepts uploads.
    Backup {
        /// Where to write the backup.
        dest: PathBuf,
    },
    /// Restore a backup made by `pyindex backup` into the data directory given by --data, which
    /// must be empty or missing.
    Restore {
        /// The backup directory.
        src: PathBuf,
    },
    /// Copy this index (the catalog of --data / --database and the files of --storage) into
    /// another database and file storage, e.g. from SQLite and local files to PostgreSQL and an
    /// S3 bucket, or back. The target database must be empty (or hold exactly this index, from
    /// an earlier run). Every file is hashed after copying; rerunning an interrupted move goes
    /// on where it stopped. Stop every server using the source first (writes during the move
    /// stop it). Not copied: the upstream proxy's cache and browser sessions.
    Migrate(MigrateArgs),
    /// Inspect and prune the upstream proxy's file cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Block upstream projects and releases, and read the log of upstream files fetched.
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// Print a shell completion script, e.g. `pyindex completions bash > /etc/bash_completion.d/pyindex`.
    Completions {
        /// bash, elvish, fish, powershell or zsh.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or with DIR write pyindex.1 and one page per subcommand there.
    Man {
        /// Directory to write the pages into (created if missing).
        dir: Option<PathBuf>,
    },
}

/// `pyindex user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin a password is generated and printed.
    Add {
        /// User name.
        name: String,
        /// Make it an admin (may publish to and manage every project).
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password. Without --password-stdin a password is generated and printed.
    Passwd {
        /// User name.
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account, its tokens and its project roles.
    Remove {
        /// User name.
        name: String,
    },
    /// List accounts.
    List,
    /// Import accounts from an htpasswd file (bcrypt, $apr1$ and {SHA} hashes).
    ImportHtpasswd {
        /// The htpasswd file.
        file: PathBuf,
    },
}

/// `pyindex token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once, on the last line of standard output.
    Create {
        /// The account the token acts for.
        #[arg(long)]
        user: String,
        /// Limit the token to this project (repeatable); default: every project.
        #[arg(long = "project", value_name = "PROJECT")]
        projects: Vec<String>,
        /// Allow reading only (for installs from an index in the `all` access mode).
        #[arg(long)]
        read_only: bool,
        /// Expire after this many days; default: never.
        #[arg(long, value_name = "DAYS")]
        expires: Option<u32>,
        /// A note to recognise the token by, e.g. "CI of courier".
        #[arg(long)]
        description: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this account's tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id (from `token list`).
    Revoke {
        /// Token id.
        id: i64,
    },
}

/// `pyindex cache ...`
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Show how many proxied pages and files are cached and their size against the limit.
    Stats {
        /// The limit to compare with [default: --upstream-cache-size of the config, or 10GiB].
        #[arg(long, env = "PYINDEX_UPSTREAM_CACHE_SIZE", value_name = "SIZE")]
        max_size: Option<ByteSize>,
    },
    /// Evict the least recently used upstream files until the cache fits its limit. Safe while
    /// the server runs; evicted files are fetched again when next asked for.
    Prune {
        /// The size to prune to, e.g. 5GiB or 0 to empty the cache [default: the configured
        /// --upstream-cache-size, or 10GiB].
        #[arg(long, env = "PYINDEX_UPSTREAM_CACHE_SIZE", value_name = "SIZE")]
        max_size: Option<ByteSize>,
    },
}

/// `pyindex upstream ...`
#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Block an upstream project (NAME) or release (NAME==VERSION): hidden from index pages
    /// and refused as a download at once, cached or not (a running server applies it within a
    /// second). `==1.0` also blocks 1.0.0 and local builds such as 1.0+cpu. Projects of this
    /// index are never affected. Blocking again replaces the reason.
    Block {
        /// NAME or NAME==VERSION.
        spec: String,
        /// Why, shown in every refusal, e.g. "compromised release, see advisory X".
        #[arg(long)]
        reason: String,
    },
    /// Lift a block made with `pyindex upstream block` (the same NAME or NAME==VERSION).
    Unblock {
        /// NAME or NAME==VERSION.
        spec: String,
    },
    /// List the blocks.
    Blocks {
        /// Only this project's.
        project: Option<String>,
    },
    /// The upstream files of a project or release fetched through this index, with their
    /// upload time and when they were first fetched: did any build pull it, and when?
    Log {
        /// NAME or NAME==VERSION.
        spec: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `pyindex project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Reserve a name for a private project before its first upload: it is never looked up on
    /// an upstream index, and answers 404 until it has files.
    Reserve {
        /// Project name.
        project: String,
    },
    /// Make a user an owner: may publish, yank and manage roles.
    AddOwner {
        /// Project name.
        project: String,
        /// User name.
        user: String,
    },
    /// Make a user a maintainer: may publish.
    AddMaintainer {
        /// Project name.
        project: String,
        /// User name.
        user: String,
    },
    /// Take a user's role away.
    RemoveRole {
        /// Project name.
        project: String,
        /// User name.
        user: String,
    },
    /// List the owners and maintainers.
    Roles {
        /// Project name.
        project: String,
    },
    /// Set the project's status (PEP 792), shown to pip and uv in its index page.
    ///
    /// active: the default. archived: no new uploads; files stay installable. quarantined: no
    /// uploads, no files listed or served. deprecated: informational only.
    Status {
        /// Project name.
        project: String,
        /// active, archived, quarantined or deprecated.
        status: ProjectStatus,
        /// Why, shown in the index page; without it any earlier reason is cleared.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Options of `pyindex mirror`.
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// The requirements file (pinned with ==), pylock.toml or uv.lock.
    #[arg(short = 'r', long = "requirement", value_name = "FILE")]
    pub file: PathBuf,

    /// The index to fetch through, as pip's --index-url takes it; USER:PASSWORD@ in it are sent
    /// as credentials [default: the server in the --config file (public_url, else listen), else
    /// http://127.0.0.1:9001/simple/].
    #[arg(
        long,
        env = "PYINDEX_MIRROR_INDEX_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub index_url: Option<String>,

    /// Files downloaded at once.
    #[arg(long, default_value_t = 4, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u16).range(1..=32), usize::from))]
    pub jobs: usize,

    /// Longest wait to connect, and for the next bytes of an answer.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub timeout: Timeout,
}

/// Options of `pyindex migrate`. A target bucket is reached with the same credentials as a
/// source one (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the configuration file).
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The target catalog database: `postgres://USER:PASSWORD@HOST:PORT/DATABASE` or
    /// `sqlite://PATH` (created if missing). It must hold no index.
    #[arg(long, value_name = "URL", value_parser = Database::parse)]
    pub to_database: Database,

    /// Where the target stores files: `s3://BUCKET/PREFIX` or `file://PATH` (created if
    /// missing). Files it holds already with the right SHA-256 are not copied again.
    #[arg(long, value_name = "URL", value_parser = StorageUrl::parse)]
    pub to_storage: StorageUrl,

    /// The target S3 server's URL, e.g. http://127.0.0.1:8333 [default: AWS, or AWS_ENDPOINT].
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    pub to_s3_endpoint: Option<String>,

    /// The target bucket's region [default: AWS_REGION or AWS_DEFAULT_REGION, else us-east-1].
    #[arg(long, value_name = "REGION")]
    pub to_s3_region: Option<String>,

    /// Path-style requests to the target bucket [default: path-style with --to-s3-endpoint,
    /// virtual-hosted without].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub to_s3_path_style: Option<bool>,
}

/// Options of `pyindex serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9001].
    #[arg(long, env = "PYINDEX_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Largest file accepted by uploads, e.g. 500MiB or 2GiB [default: 1GiB].
    #[arg(long, env = "PYINDEX_MAX_UPLOAD_SIZE", value_name = "SIZE")]
    pub max_upload_size: Option<ByteSize>,

    /// Memory for caching small files (up to 1 MiB each), e.g. 256MiB; 0 turns it off
    /// [default: 64MiB].
    #[arg(long, env = "PYINDEX_FILE_CACHE", value_name = "SIZE")]
    pub file_cache: Option<ByteSize>,

    /// Who needs credentials: open (nobody; loopback only), upload (publishing), all (everything)
    /// [default: open on loopback without accounts, otherwise upload].
    #[arg(long, env = "PYINDEX_AUTH", value_name = "MODE")]
    pub auth: Option<AccessMode>,

    /// Time a client has to send a whole request head, e.g. 30s or 1m [default: 30s].
    #[arg(long, env = "PYINDEX_HEADER_TIMEOUT", value_name = "DURATION")]
    pub header_timeout: Option<Timeout>,

    /// Time an idle connection is kept open for another request [default: 15s].
    #[arg(long, env = "PYINDEX_KEEP_ALIVE_TIMEOUT", value_name = "DURATION")]
    pub keep_alive_timeout: Option<Timeout>,

    /// Time a request body (an upload) may send no bytes before it is aborted [default: 30s].
    #[arg(long, env = "PYINDEX_BODY_TIMEOUT", value_name = "DURATION")]
    pub body_timeout: Option<Timeout>,

    /// Time open connections get to finish after SIGTERM or Ctrl-C; unfinished uploads are then
    /// discarded [default: 8s].
    #[arg(long, env = "PYINDEX_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<Timeout>,

    /// Answer distribution downloads with a redirect to a presigned URL of the bucket instead of
    /// streaming them (with --storage s3:// only); the index pages still list this server's
    /// URLs and hashes [default: false].
    #[arg(long, env = "PYINDEX_STORAGE_REDIRECT", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub storage_redirect: Option<bool>,

    /// How long a redirect's presigned URL is valid, e.g. 5m [default: 5m].
    #[arg(long, env = "PYINDEX_STORAGE_REDIRECT_EXPIRY", value_name = "DURATION")]
    pub storage_redirect_expiry: Option<Timeout>,

    /// Open connections at most; more wait until one closes
    /// [default: from the open-file limit, (limit - 128) / 2, at most 16384].
    #[arg(long, env = "PYINDEX_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Host name that clients may use besides localhost, 127.0.0.1 and [::1] (repeatable; the
    /// environment variable takes a comma-separated list). Without it a server on a loopback
    /// address refuses other names (DNS rebinding) and one on another address answers any name.
    #[arg(
        long = "allowed-host",
        env = "PYINDEX_ALLOWED_HOST",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// TLS certificate chain (PEM, server certificate first); serves HTTPS with --tls-key.
    /// Both files are read again on SIGHUP.
    #[arg(
        long,
        env = "PYINDEX_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1), for --tls-cert.
    #[arg(
        long,
        env = "PYINDEX_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// The URL clients reach the index at, e.g. https://pypi.example.internal behind a reverse
    /// proxy: redirects point there and pages show it; its host passes the Host check.
    #[arg(long, env = "PYINDEX_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Reverse proxy address or CIDR network whose X-Forwarded-For and X-Forwarded-Proto are
    /// believed (repeatable; the environment variable takes a comma-separated list). From other
    /// peers those headers are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "PYINDEX_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Who may read the Prometheus metrics at /metrics: public (anyone), private (admin
    /// credentials: an admin's password or token), off (/metrics answers 404) [default: public].
    #[arg(long, env = "PYINDEX_METRICS", value_name = "ACCESS")]
    pub metrics: Option<MetricsAccess>,

    /// Upstream simple index to proxy the names this index has no project for, e.g. the URL
    /// pip's --index-url takes (repeatable, in priority order: the first that knows a name serves
    /// it wholly; the environment variable takes a comma-separated list). Credentials go in the
    /// URL's userinfo or PYINDEX_UPSTREAM_USERNAME / PYINDEX_UPSTREAM_PASSWORD. Default: none.
    #[arg(
        long = "upstream",
        env = "PYINDEX_UPSTREAM",
        value_name = "URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub upstreams: Vec<String>,

    /// Time an upstream has to connect, to send a whole page, and for each read of a file
    /// [default: 10s]. Past it the last good page is served.
    #[arg(long, env = "PYINDEX_UPSTREAM_TIMEOUT", value_name = "DURATION")]
    pub upstream_timeout: Option<Timeout>,

    /// How long a proxied page is served before the upstream is asked again (conditionally)
    /// [default: 10m].
    #[arg(long, env = "PYINDEX_UPSTREAM_TTL", value_name = "DURATION")]
    pub upstream_ttl: Option<Timeout>,

    /// Disk space for cached upstream files; least recently used files are evicted beyond it
    /// [default: 10GiB].
    #[arg(long, env = "PYINDEX_UPSTREAM_CACHE_SIZE", value_name = "SIZE")]
    pub upstream_cache_size: Option<ByteSize>,

    /// Cooldown on new upstream releases, e.g. 7d or 36h: upstream files uploaded (by the
    /// upstream's upload-time) less than this ago are neither listed nor served, and appear by
    /// themselves once old enough. Private files are never held back [default: off].
    #[arg(long, env = "PYINDEX_UPSTREAM_MIN_AGE", value_name = "DURATION")]
    pub upstream_min_age: Option<Timeout>,

    /// Under --upstream-min-age, show upstream files whose upload time is unknown (HTML-only
    /// upstreams give none); without it they are held back.
    #[arg(long, env = "PYINDEX_UPSTREAM_ALLOW_UNKNOWN_AGE")]
    pub upstream_allow_unknown_age: bool,

    /// A project exempt from --upstream-min-age (repeatable; the environment variable takes a
    /// comma-separated list).
    #[arg(
        long = "upstream-min-age-exempt",
        env = "PYINDEX_UPSTREAM_MIN_AGE_EXEMPT",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub upstream_min_age_exempt: Vec<String>,

    /// Log format on standard error: human (one readable line per event) or json (one JSON
    /// object per line) [default: human].
    #[arg(long, env = "PYINDEX_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// One log line per request (method, path, status, latency, request id), and the request
    /// span that gives other lines their request id: on or off, as nginx's `access_log`
    /// [default: on].
    #[arg(long, env = "PYINDEX_REQUEST_LOG", value_name = "ON|OFF")]
    pub request_log: Option<Switch>,
}

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// The format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines (colored on a terminal).
    Human,
    /// One JSON object per line.
    Json,
}
