//! The subcommands.

mod accounts;
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
        Command::User(command) => accounts::user(&data, command).await,
        Command::Token(command) => accounts::token(&data, command).await,
        Command::Project(command) => accounts::project(&data, command).await,
        Command::Audit { limit } => accounts::audit(&data, limit).await,
    }
}
