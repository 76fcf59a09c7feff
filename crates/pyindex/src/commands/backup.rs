//! `pyindex backup DEST` and `pyindex restore SRC`.

use std::path::Path;
use std::time::Instant;

use pyindex_ops::backup;

use super::verify::mib;
use crate::data_dir;
use crate::data_dir::Place;

/// Backs up the data directory into `dest`.
pub async fn backup(place: &Place, dest: &Path) -> anyhow::Result<()> {
    let (catalog, blobs) = data_dir::open_sqlite(place, "backup").await?;
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
pub async fn restore(src: &Path, place: &Place) -> anyhow::Result<()> {
    place.require_sqlite("restore")?;
    let files = place.require_local_files("restore")?;
    if files != data_dir::default_files(&place.data) {
        anyhow::bail!(
            "`pyindex restore` writes the files into the data directory's files/, and --storage \
             (or PYINDEX_STORAGE) points elsewhere: restore without it, then move files/ there"
        );
    }
    let data = place.data.as_path();
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
