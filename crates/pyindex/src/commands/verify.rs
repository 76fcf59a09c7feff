//! `pyindex verify [--repair]`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use pyindex_ops::verify;

use crate::data_dir::{self, Opener, Place};

/// Blobs hashed at once: enough to overlap reading and hashing, little enough to leave the
/// server a core.
const PARALLELISM: usize = 2;

/// `n` bytes in MiB, for summaries.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Verifies every stored file; with `repair`, removes unreferenced blobs and spool files older
/// than `grace`. Fails (exit status 1) if any file is missing or corrupt.
pub async fn run(place: &Place, repair: bool, grace: Duration) -> anyhow::Result<()> {
    let registry = data_dir::open(place, Opener::Command).await?;
    let data = &place.data;
    let started = Instant::now();
    let summary = verify::verify(
        registry.catalog().as_ref(),
        registry.blobs().clone(),
        PARALLELISM,
        |problem| println!("{problem}"),
    )
    .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "Checked {} files ({} blobs with metadata files, {}) in {secs:.1} s ({}/s): {}.",
        summary.files,
        summary.blobs,
        mib(summary.bytes),
        mib((summary.bytes as f64 / secs.max(0.001)) as u64),
        match summary.problems {
            0 => "all intact".to_owned(),
            n => format!("{n} missing or corrupt"),
        }
    );
    if repair {
        repair_data_dir(data, &registry, grace).await?;
    } else {
        report_leftovers(&registry, grace).await?;
    }
    if summary.problems > 0 {
        anyhow::bail!(
            "{} file(s) are missing or corrupt (listed above). Restore them from a backup (see \
             \"Backup and restore\" in the README): `pyindex restore` into a new directory, \
             then serve that one.",
            summary.problems
        );
    }
    Ok(())
}

/// Lists what `--repair` would remove from the storage (never a listed file): blobs nothing
/// references and what interrupted uploads left, stored at least `grace` ago.
async fn report_leftovers(
    registry: &pyindex_registry::Registry,
    grace: Duration,
) -> anyhow::Result<()> {
    let unreferenced = verify::unreferenced(
        registry.catalog().as_ref(),
        registry.upstream_index().as_ref(),
        registry.blobs().as_ref(),
        grace,
    )
    .await?;
    for blob in unreferenced.values() {
        println!("unreferenced blob {} ({} bytes)", blob.key, blob.size);
    }
    let leftovers = registry
        .blobs()
        .leftovers(grace)
        .await
        .context("could not list interrupted uploads in the file storage")?;
    for leftover in &leftovers {
        println!("left by an interrupted upload: {leftover}");
    }
    if !unreferenced.is_empty() || !leftovers.is_empty() {
        println!(
            "Found {} unreferenced blob(s) and {} leftover(s) of interrupted uploads, older than \
             {}s and never listed: `pyindex verify --repair` removes them.",
            unreferenced.len(),
            leftovers.len(),
            grace.as_secs()
        );
    }
    Ok(())
}

async fn repair_data_dir(
    data: &Path,
    registry: &pyindex_registry::Registry,
    grace: Duration,
) -> anyhow::Result<()> {
    let removed = verify::remove_orphans(
        registry.catalog().as_ref(),
        registry.upstream_index().as_ref(),
        registry.blobs().as_ref(),
        grace,
        |blob| {
            println!(
                "removed unreferenced blob {} ({} bytes)",
                blob.key, blob.size
            )
        },
    )
    .await?;
    // Incomplete uploads and staging objects an interrupted write left in the store itself.
    let leftovers = registry
        .blobs()
        .remove_leftovers(grace)
        .await
        .context("could not clean up interrupted uploads in the file storage")?;
    for leftover in &leftovers {
        println!("{leftover}");
    }
    // With no server running, every spool file is a leftover; hold the server lock meanwhile so
    // that none starts and spools an upload while they are removed.
    let idle = data_dir::try_lock_idle(data)?;
    let spool_age = if idle.is_some() {
        Duration::ZERO
    } else {
        grace
    };
    let spooled = verify::remove_stale_spool_files(&data_dir::spool_dir(data), spool_age).await?;
    drop(idle);
    for path in &spooled {
        println!("removed stale spool file {}", path.display());
    }
    println!(
        "Repair removed {} unreferenced blob(s) ({}), {} interrupted upload(s) in the storage and \
         {} spool file(s); listed files are never removed, and unreferenced ones younger than {}s \
         were kept (an upload may still record them).",
        removed.blobs,
        mib(removed.bytes),
        leftovers.len(),
        spooled.len(),
        grace.as_secs()
    );
    Ok(())
}
