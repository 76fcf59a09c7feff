//! `pyindex upstream block|unblock|blocks|log`: blocking upstream projects and releases, and
//! the log of upstream files fetched, directly on the data directory (also while the server
//! runs: it reads the change log and applies a block within a second).

use pyindex_catalog::{UpstreamBlock, UpstreamFetch};
use pyindex_registry::{Actor, ReleaseSpec};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::UpstreamCommand;
use crate::commands::accounts::printable;
use crate::data_dir::{self, Opener, Place};
use crate::timefmt::timestamp;

/// Runs `pyindex upstream ...`.
pub async fn run(place: &Place, command: UpstreamCommand) -> anyhow::Result<()> {
    let registry = data_dir::open(place, Opener::Command).await?;
    match command {
        UpstreamCommand::Block { spec, reason } => {
            let spec = ReleaseSpec::parse(&spec)?;
            let (block, created) = registry.block_upstream(Actor::Cli, &spec, &reason).await?;
            let verb = if created {
                "is now blocked"
            } else {
                "was blocked already; reason replaced"
            };
            println!("'{spec}' {verb}: {}", printable(&block.reason));
            if registry.project(&spec.project).await?.is_some() {
                println!(
                    "Note: '{}' is a project of this index: blocks apply to upstream files only, so its own files stay served.",
                    spec.project
                );
            }
        }
        UpstreamCommand::Unblock { spec } => {
            let spec = ReleaseSpec::parse(&spec)?;
            registry.unblock_upstream(Actor::Cli, &spec).await?;
            println!("'{spec}' is no longer blocked.");
        }
        UpstreamCommand::Blocks { project } => {
            let project = project
                .map(|p| ReleaseSpec::new(&p, None).map(|s| s.project))
                .transpose()?;
            print_blocks(
                &registry
                    .upstream_blocks(Actor::Cli, project.as_deref())
                    .await?,
            );
        }
        UpstreamCommand::Log { spec, json } => {
            let spec = ReleaseSpec::parse(&spec)?;
            let log = registry.upstream_fetch_log(&spec).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&log_json(&log))?);
            } else if log.is_empty() {
                println!("No upstream file of '{spec}' was ever fetched through this index.");
            } else {
                print_log(&log);
            }
        }
    }
    Ok(())
}

fn print_blocks(blocks: &[UpstreamBlock]) {
    if blocks.is_empty() {
        println!("Nothing is blocked.");
        return;
    }
    println!("project\tversion\tblocked\tby\treason");
    for b in blocks {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            b.project,
            b.version.as_deref().unwrap_or("(all)"),
            timestamp(b.created),
            printable(&b.created_by),
            printable(&b.reason)
        );
    }
}

fn print_log(log: &[UpstreamFetch]) {
    println!(
        "filename\tversion\tuploaded\tfirst fetched\tlast fetched\tfetches\tlast served\tsha256"
    );
    for f in log {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            printable(&f.filename),
            printable(f.version.as_deref().unwrap_or("-")),
            f.upload_time
                .map_or_else(|| "unknown".to_owned(), timestamp),
            timestamp(f.first_fetched),
            timestamp(f.last_fetched),
            f.fetches,
            timestamp(f.last_served),
            f.sha256
        );
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn log_json(log: &[UpstreamFetch]) -> Value {
    Value::Array(
        log.iter()
            .map(|f| {
                json!({
                    "project": f.project,
                    "version": f.version,
                    "filename": f.filename,
                    "sha256": f.sha256,
                    "upload_time": f.upload_time.map(rfc3339),
                    "first_fetched": rfc3339(f.first_fetched),
                    "last_fetched": rfc3339(f.last_fetched),
                    "fetches": f.fetches,
                    "last_served": rfc3339(f.last_served),
                })
            })
            .collect(),
    )
}
