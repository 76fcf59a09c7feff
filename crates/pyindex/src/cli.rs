//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use pyindex_catalog::ProjectStatus;
use pyindex_registry::AccessMode;

use crate::duration::Timeout;
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
    /// `serve`, `user add` and `user import-htpasswd` needs one that holds a catalog.
    #[arg(long, global = true, env = "PYINDEX_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the index over HTTP.
    Serve(ServeArgs),
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
    /// Show the audit log: who published, yanked, or changed accounts and tokens, when and from where.
    Audit {
        /// How many of the newest entries to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
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

/// `pyindex project ...`
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
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

    /// Time open connections get to finish after SIGTERM or Ctrl-C [default: 10s].
    #[arg(long, env = "PYINDEX_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<Timeout>,

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
}
