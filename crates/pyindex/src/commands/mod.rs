//! The subcommands.

mod serve;
mod yank;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::config::{DEFAULT_DATA, FileConfig};

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = FileConfig::load(cli.config.as_deref())?;
    let data = cli
        .data
        .clone()
        .or_else(|| file.data.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    match cli.command {
        Command::Serve(args) => serve::run(args, &file, &data).await,
        Command::Yank {
            project,
            version,
            reason,
        } => yank::yank(&data, &project, &version, reason).await,
        Command::Unyank { project, version } => yank::unyank(&data, &project, &version).await,
    }
}
