//! `pyindex migrate --to-database URL --to-storage URL`.

use std::time::Instant;

use anyhow::Context;
use pyindex_ops::migrate::{self, Report, Side};
use pyindex_storage::{S3Config, Spool};

use super::verify::mib;
use crate::cli::MigrateArgs;
use crate::config::FileConfig;
use crate::data_dir::{self, Database, OpenCatalog, Place, Storage, StorageUrl};

/// Copies the index of `place` into the target of `args`.
pub async fn run(args: MigrateArgs, file: &FileConfig, place: &Place) -> anyhow::Result<()> {
    let target_storage = target_storage(&args, file)?;
    // A server holds this lock while it serves the data directory: refuse to copy under it.
    let _idle = data_dir::try_lock_idle(&place.data)?.ok_or_else(|| {
        anyhow::anyhow!(
            "a pyindex server is serving {}: stop it before migrating (a move copies an index at \
             rest), or migrate a copy (`pyindex backup`, then `pyindex restore` it into a new \
             directory and migrate that)",
            data_dir::shown(&place.data).display()
        )
    })?;
    if let Database::Postgres(_) = place.database {
        eprintln!(
            "The source catalog is on PostgreSQL: stop every server using it first. A write \
             during the move is detected and stops it before the catalog is copied."
        );
    }
    let source = OpenCatalog::open(&place.database, &place.data, place.pool_size).await?;
    let target = OpenCatalog::open(&args.to_database, &place.data, place.pool_size)
        .await
        .with_context(|| {
            format!(
                "could not open the target {} catalog (--to-database)",
                args.to_database.engine()
            )
        })?;
    let result = copy(place, &source, &target, &target_storage).await;
    source.close().await;
    target.close().await;
    let (report, secs) = result?;
    print_report(place, &args.to_database, &target_storage, &report, secs);
    Ok(())
}

async fn copy(
    place: &Place,
    source: &OpenCatalog,
    target: &OpenCatalog,
    target_storage: &Storage,
) -> anyhow::Result<(Report, f64)> {
    let from = Side {
        catalog: source.transfer(),
        blobs: data_dir::open_storage(&place.storage).await?,
    };
    let to = Side {
        catalog: target.transfer(),
        blobs: data_dir::open_storage(target_storage)
            .await
            .context("could not open the target file storage (--to-storage)")?,
    };
    let spool_dir = data_dir::spool_dir(&place.data);
    let spool = Spool::open_without_cleaning(&spool_dir)
        .with_context(|| format!("could not open the spool {}", spool_dir.display()))?;
    let started = Instant::now();
    let report = migrate::migrate(from, to, spool, |problem| println!("{problem}")).await?;
    Ok((report, started.elapsed().as_secs_f64()))
}

/// The target storage, with its own S3 settings (never the source's) and the shared
/// credentials.
fn target_storage(args: &MigrateArgs, file: &FileConfig) -> anyhow::Result<Storage> {
    match &args.to_storage {
        StorageUrl::S3 { bucket, prefix } => Ok(Storage::S3(S3Config {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            endpoint: args.to_s3_endpoint.clone(),
            region: args.to_s3_region.clone(),
            path_style: args.to_s3_path_style,
            access_key_id: file.s3_access_key_id.clone(),
            secret_access_key: file.s3_secret_access_key.clone().map(|s| s.0),
        })),
        StorageUrl::File(_)
            if args.to_s3_endpoint.is_some()
                || args.to_s3_region.is_some()
                || args.to_s3_path_style.is_some() =>
        {
            anyhow::bail!(
                "--to-s3-endpoint, --to-s3-region or --to-s3-path-style are set, but \
                 --to-storage is not a bucket: use --to-storage s3://BUCKET/PREFIX, or remove them"
            )
        }
        StorageUrl::File(dir) => Ok(Storage::Files(dir.clone())),
    }
}

fn print_report(place: &Place, to: &Database, storage: &Storage, report: &Report, secs: f64) {
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
    println!(
        "Migrated the index from {} + {} to {} + {} in {secs:.1} s.",
        place.database.engine(),
        place.storage.shown(),
        to.engine(),
        storage.shown()
    );
    println!(
        "Catalog: {} ({}).",
        counts.join(", "),
        if report.catalog_copied {
            "copied in one transaction, then read back and compared"
        } else {
            "the target held it already from an earlier run; read back and compared"
        }
    );
    println!(
        "Files: {} blobs copied ({}), {} already in the target ({}); every one hashed in the \
         target and equal to the catalog's SHA-256.",
        report.copied.0,
        mib(report.copied.1),
        report.present.0,
        mib(report.present.1)
    );
    println!(
        "Not copied: the upstream proxy's cache (it fills again on demand) and browser sign-in \
         sessions (users sign in again). Serve the new place with the same --database and \
         --storage (and S3 settings) as given here with --to-."
    );
}
