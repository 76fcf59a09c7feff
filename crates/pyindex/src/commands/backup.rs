//! `pyindex backup DEST` and `pyindex restore SRC`.

use std::path::Path;
use std::time::Instant;

use pyindex_ops::backup;

use super::verify::mib;
use crate::data_dir;

/// Backs up the data directory into `dest`.
pub async fn backup(data: &Path, dest: &Path) -> anyhow::Result<()> {
    let (catalog, blobs) = data_dir::open_sqlite(data).await?;
    let started = Instant::now();
    let manifest = backup::backup(&catalog, blobs, dest, |problem| println!("{problem}")).await;
    catalog.close().await;
    let manifest = manifest?;
    println!(
        "Backed up {} files ({} blobs, {}) into {} in {:.1} s: the index as it was at {}.",
        manifest.files,
        manifest.blobs,
        mib(manifest.bytes),
        data_dir::shown(dest).display(),
        started.elapsed().as_secs_f64(),
        manifest.created
    );
    Ok(())
}

/// Restores the backup in `src` into the (empty) data directory `data`.
pub async fn restore(src: &Path, data: &Path) -> anyhow::Result<()> {
    let manifest = backup::restore(src, data, |problem| println!("{problem}")).await?;
    let shown = data_dir::shown(data);
    println!(
        "Restored {} files ({} blobs, {}) from the backup of {} into {}. Serve it with \
         `pyindex serve --data {}`.",
        manifest.files,
        manifest.blobs,
        mib(manifest.bytes),
        manifest.created,
        shown.display(),
        shown.display()
    );
    Ok(())
}
