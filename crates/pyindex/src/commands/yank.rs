//! `pyindex yank` and `pyindex unyank`.

use pyindex_catalog::Yank;
use pyindex_registry::Actor;

use crate::data_dir::{self, Opener, Place};

/// Yanks a release.
pub async fn yank(
    data: &Place,
    project: &str,
    version: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let registry = data_dir::open(data, Opener::Command).await?;
    registry
        .yank(Actor::Cli, project, version, Yank::Yanked(reason))
        .await?;
    println!("Yanked {project} {version}.");
    Ok(())
}

/// Undoes a yank.
pub async fn unyank(data: &Place, project: &str, version: &str) -> anyhow::Result<()> {
    let registry = data_dir::open(data, Opener::Command).await?;
    registry
        .yank(Actor::Cli, project, version, Yank::NotYanked)
        .await?;
    println!("Unyanked {project} {version}.");
    Ok(())
}
