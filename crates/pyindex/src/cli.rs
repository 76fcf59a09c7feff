//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

    /// Data directory: catalog database and files [default: ./pyindex-data].
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
}
